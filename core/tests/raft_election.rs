//! Leader election: one leader, re-election, pre-vote and check-quorum keeping terms stable.

mod cluster;

use cluster::{Cluster, id};
use raftkv_core::raft::{Body, Message, Role};
use raftkv_core::{NodeId, Term};

/// Exactly one live leader, and every live node that can hear it agrees on it and its term.
fn assert_one_leader(cluster: &Cluster, among: &[NodeId]) -> (Term, NodeId) {
    let leaders: Vec<_> =
        cluster.leaders().into_iter().filter(|(_, leader)| among.contains(leader)).collect();
    assert_eq!(leaders.len(), 1, "one leader among {among:?}, found {leaders:?}");
    let (term, leader) = leaders[0];
    for &node in among {
        let raft = cluster.node(node);
        assert_eq!(raft.term(), term, "node {node} is in the leader's term");
        assert_eq!(raft.leader(), Some(leader), "node {node} follows {leader}");
    }
    (term, leader)
}

#[test]
fn one_leader_is_elected_among_three() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(2_000);
    assert_one_leader(&cluster, &cluster.ids());
}

#[test]
fn one_leader_is_elected_among_five() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(2_000);
    assert_one_leader(&cluster, &cluster.ids());
}

#[test]
fn a_single_node_elects_itself_and_commits_alone() {
    let mut cluster = Cluster::new(1);
    cluster.run_for(1_000);
    assert_eq!(cluster.leader(), Some(id(1)));
    cluster.propose(id(1), b"alone");
    cluster.stabilize();
    assert_eq!(cluster.applied_commands(id(1)), ["alone"]);
}

#[test]
fn a_healthy_leader_keeps_its_term() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(2_000);
    let (term, leader) = assert_one_leader(&cluster, &cluster.ids());
    cluster.run_for(30_000);
    assert_eq!(assert_one_leader(&cluster, &cluster.ids()), (term, leader));
    let elections: u64 = cluster.ids().iter().map(|&n| cluster.node(n).counters().elections).sum();
    assert_eq!(elections, 1, "no election after the first");
}

#[test]
fn a_new_leader_is_elected_when_the_leader_is_cut_off() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(2_000);
    let (old_term, old_leader) = assert_one_leader(&cluster, &cluster.ids());
    cluster.isolate(old_leader);
    cluster.run_for(2_000);
    let rest: Vec<NodeId> = cluster.ids().into_iter().filter(|&n| n != old_leader).collect();
    let (new_term, _) = assert_one_leader(&cluster, &rest);
    assert!(new_term > old_term);
}

#[test]
fn the_old_leader_rejoins_without_disrupting_the_new_one() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(2_000);
    let (old_term, old_leader) = assert_one_leader(&cluster, &cluster.ids());
    cluster.isolate(old_leader);
    cluster.run_for(5_000);
    assert_eq!(cluster.node(old_leader).role(), Role::PreCandidate, "check-quorum stepped down");
    assert_eq!(cluster.node(old_leader).term(), old_term, "pre-vote kept it from campaigning");
    let rest: Vec<NodeId> = cluster.ids().into_iter().filter(|&n| n != old_leader).collect();
    let (new_term, new_leader) = assert_one_leader(&cluster, &rest);

    cluster.heal();
    cluster.run_for(3_000);
    assert_eq!(assert_one_leader(&cluster, &cluster.ids()), (new_term, new_leader));
}

#[test]
fn a_partitioned_follower_rejoins_without_raising_the_term() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(2_000);
    let (term, leader) = assert_one_leader(&cluster, &cluster.ids());
    let follower = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    cluster.isolate(follower);
    cluster.run_for(10_000);
    assert_eq!(cluster.node(follower).term(), term, "pre-vote kept its term");
    assert!(cluster.node(follower).counters().pre_elections > 3, "it kept trying");
    cluster.heal();
    cluster.run_for(2_000);
    assert_eq!(assert_one_leader(&cluster, &cluster.ids()), (term, leader));
}

#[test]
fn a_leader_in_a_minority_steps_down_and_commits_nothing() {
    let mut cluster = Cluster::new(5);
    cluster.run_for(2_000);
    let (old_term, old_leader) = assert_one_leader(&cluster, &cluster.ids());
    let (minority, majority): (Vec<NodeId>, Vec<NodeId>) = {
        let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&n| n != old_leader).collect();
        (vec![old_leader, others[0]], others[1..].to_vec())
    };
    cluster.partition(&minority, &majority);
    cluster.propose(old_leader, b"lost");
    cluster.run_for(1_000);
    assert_ne!(cluster.node(old_leader).role(), Role::Leader, "check-quorum deposed it");
    let (new_term, new_leader) = assert_one_leader(&cluster, &majority);
    assert!(new_term > old_term);
    cluster.propose(new_leader, b"kept");
    cluster.run_for(1_000);

    cluster.heal();
    cluster.run_for(2_000);
    assert_eq!(assert_one_leader(&cluster, &cluster.ids()).1, new_leader);
    for node in cluster.ids() {
        assert_eq!(cluster.applied_commands(node), ["kept"], "node {node}");
    }
}

