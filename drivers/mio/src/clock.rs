//! The driver's clock: core `Instant`s measured from the Unix epoch, and spans of the standard
//! library's time as core `Duration`s.
//!
//! Core compares instants stamped by different nodes (the leader stamps each logged request,
//! and session expiry follows those stamps on every replica), so every process of a cluster
//! counts from the same origin: the Unix epoch, read once at start, then advanced by the
//! monotonic clock so that a wall-clock step never moves time backwards within a process.

use std::time::{SystemTime, UNIX_EPOCH};

use raftkv_core::{Duration, Instant};

/// Reads the current time as a core [`Instant`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: std::time::Instant,
    origin_unix_nanos: u64,
}

impl Clock {
    /// A clock anchored at the current wall-clock time.
    pub(crate) fn new() -> Clock {
        let since_epoch =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(std::time::Duration::ZERO);
        Clock {
            origin: std::time::Instant::now(),
            origin_unix_nanos: u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Now, in nanoseconds since the Unix epoch.
    pub(crate) fn now(&self) -> Instant {
        let elapsed = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Instant::from_nanos(self.origin_unix_nanos.saturating_add(elapsed))
    }

    /// How long from `now` until `deadline` (zero if it has passed), as a poll's timeout.
    pub(crate) fn until(now: Instant, deadline: Instant) -> std::time::Duration {
        std::time::Duration::from_nanos((deadline - now).as_nanos())
    }
}

/// `span` as a core [`Duration`], saturating past `u64::MAX` nanoseconds (some 584 years).
pub(crate) fn core_duration(span: std::time::Duration) -> Duration {
    Duration::from_nanos(u64::try_from(span.as_nanos()).unwrap_or(u64::MAX))
}
