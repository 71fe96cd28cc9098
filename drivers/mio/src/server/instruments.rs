//! The histograms and counters the event loop, the disk and the snapshot threads record into
//! as they work, and `/metrics` reads at each scrape. Unlike the figures the event loop publishes, these are
//! live: each thread records what it measured the moment it is done.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds of the sync latency buckets, in seconds: 50 µs (a battery-backed cache) to 1 s
/// (a disk in trouble: elections time out long before).
const SYNC_SECONDS: [f64; 14] =
    [50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
/// Upper bounds of the snapshot save buckets, in seconds: a small state to a large one.
const SNAPSHOT_SECONDS: [f64; 12] =
    [1e-3, 5e-3, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Clones share the same instruments (each thread holds one).
#[derive(Clone, Debug)]
pub(crate) struct Instruments {
    sync_seconds: Histogram,
    batch_entries: Histogram,
    batch_bytes: Histogram,
    snapshot_seconds: Histogram,
    snapshots_saved: Counter,
    turn_seconds: Histogram,
}

impl Default for Instruments {
    fn default() -> Instruments {
        Instruments {
            sync_seconds: Histogram::new(SYNC_SECONDS),
            // 1 to 4096 entries: one client's write to a heavy load's group commit.
            batch_entries: Histogram::new((0..13).map(|power| f64::from(1u32 << power))),
            // 64 B to 64 MiB, by fours.
            batch_bytes: Histogram::new((0..11).map(|power| 64.0 * 4f64.powi(power))),
            snapshot_seconds: Histogram::new(SNAPSHOT_SECONDS),
            snapshots_saved: Counter::default(),
            turn_seconds: Histogram::new(SYNC_SECONDS),
        }
    }
}

impl Instruments {
    /// One group commit made durable: how long its write and sync took, and how many log
    /// entries of how many bytes it held (none: a term or vote alone).
    pub(crate) fn record_batch(&self, took: Duration, entries: usize, bytes: usize) {
        self.sync_seconds.observe(took.as_secs_f64());
        self.batch_entries.observe(entries as f64);
        self.batch_bytes.observe(bytes as f64);
    }

    /// One snapshot of the node's own state encoded and saved in `took`.
    pub(crate) fn record_snapshot(&self, took: Duration) {
        self.snapshots_saved.inc();
        self.snapshot_seconds.observe(took.as_secs_f64());
    }

    /// One turn of the event loop took `took`, from the end of its poll to the next poll.
    pub(crate) fn record_turn(&self, took: Duration) {
        self.turn_seconds.observe(took.as_secs_f64());
    }

    /// Adds them to `registry` (which shares them: it reads their values when encoded).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "wal_sync",
            "Time to write and sync one group commit of the WAL (its fdatasync)",
            Unit::Seconds,
            self.sync_seconds.clone(),
        );
        registry.register(
            "wal_batch_entries",
            "Log entries per group commit",
            self.batch_entries.clone(),
        );
        registry.register_with_unit(
            "wal_batch",
            "Bytes of log entries per group commit",
            Unit::Bytes,
            self.batch_bytes.clone(),
        );
        registry.register_with_unit(
            "snapshot_save",
            "Time to encode and save one snapshot of the node's own state",
            Unit::Seconds,
            self.snapshot_seconds.clone(),
        );
        registry.register(
            "snapshots_saved",
            "Snapshots of the node's own state saved",
            self.snapshots_saved.clone(),
        );
        registry.register_with_unit(
            "event_loop_turn",
            "Time one turn of the event loop took, its poll excluded: every request and \
             message waits for the turn under way",
            Unit::Seconds,
            self.turn_seconds.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn recordings_land_in_their_buckets() {
        let instruments = Instruments::default();
        instruments.record_batch(Duration::from_micros(700), 3, 300);
        instruments.clone().record_snapshot(Duration::from_millis(20));
        instruments.record_turn(Duration::from_millis(30));
        let mut registry = Registry::with_prefix("raftkv");
        instruments.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        for line in [
            "raftkv_wal_sync_seconds_count 1",
            "raftkv_wal_sync_seconds_bucket{le=\"0.0005\"} 0",
            "raftkv_wal_sync_seconds_bucket{le=\"0.001\"} 1",
            "raftkv_wal_batch_entries_bucket{le=\"2.0\"} 0",
            "raftkv_wal_batch_entries_bucket{le=\"4.0\"} 1",
            "raftkv_wal_batch_bytes_bucket{le=\"256.0\"} 0",
            "raftkv_wal_batch_bytes_bucket{le=\"1024.0\"} 1",
            "raftkv_snapshot_save_seconds_count 1",
            "raftkv_snapshots_saved_total 1",
            "raftkv_event_loop_turn_seconds_bucket{le=\"0.025\"} 0",
            "raftkv_event_loop_turn_seconds_bucket{le=\"0.05\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }
}
