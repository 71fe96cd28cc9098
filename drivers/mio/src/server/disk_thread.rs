//! The disk thread: makes persists durable in batches and tells the event loop how far it got.
//!
//! Group commit: the thread takes every persist queued while its previous `fdatasync` ran and
//! makes them all durable with the next one, so under load one sync covers many client writes.
//! It publishes the id of the last durable persist and wakes the event loop (a mio `Waker`),
//! which then feeds `Persisted { id }` to the replica.

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use mio::Waker;
use raftkv_core::LogIndex;
use raftkv_core::raft::{Persist, PersistId};
use raftkv_storage::{ObsoleteSegments, RealFs, SegmentPreparer, Storage, StorageError};
use tracing::{info, warn};

use super::instruments::Instruments;

/// A batch that takes longer than this to become durable is logged: elections and client
/// latency suffer long before anything fails.
const SLOW_DISK: std::time::Duration = std::time::Duration::from_millis(500);

/// What the disk thread shares with the event loop.
#[derive(Debug, Default)]
struct Shared {
    /// The id of the last durable persist.
    durable: AtomicU64,
    /// Bytes of the WAL on disk.
    wal_bytes: AtomicU64,
    /// Set when a write or sync failed: the node must stop.
    failure: Mutex<Option<StorageError>>,
}

/// What the event loop asks of the disk thread, done in the order asked.
#[derive(Debug)]
enum DiskWork {
    /// Make these durable.
    Persists(Vec<Persist>),
    /// A snapshot saved apart covers the log up to this index: drop the segments it covers.
    CompactLog(LogIndex),
}

/// The event loop's handle on the disk thread.
#[derive(Debug)]
pub(crate) struct DiskThread {
    queue: Option<Sender<DiskWork>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The data directory's lock, released once the thread has stopped writing.
    _lock: File,
}

impl DiskThread {
    /// Starts the thread, which owns `storage` from now on; `lock` is held until it stops.
    /// It records each batch into `instruments`.
    pub(crate) fn spawn(
        storage: Storage<RealFs>,
        lock: File,
        waker: Arc<Waker>,
        instruments: Instruments,
    ) -> std::io::Result<DiskThread> {
        let shared = Arc::new(Shared::default());
        shared.wal_bytes.store(storage.wal_bytes(), Ordering::Relaxed);
        let (queue, receiver) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let segments = spawn_segment_thread(storage.segment_preparer())?;
        let thread = thread::Builder::new().name("raftkv-disk".to_string()).spawn(move || {
            run(storage, &receiver, &thread_shared, &waker, &segments, &instruments);
        })?;
        Ok(DiskThread { queue: Some(queue), shared, thread: Some(thread), _lock: lock })
    }

    /// Queues persists. Persists are made durable in the order they are queued.
    pub(crate) fn submit(&self, persists: Vec<Persist>) {
        if let Some(queue) = &self.queue {
            // A closed queue means the thread stopped on a failure, which `take_failure`
            // reports.
            let _ = queue.send(DiskWork::Persists(persists));
        }
    }

    /// Drops the log's segments up to `index`, which a snapshot saved apart covers.
    pub(crate) fn compact_log(&self, index: LogIndex) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(DiskWork::CompactLog(index));
        }
    }

    /// The last persist made durable (every earlier one is too).
    pub(crate) fn durable(&self) -> PersistId {
        PersistId(self.shared.durable.load(Ordering::Acquire))
    }

    /// Bytes of the WAL on disk.
    pub(crate) fn wal_bytes(&self) -> u64 {
        self.shared.wal_bytes.load(Ordering::Relaxed)
    }

    /// Why the disk failed, if it did (once: the failure is handed over). The node cannot go
    /// on: whether the failed write reached the disk is unknown.
    pub(crate) fn take_failure(&self) -> Option<StorageError> {
        self.shared.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Makes everything queued durable and stops the thread.
    pub(crate) fn shut_down(mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the disk thread panicked");
            }
        }
    }
}

/// Work the segment thread may have queued. The disk thread asks at most once per batch, so
/// the queue only fills if the segment thread is stuck on the file system; work that does not
/// fit is dropped as a failed preparation or removal would be (see `spawn_segment_thread`).
const SEGMENT_WORK_MAX: usize = 64;

/// What the disk thread asks of the segment thread.
enum SegmentWork {
    /// Prepare this segment ahead of need.
    Prepare(u64),
    /// Remove segments that a snapshot covers.
    Remove(ObsoleteSegments<RealFs>),
}

