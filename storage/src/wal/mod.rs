//! The write-ahead log: the node's log entries in segment files of records.
//!
//! Records are appended to the active segment and made durable together by one `fdatasync`
//! (the caller batches: group commit). A segment that grows past its size limit is closed and
//! a new one started; the oldest segments are removed once a snapshot makes them useless.
//! Replaying all records in order rebuilds the log.

mod active;
mod record;
mod replay;
mod segment;

use std::path::{Path, PathBuf};

use raftkv_core::LogIndex;
use raftkv_core::raft::Entry;

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::wal::active::ActiveSegment;
use crate::wal::replay::LogBuilder;

/// A closed segment.
#[derive(Debug)]
struct Closed {
    path: PathBuf,
    /// The last index of the log once replay has reached the end of this segment.
    log_last: LogIndex,
    bytes: u64,
}

/// The log on disk, on a file system whose open files are `H`.
#[derive(Debug)]
pub(crate) struct Wal<H> {
    dir: PathBuf,
    closed: Vec<Closed>,
    active: ActiveSegment<H>,
    /// The last index of the log the records written so far describe.
    log_last: LogIndex,
    segment_bytes: u64,
    zero_fill_bytes: u64,
    /// Records encoded and not yet written.
    pending: Vec<u8>,
}

/// What replaying the log found.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// The entries after `snapshot_last`, consecutive.
    pub(crate) entries: Vec<Entry>,
    /// A torn tail that was cut off: the file, the offset and why.
    pub(crate) repaired: Option<(PathBuf, u64, String)>,
}

impl<H> Wal<H> {
    /// Opens (or creates) the log in `dir` and replays it. Entries up to `snapshot_last` are
    /// covered by the snapshot and skipped. A torn tail of the last segment is cut off.
    pub(crate) fn open<F: FileSystem<File = H>>(
        fs: &F,
        dir: &Path,
        snapshot_last: LogIndex,
        segment_bytes: u64,
        zero_fill_bytes: u64,
    ) -> Result<(Wal<H>, Replayed), StorageError> {
        directory::create(fs, dir)?;
        let names = fs.list(dir).map_err(StorageError::io("list", dir))?;
        let mut sequences: Vec<u64> =
            names.iter().filter_map(|name| segment::parse_file_name(name)).collect();
        sequences.sort_unstable();
        let mut log = LogBuilder::new(snapshot_last);
        let mut closed = Vec::new();
        let mut repaired = None;
        let mut active = None;
        for (position, &sequence) in sequences.iter().enumerate() {
            let path = dir.join(segment::file_name(sequence));
            let is_last = position + 1 == sequences.len();
            let mut scan = segment::scan(fs, &path, sequence, is_last)?;
            for (offset, record) in std::mem::take(&mut scan.records) {
                log.apply(record).map_err(|reason| StorageError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason,
                })?;
            }
            if is_last {
                if let Some((reason, _)) = &scan.torn {
                    repaired = Some((path.clone(), scan.valid_bytes, reason.clone()));
                }
                active = Some(ActiveSegment::reopen(fs, path, sequence, &scan, zero_fill_bytes)?);
            } else {
                closed.push(Closed { path, log_last: log.log_last(), bytes: scan.valid_bytes });
            }
        }
        let active = match active {
            Some(active) => active,
            None => ActiveSegment::create(fs, dir, 1, zero_fill_bytes)?,
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            closed,
            active,
            log_last: log.log_last(),
            segment_bytes,
            zero_fill_bytes,
            pending: Vec::new(),
        };
        let replayed = Replayed { entries: log.entries, repaired };
        Ok((wal, replayed))
    }

    /// Queues a record: drop entries from `truncate_from` on, then append `entries`.
    pub(crate) fn append(&mut self, truncate_from: Option<LogIndex>, entries: &[Entry]) {
        record::encode_append(truncate_from, entries, &mut self.pending);
        self.log_last = replay::log_last_after(self.log_last, truncate_from, entries);
    }

    /// Writes the queued records and makes them durable with one `fdatasync`; starts a new
    /// segment when the active one is full.
    pub(crate) fn sync<F: FileSystem<File = H>>(&mut self, fs: &F) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.active.write(fs, &self.pending)?;
        self.pending.clear();
        self.active.sync(fs)?;
        if self.active.bytes() >= self.segment_bytes {
            self.rotate(fs)?;
        }
        Ok(())
    }

    /// A snapshot now covers every entry up to `snapshot_last`: closes the active segment if
    /// it holds records, and removes the oldest segments as long as the log, replayed up to the
    /// end of each, holds nothing after `snapshot_last`. Call with nothing pending.
    pub(crate) fn compact<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        snapshot_last: LogIndex,
    ) -> Result<usize, StorageError> {
        debug_assert!(self.pending.is_empty());
        if self.active.bytes() > segment::HEADER_BYTES as u64 {
            self.rotate(fs)?;
        }
        // Only a prefix, oldest first, and only segments after which the log holds nothing
        // beyond the snapshot. A record only ever affects the records before it (a truncation
        // drops earlier entries), so the segments left replay to the same log once what the
        // removed ones described is all covered. A later segment may not go before an older
        // one: its truncation may be what keeps the older one's stale tail out of the log.
        // Every removed segment meets the condition on its own, so a crash that keeps any
        // subset of the removals still leaves a WAL that replays to the same log.
        let covered =
            self.closed.iter().take_while(|segment| segment.log_last <= snapshot_last).count();
        for segment in self.closed.drain(..covered) {
            fs.remove_file(&segment.path).map_err(StorageError::io("remove", &segment.path))?;
        }
        if covered > 0 {
            directory::sync(fs, &self.dir)?;
        }
        Ok(covered)
    }

    /// Bytes of all segments on disk.
    pub(crate) fn bytes(&self) -> u64 {
        self.active.bytes() + self.closed.iter().map(|segment| segment.bytes).sum::<u64>()
    }

    fn rotate<F: FileSystem<File = H>>(&mut self, fs: &F) -> Result<(), StorageError> {
        let sequence = self.active.sequence() + 1;
        let next = ActiveSegment::create(fs, &self.dir, sequence, self.zero_fill_bytes)?;
        let old = std::mem::replace(&mut self.active, next);
        self.closed.push(Closed {
            path: old.path().to_path_buf(),
            log_last: self.log_last,
            bytes: old.bytes(),
        });
        Ok(())
    }
}
