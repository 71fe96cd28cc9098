//! Ports for the nodes of a test, outside the kernel's ephemeral range: a port handed out by
//! binding port 0 may be taken as the source port of any outgoing connection (the nodes'
//! own dials among them) between the test's probe and the node's bind, or while a killed
//! node is down; a port below the range never is.

use std::net::TcpListener;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest port handed out: clear of the well-known services.
const LOWEST: u16 = 10_000;

/// `count` consecutive ports, none of them bound when probed a moment ago, none in the
/// ephemeral range, and none handed out before by this process. Each process starts at its
/// own place in the range (tests of several processes run at once).
pub(crate) fn free_port_block(count: u16) -> u16 {
    static CURSOR: AtomicU32 = AtomicU32::new(u32::MAX);
    let range = candidates();
    let span = u32::from(range.end - range.start);
    assert!(u32::from(count) < span, "no room for {count} ports in {range:?}");
    // Spread by a multiplicative hash: the processes of one run have close ids.
    let start = (u64::from(std::process::id()) * 2_654_435_761 % u64::from(span)) as u32;
    let _ = CURSOR.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..span {
        let offset = CURSOR.fetch_add(u32::from(count), Ordering::Relaxed) % span;
        let Some(base) = u16::try_from(offset).ok().map(|offset| range.start + offset) else {
            continue;
        };
        let fits = base.checked_add(count).is_some_and(|end| end <= range.end);
        if fits && (base..base + count).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return base;
        }
    }
    panic!("no {count} consecutive free ports in {range:?}");
}

/// The ports to hand out: below the ephemeral range, or above it if it starts too low.
fn candidates() -> Range<u16> {
    let (ephemeral_low, ephemeral_high) = ephemeral_range();
    if ephemeral_low >= LOWEST + 1_000 {
        LOWEST..ephemeral_low
    } else {
        ephemeral_high.saturating_add(1)..u16::MAX
    }
}

/// The kernel's ephemeral port range (Linux's default where it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    let bounds: Vec<u16> = text
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|bound| bound.parse().ok())
        .collect();
    match bounds[..] {
        [low, high] if low <= high => (low, high),
        _ => (32_768, 60_999),
    }
}
