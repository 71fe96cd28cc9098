//! WAL segment files: `wal/<sequence>.wal`, records appended one after another. Reading one
//! back tells a torn tail (a crash while the last record was written) from real damage.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::storage::atomic;
use crate::storage::error::StorageError;
use crate::wal::record::{self, Parsed, WalRecord};

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
    /// The file is longer than `valid_bytes`: the tail is torn, for this reason.
    pub(crate) torn: Option<String>,
}

/// Reads every record of the segment at `path`. Damage is a torn tail only in the last
/// segment and only when no intact record follows it; anything else is corruption.
pub(crate) fn scan(path: &Path, is_last: bool) -> Result<Scan, StorageError> {
    let bytes = fs::read(path).map_err(StorageError::io("read", path))?;
    let mut records = Vec::new();
    let mut offset = 0;
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
        return Ok(Scan { records, valid_bytes: offset as u64, torn: Some(reason) });
    }
    Ok(Scan { records, valid_bytes: offset as u64, torn: None })
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    file: File,
    path: PathBuf,
    sequence: u64,
    bytes: u64,
}

impl ActiveSegment {
    /// Creates the empty segment `sequence` in `dir`, durably.
    pub(crate) fn create(dir: &Path, sequence: u64) -> Result<ActiveSegment, StorageError> {
        let path = dir.join(file_name(sequence));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(StorageError::io("create", &path))?;
        atomic::sync_dir(dir)?;
        Ok(ActiveSegment { file, path, sequence, bytes: 0 })
    }

    /// Reopens an existing segment to append after its first `valid_bytes`, cutting off
    /// anything beyond (a torn tail).
    pub(crate) fn reopen(
        path: PathBuf,
        sequence: u64,
        valid_bytes: u64,
    ) -> Result<ActiveSegment, StorageError> {
        let file =
            OpenOptions::new().append(true).open(&path).map_err(StorageError::io("open", &path))?;
        let length = file.metadata().map_err(StorageError::io("inspect", &path))?.len();
        if length != valid_bytes {
            file.set_len(valid_bytes).map_err(StorageError::io("truncate", &path))?;
            file.sync_all().map_err(StorageError::io("sync", &path))?;
        }
        Ok(ActiveSegment { file, path, sequence, bytes: valid_bytes })
    }

    /// Appends bytes (not yet durable).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.file.write_all(bytes).map_err(StorageError::io("append to", &self.path))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Makes everything written durable (`fdatasync`).
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        self.file.sync_data().map_err(StorageError::io("sync", &self.path))
    }

    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
