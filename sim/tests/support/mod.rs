//! Helpers for scenario tests in the manner of the 6.5840 Raft tests: a scripted simulation
//! with fixed, conservative timing, `one` to get a command agreed on, and counts of the
//! servers that committed an index.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part of the helpers.

use raftkv_checker::Verdict;
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::raft::{Entry, Payload};
use raftkv_core::{Duration, LogId, LogIndex, NodeId};
use raftkv_sim::{
    FaultSet, OpId, Options, RaftOptions, Ratio, Report, Shape, Simulation, SnapshotOptions,
    TraceOutput,
};

/// Options for a scripted run: no fault unless the test injects it, the replicas' default
/// timing (elections after 300 to 600 ms, heartbeats every 50 ms) and snapshot settings (no
/// compaction: a test that wants it sets a threshold).
pub fn options(nodes: usize, clients: usize, seed: u64) -> Options {
    let mut options = Options::draw(seed, Shape { nodes, clients, ops: 0, faults: FaultSet::NONE });
    options.raft = RaftOptions::replica_defaults();
    options.snapshot = SnapshotOptions::replica_defaults();
    options
}

/// A network that loses and duplicates packets and delays some a long time (reordering).
pub fn make_unreliable(options: &mut Options) {
    let network = &mut options.network;
    network.loss = Ratio::new(1, 10);
    network.duplicate = Ratio::new(1, 20);
    network.tail = Ratio::new(1, 10);
    network.latency_tail_us_max = 100_000;
}

pub fn simulation(nodes: usize, seed: u64) -> Simulation {
    Simulation::new(options(nodes, 0, seed), TraceOutput::Hidden)
}

pub fn id(n: u64) -> NodeId {
    NodeId(n)
}

/// The node `offset` places after `node` in the order of [`Simulation::node_ids`], wrapping
/// around.
pub fn nth_after(sim: &Simulation, node: NodeId, offset: usize) -> NodeId {
    let all = sim.node_ids();
    let at = all.iter().position(|&id| id == node).expect("a node of the simulation");
    all[(at + offset) % all.len()]
}

/// Whether `entry` is the command `value` proposed with [`Simulation::start`]. The entry holds
/// the encoded request, in which the value's bytes appear as they are.
pub fn holds(entry: &Entry, value: &str) -> bool {
    match &entry.payload {
        Payload::Command(bytes) => {
            bytes.windows(value.len()).any(|window| window == value.as_bytes())
        }
        Payload::Noop | Payload::Membership(_) => false,
    }
}

/// How many servers committed `value` at `index` (the simulator itself checks that no server
/// committed anything else there).
pub fn committed_count(sim: &Simulation, index: LogIndex, value: &str) -> usize {
    sim.node_ids()
        .into_iter()
        .filter(|&id| sim.committed_entry(id, index).is_some_and(|entry| holds(entry, value)))
        .count()
}

/// How many servers committed anything at `index`.
pub fn committed_anything(sim: &Simulation, index: LogIndex) -> usize {
    sim.node_ids().into_iter().filter(|&id| sim.committed_entry(id, index).is_some()).count()
}

/// How many servers committed the entry `log_id` (a leader proposes one entry per index in
/// its term, so the id names it): they hold it, or compacted it into their snapshot after
/// committing it (the simulator checks that every server applies the entry committed at an
/// index, so a compacted one is the one committed there).
pub fn committed_count_of(sim: &Simulation, log_id: LogId) -> usize {
    let committed_there = sim.committed_term(log_id.index) == Some(log_id.term);
    let committed_by = |id: NodeId| {
        let Some(replica) = sim.replica(id) else { return false };
        let raft = replica.raft();
        let status = raft.status();
        let held = raft.term_at(log_id.index) == Some(log_id.term);
        let compacted = log_id.index <= status.snapshot_last.index && committed_there;
        status.commit >= log_id.index && (held || compacted)
    };
    sim.node_ids().into_iter().filter(|&id| committed_by(id)).count()
}

