//! The disk thread: makes persists durable in batches and tells the event loop how far it got.
//!
//! Group commit: the thread takes every persist queued while its previous `fdatasync` ran and
//! makes them all durable with the next one, so under load one sync covers many client writes.
//! It publishes the id of the last durable persist and wakes the event loop (a mio `Waker`),
//! which then feeds `Persisted { id }` to the replica.
//!
//! It also reads back from the WAL the entries of appends the replica no longer holds in memory
//! (`Output::SendEntries`), after the batch it writes, and hands the messages to the event loop
//! to send ([`DiskThread::take_read_back`]); likewise the committed entries a restart left on
//! disk, for the replica to apply (`Output::LoadEntries`). Those must be read: if they cannot
//! be, the node stops, as on a failed write, and its next start checks the log.
//!
//! When nothing is queued or being written, the event loop may instead write a batch itself
//! ([`DiskThread::persist_inline_if_idle`]): two thread hand-offs fewer on the path of the reply or
//! acknowledgement that waits for it.

use std::fs::File;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use mio::Waker;
use raftkv_core::LogIndex;
use raftkv_core::raft::{EntriesToLoad, EntriesToSend, Entry, Message, Persist, PersistId};
use raftkv_storage::{ObsoleteSegments, RealFs, SegmentPreparer, Storage, StorageError};
use tracing::{info, warn};

use super::instruments::Instruments;

/// A batch that takes longer than this to become durable is logged: elections and client
/// latency suffer long before anything fails.
const SLOW_DISK: std::time::Duration = std::time::Duration::from_millis(500);

/// What the disk thread shares with the event loop.
#[derive(Debug)]
struct Shared {
    /// The id of the last durable persist.
    durable: AtomicU64,
    /// Bytes of the WAL on disk.
    wal_bytes: AtomicU64,
    /// Set when a write or sync failed: the node must stop.
    failure: Mutex<Option<StorageError>>,
    /// Work queued for the disk thread and not yet done. Only the event loop queues work, so
    /// when it reads zero, everything it queued is durable and it may write the next batch
    /// itself, in order.
    unfinished: AtomicUsize,
    /// The storage, written by the disk thread or, when that has nothing to do, by the loop.
    writer: Mutex<Writer>,
    /// Appends read back from the WAL, for the event loop to send: as many as the replica
    /// asked for, which its in-flight windows bound.
    read_back: Mutex<Vec<ReadBack>>,
}

/// The entries of an `Output::SendEntries`, read back from the WAL, or not.
#[derive(Debug)]
pub(crate) enum ReadBack {
    /// The append, entries and all, checked.
    Read(Message),
    /// The entries up to this index could not be read back (logged): the replica is told.
    Unreadable(LogIndex),
    /// The entries of an `Output::LoadEntries`, checked, for the replica to apply.
    Loaded(Vec<Entry>),
}

impl Shared {
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records why the disk failed; the first failure is the one that counts (a write after
    /// it fails only because the storage stopped).
    fn fail(&self, error: StorageError) {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
    }
}

/// What the event loop asks of the disk thread, done in the order asked.
#[derive(Debug)]
enum DiskWork {
    /// Make these durable.
    Persists(Vec<Persist>),
    /// A snapshot saved apart covers the log up to this index: drop the segments it covers.
    CompactLog(LogIndex),
    /// Read entries back from the WAL.
    Read(Read),
}

/// Entries to read back from the WAL.
#[derive(Debug)]
enum Read {
    /// The entries of this append, to send.
    Send(EntriesToSend),
    /// These entries, to apply.
    Load(EntriesToLoad),
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
    /// Starts the thread, which writes `storage` from now on; `lock` is held until it stops.
    /// Each batch is recorded into `instruments`.
    pub(crate) fn spawn(
        storage: Storage<RealFs>,
        lock: File,
        waker: Arc<Waker>,
        instruments: Instruments,
    ) -> std::io::Result<DiskThread> {
        let segments = spawn_segment_thread(storage.segment_preparer())?;
        let shared = Arc::new(Shared {
            durable: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(storage.wal_bytes()),
            failure: Mutex::new(None),
            unfinished: AtomicUsize::new(0),
            writer: Mutex::new(Writer { storage, segments, prepared: None, instruments }),
            read_back: Mutex::new(Vec::new()),
        });
        let (queue, receiver) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new().name("raftkv-disk".to_string()).spawn(move || {
            run(&receiver, &thread_shared, &waker);
        })?;
        Ok(DiskThread { queue: Some(queue), shared, thread: Some(thread), _lock: lock })
    }

    /// Queues persists. Persists are made durable in the order they are queued.
    pub(crate) fn submit(&self, persists: Vec<Persist>) {
        self.queue_work(DiskWork::Persists(persists));
    }

