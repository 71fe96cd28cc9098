//! Membership changes on hand-driven clusters: learners catching up and promoted, joint changes
//! that grow and shrink the voters, the leader removed, changes refused, a membership entry
//! truncated, learners and removed nodes kept out of elections, and memberships recovered
//! after a restart.

mod cluster;

use cluster::{Cluster, id};
use raftkv_core::raft::{
    Body, ChangeRefused, Config, HardState, MemberChange, Membership, Message, RaftNode, Recovered,
    Role, Snapshot, Standing,
};
use raftkv_core::{Instant, LogId, LogIndex, NodeId, Term};

fn learner(n: u64) -> MemberChange {
    MemberChange::AddLearner { id: id(n), address: format!("node-{n}:7000").into_bytes() }
}

fn promote(n: u64) -> MemberChange {
    MemberChange::Promote { id: id(n) }
}

fn remove(n: u64) -> MemberChange {
    MemberChange::Remove { id: id(n) }
}

/// The membership `node` uses, as text.
fn membership(cluster: &Cluster, node: NodeId) -> String {
    cluster.node(node).membership().to_string()
}

/// Whether `node`'s membership is settled: committed, and not joint.
fn settled(cluster: &Cluster, node: NodeId) -> bool {
    let status = cluster.node(node).status();
    status.membership_index <= status.commit && !status.membership.is_joint()
}

/// A cluster of three voters led by node 1, with `learners` more nodes (4, 5, ...) added as
/// learners that have caught up.
fn three_voters_and_learners(learners: u64) -> Cluster {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"before");
    cluster.stabilize();
    let added: Vec<MemberChange> = (4..4 + learners).map(learner).collect();
    for _ in 0..learners {
        cluster.add_joining_node(|_| {});
    }
    if learners > 0 {
        cluster.change_membership(id(1), &added).expect("learners are added");
        cluster.run_for(200);
    }
    cluster
}

#[test]
fn a_learner_catches_up_and_is_promoted_to_voter() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    for n in 0..5 {
        cluster.propose(id(1), format!("c{n}").as_bytes());
    }
    cluster.stabilize();
    let four = cluster.add_joining_node(|_| {});
    assert_eq!(cluster.node(four).status().standing, Standing::NotAMember);
    cluster.change_membership(id(1), &[learner(4)]).expect("a learner is added");
    cluster.run_for(200);
    assert_eq!(cluster.node(four).status().standing, Standing::Learner);
    assert_eq!(membership(&cluster, four), "voters=1,2,3 learners=4");
    assert_eq!(cluster.node(four).membership().address(four), Some(&b"node-4:7000"[..]));
    assert_eq!(cluster.applied_commands(four), cluster.applied_commands(id(1)), "caught up");
    let last = cluster.node(id(1)).status().last_log.index;
    let matched = cluster.node(id(1)).match_indexes().expect("the leader knows its members");
    let members: Vec<NodeId> = matched.iter().map(|&(node, _)| node).collect();
    assert_eq!(members, [id(1), id(2), id(3), four], "every member, the leader included");
    assert!(matched.iter().all(|&(_, index)| index == last), "{matched:?} all at {last}");
    assert_eq!(cluster.node(four).match_indexes(), None, "only a leader knows");

    let joint = cluster.change_membership(id(1), &[promote(4)]).expect("it caught up");
    assert_eq!(membership(&cluster, id(1)), "voters=1,2,3,4 outgoing=1,2,3", "in force at once");
    cluster.run_for(200);
    for node in cluster.ids() {
        assert_eq!(membership(&cluster, node), "voters=1,2,3,4", "node {node}");
        assert!(settled(&cluster, node), "node {node}");
        assert!(cluster.node(node).status().membership_index > joint.index, "C_new followed");
    }
    assert_eq!(cluster.node(four).status().standing, Standing::Voter);
    cluster.advance(1_000);
    cluster.elect(four);
    cluster.propose(four, b"led by the promoted learner");
    cluster.run_for(200);
    assert!(cluster.applied_commands(id(2)).contains(&"led by the promoted learner".to_string()));
}

