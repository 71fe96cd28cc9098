//! Histories generated from a sequential execution, each operation taking effect at a random
//! moment inside a random interval, are linearizable, whatever their size, their concurrency
//! and their share of operations that never return.

mod support {
    pub(crate) mod generate;
    pub(crate) mod kv_rules;
    pub(crate) mod rng;
}

use raftkv_checker::{Command, KvModel, Operation, PartitionOutcome, Verdict, check};
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
        // One hot key, many clients: many writes at once.
        (8, 1, 2_000, 50, 5),
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
            get_percent: 40,
            appends_only: false,
            multi_percent: 0,
            batch_percent: 0,
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
            assert!(placed >= returned, "every operation that returned is placed");
        }
    }
}

#[test]
fn rounds_of_concurrent_appends_read_once_at_the_end_are_linearizable() {
    // Without a read along the way, every order of the appends looks as good as any other
    // until the end: the search must use the final read to prune, or take forever.
    for seed in 0..5 {
        let history = rounds_of_appends(&mut Rng::new(seed), 5, 12);
        let report = check(&history, &KvModel, None);
        assert_eq!(report.verdict, Verdict::Linearizable, "seed {seed}: {report}");
    }
}

/// In each round, every client appends once, all called at the same instant; the appends take
/// effect in a random order and return in another; then one read sees them all.
fn rounds_of_appends(rng: &mut Rng, clients: u64, rounds: u64) -> Vec<Operation> {
    let mut history = Vec::new();
    let mut value = String::new();
    let mut now = 0;
    for round in 0..rounds {
        let mut applied: Vec<u64> = (0..clients).collect();
        let mut returned: Vec<u64> = (0..clients).collect();
        shuffle(rng, &mut applied);
        shuffle(rng, &mut returned);
        for &client in &applied {
            value.push_str(&format!("[{client}.{round}]"));
        }
        for client in 0..clients {
            let position =
                returned.iter().position(|&other| other == client).expect("a permutation");
            history.push(Operation {
                id: history.len() as u64,
                client,
                call: now,
                ret: Some(now + 1 + position as u64),
                key: "k".to_owned(),
                command: Command::Append { value: format!("[{client}.{round}]") },
            });
        }
        now += clients + 1;
    }
    history.push(Operation {
        id: history.len() as u64,
        client: 0,
        call: now,
        ret: Some(now + 1),
        key: "k".to_owned(),
        command: Command::Get { output: Some(value) },
    });
    history
}

fn shuffle(rng: &mut Rng, items: &mut [u64]) {
    for last in (1..items.len()).rev() {
        items.swap(last, rng.below(last as u64 + 1) as usize);
    }
}
