//! raftkv-storage: a node's durable state (its Raft log, term and vote, and latest snapshot)
//! in a data directory, written over a small [`FileSystem`] trait so that the same engine runs
//! on a real disk ([`RealFs`]) and in the simulator ([`sim_fs::SimFs`], which crashes like
//! Linux and injects faults).
//!
//! [`Storage::open`] reads back everything durable as the `Recovered` a node starts from, and
//! [`Storage::persist`] makes the node's `Persist` outputs durable, a batch at a time with one
//! `fdatasync` of the log (group commit). [`Storage::read_entries`] reads committed entries back
//! by index, for a node that keeps only recent ones in memory (`Output::SendEntries`), or that
//! recovered only the latest ones ([`StorageOptions::recovered_entry_bytes`]: the others are
//! described in `Recovered::on_disk`, and the node asks for them as it applies them,
//! `Output::LoadEntries`). The newest hard state of a batch is written first; a snapshot is
//! written once every log change before it is durable, and is followed by compaction.
//!
//! # The data directory
//!
//! ```text
//! DIR/node         cluster name and node id, written at first start and checked after
//! DIR/hardstate    term and vote, replaced atomically
//! DIR/snapshot     the latest snapshot, replaced atomically
//! DIR/snapshot.incoming  the snapshot being received from the leader, laid out as the
//!                  snapshot file, renamed into place once whole and checked
//! DIR/snapshot.incoming.sums  what of it is durable: a checksum per piece written
//! DIR/wal/*.wal    the write-ahead log segments, named by sequence number (20 digits)
//! DIR/wal/*.ready  the next segment, prepared ahead of need (zeros after its header)
//! ```
//!
//! (A driver may keep more there: the `raftkv` server holds a lock on `DIR/lock`.)
//!
//! The three small files are `[magic: 8][CRC32C: u32 LE][length: u64 LE][postcard value]`,
//! replaced by writing a temporary file (`NAME.tmp`), syncing it, renaming it over the old one
//! and syncing the directory; a leftover temporary file is removed at the next start.
//!
//! A WAL segment (format version 2) is a 20-byte header, `["RKVWAL"][version: u16 BE]
//! [sequence: u64 LE][CRC32C of those 16 bytes: u32 LE]`, then records, then the zeros the
//! writer prepared ahead of them. A record is `[CRC32C of the next 8 bytes: u32 LE][length: u32
//! LE][CRC32C of the payload: u32 LE][payload]`, the payload a postcard list of log changes
//! (truncate from an index, then append entries), all the changes of one batch. Replaying every
//! record in order rebuilds the log; entries a snapshot covers are skipped. Segments of another
//! format version are refused.
//!
//! # After a crash, and on damage
//!
//! A torn write at the end of the log (a crash during an append, never acknowledged) is cut
//! off, and reported in [`OpenReport::torn_tail`]. Damage to what was acknowledged is cut away
//! for good (the log from the first damaged record, a damaged hard state, a damaged snapshot
//! with the whole log), reported in [`OpenReport::damage`]; before anything is cut the hard
//! state says durably that the node is damaged (`HardState::damaged`), which keeps it out of
//! elections until it has caught up with a leader and clears the mark. A damaged identity
//! file is refused. How a torn write is told from damage, and the residual risk of that rule,
//! is described in the source of the WAL scanner (`wal/scan.rs`).

mod directory;
mod error;
mod fs;
mod hard_state;
mod identity;
mod options;
mod real_fs;
mod received_snapshot;
mod received_snapshot_reader;
mod recovery;
mod release;
mod report;
pub mod sim_fs;
mod small_file;
mod snapshot;
mod snapshot_reader;
mod snapshot_saver;
mod storage;
mod wal;

pub use directory::create as create_dir_durably;
pub use error::StorageError;
pub use fs::FileSystem;
pub use identity::is_identity_file;
pub use options::{DEFAULT_SEGMENT_BYTES, DEFAULT_ZERO_FILL_BYTES, StorageOptions};
pub use real_fs::RealFs;
pub use received_snapshot_reader::{ReceivedSnapshotReader, load_received_snapshot};
pub use report::{Cut, Dropped, OpenReport, PersistReport};
pub use snapshot::FILE as SNAPSHOT_FILE;
pub use snapshot_reader::SnapshotReader;
pub use snapshot_saver::{Saved, SnapshotSaver};
pub use storage::Storage;
pub use wal::{ObsoleteSegments, SegmentPreparer};
