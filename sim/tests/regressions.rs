//! Every bug the simulator found, replayed from its seed.

use raftkv_sim::{Options, Shape, TraceOutput};

fn replay(seed: u64, shape: Shape) {
    let report = raftkv_sim::run(Options::draw(seed, shape), TraceOutput::Hidden);
    assert!(
        report.passed(),
        "{}\nreproduce: {}",
        report.verdict_line(),
        report.options.reproduce_command()
    );
}

/// `raftkv-sim run --seed 1 --faults none`: a follower's rejection, overtaken by its later
/// acceptance, reached the leader after it had fallen back to probing just past the match
/// point; the leader took it for the probe's answer and panicked in `clamp` (core, fixed in
/// `Progress::on_rejected`).
#[test]
fn seed_1_stale_rejection_while_probing() {
    replay(1, Shape { faults: "none".parse().expect("valid"), ..Shape::DEFAULT });
}
