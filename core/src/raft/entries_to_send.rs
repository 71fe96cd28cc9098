//! An append to a follower whose entries are no longer in the node's memory: the driver reads
//! them from its log on disk and sends the message (see `Config::log_cache_bytes`).

use core::fmt;

use crate::ids::{LogId, LogIndex, NodeId, Term};
use crate::raft::entry::Entry;
use crate::raft::message::{Body, Message, RecoveryTarget};

/// An `Append` message whose entries, `first..=last.index`, the driver reads from the log it
/// made durable. They are committed and applied, or left on the disk at a restart and kept by
/// the leader's log, which never truncates: a copy that ends at `last` is theirs; the
/// driver must send exactly them, checked (consecutive, ending at `last` with its term), or
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntriesToSend {
    /// The sender, this node.
    pub from: NodeId,
    /// The follower.
    pub to: NodeId,
    /// The sender's term.
    pub term: Term,
    /// The entry before the first one to send.
    pub prev: LogId,
    /// The last entry to send: the driver checks that the entry it read there has this term.
    pub last: LogId,
    /// The leader's commit index.
    pub commit: LogIndex,
    /// The leader's read round (see `Body::Append`).
    pub read_round: u64,
    /// For a damaged follower: the commit index it must reach.
    pub recovery: Option<RecoveryTarget>,
    /// Sent behind earlier appends still in flight.
    pub pipelined: bool,
}

impl EntriesToSend {
    /// The first index to send.
    pub fn first(&self) -> LogIndex {
        self.prev.index.next()
    }

    /// Whether `entries` are the ones asked for: consecutive from `first()`, the last one at
    /// `last` with its term, terms never going back from `prev`'s.
    pub fn matches(&self, entries: &[Entry]) -> bool {
        entries.first().is_some_and(|first| first.term >= self.prev.term)
            && Entry::is_run(entries, self.first(), self.last)
    }

    /// The message, with `entries`, which the driver read from its disk and checked
    /// ([`matches`](Self::matches)).
    pub fn into_message(self, entries: Vec<Entry>) -> Message {
        let EntriesToSend { from, to, term, prev, commit, read_round, recovery, pipelined, .. } =
            self;
        let body = Body::Append { prev, entries, commit, read_round, recovery, pipelined };
        Message { from, to, term, body }
    }
}

impl fmt::Display for EntriesToSend {
    /// For example `1->3 Append t=2 prev=40/2 entries=41..=80 (from disk)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} Append t={} prev={} entries={}..={} (from disk)",
            self.from,
            self.to,
            self.term,
            self.prev,
            self.first(),
            self.last.index
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::entry::Payload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Noop }
    }

    #[test]
    fn only_the_entries_asked_for_match() {
        let asked = EntriesToSend {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            prev: LogId::new(LogIndex(4), Term(1)),
            last: LogId::new(LogIndex(6), Term(2)),
            commit: LogIndex(9),
            read_round: 0,
            recovery: None,
            pipelined: false,
        };
        assert!(asked.matches(&[entry(5, 1), entry(6, 2)]));
        assert!(!asked.matches(&[entry(5, 1), entry(6, 1)]), "another term at the end");
        assert!(!asked.matches(&[entry(5, 1)]), "one short");
        assert!(!asked.matches(&[entry(6, 2)]), "not from the first");
        assert!(!asked.matches(&[]));
        assert_eq!(asked.to_string(), "1->2 Append t=3 prev=4/1 entries=5..=6 (from disk)");
        let message = asked.into_message(vec![entry(5, 1), entry(6, 2)]);
        assert!(matches!(message.body, Body::Append { commit: LogIndex(9), .. }));
    }
}
