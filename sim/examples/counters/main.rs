//! Replicated counters, a state machine of our own, under the simulator: seeded runs with
//! every fault class the seed draws, each ending with a linearizability verdict of the
//! counters' own model.
//!
//! ```sh
//! cargo run -p raftkv-sim --example counters
//! ```

mod machine;

use std::process::ExitCode;

use machine::CounterMachine;
use raftkv_sim::{Options, Shape, TraceOutput};

/// Seeds run; the simulator's tests run more.
const SEEDS: u64 = 20;

fn main() -> ExitCode {
    let mut failed = 0;
    for seed in 0..SEEDS {
        let options = Options::draw(seed, Shape::draw(seed));
        let faults = options.shape.faults.to_string();
        let report =
            raftkv_sim::run_machine(CounterMachine::default(), options, TraceOutput::Hidden);
        println!("seed {seed:>2} faults={faults}: {}", report.verdict_line());
        if !report.passed() {
            println!("reproduce: {}", report.options.reproduce_command());
            failed += 1;
        }
    }
    println!("{} of {SEEDS} seeds passed", SEEDS - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
