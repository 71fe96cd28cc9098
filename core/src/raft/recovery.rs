//! A node whose disk lost writes it had acknowledged (Protocol-Aware Recovery, FAST '18): it may
//! have forgotten a vote, or entries it helped commit, so its vote could elect a leader that
//! lacks a committed entry, or a second leader in a term. Until it has caught up with a leader
//! it neither votes nor campaigns; its acknowledgements describe what it holds now, so they
//! count as any follower's.

use crate::ids::{LogIndex, Term};

/// Whether the node may take part in elections, and what it waits for if not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// The disk is whole: the node votes and campaigns.
    Sound,
    /// The disk lost acknowledged writes. With a target, the node waits for its durable log to
    /// reach that index, which a leader committed in its own term: every entry committed before
    /// then is at or below it.
    Damaged {
        /// The commit index to reach, once a leader has named one.
        target: Option<LogIndex>,
    },
}

impl Recovery {
    /// The state of a node starting from a disk that found damage (`damaged`) or not.
    pub(crate) fn new(damaged: bool) -> Recovery {
        if damaged { Recovery::Damaged { target: None } } else { Recovery::Sound }
    }

    /// Whether the node must stay out of elections.
    pub(crate) fn is_damaged(self) -> bool {
        matches!(self, Recovery::Damaged { .. })
    }

    /// The leader of `leader_term` says it committed up to `commit`, and this node's log holds
    /// the entry there with `commit_term`; its log is durable up to `durable`. A commit index
    /// of an entry of the leader's own term covers everything committed before it (a leader's
    /// commit index may lag behind its predecessors' only until it commits an entry of its own
    /// term). Returns true when that ends the recovery.
    pub(crate) fn on_leader_commit(
        &mut self,
        commit: LogIndex,
        commit_term: Option<Term>,
        leader_term: Term,
        durable: LogIndex,
    ) -> bool {
        if let Recovery::Damaged { target: target @ None } = self {
            if commit_term == Some(leader_term) {
                *target = Some(commit);
            }
        }
        self.on_durable(durable)
    }

    /// The node's log is durable up to `durable`. Returns true when that ends the recovery.
    pub(crate) fn on_durable(&mut self, durable: LogIndex) -> bool {
        match *self {
            Recovery::Damaged { target: Some(target) } if durable >= target => {
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
    fn a_damaged_node_recovers_once_it_holds_a_commit_of_the_leaders_term() {
        let mut recovery = Recovery::new(true);
        assert!(recovery.is_damaged());
        assert!(!recovery.on_durable(LogIndex(100)), "no target named yet");
        // A new leader's commit index, of an earlier term, may lag: not a target.
        assert!(!recovery.on_leader_commit(LogIndex(7), Some(Term(2)), Term(3), LogIndex(7)));
        assert!(!recovery.on_durable(LogIndex(100)));
        assert!(!recovery.on_leader_commit(LogIndex(9), Some(Term(3)), Term(3), LogIndex(8)));
        assert!(!recovery.on_leader_commit(LogIndex(12), Some(Term(3)), Term(3), LogIndex(8)));
        assert!(!recovery.on_durable(LogIndex(8)));
        assert!(recovery.on_durable(LogIndex(9)), "the first target named counts");
        assert!(!recovery.is_damaged());
        assert!(!recovery.on_durable(LogIndex(20)), "recovers once");
    }

    #[test]
    fn a_target_already_durable_ends_the_recovery_at_once() {
        let mut recovery = Recovery::new(true);
        assert!(recovery.on_leader_commit(LogIndex(9), Some(Term(3)), Term(3), LogIndex(9)));
        assert!(!recovery.is_damaged());
    }

    #[test]
    fn a_sound_node_stays_sound() {
        let mut recovery = Recovery::new(false);
        recovery.on_leader_commit(LogIndex(9), Some(Term(3)), Term(3), LogIndex(9));
        assert!(!recovery.on_durable(LogIndex(9)));
        assert!(!recovery.is_damaged());
    }
}
