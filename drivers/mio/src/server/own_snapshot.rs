//! The node's own snapshot at a start: recovery checked the whole file and left its data on
//! disk; it is decoded here as it is read, a piece at a time, so that a start never holds the
//! snapshot's data and the store decoded from it at once.

use std::path::Path;
use std::time::Instant;

use raftkv_core::LogId;
use raftkv_core::kv::{KvLimits, KvStore};
use raftkv_core::loaded_snapshot::LoadedSnapshot;
use raftkv_core::raft::SavedSnapshot;
use raftkv_core::server::ReplicaStartError;
use raftkv_storage::{RealFs, SnapshotReader, StorageError};
use tracing::info;

use super::error::ServeError;

/// Decodes the snapshot file of data directory `dir`, which recovery found at `last`, into a
/// store with `limits`.
pub(crate) fn load(
    dir: &Path,
    last: LogId,
    limits: KvLimits,
) -> Result<LoadedSnapshot<KvStore>, ServeError> {
    let started = Instant::now();
    let reader = SnapshotReader::open(RealFs, dir).map_err(ServeError::Recover)?;
    let reader = reader.filter(|reader| reader.last() == last).ok_or_else(|| {
        let reason = format!("the snapshot file no longer holds the snapshot at {last}");
        ServeError::Recover(StorageError::Refused { reason })
    })?;
    let bytes = reader.data_bytes();
    let snapshot = SavedSnapshot { last, membership: reader.membership().clone(), bytes };
    let loaded = LoadedSnapshot::decode(snapshot, &mut reader.data(), KvStore::new(limits))
        .map_err(|error| ServeError::StartReplica(ReplicaStartError::Snapshot(error)))?;
    let took_ms = started.elapsed().as_millis() as u64;
    info!(%last, bytes, took_ms, "decoded the snapshot recovered from disk");
    Ok(loaded)
}