    /// Makes `persists` durable on the calling thread if the disk thread has nothing queued or
    /// in hand, so that they still follow everything before them; otherwise queues them as
    /// [`submit`](Self::submit) does. Returns whether they were written here: then
    /// [`durable`](Self::durable) covers them, unless [`take_failure`](Self::take_failure)
    /// says why not.
    pub(crate) fn persist_inline_if_idle(&self, persists: Vec<Persist>) -> bool {
        if self.shared.unfinished.load(Ordering::Acquire) > 0 {
            self.submit(persists);
            return false;
        }
        if let Err(error) = self.shared.writer().write(&persists, None, &self.shared) {
            self.shared.fail(error);
        }
        true
    }

    /// Drops the log's segments up to `index`, which a snapshot saved apart covers.
    pub(crate) fn compact_log(&self, index: LogIndex) {
        self.queue_work(DiskWork::CompactLog(index));
    }

    /// Reads the entries of `append` back from the WAL, after what is queued before it; the
    /// event loop finds the message in [`take_read_back`](Self::take_read_back).
    pub(crate) fn read_entries(&self, append: EntriesToSend) {
        self.queue_work(DiskWork::Read(Read::Send(append)));
    }

    /// Reads the entries of `load` back from the WAL, after what is queued before it; the
    /// event loop finds them in [`take_read_back`](Self::take_read_back), or, if they cannot be
    /// read, the failure in [`take_failure`](Self::take_failure).
    pub(crate) fn load_entries(&self, load: EntriesToLoad) {
        self.queue_work(DiskWork::Read(Read::Load(load)));
    }

