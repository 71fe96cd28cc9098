//! The answers a (pre-)candidate has had in one round of votes.

use smallvec::SmallVec;

use crate::ids::NodeId;

/// Each peer's first answer in the round: a late duplicate does not change it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ballot {
    answers: SmallVec<[(NodeId, bool); 8]>,
}

impl Ballot {
    /// Records `voter`'s answer unless it answered already.
    pub(crate) fn record(&mut self, voter: NodeId, granted: bool) {
        if self.answer(voter).is_none() {
            self.answers.push((voter, granted));
        }
    }

    /// `voter`'s answer, if it gave one.
    pub(crate) fn answer(&self, voter: NodeId) -> Option<bool> {
        self.answers.iter().find(|(id, _)| *id == voter).map(|&(_, granted)| granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_counts() {
        let mut ballot = Ballot::default();
        assert_eq!(ballot.answer(NodeId(2)), None);
        ballot.record(NodeId(2), true);
        ballot.record(NodeId(2), false);
        ballot.record(NodeId(3), false);
        assert_eq!(ballot.answer(NodeId(2)), Some(true));
        assert_eq!(ballot.answer(NodeId(3)), Some(false));
    }
}
