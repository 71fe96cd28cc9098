//! Compaction removes only what a snapshot makes useless, and never a record that a kept
//! segment still needs.

mod common;

use common::{entries, hard_state, indexes_and_terms, node_starts, open, persist, sim, snapshot};
use raftkv_core::raft::Persist;
use raftkv_core::{LogId, LogIndex, Term};
use raftkv_storage::FileSystem;

/// Small enough that every persist below closes its segment.
const SEGMENT_BYTES: u64 = 1024;

/// A leader change truncates a long uncommitted tail (entries 41..60 of term 1, in the first
/// segment) with a record in the second segment; a snapshot then covers every entry the
/// second segment holds, but not the first segment's. Removing the second segment alone would
/// bring the truncated tail back at the next start.
#[test]
fn compaction_keeps_a_truncation_that_erased_entries_of_an_older_kept_segment() {
    let (fs, dir) = sim(1);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let long_tail = Persist {
        hard_state: Some(hard_state(1, None)),
        entries: entries(1, 1..=60),
        ..persist(1)
    };
    let new_leader = Persist {
        hard_state: Some(hard_state(3, None)),
        truncate_from: Some(LogIndex(41)),
        entries: entries(3, 41..=45),
        ..persist(2)
    };
    storage.persist(&[long_tail]).unwrap();
    storage.persist(&[new_leader]).unwrap();
    storage.persist(&[Persist { snapshot: Some(snapshot(45, 3)), ..persist(3) }]).unwrap();
    drop(storage);

    let (mut storage, recovered, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&recovered), Ok(()));
    assert_eq!(recovered.snapshot, Some(snapshot(45, 3)));
    assert_eq!(indexes_and_terms(&recovered), []);

    // Once the log has moved past the truncated tail, a snapshot frees both segments.
    let segments_before = fs.list(&dir.join("wal")).unwrap().len();
    let more = Persist { entries: entries(3, 46..=70), ..persist(1) };
    storage.persist(&[more]).unwrap();
    let report =
        storage.persist(&[Persist { snapshot: Some(snapshot(70, 3)), ..persist(2) }]).unwrap();
    assert!(report.segments_removed >= 2, "{report:?}, {segments_before} segments before");
    drop(storage);
    let (_, recovered, _) = open(fs, &dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&recovered), Ok(()));
    assert_eq!(recovered.snapshot, Some(snapshot(70, 3)));
    assert_eq!(indexes_and_terms(&recovered), []);
}

/// Simulator seed 507630: the node installed a leader's snapshot at 4, applied it and entry 5,
/// and its own snapshot at 5 was saved before the install reached the disk (compaction then
/// dropped the segments it covers). The install must not take the snapshot file back to 4:
/// the log on disk starts after 5.
#[test]
fn an_installed_snapshot_older_than_an_own_snapshot_saved_meanwhile_stays_covered() {
    let (fs, dir) = sim(1);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let first =
        Persist { hard_state: Some(hard_state(1, None)), entries: entries(1, 1..=5), ..persist(1) };
    storage.persist(&[first]).unwrap();
    let saver = storage.snapshot_saver();
    assert_eq!(saver.save(&snapshot(5, 1)).unwrap(), raftkv_storage::Saved::Saved);
    storage.compact_log(LogIndex(5)).unwrap();
    storage.persist(&[Persist { snapshot: Some(snapshot(4, 1)), ..persist(2) }]).unwrap();
    storage.persist(&[Persist { entries: entries(1, 6..=7), ..persist(3) }]).unwrap();
    drop(storage);

    let (_, recovered, report) = open(fs, &dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&recovered), Ok(()), "{report:?}");
    assert!(!recovered.hard_state.damaged, "{report:?}");
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.last.index), Some(LogIndex(5)));
    assert_eq!(indexes_and_terms(&recovered), [(6, 1), (7, 1)]);
}

