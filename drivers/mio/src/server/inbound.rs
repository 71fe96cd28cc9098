//! Connections others open to this node: a TLS handshake (unless the node runs in the clear),
//! then a `Hello` that says who dials, then Raft messages from a peer, or requests from a
//! client. Anything malformed, oversized, unauthenticated or from another cluster closes that
//! one connection, counted and logged; the node carries on.
//!
//! Every resource is bounded (see [`ConnectionLimits`]): connections still in their handshake
//! and client connections each have a cap (the oldest pending, or the client silent longest,
//! makes room for a new one; a peer's newer connection replaces its older one), the handshake,
//! an unfinished frame and an idle client each have a timeout, replies queued to a client have
//! a cap, and so have the bytes all client connections buffer together. Requests waiting in
//! the replica have a cap per connection and in all, so nothing queues without bound: a
//! connection at its own cap is held back (not read, so TCP makes its pipelining client wait)
//! until answers go out; a request beyond the cap in all is answered "busy" at once, never
//! handed to the replica, and its client retries it after a backoff.
//!
//! What the connections receive goes to the event loop as [`Delivery`]s, in the order received.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Interest, Registry, Token};
use raftkv_core::RequestId;
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, Outcome, Reject};
use raftkv_core::raft::{Body, Message};
use raftkv_core::server::{Input, ReplyTo};
use raftkv_core::{Instant, NodeId};
use tracing::debug;

use crate::conn::{Conn, ReadOutcome, ReadUntil};
use crate::connection_report::ConnectionReport;
use crate::server::accepted::{Closing, Inbound, Kind, io_closing, next_frame};
use crate::server::directory::Directory;
use crate::server::handshake;
use crate::server::limits::{ConnectionLimits, MAX_HELLO_BYTES};
use crate::server::options::ServeOptions;
use crate::server::protocol_error::ProtocolError;
use crate::server::refusal_log::{Reason, RefusalLog};
use crate::transport::Transport;
use crate::wire::{
    AdminAnswer, AdminRequest, ClientFrame, Hello, HelloRole, NodeStatus, ServerFrame, Welcome,
};

/// Reads of [`Conn::read_some`] per connection per turn: a connection that has more waits for
/// the next turn, so that one sender cannot hold the loop or pile up deliveries.
const READS_PER_TURN: usize = 4;

/// What an accepted connection delivered, for the event loop to act on.
#[derive(Debug)]
pub(super) enum Delivery {
    /// A peer's message or a client's request, for the replica.
    Input(Input<KvCommand>),
    /// A client asks for the node's state: answer with [`InboundConnections::answer_status`].
    StatusQuery { token: Token, tag: u32 },
    /// An operator's request: answer with [`InboundConnections::answer_admin`].
    Admin { token: Token, tag: u32, request: AdminRequest },
    /// A peer dialed this node anew; the link to it may need redialing.
    PeerDialedUs(NodeId),
}

/// Every accepted connection.
#[derive(Debug)]
pub(super) struct InboundConnections {
    connections: HashMap<Token, Inbound>,
    /// Connections with bytes queued in this turn.
    dirty: Vec<Token>,
    /// Connections that had more to read when their turn's reads were used.
    unfinished_reads: Vec<Token>,
    /// The token of the next accepted connection; tokens are never reused.
    next_token: usize,
    /// The newest connection of each peer.
    peer_tokens: BTreeMap<NodeId, Token>,
    /// The peers accepted, and the members named to clients.
    directory: Directory,
    pending: usize,
    clients: usize,
    /// Bytes buffered by client and pending connections, as last accounted.
    client_buffered: usize,
    /// The most reply bytes queued on one connection, ever.
    largest_reply_queue: usize,
    /// Client requests waiting in the replica for their answers, the front's included.
    in_flight: usize,
    /// Those of them that came from the front (the Redis listener on this node).
    front_in_flight: usize,
    /// The most requests of one connection waiting at once, ever.
    most_in_flight_on_one: usize,
    /// Connections held back at a cap on requests in flight.
    held: Vec<Token>,
    refusals: RefusalLog,
}

/// What taking frames ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taken {
    /// Every complete frame was taken.
    All,
    /// The connection is held back at its cap on requests in flight.
    Held,
    /// The connection was closed (a busy answer it does not read went over a cap).
    Closed,
}

/// Packs a connection and a tag into the replica's reply address.
pub(super) fn reply_to(token: Token, tag: u32) -> ReplyTo {
    ReplyTo(((token.0 as u64) << 32) | u64::from(tag))
}

