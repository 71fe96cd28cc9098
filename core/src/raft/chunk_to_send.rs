//! A chunk of the node's snapshot to send to a follower, for a driver that keeps the snapshot
//! on its disk rather than in the node's memory: it reads the chunk from the snapshot file and
//! sends the message.

use core::fmt;

use crate::ids::{LogId, NodeId, Term};
use crate::raft::membership::Membership;
use crate::raft::message::{Body, Message};

/// An `InstallSnapshot` message whose chunk the driver reads from the snapshot it saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkToSend {
    /// The sender, this node.
    pub from: NodeId,
    /// The follower.
    pub to: NodeId,
    /// The sender's term.
    pub term: Term,
    /// The last entry the snapshot covers: a chunk of any other snapshot must not be sent.
    pub last: LogId,
    /// The membership in force at `last`.
    pub membership: Membership,
    /// The size of the snapshot's data, in bytes.
    pub total: u64,
    /// Where the chunk starts in the snapshot's data.
    pub offset: u64,
    /// How many bytes it holds.
    pub length: u64,
}

impl ChunkToSend {
    /// The message, with `chunk`, the `length` bytes of the snapshot's data at `offset`.
    pub fn into_message(self, chunk: Vec<u8>) -> Message {
        let ChunkToSend { from, to, term, last, membership, total, offset, .. } = self;
        Message {
            from,
            to,
            term,
            body: Body::InstallSnapshot { last, membership, total, offset, chunk },
        }
    }
}

impl fmt::Display for ChunkToSend {
    /// For example `1->3 InstallSnapshot t=2 last=40/2 offset=64 len=32 (from disk)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{} InstallSnapshot t={} last={} offset={} len={} (from disk)",
            self.from, self.to, self.term, self.last, self.offset, self.length
        )
    }
}
