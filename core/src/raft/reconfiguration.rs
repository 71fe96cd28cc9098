//! Membership changes, the leader's side: proposing one, leaving the joint configuration once
//! it commits, tracking the progress of the members, and stepping down when removed.
//!
//! A change of voters goes through joint consensus (Raft §6, thesis §4.3): the leader appends
//! C_old,new, in which every decision needs a majority of C_old and one of C_new; once that
//! commits, it appends C_new by itself. Every node uses a membership as soon as it appends it.
//! A change of learners alone takes one entry: learners never count for a quorum.

use crate::ids::{LogId, LogIndex, NodeId};
use crate::raft::entry::Payload;
use crate::raft::membership::Standing;
use crate::raft::membership_change::{ChangeRefused, MemberChange};
use crate::raft::message::Body;
use crate::raft::node::{RaftNode, Role};
use crate::raft::progress::Progress;
use crate::time::{Duration, Instant};

impl RaftNode {
    /// Proposes a membership change (its steps taken together) if this node leads; returns the
    /// id of the entry that starts it. Refused, with the reason, while another change is in
    /// progress (a membership entry not committed, or the joint state), before this leader has
    /// committed an entry of its own term, if it would leave no voters, or if it promotes a
    /// learner that has not caught up (see `Config::max_promotion_lag`).
    ///
    /// A change that removes this leader does not hand leadership over first: the leader
    /// carries the change through (C_new's entries commit with a majority of C_new, without
    /// counting itself), and steps down once C_new commits, telling an up-to-date voter of
    /// C_new to campaign at once (`TimeoutNow`), so that no election timeout passes without a
    /// leader. Handing over first would make the change two operations, with a new leader that
    /// must be asked again, and proposals refused in between; the thesis (§4.2.2) shows the
    /// leader may manage a cluster it is not part of.
    pub fn propose_membership_change(
        &mut self,
        now: Instant,
        changes: &[MemberChange],
    ) -> Result<LogId, ChangeRefused> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(ChangeRefused::NotLeader { hint: self.leader });
        }
        if let Some(target) = self.transfer_target() {
            return Err(ChangeRefused::NotLeader { hint: Some(target) });
        }
        if self.log.term_at(self.log.committed()) != Some(self.term) {
            return Err(ChangeRefused::NotCommittedInTerm);
        }
        if self.is_changing_membership() || self.log.membership().is_joint() {
            let index = self.log.membership_index();
            return Err(ChangeRefused::ChangeInProgress { index });
        }
        let target = self.log.membership().changed(changes)?;
        for change in changes {
            if let MemberChange::Promote { id } = change {
                self.check_caught_up(*id)?;
            }
        }
        let entry = self.log.membership().transition_to(target);
        let id = self.append_own(Payload::Membership(entry));
        // New members probe from the entry that adds them, so that it goes out at once.
        self.sync_progress(id.index);
        Ok(id)
    }

    /// Where this node stands in the membership in force.
    pub(crate) fn standing(&self) -> Standing {
        let membership = self.log.membership();
        let previous = self.log.previous_membership();
        membership.standing_of(self.config.id, self.log.membership_index(), previous)
    }

    /// Leader only (`None` otherwise): how far the log of each node it replicates to is known
    /// to reach, and its own last entry for itself if it is a member; sorted by id. A follower
    /// whose disk is recovering counts as holding nothing, as for promotions. For operators:
    /// how far behind a learner is before it can be promoted.
    pub fn match_indexes(&self) -> Option<Vec<(NodeId, LogIndex)>> {
        if self.role != Role::Leader {
            return None;
        }
        let mut matched: Vec<(NodeId, LogIndex)> =
            self.progress.iter().map(|(&id, progress)| (id, progress.counted_match())).collect();
        if self.log.membership().is_member(self.config.id) {
            matched.push((self.config.id, self.log.last_index()));
            matched.sort_unstable();
        }
        Some(matched)
    }

    /// Whether learner `id` may be promoted: its log at most `max_promotion_lag` entries
    /// behind this leader's last entry (a follower whose disk is recovering counts as holding
    /// nothing), and an append acknowledged within the minimal election timeout.
    fn check_caught_up(&self, id: NodeId) -> Result<(), ChangeRefused> {
        let progress = self.progress.get(&id).expect("a leader tracks every learner");
        let (match_index, last_index) = (progress.counted_match(), self.log.last_index());
        if last_index.0.saturating_sub(match_index.0) > self.config.max_promotion_lag {
            return Err(ChangeRefused::LearnerBehind { id, match_index, last_index });
        }
        let window = Duration::from_millis(self.config.election_timeout_ms_min);
        if progress.last_accepted().is_none_or(|at| self.now >= at + window) {
            return Err(ChangeRefused::LearnerSilent(id));
        }
        Ok(())
    }

    /// The leader's commit index moved up from `before`: if that committed the membership in
    /// force, the nodes it removed are told so and the change moves on.
    pub(crate) fn on_commit_membership(&mut self, before: LogIndex) {
        let index = self.log.membership_index();
        if before < index && index <= self.log.committed() {
            self.tell_nodes_removed_by_the_commit();
            self.advance_membership();
        }
    }

    /// Leader only, once the membership in force is committed: leaves a joint membership by
    /// appending C_new, steps down if this node is not a voter of it (removed, or a learner
    /// elected because its log was needed) once an entry of its term has committed too (the
    /// voters hold its log then), and stops replicating to the members the change removed.
    pub(crate) fn advance_membership(&mut self) {
        if self.role != Role::Leader || self.is_changing_membership() {
            return;
        }
        let membership = self.log.membership();
        if membership.is_joint() {
            let settled = membership.leave_joint();
            let id = self.append_own(Payload::Membership(settled));
            self.sync_progress(id.index);
        } else if !membership.is_voter(self.config.id) {
            if self.log.term_at(self.log.committed()) == Some(self.term) {
                self.hand_over_and_step_down();
            }
        } else {
            self.sync_progress(self.log.last_index().next());
        }
    }

    /// This leader is not a voter of the committed membership, and an entry of its term
    /// committed: the followers learn the commit index, an up-to-date voter is told to campaign
    /// at once, and this node steps down (a removed node for good; a learner campaigns again
    /// only if its log is needed again).
    fn hand_over_and_step_down(&mut self) {
        self.broadcast_heartbeat();
        let last = self.log.last_index();
        let successor = self.log.membership().voters().iter().copied().find(|voter| {
            self.progress.get(voter).is_some_and(|progress| progress.counted_match() == last)
        });
        if let Some(successor) = successor {
            self.send(successor, self.term, Body::TimeoutNow);
        }
        self.become_follower(self.term, None);
    }

    /// Leader only, when the membership in force commits: tells each node it removed.
    fn tell_nodes_removed_by_the_commit(&mut self) {
        let (membership, previous) = (self.log.membership(), self.log.previous_membership());
        let removed: Vec<NodeId> = previous.map_or(Vec::new(), |previous| {
            let members = previous.members().into_iter();
            members.filter(|&node| !membership.is_member(node)).collect()
        });
        for node in removed {
            self.tell_removed_node(node);
        }
    }

    /// Leader only: tells `node`, which the committed membership in force removed, that its
    /// removal committed: when it commits (replication to it stops then), and again whenever it
    /// asks for a pre-vote (it missed that). An empty append anchored at the membership entry
    /// tells it, if its log holds that entry: it commits the entry and stops campaigning for
    /// good.
    pub(crate) fn tell_removed_node(&mut self, node: NodeId) {
        let removed = self.log.membership_index();
        if self.role != Role::Leader
            || self.is_changing_membership()
            || self.log.membership().is_member(node)
            || node == self.config.id
        {
            return;
        }
        let Some(term) = self.log.term_at(removed) else { return };
        self.counters.removed_nodes_told += 1;
        let prev = LogId { index: removed, term };
        let body = Body::Append {
            prev,
            entries: Vec::new(),
            commit: removed,
            read_round: 0,
            recovery: None,
            pipelined: false,
        };
        self.send(node, self.term, body);
    }

    /// Whether the membership in force is not committed yet.
    pub(crate) fn is_changing_membership(&self) -> bool {
        self.log.membership_index() > self.log.committed()
    }

    /// The nodes a leader replicates to, sorted: the members of the membership in force and,
    /// while it is not committed, those of the membership it replaced, so that a node the
    /// change removes receives the entry that tells it so. This node excepted.
    pub(crate) fn replication_targets(&self) -> Vec<NodeId> {
        let mut targets = self.log.membership().members();
        if let Some(previous) = self.log.previous_membership() {
            if self.is_changing_membership() {
                targets.extend(previous.members());
            }
        }
        targets.sort_unstable();
        targets.dedup();
        targets.retain(|&target| target != self.config.id);
        targets
    }

    /// Leader only: tracks the progress of exactly its replication targets. A new one starts
    /// probing at `next`; a transfer to a node no longer tracked is given up.
    pub(crate) fn sync_progress(&mut self, next: LogIndex) {
        let targets = self.replication_targets();
        self.progress.retain(|&peer, _| targets.binary_search(&peer).is_ok());
        for target in targets {
            self.progress.entry(target).or_insert_with(|| Progress::new(next));
        }
        if self.transfer_target().is_some_and(|target| !self.progress.contains_key(&target)) {
            self.transfer = None;
        }
    }
}
