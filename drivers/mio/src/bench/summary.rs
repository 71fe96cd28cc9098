//! The benchmark's summary: throughput and latency percentiles, what the spawned nodes did, and
//! the floor, as one line of text and, with `--json`, one JSON object.

use std::time::Duration;

use super::BenchArgs;
use super::floor::FloorReadings;
use super::nodes::NodeReport;
use super::rank::nearest_rank;

/// What the spawned nodes did during the measured run.
pub(crate) struct ClusterReport {
    /// Times a node became leader during the measured run.
    pub(crate) leader_changes: u64,
    /// Each node's snapshots and memory.
    pub(crate) nodes: Vec<NodeReport>,
}

impl ClusterReport {
    /// The largest of the nodes' peak resident memory over their snapshot's size.
    fn largest_peak_rss_over_snapshot(&self) -> Option<f64> {
        self.nodes.iter().filter_map(NodeReport::peak_rss_over_snapshot).reduce(f64::max)
    }
}

/// Throughput and latency of the measured run.
pub(crate) struct Summary {
    workload: String,
    clients: usize,
    value_size: usize,
    ops: u64,
    elapsed: Duration,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

const MIB: f64 = (1u64 << 20) as f64;

impl Summary {
    /// Sorts `latencies_ns` and summarizes them.
    pub(crate) fn new(
        args: &BenchArgs,
        latencies_ns: &mut [u64],
        elapsed: Duration,
        errors: u64,
    ) -> Summary {
        latencies_ns.sort_unstable();
        Summary {
            workload: format!("{:?}", args.workload).to_lowercase(),
            clients: args.clients,
            value_size: args.value_size,
            ops: latencies_ns.len() as u64,
            elapsed,
            errors,
            p50_ms: percentile_ms(latencies_ns, 500),
            p99_ms: percentile_ms(latencies_ns, 990),
            p999_ms: percentile_ms(latencies_ns, 999),
            max_ms: latencies_ns.last().map_or(0.0, |&ns| ns as f64 / 1e6),
        }
    }

    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Prints the summary lines, and the JSON object last if asked.
    pub(crate) fn print(
        &self,
        json: bool,
        floor: Option<&FloorReadings>,
        cluster: Option<&ClusterReport>,
    ) {
        println!(
            "{}: {} ops by {} clients in {:.2} s: {:.0} ops/s, latency p50 {:.3} ms, \
             p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms, errors {}",
            self.workload,
            self.ops,
            self.clients,
            self.elapsed.as_secs_f64(),
            self.ops_per_sec(),
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.errors
        );
        if let Some(cluster) = cluster {
            println!("leader changes during the run: {}", cluster.leader_changes);
            for node in &cluster.nodes {
                let against_snapshot =
                    node.peak_rss_over_snapshot().map_or(String::new(), |ratio| {
                        format!(
                            ", {ratio:.2}x its snapshot of {:.1} MiB",
                            node.snapshot_bytes as f64 / MIB
                        )
                    });
                println!(
                    "  node {}: snapshots saved {}, RSS {:.1} MiB (peak {:.1} MiB{against_snapshot})",
                    node.id,
                    node.snapshots,
                    node.rss_bytes as f64 / MIB,
                    node.peak_rss_bytes as f64 / MIB
                );
            }
        }
        if let Some(readings) = floor {
            let floor = readings.kept();
            println!(
                "floor {:.3} ms (fdatasync p50 {:.3} ms + 2 x loopback round trip p50 {:.3} ms; \
                 the lower of {:.3} ms before the run and {:.3} ms after): p50 / floor = {:.2}",
                ms(floor.total()),
                ms(floor.fdatasync_p50),
                ms(floor.round_trip_p50),
                ms(readings.before.total()),
                ms(readings.after.total()),
                self.p50_ms / ms(floor.total()).max(1e-9)
            );
            if let Some(line) = cluster_floor_line(readings, self.p50_ms) {
                println!("{line}");
            }
            println!(
                "disk tail: fdatasync p99 {:.3} ms, p99 / p50 = {:.2} (this run's p99 / p50 = {:.2})",
                ms(floor.fdatasync_p99),
                ms(floor.fdatasync_p99) / ms(floor.fdatasync_p50).max(1e-9),
                self.p99_ms / self.p50_ms.max(1e-9)
            );
        }
        if json {
            println!("{}", self.json(floor, cluster));
        }
    }

