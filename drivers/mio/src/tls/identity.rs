//! How a certificate names a node: the DNS name `node-N.raftkv` in its subject alternative
//! names. A peer's `Hello` claims an id; the node believes it only if the certificate that
//! the TLS handshake verified names that id.

use raftkv_core::NodeId;
use rustls::pki_types::{CertificateDer, ServerName};

/// The domain under which nodes are named.
const DOMAIN: &str = "raftkv";

/// The DNS name of node `id` in certificates.
pub(crate) fn node_name(id: NodeId) -> String {
    format!("node-{}.{DOMAIN}", id.0)
}

/// Node `id`'s name, as the server name a dialer expects to find in the certificate.
pub(crate) fn node_server_name(id: NodeId) -> ServerName<'static> {
    ServerName::try_from(node_name(id)).expect("node-N.raftkv is a valid DNS name")
}

/// The node id a DNS name names, if it is a node's name.
pub(crate) fn parse_node_name(name: &str) -> Option<NodeId> {
    let id = name.strip_prefix("node-")?.strip_suffix(DOMAIN)?.strip_suffix('.')?;
    // Digits only: no sign, no blanks, no leading zero that would give one id two names.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.starts_with('0') {
        return None;
    }
    id.parse().ok().map(NodeId)
}

/// The nodes a certificate names (none if it is not a node's, or does not parse).
pub(crate) fn named_nodes(certificate: &CertificateDer<'_>) -> Vec<NodeId> {
    match webpki::EndEntityCert::try_from(certificate) {
        Ok(parsed) => parsed.valid_dns_names().filter_map(parse_node_name).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip_and_nothing_else_parses() {
        assert_eq!(node_name(NodeId(3)), "node-3.raftkv");
        assert_eq!(parse_node_name(&node_name(NodeId(42))), Some(NodeId(42)));
        for other in
            ["node-.raftkv", "node-03.raftkv", "node-3.other", "node-3raftkv", "xnode-3.raftkv"]
        {
            assert_eq!(parse_node_name(other), None, "{other}");
        }
        assert_eq!(parse_node_name("node-+3.raftkv"), None);
        assert_eq!(parse_node_name("node-99999999999999999999.raftkv"), None);
    }
}
