//! The messages Raft nodes exchange, with a one-line `Display` for traces and transcripts.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{LogId, LogIndex, NodeId, Term};
use crate::raft::entry::{Entry, Payload};
use crate::raft::membership::Membership;

/// One message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's term; for `PreVote` and a granted `PreVoteReply`, the term the sender
    /// would campaign in (its own term plus one), which it has not adopted.
    pub term: Term,
    /// What the message says.
    pub body: Body,
}

/// The kinds of messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Would you vote for me if I campaigned? Changes no state at the receiver (thesis §9.6).
    PreVote {
        /// The last entry of the sender's log.
        last: LogId,
        /// Names this round of pre-votes (drawn at random), so that a late grant from an
        /// earlier round, of this life or an earlier one of the sender, is not counted.
        round: u64,
    },
    /// Answer to `PreVote`.
    PreVoteReply {
        /// Whether the receiver would vote.
        granted: bool,
        /// The `round` of the `PreVote` answered.
        round: u64,
    },
    /// Vote for me in this term.
    Vote {
        /// The last entry of the sender's log.
        last: LogId,
        /// The leader handed over to the sender: grant even if the leader was heard recently.
        transfer: bool,
    },
    /// Answer to `Vote`. A grant is only sent once the vote is durable.
    VoteReply {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Append `entries` after `prev`; with no entries, a heartbeat.
    Append {
        /// The entry just before the first one carried; the receiver must hold it.
        prev: LogId,
        /// Entries to append, consecutive from `prev.index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
        /// The leader's latest read round; echoed in the reply to confirm leadership for
        /// reads (ReadIndex, thesis §6.4). Zero until the first read.
        read_round: u64,
        /// For a damaged follower: the commit index it must reach to be caught up.
        recovery: Option<RecoveryTarget>,
        /// Sent behind earlier appends still in flight: a follower whose log ends before
        /// `prev` may hold it until they land (the network reordered them) instead of
        /// rejecting it, which would send the leader back to probing.
        pipelined: bool,
    },
    /// The leader hands its leadership over: campaign now.
    TimeoutNow,
    /// A chunk of the leader's snapshot, for a follower that needs entries the leader has
    /// compacted. Chunks are sent in order, a few in flight; the follower installs the
    /// snapshot once it holds all `total` bytes.
    InstallSnapshot {
        /// The last entry the snapshot covers.
        last: LogId,
        /// The membership in force at `last` (in every chunk: it is small, and the follower
        /// needs it whichever chunk completes the snapshot).
        membership: Membership,
        /// Size of the whole snapshot.
        total: u64,
        /// Where this chunk starts.
        offset: u64,
        /// The bytes from `offset` on.
        #[serde(with = "crate::bytes")]
        chunk: Vec<u8>,
    },
    /// Answer to `InstallSnapshot`: how much of the snapshot `last` the follower holds, from the
    /// start without gaps (installation itself is acknowledged with an `AppendReply`).
    InstallSnapshotReply {
        /// The snapshot answered about.
        last: LogId,
        /// Bytes received so far.
        received: u64,
    },
    /// Answer to `Append`.
    AppendReply {
        /// The `read_round` of the `Append` answered.
        read_round: u64,
        /// Whether the entries were appended.
        outcome: AppendOutcome,
        /// A damaged follower's name for its recovery (drawn at random when it started): it
        /// has not caught up, so its acknowledgements count toward no commit, no read and no
        /// check-quorum, and the leader owes it a [`RecoveryTarget`].
        recovering: Option<u64>,
    },
}

/// What a damaged follower must hold to be caught up: the leader's commit index, an entry of
/// the leader's own term, as the leader knew it after it heard from the follower under
/// `nonce` and confirmed with a majority of sound voters that it still led. Every entry the
/// follower may once have helped commit is at or below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryTarget {
    /// The follower's name for its recovery, echoed.
    pub nonce: u64,
    /// The commit index to reach.
    pub commit: LogIndex,
}

/// Why a message can never be valid, whatever the receiver's state: only a broken or hostile
/// peer sends one. It is counted and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A term beyond [`Term::MAX`].
    Term,
    /// An index beyond [`LogIndex::MAX`].
    Index,
    /// Entries that do not follow `prev` one by one, or whose terms go back.
    Entries,
    /// Entries or a snapshot of a term later than the message's own: no leader has them yet.
    LaterTerm,
    /// A snapshot chunk that does not lie within the snapshot's announced size.
    SnapshotChunk,
    /// A membership (in an entry or a snapshot) that cannot be used (`Membership::validate`).
    Membership,
    /// A node's message to itself.
    ToItself,
}

