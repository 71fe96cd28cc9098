//! A node whose disk lost writes it had acknowledged (Protocol-Aware Recovery, FAST '18): it may
//! have forgotten a vote, or entries it helped commit, so its vote could elect a leader that
//! lacks a committed entry, or a second leader in a term. Until it has caught up it neither
//! votes nor campaigns, and its acknowledgements count for no leader.
//!
//! Caught up means: its log holds, durably, a commit index its leader knew after hearing from
//! it in this life and confirming with a majority of sound voters that it still led. A commit
//! index from a message sent before (a late one from an earlier leadership) may miss entries
//! committed with the acknowledgements this node lost; one from a deposed leader that does not
//! know it yet may miss the newer leader's. The node names its recovery with a random nonce in
//! its replies; the leader echoes it with the target (`RecoveryTarget`).

use crate::ids::LogIndex;

/// Whether the node may take part in elections, and what it waits for if not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// The disk is whole: the node votes and campaigns.
    Sound,
    /// The disk lost acknowledged writes.
    Damaged {
        /// Its name for this recovery, in its replies.
        nonce: u64,
        /// The commit index to reach, once a leader has named one for `nonce`.
        target: Option<LogIndex>,
    },
}

impl Recovery {
    /// The state of a node starting from a disk that says it is `damaged` or not; `nonce`
    /// names the recovery (random, so that no other life of the node draws it).
    pub(crate) fn new(damaged: bool, nonce: u64) -> Recovery {
        if damaged { Recovery::Damaged { nonce, target: None } } else { Recovery::Sound }
    }

    /// Whether the node must stay out of elections.
    pub(crate) fn is_damaged(self) -> bool {
        matches!(self, Recovery::Damaged { .. })
    }

    /// The name of the recovery in progress, for the node's replies.
    pub(crate) fn nonce(self) -> Option<u64> {
        match self {
            Recovery::Damaged { nonce, .. } => Some(nonce),
            Recovery::Sound => None,
        }
    }

    /// A leader names `commit` as the target of the recovery `nonce`; the log is durable up to
    /// `durable`. A target for another nonce (an earlier life's) is ignored. Returns true when
    /// that ends the recovery.
    pub(crate) fn on_target(&mut self, nonce: u64, commit: LogIndex, durable: LogIndex) -> bool {
        if let Recovery::Damaged { nonce: ours, target } = self {
            if *ours == nonce {
                *target = Some(target.map_or(commit, |known| known.max(commit)));
            }
        }
        self.on_durable(durable)
    }

    /// The node's log is durable up to `durable`. Returns true when that ends the recovery.
    pub(crate) fn on_durable(&mut self, durable: LogIndex) -> bool {
        match *self {
            Recovery::Damaged { target: Some(target), .. } if durable >= target => {
                *self = Recovery::Sound;
                true
            }
            Recovery::Sound | Recovery::Damaged { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_node_recovers_at_the_target_named_for_its_nonce() {
        let mut recovery = Recovery::new(true, 7);
        assert_eq!(recovery.nonce(), Some(7));
        assert!(!recovery.on_durable(LogIndex(100)), "no target named yet");
        assert!(!recovery.on_target(6, LogIndex(3), LogIndex(100)), "another life's nonce");
        assert!(!recovery.on_target(7, LogIndex(12), LogIndex(8)));
        assert!(!recovery.on_durable(LogIndex(11)));
        assert!(recovery.on_durable(LogIndex(12)));
        assert!(!recovery.is_damaged());
        assert_eq!(recovery.nonce(), None);
        assert!(!recovery.on_durable(LogIndex(20)), "recovers once");
    }

    #[test]
    fn a_target_already_durable_ends_the_recovery_at_once() {
        let mut recovery = Recovery::new(true, 1);
        assert!(recovery.on_target(1, LogIndex(9), LogIndex(9)));
        assert!(!recovery.is_damaged());
    }

    #[test]
    fn a_sound_node_stays_sound() {
        let mut recovery = Recovery::new(false, 1);
        assert!(!recovery.on_target(1, LogIndex(9), LogIndex(9)));
        assert!(!recovery.is_damaged());
    }
}
