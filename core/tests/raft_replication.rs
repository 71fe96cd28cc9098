//! Log replication: agreement, batching and pipelining, repair of conflicting logs, the
//! Figure 8 commit rule, and robustness against stale, duplicated and malformed messages.

mod cluster;

use cluster::{Cluster, id};
use raftkv_core::prng::Prng;
use raftkv_core::raft::{
    AppendOutcome, Body, ConflictHint, Entry, Input, Message, Payload, RaftNode, Recovered, Role,
};
use raftkv_core::{Duration, Instant, LogId, LogIndex, NodeId, Term};

fn commands(count: usize, tag: &str) -> Vec<String> {
    (0..count).map(|i| format!("{tag}{i}")).collect()
}

#[test]
fn proposals_are_applied_everywhere_in_order() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let expected = commands(20, "c");
    for command in &expected {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.run_for(100); // Followers learn the last commit index with a heartbeat.
    for node in cluster.ids() {
        assert_eq!(cluster.applied_commands(node), expected, "node {node}");
    }
}

#[test]
fn agreement_holds_while_one_follower_is_down_and_it_catches_up() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.crash(id(3));
    for command in commands(10, "a") {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.run_for(100);
    assert_eq!(cluster.applied_commands(id(2)).len(), 10, "a majority of two commits");
    cluster.restart(id(3));
    cluster.run_for(500);
    assert_eq!(cluster.applied_commands(id(3)), commands(10, "a"));
}

/// With no log cache, the leader lets go of every entry applied and durable, and sends them
/// to a follower that was down through its driver, which reads them from its disk.
#[test]
fn entries_out_of_memory_reach_a_lagging_follower_through_the_drivers_disk() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.log_cache_bytes = Some(0);
        config.max_entries_per_append = 4;
    });
    cluster.elect(id(1));
    cluster.crash(id(3));
    for command in commands(10, "d") {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.run_for(100);
    let status = cluster.node(id(1)).status();
    assert_eq!((status.log_entries, status.log_evicted_entries), (0, 11), "{status:?}");
    assert!(cluster.node(id(1)).entry(LogIndex(5)).is_none());
    assert_eq!(cluster.node(id(1)).term_at(LogIndex(5)), Some(status.term), "terms stay");
    cluster.restart(id(3));
    cluster.run_for(500);
    assert_eq!(cluster.applied_commands(id(3)), commands(10, "d"));
    // 11 entries (the leader's no-op first) in appends of at most 4.
    assert!(cluster.node(id(1)).counters().appends_from_disk >= 3);
    assert_eq!(cluster.node(id(1)).counters().log_reads_failed, 0);
}

#[test]
fn nothing_commits_without_a_majority() {
    let mut cluster = Cluster::new(5);
    cluster.elect(id(1));
    for node in [id(3), id(4), id(5)] {
        cluster.crash(node);
    }
    let index = cluster.propose(id(1), b"orphan").index;
    cluster.run_for(200);
    assert!(cluster.commit(id(1)) < index);
    assert!(cluster.applied_commands(id(1)).is_empty());
}

#[test]
fn many_proposals_share_one_append_per_follower() {
    let mut cluster = Cluster::with_config(3, |config| config.max_entries_per_append = 4);
    cluster.elect(id(1));
    let now = cluster.now;
    for command in commands(10, "b") {
        cluster.node_mut(id(1)).propose(now, command.into_bytes()).expect("leads");
    }
    cluster.drain(id(1));
    let appends: Vec<usize> = cluster
        .network
        .iter()
        .filter(|m| m.to == id(2))
        .filter_map(|m| match &m.body {
            Body::Append { entries, .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(appends, [4, 4, 2], "batches of at most 4, pipelined without waiting");
    cluster.run_for(100);
    assert_eq!(cluster.applied_commands(id(2)), commands(10, "b"));
}

#[test]
fn the_in_flight_window_bounds_unanswered_appends() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_entries_per_append = 1;
        config.max_inflight_appends = 3;
    });
    cluster.elect(id(1));
    for command in commands(10, "w") {
        cluster.propose(id(1), command.as_bytes());
    }
    let in_flight = cluster.network.iter().filter(|m| m.to == id(2)).count();
    assert_eq!(in_flight, 3, "the window holds three appends");
    cluster.run_for(100);
    assert_eq!(cluster.applied_commands(id(2)), commands(10, "w"));
}

