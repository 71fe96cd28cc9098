//! One Redis client's connection: bytes in and out, and its commands in order, each answered
//! at once or waiting for the cluster.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use crate::redis::commands::{ConnectionState, Shape};

/// Bytes read per system call: the size of the buffer a gateway lends its connections.
pub(crate) const CHUNK_BYTES: usize = 16 << 10;

/// A command's place in the order of answers.
#[derive(Debug)]
pub(crate) enum Slot {
    /// The encoded answer.
    Ready(Vec<u8>),
    /// Waiting for the cluster, since `since`; to be encoded in `protocol`.
    Cluster { shape: Shape, protocol: u8, since: Instant },
    /// Waiting for the node's status (`INFO` of `sections`).
    Info { protocol: u8, sections: Vec<String> },
}

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
    pub(crate) slots: VecDeque<Slot>,
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
            slots: VecDeque::new(),
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

    /// The answer to the oldest command waiting for the cluster, encoded by `encode` in the
    /// protocol of its time. Returns whether there was one.
    pub(crate) fn answer_cluster(&mut self, encode: impl FnOnce(Shape, u8) -> Vec<u8>) -> bool {
        let waiting = self.slots.iter_mut().find(|slot| matches!(slot, Slot::Cluster { .. }));
        let Some(slot) = waiting else {
            return false;
        };
        let Slot::Cluster { shape, protocol, .. } = *slot else {
            unreachable!("found a cluster slot")
        };
        *slot = Slot::Ready(encode(shape, protocol));
        true
    }

    /// Answers every `INFO` waiting, by protocol version and sections asked.
    pub(crate) fn answer_info(&mut self, encode: impl Fn(u8, &[String]) -> Vec<u8>) {
        for slot in &mut self.slots {
            if let Slot::Info { protocol, sections } = slot {
                *slot = Slot::Ready(encode(*protocol, sections));
            }
        }
    }

    /// Whether an `INFO` waits.
    pub(crate) fn waits_for_info(&self) -> bool {
        self.slots.iter().any(|slot| matches!(slot, Slot::Info { .. }))
    }

    /// When the oldest command waiting for the cluster was received.
    pub(crate) fn oldest_cluster_wait(&self) -> Option<Instant> {
        self.slots.iter().find_map(|slot| match slot {
            Slot::Cluster { since, .. } => Some(*since),
            _ => None,
        })
    }

    /// Moves the answers ready at the front, in order, to the outbox while it holds less than
    /// `max_outbox` bytes, and writes what the socket takes.
    pub(crate) fn send_ready(&mut self, max_outbox: usize) -> io::Result<()> {
        while self.outbox.len() < max_outbox {
            match self.slots.front_mut() {
                Some(Slot::Ready(bytes)) => {
                    let bytes = std::mem::take(bytes);
                    self.slots.pop_front();
                    self.outbox.extend_from_slice(&bytes);
                }
                _ => break,
            }
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
        self.closing && self.slots.is_empty() && self.outbox.is_empty()
    }
}
