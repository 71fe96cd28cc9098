//! The snapshot thread: encodes the snapshots the replica asks for and saves them, away from
//! the event loop (which only takes the view, in constant time) and from the disk thread
//! (whose group commit must not wait behind a large write). It hands each saved snapshot back
//! through a slot and wakes the event loop, which tells the replica and has the disk thread
//! drop the log segments the snapshot covers.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::Waker;
use raftkv_core::raft::SavedSnapshot;
use raftkv_core::snapshot_job::SnapshotJob;
use raftkv_storage::{RealFs, Saved, SnapshotSaver, StorageError};
use tracing::{info, warn};

use super::instruments::Instruments;

/// Jobs waiting for the thread. The replica asks for one snapshot at a time, so one place is
/// all the queue ever needs.
const QUEUED_JOBS_MAX: usize = 1;

/// A snapshot the thread finished: saved (or superseded by a newer one on disk), or why not.
/// Its data stays on the disk (and is freed on this thread).
pub(crate) type Finished = Result<(SavedSnapshot, Saved), StorageError>;

/// The event loop's handle on the snapshot thread.
#[derive(Debug)]
pub(crate) struct SnapshotThread {
    jobs: Option<SyncSender<SnapshotJob>>,
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
        let (jobs, receiver) = mpsc::sync_channel(QUEUED_JOBS_MAX);
        let finished = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&finished);
        let thread = thread::Builder::new()
            .name("raftkv-snapshot".to_string())
            .spawn(move || run(&saver, &receiver, &slot, &waker, &instruments))?;
        Ok(SnapshotThread { jobs: Some(jobs), finished, thread: Some(thread) })
    }

    /// Hands the thread a snapshot to encode and save.
    pub(crate) fn submit(&self, job: SnapshotJob) {
        let Some(jobs) = &self.jobs else { return };
        match jobs.try_send(job) {
            Ok(()) => {}
            // The replica waits for each snapshot's answer before it asks for the next.
            Err(TrySendError::Full(job)) => {
                warn!(last = %job.last(), "a snapshot was asked for while another is queued");
            }
            // The thread stopped after a failure, which `take_finished` reports.
            Err(TrySendError::Disconnected(_)) => {}
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

fn run(
    saver: &SnapshotSaver<RealFs>,
    receiver: &Receiver<SnapshotJob>,
    slot: &Mutex<Option<Finished>>,
    waker: &Waker,
    instruments: &Instruments,
) {
    while let Ok(job) = receiver.recv() {
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
