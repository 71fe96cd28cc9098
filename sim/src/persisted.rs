//! The size of the Raft state each node keeps on disk, and the bound compaction keeps it under.
//!
//! The persisted Raft state is the log and the hard state. The snapshot is not part of it: it
//! is the state machine's and sessions' encoding, whose size depends on the keys and clients,
//! not on the threshold (6.5840 measures `RaftStateSize` apart from the snapshot in the same
//! way).
//!
//! The bound follows from how core compacts. After every batch of entries it applies, the
//! replica snapshots once the applied entries its log holds weigh the threshold (the
//! replica's own, `Replica::snapshot_threshold`, which grows with its snapshot), and the log
//! drops them; a node builds its next persist only after that check. So a persist leaves the
//! disk with fewer bytes than the threshold of entries that were applied when it was written,
//! and everything else in the log is entries not yet applied then: not yet known committed, or
//! committed and in the batch about to be applied. Hence, at every moment:
//!
//! ```text
//! persisted < hard state + threshold + entries not yet applied when written
//! ```
//!
//! The simulator records the applied index and the threshold at which each persist was built,
//! so it checks that "the entries applied when written weigh less than the threshold then", and
//! the same of the log in
//! memory after every step. (Judged by the applied index after a step instead, the disk may
//! also hold the batch just applied, whose compaction is still on its way to the disk: the
//! bound would need a batch of applied entries on top.) Entries not yet applied are bounded by
//! the protocol, not by the threshold (a follower back from a crash holds its whole recovered
//! log unapplied until it learns the commit index; with a threshold of a few bytes, any entry
//! on disk exceeds it), so the worst ratio to the threshold is reported, not bounded.

use std::collections::VecDeque;

use raftkv_core::LogIndex;
use raftkv_core::raft::{Entry, PersistId};

use raftkv_testkit::Durable;

use crate::checks::{Check, Failed};
use crate::node_ids::node_id;

/// What the hard state weighs: a term and a vote, eight bytes each (log entries count a fixed
/// header besides their payload the same way, `Entry::size_bytes`).
pub(crate) const HARD_STATE_BYTES: u64 = 16;

/// The Raft state `durable` holds: its log entries and its hard state, in bytes.
pub(crate) fn persisted_bytes(durable: &Durable) -> u64 {
    let log_bytes: usize = durable.entries.iter().map(Entry::size_bytes).sum();
    HARD_STATE_BYTES + log_bytes as u64
}

/// Where a node stood when it built a persist: its applied index and its snapshot threshold
/// (`Replica::snapshot_threshold`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WrittenAt {
    pub(crate) applied: LogIndex,
    pub(crate) threshold_bytes: u64,
}

/// One node's disk as the bound sees it.
#[derive(Clone, Debug)]
struct NodeDisk {
    /// The persists handed to the disk and not yet durable, each with where the node stood when
    /// it was written (none when the replica deferred its snapshot then: see
    /// `Replica::snapshot_deferred`).
    in_flight: VecDeque<(PersistId, Option<WrittenAt>)>,
    /// Where the node stood when the last durable persist was written; a persist written while
    /// the snapshot was deferred counts nothing as applied.
    written_at: WrittenAt,
    /// The largest snapshot the node has held (saved, installed or recovered), which bounds
    /// the threshold it may grow to.
    largest_snapshot_bytes: u64,
}

impl NodeDisk {
    fn new(threshold_bytes: u64) -> NodeDisk {
        let written_at = WrittenAt { applied: LogIndex(0), threshold_bytes };
        NodeDisk { in_flight: VecDeque::new(), written_at, largest_snapshot_bytes: 0 }
    }
}

/// The largest persisted Raft state seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistedMax {
    /// Its size: log entries plus hard state.
    pub bytes: u64,
    /// Of which entries not yet applied when written.
    pub unapplied_bytes: u64,
    /// The node that held it (1-based).
    pub node: u64,
}

