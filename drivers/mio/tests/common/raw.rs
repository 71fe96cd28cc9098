//! Speaking the wire protocol by hand, as an attacker (or a broken program) would: a `Hello`
//! as any peer or client, any frame, any length prefix, in the clear or through TLS with any
//! certificate.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use raftkv_core::NodeId;
use raftkv_core::kv::KvCommand;
use raftkv_core::protocol::ClientRequest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};

/// The protocol version the nodes speak.
pub(crate) const PROTOCOL_VERSION: u32 = 11;

/// The node's `Hello`, field for field.
#[derive(Serialize)]
pub(crate) struct Hello {
    magic: [u8; 6],
    version: u32,
    cluster: String,
    role: HelloRole,
}

#[derive(Serialize)]
pub(crate) enum HelloRole {
    Peer { from: NodeId, to: NodeId },
    Client,
}

/// A client's frame, field for field.
#[derive(Serialize)]
pub(crate) enum ClientFrame {
    Request { tag: u32, request: ClientRequest<KvCommand> },
    Status { tag: u32 },
}

/// The node's `Welcome`, field for field.
#[derive(Debug, Deserialize)]
pub(crate) enum Welcome {
    Accepted { node: NodeId, members: Vec<(NodeId, String)> },
    Refused { reason: String },
}

impl Hello {
    pub(crate) fn peer(from: u64, to: u64) -> Hello {
        Hello::new(HelloRole::Peer { from: NodeId(from), to: NodeId(to) })
    }

    pub(crate) fn client() -> Hello {
        Hello::new(HelloRole::Client)
    }

    fn new(role: HelloRole) -> Hello {
        Hello { magic: *b"raftkv", version: PROTOCOL_VERSION, cluster: "raftkv".into(), role }
    }
}

/// `value` as a frame: a 4-byte little-endian length, then postcard.
pub(crate) fn frame<T: Serialize>(value: &T) -> Vec<u8> {
    let body = postcard::to_allocvec(value).expect("encode");
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend(body);
    out
}

/// A client's status query as a frame.
pub(crate) fn status_query() -> Vec<u8> {
    frame(&ClientFrame::Status { tag: 0 })
}

/// Any byte stream to a node.
pub(crate) trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A plain TCP connection.
pub(crate) fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(super::PATIENCE)).unwrap();
    stream
}

/// A TLS connection to node `node` at `address` that trusts the CA in `ca` and presents the
/// certificate and key given.
pub(crate) fn connect_tls(
    address: &str,
    node: u64,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    #[allow(deprecated)] // ring, as the nodes use.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
        .unwrap();
    let name = ServerName::try_from(format!("node-{node}.raftkv")).unwrap();
    let tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(tls, connect(address))
}

/// Reads the next frame's body; `None` if the connection closed or failed first.
pub(crate) fn read_frame<S: Read + ?Sized>(stream: &mut S) -> Option<Vec<u8>> {
    let mut length = [0; 4];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0; u32::from_le_bytes(length) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// Sends a `Hello` and reads the answer; `None` if the connection closed or failed first.
pub(crate) fn hello(stream: &mut dyn Stream, hello: &Hello) -> Option<Welcome> {
    stream.write_all(&frame(hello)).ok()?;
    stream.flush().ok()?;
    postcard::from_bytes(&read_frame(stream)?).ok()
}

/// Whether the node closed the connection (reads end or fail) within the patience.
pub(crate) fn is_closed(stream: &mut dyn Stream) -> bool {
    let mut sink = [0; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                return !matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                );
            }
        }
    }
}

/// Sets how long a read may wait.
pub(crate) fn set_timeout(stream: &TcpStream, timeout: Duration) {
    stream.set_read_timeout(Some(timeout)).unwrap();
}
