//! A front: clients of another protocol (the Redis listener) served inside the event loop.
//!
//! A front keeps sockets of its own on a poll of its own, whose descriptor the loop watches;
//! the requests it has for this node go straight to the replica, and the replica's replies
//! straight back, with no socket or thread in between. Requests for another node (this one
//! does not lead) leave through the front's own connections.

use std::os::fd::RawFd;

use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest};

use crate::wire::NodeStatus;

/// What the event loop asks of a front, in the order of a turn: [`Front::turn`], then the
/// requests it took ([`Front::take_requests`]) to the replica, then the replies
/// ([`Front::on_reply`]), then, once the node's own messages and persists have gone out,
/// [`Front::settle`].
pub(crate) trait Front {
    /// The descriptor of the front's poll: readable when one of its sockets is ready.
    fn poll_fd(&self) -> RawFd;

    /// Handles what its sockets have ready, without waiting.
    fn turn(&mut self);

    /// Requests for this node since the last call, each with the tag its reply must carry.
    fn take_requests(&mut self) -> Vec<(u32, ClientRequest<KvCommand>)>;

    /// The replica's reply to the request tagged `tag`.
    fn on_reply(&mut self, tag: u32, reply: ClientReply<KvReply>);

    /// Answers its clients what the turn's replies made ready; `status` gives the node's
    /// state for those who asked for it.
    fn settle(&mut self, status: &mut dyn FnMut() -> NodeStatus);

    /// How long the loop may sleep before the front needs a turn even without readiness:
    /// zero when it has work left.
    fn next_turn_in(&self) -> Option<std::time::Duration>;

    /// Its counters, for `/metrics`.
    fn counts(&self) -> FrontCounts;
}

/// What a front counted, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FrontCounts {
    /// Its connections now.
    pub(crate) connections: u64,
    pub(crate) refused: RefusalCounts,
    /// Requests it sent to the cluster so far.
    pub(crate) cluster_requests: u64,
    /// Commands they carried: more than requests when pipelined commands went as batches.
    pub(crate) cluster_commands: u64,
}

/// Connections a front refused, or closed to make room, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RefusalCounts {
    /// Closed for sending something that is no command.
    pub(crate) bad_commands: u64,
    /// TLS failures: a handshake failed, or did not finish in time, or was closed for a newer
    /// one; a record did not decrypt; the client spoke in the clear to the TLS port.
    pub(crate) tls_refused: u64,
    /// Closed to make room for a new connection at `--max-client-connections`.
    pub(crate) clients_evicted: u64,
}
