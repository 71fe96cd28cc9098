//! A node's storage: opening its data directory and making persists durable.

use std::path::{Path, PathBuf};

use raftkv_core::raft::{Entry, HardState, Persist, Recovered};
use raftkv_core::{LogId, LogIndex};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::options::StorageOptions;
use crate::received_snapshot::{self, ReceivedFile};
use crate::recovery::{self, Opened};
use crate::report::{OpenReport, PersistReport};
use crate::snapshot_saver::{SnapshotSaver, SnapshotSlot};
use crate::wal::{LogChangeRef, ObsoleteSegments, SegmentPreparer, Wal};
use crate::{hard_state, snapshot};

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
    /// The index of the snapshot on disk, shared with the snapshot savers.
    snapshot_slot: SnapshotSlot,
    /// The snapshot being received from a leader, if any.
    received: Option<ReceivedFile<F>>,
    stopped: bool,
}

impl<F: FileSystem> Storage<F> {
    /// Opens `dir` for node `options.node` of `options.cluster` (creating it if needed) and
    /// reads back everything durable. A torn write at the end of the log is cut off; damage to
    /// what was acknowledged is cut away and reported (`HardState::damaged`, and in the
    /// report); a directory of another node or cluster, a damaged identity file and WAL
    /// segments of another format are refused.
    pub fn open(
        fs: F,
        dir: &Path,
        options: &StorageOptions,
    ) -> Result<(Storage<F>, Recovered, OpenReport), StorageError> {
        let Opened { wal, hard_state, mut recovered, report } = recovery::open(&fs, dir, options)?;
        let saved = recovered.snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.last.index);
        let received = received_snapshot::open(&fs, dir, saved)?;
        recovered.partial_snapshot = received.as_ref().map(ReceivedFile::partial);
        let storage = Storage {
            fs,
            dir: dir.to_path_buf(),
            wal,
            hard_state,
            snapshot_slot: SnapshotSlot::new(saved),
            received,
            stopped: false,
        };
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

    /// The WAL segment worth preparing now (see [`segment_preparer`](Self::segment_preparer)):
    /// the next one, once the active segment is a quarter full, so that a node that writes
    /// little never prepares a whole segment in vain, or, if the active segment grows by
    /// zero-fills (the first one of a new log, or one reopened at a start), once it holds a
    /// zero-fill's worth of records: the log leaves it for the prepared one at its next
    /// zero-fill. `None` before that, or once sequence numbers are exhausted.
    pub fn segment_to_prepare(&self) -> Option<u64> {
        self.wal.segment_to_prepare()
    }

    /// A preparer of this directory's WAL segments, to run ahead of need on a thread (or at a
    /// moment) of the caller's choosing: a segment prepared in time starts without a file
    /// creation, header sync or zero-fill on the path of an append. Without one, the log
    /// creates its segments itself.
    pub fn segment_preparer(&self) -> SegmentPreparer<F>
    where
        F: Clone,
    {
        self.wal.preparer(&self.fs)
    }

    /// A saver of the node's own snapshots, to run on a thread (or at a moment) of the
    /// caller's choosing, apart from the persists.
    pub fn snapshot_saver(&self) -> SnapshotSaver<F>
    where
        F: Clone,
    {
        SnapshotSaver::new(self.fs.clone(), &self.dir, self.snapshot_slot.clone())
    }

    /// The log entries `first..=last.index`, read back from the WAL with their checksums
    /// checked: consecutive, and the last one `last` (its index and term). For committed
    /// entries only, which every later write leaves as they are, or entries the log holds and
    /// keeps until the read: a leader sending entries it no longer holds in memory
    /// (`raftkv_core::raft::Output::SendEntries`), a node applying those it left on disk at its
    /// start (`raftkv_core::raft::Output::LoadEntries`). `Ok(None)` if
    /// the WAL no longer holds them (a compaction removed them); an error if a record on the
    /// way is damaged or cannot be read. Reads up to 64 KiB of records before the range.
    pub fn read_entries(
        &self,
        first: LogIndex,
        last: LogId,
    ) -> Result<Option<Vec<Entry>>, StorageError> {
        self.wal.read_entries(&self.fs, first, last)
    }

    /// Drops the log's segments that a saved snapshot covers, up to `index` at most (a
    /// snapshot a [`SnapshotSaver`] saved at `index`). Returns how many segments went. Like
    /// [`persist`](Self::persist), it writes nothing after a failure.
    pub fn compact_log(&mut self, index: LogIndex) -> Result<usize, StorageError> {
        self.compacting(index, |wal, fs, covered| wal.compact(fs, covered))
    }

