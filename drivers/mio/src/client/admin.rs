//! Operating a cluster from a [`Client`]: the membership as the leader sees it, membership
//! changes, and leadership transfers. Each request goes to the leader (found from the nodes'
//! statuses) and is retried while it cannot start yet (another change in progress, a learner
//! still catching up, an election); then the statuses are watched until it is done.

use std::time::{Duration, Instant};

use raftkv_core::{LogIndex, NodeId, Term};

use crate::client::{Client, Error};
use crate::wire::{AdminAnswer, AdminRequest, MemberStep, MembershipReport, NodeStatus};

/// How often the statuses are asked again while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The membership as the leader sees it (see [`Client::members`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberList {
    /// The leader.
    pub leader: NodeId,
    /// Its term.
    pub term: Term,
    /// Its commit index.
    pub commit: LogIndex,
    /// Its last log index.
    pub last_log: LogIndex,
    /// The membership in force on the leader.
    pub membership: MembershipReport,
    /// How far each member's log is known to reach, by node id.
    pub match_indexes: Vec<(NodeId, LogIndex)>,
}

impl MemberList {
    fn of(leader: NodeStatus) -> MemberList {
        MemberList {
            leader: leader.id,
            term: leader.term,
            commit: leader.commit,
            last_log: leader.last_log,
            membership: leader.membership,
            match_indexes: leader.match_indexes,
        }
    }

    /// Whether a membership change is in progress: the membership in force is not committed
    /// yet, or it is the joint one of a change of voters.
    pub fn changing(&self) -> bool {
        self.membership.index > self.commit || !self.membership.outgoing.is_empty()
    }

    /// How far member `id`'s log is known to reach.
    pub fn match_index(&self, id: NodeId) -> Option<LogIndex> {
        self.match_indexes.iter().find(|(member, _)| *member == id).map(|&(_, index)| index)
    }

    /// How many entries member `id`'s log is behind the leader's.
    pub fn lag(&self, id: NodeId) -> Option<u64> {
        self.match_index(id).map(|index| self.last_log.0.saturating_sub(index.0))
    }

    /// Whether this settled membership shows `step` carried out, by an earlier attempt whose
    /// answer was lost or by someone else: a node removed (its id retired), a voter, a member
    /// at the address asked. A retry of a step that succeeded then succeeds too, as scripts
    /// expect. A removal of a node that never was a member is not among these (`refusal`).
    fn already_done(&self, step: &MemberStep) -> bool {
        let never_a_member = match step {
            MemberStep::Remove { id } => !self.membership.retired.contains(id),
            MemberStep::AddLearner { .. } | MemberStep::Promote { .. } => false,
        };
        self.shows_done(step) && !never_a_member
    }

    /// Why `step` can never be carried out from this membership, if so: it names a node that
    /// is not a member (or not a learner, to promote), or a member at another address. The
    /// leader refuses such a step too, but its answer may be lost, and this membership may
    /// already look as the step asks (a non-member is not a member): taken for done, the step
    /// would be reported carried out.
    fn refusal(&self, step: &MemberStep) -> Option<String> {
        let membership = &self.membership;
        let members = membership.members();
        match *step {
            MemberStep::AddLearner { id, .. } if members.contains(&id) => Some(format!(
                "node {id} is already a member, at {}",
                membership.address(id).unwrap_or("an unknown address")
            )),
            MemberStep::Remove { id } if !members.contains(&id) => {
                Some(format!("node {id} is not a member (members: {})", list(&members)))
            }
            MemberStep::Promote { id } if !membership.learners.contains(&id) => Some(format!(
                "node {id} is not a learner (learners: {})",
                list(&membership.learners)
            )),
            _ => None,
        }
    }

    /// Whether `step` is carried out in this membership, and it is settled.
    fn shows_done(&self, step: &MemberStep) -> bool {
        let membership = &self.membership;
        let done = match step {
            MemberStep::AddLearner { id, address } => {
                membership.members().contains(id) && membership.address(*id) == Some(address)
            }
            MemberStep::Promote { id } => membership.voters.contains(id),
            MemberStep::Remove { id } => !membership.members().contains(id),
        };
        done && !self.changing()
    }
}

impl Client {
    /// The membership as the leader sees it: voters, learners, addresses, how far each
    /// member's log reaches. Waits for a leader up to the client's timeout.
    pub fn members(&mut self) -> Result<MemberList, Error> {
        let deadline = Instant::now() + self.options.timeout;
        self.leader_members(deadline)
    }

    /// Carries out one membership change step and waits until the change is committed and
    /// settled; returns the membership then. Retried while it cannot start yet (another
    /// change in progress, a learner not caught up, no leader) until the client's timeout;
    /// refused for good ([`Error::Invalid`]) if it can never succeed as asked (an unknown
    /// node, an id already a member, an address taken).
    pub fn change_membership(&mut self, step: MemberStep) -> Result<MemberList, Error> {
        let deadline = Instant::now() + self.options.timeout;
        let before = self.leader_members(deadline)?;
        if before.already_done(&step) {
            return Ok(before);
        }
        if let Some(reason) = before.refusal(&step) {
            return Err(Error::Invalid { reason });
        }
        let request = AdminRequest::ChangeMembership(step.clone());
        self.start(request, deadline, |list| list.shows_done(&step))?;
        loop {
            let list = self.leader_members(deadline)?;
            if list.shows_done(&step) {
                return Ok(list);
            }
            self.wait_or_time_out(deadline, "the change started but is not settled yet")?;
        }
    }

