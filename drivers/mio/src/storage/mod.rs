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

use std::fs::{self, File, OpenOptions};
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
        fs::create_dir_all(dir).map_err(StorageError::io("create", dir))?;
        let lock = lock(dir)?;
        let identity = Identity { cluster: cluster.to_string(), node };
        let fresh = check_identity(dir, &identity)?;
        let hard_state = hard_state::load(dir)?;
        let snapshot = snapshot::load(dir)?;
        let snapshot_last = snapshot.as_ref().map_or(Default::default(), |s| s.last.index);
        let (wal, replayed) = Wal::open(&dir.join("wal"), snapshot_last, segment_bytes)?;
        let recovered = Recovered { hard_state, snapshot, entries: replayed.entries };
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
