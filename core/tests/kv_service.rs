//! The key-value service: exactly-once sessions, linearizable reads, the clerk.

mod cluster;
mod kv_cluster;

use kv_cluster::{Endpoint, KvCluster, Packet};
use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest, Op, Outcome, Reject};
use raftkv_core::{ClientId, Duration, NodeId, RequestId};

fn put(key: &str, value: &str) -> KvCommand {
    KvCommand::Put { key: key.into(), value: value.into() }
}

fn append(key: &str, value: &str) -> KvCommand {
    KvCommand::Append { key: key.into(), value: value.into() }
}

fn get(key: &str) -> KvCommand {
    KvCommand::Get { key: key.into() }
}

fn value(text: &str) -> Result<KvReply, ClerkError> {
    Ok(KvReply::Value(Some(text.into())))
}

/// Registers a session by hand at the leader and returns its id.
fn register_by_hand(cluster: &mut KvCluster, leader: NodeId) -> ClientId {
    let request = ClientRequest { client: ClientId(0), request: RequestId(1), op: Op::Register };
    cluster.request_by_hand(leader, request);
    cluster.stabilize();
    match cluster.by_hand.pop() {
        Some((_, ClientReply { outcome: Outcome::Registered { client }, .. })) => client,
        other => panic!("registration failed: {other:?}"),
    }
}

#[test]
fn puts_appends_and_gets_through_the_clerk_give_the_expected_values() {
    let mut cluster = KvCluster::new(3, 1);
    cluster.wait_for_leader();
    cluster.submit(0, put("x", "1"));
    cluster.submit(0, append("x", "2"));
    cluster.submit(0, get("x"));
    cluster.submit(0, KvCommand::Delete { key: "x".into() });
    cluster.submit(0, get("x"));
    cluster.submit(0, KvCommand::Cas { key: "x".into(), expected: None, new: "n".into() });
    cluster.submit(0, get("x"));
    assert!(cluster.run_until(5_000, |c| c.finished[0].len() == 7));
    let results: Vec<_> = cluster.finished[0].iter().map(|(_, result)| result.clone()).collect();
    assert_eq!(
        results,
        [
            Ok(KvReply::Done),
            Ok(KvReply::Length(2)),
            value("12"),
            Ok(KvReply::Done),
            Ok(KvReply::Value(None)),
            Ok(KvReply::Cas { swapped: true, previous: None }),
            value("n"),
        ]
    );
    cluster.run_for(500);
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "x").as_deref(), Some("n"), "node {node}");
    }
}

#[test]
fn a_request_delivered_three_times_is_applied_once() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    let request =
        ClientRequest { client, request: RequestId(2), op: Op::Command(append("x", "a")) };
    for _ in 0..3 {
        cluster.request_by_hand(leader, request.clone());
    }
    cluster.stabilize();
    // And once more after it was applied.
    cluster.request_by_hand(leader, request);
    cluster.run_for(200);
    let outcomes: Vec<_> = cluster.by_hand.iter().map(|(_, reply)| reply.outcome.clone()).collect();
    assert_eq!(outcomes, vec![Outcome::Done(KvReply::Length(1)); 4], "every delivery is answered");
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "x").as_deref(), Some("a"), "node {node} applied it once");
    }
}

#[test]
fn a_retried_append_is_answered_from_its_session_though_the_value_it_grew_is_now_too_large() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    // More than half the value limit: valid once, not twice.
    let large = "a".repeat(600 << 10);
    let request =
        ClientRequest { client, request: RequestId(2), op: Op::Command(append("x", &large)) };
    cluster.request_by_hand(leader, request.clone());
    cluster.stabilize();
    cluster.request_by_hand(leader, request);
    cluster.run_for(200);
    let outcomes: Vec<_> = cluster.by_hand.iter().map(|(_, reply)| reply.outcome.clone()).collect();
    let applied = Outcome::Done(KvReply::Length(large.len() as u64));
    assert_eq!(outcomes, vec![applied.clone(), applied], "the retry gets the reply it had");
}

