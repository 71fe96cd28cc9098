//! The snapshot file: the latest state machine snapshot and the last entry it covers,
//! replaced atomically.

use std::path::Path;

use raftkv_core::raft::Snapshot;

use crate::storage::atomic;
use crate::storage::error::StorageError;

const FILE: &str = "snapshot";
const MAGIC: &[u8; 8] = b"RKVSNAP1";

/// Replaces the snapshot file of `dir` with `snapshot`, durably.
pub(crate) fn save(dir: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let bytes = postcard::to_allocvec(snapshot).expect("encoding into a Vec cannot fail");
    atomic::write(dir, FILE, MAGIC, &bytes)
}

/// The snapshot saved in `dir`, if any.
pub(crate) fn load(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    atomic::remove_leftover(dir, FILE)?;
    let Some(bytes) = atomic::read(dir, FILE, MAGIC)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes).map(Some).map_err(|error| StorageError::Corrupt {
        path: dir.join(FILE),
        offset: 0,
        reason: format!("snapshot does not decode: {error}"),
    })
}
