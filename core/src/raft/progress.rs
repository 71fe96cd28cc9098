//! What a leader knows about one follower's log, and how fast it may send to it.

use std::collections::VecDeque;

use smallvec::SmallVec;

use crate::ids::{LogId, LogIndex};
use crate::raft::message::RecoveryTarget;
use crate::time::Instant;

/// How a leader sends entries to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicationState {
    /// The leader does not yet know where the logs agree: one message at a time, each waiting
    /// for its answer (or the next heartbeat).
    Probe,
    /// The logs agree up to `match_index`: entries stream out, up to a window of messages in
    /// flight.
    Replicate,
    /// The follower needs entries the leader has compacted: the leader streams the snapshot
    /// that ends at `last`, in chunks, up to a window in flight.
    Snapshot {
        /// The snapshot being sent.
        last: LogId,
        /// Bytes the follower confirmed holding.
        acked: u64,
        /// Bytes sent.
        sent: u64,
        /// The lowest count of bytes an answer reported below `acked` since the last
        /// heartbeat: a stale answer the network reordered, or a follower that lost what it
        /// had assembled (it restarted). The next heartbeat goes back to it; going back at
        /// once would answer every reordered answer with a window of chunks sent again, whose
        /// answers are reordered in turn: a storm of resent chunks.
        behind: Option<u64>,
    },
}

/// What a follower's rejection of an append means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// It answers an older message than the one the progress waits for: ignored.
    Stale,
    /// The logs diverge after the match: the progress probes backwards from the hint.
    Diverged,
    /// It names a point at or below the match, in answer to a message that may have been sent
    /// before the follower matched there (reordered or duplicated): a message sent after the
    /// match was known, in a newer round, will tell.
    Ambiguous,
    /// It names a point at or below the match, in answer to a message sent after the leader
    /// knew of the match: the follower no longer holds entries it acknowledged (its disk was
    /// damaged or emptied). The progress starts again from what it holds.
    LogLost,
}

/// The byte ranges of snapshot chunks to send, as (offset, length).
pub(crate) type Chunks = SmallVec<[(u64, u64); 4]>;

/// A leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to be durably replicated on the follower.
    match_index: LogIndex,
    /// Next index to send.
    next_index: LogIndex,
    state: ReplicationState,
    /// In `Probe`: a probe is out, wait for its answer.
    probe_sent: bool,
    /// In `Replicate`: the last index of each message in flight, oldest first.
    inflight: VecDeque<LogIndex>,
    /// Heard from in the current check-quorum period.
    recent_active: bool,
    /// When the follower last acknowledged an append (for promoting a learner).
    last_accepted: Option<Instant>,
    /// Highest read round the follower has answered in this term.
    read_round_acked: u64,
    /// The leader's round when it learned of the match: every message sent after carries this
    /// round or a later one, and an answer to a later round was sent after the follower held
    /// the match durably.
    match_round: u64,
    /// The follower's disk lost acknowledged writes and it has not caught up: its name for its
    /// recovery, and what the leader has done about it.
    recovering: Option<RecoveringFollower>,
}

