//! TLS 1.3 for every connection, with rustls driven sans-IO from the mio loops.
//!
//! One certificate authority per cluster. A node's certificate names its node id as the DNS
//! name `node-N.raftkv` ([`identity`]); nodes present it both when they accept and when they
//! dial. Clients present a certificate of the same CA, and accept any node's certificate of
//! that CA, then check that it names the node id the node's `Welcome` gives. A node's Redis
//! listener presents the node's certificate too, and asks Redis clients for one of the CA as
//! `--redis-tls-auth-clients` says ([`RedisTls`]).

pub(crate) mod configs;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod identity;
mod verifier;

pub use configs::ClientTls;
pub(crate) use configs::{ClientAuth, NodeTls, RedisTls};
pub use error::TlsError;
pub(crate) use files::TlsFiles;
