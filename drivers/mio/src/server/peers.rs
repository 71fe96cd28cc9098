//! Links to the other nodes. Each node dials every other node and sends its Raft messages
//! over that link; what it receives arrives on the links the others dialed. A link that fails
//! is dialed again after a backoff that doubles up to a cap; messages meant for a node that is
//! not connected are dropped (Raft retransmits what matters).

use std::io;
use std::net::ToSocketAddrs;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use raftkv_core::raft::Message;
use raftkv_core::{Instant, NodeId};
use tracing::{debug, info, warn};

use crate::conn::{Conn, ReadState};
use crate::wire::{Hello, HelloRole, MAGIC, PROTOCOL_VERSION, Welcome};

const BACKOFF_MS_MIN: u64 = 20;
const BACKOFF_MS_MAX: u64 = 1_000;
/// Most bytes queued for one peer; beyond that messages are dropped until it catches up.
const MAX_QUEUED_BYTES: usize = 64 << 20;

#[derive(Debug)]
enum State {
    /// Not connected; dial at `retry_at`.
    Idle { retry_at: Instant },
    /// TCP connect in progress.
    Connecting(Conn),
    /// Connected (the peer's `Welcome` may still be on its way).
    Connected(Conn),
}

/// The link from this node to one peer.
#[derive(Debug)]
pub(super) struct PeerLink {
    pub(super) id: NodeId,
    address: String,
    token: Token,
    /// What this node says first on every dial.
    hello: Hello,
    state: State,
    backoff_ms: u64,
    /// Whether the peer accepted the current connection.
    welcomed: bool,
    /// Whether the last failure was logged at warn level already (log once per outage).
    outage_logged: bool,
    /// Messages dropped because the link was down or full.
    dropped: u64,
}

impl PeerLink {
    pub(super) fn new(
        id: NodeId,
        address: String,
        token: Token,
        hello: Hello,
        now: Instant,
    ) -> PeerLink {
        PeerLink {
            id,
            address,
            token,
            hello,
            state: State::Idle { retry_at: now },
            backoff_ms: BACKOFF_MS_MIN,
            welcomed: false,
            outage_logged: false,
            dropped: 0,
        }
    }

    /// Whether the link is connected and the peer accepted it.
    pub(super) fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(_)) && self.welcomed
    }

    /// When this link wants to dial, if it is idle.
    pub(super) fn retry_at(&self) -> Option<Instant> {
        match self.state {
            State::Idle { retry_at } => Some(retry_at),
            State::Connecting(_) | State::Connected(_) => None,
        }
    }

    /// Dials if the link is idle and its backoff has passed.
    pub(super) fn dial_if_due(
        &mut self,
        registry: &Registry,
        now: Instant,
        max_frame_bytes: usize,
    ) {
        if self.retry_at().is_none_or(|at| at > now) {
            return;
        }
        match self.dial(registry, max_frame_bytes) {
            Ok(conn) => self.state = State::Connecting(conn),
            Err(error) => self.failed(registry, now, &format!("cannot dial: {error}")),
        }
    }

    fn dial(&self, registry: &Registry, max_frame_bytes: usize) -> io::Result<Conn> {
        let address = self
            .address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("address resolves to nothing"))?;
        let stream = TcpStream::connect(address)?;
        let mut conn = Conn::new(stream, max_frame_bytes);
        registry.register(
            conn.stream_mut(),
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conn.send(&self.hello);
        Ok(conn)
    }

    /// Queues a message, or drops it if the link is down or too far behind.
    pub(super) fn send(&mut self, message: &Message) {
        match &mut self.state {
            State::Connecting(conn) | State::Connected(conn)
                if conn.unsent_bytes() < MAX_QUEUED_BYTES =>
            {
                conn.send(message);
            }
            _ => self.dropped += 1,
        }
    }

    /// Handles a readiness event of this link's socket.
    pub(super) fn on_event(&mut self, registry: &Registry, now: Instant) {
        if let State::Connecting(conn) = &mut self.state {
            match connect_result(conn) {
                Ok(true) => {
                    let State::Connecting(conn) =
                        std::mem::replace(&mut self.state, State::Idle { retry_at: now })
                    else {
                        unreachable!("matched Connecting above")
                    };
                    self.state = State::Connected(conn);
                }
                Ok(false) => return,
                Err(error) => {
                    self.failed(registry, now, &format!("cannot connect: {error}"));
                    return;
                }
            }
        }
        let State::Connected(conn) = &mut self.state else {
            return;
        };
        let outcome = match conn.read_ready() {
            Ok(ReadState::Open) => Ok(()),
            Ok(ReadState::Closed) => Err("closed by the peer".to_string()),
            Err(error) => Err(error.to_string()),
        };
        let mut problem = outcome.err();
        loop {
            match conn.next_frame::<Welcome>() {
                Ok(Some(Welcome::Accepted { node, .. })) if node == self.id => {
                    self.backoff_ms = BACKOFF_MS_MIN;
                    self.welcomed = true;
                    if std::mem::take(&mut self.outage_logged) {
                        let dropped = std::mem::take(&mut self.dropped);
                        info!(
                            peer = %self.id,
                            address = %self.address,
                            dropped,
                            "peer link restored (dropped: messages not sent while down)"
                        );
                    } else {
                        debug!(peer = %self.id, address = %self.address, "peer link up");
                    }
                }
                Ok(Some(Welcome::Accepted { node, .. })) => {
                    problem = Some(format!(
                        "the address belongs to node {node}, not node {} (check --peers)",
                        self.id
                    ));
                    break;
                }
                Ok(Some(Welcome::Refused { reason })) => {
                    problem = Some(format!("refused by the peer: {reason}"));
                    break;
                }
                Ok(None) => break,
                Err(error) => {
                    problem = Some(error.to_string());
                    break;
                }
            }
        }
        if let Some(problem) = problem {
            self.failed(registry, now, &problem);
        } else {
            self.flush(registry, now);
        }
    }

    /// Writes what the socket takes.
    pub(super) fn flush(&mut self, registry: &Registry, now: Instant) {
        if let State::Connected(conn) = &mut self.state {
            if conn.unsent_bytes() > 0 {
                if let Err(error) = conn.flush() {
                    self.failed(registry, now, &format!("cannot send: {error}"));
                }
            }
        }
    }

    /// Closes the link and schedules the next dial.
    fn failed(&mut self, registry: &Registry, now: Instant, problem: &str) {
        self.welcomed = false;
        let previous = std::mem::replace(&mut self.state, State::Idle { retry_at: now });
        if let State::Connecting(mut conn) | State::Connected(mut conn) = previous {
            let _ = registry.deregister(conn.stream_mut());
        }
        if self.outage_logged {
            debug!(peer = %self.id, address = %self.address, problem, "peer link still down");
        } else {
            warn!(peer = %self.id, address = %self.address, problem, "peer link down");
            self.outage_logged = true;
        }
        self.state = State::Idle { retry_at: now.add_millis(self.backoff_ms) };
        self.backoff_ms = (self.backoff_ms * 2).min(BACKOFF_MS_MAX);
    }
}

/// Whether a non-blocking connect finished: `Ok(true)` connected, `Ok(false)` still going.
fn connect_result(conn: &Conn) -> io::Result<bool> {
    let stream = conn.stream();
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(error) => Err(error),
    }
}

/// The `Hello` this node sends on every link it dials.
pub(super) fn peer_hello(cluster: &str, from: NodeId, to: NodeId) -> Hello {
    Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        cluster: cluster.to_string(),
        role: HelloRole::Peer { from, to },
    }
}
