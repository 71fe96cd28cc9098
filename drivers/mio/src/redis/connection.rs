//! One Redis client's connection: bytes in and out, and its commands in order, each answered
//! at once or waiting for the cluster ([`Pipeline`]).

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use crate::redis::commands::ConnectionState;
use crate::redis::pipeline::Pipeline;

/// Bytes read per system call: the size of the buffer a gateway lends its connections.
pub(crate) const CHUNK_BYTES: usize = 16 << 10;

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Everything available was read (what it read is in the inbox).
    Drained,
    /// Read some; there may be more.
    More,
    /// The client closed its side.
    Closed,
}

/// A client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
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
    pub(crate) fn new(stream: TcpStream, session: usize, state: ConnectionState) -> Connection {
        Connection {
            stream,
            inbox: Vec::new(),
            outbox: Vec::new(),
            pipeline: Pipeline::default(),
            session,
            state,
            last_heard: Instant::now(),
            closing: false,
            read_paused: false,
        }
    }

    /// Reads one chunk into the inbox, through `chunk` (lent, so that no buffer is zeroed
    /// per read).
    pub(crate) fn read_chunk(&mut self, chunk: &mut [u8]) -> io::Result<ReadOutcome> {
        loop {
            match self.stream.read(chunk) {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(read) => {
                    self.inbox.extend_from_slice(&chunk[..read]);
                    self.last_heard = Instant::now();
                    // A short read emptied the socket: the poll reports what comes next,
                    // so the read that would only find nothing is saved.
                    return Ok(if read < CHUNK_BYTES {
                        ReadOutcome::Drained
                    } else {
                        ReadOutcome::More
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::Drained);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
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
        while written < self.outbox.len() {
            match self.stream.write(&self.outbox[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => written += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.outbox.drain(..written);
        Ok(())
    }

    /// Whether it has answered everything it will and may be closed.
    pub(crate) fn finished(&self) -> bool {
        self.closing && self.pipeline.is_empty() && self.outbox.is_empty()
    }
}
