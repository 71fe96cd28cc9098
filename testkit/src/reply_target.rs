//! Where a replica's replies go: a client, by index, or the test that sent a request by hand.

use raftkv_core::server::ReplyTo;

/// Where replies to requests a test sends by hand go: no client's index reaches it.
pub const BY_HAND: ReplyTo = ReplyTo(u64::MAX);

/// The reply target of client `client`.
pub fn reply_to(client: usize) -> ReplyTo {
    ReplyTo(client as u64)
}

/// The client a reply target names (not [`BY_HAND`]).
pub fn client_of(target: ReplyTo) -> usize {
    usize::try_from(target.0).unwrap_or_else(|_| panic!("reply target {} is no client", target.0))
}
