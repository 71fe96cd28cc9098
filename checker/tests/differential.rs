//! The checker against a brute-force reference on thousands of small random histories: some
//! linearizable by construction, some mutated, some random outright. Every witness it gives
//! (a linearization, or the longest prefix of one) is checked too.

mod support {
    pub(crate) mod brute_force;
    pub(crate) mod generate;
    pub(crate) mod kv_rules;
    pub(crate) mod rng;
    pub(crate) mod spec;
    pub(crate) mod witness;
}

use std::collections::BTreeMap;

use raftkv_checker::{
    Command, KvModel, Operation, ReadOutput, RegisterCommand, RegisterModel, RegisterOperation,
    Verdict, check,
};
use support::brute_force::is_linearizable;
use support::generate::{Shape, forget_output, linearizable_history};
use support::rng::Rng;
use support::spec;
use support::witness::assert_witnesses_hold;

const HISTORIES: u64 = 10_000;

#[test]
fn agrees_with_brute_force_on_small_kv_histories() {
    let shape = |seed: u64, rng: &mut Rng| Shape {
        clients: 2 + rng.below(3),
        keys: 1 + rng.below(2),
        ops: 2 + rng.below(9) as usize,
        // Unique values, as the simulator writes them, in one of five.
        values: if seed % 5 == 1 { 0 } else { 2 + rng.below(2) },
        unknown_percent: rng.below(30),
        get_percent: 20 + rng.below(40),
        // Append-only histories, where reads prune the search, in one of three.
        appends_only: seed % 3 == 0,
        multi_percent: 0,
        batch_percent: 0,
    };
    agrees_on_mutated_kv_histories(shape, |_, _| {});
}

/// For each seed, draws a shape with `shape`, generates a history linearizable by construction,
/// mutates it up to four times (`mutate`, then `mutate_more`, each time), and checks it against
/// the brute-force reference; both verdicts must be common.
fn agrees_on_mutated_kv_histories(
    shape: impl Fn(u64, &mut Rng) -> Shape,
    mutate_more: impl Fn(&mut Rng, &mut [Operation]),
) {
    let mut verdicts = BTreeMap::new();
    for seed in 0..HISTORIES {
        let mut rng = Rng::new(seed);
        let shape = shape(seed, &mut rng);
        let mut history = linearizable_history(&mut rng, &shape);
        let mutations = rng.below(5);
        for _ in 0..mutations {
            mutate(&mut rng, &mut history);
            mutate_more(&mut rng, &mut history);
        }
        check_kv_history(seed, mutations, &history, &mut verdicts);
    }
    assert_both_verdicts_common(&verdicts);
}

/// Checks `history` (seed `seed`, mutated `mutations` times) against the brute-force reference
/// and its witnesses, and counts its verdict.
fn check_kv_history(
    seed: u64,
    mutations: u64,
    history: &[Operation],
    verdicts: &mut BTreeMap<&'static str, u64>,
) {
    let expected = is_linearizable(history, BTreeMap::new(), spec::kv);
    let report = check(history, &KvModel, None);
    let context = format!("seed {seed}, {mutations} mutations:\n{}{report}", jsonl(history));
    assert!(
        mutations > 0 || expected,
        "the generator made a history that is not linearizable: {context}"
    );
    assert_eq!(report.verdict, verdict(expected), "{context}");
    assert_witnesses_hold(history, &report, BTreeMap::new(), spec::kv, &context);
    *verdicts.entry(report.verdict.as_str()).or_insert(0) += 1;
}

#[test]
fn agrees_with_brute_force_on_small_random_register_histories() {
    let mut verdicts = BTreeMap::new();
    for seed in 0..HISTORIES {
        let mut rng = Rng::new(seed);
        let history = random_register_history(&mut rng);
        let expected = is_linearizable(&history, None, spec::register);
        let report = check(&history, &RegisterModel, None);
        let context = format!("seed {seed}: {history:#?}\n{report}");
        assert_eq!(report.verdict, verdict(expected), "{context}");
        assert_witnesses_hold(&history, &report, None, spec::register, &context);
        *verdicts.entry(report.verdict.as_str()).or_insert(0) += 1;
    }
    assert_both_verdicts_common(&verdicts);
}

/// The same with operations on several keys, ranges and counters among the others, whose
/// outputs the mutations change too.
#[test]
fn agrees_with_brute_force_on_small_kv_histories_with_operations_on_several_keys() {
    let shape = |_, rng: &mut Rng| Shape {
        clients: 2 + rng.below(3),
        keys: 1 + rng.below(3),
        ops: 2 + rng.below(9) as usize,
        values: 2 + rng.below(2),
        unknown_percent: rng.below(30),
        get_percent: 20 + rng.below(40),
        appends_only: false,
        multi_percent: 30 + rng.below(40),
        batch_percent: 0,
    };
    agrees_on_mutated_kv_histories(shape, mutate_several_keys);
}

/// The same with batches of two to four operations (on one key, several, ranges and counters)
/// among the others, the outputs of the operations in a batch mutated too.
#[test]
fn agrees_with_brute_force_on_small_kv_histories_with_batches() {
    let shape = |_, rng: &mut Rng| Shape {
        clients: 2 + rng.below(3),
        keys: 1 + rng.below(3),
        ops: 2 + rng.below(7) as usize,
        values: 2 + rng.below(2),
        unknown_percent: rng.below(30),
        get_percent: 30 + rng.below(40),
        appends_only: false,
        multi_percent: rng.below(30),
        batch_percent: 30 + rng.below(40),
    };
    agrees_on_mutated_kv_histories(shape, mutate_batch_step);
}