#[test]
fn a_learner_that_has_not_caught_up_or_is_silent_is_not_promoted() {
    let mut cluster = Cluster::with_config(3, |config| config.max_promotion_lag = 5);
    cluster.elect(id(1));
    cluster.stabilize();
    let four = cluster.add_joining_node(|config| config.max_promotion_lag = 5);
    cluster.isolate(four);
    cluster.change_membership(id(1), &[learner(4)]).expect("added while cut off");
    for n in 0..10 {
        cluster.propose(id(1), format!("c{n}").as_bytes());
    }
    cluster.stabilize();
    let last_index = cluster.node(id(1)).status().last_log.index;
    let behind = ChangeRefused::LearnerBehind { id: four, match_index: LogIndex(0), last_index };
    assert_eq!(cluster.change_membership(id(1), &[promote(4)]), Err(behind.clone()));
    assert_eq!(behind.to_string(), "learner 4 has not caught up: it holds the log up to 0 of 12");

    cluster.heal();
    cluster.run_for(200);
    cluster.isolate(four);
    cluster.advance(300); // The minimal election timeout, without a word from the learner.
    let silent = cluster.change_membership(id(1), &[promote(4)]);
    assert_eq!(silent, Err(ChangeRefused::LearnerSilent(four)));

    cluster.heal();
    cluster.run_for(100);
    assert!(cluster.change_membership(id(1), &[promote(4)]).is_ok());
}

#[test]
fn a_joint_change_grows_three_voters_to_five_and_shrinks_them_back() {
    let mut cluster = three_voters_and_learners(2);
    cluster.change_membership(id(1), &[promote(4), promote(5)]).expect("both caught up");
    assert_eq!(membership(&cluster, id(1)), "voters=1,2,3,4,5 outgoing=1,2,3");
    cluster.run_for(200);
    for node in cluster.ids() {
        assert_eq!(membership(&cluster, node), "voters=1,2,3,4,5", "node {node}");
        assert!(settled(&cluster, node), "node {node}");
    }
    cluster.propose(id(1), b"five voters");
    cluster.run_for(200);

    let shrink = cluster.change_membership(id(1), &[remove(4), remove(5)]).expect("accepted");
    assert_eq!(membership(&cluster, id(1)), "voters=1,2,3 outgoing=1,2,3,4,5");
    cluster.run_for(200);
    for node in [id(1), id(2), id(3)] {
        assert_eq!(membership(&cluster, node), "voters=1,2,3", "node {node}");
        assert!(settled(&cluster, node), "node {node}");
    }
    for node in [id(4), id(5)] {
        // The removed voters received the entry that removed them: C_new, after the joint one.
        let standing = cluster.node(node).status().standing;
        assert!(
            matches!(standing, Standing::Removed { by } if by > shrink.index),
            "node {node}: {standing:?}"
        );
    }
    cluster.propose(id(1), b"three voters again");
    cluster.run_for(200);
    assert!(cluster.applied_commands(id(3)).contains(&"three voters again".to_string()));
}

/// Replacing voters 2 and 3 by 4 and 5: the joint membership commits only once a majority of
/// the old voters and a majority of the new ones hold it.
#[test]
fn a_joint_membership_commits_only_with_a_majority_of_each_side() {
    let replace = [promote(4), promote(5), remove(2), remove(3)];
    for (silent_side, side_name) in [([4, 5], "new"), ([2, 3], "old")] {
        let mut cluster = three_voters_and_learners(2);
        for &node in &silent_side {
            cluster.isolate(id(node));
        }
        let joint = cluster.change_membership(id(1), &replace).expect("accepted");
        assert_eq!(membership(&cluster, id(1)), "voters=1,4,5 outgoing=1,2,3");
        cluster.stabilize();
        assert!(cluster.commit(id(1)) < joint.index, "committed without the {side_name} side");
        cluster.heal();
        let all_settled = |c: &Cluster| {
            [1, 4, 5].iter().all(|&n| membership(c, id(n)) == "voters=1,4,5" && settled(c, id(n)))
        };
        assert!(cluster.run_until(5_000, all_settled), "the {side_name} side answered");
    }
}

