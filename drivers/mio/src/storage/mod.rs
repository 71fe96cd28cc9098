//! A node's data directory and how persists reach it.
//!
//! ```text
//! DIR/lock         held (flock) while a server runs, so two cannot share a directory
//! DIR/node         cluster name and node id, written at first start and checked after
//! DIR/hardstate    term and vote, replaced atomically
//! DIR/snapshot     the latest snapshot, replaced atomically
//! DIR/wal/*.wal    the write-ahead log segments
//! ```

pub(crate) mod atomic;
pub(crate) mod error;
pub(crate) mod hard_state;
pub(crate) mod snapshot;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use raftkv_core::NodeId;
use raftkv_core::raft::{HardState, Persist, Recovered};
use serde::{Deserialize, Serialize};

use crate::storage::error::StorageError;
use crate::wal::Wal;

const IDENTITY_FILE: &str = "node";
const IDENTITY_MAGIC: &[u8; 8] = b"RKVNODE1";

/// Whose directory this is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    cluster: String,
    node: NodeId,
}

/// What opening the directory found, besides the recovered state, for the logs.
#[derive(Debug)]
pub(crate) struct OpenReport {
    /// A torn WAL tail was cut off: the file, the offset and why.
    pub(crate) repaired: Option<(PathBuf, u64, String)>,
    /// Whether the directory was new.
    pub(crate) fresh: bool,
}

/// The open data directory of a running node.
#[derive(Debug)]
pub(crate) struct Disk {
    dir: PathBuf,
    wal: Wal,
    hard_state: HardState,
    /// Held for the life of the process: the lock on `DIR/lock`.
    _lock: File,
}

impl Disk {
    /// Opens `dir` for node `node` of `cluster` (creating it if needed) and reads back
    /// everything durable.
    pub(crate) fn open(
        dir: &Path,
        cluster: &str,
        node: NodeId,
        segment_bytes: u64,
    ) -> Result<(Disk, Recovered, OpenReport), StorageError> {
        atomic::create_dir(dir)?;
        let lock = lock(dir)?;
        let identity = Identity { cluster: cluster.to_string(), node };
        let fresh = check_identity(dir, &identity)?;
        let hard_state = hard_state::load(dir)?;
        let snapshot = snapshot::load(dir)?;
        let snapshot_last = snapshot.as_ref().map_or(Default::default(), |s| s.last.index);
        let (wal, replayed) = Wal::open(&dir.join("wal"), snapshot_last, segment_bytes)?;
        let recovered =
            Recovered { hard_state, snapshot, entries: replayed.entries, damaged: false };
        let disk = Disk { dir: dir.to_path_buf(), wal, hard_state, _lock: lock };
        let report = OpenReport { repaired: replayed.repaired, fresh };
        Ok((disk, recovered, report))
    }

    /// Makes a batch of persists durable, in order, with one `fdatasync` of the log for all of
    /// them (group commit). The hard state reaches the disk before the entries written with
    /// it; a snapshot is preceded by everything before it and followed by compaction.
    /// Returns the number of WAL segments removed.
    pub(crate) fn persist(&mut self, batch: &[Persist]) -> Result<usize, StorageError> {
        let mut hard_state = None;
        let mut removed = 0;
        for persist in batch {
            if let Some(snapshot) = &persist.snapshot {
                self.save_hard_state(hard_state.take())?;
                if persist.truncate_from.is_some() {
                    // The entries the snapshot conflicts with must be gone before it lands:
                    // a snapshot followed by entries of an older term cannot be recovered.
                    self.wal.append(persist.truncate_from, &[]);
                }
                self.wal.sync()?;
                snapshot::save(&self.dir, snapshot)?;
                removed += self.wal.compact(snapshot.last.index)?;
            }
            if persist.truncate_from.is_some() || !persist.entries.is_empty() {
                self.wal.append(persist.truncate_from, &persist.entries);
            }
            if persist.hard_state.is_some() {
                hard_state = persist.hard_state;
            }
        }
        self.save_hard_state(hard_state)?;
        if self.wal.has_pending() {
            self.wal.sync()?;
        }
        Ok(removed)
    }

