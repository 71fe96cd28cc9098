//! What a majority of the voters decides: the commit index, the outcome of an election, and
//! whether a leader is still followed (a read confirmed, check-quorum). Every count of votes or
//! acknowledgements goes through here, addressed by node id, so that a change of membership
//! has one place to change.

use smallvec::SmallVec;

use crate::ids::NodeId;

/// The voters of a configuration; a majority of them decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Majority {
    /// Sorted, without duplicates.
    voters: SmallVec<[NodeId; 8]>,
}

/// Where an election stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused: the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

impl Majority {
    /// The majority of `voters` (duplicates count once).
    pub(crate) fn new(voters: impl IntoIterator<Item = NodeId>) -> Majority {
        let mut voters: SmallVec<[NodeId; 8]> = voters.into_iter().collect();
        voters.sort_unstable();
        voters.dedup();
        Majority { voters }
    }

    /// How many voters make a majority.
    pub(crate) fn size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The highest value a majority of the voters reaches: given each voter's durable match,
    /// the index a majority holds (the commit index); given the read round each answered, the
    /// latest round a majority confirmed.
    pub(crate) fn highest_reached<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> T {
        let mut values: SmallVec<[T; 8]> = self.voters.iter().map(|&voter| value(voter)).collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[self.size() - 1]
    }

    /// The outcome of an election, given each voter's answer so far (`None`: none yet).
    pub(crate) fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let (mut granted, mut refused) = (0, 0);
        for &voter in &self.voters {
            match vote(voter) {
                Some(true) => granted += 1,
                Some(false) => refused += 1,
                None => {}
            }
        }
        if granted >= self.size() {
            VoteResult::Won
        } else if refused >= self.size() {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }

    /// Whether a majority acknowledges (answered a read round, was heard from recently).
    pub(crate) fn is_acknowledged(&self, acknowledged: impl Fn(NodeId) -> bool) -> bool {
        self.voters.iter().filter(|&&voter| acknowledged(voter)).count() >= self.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn majority(ids: &[u64]) -> Majority {
        Majority::new(ids.iter().map(|&id| NodeId(id)))
    }

    #[test]
    fn the_committed_index_is_the_highest_a_majority_holds() {
        let five = majority(&[1, 2, 3, 4, 5]);
        let matched = |id: NodeId| crate::ids::LogIndex([0, 9, 7, 3, 7, 1][id.0 as usize]);
        assert_eq!(five.highest_reached(matched).0, 7);
        assert_eq!(majority(&[1]).highest_reached(matched).0, 9);
        assert_eq!(majority(&[4, 5]).highest_reached(matched).0, 1, "two need both");
    }

    #[test]
    fn an_election_is_won_or_lost_by_a_majority() {
        let three = majority(&[1, 2, 3]);
        assert_eq!(three.vote_result(|id| (id.0 == 1).then_some(true)), VoteResult::Pending);
        assert_eq!(three.vote_result(|id| (id.0 < 3).then_some(true)), VoteResult::Won);
        assert_eq!(three.vote_result(|id| Some(id.0 == 1)), VoteResult::Lost);
        let four = majority(&[1, 2, 3, 4]);
        assert_eq!(four.vote_result(|id| Some(id.0 <= 2)), VoteResult::Pending, "a tie");
    }

    #[test]
    fn acknowledgement_needs_a_majority_and_duplicates_count_once() {
        let three = Majority::new([NodeId(1), NodeId(2), NodeId(2), NodeId(3)]);
        assert_eq!(three.size(), 2);
        assert!(three.is_acknowledged(|id| id.0 != 3));
        assert!(!three.is_acknowledged(|id| id.0 == 1));
    }
}
