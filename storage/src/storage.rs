//! A node's storage: opening its data directory and making persists durable.

use std::path::{Path, PathBuf};

use raftkv_core::raft::{HardState, Persist, Recovered};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::options::StorageOptions;
use crate::report::{OpenReport, PersistReport};
use crate::wal::Wal;
use crate::{directory, hard_state, identity, snapshot};

/// The open data directory of a running node, on file system `F`.
///
/// Calling order: [`open`](Self::open) once, then [`persist`](Self::persist) each batch of
/// the node's persists in the order the node emitted them. After a failed persist, nothing
/// more is written: whether the failed write reached the disk is unknown, so the node must
/// restart from what [`open`](Self::open) finds.
#[derive(Debug)]
pub struct Storage<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    wal: Wal<F::File>,
    hard_state: HardState,
    stopped: bool,
}

impl<F: FileSystem> Storage<F> {
    /// Opens `dir` for node `options.node` of `options.cluster` (creating it if needed) and
    /// reads back everything durable.
    pub fn open(
        fs: F,
        dir: &Path,
        options: &StorageOptions,
    ) -> Result<(Storage<F>, Recovered, OpenReport), StorageError> {
        let zero_fill_bytes = options.checked_zero_fill_bytes()?;
        directory::create(&fs, dir)?;
        let fresh = identity::check(&fs, dir, &options.cluster, options.node)?;
        let hard_state = hard_state::load(&fs, dir)?;
        let snapshot = snapshot::load(&fs, dir)?;
        let snapshot_last = snapshot.as_ref().map_or(Default::default(), |s| s.last.index);
        let (wal, replayed) = Wal::open(
            &fs,
            &dir.join("wal"),
            snapshot_last,
            options.segment_bytes,
            zero_fill_bytes,
        )?;
        let recovered =
            Recovered { hard_state, snapshot, entries: replayed.entries, damaged: false };
        let storage = Storage { fs, dir: dir.to_path_buf(), wal, hard_state, stopped: false };
        let report = OpenReport { fresh, repaired: replayed.repaired };
        Ok((storage, recovered, report))
    }

    /// Makes a batch of persists durable, in order, with one `fdatasync` of the log for all of
    /// them (group commit). The newest hard state of the batch is made durable first; a
    /// snapshot is preceded by every log change before it and followed by compaction.
    pub fn persist(&mut self, batch: &[Persist]) -> Result<PersistReport, StorageError> {
        if self.stopped {
            return Err(StorageError::Stopped);
        }
        let outcome = self.write_batch(batch);
        self.stopped = outcome.is_err();
        outcome
    }

    /// Bytes of the write-ahead log on disk.
    pub fn wal_bytes(&self) -> u64 {
        self.wal.bytes()
    }

    fn write_batch(&mut self, batch: &[Persist]) -> Result<PersistReport, StorageError> {
        // The hard state first, before any snapshot or entry of the batch: terms only grow and
        // a vote is for the current term, so a newer term or vote on disk ahead of the log is
        // always safe, while a log (or snapshot) of a term the hard state has not reached
        // cannot be recovered.
        if let Some(hard_state) = batch.iter().rev().find_map(|persist| persist.hard_state) {
            self.save_hard_state(hard_state)?;
        }
        let mut report = PersistReport::default();
        for persist in batch {
            let Some(snapshot) = &persist.snapshot else {
                if persist.truncate_from.is_some() || !persist.entries.is_empty() {
                    self.wal.append(persist.truncate_from, &persist.entries);
                }
                continue;
            };
            // The entries the snapshot conflicts with must be gone before it lands: a snapshot
            // followed by entries of an older term cannot be recovered. The truncation is
            // written once, here; compaction keeps it for as long as it matters.
            if persist.truncate_from.is_some() {
                self.wal.append(persist.truncate_from, &[]);
            }
            self.wal.sync(&self.fs)?;
            snapshot::save(&self.fs, &self.dir, snapshot)?;
            report.segments_removed += self.wal.compact(&self.fs, snapshot.last.index)?;
            // Entries after the snapshot may not follow the old log: only once it is durable.
            if !persist.entries.is_empty() {
                self.wal.append(None, &persist.entries);
            }
        }
        self.wal.sync(&self.fs)?;
        Ok(report)
    }

    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        if hard_state != self.hard_state {
            hard_state::save(&self.fs, &self.dir, hard_state)?;
            self.hard_state = hard_state;
        }
        Ok(())
    }
}
