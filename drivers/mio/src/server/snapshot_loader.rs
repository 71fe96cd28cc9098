//! The snapshot loader: reads back a snapshot received whole from the leader (written chunk by
//! chunk to `DIR/snapshot.incoming` by the disk thread), checking every checksum, and decodes
//! the store from it as it reads, away from the event loop: the snapshot is never held whole
//! in memory, only the store it decodes to. It then finishes the file, ready to be renamed into
//! place when the replica installs it. It hands the outcome back through a slot and wakes the
//! event loop, which gives the replica the decoded snapshot, or says it is damaged (then it is
//! received again from its first byte).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::Waker;
use raftkv_core::kv::{KvLimits, KvStore};
use raftkv_core::loaded_snapshot::LoadedSnapshot;
use raftkv_core::raft::{PartialSnapshot, SavedSnapshot};
use raftkv_core::state_machine::RestoreError;
use raftkv_storage::{RealFs, ReceivedSnapshotReader, StorageError};
use tracing::{info, warn};

/// A load the thread finished: the snapshot asked for, and what was read, or why it cannot be
/// installed.
pub(crate) type Loaded = (PartialSnapshot, Result<LoadedSnapshot<KvStore>, LoadFailed>);

/// Why a snapshot received cannot be installed.
#[derive(Debug)]
pub(crate) enum LoadFailed {
    /// The file is damaged or cannot be read.
    Damaged(StorageError),
    /// The file is intact, but what the leader sent does not decode.
    Undecodable(RestoreError),
}

impl fmt::Display for LoadFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadFailed::Damaged(error) => write!(f, "damaged on disk: {error}"),
            LoadFailed::Undecodable(error) => write!(f, "does not decode: {error}"),
        }
    }
}

/// The event loop's handle on the loader thread.
#[derive(Debug)]
pub(crate) struct SnapshotLoader {
    requests: Arc<Requests>,
    finished: Arc<Mutex<Option<Loaded>>>,
    thread: Option<JoinHandle<()>>,
}

/// The load waiting for the thread: the latest asked for wins. The replica asks once per
/// snapshot received whole, and a newer one replaces an older one it asked for before, so a
/// load still waiting is never needed once another is asked for (and losing the newer one
/// would leave the replica waiting for good).
#[derive(Debug, Default)]
struct Requests {
    state: Mutex<Waiting>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Waiting {
    load: Option<PartialSnapshot>,
    stopping: bool,
}

impl Requests {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for `whole` instead of any load still waiting, which it returns.
    fn ask(&self, whole: PartialSnapshot) -> Option<PartialSnapshot> {
        let replaced = self.lock().load.replace(whole);
        self.changed.notify_one();
        replaced
    }

    /// Stops the thread once the load waiting, if any, is done.
    fn stop(&self) {
        self.lock().stopping = true;
        self.changed.notify_one();
    }

