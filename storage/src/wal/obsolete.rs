//! WAL segments that a snapshot made useless, removed apart from the log's writer.

use std::path::PathBuf;

use crate::error::StorageError;
use crate::fs::FileSystem;
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

    /// Removes them, durably; returns how many went.
    pub fn remove(self) -> Result<usize, StorageError> {
        remove_files(&self.fs, &self.dir, &self.paths)?;
        Ok(self.paths.len())
    }
}
