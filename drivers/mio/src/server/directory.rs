//! Who this node talks to and where they are: the members of the membership in force, with the
//! addresses the log carries for them. A node dials each of them, accepts their connections,
//! and names them to clients in its `Welcome`.
//!
//! Three cases stretch that: members that the membership in force removed stay reachable until
//! it commits, and a few seconds more (the leader must still tell them they were removed, and
//! answers their pre-votes by telling them that their removal committed); after that they are
//! retired: their connections are still accepted and answered, but never dialed unprompted (a
//! removed node that was down through the grace period asks for pre-votes when it comes back,
//! and only an answer tells it that its removal committed); and a node that joins a running
//! cluster knows no membership at first: it reaches the members its `--join` addresses named,
//! and accepts any peer (the leader that adds it is not known to it yet).

use raftkv_core::raft::Membership;
use raftkv_core::{Duration, Instant, LogIndex, NodeId};

/// How long members a committed change removed stay reachable: several election timeouts, in
/// which a removed node that missed its removal asks for a pre-vote and is told.
const LEAVING_GRACE: Duration = Duration::from_millis(5_000);

/// Retired nodes remembered (the most recently removed): removals are rare, and one that
/// slips out is only left asking for pre-votes, which members refuse.
const RETIRED_REMEMBERED: usize = 16;

/// The nodes this node reaches, and from which it accepts peer connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Directory {
    /// The members of the membership in force and their addresses; while none is known, the
    /// members the cluster named when this node joined.
    members: Vec<(NodeId, String)>,
    /// Whether `members` comes from a membership this node holds.
    knows_membership: bool,
    /// Members the membership in force removed, reached until it commits, and then until
    /// `leaving_until`.
    leaving: Vec<(NodeId, String)>,
    /// When the members it removed stop being reached, once it committed.
    leaving_until: Option<Instant>,
    /// Nodes whose removal committed and whose grace period passed, oldest first: answered
    /// when they dial this node, never dialed otherwise.
    retired: Vec<(NodeId, String)>,
    /// The index of the membership in force.
    index: LogIndex,
}

impl Directory {
    /// The directory of `membership` in force from `index`.
    pub(super) fn of(membership: &Membership, index: LogIndex) -> Directory {
        Directory {
            members: addresses(membership),
            knows_membership: !membership.is_empty(),
            leaving: Vec::new(),
            leaving_until: None,
            retired: Vec::new(),
            index,
        }
    }

    /// The directory of a node restarted with `membership` in force from `index`, which
    /// replaced `previous`, and `commit` known committed: the members that `membership`
    /// removed stay reachable until it commits, as on a change ([`Directory::update`]); a
    /// leader restarted before its removal of a node committed must still reach that node.
    pub(super) fn restarted(
        membership: &Membership,
        index: LogIndex,
        previous: Option<&Membership>,
        commit: LogIndex,
    ) -> Directory {
        let mut directory = Directory::of(previous.unwrap_or(membership), index);
        directory.update(membership, index, commit);
        directory
    }

    /// The directory of a node that joins a cluster and holds no membership yet: it reaches
    /// `contacts`, the members the cluster named.
    pub(super) fn joining(contacts: Vec<(NodeId, String)>) -> Directory {
        Directory { members: contacts, ..Directory::default() }
    }

    /// `membership` came into force at `index`: the members it removed stay reachable until
    /// `commit` reaches it, and a grace period more (see [`Directory::on_commit`]); if it is
    /// committed already, they are retired at once.
    pub(super) fn update(&mut self, membership: &Membership, index: LogIndex, commit: LogIndex) {
        let mut next = Directory::of(membership, index);
        next.retired = std::mem::take(&mut self.retired);
        if self.knows_membership {
            let mut removed = std::mem::take(&mut self.leaving);
            removed.append(&mut self.members);
            removed.retain(|(id, _)| !membership.is_member(*id));
            removed.sort_unstable();
            removed.dedup_by_key(|(id, _)| *id);
            if index > commit {
                next.leaving = removed;
            } else {
                next.retire(removed);
            }
        }
        next.retired.retain(|(id, _)| !membership.is_member(*id));
        *self = next;
    }