/// Tracks every node's persisted Raft state against the snapshot threshold.
pub(crate) struct PersistedSize {
    /// The configured threshold, the least a replica's can be.
    threshold_bytes: u64,
    /// The configured growth: a replica's threshold is at most this percentage of the largest
    /// snapshot it held, if more than `threshold_bytes`.
    growth_percent: u64,
    nodes: Vec<NodeDisk>,
    max: PersistedMax,
}

impl PersistedSize {
    pub(crate) fn new(nodes: usize, threshold_bytes: usize, growth_percent: u32) -> PersistedSize {
        PersistedSize {
            threshold_bytes: threshold_bytes as u64,
            growth_percent: u64::from(growth_percent),
            nodes: vec![NodeDisk::new(threshold_bytes as u64); nodes],
            max: PersistedMax::default(),
        }
    }

    /// Node `node` holds a snapshot of `bytes` now (saved, installed or recovered).
    pub(crate) fn on_snapshot(&mut self, node: usize, bytes: usize) {
        let largest = &mut self.nodes[node].largest_snapshot_bytes;
        *largest = (*largest).max(bytes as u64);
    }

    /// The largest threshold node `node` may have, worked out from the options and the
    /// snapshots the simulator saw it hold, apart from the replica's own arithmetic.
    fn threshold_allowed(&self, node: usize) -> u64 {
        let grown = self.nodes[node].largest_snapshot_bytes.saturating_mul(self.growth_percent);
        self.threshold_bytes.max(grown / 100)
    }

    /// Starts tracking one more node, at the next position, with an empty disk.
    pub(crate) fn add_node(&mut self) {
        self.nodes.push(NodeDisk::new(self.threshold_bytes));
    }

    /// Node `node` handed persist `id` to its disk, standing at `written_at` when it built it
    /// (`None`: with its snapshot deferred, a snapshot being saved apart or an applied entry
    /// not yet durable, so that the bound does not hold until it is saved).
    pub(crate) fn on_persist(&mut self, node: usize, id: PersistId, written_at: Option<WrittenAt>) {
        self.nodes[node].in_flight.push_back((id, written_at));
    }

    /// Persists up to `landed` became durable, leaving `durable` on the disk.
    pub(crate) fn on_durable(
        &mut self,
        node: usize,
        landed: PersistId,
        durable: &Durable,
    ) -> Result<(), Failed> {
        let disk = &mut self.nodes[node];
        while let Some(&(id, written_at)) = disk.in_flight.front() {
            if id > landed {
                break;
            }
            // A persist written while the snapshot was deferred counts what the disk holds as
            // not yet applied: the snapshot that compacts it is on its way.
            disk.written_at =
                written_at.unwrap_or(WrittenAt { applied: LogIndex(0), ..disk.written_at });
            disk.in_flight.pop_front();
        }
        self.measure(node, durable)
    }

    /// Node `node` crashed, leaving `durable`: its persists in flight are not acknowledged.
    /// Some may have landed in part; what did is measured when the node restarts, against the
    /// applied index of the last persist acknowledged, so entries they wrote count as not yet
    /// applied.
    pub(crate) fn on_crash(&mut self, node: usize, durable: &Durable) -> Result<(), Failed> {
        self.nodes[node].in_flight.clear();
        self.measure(node, durable)
    }

    /// Node `node` restarted from `durable`, which its storage recovered. A `damaged` disk
    /// may have gone back to an older state, whose entries were not applied when written as
    /// far as the bound knows: they count as not yet applied.
    pub(crate) fn on_restart(
        &mut self,
        node: usize,
        durable: &Durable,
        damaged: bool,
    ) -> Result<(), Failed> {
        if damaged {
            self.nodes[node].written_at.applied = durable.snapshot_index();
        }
        if let Some(snapshot) = &durable.snapshot {
            self.on_snapshot(node, snapshot.data.len());
        }
        self.measure(node, durable)
    }

