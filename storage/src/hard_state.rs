//! The hard state file: the node's term and vote, replaced atomically.

use std::path::Path;

use raftkv_core::raft::HardState;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, SmallFile};

const FILE: &str = "hardstate";
const MAGIC: &[u8; 8] = b"RKVHARD1";

/// Replaces the hard state file of `dir`, durably.
pub(crate) fn save<F: FileSystem>(
    fs: &F,
    dir: &Path,
    hard_state: HardState,
) -> Result<(), StorageError> {
    let bytes = postcard::to_allocvec(&hard_state).expect("encoding into a Vec cannot fail");
    small_file::replace(fs, dir, FILE, MAGIC, &bytes)
}

/// The hard state saved in `dir`; the initial one if none was saved yet.
pub(crate) fn load<F: FileSystem>(fs: &F, dir: &Path) -> Result<HardState, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    let corrupt = |offset, reason| StorageError::Corrupt { path: dir.join(FILE), offset, reason };
    match small_file::read(fs, dir, FILE, MAGIC)? {
        SmallFile::Missing => Ok(HardState::default()),
        SmallFile::Damaged { offset, reason } => Err(corrupt(offset, reason)),
        SmallFile::Intact(bytes) => postcard::from_bytes(&bytes)
            .map_err(|error| corrupt(0, format!("hard state does not decode: {error}"))),
    }
}
