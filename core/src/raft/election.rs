//! Leader election: pre-vote, vote, and the changes of role they cause.

use crate::ids::{LogId, NodeId, Term};
use crate::raft::entry::Payload;
use crate::raft::message::Body;
use crate::raft::node::{RaftNode, Role};
use crate::raft::progress::Progress;

impl RaftNode {
    /// The election timeout passed without word from a leader: ask the peers whether an
    /// election could succeed before disturbing anyone with a new term (thesis §9.6).
    pub(crate) fn start_pre_vote(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.leader_contact = None;
        self.progress.clear();
        self.votes = vec![None; self.peers.len()];
        self.reset_election_timer();
        self.counters.pre_elections += 1;
        let last = self.log.last_id();
        let campaign_term = self.term.next();
        for peer in 0..self.peers.len() {
            self.send(self.peers[peer], campaign_term, Body::PreVote { last });
        }
        self.tally_votes(true);
    }

    /// Campaigns in the next term; with `transfer`, at the leader's request.
    pub(crate) fn start_election(&mut self, transfer: bool) {
        self.term = self.term.next();
        self.vote = Some(self.config.id);
        self.durability.hard_state_changed();
        self.own_vote_persist = self.durability.current_barrier();
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = vec![None; self.peers.len()];
        self.reset_election_timer();
        self.counters.elections += 1;
        let last = self.log.last_id();
        for peer in 0..self.peers.len() {
            self.send(self.peers[peer], self.term, Body::Vote { last, transfer });
        }
        self.tally_votes(false);
    }

    /// Counts the answers of a (pre-)election. A candidate's vote for itself counts only once
    /// it is durable.
    pub(crate) fn tally_votes(&mut self, pre_vote: bool) {
        let expected_role = if pre_vote { Role::PreCandidate } else { Role::Candidate };
        if self.role != expected_role {
            return;
        }
        let own = pre_vote || self.durability.is_acknowledged(self.own_vote_persist);
        let granted = usize::from(own) + self.votes.iter().filter(|v| **v == Some(true)).count();
        let rejected = self.votes.iter().filter(|v| **v == Some(false)).count();
        if granted >= self.quorum() {
            if pre_vote {
                self.start_election(false);
            } else {
                self.become_leader();
            }
        } else if rejected >= self.quorum() {
            self.become_follower(self.term, None);
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        self.counters.leaderships += 1;
        let next = self.log.last_index().next();
        self.progress = self.peers.iter().map(|_| Progress::new(next)).collect();
        self.heartbeat_deadline = self.now.add_millis(self.config.heartbeat_interval_ms);
        self.quorum_check_deadline = self.now.add_millis(self.config.election_timeout_ms_min);
        self.append_own(Payload::Noop);
    }

    /// Follows `leader` (if known) in `term`, adopting the term if it is newer.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.durability.hard_state_changed();
        }
        if self.role == Role::Leader {
            self.abort_reads_on_step_down(leader);
        }
        self.role = Role::Follower;
        self.transfer = None;
        self.leader = leader;
        self.leader_contact = leader.map(|_| self.now);
        self.progress.clear();
        self.votes.clear();
        self.reset_election_timer();
    }

    /// `campaign_term` is the term the sender would campaign in; it is at least ours.
    pub(crate) fn on_pre_vote(&mut self, from: NodeId, campaign_term: Term, last: LogId) {
        let granted = campaign_term > self.term
            && !self.in_leader_lease()
            && last.is_up_to_date_with(self.log.last_id());
        if !granted && self.in_leader_lease() {
            self.counters.dropped_in_lease += 1;
        }
        let reply_term = if granted { campaign_term } else { self.term };
        self.send(from, reply_term, Body::PreVoteReply { granted });
    }

    /// A vote request in this node's term (a newer term was adopted before).
    pub(crate) fn on_vote(&mut self, from: NodeId, last: LogId) {
        let free_to_vote =
            self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        if free_to_vote && last.is_up_to_date_with(self.log.last_id()) {
            if self.role != Role::Follower {
                self.become_follower(self.term, None);
            }
            self.vote = Some(from);
            self.durability.hard_state_changed();
            self.reset_election_timer();
            self.send_when_durable(from, Body::VoteReply { granted: true });
        } else {
            self.send(from, self.term, Body::VoteReply { granted: false });
        }
    }

    pub(crate) fn on_vote_reply(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        pre_vote: bool,
    ) {
        let (expected_role, expected_term) = match (pre_vote, granted) {
            (true, true) => (Role::PreCandidate, self.term.next()),
            (true, false) => (Role::PreCandidate, self.term),
            (false, _) => (Role::Candidate, self.term),
        };
        let peer = self.peer_index(from);
        match peer {
            Some(peer) if self.role == expected_role && term == expected_term => {
                if self.votes[peer].is_none() {
                    self.votes[peer] = Some(granted);
                }
                self.tally_votes(pre_vote);
            }
            _ => self.counters.dropped_unexpected += 1,
        }
    }
}
