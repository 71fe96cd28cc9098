//! The three PEM files of a TLS identity: the cluster's CA certificate, this process's
//! certificate and its private key.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::error::TlsError;

/// Where the CA certificate, the certificate and the key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The cluster's CA certificate (PEM).
    pub(crate) ca: PathBuf,
    /// This process's certificate, signed by the CA (PEM; may be followed by intermediates).
    pub(crate) cert: PathBuf,
    /// The certificate's private key (PEM, PKCS#8, SEC1 or PKCS#1).
    pub(crate) key: PathBuf,
}

impl TlsFiles {
    /// The files from three optional paths: all three, none (`Ok(None)`), or an error.
    pub(crate) fn from_parts(
        ca: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, TlsError> {
        match (ca, cert, key) {
            (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles { ca, cert, key })),
            (None, None, None) => Ok(None),
            _ => Err(TlsError::Incomplete),
        }
    }

    /// The CA certificate(s), as trust anchors.
    pub(crate) fn roots(&self) -> Result<RootCertStore, TlsError> {
        read_roots(&self.ca)
    }

    /// The certificate chain, end entity first.
    pub(crate) fn chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        read_certificates(&self.cert)
    }

    /// The private key.
    pub(crate) fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        read_private_key(&self.key)
    }
}

/// The CA certificate(s) of a PEM file, as trust anchors.
pub(crate) fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(path)? {
        roots.add(certificate).map_err(|source| TlsError::BadCa { path: path.into(), source })?;
    }
    Ok(roots)
}

/// The private key of a PEM file.
pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| TlsError::Pem {
        path: path.to_path_buf(),
        expected: "private key",
        detail: error.to_string(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

/// Every certificate of a PEM file; at least one.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let pem_error = |detail: String| TlsError::Pem {
        path: path.to_path_buf(),
        expected: "certificate",
        detail,
    };
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(error.to_string()))?;
    if certificates.is_empty() {
        return Err(pem_error("no CERTIFICATE section".to_string()));
    }
    Ok(certificates)
}
