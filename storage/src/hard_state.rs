//! The hard state file: the node's term and vote, replaced atomically.

use std::path::Path;

use raftkv_core::raft::HardState;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, SmallFile};

/// The file's name in the data directory.
pub(crate) const FILE: &str = "hardstate";
const MAGIC: &[u8; 8] = b"RKVHARD2";

/// Replaces the hard state file of `dir`, durably.
pub(crate) fn save<F: FileSystem>(
    fs: &F,
    dir: &Path,
    hard_state: HardState,
) -> Result<(), StorageError> {
    small_file::replace(fs, dir, FILE, MAGIC, &hard_state)
}

/// The hard state saved in `dir`.
pub(crate) fn load<F: FileSystem>(
    fs: &F,
    dir: &Path,
) -> Result<SmallFile<HardState>, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    small_file::read(fs, dir, FILE, MAGIC)
}
