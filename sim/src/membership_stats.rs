//! Counts of the membership changes a run proposed: what the leaders took, and what they
//! refused, by reason.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use raftkv_core::raft::{ChangeRefused, MemberChange};
use serde_json::json;

/// Membership changes proposed in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// Learners a leader took in (each a new node).
    pub learners_added: u64,
    /// Learners a leader began to promote (replacements included).
    pub promotions: u64,
    /// Members a leader began to remove (replacements included).
    pub removals: u64,
    /// Changes that promoted one node and removed another together.
    pub replacements: u64,
    /// Proposals refused, by reason (`ChangeRefused` variant, in snake case).
    pub refusals: BTreeMap<&'static str, u64>,
}

impl MembershipStats {
    /// Counts a proposal of `changes` and the leader's answer.
    pub(crate) fn record<T>(
        &mut self,
        changes: &[MemberChange],
        result: &Result<T, ChangeRefused>,
    ) {
        let Err(refused) = result else {
            let count = |wanted: fn(&MemberChange) -> bool| {
                changes.iter().filter(|change| wanted(change)).count() as u64
            };
            let added = count(|change| matches!(change, MemberChange::AddLearner { .. }));
            let promoted = count(|change| matches!(change, MemberChange::Promote { .. }));
            let removed = count(|change| matches!(change, MemberChange::Remove { .. }));
            self.learners_added += added;
            self.promotions += promoted;
            self.removals += removed;
            self.replacements += u64::from(promoted > 0 && removed > 0);
            return;
        };
        *self.refusals.entry(refusal_name(refused)).or_default() += 1;
    }

    /// Every refusal, whatever its reason.
    pub fn refused(&self) -> u64 {
        self.refusals.values().sum()
    }

    /// As a JSON object.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "learners_added": self.learners_added,
            "promotions": self.promotions,
            "removals": self.removals,
            "replacements": self.replacements,
            "refusals": self.refusals,
        })
    }
}

impl AddAssign<&MembershipStats> for MembershipStats {
    fn add_assign(&mut self, other: &MembershipStats) {
        self.learners_added += other.learners_added;
        self.promotions += other.promotions;
        self.removals += other.removals;
        self.replacements += other.replacements;
        for (&reason, &count) in &other.refusals {
            *self.refusals.entry(reason).or_default() += count;
        }
    }
}

/// The reason's name, as the JSON output counts it.
fn refusal_name(refused: &ChangeRefused) -> &'static str {
    match refused {
        ChangeRefused::NotLeader { .. } => "not_leader",
        ChangeRefused::NotCommittedInTerm => "not_committed_in_term",
        ChangeRefused::ChangeInProgress { .. } => "change_in_progress",
        ChangeRefused::Empty => "empty",
        ChangeRefused::NamedTwice(_) => "named_twice",
        ChangeRefused::AlreadyMember(_) => "already_member",
        ChangeRefused::Retired(_) => "retired",
        ChangeRefused::NotALearner(_) => "not_a_learner",
        ChangeRefused::NotAMember(_) => "not_a_member",
        ChangeRefused::NoVoters => "no_voters",
        ChangeRefused::LearnerBehind { .. } => "learner_behind",
        ChangeRefused::LearnerSilent(_) => "learner_silent",
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::{LogIndex, NodeId};

    use super::*;

    #[test]
    fn a_replacement_counts_as_a_promotion_a_removal_and_a_replacement() {
        let mut stats = MembershipStats::default();
        let replace =
            [MemberChange::Promote { id: NodeId(4) }, MemberChange::Remove { id: NodeId(1) }];
        stats.record(&replace, &Ok(()));
        let add = [MemberChange::AddLearner { id: NodeId(5), address: Vec::new() }];
        stats.record(&add, &Ok(()));
        let behind = ChangeRefused::LearnerBehind {
            id: NodeId(5),
            match_index: LogIndex(1),
            last_index: LogIndex(900),
        };
        stats.record::<()>(&[MemberChange::Promote { id: NodeId(5) }], &Err(behind));
        assert_eq!((stats.learners_added, stats.promotions, stats.removals), (1, 1, 1));
        assert_eq!(stats.replacements, 1);
        assert_eq!(stats.refusals.get("learner_behind"), Some(&1));
        let mut sum = MembershipStats::default();
        sum += &stats;
        sum += &stats;
        assert_eq!((sum.replacements, sum.refused()), (2, 2));
    }
}
