//! The byte stream under a framed connection: a non-blocking TCP socket, in the clear or
//! through TLS. rustls is sans-IO: it takes the bytes read from the socket and gives back
//! plaintext, takes plaintext and gives back records to write; this type pumps both ways.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::pki_types::CertificateDer;

/// Bytes read from the socket (or taken from rustls) per system call.
const CHUNK_BYTES: usize = 16 << 10;

/// What a read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Everything the socket had was read: wait for the next readable event.
    Drained,
    /// The budget was reached with more to read: read again once this is used.
    Budget,
    /// The other side closed the connection.
    Closed,
}

/// A socket, with TLS or without.
#[derive(Debug)]
pub(crate) struct Transport {
    stream: TcpStream,
    tls: Option<Box<rustls::Connection>>,
}

impl Transport {
    /// Bytes in the clear.
    pub(crate) fn plain(stream: TcpStream) -> Transport {
        Transport { stream, tls: None }
    }

    /// Bytes through `tls`, whose handshake starts with the first read or write.
    pub(crate) fn tls(stream: TcpStream, tls: impl Into<rustls::Connection>) -> Transport {
        Transport { stream, tls: Some(Box::new(tls.into())) }
    }

    /// The socket, to register it with a poll.
    pub(crate) fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// The socket, to ask it about its connection.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Whether a TLS handshake is still going on (never, in the clear).
    pub(crate) fn is_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.is_handshaking())
    }

    /// The certificates the other side presented and the handshake verified.
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls.as_ref().and_then(|tls| tls.peer_certificates())
    }

    /// Appends received plaintext to `inbox`, at most about `budget` bytes, as far as `until`
    /// says.
    pub(crate) fn read_until(
        &mut self,
        inbox: &mut Vec<u8>,
        budget: usize,
        until: ReadUntil,
    ) -> io::Result<ReadOutcome> {
        let limit = inbox.len().saturating_add(budget);
        match &mut self.tls {
            None => read_plain(&mut self.stream, inbox, limit, until),
            Some(tls) => read_tls(&mut self.stream, tls, inbox, limit),
        }
    }

    /// Takes plaintext to send; returns how much it took (0: none now, the socket or the
    /// handshake is not ready).
    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => match self.stream.write(bytes) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => Ok(written),
                Err(error) if is_retry(&error) => Ok(0),
                Err(error) => Err(error),
            },
            // Data waits for the handshake, so that it never leaves before the other side
            // was verified.
            Some(tls) if tls.is_handshaking() => Ok(0),
            Some(tls) => tls.writer().write(bytes),
        }
    }

    /// Says through TLS that nothing more will be sent, once the handshake is done (before, or
    /// in the clear, there is no one to say it to); [`send_records`](Self::send_records)
    /// writes it.
    pub(crate) fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_mut().filter(|tls| !tls.is_handshaking()) {
            tls.send_close_notify();
        }
    }

    /// Whether rustls holds TLS records the socket has not taken yet: what
    /// [`write`](Self::write) took is not sent before these are.
    pub(crate) fn has_pending_records(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Writes the TLS records rustls has ready; returns whether none is left.
    pub(crate) fn send_records(&mut self) -> io::Result<bool> {
        let Some(tls) = &mut self.tls else {
            return Ok(true);
        };
        while tls.wants_write() {
            match tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }
}

fn is_retry(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// How far a read goes before it counts the socket drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadUntil {
    /// Until the socket says it would block: after a readiness event that said the other side
    /// closed, or when no event said anything (a read resumed), since the end of a stream
    /// received before the read is reported by no later event.
    WouldBlock,
    /// In the clear, until a read returns less than it asked for (or would block): the
    /// socket's queue was emptied, and bytes that arrive later raise a new readiness event, so
    /// the read that would only say "would block" is spared (one system call per request of a
    /// client that waits for each answer). TLS reads go until "would block" either way.
    ShortRead,
}

fn read_plain(
    stream: &mut TcpStream,
    inbox: &mut Vec<u8>,
    limit: usize,
    until: ReadUntil,
) -> io::Result<ReadOutcome> {
    let mut chunk = [0; CHUNK_BYTES];
    loop {
        if inbox.len() >= limit {
            return Ok(ReadOutcome::Budget);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(ReadOutcome::Closed),
            Ok(read) if read < chunk.len() && until == ReadUntil::ShortRead => {
                inbox.extend_from_slice(&chunk[..read]);
                return Ok(ReadOutcome::Drained);
            }
            Ok(read) => inbox.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return Ok(ReadOutcome::Drained);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn read_tls(
    stream: &mut TcpStream,
    tls: &mut rustls::Connection,
    inbox: &mut Vec<u8>,
    limit: usize,
) -> io::Result<ReadOutcome> {
    let mut chunk = [0; CHUNK_BYTES];
    loop {
        // First the plaintext rustls already holds, so that its buffer never fills.
        loop {
            if inbox.len() >= limit {
                return Ok(ReadOutcome::Budget);
            }
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(read) => inbox.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // Closed without a close_notify: the same to us, every frame is checked.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(ReadOutcome::Closed);
                }
                Err(error) => return Err(error),
            }
        }
        match tls.read_tls(stream) {
            Ok(0) => return Ok(ReadOutcome::Closed),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                return Ok(ReadOutcome::Drained);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        if let Err(error) = tls.process_new_packets() {
            // Best effort: tell the other side why (rustls queued an alert).
            let _ = tls.write_tls(stream);
            return Err(io::Error::new(io::ErrorKind::InvalidData, TlsFailure(error)));
        }
    }
}

/// A TLS error as an I/O error's source, so that its message says "TLS".
#[derive(Debug)]
pub(crate) struct TlsFailure(pub(crate) rustls::Error);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsFailure {}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use raftkv_core::NodeId;

    use super::*;
    use crate::certs::{Existing, ca_path, init, node_paths};
    use crate::tls::{NodeTls, TlsFiles};

    /// Node 1 accepting (first) and node 2 dialing it, handshake done, on loopback.
    fn tls_pair(dir: &std::path::Path) -> (Transport, Transport) {
        init(dir, &[NodeId(1), NodeId(2)], &[], Existing::Refuse).unwrap();
        let node = |id| {
            let (cert, key) = node_paths(dir, NodeId(id));
            NodeTls::load(&TlsFiles { ca: ca_path(dir), cert, key }, NodeId(id)).unwrap()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dialed = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted = listener.accept().unwrap().0;
        let socket = |stream: std::net::TcpStream| {
            stream.set_nonblocking(true).unwrap();
            TcpStream::from_std(stream)
        };
        let mut server = Transport::tls(socket(accepted), node(1).accept().unwrap());
        let mut client = Transport::tls(socket(dialed), node(2).dial(NodeId(1)).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut inbox = Vec::new();
        while server.is_handshaking() || client.is_handshaking() {
            assert!(Instant::now() < deadline, "the handshake did not end");
            for side in [&mut client, &mut server] {
                side.send_records().unwrap();
                side.read_until(&mut inbox, CHUNK_BYTES, ReadUntil::WouldBlock).unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // The server's session tickets, written after the handshake.
        assert!(server.send_records().unwrap(), "a few records fit in an empty socket");
        (server, client)
    }

    #[test]
    fn records_rustls_holds_while_the_socket_is_full_are_pending_until_the_peer_reads() {
        let dir = std::env::temp_dir().join(format!("raftkv-transport-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut server, mut client) = tls_pair(&dir);
        assert!(!server.has_pending_records());
        let chunk = vec![7; 64 << 10];
        // The peer reads nothing: the kernel's buffers fill, then rustls holds the rest.
        while server.send_records().unwrap() {
            server.write(&chunk).unwrap();
        }
        assert!(server.has_pending_records(), "the socket refused records rustls holds");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut inbox = Vec::new();
        while !server.send_records().unwrap() {
            assert!(Instant::now() < deadline, "the records never left");
            client.read_until(&mut inbox, 1 << 20, ReadUntil::WouldBlock).unwrap();
            inbox.clear();
        }
        assert!(!server.has_pending_records(), "sent once the peer read");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A pair of sockets in the clear on loopback: the accepted end as a transport, and the
    /// dialing one.
    fn plain_pair() -> (Transport, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dialed = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let accepted = listener.accept().unwrap().0;
        accepted.set_nonblocking(true).unwrap();
        (Transport::plain(TcpStream::from_std(accepted)), dialed)
    }

    /// Reads with `read` until something arrived, for at most ten seconds.
    fn read_once_arrived(
        mut read: impl FnMut(&mut Vec<u8>) -> io::Result<ReadOutcome>,
    ) -> (ReadOutcome, Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut inbox = Vec::new();
        loop {
            let outcome = read(&mut inbox).unwrap();
            if !inbox.is_empty() || outcome == ReadOutcome::Closed {
                return (outcome, inbox);
            }
            assert!(Instant::now() < deadline, "nothing arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_short_read_counts_as_drained_when_asked_and_leaves_the_end_of_stream_to_the_next_read() {
        let (mut server, mut client) = plain_pair();
        client.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let (outcome, inbox) =
            read_once_arrived(|inbox| server.read_until(inbox, CHUNK_BYTES, ReadUntil::ShortRead));
        assert_eq!(inbox, b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(outcome, ReadOutcome::Drained, "stopped at the short read");
        let (outcome, rest) =
            read_once_arrived(|inbox| server.read_until(inbox, CHUNK_BYTES, ReadUntil::WouldBlock));
        assert_eq!((outcome, rest.len()), (ReadOutcome::Closed, 0), "only the end was left");
    }
}
