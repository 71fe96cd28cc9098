//! What the Redis listener refused, or closed to make room: every one counted (for `INFO` and
//! `/metrics`), each kind logged at most once a second, so that a flood of bad connections
//! cannot flood the log.

use std::time::{Duration, Instant};

use tracing::warn;

use crate::log_throttle::LogThrottle;
use crate::server::RefusalCounts;

/// How often one kind may be logged.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Why the listener closed a connection on its own (each counted in [`RefusalCounts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Refusal {
    BadCommand,
    Tls,
    Evicted,
}

impl Refusal {
    fn action(self) -> &'static str {
        match self {
            Refusal::Evicted => "closed a connection to make room",
            Refusal::BadCommand | Refusal::Tls => "refused a connection",
        }
    }
}

/// The counter of `refusal` in `counts`.
fn counter(counts: &mut RefusalCounts, refusal: Refusal) -> &mut u64 {
    match refusal {
        Refusal::BadCommand => &mut counts.bad_commands,
        Refusal::Tls => &mut counts.tls_refused,
        Refusal::Evicted => &mut counts.clients_evicted,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Refusals {
    counts: RefusalCounts,
    throttle: LogThrottle<Refusal, Instant>,
}

impl Refusals {
    /// Counts a refusal, and logs `what` unless one of its kind was logged less than a second
    /// ago. Returns, if it logged, how many of its kind went unlogged before.
    pub(crate) fn record(&mut self, refusal: Refusal, what: &str) -> Option<u64> {
        let count = counter(&mut self.counts, refusal);
        *count = count.saturating_add(1);
        let total = *count;
        let unlogged = self.throttle.admit(refusal, Instant::now(), LOG_INTERVAL);
        if let Some(unlogged) = unlogged {
            warn!(total, unlogged, "redis listener {}: {what}", refusal.action());
        }
        unlogged
    }

    pub(crate) fn counts(&self) -> RefusalCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_counted_by_kind_and_each_kind_is_logged_apart() {
        let mut refusals = Refusals::default();
        let evictions: Vec<_> = (0..3).map(|_| refusals.record(Refusal::Evicted, "idle")).collect();
        assert_eq!(evictions, [Some(0), None, None], "a burst is logged once");
        assert_eq!(refusals.record(Refusal::Tls, "no certificate"), Some(0), "kinds apart");
        let counts = refusals.counts();
        assert_eq!(counts, RefusalCounts { bad_commands: 0, tls_refused: 1, clients_evicted: 3 });
    }
}