#[test]
fn a_removed_leader_steps_down_once_the_change_commits_and_hands_over_at_once() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.stabilize();
    let term = cluster.node(id(1)).term();
    let pre_elections = cluster.node(id(1)).counters().pre_elections;
    cluster.change_membership(id(1), &[remove(1)]).expect("the leader may remove itself");
    assert_eq!(cluster.node(id(1)).role(), Role::Leader, "it carries the change through");
    // No time passes: the new leader is elected by the hand-over, not by a timeout.
    cluster.stabilize();
    let leader = cluster.leader().expect("a new leader");
    assert!(leader == id(2) || leader == id(3), "{leader}");
    assert_eq!(cluster.node(leader).term(), term.next().expect("a valid term"));
    assert_eq!(membership(&cluster, leader), "voters=2,3");
    let removed = cluster.node(id(1)).status();
    assert_eq!(removed.role, Role::Follower);
    assert!(matches!(removed.standing, Standing::Removed { .. }), "{:?}", removed.standing);

    cluster.run_for(3_000);
    let counters = cluster.node(id(1)).counters();
    assert_eq!(counters.pre_elections, pre_elections, "the removed leader never campaigns");
    assert!(counters.withheld_not_voter > 0);
    assert_eq!(cluster.leader(), Some(leader));
    cluster.propose(leader, b"without node 1");
    cluster.run_for(200);
    let other = if leader == id(2) { id(3) } else { id(2) };
    assert!(cluster.applied_commands(other).contains(&"without node 1".to_string()));
}

/// Found by the simulator (seeds 939 and 1580): a leader replaced itself, the joint membership
/// committed, and the membership that left it out reached its own log only before it crashed.
/// The others, joint, need its vote (the outgoing side is {1, 2}) and it refuses them: its log
/// is longer. If it counted itself removed and stayed out of elections, no leader could ever
/// be elected again. It campaigns under the membership that removed it, wins with the votes
/// of that membership, commits it and steps down.
#[test]
fn a_node_removed_by_an_uncommitted_entry_campaigns_until_that_entry_commits() {
    let mut cluster = Cluster::new(2);
    cluster.elect(id(1));
    cluster.stabilize();
    cluster.add_joining_node(|_| {});
    cluster.change_membership(id(1), &[learner(3)]).expect("a learner is added");
    cluster.run_for(200);
    cluster.change_membership(id(1), &[promote(3), remove(1)]).expect("node 1 is replaced");
    while membership(&cluster, id(1)) != "voters=2,3" {
        assert!(cluster.deliver_one(), "the joint membership commits");
    }
    cluster.drop_where(|_| true);
    cluster.crash(id(1));
    cluster.restart(id(1));
    for node in [id(2), id(3)] {
        assert_eq!(membership(&cluster, node), "voters=2,3 outgoing=1,2", "node {node}");
    }
    let removed = cluster.node(id(1)).status();
    assert!(matches!(removed.standing, Standing::Removed { .. }), "{:?}", removed.standing);
    assert!(removed.membership_index > removed.commit, "its removal is not committed");

    cluster.run_for(5_000);
    let leader = cluster.leader().expect("a leader of the new membership");
    assert!(leader == id(2) || leader == id(3), "{leader}");
    for node in cluster.ids() {
        assert_eq!(membership(&cluster, node), "voters=2,3", "node {node}");
        assert!(settled(&cluster, node), "node {node}");
    }
    assert!(cluster.node(id(1)).counters().leaderships > 0, "node 1 led to commit its removal");
    let pre_elections = cluster.node(id(1)).counters().pre_elections;
    cluster.run_for(3_000);
    assert_eq!(cluster.node(id(1)).counters().pre_elections, pre_elections, "then never again");
}

