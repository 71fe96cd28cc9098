//! The write-ahead log: the node's log entries in segment files of records.
//!
//! Each batch of persists becomes one record, written after the last one and made durable by
//! one `fdatasync` (group commit). A segment that grows past its size limit is closed and a
//! new one started; the oldest segments are removed once a snapshot makes them useless.
//! Replaying all records in order rebuilds the log.
//!
//! Opening the log tells a torn write at its very end (a crash during an append, never
//! acknowledged), which is cut off, from damage anywhere (see [`scan`]), at which the log is
//! cut: everything from the first damaged record on is zeroed and every later segment removed,
//! durably, before anything new is written, so that no later replay can see it again.

mod active;
mod obsolete;
mod prepare;
mod read_back;
mod record;
mod replay;
mod scan;
mod segment;

use std::io;
use std::path::{Path, PathBuf};

use raftkv_core::raft::{EntriesOnDisk, Entry};
use raftkv_core::{LogId, LogIndex, Term};

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::report::{Cut, Dropped};
use crate::wal::active::ActiveSegment;
use crate::wal::read_back::{Checkpoints, Range, RecordReader};
use crate::wal::replay::LogBuilder;
use crate::wal::scan::Ending;
use crate::wal::segment::HeaderCheck;

pub use crate::wal::obsolete::ObsoleteSegments;
pub use crate::wal::prepare::SegmentPreparer;
pub(crate) use crate::wal::record::LogChangeRef;

/// A closed segment.
#[derive(Debug)]
struct Closed {
    /// Its sequence number, which names its file.
    sequence: u64,
    /// The last index of the log once replay has reached the end of this segment.
    log_last: LogIndex,
    /// Where its records end.
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
    zero_fill_bytes: usize,
    /// Where the active segment's zeros ended when the writer last looked for a prepared
    /// segment to leave it for: it looks once per zero-fill.
    looked_for_prepared_at: u64,
    /// Where to start reading entries back (see [`read_entries`](Self::read_entries)).
    checkpoints: Checkpoints,
}

/// What replaying the log found.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// The first entries after the snapshot, left on disk (beyond the budget held).
    pub(crate) on_disk: EntriesOnDisk,
    /// The entries after those, consecutive.
    pub(crate) entries: Vec<Entry>,
    /// A torn write at the end of the log, cut off.
    pub(crate) torn_tail: Option<Cut>,
    /// Damage, where the log was cut.
    pub(crate) damage: Option<Cut>,
}

/// How one segment's records ended.
struct SegmentEnd {
    /// Where the records that count end.
    end: u64,
    ending: Ending,
    /// Where the bytes that are not zeros end.
    data_end: u64,
    /// The length of the file.
    file_bytes: u64,
    /// The file holds nothing but zeros.
    missing_header: bool,
}