#[test]
fn lost_appends_are_resent_after_a_heartbeat() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.cut(id(1), id(3));
    for command in commands(5, "l") {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.stabilize();
    cluster.heal();
    assert!(cluster.applied_commands(id(3)).is_empty());
    cluster.run_for(200);
    assert_eq!(cluster.applied_commands(id(3)), commands(5, "l"));
}

#[test]
fn a_follower_with_many_conflicting_entries_is_repaired_in_few_round_trips() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"shared");
    cluster.stabilize();
    // Node 1 leads alone and writes 60 entries nobody else will ever have.
    cluster.isolate(id(1));
    for command in commands(60, "stale") {
        cluster.propose(id(1), command.as_bytes());
    }
    cluster.stabilize();
    // The others elect node 2, which commits entries of a later term.
    cluster.advance(1_000);
    cluster.elect(id(2));
    for command in commands(10, "fresh") {
        cluster.propose(id(2), command.as_bytes());
    }
    cluster.stabilize();
    assert_eq!(cluster.node(id(1)).status().last_log.index, LogIndex(62));

    cluster.heal();
    cluster.run_for(100);
    let rejections = cluster.node(id(1)).counters().appends_rejected;
    assert!(rejections <= 2, "{rejections} rejected appends before the logs agreed");
    let mut expected = vec!["shared".to_string()];
    expected.extend(commands(10, "fresh"));
    assert_eq!(cluster.applied_commands(id(1)), expected);
}

/// Raft's Figure 8: an entry of an older term that reached a majority is not committed by
/// counting replicas, because a node that lacks it can still win an election and overwrite it.
#[test]
fn an_older_term_entry_on_a_majority_is_not_committed_by_counting() {
    let mut cluster = Cluster::with_config(5, |config| config.max_entries_per_append = 1);
    let (s1, s2, s3, s4, s5) = (id(1), id(2), id(3), id(4), id(5));
    let touches = |node: NodeId| move |m: &Message| m.to == node || m.from == node;
    cluster.elect(s1);
    // (a) S1 leads and replicates its index 2 to S2 only.
    let old = cluster.propose(s1, b"old-term entry");
    cluster.deliver_where(touches(s2));
    cluster.drop_where(|_| true);
    assert!(cluster.node(s2).term_at(old.index) == Some(old.term));
    // (b) S1 crashes; S5 wins a new term with S3 and S4 and writes its own entries, unseen.
    cluster.crash(s1);
    cluster.advance(1_000);
    cluster.isolate(s2);
    cluster.elect_without_replicating(s5);
    cluster.heal();
    cluster.propose(s5, b"s5 entry");
    cluster.drop_where(|_| true);
    cluster.crash(s5);
    // (c) S1 restarts and wins a later term; its index 2 reaches S3, so a majority holds it.
    cluster.restart(s1);
    cluster.advance(1_000);
    cluster.isolate(s4);
    cluster.elect_without_replicating(s1);
    let leader_term = cluster.node(s1).term();
    cluster.drop_where(|m| m.to != s2 && m.to != s3);
    // S2 holds index 2 already: probe and acknowledgement.
    for _ in 0..2 {
        assert!(cluster.deliver_first_where(touches(s2)));
    }
    // S3 does not: probe, rejection, the entry at index 2, its acknowledgement.
    for _ in 0..4 {
        assert!(cluster.deliver_first_where(touches(s3)));
    }
    for node in [s1, s2, s3] {
        assert_eq!(cluster.node(node).term_at(old.index), Some(old.term), "node {node}");
    }
    assert!(
        cluster.commit(s1) < old.index,
        "index 2 is on a majority but of term {}, not the leader's term {leader_term}",
        old.term
    );
    // (d) S1 crashes before its own term's entry spreads; S5 wins again and overwrites.
    cluster.drop_where(|_| true);
    cluster.crash(s1);
    cluster.heal();
    cluster.restart(s5);
    cluster.advance(1_000);
    cluster.elect(s5);
    cluster.restart(s1);
    cluster.run_for(1_000);
    for node in [s1, s2, s3, s4, s5] {
        assert_eq!(cluster.applied_commands(node), ["s5 entry"], "node {node}");
    }
}

