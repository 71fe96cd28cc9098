//! A swarm: every seed with its own drawn shape, fault classes and rates. Longer sweeps are
//! `raftkv-sim swarm --seeds A..B`.

use raftkv_sim::{Options, Shape, TraceOutput};

#[test]
fn a_swarm_of_250_seeds_passes() {
    let mut faults_seen = [0u32; 3];
    let mut snapshot_crashes_seen = [0u32; 3];
    for seed in 0..250 {
        let options = Options::draw(seed, Shape::draw(seed));
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        report.assert_passed();
        let stats = &report.stats;
        faults_seen[0] += u32::from(stats.crashes > 0);
        faults_seen[1] += u32::from(stats.partitions > 0);
        faults_seen[2] += u32::from(stats.pauses > 0);
        snapshot_crashes_seen[0] += u32::from(stats.crashes_snapshot_persist > 0);
        snapshot_crashes_seen[1] += u32::from(stats.crashes_snapshot_send > 0);
        snapshot_crashes_seen[2] += u32::from(stats.crashes_snapshot_receive > 0);
    }
    // Swarm testing: each class strikes in some runs and not in others.
    for (class, runs) in ["crashes", "partitions", "pauses"].iter().zip(faults_seen) {
        assert!((50..=200).contains(&runs), "{class} in {runs} of 250 runs");
    }
    // Crashes land in the middle of snapshots being written, sent and received (38, 31 and
    // 10 runs when this was written).
    let moments = ["writing a snapshot", "sending a snapshot", "holding part of a snapshot"];
    for (moment, runs) in moments.iter().zip(snapshot_crashes_seen) {
        assert!(runs >= 5, "a node crashed while {moment} in {runs} of 250 runs");
    }
}

#[test]
fn a_swarm_of_150_seeds_with_compaction_after_every_batch_passes() {
    for seed in 0..150 {
        let mut options = Options::draw(seed, Shape::draw(seed));
        // A threshold below one entry: the replicas snapshot after every batch they apply.
        options.snapshot.threshold_bytes = 1 + seed as usize % 20;
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        report.assert_passed();
    }
}

/// With `--multi-key`, the clients also read, write and delete several keys at once, scan,
/// count, increment and put-if, and the checker judges those too: every run linearizable
/// (not merely "unknown"), with each of those operations in some history.
#[test]
fn a_swarm_of_60_seeds_with_operations_on_several_keys_passes() {
    let mut kinds_seen = std::collections::BTreeSet::new();
    for seed in 0..60 {
        let options = Options::draw(seed, Shape::draw(seed)).with_multi_key_ops();
        assert!(options.reproduce_command().contains(" --multi-key"));
        let report = run_linearizable(seed, options);
        for operation in &report.history {
            let line = serde_json::to_value(operation).expect("serializes");
            kinds_seen.insert(line["kind"].as_str().expect("a kind").to_owned());
        }
    }
    for kind in ["get_many", "exists", "put_many", "delete_many", "count", "scan", "increment"] {
        assert!(kinds_seen.contains(kind), "no {kind} in 60 runs: {kinds_seen:?}");
    }
    assert!(kinds_seen.contains("put_if"), "{kinds_seen:?}");
}

/// With `--batches` (and `--multi-key`), the clients also send pipelines of commands run in
/// order at one point, and the checker judges each as one operation: every run linearizable,
/// batches in the histories, some of them writing and some only reading.
#[test]
fn a_swarm_of_40_seeds_with_batches_passes() {
    let (mut batches, mut reading_batches) = (0, 0);
    for seed in 0..40 {
        let mut options = Options::draw(seed, Shape::draw(seed)).with_batches();
        if seed % 2 == 1 {
            options = options.with_multi_key_ops();
        }
        assert!(options.reproduce_command().contains(" --batches"));
        let report = run_linearizable(seed, options);
        for operation in &report.history {
            if let raftkv_checker::Command::Batch { steps } = &operation.command {
                batches += 1;
                let reads_only = steps
                    .iter()
                    .all(|step| matches!(step.command, raftkv_checker::Command::Get { .. }));
                reading_batches += u32::from(reads_only);
            }
        }
    }
    assert!(batches >= 200, "{batches} batches in 40 runs");
    assert!(reading_batches >= 1, "no batch of gets only in {batches}");
}

/// Runs `options` and asserts the run passed and its history was judged linearizable (not
/// merely "unknown").
fn run_linearizable(seed: u64, options: Options) -> raftkv_sim::Report {
    let report = raftkv_sim::run(options, TraceOutput::Hidden);
    report.assert_passed();
    assert_eq!(
        report.linearizability,
        Some(raftkv_checker::Verdict::Linearizable),
        "seed {seed}: {}",
        report.verdict_line()
    );
    report
}

/// With `--lease-reads`, leaders answer reads from their leases, which allow for exactly the
/// simulated clocks' drift: every run linearizable, many reads answered from a lease.
#[test]
fn a_swarm_of_60_seeds_with_lease_reads_passes() {
    let mut lease_reads = 0;
    for seed in 0..60 {
        let mut options = Options::draw(seed, Shape::draw(seed)).with_lease_reads();
        if seed % 2 == 1 {
            options = options.with_batches();
        }
        assert!(options.reproduce_command().contains(" --lease-reads"));
        assert_eq!(options.raft.lease_drift_ppm, options.clock.drift_ppm_max);
        lease_reads += run_linearizable(seed, options).stats.lease_reads;
    }
    assert!(lease_reads >= 1_000, "{lease_reads} reads from a lease in 60 runs");
}

/// The simulator catches a lease that trusts the clocks more than they deserve: leases that
/// allow for no drift while the clocks drift up to 60% serve a stale read in this seed (found
/// by `raftkv-sim swarm --seeds 1000..6000 --nodes 3 --clients 10 --ops 3000 --faults
/// partition,clock --lease-reads --lease-drift-ppm 0 --clock-drift-ppm 600000`), and the same
/// run with leases that allow for the drift passes.
#[test]
fn a_lease_that_allows_for_less_drift_than_the_clocks_have_is_caught() {
    let faults = "partition,clock".parse().expect("fault classes");
    let shape = Shape { nodes: 3, clients: 10, ops: 3_000, faults };
    let mut options = Options::draw(2_679, shape);
    options.clock.drift_ppm_max = 600_000;
    let options = options.with_lease_reads();
    let mut trusting = options.clone();
    trusting.raft.lease_drift_ppm = 0;
    let broken = raftkv_sim::run(trusting, TraceOutput::Hidden);
    assert_eq!(
        broken.linearizability,
        Some(raftkv_checker::Verdict::NotLinearizable),
        "{}",
        broken.verdict_line()
    );
    assert!(broken.stats.lease_reads > 0);
    run_linearizable(2_679, options);
}
