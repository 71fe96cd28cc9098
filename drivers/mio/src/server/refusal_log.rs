//! Counting and logging refusals: every one is counted; the log gets at most one line per
//! reason per second, so that a flood of bad connections (or of requests answered busy)
//! cannot flood it.

use raftkv_core::{Duration, Instant};
use tracing::warn;

use crate::connection_report::Refusals;
use crate::log_throttle::LogThrottle;

/// Why a connection was refused or closed, or a request answered busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Reason {
    PendingEvicted,
    ClientEvicted,
    HandshakeFailed,
    HandshakeTimedOut,
    HelloRefused,
    /// A `Hello` from a node that is not a member: most often a removed node that keeps
    /// dialing, every second, for as long as it runs. Counted with `HelloRefused`, logged
    /// apart and rarely.
    NotMember,
    PeerIdentity,
    Idle,
    BadFrame,
    FrameTimedOut,
    UnreadReplies,
    BufferBudget,
    SnapshotTooLarge,
    Misaddressed,
    /// A request answered busy: the connection stays open.
    Busy,
}

impl Reason {
    /// What the node did, for the log line.
    fn action(self) -> &'static str {
        match self {
            Reason::Busy => "answered a request busy",
            _ => "closed a connection",
        }
    }

    /// How often this reason may be logged.
    fn log_interval(self) -> Duration {
        match self {
            Reason::NotMember => NOT_MEMBER_LOG_INTERVAL,
            _ => LOG_INTERVAL,
        }
    }
}

/// How often one reason may be logged.
const LOG_INTERVAL: Duration = Duration::from_millis(1_000);
/// How often refusals of non-members may be logged: the first says what happens, and a
/// removed node left running would otherwise fill the log with one line a second.
const NOT_MEMBER_LOG_INTERVAL: Duration = Duration::from_millis(600_000);

/// The counters, and when each reason may be logged next.
#[derive(Debug, Default)]
pub(super) struct RefusalLog {
    counts: Refusals,
    throttle: LogThrottle<Reason, Instant>,
}

impl RefusalLog {
    /// Counts a refusal and logs it unless this reason was logged less than its interval ago
    /// (a second; ten minutes for non-members). Returns, if it logged, how many of this reason
    /// went unlogged before (the line says so too).
    pub(super) fn record(
        &mut self,
        reason: Reason,
        now: Instant,
        address: &str,
        detail: &str,
    ) -> Option<u64> {
        let count = self.counter(reason);
        *count = count.saturating_add(1);
        let unlogged = self.throttle.admit(reason, now, reason.log_interval());
        if let Some(unlogged) = unlogged {
            warn!(%address, reason = ?reason, detail, unlogged, "{}", reason.action());
        }
        unlogged
    }

    /// Counts a connection held back at a cap on requests in flight: not a refusal, not
    /// logged (it happens under any heavy load).
    pub(super) fn count_held(&mut self) {
        self.counts.held_at_request_cap += 1;
    }

    /// The counters.
    pub(super) fn counts(&self) -> &Refusals {
        &self.counts
    }

    fn counter(&mut self, reason: Reason) -> &mut u64 {
        let c = &mut self.counts;
        match reason {
            Reason::PendingEvicted => &mut c.pending_evicted,
            Reason::ClientEvicted => &mut c.clients_evicted,
            Reason::HandshakeFailed => &mut c.handshake_failed,
            Reason::HandshakeTimedOut => &mut c.handshake_timed_out,
            Reason::HelloRefused | Reason::NotMember => &mut c.hello_refused,
            Reason::PeerIdentity => &mut c.peer_identity_refused,
            Reason::Idle => &mut c.idle_closed,
            Reason::BadFrame => &mut c.bad_frames,
            Reason::FrameTimedOut => &mut c.frame_timed_out,
            Reason::UnreadReplies => &mut c.unread_replies_closed,
            Reason::BufferBudget => &mut c.buffer_budget_closed,
            Reason::SnapshotTooLarge => &mut c.snapshot_too_large,
            Reason::Misaddressed => &mut c.misaddressed,
            Reason::Busy => &mut c.busy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_counted_and_a_burst_is_logged_once() {
        let mut log = RefusalLog::default();
        let start = Instant::from_nanos(1_000_000_000);
        let logged: Vec<_> = (0..5)
            .map(|i| log.record(Reason::Idle, start + Duration::from_millis(i), "a", "idle"))
            .collect();
        assert_eq!(logged, [Some(0), None, None, None, None]);
        assert_eq!(log.counts().idle_closed, 5);
        assert_eq!(log.record(Reason::Idle, start + LOG_INTERVAL, "a", "idle"), Some(4));
        assert_eq!(log.counts().idle_closed, 6);
        assert_eq!(log.counts().bad_frames, 0);
    }

    #[test]
    fn a_non_member_that_keeps_dialing_is_logged_once_then_every_ten_minutes() {
        let mut log = RefusalLog::default();
        let start = Instant::from_nanos(1_000_000_000);
        let second = Duration::from_millis(1_000);
        let logged = (0..120)
            .filter_map(|i| {
                let at = start + second.saturating_mul(i);
                log.record(Reason::NotMember, at, "a", "node 1 is not a member")
            })
            .count();
        assert_eq!(log.counts().hello_refused, 120, "every refusal counted");
        assert_eq!(logged, 1, "logged once");
        let later = start + NOT_MEMBER_LOG_INTERVAL;
        let again = log.record(Reason::NotMember, later, "a", "node 1 is not a member");
        assert_eq!(again, Some(119), "then again, with the count");
        let other = log.record(Reason::HelloRefused, later, "b", "wrong cluster");
        assert_eq!(other, Some(0), "other refusals apart");
    }
}
