//! The rustls configurations of a node (accepting, and dialing its peers) and of a client,
//! from the PEM files. TLS 1.3 only, with the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raftkv_core::NodeId;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use crate::tls::error::TlsError;
use crate::tls::files::{TlsFiles, read_certificates, read_private_key, read_roots};
use crate::tls::identity::{named_nodes, node_server_name};
use crate::tls::verifier::AnyNodeVerifier;

/// ring, which builds with a C compiler alone (aws-lc-rs, rustls' default, may need cmake).
/// rustls deprecates ring's provider for lacking post-quantum key exchange; the classical
/// X25519 and P-256 key exchanges it offers remain sound.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's TLS: what it presents and verifies when it accepts, and when it dials a peer.
#[derive(Clone, Debug)]
pub(crate) struct NodeTls {
    server: Arc<ServerConfig>,
    dialer: Arc<ClientConfig>,
}

impl NodeTls {
    /// Loads node `node`'s files; its certificate must name it.
    pub(crate) fn load(files: &TlsFiles, node: NodeId) -> Result<NodeTls, TlsError> {
        let roots = Arc::new(files.roots()?);
        let chain = files.chain()?;
        let named = named_nodes(&chain[0]);
        if !named.contains(&node) {
            return Err(TlsError::WrongNode { cert: files.cert.clone(), node, named });
        }
        let pair_error = |source| TlsError::CertificateAndKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        };
        // Every dialer must present a certificate of the CA: a client's or a node's.
        let server =
            server_config(&files.cert, &files.key, Arc::clone(&roots), ClientAuth::Required)?;
        let dialer = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(pair_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, files.private_key()?)
            .map_err(pair_error)?;
        Ok(NodeTls { server, dialer: Arc::new(dialer) })
    }

    /// The server side of a connection just accepted.
    pub(crate) fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(Arc::clone(&self.server))
    }

    /// The client side of a link to `peer`, which must present node `peer`'s certificate.
    pub(crate) fn dial(&self, peer: NodeId) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(Arc::clone(&self.dialer), node_server_name(peer))
    }
}

/// Whether a TLS listener asks the dialer for a certificate of the CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientAuth {
    /// A client without a certificate of the CA is refused.
    #[value(name = "yes")]
    Required,
    /// A client may present none; one it presents must be signed by the CA.
    #[value(name = "optional")]
    Optional,
    /// No certificate is asked for.
    #[value(name = "no")]
    Off,
}

/// A listener's configuration: the certificate `cert` with its `key`, and dialers verified
/// against `roots` as `auth` says.
fn server_config(
    cert: &Path,
    key: &Path,
    roots: Arc<RootCertStore>,
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let pair_error =
        |source| TlsError::CertificateAndKey { cert: cert.into(), key: key.into(), source };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(pair_error)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
    let builder = match auth {
        ClientAuth::Required => {
            builder.with_client_cert_verifier(verifier.build().map_err(TlsError::Verifier)?)
        }
        ClientAuth::Optional => builder.with_client_cert_verifier(
            verifier.allow_unauthenticated().build().map_err(TlsError::Verifier)?,
        ),
        ClientAuth::Off => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(read_certificates(cert)?, read_private_key(key)?)
        .map_err(pair_error)?;
    Ok(Arc::new(config))
}

/// The TLS of a node's Redis listener: the node's certificate or one of its own
/// (`--redis-tls-cert`), and Redis clients' certificates verified against the cluster's CA or
/// another (`--redis-tls-ca`) as `--redis-tls-auth-clients` says.
#[derive(Clone, Debug)]
pub(crate) struct RedisTls {
    server: Arc<ServerConfig>,
    auth: ClientAuth,
}

impl RedisTls {
    /// Presents the certificate `cert` with its `key`, and verifies clients' certificates
    /// against the CA certificates of `client_ca` as `auth` says (with none, only `auth` off
    /// can be served: there is nothing to verify against).
    pub(crate) fn load(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        auth: ClientAuth,
    ) -> Result<RedisTls, TlsError> {
        let roots = client_ca.map(read_roots).transpose()?.unwrap_or_else(RootCertStore::empty);
        Ok(RedisTls { server: server_config(cert, key, Arc::new(roots), auth)?, auth })
    }

    /// Whether clients must present a certificate.
    pub(crate) fn auth(&self) -> ClientAuth {
        self.auth
    }

    /// The server side of a Redis connection just accepted.
    pub(crate) fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        ServerConnection::new(Arc::clone(&self.server))
    }
}

/// A client's TLS: its certificate (signed by the cluster's CA), and the CA that the nodes'
/// certificates must chain to. Made with [`ClientTls::from_files`].
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    files: TlsFiles,
}

/// Two are equal when made from the same files.
impl PartialEq for ClientTls {
    fn eq(&self, other: &ClientTls) -> bool {
        self.files == other.files
    }
}

impl Eq for ClientTls {}

impl ClientTls {
    /// Loads the cluster's CA certificate, the client's certificate and its key (PEM files,
    /// as `raftkv certs init` writes them: `ca.crt`, `client.crt`, `client.key`).
    pub fn from_files(
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<ClientTls, TlsError> {
        ClientTls::load(&TlsFiles { ca: ca.into(), cert: cert.into(), key: key.into() })
    }

    /// Loads a client's files.
    pub(crate) fn load(files: &TlsFiles) -> Result<ClientTls, TlsError> {
        let roots: Arc<RootCertStore> = Arc::new(files.roots()?);
        let pair_error = |source| TlsError::CertificateAndKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        };
        let chain_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(TlsError::Verifier)?;
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(pair_error)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyNodeVerifier::new(chain_verifier)))
            .with_client_auth_cert(files.chain()?, files.private_key()?)
            .map_err(pair_error)?;
        Ok(ClientTls { config: Arc::new(config), files: files.clone() })
    }

    /// The client side of a connection to a node, whichever it turns out to be.
    pub(crate) fn dial(&self) -> Result<ClientConnection, rustls::Error> {
        // Any node's name: the verifier accepts every node's certificate of the CA.
        ClientConnection::new(Arc::clone(&self.config), node_server_name(NodeId(1)))
    }
}
