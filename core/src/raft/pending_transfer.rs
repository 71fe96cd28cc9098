//! A leadership transfer the leader has started and not yet given up.

use crate::time::Instant;

/// The target of a transfer (as an index among the peers), its deadline, and whether the
/// target was told to campaign.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingTransfer {
    peer: usize,
    deadline: Instant,
    timeout_now_sent: bool,
}

impl PendingTransfer {
    /// A transfer to `peer`, given up at `deadline` if it has not happened by then.
    pub(crate) fn new(peer: usize, deadline: Instant) -> PendingTransfer {
        PendingTransfer { peer, deadline, timeout_now_sent: false }
    }

    /// The target, as an index among the peers.
    pub(crate) fn peer(&self) -> usize {
        self.peer
    }

    /// Whether the transfer should be given up at `now`.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// Whether `peer`, the target, is to be told to campaign now: true once, the first time
    /// it is asked about the target.
    pub(crate) fn take_timeout_now(&mut self, peer: usize) -> bool {
        let due = peer == self.peer && !self.timeout_now_sent;
        self.timeout_now_sent |= due;
        due
    }
}
