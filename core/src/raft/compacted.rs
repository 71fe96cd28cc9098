//! The entries a snapshot took out of the log, handed to the driver to free.

use core::fmt;
use std::collections::VecDeque;

use crate::raft::entry::Entry;

/// Log entries a saved snapshot covers, taken out of the log. There may be hundreds of
/// thousands of them (a whole snapshot threshold's worth), and freeing them takes time in
/// proportion: a driver may drop them on another thread than the node's
/// (`Replica::take_compacted`).
pub struct CompactedEntries(VecDeque<Entry>);

impl CompactedEntries {
    pub(crate) fn new(entries: VecDeque<Entry>) -> CompactedEntries {
        CompactedEntries(entries)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for CompactedEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactedEntries({} entries)", self.0.len())
    }
}
