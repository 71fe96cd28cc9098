//! What an accepted connection did wrong; the node closes that connection and carries on.

use core::fmt;

use raftkv_core::NodeId;

use crate::frame::FrameError;
use crate::server::handshake::Refusal;

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
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Frame(error) => write!(f, "{error}"),
            ProtocolError::Misaddressed { peer, from, to } => {
                write!(f, "peer {peer} sent a message from {from} to {to}")
            }
            ProtocolError::Refused(refusal) => write!(f, "refused: {refusal}"),
        }
    }
}