    /// `removed` no longer belong to the cluster: remembered to answer, the newest kept.
    fn retire(&mut self, removed: Vec<(NodeId, String)>) {
        for (id, address) in removed {
            self.retired.retain(|(retired, _)| *retired != id);
            self.retired.push((id, address));
        }
        let excess = self.retired.len().saturating_sub(RETIRED_REMEMBERED);
        self.retired.drain(..excess);
    }

    /// The commit index is `commit` at `now`: once the membership in force is committed and
    /// the grace period after that has passed, the members it removed are no longer reached.
    /// Returns whether the directory changed.
    pub(super) fn on_commit(&mut self, commit: LogIndex, now: Instant) -> bool {
        if self.leaving.is_empty() || commit < self.index {
            return false;
        }
        match self.leaving_until {
            None => {
                self.leaving_until = Some(now + LEAVING_GRACE);
                false
            }
            Some(until) if now >= until => {
                let leaving = std::mem::take(&mut self.leaving);
                self.retire(leaving);
                self.leaving_until = None;
                true
            }
            Some(_) => false,
        }
    }

    /// When [`Directory::on_commit`] next has something to do.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.leaving_until
    }

    /// Every node to dial and its address, `own` excepted.
    pub(super) fn peers(&self, own: NodeId) -> Vec<(NodeId, String)> {
        self.members.iter().chain(&self.leaving).filter(|(id, _)| *id != own).cloned().collect()
    }

    /// The retired nodes and their addresses: reached only to answer them.
    pub(super) fn retired(&self) -> &[(NodeId, String)] {
        &self.retired
    }

    /// Whether node `id` may open a peer connection to this node: a member, a leaving or a
    /// retired one, or anyone while this node knows no membership.
    pub(super) fn accepts_peer(&self, id: NodeId) -> bool {
        !self.knows_membership
            || self.members.iter().chain(&self.leaving).chain(&self.retired).any(|(n, _)| *n == id)
    }

    /// The members and their addresses, as a `Welcome` names them to clients.
    pub(super) fn members(&self) -> &[(NodeId, String)] {
        &self.members
    }

    /// Whether this node knows no membership yet (it joins): its links to the members it was
    /// told of wait until it has something to send.
    pub(super) fn is_joining(&self) -> bool {
        !self.knows_membership
    }

    /// How many nodes this node may reach at most, for sizing resource limits.
    pub(super) fn len(&self) -> usize {
        self.members.len() + self.leaving.len() + self.retired.len()
    }
}

