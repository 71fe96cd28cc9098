//! What a persist writes comes back after a clean restart, on a real disk and on a simulated
//! one alike.

mod common;

use std::path::Path;

use common::{entries, hard_state, indexes_and_terms, open, persist, snapshot};
use raftkv_core::raft::{Config, Membership, Persist, RaftNode, Recovered};
use raftkv_core::{Instant, LogId, LogIndex, NodeId, Term};
use raftkv_storage::{FileSystem, Storage, StorageOptions};

/// Runs each named test body on a real temporary directory and on a simulated file system.
macro_rules! on_real_and_simulated_disks {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn real_disk() {
                let dir = crate::common::TempDir::new();
                super::$name(raftkv_storage::RealFs, &dir.0);
            }

            #[test]
            fn simulated_disk() {
                let (fs, dir) = crate::common::sim(7);
                super::$name(fs, &dir);
            }
        }
    )*};
}

on_real_and_simulated_disks!(
    entries_truncations_and_hard_state_come_back,
    a_snapshot_replaces_the_segments_it_covers,
    an_installed_snapshot_drops_the_conflicting_log_after_it,
    segments_are_recognised_by_their_header,
    another_node_cannot_use_the_directory,
    a_snapshot_file_of_format_1_still_opens,
);

fn entries_truncations_and_hard_state_come_back<F: FileSystem + Clone>(fs: F, dir: &Path) {
    let (mut storage, recovered, report) = open(fs.clone(), dir, 1 << 20);
    assert_eq!(recovered, Recovered::default());
    assert!(report.fresh);
    let voted = hard_state(2, Some(1));
    let first = Persist { hard_state: Some(voted), entries: entries(1, 1..=5), ..persist(1) };
    // A conflict: entries from 4 on are replaced by the new leader's.
    let second =
        Persist { truncate_from: Some(LogIndex(4)), entries: entries(2, 4..=4), ..persist(2) };
    // Appending at an index replaces it and everything after it, too.
    let third = Persist { entries: entries(2, 3..=6), ..persist(3) };
    storage.persist(&[first]).unwrap();
    storage.persist(&[second, third]).unwrap();
    drop(storage);

    let (_, recovered, report) = open(fs, dir, 1 << 20);
    assert!(!report.fresh);
    assert_eq!(recovered.hard_state, voted);
    assert_eq!(indexes_and_terms(&recovered), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 2)]);
    assert!(!recovered.hard_state.damaged);
}

fn a_snapshot_replaces_the_segments_it_covers<F: FileSystem + Clone>(fs: F, dir: &Path) {
    let (mut storage, _, _) = open(fs.clone(), dir, 1024);
    for chunk in 0..10 {
        let from = chunk * 5 + 1;
        let batch = Persist {
            hard_state: Some(hard_state(1, None)),
            entries: entries(1, from..=from + 4),
            ..persist(chunk + 1)
        };
        storage.persist(&[batch]).unwrap();
    }
    let wal = dir.join("wal");
    let segments_before = fs.list(&wal).unwrap().len();
    assert!(segments_before > 3, "{segments_before} segments");
    let bytes_before = storage.wal_bytes();
    let with_snapshot =
        Persist { snapshot: Some(snapshot(40, 1)), entries: entries(1, 51..=52), ..persist(11) };
    let report = storage.persist(&[with_snapshot]).unwrap();
    assert!(report.segments_removed > 0);
    assert!(fs.list(&wal).unwrap().len() < segments_before, "{report:?}");
    assert!(storage.wal_bytes() < bytes_before, "{} >= {bytes_before}", storage.wal_bytes());
    drop(storage);

    let (_, recovered, _) = open(fs, dir, 1024);
    assert_eq!(recovered.snapshot, Some(snapshot(40, 1)));
    let indexes: Vec<u64> = recovered.entries.iter().map(|e| e.index.0).collect();
    assert_eq!(indexes, (41..=52).collect::<Vec<_>>());
}

fn an_installed_snapshot_drops_the_conflicting_log_after_it<F: FileSystem + Clone>(
    fs: F,
    dir: &Path,
) {
    let (mut storage, _, _) = open(fs.clone(), dir, 1 << 20);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=8), ..persist(1) };
    storage.persist(&[first]).unwrap();
    // The leader's snapshot at 5 (term 3) conflicts with our entries after 5.
    let install = Persist {
        hard_state: Some(hard_state(3, None)),
        truncate_from: Some(LogIndex(6)),
        snapshot: Some(snapshot(5, 3)),
        ..persist(2)
    };
    storage.persist(&[install]).unwrap();
    drop(storage);
    let (_, recovered, _) = open(fs, dir, 1 << 20);
    assert!(recovered.entries.is_empty(), "{:?}", indexes_and_terms(&recovered));
    assert_eq!(recovered.snapshot, Some(snapshot(5, 3)));
    assert_eq!(recovered.hard_state, hard_state(3, None));
}