#[test]
fn a_duplicated_or_reordered_append_never_shortens_the_log() {
    let mut cluster = Cluster::with_config(3, |config| config.max_entries_per_append = 1);
    cluster.elect(id(1));
    for command in commands(3, "d") {
        cluster.propose(id(1), command.as_bytes());
    }
    let to_two: Vec<Message> = cluster.network.iter().filter(|m| m.to == id(2)).cloned().collect();
    cluster.stabilize();
    let last = cluster.node(id(2)).status().last_log;
    for message in to_two.into_iter().rev() {
        cluster.handle(id(2), Input::Message(message));
    }
    assert_eq!(cluster.node(id(2)).status().last_log, last);
    cluster.run_for(100);
    assert_eq!(cluster.applied_commands(id(2)), commands(3, "d"));
}

#[test]
fn stale_and_misaddressed_messages_are_counted_and_dropped() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.advance(1_000);
    cluster.elect(id(2));
    let stale = Message {
        from: id(1),
        to: id(3),
        term: Term(1),
        body: Body::Append {
            prev: LogId::ZERO,
            entries: vec![],
            commit: LogIndex(0),
            read_round: 0,
            recovery: None,
            pipelined: false,
        },
    };
    cluster.handle(id(3), Input::Message(stale.clone()));
    assert_eq!(cluster.node(id(3)).counters().dropped_stale_term, 1);
    // A node outside the membership is heard like any other (a leader adding this node, a
    // candidate of a newer membership): its stale message is stale.
    let stranger = Message { from: NodeId(9), ..stale.clone() };
    cluster.handle(id(3), Input::Message(stranger));
    assert_eq!(cluster.node(id(3)).counters().dropped_stale_term, 2);
    let misrouted = Message { to: id(2), ..stale };
    cluster.handle(id(3), Input::Message(misrouted));
    assert_eq!(cluster.node(id(3)).counters().dropped_misaddressed, 1);
    let counters = cluster.node(id(3)).counters().to_string();
    assert!(counters.starts_with("misaddressed=1 stale=2 "), "{counters}");
    assert_eq!(cluster.leader(), Some(id(2)));
}

/// Review finding: one message with term 2^64-1 made `term.next()` wrap to 0 in a release
/// build, and every node looped between pre-candidate and follower at that term forever, also
/// after restarts. Terms and indexes beyond any reachable value are malformed.
#[test]
fn a_term_or_index_beyond_the_maximum_is_refused() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let heartbeat = |term: Term, prev: LogId, commit: LogIndex| Message {
        from: id(2),
        to: id(3),
        term,
        body: Body::Append {
            prev,
            entries: vec![],
            commit,
            read_round: 0,
            recovery: None,
            pipelined: false,
        },
    };
    let huge_index = LogIndex(u64::MAX);
    let forged = [
        heartbeat(Term(u64::MAX), LogId::ZERO, LogIndex(0)),
        heartbeat(Term(Term::MAX.0 + 1), LogId::ZERO, LogIndex(0)),
        heartbeat(Term(1), LogId::new(huge_index, Term(1)), LogIndex(0)),
        heartbeat(Term(1), LogId::ZERO, huge_index),
    ];
    for message in forged.iter().cloned() {
        cluster.handle(id(3), Input::Message(message));
    }
    assert_eq!(cluster.node(id(3)).counters().dropped_malformed, forged.len() as u64);
    assert_eq!(cluster.node(id(3)).term(), Term(1));
    cluster.run_for(2_000);
    assert_eq!(cluster.leader(), Some(id(1)), "nothing disturbed the leader");
    cluster.propose(id(1), b"after");
    cluster.run_for(100);
    assert_eq!(cluster.applied_commands(id(3)), ["after"]);
}

