//! Why a node could not start, or stopped on an error.

use core::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use raftkv_core::server::ReplicaStartError;
use raftkv_storage::StorageError;

/// A failure that stops a node (or keeps it from starting).
#[derive(Debug)]
pub(crate) enum ServeError {
    /// The data directory could not be created.
    CreateDataDirectory(StorageError),
    /// The data directory's lock file could not be opened.
    OpenLock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another process holds the data directory's lock.
    DataDirectoryInUse {
        /// The data directory.
        dir: PathBuf,
    },
    /// What the data directory holds could not be read back, or is refused.
    Recover(StorageError),
    /// The poll could not be created.
    CreatePoll(io::Error),
    /// The listening socket could not be opened.
    Listen {
        /// Where it was to listen.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The listening socket could not be registered with the poll.
    RegisterListener(io::Error),
    /// The poll of the front (the Redis listener) could not be registered with the loop's.
    RegisterFront(io::Error),
    /// The poll's waker (how the disk thread wakes the loop) could not be created.
    CreateWaker(io::Error),
    /// SIGINT and SIGTERM could not be caught.
    CatchSignals(io::Error),
    /// The signals could not be registered with the poll.
    RegisterSignals(io::Error),
    /// The disk thread could not be started.
    StartDiskThread(io::Error),
    /// The thread that answers `/metrics` and `/health` could not be started.
    StartMetricsThread(io::Error),
    /// The replica refused what the data directory holds.
    StartReplica(ReplicaStartError),
    /// The data directory holds no membership, and neither `--peers` nor `--join` says where
    /// the cluster is.
    NoMembership {
        /// The data directory.
        dir: PathBuf,
    },
    /// `--peers` differs from the peer set the data directory's cluster was started with.
    PeersChanged {
        /// The data directory.
        dir: PathBuf,
        /// The peers it recorded.
        recorded: String,
        /// The peers given.
        given: String,
    },
    /// The record of the cluster's peers could not be read or written.
    PeerRecord {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The nodes at the `--join` addresses did not name the cluster's members.
    Join {
        /// The addresses, as given.
        addresses: String,
        /// What went wrong last.
        problem: String,
    },
    /// Waiting for events failed.
    Poll(io::Error),
    /// A write or sync failed: whether it reached the disk is unknown, so the node stops.
    Disk(StorageError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::CreateDataDirectory(error) | ServeError::Recover(error) => {
                write!(f, "{error}")
            }
            ServeError::OpenLock { path, source } => {
                write!(f, "cannot open {}: {source}", path.display())
            }
            ServeError::DataDirectoryInUse { dir } => {
                write!(f, "data directory {} is in use by another raftkv process", dir.display())
            }
            ServeError::CreatePoll(error) => write!(f, "cannot create a poll: {error}"),
            ServeError::Listen { address, source } => {
                write!(f, "cannot listen on {address}: {source}")
            }
            ServeError::RegisterListener(error) => {
                write!(f, "cannot register the listener: {error}")
            }
            ServeError::RegisterFront(error) => {
                write!(f, "cannot register the Redis listener's poll: {error}")
            }
            ServeError::CreateWaker(error) => write!(f, "cannot create a waker: {error}"),
            ServeError::CatchSignals(error) => write!(f, "cannot catch signals: {error}"),
            ServeError::RegisterSignals(error) => write!(f, "cannot register signals: {error}"),
            ServeError::StartDiskThread(error) => {
                write!(f, "cannot start the disk thread: {error}")
            }
            ServeError::StartMetricsThread(error) => {
                write!(f, "cannot start the metrics thread: {error}")
            }
            ServeError::StartReplica(error) => write!(f, "cannot start the replica: {error}"),
            ServeError::NoMembership { dir } => write!(
                f,
                "{} holds no membership: give --peers to start a new cluster, or --join to join \
                 a running one",
                dir.display()
            ),
            ServeError::PeersChanged { dir, recorded, given } => write!(
                f,
                "{} belongs to the cluster started with --peers {recorded}, not {given}: restart \
                 it with the same --peers or none (its membership lives in its log; change it \
                 with `raftkv member`), or give a new data directory for a new cluster",
                dir.display()
            ),
            ServeError::PeerRecord { path, source } => {
                write!(f, "cannot read or write {}: {source}", path.display())
            }
            ServeError::Join { addresses, problem } => {
                write!(f, "cannot join the cluster at {addresses}: {problem}")
            }
            ServeError::Poll(error) => write!(f, "poll failed: {error}"),
            ServeError::Disk(error) => write!(f, "disk failure, stopping: {error}"),
        }
    }
}

impl std::error::Error for ServeError {}
