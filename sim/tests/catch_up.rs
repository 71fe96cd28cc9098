//! The catch-up figure as a test: a follower that was down while 100,000 entries were
//! committed catches up through the leader's snapshot within a generous bound of simulated
//! time. `raftkv-sim catchup` prints the figure.

use raftkv_core::Duration;
use raftkv_sim::{CatchUpSettings, SnapshotOptions, catch_up};

#[test]
fn a_follower_100_000_entries_behind_catches_up_through_a_snapshot_within_a_second() {
    let mut snapshot = SnapshotOptions::replica_defaults();
    snapshot.threshold_bytes = 64 << 10;
    let settings = CatchUpSettings { seed: 1, nodes: 3, clients: 50, puts: 100_000, snapshot };
    let figure = catch_up(&settings).unwrap_or_else(|error| panic!("{error}"));
    assert!(figure.entries_behind() >= 100_000, "{figure:?}");
    assert_eq!(figure.snapshots_installed, 1, "{figure:?}");
    // About 30 ms when this was written: a heartbeat, the snapshot, the entries after it.
    assert!(figure.catch_up < Duration::from_millis(1_000), "{figure:?}");
    // The snapshot holds the 1,000 keys, not the 100,000 puts.
    assert!(figure.snapshot_bytes < 64 << 10, "{figure:?}");
}

/// Without snapshots the follower gets the whole log, in pipelined appends of up to 256
/// entries that the simulated network reorders. A follower that rejected every append
/// arriving past a gap sent its leader back to probing, one round trip an append: about 4,400
/// messages for these 10,000 entries. Holding such appends until the gap fills needs about
/// two messages per 256 entries.
#[test]
fn a_follower_10_000_entries_behind_catches_up_without_snapshots_in_few_messages() {
    let mut snapshot = SnapshotOptions::replica_defaults();
    snapshot.threshold_bytes = 64 << 20; // No simulated log reaches it: no snapshot.
    let settings = CatchUpSettings { seed: 1, nodes: 3, clients: 50, puts: 10_000, snapshot };
    let figure = catch_up(&settings).unwrap_or_else(|error| panic!("{error}"));
    assert!(figure.entries_behind() >= 10_000, "{figure:?}");
    assert_eq!(figure.snapshots_installed, 0, "{figure:?}");
    let appends = figure.entries_behind().div_ceil(256);
    assert!(figure.messages <= 3 * appends + 40, "{} messages: {figure:?}", figure.messages);
    // The leader keeps a few KiB of applied entries in memory: the rest come from its disk.
    assert!(figure.appends_from_disk + 2 >= appends, "{figure:?}");
}
