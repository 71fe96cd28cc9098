//! The terms of the log's entries as runs (first index, term): terms change rarely, so the
//! log knows the term of every index after its snapshot in a few words, also for entries it
//! no longer holds in memory (see `RaftLog::evict_applied`).

use std::collections::VecDeque;

use crate::ids::{LogIndex, Term};

/// Runs of equal terms, in log order, terms strictly increasing. The first run may start at
/// or before the snapshot point: callers ask only about indexes the log covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TermRuns {
    /// The first index of each run, and its term.
    runs: VecDeque<(LogIndex, Term)>,
}

impl TermRuns {
    /// Records the entry at `index`, which follows every entry recorded.
    pub(crate) fn push(&mut self, index: LogIndex, term: Term) {
        match self.runs.back() {
            Some(&(_, last)) if last == term => {}
            Some(&(_, last)) => {
                assert!(term > last, "term {term} after {last} at {index}");
                self.runs.push_back((index, term));
            }
            None => self.runs.push_back((index, term)),
        }
    }

    /// Forgets the entries from `index` on.
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        while self.runs.back().is_some_and(|&(first, _)| first >= index) {
            self.runs.pop_back();
        }
    }

    /// Forgets the runs that end at or before `index` (a snapshot covers them).
    pub(crate) fn compact_to(&mut self, index: LogIndex) {
        while self.runs.get(1).is_some_and(|&(first, _)| first <= index.next()) {
            self.runs.pop_front();
        }
    }

    /// Forgets every run.
    pub(crate) fn clear(&mut self) {
        self.runs.clear();
    }

    /// The term of the run holding `index` (the caller knows the log covers it).
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        let after = self.runs.partition_point(|&(first, _)| first <= index);
        after.checked_sub(1).map(|run| self.runs[run].1)
    }

    /// The first index of the first run whose term is `term` or later.
    pub(crate) fn first_index_from(&self, term: Term) -> Option<LogIndex> {
        let before = self.runs.partition_point(|&(_, run_term)| run_term < term);
        self.runs.get(before).map(|&(first, _)| first)
    }

    /// The last index of the run of exactly `term`, where the log ends at `last`.
    pub(crate) fn last_index_of(&self, term: Term, last: LogIndex) -> Option<LogIndex> {
        let run = self.runs.partition_point(|&(_, run_term)| run_term < term);
        match self.runs.get(run) {
            Some(&(_, run_term)) if run_term == term => {
                Some(self.runs.get(run + 1).map_or(last, |&(next, _)| next.prev()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(terms: &[u64]) -> TermRuns {
        let mut runs = TermRuns::default();
        for (offset, &term) in terms.iter().enumerate() {
            runs.push(LogIndex(offset as u64 + 1), Term(term));
        }
        runs
    }

    #[test]
    fn terms_are_found_by_index_and_runs_by_term() {
        let runs = runs(&[1, 1, 2, 2, 2, 5]);
        assert_eq!(runs.runs.len(), 3);
        let terms: Vec<Option<Term>> = (1..=6).map(|i| runs.term_at(LogIndex(i))).collect();
        let expected = [1, 1, 2, 2, 2, 5].map(|t| Some(Term(t)));
        assert_eq!(terms, expected);
        assert_eq!(runs.term_at(LogIndex(0)), None);
        assert_eq!(runs.first_index_from(Term(2)), Some(LogIndex(3)));
        assert_eq!(runs.first_index_from(Term(3)), Some(LogIndex(6)), "the next term's start");
        assert_eq!(runs.first_index_from(Term(6)), None);
        assert_eq!(runs.last_index_of(Term(2), LogIndex(6)), Some(LogIndex(5)));
        assert_eq!(runs.last_index_of(Term(5), LogIndex(6)), Some(LogIndex(6)));
        assert_eq!(runs.last_index_of(Term(3), LogIndex(6)), None);
    }

    #[test]
    fn truncation_and_compaction_drop_whole_runs_only() {
        let mut runs = runs(&[1, 1, 2, 2, 3]);
        runs.truncate_from(LogIndex(4));
        assert_eq!(runs.term_at(LogIndex(3)), Some(Term(2)), "the run of 2 starts before");
        runs.truncate_from(LogIndex(3));
        assert_eq!(runs.runs.len(), 1);
        runs.push(LogIndex(3), Term(4));
        runs.compact_to(LogIndex(1));
        assert_eq!(runs.term_at(LogIndex(2)), Some(Term(1)), "index 2 is still covered");
        runs.compact_to(LogIndex(2));
        assert_eq!((runs.runs.len(), runs.term_at(LogIndex(3))), (1, Some(Term(4))));
    }

    #[test]
    #[should_panic(expected = "term 1 after 2")]
    fn a_term_going_back_is_a_bug() {
        runs(&[2, 1]);
    }
}
