//! Lease reads (`Config::read_lease`): a leader answers reads alone while a quorum's promises
//! hold, never past the lease's bound, never once a transfer began; voters keep their promise
//! across a restart and a change of term.

mod cluster;

use cluster::{Cluster, id};
use raftkv_core::raft::{Body, Input, Message};
use raftkv_core::{NodeId, Term};

/// Three nodes with `read_lease` (election timeout 300..600 ms, heartbeats every 50 ms, 10%
/// drift: a lease lasts 300 × 0.9 / 1.1 = 245.45 ms), node 1 leading, past every node's start
/// window, the first heartbeat round answered at `cluster.now`.
fn leased_cluster(read_lease: bool) -> Cluster {
    let mut cluster = Cluster::with_config(3, |config| config.read_lease = read_lease);
    cluster.advance(300);
    cluster.elect(id(1));
    cluster.stabilize();
    cluster.tick(); // The first heartbeat, and its answers.
    cluster
}

/// Asks node 1 for read `ctx` and drains it: whether it was answered at once, without a message.
fn read_alone(cluster: &mut Cluster, ctx: u64) -> bool {
    let now = cluster.clock_of(id(1));
    cluster.node_mut(id(1)).read_index(now, ctx).expect("node 1 leads");
    cluster.drain(id(1));
    let answered = cluster.slot(id(1)).reads_ready.iter().any(|&(read, _)| read == ctx);
    assert_eq!(answered, cluster.network.is_empty(), "read {ctx}: answered alone or sent a round");
    answered
}

#[test]
fn a_read_within_the_lease_is_answered_alone_and_one_past_it_waits_for_a_round() {
    let mut cluster = leased_cluster(true);
    let commit = cluster.commit(id(1));
    assert!(read_alone(&mut cluster, 1), "right after a heartbeat round");
    cluster.advance(245);
    assert!(read_alone(&mut cluster, 2), "245 ms after the round began: within 245.45 ms");
    cluster.advance(1);
    assert!(!read_alone(&mut cluster, 3), "246 ms after: the lease ended");
    cluster.stabilize();
    assert_eq!(cluster.slot(id(1)).reads_ready, [(1, commit), (2, commit), (3, commit)]);
    assert!(read_alone(&mut cluster, 4), "the ReadIndex round renewed the lease");
    assert_eq!(cluster.node(id(1)).counters().lease_reads, 3);

    let mut without = leased_cluster(false);
    assert!(!read_alone(&mut without, 1), "without read_lease every read waits for a round");
}

#[test]
fn heartbeats_keep_renewing_the_lease() {
    let mut cluster = leased_cluster(true);
    for ctx in 1..=20 {
        cluster.tick();
        assert!(read_alone(&mut cluster, ctx), "after {} heartbeats", ctx + 1);
    }
}

#[test]
fn no_read_is_answered_alone_once_a_transfer_began_for_the_rest_of_the_term() {
    let mut cluster = leased_cluster(true);
    let term = cluster.node(id(1)).term();
    cluster.cut(id(1), id(3)); // The TimeoutNow never arrives.
    let now = cluster.clock_of(id(1));
    cluster.node_mut(id(1)).transfer_leadership(now, id(3)).expect("node 1 leads");
    cluster.drain(id(1));
    cluster.network.clear();
    assert!(!read_alone(&mut cluster, 1), "during the transfer");
    cluster.run_until(1_000, |cluster| cluster.node(id(1)).transfer_target().is_none());
    cluster.heal();
    cluster.tick();
    assert_eq!(cluster.leaders(), [(term, id(1))], "the transfer was given up");
    assert!(!read_alone(&mut cluster, 2), "its TimeoutNow may still be in flight");
    cluster.stabilize();
    assert!(cluster.slot(id(1)).reads_ready.iter().any(|&(ctx, _)| ctx == 2), "by ReadIndex");
}

