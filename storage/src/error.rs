//! What can go wrong with a node's data directory.

use core::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A storage failure. Each names the file involved, so an operator knows where to look.
#[derive(Debug)]
pub enum StorageError {
    /// A file-system operation failed. Whether a failed write or sync reached the disk is
    /// unknown, so the engine stops: every later persist fails with [`StorageError::Stopped`].
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file that cannot be cut away and recovered from the other nodes is damaged: the
    /// node refuses to start.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The directory belongs to another node or cluster, or holds files this version does
    /// not know, or the options are unusable.
    Refused {
        /// Why.
        reason: String,
    },
    /// A persist failed earlier; nothing more is written.
    Stopped,
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
                 (restore the file from a backup, or remove this node's data and start it \
                 with --rejoin to catch up from the others)",
                path.display()
            ),
            StorageError::Refused { reason } => f.write_str(reason),
            StorageError::Stopped => {
                f.write_str("storage stopped after an earlier failure; restart the node")
            }
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
