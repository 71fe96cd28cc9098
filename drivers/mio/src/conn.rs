//! A non-blocking connection that sends and receives frames, shared by the server and the
//! clients, over a [`Transport`] (TCP, in the clear or through TLS). Outgoing frames are
//! encoded into one buffer and written in as few system calls as the socket allows; incoming
//! bytes are buffered until whole frames can be decoded. The receive buffer grows with the
//! bytes that actually arrived, never with the length a frame announces, and is given back
//! when nothing is pending.

use std::io;

use mio::net::TcpStream;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, FrameError};
use crate::transport::Transport;
pub(crate) use crate::transport::{ReadOutcome, ReadUntil};

/// One framed connection.
#[derive(Debug)]
pub(crate) struct Conn {
    transport: Transport,
    /// Received bytes live in `inbox[consumed..]`.
    inbox: Vec<u8>,
    /// Bytes of `inbox` already decoded.
    consumed: usize,
    outbox: Vec<u8>,
    /// Bytes of `outbox` already handed to the transport.
    written: usize,
    max_frame_bytes: usize,
}

/// Most bytes a node queues to a peer that does not keep up; beyond that, messages to it are
/// dropped until it catches up.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Most bytes one call of [`Conn::read_some`] reads, so that frames are decoded (and the
/// buffer emptied) between reads.
const READ_BUDGET_BYTES: usize = 256 << 10;
/// An empty receive buffer with more room than this is given back: an idle connection holds
/// no memory for what it received long ago.
const KEEP_IDLE_BYTES: usize = 4 << 10;

impl Conn {
    /// Wraps a connected (or connecting) transport; disables Nagle's algorithm, since every
    /// write is already a batch.
    pub(crate) fn new(transport: Transport, max_frame_bytes: usize) -> Conn {
        // A failure only costs latency.
        let _ = transport.stream().set_nodelay(true);
        Conn {
            transport,
            inbox: Vec::new(),
            consumed: 0,
            outbox: Vec::new(),
            written: 0,
            max_frame_bytes,
        }
    }

    /// The socket, to register it with a poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        self.transport.stream_mut()
    }

    /// The certificates the other side presented (TLS only).
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.transport.peer_certificates()
    }

    /// Changes the largest frame accepted from now on.
    pub(crate) fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes;
    }

    /// Whether a non-blocking connect finished: `Ok(true)` connected, `Ok(false)` still going.
    pub(crate) fn connect_result(&self) -> io::Result<bool> {
        let stream = self.transport.stream();
        if let Some(error) = stream.take_error()? {
            return Err(error);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Reads what the socket has, as far as `until` says and up to a budget; then sends what
    /// TLS has to say (handshake messages, alerts). Call again after decoding while it answers
    /// `Budget` (edge-triggered polls report a socket once).
    pub(crate) fn read_some(&mut self, until: ReadUntil) -> io::Result<ReadOutcome> {
        self.compact_inbox();
        let outcome = self.transport.read_until(&mut self.inbox, READ_BUDGET_BYTES, until)?;
        self.flush()?;
        Ok(outcome)
    }

    /// Reads everything the socket has, as far as `until` says: for the side that trusts the
    /// other to send little.
    pub(crate) fn read_all(&mut self, until: ReadUntil) -> io::Result<ReadOutcome> {
        self.compact_inbox();
        let outcome = self.transport.read_until(&mut self.inbox, usize::MAX, until)?;
        self.flush()?;
        Ok(outcome)
    }

    /// Drops decoded bytes; gives the buffer back when nothing is pending.
    fn compact_inbox(&mut self) {
        if self.consumed == self.inbox.len() {
            self.inbox.clear();
            if self.inbox.capacity() > KEEP_IDLE_BYTES {
                self.inbox = Vec::new();
            }
        } else if self.consumed > 0 {
            self.inbox.drain(..self.consumed);
        }
        self.consumed = 0;
    }

    /// The next complete frame received, if any.
    pub(crate) fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match frame::decode(&self.inbox[self.consumed..], self.max_frame_bytes)? {
            Some((value, used)) => {
                self.consumed += used;
                Ok(Some(value))
            }
            None => Ok(None),
        }
    }

    /// Whether part of a frame has arrived and waits for the rest.
    pub(crate) fn has_partial_frame(&self) -> bool {
        self.consumed < self.inbox.len()
    }

    /// Bytes of memory the buffers hold (received and to send).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.inbox.capacity() + self.outbox.capacity()
    }

    /// Queues a frame; [`flush`](Self::flush) writes it.
    pub(crate) fn send<T: Serialize>(&mut self, value: &T) {
        frame::encode_into(value, &mut self.outbox);
    }

    /// Bytes queued and not yet written.
    pub(crate) fn unsent_bytes(&self) -> usize {
        self.outbox.len() - self.written
    }

    /// Writes what the socket takes. Returns whether everything queued is written.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        loop {
            if !self.transport.send_records()? {
                self.compact_outbox();
                return Ok(false);
            }
            if self.written == self.outbox.len() {
                self.outbox.clear();
                self.written = 0;
                if self.outbox.capacity() > KEEP_IDLE_BYTES {
                    self.outbox = Vec::new();
                }
                return Ok(true);
            }
            let taken = self.transport.write(&self.outbox[self.written..])?;
            if taken == 0 {
                self.compact_outbox();
                return Ok(false);
            }
            self.written += taken;
        }
    }

    /// A reader that never quite catches up must not make the buffer grow with bytes already
    /// sent.
    fn compact_outbox(&mut self) {
        if self.written >= self.outbox.len() / 2 {
            self.outbox.drain(..self.written);
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use mio::{Events, Interest, Poll, Token};

    use super::*;

    /// Polls until `token` is reported readable, or gives up after `wait`.
    fn readable_within(poll: &mut Poll, token: Token, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut events = Events::with_capacity(8);
        while Instant::now() < deadline {
            poll.poll(&mut events, Some(deadline - Instant::now())).unwrap();
            if events.iter().any(|event| event.token() == token && event.is_readable()) {
                return true;
            }
        }
        false
    }

    /// What reading only up to a short read relies on: the socket's queue was emptied, and the
    /// bytes that arrive afterwards raise a new (edge-triggered) readiness event.
    #[test]
    fn bytes_arriving_after_a_short_read_raise_a_new_readiness_event() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(Transport::plain(TcpStream::from_std(accepted)), 1 << 20);
        let mut poll = Poll::new().unwrap();
        let token = Token(7);
        poll.registry().register(conn.stream_mut(), token, Interest::READABLE).unwrap();
        for round in 0..3u8 {
            sender.write_all(&[round; 100]).unwrap();
            assert!(readable_within(&mut poll, token, Duration::from_secs(10)), "round {round}");
            // The 100 bytes may arrive in pieces: each piece raises its own event.
            let mut received = 0;
            while received < 100 {
                assert_eq!(conn.read_some(ReadUntil::ShortRead).unwrap(), ReadOutcome::Drained);
                received = conn.inbox.len() - conn.consumed;
                if received < 100 {
                    assert!(readable_within(&mut poll, token, Duration::from_secs(10)));
                }
            }
            assert_eq!(received, 100);
            conn.consumed = conn.inbox.len();
        }
        // Nothing more was sent: no event, and a read finds the socket empty.
        assert!(!readable_within(&mut poll, token, Duration::from_millis(50)));
        assert_eq!(conn.read_some(ReadUntil::WouldBlock).unwrap(), ReadOutcome::Drained);
        assert_eq!(conn.inbox.len(), conn.consumed);
    }
}