/// A vote request of `candidate` to `voter` in `term` (not sent by a transfer), with the
/// candidate's log.
fn vote_request(cluster: &Cluster, candidate: NodeId, voter: NodeId, term: Term) -> Message {
    let last = cluster.node(candidate).status().last_log;
    Message { from: candidate, to: voter, term, body: Body::Vote { last, transfer: false } }
}

/// Whether `voter` granted `candidate` a vote: its answer, if any, is taken from the network.
fn granted(cluster: &mut Cluster, voter: NodeId, candidate: NodeId) -> bool {
    let answer = cluster.network.iter().position(|message| {
        message.from == voter
            && message.to == candidate
            && matches!(message.body, Body::VoteReply { .. })
    });
    answer
        .and_then(|at| cluster.network.remove(at))
        .is_some_and(|message| matches!(message.body, Body::VoteReply { granted: true }))
}

#[test]
fn a_restarted_voter_refuses_votes_and_pre_votes_for_an_election_timeout_after_it_starts() {
    for read_lease in [true, false] {
        let mut cluster = leased_cluster(read_lease);
        let next = cluster.node(id(1)).term().next().expect("far from the last term");
        cluster.crash(id(2));
        cluster.restart(id(2));
        let last = cluster.node(id(3)).status().last_log;
        let pre_vote = Body::PreVote { last, round: 9 };
        let pre_vote = Message { from: id(3), to: id(2), term: next, body: pre_vote };
        cluster.handle(id(2), Input::Message(pre_vote));
        let pre_vote_granted = cluster
            .network
            .iter()
            .any(|message| matches!(message.body, Body::PreVoteReply { granted: true, .. }));
        let request = vote_request(&cluster, id(3), id(2), next);
        cluster.handle(id(2), Input::Message(request));
        let in_window = granted(&mut cluster, id(2), id(3));
        assert_eq!(pre_vote_granted, !read_lease, "pre-vote right after the restart");
        assert_eq!(
            in_window, !read_lease,
            "vote right after the restart (read_lease {read_lease})"
        );
        if read_lease {
            assert_eq!(cluster.node(id(2)).counters().dropped_in_lease, 2);
            cluster.advance(300);
            let request = vote_request(&cluster, id(3), id(2), next);
            cluster.handle(id(2), Input::Message(request));
            assert!(granted(&mut cluster, id(2), id(3)), "once the window has passed");
        }
    }
}

#[test]
fn a_voter_keeps_its_promise_when_a_stale_answer_raises_its_term() {
    for read_lease in [true, false] {
        let mut cluster = leased_cluster(read_lease);
        let next = cluster.node(id(1)).term().next().expect("far from the last term");
        // A refusal of some old pre-vote of node 2's, from a node already in the next term: it
        // raises node 2's term and leaves it without a leader, though none was elected.
        let refusal = Body::PreVoteReply { granted: false, round: 1 };
        let refusal = Message { from: id(3), to: id(2), term: next, body: refusal };
        cluster.handle(id(2), Input::Message(refusal));
        assert_eq!((cluster.node(id(2)).term(), cluster.node(id(2)).leader()), (next, None));
        let request = vote_request(&cluster, id(3), id(2), next);
        cluster.handle(id(2), Input::Message(request));
        assert_eq!(
            granted(&mut cluster, id(2), id(3)),
            !read_lease,
            "a vote in the raised term, while the leader's lease may hold (read_lease {read_lease})"
        );
    }
}

#[test]
fn a_campaign_asked_within_the_promise_is_refused() {
    let mut cluster = leased_cluster(true);
    let now = cluster.clock_of(id(2));
    let elections = cluster.node(id(2)).counters().pre_elections;
    cluster.node_mut(id(2)).campaign(now);
    cluster.drain(id(2));
    assert_eq!(cluster.node(id(2)).counters().pre_elections, elections);
    assert!(cluster.network.is_empty(), "no pre-vote went out");
}