/// Changes the output of one operation in a batch, if a batch is picked.
fn mutate_batch_step(rng: &mut Rng, history: &mut [Operation]) {
    let index = rng.below(history.len() as u64) as usize;
    let Command::Batch { steps } = &mut history[index].command else {
        return;
    };
    let step = rng.below(steps.len() as u64) as usize;
    match &mut steps[step].command {
        Command::Get { output: Some(output) } => {
            *output = ["", "v0", "v1", "v0v1"][rng.below(4) as usize].to_owned();
        }
        Command::Cas { swapped: Some(swapped), .. } => *swapped = !*swapped,
        other => mutate_several_keys_output(rng, other),
    }
}

/// Changes the output of an operation on several keys, a range or a counter, if one is
/// picked.
fn mutate_several_keys(rng: &mut Rng, history: &mut [Operation]) {
    let index = rng.below(history.len() as u64) as usize;
    mutate_several_keys_output(rng, &mut history[index].command);
}

/// Changes the output of `command` if it is on several keys, a range or a counter.
fn mutate_several_keys_output(rng: &mut Rng, command: &mut Command) {
    match command {
        Command::GetMany { output: Some(values), .. } => {
            let at = rng.below(values.len() as u64) as usize;
            values[at] = if values[at].is_some() { None } else { Some("v0".to_owned()) };
        }
        Command::Exists { output: Some(count), .. }
        | Command::DeleteMany { output: Some(count), .. }
        | Command::Count { output: Some(count) } => *count = (*count + 1) % 3,
        Command::Scan { output: Some(page), .. } => {
            if rng.chance(1, 2) || page.pairs.is_empty() {
                page.more = !page.more;
            } else {
                page.pairs.remove(0);
            }
        }
        Command::Increment { output: Some(sum), .. } => {
            *sum = match sum {
                Ok(sum) if rng.chance(1, 2) => Ok(*sum + 1),
                Ok(_) => Err(()),
                Err(()) => Ok(0),
            };
        }
        Command::PutIf { output: Some((written, _)), .. } => *written = !*written,
        _ => {}
    }
}

fn verdict(linearizable: bool) -> Verdict {
    if linearizable { Verdict::Linearizable } else { Verdict::NotLinearizable }
}

/// A test that sees one verdict almost only would prove little.
fn assert_both_verdicts_common(verdicts: &BTreeMap<&str, u64>) {
    for verdict in ["linearizable", "not-linearizable"] {
        let count = verdicts.get(verdict).copied().unwrap_or(0);
        assert!(count >= HISTORIES / 5, "only {count} {verdict} histories: {verdicts:?}");
    }
}

/// Changes one thing that may make the history not linearizable.
fn mutate(rng: &mut Rng, history: &mut [Operation]) {
    let end = history.iter().filter_map(|op| op.ret).max().unwrap_or(0) + 1;
    let index = rng.below(history.len() as u64) as usize;
    let other_call = history[rng.below(history.len() as u64) as usize].call;
    let operation = &mut history[index];
    match rng.below(7) {
        // Another output.
        0..=2 => match &mut operation.command {
            Command::Get { output: Some(output) } => {
                *output = ["", "v0", "v1", "v0v1"][rng.below(4) as usize].to_owned();
            }
            Command::Cas { swapped: Some(swapped), .. } => *swapped = !*swapped,
            Command::Put { value } | Command::Append { value } => {
                *value = format!("v{}", rng.below(3))
            }
            _ => {}
        },
        // A shorter interval.
        3 => {
            if let Some(ret) = operation.ret {
                operation.ret = Some(ret.min(other_call).max(operation.call));
            }
        }
        4 => operation.call = operation.call.max(other_call.min(operation.ret.unwrap_or(u64::MAX))),
        // The outcome forgotten.
        5 => {
            operation.ret = None;
            forget_output(&mut operation.command);
        }
        // An outcome made up.
        _ => {
            if operation.ret.is_none() {
                operation.ret = Some(end);
                match &mut operation.command {
                    Command::Get { output } => *output = Some(format!("v{}", rng.below(2))),
                    Command::Cas { swapped, .. } => *swapped = Some(rng.chance(1, 2)),
                    _ => {}
                }
            }
        }
    }
}

/// Random intervals and random outputs over a tiny domain: often linearizable, often not.
fn random_register_history(rng: &mut Rng) -> Vec<RegisterOperation> {
    let ops = 2 + rng.below(7);
    (0..ops)
        .map(|id| {
            let call = rng.below(20);
            let ret = (!rng.chance(1, 8)).then(|| call + rng.below(8));
            let value = |rng: &mut Rng| rng.below(2) as i64;
            let command = match rng.below(3) {
                0 => RegisterCommand::Read {
                    output: match (ret, rng.below(3)) {
                        (None, _) => ReadOutput::Unknown,
                        (_, 0) => ReadOutput::Nil,
                        _ => ReadOutput::Value(value(rng)),
                    },
                },
                1 => RegisterCommand::Write { value: value(rng) },
                _ => RegisterCommand::Cas {
                    from: value(rng),
                    to: value(rng),
                    swapped: ret.map(|_| rng.chance(1, 2)),
                },
            };
            RegisterOperation { id, process: id, call, ret, command }
        })
        .collect()
}

fn jsonl(history: &[Operation]) -> String {
    let mut out = Vec::new();
    raftkv_checker::parse::jsonl::write(history, &mut out).expect("writing to memory");
    String::from_utf8(out).expect("JSON is UTF-8")
}
