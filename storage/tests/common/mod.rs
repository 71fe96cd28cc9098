//! Helpers shared by the storage tests: entries and persists to write, directories to write
//! them in, and recovery checks.

#![allow(dead_code)] // Each test file uses its own part.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use raftkv_core::raft::{
    Config, Entry, HardState, Membership, Payload, Persist, PersistId, RaftNode, Recovered,
    Snapshot,
};
use raftkv_core::{Instant, LogId, LogIndex, NodeId, Term};
use raftkv_storage::sim_fs::SimFs;
use raftkv_storage::{FileSystem, OpenReport, Storage, StorageOptions};

/// Entries `range` of `term`, each with a 100-byte command.
pub(crate) fn entries(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|index| Entry {
            index: LogIndex(index),
            term: Term(term),
            payload: Payload::Command(vec![index as u8; 100]),
        })
        .collect()
}

/// A persist with id `id` and nothing in it.
pub(crate) fn persist(id: u64) -> Persist {
    Persist {
        id: PersistId(id),
        hard_state: None,
        truncate_from: None,
        entries: Vec::new(),
        snapshot: None,
        install_received: None,
        snapshot_chunk: None,
    }
}

pub(crate) fn hard_state(term: u64, vote: Option<u64>) -> HardState {
    HardState { term: Term(term), vote: vote.map(NodeId), damaged: false }
}

pub(crate) fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        last: LogId::new(LogIndex(index), Term(term)),
        membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
        data: b"state".to_vec(),
    }
}

/// Options for node 1 of cluster "test" with segments of `segment_bytes`.
pub(crate) fn options(segment_bytes: u64) -> StorageOptions {
    StorageOptions { segment_bytes, ..StorageOptions::new("test", NodeId(1)) }
}

/// Opens `dir` on `fs`; panics with the error if it fails.
pub(crate) fn open<F: FileSystem>(
    fs: F,
    dir: &Path,
    segment_bytes: u64,
) -> (Storage<F>, Recovered, OpenReport) {
    Storage::open(fs, dir, &options(segment_bytes)).unwrap_or_else(|error| panic!("{error}"))
}

/// A simulated file system and the directory the tests use on it.
pub(crate) fn sim(seed: u64) -> (SimFs, PathBuf) {
    (SimFs::new(seed), PathBuf::from("data"))
}

/// (index, term) of each recovered entry.
pub(crate) fn indexes_and_terms(recovered: &Recovered) -> Vec<(u64, u64)> {
    recovered.entries.iter().map(|e| (e.index.0, e.term.0)).collect()
}

/// Whether a Raft node accepts `recovered`, or why not.
pub(crate) fn node_starts(recovered: &Recovered) -> Result<(), String> {
    let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    RaftNode::new(Instant::ZERO, config, recovered.clone()).map(drop).map_err(|e| e.to_string())
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "raftkv-storage-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
