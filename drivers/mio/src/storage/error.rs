//! What can go wrong with a node's data directory.

use core::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A storage failure. Each names the file involved, so an operator knows where to look.
#[derive(Debug)]
pub(crate) enum StorageError {
    /// A system call failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file holds bytes that fail their checksum or do not decode, somewhere other than a
    /// torn tail: acknowledged data may be damaged, so the node refuses to start.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory belongs to another node or cluster, or is in use.
    Refused {
        /// Why.
        reason: String,
    },
}

impl StorageError {
    /// Wraps an I/O error with what was done to which file.
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
        let path = path.to_path_buf();
        move |source| StorageError::Io { action, path, source }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { action, path, source } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
            StorageError::Corrupt { path, offset, reason } => write!(
                f,
                "corrupt data in {} at offset {offset}: {reason}; refusing to start \
                 (restore the file from a replica or a backup, or remove this node's data and \
                 let it catch up from the others)",
                path.display()
            ),
            StorageError::Refused { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for StorageError {}
