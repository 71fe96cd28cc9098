//! A swarm: every seed with its own drawn shape, fault classes and rates. Longer sweeps are
//! `raftkv-sim swarm --seeds A..B`.

use raftkv_sim::{Options, Shape, TraceOutput};

#[test]
fn a_swarm_of_250_seeds_passes() {
    let mut faults_seen = [0u32; 3];
    for seed in 0..250 {
        let options = Options::draw(seed, Shape::draw(seed));
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        assert!(
            report.passed(),
            "{}\nreproduce: {}",
            report.verdict_line(),
            report.options.reproduce_command()
        );
        faults_seen[0] += u32::from(report.stats.crashes > 0);
        faults_seen[1] += u32::from(report.stats.partitions > 0);
        faults_seen[2] += u32::from(report.stats.pauses > 0);
    }
    // Swarm testing: each class strikes in some runs and not in others.
    for (class, runs) in ["crashes", "partitions", "pauses"].iter().zip(faults_seen) {
        assert!((50..=200).contains(&runs), "{class} in {runs} of 250 runs");
    }
}

#[test]
fn a_swarm_of_150_seeds_with_constant_compaction_passes() {
    for seed in 0..150 {
        let mut options = Options::draw(seed, Shape::draw(seed));
        // Snapshots every few entries: compaction, InstallSnapshot, and crashes in between.
        options.snapshot.threshold_bytes = [700, 4_096][seed as usize % 2];
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        assert!(
            report.passed(),
            "{}\nreproduce: {}",
            report.verdict_line(),
            report.options.reproduce_command()
        );
    }
}
