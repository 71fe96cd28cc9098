//! The `--peers` argument of `raftkv serve` and `raftkv snapshot restore`: the nodes of a new
//! cluster as `ID=HOST:PORT`, comma-separated.

use raftkv_core::NodeId;

use crate::server::check_address;

/// Parses `1=host:port,2=host:port`: at least one node, ids positive and distinct, addresses
/// HOST:PORT and distinct (two nodes cannot listen at one address). The error says what is
/// wrong, for a usage error.
pub(crate) fn parse_peers(text: &str) -> Result<Vec<(NodeId, String)>, String> {
    let mut peers: Vec<(NodeId, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (id, address) =
            item.split_once('=').ok_or_else(|| format!("--peers: {item:?} is not ID=HOST:PORT"))?;
        let id: u64 = id.trim().parse().map_err(|_| format!("--peers: {id:?} is not a node id"))?;
        if id == 0 || peers.iter().any(|(peer, _)| peer.0 == id) {
            return Err(format!("--peers: node id {id} is zero or repeated"));
        }
        let address = address.trim();
        check_address(address).map_err(|problem| format!("--peers: {problem}"))?;
        if let Some((other, _)) = peers.iter().find(|(_, taken)| taken == address) {
            return Err(format!("--peers: nodes {other} and {id} have the same address {address}"));
        }
        peers.push((NodeId(id), address.to_string()));
    }
    if peers.is_empty() {
        return Err("--peers lists no node".to_string());
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_distinct_ids_at_distinct_addresses() {
        let peers = parse_peers("1=127.0.0.1:7001, 2=node-2:7001,").unwrap();
        let expected = [(NodeId(1), "127.0.0.1:7001"), (NodeId(2), "node-2:7001")];
        assert_eq!(peers, expected.map(|(id, address)| (id, address.to_string())));
        for (bad, why) in [
            ("1=a:1,2=a:1", "same address"),
            ("1=a:1,1=b:1", "repeated"),
            ("0=a:1", "zero"),
            ("1=a", "HOST:PORT"),
            ("a:1", "ID=HOST:PORT"),
            ("", "no node"),
        ] {
            let refused = parse_peers(bad).unwrap_err();
            assert!(refused.contains(why), "{bad}: {refused}");
        }
    }
}