/// A clerk whose leader fell silent retries at the next replica, often a follower. One that
/// applied the batch answers from the session: validated again, the append would be invalid
/// against the value it grew, and a Redis pipeline refused so resends its commands one by one,
/// applying the others twice.
#[test]
fn a_follower_answers_a_retry_already_applied_from_its_session() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    let large = "a".repeat(600 << 10);
    let batch = KvCommand::Batch { commands: vec![append("n", "1"), append("x", &large)] };
    let request = ClientRequest { client, request: RequestId(2), op: Op::Command(batch) };
    cluster.request_by_hand(leader, request.clone());
    cluster.stabilize();
    cluster.run_for(200);
    let follower = cluster.ids().into_iter().find(|node| *node != leader).expect("a follower");
    assert_eq!(cluster.value(follower, "n").as_deref(), Some("1"), "the follower applied it");
    cluster.request_by_hand(follower, request);
    cluster.run_for(200);
    let outcomes: Vec<_> = cluster.by_hand.iter().map(|(_, reply)| reply.outcome.clone()).collect();
    let applied = Outcome::Done(KvReply::Batch(vec![
        KvReply::Length(1),
        KvReply::Length(large.len() as u64),
    ]));
    assert_eq!(outcomes, vec![applied.clone(), applied], "the retry gets the reply it had");
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "n").as_deref(), Some("1"), "node {node} applied it once");
    }
}

/// The whole path: the leader applies a batch but its answer is lost, the clerk retries at the
/// next replica, a follower that applied it too, and gets the batch's one reply.
#[test]
fn a_batch_whose_answer_is_lost_is_answered_by_a_follower_from_the_session() {
    let mut cluster = KvCluster::new(3, 1);
    cluster.elect(NodeId(1));
    cluster.submit(0, put("warm", "up"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    cluster.cut(NodeId(1), Endpoint::Client(0));
    let large = "a".repeat(600 << 10);
    let batch = KvCommand::Batch { commands: vec![append("n", "1"), append("x", &large)] };
    cluster.submit(0, batch);
    assert!(cluster.run_until(10_000, |c| c.finished[0].len() == 2), "the clerk retried");
    let replies = KvReply::Batch(vec![KvReply::Length(1), KvReply::Length(large.len() as u64)]);
    assert_eq!(cluster.finished[0][1].1, Ok(replies), "the reply of the one application");
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "n").as_deref(), Some("1"), "node {node} applied it once");
    }
}

#[test]
fn a_batch_delivered_twice_takes_effect_once_in_its_order_and_a_batch_of_reads_is_a_read() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    let commands = vec![append("x", "a"), get("x"), append("x", "b"), get("x")];
    let batch = KvCommand::Batch { commands };
    let request = ClientRequest { client, request: RequestId(2), op: Op::Command(batch) };
    cluster.request_by_hand(leader, request.clone());
    cluster.stabilize();
    cluster.request_by_hand(leader, request);
    cluster.run_for(200);
    let replies = KvReply::Batch(vec![
        KvReply::Length(1),
        KvReply::Value(Some("a".into())),
        KvReply::Length(2),
        KvReply::Value(Some("ab".into())),
    ]);
    let outcomes: Vec<_> = cluster.by_hand.iter().map(|(_, reply)| reply.outcome.clone()).collect();
    assert_eq!(outcomes, vec![Outcome::Done(replies); 2], "the retry is answered from the session");
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "x").as_deref(), Some("ab"), "node {node} applied it once");
    }
    let log_before = cluster.replica(leader).raft().status().last_log;
    let reads = KvCommand::Batch { commands: vec![get("x"), KvCommand::Count] };
    let request = ClientRequest { client, request: RequestId(3), op: Op::Command(reads) };
    cluster.request_by_hand(leader, request);
    cluster.stabilize();
    let answer = KvReply::Batch(vec![KvReply::Value(Some("ab".into())), KvReply::Count(1)]);
    assert_eq!(
        cluster.by_hand.last().map(|(_, reply)| &reply.outcome),
        Some(&Outcome::Done(answer))
    );
    assert_eq!(cluster.replica(leader).raft().status().last_log, log_before, "reads enter no log");
}

