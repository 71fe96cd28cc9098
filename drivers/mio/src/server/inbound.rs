//! Connections others open to this node: first a `Hello` that says who dials, then Raft
//! messages from a peer, or requests from a client. Anything malformed, oversized or from
//! another cluster closes that one connection, with a log line; the node carries on.
//!
//! What the connections receive goes to the event loop as [`Delivery`]s, in the order received.

use std::collections::HashMap;
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::ClientReply;
use raftkv_core::raft::Message;
use raftkv_core::server::{Input, ReplyTo};
use raftkv_core::{Duration, Instant, NodeId};
use tracing::{debug, warn};

use crate::conn::{Conn, MAX_QUEUED_BYTES, ReadState};
use crate::server::handshake;
use crate::server::options::ServeOptions;
use crate::server::protocol_error::ProtocolError;
use crate::wire::{ClientFrame, Hello, HelloRole, NodeStatus, ServerFrame, Welcome};

/// A connection that has not said who it is after this long is closed.
const HELLO_TIMEOUT: Duration = Duration::from_millis(10_000);

/// What an accepted connection delivered, for the event loop to act on.
#[derive(Debug)]
pub(super) enum Delivery {
    /// A peer's message or a client's request, for the replica.
    Input(Input<KvCommand>),
    /// A client asks for the node's state: answer with [`InboundConnections::answer_status`].
    StatusQuery { token: Token, tag: u32 },
    /// A peer dialed this node anew; the link to it may need redialing.
    PeerDialedUs(NodeId),
}

/// Who is on the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Nothing received yet.
    AwaitingHello,
    /// A node of the cluster, sending Raft messages.
    Peer(NodeId),
    /// A client.
    Client,
}

/// One accepted connection.
#[derive(Debug)]
struct Inbound {
    conn: Conn,
    address: SocketAddr,
    kind: Kind,
    accepted_at: Instant,
}

/// Every accepted connection.
#[derive(Debug)]
pub(super) struct InboundConnections {
    connections: HashMap<Token, Inbound>,
    /// Connections with bytes queued in this turn.
    dirty: Vec<Token>,
    /// The token of the next accepted connection; tokens are never reused.
    next_token: usize,
}

/// Packs a connection and a tag into the replica's reply address.
fn reply_to(token: Token, tag: u32) -> ReplyTo {
    ReplyTo(((token.0 as u64) << 32) | u64::from(tag))
}

/// Unpacks [`reply_to`].
fn reply_target(to: ReplyTo) -> (Token, u32) {
    (Token((to.0 >> 32) as usize), to.0 as u32)
}

impl InboundConnections {
    /// No connection yet; the first accepted one gets `first_token`.
    pub(super) fn new(first_token: usize) -> InboundConnections {
        InboundConnections {
            connections: HashMap::new(),
            dirty: Vec::new(),
            next_token: first_token,
        }
    }

    /// Accepts every pending connection.
    pub(super) fn accept(
        &mut self,
        listener: &TcpListener,
        registry: &Registry,
        max_frame_bytes: usize,
        now: Instant,
    ) {
        loop {
            match listener.accept() {
                Ok((stream, address)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    let mut conn = Conn::new(stream, max_frame_bytes);
                    if let Err(error) = registry.register(
                        conn.stream_mut(),
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        warn!(%address, %error, "cannot register an accepted connection");
                        continue;
                    }
                    debug!(%address, "accepted a connection");
                    let inbound =
                        Inbound { conn, address, kind: Kind::AwaitingHello, accepted_at: now };
                    self.connections.insert(token, inbound);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    // Out of file descriptors and the like: the listener stays, try later.
                    warn!(%error, "cannot accept a connection");
                    return;
                }
            }
        }
    }

    /// Handles a readiness event of an accepted connection; returns what it received.
    pub(super) fn on_event(
        &mut self,
        registry: &Registry,
        token: Token,
        event: &Event,
        options: &ServeOptions,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let Some(inbound) = self.connections.get_mut(&token) else {
            return deliveries;
        };
        if event.is_writable() {
            if let Err(error) = inbound.conn.flush() {
                let reason = format!("cannot send: {error}");
                self.close(registry, token, &reason, false);
                return deliveries;
            }
        }
        if !event.is_readable() && !event.is_read_closed() {
            return deliveries;
        }
        let state = match inbound.conn.read_ready() {
            Ok(state) => state,
            Err(error) => {
                self.close(registry, token, &format!("cannot receive: {error}"), false);
                return deliveries;
            }
        };
        if let Err(problem) = self.take_frames(token, options, &mut deliveries) {
            self.close(registry, token, &problem.to_string(), true);
        } else if state == ReadState::Closed {
            self.close(registry, token, "closed by the other side", false);
        }
        deliveries
    }

