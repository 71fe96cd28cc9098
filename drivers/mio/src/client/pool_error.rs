//! Why a pool of sessions could not be set up.

use core::fmt;
use std::io;

/// A pool's setup failure: its addresses, or the poll.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// The address list is empty.
    NoAddress,
    /// An address could not be resolved.
    Unresolvable {
        /// The address.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// An address resolved to nothing.
    ResolvesToNothing {
        /// The address.
        address: String,
    },
    /// The poll could not be created.
    CreatePoll(io::Error),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NoAddress => f.write_str("no cluster address given"),
            PoolError::Unresolvable { address, source } => {
                write!(f, "cannot resolve {address}: {source}")
            }
            PoolError::ResolvesToNothing { address } => {
                write!(f, "{address} resolves to no address")
            }
            PoolError::CreatePoll(error) => write!(f, "cannot create a poll: {error}"),
        }
    }
}

impl std::error::Error for PoolError {}
