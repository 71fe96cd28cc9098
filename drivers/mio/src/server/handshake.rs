//! The `Hello` that opens every accepted connection: whether this node talks to whoever dialed.

use core::fmt;

use raftkv_core::NodeId;
use rustls::pki_types::CertificateDer;

use crate::server::directory::Directory;
use crate::server::options::ServeOptions;
use crate::tls::identity::named_nodes;
use crate::wire::{Hello, HelloRole, MAGIC, PROTOCOL_VERSION};

/// Why a `Hello` is refused. Its text goes back to the dialer in `Welcome::Refused`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The first bytes are not raftkv's.
    NotRaftkv,
    /// The dialer speaks another version of the protocol.
    UnsupportedVersion {
        /// The dialer's version.
        version: u32,
    },
    /// The dialer belongs to another cluster.
    WrongCluster {
        /// This node's cluster.
        ours: String,
        /// The dialer's.
        theirs: String,
    },
    /// A peer meant to dial another node.
    WrongNode {
        /// This node.
        this: NodeId,
        /// The node the peer meant to dial.
        dialed: NodeId,
    },
    /// A peer that is not a member of this cluster.
    NotMember {
        /// The peer.
        node: NodeId,
    },
    /// A peer whose certificate does not name the node it claims to be.
    NotThatPeer {
        /// The node it claims to be.
        claimed: NodeId,
        /// The nodes its certificate names.
        named: Vec<NodeId>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotRaftkv => f.write_str("not a raftkv connection"),
            Refusal::UnsupportedVersion { version } => write!(
                f,
                "protocol version {version} is not supported (this node speaks {PROTOCOL_VERSION})"
            ),
            Refusal::WrongCluster { ours, theirs } => {
                write!(f, "wrong cluster: this node belongs to {ours:?}, not {theirs:?}")
            }
            Refusal::WrongNode { this, dialed } => {
                write!(f, "this is node {this}, not node {dialed} (check --peers)")
            }
            Refusal::NotMember { node } => write!(f, "node {node} is not a member of this cluster"),
            Refusal::NotThatPeer { claimed, named } => {
                let named: Vec<String> = named.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "claims to be node {claimed}, but its certificate names node(s) [{}]",
                    named.join(", ")
                )
            }
        }
    }
}

/// Whether the node set up with `options`, which reaches the peers of `directory`, accepts
/// `hello`.
pub(super) fn check(
    hello: &Hello,
    options: &ServeOptions,
    directory: &Directory,
) -> Result<(), Refusal> {
    if hello.magic != MAGIC {
        return Err(Refusal::NotRaftkv);
    }
    if hello.version != PROTOCOL_VERSION {
        return Err(Refusal::UnsupportedVersion { version: hello.version });
    }
    if hello.cluster != options.cluster {
        let (ours, theirs) = (options.cluster.clone(), hello.cluster.clone());
        return Err(Refusal::WrongCluster { ours, theirs });
    }
    match hello.role {
        HelloRole::Peer { to, .. } if to != options.id => {
            Err(Refusal::WrongNode { this: options.id, dialed: to })
        }
        HelloRole::Peer { from, .. } if from == options.id || !directory.accepts_peer(from) => {
            Err(Refusal::NotMember { node: from })
        }
        HelloRole::Peer { .. } | HelloRole::Client => Ok(()),
    }
}

/// Whether the certificate the TLS handshake verified names the peer a `Hello` claims (in the
/// clear, `tls` is false and there is nothing to check). Clients may present any certificate
/// of the cluster's CA.
pub(super) fn check_identity(
    hello: &Hello,
    tls: bool,
    certificates: Option<&[CertificateDer<'static>]>,
) -> Result<(), Refusal> {
    let HelloRole::Peer { from, .. } = &hello.role else {
        return Ok(());
    };
    if !tls {
        return Ok(());
    }
    let named = certificates.and_then(<[_]>::first).map(named_nodes).unwrap_or_default();
    if named.contains(from) {
        return Ok(());
    }
    Err(Refusal::NotThatPeer { claimed: *from, named })
}
