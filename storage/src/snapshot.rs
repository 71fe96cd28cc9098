//! The snapshot file: the latest state machine snapshot and the last entry it covers,
//! replaced atomically.

use std::path::Path;

use raftkv_core::raft::Snapshot;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, SmallFile};

const FILE: &str = "snapshot";
const MAGIC: &[u8; 8] = b"RKVSNAP1";

/// Replaces the snapshot file of `dir` with `snapshot`, durably.
pub(crate) fn save<F: FileSystem>(
    fs: &F,
    dir: &Path,
    snapshot: &Snapshot,
) -> Result<(), StorageError> {
    let bytes = postcard::to_allocvec(snapshot).expect("encoding into a Vec cannot fail");
    small_file::replace(fs, dir, FILE, MAGIC, &bytes)
}

/// The snapshot saved in `dir`, if any.
pub(crate) fn load<F: FileSystem>(fs: &F, dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    let corrupt = |offset, reason| StorageError::Corrupt { path: dir.join(FILE), offset, reason };
    match small_file::read(fs, dir, FILE, MAGIC)? {
        SmallFile::Missing => Ok(None),
        SmallFile::Damaged { offset, reason } => Err(corrupt(offset, reason)),
        SmallFile::Intact(bytes) => postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|error| corrupt(0, format!("snapshot does not decode: {error}"))),
    }
}