#[test]
fn a_leader_change_in_the_middle_of_a_request_still_applies_it_exactly_once() {
    let mut cluster = KvCluster::new(3, 1);
    let old_leader = cluster.wait_for_leader();
    cluster.submit(0, put("x", "base"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));

    // The append commits on the followers, but the old leader dies before it replies.
    cluster.submit(0, append("x", "+once"));
    cluster.deliver_where(|p| matches!(p, Packet::Request { .. }));
    cluster.deliver_where(|p| matches!(p, Packet::Peer(m) if m.from == old_leader));
    cluster.crash(old_leader);
    cluster.drop_where(|p| matches!(p, Packet::Reply { .. }));

    assert!(cluster.run_until(10_000, |c| c.finished[0].len() == 2), "the clerk retried");
    assert_eq!(cluster.finished[0][1].1, Ok(KvReply::Length(9)));
    cluster.restart(old_leader);
    cluster.run_for(1_000);
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "x").as_deref(), Some("base+once"), "node {node}");
    }
}

#[test]
fn a_batch_whose_leader_dies_before_answering_is_retried_elsewhere_and_applied_once() {
    let mut cluster = KvCluster::new(3, 1);
    let old_leader = cluster.wait_for_leader();
    cluster.submit(0, put("x", "base"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));

    // The batch commits on the followers, but the old leader dies before it replies.
    let commands = vec![append("x", "+1"), get("x"), append("x", "+2"), get("x")];
    cluster.submit(0, KvCommand::Batch { commands });
    cluster.deliver_where(|p| matches!(p, Packet::Request { .. }));
    cluster.deliver_where(|p| matches!(p, Packet::Peer(m) if m.from == old_leader));
    cluster.crash(old_leader);
    cluster.drop_where(|p| matches!(p, Packet::Reply { .. }));

    assert!(cluster.run_until(10_000, |c| c.finished[0].len() == 2), "the clerk retried");
    let replies = KvReply::Batch(vec![
        KvReply::Length(6),
        KvReply::Value(Some("base+1".into())),
        KvReply::Length(8),
        KvReply::Value(Some("base+1+2".into())),
    ]);
    assert_eq!(cluster.finished[0][1].1, Ok(replies), "the answer of the one application");
    cluster.restart(old_leader);
    cluster.run_for(1_000);
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "x").as_deref(), Some("base+1+2"), "node {node}");
    }
}

#[test]
fn a_deposed_leader_cannot_serve_a_read() {
    let mut cluster = KvCluster::new(3, 2);
    let old_leader = cluster.wait_for_leader();
    cluster.submit(0, put("x", "old"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));

    // Client 1 stays with the old leader in a minority; the others move on.
    let others: Vec<Endpoint> =
        cluster.ids().into_iter().filter(|&n| n != old_leader).map(Endpoint::Node).collect();
    let mut majority = others.clone();
    majority.push(Endpoint::Client(0));
    cluster.partition(&[Endpoint::Node(old_leader), Endpoint::Client(1)], &majority);
    cluster.run_for(2_000);
    let new_leader = cluster.leader().expect("the majority elected a leader");
    assert_ne!(new_leader, old_leader);
    cluster.submit(0, put("x", "new"));
    assert!(cluster.run_until(5_000, |c| c.finished[0].len() == 2));

    let stale_read =
        ClientRequest { client: ClientId(0), request: RequestId(1), op: Op::Command(get("x")) };
    cluster.request_by_hand(old_leader, stale_read.clone());
    cluster.submit(1, get("x"));
    cluster.run_for(3_000);
    assert!(cluster.finished[1].is_empty(), "the minority answered nothing");
    assert_eq!(
        cluster.by_hand.iter().map(|(_, r)| r.outcome.clone()).collect::<Vec<_>>(),
        [Outcome::Rejected(Reject::NotLeader { hint: None })],
        "the deposed leader refused the read"
    );

    cluster.heal();
    assert!(cluster.run_until(5_000, |c| c.finished[1].len() == 1));
    assert_eq!(cluster.finished[1][0].1, value("new"));
}

#[test]
fn a_read_in_flight_when_leadership_is_lost_is_refused_not_answered_stale() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&n| n != leader).collect();
    cluster.partition(&[leader], &others);
    let read = ClientRequest { client, request: RequestId(2), op: Op::Command(get("x")) };
    cluster.request_by_hand(leader, read);
    cluster.run_for(2_000);
    let outcomes: Vec<_> = cluster.by_hand.iter().map(|(_, r)| r.outcome.clone()).collect();
    assert_eq!(outcomes, [Outcome::Rejected(Reject::NotLeader { hint: None })]);
}

