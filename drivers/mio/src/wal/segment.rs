//! WAL segment files: `wal/<sequence>.wal`: a 16-byte header (magic and format version, then
//! the sequence number), records one after another, then zeros.
//!
//! The writer keeps the file zero-filled some way ahead of its records and overwrites the
//! zeros in place: an `fdatasync` of blocks that already exist need not commit the file's size
//! or block map to the filesystem journal, which makes it markedly cheaper than syncing an
//! append. Reading a segment back tells a clean end (only zeros follow the last record) and a
//! torn tail (a crash while the last record was written) from real damage.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::storage::atomic;
use crate::storage::error::StorageError;
use crate::wal::record::{self, Parsed, WalRecord};

/// How far ahead of its records the writer zero-fills a segment, in one write (at most).
const ZERO_FILL_BYTES: u64 = 1 << 20;

/// Bytes of the header at the start of every segment.
const HEADER_BYTES: usize = 16;
/// The header's first half: what the file is and the version of its format.
const MAGIC: &[u8; 8] = b"RKVWAL\x00\x01";

/// The header of segment `sequence`.
fn header(sequence: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&sequence.to_le_bytes());
    header
}

/// The file name of segment `sequence`.
pub(crate) fn file_name(sequence: u64) -> String {
    format!("{sequence:020}.wal")
}

/// The sequence number in a segment's file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The records of one segment, as far as they are intact.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Records in order, each with its offset.
    pub(crate) records: Vec<(u64, WalRecord)>,
    /// Bytes of intact records from the start of the file.
    pub(crate) valid_bytes: u64,
    /// The tail after `valid_bytes` is torn, for this reason, over this many bytes (after
    /// which only zeros follow).
    pub(crate) torn: Option<(String, u64)>,
    /// Size of the file, zero-filled space included.
    pub(crate) file_bytes: u64,
    /// The header never reached the disk (a crash right after the segment was created).
    pub(crate) missing_header: bool,
}

/// Reads every record of the segment at `path`. Damage is a torn tail only in the last
/// segment and only when no intact record follows it; anything else is corruption. Zeros after
/// the last record are the space the writer prepared.
pub(crate) fn scan(path: &Path, sequence: u64, is_last: bool) -> Result<Scan, StorageError> {
    let bytes = fs::read(path).map_err(StorageError::io("read", path))?;
    let file_bytes = bytes.len() as u64;
    if bytes.get(..HEADER_BYTES) != Some(&header(sequence)[..]) {
        if is_last && bytes.iter().all(|&b| b == 0) {
            let valid_bytes = HEADER_BYTES as u64;
            let records = Vec::new();
            return Ok(Scan { records, valid_bytes, torn: None, file_bytes, missing_header: true });
        }
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("not a raftkv WAL segment of sequence {sequence} (bad header)"),
        });
    }
    let mut records = Vec::new();
    let mut offset = HEADER_BYTES;
    let mut torn = None;
    while offset < bytes.len() {
        let reason = match record::parse(&bytes[offset..]) {
            Parsed::Record(record, used) => {
                records.push((offset as u64, record));
                offset += used;
                continue;
            }
            Parsed::Incomplete => "incomplete record".to_string(),
            Parsed::Bad(reason) => reason,
        };
        if bytes[offset..].iter().all(|&b| b == 0) {
            break; // The zero-filled space after the last record.
        }
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        if !is_last {
            return Err(corrupt(format!("{reason} in a segment that is not the last")));
        }
        if let Some(after) = record::intact_record_after(&bytes[offset..]) {
            return Err(corrupt(format!(
                "{reason}, but an intact record follows at offset {}",
                offset + after
            )));
        }
        let garbage_end = bytes.iter().rposition(|&b| b != 0).map_or(offset, |last| last + 1);
        torn = Some((reason, (garbage_end - offset) as u64));
        break;
    }
    Ok(Scan { records, valid_bytes: offset as u64, torn, file_bytes, missing_header: false })
}

/// The segment being written.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    file: File,
    path: PathBuf,
    sequence: u64,
    /// Bytes of records: where the next one goes.
    bytes: u64,
    /// The file is zero-filled from `bytes` up to here.
    zeroed_end: u64,
    /// How much to zero-fill at a time.
    zero_fill_bytes: u64,
}

impl ActiveSegment {
    /// Creates the empty segment `sequence` in `dir`, durably. It will be closed at about
    /// `segment_bytes`.
    pub(crate) fn create(
        dir: &Path,
        sequence: u64,
        segment_bytes: u64,
    ) -> Result<ActiveSegment, StorageError> {
        let path = dir.join(file_name(sequence));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(StorageError::io("create", &path))?;
        file.write_all_at(&header(sequence), 0).map_err(StorageError::io("write to", &path))?;
        file.sync_data().map_err(StorageError::io("sync", &path))?;
        atomic::sync_dir(dir)?;
        let zero_fill_bytes = ZERO_FILL_BYTES.min(segment_bytes);
        let bytes = HEADER_BYTES as u64;
        Ok(ActiveSegment { file, path, sequence, bytes, zeroed_end: bytes, zero_fill_bytes })
    }

    /// Reopens the last segment, as `scan` found it, to write after its records; a torn tail
    /// is zeroed and a missing header written, durably.
    pub(crate) fn reopen(
        path: PathBuf,
        sequence: u64,
        scan: &Scan,
        segment_bytes: u64,
    ) -> Result<ActiveSegment, StorageError> {
        let (valid_bytes, file_bytes) = (scan.valid_bytes, scan.file_bytes);
        let torn_bytes = scan.torn.as_ref().map_or(0, |(_, bytes)| *bytes);
        let file =
            OpenOptions::new().write(true).open(&path).map_err(StorageError::io("open", &path))?;
        if scan.missing_header {
            file.write_all_at(&header(sequence), 0).map_err(StorageError::io("write to", &path))?;
            file.sync_data().map_err(StorageError::io("sync", &path))?;
        }
        if torn_bytes > 0 {
            let zeros = vec![0; usize::try_from(torn_bytes).expect("a segment fits in memory")];
            file.write_all_at(&zeros, valid_bytes)
                .map_err(StorageError::io("clear the torn tail of", &path))?;
            file.sync_all().map_err(StorageError::io("sync", &path))?;
        }
        Ok(ActiveSegment {
            file,
            path,
            sequence,
            bytes: valid_bytes,
            zeroed_end: file_bytes.max(valid_bytes),
            zero_fill_bytes: ZERO_FILL_BYTES.min(segment_bytes),
        })
    }

    /// Writes `records` after the last record (not yet durable). First zero-fills ahead when
    /// the prepared space runs short; the next [`sync`](Self::sync) makes both durable.
    pub(crate) fn write(&mut self, records: &[u8]) -> Result<(), StorageError> {
        let end = self.bytes + records.len() as u64;
        if end + self.zero_fill_bytes / 2 > self.zeroed_end {
            let from = self.zeroed_end.max(end);
            let zeros = vec![0; self.zero_fill_bytes as usize];
            self.file
                .write_all_at(&zeros, from)
                .map_err(StorageError::io("zero-fill", &self.path))?;
            self.zeroed_end = from + self.zero_fill_bytes;
        }
        self.file
            .write_all_at(records, self.bytes)
            .map_err(StorageError::io("write to", &self.path))?;
        self.bytes = end;
        Ok(())
    }

    /// Makes everything written durable (`fdatasync`).
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(StorageError::io("sync", &self.path))
    }

    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Bytes of records.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
