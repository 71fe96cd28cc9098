//! Committed entries to apply that the node left on the driver's disk at its start (see
//! `Recovered::on_disk`): the driver reads them back and hands them in.

use core::fmt;

use crate::ids::{LogId, LogIndex};
use crate::raft::entry::Entry;

/// The entries `first..=last.index`, committed, which the node recovered without holding them:
/// the driver reads them from the log it made durable, checks them
/// ([`matches`](Self::matches)) and answers `Input::EntriesLoaded`. If it cannot read them,
/// it must not feed anything else: it stops the node, whose next start (the storage engine's
/// recovery) finds what is damaged and cuts it away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntriesToLoad {
    /// The first entry to load.
    pub first: LogIndex,
    /// The last one: the driver checks that the entry it read there has this term.
    pub last: LogId,
}

impl EntriesToLoad {
    /// Whether `entries` are the ones asked for: consecutive from `first`, the last one
    /// `last`, terms never going back.
    pub fn matches(&self, entries: &[Entry]) -> bool {
        Entry::is_run(entries, self.first, self.last)
    }
}

impl fmt::Display for EntriesToLoad {
    /// For example `load entries 41..=80/2 from disk`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "load entries {}..={} from disk", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Term;
    use crate::raft::entry::Payload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Noop }
    }

    #[test]
    fn only_the_entries_asked_for_match() {
        let asked = EntriesToLoad { first: LogIndex(5), last: LogId::new(LogIndex(7), Term(2)) };
        assert!(asked.matches(&[entry(5, 1), entry(6, 2), entry(7, 2)]));
        assert!(!asked.matches(&[entry(5, 1), entry(6, 2), entry(7, 1)]), "another last term");
        assert!(!asked.matches(&[entry(5, 1), entry(7, 2)]), "a gap");
        assert!(!asked.matches(&[entry(6, 2), entry(7, 2)]), "not from the first");
        assert!(!asked.matches(&[entry(5, 3), entry(6, 2), entry(7, 2)]), "a term goes back");
        assert!(!asked.matches(&[]));
        assert_eq!(asked.to_string(), "load entries 5..=7/2 from disk");
    }
}