    /// The next load to do; `None` once stopping.
    fn next(&self) -> Option<PartialSnapshot> {
        let mut waiting = self.lock();
        loop {
            if let Some(load) = waiting.load.take() {
                return Some(load);
            }
            if waiting.stopping {
                return None;
            }
            waiting = self.changed.wait(waiting).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl SnapshotLoader {
    /// Starts the thread, which reads from data directory `dir`, decodes stores with `limits`
    /// and wakes the loop with `waker`.
    pub(crate) fn spawn(
        dir: PathBuf,
        limits: KvLimits,
        waker: Arc<Waker>,
    ) -> std::io::Result<SnapshotLoader> {
        let requests = Arc::new(Requests::default());
        let finished = Arc::new(Mutex::new(None));
        let (thread_requests, slot) = (Arc::clone(&requests), Arc::clone(&finished));
        let thread = thread::Builder::new()
            .name("raftkv-snapshot-load".to_string())
            .spawn(move || run(&dir, limits, &thread_requests, &slot, &waker))?;
        Ok(SnapshotLoader { requests, finished, thread: Some(thread) })
    }

    /// Asks the thread to read back the snapshot received whole that `whole` names, instead of
    /// any load still waiting.
    pub(crate) fn submit(&self, whole: PartialSnapshot) {
        if let Some(older) = self.requests.ask(whole) {
            info!(older = %older.last, newer = %whole.last, "a newer snapshot replaced a waiting load");
        }
    }

    /// The load finished since the last call, if any.
    pub(crate) fn take_finished(&self) -> Option<Loaded> {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Lets the load under way finish, then stops the thread.
    pub(crate) fn shut_down(mut self) {
        self.requests.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the snapshot loader thread panicked");
            }
        }
    }
}

fn run(
    dir: &Path,
    limits: KvLimits,
    requests: &Requests,
    slot: &Mutex<Option<Loaded>>,
    waker: &Waker,
) {
    while let Some(whole) = requests.next() {
        let started = Instant::now();
        let loaded = load(dir, limits, &whole);
        match &loaded {
            Ok(_) => info!(
                last = %whole.last,
                bytes = whole.total,
                took_ms = started.elapsed().as_millis() as u64,
                "read back and decoded the snapshot received from the leader"
            ),
            Err(error) => warn!(
                last = %whole.last,
                %error,
                "the snapshot received from the leader cannot be installed: receiving it again"
            ),
        }
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((whole, loaded));
        if let Err(error) = waker.wake() {
            warn!(%error, "cannot wake the event loop");
        }
    }
}

/// Reads back the snapshot received whole that `whole` names, decoding the store as it reads,
/// then finishes the file, ready to install. A decoding that fails on a damaged file is damage.
fn load(
    dir: &Path,
    limits: KvLimits,
    whole: &PartialSnapshot,
) -> Result<LoadedSnapshot<KvStore>, LoadFailed> {
    let mut reader =
        ReceivedSnapshotReader::open(RealFs, dir, whole).map_err(LoadFailed::Damaged)?;
    let membership = reader.membership().clone();
    let snapshot = SavedSnapshot { last: reader.last(), membership, bytes: reader.total() };
    let decoded = LoadedSnapshot::decode(snapshot, &mut reader, KvStore::new(limits));
    let finished = reader.finish().map_err(LoadFailed::Damaged);
    let loaded = decoded.map_err(LoadFailed::Undecodable);
    finished.and(loaded)
}

#[cfg(test)]
mod tests {
    use raftkv_core::kv::{KvCommand, KvReply};
    use raftkv_core::raft::{Membership, Persist, PersistId, ReceivedChunk};
    use raftkv_core::session::Sessions;
    use raftkv_core::{LogId, LogIndex, NodeId, StateMachine, Term};
    use raftkv_storage::{Storage, StorageOptions};

    use super::*;

    /// A replica's snapshot of a store of `keys` pairs: the sessions, then the state.
    fn replica_snapshot(keys: usize) -> (KvStore, Vec<u8>) {
        let mut store = KvStore::default();
        for i in 0..keys {
            let key = format!("key-{i}").into_bytes();
            store.apply(&KvCommand::Put { key, value: vec![b'v'; 100] });
        }
        let state = store.snapshot();
        let mut data = postcard::to_allocvec(&Sessions::<KvReply>::new(60_000)).unwrap();
        data.extend(postcard::to_allocvec(&(state.len() as u64)).unwrap());
        data.extend(state);
        (store, data)
    }

    /// A data directory that received `data` whole, in chunks of 64 KiB, as the snapshot at 9.
    fn received(name: &str, data: &[u8]) -> (PathBuf, PartialSnapshot) {
        let dir = std::env::temp_dir().join(format!("raftkv-loader-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = StorageOptions::new("test", NodeId(2));
        let (mut storage, _, _) = Storage::open(RealFs, &dir, &options).unwrap();
        let last = LogId { index: LogIndex(9), term: Term(1) };
        let total = data.len() as u64;
        for (i, piece) in data.chunks(64 << 10).enumerate() {
            let chunk = ReceivedChunk {
                last,
                membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
                total,
                offset: (i * (64 << 10)) as u64,
                data: piece.to_vec(),
            };
            let persist = Persist {
                id: PersistId(i as u64 + 1),
                hard_state: None,
                truncate_from: None,
                entries: Vec::new(),
                snapshot: None,
                install_received: None,
                snapshot_chunk: Some(chunk),
            };
            storage.persist(&[persist]).unwrap();
        }
        (dir, PartialSnapshot { last, total, received: total })
    }

    #[test]
    fn a_snapshot_received_decodes_as_it_is_read_and_damage_is_told_from_bad_data() {
        let (store, data) = replica_snapshot(3_000);
        let (dir, whole) = received("intact", &data);
        let loaded = load(&dir, KvLimits::default(), &whole).expect("decodes");
        assert_eq!(loaded.state(), &store);
        assert_eq!(loaded.snapshot().bytes, data.len() as u64);
        // Intact on disk, but not a snapshot of the store: refused as such, not as damage.
        let (garbage_dir, garbage) = received("garbage", &vec![0xff; 200_000]);
        let refused = load(&garbage_dir, KvLimits::default(), &garbage);
        assert!(matches!(refused, Err(LoadFailed::Undecodable(_))), "{refused:?}");
        // A byte changed on disk after it was written: damage, whatever the decoder made of it.
        let file = dir.join("snapshot.incoming");
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&file, &bytes).unwrap();
        let damaged = load(&dir, KvLimits::default(), &whole);
        assert!(matches!(damaged, Err(LoadFailed::Damaged(_))), "{damaged:?}");
        for dir in [dir, garbage_dir] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    fn whole(index: u64) -> PartialSnapshot {
        let last = LogId { index: LogIndex(index), term: Term(1) };
        PartialSnapshot { last, total: 10, received: 10 }
    }

    /// Found in review: with a queue of one, the newer of two loads asked while one ran was
    /// the one dropped, and the replica waited for it for good.
    #[test]
    fn the_latest_load_asked_for_wins_and_stopping_lets_it_run_first() {
        let requests = Requests::default();
        assert_eq!(requests.ask(whole(5)), None);
        assert_eq!(requests.ask(whole(9)), Some(whole(5)));
        requests.stop();
        assert_eq!(requests.next(), Some(whole(9)));
        assert_eq!(requests.next(), None);
    }
}
