//! The write-ahead log: the node's log entries in segment files of records.
//!
//! Records are appended to the active segment and made durable together by one `fdatasync`
//! (the caller batches: group commit). A segment that grows past its size limit is closed and
//! a new one started; a closed segment is removed once a snapshot covers every entry in it.
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
    /// The highest entry index written to it (0 if none).
    last_index: LogIndex,
    bytes: u64,
}

/// The log on disk, on a file system whose open files are `H`.
#[derive(Debug)]
pub(crate) struct Wal<H> {
    dir: PathBuf,
    closed: Vec<Closed>,
    active: ActiveSegment<H>,
    /// The highest entry index written to the active segment (0 if none).
    active_last_index: LogIndex,
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
            let mut last_index = LogIndex(0);
            for (offset, record) in std::mem::take(&mut scan.records) {
                last_index = last_index.max(log.apply(record).map_err(|reason| {
                    StorageError::Corrupt { path: path.clone(), offset, reason }
                })?);
            }
            if is_last {
                if let Some((reason, _)) = &scan.torn {
                    repaired = Some((path.clone(), scan.valid_bytes, reason.clone()));
                }
                let segment = ActiveSegment::reopen(fs, path, sequence, &scan, zero_fill_bytes)?;
                active = Some((segment, last_index));
            } else {
                closed.push(Closed { path, last_index, bytes: scan.valid_bytes });
            }
        }
        let (active, active_last_index) = match active {
            Some(active) => active,
            None => (ActiveSegment::create(fs, dir, 1, zero_fill_bytes)?, LogIndex(0)),
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            closed,
            active,
            active_last_index,
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
        if let Some(last) = entries.last() {
            self.active_last_index = self.active_last_index.max(last.index);
        }
    }

    /// Whether records are queued and not yet durable.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
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

    /// A snapshot now covers every entry up to `snapshot_last`: closes the active segment and
    /// removes every segment whose entries are all covered. Call with nothing pending.
    pub(crate) fn compact<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        snapshot_last: LogIndex,
    ) -> Result<usize, StorageError> {
        debug_assert!(self.pending.is_empty());
        if self.active.bytes() > 0 {
            self.rotate(fs)?;
        }
        let (covered, kept): (Vec<Closed>, Vec<Closed>) = std::mem::take(&mut self.closed)
            .into_iter()
            .partition(|segment| segment.last_index <= snapshot_last);
        self.closed = kept;
        for segment in &covered {
            fs.remove_file(&segment.path).map_err(StorageError::io("remove", &segment.path))?;
        }
        if !covered.is_empty() {
            directory::sync(fs, &self.dir)?;
        }
        Ok(covered.len())
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
            last_index: std::mem::replace(&mut self.active_last_index, LogIndex(0)),
            bytes: old.bytes(),
        });
        Ok(())
    }
}
