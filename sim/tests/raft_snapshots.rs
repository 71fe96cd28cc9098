//! Snapshots and log compaction at the Raft level, after the 6.5840 tests of part 3D: logs
//! stay small, a follower that missed compacted entries gets the leader's snapshot (cut off,
//! over a lossy network, after a crash), and snapshots survive crashes of every server.

mod support;

use raftkv_core::prng::Prng;
use raftkv_core::{LogIndex, NodeId};
use raftkv_sim::{Report, Simulation, TraceOutput};
use support::*;

/// A command proposed by hand weighs about 45 bytes in the log: a snapshot every ten or so.
const THRESHOLD_BYTES: usize = 450;

/// The Raft state a disk may hold in these tests: the hard state, under the threshold of
/// entries applied when written, and the commands not yet applied (a test proposes at most
/// fifteen at once).
const PERSISTED_BYTES_MAX: u64 = 2_000;

fn snapshotting(nodes: usize, seed: u64, unreliable: bool) -> Simulation {
    let mut options = options(nodes, 0, seed);
    options.snapshot.threshold_bytes = THRESHOLD_BYTES;
    options.snapshot.chunk_bytes = 16;
    options.snapshot.max_inflight_chunks = 2;
    if unreliable {
        make_unreliable(&mut options);
    }
    Simulation::new(options, TraceOutput::Hidden)
}

fn assert_logs_small(sim: &Simulation) {
    for id in sim.node_ids() {
        let bytes = sim.persisted_bytes(id);
        assert!(bytes <= PERSISTED_BYTES_MAX, "n{id} keeps {bytes} bytes of Raft state");
    }
}

/// Snapshots taken so far by the running servers in their current lives.
fn snapshots_taken(sim: &Simulation, id: NodeId) -> u64 {
    sim.replica(id).map_or(0, |replica| replica.raft().counters().snapshots_taken)
}

#[test]
fn snapshot_basic() {
    let mut sim = snapshotting(3, 50, false);
    for round in 0..100 {
        one(&mut sim, &format!("basic-{round}"), 3, false);
        assert_logs_small(&sim);
    }
    for id in sim.node_ids() {
        // About 4,500 bytes of commands.
        assert!(snapshots_taken(&sim, id) >= 8, "n{id} took {}", snapshots_taken(&sim, id));
        let status = sim.replica(id).expect("up").raft().status();
        assert!(status.log_entries <= 12, "n{id} holds {} entries", status.log_entries);
    }
    finish(sim);
}

/// The scenario of 6.5840's snapshot installation tests: thirty times a victim (the leader's
/// successor, or every third time the leader itself) is cut off or crashed while the others
/// commit enough to compact past its log, then it comes back and must catch up.
fn install_scenario(seed: u64, disconnect: bool, unreliable: bool, crash: bool) -> Report {
    let mut sim = snapshotting(3, seed, unreliable);
    let mut rng = Prng::seeded(seed);
    let all = sim.node_ids();
    one(&mut sim, "install-first", 3, true);
    let mut leader = check_one_leader(&mut sim, &all);
    for round in 0..30 {
        let successor = nth_after(&sim, leader, 1);
        let (victim, sender) =
            if round % 3 == 1 { (leader, successor) } else { (successor, leader) };
        if disconnect {
            set_disconnected(&mut sim, &[victim]);
            one(&mut sim, &format!("install-{round}-cut"), 2, true);
        }
        if crash {
            sim.crash(victim);
            one(&mut sim, &format!("install-{round}-crash"), 2, true);
        }
        // Enough commands to compact, proposed at once at the old leader (which may not lead
        // any more: then they go nowhere, as in 6.5840).
        for command in 0..5 + rng.range_inclusive(0, 9) {
            sim.start(sender, &format!("install-{round}-{command}"));
        }
        one(&mut sim, &format!("install-{round}-majority"), 2, true);
        assert_logs_small(&sim);
        if disconnect {
            set_disconnected(&mut sim, &[]);
        }
        if crash {
            sim.restart(victim);
        }
        one(&mut sim, &format!("install-{round}-all"), 3, true);
        leader = check_one_leader(&mut sim, &all);
    }
    finish(sim)
}

#[test]
fn install_snapshot_to_a_disconnected_follower() {
    let report = install_scenario(51, true, false, false);
    assert!(report.stats.snapshots_installed >= 10, "{:?}", report.stats);
}

#[test]
fn install_snapshot_over_an_unreliable_network() {
    let report = install_scenario(52, true, true, false);
    assert!(report.stats.snapshots_installed >= 10, "{:?}", report.stats);
}

#[test]
fn install_snapshot_to_a_crashed_follower() {
    let report = install_scenario(53, false, false, true);
    assert!(report.stats.snapshots_installed >= 10, "{:?}", report.stats);
}

#[test]
fn install_snapshot_to_a_crashed_follower_over_an_unreliable_network() {
    let report = install_scenario(54, false, true, true);
    assert!(report.stats.snapshots_installed >= 10, "{:?}", report.stats);
}

fn crash_and_restart_all(sim: &mut Simulation) {
    let all = sim.node_ids();
    for &id in &all {
        sim.crash(id);
    }
    for &id in &all {
        sim.restart(id);
    }
}

/// Every server crashes after compacting, five times over; each time they come back from
/// their snapshots and go on.
#[test]
fn snapshots_survive_crashes_of_every_server() {
    let mut sim = snapshotting(3, 55, false);
    one(&mut sim, "all-crash-first", 3, true);
    let mut rng = Prng::seeded(55);
    for round in 0..5 {
        for command in 0..5 + rng.range_inclusive(0, 9) {
            one(&mut sim, &format!("all-crash-{round}-{command}"), 3, true);
        }
        let before = one(&mut sim, &format!("all-crash-{round}-before"), 3, true);
        crash_and_restart_all(&mut sim);
        for id in sim.node_ids() {
            let snapshot = sim.replica(id).expect("restarted").raft().status().snapshot_last;
            assert!(snapshot.index > LogIndex(0), "n{id} restarted without its snapshot");
        }
        let after = one(&mut sim, &format!("all-crash-{round}-after"), 3, true);
        assert!(after > before, "{after} after {before}: the log went back");
    }
    finish(sim);
}

/// After two crash cycles with no snapshot in between, each server still starts from the
/// snapshot it took before the first (a restart that took no new snapshot must keep the old
/// one on disk).
#[test]
fn snapshot_state_survives_two_crash_cycles() {
    let mut sim = snapshotting(3, 56, false);
    one(&mut sim, "init-first", 3, true);
    for command in 0..15 {
        one(&mut sim, &format!("init-{command}"), 3, true);
    }
    let snapshots: Vec<LogIndex> = sim
        .node_ids()
        .into_iter()
        .map(|id| sim.replica(id).expect("up").raft().status().snapshot_last.index)
        .collect();
    assert!(snapshots.iter().all(|&index| index > LogIndex(0)), "{snapshots:?}");
    crash_and_restart_all(&mut sim);
    one(&mut sim, "init-between", 3, true);
    crash_and_restart_all(&mut sim);
    for (id, taken) in sim.node_ids().into_iter().zip(snapshots) {
        let status = sim.replica(id).expect("restarted").raft().status();
        assert!(status.snapshot_last.index >= taken, "n{id} lost its snapshot at {taken}");
    }
    one(&mut sim, "init-last", 3, true);
    finish(sim);
}
