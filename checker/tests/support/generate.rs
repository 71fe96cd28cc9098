//! Random key-value histories that are linearizable by construction: clients call operations,
//! each takes effect on one sequential store at a moment strictly inside its interval, and
//! some never return (taking effect or not).

use std::collections::BTreeMap;

use raftkv_checker::{BatchStep, Command, Operation, PutCondition, ScanOutput, ScanRange};

use super::kv_rules::{incremented, put_if_writes};
use super::rng::Rng;

/// The size and mix of a generated history.
pub(crate) struct Shape {
    pub(crate) clients: u64,
    pub(crate) keys: u64,
    pub(crate) ops: usize,
    /// Values come from this many distinct strings, so that reads can be ambiguous; 0: every
    /// value is new.
    pub(crate) values: u64,
    /// Chance, in percent, that an operation never returns.
    pub(crate) unknown_percent: u64,
    /// Chance, in percent, that an operation is a get; the others are appends only if
    /// `appends_only`, else puts, appends, deletes and compare-and-sets.
    pub(crate) get_percent: u64,
    pub(crate) appends_only: bool,
    /// Chance, in percent, that an operation is one on several keys, a range or a counter.
    pub(crate) multi_percent: u64,
    /// Chance, in percent, that an operation is a batch of two to four of the others.
    pub(crate) batch_percent: u64,
}

enum Phase {
    Idle,
    Called(usize),
    TookEffect(usize),
}

/// A history of `shape.ops` operations, in call order, that is linearizable.
pub(crate) fn linearizable_history(rng: &mut Rng, shape: &Shape) -> Vec<Operation> {
    let mut store: BTreeMap<String, String> = BTreeMap::new();
    let mut history: Vec<Operation> = Vec::with_capacity(shape.ops);
    let mut phases: Vec<Phase> = (0..shape.clients).map(|_| Phase::Idle).collect();
    let mut now = 0;
    let mut busy = 0;
    while history.len() < shape.ops || busy > 0 {
        // Several events may share an instant, so that touching intervals occur.
        if rng.chance(3, 4) {
            now += 1;
        }
        let client = rng.below(shape.clients);
        let phase = &mut phases[client as usize];
        match *phase {
            Phase::Idle if history.len() < shape.ops => {
                *phase = Phase::Called(history.len());
                busy += 1;
                history.push(random_call(rng, shape, history.len() as u64, client, now));
            }
            Phase::Idle => {}
            Phase::Called(op) if rng.chance(shape.unknown_percent, 100) => {
                // The client gives up; the operation took effect or not.
                if rng.chance(1, 2) {
                    take_effect(&mut store, &mut history[op]);
                }
                forget_output(&mut history[op].command);
                *phase = Phase::Idle;
                busy -= 1;
            }
            Phase::Called(op) => {
                take_effect(&mut store, &mut history[op]);
                *phase = Phase::TookEffect(op);
            }
            Phase::TookEffect(op) => {
                // Strictly after the moment it took effect.
                now += 1;
                history[op].ret = Some(now);
                *phase = Phase::Idle;
                busy -= 1;
            }
        }
    }
    history
}

fn random_call(rng: &mut Rng, shape: &Shape, id: u64, client: u64, now: u64) -> Operation {
    if !rng.chance(shape.batch_percent, 100) {
        return unbatched_call(rng, shape, id, client, now);
    }
    let steps = (0..2 + rng.below(3))
        .map(|_| {
            let Operation { key, command, .. } = unbatched_call(rng, shape, id, client, now);
            BatchStep { key, command }
        })
        .collect();
    Operation {
        id,
        client,
        call: now,
        ret: None,
        key: String::new(),
        command: Command::Batch { steps },
    }
}

/// An operation that is not a batch, its output not known yet.
fn unbatched_call(rng: &mut Rng, shape: &Shape, id: u64, client: u64, now: u64) -> Operation {
    let key = format!("k{}", rng.below(shape.keys));
    // Unique values end with a dot, so that none is a prefix of another, as in the simulator.
    let value = |rng: &mut Rng| match shape.values {
        0 => format!("u{id}."),
        values => format!("v{}", rng.below(values)),
    };
    let command = if rng.chance(shape.multi_percent, 100) {
        return several_keys_call(rng, shape, id, client, now);
    } else if rng.chance(shape.get_percent, 100) {
        Command::Get { output: None }
    } else if shape.appends_only {
        Command::Append { value: value(rng) }
    } else {
        match rng.below(6) {
            0..=1 => Command::Put { value: value(rng) },
            2..=3 => Command::Append { value: value(rng) },
            4 => Command::Delete,
            _ => Command::Cas {
                expected: if rng.chance(1, 4) { None } else { Some(value(rng)) },
                value: value(rng),
                swapped: None,
            },
        }
    };
    Operation { id, client, call: now, ret: None, key, command }
}

