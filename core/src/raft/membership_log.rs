//! The memberships a log holds: the one in force at the snapshot point, and one per membership
//! entry after it, in log order.
//!
//! A node uses the latest membership its log holds, committed or not (Raft §4.1): it takes
//! effect when appended. When a new leader truncates that entry, the node falls back to the
//! one before, which is always known: it is either an earlier entry or the snapshot's.

use std::collections::VecDeque;

use crate::ids::{LogId, LogIndex};
use crate::raft::membership::Membership;

/// The memberships of one log; the last is the one in force.
#[derive(Debug)]
pub(crate) struct MembershipLog {
    /// In force at the snapshot point: from the entry at this index if the log held it when it
    /// was compacted, else from the snapshot (the snapshot point, or 0 for the membership a
    /// cluster starts with).
    base: (LogIndex, Membership),
    /// One per membership entry after the snapshot point, in log order.
    entries: VecDeque<(LogId, Membership)>,
}

impl MembershipLog {
    /// The memberships of a log whose snapshot point has `base` in force (learned at `index`).
    pub(crate) fn new(index: LogIndex, base: Membership) -> MembershipLog {
        MembershipLog { base: (index, base), entries: VecDeque::new() }
    }

    /// The membership in force at the end of the log, and the index it comes from.
    pub(crate) fn latest(&self) -> (LogIndex, &Membership) {
        match self.entries.back() {
            Some((id, membership)) => (id.index, membership),
            None => (self.base.0, &self.base.1),
        }
    }

    /// The membership the latest one replaced, if this log still knows it.
    pub(crate) fn previous(&self) -> Option<&Membership> {
        match self.entries.len() {
            0 => None,
            1 => Some(&self.base.1),
            held => self.entries.get(held - 2).map(|(_, membership)| membership),
        }
    }

    /// The membership in force at `index` (at or after the snapshot point).
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        let before = self.entries.partition_point(|(id, _)| id.index <= index);
        match before.checked_sub(1).and_then(|last| self.entries.get(last)) {
            Some((_, membership)) => membership,
            None => &self.base.1,
        }
    }

    /// The membership the entry `id` carries, if it is a membership entry recorded here.
    pub(crate) fn recorded(&self, id: LogId) -> Option<&Membership> {
        let at = self.entries.partition_point(|(recorded, _)| recorded.index < id.index);
        self.entries.get(at).filter(|(recorded, _)| *recorded == id).map(|(_, m)| m)
    }

    /// The membership at the snapshot point.
    pub(crate) fn base(&self) -> &Membership {
        &self.base.1
    }

    /// How many membership entries lie after `index`.
    pub(crate) fn count_after(&self, index: LogIndex) -> usize {
        self.entries.len() - self.entries.partition_point(|(id, _)| id.index <= index)
    }

    /// The entry `id`, appended at the end of the log, carries `membership`.
    pub(crate) fn record(&mut self, id: LogId, membership: Membership) {
        debug_assert!(id.index > self.latest().0, "memberships recorded out of order");
        self.entries.push_back((id, membership));
    }

    /// The log dropped its entries from `index` on: so do their memberships.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        while self.entries.back().is_some_and(|(id, _)| id.index >= index) {
            self.entries.pop_back();
        }
    }

    /// The log was compacted up to `index`: the latest membership up to there is the base.
    pub(crate) fn compact_to(&mut self, index: LogIndex) {
        while self.entries.front().is_some_and(|(id, _)| id.index <= index) {
            let (id, membership) = self.entries.pop_front().expect("front exists");
            self.base = (id.index, membership);
        }
    }

    /// A snapshot from the leader with `membership` in force at `index` replaced the log up
    /// to there; the entries after it keep their memberships if the log kept them.
    pub(crate) fn install(&mut self, index: LogIndex, membership: Membership, kept_suffix: bool) {
        if kept_suffix {
            self.compact_to(index);
        } else {
            self.entries.clear();
        }
        self.base = (index, membership);
    }

    /// The recorded memberships after the snapshot point, in log order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &(LogId, Membership)> {
        self.entries.iter()
    }

    /// The index the base membership comes from.
    pub(crate) fn base_index(&self) -> LogIndex {
        self.base.0
    }
}
