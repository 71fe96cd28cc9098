//! Connections others open to this node: first a `Hello` that says who dials, then Raft
//! messages from a peer, or requests from a client. Anything malformed, oversized or from
//! another cluster closes that one connection, with a log line; the node carries on.

use std::net::SocketAddr;

use mio::event::Event;
use mio::{Interest, Token};
use raftkv_core::raft::Message;
use raftkv_core::server::{Input, ReplyTo};
use raftkv_core::{Instant, NodeId};
use tracing::{debug, warn};

use crate::conn::{Conn, ReadState};
use crate::server::event_loop::Server;
use crate::wire::{
    ClientFrame, Hello, HelloRole, MAGIC, NodeStatus, PROTOCOL_VERSION, ServerFrame, Welcome,
};

/// Most bytes queued for a client that does not read its replies before it is disconnected.
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// A connection that has not said who it is after this long is closed.
const HELLO_TIMEOUT_MS: u64 = 10_000;

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
pub(super) struct Inbound {
    pub(super) conn: Conn,
    address: SocketAddr,
    kind: Kind,
    accepted_at: Instant,
}

/// Packs a connection and a tag into the replica's reply address.
pub(super) fn reply_to(token: Token, tag: u32) -> ReplyTo {
    ReplyTo(((token.0 as u64) << 32) | u64::from(tag))
}

/// Unpacks [`reply_to`].
pub(super) fn reply_target(to: ReplyTo) -> (Token, u32) {
    (Token((to.0 >> 32) as usize), to.0 as u32)
}

