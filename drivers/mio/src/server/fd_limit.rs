//! The process's file descriptor limit: raised to what the connection caps need, so that the
//! caps, not the kernel, refuse connections (an `accept` that fails for want of descriptors
//! leaves the connection queued and the listener silent).

use rustix::process::{Resource, getrlimit, setrlimit};
use tracing::warn;

use crate::server::limits::ConnectionLimits;

/// Descriptors beyond connections: the listener, the poll, the waker, signals, the WAL
/// segments, the data directory's files, the standard streams.
const OTHER_DESCRIPTORS: u64 = 64;

/// Raises the soft limit on open files as far as the caps need (and the hard limit allows);
/// warns if the caps exceed it. The caps apply to each of `client_listeners` (the node's
/// client port, and the Redis listener if there is one). Called once, at start, with the
/// members known then: members added later take three descriptors each from the margin
/// `OTHER_DESCRIPTORS` leaves, until a restart counts them.
pub(super) fn raise(limits: &ConnectionLimits, client_listeners: u64, members: usize) {
    let needed = descriptors_needed(limits, client_listeners, members);
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= needed {
        return;
    }
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    limit.current = Some(needed.min(maximum));
    if let Err(error) = setrlimit(Resource::Nofile, limit) {
        warn!(%error, "cannot raise the limit on open files");
    }
    if maximum < needed {
        warn!(
            needed,
            allowed = maximum,
            "the connection caps need more open files than the system allows: lower \
             --max-client-connections or raise the hard limit (ulimit -Hn)"
        );
    }
}

/// The descriptors the caps allow to be open at once.
fn descriptors_needed(limits: &ConnectionLimits, client_listeners: u64, members: usize) -> u64 {
    (limits.max_client_connections as u64)
        .saturating_add(limits.max_pending_connections as u64)
        .saturating_mul(client_listeners)
        // A link dialed to each peer and one accepted from it, and one replaced being closed.
        .saturating_add((members as u64).saturating_mul(3))
        .saturating_add(OTHER_DESCRIPTORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_listener_counts_the_connection_caps_once() {
        let limits = ConnectionLimits {
            max_client_connections: 1000,
            max_pending_connections: 100,
            ..ConnectionLimits::default()
        };
        assert_eq!(descriptors_needed(&limits, 1, 3), 1100 + 9 + OTHER_DESCRIPTORS);
        assert_eq!(descriptors_needed(&limits, 2, 3), 2200 + 9 + OTHER_DESCRIPTORS);
    }
}