/// Found by the simulator (seed 147): leader 1 appended the promotion of learner 4, which
/// reached no one; node 2 then led a new term and its first entry reached the learner only
/// before node 2 failed for good. Node 1, joint, needs three of {1, 2, 3, 4}, and the learner
/// refuses it: its log is newer. Node 3 needs two of {1, 2, 3}, and node 1 refuses it: its log
/// is longer. If the learner stayed out of elections, no leader could ever be elected again.
/// Refusing a candidate whose log is behind its own tells it that its log is needed: it
/// campaigns under its membership without counting its own vote, wins with nodes 1 and 3,
/// commits an entry of its term, and hands leadership to one of them.
#[test]
fn a_learner_whose_log_the_voters_need_leads_until_they_hold_it_then_hands_over() {
    let mut cluster = three_voters_and_learners(1);
    let four = id(4);
    cluster.change_membership(id(1), &[promote(4)]).expect("the learner has caught up");
    cluster.drop_where(|_| true);
    assert_eq!(membership(&cluster, id(1)), "voters=1,2,3,4 outgoing=1,2,3");
    cluster.isolate(id(1));
    cluster.advance(1_000);
    let appends_to_3 =
        |message: &Message| message.to == id(3) && matches!(message.body, Body::Append { .. });
    cluster.campaign_until_leader(id(2), |message| !appends_to_3(message));
    cluster.drop_where(|_| true);
    let learner_log = cluster.node(four).status().last_log;
    assert_eq!(learner_log, cluster.node(id(2)).status().last_log, "the learner holds it");
    assert!(learner_log.term > cluster.node(id(3)).status().last_log.term);
    cluster.crash(id(2));
    cluster.heal();

    cluster.run_for(5_000);
    let leader = cluster.leader().expect("a leader again");
    assert!(leader == id(1) || leader == id(3), "{leader}");
    let counters = cluster.node(four).counters();
    assert!(counters.learner_campaigns > 0 && counters.leaderships == 1, "{counters}");
    for node in [id(1), id(3), four] {
        assert_eq!(membership(&cluster, node), "voters=1,2,3 learners=4", "node {node}");
        let held = cluster.node(node).term_at(learner_log.index);
        assert_eq!(held, Some(learner_log.term), "node {node} holds the learner's log");
    }
    assert_eq!(cluster.node(four).role(), Role::Follower);
    let pre_elections = counters.pre_elections;
    cluster.run_for(3_000);
    assert_eq!(cluster.node(four).counters().pre_elections, pre_elections, "then never again");
}

#[test]
fn a_change_is_refused_while_another_is_in_progress() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.stabilize();
    cluster.add_joining_node(|_| {});
    cluster.add_joining_node(|_| {});
    let first = cluster.change_membership(id(1), &[learner(4)]).expect("accepted");
    let in_progress = |index| Err(ChangeRefused::ChangeInProgress { index });
    assert_eq!(cluster.change_membership(id(1), &[learner(5)]), in_progress(first.index));
    assert_eq!(
        cluster.change_membership(id(2), &[learner(5)]),
        Err(ChangeRefused::NotLeader { hint: Some(id(1)) })
    );
    cluster.run_for(200);

    let joint = cluster.change_membership(id(1), &[promote(4)]).expect("accepted");
    assert_eq!(cluster.change_membership(id(1), &[learner(5)]), in_progress(joint.index));
    // Once the joint membership commits, the leader appends C_new: still in progress.
    assert!(cluster.step_until(1_000, |c| !c.node(id(1)).membership().is_joint()));
    let leaving = cluster.node(id(1)).status().membership_index;
    assert!(leaving > joint.index);
    assert_eq!(cluster.change_membership(id(1), &[learner(5)]), in_progress(leaving));
    cluster.run_for(200);
    assert!(cluster.change_membership(id(1), &[learner(5)]).is_ok());
}

/// The rule that a leader changes the membership only once it committed an entry of its own
/// term (the single-server change bug of 2015). This test fails if the rule is removed.
#[test]
fn a_change_is_refused_before_the_leader_committed_an_entry_of_its_term() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"x");
    cluster.run_for(200);
    cluster.advance(1_000);
    cluster.elect_without_replicating(id(2));
    cluster.add_joining_node(|_| {});
    // Node 2 leads and knows no change in progress, but its first entry is not committed yet.
    let status = cluster.node(id(2)).status();
    assert!(status.membership_index <= status.commit && status.commit.0 > 0);
    let refused = cluster.change_membership(id(2), &[learner(4)]);
    assert_eq!(refused, Err(ChangeRefused::NotCommittedInTerm));
    cluster.stabilize();
    assert!(cluster.change_membership(id(2), &[learner(4)]).is_ok());
}

