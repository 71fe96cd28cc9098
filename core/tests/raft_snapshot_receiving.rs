//! A follower writes the chunks of a leader's snapshot to its disk as they come (each in a
//! persist) and answers for them once durable; whole, it asks for the snapshot back; damaged,
//! it receives it again. What the network sends that continues nothing is refused and counted.

mod cluster;

use cluster::id;
use raftkv_core::raft::{
    Body, Config, HardState, Input, Membership, Message, Output, PartialSnapshot, RaftNode,
    Recovered, Role, SavedSnapshot,
};
use raftkv_core::{Instant, LogId, LogIndex, Term};

const LAST: LogId = LogId { index: LogIndex(9), term: Term(2) };

fn follower(partial_snapshot: Option<PartialSnapshot>) -> RaftNode {
    let recovered = Recovered {
        hard_state: HardState { term: Term(2), ..HardState::default() },
        partial_snapshot,
        ..Recovered::default()
    };
    let config = Config::new(id(2), [id(1), id(2), id(3)]);
    RaftNode::new(Instant::ZERO, config, recovered).expect("it starts")
}

fn drain(node: &mut RaftNode) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn chunk(offset: u64, bytes: &[u8]) -> Input {
    let membership = Membership::with_voters([id(1), id(2), id(3)]);
    let chunk = bytes.to_vec();
    let body = Body::InstallSnapshot { last: LAST, membership, total: 4, offset, chunk };
    Input::Message(Message { from: id(1), to: id(2), term: Term(2), body })
}

/// The answers to the leader among `outputs`: the bytes the follower says it holds.
fn answers(outputs: &[Output]) -> Vec<u64> {
    let answer = |output: &Output| match output {
        Output::Send(Message { body: Body::InstallSnapshotReply { received, .. }, .. }) => {
            Some(*received)
        }
        _ => None,
    };
    outputs.iter().filter_map(answer).collect()
}

#[test]
fn chunks_are_answered_once_durable_and_the_whole_snapshot_is_asked_for_then_installed() {
    let mut node = follower(None);
    drain(&mut node);
    node.handle(Instant::ZERO, chunk(0, b"ab"));
    let outputs = drain(&mut node);
    assert_eq!(answers(&outputs), Vec::<u64>::new(), "held until durable");
    let Some(Output::Persist(persist)) = outputs.iter().find(|o| matches!(o, Output::Persist(_)))
    else {
        panic!("the chunk goes to the disk: {outputs:?}")
    };
    let written = persist.snapshot_chunk.as_ref().expect("a chunk");
    assert_eq!((written.offset, &written.data[..]), (0, &b"ab"[..]));
    node.handle(Instant::ZERO, Input::Persisted { id: persist.id });
    assert_eq!(answers(&drain(&mut node)), [2]);
    node.handle(Instant::ZERO, chunk(2, b"cd"));
    let outputs = drain(&mut node);
    let persist = outputs.iter().find_map(|o| match o {
        Output::Persist(persist) => Some(persist.id),
        _ => None,
    });
    assert!(!outputs.iter().any(|o| matches!(o, Output::LoadSnapshot(_))), "not durable yet");
    node.handle(Instant::ZERO, Input::Persisted { id: persist.expect("the last chunk") });
    let outputs = drain(&mut node);
    assert_eq!(answers(&outputs), [4]);
    let whole = PartialSnapshot { last: LAST, total: 4, received: 4 };
    assert!(outputs.contains(&Output::LoadSnapshot(whole)), "{outputs:?}");
    let membership = Membership::with_voters([id(1), id(2), id(3)]);
    let snapshot = SavedSnapshot { last: LAST, membership, bytes: 4 };
    node.handle(Instant::ZERO, Input::SnapshotLoaded { snapshot: snapshot.clone() });
    let outputs = drain(&mut node);
    assert!(outputs.contains(&Output::RestoreSnapshot(snapshot.clone())), "{outputs:?}");
    // Installed from where the driver received it: the data never passes through the node.
    let installs = outputs.iter().find_map(|o| match o {
        Output::Persist(persist) => persist.install_received.clone(),
        _ => None,
    });
    assert_eq!(installs, Some(snapshot));
    assert_eq!(node.counters().snapshots_installed, 1);
    assert_eq!(node.snapshot_receiving(), None);
    assert_eq!(node.snapshot_bytes(), 4, "sent to followers from the driver's disk");
}

