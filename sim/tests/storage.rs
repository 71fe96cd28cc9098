//! The real storage engine under the simulated file system: rotted bits are found and cut
//! away, the damaged node stays out of elections and catches up; writes that fail stop a node
//! without losing what it acknowledged; random runs with every storage fault pass.

mod support;

use raftkv_core::kv::KvCommand;
use raftkv_sim::{FaultSet, Options, Shape, Simulation};
use support::*;

/// Rots bits of one node's data until its storage finds damage at a restart (a rotted bit may
/// fall where it does no harm: zeros after the log, a superseded file).
#[test]
fn a_node_whose_data_rotted_cuts_it_away_stays_out_of_elections_and_catches_up() {
    let mut sim = Simulation::new(options(3, 1, 30), raftkv_sim::TraceOutput::Hidden);
    for i in 0..40 {
        let command = KvCommand::Put { key: bytes(&format!("k{i}")), value: bytes("v") };
        call(&mut sim, 0, command);
    }
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let victim = all_but(&sim, &[leader])[0];
    let mut damaged = false;
    for _ in 0..20 {
        assert!(sim.rot_bit(victim).is_some(), "its disk holds data");
        sim.crash(victim);
        sim.restart(victim);
        let replica = sim.replica(victim).expect("restarts: damage is cut away, not fatal");
        if replica.raft().status().damaged {
            damaged = true;
            break;
        }
    }
    assert!(damaged, "twenty rotted bits and no damage found");
    assert!(sim.stats().damaged_restarts >= 1);
    assert!(
        sim.run_until(10_000, |s| s.replica(victim).is_some_and(|r| !r.raft().status().damaged)),
        "the damaged node catches up"
    );
    let value = call(&mut sim, 0, KvCommand::Get { key: bytes("k39") });
    assert_eq!(value, raftkv_core::kv::KvReply::Value(Some(bytes("v"))));
    finish(sim);
}

/// Random runs with the storage faults on (crashes mid-write, failed writes, rotted bits) and
/// crashes: every run passes, and together they inject every kind of fault.
#[test]
fn random_runs_with_every_storage_fault_pass() {
    let faults: FaultSet = "crash,disk".parse().expect("valid");
    let mut storage = raftkv_sim::FaultCounters::default();
    let (mut disk_failures, mut damaged) = (0, 0);
    for seed in 300..340 {
        let shape = Shape { nodes: 3, clients: 3, ops: 200, faults };
        let mut options = Options::draw(seed, shape);
        options.disk.bit_rot_interval_ms_max = 500;
        options.disk.io_error = raftkv_sim::Ratio::new(5, 100);
        options.disk.torn = raftkv_sim::Ratio::new(1, 1);
        let report = run_passes(options);
        storage += report.stats.storage;
        disk_failures += report.stats.disk_failures;
        damaged += report.stats.damaged_restarts;
    }
    assert!(storage.bit_flips > 0 && damaged > 0, "{storage:?}");
    assert!(storage.crashes_between_steps > 0, "{storage:?}");
    assert!(storage.no_space_errors > 0 && storage.io_errors > 0, "{storage:?}");
    assert!(storage.lost_writes + storage.torn_writes > 0, "{storage:?}");
    assert!(disk_failures > 0);
}

/// A leader whose WAL rotted under the entries a lagging follower needs cannot read them back
/// (the simulator checks every entry read back against what was acknowledged, so none comes
/// back wrong): it takes a snapshot past them and sends that instead.
#[test]
fn entries_rotted_in_the_leaders_wal_reach_a_lagging_follower_in_a_snapshot() {
    let mut sim = Simulation::new(options(3, 1, 31), raftkv_sim::TraceOutput::Hidden);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let lagging = all_but(&sim, &[leader])[0];
    sim.crash(lagging);
    for i in 0..300 {
        let command = KvCommand::Put { key: bytes(&format!("k{}", i % 20)), value: bytes("v") };
        call(&mut sim, 0, command);
    }
    for _ in 0..40 {
        assert!(sim.rot_bit(leader).is_some(), "its disk holds data");
    }
    sim.restart(lagging);
    let leader_commit = sim.replica(leader).expect("up").raft().status().commit;
    let caught_up =
        |s: &Simulation| s.replica(lagging).is_some_and(|r| r.applied() >= leader_commit);
    assert!(sim.run_until(10_000, caught_up), "the follower catches up");
    let counters = sim.replica(leader).expect("up").raft().counters().clone();
    assert!(counters.log_reads_failed >= 1, "{counters}");
    let installed = sim.replica(lagging).expect("up").raft().counters().snapshots_installed;
    assert!(installed >= 1, "the entries went in a snapshot");
    assert_eq!(sim.leader(), Some(leader), "no election on the way");
    assert!(sim.violation().is_none(), "{:?}", sim.violation());
}
