//! A crash between any two steps of a persist, or a failed step (`ENOSPC`, `EIO`), leaves a
//! directory a node can start from, with nothing acknowledged lost: every step of a persist
//! is tried in turn, on many seeds (each seed keeps and loses a different part of what was not
//! yet synced).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{entries, hard_state, indexes_and_terms, node_starts, persist, sim};
use raftkv_core::LogIndex;
use raftkv_core::raft::{HardState, Persist, Recovered};
use raftkv_storage::sim_fs::{FailureKind, SimFs};
use raftkv_storage::{Storage, StorageError, StorageOptions};

const SEEDS: u64 = 24;

/// The log as recovered: the snapshot point and the entries after it, as (index, term).
type Log = (Option<(u64, u64)>, Vec<(u64, u64)>);

/// How a persist is interrupted after a number of file-system operations.
#[derive(Clone, Copy, Debug)]
enum Interruption {
    /// The machine stops; every later operation fails until the crash.
    Crash,
    /// The operation fails with this error; the storage must stop.
    Failure(FailureKind),
}

/// What the tests expect after an interrupted persist: one of `hard_states` and one of `logs`,
/// the last of each once the persist has succeeded.
struct Expected<'a> {
    hard_states: &'a [HardState],
    logs: &'a [Log],
}

fn log_of(recovered: &Recovered) -> Log {
    let snapshot = recovered.snapshot.as_ref().map(|s| (s.last.index.0, s.last.term.0));
    (snapshot, indexes_and_terms(recovered))
}

fn ids(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
    range.map(|index| (index, term)).collect()
}

/// Small segments, so that the persists below close segments and compaction removes some;
/// with and without zero-filling ahead.
fn all_options() -> [StorageOptions; 2] {
    let zero_filled = StorageOptions { zero_fill_bytes: 1024, ..common::options(1024) };
    let appended = StorageOptions { zero_fill_bytes: 0, ..common::options(1024) };
    [zero_filled, appended]
}

/// What a node acknowledged before the persist under test: a vote in term 1 and entries
/// 1..=20 of term 1, in three records over two segments.
fn acknowledged() -> Vec<Persist> {
    vec![
        Persist {
            hard_state: Some(hard_state(1, Some(2))),
            entries: entries(1, 1..=8),
            ..persist(1)
        },
        Persist { entries: entries(1, 9..=12), ..persist(2) },
        Persist { entries: entries(1, 13..=20), ..persist(3) },
    ]
}

/// Runs `batch` after [`acknowledged`], interrupted after each possible number of file-system
/// operations in turn, on every seed and with every option; then crashes, and checks that the
/// directory opens, a node starts from it, and it holds one of the `expected` states.
fn every_interruption(batch: &[Persist], interruption: Interruption, expected: &Expected<'_>) {
    let mut seen = BTreeSet::new();
    for options in all_options() {
        for seed in 0..SEEDS {
            for step in 0.. {
                let at = format!("{interruption:?} at step {step}, seed {seed}, {options:?}");
                let (fs, dir) = sim(seed);
                let (mut storage, _, _) = Storage::open(fs.clone(), &dir, &options).unwrap();
                for earlier in acknowledged() {
                    storage.persist(&[earlier]).unwrap();
                }
                match interruption {
                    Interruption::Crash => fs.crash_after_ops(step),
                    Interruption::Failure(kind) => fs.fail_after_ops(step, kind),
                }
                let outcome = storage.persist(batch);
                if let (Interruption::Failure(kind), Err(error)) = (interruption, &outcome) {
                    let errno = match kind {
                        FailureKind::NoSpace => 28,
                        FailureKind::Io => 5,
                    };
                    assert_eq!(raw_os_error(error), Some(errno), "{at}: {error}");
                    let again =
                        storage.persist(&[Persist { entries: entries(1, 21..=21), ..persist(9) }]);
                    assert!(matches!(again, Err(StorageError::Stopped)), "{at}: {again:?}");
                }
                drop(storage);
                fs.crash();
                let recovered = recover(&fs, &dir, &options, &at);
                let log = log_of(&recovered);
                assert!(
                    expected.hard_states.contains(&recovered.hard_state),
                    "{at}: {:?}",
                    recovered.hard_state
                );
                assert!(expected.logs.contains(&log), "{at}: {log:?}");
                seen.insert((recovered.hard_state.term, log.clone()));
                if outcome.is_ok() {
                    assert_eq!(Some(&recovered.hard_state), expected.hard_states.last(), "{at}");
                    assert_eq!(Some(&log), expected.logs.last(), "{at}");
                    break;
                }
            }
        }
    }
    // Every state the persist may pass through was reached.
    for log in expected.logs {
        assert!(seen.iter().any(|(_, found)| found == log), "never recovered {log:?}");
    }
    for hard_state in expected.hard_states {
        assert!(seen.iter().any(|(term, _)| *term == hard_state.term), "never {hard_state:?}");
    }
}

