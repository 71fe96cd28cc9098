//! A crash between any two steps of a persist leaves a directory a node can start from, with
//! nothing acknowledged lost: every crash point of a persist is tried, on many seeds (each
//! seed keeps and loses a different part of what was not yet synced).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{entries, hard_state, indexes_and_terms, node_starts, open, persist, sim};
use raftkv_core::LogIndex;
use raftkv_core::raft::{HardState, Persist, Recovered};
use raftkv_storage::sim_fs::SimFs;

/// Small, so that the persists below close segments and compaction removes some.
const SEGMENT_BYTES: u64 = 1024;
const SEEDS: u64 = 24;

/// The log as recovered: the snapshot point and the entries after it, as (index, term).
type Log = (Option<(u64, u64)>, Vec<(u64, u64)>);

fn log_of(recovered: &Recovered) -> Log {
    let snapshot = recovered.snapshot.as_ref().map(|s| (s.last.index.0, s.last.term.0));
    (snapshot, indexes_and_terms(recovered))
}

fn ids(term: u64, range: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
    range.map(|index| (index, term)).collect()
}

/// What a node acknowledged before the persist under test: a vote in term 1 and entries
/// 1..=20 of term 1, over several segments.
fn acknowledged() -> Vec<Persist> {
    vec![
        Persist {
            hard_state: Some(hard_state(1, Some(2))),
            entries: entries(1, 1..=8),
            ..persist(1)
        },
        Persist { entries: entries(1, 9..=20), ..persist(2) },
    ]
}

/// Runs `batch` after [`acknowledged`] and crashes after each possible number of file-system
/// operations in turn, on every seed; after each crash, the directory must open, a node must
/// start from it, its log must be one of `logs` and its hard state one of `hard_states`. The
/// last of each is what must be found once the persist has succeeded.
fn every_crash_point(batch: &[Persist], hard_states: &[HardState], logs: &[Log]) {
    let mut seen = BTreeSet::new();
    for seed in 0..SEEDS {
        for crash_after in 0.. {
            let (fs, dir) = sim(seed);
            let (mut storage, _, _) = open(fs.clone(), &dir, SEGMENT_BYTES);
            for earlier in acknowledged() {
                storage.persist(&[earlier]).unwrap();
            }
            fs.crash_after_ops(crash_after);
            let completed = storage.persist(batch).is_ok();
            drop(storage);
            fs.crash();
            let at = format!("seed {seed}, crash after {crash_after} operations");
            let recovered = recover(&fs, &dir, &at);
            assert!(
                hard_states.contains(&recovered.hard_state),
                "{at}: {:?}",
                recovered.hard_state
            );
            assert!(logs.contains(&log_of(&recovered)), "{at}: {:?}", log_of(&recovered));
            seen.insert((recovered.hard_state.term, log_of(&recovered)));
            if completed {
                assert_eq!(Some(&recovered.hard_state), hard_states.last(), "{at}");
                assert_eq!(Some(&log_of(&recovered)), logs.last(), "{at}");
                break;
            }
        }
    }
    // Every state the persist may pass through was reached by some crash.
    for log in logs {
        assert!(seen.iter().any(|(_, found)| found == log), "never recovered {log:?}");
    }
    for hard_state in hard_states {
        assert!(seen.iter().any(|(term, _)| *term == hard_state.term), "never {hard_state:?}");
    }
}

/// Opens the directory after a crash, checks that a node starts from it and that a crash
/// right after opening changes nothing.
fn recover(fs: &SimFs, dir: &Path, at: &str) -> Recovered {
    let (storage, recovered, report) = open(fs.clone(), dir, SEGMENT_BYTES);
    assert_eq!(node_starts(&recovered), Ok(()), "{at}: {report:?}");
    assert!(!recovered.damaged, "{at}: a crash is not damage: {report:?}");
    drop(storage);
    fs.crash();
    let (_, again, _) = open(fs.clone(), dir, SEGMENT_BYTES);
    assert_eq!(again, recovered, "{at}: a crash right after opening");
    recovered
}

/// A follower installs a leader's snapshot at 15 (term 3) that conflicts with its entries from
/// 16 on, in the persist that also records the new term and the entries that follow.
#[test]
fn every_crash_point_of_a_snapshot_install_with_a_new_term_recovers() {
    let install = Persist {
        hard_state: Some(hard_state(3, None)),
        snapshot: Some(common::snapshot(15, 3)),
        truncate_from: Some(LogIndex(16)),
        entries: entries(3, 16..=18),
        ..persist(3)
    };
    let hard_states = [hard_state(1, Some(2)), hard_state(3, None)];
    let logs = [
        (None, ids(1, 1..=20)),
        (None, ids(1, 1..=15)),
        (Some((15, 3)), vec![]),
        (Some((15, 3)), ids(3, 16..=18)),
    ];
    every_crash_point(&[install], &hard_states, &logs);
}

/// A batch of two persists: a new term with a vote and entries, then a snapshot the node took
/// of its own state and more entries.
#[test]
fn every_crash_point_of_a_batch_with_a_vote_and_a_snapshot_recovers() {
    let batch = [
        Persist {
            hard_state: Some(hard_state(2, Some(1))),
            entries: entries(2, 21..=25),
            ..persist(3)
        },
        Persist {
            snapshot: Some(common::snapshot(22, 2)),
            entries: entries(2, 26..=27),
            ..persist(4)
        },
    ];
    let hard_states = [hard_state(1, Some(2)), hard_state(2, Some(1))];
    let mut everything = ids(1, 1..=20);
    everything.extend(ids(2, 21..=25));
    let logs = [
        (None, ids(1, 1..=20)),
        (None, everything),
        (Some((22, 2)), ids(2, 23..=25)),
        (Some((22, 2)), ids(2, 23..=27)),
    ];
    every_crash_point(&batch, &hard_states, &logs);
}