    /// The appends read back (or not) since the last call.
    pub(crate) fn take_read_back(&self) -> Vec<ReadBack> {
        std::mem::take(&mut *self.shared.read_back.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn queue_work(&self, work: DiskWork) {
        if let Some(queue) = &self.queue {
            // Counted first: the thread may finish it before `send` returns.
            self.shared.unfinished.fetch_add(1, Ordering::AcqRel);
            // A closed queue means the thread stopped on a failure, which `take_failure`
            // reports (and the count stays up: nothing is written inline after a failure).
            let _ = queue.send(work);
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
        self.shared.failure.lock().unwrap_or_else(PoisonError::into_inner).take()
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

/// The storage and what writing it takes, whichever thread writes.
#[derive(Debug)]
struct Writer {
    storage: Storage<RealFs>,
    /// The segment thread's queue.
    segments: SyncSender<SegmentWork>,
    /// The segment last asked to be prepared.
    prepared: Option<u64>,
    instruments: Instruments,
}

impl Writer {
    /// Makes `batch` durable, then drops the segments a snapshot covers up to `compact_to`,
    /// and publishes how far the log is durable.
    fn write(
        &mut self,
        batch: &[Persist],
        compact_to: Option<LogIndex>,
        shared: &Shared,
    ) -> Result<(), StorageError> {
        // Asked before the batch, so that the preparer works while the batch syncs.
        if self.storage.segment_to_prepare() != self.prepared {
            self.prepared = self.storage.segment_to_prepare();
            if let Some(sequence) = self.prepared {
                ask(&self.segments, SegmentWork::Prepare(sequence));
            }
        }
        let segments_removed = write_batch(&mut self.storage, batch, &self.instruments)?;
        if segments_removed > 0 {
            info!(segments = segments_removed, "removed WAL segments covered by the snapshot");
        }
        if let Some(index) = compact_to {
            let obsolete = self.storage.compact_log_apart(index)?;
            if !obsolete.is_empty() {
                ask(&self.segments, SegmentWork::Remove(obsolete));
            }
        }
        shared.wal_bytes.store(self.storage.wal_bytes(), Ordering::Relaxed);
        if let Some(last) = batch.last() {
            shared.durable.store(last.id.0, Ordering::Release);
        }
        Ok(())
    }

    /// The entries of `read` read back from the WAL and checked; an error if entries to
    /// apply cannot be.
    fn read_back(&self, read: Read) -> Result<ReadBack, StorageError> {
        match read {
            Read::Send(append) => Ok(self.read_to_send(append)),
            Read::Load(load) => self.load(load).map(ReadBack::Loaded),
        }
    }

    /// The committed entries of `load`, read back from the WAL and checked.
    fn load(&self, load: EntriesToLoad) -> Result<Vec<Entry>, StorageError> {
        match self.storage.read_entries(load.first, load.last)? {
            Some(entries) if load.matches(&entries) => Ok(entries),
            _ => Err(StorageError::Refused {
                reason: format!(
                    "the WAL does not give back the committed entries {}..={} this node must \
                     apply; a restart checks the log and cuts away what is damaged",
                    load.first, load.last
                ),
            }),
        }
    }

    /// The entries of `append` read back from the WAL and checked, in their message.
    fn read_to_send(&self, append: EntriesToSend) -> ReadBack {
        let through = append.last.index;
        match self.storage.read_entries(append.first(), append.last) {
            Ok(Some(entries)) if append.matches(&entries) => {
                ReadBack::Read(append.into_message(entries))
            }
            Ok(_) => {
                info!(%append, "the WAL does not hold the entries of this append (compacted)");
                ReadBack::Unreadable(through)
            }
            Err(error) => {
                warn!(%error, %append, "cannot read the entries of this append back from the WAL");
                ReadBack::Unreadable(through)
            }
        }
    }
}

/// Work the segment thread may have queued. The disk thread asks at most once per batch, so
/// the queue only fills if the segment thread is stuck on the file system; work that does not
/// fit is dropped as a failed preparation or removal would be (see `spawn_segment_thread`).
const SEGMENT_WORK_MAX: usize = 64;

/// What the disk thread asks of the segment thread.
#[derive(Debug)]
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

fn run(receiver: &Receiver<DiskWork>, shared: &Shared, waker: &Waker) {
    let mut batch = Vec::new();
    let mut reads = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut compact_to: Option<LogIndex> = None;
        let mut taken = 0;
        for work in std::iter::once(first).chain(receiver.try_iter()) {
            taken += 1;
            match work {
                DiskWork::Persists(persists) => batch.extend(persists),
                DiskWork::CompactLog(index) => {
                    compact_to = Some(compact_to.map_or(index, |other| other.max(index)));
                }
                DiskWork::Read(read) => reads.push(read),
            }
        }
        let mut writer = shared.writer();
        let outcome = writer.write(&batch, compact_to, shared);
        let batch_was_empty = batch.is_empty();
        batch.clear();
        if let Err(error) = outcome {
            shared.fail(error);
            let _ = waker.wake();
            return;
        }
        // After the batch: the entries asked for were durable before it, and a compaction in
        // it removes only what the replica's snapshot covers (it then sends that instead). The
        // loop learns what the batch made durable first: commits need not wait for the reads.
        if !reads.is_empty() && !batch_was_empty {
            wake(waker);
        }
        let read_back: Result<Vec<ReadBack>, StorageError> =
            reads.drain(..).map(|read| writer.read_back(read)).collect();
        drop(writer);
        let read_back = match read_back {
            Ok(read_back) => read_back,
            Err(error) => {
                shared.fail(error);
                let _ = waker.wake();
                return;
            }
        };
        if !read_back.is_empty() {
            shared.read_back.lock().unwrap_or_else(PoisonError::into_inner).extend(read_back);
        }
        // After `durable`: the loop that reads zero finds everything it queued durable.
        shared.unfinished.fetch_sub(taken, Ordering::AcqRel);
        wake(waker);
    }
}

fn wake(waker: &Waker) {
    if let Err(error) = waker.wake() {
        warn!(%error, "cannot wake the event loop");
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use raftkv_core::raft::{Entry, Payload};
    use raftkv_core::{NodeId, Term};
    use raftkv_storage::StorageOptions;

    use super::*;

    fn options() -> StorageOptions {
        StorageOptions::new("test", NodeId(1))
    }

    /// Persist `id` appends entry `id`.
    fn append(id: u64) -> Persist {
        let entry =
            Entry { index: LogIndex(id), term: Term(1), payload: Payload::Command(vec![7; 100]) };
        Persist {
            id: PersistId(id),
            hard_state: None,
            truncate_from: None,
            entries: vec![entry],
            snapshot: None,
            install_received: None,
            snapshot_chunk: None,
        }
    }

    fn spawn(dir: &Path, poll: &mio::Poll) -> DiskThread {
        let (storage, _, _) = Storage::open(RealFs, dir, &options()).expect("opens");
        let lock = File::create(dir.join("lock")).expect("a lock file");
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).expect("a waker"));
        DiskThread::spawn(storage, lock, waker, Instruments::default()).expect("spawns")
    }

    /// Waits until the disk thread has finished what it was given, `id` last.
    fn wait_until_idle(disk: &DiskThread, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while disk.shared.unfinished.load(Ordering::Acquire) > 0 {
            assert!(Instant::now() < deadline, "persist {id} never became durable");
            thread::yield_now();
        }
        assert_eq!(disk.durable(), PersistId(id));
    }

    #[test]
    fn a_persist_is_written_inline_only_once_everything_queued_before_it_is_durable() {
        let dir = std::env::temp_dir().join(format!("raftkv-disk-inline-{}", std::process::id()));
        let poll = mio::Poll::new().expect("a poll");
        let disk = spawn(&dir, &poll);
        assert!(disk.persist_inline_if_idle(vec![append(1)]), "an idle disk thread");
        // Written and synced before the call returned: durable at once.
        assert_eq!(disk.durable(), PersistId(1));
        // The disk thread is held up in the middle of persist 2: persist 3 may not overtake
        // it, nor be reported durable before it is written.
        let held = disk.shared.writer();
        disk.submit(vec![append(2)]);
        assert!(!disk.persist_inline_if_idle(vec![append(3)]), "queued behind persist 2");
        assert_eq!(disk.durable(), PersistId(1));
        drop(held);
        wait_until_idle(&disk, 3);
        assert!(disk.persist_inline_if_idle(vec![append(4)]), "idle again");
        assert_eq!(disk.durable(), PersistId(4));
        assert!(disk.take_failure().is_none());
        disk.shut_down();

        let (_, recovered, _) = Storage::open(RealFs, &dir, &options()).expect("reopens");
        let indexes: Vec<u64> = recovered.entries.iter().map(|entry| entry.index.0).collect();
        assert_eq!(indexes, [1, 2, 3, 4]);
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
