//! What a node tells about its connections in its status: how many of each kind, what they
//! buffer, and how many it refused or closed for each reason.

use serde::{Deserialize, Serialize};

/// A node's connections, as `raftkv status --json` shows them under `connections`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// Accepted connections of peers (one per peer at most).
    pub peers: u64,
    /// Accepted connections of clients.
    pub clients: u64,
    /// Accepted connections still in their handshake or `Hello`.
    pub pending: u64,
    /// Bytes the client and pending connections buffer now, received and to send.
    pub client_buffered_bytes: u64,
    /// The most reply bytes ever queued on one client connection (bounded by the reply queue
    /// cap plus one reply).
    pub largest_reply_queue_bytes: u64,
    /// Client requests waiting in the replica for their answers now, the node's own Redis
    /// listener's included.
    pub requests_in_flight: u64,
    /// The most requests of one connection ever waiting at once (bounded by the cap per
    /// connection).
    pub most_requests_in_flight_on_a_connection: u64,
    /// Client connections not read now until answers to their requests go out (each at the
    /// cap per connection).
    pub held_back: u64,
    /// Connections refused or closed, by reason.
    pub refused: Refusals,
}

/// Connections refused or closed, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusals {
    /// Pending connections closed to make room (the pending cap was reached).
    pub pending_evicted: u64,
    /// Client connections closed to make room (the client cap was reached).
    pub clients_evicted: u64,
    /// TLS handshakes that failed: no certificate, one of another CA, not TLS at all.
    pub handshake_failed: u64,
    /// Connections that did not finish their handshake and `Hello` in time.
    pub handshake_timed_out: u64,
    /// `Hello`s refused: another cluster or protocol version, not a member.
    pub hello_refused: u64,
    /// Peers whose certificate does not name the node id they claimed.
    pub peer_identity_refused: u64,
    /// Client connections closed after the idle timeout.
    pub idle_closed: u64,
    /// Frames over the size limit, or malformed.
    pub bad_frames: u64,
    /// Frames not completed within the frame timeout.
    pub frame_timed_out: u64,
    /// Clients that did not read their replies.
    pub unread_replies_closed: u64,
    /// Connections closed because the client buffer budget was spent.
    pub buffer_budget_closed: u64,
    /// Snapshots announced over the snapshot size cap.
    pub snapshot_too_large: u64,
    /// Peers that sent messages not from themselves to this node.
    pub misaddressed: u64,
    /// Times a client connection was held back at the cap on its requests in flight (not a
    /// refusal: it is read again once answers go out).
    pub held_at_request_cap: u64,
    /// Requests answered "busy" at once, never handed to the replica, because the requests
    /// of all clients waiting in it reached the cap; the client retries them.
    pub busy: u64,
}
