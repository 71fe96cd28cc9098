//! The write-ahead log: the node's log entries in segment files of records.
//!
//! Records are appended to the active segment and made durable together by one `fdatasync`
//! (the caller batches: group commit). A segment that grows past its size limit is closed and
//! a new one started; a closed segment is removed once a snapshot covers every entry in it.
//! Replaying all records in order rebuilds the log.

pub(crate) mod record;
pub(crate) mod segment;

use std::fs;
use std::path::{Path, PathBuf};

use raftkv_core::LogIndex;
use raftkv_core::raft::Entry;

use crate::storage::error::StorageError;
use crate::wal::record::WalRecord;
use crate::wal::segment::ActiveSegment;

/// Default size at which a segment is closed and the next one started.
pub(crate) const SEGMENT_BYTES: u64 = 64 << 20;

/// A closed segment.
#[derive(Debug)]
struct Closed {
    path: PathBuf,
    /// The highest entry index written to it (0 if none).
    last_index: LogIndex,
    bytes: u64,
}

/// The log on disk.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    closed: Vec<Closed>,
    active: ActiveSegment,
    /// The highest entry index written to the active segment (0 if none).
    active_last_index: LogIndex,
    segment_bytes: u64,
    /// Records encoded and not yet written.
    pending: Vec<u8>,
}

/// What replaying the log found.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// The entries after `snapshot_last`, consecutive.
    pub(crate) entries: Vec<Entry>,
    /// A torn tail that was cut off: the file and why.
    pub(crate) repaired: Option<(PathBuf, u64, String)>,
}

impl Wal {
    /// Opens (or creates) the log in `dir` and replays it. Entries up to `snapshot_last` are
    /// covered by the snapshot and skipped. A torn tail of the last segment is cut off.
    pub(crate) fn open(
        dir: &Path,
        snapshot_last: LogIndex,
        segment_bytes: u64,
    ) -> Result<(Wal, Replayed), StorageError> {
        crate::storage::atomic::create_dir(dir)?;
        let mut sequences = Vec::new();
        for item in fs::read_dir(dir).map_err(StorageError::io("list", dir))? {
            let item = item.map_err(StorageError::io("list", dir))?;
            if let Some(sequence) = item.file_name().to_str().and_then(segment::parse_file_name) {
                sequences.push(sequence);
            }
        }
        sequences.sort_unstable();
        let mut log = LogBuilder::new(snapshot_last);
        let mut closed = Vec::new();
        let mut repaired = None;
        let mut active = None;
        for (position, &sequence) in sequences.iter().enumerate() {
            let path = dir.join(segment::file_name(sequence));
            let is_last = position + 1 == sequences.len();
            let mut scan = segment::scan(&path, sequence, is_last)?;
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
                let segment = ActiveSegment::reopen(path, sequence, &scan, segment_bytes)?;
                active = Some((segment, last_index));
            } else {
                closed.push(Closed { path, last_index, bytes: scan.valid_bytes });
            }
        }
        let (active, active_last_index) = match active {
            Some(active) => active,
            None => (ActiveSegment::create(dir, 1, segment_bytes)?, LogIndex(0)),
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            closed,
            active,
            active_last_index,
            segment_bytes,
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
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.active.write(&self.pending)?;
        self.pending.clear();
        self.active.sync()?;
        if self.active.bytes() >= self.segment_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// A snapshot now covers every entry up to `snapshot_last`: closes the active segment and
    /// removes every segment whose entries are all covered. Call with nothing pending.
    pub(crate) fn compact(&mut self, snapshot_last: LogIndex) -> Result<usize, StorageError> {
        debug_assert!(self.pending.is_empty());
        if self.active.bytes() > 0 {
            self.rotate()?;
        }
        let (covered, kept): (Vec<Closed>, Vec<Closed>) = std::mem::take(&mut self.closed)
            .into_iter()
            .partition(|segment| segment.last_index <= snapshot_last);
        self.closed = kept;
        for segment in &covered {
            fs::remove_file(&segment.path).map_err(StorageError::io("remove", &segment.path))?;
        }
        if !covered.is_empty() {
            crate::storage::atomic::sync_dir(&self.dir)?;
        }
        Ok(covered.len())
    }

    /// Bytes of all segments on disk.
    pub(crate) fn bytes(&self) -> u64 {
        self.active.bytes() + self.closed.iter().map(|segment| segment.bytes).sum::<u64>()
    }

    fn rotate(&mut self) -> Result<(), StorageError> {
        let next =
            ActiveSegment::create(&self.dir, self.active.sequence() + 1, self.segment_bytes)?;
        let old = std::mem::replace(&mut self.active, next);
        self.closed.push(Closed {
            path: old.path().to_path_buf(),
            last_index: std::mem::replace(&mut self.active_last_index, LogIndex(0)),
            bytes: old.bytes(),
        });
        Ok(())
    }
}

/// Rebuilds the log from records.
struct LogBuilder {
    snapshot_last: LogIndex,
    entries: Vec<Entry>,
}

impl LogBuilder {
    fn new(snapshot_last: LogIndex) -> LogBuilder {
        LogBuilder { snapshot_last, entries: Vec::new() }
    }

    fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot_last, |e| e.index)
    }

    /// Applies one record; returns the highest entry index it wrote.
    fn apply(&mut self, record: WalRecord) -> Result<LogIndex, String> {
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
