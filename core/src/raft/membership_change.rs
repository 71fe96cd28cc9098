//! What a membership change asks for, why a leader refuses one, and the memberships a change
//! goes through: C_old, the joint C_old,new, then C_new.

use core::fmt;

use crate::ids::{LogIndex, NodeId};
use crate::raft::membership::Membership;

/// One step of a membership change. A change is a list of steps taken together: replacing a
/// voter is `[Promote { id: new }, Remove { id: old }]`, growing from 3 to 5 voters is two
/// promotions (of learners added before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Adds a node as a learner, reached at `address` (bytes Raft keeps with the membership
    /// but never reads). A node joins a cluster as a learner and is promoted once it caught up.
    AddLearner {
        /// The new member; ids are never reused.
        id: NodeId,
        /// Where the driver reaches it.
        address: Vec<u8>,
    },
    /// Makes a learner that has caught up a voter (see `Config::max_promotion_lag`).
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Removes a voter or a learner (the leader itself too: it steps down once the change
    /// commits, see `RaftNode::propose_membership_change`).
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// Why a leader did not start a membership change. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeRefused {
    /// Only the leader changes the membership (a leader handing over its leadership names the
    /// target).
    NotLeader {
        /// The leader this node knows of, where to retry.
        hint: Option<NodeId>,
    },
    /// The leader has not yet committed an entry of its own term. Until then it cannot tell
    /// whether a membership entry of an earlier leader committed, and a change based on the
    /// wrong one may form quorums that do not overlap (the single-server change bug of 2015,
    /// Ongaro on raft-dev). Retry once its first entry commits (normally within a round trip).
    NotCommittedInTerm,
    /// Another change is in progress: its entry at `index` is not committed yet, or it is the
    /// joint configuration, which the leader leaves by itself once it commits.
    ChangeInProgress {
        /// The membership entry of the change in progress.
        index: LogIndex,
    },
    /// The change has no steps.
    Empty,
    /// A step names a node that another step names too.
    NamedTwice(NodeId),
    /// `AddLearner` of a node that is already a member.
    AlreadyMember(NodeId),
    /// `AddLearner` of a node that was removed: ids are never used again (a node with an
    /// empty disk under an old id could vote a second time in a term its predecessor voted
    /// in). Give the node a new id.
    Retired(NodeId),
    /// `Promote` of a node that is not a learner.
    NotALearner(NodeId),
    /// `Remove` of a node that is not a member.
    NotAMember(NodeId),
    /// The change would leave no voters.
    NoVoters,
    /// `Promote` of a learner whose log lags too far behind the leader's (by more than
    /// `Config::max_promotion_lag`): a voter that cannot acknowledge new entries at once
    /// could stall commits of the new configuration.
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// The last entry it is known to hold.
        match_index: LogIndex,
        /// The leader's last entry.
        last_index: LogIndex,
    },
    /// `Promote` of a learner that has not acknowledged an append within the minimal election
    /// timeout: it may be down or cut off.
    LearnerSilent(NodeId),
}

impl Membership {
    /// The membership `changes` make of this one, which is not joint: C_new.
    pub(crate) fn changed(&self, changes: &[MemberChange]) -> Result<Membership, ChangeRefused> {
        debug_assert!(!self.is_joint(), "a change starts from a settled membership");
        if changes.is_empty() {
            return Err(ChangeRefused::Empty);
        }
        let mut voters = self.voters().to_vec();
        let mut learners = self.learners().to_vec();
        let mut addresses = self.addresses().clone();
        let mut named: Vec<NodeId> = Vec::with_capacity(changes.len());
        for change in changes {
            let id = change.node();
            if named.contains(&id) {
                return Err(ChangeRefused::NamedTwice(id));
            }
            named.push(id);
            match change {
                MemberChange::AddLearner { address, .. } => {
                    if self.is_member(id) {
                        return Err(ChangeRefused::AlreadyMember(id));
                    }
                    if self.is_retired(id) {
                        return Err(ChangeRefused::Retired(id));
                    }
                    learners.push(id);
                    addresses.insert(id, address.clone());
                }
                MemberChange::Promote { .. } => {
                    if !self.is_learner(id) {
                        return Err(ChangeRefused::NotALearner(id));
                    }
                    learners.retain(|&learner| learner != id);
                    voters.push(id);
                }
                MemberChange::Remove { .. } => {
                    if !self.is_member(id) {
                        return Err(ChangeRefused::NotAMember(id));
                    }
                    voters.retain(|&voter| voter != id);
                    learners.retain(|&learner| learner != id);
                    // Retired: listed without an address (see `Membership::from_parts`).
                    addresses.entry(id).or_default();
                }
            }
        }
        if voters.is_empty() {
            return Err(ChangeRefused::NoVoters);
        }
        Ok(Membership::from_parts(voters, Vec::new(), learners, addresses))
    }

    /// The entry that begins the change to `target`: the joint C_old,new if the voters change,
    /// otherwise `target` itself (learners never count for a quorum, so adding or removing one
    /// changes no decision, and takes one step).
    pub(crate) fn transition_to(&self, target: Membership) -> Membership {
        if target.voters() == self.voters() {
            return target;
        }
        // The outgoing voters keep their addresses until the joint state ends (`target` has
        // retired those it removes).
        let mut addresses = target.addresses().clone();
        for &voter in self.voters() {
            if let Some(address) = self.address(voter) {
                addresses.insert(voter, address.to_vec());
            }
        }
        let learners = target.learners().to_vec();
        Membership::from_parts(
            target.voters().to_vec(),
            self.voters().to_vec(),
            learners,
            addresses,
        )
    }

