//! The ends of a link: nodes and clients, and what travels between two of them.

use core::fmt;

use raftkv_core::NodeId;
use raftkv_core::raft::Message;

/// One end of a link: a node or a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A node (a Raft node or a replica).
    Node(NodeId),
    /// A client, by index.
    Client(usize),
}

impl From<NodeId> for Endpoint {
    fn from(node: NodeId) -> Endpoint {
        Endpoint::Node(node)
    }
}

impl fmt::Display for Endpoint {
    /// `n1` for node 1, `c0` for client 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(id) => write!(f, "n{id}"),
            Endpoint::Client(index) => write!(f, "c{index}"),
        }
    }
}

/// Something that travels from one end to another.
pub trait Routed {
    /// Where it comes from.
    fn source(&self) -> Endpoint;
    /// Where it goes.
    fn destination(&self) -> Endpoint;
}

impl Routed for Message {
    fn source(&self) -> Endpoint {
        Endpoint::Node(self.from)
    }

    fn destination(&self) -> Endpoint {
        Endpoint::Node(self.to)
    }
}