    fn json(
        &self,
        floor: Option<&FloorReadings>,
        cluster: Option<&ClusterReport>,
    ) -> serde_json::Value {
        let mut summary = serde_json::json!({
            "workload": self.workload,
            "clients": self.clients,
            "value_size": self.value_size,
            "ops": self.ops,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ops_per_sec": self.ops_per_sec(),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "errors": self.errors,
        });
        if let Some(cluster) = cluster {
            let nodes: Vec<_> = cluster
                .nodes
                .iter()
                .map(|node| {
                    serde_json::json!({
                        "id": node.id,
                        "snapshots": node.snapshots,
                        "rss_bytes": node.rss_bytes,
                        "peak_rss_bytes": node.peak_rss_bytes,
                        "snapshot_bytes": node.snapshot_bytes,
                        "peak_rss_over_snapshot": node.peak_rss_over_snapshot(),
                    })
                })
                .collect();
            summary["leader_changes"] = cluster.leader_changes.into();
            summary["nodes"] = nodes.into();
            summary["peak_rss_over_snapshot"] = cluster.largest_peak_rss_over_snapshot().into();
        }
        if let Some(readings) = floor {
            let floor = readings.kept();
            summary["floor_ms"] = ms(floor.total()).into();
            summary["floor_before_ms"] = ms(readings.before.total()).into();
            summary["floor_after_ms"] = ms(readings.after.total()).into();
            summary["fdatasync_p50_ms"] = ms(floor.fdatasync_p50).into();
            summary["fdatasync_p99_ms"] = ms(floor.fdatasync_p99).into();
            summary["round_trip_p50_ms"] = ms(floor.round_trip_p50).into();
            summary["p50_over_floor"] = (self.p50_ms / ms(floor.total()).max(1e-9)).into();
            let cluster = readings.kept_cluster();
            if let (Some(total), Some(shared)) = (cluster.cluster_total(), cluster.shared_disk) {
                summary["cluster_floor_ms"] = ms(total).into();
                summary["cluster_floor_nodes"] = shared.nodes.into();
                summary["majority_syncs_at_once_p50_ms"] = ms(shared.majority_at_once_p50).into();
                summary["all_syncs_at_once_p50_ms"] = ms(shared.all_at_once_p50).into();
                summary["p50_over_cluster_floor"] = (self.p50_ms / ms(total).max(1e-9)).into();
                summary["bare_put_p50_ms"] = ms(shared.bare_put_p50).into();
                let over_bare_put = self.p50_ms / ms(shared.bare_put_p50).max(1e-9);
                summary["p50_over_bare_put"] = over_bare_put.into();
            }
        }
        summary
    }
}

/// The cluster floor's line, when the nodes share this disk.
fn cluster_floor_line(readings: &FloorReadings, p50_ms: f64) -> Option<String> {
    let floor = readings.kept_cluster();
    let (total, shared) = (floor.cluster_total()?, floor.shared_disk?);
    let majority = shared.nodes / 2 + 1;
    Some(format!(
        "cluster floor on this one disk {:.3} ms ({majority} of {} nodes' 4 KiB fdatasyncs at once \
         p50 {:.3} ms + 2 x round trip; all {} at once until {majority} are done: p50 {:.3} ms; \
         the lower of {:.3} ms before and {:.3} ms after): p50 / cluster floor = {:.2}; \
         a bare put (this path with none of raftkv's code) p50 {:.3} ms: p50 / bare put = {:.2}",
        ms(total),
        shared.nodes,
        ms(shared.majority_at_once_p50),
        shared.nodes,
        ms(shared.all_at_once_p50),
        readings.before.cluster_total().map_or(0.0, ms),
        readings.after.cluster_total().map_or(0.0, ms),
        p50_ms / ms(total).max(1e-9),
        ms(shared.bare_put_p50),
        p50_ms / ms(shared.bare_put_p50).max(1e-9)
    ))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The latency at `per_mille` thousandths of the sorted `latencies_ns`, in milliseconds.
fn percentile_ms(latencies_ns: &[u64], per_mille: u64) -> f64 {
    nearest_rank(latencies_ns, per_mille).map_or(0.0, |ns| ns as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_read_in_milliseconds() {
        let latencies: Vec<u64> = (1..=1000).map(|ms| ms * 1_000_000).collect();
        assert_eq!(percentile_ms(&latencies, 500), 500.0);
        assert_eq!(percentile_ms(&latencies, 999), 999.0);
        assert_eq!(percentile_ms(&[], 500), 0.0);
        assert_eq!(percentile_ms(&[3_000_000], 990), 3.0);
    }
}