    /// C_new, which ends the joint change this membership is in.
    pub(crate) fn leave_joint(&self) -> Membership {
        debug_assert!(self.is_joint(), "only a joint membership is left");
        let (voters, learners) = (self.voters().to_vec(), self.learners().to_vec());
        Membership::from_parts(voters, Vec::new(), learners, self.addresses().clone())
    }
}

impl MemberChange {
    /// The node the step is about.
    pub fn node(&self) -> NodeId {
        match self {
            MemberChange::AddLearner { id, .. }
            | MemberChange::Promote { id }
            | MemberChange::Remove { id } => *id,
        }
    }
}

impl fmt::Display for ChangeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeRefused::NotLeader { .. } => write!(f, "only the leader changes the membership"),
            ChangeRefused::NotCommittedInTerm => {
                write!(f, "the leader has not yet committed an entry of its term")
            }
            ChangeRefused::ChangeInProgress { index } => {
                write!(f, "the membership change at {index} is still in progress")
            }
            ChangeRefused::Empty => write!(f, "a change without steps"),
            ChangeRefused::NamedTwice(id) => write!(f, "node {id} is named by two steps"),
            ChangeRefused::AlreadyMember(id) => write!(f, "node {id} is already a member"),
            ChangeRefused::Retired(id) => write!(
                f,
                "node {id} was removed from this cluster and its id is never used again: give \
                 the node a new id"
            ),
            ChangeRefused::NotALearner(id) => write!(f, "node {id} is not a learner"),
            ChangeRefused::NotAMember(id) => write!(f, "node {id} is not a member"),
            ChangeRefused::NoVoters => write!(f, "the change would leave no voters"),
            ChangeRefused::LearnerBehind { id, match_index, last_index } => write!(
                f,
                "learner {id} has not caught up: it holds the log up to {match_index} of {last_index}"
            ),
            ChangeRefused::LearnerSilent(id) => {
                write!(f, "learner {id} has not acknowledged entries within an election timeout")
            }
        }
    }
}

impl std::error::Error for ChangeRefused {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    fn add(id: u64) -> MemberChange {
        MemberChange::AddLearner { id: NodeId(id), address: format!("n{id}").into_bytes() }
    }

    #[test]
    fn a_change_of_voters_goes_through_the_joint_configuration() {
        let three = Membership::with_voters(ids(&[1, 2, 3])).with_address(NodeId(1), "n1");
        let with_learners = three.changed(&[add(4), add(5)]).unwrap();
        assert_eq!(three.transition_to(with_learners.clone()), with_learners, "learners: one step");
        let promote = |id| MemberChange::Promote { id: NodeId(id) };
        let remove = |id| MemberChange::Remove { id: NodeId(id) };
        let target = with_learners.changed(&[promote(4), promote(5), remove(1)]).unwrap();
        assert_eq!(target.to_string(), "voters=2,3,4,5");
        let joint = with_learners.transition_to(target.clone());
        assert_eq!(joint.to_string(), "voters=2,3,4,5 outgoing=1,2,3");
        assert_eq!(joint.address(NodeId(1)), Some(&b"n1"[..]), "an outgoing voter is reachable");
        assert_eq!(joint.validate(), Ok(()));
        let settled = joint.leave_joint();
        assert_eq!(settled, target);
        assert_eq!(settled.address(NodeId(1)), None);
        assert_eq!(settled.address(NodeId(4)), Some(&b"n4"[..]));
        assert_eq!(settled.retired(), ids(&[1]), "node 1 is retired for good");
        assert_eq!(settled.changed(&[add(1)]), Err(ChangeRefused::Retired(NodeId(1))));
        let without_learner = with_learners.changed(&[remove(5)]).unwrap();
        assert_eq!(without_learner.retired(), ids(&[5]), "a removed learner too");
        assert_eq!(with_learners.transition_to(without_learner.clone()), without_learner);
    }

    #[test]
    fn every_impossible_step_is_refused_with_its_reason() {
        let membership = Membership::from_parts(ids(&[1, 2]), vec![], ids(&[3]), BTreeMap::new());
        let cases = [
            (vec![], ChangeRefused::Empty),
            (vec![add(4), add(4)], ChangeRefused::NamedTwice(NodeId(4))),
            (vec![add(2)], ChangeRefused::AlreadyMember(NodeId(2))),
            (vec![MemberChange::Promote { id: NodeId(2) }], ChangeRefused::NotALearner(NodeId(2))),
            (vec![MemberChange::Remove { id: NodeId(9) }], ChangeRefused::NotAMember(NodeId(9))),
            (
                vec![
                    MemberChange::Remove { id: NodeId(1) },
                    MemberChange::Remove { id: NodeId(2) },
                ],
                ChangeRefused::NoVoters,
            ),
        ];
        for (steps, refused) in cases {
            assert_eq!(membership.changed(&steps), Err(refused.clone()), "{steps:?}");
            assert!(!refused.to_string().is_empty());
        }
        let removed = membership.changed(&[MemberChange::Remove { id: NodeId(3) }]).unwrap();
        assert_eq!(removed.to_string(), "voters=1,2");
    }
}