    /// Like [`compact_log`](Self::compact_log), but the segments are only taken out of the log:
    /// the caller removes them ([`ObsoleteSegments::remove`]) where it likes, so that the log's
    /// syncs do not wait for the removals.
    pub fn compact_log_apart(
        &mut self,
        index: LogIndex,
    ) -> Result<ObsoleteSegments<F>, StorageError>
    where
        F: Clone,
    {
        self.compacting(index, |wal, fs, covered| wal.compact_apart(fs, covered))
    }

    /// Runs `compact` up to `index`, or to the snapshot on disk if it covers less; nothing
    /// once stopped, and a failure stops the storage.
    fn compacting<T>(
        &mut self,
        index: LogIndex,
        compact: impl FnOnce(&mut Wal<F::File>, &F, LogIndex) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if self.stopped {
            return Err(StorageError::Stopped);
        }
        let covered = index.min(self.snapshot_slot.saved());
        let outcome = compact(&mut self.wal, &self.fs, covered);
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
        // Every change of the batch goes into one record, written with one sync, unless a
        // snapshot comes between.
        let mut changes: Vec<LogChangeRef<'_>> = Vec::new();
        for persist in batch {
            if persist.snapshot.is_none() && persist.install_received.is_none() {
                if persist.truncate_from.is_some() || !persist.entries.is_empty() {
                    let (truncate_from, entries) = (persist.truncate_from, &persist.entries[..]);
                    changes.push(LogChangeRef { truncate_from, entries });
                }
                // Apart from the log: a chunk of a snapshot being received from the leader.
                if let Some(chunk) = &persist.snapshot_chunk {
                    received_snapshot::write(&self.fs, &self.dir, &mut self.received, chunk)?;
                }
                continue;
            }
            // The entries the snapshot conflicts with must be gone before it lands: a snapshot
            // followed by entries of an older term cannot be recovered. The truncation is
            // written once, here; compaction keeps it for as long as it matters.
            if let Some(from) = persist.truncate_from {
                changes.push(LogChangeRef { truncate_from: Some(from), entries: &[] });
            }
            if !changes.is_empty() {
                self.wal.append(&self.fs, &changes)?;
                changes.clear();
            }
            let covered = self.store_snapshots(persist)?;
            report.segments_removed += self.wal.compact(&self.fs, covered)?;
            if self.received.as_ref().is_some_and(|held| held.partial().last.index <= covered) {
                self.received = None;
                received_snapshot::remove(&self.fs, &self.dir)?;
            }
            // A chunk of a newer snapshot than the one installed, which it follows.
            if let Some(chunk) = &persist.snapshot_chunk {
                received_snapshot::write(&self.fs, &self.dir, &mut self.received, chunk)?;
            }
            // Entries after the snapshot may not follow the old log: only once it is durable.
            if !persist.entries.is_empty() {
                changes.push(LogChangeRef { truncate_from: None, entries: &persist.entries });
            }
        }
        if !changes.is_empty() {
            self.wal.append(&self.fs, &changes)?;
        }
        received_snapshot::sync(&self.fs, &self.dir, &mut self.received)?;
        Ok(report)
    }

    /// Makes the snapshot received whole, then the snapshot, of `persist` the snapshot on
    /// disk, each unless the disk holds one as recent: a leader's snapshot, installed beyond
    /// what the node had applied when it took it, may be covered by a snapshot of the node's
    /// own that a saver saved meanwhile, which must stay (the log it kept starts after it).
    /// Returns the last index they cover.
    fn store_snapshots(&mut self, persist: &Persist) -> Result<LogIndex, StorageError> {
        let installed = persist.install_received.as_ref().map(|installed| installed.last.index);
        let taken = persist.snapshot.as_ref().map(|snapshot| snapshot.last.index);
        let covered = installed.max(taken).expect("a persist with a snapshot");
        let mut saved = self.snapshot_slot.lock();
        if let Some(installed) = &persist.install_received {
            if installed.last.index > saved.saved() {
                received_snapshot::promote(&self.fs, &self.dir, &mut self.received, installed)?;
                saved.set_saved(installed.last.index);
            }
        }
        if let Some(snapshot) = &persist.snapshot {
            if snapshot.last.index > saved.saved() {
                snapshot::save(&self.fs, &self.dir, snapshot)?;
                saved.set_saved(snapshot.last.index);
            }
        }
        Ok(covered)
    }

    fn save_hard_state(&mut self, hard_state: HardState) -> Result<(), StorageError> {
        if hard_state != self.hard_state {
            hard_state::save(&self.fs, &self.dir, hard_state)?;
            self.hard_state = hard_state;
        }
        Ok(())
    }
}
