//! WAL segments that a snapshot made useless, removed apart from the log's writer.

use std::path::PathBuf;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::release::release_gradually;
use crate::wal::remove_files;

/// WAL segments that a saved snapshot covers, out of the log already
/// (`Storage::compact_log_apart`). Removing them, files and a directory sync, takes the
/// disk's time, which the writer's syncs need not wait for. The log replays to the same with
/// or without any of them, so they may go at any moment, or not at all: segments a failed
/// removal left stay on disk until the next start, which finds them covered and takes them
/// back into the log for its first compaction to remove.
#[derive(Debug)]
pub struct ObsoleteSegments<F> {
    fs: F,
    dir: PathBuf,
    paths: Vec<PathBuf>,
}

impl<F: FileSystem> ObsoleteSegments<F> {
    pub(crate) fn new(fs: F, dir: PathBuf, paths: Vec<PathBuf>) -> ObsoleteSegments<F> {
        ObsoleteSegments { fs, dir, paths }
    }

    /// How many segments.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Removes them, durably; returns how many went. Each file is held open while its name
    /// goes, then its space is given back a step at a time (see `release`), so that the
    /// removal never holds up the log's syncs for long.
    pub fn remove(self) -> Result<usize, StorageError> {
        let open =
            |path: &PathBuf| self.fs.open_for_writing(path).map_err(StorageError::io("open", path));
        let mut files = self.paths.iter().map(open).collect::<Result<Vec<_>, _>>()?;
        remove_files(&self.fs, &self.dir, &self.paths)?;
        for (file, path) in files.iter_mut().zip(&self.paths) {
            release_gradually(&self.fs, file).map_err(StorageError::io("shrink", path))?;
        }
        Ok(self.paths.len())
    }
}