/// Unpacks [`reply_to`].
pub(super) fn reply_target(to: ReplyTo) -> (Token, u32) {
    (Token((to.0 >> 32) as usize), to.0 as u32)
}

impl InboundConnections {
    /// No connection yet; the first accepted one gets `first_token`.
    pub(super) fn new(first_token: usize) -> InboundConnections {
        InboundConnections {
            connections: HashMap::new(),
            dirty: Vec::new(),
            unfinished_reads: Vec::new(),
            next_token: first_token,
            peer_tokens: BTreeMap::new(),
            directory: Directory::default(),
            pending: 0,
            clients: 0,
            client_buffered: 0,
            largest_reply_queue: 0,
            in_flight: 0,
            front_in_flight: 0,
            most_in_flight_on_one: 0,
            held: Vec::new(),
            refusals: RefusalLog::default(),
        }
    }

    /// From now on, accepts the peers of `directory` and names its members to clients.
    /// Connections already accepted stay.
    pub(super) fn set_directory(&mut self, directory: &Directory) {
        self.directory = directory.clone();
    }

    /// The connections for the node's status.
    pub(super) fn report(&self) -> ConnectionReport {
        ConnectionReport {
            peers: self.peer_tokens.len() as u64,
            clients: self.clients as u64,
            pending: self.pending as u64,
            client_buffered_bytes: self.client_buffered as u64,
            largest_reply_queue_bytes: self.largest_reply_queue as u64,
            requests_in_flight: self.in_flight as u64,
            most_requests_in_flight_on_a_connection: self.most_in_flight_on_one as u64,
            held_back: self.held.len() as u64,
            refused: self.refusals.counts().clone(),
        }
    }

    /// Whether some connection has more to read (the loop must not sleep).
    pub(super) fn has_unfinished_reads(&self) -> bool {
        !self.unfinished_reads.is_empty()
    }

