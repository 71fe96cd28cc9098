//! What the membership fault class does next, given the leader's membership: add a learner
//! (a new node, replacing a crashed voter or, at the bound, a random one), promote it once it
//! has caught up, or remove a voter (the leader one time in three). The cluster keeps between
//! `voters_min` and `voters_max` voters (one that starts with fewer only grows).
//!
//! The clients know the initial nodes only (and those named leader to them since), so one of
//! the initial nodes always stays a voter: its answers name the leader to them.

use raftkv_core::NodeId;
use raftkv_core::prng::Prng;
use raftkv_core::raft::{MemberChange, Membership};

use crate::options::MembershipOptions;

/// Promotions refused in a row (the learner behind or silent: crashed, cut off, catching up)
/// before the learner is removed instead.
const PROMOTION_TRIES_MAX: u32 = 40;

/// The next move of the membership fault class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Start a new node and propose it as a learner; once promoted it replaces `replaces`.
    Add { replaces: Option<NodeId> },
    /// Propose these steps together.
    Change(Vec<MemberChange>),
    /// Nothing to do now.
    Wait,
}

/// The learner being brought in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Learner {
    id: NodeId,
    /// The voter it replaces, removed by the change that promotes it.
    replaces: Option<NodeId>,
    /// Promotions refused so far.
    refusals: u32,
}

/// The membership fault class's plan across its attempts.
#[derive(Clone, Debug)]
pub(crate) struct MembershipPlan {
    /// The nodes of the initial cluster, ids 1 to this.
    initial_nodes: u64,
    learner: Option<Learner>,
    /// Nodes added so far.
    added: usize,
}

impl MembershipPlan {
    pub(crate) fn new(initial_nodes: usize) -> MembershipPlan {
        MembershipPlan { initial_nodes: initial_nodes as u64, learner: None, added: 0 }
    }

    /// The next step, for a leader `leader` whose membership is `membership` (settled and
    /// committed), while the voters in `down` are crashed.
    pub(crate) fn next(
        &mut self,
        rng: &mut Prng,
        options: &MembershipOptions,
        membership: &Membership,
        leader: NodeId,
        down: &[NodeId],
    ) -> Step {
        let voters = membership.voters();
        if let Some(learner) = self.learner {
            return self.promote(learner, options, membership);
        }
        let removable = self.removable(voters);
        let may_add = self.added < options.added_max;
        let may_remove = voters.len() > options.voters_min && !removable.is_empty();
        if may_add && (!may_remove || rng.chance(1, 2)) {
            self.added += 1;
            let crashed = removable.iter().copied().find(|voter| down.contains(voter));
            let replaces = match crashed {
                Some(crashed) => Some(crashed),
                None if voters.len() >= options.voters_max => Some(pick(rng, &removable)),
                None => None,
            };
            return Step::Add { replaces };
        }
        if !may_remove {
            return Step::Wait;
        }
        let id = match removable.contains(&leader) && rng.chance(1, 3) {
            true => leader,
            false => pick(rng, &removable),
        };
        Step::Change(vec![MemberChange::Remove { id }])
    }

    /// The voters that may go: all but the last initial one.
    fn removable(&self, voters: &[NodeId]) -> Vec<NodeId> {
        let is_initial = |id: &NodeId| id.0 <= self.initial_nodes;
        let initial = voters.iter().filter(|id| is_initial(id)).count();
        voters.iter().copied().filter(|id| initial > 1 || !is_initial(id)).collect()
    }

    /// Learner `id` was proposed; promoting it replaces `replaces`.
    pub(crate) fn on_added(&mut self, id: NodeId, replaces: Option<NodeId>) {
        debug_assert!(self.learner.is_none(), "one learner at a time");
        self.learner = Some(Learner { id, replaces, refusals: 0 });
    }

    /// The leader answered a [`Step::Change`]: a refused promotion is tried again later.
    pub(crate) fn on_answer(&mut self, accepted: bool) {
        match &mut self.learner {
            Some(_) if accepted => self.learner = None,
            Some(learner) => learner.refusals += 1,
            None => {}
        }
    }

