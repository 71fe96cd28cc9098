//! Rebuilding the log from the records of the WAL, in order.

use raftkv_core::LogIndex;
use raftkv_core::raft::Entry;

use crate::wal::record::WalRecord;

/// Rebuilds the log from records.
pub(crate) struct LogBuilder {
    snapshot_last: LogIndex,
    pub(crate) entries: Vec<Entry>,
}

impl LogBuilder {
    pub(crate) fn new(snapshot_last: LogIndex) -> LogBuilder {
        LogBuilder { snapshot_last, entries: Vec::new() }
    }

    fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot_last, |e| e.index)
    }

    /// Applies one record; returns the highest entry index it wrote.
    pub(crate) fn apply(&mut self, record: WalRecord) -> Result<LogIndex, String> {
        let WalRecord::Append { truncate_from, entries } = record;
        if let Some(from) = truncate_from {
            self.truncate_from(from);
        }
        let mut highest = LogIndex(0);
        for entry in entries {
            highest = highest.max(entry.index);
            if entry.index <= self.snapshot_last {
                continue;
            }
            self.truncate_from(entry.index);
            let expected = self.last_index().next();
            if entry.index != expected {
                return Err(format!(
                    "entry {} follows entry {}: entries in between are missing",
                    entry.index,
                    self.last_index()
                ));
            }
            self.entries.push(entry);
        }
        Ok(highest)
    }

    fn truncate_from(&mut self, index: LogIndex) {
        let keep = index.0.saturating_sub(self.snapshot_last.0 + 1);
        self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }
}
