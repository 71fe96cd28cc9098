//! The one place where node ids meet positions: the simulator keeps its nodes in vectors,
//! at positions from 0, and Raft knows them by ids from 1.

use raftkv_core::NodeId;

/// The id of the node at position `index`.
pub(crate) fn node_id(index: usize) -> NodeId {
    NodeId(index as u64 + 1)
}

/// The position of node `id`; `None` for an id no node can have (0).
pub(crate) fn node_index(id: NodeId) -> Option<usize> {
    id.0.checked_sub(1).and_then(|index| usize::try_from(index).ok())
}

/// The ids of `count` nodes, in position order.
pub(crate) fn all(count: usize) -> impl Iterator<Item = NodeId> {
    (0..count).map(node_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_positions_convert_both_ways() {
        for index in 0..10 {
            assert_eq!(node_index(node_id(index)), Some(index));
        }
        assert_eq!(node_index(NodeId(0)), None);
        assert_eq!(all(3).collect::<Vec<_>>(), [NodeId(1), NodeId(2), NodeId(3)]);
    }
}