/// Segments that a compaction takes out of the log apart stay on disk until their owner
/// removes them, and the log replays to the same with them or without them.
#[test]
fn segments_compacted_apart_replay_the_same_before_and_after_their_removal() {
    let (fs, dir) = sim(2);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    let first = Persist {
        hard_state: Some(hard_state(1, None)),
        entries: entries(1, 1..=40),
        ..persist(1)
    };
    storage.persist(&[first]).unwrap();
    storage.persist(&[Persist { entries: entries(1, 41..=80), ..persist(2) }]).unwrap();
    storage.snapshot_saver().save(&snapshot(60, 1)).unwrap();
    let wal = dir.join("wal");
    let segments_before = fs.list(&wal).unwrap().len();
    let obsolete = storage.compact_log_apart(LogIndex(60)).unwrap();
    assert_eq!(obsolete.len(), 1, "the first segment alone is covered");
    assert!(fs.list(&wal).unwrap().len() >= segments_before, "nothing removed yet");
    drop(storage);

    let (_, with_them, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    assert_eq!(obsolete.remove().unwrap(), 1);
    let (_, without_them, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&without_them), Ok(()));
    let expected: Vec<(u64, u64)> = (61..=80).map(|index| (index, 1)).collect();
    assert_eq!(indexes_and_terms(&with_them), expected);
    assert_eq!(indexes_and_terms(&without_them), expected);
}

/// A save of a large state holds the snapshot lock for as long as it writes; the log's writer
/// compacts meanwhile without waiting for it (a group commit behind a compaction behind a
/// whole snapshot save stalled every write of the node).
#[test]
fn compaction_does_not_wait_for_a_snapshot_save_in_progress() {
    let temp = common::TempDir::new();
    let (fs, dir) = (raftkv_storage::RealFs, temp.0.clone());
    let (mut storage, _, _) = open(fs, &dir, SEGMENT_BYTES);
    let first = Persist {
        hard_state: Some(hard_state(1, None)),
        entries: entries(1, 1..=40),
        ..persist(1)
    };
    storage.persist(&[first]).unwrap();
    storage.snapshot_saver().save(&snapshot(20, 1)).unwrap();
    let saver = storage.snapshot_saver();
    let (writing, saver_is_writing) = std::sync::mpsc::channel();
    let (go, go_on) = std::sync::mpsc::channel::<()>();
    let saving = std::thread::spawn(move || {
        let membership = snapshot(30, 1).membership;
        let last = raftkv_core::LogId::new(LogIndex(30), raftkv_core::Term(1));
        let mut released_in_time = false;
        saver
            .save_streaming(last, &membership, 5, |out| {
                writing.send(()).unwrap();
                // Bounded: if compaction waited for this lock, the test fails instead of hanging.
                released_in_time = go_on.recv_timeout(std::time::Duration::from_secs(20)).is_ok();
                out.write_all(b"state")
            })
            .unwrap();
        released_in_time
    });
    saver_is_writing.recv().unwrap();
    let obsolete = storage.compact_log_apart(LogIndex(30)).unwrap();
    go.send(()).unwrap();
    assert!(saving.join().unwrap(), "compaction waited for the save to finish");
    obsolete.remove().unwrap();
    drop(storage);
    let (_, recovered, _) = open(fs, &dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&recovered), Ok(()));
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.last.index), Some(LogIndex(30)));
    let expected: Vec<(u64, u64)> = (31..=40).map(|index| (index, 1)).collect();
    assert_eq!(indexes_and_terms(&recovered), expected);
}