fn segments_are_recognised_by_their_header<F: FileSystem + Clone>(fs: F, dir: &Path) {
    let (mut storage, _, _) = open(fs.clone(), dir, 1 << 20);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=3), ..persist(1) };
    storage.persist(&[first]).unwrap();
    drop(storage);
    let wal = dir.join("wal");
    let write_file = |name: String, bytes: &[u8]| {
        let mut file = fs.create_new(&wal.join(name)).unwrap();
        fs.write_at(&mut file, 0, bytes).unwrap();
        fs.sync_all(&mut file).unwrap();
    };
    // A crash right after a segment was created can leave it without its header.
    write_file(format!("{:020}.wal", 2), &[0; 64]);
    let (mut storage, recovered, _) = open(fs.clone(), dir, 1 << 20);
    assert_eq!(recovered.entries.len(), 3);
    storage.persist(&[Persist { entries: entries(1, 4..=4), ..persist(1) }]).unwrap();
    drop(storage);
    let (_, recovered, _) = open(fs.clone(), dir, 1 << 20);
    assert_eq!(recovered.entries.len(), 4);
    // A file that is not a segment of this log is refused, not skipped.
    write_file(format!("{:020}.wal", 3), b"something else entirely");
    let error = Storage::open(fs, dir, &common::options(1 << 20)).unwrap_err().to_string();
    assert!(
        error.contains("not a raftkv WAL segment") && error.contains("00000000000000000003.wal"),
        "{error}"
    );
}

fn another_node_cannot_use_the_directory<F: FileSystem + Clone>(fs: F, dir: &Path) {
    drop(open(fs.clone(), dir, 1 << 20));
    let other = StorageOptions::new("test", NodeId(2));
    let error = Storage::open(fs.clone(), dir, &other).unwrap_err().to_string();
    assert!(error.contains("belongs to node 1"), "{error}");
    let other_cluster = StorageOptions::new("another", NodeId(1));
    let error = Storage::open(fs, dir, &other_cluster).unwrap_err().to_string();
    assert!(error.contains("of cluster \"test\""), "{error}");
}

/// Group commit: a batch of many persists is one record, written and synced once.
#[test]
fn a_batch_of_persists_is_one_write_and_one_sync() {
    let (fs, dir) = common::sim(3);
    let options = StorageOptions { zero_fill_bytes: 0, ..common::options(1 << 20) };
    let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options).unwrap();
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=1), ..persist(1) };
    storage.persist(&[first]).unwrap();
    let batch: Vec<Persist> = (2..=11)
        .map(|index| Persist { entries: entries(1, index..=index), ..persist(index) })
        .collect();
    let ops_before = fs.ops();
    storage.persist(&batch).unwrap();
    assert_eq!(fs.ops() - ops_before, 2, "one write and one sync");
    drop(storage);
    let (_, recovered, _) = Storage::open(fs, &dir, &options).unwrap();
    assert_eq!(recovered.entries.len(), 11);
}

/// A data directory written before snapshots recorded their membership (snapshot file format
/// 1, `RKVSNAP1`) still opens, and a node starts from it with its configuration's membership.
fn a_snapshot_file_of_format_1_still_opens<F: FileSystem + Clone>(fs: F, dir: &Path) {
    let (mut storage, _, _) = open(fs.clone(), dir, 1 << 20);
    let with_snapshot = Persist {
        hard_state: Some(hard_state(3, None)),
        entries: entries(3, 1..=45),
        ..persist(1)
    };
    let compaction = Persist { snapshot: Some(snapshot(40, 3)), ..persist(2) };
    storage.persist(&[with_snapshot, compaction]).unwrap();
    drop(storage);
    // The snapshot file as format 1 wrote it: magic, checksum, length, then (last, data).
    let last = LogId::new(LogIndex(40), Term(3));
    let contents = postcard::to_allocvec(&(last, &b"state"[..])).unwrap();
    let mut bytes = b"RKVSNAP1".to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(&contents).to_le_bytes());
    bytes.extend_from_slice(&(contents.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&contents);
    let path = dir.join("snapshot");
    fs.remove_file(&path).unwrap();
    let mut file = fs.create_new(&path).unwrap();
    fs.write_at(&mut file, 0, &bytes).unwrap();
    fs.sync_all(&mut file).unwrap();
    drop(file);

    let (_, recovered, report) = open(fs, dir, 1 << 20);
    assert!(report.damage.is_empty(), "{report:?}");
    let recovered_snapshot = recovered.snapshot.clone().expect("the snapshot is read");
    assert_eq!((recovered_snapshot.last, recovered_snapshot.data), (last, b"state".to_vec()));
    assert_eq!(recovered_snapshot.membership, Membership::default(), "format 1 has none");
    assert_eq!(indexes_and_terms(&recovered).len(), 5, "entries 41 to 45 after it");
    let config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    let node = RaftNode::new(Instant::ZERO, config, recovered).expect("the node starts");
    assert_eq!(node.membership().to_string(), "voters=1,2,3");
}
