//! Rebuilding the log from the records of the WAL, in order.

use raftkv_core::LogIndex;
use raftkv_core::raft::Entry;

use crate::wal::record::WalRecord;

/// The last index of the log once a record that drops entries from `truncate_from` on and
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
pub(crate) struct LogBuilder {
    snapshot_last: LogIndex,
    pub(crate) entries: Vec<Entry>,
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

    fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot_last, |e| e.index)
    }

    /// Applies one record.
    pub(crate) fn apply(&mut self, record: WalRecord) -> Result<(), String> {
        let WalRecord::Append { truncate_from, entries } = record;
        self.log_last = log_last_after(self.log_last, truncate_from, &entries);
        if let Some(from) = truncate_from {
            self.truncate_from(from);
        }
        for entry in entries {
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
        Ok(())
    }

    fn truncate_from(&mut self, index: LogIndex) {
        let keep = index.0.saturating_sub(self.snapshot_last.0 + 1);
        self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }
}