#[test]
fn sessions_expire_at_the_same_index_on_every_replica() {
    let mut cluster = KvCluster::with_config(3, 2, |config| config.session_timeout_ms = 1_000);
    let leader = cluster.wait_for_leader();
    let idle = register_by_hand(&mut cluster, leader);
    let first =
        ClientRequest { client: idle, request: RequestId(2), op: Op::Command(append("x", "a")) };
    cluster.request_by_hand(leader, first.clone());
    cluster.stabilize();
    // Client 0 keeps writing for three seconds; the idle session falls behind the log clock.
    for round in 0..30 {
        cluster.submit(0, put("busy", &round.to_string()));
        assert!(cluster.run_until(1_000, |c| c.finished[0].len() == round + 1));
        cluster.run_for(100);
    }
    cluster.run_for(500);
    let tables: Vec<_> =
        cluster.ids().iter().map(|&n| cluster.replica(n).sessions().clone()).collect();
    assert!(tables.windows(2).all(|pair| pair[0] == pair[1]), "every replica has the same table");
    assert_eq!(tables[0].len(), 1, "only the busy session is left");

    // A retry of the idle session's request is refused, not applied a second time.
    cluster.by_hand.clear();
    cluster.request_by_hand(cluster.leader().expect("leads"), first);
    cluster.stabilize();
    assert_eq!(cluster.by_hand[0].1.outcome, Outcome::Rejected(Reject::SessionExpired));
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "x").as_deref(), Some("a"));
    }
}

