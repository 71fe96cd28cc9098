//! Newtypes for the words of the protocol, so that a term is never passed where an index is meant.

use core::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_newtype!(
    /// A member of the cluster. Ids are chosen by the operator and never reused.
    NodeId
);
id_newtype!(
    /// A Raft term: a period with at most one leader.
    Term
);
id_newtype!(
    /// A position in the replicated log; the first entry has index 1, index 0 is "before the log".
    LogIndex
);
id_newtype!(
    /// A client session, unique in the cluster's lifetime.
    ClientId
);
id_newtype!(
    /// A request of one client session; grows by one with each new request.
    RequestId
);

/// The largest term or index a message or a disk may carry: 2^62. No cluster reaches it (a
/// term a millisecond, or a million entries a second, takes over a hundred thousand years),
/// so anything larger is malformed and refused at the boundary, and the arithmetic inside,
/// which only ever adds small numbers to valid values, cannot overflow.
const PROTOCOL_MAX: u64 = 1 << 62;

impl Term {
    /// The largest valid term; a message or a disk with a later one is malformed.
    pub const MAX: Term = Term(PROTOCOL_MAX);

    /// The term after this one, unless this is [`Term::MAX`]: a node there cannot campaign.
    pub const fn next(self) -> Option<Term> {
        if self.0 < PROTOCOL_MAX { Some(Term(self.0 + 1)) } else { None }
    }
}

impl LogIndex {
    /// The largest valid index; a message or a disk with a later one is malformed.
    pub const MAX: LogIndex = LogIndex(PROTOCOL_MAX);

    /// The index after this one. Indexes are at most [`LogIndex::MAX`] (validated where they
    /// enter) and grow by one per entry, so this cannot overflow.
    pub const fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one (0 stays 0).
    pub const fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// This index moved `n` positions forward (`n` counts entries of one message or log, far
    /// below the room between [`LogIndex::MAX`] and `u64::MAX`).
    pub const fn plus(self, n: u64) -> LogIndex {
        LogIndex(self.0 + n)
    }
}

/// An entry's position and term: two logs that hold the same `LogId` agree on every entry up
/// to it (the log matching property).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogId {
    /// Position of the entry.
    pub index: LogIndex,
    /// Term in which the entry was created.
    pub term: Term,
}

impl LogId {
    /// The entry at `index` created in `term`.
    pub const fn new(index: LogIndex, term: Term) -> LogId {
        LogId { index, term }
    }

    /// The position before the first entry.
    pub const ZERO: LogId = LogId::new(LogIndex(0), Term(0));

    /// Whether neither part exceeds its maximum.
    pub const fn is_valid(self) -> bool {
        self.index.0 <= PROTOCOL_MAX && self.term.0 <= PROTOCOL_MAX
    }

    /// Whether a log ending here is at least as up to date as one ending at `other`
    /// (Raft §5.4.1: the later last term wins; on a tie, the longer log).
    pub fn is_up_to_date_with(self, other: LogId) -> bool {
        (self.term, self.index) >= (other.term, other.index)
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.term)
    }
}