#[test]
fn a_restarted_follower_answers_with_the_bytes_on_its_disk() {
    let mut node = follower(Some(PartialSnapshot { last: LAST, total: 4, received: 3 }));
    drain(&mut node);
    // The leader starts from the first byte, not knowing: the answer says where to go on.
    node.handle(Instant::ZERO, chunk(0, b"ab"));
    let outputs = drain(&mut node);
    assert_eq!(answers(&outputs), [3]);
    assert!(!outputs.iter().any(|o| matches!(o, Output::Persist(_))), "nothing new to write");
    // A chunk that overlaps what is held writes only its new bytes.
    node.handle(Instant::ZERO, chunk(2, b"cd"));
    let written = drain(&mut node).into_iter().find_map(|o| match o {
        Output::Persist(persist) => persist.snapshot_chunk,
        _ => None,
    });
    let written = written.expect("the last byte is written");
    assert_eq!((written.offset, &written.data[..]), (3, &b"d"[..]));
}

#[test]
fn a_whole_snapshot_found_damaged_is_received_again_and_stray_chunks_are_refused() {
    let whole = PartialSnapshot { last: LAST, total: 4, received: 4 };
    let mut node = follower(Some(whole));
    assert!(drain(&mut node).contains(&Output::LoadSnapshot(whole)), "asked for at the start");
    // An answer about another snapshot is not this one's.
    let other = LogId { index: LogIndex(8), term: Term(2) };
    node.handle(Instant::ZERO, Input::SnapshotDamaged { last: other });
    assert_eq!(node.counters().dropped_unexpected, 1);
    node.handle(Instant::ZERO, Input::SnapshotDamaged { last: LAST });
    assert_eq!(node.counters().received_snapshots_damaged, 1);
    assert_eq!(node.snapshot_receiving(), None);
    // The leader's next chunk continues nothing now: refused, and the answer says so.
    node.handle(Instant::ZERO, chunk(2, b"cd"));
    assert_eq!(answers(&drain(&mut node)), [0]);
    assert_eq!(node.counters().snapshot_chunks_refused, 1);
    // A chunk past the snapshot's end is malformed: dropped before anything else.
    node.handle(Instant::ZERO, chunk(3, b"cd"));
    assert_eq!(node.counters().dropped_malformed, 1);
    // A late load of the snapshot dropped installs nothing.
    let membership = Membership::with_voters([id(1), id(2), id(3)]);
    let snapshot = SavedSnapshot { last: LAST, membership, bytes: 4 };
    node.handle(Instant::ZERO, Input::SnapshotLoaded { snapshot });
    assert_eq!(node.counters().snapshots_installed, 0);
    assert_eq!(node.counters().dropped_unexpected, 2);
}

/// Found in review: the snapshot is read back while the node may start a campaign; installed
/// then, its membership (which removed this node) replaced the one the campaign counted votes
/// under, and the node went on campaigning where it may not.
#[test]
fn a_snapshot_loaded_during_a_campaign_ends_the_campaign_before_it_installs() {
    let mut node = follower(None);
    drain(&mut node);
    let without_me = Membership::with_voters([id(1), id(3)]);
    let body = Body::InstallSnapshot {
        last: LAST,
        membership: without_me.clone(),
        total: 4,
        offset: 0,
        chunk: b"abcd".to_vec(),
    };
    node.handle(
        Instant::ZERO,
        Input::Message(Message { from: id(1), to: id(2), term: Term(2), body }),
    );
    let persist = drain(&mut node).into_iter().find_map(|o| match o {
        Output::Persist(persist) => Some(persist.id),
        _ => None,
    });
    node.handle(Instant::ZERO, Input::Persisted { id: persist.expect("the chunk") });
    assert!(drain(&mut node).iter().any(|o| matches!(o, Output::LoadSnapshot(_))));
    // The leader goes quiet while the driver reads the snapshot back: the node campaigns.
    let timeout = node.poll_timeout().expect("an election timer");
    node.handle(timeout, Input::Timeout);
    assert!(matches!(node.role(), Role::PreCandidate | Role::Candidate), "{:?}", node.role());
    let snapshot = SavedSnapshot { last: LAST, membership: without_me, bytes: 4 };
    node.handle(timeout, Input::SnapshotLoaded { snapshot });
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.counters().snapshots_installed, 1);
    node.check_invariants();
}
