//! What the cluster harness needs of a client: feed it replies and timeouts, drain what it
//! sends and what it finished.

use core::convert::Infallible;

use raftkv_core::Instant;
use raftkv_core::RequestId;
use raftkv_core::client::{Clerk, ClerkError, ClerkInput, ClerkOutput};
use raftkv_core::kv::{KvCommand, KvReply};

use crate::packet::Packet;

/// A client of the nodes, exchanging packets of type `P` with them.
pub trait Client<P> {
    /// Hands it a packet addressed to it.
    fn receive(&mut self, now: Instant, packet: P);

    /// Its timeout is due.
    fn timeout(&mut self, now: Instant);

    fn poll_timeout(&self) -> Option<Instant>;

    /// The next thing client number `me` wants done; `None` once drained.
    fn poll_effect(&mut self, me: usize) -> Option<ClientEffect<P>>;
}

/// What a client wants done.
#[derive(Clone, Debug)]
pub enum ClientEffect<P> {
    /// Send this packet.
    Send(P),
    /// The request `submit` returned this id for finished so.
    Finished(RequestId, Result<KvReply, ClerkError>),
}

/// The client of a key-value cluster.
pub type KvClerk = Clerk<KvCommand, KvReply>;

impl Client<Packet> for KvClerk {
    fn receive(&mut self, now: Instant, packet: Packet) {
        let Packet::Reply { from, reply, .. } = packet else {
            panic!("only replies go to clients, not {packet}")
        };
        self.handle(now, ClerkInput::Reply { from, reply });
    }

    fn timeout(&mut self, now: Instant) {
        self.handle(now, ClerkInput::Timeout);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Clerk::poll_timeout(self)
    }

    fn poll_effect(&mut self, me: usize) -> Option<ClientEffect<Packet>> {
        Some(match self.poll_output()? {
            ClerkOutput::Send { to, request } => {
                ClientEffect::Send(Packet::Request { client: me, to, request })
            }
            ClerkOutput::Finished { request, result } => ClientEffect::Finished(request, result),
        })
    }
}

/// Nobody: bare Raft nodes have no clients, so a cluster of them holds none of these.
pub type NoClient = Infallible;

impl<P> Client<P> for NoClient {
    fn receive(&mut self, _: Instant, _: P) {
        match *self {}
    }

    fn timeout(&mut self, _: Instant) {
        match *self {}
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match *self {}
    }

    fn poll_effect(&mut self, _: usize) -> Option<ClientEffect<P>> {
        match *self {}
    }
}
