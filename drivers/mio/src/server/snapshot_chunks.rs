//! The chunks of the node's snapshot that it sends to followers, read from the snapshot file
//! rather than held in memory. The file stays open while its snapshot is the one asked for; a
//! chunk of another snapshot than the file holds (a newer one replaced it, or the one asked
//! for is not on the disk yet) is dropped: the node sends it again, or the newer one, later.

use std::path::PathBuf;

use raftkv_core::raft::{ChunkToSend, Message};
use raftkv_storage::{RealFs, SnapshotReader, StorageError};
use tracing::{debug, warn};

/// Reads chunks from the snapshot file of a data directory.
#[derive(Debug)]
pub(crate) struct SnapshotChunks {
    dir: PathBuf,
    reader: Option<SnapshotReader<RealFs>>,
}

impl SnapshotChunks {
    pub(crate) fn new(dir: PathBuf) -> SnapshotChunks {
        SnapshotChunks { dir, reader: None }
    }

    /// The message carrying `chunk`, read from the snapshot file; `None` if the file does
    /// not hold the chunk's snapshot, or cannot be read (logged).
    pub(crate) fn message(&mut self, chunk: ChunkToSend) -> Option<Message> {
        if self.reader.as_ref().is_none_or(|reader| reader.last() != chunk.last) {
            self.reader = match SnapshotReader::open(RealFs, &self.dir) {
                Ok(reader) => reader,
                Err(error) => {
                    warn!(%error, "cannot open the snapshot to send a chunk of it");
                    None
                }
            };
        }
        let reader = self.reader.as_ref().filter(|reader| reader.last() == chunk.last);
        let Some(reader) = reader else {
            debug!(last = %chunk.last, "the snapshot file holds another snapshot: chunk dropped");
            return None;
        };
        match reader.read(chunk.offset, chunk.length) {
            Ok(Some(data)) => Some(chunk.into_message(data)),
            Ok(None) => {
                debug!(last = %chunk.last, "a newer snapshot replaced this one: chunk dropped");
                self.reader = None;
                None
            }
            Err(error) => {
                warn_unreadable(&error);
                self.reader = None;
                None
            }
        }
    }
}

fn warn_unreadable(error: &StorageError) {
    warn!(%error, "cannot read a chunk of the snapshot");
}
