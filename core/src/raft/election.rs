//! Leader election: pre-vote, vote, and the changes of role they cause.

use crate::ids::{LogId, NodeId, Term};
use crate::raft::ballot::Ballot;
use crate::raft::entry::Payload;
use crate::raft::message::Body;
use crate::raft::node::{RaftNode, Role};
use crate::raft::quorum::VoteResult;
use crate::time::Duration;

impl RaftNode {
    /// The election timeout passed without word from a leader: ask the peers whether an
    /// election could succeed before disturbing anyone with a new term (thesis §9.6).
    ///
    /// A node whose disk was damaged does not campaign until it has caught up, a node that is
    /// not a voter (a learner, a node whose removal committed) does not unless its log is
    /// needed (see `may_campaign`), and a node at the last valid term cannot.
    pub(crate) fn start_pre_vote(&mut self) {
        self.reset_election_timer();
        self.leader = None;
        self.leader_contact = None;
        let Some(campaign_term) = self.term.next() else { return };
        if self.withhold_while_damaged() || self.withhold_unless_voter() {
            return;
        }
        self.role = Role::PreCandidate;
        self.progress.clear();
        self.votes = Ballot::default();
        self.counters.pre_elections += 1;
        if !self.is_voter() && self.log_needed {
            self.counters.learner_campaigns += 1;
        }
        // A random name, not a count: a count starts again with the process, and a grant
        // from before a restart would then look like one of this round.
        self.pre_vote_round = self.rng.next_u64();
        let (last, round) = (self.log.last_id(), self.pre_vote_round);
        for voter in self.other_voters() {
            self.send(voter, campaign_term, Body::PreVote { last, round });
        }
        self.tally_votes(true);
    }

    /// Campaigns in the next term; with `transfer`, at the leader's request.
    ///
    /// The vote requests leave only once the new term and the vote for itself are durable:
    /// a candidate that crashed before that would come back in its old term, free to campaign
    /// in the same term again and to win it twice with the same grants, leading one term
    /// twice with two different logs.
    pub(crate) fn start_election(&mut self, transfer: bool) {
        let Some(term) = self.term.next() else { return };
        if self.withhold_while_damaged() || self.withhold_unless_voter() {
            return;
        }
        self.term = term;
        self.vote = Some(self.config.id);
        self.durability.hard_state_changed();
        self.own_vote_persist = self.durability.current_barrier();
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = Ballot::default();
        self.reset_election_timer();
        self.counters.elections += 1;
        let last = self.log.last_id();
        for voter in self.other_voters() {
            self.send_when_durable(voter, Body::Vote { last, transfer });
        }
        self.tally_votes(false);
    }

    /// Whether the node must stay out of elections because its disk lost acknowledged writes
    /// and it has not caught up yet (counted when so).
    fn withhold_while_damaged(&mut self) -> bool {
        let damaged = self.recovery.is_damaged();
        if damaged {
            self.counters.withheld_while_damaged += 1;
        }
        damaged
    }

    /// Whether the node must stay out of elections because it is not a voter of the membership
    /// in force, nor one that membership removed before committing (counted when so).
    fn withhold_unless_voter(&mut self) -> bool {
        let eligible = self.may_campaign();
        if !eligible {
            self.counters.withheld_not_voter += 1;
        }
        !eligible
    }