fn raw_os_error(error: &StorageError) -> Option<i32> {
    match error {
        StorageError::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Opens the directory after a crash, checks that a node starts from it and that a crash
/// right after opening changes nothing.
fn recover(fs: &SimFs, dir: &Path, options: &StorageOptions, at: &str) -> Recovered {
    let (storage, recovered, report) = Storage::open(fs.clone(), dir, options).unwrap();
    assert_eq!(node_starts(&recovered), Ok(()), "{at}: {report:?}");
    assert!(!recovered.hard_state.damaged, "{at}: a crash is not damage: {report:?}");
    drop(storage);
    fs.crash();
    let (_, again, _) = Storage::open(fs.clone(), dir, options).unwrap();
    assert_eq!(again, recovered, "{at}: a crash right after opening");
    recovered
}

/// A follower installs a leader's snapshot at 15 (term 3) that conflicts with its entries from
/// 16 on, in the persist that also records the new term and the entries that follow; the
/// snapshot lets compaction remove both segments, one of which holds the truncation.
fn snapshot_install() -> (Vec<Persist>, [HardState; 2], [Log; 4]) {
    let install = Persist {
        hard_state: Some(hard_state(3, None)),
        snapshot: Some(common::snapshot(15, 3)),
        truncate_from: Some(LogIndex(16)),
        entries: entries(3, 16..=18),
        ..persist(4)
    };
    let hard_states = [hard_state(1, Some(2)), hard_state(3, None)];
    let logs = [
        (None, ids(1, 1..=20)),
        (None, ids(1, 1..=15)),
        (Some((15, 3)), vec![]),
        (Some((15, 3)), ids(3, 16..=18)),
    ];
    (vec![install], hard_states, logs)
}

/// A batch of two persists: a new term with a vote and entries, then a snapshot the node took
/// of its own state and more entries.
fn vote_and_snapshot() -> (Vec<Persist>, [HardState; 2], [Log; 4]) {
    let batch = vec![
        Persist {
            hard_state: Some(hard_state(2, Some(1))),
            entries: entries(2, 21..=25),
            ..persist(4)
        },
        Persist {
            snapshot: Some(common::snapshot(22, 2)),
            entries: entries(2, 26..=27),
            ..persist(5)
        },
    ];
    let hard_states = [hard_state(1, Some(2)), hard_state(2, Some(1))];
    let logs = [
        (None, ids(1, 1..=20)),
        (None, [ids(1, 1..=20), ids(2, 21..=25)].concat()),
        (Some((22, 2)), ids(2, 23..=25)),
        (Some((22, 2)), ids(2, 23..=27)),
    ];
    (batch, hard_states, logs)
}

#[test]
fn every_crash_point_of_a_snapshot_install_with_a_new_term_recovers() {
    let (batch, hard_states, logs) = snapshot_install();
    every_interruption(
        &batch,
        Interruption::Crash,
        &Expected { hard_states: &hard_states, logs: &logs },
    );
}

#[test]
fn every_crash_point_of_a_batch_with_a_vote_and_a_snapshot_recovers() {
    let (batch, hard_states, logs) = vote_and_snapshot();
    every_interruption(
        &batch,
        Interruption::Crash,
        &Expected { hard_states: &hard_states, logs: &logs },
    );
}

#[test]
fn every_failed_step_of_a_persist_stops_the_storage_and_recovers() {
    for kind in [FailureKind::NoSpace, FailureKind::Io] {
        for (batch, hard_states, logs) in [snapshot_install(), vote_and_snapshot()] {
            let expected = Expected { hard_states: &hard_states, logs: &logs };
            every_interruption(&batch, Interruption::Failure(kind), &expected);
        }
    }
}
