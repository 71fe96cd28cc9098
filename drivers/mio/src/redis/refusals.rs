//! What the Redis listener refused, or closed to make room: every one counted (for `INFO` and
//! `/metrics`), each kind logged at most once a second, so that a flood of bad connections
//! cannot flood the log.

use std::time::{Duration, Instant};

use tracing::warn;

use crate::server::RefusalCounts;

/// How often one kind may be logged.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Why the listener closed a connection on its own (each counted in [`RefusalCounts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadCommand,
    Tls,
    Evicted,
}

/// Kinds of refusal, each logged apart (`Evicted` is the last).
const KINDS: usize = Refusal::Evicted as usize + 1;

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
    /// When each kind (by its discriminant) was last logged.
    last_logged: [Option<Instant>; KINDS],
}

impl Refusals {
    /// Counts a refusal, and logs `what` unless one of its kind was logged less than a second
    /// ago.
    pub(crate) fn record(&mut self, refusal: Refusal, what: &str) {
        let count = counter(&mut self.counts, refusal);
        *count = count.saturating_add(1);
        let total = *count;
        let now = Instant::now();
        let last = &mut self.last_logged[refusal as usize];
        if last.is_none_or(|at| now.duration_since(at) >= LOG_INTERVAL) {
            *last = Some(now);
            warn!(total, "redis listener {}: {what}", refusal.action());
        }
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
        for _ in 0..3 {
            refusals.record(Refusal::Evicted, "idle");
        }
        refusals.record(Refusal::Tls, "no certificate");
        let counts = refusals.counts();
        assert_eq!(counts, RefusalCounts { bad_commands: 0, tls_refused: 1, clients_evicted: 3 });
        let logged = refusals.last_logged;
        assert!(logged[0].is_none() && logged[1].is_some() && logged[2].is_some());
        let first_eviction = logged[2];
        refusals.record(Refusal::Evicted, "idle");
        assert_eq!(refusals.last_logged[2], first_eviction, "not again within a second");
    }
}
