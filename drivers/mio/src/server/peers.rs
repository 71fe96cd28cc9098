//! Links to the other nodes. Each node dials every other node it knows (see `peer_set`) and sends
//! its Raft messages over that link; what it receives arrives on the links the others dialed. A
//! link that fails is dialed again after a backoff that doubles up to a cap; messages meant for a
//! node that is not connected are dropped (Raft retransmits what matters).

use std::io;
use std::net::ToSocketAddrs;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use raftkv_core::raft::Message;
use raftkv_core::{Duration, Instant, NodeId};
use tracing::{debug, info, warn};

use crate::conn::{Conn, MAX_QUEUED_BYTES, ReadOutcome, ReadUntil};
use crate::tls::NodeTls;
use crate::transport::Transport;
use crate::wire::{Hello, HelloRole, MAGIC, PROTOCOL_VERSION, Welcome};

/// After a failure a link is dialed again after a backoff: this at first, doubling with each
/// failure up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(1_000);
/// A dial that has not connected after this long is abandoned (a host that drops packets).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
/// A peer that takes none of the queued bytes for this long is disconnected (a half-open
/// connection to a host that went away, or a stuck process).
const STALL_TIMEOUT: Duration = Duration::from_millis(5_000);
/// A link older than this is redialed when the peer dials this node anew: the peer probably
/// restarted, and the old connection may be half-open. (Younger links are left alone, so two
/// nodes starting together do not keep resetting each other.)
const REDIAL_AFTER: Duration = Duration::from_millis(1_000);