#[test]
fn a_leader_whose_clock_starts_elsewhere_continues_the_log_clock() {
    let mut cluster = KvCluster::with_config(3, 1, |config| config.session_timeout_ms = 10_000);
    // Node 3's process started an hour before the others: its clock reads an hour ahead.
    cluster.set_clock_ahead(NodeId(3), Duration::from_millis(3_600_000));
    cluster.elect(NodeId(1));
    cluster.submit(0, put("x", "1"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    let session = cluster.clerks[0].client_id();

    let clock = cluster.clock_of(NodeId(1));
    cluster.replica_mut(NodeId(1)).transfer_leadership(clock, NodeId(3)).expect("leads");
    cluster.stabilize();
    assert_eq!(cluster.leader(), Some(NodeId(3)));
    cluster.submit(0, append("x", "2"));
    assert!(cluster.run_until(5_000, |c| c.finished[0].len() == 2));
    assert_eq!(cluster.finished[0][1].1, Ok(KvReply::Length(2)));
    assert_eq!(cluster.clerks[0].client_id(), session, "the session did not expire");
    let clock_ms = cluster.replica(NodeId(3)).sessions().clock_ms();
    assert!(clock_ms < 60_000, "the log clock went on from where it was: {clock_ms} ms");
}

#[test]
fn a_clerk_whose_idle_session_expired_opens_a_new_one_transparently() {
    let mut cluster = KvCluster::with_config(3, 2, |config| config.session_timeout_ms = 1_000);
    cluster.wait_for_leader();
    cluster.submit(1, put("y", "1"));
    assert!(cluster.run_until(2_000, |c| c.finished[1].len() == 1));
    let first_session = cluster.clerks[1].client_id();
    for round in 0..30 {
        cluster.submit(0, put("busy", &round.to_string()));
        assert!(cluster.run_until(1_000, |c| c.finished[0].len() == round + 1));
        cluster.run_for(100);
    }
    cluster.submit(1, append("y", "2"));
    assert!(cluster.run_until(3_000, |c| c.finished[1].len() == 2));
    assert_eq!(cluster.finished[1][1].1, Ok(KvReply::Length(2)));
    assert_ne!(cluster.clerks[1].client_id(), first_session);
    assert_eq!(cluster.value(cluster.leader().expect("leads"), "y").as_deref(), Some("12"));
}

#[test]
fn a_follower_redirects_and_the_clerk_follows_the_hint() {
    let mut cluster = KvCluster::new(3, 1);
    let leader = cluster.wait_for_leader();
    let follower = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    // Point the clerk at a follower first.
    cluster.clerks[0] = raftkv_core::client::Clerk::new({
        let mut config = raftkv_core::client::ClerkConfig::new(cluster.ids());
        let follower_at = config.servers.iter().position(|&id| id == follower).expect("a server");
        config.servers.rotate_left(follower_at);
        config
    });
    cluster.start_transcript();
    cluster.submit(0, put("k", "v"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    let transcript = cluster.take_transcript();
    assert!(
        transcript
            .contains(&format!("{follower}->c0 #2 rejected: not the leader (try node {leader})")),
        "{transcript}"
    );
}

#[test]
fn an_oversized_value_is_refused_before_it_reaches_the_log() {
    let mut cluster = KvCluster::new(3, 1);
    let leader = cluster.wait_for_leader();
    let last_before = cluster.replica(leader).raft().status().last_log;
    cluster.submit(0, put("k", &"v".repeat(2 << 20)));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    match &cluster.finished[0][0].1 {
        Err(ClerkError::Invalid { reason }) => {
            assert!(reason.contains("exceeds the limit"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let last_after = cluster.replica(leader).raft().status().last_log;
    assert_eq!(last_after.index.0, last_before.index.0 + 1, "only the registration was logged");
}

#[test]
fn many_clients_at_once_share_appends_and_all_finish() {
    let clients = 10;
    let mut cluster = KvCluster::new(3, clients);
    cluster.wait_for_leader();
    for client in 0..clients {
        cluster.submit(client, put(&format!("k{client}"), "v"));
    }
    let appends_before = cluster.replica(NodeId(2)).raft().status().last_log;
    assert!(cluster.run_until(5_000, |c| c.finished.iter().all(|f| f.len() == 1)));
    let logged =
        cluster.replica(NodeId(2)).raft().status().last_log.index.0 - appends_before.index.0;
    assert_eq!(logged, 2 * clients as u64, "a registration and a put per client");
    for client in 0..clients {
        assert_eq!(cluster.finished[client][0].1, Ok(KvReply::Done));
    }
}

#[test]
fn the_life_of_one_request() {
    let mut cluster = KvCluster::new(3, 1);
    cluster.elect(NodeId(1));
    cluster.submit(0, put("warm", "up"));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    cluster.start_transcript();
    cluster.submit(0, append("x", "hello"));
    cluster.stabilize();
    insta::assert_snapshot!(cluster.take_transcript());
}

/// Sends `command` by hand to `node` in `client`'s session with request id `request`.
fn by_hand(
    cluster: &mut KvCluster,
    node: NodeId,
    client: ClientId,
    request: u64,
    command: KvCommand,
) {
    let request = ClientRequest { client, request: RequestId(request), op: Op::Command(command) };
    cluster.request_by_hand(node, request);
}

/// The outcome the replica gave by hand to `request`, if it answered.
fn answer(cluster: &KvCluster, request: u64) -> Option<&Outcome<KvReply>> {
    cluster
        .by_hand
        .iter()
        .find(|(_, reply)| reply.request == RequestId(request))
        .map(|(_, r)| &r.outcome)
}

#[test]
fn reads_write_nothing_to_the_log_and_concurrent_ones_are_all_answered() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    by_hand(&mut cluster, leader, client, 2, put("x", "1"));
    cluster.stabilize();
    let last = cluster.replica(leader).raft().status().last_log;
    for request in 3..6 {
        by_hand(&mut cluster, leader, client, request, get("x"));
    }
    cluster.stabilize();
    assert_eq!(cluster.replica(leader).raft().status().last_log, last, "reads enter no log");
    for request in 3..6 {
        assert_eq!(
            answer(&cluster, request),
            Some(&Outcome::Done(KvReply::Value(Some("1".into())))),
            "read #{request}"
        );
    }
}

#[test]
fn a_deposed_leader_answers_its_pending_proposals_at_once() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let client = register_by_hand(&mut cluster, leader);
    cluster.isolate_node(leader);
    by_hand(&mut cluster, leader, client, 2, put("x", "lost?"));
    cluster.stabilize();
    assert_eq!(answer(&cluster, 2), None, "cannot commit alone");
    // Cut off from a majority, it steps down (check-quorum) and answers the proposal it holds:
    // the client learns at once that its put may or may not take effect, and retries.
    cluster.run_for(2_000);
    assert_ne!(cluster.replica(leader).raft().role(), raftkv_core::raft::Role::Leader);
    assert!(
        matches!(answer(&cluster, 2), Some(Outcome::Rejected(Reject::NotLeader { .. }))),
        "{:?}",
        answer(&cluster, 2)
    );
}

/// A broken or hostile leader's entry that does not decode is counted and skipped, never a
/// panic.
#[test]
fn an_entry_that_does_not_decode_is_counted_and_skipped() {
    let mut cluster = KvCluster::new(3, 0);
    let leader = cluster.wait_for_leader();
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let raft = cluster.replica(follower).raft();
    let (last, term) = (raft.status().last_log, raft.term());
    let garbage = raftkv_core::raft::Entry {
        index: last.index.next(),
        term,
        payload: raftkv_core::raft::Payload::Command(vec![0xff; 5]),
    };
    let forged = raftkv_core::raft::Message {
        from: leader,
        to: follower,
        term,
        body: raftkv_core::raft::Body::Append {
            prev: last,
            entries: vec![garbage],
            commit: last.index.next(),
            read_round: 0,
            recovery: None,
            pipelined: false,
        },
    };
    assert_eq!(cluster.replica(follower).undecodable(), 0);
    cluster.deliver(kv_cluster::Packet::Peer(forged));
    assert_eq!(cluster.replica(follower).undecodable(), 1);
    assert_eq!(cluster.replica(follower).applied(), last.index.next());
}

/// What operators and traces read: a replica's outputs and start errors, one line each.
#[test]
fn outputs_and_start_errors_read_as_one_line() {
    let role = raftkv_core::server::Output::<KvReply>::RoleChanged {
        role: raftkv_core::raft::Role::Leader,
        term: raftkv_core::Term(3),
        leader: Some(NodeId(2)),
    };
    assert_eq!(role.to_string(), "Leader t=3 leader=2");
    let reply = raftkv_core::server::Output::Reply {
        to: raftkv_core::server::ReplyTo(4),
        reply: ClientReply { request: RequestId(9), outcome: Outcome::Done(KvReply::Done) },
    };
    assert_eq!(reply.to_string(), "reply to client 4 #9: Done(Done)");
    let config = raftkv_core::server::ReplicaConfig::new(raftkv_core::raft::Config::new(
        NodeId(1),
        [NodeId(1)],
    ));
    let garbage = raftkv_core::raft::Snapshot {
        last: raftkv_core::LogId::new(raftkv_core::LogIndex(3), raftkv_core::Term(1)),
        membership: raftkv_core::raft::Membership::with_voters([NodeId(1)]),
        data: vec![0xff; 3],
    };
    let recovered = raftkv_core::raft::Recovered {
        hard_state: raftkv_core::raft::HardState {
            term: raftkv_core::Term(1),
            ..Default::default()
        },
        snapshot: Some(garbage),
        ..Default::default()
    };
    let error = raftkv_core::server::Replica::new(
        raftkv_core::Instant::ZERO,
        config,
        recovered,
        raftkv_core::kv::KvStore::default(),
    )
    .err()
    .expect("a snapshot that does not decode");
    assert!(error.to_string().contains("snapshot"), "{error}");
}

/// A snapshot from a broken or hostile leader that does not decode is counted, never a panic,
/// and the replica keeps its state.
#[test]
fn a_snapshot_that_does_not_decode_is_counted_and_not_installed_into_the_state() {
    let mut cluster = KvCluster::new(3, 1);
    let leader = cluster.wait_for_leader();
    cluster.submit(0, put("x", "1"));
    assert!(cluster.run_until(5_000, |c| c.finished[0].len() == 1));
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.run_for(200);
    let raft = cluster.replica(follower).raft();
    let (term, commit) = (raft.term(), raft.status().commit);
    let last = raftkv_core::LogId::new(commit.plus(10), term);
    let forged = raftkv_core::raft::Message {
        from: leader,
        to: follower,
        term,
        body: raftkv_core::raft::Body::InstallSnapshot {
            last,
            membership: raft.membership().clone(),
            total: 3,
            offset: 0,
            chunk: vec![0xff; 3],
        },
    };
    assert_eq!(cluster.replica(follower).undecodable(), 0);
    cluster.deliver(kv_cluster::Packet::Peer(forged));
    assert_eq!(cluster.replica(follower).undecodable(), 1);
    assert_eq!(cluster.value(follower, "x").as_deref(), Some("1"), "the state is kept");
}
