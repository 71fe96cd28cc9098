//! One Redis client's connection: bytes in and out, and its commands in order, each answered
//! at once or waiting for the cluster ([`Pipeline`]).

use std::io::{self, Read, Write};
use std::time::Instant;

use crate::redis::commands::ConnectionState;
use crate::redis::pipeline::Pipeline;
use crate::transport::{ReadOutcome, ReadUntil, TlsFailure, Transport};

/// Bytes read before the commands they hold are run.
const READ_BUDGET_BYTES: usize = 16 << 10;

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why a connection could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// A client spoke the Redis protocol in the clear to a TLS listener.
    Plaintext,
    /// The TLS handshake failed, or a record did not decrypt.
    Tls(String),
    /// The socket failed.
    Io(io::Error),
}

/// A client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The socket, through TLS or in the clear.
    pub(crate) transport: Transport,
    /// Nothing received yet on a TLS connection: the first byte tells a TLS client from one
    /// speaking in the clear.
    awaits_first_byte: bool,
    /// When it was accepted: a TLS handshake must be over within the handshake timeout.
    pub(crate) accepted_at: Instant,
    /// Received, not yet parsed.
    pub(crate) inbox: Vec<u8>,
    /// Encoded answers not yet written.
    pub(crate) outbox: Vec<u8>,
    /// Commands received, in order, answered or not.
    pub(crate) pipeline: Pipeline,
    /// Its session in the clerk pool.
    pub(crate) session: usize,
    pub(crate) state: ConnectionState,
    /// When it last sent something.
    pub(crate) last_heard: Instant,
    /// No more commands are read: it sent QUIT or something unparsable. It is closed once its
    /// answers are out.
    pub(crate) closing: bool,
    /// Reading stopped at the cap of commands waiting: read again once answers go out (the
    /// poll will not say so again).
    pub(crate) read_paused: bool,
}

impl Connection {
    pub(crate) fn new(transport: Transport, session: usize, state: ConnectionState) -> Connection {
        let now = Instant::now();
        Connection {
            awaits_first_byte: transport.is_handshaking(),
            transport,
            accepted_at: now,
            inbox: Vec::new(),
            outbox: Vec::new(),
            pipeline: Pipeline::default(),
            session,
            state,
            last_heard: now,
            closing: false,
            read_paused: false,
        }
    }

    /// Reads into the inbox, about [`READ_BUDGET_BYTES`] at most, as far as `until` says; a
    /// TLS connection's handshake messages are answered by the next
    /// [`send_ready`](Self::send_ready).
    pub(crate) fn read_some(&mut self, until: ReadUntil) -> Result<ReadOutcome, ReadError> {
        if self.awaits_first_byte {
            let mut first = [0];
            match self.transport.stream().peek(&mut first) {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => return Err(ReadError::Plaintext),
                Ok(_) => self.awaits_first_byte = false,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Drained);
                }
                Err(error) => return Err(ReadError::Io(error)),
            }
        }
        let before = self.inbox.len();
        let read = self.transport.read_until(&mut self.inbox, READ_BUDGET_BYTES, until);
        let outcome = read.map_err(|error| {
            match error.get_ref().and_then(|inner| inner.downcast_ref::<TlsFailure>()) {
                Some(failure) => ReadError::Tls(failure.to_string()),
                None => ReadError::Io(error),
            }
        })?;
        if self.inbox.len() > before {
            self.last_heard = Instant::now();
        }
        Ok(outcome)
    }

    /// Tells a client that spoke in the clear to a TLS listener `why` it is closed, in the
    /// clear, and reads what it sent: closing with bytes unread would reset the connection,
    /// and the client could lose the answer.
    pub(crate) fn refuse_in_the_clear(&mut self, why: &[u8]) {
        let stream = self.transport.stream_mut();
        let _ = stream.write(why);
        let mut unread = [0; 4096];
        // A bounded effort: a client that keeps sending gets the reset.
        for _ in 0..16 {
            if !matches!(stream.read(&mut unread), Ok(read) if read > 0) {
                break;
            }
        }
    }

    /// Moves the answers ready at the front, in order, to the outbox while it holds less than
    /// `max_outbox` bytes, and writes what the socket takes.
    pub(crate) fn send_ready(&mut self, max_outbox: usize) -> io::Result<()> {
        while self.outbox.len() < max_outbox {
            let Some(answer) = self.pipeline.pop_ready() else { break };
            self.outbox.extend_from_slice(&answer);
        }
        let mut written = 0;
        // TLS records first: handshake messages and what was already encrypted.
        while self.transport.send_records()? && written < self.outbox.len() {
            match self.transport.write(&self.outbox[written..])? {
                0 => break,
                taken => written += taken,
            }
        }
        self.outbox.drain(..written);
        Ok(())
    }

    /// Whether it has commands unanswered or answers not yet sent.
    pub(crate) fn busy(&self) -> bool {
        !self.pipeline.is_empty() || !self.outbox.is_empty() || self.transport.has_pending_records()
    }

    /// Whether the client has shown it may be served: its TLS handshake, if any, is over, and
    /// it gave the password, if one is asked.
    pub(crate) fn admitted(&self) -> bool {
        self.state.authenticated && !self.transport.is_handshaking()
    }

    /// Whether it has answered everything it will and may be closed: the answers moved into
    /// rustls have left too, else closing would cut the last one short.
    pub(crate) fn finished(&self) -> bool {
        self.closing
            && self.pipeline.is_empty()
            && self.outbox.is_empty()
            && !self.transport.has_pending_records()
    }
}