impl<H> Wal<H> {
    /// Opens (or creates) the log in `dir` and replays it. Entries up to `snapshot_last` are
    /// covered by the snapshot and skipped; of those after it, only the latest ones up to
    /// `held_bytes` (if set) are held, the others left on disk. A torn tail is cut off; damage cuts the log, after
    /// `before_cut`, given the term of the last entry kept, has recorded durably that the node
    /// is damaged (so that a crash during or after the cut, which leaves nothing damaged to
    /// find, cannot forget it).
    pub(crate) fn open<F: FileSystem<File = H>>(
        fs: &F,
        dir: &Path,
        snapshot_last: LogId,
        held_bytes: Option<usize>,
        segment_bytes: u64,
        zero_fill_bytes: usize,
        before_cut: &mut dyn FnMut(Option<Term>) -> Result<(), StorageError>,
    ) -> Result<(Wal<H>, Replayed), StorageError> {
        directory::create(fs, dir)?;
        prepare::remove_all(fs, dir)?;
        let sequences = sequences(fs, dir)?;
        let mut log = LogBuilder::new(snapshot_last, held_bytes);
        let mut checkpoints = Checkpoints::default();
        let mut closed = Vec::new();
        let mut active = None;
        let (mut torn_tail, mut damage) = (None, None);
        for (position, &sequence) in sequences.iter().enumerate() {
            let path = dir.join(segment::file_name(sequence));
            let is_last = position + 1 == sequences.len();
            let bytes =
                fs.read(&path).map_err(StorageError::io("read", &path))?.unwrap_or_default();
            let replayed = replay_segment(&bytes, sequence, is_last, &mut log, &mut checkpoints);
            let found = replayed.map_err(|reason| StorageError::Refused {
                reason: format!("{}: {reason}; refusing to start", path.display()),
            })?;
            let SegmentEnd { end, ending, data_end, file_bytes, missing_header } = found;
            let reopen = |path: PathBuf, missing_header| {
                let fill = zero_fill_bytes;
                ActiveSegment::reopen(fs, path, sequence, end, file_bytes, missing_header, fill)
            };
            let reason = match ending {
                Ending::Clean if !is_last => {
                    closed.push(Closed { sequence, log_last: log.log_last(), bytes: end });
                    continue;
                }
                Ending::Clean => {
                    active = Some(reopen(path, missing_header)?);
                    break;
                }
                Ending::Torn(reason) => {
                    let mut reopened = reopen(path.clone(), false)?;
                    reopened.clear_to(fs, data_end)?;
                    let dropped = Dropped::TornWrite { bytes: data_end.saturating_sub(end) };
                    torn_tail = Some(Cut { path, offset: end, reason, dropped });
                    active = Some(reopened);
                    break;
                }
                Ending::Damaged(reason) => reason,
            };
            // Damage: the log ends before it, for good. Later segments go first, so that a
            // crash before the rest is done finds the same damage again.
            before_cut(log.last_term())?;
            let whole_segment = end < segment::HEADER_BYTES as u64;
            let removed_from = if whole_segment { position } else { position + 1 };
            remove_segments(fs, dir, &sequences[removed_from..])?;
            if !whole_segment {
                let mut reopened = reopen(path.clone(), false)?;
                reopened.clear_to(fs, data_end)?;
                active = Some(reopened);
            }
            let dropped = Dropped::LogAfter { kept_last: log.last_index() };
            damage = Some(Cut { path, offset: end, reason, dropped });
            break;
        }
        let active = match active {
            Some(active) => active,
            None => {
                ActiveSegment::create(fs, dir, sequence_after(dir, &sequences)?, zero_fill_bytes)?
            }
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            closed,
            active,
            log_last: log.log_last(),
            segment_bytes,
            zero_fill_bytes,
            looked_for_prepared_at: 0,
            checkpoints,
        };
        let (on_disk, entries) = log.into_log();
        let replayed = Replayed { on_disk, entries, torn_tail, damage };
        Ok((wal, replayed))
    }

    /// Appends one record holding `changes` and makes it durable with one `fdatasync`; starts a
    /// new segment when the active one is full.
    pub(crate) fn append<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        changes: &[LogChangeRef<'_>],
    ) -> Result<(), StorageError> {
        let record =
            record::encode(changes, self.active.end()).ok_or_else(|| StorageError::Refused {
                reason: "a batch of persists of 4 GiB or more cannot be written".to_string(),
            })?;
        self.checkpoints.at_record(self.active.sequence(), self.active.end(), self.log_last);
        self.active.write(fs, &record)?;
        self.active.sync(fs)?;
        for change in changes {
            self.log_last =
                replay::log_last_after(self.log_last, change.truncate_from, change.entries);
        }
        if self.active.end() >= self.segment_bytes {
            self.rotate(fs)?;
        } else if self.active.zero_fill_near()
            && self.looked_for_prepared_at != self.active.zeroed_end()
        {
            // A segment that grows by zero-fills (the first of a new log, or one reopened at a
            // start) makes the sync after each zero-fill commit the file's new size: switch to
            // a prepared segment, if one is ready, rather than grow this one.
            self.looked_for_prepared_at = self.active.zeroed_end();
            self.rotate_to_prepared(fs)?;
        }
        Ok(())
    }

