//! The key-value service through its clerks, after the 6.5840 tests of part 4A: scripted
//! scenarios, and random runs with each class of faults (every history checked for
//! linearizability, every operation required to return once the faults stop).

mod support;

use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_sim::{Endpoint, FaultSet, OpId, Options, Report, Shape, Simulation, TraceOutput};
use support::*;

#[test]
fn kv_basic() {
    let mut sim = Simulation::new(options(5, 1, 30), TraceOutput::Hidden);
    let x = || bytes("x");
    assert_eq!(call(&mut sim, 0, KvCommand::Get { key: x() }), KvReply::Value(None));
    call(&mut sim, 0, KvCommand::Put { key: x(), value: bytes("a") });
    call(&mut sim, 0, KvCommand::Append { key: x(), value: bytes("b") });
    assert_eq!(call(&mut sim, 0, KvCommand::Get { key: x() }), KvReply::Value(Some(bytes("ab"))));
    let swapped = call(
        &mut sim,
        0,
        KvCommand::Cas { key: x(), expected: Some(bytes("ab")), new: bytes("c") },
    );
    assert_eq!(swapped, KvReply::Cas { swapped: true, previous: Some(bytes("ab")) });
    call(&mut sim, 0, KvCommand::Delete { key: x() });
    assert_eq!(call(&mut sim, 0, KvCommand::Get { key: x() }), KvReply::Value(None));
    finish(sim);
}

/// Several clients append to one key over an unreliable network; each append lands exactly
/// once, in each client's order. A read after each round pins the order the round took (without
/// it, the checker would have to try every order of every round against the final value).
#[test]
fn kv_one_key_many_appending_clients() {
    let clients = 5;
    let mut options = options(5, clients, 31);
    make_unreliable(&mut options);
    let mut sim = Simulation::new(options, TraceOutput::Hidden);
    let key = || bytes("k");
    for round in 0..10 {
        let ops: Vec<OpId> = (0..clients)
            .map(|client| {
                sim.submit(
                    client,
                    KvCommand::Append { key: key(), value: bytes(&format!("[{client}.{round}]")) },
                )
            })
            .collect();
        assert!(
            sim.run_until(20_000, |s| ops.iter().all(|&op| s.op(op).is_finished())),
            "round {round}"
        );
        call(&mut sim, 0, KvCommand::Get { key: key() });
    }
    let KvReply::Value(Some(value)) = call(&mut sim, 0, KvCommand::Get { key: key() }) else {
        panic!("the key holds the appends");
    };
    let value = String::from_utf8(value).expect("text");
    for client in 0..clients {
        let positions: Vec<usize> = (0..10)
            .map(|round| {
                let token = format!("[{client}.{round}]");
                assert_eq!(value.matches(&token).count(), 1, "{token} appended once");
                value.find(&token).expect("present")
            })
            .collect();
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "client {client}'s appends in order"
        );
    }
    finish(sim);
}

/// A leader cut off in a minority with one client must not serve it until the partition heals.
#[test]
fn kv_partition_minority_waits_until_healed() {
    let mut sim = Simulation::new(options(5, 2, 32), TraceOutput::Hidden);
    call(&mut sim, 0, KvCommand::Put { key: bytes("x"), value: bytes("0") });
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let follower = all_but(&sim, &[leader])[0];
    let majority: Vec<Endpoint> =
        all_but(&sim, &[leader, follower]).into_iter().map(Endpoint::Node).collect();
    let mut majority_side = majority;
    majority_side.push(Endpoint::Client(0));
    sim.partition(&[
        vec![Endpoint::Node(leader), Endpoint::Node(follower), Endpoint::Client(1)],
        majority_side,
    ]);
    // The majority goes on.
    assert_eq!(
        call(&mut sim, 0, KvCommand::Put { key: bytes("x"), value: bytes("1") }),
        KvReply::Done
    );
    // The minority's client waits, for a read as for a write.
    let write = sim.submit(1, KvCommand::Put { key: bytes("x"), value: bytes("2") });
    sim.run_for(3_000);
    assert!(!sim.op(write).is_finished(), "a minority completed a write");
    sim.heal();
    assert!(
        sim.run_until(10_000, |s| s.op(write).is_finished()),
        "the write completes once healed"
    );
    let read = sim.submit(1, KvCommand::Get { key: bytes("x") });
    assert!(sim.run_until(5_000, |s| s.op(read).is_finished()));
    assert_eq!(reply(&sim, read), KvReply::Value(Some(bytes("2"))));
    finish(sim);
}

/// A random run with `faults`, its other options drawn from `seed`.
fn random_run(seed: u64, nodes: usize, clients: usize, ops: u64, faults: &str) -> Report {
    let faults: FaultSet = faults.parse().expect("valid fault classes");
    run_passes(Options::draw(seed, Shape { nodes, clients, ops, faults }))
}

#[test]
fn kv_concurrent_clients() {
    random_run(33, 5, 5, 500, "none");
}

#[test]
fn kv_unreliable() {
    let report = random_run(34, 5, 5, 500, "net");
    assert!(report.ops_ok > 0);
}

#[test]
fn kv_many_partitions_one_client() {
    let report = random_run(35, 5, 1, 300, "partition");
    assert!(report.stats.partitions > 0, "partitions were injected");
}

#[test]
fn kv_many_partitions_many_clients() {
    let report = random_run(36, 5, 5, 500, "partition");
    assert!(report.stats.partitions > 0, "partitions were injected");
}

#[test]
fn kv_persistence_one_client() {
    let report = random_run(37, 5, 1, 300, "crash");
    assert!(report.stats.crashes > 0, "crashes were injected");
}

#[test]
fn kv_persistence_concurrent() {
    let report = random_run(38, 5, 5, 500, "crash,disk");
    assert!(report.stats.crashes > 0, "crashes were injected");
}

#[test]
fn kv_persistence_unreliable() {
    random_run(39, 5, 5, 500, "crash,net,disk");
}

#[test]
fn kv_persistence_partitions() {
    random_run(40, 5, 5, 500, "crash,partition,disk");
}

#[test]
fn kv_persistence_partitions_unreliable() {
    random_run(41, 5, 5, 500, "crash,partition,net,disk");
}

#[test]
fn kv_linearizable_under_everything() {
    for seed in 42..47 {
        random_run(seed, 5, 7, 600, "all");
    }
}
