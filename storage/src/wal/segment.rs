//! WAL segment files: `wal/<sequence>.wal`: a 16-byte header (magic and format version, then
//! the sequence number), records one after another, then zeros.
//!
//! Reading a segment back tells a clean end (only zeros follow the last record) and a torn
//! tail (a crash while the last record was written) from real damage.

use std::path::Path;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::wal::record::{self, Parsed, WalRecord};

/// Bytes of the header at the start of every segment.
pub(crate) const HEADER_BYTES: usize = 16;
/// The header's first half: what the file is and the version of its format.
const MAGIC: &[u8; 8] = b"RKVWAL\x00\x01";

/// The header of segment `sequence`.
pub(crate) fn header(sequence: u64) -> [u8; HEADER_BYTES] {
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
pub(crate) fn scan<F: FileSystem>(
    fs: &F,
    path: &Path,
    sequence: u64,
    is_last: bool,
) -> Result<Scan, StorageError> {
    let bytes = fs.read(path).map_err(StorageError::io("read", path))?.unwrap_or_default();
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