    /// Accepts every pending connection; at the pending cap, the oldest pending one makes
    /// room.
    pub(super) fn accept(
        &mut self,
        listener: &TcpListener,
        registry: &Registry,
        options: &ServeOptions,
        now: Instant,
    ) {
        loop {
            let (stream, address) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    // Out of file descriptors and the like: the listener stays, try later.
                    tracing::warn!(%error, "cannot accept a connection");
                    return;
                }
            };
            if self.pending >= options.connection_limits.max_pending_connections {
                self.evict_oldest_pending(registry, now);
            }
            let transport = match &options.tls {
                None => Transport::plain(stream),
                Some(tls) => match tls.accept() {
                    Ok(server) => Transport::tls(stream, server),
                    Err(error) => {
                        tracing::warn!(%address, %error, "cannot start TLS on a connection");
                        continue;
                    }
                },
            };
            self.register(registry, Conn::new(transport, MAX_HELLO_BYTES), address, now);
        }
    }

    fn register(&mut self, registry: &Registry, mut conn: Conn, address: SocketAddr, now: Instant) {
        let token = Token(self.next_token);
        self.next_token += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(error) = registry.register(conn.stream_mut(), token, interest) {
            tracing::warn!(%address, %error, "cannot register an accepted connection");
            return;
        }
        debug!(%address, "accepted a connection");
        self.connections.insert(token, Inbound::new(conn, address, now));
        self.pending += 1;
    }

    fn evict_oldest_pending(&mut self, registry: &Registry, now: Instant) {
        let oldest = self
            .connections
            .iter()
            .filter(|(_, inbound)| inbound.kind == Kind::Pending)
            .min_by_key(|(token, inbound)| (inbound.accepted_at, token.0))
            .map(|(token, _)| *token);
        if let Some(token) = oldest {
            let detail = "closed to make room: too many connections in their handshake \
                          (--max-pending-connections)";
            self.close(
                registry,
                token,
                Closing::Refused(Reason::PendingEvicted, detail.into()),
                now,
            );
        }
    }

    /// Closes the client connection silent longest to make room for a new one, but one still
    /// owed answers or replies only if every client is: a client waiting on a long request
    /// is not idle.
    fn evict_idlest_client(&mut self, registry: &Registry, now: Instant) {
        let idlest = self
            .connections
            .iter()
            .filter(|(_, inbound)| inbound.kind == Kind::Client)
            .min_by_key(|(token, inbound)| {
                let busy = inbound.in_flight > 0 || inbound.conn.unsent_bytes() > 0;
                (busy, inbound.last_frame_at, token.0)
            })
            .map(|(token, _)| *token);
        if let Some(token) = idlest {
            let detail = "closed to make room: too many client connections \
                          (--max-client-connections)";
            self.close(
                registry,
                token,
                Closing::Refused(Reason::ClientEvicted, detail.into()),
                now,
            );
        }
    }

    /// Handles a readiness event of an accepted connection; returns what it received.
    pub(super) fn on_event(
        &mut self,
        registry: &Registry,
        token: Token,
        event: &Event,
        options: &ServeOptions,
        now: Instant,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let Some(inbound) = self.connections.get_mut(&token) else {
            return deliveries;
        };
        if event.is_writable() {
            if let Err(error) = inbound.conn.flush() {
                let closing = io_closing(inbound.kind, &error, "cannot send");
                self.close(registry, token, closing, now);
                return deliveries;
            }
        }
        if event.is_readable() || event.is_read_closed() {
            // A closed stream raises no later event: that read goes on until "would block".
            let until = if event.is_read_closed() || event.is_error() {
                ReadUntil::WouldBlock
            } else {
                ReadUntil::ShortRead
            };
            self.receive(registry, token, until, options, now, &mut deliveries);
        }
        deliveries
    }

    /// Goes on reading the connections that had more than one turn's worth.
    pub(super) fn resume_reads(
        &mut self,
        registry: &Registry,
        options: &ServeOptions,
        now: Instant,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for token in std::mem::take(&mut self.unfinished_reads) {
            // No event said anything about these: only "would block" says they are drained.
            self.receive(registry, token, ReadUntil::WouldBlock, options, now, &mut deliveries);
        }
        deliveries
    }

    /// Reads (as far as `until` says) and takes the frames of connection `token`, one turn's
    /// worth; closes it on an error or when the other side closed.
    fn receive(
        &mut self,
        registry: &Registry,
        token: Token,
        until: ReadUntil,
        options: &ServeOptions,
        now: Instant,
        deliveries: &mut Vec<Delivery>,
    ) {
        let mut outcome = Ok(ReadOutcome::Budget);
        for _ in 0..READS_PER_TURN {
            let Some(inbound) = self.connections.get_mut(&token) else {
                return;
            };
            if inbound.held {
                // Read again once released; what the socket holds waits there.
                return;
            }
            outcome = match inbound.conn.read_some(until) {
                Ok(read) => Ok(read),
                Err(error) => Err(io_closing(inbound.kind, &error, "cannot receive")),
            };
            match self.take_frames(registry, token, options, now, deliveries) {
                Ok(Taken::All) => {}
                Ok(Taken::Held) => {
                    return self.account(registry, token, &options.connection_limits, now);
                }
                Ok(Taken::Closed) => return,
                Err(problem) => return self.close(registry, token, problem.into(), now),
            }
            if !matches!(outcome, Ok(ReadOutcome::Budget)) {
                break;
            }
        }
        match outcome {
            Ok(ReadOutcome::Budget) => self.unfinished_reads.push(token),
            Ok(ReadOutcome::Drained) => {}
            Ok(ReadOutcome::Closed) => {
                let closing = Closing::Quietly("closed by the other side".to_string());
                self.close(registry, token, closing, now);
                return;
            }
            Err(closing) => {
                self.close(registry, token, closing, now);
                return;
            }
        }
        self.account(registry, token, &options.connection_limits, now);
    }

    /// Takes every complete frame received on `token`.
    fn take_frames(
        &mut self,
        registry: &Registry,
        token: Token,
        options: &ServeOptions,
        now: Instant,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<Taken, ProtocolError> {
        let limits = &options.connection_limits;
        loop {
            let inbound = self.connections.get_mut(&token).expect("caller checked");
            let delivery = match inbound.kind {
                Kind::Pending => {
                    let Some(hello) = next_frame::<Hello>(inbound, now)? else {
                        return Ok(Taken::All);
                    };
                    self.on_hello(registry, token, hello, options, now)?
                }
                Kind::Peer(peer) => {
                    let Some(message) = next_frame::<Message>(inbound, now)? else {
                        return Ok(Taken::All);
                    };
                    check_peer_message(peer, &message, options)?;
                    Some(Delivery::Input(Input::Message(message)))
                }
                Kind::Client if limits.connection_at_cap(inbound.in_flight) => {
                    inbound.held = true;
                    // Waiting for answers is not a frame that fails to arrive.
                    inbound.partial_since = None;
                    self.held.push(token);
                    self.refusals.count_held();
                    return Ok(Taken::Held);
                }
                Kind::Client => {
                    let Some(frame) = next_frame::<ClientFrame>(inbound, now)? else {
                        return Ok(Taken::All);
                    };
                    Some(match frame {
                        ClientFrame::Request { tag, request }
                            if limits.replica_full(self.in_flight) =>
                        {
                            if !self.answer_busy(
                                registry,
                                token,
                                tag,
                                request.request,
                                options,
                                now,
                            ) {
                                return Ok(Taken::Closed);
                            }
                            continue;
                        }
                        ClientFrame::Request { tag, request } => {
                            inbound.in_flight += 1;
                            self.in_flight += 1;
                            self.most_in_flight_on_one =
                                self.most_in_flight_on_one.max(inbound.in_flight);
                            let from = reply_to(token, tag);
                            Delivery::Input(Input::Request { from, request })
                        }
                        ClientFrame::Status { tag } => Delivery::StatusQuery { token, tag },
                        ClientFrame::Admin { tag, request } => {
                            Delivery::Admin { token, tag, request }
                        }
                    })
                }
            };
            deliveries.extend(delivery);
        }
    }

    /// Answers a request "busy" without handing it to the replica; counts and logs it.
    /// Returns whether the connection is still open.
    fn answer_busy(
        &mut self,
        registry: &Registry,
        token: Token,
        tag: u32,
        request: RequestId,
        options: &ServeOptions,
        now: Instant,
    ) -> bool {
        let address = self.connections.get(&token).map(|inbound| inbound.address.to_string());
        let detail = format!(
            "{} requests waiting in the replica (--max-requests-in-flight)",
            self.in_flight
        );
        self.refusals.record(Reason::Busy, now, address.as_deref().unwrap_or("?"), &detail);
        let reply = ClientReply { request, outcome: Outcome::Rejected(Reject::Busy) };
        self.queue(registry, token, &ServerFrame::Reply { tag, reply }, options, now);
        self.connections.contains_key(&token)
    }

    /// Admits a request of the front (the Redis listener on this node, whose requests go
    /// straight to the replica) under the cap that every client request counts against;
    /// refused, it is counted and logged as busy, and its clerk retries after a backoff as
    /// any client does.
    pub(super) fn admit_front_request(&mut self, limits: &ConnectionLimits, now: Instant) -> bool {
        if limits.replica_full(self.in_flight) {
            let detail = format!(
                "{} requests waiting in the replica (--max-requests-in-flight)",
                self.in_flight
            );
            self.refusals.record(Reason::Busy, now, "the redis listener", &detail);
            return false;
        }
        self.in_flight += 1;
        self.front_in_flight += 1;
        true
    }

    /// The replica answered a request of the front.
    pub(super) fn front_request_answered(&mut self) {
        // Every request handed to the replica gets exactly one reply.
        debug_assert!(self.front_in_flight > 0, "a reply to the front without a request");
        if self.front_in_flight > 0 {
            self.front_in_flight -= 1;
            self.in_flight -= 1;
        }
    }

    /// Releases the connections held back at their request cap that answers brought under
    /// it; they are read at the next turn.
    pub(super) fn release_held(&mut self, limits: &ConnectionLimits) {
        let mut still_held = Vec::new();
        for token in std::mem::take(&mut self.held) {
            let Some(inbound) = self.connections.get_mut(&token) else {
                continue;
            };
            if limits.connection_at_cap(inbound.in_flight) {
                still_held.push(token);
            } else {
                inbound.held = false;
                self.unfinished_reads.push(token);
            }
        }
        self.held = still_held;
    }

    /// Checks a `Hello` and the certificate behind it; makes the connection a peer's or a
    /// client's and welcomes it.
    fn on_hello(
        &mut self,
        registry: &Registry,
        token: Token,
        hello: Hello,
        options: &ServeOptions,
        now: Instant,
    ) -> Result<Option<Delivery>, ProtocolError> {
        let inbound = self.connections.get_mut(&token).expect("caller checked");
        let certificates = inbound.conn.peer_certificates();
        let checked = handshake::check(&hello, options, &self.directory)
            .and_then(|()| handshake::check_identity(&hello, options.tls.is_some(), certificates));
        if let Err(refusal) = checked {
            inbound.conn.send(&Welcome::Refused { reason: refusal.to_string() });
            // Best effort: the connection closes right after.
            let _ = inbound.conn.flush();
            return Err(ProtocolError::Refused(refusal));
        }
        inbound.conn.set_max_frame_bytes(options.max_frame_bytes);
        let members = self.directory.members().to_vec();
        inbound.conn.send(&Welcome::Accepted { node: options.id, members });
        debug!(address = %inbound.address, role = ?hello.role, "connection identified");
        self.mark_dirty(token);
        self.pending -= 1;
        match hello.role {
            HelloRole::Peer { from, .. } => {
                self.become_peer(registry, token, from, now);
                Ok(Some(Delivery::PeerDialedUs(from)))
            }
            HelloRole::Client => {
                if self.clients >= options.connection_limits.max_client_connections {
                    self.evict_idlest_client(registry, now);
                }
                self.clients += 1;
                self.set_kind(token, Kind::Client);
                Ok(None)
            }
        }
    }

    /// Makes `token` the connection of peer `from`, replacing an older one; a peer's buffers
    /// are bounded by the frame limit and leave the client budget.
    fn become_peer(&mut self, registry: &Registry, token: Token, from: NodeId, now: Instant) {
        if let Some(older) = self.peer_tokens.insert(from, token) {
            let closing = Closing::Quietly("replaced by a newer connection of the peer".into());
            self.close(registry, older, closing, now);
        }
        self.set_kind(token, Kind::Peer(from));
        if let Some(inbound) = self.connections.get_mut(&token) {
            self.client_buffered -= std::mem::take(&mut inbound.accounted);
        }
    }

    fn set_kind(&mut self, token: Token, kind: Kind) {
        if let Some(inbound) = self.connections.get_mut(&token) {
            inbound.kind = kind;
        }
    }

    /// Answers a [`Delivery::StatusQuery`], if its connection is still open.
    pub(super) fn answer_status(
        &mut self,
        registry: &Registry,
        token: Token,
        tag: u32,
        status: NodeStatus,
        options: &ServeOptions,
        now: Instant,
    ) {
        self.queue(
            registry,
            token,
            &ServerFrame::Status { tag, status: Box::new(status) },
            options,
            now,
        );
    }

    /// Answers a [`Delivery::Admin`], if its connection is still open.
    pub(super) fn answer_admin(
        &mut self,
        registry: &Registry,
        token: Token,
        tag: u32,
        answer: AdminAnswer,
        options: &ServeOptions,
        now: Instant,
    ) {
        self.queue(registry, token, &ServerFrame::Admin { tag, answer }, options, now);
    }

    /// Queues the reply to a client request, if its connection is still open.
    pub(super) fn send_reply(
        &mut self,
        registry: &Registry,
        to: ReplyTo,
        reply: ClientReply<KvReply>,
        options: &ServeOptions,
        now: Instant,
    ) {
        let (token, tag) = reply_target(to);
        if let Some(inbound) = self.connections.get_mut(&token) {
            // Every request delivered gets exactly one reply from the replica.
            if inbound.in_flight > 0 {
                inbound.in_flight -= 1;
                self.in_flight -= 1;
            }
        }
        self.queue(registry, token, &ServerFrame::Reply { tag, reply }, options, now);
    }

    /// Queues a frame to a client; a client that lets more than the reply queue cap pile up
    /// is disconnected instead.
    fn queue(
        &mut self,
        registry: &Registry,
        token: Token,
        frame: &ServerFrame,
        options: &ServeOptions,
        now: Instant,
    ) {
        let limits = &options.connection_limits;
        let Some(inbound) = self.connections.get_mut(&token) else {
            return; // The client went away; it will retry elsewhere.
        };
        let unsent = inbound.conn.unsent_bytes();
        if unsent > limits.max_reply_queue_bytes {
            let detail = format!(
                "client does not read its replies: {unsent} bytes queued \
                 (--max-reply-queue-bytes)"
            );
            self.close(registry, token, Closing::Refused(Reason::UnreadReplies, detail), now);
            return;
        }
        inbound.conn.send(frame);
        self.largest_reply_queue = self.largest_reply_queue.max(inbound.conn.unsent_bytes());
        self.mark_dirty(token);
        self.account(registry, token, limits, now);
    }

    fn mark_dirty(&mut self, token: Token) {
        if let Some(inbound) = self.connections.get_mut(&token) {
            if !std::mem::replace(&mut inbound.dirty, true) {
                self.dirty.push(token);
            }
        }
    }

    /// Counts what a client or pending connection buffers now; one that grew past the budget
    /// of all of them together is closed.
    fn account(
        &mut self,
        registry: &Registry,
        token: Token,
        limits: &ConnectionLimits,
        now: Instant,
    ) {
        let Some(inbound) = self.connections.get_mut(&token) else {
            return;
        };
        if matches!(inbound.kind, Kind::Peer(_)) {
            return;
        }
        let bytes = inbound.conn.buffered_bytes();
        let before = std::mem::replace(&mut inbound.accounted, bytes);
        self.client_buffered = self.client_buffered - before + bytes;
        if bytes > before && self.client_buffered > limits.max_client_buffer_bytes {
            let detail = format!(
                "client connections buffer {} bytes, over the budget of {} \
                 (--max-client-buffer-bytes)",
                self.client_buffered, limits.max_client_buffer_bytes
            );
            self.close(registry, token, Closing::Refused(Reason::BufferBudget, detail), now);
        }
    }

    /// Closes connections whose handshake, idleness or unfinished frame outlasted its timeout.
    pub(super) fn sweep(&mut self, registry: &Registry, limits: &ConnectionLimits, now: Instant) {
        let expired: Vec<(Token, Closing)> = self
            .connections
            .iter()
            .filter_map(|(token, inbound)| Some((*token, inbound.expiry(limits, now)?)))
            .collect();
        for (token, closing) in expired {
            self.close(registry, token, closing, now);
        }
    }

    /// Writes what each connection with queued bytes can take.
    pub(super) fn flush(&mut self, registry: &Registry, now: Instant) {
        for token in std::mem::take(&mut self.dirty) {
            let Some(inbound) = self.connections.get_mut(&token) else {
                continue;
            };
            inbound.dirty = false;
            if let Err(error) = inbound.conn.flush() {
                let closing = io_closing(inbound.kind, &error, "cannot send");
                self.close(registry, token, closing, now);
            }
        }
    }

    /// Writes what every connection can take, on the way out; failures no longer matter.
    pub(super) fn flush_before_exit(&mut self) {
        for inbound in self.connections.values_mut() {
            let _ = inbound.conn.flush();
        }
    }

    /// Closes an accepted connection, counting and logging a refusal.
    fn close(&mut self, registry: &Registry, token: Token, closing: Closing, now: Instant) {
        let Some(mut inbound) = self.connections.remove(&token) else {
            return;
        };
        let _ = registry.deregister(inbound.conn.stream_mut());
        self.client_buffered -= inbound.accounted;
        self.in_flight -= inbound.in_flight;
        match inbound.kind {
            Kind::Pending => self.pending -= 1,
            Kind::Client => self.clients -= 1,
            Kind::Peer(peer) => {
                if self.peer_tokens.get(&peer) == Some(&token) {
                    self.peer_tokens.remove(&peer);
                }
            }
        }
        let address = inbound.address.to_string();
        match closing {
            Closing::Refused(reason, detail) => {
                self.refusals.record(reason, now, &address, &detail);
            }
            Closing::Quietly(reason) => {
                debug!(%address, kind = ?inbound.kind, reason, "connection closed");
            }
        }
    }
}

