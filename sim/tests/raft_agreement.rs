//! Log agreement, after the 6.5840 tests of part 3B.

mod support;

use raftkv_core::LogIndex;
use support::*;

#[test]
fn basic_agreement() {
    let mut sim = simulation(3, 10);
    let all = sim.node_ids();
    check_one_leader(&mut sim, &all);
    let mut previous = None;
    for round in 1..=3 {
        let value = format!("basic-{round}");
        let index = one(&mut sim, &value, 3, false);
        if let Some(previous) = previous {
            assert_eq!(index, LogIndex::next(previous), "indices follow each other");
        }
        previous = Some(index);
    }
    finish(sim);
}

#[test]
fn agreement_despite_follower_failure() {
    let mut sim = simulation(3, 11);
    one(&mut sim, "fail-101", 3, false);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let follower = all_but(&sim, &[leader])[0];
    set_disconnected(&mut sim, &[follower]);
    // The leader and the remaining follower agree on their own.
    one(&mut sim, "fail-102", 2, false);
    sim.run_for(600);
    one(&mut sim, "fail-103", 2, false);
    // The follower comes back and catches up.
    set_disconnected(&mut sim, &[]);
    one(&mut sim, "fail-104", 3, true);
    one(&mut sim, "fail-105", 3, true);
    finish(sim);
}

#[test]
fn no_agreement_without_a_majority() {
    let mut sim = simulation(5, 12);
    one(&mut sim, "none-10", 5, false);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let gone: Vec<_> = all_but(&sim, &[leader]).into_iter().take(3).collect();
    set_disconnected(&mut sim, &gone);
    let index = sim.start(leader, "none-20").expect("the leader accepts a command").index;
    sim.run_for(2_000);
    assert_eq!(committed_anything(&sim, index), 0, "committed without a majority");
    // Back together: agreement resumes (the leader may have changed meanwhile).
    set_disconnected(&mut sim, &[]);
    one(&mut sim, "none-30", 5, true);
    one(&mut sim, "none-1000", 5, true);
    finish(sim);
}

#[test]
fn concurrent_proposals() {
    let mut sim = simulation(3, 13);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let term_before = term(&sim, leader);
    // Five proposals in the same instant get five consecutive indices.
    let indices: Vec<LogIndex> = (0..5)
        .map(|i| sim.start(leader, &format!("concurrent-{i}")).expect("leads").index)
        .collect();
    assert!(indices.windows(2).all(|pair| pair[1] == pair[0].next()), "{indices:?}");
    let all_done = |s: &raftkv_sim::Simulation| {
        (0..5).all(|i| committed_count(s, indices[i], &format!("concurrent-{i}")) == 3)
    };
    assert!(sim.run_until(2_000, all_done), "all five commit on every server");
    assert_eq!(term(&sim, leader), term_before, "no election meanwhile");
    finish(sim);
}

#[test]
fn rejoin_of_a_partitioned_leader() {
    let mut sim = simulation(3, 14);
    one(&mut sim, "rejoin-101", 3, true);
    let all = sim.node_ids();
    let leader1 = check_one_leader(&mut sim, &all);
    set_disconnected(&mut sim, &[leader1]);
    // The cut-off leader takes commands that can never commit.
    for value in ["rejoin-102", "rejoin-103", "rejoin-104"] {
        sim.start(leader1, value);
    }
    one(&mut sim, "rejoin-103b", 2, true);
    let others = all_but(&sim, &[leader1]);
    let leader2 = check_one_leader(&mut sim, &others);
    // The new leader leaves, the old one returns: its stale entries must give way.
    set_disconnected(&mut sim, &[leader2]);
    one(&mut sim, "rejoin-104b", 2, true);
    set_disconnected(&mut sim, &[]);
    one(&mut sim, "rejoin-105", 3, true);
    finish(sim);
}

#[test]
fn fast_backup_over_many_conflicting_entries() {
    let mut sim = simulation(5, 15);
    one(&mut sim, "backup-0", 5, true);
    let all = sim.node_ids();
    // The leader and one follower are cut off and take 50 commands that never commit.
    let leader1 = check_one_leader(&mut sim, &all);
    let others = all_but(&sim, &[leader1]);
    sim.partition(&[
        vec![raftkv_sim::Endpoint::Node(leader1), raftkv_sim::Endpoint::Node(others[0])],
        others[1..].iter().map(|&n| raftkv_sim::Endpoint::Node(n)).collect(),
    ]);
    for i in 0..50 {
        sim.start(leader1, &format!("backup-lost-a{i}"));
    }
    sim.run_for(500);
    // The other three commit 50 commands of their own.
    for i in 0..50 {
        one(&mut sim, &format!("backup-b{i}"), 3, true);
    }
    // Their leader and one of them are cut off in turn and take 50 doomed commands.
    let majority = others[1..].to_vec();
    let leader2 = check_one_leader(&mut sim, &majority);
    let other = *majority.iter().find(|&&n| n != leader2).expect("three in the majority");
    set_disconnected(&mut sim, &[other, leader1, others[0]]);
    for i in 0..50 {
        sim.start(leader2, &format!("backup-lost-c{i}"));
    }
    sim.run_for(500);
    // The first pair returns with the third: they must agree, backing up over 50 entries.
    set_disconnected(&mut sim, &[leader2, other]);
    for i in 0..50 {
        one(&mut sim, &format!("backup-d{i}"), 3, true);
    }
    // Everyone returns.
    set_disconnected(&mut sim, &[]);
    one(&mut sim, "backup-last", 5, true);
    finish(sim);
}

#[test]
fn ten_agreements_take_few_messages() {
    let mut sim = simulation(3, 16);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let term_before = term(&sim, leader);
    let before = sim.stats().messages;
    for i in 0..10 {
        let index = sim.start(leader, &format!("count-{i}")).expect("leads").index;
        let value = format!("count-{i}");
        assert!(sim.run_until(1_000, |s| committed_count(s, index, &value) == 3));
    }
    let used = sim.stats().messages - before;
    assert_eq!(term(&sim, leader), term_before, "no election meanwhile");
    // Each command: an append to each follower and its answer, then (every server must commit
    // it) the next heartbeat carrying the commit index, and its answer: 8 messages. The 6.5840
    // bound is (iters + 1 + 3) * 3 calls, each a request and its answer.
    assert!(used <= (10 + 1 + 3) * 3 * 2, "{used} messages for ten agreements");
    finish(sim);
}
