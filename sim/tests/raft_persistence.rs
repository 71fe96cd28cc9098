//! Persistence across crashes, Figure 8 and churn, after the 6.5840 tests of part 3C. A crash
//! loses what the disk had not acknowledged; a restart reads back what it had.

mod support;

use raftkv_core::prng::Prng;
use raftkv_core::{LogIndex, NodeId};
use raftkv_sim::Simulation;
use support::*;

fn crash_and_restart(sim: &mut Simulation, node: NodeId) {
    sim.crash(node);
    sim.restart(node);
}

#[test]
fn persistence_across_crashes_of_everyone_and_of_leaders() {
    let mut sim = simulation(3, 20);
    let all = sim.node_ids();
    one(&mut sim, "p1-11", 3, true);
    for &node in &all {
        sim.crash(node);
    }
    for &node in &all {
        sim.restart(node);
    }
    one(&mut sim, "p1-12", 3, true);
    let leader1 = check_one_leader(&mut sim, &all);
    crash_and_restart(&mut sim, leader1);
    one(&mut sim, "p1-13", 3, true);
    let leader2 = check_one_leader(&mut sim, &all);
    sim.crash(leader2);
    let index = one(&mut sim, "p1-14", 2, true);
    sim.restart(leader2);
    assert!(
        sim.run_until(5_000, |s| committed_count(s, index, "p1-14") == 3),
        "the restarted leader catches up"
    );
    let follower = nth_after(&sim, leader2, 1);
    sim.crash(follower);
    one(&mut sim, "p1-15", 2, true);
    sim.restart(follower);
    one(&mut sim, "p1-16", 3, true);
    finish(sim);
}

#[test]
fn persistence_with_crashes_of_minorities_and_majorities() {
    let mut sim = simulation(5, 21);
    let all = sim.node_ids();
    for round in 0..5 {
        one(&mut sim, &format!("p2-{round}-a"), 5, true);
        let leader = check_one_leader(&mut sim, &all);
        let (f1, f2, f3, f4) = (
            nth_after(&sim, leader, 1),
            nth_after(&sim, leader, 2),
            nth_after(&sim, leader, 3),
            nth_after(&sim, leader, 4),
        );
        sim.crash(f1);
        sim.crash(f2);
        one(&mut sim, &format!("p2-{round}-b"), 3, true);
        for node in [leader, f3, f4] {
            sim.crash(node);
        }
        sim.restart(f1);
        sim.restart(f2);
        sim.run_for(1_000);
        sim.restart(f3);
        one(&mut sim, &format!("p2-{round}-c"), 3, true);
        sim.restart(leader);
        sim.restart(f4);
    }
    one(&mut sim, "p2-1000", 5, true);
    finish(sim);
}

#[test]
fn persistence_when_the_only_up_to_date_servers_crash() {
    let mut sim = simulation(3, 22);
    let all = sim.node_ids();
    one(&mut sim, "p3-101", 3, false);
    let leader = check_one_leader(&mut sim, &all);
    let (next, behind) = (nth_after(&sim, leader, 1), nth_after(&sim, leader, 2));
    set_disconnected(&mut sim, &[behind]);
    one(&mut sim, "p3-102", 2, false);
    sim.crash(leader);
    sim.crash(next);
    set_disconnected(&mut sim, &[]);
    sim.restart(leader);
    one(&mut sim, "p3-103", 2, true);
    sim.restart(next);
    one(&mut sim, "p3-104", 3, true);
    finish(sim);
}

