//! A non-blocking TCP connection that sends and receives frames, shared by the server and the
//! clients. Outgoing frames are encoded into one buffer and written in as few system calls as
//! the socket allows; incoming bytes are buffered until whole frames can be decoded.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{self, FrameError};

/// What reading found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadState {
    /// The connection is open; read again at the next readable event.
    Open,
    /// The other side closed the connection.
    Closed,
}

/// One framed connection.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    /// Received bytes live in `inbox[consumed..filled]`.
    inbox: Vec<u8>,
    /// Bytes of `inbox` already decoded.
    consumed: usize,
    /// Bytes of `inbox` received.
    filled: usize,
    outbox: Vec<u8>,
    /// Bytes of `outbox` already written.
    written: usize,
    max_frame_bytes: usize,
}

/// Most bytes a node queues on one connection for a receiver that does not keep up. Beyond
/// that, messages to a peer are dropped until it catches up, and a client that does not read
/// its replies is disconnected.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Room the receive buffer keeps for one read.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// An idle receive buffer larger than this is given back.
const SHRINK_ABOVE_BYTES: usize = 1 << 20;

impl Conn {
    /// Wraps a connected (or connecting) stream; disables Nagle's algorithm, since every write
    /// is already a batch.
    pub(crate) fn new(stream: TcpStream, max_frame_bytes: usize) -> Conn {
        // A failure only costs latency.
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            inbox: Vec::new(),
            consumed: 0,
            filled: 0,
            outbox: Vec::new(),
            written: 0,
            max_frame_bytes,
        }
    }

    /// The socket, to register it with a poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Whether a non-blocking connect finished: `Ok(true)` connected, `Ok(false)` still going.
    pub(crate) fn connect_result(&self) -> io::Result<bool> {
        if let Some(error) = self.stream.take_error()? {
            return Err(error);
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Reads everything the socket has (edge-triggered polls need that).
    pub(crate) fn read_ready(&mut self) -> io::Result<ReadState> {
        loop {
            self.make_room();
            match self.stream.read(&mut self.inbox[self.filled..]) {
                Ok(0) => return Ok(ReadState::Closed),
                Ok(read) => self.filled += read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadState::Open);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Makes room after `filled` to read into: moves the undecoded bytes to the front, or
    /// grows the buffer (which is zeroed once, not before every read).
    fn make_room(&mut self) {
        if self.consumed == self.filled {
            self.consumed = 0;
            self.filled = 0;
            if self.inbox.len() > SHRINK_ABOVE_BYTES {
                // A large frame came and went; do not keep its room forever.
                self.inbox = Vec::new();
            }
        }
        if self.inbox.len() - self.filled >= READ_CHUNK_BYTES {
            return;
        }
        if self.consumed > 0 {
            self.inbox.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
        if self.inbox.len() - self.filled < READ_CHUNK_BYTES {
            let grown = (self.inbox.len() * 2).max(self.filled + READ_CHUNK_BYTES);
            self.inbox.resize(grown, 0);
        }
    }

    /// The next complete frame received, if any.
    pub(crate) fn next_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match frame::decode(&self.inbox[self.consumed..self.filled], self.max_frame_bytes)? {
            Some((value, used)) => {
                self.consumed += used;
                Ok(Some(value))
            }
            None => Ok(None),
        }
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
        while self.written < self.outbox.len() {
            match self.stream.write(&self.outbox[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.written += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // A reader that never quite catches up must not make the buffer grow
                    // with bytes already sent.
                    if self.written >= self.outbox.len() / 2 {
                        self.outbox.drain(..self.written);
                        self.written = 0;
                    }
                    return Ok(false);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.outbox.clear();
        self.written = 0;
        Ok(true)
    }
}
