//! What a node asks its driver to make durable, and what a driver hands back after a restart.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{LogId, LogIndex, NodeId, Term};
use crate::raft::entries_on_disk::EntriesOnDisk;
use crate::raft::entry::Entry;
use crate::raft::membership::Membership;

/// The part of a node's state that must survive a crash besides its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: Term,
    /// The candidate it voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The node's disk lost writes it had acknowledged (entries, a vote) and the node has not
    /// yet caught up with a leader: it takes no part in elections. A storage engine that finds
    /// and cuts away damage sets it durably before it cuts anything, and a driver sets it for
    /// a node whose data was removed and that rejoins its cluster; the node clears it once it
    /// has caught up. Kept here so that a crash before then does not forget it.
    pub damaged: bool,
}

/// Names one `Persist`; acknowledgements refer to it. Ids grow by one from 1.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PersistId(pub u64);

/// A state machine snapshot, the last log entry it covers, and the membership in force there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last entry whose effect the snapshot holds.
    pub last: LogId,
    /// The membership in force at `last`. Empty only in a snapshot stored before snapshots
    /// recorded it: the cluster never changed its membership then, so a node starting from one
    /// takes the initial membership of its `Config`.
    pub membership: Membership,
    /// The state machine's own encoding of its state.
    #[serde(with = "crate::bytes")]
    pub data: Vec<u8>,
}

/// A snapshot the driver saved, as the node keeps it when the data stays on the driver's disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSnapshot {
    /// The last entry it covers.
    pub last: LogId,
    /// The membership in force at `last`.
    pub membership: Membership,
    /// The size of its data, in bytes.
    pub bytes: u64,
}

impl SavedSnapshot {
    /// What the node keeps of `snapshot` once saved.
    pub fn of(snapshot: &Snapshot) -> SavedSnapshot {
        let bytes = snapshot.data.len() as u64;
        SavedSnapshot { last: snapshot.last, membership: snapshot.membership.clone(), bytes }
    }
}

/// A chunk of a leader's snapshot that a follower received, to add to the snapshot it is
/// receiving on its disk. A chunk at offset 0 starts a new one and discards any other; any
/// other chunk continues the snapshot of the same `last` and `total` at exactly the bytes held
/// (the node never asks for anything else). Once every byte is durable, the node asks the
/// driver to read the whole snapshot back (`Output::LoadSnapshot`), and then to install it
/// (`Persist::install_received`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedChunk {
    /// The last entry the snapshot covers.
    pub last: LogId,
    /// The membership in force at `last`, to keep with the snapshot.
    pub membership: Membership,
    /// The size of the snapshot's data, in bytes.
    pub total: u64,
    /// Where `data` starts in the snapshot's data.
    pub offset: u64,
    /// The bytes from `offset` on.
    pub data: Vec<u8>,
}

impl ReceivedChunk {
    /// The offset just past the chunk.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.data.len() as u64)
    }
}

/// A snapshot from a leader that a node was receiving: `received` of its `total` bytes, from
/// its first byte without gaps, are durable. A driver reports the one it holds on a restart
/// (`Recovered::partial_snapshot`), so that the transfer resumes there; and the node asks
/// for it back once whole (`Output::LoadSnapshot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialSnapshot {
    /// The last entry the snapshot covers.
    pub last: LogId,
    /// The size of the snapshot's data, in bytes.
    pub total: u64,
    /// The bytes durable, from the first one on.
    pub received: u64,
}

/// A write the driver must make durable, then acknowledge with `Input::Persisted { id }`.
///
/// The driver executes persists in the order it receives them and acknowledges them in that
/// order (acknowledging `id` acknowledges every earlier one too, so one fsync may cover many:
/// group commit). Within one persist it applies `install_received`, then `snapshot` (each
/// replaces every entry it covers), then `truncate_from`, then `entries`. A `snapshot_chunk` lies apart from the log
/// (its own file): it may be written before or after the rest of its persist. The hard state
/// must be durable no later than anything else of the persist; writing it first is allowed,
/// and so is writing the newest hard state of a batch before the rest of the batch: a newer
/// term or vote on disk ahead of the log is always safe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persist {
    /// Acknowledge with this id.
    pub id: PersistId,
    /// A new term or vote.
    pub hard_state: Option<HardState>,
    /// Drop every entry at or after this index (a follower repairing a conflict).
    pub truncate_from: Option<LogIndex>,
    /// Entries to append, consecutive.
    pub entries: Vec<Entry>,
    /// A snapshot to store.
    pub snapshot: Option<Snapshot>,
    /// The snapshot received whole from the leader that the driver read back
    /// (`Input::SnapshotLoaded`) becomes the node's snapshot: the driver moves what it received
    /// into place (a rename), the data never passing through the node. Like `snapshot`, it
    /// replaces every entry it covers, unless the disk holds a snapshot as recent already (the
    /// node's own, saved meanwhile), which stays; the received one is then dropped.
    pub install_received: Option<SavedSnapshot>,
    /// A chunk of a snapshot being received from the leader, to add to it (see
    /// [`ReceivedChunk`]). A stored `snapshot` at or past the received one's `last` makes
    /// the received one useless: the driver may drop it.
    pub snapshot_chunk: Option<ReceivedChunk>,
}

/// What a driver read back from disk to restart a node. `Recovered::default()` starts a new
/// node with an empty log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The last durable snapshot.
    pub snapshot: Option<Snapshot>,
    /// The durable entries after the snapshot that the driver leaves on its disk: their
    /// terms, sizes and memberships only (empty: none). A driver that recovers a large log
    /// holds only its tail in memory (`entries`); the node asks for these when it applies
    /// them (`Output::LoadEntries`). They start right after the snapshot.
    pub on_disk: EntriesOnDisk,
    /// The durable entries after the snapshot (after `on_disk`), consecutive.
    pub entries: Vec<Entry>,
    /// The part of a leader's snapshot the node was receiving, if the disk holds one (newer
    /// than `snapshot`): the transfer resumes from `received`.
    pub partial_snapshot: Option<PartialSnapshot>,
}

impl fmt::Display for HardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term={}", self.term)?;
        match self.vote {
            Some(vote) => write!(f, " vote={vote}")?,
            None => write!(f, " vote=none")?,
        }
        if self.damaged { write!(f, " damaged") } else { Ok(()) }
    }
}

impl fmt::Display for Persist {
    /// For example `persist #3 term=2 vote=1 truncate=5 entries=5..7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "persist #{}", self.id.0)?;
        if let Some(snapshot) = &self.snapshot {
            write!(f, " snapshot={}({}B)", snapshot.last, snapshot.data.len())?;
        }
        if let Some(installed) = &self.install_received {
            write!(f, " install-received={}({}B)", installed.last, installed.bytes)?;
        }
        if let Some(hard_state) = &self.hard_state {
            write!(f, " {hard_state}")?;
        }
        if let Some(chunk) = &self.snapshot_chunk {
            write!(f, " chunk={}@{}..{}/{}", chunk.last, chunk.offset, chunk.end(), chunk.total)?;
        }
        if let Some(index) = self.truncate_from {
            write!(f, " truncate={index}")?;
        }
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            write!(f, " entries={}..{}", first.index, last.index)?;
        }
        Ok(())
    }
}