/// Figure 8 of the Raft paper: leaders crash right after proposing, so entries of old terms
/// lie around uncommitted; a new leader must not commit them by counting replicas.
fn figure_8_scenario(seed: u64, unreliable: bool, iterations: u64) {
    let mut options = options(5, 0, seed);
    if unreliable {
        make_unreliable(&mut options);
    }
    let mut sim = Simulation::new(options, raftkv_sim::TraceOutput::Hidden);
    let mut rng = Prng::seeded(seed);
    let all = sim.node_ids();
    one(&mut sim, "f8-first", 1, true);
    let mut up = all.len();
    for i in 0..iterations {
        let leader =
            all.iter().copied().find(|&node| sim.start(node, &format!("f8-{i}")).is_some());
        let pause = if rng.chance(1, 10) {
            rng.range_inclusive(0, 500)
        } else {
            rng.range_inclusive(0, 13)
        };
        sim.run_for(pause);
        assert_safe(&sim);
        if let Some(leader) = leader {
            if unreliable {
                sim.isolate(leader);
            } else {
                sim.crash(leader);
            }
            up -= 1;
        }
        if up < 3 {
            let pick = all[rng.range_inclusive(0, all.len() as u64 - 1) as usize];
            if sim.replica(pick).is_none() {
                sim.restart(pick);
                up += 1;
            } else if unreliable {
                sim.heal();
                up = all.len();
            }
        }
    }
    sim.heal();
    for &node in &all {
        sim.restart(node);
    }
    one(&mut sim, "f8-last", 5, true);
    finish(sim);
}

#[test]
fn figure_8() {
    figure_8_scenario(23, false, 300);
}

#[test]
fn figure_8_unreliable() {
    figure_8_scenario(24, true, 300);
}

/// Servers crash, restart, leave and return at random while three clients keep proposing at
/// random servers; every value a client saw committed must be in the final log.
fn churn_scenario(seed: u64, unreliable: bool) {
    let mut options = options(5, 0, seed);
    if unreliable {
        make_unreliable(&mut options);
    }
    let mut sim = Simulation::new(options, raftkv_sim::TraceOutput::Hidden);
    let mut rng = Prng::seeded(seed);
    let all = sim.node_ids();
    let mut proposed: Vec<(LogIndex, String)> = Vec::new();
    let mut seen_committed: Vec<(LogIndex, String)> = Vec::new();
    let mut disconnected: Vec<NodeId> = Vec::new();
    for round in 0..20 {
        // For 700 ms the clients propose every 50 ms and watch for their values to commit.
        for step in 0..14 {
            for client in 0..3 {
                let node = all[rng.range_inclusive(0, 4) as usize];
                let value = format!("churn-{round}-{step}-{client}");
                if let Some(log_id) = sim.start(node, &value) {
                    proposed.push((log_id.index, value));
                }
            }
            sim.run_for(50);
            assert_safe(&sim);
            proposed.retain(|(index, value)| {
                let committed = committed_count(&sim, *index, value) > 0;
                if committed {
                    seen_committed.push((*index, value.clone()));
                }
                !committed
            });
        }
        // Then each kind of fault strikes a random server with odds 1 in 5.
        let mut pick = || all[rng.range_inclusive(0, 4) as usize];
        let (crashed, restarted, left, returned) = (pick(), pick(), pick(), pick());
        if rng.chance(1, 5) {
            sim.crash(crashed);
        }
        if rng.chance(1, 5) {
            sim.restart(restarted);
        }
        if rng.chance(1, 5) && !disconnected.contains(&left) {
            disconnected.push(left);
        }
        if rng.chance(1, 5) {
            disconnected.retain(|&gone| gone != returned);
        }
        set_disconnected(&mut sim, &disconnected);
    }
    set_disconnected(&mut sim, &[]);
    for &node in &all {
        sim.restart(node);
    }
    let last = one(&mut sim, "churn-last", 5, true);
    assert!(seen_committed.len() >= 10, "only {} values committed", seen_committed.len());
    for (index, value) in &seen_committed {
        assert!(*index < last);
        assert_eq!(
            committed_count(&sim, *index, value),
            5,
            "{value} committed at {index} was lost"
        );
    }
    finish(sim);
}

#[test]
fn churn_reliable() {
    churn_scenario(25, false);
}

#[test]
fn churn_unreliable() {
    churn_scenario(26, true);
}
