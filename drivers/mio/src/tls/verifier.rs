//! How a client verifies a node: the certificate must chain to the cluster's CA and name some
//! node (`node-N.raftkv`). A client dials addresses, not node ids, so it cannot know which
//! node to expect; once the node's `Welcome` says which one it is, the client checks that the
//! certificate names that id (see `ClerkPool`).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use crate::tls::identity::{named_nodes, node_server_name};

/// Accepts a certificate of the CA that names a node, whichever.
#[derive(Debug)]
pub(super) struct AnyNodeVerifier {
    /// Verifies the chain, the validity period and the name, once the name is known.
    inner: Arc<WebPkiServerVerifier>,
}

impl AnyNodeVerifier {
    pub(super) fn new(inner: Arc<WebPkiServerVerifier>) -> AnyNodeVerifier {
        AnyNodeVerifier { inner }
    }
}

impl ServerCertVerifier for AnyNodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(&node) = named_nodes(end_entity).first() else {
            return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
        };
        // The full check (chain to the CA, dates, key usage) against the name it claims.
        let name = node_server_name(node);
        self.inner.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
