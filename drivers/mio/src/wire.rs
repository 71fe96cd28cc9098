//! What raftkv processes say to each other over TCP, frame by frame.
//!
//! Every node listens on one port for both peers and clients. The side that dials speaks
//! first with a [`Hello`] saying who it is; the node answers with a [`Welcome`] naming itself,
//! or refuses (wrong cluster, wrong protocol version, unknown peer) and closes. After that a
//! peer connection carries Raft messages one way (each node dials every other node for what it
//! sends), and a client connection carries [`ClientFrame`]s in and [`ServerFrame`]s out.

use serde::{Deserialize, Serialize};

use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest};
use raftkv_core::{LogIndex, NodeId, Term};

use crate::connection_report::ConnectionReport;

/// The version of this protocol; a node refuses a `Hello` of another version. 2: pre-votes
/// name their round, and a node's status says whether its data is damaged. 3: a node's status
/// reports its connections. 4: entries may carry a membership, and snapshot chunks carry the
/// membership at their snapshot point. 5: a node's status counts the requests it answered
/// "busy" (the status frame grew a field; `Reject::Busy` itself was appended and changes no
/// older encoding). 6: the commands on several keys, scans, conditional puts and counters, and
/// an append answers the length it produced.
pub(crate) const PROTOCOL_VERSION: u32 = 6;

/// Bytes that start every `Hello`, so that a stray connection is told apart from a
/// misconfigured raftkv process.
pub(crate) const MAGIC: [u8; 6] = *b"raftkv";

/// The first frame of every connection, from the side that dialed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Always [`MAGIC`].
    pub(crate) magic: [u8; 6],
    /// Always [`PROTOCOL_VERSION`] of the sender.
    pub(crate) version: u32,
    /// The cluster the sender belongs to or wants to talk to.
    pub(crate) cluster: String,
    /// Who is dialing.
    pub(crate) role: HelloRole,
}

/// Who dials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HelloRole {
    /// A node of the cluster, which will send Raft messages to `to`.
    Peer {
        /// The sender.
        from: NodeId,
        /// The node it believes it dialed.
        to: NodeId,
    },
    /// A client, which will send requests.
    Client,
}

/// The node's answer to a `Hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Welcome {
    /// The connection is accepted by node `node`.
    Accepted {
        /// The node that answered.
        node: NodeId,
        /// Every node of the cluster and the address it is reached at (its `--peers`), so a
        /// client given some of the addresses can find the others.
        members: Vec<(NodeId, String)>,
    },
    /// The connection is refused, for this reason; the node closes it.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A frame from a client. `tag` lets many sessions share one connection: the answer carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ClientFrame {
    /// A request of the key-value service.
    Request {
        /// Echoed in the reply.
        tag: u32,
        /// The request.
        request: ClientRequest<KvCommand>,
    },
    /// What the node's state is (for `raftkv status`).
    Status {
        /// Echoed in the reply.
        tag: u32,
    },
}

/// A frame from a node to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ServerFrame {
    /// The answer to a request.
    Reply {
        /// The request's tag.
        tag: u32,
        /// The answer.
        reply: ClientReply<KvReply>,
    },
    /// The answer to a status query.
    Status {
        /// The query's tag.
        tag: u32,
        /// The node's state (boxed: far larger than a reply).
        status: Box<NodeStatus>,
    },
}

/// One node's state as `raftkv status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// Its role: `Follower`, `PreCandidate`, `Candidate` or `Leader`.
    pub role: String,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit: LogIndex,
    /// The last log index applied to its state machine.
    pub applied: LogIndex,
    /// Its last log index.
    pub last_log: LogIndex,
    /// The last index its snapshot covers (0 without one).
    pub snapshot_last: LogIndex,
    /// Log entries it holds in memory (after the snapshot).
    pub log_entries: u64,
    /// Bytes of its write-ahead log on disk.
    pub wal_bytes: u64,
    /// Keys in its state machine.
    pub keys: u64,
    /// Its data was damaged or removed and it has not caught up yet: it takes no part in
    /// elections.
    pub damaged: bool,
    /// Its accepted connections, what they buffer, and what it refused.
    pub connections: ConnectionReport,
}