/// Gets `value` committed on at least `expected` servers within 10 s of virtual time: like
/// 6.5840's `one`, it asks every server in turn whether it leads, and with `retry` it proposes
/// again if the first try does not commit within 2 s. Returns the index.
pub fn one(sim: &mut Simulation, value: &str, expected: usize, retry: bool) -> LogIndex {
    let deadline = sim.now() + Duration::from_millis(10_000);
    while sim.now() < deadline {
        let started = sim.node_ids().into_iter().find_map(|id| sim.start(id, value));
        match started {
            Some(log_id) => {
                let index = log_id.index;
                if sim.run_until(2_000, |s| committed_count_of(s, log_id) >= expected) {
                    return index;
                }
                assert_safe(sim);
                assert!(retry, "{value} at {index} not committed by {expected} servers");
            }
            None => sim.run_for(50),
        }
    }
    assert_safe(sim);
    panic!("{value} not committed by {expected} servers within 10 s");
}

/// The one leader among `among` (the connected servers), after giving an election time.
pub fn check_one_leader(sim: &mut Simulation, among: &[NodeId]) -> NodeId {
    for _ in 0..10 {
        sim.run_for(500);
        let leaders: Vec<NodeId> =
            sim.leaders().into_iter().map(|(_, id)| id).filter(|id| among.contains(id)).collect();
        assert!(leaders.len() <= 1, "several leaders among {among:?}: {leaders:?}");
        if let [leader] = leaders[..] {
            return leader;
        }
    }
    panic!("no leader among {among:?}");
}

/// No server among `among` believes it leads.
pub fn check_no_leader(sim: &Simulation, among: &[NodeId]) {
    let leaders: Vec<_> = sim.leaders().into_iter().filter(|(_, id)| among.contains(id)).collect();
    assert!(leaders.is_empty(), "unexpected leaders {leaders:?} among {among:?}");
}

/// The term of a running node.
pub fn term(sim: &Simulation, node: NodeId) -> u64 {
    sim.replica(node).expect("node is up").raft().term().0
}

/// Fails the test if a safety property broke so far.
pub fn assert_safe(sim: &Simulation) {
    if let Some(violation) = sim.violation() {
        panic!("seed {}: {violation}", sim.options().seed);
    }
}

/// Ends the run and fails the test on any violation, the history's included.
pub fn finish(sim: Simulation) -> Report {
    let report = sim.finish();
    assert!(report.passed(), "seed {}: {}", report.options.seed, report.verdict_line());
    report
}

/// Every node but those in `except`.
pub fn all_but(sim: &Simulation, except: &[NodeId]) -> Vec<NodeId> {
    sim.node_ids().into_iter().filter(|id| !except.contains(id)).collect()
}

/// Cuts the servers in `disconnected` off from everyone, and reconnects all others.
pub fn set_disconnected(sim: &mut Simulation, disconnected: &[NodeId]) {
    sim.heal();
    for &node in disconnected {
        sim.isolate(node);
    }
}

pub fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

pub fn reply(sim: &Simulation, op: OpId) -> KvReply {
    match &sim.op(op).ret {
        Some((_, Ok(reply))) => reply.clone(),
        other => panic!("#{op} did not return a reply: {other:?}"),
    }
}

/// Issues `command` from `client` and waits up to 5 s for its reply.
pub fn call(sim: &mut Simulation, client: usize, command: KvCommand) -> KvReply {
    let op = sim.submit(client, command);
    assert!(sim.run_until(5_000, |s| s.op(op).is_finished()), "#{op} returned");
    reply(sim, op)
}

/// Runs `options` at random: it must pass, with a linearizable history in which every
/// operation and final read returned.
pub fn run_passes(options: Options) -> Report {
    let expected = options.shape.ops + options.workload.keys;
    let report = raftkv_sim::run(options, TraceOutput::Hidden);
    report.assert_passed();
    assert_eq!(report.linearizability, Some(Verdict::Linearizable));
    assert_eq!(
        report.ops_ok + report.ops_indeterminate,
        expected,
        "every operation and final read returned"
    );
    report
}