impl Server {
    /// Accepts every pending connection.
    pub(super) fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, address)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    let mut conn = Conn::new(stream, self.options.max_frame_bytes);
                    if let Err(error) = self.poll.registry().register(
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
                    self.inbound.insert(token, inbound);
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

    /// Handles a readiness event of an accepted connection.
    pub(super) fn on_inbound_event(&mut self, token: Token, event: &Event, now: Instant) {
        let Some(inbound) = self.inbound.get_mut(&token) else {
            return;
        };
        if event.is_writable() {
            if let Err(error) = inbound.conn.flush() {
                let reason = format!("cannot send: {error}");
                self.close_inbound(token, &reason, false);
                return;
            }
        }
        if !event.is_readable() && !event.is_read_closed() {
            return;
        }
        let state = match inbound.conn.read_ready() {
            Ok(state) => state,
            Err(error) => {
                self.close_inbound(token, &format!("cannot receive: {error}"), false);
                return;
            }
        };
        if let Err(problem) = self.take_frames(token, now) {
            self.close_inbound(token, &problem, true);
        } else if state == ReadState::Closed {
            self.close_inbound(token, "closed by the other side", false);
        }
    }

    /// Handles every complete frame received on `token`. An error closes the connection.
    fn take_frames(&mut self, token: Token, now: Instant) -> Result<(), String> {
        loop {
            let inbound = self.inbound.get_mut(&token).expect("caller checked");
            match inbound.kind {
                Kind::AwaitingHello => {
                    let Some(hello) =
                        inbound.conn.next_frame::<Hello>().map_err(|e| e.to_string())?
                    else {
                        return Ok(());
                    };
                    self.on_hello(token, hello, now)?;
                }
                Kind::Peer(from) => {
                    let Some(message) =
                        inbound.conn.next_frame::<Message>().map_err(|e| e.to_string())?
                    else {
                        return Ok(());
                    };
                    if message.from != from || message.to != self.options.id {
                        return Err(format!(
                            "peer {from} sent a message from {} to {}",
                            message.from, message.to
                        ));
                    }
                    self.replica.handle(now, Input::Message(message));
                }
                Kind::Client => {
                    let Some(frame) =
                        inbound.conn.next_frame::<ClientFrame>().map_err(|e| e.to_string())?
                    else {
                        return Ok(());
                    };
                    match frame {
                        ClientFrame::Request { tag, request } => {
                            let from = reply_to(token, tag);
                            self.replica.handle(now, Input::Request { from, request });
                        }
                        ClientFrame::Status { tag } => {
                            let status = self.status();
                            let inbound = self.inbound.get_mut(&token).expect("caller checked");
                            inbound.conn.send(&ServerFrame::Status { tag, status });
                            self.dirty.push(token);
                        }
                    }
                }
            }
        }
    }

    fn on_hello(&mut self, token: Token, hello: Hello, now: Instant) -> Result<(), String> {
        let refusal = if hello.magic != MAGIC {
            Some("not a raftkv connection".to_string())
        } else if hello.version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {} is not supported (this node speaks {PROTOCOL_VERSION})",
                hello.version
            ))
        } else if hello.cluster != self.options.cluster {
            Some(format!(
                "wrong cluster: this node belongs to {:?}, not {:?}",
                self.options.cluster, hello.cluster
            ))
        } else {
            match hello.role {
                HelloRole::Peer { to, .. } if to != self.options.id => {
                    Some(format!("this is node {}, not node {to} (check --peers)", self.options.id))
                }
                HelloRole::Peer { from, .. } if !self.is_peer(from) => {
                    Some(format!("node {from} is not a member of this cluster"))
                }
                HelloRole::Peer { .. } | HelloRole::Client => None,
            }
        };
        let inbound = self.inbound.get_mut(&token).expect("caller checked");
        if let Some(reason) = refusal {
            inbound.conn.send(&Welcome::Refused { reason: reason.clone() });
            // Best effort: the connection closes right after.
            let _ = inbound.conn.flush();
            return Err(format!("refused: {reason}"));
        }
        inbound.kind = match hello.role {
            HelloRole::Peer { from, .. } => Kind::Peer(from),
            HelloRole::Client => Kind::Client,
        };
        debug!(address = %inbound.address, kind = ?inbound.kind, "connection identified");
        if let HelloRole::Peer { from, .. } = hello.role {
            self.peer_dialed_us(from, now);
        }
        let welcome =
            Welcome::Accepted { node: self.options.id, members: self.options.peers.clone() };
        let inbound = self.inbound.get_mut(&token).expect("caller checked");
        inbound.conn.send(&welcome);
        self.dirty.push(token);
        Ok(())
    }

    /// Closes connections that stayed silent past the hello timeout.
    pub(super) fn close_silent(&mut self, now: Instant) {
        let silent: Vec<Token> = self
            .inbound
            .iter()
            .filter(|(_, inbound)| {
                inbound.kind == Kind::AwaitingHello
                    && now.nanos_since(inbound.accepted_at) > HELLO_TIMEOUT_MS * 1_000_000
            })
            .map(|(token, _)| *token)
            .collect();
        for token in silent {
            self.close_inbound(token, "said nothing within the hello timeout", true);
        }
    }

    /// Queues a reply to a client request, if its connection is still open.
    pub(super) fn send_to_client(&mut self, to: ReplyTo, frame: &ServerFrame) {
        let (token, _) = reply_target(to);
        let Some(inbound) = self.inbound.get_mut(&token) else {
            return; // The client went away; it will retry elsewhere.
        };
        if inbound.conn.unsent_bytes() > MAX_QUEUED_BYTES {
            self.close_inbound(token, "client does not read its replies", true);
            return;
        }
        inbound.conn.send(frame);
        self.dirty.push(token);
    }

    /// Writes what each connection with queued bytes can take.
    pub(super) fn flush_inbound(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for token in dirty {
            let Some(inbound) = self.inbound.get_mut(&token) else {
                continue;
            };
            if inbound.conn.unsent_bytes() > 0 {
                if let Err(error) = inbound.conn.flush() {
                    self.close_inbound(token, &format!("cannot send: {error}"), false);
                }
            }
        }
    }

    /// Closes an accepted connection; `misbehaved` logs it as a warning.
    fn close_inbound(&mut self, token: Token, reason: &str, misbehaved: bool) {
        let Some(mut inbound) = self.inbound.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(inbound.conn.stream_mut());
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

    fn is_peer(&self, id: NodeId) -> bool {
        id != self.options.id && self.options.peers.iter().any(|(peer, _)| *peer == id)
    }

    /// The node's state for `raftkv status`.
    pub(super) fn status(&self) -> NodeStatus {
        let status = self.replica.raft().status();
        NodeStatus {
            id: status.id,
            role: status.role.to_string(),
            term: status.term,
            leader: status.leader,
            commit: status.commit,
            applied: self.replica.applied(),
            last_log: status.last_log.index,
            snapshot_last: status.snapshot_last.index,
            log_entries: status.log_entries as u64,
            wal_bytes: self.disk.wal_bytes(),
            keys: self.replica.state().len() as u64,
            damaged: status.damaged,
        }
    }
}
