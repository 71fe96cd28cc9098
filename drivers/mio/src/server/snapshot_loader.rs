//! The snapshot loader: reads back a snapshot received whole from the leader (written chunk by
//! chunk to `DIR/snapshot.incoming` by the disk thread), checking every checksum, away from
//! the event loop. It hands the outcome back through a slot and wakes the event loop, which
//! gives the replica the snapshot to install, or says it is damaged (then it is received again
//! from its first byte).

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::Waker;
use raftkv_core::raft::{PartialSnapshot, Snapshot};
use raftkv_storage::{RealFs, StorageError, load_received_snapshot};
use tracing::{info, warn};

/// Loads waiting for the thread. The replica asks for one snapshot at a time, once.
const QUEUED_LOADS_MAX: usize = 1;

/// A load the thread finished: the snapshot asked for, and what was read.
pub(crate) type Loaded = (PartialSnapshot, Result<Snapshot, StorageError>);

/// The event loop's handle on the loader thread.
#[derive(Debug)]
pub(crate) struct SnapshotLoader {
    loads: Option<SyncSender<PartialSnapshot>>,
    finished: Arc<Mutex<Option<Loaded>>>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotLoader {
    /// Starts the thread, which reads from data directory `dir` and wakes the loop with
    /// `waker`.
    pub(crate) fn spawn(dir: PathBuf, waker: Arc<Waker>) -> std::io::Result<SnapshotLoader> {
        let (loads, receiver) = mpsc::sync_channel(QUEUED_LOADS_MAX);
        let finished = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&finished);
        let thread = thread::Builder::new()
            .name("raftkv-snapshot-load".to_string())
            .spawn(move || run(&dir, &receiver, &slot, &waker))?;
        Ok(SnapshotLoader { loads: Some(loads), finished, thread: Some(thread) })
    }

    /// Asks the thread to read back the snapshot received whole that `whole` names.
    pub(crate) fn submit(&self, whole: PartialSnapshot) {
        let Some(loads) = &self.loads else { return };
        if let Err(TrySendError::Full(whole)) = loads.try_send(whole) {
            // The replica asks once per snapshot: a second one while the first is queued
            // replaced it, and the answer to the first is ignored.
            warn!(last = %whole.last, "a received snapshot was asked for while another is queued");
        }
    }

    /// The load finished since the last call, if any.
    pub(crate) fn take_finished(&self) -> Option<Loaded> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Lets the load under way finish, then stops the thread.
    pub(crate) fn shut_down(mut self) {
        self.loads = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the snapshot loader thread panicked");
            }
        }
    }
}

fn run(
    dir: &std::path::Path,
    receiver: &Receiver<PartialSnapshot>,
    slot: &Mutex<Option<Loaded>>,
    waker: &Waker,
) {
    while let Ok(whole) = receiver.recv() {
        let started = Instant::now();
        let loaded = load_received_snapshot(&RealFs, dir, &whole);
        match &loaded {
            Ok(_) => info!(
                last = %whole.last,
                bytes = whole.total,
                took_ms = started.elapsed().as_millis() as u64,
                "read back the snapshot received from the leader"
            ),
            Err(error) => warn!(
                last = %whole.last,
                %error,
                "the snapshot received from the leader is damaged on disk: receiving it again"
            ),
        }
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((whole, loaded));
        if let Err(error) = waker.wake() {
            warn!(%error, "cannot wake the event loop");
        }
    }
}
