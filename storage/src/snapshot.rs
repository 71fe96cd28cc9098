//! The snapshot file: the latest state machine snapshot and the last entry it covers,
//! replaced atomically.

use std::path::Path;

use raftkv_core::raft::Snapshot;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, SmallFile};

/// The file's name in the data directory.
pub(crate) const FILE: &str = "snapshot";
const MAGIC: &[u8; 8] = b"RKVSNAP1";

/// Replaces the snapshot file of `dir` with `snapshot`, durably.
pub(crate) fn save<F: FileSystem>(
    fs: &F,
    dir: &Path,
    snapshot: &Snapshot,
) -> Result<(), StorageError> {
    small_file::replace(fs, dir, FILE, MAGIC, snapshot)
}

/// The snapshot saved in `dir`.
pub(crate) fn load<F: FileSystem>(fs: &F, dir: &Path) -> Result<SmallFile<Snapshot>, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    small_file::read(fs, dir, FILE, MAGIC)
}

/// Removes the snapshot file of `dir`, durably.
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    small_file::remove(fs, dir, FILE)
}
