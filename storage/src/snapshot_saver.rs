//! Saving the node's own snapshots apart from its persists, from another thread than the one
//! that writes the log: encoding and writing a large state takes long, and the log's group
//! commit must not wait behind it.
//!
//! Two writers may then replace the snapshot file, this one and the log's writer (a snapshot
//! installed from the leader comes with the persists it is ordered with). They share one lock
//! and the index of the snapshot on disk, so that the file only ever moves forward: a
//! snapshot of the node's own state, encoded while a newer one from the leader was installed,
//! is dropped rather than replacing it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use std::io;

use raftkv_core::raft::{Membership, Snapshot};
use raftkv_core::{LogId, LogIndex};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::snapshot;

/// The index of the snapshot on disk: writers take its lock (one replaces the file at a
/// time, and only forward); the log's compaction reads the index without waiting, since a
/// save holds the lock for as long as it encodes and writes a whole state.
#[derive(Clone, Debug, Default)]
pub(crate) struct SnapshotSlot(Arc<Slot>);

#[derive(Debug, Default)]
struct Slot {
    writers: Mutex<()>,
    /// Set only with `writers` held, once the file is in place.
    saved: AtomicU64,
}

/// A writer's hold on the slot.
pub(crate) struct SlotWriter<'a> {
    _held: MutexGuard<'a, ()>,
    saved: &'a AtomicU64,
}

impl SnapshotSlot {
    pub(crate) fn new(saved: LogIndex) -> SnapshotSlot {
        SnapshotSlot(Arc::new(Slot { writers: Mutex::new(()), saved: AtomicU64::new(saved.0) }))
    }

    /// Takes the writers' lock. A writer that panicked holding it left the index as it was:
    /// the file is replaced atomically, so the index is still true.
    pub(crate) fn lock(&self) -> SlotWriter<'_> {
        let held = self.0.writers.lock().unwrap_or_else(PoisonError::into_inner);
        SlotWriter { _held: held, saved: &self.0.saved }
    }

    /// The index of the snapshot on disk, without waiting for a writer.
    pub(crate) fn saved(&self) -> LogIndex {
        LogIndex(self.0.saved.load(Ordering::Acquire))
    }
}

impl SlotWriter<'_> {
    /// The index of the snapshot on disk.
    pub(crate) fn saved(&self) -> LogIndex {
        LogIndex(self.saved.load(Ordering::Acquire))
    }

    /// The file now holds the snapshot at `index`, a later one than before.
    pub(crate) fn set_saved(&mut self, index: LogIndex) {
        debug_assert!(index > self.saved(), "the snapshot file only moves forward");
        self.saved.store(index.0, Ordering::Release);
    }
}

/// Saves snapshots of the node's own state (see the module's documentation).
#[derive(Debug)]
pub struct SnapshotSaver<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    slot: SnapshotSlot,
}

/// What [`SnapshotSaver::save`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// The snapshot is durable: the log may drop the entries it covers.
    Saved,
    /// The disk holds a snapshot as recent already (installed from the leader meanwhile),
    /// which stays.
    Superseded,
}

impl<F: FileSystem> SnapshotSaver<F> {
    pub(crate) fn new(fs: F, dir: &Path, slot: SnapshotSlot) -> SnapshotSaver<F> {
        SnapshotSaver { fs, dir: dir.to_path_buf(), slot }
    }

    /// Replaces the snapshot file with `snapshot`, durably, unless the file holds one as
    /// recent already. The entries it covers must be durable in the log (so that the hard
    /// state on disk has reached its term); the log's writer drops them later
    /// (`Storage::compact_log`).
    pub fn save(&self, snapshot: &Snapshot) -> Result<Saved, StorageError> {
        let mut saved = self.slot.lock();
        if snapshot.last.index <= saved.saved() {
            return Ok(Saved::Superseded);
        }
        snapshot::save(&self.fs, &self.dir, snapshot)?;
        saved.set_saved(snapshot.last.index);
        Ok(Saved::Saved)
    }

    /// Like [`save`](Self::save), for the snapshot at `last` with `membership` whose
    /// `data_len` bytes of data `write_data` writes, without holding the data in memory. The
    /// lock is held while the data is written: the log's writer waits to install a leader's
    /// snapshot meanwhile, while its appends and compactions go on (they read the index on
    /// disk without the lock).
    pub fn save_streaming(
        &self,
        last: LogId,
        membership: &Membership,
        data_len: u64,
        write_data: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
    ) -> Result<Saved, StorageError> {
        let mut saved = self.slot.lock();
        if last.index <= saved.saved() {
            return Ok(Saved::Superseded);
        }
        snapshot::save_streaming(&self.fs, &self.dir, last, membership, data_len, write_data)?;
        saved.set_saved(last.index);
        Ok(Saved::Saved)
    }
}