    /// A snapshot now covers every entry up to `snapshot_last`: closes the active segment if
    /// it is a quarter full, and removes the oldest segments as long as the log, replayed up to
    /// the end of each, holds nothing after `snapshot_last`.
    pub(crate) fn compact<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        snapshot_last: LogIndex,
    ) -> Result<usize, StorageError> {
        let covered = self.take_covered(fs, snapshot_last)?;
        remove_files(fs, &self.dir, &covered)?;
        Ok(covered.len())
    }

    /// What [`compact`](Self::compact) does, but for removing the segments: the caller
    /// removes them when and where it likes.
    pub(crate) fn compact_apart<F: FileSystem<File = H> + Clone>(
        &mut self,
        fs: &F,
        snapshot_last: LogIndex,
    ) -> Result<ObsoleteSegments<F>, StorageError> {
        let paths = self.take_covered(fs, snapshot_last)?;
        Ok(ObsoleteSegments::new(fs.clone(), self.dir.clone(), paths))
    }

    /// Closes the active segment if it is a quarter full and takes the segments that a
    /// snapshot up to `snapshot_last` covers out of the log (see `compact`); returns their
    /// paths, oldest first, for the caller to remove.
    fn take_covered<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        snapshot_last: LogIndex,
    ) -> Result<Vec<PathBuf>, StorageError> {
        // Closing a nearly empty segment at each compaction had a whole new segment zero-filled
        // (and a whole one removed) per snapshot, up to three times the log's own bytes under
        // frequent snapshots. A segment kept open holds covered records as a closed segment
        // that straddles the snapshot does: the next compaction after it closes removes it.
        if self.active.has_records() && self.active.end() >= self.segment_bytes / 4 {
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
        let dir = &self.dir;
        let paths = self.closed.drain(..covered);
        let paths = paths.map(|segment| dir.join(segment::file_name(segment.sequence))).collect();
        let oldest_kept = self.closed.first().map_or(self.active.sequence(), |s| s.sequence);
        self.checkpoints.forget_before(oldest_kept);
        Ok(paths)
    }

    /// The entries `first..=last.index`, read back from the segments and checked: consecutive,
    /// every record they come from intact, the last one `last`. `Ok(None)` if the log does not
    /// hold them (a compaction removed them, or they were never written); an error if a
    /// record on the way is damaged or a file cannot be read. Entries asked for must be
    /// committed (see `read_back`): an uncommitted range may be found as an earlier leader
    /// wrote it.
    pub(crate) fn read_entries<F: FileSystem<File = H>>(
        &self,
        fs: &F,
        first: LogIndex,
        last: LogId,
    ) -> Result<Option<Vec<Entry>>, StorageError> {
        let Some(start) = self.checkpoints.start_for(first).filter(|_| first <= last.index) else {
            return Ok(None);
        };
        let mut range = Range::new(first, last);
        let closed = self.closed.iter().map(|segment| (segment.sequence, segment.bytes));
        let segments = closed.chain([(self.active.sequence(), self.active.end())]);
        for (sequence, end) in segments.filter(|&(sequence, _)| sequence >= start.sequence) {
            let path = self.dir.join(segment::file_name(sequence));
            let from = if sequence == start.sequence {
                start.offset
            } else {
                segment::HEADER_BYTES as u64
            };
            let Some(mut records) = RecordReader::open(fs, &path, from, end)? else {
                return Ok(None);
            };
            while let Some(changes) = records.next_record()? {
                range.apply(changes);
                if let Some(entries) = range.take_if_whole() {
                    return Ok(Some(entries));
                }
            }
        }
        Ok(None)
    }

    /// The next segment (if there can be a next one), once the active one is a quarter full,
    /// or, if it grows by zero-fills, once it holds a zero-fill's worth of records: it is left
    /// for the prepared one at its next zero-fill.
    pub(crate) fn segment_to_prepare(&self) -> Option<u64> {
        let quarter = self.segment_bytes / 4;
        let fill = self.zero_fill_bytes as u64;
        let grows = fill > 0 && self.active.zeroed_end() < self.prepared_bytes();
        let due = self.active.end() >= if grows { fill.min(quarter) } else { quarter };
        due.then(|| self.active.sequence().checked_add(1)).flatten()
    }

    /// A preparer of this log's next segments, on its own handle of the file system.
    pub(crate) fn preparer<F: FileSystem<File = H> + Clone>(&self, fs: &F) -> SegmentPreparer<F> {
        SegmentPreparer::new(fs.clone(), self.dir.clone(), self.prepared_bytes())
    }

    /// How long a prepared segment is: room for records up to the segment size, for the one
    /// that crosses it, and for the zeros the writer keeps ahead of its records.
    fn prepared_bytes(&self) -> u64 {
        self.segment_bytes.saturating_add(self.zero_fill_bytes as u64)
    }

    /// Bytes of all segments on disk, up to the end of their records.
    pub(crate) fn bytes(&self) -> u64 {
        self.closed.iter().fold(self.active.end(), |sum, segment| sum.saturating_add(segment.bytes))
    }

    fn rotate<F: FileSystem<File = H>>(&mut self, fs: &F) -> Result<(), StorageError> {
        if !self.rotate_to_prepared(fs)? {
            let sequence = sequence_after(&self.dir, &[self.active.sequence()])?;
            let next = ActiveSegment::create(fs, &self.dir, sequence, self.zero_fill_bytes)?;
            self.close_active(next);
        }
        Ok(())
    }

    /// Closes the active segment for the next one if that is prepared; returns whether it was.
    fn rotate_to_prepared<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
    ) -> Result<bool, StorageError> {
        let sequence = sequence_after(&self.dir, &[self.active.sequence()])?;
        let (dir, fill) = (&self.dir, self.zero_fill_bytes);
        match ActiveSegment::start_prepared(fs, dir, sequence, fill, self.prepared_bytes())? {
            Some(prepared) => {
                self.close_active(prepared);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Makes `next` the active segment, and the active one the newest closed one.
    fn close_active(&mut self, next: ActiveSegment<H>) {
        let old = std::mem::replace(&mut self.active, next);
        self.closed.push(Closed {
            sequence: old.sequence(),
            log_last: self.log_last,
            bytes: old.end(),
        });
    }
}

/// Removes every segment of the log in `dir`, durably: what a snapshot that is gone covered.
pub(crate) fn remove_all<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    match sequences(fs, dir) {
        Ok(sequences) => remove_segments(fs, dir, &sequences),
        Err(StorageError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Removes the files at `paths` of directory `dir`, durably (nothing to do if none).
pub(crate) fn remove_files<F: FileSystem>(
    fs: &F,
    dir: &Path,
    paths: &[PathBuf],
) -> Result<(), StorageError> {
    for path in paths {
        fs.remove_file(path).map_err(StorageError::io("remove", path))?;
    }
    if paths.is_empty() { Ok(()) } else { directory::sync(fs, dir) }
}

/// The sequence number of a new segment after the `existing` ones (in order).
fn sequence_after(dir: &Path, existing: &[u64]) -> Result<u64, StorageError> {
    let next = existing.last().map_or(Some(1), |last| last.checked_add(1));
    next.ok_or_else(|| StorageError::Refused {
        reason: format!("{}: WAL segment numbers are exhausted", dir.display()),
    })
}

/// The sequence numbers of the segments in `dir`, in order.
fn sequences<F: FileSystem>(fs: &F, dir: &Path) -> Result<Vec<u64>, StorageError> {
    let names = fs.list(dir).map_err(StorageError::io("list", dir))?;
    let mut sequences: Vec<u64> =
        names.iter().filter_map(|name| segment::parse_file_name(name)).collect();
    sequences.sort_unstable();
    Ok(sequences)
}

/// Removes segments `sequences` of `dir`, durably.
fn remove_segments<F: FileSystem>(
    fs: &F,
    dir: &Path,
    sequences: &[u64],
) -> Result<(), StorageError> {
    let paths: Vec<PathBuf> =
        sequences.iter().map(|&sequence| dir.join(segment::file_name(sequence))).collect();
    remove_files(fs, dir, &paths)
}

/// Checks the header of a segment, the whole file `bytes`, and applies its intact records to
/// `log`, noting checkpoints on the way; fails with why the file is not a segment of this
/// format.
fn replay_segment(
    bytes: &[u8],
    sequence: u64,
    is_last: bool,
    log: &mut LogBuilder,
    checkpoints: &mut Checkpoints,
) -> Result<SegmentEnd, String> {
    let data_end = bytes.iter().rposition(|&byte| byte != 0).map_or(0, |last| last as u64 + 1);
    let file_bytes = bytes.len() as u64;
    let ended = |end, ending, missing_header| SegmentEnd {
        end,
        ending,
        data_end,
        file_bytes,
        missing_header,
    };
    match segment::check_header(bytes, sequence) {
        HeaderCheck::Intact => {}
        HeaderCheck::Foreign(reason) => return Err(reason),
        HeaderCheck::Missing if is_last => {
            return Ok(ended(segment::HEADER_BYTES as u64, Ending::Clean, true));
        }
        HeaderCheck::Missing => {
            let reason = "a segment of zeros that is not the last".to_string();
            return Ok(ended(0, Ending::Damaged(reason), false));
        }
        HeaderCheck::Damaged(reason) => return Ok(ended(0, Ending::Damaged(reason), false)),
    }
    let scanned = scan::scan(bytes, is_last);
    for (offset, changes) in scanned.records {
        checkpoints.at_record(sequence, offset, log.log_last());
        if let Err(reason) = log.apply(changes) {
            return Ok(ended(offset, Ending::Damaged(reason), false));
        }
    }
    Ok(ended(scanned.end, scanned.ending, false))
}
