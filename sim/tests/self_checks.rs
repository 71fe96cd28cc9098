//! The checks can fail: a cluster on disks that acknowledge writes before they are durable
//! breaks its promises, and the simulator says so.

use raftkv_sim::{Check, Options, Shape, TraceOutput};

#[test]
fn a_disk_that_acknowledges_before_it_is_durable_is_caught() {
    for seed in 0..5 {
        let mut options = Options::draw(
            seed,
            Shape { ops: 200, faults: "crash".parse().expect("valid"), ..Shape::DEFAULT },
        );
        options.disk.lies = true;
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        let violation = report.violation.expect("a lying disk breaks Raft's promises");
        assert_eq!(violation.check, Check::Durability, "seed {seed}: {violation}");
    }
}

#[test]
fn the_same_runs_pass_on_honest_disks() {
    for seed in 0..5 {
        let options = Options::draw(
            seed,
            Shape { ops: 200, faults: "crash".parse().expect("valid"), ..Shape::DEFAULT },
        );
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        assert!(report.passed(), "{}", report.verdict_line());
    }
}
