//! One accepted connection: who is on the other end, its buffers and clocks, and why it gets
//! closed (the timeouts that apply to it, a failed read or write).

use std::net::SocketAddr;

use raftkv_core::{Instant, NodeId};

use crate::conn::Conn;
use crate::server::limits::ConnectionLimits;
use crate::server::protocol_error::ProtocolError;
use crate::server::refusal_log::Reason;
use crate::transport::TlsFailure;

/// Who is on the other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Handshake or `Hello` not finished.
    Pending,
    /// A node of the cluster, sending Raft messages.
    Peer(NodeId),
    /// A client.
    Client,
}

/// Why a connection is closed.
#[derive(Debug)]
pub(super) enum Closing {
    /// The other side went away, or the socket failed: logged at debug level.
    Quietly(String),
    /// Refused or misbehaved: counted and logged under the reason.
    Refused(Reason, String),
}

impl From<ProtocolError> for Closing {
    fn from(error: ProtocolError) -> Closing {
        Closing::Refused(error.reason(), error.to_string())
    }
}

/// One accepted connection.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) conn: Conn,
    pub(super) address: SocketAddr,
    pub(super) kind: Kind,
    pub(super) accepted_at: Instant,
    /// When the last complete frame arrived (or the connection was accepted).
    pub(super) last_frame_at: Instant,
    /// Since when part of a frame has been waiting for the rest.
    pub(super) partial_since: Option<Instant>,
    /// Bytes of this connection counted in the client buffer total.
    pub(super) accounted: usize,
    /// Whether it is in the list of connections to flush.
    pub(super) dirty: bool,
    /// Its requests waiting in the replica for their answers.
    pub(super) in_flight: usize,
    /// Whether it is held back at a cap on requests in flight: not read until released.
    pub(super) held: bool,
}

impl Inbound {
    /// A connection accepted at `now`, its handshake ahead.
    pub(super) fn new(conn: Conn, address: SocketAddr, now: Instant) -> Inbound {
        Inbound {
            conn,
            address,
            kind: Kind::Pending,
            accepted_at: now,
            last_frame_at: now,
            partial_since: None,
            accounted: 0,
            dirty: false,
            in_flight: 0,
            held: false,
        }
    }

    /// Why the connection must be closed at `now`, if a timeout has passed.
    pub(super) fn expiry(&self, limits: &ConnectionLimits, now: Instant) -> Option<Closing> {
        let over = |since: Instant, timeout| now - since > timeout;
        if self.kind == Kind::Pending && over(self.accepted_at, limits.handshake_timeout) {
            let detail = "did not finish its handshake and hello in time (--handshake-timeout-ms)";
            return Some(Closing::Refused(Reason::HandshakeTimedOut, detail.to_string()));
        }
        if self.kind == Kind::Client && over(self.last_frame_at, limits.client_idle_timeout) {
            let detail = "client sent nothing for the idle timeout (--client-idle-timeout-ms)";
            return Some(Closing::Refused(Reason::Idle, detail.to_string()));
        }
        if self.partial_since.is_some_and(|since| over(since, limits.frame_timeout)) {
            let detail = "a frame was not completed in time (--frame-timeout-ms)";
            return Some(Closing::Refused(Reason::FrameTimedOut, detail.to_string()));
        }
        None
    }
}

/// The next frame of `inbound`, keeping track of when frames arrive and of one waiting for
/// its rest.
pub(super) fn next_frame<T: serde::de::DeserializeOwned>(
    inbound: &mut Inbound,
    now: Instant,
) -> Result<Option<T>, ProtocolError> {
    let frame = inbound.conn.next_frame::<T>().map_err(ProtocolError::Frame)?;
    if frame.is_some() {
        inbound.last_frame_at = now;
        inbound.partial_since = None;
    } else if inbound.conn.has_partial_frame() {
        inbound.partial_since.get_or_insert(now);
    }
    Ok(frame)
}

/// How a failed read or write closes a connection: a TLS failure before the `Hello` is a
/// refused handshake; anything else, a connection gone.
pub(super) fn io_closing(kind: Kind, error: &std::io::Error, doing: &str) -> Closing {
    let tls = error.get_ref().is_some_and(|inner| inner.is::<TlsFailure>());
    if tls && kind == Kind::Pending {
        Closing::Refused(Reason::HandshakeFailed, format!("TLS handshake failed: {error}"))
    } else {
        Closing::Quietly(format!("{doing}: {error}"))
    }
}
