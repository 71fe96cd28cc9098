//! The segment being written.
//!
//! The writer keeps the file zero-filled some way ahead of its records and overwrites the
//! zeros in place: an `fdatasync` of blocks that already exist need not commit the file's size
//! or block map to the filesystem journal, which makes it markedly cheaper than syncing an
//! append.

use std::path::{Path, PathBuf};

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::wal::segment::{self, Scan};

/// The segment being written, on a file system whose open files are `H`.
#[derive(Debug)]
pub(crate) struct ActiveSegment<H> {
    file: H,
    path: PathBuf,
    sequence: u64,
    /// Bytes of records: where the next one goes.
    bytes: u64,
    /// The file is zero-filled from `bytes` up to here.
    zeroed_end: u64,
    /// How much to zero-fill at a time.
    zero_fill_bytes: u64,
}

impl<H> ActiveSegment<H> {
    /// Creates the empty segment `sequence` in `dir`, durably.
    pub(crate) fn create<F: FileSystem<File = H>>(
        fs: &F,
        dir: &Path,
        sequence: u64,
        zero_fill_bytes: u64,
    ) -> Result<ActiveSegment<H>, StorageError> {
        let path = dir.join(segment::file_name(sequence));
        let mut file = fs.create_new(&path).map_err(StorageError::io("create", &path))?;
        fs.write_at(&mut file, 0, &segment::header(sequence))
            .map_err(StorageError::io("write to", &path))?;
        fs.sync_data(&mut file).map_err(StorageError::io("sync", &path))?;
        directory::sync(fs, dir)?;
        let bytes = segment::HEADER_BYTES as u64;
        Ok(ActiveSegment { file, path, sequence, bytes, zeroed_end: bytes, zero_fill_bytes })
    }

    /// Reopens the last segment, as `scan` found it, to write after its records; a torn tail
    /// is zeroed and a missing header written, durably.
    pub(crate) fn reopen<F: FileSystem<File = H>>(
        fs: &F,
        path: PathBuf,
        sequence: u64,
        scan: &Scan,
        zero_fill_bytes: u64,
    ) -> Result<ActiveSegment<H>, StorageError> {
        let (valid_bytes, file_bytes) = (scan.valid_bytes, scan.file_bytes);
        let torn_bytes = scan.torn.as_ref().map_or(0, |(_, bytes)| *bytes);
        let mut file = fs.open_for_writing(&path).map_err(StorageError::io("open", &path))?;
        if scan.missing_header {
            fs.write_at(&mut file, 0, &segment::header(sequence))
                .map_err(StorageError::io("write to", &path))?;
            fs.sync_data(&mut file).map_err(StorageError::io("sync", &path))?;
        }
        if torn_bytes > 0 {
            let zeros = vec![0; usize::try_from(torn_bytes).expect("a segment fits in memory")];
            fs.write_at(&mut file, valid_bytes, &zeros)
                .map_err(StorageError::io("clear the torn tail of", &path))?;
            fs.sync_all(&mut file).map_err(StorageError::io("sync", &path))?;
        }
        Ok(ActiveSegment {
            file,
            path,
            sequence,
            bytes: valid_bytes,
            zeroed_end: file_bytes.max(valid_bytes),
            zero_fill_bytes,
        })
    }

    /// Writes `records` after the last record (not yet durable). First zero-fills ahead when
    /// the prepared space runs short; the next [`sync`](Self::sync) makes both durable.
    pub(crate) fn write<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        records: &[u8],
    ) -> Result<(), StorageError> {
        let end = self.bytes + records.len() as u64;
        if end + self.zero_fill_bytes / 2 > self.zeroed_end {
            let from = self.zeroed_end.max(end);
            let zeros = vec![0; self.zero_fill_bytes as usize];
            fs.write_at(&mut self.file, from, &zeros)
                .map_err(StorageError::io("zero-fill", &self.path))?;
            self.zeroed_end = from + self.zero_fill_bytes;
        }
        fs.write_at(&mut self.file, self.bytes, records)
            .map_err(StorageError::io("write to", &self.path))?;
        self.bytes = end;
        Ok(())
    }

    /// Makes everything written durable (`fdatasync`).
    pub(crate) fn sync<F: FileSystem<File = H>>(&mut self, fs: &F) -> Result<(), StorageError> {
        fs.sync_data(&mut self.file).map_err(StorageError::io("sync", &self.path))
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