impl Message {
    /// Checks what can be checked without the receiver's state: terms and indexes within
    /// their maxima, entries that form a log, snapshot chunks within their snapshot.
    pub fn validate(&self) -> Result<(), Malformed> {
        if self.from == self.to {
            return Err(Malformed::ToItself);
        }
        if self.term > Term::MAX {
            return Err(Malformed::Term);
        }
        let valid_index = |index: LogIndex| index <= LogIndex::MAX;
        match &self.body {
            Body::PreVote { last, .. } | Body::Vote { last, .. } => {
                if !last.is_valid() {
                    return Err(Malformed::Index);
                }
            }
            Body::Append { prev, entries, commit, recovery, .. } => {
                let target = recovery.map_or(LogIndex(0), |target| target.commit);
                if !prev.is_valid() || !valid_index(*commit) || !valid_index(target) {
                    return Err(Malformed::Index);
                }
                let mut expected = *prev;
                for entry in entries {
                    if entry.index != expected.index.next() || entry.term < expected.term {
                        return Err(Malformed::Entries);
                    }
                    expected = entry.id();
                }
                if !expected.is_valid() {
                    return Err(Malformed::Index);
                }
                if expected.term > self.term {
                    return Err(Malformed::LaterTerm);
                }
                let memberships = entries.iter().filter_map(|entry| match &entry.payload {
                    Payload::Membership(membership) => Some(membership),
                    Payload::Noop | Payload::Command(_) => None,
                });
                for membership in memberships {
                    membership.validate().map_err(|_| Malformed::Membership)?;
                }
            }
            Body::InstallSnapshot { last, membership, total, offset, chunk } => {
                if !last.is_valid() {
                    return Err(Malformed::Index);
                }
                membership.validate().map_err(|_| Malformed::Membership)?;
                if last.term > self.term {
                    return Err(Malformed::LaterTerm);
                }
                let end = offset.checked_add(chunk.len() as u64);
                if end.is_none_or(|end| end > *total) {
                    return Err(Malformed::SnapshotChunk);
                }
            }
            Body::InstallSnapshotReply { last, .. } => {
                if !last.is_valid() {
                    return Err(Malformed::Index);
                }
            }
            Body::AppendReply { outcome, .. } => {
                let index = match outcome {
                    AppendOutcome::Accepted { match_index } => *match_index,
                    AppendOutcome::Rejected { prev_index, hint } => {
                        if hint.term.is_some_and(|term| term > Term::MAX) {
                            return Err(Malformed::Term);
                        }
                        (*prev_index).max(hint.first_index)
                    }
                };
                if !valid_index(index) {
                    return Err(Malformed::Index);
                }
            }
            Body::PreVoteReply { .. } | Body::VoteReply { .. } | Body::TimeoutNow => {}
        }
        Ok(())
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::Term => "a term beyond the largest valid one",
            Malformed::Index => "an index beyond the largest valid one",
            Malformed::Entries => "entries that do not form a log after their predecessor",
            Malformed::LaterTerm => "entries or a snapshot of a term later than the sender's",
            Malformed::SnapshotChunk => "a snapshot chunk outside its snapshot",
            Malformed::Membership => {
                "an unusable membership (no voters, a node listed twice, lists out of order)"
            }
            Malformed::ToItself => "a message from a node to itself",
        })
    }
}

/// The result of an `Append` at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log matches the leader's up to `match_index`, durably: this reply is
    /// only sent once the entries are persisted.
    Accepted {
        /// Last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The follower holds no entry matching `prev`.
    Rejected {
        /// The `prev.index` of the rejected message, so that stale rejections can be told apart.
        prev_index: LogIndex,
        /// Where the leader should look for the point where the logs agree.
        hint: ConflictHint,
    },
}

/// Fast log backtracking (Raft §5.3, the optimization at its end): one round trip skips a
/// whole term of conflicting entries instead of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHint {
    /// The term of the follower's entry at `prev_index`, or `None` when its log is shorter.
    pub term: Option<Term>,
    /// The first index of that term in the follower's log, or, when its log is shorter, the
    /// index after its last entry.
    pub first_index: LogIndex,
}