    /// After a step of node `node`, whose log in memory holds `applied_log_bytes` of applied
    /// entries: the same rule holds in memory against its threshold now, `threshold_bytes`
    /// (the replica asks for a snapshot before the step ends), unless the replica deferred its
    /// snapshot (`Replica::snapshot_deferred`). That threshold may not exceed what the options
    /// and the node's snapshots allow.
    pub(crate) fn after_step(
        &self,
        node: usize,
        applied_log_bytes: usize,
        threshold_bytes: usize,
        deferred: bool,
    ) -> Result<(), Failed> {
        let allowed = self.threshold_allowed(node);
        if threshold_bytes as u64 > allowed {
            return Err((
                Check::LogSize,
                format!(
                    "n{}'s snapshot threshold is {threshold_bytes} bytes, more than the {allowed} \
                     its options and largest snapshot allow",
                    node_id(node),
                ),
            ));
        }
        if !deferred && applied_log_bytes >= threshold_bytes {
            return Err((
                Check::LogSize,
                format!(
                    "n{}'s log holds {applied_log_bytes} bytes of applied entries in memory after \
                     a step, its threshold is {threshold_bytes}",
                    node_id(node),
                ),
            ));
        }
        Ok(())
    }

    /// The largest persisted Raft state so far.
    pub(crate) fn max(&self) -> PersistedMax {
        self.max
    }

    /// The largest persisted Raft state so far divided by the configured threshold, in
    /// thousandths, rounded up.
    pub(crate) fn ratio_max_milli(&self) -> u64 {
        (self.max.bytes * 1_000).div_ceil(self.threshold_bytes.max(1))
    }