#[test]
fn a_node_at_the_last_valid_term_stays_a_follower_instead_of_wrapping() {
    let config = raftkv_core::raft::Config::new(id(1), [id(1), id(2), id(3)]);
    let hard_state = raftkv_core::raft::HardState { term: Term::MAX, ..Default::default() };
    let recovered = Recovered { hard_state, ..Recovered::default() };
    let mut node = RaftNode::new(Instant::ZERO, config.clone(), recovered).expect("starts");
    let later = Instant::from_millis(10_000);
    node.handle(later, Input::Timeout);
    assert!(
        std::iter::from_fn(|| node.poll_output())
            .all(|output| !matches!(output, raftkv_core::raft::Output::Send(_)))
    );
    assert_eq!((node.role(), node.term()), (Role::Follower, Term::MAX));
    let beyond = raftkv_core::raft::HardState { term: Term(Term::MAX.0 + 1), ..Default::default() };
    let refused = RaftNode::new(
        Instant::ZERO,
        config,
        Recovered { hard_state: beyond, ..Recovered::default() },
    );
    assert_eq!(refused.err(), Some(raftkv_core::raft::StartError::BeyondMaximum));
}

/// Total over its inputs: thousands of arbitrary messages and acknowledgements never panic a
/// node, and whatever they do, it stays consistent with a majority that ignores them.
#[test]
fn random_garbage_never_panics_a_node() {
    let mut rng = Prng::seeded(42);
    let config = raftkv_core::raft::Config::new(id(1), [id(1), id(2), id(3)]);
    let mut node = RaftNode::new(Instant::ZERO, config, Recovered::default()).expect("starts");
    let mut now = Instant::ZERO;
    for _ in 0..20_000 {
        now = now + Duration::from_millis(rng.range_inclusive(0, 50));
        let small = |rng: &mut Prng| rng.range_inclusive(0, 6);
        let input = match rng.range_inclusive(0, 9) {
            0 => Input::Timeout,
            1 => Input::Persisted { id: raftkv_core::raft::PersistId(small(&mut rng)) },
            kind => Input::Message(Message {
                from: NodeId(rng.range_inclusive(0, 4)),
                to: NodeId(rng.range_inclusive(0, 2)),
                term: Term(match rng.range_inclusive(0, 40) {
                    0 => u64::MAX,
                    _ => small(&mut rng),
                }),
                body: random_body(&mut rng, kind),
            }),
        };
        node.handle(now, input);
        while node.poll_output().is_some() {}
        if rng.chance(1, 20) && node.role() == Role::Leader {
            node.propose(now, vec![1, 2, 3]).expect("leads");
        }
    }
}

fn random_body(rng: &mut Prng, kind: u64) -> Body {
    // Now and then a value at or beyond the largest valid one.
    let mut small = || match rng.range_inclusive(0, 40) {
        0 => u64::MAX,
        1 => Term::MAX.0 + 1,
        _ => rng.range_inclusive(0, 6),
    };
    let last = LogId::new(LogIndex(small()), Term(small()));
    match kind {
        2 => Body::PreVote { last, round: small() },
        3 => Body::Vote { last, transfer: small() % 2 == 0 },
        9 => Body::TimeoutNow,
        4 => Body::PreVoteReply { granted: small() % 2 == 0, round: small() },
        5 => Body::VoteReply { granted: small() % 2 == 0 },
        6 => Body::AppendReply {
            read_round: small(),
            outcome: AppendOutcome::Accepted { match_index: LogIndex(small()) },
            recovering: (small() % 3 == 0).then(&mut small),
        },
        7 => Body::AppendReply {
            read_round: small(),
            outcome: AppendOutcome::Rejected {
                prev_index: LogIndex(small()),
                hint: ConflictHint {
                    term: (small() % 2 == 0).then(|| Term(small())),
                    first_index: LogIndex(small()),
                },
            },
            recovering: None,
        },
        _ => {
            let count = small().min(6);
            let first = small();
            let entries = (0..count)
                .map(|i| Entry {
                    index: LogIndex(first.wrapping_add(i)),
                    term: Term(small()),
                    payload: Payload::Noop,
                })
                .collect();
            let recovery = (small() % 3 == 0).then(|| raftkv_core::raft::RecoveryTarget {
                nonce: small(),
                commit: LogIndex(small()),
            });
            Body::Append {
                prev: last,
                entries,
                commit: LogIndex(small()),
                read_round: small(),
                recovery,
                pipelined: small() % 2 == 0,
            }
        }
    }
}

