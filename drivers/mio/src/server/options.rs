//! The settings of a node, from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use raftkv_core::NodeId;
use raftkv_core::kv::KvLimits;

use crate::server::limits::ConnectionLimits;
use crate::tls::{ClientTls, NodeTls};

/// Everything a node needs to run.
#[derive(Clone, Debug)]
pub(crate) struct ServeOptions {
    /// This node.
    pub(crate) id: NodeId,
    /// Where to accept peers and clients.
    pub(crate) listen: SocketAddr,
    /// The voters of a new cluster (this one included) and the address others reach each at
    /// (`--peers`): the membership until the log holds one. Empty for a node that joins.
    pub(crate) peers: Vec<(NodeId, String)>,
    /// Addresses of nodes of a running cluster this node joins (`--join`): while its data
    /// directory holds no membership, it asks them who the members are, and waits for the
    /// leader to add it.
    pub(crate) join: Vec<String>,
    /// The TLS with which it asks them, as a client with its own certificate.
    pub(crate) join_tls: Option<ClientTls>,
    /// How long it keeps asking them before it gives up and exits (`--join-timeout-ms`).
    pub(crate) join_timeout: Duration,
    /// The data directory.
    pub(crate) data: PathBuf,
    /// The cluster's name; connections from another cluster are refused.
    pub(crate) cluster: String,
    /// Lower bound of the randomized election timeout; the upper bound is twice this.
    pub(crate) election_timeout_ms: u64,
    /// Leader heartbeat interval.
    pub(crate) heartbeat_ms: u64,
    /// Whether the leader answers reads from its lease (`--read-lease`).
    pub(crate) read_lease: bool,
    /// The clock drift the lease allows for (`--max-clock-drift-ppm`).
    pub(crate) max_clock_drift_ppm: u64,
    /// Largest frame accepted from a peer or client.
    pub(crate) max_frame_bytes: usize,
    /// Bytes of applied log after which the replica takes a snapshot and the WAL is compacted.
    pub(crate) snapshot_bytes: usize,
    /// ... or this percentage of the last snapshot's size, if more.
    pub(crate) snapshot_growth_percent: u32,
    /// Bytes of applied entries the log keeps in memory (`--log-cache-bytes`); older ones are
    /// read back from the WAL to send.
    pub(crate) log_cache_bytes: usize,
    /// Size at which a WAL segment is closed and the next one started.
    pub(crate) segment_bytes: u64,
    /// Key and value sizes clients may write.
    pub(crate) limits: KvLimits,
    /// Idle time after which a client session expires.
    pub(crate) session_timeout_ms: u64,
    /// The node's data was lost or removed and it starts afresh: it stays out of elections
    /// until it has caught up with a leader. Applies to a new data directory only.
    pub(crate) rejoin: bool,
    /// What connections may cost.
    pub(crate) connection_limits: ConnectionLimits,
    /// TLS for every connection, or `None` to run in the clear.
    pub(crate) tls: Option<NodeTls>,
    /// Where to answer `/metrics` and `/health` over plain HTTP, if anywhere.
    pub(crate) metrics_listen: Option<SocketAddr>,
    /// `/health` says unhealthy when the node has applied fewer than its commit index minus
    /// this many entries.
    pub(crate) health_max_apply_lag: u64,
    /// Which nodes write and sync their log on the event loop's thread when the disk thread is
    /// idle (`--inline-sync`).
    pub(crate) inline_sync: InlineSync,
}

/// Which nodes make a turn's persists durable on the event loop's own thread when the disk
/// thread has nothing to do: no hand-off to the disk thread and back, but the loop waits for
/// the sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InlineSync {
    /// None: every persist goes through the disk thread.
    Never,
    /// Followers (and candidates): a follower has little else to do while its log syncs,
    /// and its acknowledgement, which the leader's commit waits for, leaves sooner.
    Follower,
}
