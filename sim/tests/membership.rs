//! Membership changes on a live cluster, in the manner of the 6.5840 tests: a learner added
//! and promoted while clients write, the leader removed, a crashed node replaced by a new one;
//! then random runs with the membership fault class among the others.

mod support;

use raftkv_core::kv::KvCommand;
use raftkv_core::raft::{ChangeRefused, MemberChange, Role, Standing};
use raftkv_core::{Duration, LogIndex, NodeId};
use raftkv_sim::{Options, Shape, Simulation, TraceOutput};
use support::*;

/// Runs for `millis` while every client keeps one put in flight.
fn run_under_load(sim: &mut Simulation, clients: usize, millis: u64) {
    let end = sim.now() + Duration::from_millis(millis);
    let mut written = 0;
    while sim.now() < end {
        for client in 0..clients {
            let idle =
                sim.history().iter().filter(|op| op.client == client).all(|op| op.is_finished());
            if idle {
                written += 1;
                let command =
                    KvCommand::Put { key: bytes("k"), value: bytes(&format!("v{written}")) };
                sim.submit(client, command);
            }
        }
        sim.run_for(20);
        assert_safe(sim);
    }
}

/// Proposes `changes` at whichever node leads until one takes them, waiting while a learner
/// catches up or an election is under way; returns the leader that took them.
fn propose_until_taken(sim: &mut Simulation, changes: &[MemberChange]) -> NodeId {
    for _ in 0..200 {
        let Some(leader) = sim.leader() else {
            sim.run_for(50);
            continue;
        };
        match sim.propose_membership_change(leader, changes) {
            Ok(_) => return leader,
            Err(
                ChangeRefused::LearnerBehind { .. }
                | ChangeRefused::LearnerSilent(_)
                | ChangeRefused::NotLeader { .. }
                | ChangeRefused::NotCommittedInTerm
                | ChangeRefused::ChangeInProgress { .. },
            ) => sim.run_for(50),
            Err(refused) => panic!("{changes:?} refused: {refused}"),
        }
    }
    panic!("{changes:?} never taken");
}

/// Waits until a leader uses a settled, committed membership with exactly `voters`.
fn await_voters(sim: &mut Simulation, voters: &[u64]) -> NodeId {
    let voters: Vec<NodeId> = voters.iter().map(|&voter| NodeId(voter)).collect();
    let settled = |sim: &Simulation| {
        sim.leader().is_some_and(|leader| {
            let status = sim.replica(leader).expect("a leader runs").raft().status();
            status.membership.voters() == voters.as_slice()
                && !status.membership.is_joint()
                && status.membership_index <= status.commit
        })
    };
    assert!(sim.run_until(10_000, settled), "voters {voters:?} never settled");
    sim.leader().expect("settled under a leader")
}

#[test]
fn a_learner_added_under_load_catches_up_and_is_promoted() {
    let clients = 2;
    let mut sim = Simulation::new(options(3, clients, 60), TraceOutput::Hidden);
    {
        let all = sim.node_ids();
        check_one_leader(&mut sim, &all)
    };
    run_under_load(&mut sim, clients, 1_000);
    let learner = sim.add_node();
    assert_eq!(learner, NodeId(4), "ids go on after the initial nodes");
    let add = [MemberChange::AddLearner { id: learner, address: bytes("n4") }];
    propose_until_taken(&mut sim, &add);
    run_under_load(&mut sim, clients, 1_000);
    let status = sim.replica(learner).expect("it runs").raft().status();
    assert_eq!(status.standing, Standing::Learner);
    assert!(status.commit > LogIndex(10), "it received the log: {}", status.commit);
    assert_eq!(status.role, Role::Follower, "a learner never campaigns");
    propose_until_taken(&mut sim, &[MemberChange::Promote { id: learner }]);
    await_voters(&mut sim, &[1, 2, 3, 4]);
    run_under_load(&mut sim, clients, 500);
    one(&mut sim, "with-four-voters", 4, true);
    let report = finish(sim);
    assert_eq!(report.stats.membership.learners_added, 1);
    assert_eq!(report.stats.membership.promotions, 1);
}

#[test]
fn the_leader_removed_hands_over_and_never_campaigns_again() {
    let clients = 2;
    let mut sim = Simulation::new(options(5, clients, 61), TraceOutput::Hidden);
    let leader = {
        let all = sim.node_ids();
        check_one_leader(&mut sim, &all)
    };
    run_under_load(&mut sim, clients, 500);
    let taken_by = propose_until_taken(&mut sim, &[MemberChange::Remove { id: leader }]);
    assert_eq!(taken_by, leader, "no election in between");
    let rest: Vec<u64> = all_but(&sim, &[leader]).iter().map(|id| id.0).collect();
    let successor = await_voters(&mut sim, &rest);
    assert_ne!(successor, leader);
    let removed = sim.replica(leader).expect("it runs").raft().status();
    assert!(matches!(removed.standing, Standing::Removed { .. }), "{}", removed.standing);
    // Cut off from the cluster, it never campaigns: its term stays.
    let term_then = term(&sim, leader);
    sim.isolate(leader);
    sim.run_for(5_000);
    assert_eq!(term(&sim, leader), term_then, "a removed node does not campaign");
    sim.heal();
    run_under_load(&mut sim, clients, 500);
    one(&mut sim, "without-the-old-leader", 4, true);
    assert_eq!(sim.leader(), Some(successor), "the removed node disrupted nothing");
    finish(sim);
}

#[test]
fn a_crashed_node_is_replaced_by_a_new_one() {
    let clients = 2;
    let mut sim = Simulation::new(options(3, clients, 62), TraceOutput::Hidden);
    let leader = {
        let all = sim.node_ids();
        check_one_leader(&mut sim, &all)
    };
    let dead = nth_after(&sim, leader, 1);
    sim.crash(dead);
    run_under_load(&mut sim, clients, 500);
    let fresh = sim.add_node();
    propose_until_taken(&mut sim, &[MemberChange::AddLearner { id: fresh, address: bytes("n4") }]);
    let replace = [MemberChange::Promote { id: fresh }, MemberChange::Remove { id: dead }];
    propose_until_taken(&mut sim, &replace);
    let mut voters: Vec<u64> = all_but(&sim, &[dead]).iter().map(|id| id.0).collect();
    voters.sort_unstable();
    let leader = await_voters(&mut sim, &voters);
    // With the dead node gone for good, one more crash still leaves a majority.
    sim.crash(nth_after(&sim, leader, if nth_after(&sim, leader, 1) == dead { 2 } else { 1 }));
    run_under_load(&mut sim, clients, 1_000);
    sim.restart(dead);
    run_under_load(&mut sim, clients, 1_000);
    assert!(sim.leaders().iter().all(|&(_, id)| id != dead), "the replaced node leads nothing");
    let report = finish(sim);
    assert_eq!(report.stats.membership.replacements, 1);
}

#[test]
fn a_swarm_of_100_seeds_with_membership_changes_passes() {
    let mut totals = raftkv_sim::MembershipStats::default();
    for seed in 0..100 {
        let mut shape = Shape::draw(seed);
        shape.faults.membership = true;
        let options = Options::draw(seed, shape);
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        report.assert_passed();
        totals += &report.stats.membership;
    }
    // Every flow happens somewhere in the swarm, and leaders refuse some promotions.
    assert!(totals.learners_added >= 20, "{totals:?}");
    assert!(totals.promotions >= 10 && totals.removals >= 10, "{totals:?}");
    assert!(totals.replacements >= 1, "{totals:?}");
}