/// A damaged follower, as its leader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RecoveringFollower {
    nonce: u64,
    /// A target is being confirmed (a round is under way).
    requested: bool,
    /// The confirmed target, sent with every append until the follower is sound.
    target: Option<LogIndex>,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            last_accepted: None,
            read_round_acked: 0,
            match_round: 0,
            recovering: None,
        }
    }

    /// Panics unless the view is consistent with a leader whose log ends at `last`: the match
    /// lies below the next index to send, and neither passes the log; appends in flight lie
    /// between them.
    pub(crate) fn check_invariants(&self, last: LogIndex) {
        assert!(
            self.match_index < self.next_index && self.next_index <= last.next(),
            "match {} next {} last {last}",
            self.match_index,
            self.next_index
        );
        let mut previous = self.match_index;
        for &sent in &self.inflight {
            assert!(previous < sent && sent < self.next_index, "in flight out of order");
            previous = sent;
        }
        match self.state {
            ReplicationState::Probe => assert!(self.inflight.is_empty(), "probing with a window"),
            ReplicationState::Replicate => {}
            ReplicationState::Snapshot { acked, sent, .. } => {
                assert!(self.inflight.is_empty() && acked <= sent, "snapshot window")
            }
        }
    }

    /// Highest index known to be durably replicated on the follower.
    pub(crate) fn match_index(&self) -> LogIndex {
        self.match_index
    }

    /// The next index to send (or to probe with).
    pub(crate) fn next_index(&self) -> LogIndex {
        self.next_index
    }

    /// The snapshot being sent, if the follower needs one.
    pub(crate) fn snapshot_sending(&self) -> Option<LogId> {
        match self.state {
            ReplicationState::Snapshot { last, .. } => Some(last),
            ReplicationState::Probe | ReplicationState::Replicate => None,
        }
    }

    /// The follower answered something: unless it is recovering, it counts as active in this
    /// check-quorum period, and it has seen the leader's read round `round`.
    pub(crate) fn on_heard(&mut self, round: u64) {
        if self.recovering.is_none() {
            self.recent_active = true;
            self.read_round_acked = self.read_round_acked.max(round);
        }
    }

    /// The follower's reply says whether it is recovering, and under which name. A new name
    /// (it restarted, damaged again) starts over; none means it is sound.
    pub(crate) fn on_recovering(&mut self, nonce: Option<u64>) {
        match (nonce, self.recovering) {
            (None, _) => self.recovering = None,
            (Some(nonce), Some(known)) if known.nonce == nonce => {}
            (Some(nonce), _) => {
                self.recovering =
                    Some(RecoveringFollower { nonce, requested: false, target: None });
                // What it answered before it was damaged no longer holds.
                self.recent_active = false;
                self.read_round_acked = 0;
            }
        }
    }

    /// The name of a recovery that awaits a target no round is confirming yet; marks it
    /// requested.
    pub(crate) fn take_recovery_request(&mut self) -> Option<u64> {
        let recovering = self.recovering.as_mut().filter(|r| !r.requested && r.target.is_none())?;
        recovering.requested = true;
        Some(recovering.nonce)
    }

    /// A round confirmed `commit` as the target of recovery `nonce`; ignored if the follower
    /// has since become sound or recovers under another name.
    pub(crate) fn on_recovery_confirmed(&mut self, nonce: u64, commit: LogIndex) {
        if let Some(recovering) = self.recovering.as_mut().filter(|r| r.nonce == nonce) {
            recovering.target = Some(commit);
        }
    }

    /// The target to send with appends, if one was confirmed.
    pub(crate) fn recovery_target(&self) -> Option<RecoveryTarget> {
        let recovering = self.recovering?;
        Some(RecoveryTarget { nonce: recovering.nonce, commit: recovering.target? })
    }

    /// The match that counts toward commits: none while the follower recovers.
    pub(crate) fn counted_match(&self) -> LogIndex {
        if self.recovering.is_some() { LogIndex(0) } else { self.match_index }
    }

    /// Whether the follower was heard from since the last call (a check-quorum period ends).
    pub(crate) fn take_recent_active(&mut self) -> bool {
        std::mem::take(&mut self.recent_active)
    }

    /// Highest read round the follower has answered in this term (none while it recovers).
    pub(crate) fn read_round_acked(&self) -> u64 {
        self.read_round_acked
    }

    /// Whether no message with entries may be sent now.
    pub(crate) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() >= max_inflight,
            ReplicationState::Snapshot { .. } => true,
        }
    }

    /// How many appends carrying entries are in flight (none unless replicating).
    pub(crate) fn appends_in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Records that an append was sent whose last entry is `last_sent`.
    pub(crate) fn on_sent(&mut self, last_sent: LogIndex) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                self.next_index = last_sent.next();
                self.inflight.push_back(last_sent);
            }
            ReplicationState::Snapshot { .. } => {}
        }
    }

    /// A heartbeat interval passed: a probe that got no answer may be sent again, and snapshot
    /// chunks not confirmed are sent again.
    pub(crate) fn on_heartbeat(&mut self) {
        self.probe_sent = false;
        if let ReplicationState::Snapshot { acked, sent, behind, .. } = &mut self.state {
            if let Some(behind) = behind.take() {
                *acked = behind;
            }
            *sent = *acked;
        }
    }

    /// Starts streaming the snapshot ending at `last` from its first byte.
    pub(crate) fn start_snapshot(&mut self, last: LogId) {
        self.state = ReplicationState::Snapshot { last, acked: 0, sent: 0, behind: None };
        self.inflight.clear();
    }

    /// The chunks to send now of the snapshot `last` of `total` bytes, if the follower is
    /// receiving a snapshot (a newer one than it was receiving starts from its first byte):
    /// as many as the window of `max_inflight_chunks` allows. On a heartbeat (`resend`),
    /// chunks not confirmed go again, and at least one goes, so that a follower that installed
    /// the snapshot already says so.
    pub(crate) fn snapshot_chunks(
        &mut self,
        last: LogId,
        total: u64,
        chunk_bytes: u64,
        max_inflight_chunks: u64,
        resend: bool,
    ) -> Chunks {
        let mut chunks = Chunks::new();
        let Some(sending) = self.snapshot_sending() else { return chunks };
        if sending != last {
            self.start_snapshot(last);
        }
        if resend {
            self.on_heartbeat();
        }
        while let Some(chunk) = self.next_snapshot_chunk(total, chunk_bytes, max_inflight_chunks) {
            chunks.push(chunk);
        }
        if let (true, true, ReplicationState::Snapshot { acked, .. }) =
            (chunks.is_empty(), resend, self.state)
        {
            chunks.push((acked, (total - acked).min(chunk_bytes)));
        }
        chunks
    }

    /// The next chunk to send of a snapshot of `total` bytes, as (offset, length), if the window
    /// allows one; marks it sent.
    fn next_snapshot_chunk(
        &mut self,
        total: u64,
        chunk_bytes: u64,
        max_inflight_chunks: u64,
    ) -> Option<(u64, u64)> {
        let ReplicationState::Snapshot { acked, sent, .. } = &mut self.state else {
            return None;
        };
        if *sent >= total || *sent - *acked >= chunk_bytes * max_inflight_chunks {
            return None;
        }
        let chunk = (total - *sent).min(chunk_bytes);
        let offset = *sent;
        *sent += chunk;
        Some((offset, chunk))
    }

    /// The follower holds `received` bytes of the snapshot `last`. Fewer than it confirmed
    /// before means it lost them (it restarted): send again from there.
    pub(crate) fn on_snapshot_received(&mut self, last: LogId, received: u64) {
        if let ReplicationState::Snapshot { last: sending, acked, sent, behind } = &mut self.state {
            if *sending != last {
                return;
            }
            if received >= *acked {
                *acked = received;
                *sent = (*sent).max(received);
                *behind = None;
            } else {
                *behind = Some(behind.map_or(received, |behind| behind.min(received)));
            }
        }
    }

    /// When the follower last acknowledged an append, if it did in this leadership.
    pub(crate) fn last_accepted(&self) -> Option<Instant> {
        self.last_accepted
    }

    /// The follower acknowledged its log up to `match_index` at `now`; the leader's round is
    /// `current_round`. Returns whether the match moved.
    pub(crate) fn on_accepted(
        &mut self,
        match_index: LogIndex,
        current_round: u64,
        now: Instant,
    ) -> bool {
        self.last_accepted = Some(now);
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
            self.match_round = current_round;
        }
        match self.state {
            ReplicationState::Probe if match_index >= self.match_index => self.start_replicating(),
            ReplicationState::Snapshot { last, .. } if match_index >= last.index => {
                self.start_replicating()
            }
            // The follower holds more than the snapshot's sender knew: next stays past it.
            ReplicationState::Snapshot { .. } => {
                self.next_index = self.next_index.max(self.match_index.next())
            }
            ReplicationState::Probe => {}
            ReplicationState::Replicate => {
                self.next_index = self.next_index.max(self.match_index.next());
                while self.inflight.front().is_some_and(|&last| last <= self.match_index) {
                    self.inflight.pop_front();
                }
            }
        }
        advanced
    }

    /// The logs agree up to the match index: stream entries after it.
    fn start_replicating(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// The follower rejected the append after `rejected_prev`, answering a message of round
    /// `reply_round`; `next` is where the leader's backtracking says to try. Unless the
    /// rejection is stale or ambiguous, the progress falls back to probing.
    pub(crate) fn on_rejected(
        &mut self,
        rejected_prev: LogIndex,
        next: LogIndex,
        reply_round: u64,
    ) -> Rejection {
        if matches!(self.state, ReplicationState::Snapshot { .. }) {
            return Rejection::Stale;
        }
        let rejection = if rejected_prev > self.match_index {
            match self.state {
                // Only the answer to the probe in flight counts.
                ReplicationState::Probe if rejected_prev != self.next_index.prev() => {
                    return Rejection::Stale;
                }
                _ => Rejection::Diverged,
            }
        } else if reply_round > self.match_round {
            self.match_index = LogIndex(0);
            self.match_round = 0;
            Rejection::LogLost
        } else {
            return Rejection::Ambiguous;
        };
        self.state = ReplicationState::Probe;
        self.next_index = next.clamp(self.match_index.next(), rejected_prev.max(LogIndex(1)));
        self.probe_sent = false;
        self.inflight.clear();
        rejection
    }

    /// Whether a message of a round later than the one current at the match has been
    /// started, so an answer to it will settle an ambiguous rejection.
    pub(crate) fn is_newer_round(&self, round: u64) -> bool {
        round > self.match_round
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_rejection_below_the_match_is_ignored_while_probing() {
        // Found by the simulator (seed 1, no faults): the follower rejected prev=3, then
        // accepted up to 3; a heartbeat's rejection at 4 sent the leader back to probing at 4,
        // and the late rejection of 3 then looked like the answer to that probe.
        let mut progress = Progress::new(LogIndex(1));
        progress.on_sent(LogIndex(3));
        progress.on_accepted(LogIndex(3), 0, Instant::ZERO);
        assert_eq!(progress.on_rejected(LogIndex(4), LogIndex(4), 0), Rejection::Diverged);
        assert_eq!(
            progress.on_rejected(LogIndex(3), LogIndex(3), 0),
            Rejection::Ambiguous,
            "may have been sent before the match at 3"
        );
        assert_eq!(progress.next_index, LogIndex(4));
        assert_eq!(progress.match_index, LogIndex(3));
    }

    #[test]
    fn a_rejection_below_the_match_in_a_later_round_means_the_follower_lost_its_log() {
        let mut progress = Progress::new(LogIndex(1));
        progress.on_sent(LogIndex(40));
        progress.on_accepted(LogIndex(40), 2, Instant::ZERO);
        assert!(!progress.is_newer_round(2));
        assert_eq!(progress.on_rejected(LogIndex(40), LogIndex(1), 2), Rejection::Ambiguous);
        assert!(progress.is_newer_round(3));
        // The follower restarted with an empty disk and rejects a heartbeat of round 3.
        assert_eq!(progress.on_rejected(LogIndex(40), LogIndex(1), 3), Rejection::LogLost);
        assert_eq!(progress.match_index, LogIndex(0));
        assert_eq!(progress.state, ReplicationState::Probe);
        assert_eq!(progress.next_index, LogIndex(1), "probes from what the follower holds");
    }

    #[test]
    fn probe_sends_one_at_a_time_until_answered() {
        let mut progress = Progress::new(LogIndex(5));
        assert!(!progress.is_paused(4));
        progress.on_sent(LogIndex(7));
        assert!(progress.is_paused(4));
        assert_eq!(progress.next_index, LogIndex(5), "probing does not move next");
        progress.on_heartbeat();
        assert!(!progress.is_paused(4));
    }

    #[test]
    fn accepted_probe_switches_to_replicate_and_fills_a_window() {
        let mut progress = Progress::new(LogIndex(5));
        progress.on_sent(LogIndex(7));
        assert!(progress.on_accepted(LogIndex(7), 0, Instant::ZERO));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert_eq!(progress.next_index, LogIndex(8));
        progress.on_sent(LogIndex(9));
        progress.on_sent(LogIndex(12));
        assert!(progress.is_paused(2));
        progress.on_accepted(LogIndex(9), 0, Instant::ZERO);
        assert!(!progress.is_paused(2));
        assert_eq!(progress.next_index, LogIndex(13));
    }

    #[test]
    fn a_snapshot_streams_in_a_window_and_resends_what_was_lost() {
        let last = LogId::new(LogIndex(50), crate::ids::Term(3));
        let mut progress = Progress::new(LogIndex(10));
        progress.start_snapshot(last);
        assert!(progress.is_paused(4), "no appends while a snapshot streams");
        let chunks: Vec<_> =
            std::iter::from_fn(|| progress.next_snapshot_chunk(250, 100, 2)).collect();
        assert_eq!(chunks, [(0, 100), (100, 100)], "a window of two chunks");
        progress.on_snapshot_received(last, 100);
        assert_eq!(progress.next_snapshot_chunk(250, 100, 2), Some((200, 50)));
        assert_eq!(progress.next_snapshot_chunk(250, 100, 2), None, "all sent");
        progress.on_heartbeat();
        assert_eq!(progress.next_snapshot_chunk(250, 100, 2), Some((100, 100)), "resent");
        progress.on_snapshot_received(last, 0); // The follower restarted.
        progress.on_heartbeat();
        assert_eq!(progress.next_snapshot_chunk(250, 100, 2), Some((0, 100)), "from the start");
        progress.on_accepted(LogIndex(50), 0, Instant::ZERO);
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert_eq!(progress.next_index, LogIndex(51));
    }

    /// Found by the simulator (seed 201008, 16-byte chunks on a reordering network): going
    /// back at every answer below the confirmed count sent two million messages in 3.5
    /// simulated seconds.
    #[test]
    fn a_stale_snapshot_answer_goes_back_only_at_the_next_heartbeat() {
        let last = LogId::new(LogIndex(50), crate::ids::Term(3));
        let mut progress = Progress::new(LogIndex(10));
        progress.start_snapshot(last);
        let chunks = progress.snapshot_chunks(last, 100, 10, 3, false);
        assert_eq!(chunks.as_slice(), [(0, 10), (10, 10), (20, 10)]);
        progress.on_snapshot_received(last, 30);
        progress.on_snapshot_received(last, 10); // Reordered: older than the one before.
        let chunks = progress.snapshot_chunks(last, 100, 10, 3, false);
        assert_eq!(chunks.as_slice(), [(30, 10), (40, 10), (50, 10)], "nothing sent again");
        progress.on_snapshot_received(last, 40); // The follower is ahead: the stale one is moot.
        let resent = progress.snapshot_chunks(last, 100, 10, 3, true);
        assert_eq!(resent.as_slice(), [(40, 10), (50, 10), (60, 10)], "from the confirmed 40");
        progress.on_snapshot_received(last, 0); // It lost what it had.
        let resent = progress.snapshot_chunks(last, 100, 10, 3, true);
        assert_eq!(resent.as_slice(), [(0, 10), (10, 10), (20, 10)], "from the start");
    }

    #[test]
    fn the_snapshot_window_is_chunks_times_their_size_and_a_heartbeat_resends_the_rest() {
        let last = LogId::new(LogIndex(50), crate::ids::Term(3));
        let mut progress = Progress::new(LogIndex(10));
        progress.start_snapshot(last);
        let chunks = progress.snapshot_chunks(last, 95, 10, 3, false);
        assert_eq!(chunks.as_slice(), [(0, 10), (10, 10), (20, 10)], "three in flight");
        progress.on_snapshot_received(last, 20);
        let chunks = progress.snapshot_chunks(last, 95, 10, 3, false);
        assert_eq!(chunks.as_slice(), [(30, 10), (40, 10)], "the window moved by two chunks");
        // The follower holds more than was sent (a resend raced ahead): skip to it.
        progress.on_snapshot_received(last, 90);
        let chunks = progress.snapshot_chunks(last, 95, 10, 3, false);
        assert_eq!(chunks.as_slice(), [(90, 5)], "the last, short chunk");
        let resent = progress.snapshot_chunks(last, 95, 10, 3, true);
        assert_eq!(resent.as_slice(), [(90, 5)], "a heartbeat resends from what was confirmed");
        // Accepted below the snapshot's end: still the snapshot it needs.
        progress.on_accepted(LogIndex(40), 0, Instant::ZERO);
        assert_eq!(progress.snapshot_sending(), Some(last));
        progress.on_accepted(LogIndex(50), 0, Instant::ZERO);
        assert_eq!(progress.snapshot_sending(), None);
        assert_eq!(progress.next_index(), LogIndex(51));
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut progress = Progress::new(LogIndex(10));
        progress.on_sent(LogIndex(12));
        let rejection = progress.on_rejected(LogIndex(4), LogIndex(3), 0);
        assert_eq!(rejection, Rejection::Stale, "not the probe in flight");
        assert_eq!(progress.on_rejected(LogIndex(9), LogIndex(3), 0), Rejection::Diverged);
        assert_eq!(progress.next_index, LogIndex(3));
        progress.on_accepted(LogIndex(2), 0, Instant::ZERO);
        let rejection = progress.on_rejected(LogIndex(2), LogIndex(1), 0);
        assert_eq!(rejection, Rejection::Ambiguous, "already matched there");
    }
}
