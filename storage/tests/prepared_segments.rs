//! WAL segments prepared ahead of need: the writer starts them without growing them, what was
//! prepared for an earlier run or a passed-by sequence is removed, and a crash at any step of
//! a preparation loses nothing acknowledged.

mod common;

use std::path::Path;

use common::{entries, indexes_and_terms, open, persist, sim};
use raftkv_core::raft::Persist;
use raftkv_storage::sim_fs::SimFs;
use raftkv_storage::{FileSystem, RealFs, Storage, StorageOptions};

const SEGMENT_BYTES: u64 = 4 << 10;
const ZERO_FILL_BYTES: u64 = 1 << 10;

fn options() -> StorageOptions {
    StorageOptions { zero_fill_bytes: ZERO_FILL_BYTES, ..common::options(SEGMENT_BYTES) }
}

/// Persist `id` appends entry `id` of term 1 (100-byte commands: about 40 to a segment).
fn append(id: u64) -> Persist {
    Persist { entries: entries(1, id..=id), ..persist(id) }
}

/// The names in the WAL directory with `suffix`, sorted.
fn names_ending<F: FileSystem>(fs: &F, dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs.list(&dir.join("wal")).expect("the WAL directory lists");
    names.retain(|name| name.ends_with(suffix));
    names.sort();
    names
}

fn file_bytes<F: FileSystem>(fs: &F, dir: &Path, name: &str) -> u64 {
    let path = dir.join("wal").join(name);
    fs.read(&path).expect("readable").expect("exists").len() as u64
}

/// Writes 200 entries, preparing the next segment after every persist.
fn write_with_preparation<F: FileSystem + Clone>(fs: &F, dir: &Path) -> Storage<F> {
    let (mut storage, _, _) = Storage::open(fs.clone(), dir, &options()).expect("opens");
    let preparer = storage.segment_preparer();
    for id in 1..=200 {
        storage.persist(&[append(id)]).expect("persists");
        if let Some(sequence) = storage.segment_to_prepare() {
            preparer.prepare(sequence).expect("prepares");
        }
    }
    storage
}

fn prepared_segments_are_started_without_growing_them<F: FileSystem + Clone>(fs: F, dir: &Path) {
    let storage = write_with_preparation(&fs, dir);
    let segments = names_ending(&fs, dir, ".wal");
    assert!(segments.len() >= 4, "the log rotated: {segments:?}");
    // Every segment after the first was prepared: it keeps the prepared length, where a
    // segment the writer creates grows by zero-fills as records arrive.
    let prepared_bytes = SEGMENT_BYTES + ZERO_FILL_BYTES;
    for name in &segments[1..] {
        assert_eq!(file_bytes(&fs, dir, name), prepared_bytes, "{name}");
    }
    // Only the next one waits, ready.
    let next = storage.segment_to_prepare().expect("the active segment is a quarter full");
    assert_eq!(names_ending(&fs, dir, ".ready"), [format!("{next:020}.ready")]);
    assert!(names_ending(&fs, dir, ".preparing").is_empty());
    drop(storage);

    let (storage, recovered, report) = open(fs.clone(), dir, SEGMENT_BYTES);
    let expected: Vec<(u64, u64)> = (1..=200).map(|index| (index, 1)).collect();
    assert_eq!(indexes_and_terms(&recovered), expected);
    assert!(report.torn_tail.is_none() && report.damage.is_empty());
    assert!(names_ending(&fs, dir, ".ready").is_empty(), "an earlier run's are removed");
    drop(storage);
}

#[test]
fn prepared_segments_are_started_without_growing_them_on_a_real_disk() {
    let dir = common::TempDir::new();
    prepared_segments_are_started_without_growing_them(RealFs, &dir.0);
}

#[test]
fn prepared_segments_are_started_without_growing_them_on_a_simulated_disk() {
    let (fs, dir) = sim(3);
    prepared_segments_are_started_without_growing_them(fs, &dir);
}

