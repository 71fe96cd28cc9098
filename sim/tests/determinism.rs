//! The same seed and options give the same run, event for event.

use raftkv_sim::{Options, Shape, TraceOutput};

#[test]
fn one_seed_run_twice_gives_the_same_trace_hash() {
    for seed in [7, 8] {
        let options = Options::draw(seed, Shape { ops: 300, ..Shape::DEFAULT });
        let first = raftkv_sim::run(options.clone(), TraceOutput::Hidden);
        let second = raftkv_sim::run(options, TraceOutput::Hidden);
        assert!(first.passed(), "{}", first.verdict_line());
        assert!(first.trace_lines > 1_000, "a real run: {} trace lines", first.trace_lines);
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}");
        assert_eq!(first.history, second.history, "seed {seed}");
        assert_eq!(first.stats, second.stats, "seed {seed}");
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let run = |seed| {
        raftkv_sim::run(
            Options::draw(seed, Shape { ops: 100, ..Shape::DEFAULT }),
            TraceOutput::Hidden,
        )
    };
    assert_ne!(run(1).trace_hash, run(2).trace_hash);
}
