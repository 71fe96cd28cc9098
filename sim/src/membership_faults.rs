//! The membership fault class of a random run: at random moments, the leader is asked for the
//! next step of the plan (see `membership_plan`): a new node added as a learner, promoted once
//! it has caught up, voters removed, crashed voters replaced. Its draws come from a stream of
//! their own, so that a run without the class draws every other fault as before.

use raftkv_core::raft::MemberChange;
use raftkv_core::{Duration, NodeId};

use crate::event::{Event, FaultEvent};
use crate::machine::Machine;
use crate::membership_plan::Step;
use crate::simulation::Simulation;

impl<M: Machine> Simulation<M> {
    /// Takes the plan's next step if a leader can take a change now, and schedules the next
    /// attempt.
    pub(crate) fn inject_membership_change(&mut self) {
        if let Some(leader) = self.leader() {
            self.change_membership_at(leader);
        }
        let interval_ms_max = self.options.membership.interval_ms_max;
        let next = self.membership_rng.range_inclusive(1, interval_ms_max);
        self.schedule_in(Duration::from_millis(next), Event::Fault(FaultEvent::Membership));
    }

    fn change_membership_at(&mut self, leader: NodeId) {
        let Some(replica) = self.replica(leader) else { return };
        let raft = replica.raft();
        let status = raft.status();
        // A change would be refused: let the one in progress, or the leader's first commit,
        // come first.
        let busy = status.membership.is_joint() || status.membership_index > status.commit;
        if busy || raft.term_at(status.commit) != Some(status.term) {
            return;
        }
        let down: Vec<NodeId> =
            self.nodes.iter().filter(|node| node.replica.is_none()).map(|node| node.id).collect();
        let step = self.membership_plan.next(
            &mut self.membership_rng,
            &self.options.membership,
            &status.membership,
            leader,
            &down,
        );
        match step {
            Step::Add { replaces } => {
                let id = self.add_node();
                let address = format!("n{id}").into_bytes();
                let add = [MemberChange::AddLearner { id, address }];
                if self.propose_membership_change(leader, &add).is_ok() {
                    self.membership_plan.on_added(id, replaces);
                }
            }
            Step::Change(changes) => {
                let accepted = self.propose_membership_change(leader, &changes).is_ok();
                self.membership_plan.on_answer(accepted);
            }
            Step::Wait => {}
        }
    }
}
