//! Reading entries back from the log by index: a leader that keeps only recent entries in
//! memory sends older ones to a follower from here.
//!
//! The log is a sequence of records, each truncating and appending, so the entry at an index
//! is the one the last record that wrote it wrote. Replay notes checkpoints every
//! [`CHECKPOINT_BYTES`] of records (and at the first record of each segment): where a record
//! starts and how far the log reached just before it. Entries asked for are committed, and a
//! committed entry, once written for the last time, stays in the log: the log never again ends
//! before it. So the last checkpoint at which the log ended before the first index asked for
//! lies before every entry asked for was last written, and reading on from there, applying
//! each record's truncations and appends to the range, finds them; the read stops as soon as
//! the range is whole and its last entry has the term expected, which by the log matching
//! property makes it the log's own range.

use std::collections::VecDeque;
use std::path::Path;

use raftkv_core::raft::Entry;
use raftkv_core::{LogId, LogIndex};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::wal::record::{self, Header, LogChange};

/// Bytes of records between two checkpoints, at most (and what a read takes at a time).
pub(crate) const CHECKPOINT_BYTES: u64 = 64 << 10;

/// A record boundary, and where the log ended just before that record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The segment.
    pub(crate) sequence: u64,
    /// Where the record starts in it.
    pub(crate) offset: u64,
    /// The last index of the log before the record.
    pub(crate) log_last: LogIndex,
}

/// The checkpoints of the log's segments, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints {
    points: VecDeque<Checkpoint>,
}

impl Checkpoints {
    /// A record starts at `offset` of segment `sequence`, where the log ends at `log_last`:
    /// noted if it is the segment's first record noted, or far enough from the last one.
    pub(crate) fn at_record(&mut self, sequence: u64, offset: u64, log_last: LogIndex) {
        let due = self.points.back().is_none_or(|last| {
            last.sequence != sequence || offset.saturating_sub(last.offset) >= CHECKPOINT_BYTES
        });
        if due {
            self.points.push_back(Checkpoint { sequence, offset, log_last });
        }
    }

    /// Forgets the checkpoints of segments before `sequence` (removed from the log).
    pub(crate) fn forget_before(&mut self, sequence: u64) {
        while self.points.front().is_some_and(|point| point.sequence < sequence) {
            self.points.pop_front();
        }
    }

    /// Where to start reading for entries from `first` on: the last checkpoint where the log
    /// ended before `first`. `None` if there is none: the log no longer holds them.
    pub(crate) fn start_for(&self, first: LogIndex) -> Option<Checkpoint> {
        let before = self.points.partition_point(|point| point.log_last < first);
        before.checked_sub(1).map(|point| self.points[point])
    }
}

/// The range `first..=last.index` as the records read so far leave it.
#[derive(Debug)]
pub(crate) struct Range {
    first: LogIndex,
    last: LogId,
    entries: Vec<Entry>,
}

impl Range {
    pub(crate) fn new(first: LogIndex, last: LogId) -> Range {
        Range { first, last, entries: Vec::new() }
    }

    /// Applies the changes of one record.
    pub(crate) fn apply(&mut self, changes: Vec<LogChange>) {
        for change in changes {
            if let Some(from) = change.truncate_from {
                self.truncate_from(from);
            }
            for entry in change.entries {
                self.truncate_from(entry.index);
                let next = self.first.plus(self.entries.len() as u64);
                if entry.index == next && entry.index <= self.last.index {
                    self.entries.push(entry);
                }
            }
        }
    }

    fn truncate_from(&mut self, index: LogIndex) {
        let keep = index.0.saturating_sub(self.first.0);
        self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// The entries, once the range is whole and ends with the entry expected.
    pub(crate) fn take_if_whole(&mut self) -> Option<Vec<Entry>> {
        let whole = self.entries.last().is_some_and(|entry| entry.id() == self.last);
        whole.then(|| std::mem::take(&mut self.entries))
    }
}

/// Reads the records of one segment in order, from a record boundary, a buffer at a time,
/// checking each record's checksums.
pub(crate) struct RecordReader<'a, F: FileSystem> {
    fs: &'a F,
    file: F::File,
    path: &'a Path,
    /// Where the next record starts.
    offset: u64,
    /// Where the segment's records end.
    end: u64,
    buffer: Vec<u8>,
    /// Where `buffer` starts in the file.
    buffer_at: u64,
}

