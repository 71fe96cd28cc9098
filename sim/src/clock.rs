//! A node's own clock: it starts at its own origin and runs at its own integer rate. Core only
//! ever sees this clock; the simulator converts its timers back to virtual time.

use raftkv_core::{Duration, Instant};

const PPM: u128 = 1_000_000;

/// The clock of one node life: `local = origin + (virtual - start) * rate`, with the rate in
/// parts per million of virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    /// Virtual time when the clock started.
    start: Instant,
    /// Its reading then.
    origin: Instant,
    /// Local nanoseconds per million virtual ones.
    rate_ppm: u64,
}

impl Clock {
    /// A clock started at virtual time `start`, reading `origin` then, running `drift_ppm`
    /// parts per million fast (positive) or slow (negative).
    pub(crate) fn new(start: Instant, origin: Instant, drift_ppm: i64) -> Clock {
        let rate_ppm = (PPM as i64 + drift_ppm).max(1) as u64;
        Clock { start, origin, rate_ppm }
    }

    /// A perfect clock: it reads virtual time.
    pub(crate) fn perfect() -> Clock {
        Clock::new(Instant::ZERO, Instant::ZERO, 0)
    }

    /// The reading at virtual time `now` (never before `start`).
    pub(crate) fn local(&self, now: Instant) -> Instant {
        let elapsed = u128::from((now - self.start).as_nanos());
        let local_elapsed = elapsed * u128::from(self.rate_ppm) / PPM;
        self.origin + nanos_saturated(local_elapsed)
    }

    /// The first virtual instant at which the clock reads `local` or later.
    pub(crate) fn virtual_at(&self, local: Instant) -> Instant {
        let local_elapsed = u128::from((local - self.origin).as_nanos());
        // Rounded up: the first virtual nanosecond whose reading, rounded down, reaches `local`.
        let elapsed = (local_elapsed * PPM).div_ceil(u128::from(self.rate_ppm));
        let mut at = self.start + nanos_saturated(elapsed);
        while self.local(at) < local {
            at = at + Duration::from_nanos(1);
        }
        at
    }

    /// The drift, in parts per million (for the trace).
    pub(crate) fn drift_ppm(&self) -> i64 {
        self.rate_ppm as i64 - PPM as i64
    }
}

/// `nanos` nanoseconds, or the longest span there is if that is longer.
fn nanos_saturated(nanos: u128) -> Duration {
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_reads_ahead_and_its_timers_fire_early_in_virtual_time() {
        let clock = Clock::new(Instant::from_millis(1_000), Instant::from_millis(5), 100_000);
        assert_eq!(clock.local(Instant::from_millis(1_000)), Instant::from_millis(5));
        assert_eq!(clock.local(Instant::from_millis(1_100)), Instant::from_millis(115));
        assert_eq!(clock.virtual_at(Instant::from_millis(115)), Instant::from_millis(1_100));
    }

    #[test]
    fn a_timer_never_fires_before_its_local_deadline() {
        let clock = Clock::new(Instant::from_nanos(7), Instant::from_nanos(3), -33_333);
        for local in [3, 4, 1_000, 999_999, 123_456_789] {
            let deadline = Instant::from_nanos(local);
            let at = clock.virtual_at(deadline);
            assert!(clock.local(at) >= deadline);
            if at > Instant::from_nanos(7) {
                assert!(
                    clock.local(Instant::from_nanos(at.as_nanos() - 1)) < deadline,
                    "{at} is the first instant reading {deadline}"
                );
            }
        }
    }

    #[test]
    fn a_perfect_clock_reads_virtual_time() {
        let clock = Clock::perfect();
        let now = Instant::from_nanos(123_456);
        assert_eq!(clock.local(now), now);
        assert_eq!(clock.virtual_at(now), now);
        assert_eq!(clock.drift_ppm(), 0);
    }
}
