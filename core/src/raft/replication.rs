//! Log replication: proposals, AppendEntries on both sides, and the commit rule.

use crate::ids::{LogId, LogIndex, NodeId};
use crate::raft::early_appends::ReceivedAppend;
use crate::raft::entries_to_send::EntriesToSend;
use crate::raft::entry::{Entry, Payload};
use crate::raft::message::{AppendOutcome, Body, ConflictHint, RecoveryTarget};
use crate::raft::node::{NotLeader, Output, RaftNode, Role};
use crate::raft::progress::{Progress, Rejection};
use crate::time::Instant;

impl RaftNode {
    /// Appends `command` to the log if this node leads; it goes out to the followers at the
    /// next drain of `poll_output`, together with everything else proposed until then. The
    /// entry may still be lost if leadership changes before it commits: watch `Output::Apply`
    /// for an entry with this id.
    pub fn propose(&mut self, now: Instant, command: Vec<u8>) -> Result<LogId, NotLeader> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(NotLeader { hint: self.leader });
        }
        if let Some(target) = self.transfer_target() {
            return Err(NotLeader { hint: Some(target) });
        }
        Ok(self.append_own(Payload::Command(command)))
    }

    pub(crate) fn append_own(&mut self, payload: Payload) -> LogId {
        let id = LogId::new(self.log.last_index().next(), self.term);
        if matches!(payload, Payload::Membership(_)) {
            self.drop_lease();
        }
        self.log.append(Entry { index: id.index, term: id.term, payload });
        self.durability.appended(id.index);
        self.broadcast_due = true;
        self.maybe_commit();
        id
    }

    /// Sends the next entries to one peer while its window allows (in `Probe`, one message).
    /// Returns whether anything was sent.
    ///
    /// A new commit index alone sends nothing: it rides on the next append or heartbeat.
    /// Followers only need it to apply, and an empty append per commit, with its answer, would
    /// double the messages of a lightly loaded cluster.
    pub(crate) fn replicate_to(&mut self, peer: NodeId) -> bool {
        let mut sent = false;
        let max_inflight = self.config.max_inflight_appends;
        while let Some(progress) = self.progress.get(&peer).filter(|p| !p.is_paused(max_inflight)) {
            let next = progress.next_index();
            let Some(prev_term) = self.log.term_at(next.prev()) else {
                self.start_snapshot(peer);
                return true;
            };
            let prev = LogId::new(next.prev(), prev_term);
            if next < self.log.first_held() {
                if next <= self.log_unreadable_through {
                    break; // Unreadable on the disk: it waits for a snapshot past them.
                }
                self.send_from_disk(peer, prev);
                sent = true;
                continue;
            }
            let entries = self.log.slice(
                next,
                self.config.max_entries_per_append,
                self.config.max_bytes_per_append,
            );
            let Some(last_sent) = entries.last().map(|entry| entry.index) else {
                break;
            };
            let pipelined = progress.appends_in_flight() > 0;
            self.progress_of(peer).on_sent(last_sent);
            self.send_append(peer, prev, entries, pipelined);
            sent = true;
        }
        sent
    }

    /// Sends `peer` the entries after `prev`, which are no longer in memory: the driver reads
    /// them from its disk (`Output::SendEntries`), as many as one append holds.
    fn send_from_disk(&mut self, peer: NodeId, prev: LogId) {
        let (max_entries, max_bytes) =
            (self.config.max_entries_per_append, self.config.max_bytes_per_append);
        let last = self
            .log
            .evicted_batch(prev.index.next(), max_entries, max_bytes)
            .expect("the caller found the entry after prev out of memory");
        let last = LogId::new(last, self.log.term_at(last).expect("the log knows its terms"));
        let progress = self.progress_of(peer);
        let pipelined = progress.appends_in_flight() > 0;
        progress.on_sent(last.index);
        let append = EntriesToSend {
            from: self.config.id,
            to: peer,
            term: self.term,
            prev,
            last,
            commit: self.log.committed(),
            read_round: self.read_round(),
            recovery: self.progress_of(peer).recovery_target(),
            pipelined,
        };
        self.counters.appends_from_disk += 1;
        self.outbox.push_back(Output::SendEntries(append));
    }

    /// The driver could not read the entries up to `through` back from its disk: none of them
    /// goes from the disk again, and the replica takes a snapshot past them
    /// (`needs_snapshot`), which followers that need them then receive.
    pub(crate) fn on_log_unreadable(&mut self, through: LogIndex) {
        self.counters.log_reads_failed += 1;
        if through > self.log.snapshot_last().index && through <= self.log.last_index() {
            self.log_unreadable_through = self.log_unreadable_through.max(through);
        }
    }

    fn send_append(&mut self, peer: NodeId, prev: LogId, entries: Vec<Entry>, pipelined: bool) {
        let commit = self.log.committed();
        let recovery = self.progress_of(peer).recovery_target();
        let read_round = self.read_round();
        let body = Body::Append { prev, entries, commit, read_round, recovery, pipelined };
        self.send(peer, self.term, body);
    }

    /// Leader only: the progress of `peer`, which it tracks.
    ///
    /// # Panics
    /// If it does not: callers name peers from `progress` itself, within one handler.
    pub(crate) fn progress_of(&mut self, peer: NodeId) -> &mut Progress {
        self.progress.get_mut(&peer).expect("the leader tracks the peer it replicates to")
    }

    /// Every heartbeat interval, and for each read round: every follower gets a message, which
    /// tells it the leader is alive and, answered, confirms the leadership. A follower whose
    /// probe went unanswered is probed again.
    pub(crate) fn broadcast_heartbeat(&mut self) {
        for peer in self.peers() {
            if self.progress_of(peer).snapshot_sending().is_some() {
                self.send_snapshot(peer, true);
                continue;
            }
            self.progress_of(peer).on_heartbeat();
            if !self.replicate_to(peer) {
                // Nothing new, or the window is full: an empty append at the window's end.
                // Accepted, it frees the window; rejected, it reveals lost messages.
                let progress = self.progress_of(peer);
                let (prev_index, pipelined) =
                    (progress.next_index().prev(), progress.appends_in_flight() > 0);
                match self.log.term_at(prev_index) {
                    Some(prev_term) => {
                        let prev = LogId::new(prev_index, prev_term);
                        self.send_append(peer, prev, Vec::new(), pipelined)
                    }
                    None => self.start_snapshot(peer),
                }
            }
        }
    }

    /// The follower needs entries that are compacted: send the snapshot instead.
    fn start_snapshot(&mut self, peer: NodeId) {
        if let Some(snapshot_last) = self.snapshot.as_ref().map(|s| s.last) {
            self.progress_of(peer).start_snapshot(snapshot_last);
            self.send_snapshot(peer, false);
        }
    }

    /// A message from `from`, the leader of this node's term: follow it, and hold off elections.
    /// Returns false if this node leads the term itself (only a broken peer says otherwise).
    pub(crate) fn follow_leader(&mut self, from: NodeId) -> bool {
        if self.role == Role::Leader {
            self.counters.dropped_unexpected += 1;
            return false;
        }
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.leader_contact = Some(self.now);
        self.promise_votes();
        self.log_needed = false;
        self.reset_election_timer();
        true
    }

    /// An append from the leader of this node's term. One sent behind appends still in flight
    /// that starts past the end of the log is held (up to `max_early_appends`) until they
    /// land: the network reordered the leader's pipeline. A heartbeat too: it may have
    /// overtaken them; sent again at the same point, it is rejected, which tells the leader
    /// what was lost.
    pub(crate) fn on_append(
        &mut self,
        append: ReceivedAppend,
        recovery: Option<RecoveryTarget>,
        pipelined: bool,
    ) {
        if !self.follow_leader(append.from) {
            return;
        }
        if let Some(target) = recovery {
            let durable = self.durability.durable_index();
            if self.recovery.on_target(target.nonce, target.commit, durable) {
                self.durability.hard_state_changed(); // No longer damaged.
            }
        }
        if pipelined && append.prev.index > self.log.last_index() {
            match self.early_appends.hold(append) {
                Ok(()) => self.counters.appends_held += 1,
                Err(append) => self.accept_append(append),
            }
            return;
        }
        self.accept_append(append);
        while let Some(held) = self.early_appends.take_ready(self.log.last_index()) {
            if held.term == self.term && self.leader == Some(held.from) {
                self.accept_append(held);
            }
        }
    }

    /// Takes an append, or rejects it when the log does not hold the entry it follows.
    fn accept_append(&mut self, append: ReceivedAppend) {
        let ReceivedAppend { from, prev, entries, commit, read_round, .. } = append;
        let committed = self.log.committed();
        if prev.index < committed {
            // Everything up to our commit point matches every later leader's log.
            let outcome = AppendOutcome::Accepted { match_index: committed };
            self.send_append_reply(from, read_round, outcome);
            return;
        }
        if !self.log.contains(prev) {
            self.counters.appends_rejected += 1;
            let hint = self.log.conflict_hint(prev.index);
            let outcome = AppendOutcome::Rejected { prev_index: prev.index, hint };
            self.send_append_reply(from, read_round, outcome);
            return;
        }
        let change = self.log.append_from_leader(&entries);
        self.durability.follower_appended(change);
        let last_new = prev.index.plus(entries.len() as u64);
        self.log.commit_to(commit.min(last_new));
        let outcome = AppendOutcome::Accepted { match_index: last_new };
        self.send_append_reply(from, read_round, outcome);
    }

    pub(crate) fn on_append_reply(
        &mut self,
        from: NodeId,
        read_round: u64,
        outcome: AppendOutcome,
        recovering: Option<u64>,
    ) {
        let Some(progress) = self.progress.get_mut(&from).filter(|_| self.role == Role::Leader)
        else {
            self.counters.dropped_unexpected += 1;
            return;
        };
        progress.on_recovering(recovering);
        progress.on_heard(read_round);
        let peer = from;
        self.request_recovery_target(peer);
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                if match_index > self.log.last_index() {
                    self.counters.dropped_unexpected += 1;
                    return;
                }
                let (round, now) = (self.read_round(), self.now);
                if self.progress_of(peer).on_accepted(match_index, round, now) {
                    self.maybe_commit();
                    if self.role != Role::Leader {
                        return; // The commit removed this leader, which stepped down.
                    }
                }
                self.replicate_to(peer);
                self.maybe_send_timeout_now(peer);
            }
            AppendOutcome::Rejected { prev_index, hint } => {
                let next = self.next_after_rejection(hint);
                match self.progress_of(peer).on_rejected(prev_index, next, read_round) {
                    Rejection::Stale => {}
                    Rejection::Ambiguous => self.ask_again_in_a_new_round(peer),
                    Rejection::LogLost => {
                        self.counters.follower_logs_lost += 1;
                        self.replicate_to(peer);
                    }
                    Rejection::Diverged => {
                        self.replicate_to(peer);
                    }
                }
            }
        }
        self.release_reads();
    }

    /// Where to probe next after a rejection: past the leader's last entry of the follower's
    /// conflicting term if the leader has that term, otherwise at the start of that term in the
    /// follower's log.
    fn next_after_rejection(&self, hint: ConflictHint) -> LogIndex {
        match hint.term {
            Some(term) => {
                self.log.last_index_of_term(term).map_or(hint.first_index, LogIndex::next)
            }
            None => hint.first_index,
        }
    }

    /// Commits the highest index durable on a quorum (the leader's own disk counts once its
    /// persist is acknowledged, and only if it votes), but only an entry of the current term
    /// (Raft §5.4.2, Figure 8): earlier entries commit with it. A committed membership may make
    /// the leader leave a joint state, or step down (see `on_commit_membership`); so does the
    /// first commit of a leader that is not a voter.
    pub(crate) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = self.durability.durable_index();
        let quorum_index = self.leader_quorum_value(own, Progress::counted_match);
        let before = self.log.committed();
        if self.log.term_at(quorum_index) == Some(self.term) && self.log.commit_to(quorum_index) {
            self.broadcast_due = true;
            self.on_leader_commit();
            self.on_commit_membership(before);
            if self.log.term_at(before) != Some(self.term) && !self.is_voter() {
                // The first commit of a leader elected as a non-voter: the voters hold its log.
                self.advance_membership();
            }
        }
    }
}