impl fmt::Display for Message {
    /// For example `1->2 Append t=3 prev=7/2 n=4 commit=6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} ", self.from, self.to)?;
        let term = self.term;
        match &self.body {
            Body::PreVote { last, .. } => write!(f, "PreVote t={term} last={last}"),
            Body::PreVoteReply { granted, .. } => {
                write!(f, "PreVoteReply t={term} {}", grant_word(*granted))
            }
            Body::Vote { last, transfer } => {
                write!(f, "Vote t={term} last={last}{}", if *transfer { " transfer" } else { "" })
            }
            Body::TimeoutNow => write!(f, "TimeoutNow t={term}"),
            Body::VoteReply { granted } => write!(f, "VoteReply t={term} {}", grant_word(*granted)),
            Body::Append { prev, entries, commit, read_round, recovery, .. } => {
                write!(f, "Append t={term} prev={prev} n={} commit={commit}", entries.len())?;
                write_read_round(f, *read_round)?;
                match recovery {
                    Some(target) => write!(f, " recovery={}", target.commit),
                    None => Ok(()),
                }
            }
            Body::InstallSnapshot { last, total, offset, chunk, .. } => {
                let end = offset.saturating_add(chunk.len() as u64);
                write!(f, "InstallSnapshot t={term} last={last} bytes={offset}..{end}/{total}")
            }
            Body::InstallSnapshotReply { last, received } => {
                write!(f, "InstallSnapshotReply t={term} last={last} received={received}")
            }
            Body::AppendReply { read_round, outcome, recovering } => {
                write!(f, "AppendReply t={term} ")?;
                match outcome {
                    AppendOutcome::Accepted { match_index } => write!(f, "ok match={match_index}")?,
                    AppendOutcome::Rejected { prev_index, hint } => {
                        write!(f, "reject prev={prev_index} hint=")?;
                        match hint.term {
                            Some(term) => write!(f, "{}/{term}", hint.first_index)?,
                            None => write!(f, "end {}", hint.first_index)?,
                        }
                    }
                }
                write_read_round(f, *read_round)?;
                if recovering.is_some() { write!(f, " recovering") } else { Ok(()) }
            }
        }
    }
}

fn grant_word(granted: bool) -> &'static str {
    if granted { "granted" } else { "rejected" }
}

fn write_read_round(f: &mut fmt::Formatter<'_>, read_round: u64) -> fmt::Result {
    if read_round > 0 { write!(f, " read={read_round}") } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(term: Term, prev: LogId, commit: LogIndex) -> Message {
        let body = Body::Append {
            prev,
            entries: Vec::new(),
            commit,
            read_round: 0,
            recovery: None,
            pipelined: false,
        };
        Message { from: NodeId(1), to: NodeId(2), term, body }
    }

    fn rejection(term: Option<Term>, first_index: LogIndex) -> Message {
        let outcome = AppendOutcome::Rejected {
            prev_index: LogIndex(1),
            hint: ConflictHint { term, first_index },
        };
        let body = Body::AppendReply { read_round: 0, outcome, recovering: None };
        Message { from: NodeId(2), to: NodeId(1), term: Term(1), body }
    }

    #[test]
    fn the_largest_valid_term_and_index_are_valid_and_one_more_is_not() {
        let max = LogId::new(LogIndex::MAX, Term::MAX);
        assert_eq!(heartbeat(Term::MAX, max, LogIndex::MAX).validate(), Ok(()));
        let beyond = Term(Term::MAX.0 + 1);
        assert_eq!(heartbeat(beyond, LogId::ZERO, LogIndex(0)).validate(), Err(Malformed::Term));
        let past = LogIndex(LogIndex::MAX.0 + 1);
        assert_eq!(heartbeat(Term(1), LogId::ZERO, past).validate(), Err(Malformed::Index));
        assert_eq!(rejection(Some(Term::MAX), LogIndex::MAX).validate(), Ok(()));
        assert_eq!(rejection(Some(beyond), LogIndex(1)).validate(), Err(Malformed::Term));
        assert_eq!(rejection(None, past).validate(), Err(Malformed::Index));
    }

    #[test]
    fn every_kind_of_malformed_message_says_what_is_wrong() {
        let kinds = [
            Malformed::Term,
            Malformed::Index,
            Malformed::Entries,
            Malformed::LaterTerm,
            Malformed::SnapshotChunk,
            Malformed::Membership,
            Malformed::ToItself,
        ];
        let texts: Vec<String> = kinds.iter().map(ToString::to_string).collect();
        for (kind, text) in kinds.iter().zip(&texts) {
            assert!(text.len() > 10, "{kind:?}: {text:?}");
        }
        let mut distinct = texts.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), texts.len(), "each kind reads differently");
    }
}