    /// The change that promotes `learner` (removing the voter it replaces, if still a voter),
    /// or removes it if it cannot be promoted.
    fn promote(
        &mut self,
        learner: Learner,
        options: &MembershipOptions,
        membership: &Membership,
    ) -> Step {
        if !membership.is_learner(learner.id) {
            // The entry that added it was lost with its leader's term.
            self.learner = None;
            return Step::Wait;
        }
        let removable = self.removable(membership.voters());
        let replaced = learner.replaces.filter(|old| removable.contains(old));
        let full = membership.voters().len() >= options.voters_max;
        if learner.refusals >= PROMOTION_TRIES_MAX || (full && replaced.is_none()) {
            self.learner = None;
            return Step::Change(vec![MemberChange::Remove { id: learner.id }]);
        }
        let mut steps = vec![MemberChange::Promote { id: learner.id }];
        steps.extend(replaced.map(|id| MemberChange::Remove { id }));
        Step::Change(steps)
    }
}

fn pick(rng: &mut Prng, ids: &[NodeId]) -> NodeId {
    ids[rng.range_inclusive(0, ids.len() as u64 - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    fn options() -> MembershipOptions {
        MembershipOptions { interval_ms_max: 100, voters_min: 3, voters_max: 5, added_max: 100 }
    }

    fn with_learner(voters: &[u64], learner: u64) -> Membership {
        let text = serde_json::json!({
            "voters": voters, "outgoing": [], "learners": [learner], "addresses": {}
        });
        serde_json::from_value(text).expect("a membership")
    }

    #[test]
    fn the_cluster_stays_between_its_bounds_and_a_crashed_voter_is_replaced_first() {
        let mut rng = Prng::seeded(3);
        let three = Membership::with_voters(ids(&[1, 2, 3]));
        for _ in 0..50 {
            let mut plan = MembershipPlan::new(3);
            let step = plan.next(&mut rng, &options(), &three, NodeId(1), &ids(&[2]));
            assert_eq!(step, Step::Add { replaces: Some(NodeId(2)) }, "never below 3 voters");
        }
        let five = Membership::with_voters(ids(&[1, 2, 3, 4, 5]));
        let mut steps = Vec::new();
        for _ in 0..50 {
            let mut plan = MembershipPlan::new(3);
            steps.push(plan.next(&mut rng, &options(), &five, NodeId(1), &[]));
        }
        assert!(steps.iter().all(|step| !matches!(step, Step::Add { replaces: None })));
        assert!(steps.contains(&Step::Change(vec![MemberChange::Remove { id: NodeId(1) }])));
    }

    #[test]
    fn the_last_initial_voter_stays() {
        let mut rng = Prng::seeded(5);
        let later = Membership::with_voters(ids(&[2, 6, 7, 8, 9]));
        for _ in 0..100 {
            let mut plan = MembershipPlan::new(3);
            let step = plan.next(&mut rng, &options(), &later, NodeId(2), &ids(&[2]));
            let named = |id| MemberChange::Remove { id };
            assert!(!matches!(&step, Step::Change(changes) if changes.contains(&named(NodeId(2)))));
            assert_ne!(step, Step::Add { replaces: Some(NodeId(2)) });
        }
    }

    #[test]
    fn a_learner_is_promoted_with_the_removal_of_the_voter_it_replaces_or_removed_at_last() {
        let mut rng = Prng::seeded(4);
        let mut plan = MembershipPlan::new(3);
        plan.on_added(NodeId(4), Some(NodeId(2)));
        let membership = with_learner(&[1, 2, 3], 4);
        let promote = Step::Change(vec![
            MemberChange::Promote { id: NodeId(4) },
            MemberChange::Remove { id: NodeId(2) },
        ]);
        for _ in 0..PROMOTION_TRIES_MAX {
            assert_eq!(plan.next(&mut rng, &options(), &membership, NodeId(1), &[]), promote);
            plan.on_answer(false);
        }
        let removal = Step::Change(vec![MemberChange::Remove { id: NodeId(4) }]);
        assert_eq!(plan.next(&mut rng, &options(), &membership, NodeId(1), &[]), removal);
        let mut plan = MembershipPlan::new(3);
        plan.on_added(NodeId(6), None);
        let gone = Membership::with_voters(ids(&[1, 2, 3]));
        assert_eq!(plan.next(&mut rng, &options(), &gone, NodeId(1), &[]), Step::Wait);
    }
}
