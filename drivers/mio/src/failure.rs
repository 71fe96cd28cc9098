//! How a command of the command line failed, which decides its exit status.

use core::fmt;

use crate::certs::CertsError;
use crate::client;
use crate::client::pool_error::PoolError;
use crate::server::ServeError;
use crate::tls::TlsError;

/// How a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A definite negative answer (no such key, no swap); already reported.
    No,
    /// The node could not start, or stopped on an error.
    Serve(ServeError),
    /// The cluster did not carry out an operation.
    Client(client::Error),
    /// The benchmark's sessions could not be set up.
    Pool(PoolError),
    /// TLS files that cannot be used: a usage error.
    Tls(TlsError),
    /// Certificates that could not be written.
    Certs(CertsError),
    /// The command line asks for something refused, with the reason: a usage error.
    Usage(String),
    /// Any other error, with its message: bad input, a local cluster that does not start...
    Error(String),
}

impl Failure {
    /// Whether the command line was at fault (exit status 2) rather than the run.
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            Failure::Tls(_)
                | Failure::Usage(_)
                | Failure::Certs(
                    CertsError::Exists(_) | CertsError::ZeroNode | CertsError::BadHost { .. }
                )
                | Failure::Serve(ServeError::NoMembership { .. } | ServeError::PeersChanged { .. })
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::No => f.write_str("a definite no"),
            Failure::Serve(error) => write!(f, "{error}"),
            Failure::Client(error) => write!(f, "{error}"),
            Failure::Pool(error) => write!(f, "{error}"),
            Failure::Tls(error) => write!(f, "{error}"),
            Failure::Certs(error) => write!(f, "{error}"),
            Failure::Usage(message) => f.write_str(message),
            Failure::Error(message) => f.write_str(message),
        }
    }
}

impl From<ServeError> for Failure {
    fn from(error: ServeError) -> Failure {
        Failure::Serve(error)
    }
}

impl From<client::Error> for Failure {
    fn from(error: client::Error) -> Failure {
        Failure::Client(error)
    }
}

impl From<PoolError> for Failure {
    fn from(error: PoolError) -> Failure {
        Failure::Pool(error)
    }
}

impl From<TlsError> for Failure {
    fn from(error: TlsError) -> Failure {
        Failure::Tls(error)
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Error(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_refused_by_certs_init_is_a_usage_error() {
        let bad_host =
            CertsError::BadHost { host: "NODE-1.RAFTKV".to_string(), why: "is a node name" };
        assert!(Failure::Certs(bad_host).is_usage(), "exit status 2");
    }
}