impl<'a, F: FileSystem> RecordReader<'a, F> {
    /// Reads from `offset` of the segment at `path` up to `end`; `None` if it is gone.
    pub(crate) fn open(
        fs: &'a F,
        path: &'a Path,
        offset: u64,
        end: u64,
    ) -> Result<Option<RecordReader<'a, F>>, StorageError> {
        let file = fs.open_for_reading(path).map_err(StorageError::io("open", path))?;
        Ok(file.map(|file| RecordReader {
            fs,
            file,
            path,
            offset,
            end,
            buffer: Vec::new(),
            buffer_at: offset,
        }))
    }

    /// The changes of the next record, `None` at the end of the segment's records.
    pub(crate) fn next_record(&mut self) -> Result<Option<Vec<LogChange>>, StorageError> {
        let at = self.offset;
        if at >= self.end {
            return Ok(None);
        }
        let header = self.bytes(at, record::HEADER_BYTES)?;
        let header: &[u8; record::HEADER_BYTES] = header.try_into().expect("a whole header");
        let Header::Intact { length, body_crc } = record::parse_header(header) else {
            return Err(self.corrupt(at, "a record header fails its checksum"));
        };
        let body_at = at + record::HEADER_BYTES as u64;
        let body = self.bytes(body_at, length)?;
        if !record::body_intact(body, body_crc) {
            return Err(self.corrupt(at, "a record body fails its checksum"));
        }
        let changes = record::decode(body, at).map_err(|reason| self.corrupt(at, &reason))?;
        self.offset = body_at + length as u64;
        Ok(Some(changes))
    }

    /// The `length` bytes at `offset`, read into the buffer if it does not hold them.
    fn bytes(&mut self, offset: u64, length: usize) -> Result<&[u8], StorageError> {
        let wanted_end = offset.checked_add(length as u64).filter(|&end| end <= self.end);
        let Some(wanted_end) = wanted_end else {
            return Err(self.corrupt(offset, "a record runs past the end of the records"));
        };
        let buffer_end = self.buffer_at + self.buffer.len() as u64;
        if offset < self.buffer_at || wanted_end > buffer_end {
            let read = (length as u64).max(CHECKPOINT_BYTES).min(self.end - offset);
            let read = usize::try_from(read).expect("no more than a record or a checkpoint span");
            self.buffer = (self.fs.read_at(&self.file, offset, read))
                .map_err(StorageError::io("read", self.path))?;
            self.buffer_at = offset;
        }
        let start = usize::try_from(offset - self.buffer_at).expect("within the buffer");
        Ok(&self.buffer[start..start + length])
    }

    fn corrupt(&self, offset: u64, reason: &str) -> StorageError {
        StorageError::Corrupt { path: self.path.to_path_buf(), offset, reason: reason.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::Term;
    use raftkv_core::raft::Payload;

    use super::*;

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        let entry =
            |index| Entry { index: LogIndex(index), term: Term(term), payload: Payload::Noop };
        range.map(entry).collect()
    }

    #[test]
    fn the_start_is_the_last_checkpoint_before_the_range() {
        let mut checkpoints = Checkpoints::default();
        checkpoints.at_record(1, 20, LogIndex(0));
        checkpoints.at_record(1, 100, LogIndex(5));
        checkpoints.at_record(1, 20 + CHECKPOINT_BYTES, LogIndex(9));
        checkpoints.at_record(2, 20, LogIndex(3)); // After a truncation.
        checkpoints.at_record(2, 40, LogIndex(12));
        assert_eq!(checkpoints.start_for(LogIndex(9)).map(|c| c.offset), Some(20));
        assert_eq!(checkpoints.start_for(LogIndex(10)).map(|c| c.sequence), Some(2));
        checkpoints.forget_before(2);
        assert_eq!(checkpoints.start_for(LogIndex(3)), None, "written before the segments kept");
    }

    #[test]
    fn a_range_keeps_what_the_last_writes_left_and_is_whole_only_with_the_last_term() {
        let mut range = Range::new(LogIndex(3), LogId::new(LogIndex(5), Term(2)));
        let change = |truncate_from: Option<u64>, entries| LogChange {
            truncate_from: truncate_from.map(LogIndex),
            entries,
        };
        range.apply(vec![change(None, entries(1..=5, 1))]);
        assert_eq!(range.take_if_whole(), None, "a stale term at the end");
        range.apply(vec![change(Some(4), Vec::new()), change(None, entries(4..=6, 2))]);
        let whole = range.take_if_whole().expect("whole");
        let ids: Vec<String> = whole.iter().map(|entry| entry.id().to_string()).collect();
        assert_eq!(ids, ["3/1", "4/2", "5/2"]);
    }
}
