//! Backups, the leader's side (`raftkv snapshot save`): the client asks for a snapshot that
//! covers the leader's commit index, the leader takes one if it has none that recent, and the
//! client copies its data in chunks read from the snapshot file. The node keeps nothing for
//! the client between its requests: each names the snapshot it wants, and one that a newer
//! snapshot replaced meanwhile is answered `Replaced`, so the client starts again.

use std::path::PathBuf;

use raftkv_core::kv::KvStore;
use raftkv_core::raft::Role;
use raftkv_core::server::Replica;
use raftkv_core::{LogId, LogIndex};
use raftkv_storage::{RealFs, SnapshotReader};
use tracing::{info, warn};

use crate::wire::{AdminAnswer, BackupAnswer, BackupStep, MAX_BACKUP_CHUNK_BYTES, SnapshotHeader};

/// The snapshot file backups read, kept open between chunks while it holds the same snapshot.
#[derive(Debug)]
pub(super) struct BackupSource {
    dir: PathBuf,
    reader: Option<SnapshotReader<RealFs>>,
}

impl BackupSource {
    pub(super) fn new(dir: PathBuf) -> BackupSource {
        BackupSource { dir, reader: None }
    }

    /// Answers one step of a backup.
    pub(super) fn answer(
        &mut self,
        replica: &mut Replica<KvStore>,
        step: BackupStep,
    ) -> AdminAnswer {
        match step {
            BackupStep::Prepare { at_least } => self.prepare(replica, at_least),
            BackupStep::Chunk { last, offset, length } => self.chunk(last, offset, length),
        }
    }

    /// Names the snapshot on disk if it covers `at_least` (the commit index now if `None`);
    /// otherwise asks the replica for one and answers `Pending`.
    fn prepare(
        &mut self,
        replica: &mut Replica<KvStore>,
        at_least: Option<LogIndex>,
    ) -> AdminAnswer {
        let raft = replica.raft();
        if raft.role() != Role::Leader {
            return AdminAnswer::NotLeader { hint: raft.leader() };
        }
        // Until a leader commits an entry of its term, its commit index may lag what earlier
        // leaders committed.
        if raft.term_at(raft.commit_index()) != Some(raft.term()) {
            let reason = "the leader has not committed an entry of its term yet".to_string();
            return AdminAnswer::Refused { reason, retry: true };
        }
        let at_least = at_least.unwrap_or(raft.commit_index());
        let on_disk = raft.status().snapshot_last;
        if on_disk.index < at_least || on_disk.index == LogIndex(0) {
            replica.snapshot_now();
            return AdminAnswer::Backup(BackupAnswer::Pending { at_least });
        }
        match self.open(on_disk) {
            Some(reader) => {
                let header = SnapshotHeader {
                    last: reader.last(),
                    membership: reader.membership().clone(),
                    data_bytes: reader.data_bytes(),
                };
                info!(last = %header.last, bytes = header.data_bytes, "a backup copies the snapshot");
                AdminAnswer::Backup(BackupAnswer::Ready(header))
            }
            None => AdminAnswer::Backup(BackupAnswer::Pending { at_least }),
        }
    }

    /// `length` bytes (at most [`MAX_BACKUP_CHUNK_BYTES`]) of the snapshot at `last`.
    fn chunk(&mut self, last: LogId, offset: u64, length: u64) -> AdminAnswer {
        let Some(reader) = self.open(last) else {
            return AdminAnswer::Backup(BackupAnswer::Replaced);
        };
        match reader.read(offset, length.min(MAX_BACKUP_CHUNK_BYTES)) {
            Ok(Some(data)) => AdminAnswer::Backup(BackupAnswer::Chunk { data }),
            Ok(None) => AdminAnswer::Backup(BackupAnswer::Replaced),
            Err(error) => AdminAnswer::Refused { reason: error.to_string(), retry: false },
        }
    }

    /// The reader of the snapshot file if it holds the snapshot at `last`.
    fn open(&mut self, last: LogId) -> Option<&SnapshotReader<RealFs>> {
        if self.reader.as_ref().is_none_or(|reader| reader.last() != last) {
            self.reader = match SnapshotReader::open(RealFs, &self.dir) {
                Ok(reader) => reader,
                Err(error) => {
                    warn!(%error, "cannot open the snapshot for a backup");
                    None
                }
            };
        }
        self.reader.as_ref().filter(|reader| reader.last() == last)
    }
}
