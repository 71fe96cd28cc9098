//! `raftkv snapshot restore`: seeds an empty data directory with a backup, as node `id` of a
//! new cluster of `peers`. The snapshot keeps its last entry (index and term) and its state;
//! its membership is replaced by `peers`, so that the new cluster may have other nodes at
//! other addresses. The hard state starts at the snapshot's term, as a node that installed
//! the snapshot would hold it.

use std::path::Path;

use raftkv_core::NodeId;
use raftkv_core::raft::{HardState, Membership, Persist, PersistId};
use raftkv_storage::{RealFs, Storage, StorageOptions};

use crate::backup::file::BackupFile;
use crate::failure::Failure;
use crate::server;

/// Seeds `dir` from `backup` as node `id` of a cluster named `cluster` of `peers`.
pub(crate) fn seed(
    backup: &BackupFile,
    dir: &Path,
    id: NodeId,
    peers: &[(NodeId, String)],
    cluster: &str,
) -> Result<(), Failure> {
    let not_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if not_empty {
        return Err(Failure::Usage(format!(
            "{} is not empty: a backup is restored into a new node's empty data directory",
            dir.display()
        )));
    }
    let _lock = server::lock_data_dir(dir)?;
    let failed = |error: raftkv_storage::StorageError| {
        Failure::Error(format!("cannot restore into {}: {error}", dir.display()))
    };
    let (mut storage, _, _) =
        Storage::open(RealFs, dir, &StorageOptions::new(cluster, id)).map_err(failed)?;
    let header = &backup.header;
    let hard_state = HardState { term: header.last.term, vote: None, damaged: false };
    let persist = Persist {
        id: PersistId(1),
        hard_state: Some(hard_state),
        truncate_from: None,
        entries: Vec::new(),
        snapshot: None,
        install_received: None,
        snapshot_chunk: None,
    };
    storage.persist(&[persist]).map_err(failed)?;
    let membership = peers.iter().fold(
        Membership::with_voters(peers.iter().map(|(id, _)| *id)),
        |membership, (id, address)| membership.with_address(*id, address.as_bytes()),
    );
    storage
        .snapshot_saver()
        .save_streaming(header.last, &membership, header.data_bytes, |out| backup.copy_data(out))
        .map_err(failed)?;
    server::record_peers(dir, peers)?;
    Ok(())
}
