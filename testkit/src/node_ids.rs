//! Node ids and where a node sits in a cluster's vectors: ids count from 1, positions from 0.

use raftkv_core::NodeId;

/// Node `n`.
pub fn id(n: u64) -> NodeId {
    NodeId(n)
}

/// The ids of a cluster of `size` nodes: 1 to `size`.
pub(crate) fn node_ids(size: u64) -> Vec<NodeId> {
    (1..=size).map(NodeId).collect()
}

/// Where node `node` sits in a cluster's vectors.
pub(crate) fn slot_index(node: NodeId) -> usize {
    let index = node.0.checked_sub(1).and_then(|index| usize::try_from(index).ok());
    index.unwrap_or_else(|| panic!("no node {node}: ids count from 1"))
}
