//! Log entries.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{LogId, LogIndex, Term};
use crate::raft::membership::Membership;

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log.
    pub index: LogIndex,
    /// Term of the leader that created it.
    pub term: Term,
    /// What the entry carries.
    pub payload: Payload,
}

/// What an entry carries. Raft does not look inside commands: they are bytes that the
/// replica's state machine decodes once they are committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader, so that it can commit the entries of earlier terms
    /// (they are only ever committed indirectly, Raft §5.4.2).
    Noop,
    /// An opaque command for the state machine.
    Command(#[serde(with = "crate::bytes")] Vec<u8>),
    /// The cluster's membership from this entry on: nodes use it as soon as they append it.
    /// (Last, so that entries written before it existed decode as they did.)
    Membership(Membership),
}

impl Entry {
    /// The entry's position and term.
    pub fn id(&self) -> LogId {
        LogId::new(self.index, self.term)
    }

    /// Whether `entries`, read back from a log by index, are its run `first..=last.index`:
    /// consecutive from `first`, their terms never going back, the last one `last`. What a
    /// driver checks of the entries it reads back for a node (`EntriesToSend::matches`,
    /// `EntriesToLoad::matches`).
    pub fn is_run(entries: &[Entry], first: LogIndex, last: LogId) -> bool {
        let consecutive = entries
            .windows(2)
            .all(|pair| pair[1].index == pair[0].index.next() && pair[1].term >= pair[0].term);
        consecutive
            && entries.first().is_some_and(|entry| entry.index == first)
            && entries.last().is_some_and(|entry| entry.id() == last)
    }

    /// Bytes this entry weighs in messages and on disk, for batching limits.
    #[inline]
    pub fn size_bytes(&self) -> usize {
        const HEADER_BYTES: usize = 24;
        HEADER_BYTES
            + match &self.payload {
                Payload::Noop => 0,
                Payload::Command(bytes) => bytes.len(),
                Payload::Membership(membership) => membership.size_bytes(),
            }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.payload {
            Payload::Noop => write!(f, "{} noop", self.id()),
            Payload::Command(bytes) => write!(f, "{} cmd({}B)", self.id(), bytes.len()),
            Payload::Membership(membership) => write!(f, "{} membership({membership})", self.id()),
        }
    }
}
