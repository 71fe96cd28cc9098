//! The ports `raftkv local` takes: `--base-port` onwards for the nodes, and as many from
//! `--redis-base-port` and `--metrics-base-port` for their Redis and HTTP listeners. Checked before anything starts: ranges that do not fit
//! or overlap are usage errors, and ports already taken (a cluster already running, most
//! likely) are refused with the ports named, rather than leaving nodes that fail to listen.

use std::net::TcpListener;
use std::ops::RangeInclusive;

/// The ports of `nodes` nodes for each listener, `(flag, base port)`, the first the nodes'
/// own, the others skipped when their base port is 0; an error says which flag is wrong.
pub(super) fn ranges(
    nodes: u16,
    listeners: &[(&str, u16)],
) -> Result<Vec<RangeInclusive<u16>>, String> {
    let mut ranges: Vec<(&str, RangeInclusive<u16>)> = Vec::new();
    for (position, &(flag, base)) in listeners.iter().enumerate() {
        if base == 0 && position > 0 {
            continue;
        }
        let range = range(flag, base, nodes)?;
        let overlapped = ranges
            .iter()
            .find(|(_, other)| range.start() <= other.end() && other.start() <= range.end());
        if let Some((other_flag, other)) = overlapped {
            return Err(format!(
                "{flag} {base} overlaps the ports of {other_flag}, {}",
                shown(other)
            ));
        }
        ranges.push((flag, range));
    }
    Ok(ranges.into_iter().map(|(_, range)| range).collect())
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
        let flags = |base, redis, metrics| {
            [("--base-port", base), ("--redis-base-port", redis), ("--metrics-base-port", metrics)]
        };
        assert_eq!(ranges(3, &flags(7001, 7379, 0)).unwrap(), [7001..=7003, 7379..=7381]);
        assert_eq!(ranges(3, &flags(65533, 0, 0)).unwrap(), [65533..=65535]);
        assert!(ranges(3, &flags(65534, 0, 0)).unwrap_err().contains("no room for 3 nodes"));
        assert!(ranges(3, &flags(0, 0, 0)).unwrap_err().contains("--base-port must be a port"));
        assert!(ranges(3, &flags(7001, 65535, 0)).unwrap_err().contains("--redis-base-port"));
        let overlap = ranges(3, &flags(7001, 7003, 0)).unwrap_err();
        assert!(overlap.contains("overlaps the ports of --base-port, 7001"), "{overlap}");
        let overlap = ranges(3, &flags(7001, 8001, 8002)).unwrap_err();
        assert!(overlap.contains("--metrics-base-port 8002 overlaps"), "{overlap}");
    }

    #[test]
    fn a_taken_port_is_named() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let refused = ensure_free(&[port..=port]).unwrap_err();
        assert!(refused.contains(&format!("ports {port} in use ({port} taken)")), "{refused}");
    }
}