#[test]
fn vote_requests_are_ignored_while_the_leader_is_alive() {
    let mut cluster = Cluster::new(3);
    cluster.run_for(2_000);
    let (term, leader) = assert_one_leader(&cluster, &cluster.ids());
    let challenger = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    let now = cluster.now;
    cluster.node_mut(challenger).campaign(now);
    cluster.stabilize();
    cluster.run_for(1_000);
    assert_eq!(assert_one_leader(&cluster, &cluster.ids()), (term, leader));
    let ignored: u64 =
        cluster.ids().iter().map(|&n| cluster.node(n).counters().dropped_in_lease).sum();
    assert!(ignored >= 1, "the pre-vote was refused by nodes that hear the leader");
}

#[test]
fn elections_succeed_despite_losing_most_messages_for_a_while() {
    let mut cluster = Cluster::new(5);
    let a: Vec<NodeId> = vec![id(1), id(2)];
    let b: Vec<NodeId> = vec![id(3), id(4), id(5)];
    cluster.partition(&a, &b);
    cluster.partition(&[id(3)], &[id(4), id(5)]);
    cluster.run_for(5_000);
    assert!(cluster.leaders().is_empty(), "no side holds a majority");
    cluster.heal();
    cluster.run_for(3_000);
    assert_one_leader(&cluster, &cluster.ids());
}

#[test]
fn leadership_is_handed_over_without_waiting_for_an_election_timeout() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let term = cluster.node(id(1)).term();
    cluster.propose(id(1), b"before");
    let now = cluster.now;
    cluster.node_mut(id(1)).transfer_leadership(now, id(2)).expect("leads");
    let refused = cluster.node_mut(id(1)).propose(now, b"during".to_vec());
    assert_eq!(refused, Err(raftkv_core::raft::NotLeader { hint: Some(id(2)) }));
    cluster.start_transcript();
    cluster.stabilize();
    assert_eq!(cluster.leader(), Some(id(2)), "no time passed, no timeout fired");
    assert_eq!(Some(cluster.node(id(2)).term()), term.next());
    insta::assert_snapshot!(cluster.take_transcript());
    cluster.propose(id(2), b"after");
    cluster.run_for(100); // Followers learn the commit index with the next heartbeat.
    for node in cluster.ids() {
        assert_eq!(cluster.applied_commands(node), ["before", "after"], "node {node}");
    }
}

#[test]
fn a_transfer_to_an_unreachable_node_is_given_up() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.crash(id(3));
    let now = cluster.now;
    cluster.node_mut(id(1)).transfer_leadership(now, id(3)).expect("leads");
    cluster.run_for(1_000);
    assert_eq!(cluster.leader(), Some(id(1)));
    assert_eq!(cluster.node(id(1)).transfer_target(), None);
    cluster.propose(id(1), b"served again");
}

/// Sends `body` from `from` to `to` in `term` and returns what `to` answered to `from`.
fn ask(cluster: &mut Cluster, from: NodeId, to: NodeId, term: Term, body: Body) -> Vec<Body> {
    cluster.network.clear();
    let message = Message { from, to, term, body };
    cluster.handle(to, raftkv_core::raft::Input::Message(message));
    cluster
        .network
        .iter()
        .filter(|m| m.from == to && m.to == from)
        .map(|m| m.body.clone())
        .collect()
}

/// One vote per term: a node that voted for one candidate refuses another in that term, and
/// grants the same one again (its request may have been duplicated).
#[test]
fn a_node_votes_for_one_candidate_per_term() {
    let mut cluster = Cluster::new(5);
    let last = raftkv_core::LogId::ZERO;
    let vote = Body::Vote { last, transfer: false };
    let granted = || vec![Body::VoteReply { granted: true }];
    let refused = vec![Body::VoteReply { granted: false }];
    assert_eq!(ask(&mut cluster, id(1), id(3), Term(1), vote.clone()), granted());
    assert_eq!(ask(&mut cluster, id(2), id(3), Term(1), vote.clone()), refused);
    assert_eq!(ask(&mut cluster, id(1), id(3), Term(1), vote.clone()), granted());
    assert_eq!(ask(&mut cluster, id(2), id(3), Term(2), vote), granted(), "a new term");
}