/// A compaction keeps a segment less than a quarter full open rather than start a new one
/// (each new segment is a whole one zero-filled): its covered records stay until it closes,
/// and a start replays past them to the same log.
#[test]
fn a_compaction_keeps_a_nearly_empty_segment_open_and_a_start_replays_past_its_covered_records() {
    let (fs, dir) = sim(3);
    let segment_bytes = 1 << 20;
    let (mut storage, _, _) = open(fs.clone(), &dir, segment_bytes);
    let first = Persist {
        hard_state: Some(hard_state(1, None)),
        entries: entries(1, 1..=40),
        ..persist(1)
    };
    storage.persist(&[first]).unwrap();
    storage.snapshot_saver().save(&snapshot(30, 1)).unwrap();
    let wal = dir.join("wal");
    let segments_before = fs.list(&wal).unwrap();
    let obsolete = storage.compact_log_apart(LogIndex(30)).unwrap();
    assert!(obsolete.is_empty(), "the only segment holds entries past the snapshot");
    storage.persist(&[Persist { entries: entries(1, 41..=50), ..persist(2) }]).unwrap();
    assert_eq!(fs.list(&wal).unwrap(), segments_before, "no segment was started");
    drop(storage);

    let (_, recovered, _) = open(fs.clone(), &dir, segment_bytes);
    assert_eq!(node_starts(&recovered), Ok(()));
    let expected: Vec<(u64, u64)> = (31..=50).map(|index| (index, 1)).collect();
    assert_eq!(indexes_and_terms(&recovered), expected);
}

/// The term of entry `index` in the log `read_back_log` writes.
fn term_read_back(index: u64) -> u64 {
    if index <= 40 { 1 } else { 3 }
}

/// Writes entries 1..=60 of term 1, then a new leader's 41..=100 of term 3 over 41..=60, in
/// records of five entries after the first: records over many segments and a truncation.
fn read_back_log(storage: &mut raftkv_storage::Storage<raftkv_storage::sim_fs::SimFs>) {
    let first = Persist {
        hard_state: Some(hard_state(1, None)),
        entries: entries(1, 1..=60),
        ..persist(1)
    };
    storage.persist(&[first]).unwrap();
    for (id, start) in (2..).zip((41..=96).step_by(5)) {
        let truncate_from = (start == 41).then_some(LogIndex(41));
        let change =
            Persist { truncate_from, entries: entries(3, start..=start + 4), ..persist(id) };
        storage.persist(&[change]).unwrap();
    }
}

fn read_back<F: FileSystem>(
    storage: &raftkv_storage::Storage<F>,
    first: u64,
    last: u64,
) -> Option<Vec<(u64, u64)>> {
    let last_id = LogId::new(LogIndex(last), Term(term_read_back(last)));
    let read = storage.read_entries(LogIndex(first), last_id).unwrap_or_else(|e| panic!("{e}"));
    read.map(|entries| entries.iter().map(|e| (e.index.0, e.term.0)).collect())
}

/// Committed entries come back by range as the log last wrote them: across segments, past a
/// truncation by a new leader, after a restart; no longer once a compaction removed them.
#[test]
fn committed_entries_are_read_back_by_range_as_the_log_last_wrote_them() {
    let (fs, dir) = sim(3);
    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    read_back_log(&mut storage);
    let expected = |first: u64, last: u64| -> Option<Vec<(u64, u64)>> {
        Some((first..=last).map(|index| (index, term_read_back(index))).collect())
    };
    let ranges = [(1, 1), (1, 60), (38, 50), (41, 45), (59, 61), (90, 100), (100, 100)];
    for (first, last) in ranges {
        assert_eq!(read_back(&storage, first, last), expected(first, last), "{first}..={last}");
    }
    assert_eq!(read_back(&storage, 99, 101), None, "past the end of the log");
    drop(storage);

    let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
    for (first, last) in ranges {
        assert_eq!(read_back(&storage, first, last), expected(first, last), "reopened");
    }
    storage.persist(&[Persist { snapshot: Some(snapshot(70, 3)), ..persist(1) }]).unwrap();
    assert_eq!(read_back(&storage, 1, 10), None, "compacted away");
    assert_eq!(read_back(&storage, 71, 100), expected(71, 100));
}
