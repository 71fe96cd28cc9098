//! Rebuilding the log from the records of the WAL, in order.

use std::collections::VecDeque;

use raftkv_core::raft::{EntriesOnDisk, Entry};
use raftkv_core::{LogId, LogIndex, Term};

use crate::wal::record::LogChange;

/// The last index of the log once a change that drops entries from `truncate_from` on and
/// then appends `entries` has been applied to a log ending at `last`.
pub(crate) fn log_last_after(
    last: LogIndex,
    truncate_from: Option<LogIndex>,
    entries: &[Entry],
) -> LogIndex {
    match (entries.last(), truncate_from) {
        (Some(entry), _) => entry.index,
        (None, Some(from)) => last.min(from.prev()),
        (None, None) => last,
    }
}

/// Rebuilds the log from records, holding in memory only its latest entries, up to a budget
/// of bytes: the earlier ones are recorded by their terms, sizes and memberships only
/// (`EntriesOnDisk`), for the node to read back when it needs them.
#[derive(Debug)]
pub(crate) struct LogBuilder {
    snapshot_last: LogId,
    /// The first entries after the snapshot, left on disk.
    on_disk: EntriesOnDisk,
    /// The entries after those, consecutive.
    held: VecDeque<Entry>,
    /// Bytes of `held` (`Entry::size_bytes`).
    held_bytes: usize,
    /// The most bytes `held` may weigh (`None`: no limit). Entries whose term goes back (the
    /// log was cut, see `recovery`) stay held whatever they weigh, for recovery to drop.
    budget: Option<usize>,
    /// The last index of the log the records describe, entries covered by the snapshot
    /// included; the records before the oldest segment left nothing after the snapshot.
    log_last: LogIndex,
}

impl LogBuilder {
    pub(crate) fn new(snapshot_last: LogId, budget: Option<usize>) -> LogBuilder {
        LogBuilder {
            snapshot_last,
            on_disk: EntriesOnDisk::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            budget,
            log_last: LogIndex(0),
        }
    }

    /// The last index of the log as replayed so far, entries covered by the snapshot included.
    pub(crate) fn log_last(&self) -> LogIndex {
        self.log_last
    }

    /// The last entry kept (after the snapshot), or the snapshot point.
    pub(crate) fn last_index(&self) -> LogIndex {
        self.last_kept().map_or(self.snapshot_last.index, |id| id.index)
    }

    /// The term of the last entry kept, if any.
    pub(crate) fn last_term(&self) -> Option<Term> {
        self.last_kept().map(|id| id.term)
    }

    fn last_kept(&self) -> Option<LogId> {
        self.held.back().map(Entry::id).or(self.on_disk.last_id())
    }

    /// The entries left on disk, and those held after them.
    pub(crate) fn into_log(self) -> (EntriesOnDisk, Vec<Entry>) {
        (self.on_disk, self.held.into())
    }

    /// Applies the changes of one record, all or none: fails, changing nothing, if they would
    /// leave a gap after the snapshot.
    pub(crate) fn apply(&mut self, changes: Vec<LogChange>) -> Result<(), String> {
        self.check(&changes)?;
        for change in changes {
            self.log_last = log_last_after(self.log_last, change.truncate_from, &change.entries);
            if let Some(from) = change.truncate_from {
                self.truncate_from(from);
            }
            for entry in change.entries {
                self.truncate_from(entry.index);
                if entry.index > self.snapshot_last.index {
                    self.push(entry);
                }
            }
        }
        Ok(())
    }

    /// What [`apply`](Self::apply) would do to the last index, without doing it.
    fn check(&self, changes: &[LogChange]) -> Result<(), String> {
        let mut last = self.last_index();
        for change in changes {
            if let Some(from) = change.truncate_from {
                last = last.min(from.prev()).max(self.snapshot_last.index);
            }
            for entry in &change.entries {
                if entry.index <= self.snapshot_last.index {
                    last = self.snapshot_last.index;
                    continue;
                }
                if entry.index.0 > last.0.saturating_add(1) {
                    return Err(format!(
                        "entry {} follows entry {last}: entries in between are missing",
                        entry.index
                    ));
                }
                last = entry.index;
            }
        }
        Ok(())
    }

    /// Drops the entries from `index` on (every entry after the snapshot if `index` is at or
    /// before it).
    fn truncate_from(&mut self, index: LogIndex) {
        while self.held.back().is_some_and(|entry| entry.index >= index) {
            let entry = self.held.pop_back().expect("back exists");
            self.held_bytes -= entry.size_bytes();
        }
        self.on_disk.truncate_from(index.max(self.snapshot_last.index.next()));
    }

