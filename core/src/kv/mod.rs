//! The key-value store: the state machine raftkv replicates.

mod command;
mod store;

pub use command::{KvCommand, KvReply};
pub use store::{KvLimits, KvStore};
