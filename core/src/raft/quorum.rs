//! What a quorum of the voters decides: the commit index, the outcome of an election, and
//! whether a leader is still followed (a read confirmed, check-quorum). Every count of votes or
//! acknowledgements goes through here, addressed by node id.
//!
//! A membership's quorum is a majority of its voters; during a joint change (C_old,new) it is
//! a majority of the incoming voters and, separately, a majority of the outgoing ones, so that
//! every decision taken then is also a decision of the configuration being left (Raft §6).

use smallvec::SmallVec;

use crate::ids::NodeId;

/// The voters of one configuration; a majority of them decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Majority<'a> {
    /// Sorted, without duplicates.
    voters: &'a [NodeId],
}

/// The quorum of a membership: a majority of its voters and, during a joint change, a majority
/// of the outgoing voters as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JointQuorum<'a> {
    incoming: Majority<'a>,
    outgoing: Option<Majority<'a>>,
}

/// Where an election stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// A quorum granted.
    Won,
    /// Enough refused that no quorum can grant: the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

impl<'a> Majority<'a> {
    /// The majority of `voters`, which are sorted and without duplicates.
    pub(crate) fn new(voters: &'a [NodeId]) -> Majority<'a> {
        debug_assert!(voters.windows(2).all(|pair| pair[0] < pair[1]), "voters not sorted");
        Majority { voters }
    }

    /// How many voters make a majority.
    fn size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The highest value a majority of the voters reaches: given each voter's durable match,
    /// the index a majority holds (the commit index); given the read round each answered, the
    /// latest round a majority confirmed.
    ///
    /// # Panics
    /// If there are no voters: a membership always has some (`Membership::validate`), and only
    /// a leader, a voter itself, asks.
    pub(crate) fn highest_reached<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> T {
        assert!(!self.voters.is_empty(), "a majority of no voters reaches nothing");
        let mut values: SmallVec<[T; 8]> = self.voters.iter().map(|&voter| value(voter)).collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[self.size() - 1]
    }

    /// The outcome of an election, given each voter's answer so far (`None`: none yet).
    pub(crate) fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let (mut granted, mut refused) = (0, 0);
        for &voter in self.voters {
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

impl<'a> JointQuorum<'a> {
    /// The quorum of `incoming` voters, and of `outgoing` ones during a joint change.
    pub(crate) fn new(incoming: Majority<'a>, outgoing: Option<Majority<'a>>) -> JointQuorum<'a> {
        JointQuorum { incoming, outgoing }
    }

    /// The highest value both majorities reach (see [`Majority::highest_reached`]).
    pub(crate) fn highest_reached<T: Ord + Copy>(&self, value: impl Fn(NodeId) -> T) -> T {
        let incoming = self.incoming.highest_reached(&value);
        match &self.outgoing {
            Some(outgoing) => incoming.min(outgoing.highest_reached(&value)),
            None => incoming,
        }
    }

    /// Won once both majorities granted; lost once either refused.
    pub(crate) fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let incoming = self.incoming.vote_result(&vote);
        let outgoing =
            self.outgoing.map_or(VoteResult::Won, |outgoing| outgoing.vote_result(&vote));
        match (incoming, outgoing) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// Whether both majorities acknowledge.
    pub(crate) fn is_acknowledged(&self, acknowledged: impl Fn(NodeId) -> bool) -> bool {
        self.incoming.is_acknowledged(&acknowledged)
            && self.outgoing.is_none_or(|outgoing| outgoing.is_acknowledged(&acknowledged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::LogIndex;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    /// Each node's match: node n holds the index at position n.
    fn matched(id: NodeId) -> LogIndex {
        LogIndex([0, 9, 7, 3, 7, 1, 2, 8][id.0 as usize])
    }

    #[test]
    fn the_committed_index_is_the_highest_a_majority_holds() {
        let five = ids(&[1, 2, 3, 4, 5]);
        assert_eq!(Majority::new(&five).highest_reached(matched).0, 7);
        assert_eq!(Majority::new(&ids(&[1])).highest_reached(matched).0, 9);
        assert_eq!(Majority::new(&ids(&[4, 5])).highest_reached(matched).0, 1, "two need both");
    }

    #[test]
    fn an_election_is_won_or_lost_by_a_majority() {
        let three = ids(&[1, 2, 3]);
        let three = Majority::new(&three);
        assert_eq!(three.vote_result(|id| (id.0 == 1).then_some(true)), VoteResult::Pending);
        assert_eq!(three.vote_result(|id| (id.0 < 3).then_some(true)), VoteResult::Won);
        assert_eq!(three.vote_result(|id| Some(id.0 == 1)), VoteResult::Lost);
        let four = ids(&[1, 2, 3, 4]);
        assert_eq!(Majority::new(&four).vote_result(|id| Some(id.0 <= 2)), VoteResult::Pending);
    }

    #[test]
    fn acknowledgement_needs_a_majority() {
        let three = ids(&[1, 2, 3]);
        let three = Majority::new(&three);
        assert!(three.is_acknowledged(|id| id.0 != 3));
        assert!(!three.is_acknowledged(|id| id.0 == 1));
    }

    #[test]
    fn a_joint_quorum_needs_both_majorities() {
        let (old, new) = (ids(&[1, 2, 3]), ids(&[3, 4, 5, 6, 7]));
        let joint = JointQuorum::new(Majority::new(&new), Some(Majority::new(&old)));
        // Old majority {1,2,3} reaches 7, new majority {3..7} reaches 3: both hold 3.
        assert_eq!(joint.highest_reached(matched).0, 3);
        let alone = JointQuorum::new(Majority::new(&new), None);
        assert_eq!(alone.highest_reached(matched).0, 3);
        let only_old = |id: NodeId| id.0 <= 3;
        assert!(!joint.is_acknowledged(only_old), "the new voters have not acknowledged");
        assert!(joint.is_acknowledged(|id| id.0 != 4 && id.0 != 1));
        assert_eq!(joint.vote_result(|id| only_old(id).then_some(true)), VoteResult::Pending);
        assert_eq!(joint.vote_result(|id| Some(id.0 >= 2)), VoteResult::Won);
        // The old voters refuse: whatever the new ones say, the election is lost.
        assert_eq!(joint.vote_result(|id| Some(id.0 > 3)), VoteResult::Lost);
    }
}