/// An operation on several keys, a range or a counter, its output not known yet.
fn several_keys_call(rng: &mut Rng, shape: &Shape, id: u64, client: u64, now: u64) -> Operation {
    let some_key = |rng: &mut Rng| format!("k{}", rng.below(shape.keys));
    let some_keys = |rng: &mut Rng| (0..1 + rng.below(3)).map(|_| some_key(rng)).collect();
    let mut key = String::new();
    let command = match rng.below(8) {
        0 => Command::GetMany { keys: some_keys(rng), output: None },
        1 => Command::Exists { keys: some_keys(rng), output: None },
        2 => {
            let keys: Vec<String> = some_keys(rng);
            let pairs = keys.into_iter().map(|key| (key, format!("m{}.", rng.below(4)))).collect();
            Command::PutMany { pairs }
        }
        3 => Command::DeleteMany { keys: some_keys(rng), output: None },
        4 => Command::Count { output: None },
        5 => {
            let bound = |rng: &mut Rng| rng.chance(1, 2).then(|| some_key(rng));
            let range = ScanRange {
                start: bound(rng).unwrap_or_default(),
                end: bound(rng),
                prefix: if rng.chance(1, 4) { some_key(rng) } else { String::new() },
                limit: 1 + rng.below(shape.keys + 1),
            };
            Command::Scan { range, output: None }
        }
        6 => {
            key = some_key(rng);
            Command::Increment { delta: rng.below(5) as i64 - 2, output: None }
        }
        _ => {
            key = some_key(rng);
            let condition =
                [PutCondition::Always, PutCondition::IfMissing, PutCondition::IfPresent]
                    [rng.below(3) as usize];
            Command::PutIf { value: format!("p{}.", rng.below(4)), condition, output: None }
        }
    };
    Operation { id, client, call: now, ret: None, key, command }
}

/// Applies the operation to the store and records its output.
fn take_effect(store: &mut BTreeMap<String, String>, operation: &mut Operation) {
    take_effect_on(store, &operation.key, &mut operation.command);
}

/// Applies `command` on `key` to the store and records its output.
fn take_effect_on(store: &mut BTreeMap<String, String>, key: &String, command: &mut Command) {
    match command {
        Command::Batch { steps } => {
            for step in steps {
                take_effect_on(store, &step.key, &mut step.command);
            }
        }
        Command::Get { output } => *output = Some(store.get(key).cloned().unwrap_or_default()),
        Command::Put { value } => {
            store.insert(key.clone(), value.clone());
        }
        Command::Append { value } => store.entry(key.clone()).or_default().push_str(value),
        Command::Delete => {
            store.remove(key);
        }
        Command::Cas { expected, value, swapped } => {
            let holds = store.get(key) == expected.as_ref();
            if holds {
                store.insert(key.clone(), value.clone());
            }
            *swapped = Some(holds);
        }
        Command::GetMany { keys, output } => {
            *output = Some(keys.iter().map(|key| store.get(key).cloned()).collect());
        }
        Command::Exists { keys, output } => {
            *output = Some(keys.iter().filter(|key| store.contains_key(*key)).count() as u64);
        }
        Command::PutMany { pairs } => store.extend(pairs.iter().cloned()),
        Command::DeleteMany { keys, output } => {
            *output = Some(keys.iter().filter(|key| store.remove(*key).is_some()).count() as u64);
        }
        Command::Count { output } => *output = Some(store.len() as u64),
        Command::Scan { range, output } => {
            let mut in_range = store.iter().filter(|(key, _)| range.contains(key));
            let pairs = in_range
                .by_ref()
                .take(range.limit as usize)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            *output = Some(ScanOutput { pairs, more: in_range.next().is_some() });
        }
        Command::Increment { delta, output } => {
            let sum = incremented(store.get(key), *delta);
            if let Some(sum) = sum {
                store.insert(key.clone(), sum.to_string());
            }
            *output = Some(sum.ok_or(()));
        }
        Command::PutIf { value, condition, output } => {
            let previous = store.get(key).cloned();
            let writes = put_if_writes(*condition, previous.is_some());
            if writes {
                store.insert(key.clone(), value.clone());
            }
            *output = Some((writes, previous));
        }
    }
}

/// Makes the outcome of `command` unknown.
pub(crate) fn forget_output(command: &mut Command) {
    match command {
        Command::Get { output } => *output = None,
        Command::Cas { swapped, .. } => *swapped = None,
        Command::GetMany { output, .. } => *output = None,
        Command::Exists { output, .. }
        | Command::DeleteMany { output, .. }
        | Command::Count { output } => *output = None,
        Command::Scan { output, .. } => *output = None,
        Command::Increment { output, .. } => *output = None,
        Command::PutIf { output, .. } => *output = None,
        Command::Batch { steps } => {
            for step in steps {
                forget_output(&mut step.command);
            }
        }
        Command::Put { .. }
        | Command::Append { .. }
        | Command::Delete
        | Command::PutMany { .. } => {}
    }
}
