//! The segment being written.
//!
//! The writer keeps the file zero-filled some way ahead of its records and overwrites the
//! zeros in place: an `fdatasync` of blocks that already exist need not commit the file's size
//! or block map to the filesystem journal, which makes it markedly cheaper than syncing an
//! append. The zeros are also what a torn write leaves where its lost sectors were.

use std::io;
use std::path::{Path, PathBuf};

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::wal::{prepare, segment};

/// The segment being written, on a file system whose open files are `H`.
#[derive(Debug)]
pub(crate) struct ActiveSegment<H> {
    file: H,
    path: PathBuf,
    sequence: u64,
    /// Where the records end: where the next one goes.
    end: u64,
    /// The file is zero-filled from `end` up to here.
    zeroed_end: u64,
    /// How much to zero-fill at a time (0: never).
    zero_fill_bytes: usize,
}

impl<H> ActiveSegment<H> {
    /// Creates the empty segment `sequence` in `dir`, durably.
    pub(crate) fn create<F: FileSystem<File = H>>(
        fs: &F,
        dir: &Path,
        sequence: u64,
        zero_fill_bytes: usize,
    ) -> Result<ActiveSegment<H>, StorageError> {
        let path = dir.join(segment::file_name(sequence));
        let file = fs.create_new(&path).map_err(StorageError::io("create", &path))?;
        let end = segment::HEADER_BYTES as u64;
        let mut active =
            ActiveSegment { file, path, sequence, end, zeroed_end: end, zero_fill_bytes };
        active.write_header(fs)?;
        directory::sync(fs, dir)?;
        Ok(active)
    }

    /// Starts segment `sequence` in `dir` from its prepared file (see
    /// [`prepare`](crate::wal::prepare)), `prepared_bytes` long, durably; `None` if it is not
    /// ready.
    pub(crate) fn start_prepared<F: FileSystem<File = H>>(
        fs: &F,
        dir: &Path,
        sequence: u64,
        zero_fill_bytes: usize,
        prepared_bytes: u64,
    ) -> Result<Option<ActiveSegment<H>>, StorageError> {
        let ready = dir.join(prepare::ready_name(sequence));
        let path = dir.join(segment::file_name(sequence));
        match fs.rename(&ready, &path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            outcome => outcome.map_err(StorageError::io("rename", &ready))?,
        }
        directory::sync(fs, dir)?;
        let file = fs.open_for_writing(&path).map_err(StorageError::io("open", &path))?;
        let end = segment::HEADER_BYTES as u64;
        let zeroed_end = prepared_bytes.max(end);
        Ok(Some(ActiveSegment { file, path, sequence, end, zeroed_end, zero_fill_bytes }))
    }

    /// Reopens segment `sequence` to write after its records, which end at `end`; the file
    /// is `file_bytes` long. A missing header (a crash right after the segment was created) is
    /// written, durably.
    pub(crate) fn reopen<F: FileSystem<File = H>>(
        fs: &F,
        path: PathBuf,
        sequence: u64,
        end: u64,
        file_bytes: u64,
        missing_header: bool,
        zero_fill_bytes: usize,
    ) -> Result<ActiveSegment<H>, StorageError> {
        let file = fs.open_for_writing(&path).map_err(StorageError::io("open", &path))?;
        let zeroed_end = file_bytes.max(end);
        let mut active = ActiveSegment { file, path, sequence, end, zeroed_end, zero_fill_bytes };
        if missing_header {
            active.write_header(fs)?;
        }
        Ok(active)
    }

    /// Overwrites the bytes from the end of the records up to `to` with zeros, durably: a
    /// torn write or damage cut away, never to be read again.
    pub(crate) fn clear_to<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        to: u64,
    ) -> Result<(), StorageError> {
        let Some(length) = to.checked_sub(self.end).filter(|&length| length > 0) else {
            return Ok(());
        };
        let zeros = vec![0; usize::try_from(length).expect("cleared bytes were read into memory")];
        fs.write_at(&mut self.file, self.end, &zeros)
            .map_err(StorageError::io("clear", &self.path))?;
        self.sync(fs)
    }

    /// Writes `record` after the last record (not yet durable). First zero-fills ahead when
    /// the prepared space runs short; the next [`sync`](Self::sync) makes both durable.
    pub(crate) fn write<F: FileSystem<File = H>>(
        &mut self,
        fs: &F,
        record: &[u8],
    ) -> Result<(), StorageError> {
        let end = self.end.saturating_add(record.len() as u64);
        let fill = self.zero_fill_bytes as u64;
        if fill > 0 && end.saturating_add(fill / 2) > self.zeroed_end {
            let from = self.zeroed_end.max(end);
            fs.write_at(&mut self.file, from, &vec![0; self.zero_fill_bytes])
                .map_err(StorageError::io("zero-fill", &self.path))?;
            self.zeroed_end = from.saturating_add(fill);
        }
        fs.write_at(&mut self.file, self.end, record)
            .map_err(StorageError::io("write to", &self.path))?;
        self.end = end;
        Ok(())
    }

    /// Whether the records are less than a quarter of a zero-fill away from needing the next
    /// one (see [`write`](Self::write)).
    pub(crate) fn zero_fill_near(&self) -> bool {
        let fill = self.zero_fill_bytes as u64;
        fill > 0 && self.end.saturating_add(fill / 2 + fill / 4) > self.zeroed_end
    }

    /// Where the zeros written ahead of the records end.
    pub(crate) fn zeroed_end(&self) -> u64 {
        self.zeroed_end
    }

    /// Makes everything written durable (`fdatasync`).
    pub(crate) fn sync<F: FileSystem<File = H>>(&mut self, fs: &F) -> Result<(), StorageError> {
        fs.sync_data(&mut self.file).map_err(StorageError::io("sync", &self.path))
    }

    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Where the records end (the header counted).
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Whether the segment holds records.
    pub(crate) fn has_records(&self) -> bool {
        self.end > segment::HEADER_BYTES as u64
    }

    fn write_header<F: FileSystem<File = H>>(&mut self, fs: &F) -> Result<(), StorageError> {
        fs.write_at(&mut self.file, 0, &segment::header(self.sequence))
            .map_err(StorageError::io("write to", &self.path))?;
        self.sync(fs)
    }
}
