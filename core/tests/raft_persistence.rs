//! Persistence as an output: nothing is promised before the driver acknowledges it, and a
//! restarted node is exactly what its disk returned.

mod cluster;

use cluster::{Cluster, id};
use raftkv_core::LogIndex;
use raftkv_core::raft::{Body, Role};

fn vote_grants_in_flight(cluster: &Cluster) -> usize {
    cluster.network.iter().filter(|m| matches!(m.body, Body::VoteReply { granted: true })).count()
}

#[test]
fn a_vote_is_granted_only_once_it_is_durable() {
    let mut cluster = Cluster::new(3);
    cluster.auto_persist = false;
    let now = cluster.now;
    cluster.node_mut(id(1)).campaign(now);
    cluster.stabilize(); // Pre-votes need no disk; the votes are requested.
    assert_eq!(cluster.node(id(1)).role(), raftkv_core::raft::Role::Candidate);
    assert_eq!(vote_grants_in_flight(&cluster), 0, "votes are held until durable");
    assert_eq!(cluster.slot(id(2)).unwritten.len(), 1, "node 2 wrote its vote");

    cluster.persist(id(2));
    assert_eq!(vote_grants_in_flight(&cluster), 1, "released by the acknowledgement");
    cluster.stabilize();
    assert_eq!(
        cluster.node(id(1)).role(),
        raftkv_core::raft::Role::Candidate,
        "its own vote is not durable yet, so one grant is not a majority"
    );
    cluster.persist(id(1));
    assert_eq!(cluster.node(id(1)).role(), Role::Leader);
}

#[test]
fn an_append_is_acknowledged_only_once_it_is_durable() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.auto_persist = false;
    let index = cluster.propose(id(1), b"x").index;
    cluster.stabilize();
    assert!(
        !cluster.network.iter().any(|m| matches!(m.body, Body::AppendReply { .. })),
        "no follower acknowledged before its disk did"
    );
    assert!(cluster.commit(id(1)) < index);

    cluster.persist(id(2));
    cluster.stabilize();
    assert!(cluster.commit(id(1)) < index, "the leader's own write is not durable yet");
    cluster.persist(id(1));
    assert_eq!(cluster.commit(id(1)), index, "leader and node 2 make a majority");
}

#[test]
fn the_leader_sends_entries_while_its_own_write_is_in_flight() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.auto_persist = false;
    let index = cluster.propose(id(1), b"x").index;
    for follower in [id(2), id(3)] {
        assert!(cluster.network.iter().any(|m| m.to == follower), "sent before the fsync");
    }
    cluster.stabilize();
    cluster.persist(id(2));
    cluster.persist(id(3));
    cluster.stabilize();
    assert_eq!(cluster.commit(id(1)), index, "two followers commit without the leader's disk");
}

#[test]
fn a_restarted_node_keeps_its_term_vote_and_log() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    for command in ["a", "b", "c"] {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.stabilize();
    for node in cluster.ids() {
        let before = cluster.node(node).status();
        cluster.crash(node);
        cluster.restart(node);
        let after = cluster.node(node).status();
        assert_eq!(
            (after.term, after.vote, after.last_log),
            (before.term, before.vote, before.last_log)
        );
        assert_eq!(after.role, Role::Follower);
    }
    cluster.run_for(2_000);
    for node in cluster.ids() {
        assert_eq!(cluster.applied_commands(node), ["a", "b", "c"], "node {node}");
    }
}

#[test]
fn writes_a_crash_loses_were_never_counted() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.crash(id(3));
    cluster.auto_persist = false;
    let index = cluster.propose(id(1), b"fragile").index;
    cluster.stabilize();
    cluster.crash(id(2)); // Its write was never acknowledged: gone.
    cluster.persist(id(1));
    cluster.restart(id(2));
    assert_eq!(cluster.node(id(2)).status().last_log.index, LogIndex(1));
    assert!(cluster.commit(id(1)) < index, "the lost write was never counted");
    cluster.auto_persist = true;
    cluster.run_for(500);
    assert_eq!(cluster.commit(id(1)), index, "resent and acknowledged after the restart");
    assert_eq!(cluster.applied_commands(id(2)), ["fragile"]);
}

#[test]
fn every_committed_entry_survives_a_crash_of_the_whole_cluster() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(2_000);
    let leader = cluster.leader().expect("a leader");
    for command in ["1", "2", "3", "4"] {
        cluster.propose(leader, command.as_bytes());
    }
    cluster.stabilize();
    for round in 0..3 {
        for node in cluster.ids() {
            cluster.crash(node);
        }
        for node in cluster.ids() {
            cluster.restart(node);
        }
        cluster.run_for(3_000);
        let leader = cluster.leader().expect("a leader after the restart");
        cluster.propose(leader, format!("after crash {round}").as_bytes());
        cluster.run_for(100);
    }
    let expected = ["1", "2", "3", "4", "after crash 0", "after crash 1", "after crash 2"];
    for node in cluster.ids() {
        assert_eq!(cluster.applied_commands(node), expected, "node {node}");
    }
}