/// A peer's message must be from it to this node, and a snapshot it starts must fit the cap
/// (checked before the replica allocates anything for it).
fn check_peer_message(
    peer: NodeId,
    message: &Message,
    options: &ServeOptions,
) -> Result<(), ProtocolError> {
    if message.from != peer || message.to != options.id {
        return Err(ProtocolError::Misaddressed { peer, from: message.from, to: message.to });
    }
    let limit = options.connection_limits.max_snapshot_bytes;
    if let Body::InstallSnapshot { total, .. } = message.body {
        if total > limit {
            return Err(ProtocolError::SnapshotTooLarge { peer, total, limit });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fronts_requests_count_against_the_cap_of_every_client_request() {
        let limits = ConnectionLimits { max_requests_in_flight: 2, ..ConnectionLimits::default() };
        let mut inbound = InboundConnections::new(1);
        let now = Instant::ZERO;
        assert!(inbound.admit_front_request(&limits, now));
        assert!(inbound.admit_front_request(&limits, now));
        assert!(!inbound.admit_front_request(&limits, now), "the cap is reached");
        let report = inbound.report();
        assert_eq!((report.requests_in_flight, report.refused.busy), (2, 1));
        inbound.front_request_answered();
        assert!(inbound.admit_front_request(&limits, now), "an answer made room");
        inbound.front_request_answered();
        inbound.front_request_answered();
        assert_eq!(inbound.report().requests_in_flight, 0);
    }
}
