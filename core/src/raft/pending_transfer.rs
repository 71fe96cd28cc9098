//! A leadership transfer the leader has started and not yet given up.

use crate::ids::NodeId;
use crate::time::Instant;

/// The target of a transfer, its deadline, and whether the target was told to campaign.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingTransfer {
    target: NodeId,
    deadline: Instant,
    timeout_now_sent: bool,
}

impl PendingTransfer {
    /// A transfer to `target`, given up at `deadline` if it has not happened by then.
    pub(crate) fn new(target: NodeId, deadline: Instant) -> PendingTransfer {
        PendingTransfer { target, deadline, timeout_now_sent: false }
    }

    /// The node leadership goes to.
    pub(crate) fn target(&self) -> NodeId {
        self.target
    }

    /// Whether the transfer should be given up at `now`.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// Whether `peer`, the target, is to be told to campaign now: true once, the first time
    /// it is asked about the target.
    pub(crate) fn take_timeout_now(&mut self, peer: NodeId) -> bool {
        let due = peer == self.target && !self.timeout_now_sent;
        self.timeout_now_sent |= due;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_told_to_campaign_once_and_no_one_else_ever() {
        let mut transfer = PendingTransfer::new(NodeId(3), Instant::from_millis(100));
        assert!(!transfer.take_timeout_now(NodeId(2)));
        assert!(transfer.take_timeout_now(NodeId(3)));
        assert!(
            !transfer.take_timeout_now(NodeId(3)),
            "a second TimeoutNow would start a second election"
        );
        assert!(!transfer.has_expired(Instant::from_millis(99)));
        assert!(transfer.has_expired(Instant::from_millis(100)));
    }
}
