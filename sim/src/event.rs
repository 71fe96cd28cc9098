//! What the simulation's queue holds: events due at virtual instants, popped in time order
//! and, at one instant, in the order they were queued.

use std::cmp::Ordering;

use raftkv_core::Instant;
use raftkv_core::raft::{EntriesToLoad, PartialSnapshot, PersistId};
use raftkv_core::snapshot_job::SnapshotJob;

use raftkv_testkit::Packet;

use crate::recorded::OpId;

/// Something due at a virtual instant, in a cluster whose clients send commands `C` and get
/// replies `R`.
#[derive(Debug)]
pub(crate) enum Event<C, R> {
    /// A packet arrives (boxed: packets are large, and the queue moves events around).
    Deliver(Box<Packet<C, R>>),
    /// A node's `poll_timeout` instant, if the generation is still current.
    NodeTimer { node: usize, generation: u64 },
    /// A node's disk finishes persists, if the node is still in the same life.
    DiskDone { node: usize, life: u64 },
    /// A node's snapshot thread has encoded the snapshot the node asked for: it saves it and
    /// tells the node, if the node is still in the same life.
    SnapshotEncoded { node: usize, life: u64, job: SnapshotJob },
    /// A node's disk has read back the snapshot received whole that the node asked for: the
    /// node gets it (or hears it is damaged), if it is still in the same life.
    SnapshotLoad { node: usize, life: u64, whole: PartialSnapshot },
    /// A node's disk has read back the committed entries a restart left there, which the node
    /// asked for to apply: the node gets them (or stops), if it is still in the same life.
    EntriesLoad { node: usize, life: u64, load: EntriesToLoad },
    /// A lying disk acknowledges a persist it has not made durable.
    LyingAck { node: usize, life: u64, id: PersistId },
    /// A clerk's `poll_timeout` instant, if the generation is still current.
    ClerkTimer { client: usize, generation: u64 },
    /// A client is done thinking and issues its next operation.
    ClientNext { client: usize },
    /// The fault injector acts.
    Fault(FaultEvent),
    /// The operation must have returned by now.
    LivenessDeadline { op: OpId },
}

/// An event and when it is due; `seq` orders simultaneous events.
pub(crate) struct Scheduled<C, R> {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) event: Event<C, R>,
}

impl<C, R> PartialEq for Scheduled<C, R> {
    fn eq(&self, other: &Scheduled<C, R>) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<C, R> Eq for Scheduled<C, R> {}

impl<C, R> PartialOrd for Scheduled<C, R> {
    fn partial_cmp(&self, other: &Scheduled<C, R>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<C, R> Ord for Scheduled<C, R> {
    /// Reversed: the heap pops the earliest event, and of simultaneous ones the first queued.
    fn cmp(&self, other: &Scheduled<C, R>) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// What the injector does at an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultEvent {
    /// Time to crash a node.
    Crash,
    /// Time to partition the network, or to heal the partition in place.
    Partition,
    /// Time to pause a node.
    Pause,
    /// Time to ask the leader to hand over to a random node.
    Transfer,
    /// Time to rot a bit of a node's data.
    BitRot,
    /// Time for the next step of a membership change.
    Membership,
    /// Crash a node still in life `life`: it was writing, sending or receiving a snapshot.
    CrashDuringSnapshot { node: usize, life: u64 },
    /// Bring back a node crashed in life `life`.
    Restart { node: usize, life: u64 },
    /// Resume a node paused in life `life`.
    Resume { node: usize, life: u64 },
}
