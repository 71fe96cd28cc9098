//! How a node's storage is set up.

use raftkv_core::NodeId;

use crate::error::StorageError;

/// Default size at which a WAL segment is closed and the next one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Default distance the writer zero-fills a segment ahead of its records.
pub const DEFAULT_ZERO_FILL_BYTES: u64 = 1 << 20;

/// Whose directory it is and how the WAL is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    /// The cluster's name, recorded in the directory at first start and checked after.
    pub cluster: String,
    /// This node, recorded and checked likewise.
    pub node: NodeId,
    /// Size at which a WAL segment is closed and the next one started.
    pub segment_bytes: u64,
    /// How far ahead of its records the writer zero-fills a segment, in one write; 0 writes
    /// records at the end of the file instead (cheaper for small simulated segments, costlier
    /// to sync on a real disk). At most `segment_bytes` is used.
    pub zero_fill_bytes: u64,
    /// The node's data was lost or removed and it rejoins its cluster: if the directory is
    /// fresh, the node starts damaged (`HardState::damaged`), out of elections until it has
    /// caught up. Ignored for a directory that already holds the node's data.
    pub rejoin: bool,
    /// Whether opening the directory reads the snapshot's data into `Recovered` (the default,
    /// for small snapshots: tests, the simulator). Without, it checks the whole file but
    /// leaves the data on disk (`Snapshot::data` empty), for the caller to decode as it reads
    /// it with a [`SnapshotReader`](crate::SnapshotReader).
    pub read_snapshot_data: bool,
    /// The most bytes of log entries opening the directory reads into memory
    /// (`Recovered::entries`, the latest ones): the earlier entries after the snapshot stay on
    /// disk, known by their terms, sizes and memberships (`Recovered::on_disk`), and the node
    /// reads them back when it applies them (`Storage::read_entries`). `None` (the default):
    /// every entry is read into memory. Entries that a cut log left with terms going back stay
    /// in memory whatever they weigh.
    pub recovered_entry_bytes: Option<usize>,
}

impl StorageOptions {
    /// Options for node `node` of `cluster`, with the default WAL layout.
    pub fn new(cluster: impl Into<String>, node: NodeId) -> StorageOptions {
        StorageOptions {
            cluster: cluster.into(),
            node,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            zero_fill_bytes: DEFAULT_ZERO_FILL_BYTES,
            rejoin: false,
            read_snapshot_data: true,
            recovered_entry_bytes: None,
        }
    }

    /// The zero-fill distance in use, or why the options are unusable.
    pub(crate) fn checked_zero_fill_bytes(&self) -> Result<usize, StorageError> {
        if self.segment_bytes == 0 {
            return Err(StorageError::Refused {
                reason: "the WAL segment size must be positive".to_string(),
            });
        }
        let zero_fill_bytes = self.zero_fill_bytes.min(self.segment_bytes);
        // The zeros are written from one buffer.
        usize::try_from(zero_fill_bytes).map_err(|_| StorageError::Refused {
            reason: format!("zero-filling {zero_fill_bytes} bytes at once does not fit in memory"),
        })
    }
}
