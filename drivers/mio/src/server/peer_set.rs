//! The links this node dials, one per peer the [`Directory`](super::directory::Directory) names:
//! links are added when a membership brings a node, replaced when its address changes, and closed
//! when the node leaves. The links of a node that joins and knows no membership yet are dormant:
//! they dial once there is something to send. Each link has a poll token of its own from a fixed
//! range; the token of a closed link is given to the next new one.

use std::collections::BTreeMap;

use mio::{Registry, Token};
use raftkv_core::raft::Message;
use raftkv_core::{Instant, NodeId};
use tracing::info;

use crate::server::peers::{PeerLink, peer_hello};
use crate::wire::Hello;

/// One of `PeerLink`'s constructors: how a new link dials.
type NewLink = fn(NodeId, String, Token, Hello, Instant) -> PeerLink;

/// The links to the peers.
#[derive(Debug)]
pub(super) struct PeerSet {
    own: NodeId,
    cluster: String,
    /// Link `slot` has token `first_token + slot`; `None`: free.
    slots: Vec<Option<PeerLink>>,
    /// Peer -> its slot.
    index: BTreeMap<NodeId, usize>,
    first_token: usize,
    /// Tokens from `first_token` up to here are links'.
    token_limit: usize,
}

impl PeerSet {
    /// No link yet; links take tokens in `first_token..token_limit`.
    pub(super) fn new(
        own: NodeId,
        cluster: &str,
        first_token: usize,
        token_limit: usize,
    ) -> PeerSet {
        PeerSet {
            own,
            cluster: cluster.to_string(),
            slots: Vec::new(),
            index: BTreeMap::new(),
            first_token,
            token_limit,
        }
    }

    /// Makes the links exactly those to `peers` and `answered` (id and address): closes the
    /// others, and those whose address changed; adds the missing ones: links to `peers` are
    /// dialed at once unless `dormant` (then they dial once there is something to send), and
    /// dormant ones are woken otherwise; links to `answered` dial only to send (see
    /// [`PeerLink::on_demand`]).
    pub(super) fn sync(
        &mut self,
        registry: &Registry,
        peers: &[(NodeId, String)],
        answered: &[(NodeId, String)],
        dormant: bool,
        now: Instant,
    ) {
        let stale: Vec<NodeId> = self
            .index
            .iter()
            .filter(|&(id, &slot)| {
                // Wanted at this address, and as a member's link or an answering one.
                let member = peers.iter().find(|(peer, _)| peer == id).map(|(_, a)| (a, false));
                let retired =
                    || answered.iter().find(|(peer, _)| peer == id).map(|(_, a)| (a, true));
                let wanted = member.or_else(retired);
                self.slots[slot].as_ref().is_none_or(|link| {
                    wanted.is_none_or(|(address, on_demand)| {
                        link.address() != address.as_str() || link.is_on_demand() != on_demand
                    })
                })
            })
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            let slot = self.index.remove(&id).expect("listed above");
            if let Some(mut link) = self.slots[slot].take() {
                info!(peer = %id, address = %link.address(), "no longer reaching the peer there");
                link.close(registry);
            }
        }
        for (id, address) in peers {
            if *id == self.own {
                continue;
            }
            if let Some(link) = self.get_mut(*id) {
                if !dormant {
                    link.wake(now);
                }
                continue;
            }
            let link: NewLink = if dormant { PeerLink::dormant } else { PeerLink::new };
            self.add(*id, address, now, link);
        }
        for (id, address) in answered {
            if *id == self.own || self.index.contains_key(id) {
                continue;
            }
            self.add(*id, address, now, PeerLink::on_demand);
        }
    }

    /// Adds a link to `id` at `address`, made by `link`, in the lowest free slot.
    fn add(&mut self, id: NodeId, address: &str, now: Instant, link: NewLink) {
        let slot = self.free_slot();
        let token = Token(self.first_token + slot);
        let hello = peer_hello(&self.cluster, self.own, id);
        self.slots[slot] = Some(link(id, address.to_string(), token, hello, now));
        self.index.insert(id, slot);
    }

    /// The lowest free slot, a new one if none is free.
    fn free_slot(&mut self) -> usize {
        if let Some(slot) = self.slots.iter().position(Option::is_none) {
            return slot;
        }
        self.slots.push(None);
        let slot = self.slots.len() - 1;
        // As many slots as peers at once: far below the range of tokens.
        assert!(self.first_token + slot < self.token_limit, "out of peer link tokens");
        slot
    }

    /// The link with poll token `token`, if it is one of these.
    pub(super) fn by_token(&mut self, token: Token) -> Option<&mut PeerLink> {
        let slot = token.0.checked_sub(self.first_token)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    /// The link to `id`, if there is one.
    pub(super) fn get_mut(&mut self, id: NodeId) -> Option<&mut PeerLink> {
        let slot = *self.index.get(&id)?;
        self.slots[slot].as_mut()
    }

    /// Queues `message` on the link to its addressee; without a link it is dropped (Raft
    /// sends again what matters).
    pub(super) fn send(&mut self, message: &Message) {
        if let Some(link) = self.get_mut(message.to) {
            link.send(message);
        }
    }

    /// Every link.
    pub(super) fn iter(&self) -> impl Iterator<Item = &PeerLink> {
        self.slots.iter().flatten()
    }

    /// The links to members (and to nodes leaving), not those only answered.
    pub(super) fn members(&self) -> impl Iterator<Item = &PeerLink> {
        self.iter().filter(|link| !link.is_on_demand())
    }

    /// Every link, to change.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut PeerLink> {
        self.slots.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use mio::Poll;

    use super::*;

    fn at(ids: &[u64]) -> Vec<(NodeId, String)> {
        ids.iter().map(|&id| (NodeId(id), format!("127.0.0.1:{}", 1000 + id))).collect()
    }

    fn ids<'a>(links: impl Iterator<Item = &'a PeerLink>) -> Vec<u64> {
        links.map(|link| link.id.0).collect()
    }

    #[test]
    fn a_member_that_retires_gets_an_answering_link_instead_of_its_dialing_one() {
        let poll = Poll::new().expect("poll");
        let now = Instant::from_millis(1);
        let mut links = PeerSet::new(NodeId(1), "test", 10, 100);
        links.sync(poll.registry(), &at(&[1, 2, 3]), &[], false, now);
        assert_eq!(ids(links.members()), [2, 3]);
        links.sync(poll.registry(), &at(&[1, 2]), &at(&[3]), false, now);
        assert_eq!(ids(links.members()), [2], "3 no longer dialed as a member");
        assert!(links.get_mut(NodeId(3)).is_some_and(|link| link.is_on_demand()));
        links.sync(poll.registry(), &at(&[1, 2]), &[], false, now);
        assert!(links.get_mut(NodeId(3)).is_none(), "forgotten");
    }
}
