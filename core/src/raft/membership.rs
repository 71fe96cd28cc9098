//! A cluster's membership: who votes, who only learns, and, during a joint change, who votes in
//! the configuration being left. It lives in the log (`Payload::Membership` entries) and in
//! snapshots; a node uses the latest one its log holds (see `membership_log`).

use core::fmt;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{LogIndex, NodeId};
use crate::raft::quorum::{JointQuorum, Majority};

/// The members of a cluster, addressed by node id.
///
/// - Voters elect leaders and make up quorums.
/// - Learners receive the log and snapshots but never count for a quorum, and campaign only
///   when a candidate showed that the voters need their log (`RaftNode::may_campaign`).
/// - During a joint change from C_old to C_new (C_old,new), `voters` are C_new's and
///   `outgoing_voters` C_old's: a quorum is a majority of each.
///
/// Each member may carry an address: bytes Raft stores and replicates with the membership but
/// never reads (the driver's, e.g. `host:port`), so that a node learns where its peers are
/// from the log. A removed node stays listed, without an address, as retired: its id is never
/// used again (a new node under an old id could vote a second time in a term the old one voted
/// in).
#[derive(Clone, Debug, Default, Eq)]
pub struct Membership {
    /// Shared: a membership rides in entries, messages, snapshots, outputs and statuses, which
    /// stay one pointer larger for it, and copies of it cost no allocation. Never changed once
    /// shared (`Arc::make_mut` while it is built).
    sets: Arc<MemberSets>,
}

/// The lists of a [`Membership`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct MemberSets {
    /// Sorted.
    voters: Vec<NodeId>,
    /// Sorted; empty unless joint.
    outgoing: Vec<NodeId>,
    /// Sorted.
    learners: Vec<NodeId>,
    /// Every node that has been a member: a member with its address (empty: none), a removed
    /// node with an empty one (retired). Retired nodes live here rather than in a list of
    /// their own so that memberships encoded before they were kept decode as they are.
    addresses: BTreeMap<NodeId, Vec<u8>>,
}

/// Why a membership cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// It has no voters: nothing could ever be elected or committed.
    NoVoters,
    /// A list is out of order (only a broken disk or peer writes one).
    Unsorted,
    /// A node appears twice: twice in one list, or as both a voter and a learner.
    ListedTwice(NodeId),
    /// An address is given for a node that is not a member (a retired node has none).
    AddressOfNonMember(NodeId),
}

/// Where a node stands in the membership it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Standing {
    /// It votes and may campaign (as an incoming or an outgoing voter).
    Voter,
    /// It receives the log and never counts for a quorum; it campaigns only when the voters
    /// need its log.
    Learner,
    /// The membership entry at `by` removed it. It campaigns only while it does not know that
    /// entry committed (the membership before may still need it to elect anyone), and never
    /// once it does.
    Removed {
        /// The index of the membership entry that left it out.
        by: LogIndex,
    },
    /// It is not in the membership its log holds: it has not been added yet (a node joining a
    /// cluster, still catching up), or was removed before its snapshot. It never campaigns.
    NotAMember,
}

