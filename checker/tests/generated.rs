//! Histories generated from a sequential execution, each operation taking effect at a random
//! moment inside a random interval, are linearizable, whatever their size, their concurrency
//! and their share of operations that never return.

mod support {
    pub(crate) mod generate;
    pub(crate) mod rng;
}

use raftkv_checker::{KvModel, PartitionOutcome, Verdict, check};
use support::generate::{Shape, linearizable_history};
use support::rng::Rng;

#[test]
fn histories_generated_from_a_sequential_execution_are_linearizable() {
    let shapes = [
        // The size the simulator produces.
        (16, 20, 20_000, 50, 0),
        (16, 20, 20_000, 50, 3),
        // One hot key, few values: reads are ambiguous.
        (8, 1, 2_000, 3, 5),
        (32, 4, 4_000, 2, 10),
        // Small and dense, many seeds.
        (4, 2, 60, 2, 20),
    ];
    for (clients, keys, ops, values, unknown_percent) in shapes {
        let shape = Shape {
            clients,
            keys,
            ops,
            values,
            unknown_percent,
        };
        let seeds = if ops < 100 { 500 } else { 3 };
        for seed in 0..seeds {
            let history = linearizable_history(&mut Rng::new(seed), &shape);
            let report = check(&history, &KvModel, None);
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "seed {seed}, {clients} clients, {keys} keys, {ops} ops, {values} values, {unknown_percent}% unknown: {report}"
            );
            let placed: usize = report
                .partitions
                .iter()
                .map(|partition| match &partition.outcome {
                    PartitionOutcome::Linearizable { order } => order.len(),
                    _ => unreachable!("every partition is linearizable"),
                })
                .sum();
            let returned = history.iter().filter(|op| op.ret.is_some()).count();
            assert!(
                placed >= returned,
                "every operation that returned is placed"
            );
        }
    }
}
