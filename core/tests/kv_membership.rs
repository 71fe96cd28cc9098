//! The key-value service through a membership change: a replica joins as a learner, catches up
//! (through a snapshot and the log), and replaces the leader, while a clerk keeps writing; every
//! write takes effect exactly once.

mod kv_cluster;

use kv_cluster::KvCluster;
use raftkv_core::NodeId;
use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::raft::{Config, MemberChange, Standing};
use raftkv_core::server::ReplicaConfig;

fn append(key: &str, value: &str) -> KvCommand {
    KvCommand::Append { key: key.into(), value: value.into() }
}

/// Small snapshots, so that the new replica catches up through one.
fn snapshot_often(config: &mut ReplicaConfig) {
    config.snapshot_threshold_bytes = 400;
}

fn change(cluster: &mut KvCluster, leader: NodeId, changes: &[MemberChange]) {
    let now = cluster.now;
    cluster.replica_mut(leader).propose_membership_change(now, changes).expect("accepted");
    cluster.drain(leader);
}

#[test]
fn a_new_replica_replaces_the_leader_while_a_clerk_writes() {
    let mut cluster = KvCluster::with_config(3, 1, snapshot_often);
    let leader = cluster.wait_for_leader();
    for n in 0..10 {
        cluster.submit(0, append("log", &n.to_string()));
    }
    assert!(cluster.run_until(5_000, |c| c.finished[0].len() == 10));
    let mut config = ReplicaConfig::new(Config::new(NodeId(4), []));
    snapshot_often(&mut config);
    let four = cluster.add_node(config);
    let address = b"node-4:7000".to_vec();
    change(&mut cluster, leader, &[MemberChange::AddLearner { id: four, address }]);
    cluster.run_for(300);
    assert_eq!(cluster.value(four, "log"), cluster.value(leader, "log"), "caught up");
    assert_eq!(cluster.replica(four).raft().status().standing, Standing::Learner);

    cluster.submit(0, append("log", "-during"));
    let replace = [MemberChange::Promote { id: four }, MemberChange::Remove { id: leader }];
    change(&mut cluster, leader, &replace);
    cluster.submit(0, append("log", "-after"));
    assert!(cluster.run_until(10_000, |c| c.finished[0].len() == 12));
    let results: Vec<&Result<KvReply, ClerkError>> =
        cluster.finished[0].iter().map(|(_, result)| result).collect();
    assert!(results.iter().all(|result| matches!(result, Ok(KvReply::Length(_)))), "{results:?}");

    let new_leader = cluster.leader().expect("a leader");
    assert_ne!(new_leader, leader);
    let membership = cluster.replica(new_leader).raft().membership().clone();
    assert!(!membership.is_member(leader) && membership.is_voter(four), "{membership}");
    cluster.run_for(300);
    let expected = "0123456789-during-after";
    for node in cluster.ids().into_iter().filter(|&node| node != leader) {
        assert_eq!(cluster.value(node, "log").as_deref(), Some(expected), "node {node}");
    }
    assert!(cluster.replica(four).raft().counters().snapshots_installed > 0);
}
