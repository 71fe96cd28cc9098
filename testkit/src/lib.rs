//! raftkv-testkit: what raftkv's scenario tests and its simulator share.
//!
//! - [`Endpoint`]: the ends of a link, nodes and clients; [`Packet`]: what travels between
//!   the nodes and clients of a key-value cluster, one transcript line each.
//! - [`Durable`]: what a node's disk holds once its persists are durable, applied as the
//!   contract of `Persist` says, and what a restart recovers.
//! - [`BY_HAND`]: where replies to requests a test sends by hand go.
//! - Transcripts: one line per message and output, for snapshot tests.
//! - [`Cluster`]: a hand-driven cluster, generic over the [`Machine`] under test: bare Raft
//!   nodes ([`RaftCluster`]) or key-value replicas with clerks ([`KvCluster`]).

mod checks;
mod client;
mod cluster;
mod durable;
mod endpoint;
mod machine;
mod node_ids;
mod packet;
mod raft_node;
mod replica;
mod reply_target;
mod transcript;

pub use client::{Client, ClientEffect, KvClerk, NoClient};
pub use cluster::{Cluster, Slot};
pub use durable::Durable;
pub use endpoint::{Endpoint, Routed};
pub use machine::{Effect, Machine};
pub use node_ids::id;
pub use packet::Packet;
pub use raft_node::{RaftCluster, is_election_message};
pub use replica::KvCluster;
pub use reply_target::{BY_HAND, client_of, reply_to};