    /// Counts the answers of a (pre-)election. A candidate's vote for itself counts only once
    /// it is durable.
    pub(crate) fn tally_votes(&mut self, pre_vote: bool) {
        let expected_role = if pre_vote { Role::PreCandidate } else { Role::Candidate };
        if self.role != expected_role {
            return;
        }
        let own = pre_vote || self.durability.is_acknowledged(self.own_vote_persist);
        let id = self.config.id;
        let result = self.log.membership().quorum().vote_result(|voter| match voter == id {
            true => own.then_some(true),
            false => self.votes.answer(voter),
        });
        match result {
            VoteResult::Won if pre_vote => self.start_election(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn become_leader(&mut self) {
        assert!(
            self.durability.is_acknowledged(self.own_vote_persist),
            "a candidate leads only once its term and vote are durable"
        );
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.early_appends.clear();
        self.votes = Ballot::default();
        self.counters.leaderships += 1;
        self.sync_progress(self.log.last_index().next());
        self.heartbeat_deadline =
            self.now + Duration::from_millis(self.config.heartbeat_interval_ms);
        self.quorum_check_deadline =
            self.now + Duration::from_millis(self.config.election_timeout_ms_min);
        self.append_own(Payload::Noop);
        // An earlier leader's joint membership may be known committed already.
        self.advance_membership();
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
            self.log_needed = false;
        }
        self.role = Role::Follower;
        self.transfer = None;
        self.early_appends.clear();
        self.leader = leader;
        self.leader_contact = leader.map(|_| self.now);
        self.progress.clear();
        self.votes = Ballot::default();
        self.reset_election_timer();
    }

    /// `campaign_term` is the term the sender would campaign in; it is at least ours.
    pub(crate) fn on_pre_vote(
        &mut self,
        from: NodeId,
        campaign_term: Term,
        last: LogId,
        round: u64,
    ) {
        let granted = campaign_term > self.term
            && !self.in_leader_lease()
            && last.is_up_to_date_with(self.log.last_id())
            && !self.withhold_while_damaged();
        if !granted && self.in_leader_lease() {
            self.counters.dropped_in_lease += 1;
        }
        if campaign_term > self.term {
            self.note_if_log_needed(last);
        }
        let reply_term = if granted { campaign_term } else { self.term };
        self.send(from, reply_term, Body::PreVoteReply { granted, round });
        self.tell_removed_node(from);
    }

    /// A learner asked for its vote by a candidate whose log is behind its own, with no leader
    /// to follow, may be the only up-to-date copy the voters can reach: it may campaign from
    /// now until it hears from a leader (see `may_campaign`).
    fn note_if_log_needed(&mut self, candidate_last: LogId) {
        if self.log.membership().is_learner(self.config.id)
            && !candidate_last.is_up_to_date_with(self.log.last_id())
            && !self.in_leader_lease()
            && !self.recovery.is_damaged()
        {
            self.log_needed = true;
        }
    }

    /// A vote request in this node's term (a newer term was adopted before). Any node answers,
    /// learners too: a learner may have been promoted by an entry it has not received yet, and
    /// a candidate of that membership may need its vote (refusing could leave the cluster
    /// without a leader for good). Whether a grant counts is the candidate's membership's call.
    /// Within its vote promise (`read_lease`) the node grants only a transfer's candidate.
    pub(crate) fn on_vote(&mut self, from: NodeId, last: LogId, transfer: bool) {
        let free_to_vote =
            self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let promised = !transfer && self.bound_by_vote_promise();
        if promised {
            self.counters.dropped_in_lease += 1;
        }
        if free_to_vote
            && !promised
            && last.is_up_to_date_with(self.log.last_id())
            && !self.withhold_while_damaged()
        {
            if self.role != Role::Follower {
                self.become_follower(self.term, None);
            }
            self.vote = Some(from);
            self.durability.hard_state_changed();
            self.reset_election_timer();
            self.send_when_durable(from, Body::VoteReply { granted: true });
        } else {
            self.note_if_log_needed(last);
            self.send(from, self.term, Body::VoteReply { granted: false });
        }
    }

    /// An answer to this node's pre-vote: a grant carries the term it would campaign in, a
    /// refusal the voter's own term. Only answers to the current round count.
    pub(crate) fn on_pre_vote_reply(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        round: u64,
    ) {
        let expected_term = if granted { self.term.next() } else { Some(self.term) };
        let current = self.role == Role::PreCandidate
            && Some(term) == expected_term
            && round == self.pre_vote_round;
        self.record_vote(from, current, granted, true);
    }

    /// An answer to this node's vote request in its term.
    pub(crate) fn on_vote_reply(&mut self, from: NodeId, term: Term, granted: bool) {
        let current = self.role == Role::Candidate && term == self.term;
        self.record_vote(from, current, granted, false);
    }

    fn record_vote(&mut self, from: NodeId, current: bool, granted: bool, pre_vote: bool) {
        if current && self.log.membership().is_voter(from) {
            self.votes.record(from, granted);
            self.tally_votes(pre_vote);
        } else {
            self.counters.dropped_unexpected += 1;
        }
    }
}