    /// Appends `entry`, which follows the last one kept, and leaves the oldest held entries
    /// on disk while the held ones weigh more than the budget.
    fn push(&mut self, entry: Entry) {
        self.held_bytes += entry.size_bytes();
        self.held.push_back(entry);
        let Some(budget) = self.budget else { return };
        while self.held_bytes > budget {
            let last_term = self.on_disk.last_id().map_or(self.snapshot_last.term, |id| id.term);
            let Some(front) = self.held.front().filter(|front| front.term >= last_term) else {
                break;
            };
            self.on_disk.push(front);
            self.held_bytes -= front.size_bytes();
            self.held.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::Term;
    use raftkv_core::raft::Payload;

    fn change(truncate_from: Option<u64>, range: std::ops::RangeInclusive<u64>) -> LogChange {
        let entries = range
            .map(|index| Entry { index: LogIndex(index), term: Term(1), payload: Payload::Noop })
            .collect();
        LogChange { truncate_from: truncate_from.map(LogIndex), entries }
    }

    /// The indexes of the log, left on disk or held.
    fn indexes(log: &LogBuilder) -> Vec<u64> {
        let on_disk = log
            .on_disk
            .first_index()
            .map_or(0..0, |first| first.0..first.0 + log.on_disk.len() as u64);
        on_disk.chain(log.held.iter().map(|entry| entry.index.0)).collect()
    }

    #[test]
    fn entries_covered_by_the_snapshot_are_skipped_and_writes_replace_what_follows() {
        let mut log = LogBuilder::new(LogId::new(LogIndex(3), Term(1)), None);
        log.apply(vec![change(None, 1..=8)]).unwrap();
        assert_eq!(indexes(&log), [4, 5, 6, 7, 8]);
        log.apply(vec![change(Some(7), 6..=6)]).unwrap();
        assert_eq!(indexes(&log), [4, 5, 6]);
        assert_eq!(log.log_last(), LogIndex(6));
        // A write at or before the snapshot point drops everything after it.
        log.apply(vec![change(None, 2..=3)]).unwrap();
        assert_eq!(indexes(&log), Vec::<u64>::new());
        assert_eq!(log.log_last(), LogIndex(3));
        log.apply(vec![LogChange { truncate_from: Some(LogIndex(1)), entries: Vec::new() }])
            .unwrap();
        assert_eq!(log.log_last(), LogIndex(0));
    }

    #[test]
    fn a_record_that_leaves_a_gap_changes_nothing() {
        let mut log = LogBuilder::new(LogId::ZERO, None);
        log.apply(vec![change(None, 1..=5)]).unwrap();
        let gap = vec![change(Some(3), 3..=4), change(None, 7..=8)];
        let error = log.apply(gap).unwrap_err();
        assert!(error.contains("entry 7 follows entry 4"), "{error}");
        assert_eq!(indexes(&log), [1, 2, 3, 4, 5]);
        assert_eq!(log.log_last(), LogIndex(5));
    }

    #[test]
    fn only_the_latest_entries_within_the_budget_stay_held_and_truncations_reach_the_others() {
        // Noops weigh 24 bytes: two fit.
        let mut log = LogBuilder::new(LogId::ZERO, Some(48));
        log.apply(vec![change(None, 1..=5)]).unwrap();
        assert_eq!(indexes(&log), [1, 2, 3, 4, 5]);
        assert_eq!((log.on_disk.len(), log.held.len(), log.held_bytes), (3, 2, 48));
        log.apply(vec![change(Some(3), 3..=3)]).unwrap();
        assert_eq!(indexes(&log), [1, 2, 3]);
        assert_eq!((log.on_disk.len(), log.held.len()), (2, 1), "the one rewritten is held");
        assert_eq!((log.last_index(), log.last_term()), (LogIndex(3), Some(Term(1))));
        let (on_disk, held) = log.into_log();
        assert_eq!(on_disk.last_id(), Some(LogId::new(LogIndex(2), Term(1))));
        assert_eq!(held.len(), 1);
    }

    #[test]
    fn entries_whose_term_goes_back_stay_held_whatever_they_weigh() {
        let at_term = |range: std::ops::RangeInclusive<u64>, term| LogChange {
            truncate_from: None,
            entries: range
                .map(|index| Entry {
                    index: LogIndex(index),
                    term: Term(term),
                    payload: Payload::Noop,
                })
                .collect(),
        };
        let mut log = LogBuilder::new(LogId::new(LogIndex(2), Term(3)), Some(0));
        log.apply(vec![at_term(3..=4, 2)]).unwrap();
        assert_eq!((log.on_disk.len(), log.held.len()), (0, 2), "older than the snapshot");
        let mut log = LogBuilder::new(LogId::ZERO, Some(0));
        log.apply(vec![at_term(1..=2, 2), at_term(3..=4, 1)]).unwrap();
        assert_eq!((log.on_disk.len(), log.held.len()), (2, 2));
    }
}