    /// Takes every complete frame received on `token`. An error closes the connection.
    fn take_frames(
        &mut self,
        token: Token,
        options: &ServeOptions,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), ProtocolError> {
        loop {
            let inbound = self.connections.get_mut(&token).expect("caller checked");
            match inbound.kind {
                Kind::AwaitingHello => {
                    let Some(hello) =
                        inbound.conn.next_frame::<Hello>().map_err(ProtocolError::Frame)?
                    else {
                        return Ok(());
                    };
                    self.on_hello(token, hello, options, deliveries)?;
                }
                Kind::Peer(from) => {
                    let Some(message) =
                        inbound.conn.next_frame::<Message>().map_err(ProtocolError::Frame)?
                    else {
                        return Ok(());
                    };
                    if message.from != from || message.to != options.id {
                        let (peer, from, to) = (from, message.from, message.to);
                        return Err(ProtocolError::Misaddressed { peer, from, to });
                    }
                    deliveries.push(Delivery::Input(Input::Message(message)));
                }
                Kind::Client => {
                    let Some(frame) =
                        inbound.conn.next_frame::<ClientFrame>().map_err(ProtocolError::Frame)?
                    else {
                        return Ok(());
                    };
                    deliveries.push(match frame {
                        ClientFrame::Request { tag, request } => {
                            let from = reply_to(token, tag);
                            Delivery::Input(Input::Request { from, request })
                        }
                        ClientFrame::Status { tag } => Delivery::StatusQuery { token, tag },
                    });
                }
            }
        }
    }

    fn on_hello(
        &mut self,
        token: Token,
        hello: Hello,
        options: &ServeOptions,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<(), ProtocolError> {
        let inbound = self.connections.get_mut(&token).expect("caller checked");
        if let Err(refusal) = handshake::check(&hello, options) {
            inbound.conn.send(&Welcome::Refused { reason: refusal.to_string() });
            // Best effort: the connection closes right after.
            let _ = inbound.conn.flush();
            return Err(ProtocolError::Refused(refusal));
        }
        inbound.kind = match hello.role {
            HelloRole::Peer { from, .. } => Kind::Peer(from),
            HelloRole::Client => Kind::Client,
        };
        debug!(address = %inbound.address, kind = ?inbound.kind, "connection identified");
        if let HelloRole::Peer { from, .. } = hello.role {
            deliveries.push(Delivery::PeerDialedUs(from));
        }
        inbound.conn.send(&Welcome::Accepted { node: options.id, members: options.peers.clone() });
        self.dirty.push(token);
        Ok(())
    }

    /// Answers a [`Delivery::StatusQuery`], if its connection is still open.
    pub(super) fn answer_status(&mut self, token: Token, tag: u32, status: NodeStatus) {
        if let Some(inbound) = self.connections.get_mut(&token) {
            inbound.conn.send(&ServerFrame::Status { tag, status });
            self.dirty.push(token);
        }
    }

    /// Closes connections that stayed silent past the hello timeout.
    pub(super) fn close_silent(&mut self, registry: &Registry, now: Instant) {
        let silent: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, inbound)| {
                inbound.kind == Kind::AwaitingHello && now - inbound.accepted_at > HELLO_TIMEOUT
            })
            .map(|(token, _)| *token)
            .collect();
        for token in silent {
            self.close(registry, token, "said nothing within the hello timeout", true);
        }
    }

    /// Queues the reply to a client request, if its connection is still open.
    pub(super) fn send_reply(
        &mut self,
        registry: &Registry,
        to: ReplyTo,
        reply: ClientReply<KvReply>,
    ) {
        let (token, tag) = reply_target(to);
        let Some(inbound) = self.connections.get_mut(&token) else {
            return; // The client went away; it will retry elsewhere.
        };
        if inbound.conn.unsent_bytes() > MAX_QUEUED_BYTES {
            self.close(registry, token, "client does not read its replies", true);
            return;
        }
        inbound.conn.send(&ServerFrame::Reply { tag, reply });
        self.dirty.push(token);
    }

    /// Writes what each connection with queued bytes can take.
    pub(super) fn flush(&mut self, registry: &Registry) {
        let dirty = std::mem::take(&mut self.dirty);
        for token in dirty {
            let Some(inbound) = self.connections.get_mut(&token) else {
                continue;
            };
            if inbound.conn.unsent_bytes() > 0 {
                if let Err(error) = inbound.conn.flush() {
                    self.close(registry, token, &format!("cannot send: {error}"), false);
                }
            }
        }
    }

    /// Writes what every connection can take, on the way out; failures no longer matter.
    pub(super) fn flush_before_exit(&mut self) {
        for inbound in self.connections.values_mut() {
            let _ = inbound.conn.flush();
        }
    }

    /// Closes an accepted connection; `misbehaved` logs it as a warning.
    fn close(&mut self, registry: &Registry, token: Token, reason: &str, misbehaved: bool) {
        let Some(mut inbound) = self.connections.remove(&token) else {
            return;
        };
        let _ = registry.deregister(inbound.conn.stream_mut());
        let address = inbound.address;
        match inbound.kind {
            _ if misbehaved => {
                warn!(%address, kind = ?inbound.kind, reason, "closed a connection")
            }
            Kind::Peer(peer) => debug!(%address, %peer, reason, "peer connection closed"),
            Kind::Client | Kind::AwaitingHello => {
                debug!(%address, reason, "connection closed")
            }
        }
    }
}
