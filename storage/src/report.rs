//! What opening a data directory and persisting found, for the logs.

use core::fmt;
use std::path::PathBuf;

use raftkv_core::LogIndex;
use raftkv_core::raft::HardState;

/// What opening the directory found, besides the recovered state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The directory held no identity file: a new node.
    pub fresh: bool,
    /// A torn write at the end of the log (a crash during an append, never acknowledged),
    /// cut off.
    pub torn_tail: Option<Cut>,
    /// Damage found in what the node had acknowledged, and cut away: the node may have lost
    /// writes it promised, and `HardState::damaged` is set.
    pub damage: Vec<Cut>,
}

/// Bytes cut away from a file: where, why, and what was lost with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The file.
    pub path: PathBuf,
    /// Where in it the cut starts.
    pub offset: u64,
    /// What was found there.
    pub reason: String,
    /// What was dropped.
    pub dropped: Dropped,
}

/// What a [`Cut`] dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// An incomplete write of this many bytes.
    TornWrite {
        /// Bytes cleared.
        bytes: u64,
    },
    /// Everything of the log after entry `kept_last` (the snapshot point if no entry is left).
    LogAfter {
        /// The last entry kept.
        kept_last: LogIndex,
    },
    /// The term and vote; the node goes on with `recovered` instead.
    HardState {
        /// The last term the log or the snapshot holds, and no vote.
        recovered: HardState,
    },
    /// The snapshot, and with it the whole log (entries after a snapshot that is gone are of
    /// no use).
    SnapshotAndLog,
}

/// What one persist did besides making its batch durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistReport {
    /// WAL segments removed because a snapshot covers them.
    pub segments_removed: usize,
}

impl fmt::Display for Cut {
    /// For example `data/wal/00000000000000000001.wal at offset 4096: a record body fails
    /// its checksum; dropped the log after entry 41`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}; {}",
            self.path.display(),
            self.offset,
            self.reason,
            self.dropped
        )
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::TornWrite { bytes } => {
                write!(f, "cleared {bytes} bytes of an incomplete write")
            }
            Dropped::LogAfter { kept_last } => write!(f, "dropped the log after entry {kept_last}"),
            Dropped::HardState { recovered } => {
                write!(f, "dropped the term and vote, going on with {recovered}")
            }
            Dropped::SnapshotAndLog => f.write_str("dropped the snapshot and the whole log"),
        }
    }
}
