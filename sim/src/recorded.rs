//! One operation of a run's history, as the client that issued it saw it.

use raftkv_core::Instant;
use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply};

/// One operation as a client saw it: a command `C` and its reply `R` (those of the key-value
/// store unless said otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded<C = KvCommand, R = KvReply> {
    /// The client that issued it.
    pub client: usize,
    /// What it asked.
    pub command: C,
    /// When it was called (virtual time).
    pub call: Instant,
    /// When it returned, and with what; `None` while open.
    pub ret: Option<(Instant, Result<R, ClerkError>)>,
}

impl<C, R> Recorded<C, R> {
    /// Whether the client has its answer (or knows it will never get one).
    pub fn is_finished(&self) -> bool {
        self.ret.is_some()
    }
}

/// Index of an operation in the history.
pub type OpId = usize;
