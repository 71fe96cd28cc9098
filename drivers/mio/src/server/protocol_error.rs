//! What an accepted connection did wrong; the node closes that connection and carries on.

use core::fmt;

use raftkv_core::NodeId;

use crate::frame::FrameError;
use crate::server::handshake::Refusal;
use crate::server::refusal_log::Reason;

/// Why an accepted connection is closed for misbehaving.
#[derive(Debug)]
pub(super) enum ProtocolError {
    /// A frame too large, or one that does not decode.
    Frame(FrameError),
    /// A peer sent a message that is not from itself to this node.
    Misaddressed {
        /// The peer, as its `Hello` named it.
        peer: NodeId,
        /// The message's sender.
        from: NodeId,
        /// The message's recipient.
        to: NodeId,
    },
    /// Its `Hello` was refused.
    Refused(Refusal),
    /// A peer announced a snapshot larger than this node accepts.
    SnapshotTooLarge {
        /// The peer.
        peer: NodeId,
        /// The size announced.
        total: u64,
        /// The cap (`--max-snapshot-bytes`).
        limit: u64,
    },
}

impl ProtocolError {
    /// Under which reason the refusal is counted.
    pub(super) fn reason(&self) -> Reason {
        match self {
            ProtocolError::Frame(_) => Reason::BadFrame,
            ProtocolError::Misaddressed { .. } => Reason::Misaddressed,
            ProtocolError::Refused(Refusal::NotThatPeer { .. }) => Reason::PeerIdentity,
            ProtocolError::Refused(Refusal::NotMember { .. }) => Reason::NotMember,
            ProtocolError::Refused(_) => Reason::HelloRefused,
            ProtocolError::SnapshotTooLarge { .. } => Reason::SnapshotTooLarge,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Frame(error) => write!(f, "{error}"),
            ProtocolError::Misaddressed { peer, from, to } => {
                write!(f, "peer {peer} sent a message from {from} to {to}")
            }
            ProtocolError::Refused(refusal) => write!(f, "refused: {refusal}"),
            ProtocolError::SnapshotTooLarge { peer, total, limit } => write!(
                f,
                "peer {peer} sent a snapshot of {total} bytes, over the limit of {limit} bytes \
                 (--max-snapshot-bytes)"
            ),
        }
    }
}
