//! The bounds on what connections may cost a node, each with a default and a `serve` flag.

use raftkv_core::Duration;

/// What a node spends on connections at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Client connections at once; the one silent longest makes room for a new one.
    pub(crate) max_client_connections: usize,
    /// Connections that have not finished their handshake and `Hello` (peers and clients
    /// alike); the oldest makes room for a new one.
    pub(crate) max_pending_connections: usize,
    /// Time from accept to the end of the TLS handshake and the `Hello`.
    pub(crate) handshake_timeout: Duration,
    /// A client connection that sends no frame for this long is closed.
    pub(crate) client_idle_timeout: Duration,
    /// A frame that has begun to arrive must be complete within this.
    pub(crate) frame_timeout: Duration,
    /// Bytes of replies queued on one client connection; a client that lets more pile up
    /// is disconnected.
    pub(crate) max_reply_queue_bytes: usize,
    /// Bytes buffered by all client and pending connections together, received and to send.
    pub(crate) max_client_buffer_bytes: usize,
    /// Largest snapshot accepted from a leader.
    pub(crate) max_snapshot_bytes: u64,
    /// Requests of one client connection waiting in the replica for their answers; beyond,
    /// the connection is not read until answers go out: a pipelining client slows down.
    pub(crate) max_requests_per_connection: usize,
    /// Requests of all clients waiting in the replica; beyond, a request is answered "busy"
    /// at once, for its client to retry after a backoff.
    pub(crate) max_requests_in_flight: usize,
}

/// The largest `Hello`: it names a cluster and a role.
pub(crate) const MAX_HELLO_BYTES: usize = 4 << 10;

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_client_connections: 1024,
            max_pending_connections: 128,
            handshake_timeout: Duration::from_millis(5_000),
            client_idle_timeout: Duration::from_millis(300_000),
            frame_timeout: Duration::from_millis(30_000),
            max_reply_queue_bytes: 8 << 20,
            max_client_buffer_bytes: 256 << 20,
            max_snapshot_bytes: 1 << 30,
            max_requests_per_connection: 1024,
            max_requests_in_flight: 16_384,
        }
    }
}

impl ConnectionLimits {
    /// Whether a client connection with `own` requests in flight must wait for answers
    /// before more of its requests are read.
    pub(crate) fn connection_at_cap(&self, own: usize) -> bool {
        own >= self.max_requests_per_connection
    }

    /// Whether a new request, with `total` requests of all clients in flight, must be
    /// answered "busy" rather than handed to the replica.
    pub(crate) fn replica_full(&self, total: usize) -> bool {
        total >= self.max_requests_in_flight
    }

    /// How often connections are checked against the timeouts: often enough that none
    /// outlives its timeout by more than half of it.
    pub(crate) fn sweep_interval(&self) -> Duration {
        let shortest = self
            .handshake_timeout
            .min(self.client_idle_timeout)
            .min(self.frame_timeout)
            .as_millis();
        Duration::from_millis((shortest / 2).clamp(10, 1_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_waits_at_its_own_cap_and_requests_are_busy_at_the_total_one() {
        let limits = ConnectionLimits {
            max_requests_per_connection: 2,
            max_requests_in_flight: 5,
            ..ConnectionLimits::default()
        };
        assert!(!limits.connection_at_cap(1));
        assert!(limits.connection_at_cap(2), "its own cap");
        assert!(!limits.replica_full(4));
        assert!(limits.replica_full(5), "the total cap");
    }

    #[test]
    fn the_sweep_comes_at_least_twice_per_shortest_timeout() {
        let mut limits = ConnectionLimits::default();
        assert_eq!(limits.sweep_interval(), Duration::from_millis(1_000));
        limits.frame_timeout = Duration::from_millis(300);
        assert_eq!(limits.sweep_interval(), Duration::from_millis(150));
    }
}
