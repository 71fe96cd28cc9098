//! Why TLS could not be set up from the files given.

use core::fmt;
use std::io;
use std::path::PathBuf;

use raftkv_core::NodeId;

/// A TLS file that is missing, unreadable, or does not fit with the others.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds no PEM item of the kind expected, or a damaged one.
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected: "certificate", "private key".
        expected: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// The CA file holds a certificate that cannot serve as a trust anchor.
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The certificate and the key do not belong together, or rustls refused them.
    CertificateAndKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The verifier of peers' certificates could not be built from the CA.
    Verifier(rustls::server::VerifierBuilderError),
    /// A node's certificate does not name that node.
    WrongNode {
        /// The certificate file.
        cert: PathBuf,
        /// The node that is to present it.
        node: NodeId,
        /// The nodes it names.
        named: Vec<NodeId>,
    },
    /// Some TLS flags were given, not all three.
    Incomplete,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            TlsError::Pem { path, expected, detail } => {
                write!(f, "{} holds no usable {expected}: {detail}", path.display())
            }
            TlsError::BadCa { path, source } => {
                write!(f, "{} is not a usable CA certificate: {source}", path.display())
            }
            TlsError::CertificateAndKey { cert, key, source } => write!(
                f,
                "the certificate {} and the key {} cannot be used together: {source}",
                cert.display(),
                key.display()
            ),
            TlsError::Verifier(error) => write!(f, "cannot verify peers with this CA: {error}"),
            TlsError::WrongNode { cert, node, named } => {
                let named: Vec<String> = named.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{} names node(s) [{}], not node {node}: give each node its own \
                     node-{node}.crt",
                    cert.display(),
                    named.join(", ")
                )
            }
            TlsError::Incomplete => {
                f.write_str("give all three of --tls-ca, --tls-cert and --tls-key, or none")
            }
        }
    }
}

impl std::error::Error for TlsError {}
