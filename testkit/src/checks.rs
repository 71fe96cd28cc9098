//! What the cluster harness holds every node to, from outside: promises it sends match its
//! disk, and no two nodes apply different entries at one index.

use std::collections::BTreeMap;

use raftkv_core::raft::{AppendOutcome, Body, Entry, HardState, Message, RaftNode};
use raftkv_core::{LogIndex, NodeId};

use crate::durable::Durable;

/// A vote grant or an append acknowledgement must describe what is already on the sender's
/// disk; a vote request and a leader's messages rely on a term and a vote that must be, too.
pub(crate) fn check_promise(message: &Message, disk: &Durable, raft: &RaftNode) {
    match &message.body {
        Body::Vote { .. } => assert_eq!(
            disk.hard_state,
            HardState { term: message.term, vote: Some(message.from), damaged: false },
            "{message} sent before the candidate's term and vote were durable"
        ),
        Body::Append { .. } | Body::InstallSnapshot { .. } | Body::TimeoutNow => assert!(
            disk.hard_state.term >= message.term,
            "{message} sent before the leader's term was durable"
        ),
        Body::VoteReply { granted: true } => assert_eq!(
            disk.hard_state,
            HardState { term: message.term, vote: Some(message.to), damaged: false },
            "{message} sent before the vote was durable"
        ),
        Body::AppendReply { outcome: AppendOutcome::Accepted { match_index }, .. } => {
            assert!(disk.hard_state.term >= message.term, "{message} before its term");
            let durable = disk.last_index();
            assert!(durable >= *match_index, "{message} but only {durable} durable");
            // Entries the node compacted since (a replica took a snapshot that is on its way
            // to the disk) are the snapshot's now.
            assert!(
                disk.entries
                    .iter()
                    .filter(|entry| entry.index <= *match_index)
                    .all(|entry| raft.term_at(entry.index).is_none_or(|term| term == entry.term)),
                "{message} promises entries that differ from the durable ones"
            );
        }
        _ => {}
    }
}

/// State machine safety: no two nodes, and no node across restarts, apply different entries
/// at one index (`applied` holds what each node applied so far).
pub(crate) fn check_same_everywhere<'a>(
    node: NodeId,
    entry: &Entry,
    applied: impl IntoIterator<Item = &'a BTreeMap<LogIndex, Entry>>,
) {
    for applied in applied {
        if let Some(earlier) = applied.get(&entry.index) {
            assert_eq!(earlier, entry, "node {node} applies {entry} where {earlier} was applied");
        }
    }
}