/// What no correct peer sends in the receiver's term, each counted and dropped: an append to
/// the term's leader, answers to a node that does not lead, a hand-over from a node that does
/// not lead, an append overwriting a committed entry.
#[test]
fn messages_out_of_place_in_the_term_are_counted_and_dropped() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.propose(id(1), b"x");
    cluster.run_for(100);
    let term = cluster.node(id(1)).term();
    let commit = cluster.node(id(2)).status().commit;
    let send = |cluster: &mut Cluster, from: NodeId, to: NodeId, body: Body| {
        cluster.handle(to, Input::Message(Message { from, to, term, body }));
    };
    let unexpected = |cluster: &Cluster, node| cluster.node(node).counters().dropped_unexpected;
    let (before_1, before_2) = (unexpected(&cluster, id(1)), unexpected(&cluster, id(2)));
    let heartbeat = Body::Append {
        prev: LogId::ZERO,
        entries: vec![],
        commit: LogIndex(0),
        read_round: 0,
        recovery: None,
        pipelined: false,
    };
    send(&mut cluster, id(2), id(1), heartbeat);
    assert_eq!(unexpected(&cluster, id(1)), before_1 + 1, "an append to the leader");
    let accepted = AppendOutcome::Accepted { match_index: LogIndex(1) };
    let reply = Body::AppendReply { read_round: 0, outcome: accepted, recovering: None };
    send(&mut cluster, id(1), id(2), reply);
    let snapshot_reply = Body::InstallSnapshotReply { last: LogId::ZERO, received: 0 };
    send(&mut cluster, id(1), id(2), snapshot_reply);
    send(&mut cluster, id(3), id(2), Body::TimeoutNow);
    assert_eq!(unexpected(&cluster, id(2)), before_2 + 3, "answers and a hand-over");
    assert_eq!(cluster.node(id(2)).role(), Role::Follower);
    // A rewrite of node 2's committed entry is answered with what is committed, untouched.
    let rewrite = Body::Append {
        prev: LogId::new(commit.prev(), cluster.node(id(2)).term_at(commit.prev()).expect("held")),
        entries: vec![Entry { index: commit, term, payload: Payload::Command(b"other".to_vec()) }],
        commit,
        read_round: 0,
        recovery: None,
        pipelined: false,
    };
    send(&mut cluster, id(1), id(2), rewrite);
    let held = cluster.node(id(2)).entry(commit).map(|entry| entry.payload.clone());
    assert_eq!(held, Some(Payload::Command(b"x".to_vec())));
    assert_eq!(cluster.applied_commands(id(2)), ["x"]);
}

/// A read asked of a new leader before it has committed an entry of its term waits for that
/// commit (its commit index may lag behind what earlier leaders committed), then is answered.
#[test]
fn a_read_before_the_new_leaders_first_commit_waits_for_it() {
    let mut cluster = Cluster::new(3);
    cluster.elect_without_replicating(id(1));
    let now = cluster.now;
    cluster.node_mut(id(1)).read_index(now, 7).expect("leads");
    cluster.drain(id(1));
    assert!(cluster.slot(id(1)).reads_ready.is_empty());
    cluster.stabilize();
    let commit = cluster.commit(id(1));
    assert_eq!(cluster.slot(id(1)).reads_ready, [(7, commit)], "after the no-op commits");
}

/// A node that learns of a new leader and of entries it committed from one message reports
/// its role change before it hands those entries out to apply: a deposed leader must abandon
/// its pending proposals before a later leader's entry at their index is applied.
#[test]
fn a_role_change_is_reported_before_the_entries_it_let_commit() {
    let config = raftkv_core::raft::Config::new(id(1), [id(1), id(2), id(3)]);
    let mut node = RaftNode::new(Instant::ZERO, config, Recovered::default()).expect("starts");
    while node.poll_output().is_some() {}
    let entry = |index, payload| Entry { index: LogIndex(index), term: Term(2), payload };
    let body = Body::Append {
        prev: LogId::ZERO,
        entries: vec![entry(1, Payload::Noop), entry(2, Payload::Command(b"x".to_vec()))],
        commit: LogIndex(2),
        read_round: 0,
        recovery: None,
        pipelined: false,
    };
    let now = Instant::from_millis(1);
    node.handle(now, Input::Message(Message { from: id(2), to: id(1), term: Term(2), body }));
    let order: Vec<&str> = std::iter::from_fn(|| node.poll_output())
        .filter_map(|output| match output {
            raftkv_core::raft::Output::RoleChanged { .. } => Some("role"),
            raftkv_core::raft::Output::Apply(_) => Some("apply"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["role", "apply"]);
}
