//! What opening a data directory and persisting found, for the logs.

use std::path::PathBuf;

/// What opening the directory found, besides the recovered state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The directory held no identity file: a new node.
    pub fresh: bool,
    /// A torn WAL tail was cut off: the file, the offset and why.
    pub repaired: Option<(PathBuf, u64, String)>,
}

/// What one persist did besides making its batch durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistReport {
    /// WAL segments removed because a snapshot covers them.
    pub segments_removed: usize,
}
