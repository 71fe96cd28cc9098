//! When the leader's recent read rounds began, as far as a lease needs to know (see
//! `raft::lease`): for any round still remembered, an instant no later than its start.

use std::collections::VecDeque;

use crate::time::{Duration, Instant};

/// Marks kept at most: with `SPACING`, rounds begun within the last quarter second at least
/// are remembered, far longer than an acknowledgement takes to come back.
const MARKS_KEPT: usize = 256;

/// A new mark is set only this long after the last one: under a heavy ReadIndex load a round
/// begins every turn, and marking each would soon forget the rounds whose answers are still
/// on their way. A round's start is then known at most this much too early (which only
/// shortens a lease).
const SPACING: Duration = Duration::from_millis(1);

/// Marks (round, instant): round `r` began no earlier than the instant of the latest mark whose
/// round is at most `r`.
#[derive(Debug, Default)]
pub(crate) struct RoundStarts {
    /// Oldest first; rounds and instants both increase.
    marks: VecDeque<(u64, Instant)>,
    /// Marking stopped for the rest of the leadership (see `stop`).
    stopped: bool,
}

impl RoundStarts {
    /// Panics unless the marks increase in round and in time, none lies after `now`, their
    /// number is within the bound, and a stopped record holds none.
    pub(crate) fn check_invariants(&self, now: Instant) {
        assert!(self.marks.len() <= MARKS_KEPT, "more round marks than the bound");
        assert!(!self.stopped || self.marks.is_empty(), "round marks kept after stopping");
        for pair in self.marks.iter().zip(self.marks.iter().skip(1)) {
            let ((round, began), (next_round, next_began)) = pair;
            assert!(round < next_round && began < next_began, "round marks out of order");
        }
        if let Some(&(_, began)) = self.marks.back() {
            assert!(began <= now, "a round marked as begun in the future");
        }
    }

    /// Whether no round is remembered.
    pub(crate) fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Round `round` begins at `now`.
    pub(crate) fn began(&mut self, round: u64, now: Instant) {
        if self.stopped {
            return;
        }
        if let Some(&(last_round, last_began)) = self.marks.back() {
            assert!(last_round < round && last_began <= now, "rounds begin in order");
            if now < last_began + SPACING {
                return;
            }
        }
        if self.marks.len() == MARKS_KEPT {
            self.marks.pop_front();
        }
        self.marks.push_back((round, now));
    }

    /// An instant no later than the start of `round`, if it is remembered (never for round 0,
    /// which no message announces as begun).
    pub(crate) fn no_later_than_start_of(&self, round: u64) -> Option<Instant> {
        let later = self.marks.partition_point(|&(marked, _)| marked <= round);
        later.checked_sub(1).map(|at| self.marks[at].1)
    }

    /// Forgets every round begun so far: their answers no longer give a lease.
    pub(crate) fn forget(&mut self) {
        self.marks.clear();
    }

    /// Forgets every round and remembers none for the rest of the leadership.
    pub(crate) fn stop(&mut self) {
        self.marks.clear();
        self.stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    #[test]
    fn a_round_is_dated_by_the_latest_mark_at_or_before_it() {
        let mut starts = RoundStarts::default();
        assert_eq!(starts.no_later_than_start_of(1), None);
        starts.began(1, at(10));
        starts.began(2, at(10)); // Within the spacing: dated by round 1's mark.
        starts.began(5, at(20));
        assert_eq!(starts.no_later_than_start_of(0), None, "round 0 never began");
        assert_eq!(starts.no_later_than_start_of(1), Some(at(10)));
        assert_eq!(starts.no_later_than_start_of(2), Some(at(10)));
        assert_eq!(starts.no_later_than_start_of(4), Some(at(10)));
        assert_eq!(starts.no_later_than_start_of(5), Some(at(20)));
        starts.check_invariants(at(20));
    }

    #[test]
    fn the_oldest_marks_are_forgotten_beyond_the_bound_and_all_once_stopped() {
        let mut starts = RoundStarts::default();
        let kept = MARKS_KEPT as u64;
        for round in 1..=kept + 1 {
            starts.began(round, at(round * 2));
        }
        assert_eq!(starts.no_later_than_start_of(1), None, "too old to remember");
        assert_eq!(starts.no_later_than_start_of(2), Some(at(4)));
        starts.check_invariants(at(2 * kept + 2));
        starts.forget();
        assert!(starts.is_empty());
        starts.began(kept + 2, at(2 * kept + 4));
        starts.stop();
        starts.began(kept + 3, at(2 * kept + 6));
        assert!(starts.is_empty(), "a stopped record marks nothing");
        starts.check_invariants(at(2 * kept + 6));
    }
}
