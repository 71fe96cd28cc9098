//! The snapshot thread: encodes the snapshots the replica asks for and saves them, away from
//! the event loop (which only takes the view, in constant time) and from the disk thread
//! (whose group commit must not wait behind a large write). It hands each saved snapshot back
//! through a slot and wakes the event loop, which tells the replica and has the disk thread
//! drop the log segments the snapshot covers. It also frees what the replica let go of: the
//! log entries a snapshot covers (as many as a whole threshold's worth) and the state a
//! snapshot installed from the leader replaced, which would hold up the event loop.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::Waker;
use raftkv_core::kv::KvStore;
use raftkv_core::raft::SavedSnapshot;
use raftkv_core::retired::Retired;
use raftkv_core::snapshot_job::SnapshotJob;
use raftkv_storage::{RealFs, Saved, SnapshotSaver, StorageError};
use tracing::{info, warn};

use super::instruments::Instruments;

/// The thread's nice value: encoding a large state takes a core for seconds, and on a busy
/// machine the event loop (and the disk thread) must not wait for it to be scheduled. The
/// snapshot is in no hurry: the log keeps everything until it is saved.
#[cfg(target_os = "linux")]
const NICE: i32 = 10;

/// Work waiting for the thread. The replica asks for one snapshot at a time, and lets go of
/// something to free at most once per snapshot saved or installed; a few places are all the
/// queue ever needs (what finds it full is freed on the event loop, with a warning).
const QUEUED_WORK_MAX: usize = 4;

/// What the thread does.
enum Work {
    /// Encode and save a snapshot.
    Save(SnapshotJob),
    /// Free what the replica let go of.
    Free(Retired<KvStore>),
}

/// A snapshot the thread finished: saved (or superseded by a newer one on disk), or why not.
/// Its data stays on the disk (and is freed on this thread).
pub(crate) type Finished = Result<(SavedSnapshot, Saved), StorageError>;

/// The event loop's handle on the snapshot thread.
#[derive(Debug)]
pub(crate) struct SnapshotThread {
    jobs: Option<SyncSender<Work>>,
    finished: Arc<Mutex<Option<Finished>>>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotThread {
    /// Starts the thread, which saves with `saver`, wakes the loop with `waker` and records
    /// each snapshot saved into `instruments`.
    pub(crate) fn spawn(
        saver: SnapshotSaver<RealFs>,
        waker: Arc<Waker>,
        instruments: Instruments,
    ) -> std::io::Result<SnapshotThread> {
        let (jobs, receiver) = mpsc::sync_channel(QUEUED_WORK_MAX);
        let finished = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&finished);
        let thread =
            thread::Builder::new().name("raftkv-snapshot".to_string()).spawn(move || {
                lower_priority();
                run(&saver, &receiver, &slot, &waker, &instruments);
            })?;
        Ok(SnapshotThread { jobs: Some(jobs), finished, thread: Some(thread) })
    }

    /// Hands the thread a snapshot to encode and save.
    pub(crate) fn submit(&self, job: SnapshotJob) {
        let Some(jobs) = &self.jobs else { return };
        match jobs.try_send(Work::Save(job)) {
            Ok(()) => {}
            // The replica waits for each snapshot's answer before it asks for the next.
            Err(TrySendError::Full(_)) => warn!("a snapshot was asked for while another is queued"),
            // The thread stopped after a failure, which `take_finished` reports.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Hands the thread what the replica let go of, to free. If it cannot take it, it is
    /// freed here.
    pub(crate) fn free(&self, retired: Retired<KvStore>) {
        if let Some(jobs) = &self.jobs {
            if let Err(TrySendError::Full(_)) = jobs.try_send(Work::Free(retired)) {
                warn!("what the replica let go of found the snapshot thread's queue full");
            }
        }
    }

    /// The snapshot finished since the last call, if any.
    pub(crate) fn take_finished(&self) -> Option<Finished> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Lets the snapshot under way finish, then stops the thread.
    pub(crate) fn shut_down(mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the snapshot thread panicked");
            }
        }
    }
}

/// Gives the calling thread the nice value `NICE`. Only on Linux, where a nice value is a
/// thread's own; elsewhere it would lower the whole process, event loop included.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, NICE) {
        warn!(%error, "cannot lower the snapshot thread's priority");
    }
}

fn run(
    saver: &SnapshotSaver<RealFs>,
    receiver: &Receiver<Work>,
    slot: &Mutex<Option<Finished>>,
    waker: &Waker,
    instruments: &Instruments,
) {
    while let Ok(work) = receiver.recv() {
        let job = match work {
            Work::Save(job) => job,
            Work::Free(retired) => {
                drop(retired);
                continue;
            }
        };
        let started = Instant::now();
        info!(last = %job.last(), "saving snapshot");
        let (last, bytes) = (job.last(), job.data_len());
        // Encoded straight into the file: the data is never held in memory whole.
        let outcome =
            saver.save_streaming(last, job.membership(), bytes, |out| job.write_data(out));
        let failed = outcome.is_err();
        match &outcome {
            Ok(saved) => {
                let took = started.elapsed();
                instruments.record_snapshot(took);
                info!(
                    %last,
                    bytes,
                    took_ms = took.as_millis() as u64,
                    superseded = *saved == Saved::Superseded,
                    "snapshot saved"
                );
            }
            Err(error) => warn!(%last, %error, "cannot save the snapshot"),
        }
        let saved = SavedSnapshot { last, membership: job.membership().clone(), bytes };
        *slot.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(outcome.map(|outcome| (saved, outcome)));
        if let Err(error) = waker.wake() {
            warn!(%error, "cannot wake the event loop");
        }
        if failed {
            // The node stops: whether the snapshot reached the disk is unknown.
            return;
        }
    }
}