#[test]
fn impossible_changes_are_refused_with_their_reason() {
    let mut cluster = three_voters_and_learners(1);
    let cases = [
        (vec![], ChangeRefused::Empty),
        (vec![learner(2)], ChangeRefused::AlreadyMember(id(2))),
        (vec![promote(2)], ChangeRefused::NotALearner(id(2))),
        (vec![remove(7)], ChangeRefused::NotAMember(id(7))),
        (vec![promote(4), remove(4)], ChangeRefused::NamedTwice(id(4))),
        (vec![remove(1), remove(2), remove(3)], ChangeRefused::NoVoters),
    ];
    for (changes, refused) in cases {
        assert_eq!(cluster.change_membership(id(1), &changes), Err(refused), "{changes:?}");
    }
    assert_eq!(cluster.node(id(1)).status().last_log, cluster.node(id(2)).status().last_log);
}

/// A membership entry that reached one follower only is truncated by the next leader: the
/// follower, and the old leader, use the membership before it again.
#[test]
fn a_truncated_membership_entry_gives_way_to_the_one_before() {
    let mut cluster = Cluster::new(5);
    cluster.elect(id(1));
    cluster.stabilize();
    let change = cluster.change_membership(id(1), &[learner(6)]).expect("accepted");
    assert!(cluster.deliver_first_where(|message| message.to == id(2)));
    cluster.drop_where(|_| true);
    assert_eq!(membership(&cluster, id(2)), "voters=1,2,3,4,5 learners=6");
    assert_eq!(cluster.node(id(2)).status().membership_index, change.index);

    cluster.partition(&[id(1), id(2)], &[id(3), id(4), id(5)]);
    cluster.advance(1_000);
    cluster.elect(id(3));
    cluster.propose(id(3), b"the new leader's");
    cluster.start_transcript();
    cluster.heal();
    cluster.run_for(1_000);
    for node in [id(1), id(2)] {
        assert_eq!(membership(&cluster, node), "voters=1,2,3,4,5", "node {node}");
        assert_eq!(cluster.node(node).status().membership_index, LogIndex(0));
    }
    let transcript = cluster.take_transcript();
    assert!(transcript.contains("2: membership at 0: voters=1,2,3,4,5 (voter)"), "{transcript}");
}

#[test]
fn a_learner_never_campaigns_and_neither_its_acknowledgements_nor_its_votes_count() {
    let mut cluster = three_voters_and_learners(1);
    let four = id(4);
    cluster.isolate(four);
    cluster.run_for(5_000);
    let counters = cluster.node(four).counters();
    assert_eq!(counters.pre_elections, 0, "a learner never campaigns");
    assert!(counters.withheld_not_voter > 0);
    assert_eq!(cluster.leader(), Some(id(1)));
    cluster.heal();
    cluster.run_for(200);

    // Cut off from the other voters, the leader and the learner alone commit nothing.
    cluster.partition(&[id(1), four], &[id(2), id(3)]);
    let commit = cluster.commit(id(1));
    let entry = cluster.propose(id(1), b"acknowledged by the learner only");
    cluster.stabilize();
    assert_eq!(cluster.node(four).status().last_log, entry, "the learner holds it");
    assert_eq!(cluster.commit(id(1)), commit, "its acknowledgement does not count");

    // Nor do its grants: node 1 steps down (check-quorum) and never wins again on its side.
    let term = cluster.node(id(1)).term();
    cluster.run_for(5_000);
    assert_ne!(cluster.node(id(1)).role(), Role::Leader);
    let leaders = cluster.leaders();
    assert!(leaders.iter().all(|&(_, leader)| leader == id(2) || leader == id(3)), "{leaders:?}");
    assert!(cluster.node(id(1)).counters().pre_elections > 0, "node 1 tried");
    assert!(cluster.node(id(1)).term() == term, "never past a pre-vote");
}

