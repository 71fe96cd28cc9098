//! Leadership transfer (thesis §3.10): the leader brings a chosen follower up to date, then
//! tells it to campaign at once; the voters grant even though they heard from the leader
//! recently. Used for planned restarts, so clients see a short pause instead of an election
//! timeout.

use core::fmt;

use crate::ids::NodeId;
use crate::raft::message::Body;
use crate::raft::node::{RaftNode, Role};
use crate::raft::pending_transfer::PendingTransfer;
use crate::time::{Duration, Instant};

/// Why a transfer cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Only a leader can hand over its leadership.
    NotLeader {
        /// The leader this node knows of.
        hint: Option<NodeId>,
    },
    /// The target is not a voter of the membership in force (the incoming one during a change).
    UnknownNode(NodeId),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::NotLeader { .. } => write!(f, "only the leader can transfer leadership"),
            TransferError::UnknownNode(id) => write!(f, "node {id} is not a voter"),
        }
    }
}

impl std::error::Error for TransferError {}

impl RaftNode {
    /// Hands leadership to `target`. Until it takes over (or an election timeout passes and
    /// the transfer is given up), this node refuses proposals with a hint to `target`.
    pub fn transfer_leadership(
        &mut self,
        now: Instant,
        target: NodeId,
    ) -> Result<(), TransferError> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader { hint: self.leader });
        }
        if target == self.config.id {
            return Ok(());
        }
        if !self.log.membership().voters().contains(&target) {
            return Err(TransferError::UnknownNode(target));
        }
        let deadline = self.now + Duration::from_millis(self.config.election_timeout_ms_max);
        self.transfer = Some(PendingTransfer::new(target, deadline));
        self.forfeit_lease();
        self.replicate_to(target);
        self.maybe_send_timeout_now(target);
        Ok(())
    }

    /// Where a transfer in progress is going.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.target())
    }

    /// Tells the target to campaign once it holds the whole log.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let last = self.log.last_index();
        if self.progress.get(&peer).is_none_or(|progress| progress.match_index() != last) {
            return;
        }
        let Some(transfer) = self.transfer.as_mut() else { return };
        if transfer.take_timeout_now(peer) {
            self.send(peer, self.term, Body::TimeoutNow);
        }
    }

    /// A leader's timer: a transfer that did not happen in time is given up.
    pub(crate) fn expire_transfer(&mut self) {
        if self.transfer.is_some_and(|transfer| transfer.has_expired(self.now)) {
            self.transfer = None;
        }
    }

    /// The leader of this term asks this node to take over.
    pub(crate) fn on_timeout_now(&mut self, from: NodeId) {
        if self.role == Role::Follower && self.leader == Some(from) {
            self.start_election(true);
        } else {
            self.counters.dropped_unexpected += 1;
        }
    }
}
