//! What a leader knows about one follower's log, and how fast it may send to it.

use std::collections::VecDeque;

use crate::ids::LogIndex;

/// How a leader sends entries to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicationState {
    /// The leader does not yet know where the logs agree: one message at a time, each waiting
    /// for its answer (or the next heartbeat).
    Probe,
    /// The logs agree up to `match_index`: entries stream out, up to a window of messages in
    /// flight.
    Replicate,
}

/// A leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to be durably replicated on the follower.
    pub(crate) match_index: LogIndex,
    /// Next index to send.
    pub(crate) next_index: LogIndex,
    pub(crate) state: ReplicationState,
    /// In `Probe`: a probe is out, wait for its answer.
    probe_sent: bool,
    /// In `Replicate`: the last index of each message in flight, oldest first.
    inflight: VecDeque<LogIndex>,
    /// The highest commit index this follower can have learned from what was sent to it.
    pub(crate) commit_sent: LogIndex,
    /// Heard from in the current check-quorum period.
    pub(crate) recent_active: bool,
    /// Highest read round the follower has answered in this term.
    pub(crate) read_round_acked: u64,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            commit_sent: LogIndex(0),
            recent_active: false,
            read_round_acked: 0,
        }
    }

    /// Whether no message with entries may be sent now.
    pub(crate) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.inflight.len() >= max_inflight,
        }
    }

    /// Records that an append was sent whose last entry is `last_sent` (none for a heartbeat).
    pub(crate) fn on_sent(&mut self, last_sent: Option<LogIndex>) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                if let Some(last) = last_sent {
                    self.next_index = last.next();
                    self.inflight.push_back(last);
                }
            }
        }
    }

    /// A heartbeat interval passed: a probe that got no answer may be sent again.
    pub(crate) fn on_heartbeat(&mut self) {
        self.probe_sent = false;
    }

    /// The follower acknowledged its log up to `match_index`. Returns whether the match moved.
    pub(crate) fn on_accepted(&mut self, match_index: LogIndex) -> bool {
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
        }
        match self.state {
            ReplicationState::Probe if match_index >= self.match_index => {
                // The logs agree up to here: start streaming after it.
                self.state = ReplicationState::Replicate;
                self.next_index = self.match_index.next();
                self.probe_sent = false;
                self.inflight.clear();
            }
            ReplicationState::Probe => {}
            ReplicationState::Replicate => {
                self.next_index = self.next_index.max(self.match_index.next());
                while self
                    .inflight
                    .front()
                    .is_some_and(|&last| last <= self.match_index)
                {
                    self.inflight.pop_front();
                }
            }
        }
        advanced
    }

    /// The follower rejected the append after `rejected_prev`; `next` is where the leader's
    /// backtracking says to try. Returns whether the rejection was current (not a stale answer
    /// to an older message) and the progress fell back to probing.
    pub(crate) fn on_rejected(&mut self, rejected_prev: LogIndex, next: LogIndex) -> bool {
        let current = match self.state {
            ReplicationState::Probe => rejected_prev == self.next_index.prev(),
            ReplicationState::Replicate => rejected_prev > self.match_index,
        };
        if !current {
            return false;
        }
        self.state = ReplicationState::Probe;
        self.next_index = next.clamp(self.match_index.next(), rejected_prev.max(LogIndex(1)));
        self.probe_sent = false;
        self.inflight.clear();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_at_a_time_until_answered() {
        let mut progress = Progress::new(LogIndex(5));
        assert!(!progress.is_paused(4));
        progress.on_sent(Some(LogIndex(7)));
        assert!(progress.is_paused(4));
        assert_eq!(
            progress.next_index,
            LogIndex(5),
            "probing does not move next"
        );
        progress.on_heartbeat();
        assert!(!progress.is_paused(4));
    }

    #[test]
    fn accepted_probe_switches_to_replicate_and_fills_a_window() {
        let mut progress = Progress::new(LogIndex(5));
        progress.on_sent(Some(LogIndex(7)));
        assert!(progress.on_accepted(LogIndex(7)));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert_eq!(progress.next_index, LogIndex(8));
        progress.on_sent(Some(LogIndex(9)));
        progress.on_sent(Some(LogIndex(12)));
        assert!(progress.is_paused(2));
        progress.on_accepted(LogIndex(9));
        assert!(!progress.is_paused(2));
        assert_eq!(progress.next_index, LogIndex(13));
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut progress = Progress::new(LogIndex(10));
        progress.on_sent(None);
        assert!(
            !progress.on_rejected(LogIndex(4), LogIndex(3)),
            "not the probe in flight"
        );
        assert!(progress.on_rejected(LogIndex(9), LogIndex(3)));
        assert_eq!(progress.next_index, LogIndex(3));
        progress.on_accepted(LogIndex(2));
        assert!(
            !progress.on_rejected(LogIndex(2), LogIndex(1)),
            "already matched there"
        );
    }
}
