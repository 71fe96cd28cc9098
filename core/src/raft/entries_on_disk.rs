//! The entries a driver recovered but left on its disk: what a node needs to know of them
//! without holding them (see `Recovered::on_disk`).

use std::collections::VecDeque;

use crate::ids::{LogId, LogIndex};
use crate::raft::entry::{Entry, Payload};
use crate::raft::membership::Membership;
use crate::raft::term_runs::TermRuns;

/// The first entries of a recovered log, left on the driver's disk: for each, its term (as
/// runs) and its size, and the memberships among them. A node restarting with a large log
/// holds this instead of the entries themselves, and asks for them when it applies them
/// (`Output::LoadEntries`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntriesOnDisk {
    /// The first entry's id and the last one's, once one is recorded.
    ends: Option<(LogIndex, LogId)>,
    terms: TermRuns,
    /// `Entry::size_bytes` of each, capped at `u32::MAX`.
    sizes: VecDeque<u32>,
    memberships: VecDeque<(LogId, Membership)>,
}

impl EntriesOnDisk {
    /// Records `entry`, which must follow the last one recorded (the first may be anywhere).
    ///
    /// # Panics
    /// If it does not follow, or its term goes back: the caller replays a log.
    pub fn push(&mut self, entry: &Entry) {
        let first = match self.ends {
            Some((first, last)) => {
                assert!(
                    entry.index == last.index.next() && entry.term >= last.term,
                    "entry {} does not follow {last}",
                    entry.id()
                );
                first
            }
            None => entry.index,
        };
        self.ends = Some((first, entry.id()));
        self.terms.push(entry.index, entry.term);
        self.sizes.push_back(u32::try_from(entry.size_bytes()).unwrap_or(u32::MAX));
        if let Payload::Membership(membership) = &entry.payload {
            self.memberships.push_back((entry.id(), membership.clone()));
        }
    }

    /// Forgets the entries from `index` on (a later record truncated them, or the caller
    /// keeps them in memory after all).
    pub fn truncate_from(&mut self, index: LogIndex) {
        let Some((first, _)) = self.ends else { return };
        let keep = usize::try_from(index.0.saturating_sub(first.0)).unwrap_or(usize::MAX);
        if keep >= self.sizes.len() {
            return;
        }
        self.sizes.truncate(keep);
        self.terms.truncate_from(index);
        while self.memberships.back().is_some_and(|(id, _)| id.index >= index) {
            self.memberships.pop_back();
        }
        self.ends = self.ends.filter(|_| keep > 0).map(|(first, _)| {
            let last = first.plus(keep as u64 - 1);
            (first, LogId::new(last, self.terms.term_at(last).expect("runs cover the entries")))
        });
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// The first entry's index, if any.
    pub fn first_index(&self) -> Option<LogIndex> {
        self.ends.map(|(first, _)| first)
    }

    /// The first entry's id, if any.
    pub(crate) fn first_id(&self) -> Option<LogId> {
        let (first, _) = self.ends?;
        Some(LogId::new(first, self.terms.term_at(first)?))
    }

    /// The last entry's id, if any.
    pub fn last_id(&self) -> Option<LogId> {
        self.ends.map(|(_, last)| last)
    }

    /// Bytes of the entries (`Entry::size_bytes`, each capped at 4 GiB).
    pub fn bytes(&self) -> u64 {
        self.sizes.iter().map(|&size| u64::from(size)).sum()
    }

    /// The memberships of the membership entries among them, in log order.
    pub fn memberships(&self) -> impl Iterator<Item = &(LogId, Membership)> {
        self.memberships.iter()
    }

    /// Takes the parts out, for the log: the terms, the sizes and the memberships.
    pub(crate) fn into_parts(self) -> (TermRuns, VecDeque<u32>, VecDeque<(LogId, Membership)>) {
        (self.terms, self.sizes, self.memberships)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeId;
    use crate::ids::Term;

    fn entry(index: u64, term: u64, payload: Payload) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload }
    }

    fn membership(voters: &[u64]) -> Membership {
        Membership::with_voters(voters.iter().map(|&id| NodeId(id)))
    }

    #[test]
    fn it_keeps_terms_sizes_and_memberships_and_truncates_them_together() {
        let mut on_disk = EntriesOnDisk::default();
        on_disk.push(&entry(5, 1, Payload::Command(vec![0; 10])));
        on_disk.push(&entry(6, 2, Payload::Membership(membership(&[1, 2]))));
        on_disk.push(&entry(7, 2, Payload::Noop));
        assert_eq!((on_disk.len(), on_disk.first_index()), (3, Some(LogIndex(5))));
        assert_eq!(on_disk.last_id(), Some(LogId::new(LogIndex(7), Term(2))));
        let membership_bytes = membership(&[1, 2]).size_bytes() as u64;
        assert_eq!(on_disk.bytes(), 34 + 24 + membership_bytes + 24);
        assert_eq!(on_disk.memberships().count(), 1);
        on_disk.truncate_from(LogIndex(9));
        assert_eq!(on_disk.len(), 3, "past the end: nothing to drop");
        on_disk.truncate_from(LogIndex(6));
        assert_eq!(on_disk.last_id(), Some(LogId::new(LogIndex(5), Term(1))));
        assert_eq!((on_disk.memberships().count(), on_disk.bytes()), (0, 34));
        on_disk.push(&entry(6, 3, Payload::Noop));
        assert_eq!(on_disk.last_id(), Some(LogId::new(LogIndex(6), Term(3))));
        on_disk.truncate_from(LogIndex(2));
        assert_eq!((on_disk.len(), on_disk.last_id()), (0, None));
        on_disk.push(&entry(9, 4, Payload::Noop));
        assert_eq!(on_disk.first_index(), Some(LogIndex(9)), "starts anew anywhere");
    }

    #[test]
    #[should_panic(expected = "does not follow")]
    fn a_gap_is_a_bug() {
        let mut on_disk = EntriesOnDisk::default();
        on_disk.push(&entry(1, 1, Payload::Noop));
        on_disk.push(&entry(3, 1, Payload::Noop));
    }
}
