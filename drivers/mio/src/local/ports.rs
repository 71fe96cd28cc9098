//! The ports `raftkv local` takes: `--base-port` onwards for the nodes, `--redis-base-port`
//! onwards for their Redis listeners. Checked before anything starts: ranges that do not fit
//! or overlap are usage errors, and ports already taken (a cluster already running, most
//! likely) are refused with the ports named, rather than leaving nodes that fail to listen.

use std::net::TcpListener;
use std::ops::RangeInclusive;

/// The ports of `nodes` nodes from `base`, and of their Redis listeners from `redis_base` (0:
/// none); an error says which flag is wrong.
pub(super) fn ranges(
    nodes: u16,
    base: u16,
    redis_base: u16,
) -> Result<Vec<RangeInclusive<u16>>, String> {
    let nodes_range = range("--base-port", base, nodes)?;
    if redis_base == 0 {
        return Ok(vec![nodes_range]);
    }
    let redis_range = range("--redis-base-port", redis_base, nodes)?;
    if redis_range.start() <= nodes_range.end() && nodes_range.start() <= redis_range.end() {
        return Err(format!(
            "--redis-base-port {redis_base} overlaps the nodes' ports {}",
            shown(&nodes_range)
        ));
    }
    Ok(vec![nodes_range, redis_range])
}

fn range(flag: &str, base: u16, nodes: u16) -> Result<RangeInclusive<u16>, String> {
    if base == 0 {
        return Err(format!("{flag} must be a port, 1 to 65535"));
    }
    let last = u32::from(base) + u32::from(nodes) - 1;
    let last = u16::try_from(last).map_err(|_| {
        format!("{flag} {base} leaves no room for {nodes} nodes: the last port would be {last}")
    })?;
    Ok(base..=last)
}

/// Fails, naming them, if any of the ports in `ranges` is taken on 127.0.0.1.
pub(super) fn ensure_free(ranges: &[RangeInclusive<u16>]) -> Result<(), String> {
    for range in ranges {
        let taken: Vec<String> = range
            .clone()
            .filter(|&port| TcpListener::bind(("127.0.0.1", port)).is_err())
            .map(|port| port.to_string())
            .collect();
        if !taken.is_empty() {
            return Err(format!(
                "ports {} in use ({} taken): is a cluster already running? Stop it, or choose \
                 other ports with --base-port and --redis-base-port",
                shown(range),
                taken.join(", ")
            ));
        }
    }
    Ok(())
}

fn shown(range: &RangeInclusive<u16>) -> String {
    if range.start() == range.end() {
        range.start().to_string()
    } else {
        format!("{}\u{2013}{}", range.start(), range.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_fit_below_65536_and_not_overlap() {
        assert_eq!(ranges(3, 7001, 7379).unwrap(), [7001..=7003, 7379..=7381]);
        assert_eq!(ranges(3, 65533, 0).unwrap(), [65533..=65535]);
        assert!(ranges(3, 65534, 0).unwrap_err().contains("no room for 3 nodes"));
        assert!(ranges(3, 0, 0).unwrap_err().contains("--base-port must be a port"));
        assert!(ranges(3, 7001, 65535).unwrap_err().contains("--redis-base-port"));
        assert!(ranges(3, 7001, 7003).unwrap_err().contains("overlaps the nodes' ports 7001"));
    }

    #[test]
    fn a_taken_port_is_named() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let refused = ensure_free(&[port..=port]).unwrap_err();
        assert!(refused.contains(&format!("ports {port} in use ({port} taken)")), "{refused}");
    }
}