#[derive(Debug)]
enum State {
    /// Not connected, and not dialed until there is something to send (a node that joins
    /// waits to be contacted: dialing the members first would only be refused).
    Dormant,
    /// Not connected; dial at `retry_at`.
    Idle { retry_at: Instant },
    /// TCP connect in progress, since the instant given.
    Connecting(Conn, Instant),
    /// Connected since the instant given (the peer's `Welcome` may still be on its way).
    Connected(Conn, Instant),
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
    /// How long after the next failure to dial again.
    backoff: Duration,
    /// Whether the peer accepted the current connection.
    welcomed: bool,
    /// Since when queued bytes have been waiting with no progress.
    stalled_since: Option<Instant>,
    /// Whether the link was ever accepted (before that, failures are expected at start-up).
    ever_up: bool,
    /// Whether the last failure was logged at warn level already (log once per outage).
    outage_logged: bool,
    /// Messages dropped because the link was down or full.
    dropped: u64,
    /// Times the link came up again after it had been up.
    reconnects: u64,
    /// Whether the link dials only when there is something to send, and after a failure
    /// waits for the next thing to send instead of dialing again (a retired node's).
    on_demand: bool,
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
            backoff: BACKOFF_MIN,
            welcomed: false,
            stalled_since: None,
            ever_up: false,
            outage_logged: false,
            dropped: 0,
            reconnects: 0,
            on_demand: false,
        }
    }

    /// A link that dials only once there is something to send (see `State::Dormant`).
    pub(super) fn dormant(
        id: NodeId,
        address: String,
        token: Token,
        hello: Hello,
        now: Instant,
    ) -> PeerLink {
        PeerLink { state: State::Dormant, ..PeerLink::new(id, address, token, hello, now) }
    }

    /// A link to a node that is answered but never dialed unprompted: a retired node that
    /// may still ask for pre-votes. It dials when there is something to send, and a failure
    /// leaves it dormant again rather than retrying.
    pub(super) fn on_demand(
        id: NodeId,
        address: String,
        token: Token,
        hello: Hello,
        now: Instant,
    ) -> PeerLink {
        PeerLink { on_demand: true, ..PeerLink::dormant(id, address, token, hello, now) }
    }

    /// A dormant link dials now.
    pub(super) fn wake(&mut self, now: Instant) {
        if matches!(self.state, State::Dormant) {
            self.state = State::Idle { retry_at: now };
        }
    }

    /// The address it dials.
    pub(super) fn address(&self) -> &str {
        &self.address
    }

    /// Whether the link is connected and the peer accepted it.
    pub(super) fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(..)) && self.welcomed
    }

    /// Whether the link dials only to answer (see [`PeerLink::on_demand`]).
    pub(super) fn is_on_demand(&self) -> bool {
        self.on_demand
    }

    /// Times the link came up again after it had been up.
    pub(super) fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// When this link next needs attention: its next dial, or when a dial or a stalled send
    /// times out.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Dormant => None,
            State::Idle { retry_at } => Some(retry_at),
            State::Connecting(_, since) => Some(since + CONNECT_TIMEOUT),
            State::Connected(..) => self.stalled_since.map(|at| at + STALL_TIMEOUT),
        }
    }

    /// Gives up a dial or a stalled connection whose time is up.
    pub(super) fn check_timeouts(&mut self, registry: &Registry, now: Instant) {
        match self.state {
            State::Connecting(_, since) if now >= since + CONNECT_TIMEOUT => {
                self.failed(registry, now, "connect timed out");
            }
            State::Connected(..)
                if self.stalled_since.is_some_and(|at| now >= at + STALL_TIMEOUT) =>
            {
                let seconds = STALL_TIMEOUT.as_millis() / 1_000;
                self.failed(registry, now, &format!("the peer has taken no data for {seconds} s"));
            }
            _ => {}
        }
    }

    /// The peer dialed this node anew. If this link is old, the peer probably restarted and
    /// the link may be half-open: dial again now.
    pub(super) fn peer_dialed_us(&mut self, registry: &Registry, now: Instant) {
        let State::Connected(_, since) = self.state else {
            return;
        };
        if now < since + REDIAL_AFTER {
            return;
        }
        info!(peer = %self.id, "the peer reconnected to this node: dialing it again");
        self.close(registry);
        self.backoff = BACKOFF_MIN;
        self.state = State::Idle { retry_at: now };
    }

    /// Dials if the link is idle and its backoff has passed.
    pub(super) fn dial_if_due(
        &mut self,
        registry: &Registry,
        now: Instant,
        max_frame_bytes: usize,
        tls: Option<&NodeTls>,
    ) {
        if !matches!(self.state, State::Idle { retry_at } if retry_at <= now) {
            return;
        }
        match self.dial(registry, max_frame_bytes, tls) {
            Ok(conn) => self.state = State::Connecting(conn, now),
            Err(error) => self.failed(registry, now, &format!("cannot dial: {error}")),
        }
    }

    fn dial(
        &self,
        registry: &Registry,
        max_frame_bytes: usize,
        tls: Option<&NodeTls>,
    ) -> io::Result<Conn> {
        let address = self
            .address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("address resolves to nothing"))?;
        let stream = TcpStream::connect(address)?;
        let transport = match tls {
            None => Transport::plain(stream),
            // The peer must present the certificate of the node this link is for.
            Some(tls) => Transport::tls(stream, tls.dial(self.id).map_err(io::Error::other)?),
        };
        let mut conn = Conn::new(transport, max_frame_bytes);
        registry.register(
            conn.stream_mut(),
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        conn.send(&self.hello);
        Ok(conn)
    }

    /// Queues a message, or drops it if the link is down or too far behind; a dormant link
    /// dials at the next turn (Raft sends again what matters).
    pub(super) fn send(&mut self, message: &Message) {
        match &mut self.state {
            State::Connecting(conn, _) | State::Connected(conn, _)
                if conn.unsent_bytes() < MAX_QUEUED_BYTES =>
            {
                conn.send(message);
            }
            State::Dormant => {
                self.dropped += 1;
                self.state = State::Idle { retry_at: Instant::ZERO };
            }
            _ => self.dropped += 1,
        }
    }

    /// Handles a readiness event of this link's socket.
    pub(super) fn on_event(&mut self, registry: &Registry, now: Instant) {
        if let State::Connecting(conn, _) = &mut self.state {
            match conn.connect_result() {
                Ok(true) => {
                    let State::Connecting(conn, _) =
                        std::mem::replace(&mut self.state, State::Idle { retry_at: now })
                    else {
                        unreachable!("matched Connecting above")
                    };
                    self.state = State::Connected(conn, now);
                }
                Ok(false) => return,
                Err(error) => {
                    self.failed(registry, now, &format!("cannot connect: {error}"));
                    return;
                }
            }
        }
        let State::Connected(conn, _) = &mut self.state else {
            return;
        };
        let outcome = match conn.read_all(ReadUntil::WouldBlock) {
            Ok(ReadOutcome::Drained | ReadOutcome::Budget) => Ok(()),
            Ok(ReadOutcome::Closed) => Err("closed by the peer".to_string()),
            Err(error) => Err(error.to_string()),
        };
        let mut problem = outcome.err();
        loop {
            match conn.next_frame::<Welcome>() {
                Ok(Some(Welcome::Accepted { node, .. })) if node == self.id => {
                    self.backoff = BACKOFF_MIN;
                    self.welcomed = true;
                    if self.ever_up {
                        self.reconnects = self.reconnects.saturating_add(1);
                    }
                    let dropped = std::mem::take(&mut self.dropped);
                    if std::mem::take(&mut self.outage_logged) && self.ever_up {
                        info!(
                            peer = %self.id,
                            address = %self.address,
                            "peer link restored; {dropped} messages were dropped while it was down"
                        );
                    } else {
                        info!(peer = %self.id, address = %self.address, "peer link up");
                    }
                    self.ever_up = true;
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
        if let State::Connected(conn, _) = &mut self.state {
            let before = conn.unsent_bytes();
            if before > 0 {
                match conn.flush() {
                    Ok(true) => self.stalled_since = None,
                    // Some progress restarts the clock; none lets it run.
                    Ok(false) if conn.unsent_bytes() < before => self.stalled_since = Some(now),
                    Ok(false) => {
                        self.stalled_since.get_or_insert(now);
                    }
                    Err(error) => self.failed(registry, now, &format!("cannot send: {error}")),
                }
            }
        }
    }

    /// Drops the connection, if any.
    pub(super) fn close(&mut self, registry: &Registry) {
        self.welcomed = false;
        self.stalled_since = None;
        let previous = std::mem::replace(&mut self.state, State::Idle { retry_at: Instant::ZERO });
        if let State::Connecting(mut conn, _) | State::Connected(mut conn, _) = previous {
            let _ = registry.deregister(conn.stream_mut());
        }
    }

    /// Closes the link and schedules the next dial.
    fn failed(&mut self, registry: &Registry, now: Instant, problem: &str) {
        self.close(registry);
        if self.on_demand {
            debug!(peer = %self.id, address = %self.address, problem, "retired peer not reached");
            self.state = State::Dormant;
            return;
        }
        if self.outage_logged {
            debug!(peer = %self.id, address = %self.address, problem, "peer link still down");
        } else if self.ever_up {
            warn!(peer = %self.id, address = %self.address, problem, "peer link down");
            self.outage_logged = true;
        } else {
            info!(peer = %self.id, address = %self.address, problem, "peer not reachable yet");
            self.outage_logged = true;
        }
        self.state = State::Idle { retry_at: now + self.backoff };
        self.backoff = self.backoff.saturating_mul(2).min(BACKOFF_MAX);
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

#[cfg(test)]
mod tests {
    use mio::Poll;
    use raftkv_core::raft::Body;
    use raftkv_core::{LogId, LogIndex, Term};

    use super::*;

    fn link(on_demand: bool) -> PeerLink {
        let (id, address, token) = (NodeId(3), "127.0.0.1:1".to_string(), Token(7));
        let hello = peer_hello("test", NodeId(1), id);
        let now = Instant::from_millis(10);
        match on_demand {
            true => PeerLink::on_demand(id, address, token, hello, now),
            false => PeerLink::new(id, address, token, hello, now),
        }
    }

    fn append() -> Message {
        let prev = LogId { index: LogIndex(4), term: Term(1) };
        let body = Body::Append {
            prev,
            entries: Vec::new(),
            commit: prev.index,
            read_round: 0,
            recovery: None,
            pipelined: false,
        };
        Message { from: NodeId(1), to: NodeId(3), term: Term(2), body }
    }

    #[test]
    fn a_retired_nodes_link_dials_only_to_answer_and_waits_again_after_a_failure() {
        let poll = Poll::new().expect("poll");
        let now = Instant::from_millis(20);
        let mut answering = link(true);
        assert!(answering.is_on_demand());
        assert_eq!(answering.deadline(), None, "never dialed unprompted");
        answering.send(&append());
        assert_eq!(answering.deadline(), Some(Instant::ZERO), "dials to deliver the answer");
        answering.failed(poll.registry(), now, "refused");
        assert_eq!(answering.deadline(), None, "a failure does not make it dial again");

        let mut member = link(false);
        member.failed(poll.registry(), now, "refused");
        assert_eq!(member.deadline(), Some(now + BACKOFF_MIN), "a member's link dials again");
    }
}
