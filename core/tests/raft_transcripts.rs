//! The message exchanges of a few scenarios, pinned as readable transcripts in the manner of
//! etcd raft's interaction tests: one line per message, persist, application and role change.
//! A change of protocol behaviour shows up here as a diff to review; accept it on purpose.

mod cluster;

use cluster::{Cluster, id};

#[test]
fn election_in_a_three_node_cluster() {
    let mut cluster = Cluster::new(3);
    cluster.stabilize();
    cluster.start_transcript();
    cluster.elect(id(1));
    insta::assert_snapshot!(cluster.take_transcript());
}

#[test]
fn log_repair_after_a_conflict() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"kept");
    cluster.stabilize();
    // Node 1, cut off, writes entries that only it will ever have, then restarts.
    cluster.isolate(id(1));
    cluster.propose(id(1), b"lost-1");
    cluster.propose(id(1), b"lost-2");
    cluster.stabilize();
    cluster.crash(id(1));
    cluster.restart(id(1));
    // Nodes 2 and 3 move on in a later term.
    cluster.advance(1_000);
    cluster.elect(id(2));
    cluster.propose(id(2), b"new");
    cluster.stabilize();
    // Node 2 fails; node 3 takes over with node 1's vote and repairs node 1's log.
    cluster.crash(id(2));
    cluster.heal();
    cluster.advance(1_000);
    cluster.start_transcript();
    cluster.elect(id(3));
    insta::assert_snapshot!(cluster.take_transcript());
}

#[test]
fn a_linearizable_read_confirms_leadership_with_one_round() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.stabilize();
    cluster.start_transcript();
    let now = cluster.now;
    cluster.node_mut(id(1)).read_index(now, 7).expect("leads");
    cluster.stabilize();
    insta::assert_snapshot!(cluster.take_transcript());
}

#[test]
fn a_learner_is_added_catches_up_and_is_promoted_through_the_joint_membership() {
    use raftkv_core::raft::MemberChange;
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"x");
    cluster.run_for(100);
    cluster.start_transcript();
    let four = cluster.add_joining_node(|_| {});
    let add = MemberChange::AddLearner { id: four, address: b"node-4:7000".to_vec() };
    cluster.change_membership(id(1), &[add]).expect("a learner is added");
    cluster.run_for(60);
    cluster.change_membership(id(1), &[MemberChange::Promote { id: four }]).expect("caught up");
    cluster.run_for(60);
    insta::assert_snapshot!(cluster.take_transcript());
}

#[test]
fn a_joint_change_replaces_a_voter_and_the_removed_node_learns_it() {
    use raftkv_core::raft::MemberChange;
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let four = cluster.add_joining_node(|_| {});
    let add = MemberChange::AddLearner { id: four, address: b"node-4:7000".to_vec() };
    cluster.change_membership(id(1), &[add]).expect("a learner is added");
    cluster.run_for(100);
    cluster.start_transcript();
    let replace = [MemberChange::Promote { id: four }, MemberChange::Remove { id: id(3) }];
    cluster.change_membership(id(1), &replace).expect("caught up");
    cluster.run_for(60);
    insta::assert_snapshot!(cluster.take_transcript());
}