#[test]
fn a_removed_follower_learns_it_was_removed_and_never_campaigns() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.stabilize();
    cluster.start_transcript();
    cluster.change_membership(id(1), &[remove(3)]).expect("accepted");
    cluster.run_for(200);
    let status = cluster.node(id(3)).status();
    let Standing::Removed { by } = status.standing else { panic!("{:?}", status.standing) };
    assert_eq!(by, status.membership_index);
    let transcript = cluster.take_transcript();
    let line =
        format!("3: membership at {by}: voters=1,2 (removed by the membership entry at {by})");
    assert!(transcript.contains(&line), "{transcript}");

    assert_eq!(status.role, Role::Follower);
    let term = cluster.node(id(1)).term();
    let before = cluster.node(id(3)).counters().pre_elections;
    cluster.run_for(5_000);
    assert_eq!(cluster.node(id(3)).counters().pre_elections, before);
    assert!(cluster.node(id(3)).counters().withheld_not_voter > 0);
    assert_eq!((cluster.leader(), cluster.node(id(1)).term()), (Some(id(1)), term), "undisturbed");
}

#[test]
fn a_restarted_node_recovers_its_membership_from_its_log_or_its_snapshot() {
    let mut cluster = three_voters_and_learners(1);
    cluster.change_membership(id(1), &[promote(4), remove(3)]).expect("accepted");
    cluster.run_for(200);
    let expected = cluster.node(id(2)).status();
    assert_eq!(expected.membership.to_string(), "voters=1,2,4");

    // From the log: the membership entries are among the recovered entries.
    for node in [id(2), id(4)] {
        cluster.crash(node);
        cluster.restart(node);
        let status = cluster.node(node).status();
        assert_eq!(status.membership, expected.membership, "node {node}");
        assert_eq!(status.membership_index, expected.membership_index, "node {node}");
        assert_eq!(status.standing, Standing::Voter, "node {node}");
    }

    // From the snapshot: the entries are compacted away, the snapshot records the membership.
    cluster.propose(id(1), b"after the change");
    cluster.run_for(200);
    let covered = cluster.node_mut(id(2)).compact(b"state".to_vec()).expect("a snapshot");
    cluster.drain(id(2));
    assert!(covered.index > expected.membership_index);
    let on_disk = cluster.disk(id(2)).snapshot.as_ref().expect("the snapshot is durable");
    assert_eq!(on_disk.membership, expected.membership);
    cluster.crash(id(2));
    cluster.restart(id(2));
    let status = cluster.node(id(2)).status();
    assert_eq!(status.membership, expected.membership);
    assert_eq!(status.membership_index, covered.index, "known from the snapshot point");
    cluster.run_for(200);
    assert_eq!(cluster.leader(), Some(id(1)));
}

#[test]
fn a_learner_added_after_compaction_catches_up_from_the_snapshot_and_its_membership() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    for n in 0..5 {
        cluster.propose(id(1), format!("c{n}").as_bytes());
    }
    cluster.run_for(200);
    cluster.node_mut(id(1)).compact(b"state".to_vec()).expect("a snapshot");
    cluster.drain(id(1));
    let four = cluster.add_joining_node(|_| {});
    cluster.change_membership(id(1), &[learner(4)]).expect("accepted");
    cluster.run_for(200);
    let installed = cluster.node(four).snapshot().expect("installed from the leader");
    assert_eq!(installed.membership.to_string(), "voters=1,2,3");
    assert_eq!(membership(&cluster, four), "voters=1,2,3 learners=4");
    assert_eq!(cluster.node(four).counters().snapshots_installed, 1);
    cluster.crash(four);
    cluster.restart(four);
    assert_eq!(membership(&cluster, four), "voters=1,2,3 learners=4");
}

/// A snapshot stored before snapshots recorded their membership (an empty one) was taken by a
/// cluster that never changed it: the node takes its configuration's initial membership, and
/// records it in the snapshot it keeps to send.
#[test]
fn a_snapshot_stored_without_a_membership_starts_with_the_initial_one() {
    let config = Config::new(id(2), [id(1), id(2), id(3)]);
    let last = LogId::new(LogIndex(9), Term(2));
    let snapshot = Snapshot { last, membership: Membership::default(), data: b"state".to_vec() };
    let recovered = Recovered {
        hard_state: HardState { term: Term(2), ..HardState::default() },
        snapshot: Some(snapshot),
        ..Recovered::default()
    };
    let node = RaftNode::new(Instant::ZERO, config, recovered).expect("it starts");
    assert_eq!(node.membership().to_string(), "voters=1,2,3");
    let kept = node.snapshot().expect("kept");
    assert_eq!(kept.membership.to_string(), "voters=1,2,3");
    node.check_invariants();
}