    /// Bytes of the write-ahead log on disk.
    pub(crate) fn wal_bytes(&self) -> u64 {
        self.wal.bytes()
    }

    fn save_hard_state(&mut self, hard_state: Option<HardState>) -> Result<(), StorageError> {
        match hard_state {
            Some(hard_state) if hard_state != self.hard_state => {
                hard_state::save(&self.dir, hard_state)?;
                self.hard_state = hard_state;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn lock(dir: &Path) -> Result<File, StorageError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(StorageError::io("open", &path))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| StorageError::Refused {
            reason: format!("data directory {} is in use by another raftkv process", dir.display()),
        },
    )?;
    Ok(file)
}

/// Records whose directory this is on first use; refuses another node's or cluster's.
/// Returns whether the directory was new.
fn check_identity(dir: &Path, identity: &Identity) -> Result<bool, StorageError> {
    atomic::remove_leftover(dir, IDENTITY_FILE)?;
    match atomic::read(dir, IDENTITY_FILE, IDENTITY_MAGIC)? {
        None => {
            let bytes = postcard::to_allocvec(identity).expect("encoding into a Vec cannot fail");
            atomic::write(dir, IDENTITY_FILE, IDENTITY_MAGIC, &bytes)?;
            Ok(true)
        }
        Some(bytes) => {
            let found: Identity =
                postcard::from_bytes(&bytes).map_err(|error| StorageError::Corrupt {
                    path: dir.join(IDENTITY_FILE),
                    offset: 0,
                    reason: error.to_string(),
                })?;
            if found != *identity {
                return Err(StorageError::Refused {
                    reason: format!(
                        "data directory {} belongs to node {} of cluster {:?}, not node {} of \
                         cluster {:?}",
                        dir.display(),
                        found.node,
                        found.cluster,
                        identity.node,
                        identity.cluster
                    ),
                });
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::{AtomicU64, Ordering};

    use raftkv_core::raft::{Entry, Payload, PersistId, Snapshot};
    use raftkv_core::{LogId, LogIndex, Term};

    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "raftkv-storage-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let dir = std::env::temp_dir().join(name);
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entries(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        range
            .map(|index| Entry {
                index: LogIndex(index),
                term: Term(term),
                payload: Payload::Command(vec![index as u8; 100]),
            })
            .collect()
    }

    fn persist(id: u64) -> Persist {
        Persist {
            id: PersistId(id),
            hard_state: None,
            truncate_from: None,
            entries: Vec::new(),
            snapshot: None,
        }
    }

    fn open(dir: &TempDir, segment_bytes: u64) -> (Disk, Recovered) {
        let (disk, recovered, _) = Disk::open(&dir.0, "test", NodeId(1), segment_bytes).unwrap();
        (disk, recovered)
    }

    fn indexes_and_terms(recovered: &Recovered) -> Vec<(u64, u64)> {
        recovered.entries.iter().map(|e| (e.index.0, e.term.0)).collect()
    }

    #[test]
    fn entries_truncations_and_hard_state_come_back_after_a_restart() {
        let dir = TempDir::new();
        let (mut disk, recovered) = open(&dir, 1 << 20);
        assert_eq!(recovered, Recovered::default());
        let hard_state = HardState { term: Term(2), vote: Some(NodeId(1)) };
        let first =
            Persist { hard_state: Some(hard_state), entries: entries(1, 1..=5), ..persist(1) };
        // A conflict: entries from 4 on are replaced by the new leader's.
        let second =
            Persist { truncate_from: Some(LogIndex(4)), entries: entries(2, 4..=4), ..persist(2) };
        // Appending at an index replaces it and everything after it, too.
        let third = Persist { entries: entries(2, 3..=6), ..persist(3) };
        disk.persist(&[first]).unwrap();
        disk.persist(&[second, third]).unwrap();
        drop(disk);

        let (_, recovered) = open(&dir, 1 << 20);
        assert_eq!(recovered.hard_state, hard_state);
        assert_eq!(indexes_and_terms(&recovered), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2)]);
    }

    #[test]
    fn a_snapshot_replaces_the_segments_it_covers() {
        let dir = TempDir::new();
        let (mut disk, _) = open(&dir, 1024);
        let hard_state = HardState { term: Term(1), vote: None };
        let mut id = 0;
        for chunk in 0..10 {
            id += 1;
            let from = chunk * 5 + 1;
            let batch = Persist {
                hard_state: Some(hard_state),
                entries: entries(1, from..=from + 4),
                ..persist(id)
            };
            disk.persist(&[batch]).unwrap();
        }
        let segments_before = fs::read_dir(dir.0.join("wal")).unwrap().count();
        assert!(segments_before > 3, "{segments_before} segments");
        let snapshot =
            Snapshot { last: LogId::new(LogIndex(40), Term(1)), data: b"state".to_vec() };
        let with_snapshot = Persist {
            snapshot: Some(snapshot.clone()),
            entries: entries(1, 51..=52),
            ..persist(id + 1)
        };
        let removed = disk.persist(&[with_snapshot]).unwrap();
        assert!(removed > 0);
        drop(disk);

        let (_, recovered) = open(&dir, 1024);
        assert_eq!(recovered.snapshot, Some(snapshot));
        let indexes: Vec<u64> = recovered.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, (41..=52).collect::<Vec<_>>());
    }

    #[test]
    fn an_installed_snapshot_drops_the_conflicting_log_after_it() {
        let dir = TempDir::new();
        let (mut disk, _) = open(&dir, 1 << 20);
        let hard_state = HardState { term: Term(1), vote: None };
        disk.persist(&[Persist {
            hard_state: Some(hard_state),
            entries: entries(1, 1..=8),
            ..persist(1)
        }])
        .unwrap();
        // The leader's snapshot at 5 (term 3) conflicts with our entries after 5.
        let snapshot = Snapshot { last: LogId::new(LogIndex(5), Term(3)), data: Vec::new() };
        let install = Persist {
            hard_state: Some(HardState { term: Term(3), vote: None }),
            truncate_from: Some(LogIndex(6)),
            snapshot: Some(snapshot),
            ..persist(2)
        };
        disk.persist(&[install]).unwrap();
        drop(disk);
        let (_, recovered) = open(&dir, 1 << 20);
        assert!(recovered.entries.is_empty(), "{:?}", indexes_and_terms(&recovered));
        assert_eq!(recovered.hard_state.term, Term(3));
    }

    #[test]
    fn segments_are_recognised_by_their_header() {
        let dir = TempDir::new();
        let (mut disk, _) = open(&dir, 1 << 20);
        let hard_state = HardState { term: Term(1), vote: None };
        disk.persist(&[Persist {
            hard_state: Some(hard_state),
            entries: entries(1, 1..=3),
            ..persist(1)
        }])
        .unwrap();
        drop(disk);
        let wal = dir.0.join("wal");
        // A crash right after a segment was created can leave it without its header.
        fs::write(wal.join(format!("{:020}.wal", 2)), [0u8; 64]).unwrap();
        let (mut disk, recovered) = open(&dir, 1 << 20);
        assert_eq!(recovered.entries.len(), 3);
        disk.persist(&[Persist { entries: entries(1, 4..=4), ..persist(1) }]).unwrap();
        drop(disk);
        let (_, recovered) = open(&dir, 1 << 20);
        assert_eq!(recovered.entries.len(), 4);
        // A file that is not a segment of this log is refused, not skipped.
        fs::write(wal.join(format!("{:020}.wal", 3)), b"something else entirely").unwrap();
        let error = Disk::open(&dir.0, "test", NodeId(1), 1 << 20).unwrap_err().to_string();
        assert!(
            error.contains("bad header") && error.contains("00000000000000000003.wal"),
            "{error}"
        );
    }

    #[test]
    fn another_node_or_process_cannot_use_the_directory() {
        let dir = TempDir::new();
        let (disk, _) = open(&dir, 1 << 20);
        let busy = Disk::open(&dir.0, "test", NodeId(1), 1 << 20).unwrap_err().to_string();
        assert!(busy.contains("in use"), "{busy}");
        drop(disk);
        let other = Disk::open(&dir.0, "test", NodeId(2), 1 << 20).unwrap_err().to_string();
        assert!(other.contains("belongs to node 1"), "{other}");
    }
}