impl Membership {
    /// A membership of `voters` alone, as a new cluster starts with. Duplicates are kept, for
    /// [`validate`](Self::validate) to name.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        let mut voters: Vec<NodeId> = voters.into_iter().collect();
        voters.sort_unstable();
        let sets = MemberSets { voters, ..MemberSets::default() };
        Membership { sets: Arc::new(sets) }
    }

    /// This membership with `address` recorded for member `id`.
    pub fn with_address(mut self, id: NodeId, address: impl Into<Vec<u8>>) -> Membership {
        Arc::make_mut(&mut self.sets).addresses.insert(id, address.into());
        self
    }

    /// The voters (C_new's during a joint change), sorted.
    pub fn voters(&self) -> &[NodeId] {
        &self.sets.voters
    }

    /// During a joint change, the voters of the configuration being left; otherwise empty.
    pub fn outgoing_voters(&self) -> &[NodeId] {
        &self.sets.outgoing
    }

    /// The learners, sorted.
    pub fn learners(&self) -> &[NodeId] {
        &self.sets.learners
    }

    /// The address recorded for member `id`, if any.
    pub fn address(&self, id: NodeId) -> Option<&[u8]> {
        self.sets.addresses.get(&id).map(Vec::as_slice).filter(|address| !address.is_empty())
    }

    /// Whether `id` was a member and was removed: its id is never used again.
    pub fn is_retired(&self, id: NodeId) -> bool {
        self.sets.addresses.contains_key(&id) && !self.is_member(id)
    }

    /// The nodes removed from this cluster, sorted (see [`is_retired`](Self::is_retired)).
    pub fn retired(&self) -> Vec<NodeId> {
        self.sets.addresses.keys().copied().filter(|&id| !self.is_member(id)).collect()
    }

    /// Whether this is the joint configuration C_old,new of a change in progress.
    pub fn is_joint(&self) -> bool {
        !self.sets.outgoing.is_empty()
    }

    /// Whether `id` votes (in either configuration of a joint change).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.sets.voters.binary_search(&id).is_ok() || self.sets.outgoing.binary_search(&id).is_ok()
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.sets.learners.binary_search(&id).is_ok()
    }

    /// Whether `id` is a voter or a learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Whether it names nobody: a node that joins a cluster knows no membership until its
    /// leader sends one.
    pub fn is_empty(&self) -> bool {
        self.sets.voters.is_empty()
            && self.sets.outgoing.is_empty()
            && self.sets.learners.is_empty()
    }

    /// Every member, sorted, each once.
    pub fn members(&self) -> Vec<NodeId> {
        let mut members = self.all_voters();
        members.extend_from_slice(&self.sets.learners);
        members.sort_unstable();
        members
    }

    /// Every voter, incoming or outgoing, sorted, each once.
    pub(crate) fn all_voters(&self) -> Vec<NodeId> {
        let mut voters = self.sets.voters.clone();
        voters.extend_from_slice(&self.sets.outgoing);
        voters.sort_unstable();
        voters.dedup();
        voters
    }

    /// Where `id` stands, given the membership this one replaced (`previous`, if known) and the
    /// index of the entry that made this one.
    pub(crate) fn standing_of(
        &self,
        id: NodeId,
        index: LogIndex,
        previous: Option<&Membership>,
    ) -> Standing {
        if self.is_voter(id) {
            Standing::Voter
        } else if self.is_learner(id) {
            Standing::Learner
        } else if previous.is_some_and(|previous| previous.is_member(id)) {
            Standing::Removed { by: index }
        } else {
            Standing::NotAMember
        }
    }

    /// The quorum that decides under this membership.
    pub(crate) fn quorum(&self) -> JointQuorum<'_> {
        let outgoing = self.is_joint().then(|| Majority::new(&self.sets.outgoing));
        JointQuorum::new(Majority::new(&self.sets.voters), outgoing)
    }

    /// Checks that the membership can be used: some voters, every list sorted, nobody listed
    /// twice, addresses only for members.
    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.sets.voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        for list in [&self.sets.voters, &self.sets.outgoing, &self.sets.learners] {
            for pair in list.windows(2) {
                if pair[0] == pair[1] {
                    return Err(MembershipError::ListedTwice(pair[0]));
                }
                if pair[0] > pair[1] {
                    return Err(MembershipError::Unsorted);
                }
            }
        }
        if let Some(&both) = self.sets.learners.iter().find(|&&learner| self.is_voter(learner)) {
            return Err(MembershipError::ListedTwice(both));
        }
        let stranger = self
            .sets
            .addresses
            .iter()
            .find(|&(&id, address)| !address.is_empty() && !self.is_member(id));
        if let Some((&stranger, _)) = stranger {
            return Err(MembershipError::AddressOfNonMember(stranger));
        }
        Ok(())
    }

    /// Bytes it weighs in an entry, for batching limits (an id is eight bytes).
    pub(crate) fn size_bytes(&self) -> usize {
        const ID_BYTES: usize = 8;
        let ids = self.sets.voters.len() + self.sets.outgoing.len() + self.sets.learners.len();
        let addresses: usize =
            self.sets.addresses.values().map(|address| ID_BYTES + address.len()).sum();
        ids * ID_BYTES + addresses
    }

    /// Builds a membership from its parts, sorted; `addresses` names every node that has been a
    /// member: those that are no longer one are kept as retired, without their address.
    pub(crate) fn from_parts(
        voters: Vec<NodeId>,
        outgoing: Vec<NodeId>,
        learners: Vec<NodeId>,
        mut addresses: BTreeMap<NodeId, Vec<u8>>,
    ) -> Membership {
        let sorted = |mut ids: Vec<NodeId>| {
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let sets = MemberSets {
            voters: sorted(voters),
            outgoing: sorted(outgoing),
            learners: sorted(learners),
            addresses: BTreeMap::new(),
        };
        let mut membership = Membership { sets: Arc::new(sets) };
        for (&id, address) in &mut addresses {
            if !membership.is_member(id) {
                address.clear();
            }
        }
        Arc::make_mut(&mut membership.sets).addresses = addresses;
        membership
    }

    /// The addresses, by member, and the retired nodes (with empty ones).
    pub(crate) fn addresses(&self) -> &BTreeMap<NodeId, Vec<u8>> {
        &self.sets.addresses
    }
}

impl PartialEq for Membership {
    fn eq(&self, other: &Membership) -> bool {
        // Copies share their lists: most comparisons end here.
        Arc::ptr_eq(&self.sets, &other.sets) || self.sets == other.sets
    }
}