#[test]
fn a_segment_prepared_for_a_sequence_the_writer_passed_is_removed() {
    let (fs, dir) = sim(5);
    let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options()).expect("opens");
    let preparer = storage.segment_preparer();
    assert_eq!(storage.segment_to_prepare(), None, "nothing to prepare for an empty segment");
    for id in 1..=15 {
        storage.persist(&[append(id)]).expect("persists");
    }
    let first = storage.segment_to_prepare().expect("a quarter full");
    // The log rotates past `first` before its preparation is asked for.
    for id in 16..=100 {
        storage.persist(&[append(id)]).expect("persists");
    }
    preparer.prepare(first).expect("prepares");
    let next = storage.segment_to_prepare().expect("a quarter full");
    assert!(next > first);
    preparer.prepare(next).expect("prepares");
    assert_eq!(names_ending(&fs, &dir, ".ready"), [format!("{next:020}.ready")]);
}

#[test]
fn a_crash_at_any_step_of_a_preparation_loses_nothing_acknowledged() {
    // Each round crashes a fresh run at the next operation of a preparation in the middle of
    // the writes (and at every later one once the steps run out), and on each seed the file
    // system keeps a different part of what was not synced.
    for step in 0..12 {
        for seed in 0..4 {
            let fs = SimFs::new(seed);
            let dir = Path::new("data");
            let (mut storage, _, _) = Storage::open(fs.clone(), dir, &options()).expect("opens");
            let preparer = storage.segment_preparer();
            for id in 1..=100 {
                storage.persist(&[append(id)]).expect("persists");
                let Some(next) = storage.segment_to_prepare() else { continue };
                if id == 60 {
                    fs.crash_after_ops(step);
                    let _ = preparer.prepare(next);
                    break;
                }
                preparer.prepare(next).expect("prepares");
            }
            drop(storage);
            fs.crash();
            let (mut storage, recovered, report) = open(fs.clone(), dir, SEGMENT_BYTES);
            let expected: Vec<(u64, u64)> = (1..=60).map(|index| (index, 1)).collect();
            assert_eq!(indexes_and_terms(&recovered), expected, "step {step}, seed {seed}");
            assert!(report.damage.is_empty(), "step {step}, seed {seed}: {report:?}");
            assert!(names_ending(&fs, dir, ".preparing").is_empty());
            assert!(names_ending(&fs, dir, ".ready").is_empty());
            // And the log goes on.
            storage.persist(&[append(61)]).expect("persists after the restart");
        }
    }
}

#[test]
fn a_growing_segment_is_left_for_a_prepared_one_at_its_next_zero_fill() {
    // Segments of 64 zero-fills: the first one of a new log grows by zero-fills, each of
    // which makes the sync after it commit the file's new size.
    let segment_bytes = 64 * ZERO_FILL_BYTES;
    let options =
        StorageOptions { zero_fill_bytes: ZERO_FILL_BYTES, ..common::options(segment_bytes) };
    let (fs, dir) = sim(7);
    let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options).expect("opens");
    let preparer = storage.segment_preparer();
    let mut asked = None;
    for id in 1..=60 {
        storage.persist(&[append(id)]).expect("persists");
        if let Some(sequence) = storage.segment_to_prepare() {
            asked.get_or_insert(id);
            preparer.prepare(sequence).expect("prepares");
        }
    }
    // Asked for once the first segment held a zero-fill's worth of records, long before it
    // was a quarter full, and started at the zero-fill after.
    let asked = asked.expect("the next segment was asked for");
    assert!(asked <= 12, "asked for after {asked} entries");
    let segments = names_ending(&fs, &dir, ".wal");
    assert_eq!(segments.len(), 2, "{segments:?}");
    assert!(file_bytes(&fs, &dir, &segments[0]) <= 3 * ZERO_FILL_BYTES, "{segments:?}");
    assert_eq!(file_bytes(&fs, &dir, &segments[1]), segment_bytes + ZERO_FILL_BYTES);
    drop(storage);

    let (_, recovered, report) = open(fs.clone(), &dir, segment_bytes);
    let expected: Vec<(u64, u64)> = (1..=60).map(|index| (index, 1)).collect();
    assert_eq!(indexes_and_terms(&recovered), expected);
    assert!(report.torn_tail.is_none() && report.damage.is_empty());
}
