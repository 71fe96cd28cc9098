//! Logging each kind of event at most once per interval while counting the rest, so that a
//! flood (bad connections, requests answered busy) is counted in full but cannot flood the log.
//! The node's own ports and its Redis listener throttle their refusal logs with it.

use std::collections::BTreeMap;
use std::ops::Add;

/// Per kind: when it was last logged, and how many of it went unlogged since.
///
/// Generic over the clock (`T` instants, `D` spans) so that the node's loop can pass its own
/// time and tests can pass made-up instants.
#[derive(Debug)]
pub(crate) struct LogThrottle<K, T> {
    logged: BTreeMap<K, (T, u64)>,
}

impl<K, T> Default for LogThrottle<K, T> {
    fn default() -> Self {
        LogThrottle { logged: BTreeMap::new() }
    }
}

impl<K: Ord + Copy, T: Copy + Ord> LogThrottle<K, T> {
    /// Whether an event of `kind` happening at `now` may be logged: `Some(unlogged)`, the
    /// number of its kind left unlogged since its last line, if none was logged in the last
    /// `interval`; otherwise `None`, and the event is counted as unlogged.
    pub(crate) fn admit<D>(&mut self, kind: K, now: T, interval: D) -> Option<u64>
    where
        T: Add<D, Output = T>,
    {
        match self.logged.get_mut(&kind) {
            Some((at, unlogged)) if now < *at + interval => {
                *unlogged = unlogged.saturating_add(1);
                None
            }
            previous => {
                let unlogged = previous.map_or(0, |(_, unlogged)| *unlogged);
                self.logged.insert(kind, (now, 0));
                Some(unlogged)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_once_then_again_after_the_interval_with_what_went_unlogged() {
        let mut throttle = LogThrottle::<&str, u64>::default();
        assert_eq!(throttle.admit("idle", 100, 10), Some(0));
        assert_eq!(throttle.admit("idle", 101, 10), None);
        assert_eq!(throttle.admit("idle", 109, 10), None);
        assert_eq!(throttle.admit("busy", 109, 10), Some(0), "each kind apart");
        assert_eq!(throttle.admit("idle", 110, 10), Some(2), "the interval has passed");
        assert_eq!(throttle.admit("idle", 111, 10), None);
    }
}
