//! The identity file: which node of which cluster a data directory belongs to, written at
//! first start and checked at every later one, so that a node cannot start by mistake on
//! another node's data.

use std::path::Path;

use raftkv_core::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, SmallFile};

const FILE: &str = "node";
const MAGIC: &[u8; 8] = b"RKVNODE1";

/// Whether `path` is a data directory's identity file: the one file whose damage cannot be
/// cut away and recovered from the other nodes (only an operator can tell whose data it is).
pub fn is_identity_file(path: &std::path::Path) -> bool {
    path.file_name().is_some_and(|name| name == FILE)
}

/// Whose directory this is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    cluster: String,
    node: NodeId,
}

/// Records whose directory `dir` is on first use; refuses another node's or cluster's, and a
/// damaged identity (only an operator can tell whose data it is). Returns whether the
/// directory was new.
pub(crate) fn check<F: FileSystem>(
    fs: &F,
    dir: &Path,
    cluster: &str,
    node: NodeId,
) -> Result<bool, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    let identity = Identity { cluster: cluster.to_string(), node };
    let found: Identity = match small_file::read(fs, dir, FILE, MAGIC)? {
        SmallFile::Missing => {
            small_file::replace(fs, dir, FILE, MAGIC, &identity)?;
            return Ok(true);
        }
        SmallFile::Damaged { offset, reason } => {
            return Err(StorageError::Corrupt { path: dir.join(FILE), offset, reason });
        }
        SmallFile::Intact(found) => found,
    };
    if found != identity {
        return Err(StorageError::Refused {
            reason: format!(
                "data directory {} belongs to node {} of cluster {:?}, not node {} of cluster {:?}",
                dir.display(),
                found.node,
                found.cluster,
                identity.node,
                identity.cluster
            ),
        });
    }
    Ok(false)
}