    /// Hands leadership over to voter `to` and waits until it leads.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), Error> {
        let deadline = Instant::now() + self.options.timeout;
        let leads = |list: &MemberList| list.leader == to;
        self.start(AdminRequest::TransferLeader(to), deadline, leads)?;
        loop {
            if leads(&self.leader_members(deadline)?) {
                return Ok(());
            }
            self.wait_or_time_out(deadline, "the hand-over started but has not happened yet")?;
        }
    }

    /// Asks the leader to start `request`, again while it cannot start yet; returns once it
    /// started, or once `done` holds after an attempt whose answer was lost.
    fn start(
        &mut self,
        request: AdminRequest,
        deadline: Instant,
        done: impl Fn(&MemberList) -> bool,
    ) -> Result<(), Error> {
        let mut maybe_started = false;
        // Why the leader would not start it yet: says more than a lost answer.
        let mut refusal: Option<String> = None;
        loop {
            let list = self.leader_members(deadline)?;
            if maybe_started && done(&list) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .pool
                .ask(list.leader, request.clone(), left)
                .map_err(|error| Error::Io(error.to_string()))?;
            let problem = match answer {
                Ok(AdminAnswer::Started) => return Ok(()),
                Ok(AdminAnswer::Refused { reason, retry: false }) => {
                    return Err(Error::Invalid { reason });
                }
                Ok(AdminAnswer::Refused { reason, retry: true }) => refusal.insert(reason).clone(),
                Ok(AdminAnswer::NotLeader { .. }) => "the leader changed".to_string(),
                Ok(AdminAnswer::Backup(_)) => "the leader answered out of turn".to_string(),
                Err(problem) => {
                    // The request may have reached the leader before its answer was lost.
                    maybe_started = true;
                    refusal.clone().unwrap_or(problem)
                }
            };
            self.wait_or_time_out(deadline, &problem)?;
        }
    }

    /// The leader's view of the membership, waiting for a leader until `deadline`.
    pub(super) fn leader_members(&mut self, deadline: Instant) -> Result<MemberList, Error> {
        loop {
            let statuses = self
                .pool
                .statuses(self.options.connect_timeout)
                .map_err(|error| Error::Io(error.to_string()))?;
            let leader = statuses
                .into_iter()
                .filter_map(|(_, status)| status.ok())
                .filter(|status| status.role == "Leader")
                .max_by_key(|status| status.term);
            if let Some(leader) = leader {
                return Ok(MemberList::of(leader));
            }
            self.wait_or_time_out(deadline, "no node leads")?;
        }
    }

    /// Waits a moment before the statuses are asked again; fails with `problem` if the
    /// deadline passed.
    pub(super) fn wait_or_time_out(&self, deadline: Instant, problem: &str) -> Result<(), Error> {
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                after: self.options.timeout,
                detail: problem.to_string(),
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
        Ok(())
    }
}

/// Node ids as `1,2,3`, or `none`.
fn list(ids: &[NodeId]) -> String {
    if ids.is_empty() {
        return "none".to_string();
    }
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    fn remove(id: u64) -> MemberStep {
        MemberStep::Remove { id: NodeId(id) }
    }

    fn promote(id: u64) -> MemberStep {
        MemberStep::Promote { id: NodeId(id) }
    }

    fn add(id: u64, address: &str) -> MemberStep {
        MemberStep::AddLearner { id: NodeId(id), address: address.to_string() }
    }

    /// Voters 1, 2, 3, learner 4, node 5 removed; settled.
    fn settled_list() -> MemberList {
        let membership = MembershipReport {
            index: LogIndex(9),
            voters: ids(&[1, 2, 3]),
            outgoing: Vec::new(),
            learners: ids(&[4]),
            addresses: (1..=4).map(|id| (NodeId(id), format!("host:{id}"))).collect(),
            retired: ids(&[5]),
        };
        let (leader, term, commit, last_log) = (NodeId(1), Term(2), LogIndex(9), LogIndex(9));
        MemberList { leader, term, commit, last_log, membership, match_indexes: Vec::new() }
    }

    #[test]
    fn a_step_the_membership_already_shows_is_refused_not_taken_for_done() {
        let list = settled_list();
        let cases = [
            (remove(9), "node 9 is not a member (members: 1,2,3,4)"),
            (promote(9), "node 9 is not a learner (learners: 4)"),
            (add(4, "elsewhere:4"), "node 4 is already a member, at host:4"),
        ];
        for (step, reason) in cases {
            assert!(!list.already_done(&step), "{step:?}");
            assert_eq!(list.refusal(&step).as_deref(), Some(reason), "{step:?}");
        }
        // A request whose answer was lost would have taken this removal for done.
        assert!(list.shows_done(&remove(9)));
        for step in [remove(4), promote(4), add(6, "host:6")] {
            assert!(!list.already_done(&step), "{step:?}");
            assert_eq!(list.refusal(&step), None, "{step:?}");
            assert!(!list.shows_done(&step), "{step:?}");
        }
    }

    #[test]
    fn a_retried_step_that_succeeded_before_succeeds_again() {
        let list = settled_list();
        for step in [remove(5), promote(2), add(4, "host:4"), add(2, "host:2")] {
            assert!(list.already_done(&step), "{step:?}");
        }
        let changing = MemberList {
            membership: MembershipReport { outgoing: ids(&[1, 2]), ..list.membership.clone() },
            ..list
        };
        assert!(!changing.already_done(&remove(5)), "only once the membership is settled");
    }
}
