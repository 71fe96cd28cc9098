//! raftkv-storage: a node's durable state (its Raft log, term and vote, and latest snapshot)
//! in a data directory, written over a small [`FileSystem`] trait so that the same engine runs
//! on a real disk ([`RealFs`]) and in the simulator ([`sim_fs::SimFs`], which crashes like
//! Linux and injects faults).
//!
//! [`Storage::open`] reads back everything durable as the `Recovered` a node starts from, and
//! [`Storage::persist`] makes the node's `Persist` outputs durable, a batch at a time.
//!
//! # The data directory
//!
//! ```text
//! DIR/node         cluster name and node id, written at first start and checked after
//! DIR/hardstate    term and vote, replaced atomically
//! DIR/snapshot     the latest snapshot, replaced atomically
//! DIR/wal/*.wal    the write-ahead log segments
//! ```
//!
//! The three small files are `[magic: 8][CRC32C: u32][length: u64][postcard]`, replaced by
//! writing a temporary file, syncing it, renaming it over the old one and syncing the
//! directory. The WAL is described in the documentation of its segments and records.

mod directory;
mod error;
mod fs;
mod hard_state;
mod identity;
mod options;
mod real_fs;
mod recovery;
mod report;
pub mod sim_fs;
mod small_file;
mod snapshot;
mod storage;
mod wal;

pub use directory::create as create_dir_durably;
pub use error::StorageError;
pub use fs::FileSystem;
pub use options::{DEFAULT_SEGMENT_BYTES, DEFAULT_ZERO_FILL_BYTES, StorageOptions};
pub use real_fs::RealFs;
pub use report::{Cut, Dropped, OpenReport, PersistReport};
pub use storage::Storage;
