//! Rebuilding the log from the records of the WAL, in order.

use raftkv_core::raft::Entry;
use raftkv_core::{LogIndex, Term};

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

/// Rebuilds the log from records.
#[derive(Debug)]
pub(crate) struct LogBuilder {
    snapshot_last: LogIndex,
    /// The entries after the snapshot, consecutive.
    entries: Vec<Entry>,
    /// The last index of the log the records describe, entries covered by the snapshot
    /// included; the records before the oldest segment left nothing after the snapshot.
    log_last: LogIndex,
}

impl LogBuilder {
    pub(crate) fn new(snapshot_last: LogIndex) -> LogBuilder {
        LogBuilder { snapshot_last, entries: Vec::new(), log_last: LogIndex(0) }
    }

    /// The last index of the log as replayed so far, entries covered by the snapshot included.
    pub(crate) fn log_last(&self) -> LogIndex {
        self.log_last
    }

    /// The last entry kept (after the snapshot), or the snapshot point.
    pub(crate) fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot_last, |e| e.index)
    }

    /// The term of the last entry kept, if any.
    pub(crate) fn last_term(&self) -> Option<Term> {
        self.entries.last().map(|entry| entry.term)
    }

    pub(crate) fn into_entries(self) -> Vec<Entry> {
        self.entries
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
                if entry.index > self.snapshot_last {
                    self.entries.push(entry);
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
                last = last.min(from.prev()).max(self.snapshot_last);
            }
            for entry in &change.entries {
                if entry.index <= self.snapshot_last {
                    last = self.snapshot_last;
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
        let keep = index.0.saturating_sub(self.snapshot_last.0.saturating_add(1));
        self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
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

    fn indexes(log: &LogBuilder) -> Vec<u64> {
        log.entries.iter().map(|entry| entry.index.0).collect()
    }

    #[test]
    fn entries_covered_by_the_snapshot_are_skipped_and_writes_replace_what_follows() {
        let mut log = LogBuilder::new(LogIndex(3));
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
        let mut log = LogBuilder::new(LogIndex(0));
        log.apply(vec![change(None, 1..=5)]).unwrap();
        let gap = vec![change(Some(3), 3..=4), change(None, 7..=8)];
        let error = log.apply(gap).unwrap_err();
        assert!(error.contains("entry 7 follows entry 4"), "{error}");
        assert_eq!(indexes(&log), [1, 2, 3, 4, 5]);
        assert_eq!(log.log_last(), LogIndex(5));
    }
}