/// The members of `membership` that have an address, with it (addresses are the `HOST:PORT`
/// text this driver writes; anything else is shown as lossy UTF-8 and fails to resolve).
fn addresses(membership: &Membership) -> Vec<(NodeId, String)> {
    membership
        .members()
        .into_iter()
        .filter_map(|id| {
            let address = membership.address(id)?;
            Some((id, String::from_utf8_lossy(address).into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(voters: &[u64]) -> Membership {
        voters.iter().fold(Membership::with_voters(voters.iter().map(|&v| NodeId(v))), |m, &v| {
            m.with_address(NodeId(v), format!("host:{v}"))
        })
    }

    fn ids(peers: &[(NodeId, String)]) -> Vec<u64> {
        peers.iter().map(|(id, _)| id.0).collect()
    }

    #[test]
    fn a_removed_member_stays_reachable_until_its_removal_commits() {
        let mut directory = Directory::of(&membership(&[1, 2, 3]), LogIndex(0));
        assert_eq!(ids(&directory.peers(NodeId(1))), [2, 3]);
        directory.update(&membership(&[1, 2]), LogIndex(7), LogIndex(6));
        assert_eq!(ids(&directory.peers(NodeId(1))), [2, 3], "3 must learn it was removed");
        assert!(directory.accepts_peer(NodeId(3)));
        assert_eq!(ids(directory.members()), [1, 2], "clients are told the members only");
        let now = Instant::from_millis(1_000);
        assert!(!directory.on_commit(LogIndex(6), now));
        assert!(!directory.on_commit(LogIndex(7), now), "committed: the grace period starts");
        assert_eq!(directory.deadline(), Some(now + LEAVING_GRACE));
        assert!(directory.accepts_peer(NodeId(3)), "still told it was removed");
        assert!(directory.on_commit(LogIndex(7), now + LEAVING_GRACE));
        assert_eq!(directory.deadline(), None);
        assert_eq!(ids(&directory.peers(NodeId(1))), [2]);
        assert_eq!(ids(directory.retired()), [3], "answered, never dialed unprompted");
        assert!(directory.accepts_peer(NodeId(3)) && !directory.accepts_peer(NodeId(9)));
        directory.update(&membership(&[1]), LogIndex(9), LogIndex(9));
        assert_eq!(ids(&directory.peers(NodeId(1))), Vec::<u64>::new(), "committed at once");
        assert_eq!(ids(directory.retired()), [3, 2], "retired at once, the newest last");
        assert_eq!(directory.len(), 3);
    }

    #[test]
    fn retired_nodes_are_remembered_up_to_a_bound_newest_first_kept() {
        let all: Vec<u64> = (1..=RETIRED_REMEMBERED as u64 + 3).collect();
        let mut directory = Directory::of(&membership(&all), LogIndex(1));
        for removed in 1..all.len() {
            let index = LogIndex(removed as u64 + 1);
            directory.update(&membership(&all[removed..]), index, index);
        }
        let retired = ids(directory.retired());
        assert_eq!(retired.len(), RETIRED_REMEMBERED);
        assert_eq!(retired.last(), Some(&(all.len() as u64 - 1)), "the newest kept");
        assert!(!directory.accepts_peer(NodeId(1)), "the oldest forgotten");
    }

    #[test]
    fn a_node_restarted_before_a_removal_committed_still_reaches_the_removed_member() {
        let (before, after) = (membership(&[1, 2, 3]), membership(&[1, 2]));
        let mut directory = Directory::restarted(&after, LogIndex(7), Some(&before), LogIndex(0));
        assert_eq!(ids(&directory.peers(NodeId(1))), [2, 3], "3 must learn it was removed");
        assert!(directory.accepts_peer(NodeId(3)));
        assert_eq!(ids(directory.members()), [1, 2]);
        let now = Instant::from_millis(1_000);
        assert!(!directory.on_commit(LogIndex(7), now), "committed: the grace period starts");
        assert!(directory.on_commit(LogIndex(7), now + LEAVING_GRACE));
        assert_eq!(ids(&directory.peers(NodeId(1))), [2]);

        let committed = Directory::restarted(&after, LogIndex(7), Some(&before), LogIndex(7));
        assert_eq!(ids(&committed.peers(NodeId(1))), [2], "a removal known committed");
        assert_eq!(ids(committed.retired()), [3], "answered if it asks");
        let first = Directory::restarted(&before, LogIndex(0), None, LogIndex(0));
        assert_eq!(first, Directory::of(&before, LogIndex(0)));
    }

    #[test]
    fn a_joining_node_reaches_its_contacts_and_accepts_any_peer_until_it_learns_a_membership() {
        let mut directory = Directory::joining(vec![(NodeId(1), "host:1".to_string())]);
        assert_eq!(ids(&directory.peers(NodeId(4))), [1]);
        assert!(directory.is_joining());
        assert!(directory.accepts_peer(NodeId(2)), "the leader may be one it was not told of");
        let learned = Membership::with_voters([NodeId(1), NodeId(2)])
            .with_address(NodeId(1), "host:1")
            .with_address(NodeId(2), "host:2");
        directory.update(&learned, LogIndex(3), LogIndex(0));
        assert_eq!(ids(&directory.peers(NodeId(4))), [1, 2], "nothing lingers from contacts");
        assert!(!directory.accepts_peer(NodeId(5)) && !directory.is_joining());
        assert_eq!(directory.len(), 2);
    }
}