/// Encoded as its lists alone.
impl Serialize for Membership {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.sets.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Membership {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Membership, D::Error> {
        MemberSets::deserialize(deserializer).map(|sets| Membership { sets: Arc::new(sets) })
    }
}

impl fmt::Display for Membership {
    /// For example `voters=3,4,5 outgoing=1,2,3 learners=6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list =
            |ids: &[NodeId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        write!(f, "voters={}", list(&self.sets.voters))?;
        if self.is_joint() {
            write!(f, " outgoing={}", list(&self.sets.outgoing))?;
        }
        if !self.sets.learners.is_empty() {
            write!(f, " learners={}", list(&self.sets.learners))?;
        }
        Ok(())
    }
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::NoVoters => write!(f, "a membership without voters"),
            MembershipError::Unsorted => write!(f, "a membership whose lists are out of order"),
            MembershipError::ListedTwice(id) => write!(f, "node {id} is listed twice"),
            MembershipError::AddressOfNonMember(id) => {
                write!(f, "an address for node {id}, which is not a member")
            }
        }
    }
}

impl std::error::Error for MembershipError {}

impl fmt::Display for Standing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Standing::Voter => write!(f, "voter"),
            Standing::Learner => write!(f, "learner"),
            Standing::Removed { by } => write!(f, "removed by the membership entry at {by}"),
            Standing::NotAMember => write!(f, "not a member"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    /// A membership with these lists as they are, unsorted or overlapping.
    fn raw(voters: Vec<NodeId>, learners: Vec<NodeId>) -> Membership {
        let sets = MemberSets { voters, learners, ..MemberSets::default() };
        Membership { sets: Arc::new(sets) }
    }

    #[test]
    fn every_unusable_membership_is_refused_with_its_reason() {
        let valid = Membership::with_voters(ids(&[3, 1, 2])).with_address(NodeId(1), "a:1");
        assert_eq!(valid.validate(), Ok(()));
        assert_eq!(valid.voters(), ids(&[1, 2, 3]).as_slice(), "sorted");
        assert_eq!(valid.address(NodeId(1)), Some(&b"a:1"[..]));
        assert_eq!(Membership::default().validate(), Err(MembershipError::NoVoters));
        let twice = Membership::with_voters(ids(&[1, 2, 2]));
        assert_eq!(twice.validate(), Err(MembershipError::ListedTwice(NodeId(2))));
        let unsorted = raw(ids(&[2, 1]), vec![]);
        assert_eq!(unsorted.validate(), Err(MembershipError::Unsorted));
        let both = raw(ids(&[1, 2]), ids(&[2]));
        assert_eq!(both.validate(), Err(MembershipError::ListedTwice(NodeId(2))));
        let stranger = Membership::with_voters(ids(&[1])).with_address(NodeId(5), "x");
        assert_eq!(stranger.validate(), Err(MembershipError::AddressOfNonMember(NodeId(5))));
        let retired = Membership::with_voters(ids(&[1])).with_address(NodeId(5), "");
        assert_eq!(retired.validate(), Ok(()), "a retired node has no address");
        assert!(retired.is_retired(NodeId(5)) && !retired.is_retired(NodeId(1)));
        assert_eq!((retired.address(NodeId(5)), retired.retired()), (None, ids(&[5])));
        let errors = [
            MembershipError::NoVoters,
            MembershipError::Unsorted,
            MembershipError::ListedTwice(NodeId(2)),
            MembershipError::AddressOfNonMember(NodeId(5)),
        ];
        let mut texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), errors.len(), "each reads differently");
    }

    #[test]
    fn a_joint_membership_names_both_sides_and_its_members_once() {
        let joint =
            Membership::from_parts(ids(&[3, 4]), ids(&[1, 2, 3]), ids(&[5]), BTreeMap::new());
        assert!(joint.is_joint() && joint.is_voter(NodeId(1)) && joint.is_voter(NodeId(4)));
        assert!(joint.is_learner(NodeId(5)) && !joint.is_voter(NodeId(5)));
        assert_eq!(joint.members(), ids(&[1, 2, 3, 4, 5]));
        assert_eq!(joint.to_string(), "voters=3,4 outgoing=1,2,3 learners=5");
        assert_eq!(joint.validate(), Ok(()));
    }

    #[test]
    fn a_node_stands_as_voter_learner_removed_or_stranger() {
        let before = Membership::from_parts(ids(&[1, 2]), vec![], ids(&[3]), BTreeMap::new());
        let after = Membership::with_voters(ids(&[1]));
        let at = LogIndex(7);
        assert_eq!(after.standing_of(NodeId(1), at, Some(&before)), Standing::Voter);
        assert_eq!(before.standing_of(NodeId(3), at, None), Standing::Learner);
        assert_eq!(after.standing_of(NodeId(3), at, Some(&before)), Standing::Removed { by: at });
        assert_eq!(after.standing_of(NodeId(9), at, Some(&before)), Standing::NotAMember);
        assert_eq!(after.standing_of(NodeId(2), at, None), Standing::NotAMember);
    }
}
