//! The key-value store: the state machine raftkv replicates.

mod bucket;
mod command;
mod counter;
mod key;
mod pairs;
mod restore;
mod scan;
mod store;

pub use command::{KvCommand, KvReply, PutCondition, Scan, ScanPage};
pub use scan::SCAN_PAGE_BYTES;
pub use store::{BATCH_REPLY_BYTES, KvLimits, KvStore, MAX_BATCH_COMMANDS, MAX_VALUES_REPLY_BYTES};
