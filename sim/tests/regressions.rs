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

/// `raftkv-sim run --seed 1308 --nodes 5 --clients 3 --ops 219 --faults
/// net,crash,partition,pause,clock --snapshot-bytes 700`: sessions expire after 10 s here. A
/// client's session expired, it reopened one and its append ran there; then a network
/// duplicate of the first try met the expired session again, and the clerk, taking that for
/// news about its new session, opened a third one and appended a second time (core, fixed in
/// the clerk: a rerun gets a new request id).
#[test]
fn seed_1308_late_session_expiry_ran_an_append_twice() {
    let shape = Shape {
        nodes: 5,
        clients: 3,
        ops: 219,
        faults: "net,crash,partition,pause,clock".parse().expect("valid"),
    };
    let mut options = Options::draw(1308, shape);
    options.snapshot_bytes = 700;
    let report = raftkv_sim::run(options, TraceOutput::Hidden);
    assert!(report.passed(), "{}", report.verdict_line());
}