/// A pre-vote is granted only for a term above the voter's, to a log at least as up to date,
/// while no leader is heard from.
#[test]
fn pre_votes_are_granted_only_for_a_later_term_and_an_up_to_date_log() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"x");
    cluster.stabilize();
    let term = cluster.node(id(3)).term();
    let last = cluster.node(id(3)).status().last_log;
    let pre_vote = |last| Body::PreVote { last, round: 7 };
    let reply = |granted| Body::PreVoteReply { granted, round: 7 };
    let next = term.next().expect("small");
    assert_eq!(ask(&mut cluster, id(2), id(3), next, pre_vote(last)), [reply(false)], "in lease");
    cluster.advance(1_000); // The leader is no longer heard from.
    assert_eq!(ask(&mut cluster, id(2), id(3), next, pre_vote(last)), [reply(true)]);
    let behind = raftkv_core::LogId::new(last.index.prev(), last.term);
    assert_eq!(ask(&mut cluster, id(2), id(3), next, pre_vote(behind)), [reply(false)]);
    assert_eq!(ask(&mut cluster, id(2), id(3), term, pre_vote(last)), [reply(false)], "not above");
    let counters = cluster.node(id(3)).counters();
    assert_eq!(counters.dropped_in_lease, 1, "only the refusal in the lease counts as one");
}

/// A pre-candidate that grants a vote goes back to following.
#[test]
fn a_pre_candidate_that_grants_a_vote_follows_again() {
    let mut cluster = Cluster::new(3);
    let now = cluster.now;
    cluster.node_mut(id(3)).campaign(now);
    cluster.drain(id(3));
    assert_eq!(cluster.node(id(3)).role(), Role::PreCandidate);
    let vote = Body::Vote { last: raftkv_core::LogId::ZERO, transfer: false };
    assert_eq!(ask(&mut cluster, id(1), id(3), Term(1), vote), [Body::VoteReply { granted: true }]);
    assert_eq!(cluster.node(id(3)).role(), Role::Follower);
    assert_eq!(cluster.node(id(3)).counters().leaderships, 0);
    cluster.elect(id(1));
    assert_eq!(cluster.node(id(1)).counters().leaderships, 1);
}

/// A vote request of a later term, not on a transfer, is dropped while the voter hears its
/// leader: it neither adopts the term nor votes (leader stickiness holds for real votes too,
/// not only pre-votes).
#[test]
fn a_vote_request_is_dropped_in_the_lease_without_adopting_its_term() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let term = cluster.node(id(3)).term();
    let later = term.next().expect("small");
    let last = cluster.node(id(2)).status().last_log;
    let answers = ask(&mut cluster, id(2), id(3), later, Body::Vote { last, transfer: false });
    assert_eq!(answers, [], "no answer");
    assert_eq!(cluster.node(id(3)).term(), term);
    assert_eq!(cluster.node(id(3)).counters().dropped_in_lease, 1);
    // On a transfer it votes at once.
    let transfer = ask(&mut cluster, id(2), id(3), later, Body::Vote { last, transfer: true });
    assert_eq!(transfer, [Body::VoteReply { granted: true }]);
}

/// Answers to a node of an older term: a stale leader learns the term from a rejection, a
/// stale pre-candidate from a refused pre-vote, and a stale snapshot sender gets an
/// acknowledgement of the log up to the commit index, once that is durable.
#[test]
fn messages_of_an_older_term_are_answered_with_the_current_term() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"x");
    cluster.run_for(100);
    cluster.advance(1_000); // The lease runs out: node 2 can win.
    cluster.elect(id(2));
    let current = cluster.node(id(3)).term();
    let old = raftkv_core::Term(current.0 - 1);
    let commit = cluster.node(id(3)).status().commit;
    let stale_append = Body::Append {
        prev: raftkv_core::LogId::new(commit, old),
        entries: vec![],
        commit,
        read_round: 0,
        recovery: None,
        pipelined: false,
    };
    let answers = ask(&mut cluster, id(1), id(3), old, stale_append);
    assert!(
        matches!(
            answers[..],
            [Body::AppendReply { outcome: raftkv_core::raft::AppendOutcome::Rejected { .. }, .. }]
        ),
        "{answers:?}"
    );
    let pre_vote = Body::PreVote { last: raftkv_core::LogId::ZERO, round: 5 };
    let answers = ask(&mut cluster, id(1), id(3), old, pre_vote);
    assert_eq!(answers, [Body::PreVoteReply { granted: false, round: 5 }]);
    let snapshot = Body::InstallSnapshot {
        last: raftkv_core::LogId::new(commit, old),
        membership: cluster.node(id(3)).membership().clone(),
        total: 1,
        offset: 0,
        chunk: vec![1],
    };
    let answers = ask(&mut cluster, id(1), id(3), old, snapshot);
    let acknowledged = raftkv_core::raft::AppendOutcome::Accepted { match_index: commit };
    assert!(
        matches!(&answers[..], [Body::AppendReply { outcome, .. }] if *outcome == acknowledged),
        "{answers:?}"
    );
    assert_eq!(cluster.node(id(3)).counters().dropped_stale_term, 3);
}