    fn measure(&mut self, node: usize, durable: &Durable) -> Result<(), Failed> {
        let WrittenAt { applied: applied_when_written, threshold_bytes } =
            self.nodes[node].written_at;
        let (mut applied_bytes, mut unapplied_bytes) = (0, 0);
        for entry in &durable.entries {
            let bytes = entry.size_bytes() as u64;
            if entry.index <= applied_when_written {
                applied_bytes += bytes;
            } else {
                unapplied_bytes += bytes;
            }
        }
        let bytes = HARD_STATE_BYTES + applied_bytes + unapplied_bytes;
        if bytes > self.max.bytes {
            self.max = PersistedMax { bytes, unapplied_bytes, node: node_id(node).0 };
        }
        if applied_bytes >= threshold_bytes {
            return Err((
                Check::LogSize,
                format!(
                    "n{}'s disk holds {bytes} bytes of Raft state, over the bound of {} (hard \
                     state {HARD_STATE_BYTES} + threshold {} + {unapplied_bytes} not yet applied \
                     when written): {applied_bytes} bytes of entries up to {applied_when_written}, \
                     applied when written, were not compacted",
                    node_id(node),
                    HARD_STATE_BYTES + threshold_bytes - 1 + unapplied_bytes,
                    threshold_bytes
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::Term;
    use raftkv_core::raft::Payload;

    fn at(applied: u64) -> Option<WrittenAt> {
        Some(WrittenAt { applied: LogIndex(applied), threshold_bytes: 50 })
    }

    fn durable(indexes: std::ops::RangeInclusive<u64>) -> Durable {
        let entries = indexes
            .map(|index| Entry { index: LogIndex(index), term: Term(1), payload: Payload::Noop })
            .collect();
        Durable { entries, ..Durable::default() }
    }

    #[test]
    fn entries_applied_when_written_must_weigh_less_than_the_threshold() {
        // Noops weigh 24 bytes: a threshold of 50 allows two applied entries on disk.
        let mut size = PersistedSize::new(1, 50, 100);
        size.on_persist(0, PersistId(1), at(0));
        size.on_persist(0, PersistId(2), at(2));
        size.on_durable(0, PersistId(1), &durable(1..=5)).expect("nothing applied when written");
        size.on_durable(0, PersistId(2), &durable(1..=5)).expect("two applied, 48 bytes");
        // The first time the disk held that much, nothing of it was applied when written.
        assert_eq!(
            size.max(),
            PersistedMax { bytes: 16 + 5 * 24, unapplied_bytes: 5 * 24, node: 1 }
        );
        assert_eq!(size.ratio_max_milli(), 2_720);
        size.on_persist(0, PersistId(3), at(3));
        let (check, _) = size.on_durable(0, PersistId(3), &durable(1..=5)).expect_err("72 bytes");
        assert_eq!(check, Check::LogSize);
    }

    #[test]
    fn the_bound_on_disk_is_the_threshold_the_node_had_when_it_wrote() {
        let mut size = PersistedSize::new(1, 50, 100);
        let grown = WrittenAt { applied: LogIndex(3), threshold_bytes: 80 };
        size.on_persist(0, PersistId(1), Some(grown));
        size.on_durable(0, PersistId(1), &durable(1..=5)).expect("72 bytes under 80");
        size.on_persist(0, PersistId(2), Some(WrittenAt { applied: LogIndex(4), ..grown }));
        let (check, _) = size.on_durable(0, PersistId(2), &durable(1..=5)).expect_err("96 bytes");
        assert_eq!(check, Check::LogSize);
    }

    #[test]
    fn a_persist_written_while_the_snapshot_was_deferred_is_not_held_to_the_bound() {
        let mut size = PersistedSize::new(1, 50, 100);
        size.on_persist(0, PersistId(1), None);
        size.on_durable(0, PersistId(1), &durable(1..=5)).expect("a snapshot was on its way");
        size.on_persist(0, PersistId(2), at(5));
        let (check, _) = size.on_durable(0, PersistId(2), &durable(1..=5)).expect_err("120 bytes");
        assert_eq!(check, Check::LogSize, "not compacted once the snapshot could be taken");
    }

    #[test]
    fn a_log_in_memory_holds_less_than_the_threshold_of_applied_entries_after_a_step() {
        let size = PersistedSize::new(1, 50, 100);
        assert!(size.after_step(0, 49, 50, false).is_ok());
        assert_eq!(
            size.after_step(0, 50, 50, false).map_err(|(check, _)| check),
            Err(Check::LogSize)
        );
        assert!(size.after_step(0, 50, 50, true).is_ok(), "a snapshot deferred lets the log grow");
    }

    #[test]
    fn a_threshold_grows_no_further_than_the_options_and_the_largest_snapshot_allow() {
        let mut size = PersistedSize::new(1, 50, 100);
        let refused = size.after_step(0, 10, 80, false).map_err(|(check, _)| check);
        assert_eq!(refused, Err(Check::LogSize), "no snapshot held to grow with");
        size.on_snapshot(0, 80);
        size.on_snapshot(0, 30);
        assert!(size.after_step(0, 50, 80, false).is_ok(), "a threshold grown with the snapshot");
        assert!(size.after_step(0, 10, 81, false).is_err());
        let flat = PersistedSize::new(1, 50, 0);
        assert!(flat.after_step(0, 10, 51, false).is_err(), "growth 0: the threshold alone");
    }

    #[test]
    fn after_a_crash_entries_of_unacknowledged_persists_count_as_not_yet_applied() {
        let mut size = PersistedSize::new(1, 50, 100);
        size.on_persist(0, PersistId(1), at(1));
        size.on_durable(0, PersistId(1), &durable(1..=1)).expect("one applied, 24 bytes");
        // Persist 2, written when 4 entries were applied, may have landed in part.
        size.on_persist(0, PersistId(2), at(4));
        size.on_crash(0, &durable(1..=1)).expect("the last acknowledged persist counts");
        size.on_restart(0, &durable(1..=4), false).expect("entries 2..4 count as not yet applied");
        size.on_persist(0, PersistId(3), at(4));
        let (check, _) = size.on_durable(0, PersistId(3), &durable(1..=4)).expect_err("96 bytes");
        assert_eq!(check, Check::LogSize);
    }
}
