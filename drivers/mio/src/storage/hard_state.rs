//! The hard state file: the node's term and vote, replaced atomically.

use std::path::Path;

use raftkv_core::raft::HardState;

use crate::storage::atomic;
use crate::storage::error::StorageError;

const FILE: &str = "hardstate";
const MAGIC: &[u8; 8] = b"RKVHARD1";

/// Replaces the hard state file of `dir`, durably.
pub(crate) fn save(dir: &Path, hard_state: HardState) -> Result<(), StorageError> {
    let bytes = postcard::to_allocvec(&hard_state).expect("encoding into a Vec cannot fail");
    atomic::write(dir, FILE, MAGIC, &bytes)
}

/// The hard state saved in `dir`; the initial one if none was saved yet.
pub(crate) fn load(dir: &Path) -> Result<HardState, StorageError> {
    atomic::remove_leftover(dir, FILE)?;
    let Some(bytes) = atomic::read(dir, FILE, MAGIC)? else {
        return Ok(HardState::default());
    };
    postcard::from_bytes(&bytes).map_err(|error| StorageError::Corrupt {
        path: dir.join(FILE),
        offset: 0,
        reason: format!("hard state does not decode: {error}"),
    })
}
