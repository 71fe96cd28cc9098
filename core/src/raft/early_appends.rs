//! Appends that reached a follower ahead of a gap in its log, held until the gap fills.
//!
//! A leader pipelines appends to a follower; a network that reorders messages delivers some of
//! them past the end of the follower's log. Rejected, each such append sends the leader back
//! to probing one append at a time, and a follower far behind then needs a round trip per
//! append to catch up. Held, they are taken as soon as the appends before them land. Holding
//! one is the same as receiving it late, which Raft allows: it is taken only in the term, and
//! from the leader, it came from.

use std::collections::BTreeMap;

use crate::ids::{LogId, LogIndex, NodeId, Term};
use crate::raft::entry::Entry;

/// An append received from the leader of `term` (held, until the follower's log reaches
/// `prev`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReceivedAppend {
    pub(crate) from: NodeId,
    pub(crate) term: Term,
    pub(crate) prev: LogId,
    pub(crate) entries: Vec<Entry>,
    pub(crate) commit: LogIndex,
    pub(crate) read_round: u64,
}

/// The held appends of one follower, by the index they follow; at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct EarlyAppends {
    held: BTreeMap<LogIndex, ReceivedAppend>,
    capacity: usize,
}

impl EarlyAppends {
    /// Holds at most `capacity` appends (none with 0).
    pub(crate) fn new(capacity: usize) -> EarlyAppends {
        EarlyAppends { held: BTreeMap::new(), capacity }
    }

    /// Holds `append`, or gives it back when full, or when an append following the same index
    /// and carrying as many entries is held already: the leader sent it again, so it suspects
    /// a loss, and a rejection tells it where the log ends. A longer one replaces a shorter
    /// (an append after a heartbeat that overtook the appends in flight).
    pub(crate) fn hold(&mut self, append: ReceivedAppend) -> Result<(), ReceivedAppend> {
        match self.held.get(&append.prev.index) {
            Some(held) if held.entries.len() >= append.entries.len() => return Err(append),
            Some(_) => {}
            None if self.held.len() >= self.capacity => return Err(append),
            None => {}
        }
        self.held.insert(append.prev.index, append);
        Ok(())
    }

    /// Takes the held append that follows the lowest index, if that is at most `last` (the
    /// follower's log reaches it now).
    pub(crate) fn take_ready(&mut self, last: LogIndex) -> Option<ReceivedAppend> {
        let first = self.held.first_entry()?;
        if *first.key() > last {
            return None;
        }
        Some(first.remove())
    }

    /// Drops every held append: a new term or a new leader began, for which they mean
    /// nothing.
    pub(crate) fn clear(&mut self) {
        self.held.clear();
    }

    /// Panics unless at most `capacity` appends are held, each from one term and leader.
    pub(crate) fn check_invariants(&self) {
        assert!(self.held.len() <= self.capacity, "more early appends held than allowed");
        let mut senders = self.held.values().map(|append| (append.term, append.from));
        if let Some(first) = senders.next() {
            assert!(senders.all(|sender| sender == first), "early appends of two leaders held");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::entry::Payload;

    fn append(prev: u64) -> ReceivedAppend {
        ReceivedAppend {
            from: NodeId(1),
            term: Term(2),
            prev: LogId::new(LogIndex(prev), Term(2)),
            entries: Vec::new(),
            commit: LogIndex(0),
            read_round: 0,
        }
    }

    fn with_entries(prev: u64, count: u64) -> ReceivedAppend {
        let entries = (1..=count)
            .map(|n| Entry { index: LogIndex(prev + n), term: Term(2), payload: Payload::Noop })
            .collect();
        ReceivedAppend { entries, ..append(prev) }
    }

    #[test]
    fn appends_are_taken_lowest_first_once_the_log_reaches_them() {
        let mut early = EarlyAppends::new(4);
        early.hold(append(20)).unwrap();
        early.hold(append(10)).unwrap();
        assert_eq!(early.take_ready(LogIndex(9)), None);
        assert_eq!(early.take_ready(LogIndex(10)), Some(append(10)));
        assert_eq!(early.take_ready(LogIndex(19)), None);
        assert_eq!(early.take_ready(LogIndex(25)), Some(append(20)));
        assert_eq!(early.take_ready(LogIndex(100)), None, "none left");
    }

    #[test]
    fn a_longer_append_replaces_a_shorter_one_at_the_same_point_and_not_the_reverse() {
        let mut early = EarlyAppends::new(1);
        early.hold(append(10)).unwrap();
        early.hold(with_entries(10, 3)).unwrap();
        assert_eq!(early.hold(with_entries(10, 2)), Err(with_entries(10, 2)));
        assert_eq!(early.take_ready(LogIndex(10)), Some(with_entries(10, 3)));
    }

    #[test]
    fn a_full_holder_and_a_second_append_at_the_same_point_give_the_append_back() {
        let mut early = EarlyAppends::new(2);
        early.hold(append(10)).unwrap();
        assert_eq!(early.hold(append(10)), Err(append(10)));
        early.hold(append(20)).unwrap();
        assert_eq!(early.hold(append(30)), Err(append(30)));
        early.check_invariants();
        early.clear();
        assert_eq!(early.take_ready(LogIndex(100)), None, "none left");
        assert!(EarlyAppends::new(0).hold(append(1)).is_err(), "capacity 0 holds nothing");
    }
}
