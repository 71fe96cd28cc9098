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

impl Term {
    /// The term after this one.
    pub const fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl LogIndex {
    /// The index after this one.
    pub const fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index before this one (0 stays 0).
    pub const fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// This index moved `n` positions forward.
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
