//! Leader election, after the 6.5840 tests of part 3A.

mod support;

use support::*;

#[test]
fn initial_election() {
    let mut sim = simulation(3, 1);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    let first_term = term(&sim, leader);
    assert!(first_term >= 1);
    // With no failure, the term stays and so does the leader.
    sim.run_for(2_000);
    let again = check_one_leader(&mut sim, &all);
    assert_eq!(term(&sim, again), first_term, "the term changed without a failure");
    assert_eq!(again, leader);
    finish(sim);
}

#[test]
fn re_election() {
    let mut sim = simulation(3, 2);
    let all = sim.node_ids();
    let leader1 = check_one_leader(&mut sim, &all);
    // The leader leaves: a new one is elected among the other two.
    set_disconnected(&mut sim, &[leader1]);
    let others = all_but(&sim, &[leader1]);
    let leader2 = check_one_leader(&mut sim, &others);
    assert_ne!(leader2, leader1);
    // The old leader comes back: it must not disturb the new one.
    set_disconnected(&mut sim, &[]);
    let leader = check_one_leader(&mut sim, &all);
    // Without a quorum, no leader.
    let other = all_but(&sim, &[leader])[0];
    set_disconnected(&mut sim, &[leader, other]);
    sim.run_for(2_000);
    check_no_leader(&sim, &all_but(&sim, &[leader, other]));
    // A quorum again: a leader.
    set_disconnected(&mut sim, &[leader]);
    let others = all_but(&sim, &[leader]);
    check_one_leader(&mut sim, &others);
    set_disconnected(&mut sim, &[]);
    check_one_leader(&mut sim, &all);
    finish(sim);
}

#[test]
fn many_elections() {
    let mut sim = simulation(7, 3);
    let all = sim.node_ids();
    check_one_leader(&mut sim, &all);
    for round in 0..10 {
        // Three of seven leave; the four others must still elect a leader.
        let gone: Vec<_> = (0..3).map(|i| all[(round * 3 + i * 2) % all.len()]).collect();
        let mut gone = gone;
        gone.sort();
        gone.dedup();
        set_disconnected(&mut sim, &gone);
        let others = all_but(&sim, &gone);
        check_one_leader(&mut sim, &others);
        set_disconnected(&mut sim, &[]);
    }
    check_one_leader(&mut sim, &all);
    finish(sim);
}

#[test]
fn an_election_takes_few_messages_and_an_idle_leader_only_heartbeats() {
    let mut sim = simulation(3, 4);
    let all = sim.node_ids();
    check_one_leader(&mut sim, &all);
    // Pre-vote and vote, request and answer, to two peers, plus the first appends.
    let election = sim.stats().messages;
    assert!((4..=30).contains(&election), "{election} messages to elect a leader");
    // Idle for a second: heartbeats every 50 ms to two followers, and their answers.
    let before = sim.stats().messages;
    sim.run_for(1_000);
    let idle = sim.stats().messages - before;
    assert!(idle <= 2 * 2 * (1_000 / 50) + 4, "{idle} messages in an idle second");
    finish(sim);
}

#[test]
fn a_leader_that_cannot_hear_its_followers_steps_down() {
    let mut sim = simulation(3, 5);
    let all = sim.node_ids();
    let leader = check_one_leader(&mut sim, &all);
    // A one-way cut: the leader's heartbeats still go out, but no answer comes back.
    for other in all_but(&sim, &[leader]) {
        sim.cut(raftkv_sim::Endpoint::Node(other), raftkv_sim::Endpoint::Node(leader));
    }
    sim.run_for(2_000);
    let leaders = sim.leaders();
    assert!(
        !leaders.iter().any(|&(_, id)| id == leader),
        "the deaf leader stepped down: {leaders:?}"
    );
    sim.heal();
    one(&mut sim, "after-the-cut", 3, true);
    finish(sim);
}

#[test]
fn a_bridge_node_keeps_a_non_transitive_network_going() {
    let mut sim = simulation(5, 6);
    let node = |n| raftkv_sim::Endpoint::Node(id(n));
    // Nodes 1 and 2 cannot reach 4 and 5; node 3 reaches everyone.
    sim.partition(&[vec![node(1), node(2)], vec![node(4), node(5)]]);
    for i in 0..5 {
        one(&mut sim, &format!("bridged-{i}"), 3, true);
    }
    sim.heal();
    one(&mut sim, "bridge-healed", 5, true);
    finish(sim);
}