/// Starts the thread that does the WAL's file work off the path of its syncs: it prepares
/// segments ahead of need, one sequence number at a time as the disk thread asks, so that
/// starting a segment never waits for a file to be created and zero-filled, and removes the
/// segments a snapshot covers. It stops when the disk thread drops its end of the queue. A
/// preparation that fails is logged, and the log then creates that segment itself; a removal
/// that fails is logged, and the segments stay until the next start (the log replays to the
/// same with them).
fn spawn_segment_thread(
    preparer: SegmentPreparer<RealFs>,
) -> std::io::Result<SyncSender<SegmentWork>> {
    let (requests, receiver) = mpsc::sync_channel::<SegmentWork>(SEGMENT_WORK_MAX);
    thread::Builder::new().name("raftkv-segments".to_string()).spawn(move || {
        while let Ok(first) = receiver.recv() {
            // Only the newest preparation matters: the log passed the others by.
            let mut to_prepare = None;
            for work in std::iter::once(first).chain(receiver.try_iter()) {
                match work {
                    SegmentWork::Prepare(sequence) => to_prepare = Some(sequence),
                    SegmentWork::Remove(segments) => remove(segments),
                }
            }
            if let Some(sequence) = to_prepare {
                if let Err(error) = preparer.prepare(sequence) {
                    warn!(%error, sequence, "cannot prepare the next WAL segment ahead of need");
                }
            }
        }
    })?;
    Ok(requests)
}

/// Queues work for the segment thread without ever waiting for it: the disk thread's syncs
/// must not stall behind file creation or removal.
fn ask(segments: &SyncSender<SegmentWork>, work: SegmentWork) {
    match segments.try_send(work) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(SegmentWork::Prepare(sequence))) => {
            warn!(
                sequence,
                "the segment thread is behind: the log creates this WAL segment itself"
            );
        }
        Err(TrySendError::Full(SegmentWork::Remove(_))) => {
            warn!("the segment thread is behind: covered WAL segments stay until the next start");
        }
    }
}

fn remove(segments: ObsoleteSegments<RealFs>) {
    match segments.remove() {
        Ok(removed) => info!(segments = removed, "removed WAL segments covered by the snapshot"),
        Err(error) => warn!(%error, "cannot remove WAL segments covered by the snapshot"),
    }
}

fn run(
    mut storage: Storage<RealFs>,
    receiver: &Receiver<DiskWork>,
    shared: &Shared,
    waker: &Waker,
    segments: &SyncSender<SegmentWork>,
    instruments: &Instruments,
) {
    let mut batch = Vec::new();
    let mut prepared = None;
    while let Ok(first) = receiver.recv() {
        // Asked before the batch, so that the preparer works while the batch syncs.
        if storage.segment_to_prepare() != prepared {
            prepared = storage.segment_to_prepare();
            if let Some(sequence) = prepared {
                ask(segments, SegmentWork::Prepare(sequence));
            }
        }
        let mut compact_to: Option<LogIndex> = None;
        for work in std::iter::once(first).chain(receiver.try_iter()) {
            match work {
                DiskWork::Persists(persists) => batch.extend(persists),
                DiskWork::CompactLog(index) => {
                    compact_to = Some(compact_to.map_or(index, |other| other.max(index)));
                }
            }
        }
        let outcome = write_batch(&mut storage, &batch, instruments).and_then(|removed| {
            if let Some(index) = compact_to {
                let obsolete = storage.compact_log_apart(index)?;
                if !obsolete.is_empty() {
                    ask(segments, SegmentWork::Remove(obsolete));
                }
            }
            Ok(removed)
        });
        match outcome {
            Ok(segments_removed) => {
                if segments_removed > 0 {
                    info!(
                        segments = segments_removed,
                        "removed WAL segments covered by the snapshot"
                    );
                }
                shared.wal_bytes.store(storage.wal_bytes(), Ordering::Relaxed);
                if let Some(last) = batch.last() {
                    shared.durable.store(last.id.0, Ordering::Release);
                }
            }
            Err(error) => {
                *shared.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(error);
                let _ = waker.wake();
                return;
            }
        }
        batch.clear();
        if let Err(error) = waker.wake() {
            warn!(%error, "cannot wake the event loop");
        }
    }
}

/// Makes `batch` durable (nothing to do if empty) and records it; returns how many WAL
/// segments went.
fn write_batch(
    storage: &mut Storage<RealFs>,
    batch: &[Persist],
    instruments: &Instruments,
) -> Result<usize, StorageError> {
    if batch.is_empty() {
        return Ok(0);
    }
    for persist in batch {
        if let Some(snapshot) = &persist.snapshot {
            info!(last = %snapshot.last, bytes = snapshot.data.len(), "saving snapshot");
        }
    }
    let started = std::time::Instant::now();
    let outcome = storage.persist(batch);
    let took = started.elapsed();
    if took >= SLOW_DISK {
        warn!(
            took_ms = took.as_millis() as u64,
            persists = batch.len(),
            "slow disk: writing and syncing one batch took longer than {SLOW_DISK:?}"
        );
    }
    let segments_removed = outcome?.segments_removed;
    let entries = batch.iter().flat_map(|persist| &persist.entries);
    let bytes =
        entries.clone().fold(0usize, |bytes, entry| bytes.saturating_add(entry.size_bytes()));
    instruments.record_batch(took, entries.count(), bytes);
    Ok(segments_removed)
}