/// Check-quorum waits a whole minimal election timeout: a leader that misses its followers'
/// answers for less keeps leading.
#[test]
fn a_leader_that_misses_answers_briefly_keeps_leading() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let term = cluster.node(id(1)).term();
    for follower in [id(2), id(3)] {
        cluster.cut(follower, id(1));
    }
    cluster.run_for(150); // Three heartbeats unanswered, half of the 300 ms timeout.
    cluster.heal();
    cluster.run_for(100);
    assert_eq!(cluster.leader(), Some(id(1)));
    assert_eq!(cluster.node(id(1)).term(), term);
}

/// A transfer to a follower that is behind waits for it to catch up, then tells it, and it
/// alone, to campaign, once.
#[test]
fn a_transfer_waits_for_the_target_to_catch_up_and_tells_it_once() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.isolate(id(3));
    for command in ["a", "b", "c"] {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.run_for(100);
    let now = cluster.now;
    cluster.node_mut(id(1)).transfer_leadership(now, id(3)).expect("leads");
    assert_eq!(cluster.node(id(1)).transfer_target(), Some(id(3)));
    let refused = cluster.node_mut(id(1)).propose(now, b"during".to_vec());
    assert_eq!(refused, Err(raftkv_core::raft::NotLeader { hint: Some(id(3)) }));
    cluster.drain(id(1));
    cluster.run_for(200); // Heartbeats pass; node 3 cannot catch up yet.
    assert_eq!(cluster.node(id(1)).transfer_target(), Some(id(3)), "still under way");
    cluster.heal();
    let mut timeouts_now = Vec::new();
    for _ in 0..20 {
        cluster.tick();
        timeouts_now.extend(
            cluster.network.iter().filter(|m| matches!(m.body, Body::TimeoutNow)).map(|m| m.to),
        );
    }
    assert_eq!(cluster.leader(), Some(id(3)));
    assert!(timeouts_now.iter().all(|&to| to == id(3)), "{timeouts_now:?}");
}

/// A pre-candidate asked for its vote in its own term (pre-candidates do not raise their term)
/// grants it and goes back to following.
#[test]
fn a_pre_candidate_asked_for_its_vote_in_its_own_term_follows() {
    let config = raftkv_core::raft::Config::new(id(3), [id(1), id(2), id(3)]);
    let hard_state = raftkv_core::raft::HardState { term: Term(1), ..Default::default() };
    let recovered = raftkv_core::raft::Recovered { hard_state, ..Default::default() };
    let now = raftkv_core::Instant::ZERO;
    let mut node = raftkv_core::raft::RaftNode::new(now, config, recovered).expect("starts");
    node.campaign(now);
    while node.poll_output().is_some() {}
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(1)));
    let vote = Body::Vote { last: raftkv_core::LogId::ZERO, transfer: false };
    let message = Message { from: id(2), to: id(3), term: Term(1), body: vote };
    node.handle(now, raftkv_core::raft::Input::Message(message));
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(1)));
}

/// A vote reply that arrives after the election was won (a slow or duplicated one) is counted
/// as unexpected and changes nothing: the leader neither steps down nor takes office again.
#[test]
fn a_late_vote_reply_leaves_the_leader_as_it_is() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let (term, last) = (cluster.node(id(1)).term(), cluster.node(id(1)).status().last_log);
    for granted in [true, false] {
        let unexpected = cluster.node(id(1)).counters().dropped_unexpected;
        ask(&mut cluster, id(3), id(1), term, Body::VoteReply { granted });
        assert_eq!(cluster.node(id(1)).counters().dropped_unexpected, unexpected + 1);
        assert_eq!(cluster.node(id(1)).role(), Role::Leader);
        assert_eq!(cluster.node(id(1)).status().last_log, last, "no second no-op");
        assert_eq!(cluster.node(id(1)).counters().leaderships, 1);
    }
}
