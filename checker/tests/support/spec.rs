//! The sequential specifications again, written plainly over whole stores, independent of the
//! checker's models (which see one key at a time and optimize their states).

use std::collections::BTreeMap;

use raftkv_checker::{Command, Operation, ReadOutput, RegisterCommand, RegisterOperation};

use super::kv_rules::{incremented, put_if_writes};

/// The key-value store: the state after `operation`, if its output is possible.
pub(crate) fn kv(
    store: &BTreeMap<String, String>,
    operation: &Operation,
) -> Option<BTreeMap<String, String>> {
    kv_command(store, &operation.key, &operation.command)
}

/// The state after `command` on `key`, if its output is possible; a batch runs its commands
/// in order.
fn kv_command(
    store: &BTreeMap<String, String>,
    key: &String,
    command: &Command,
) -> Option<BTreeMap<String, String>> {
    let current = store.get(key);
    let mut next = store.clone();
    match command {
        Command::Batch { steps } => {
            return steps.iter().try_fold(store.clone(), |store, step| {
                kv_command(&store, &step.key, &step.command)
            });
        }
        Command::Get { output } => {
            let read = current.map_or("", String::as_str);
            if output.as_ref().is_some_and(|output| output != read) {
                return None;
            }
        }
        Command::Put { value } => {
            next.insert(key.clone(), value.clone());
        }
        Command::Append { value } => next.entry(key.clone()).or_default().push_str(value),
        Command::Delete => {
            next.remove(key);
        }
        Command::Cas { expected, value, swapped } => {
            let holds = current == expected.as_ref();
            if swapped.is_some_and(|swapped| swapped != holds) {
                return None;
            }
            if holds {
                next.insert(key.clone(), value.clone());
            }
        }
        other => return several_keys(store, key, other),
    }
    Some(next)
}

/// The operations on several keys, ranges and counters.
fn several_keys(
    store: &BTreeMap<String, String>,
    key: &String,
    command: &Command,
) -> Option<BTreeMap<String, String>> {
    let mut next = store.clone();
    let possible = match command {
        Command::GetMany { keys, output } => output.as_ref().is_none_or(|output| {
            *output == keys.iter().map(|key| store.get(key).cloned()).collect::<Vec<_>>()
        }),
        Command::Exists { keys, output } => {
            let present = keys.iter().filter(|key| store.contains_key(*key)).count() as u64;
            output.is_none_or(|output| output == present)
        }
        Command::PutMany { pairs } => {
            next.extend(pairs.iter().cloned());
            true
        }
        Command::DeleteMany { keys, output } => {
            let removed = keys.iter().filter(|key| next.remove(*key).is_some()).count() as u64;
            output.is_none_or(|output| output == removed)
        }
        Command::Count { output } => output.is_none_or(|output| output == store.len() as u64),
        Command::Scan { range, output } => output.as_ref().is_none_or(|output| {
            let in_range: Vec<(String, String)> = store
                .iter()
                .filter(|(key, _)| range.contains(key))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let read = output.pairs.len();
            read as u64 <= range.limit
                && in_range.get(..read) == Some(&output.pairs[..])
                && output.more == (in_range.len() > read)
        }),
        Command::Increment { delta, output } => {
            let sum = incremented(store.get(key), *delta);
            if let Some(sum) = sum {
                next.insert(key.clone(), sum.to_string());
            }
            output.is_none_or(|output| output == sum.ok_or(()))
        }
        Command::PutIf { value, condition, output } => {
            let previous = store.get(key).cloned();
            let writes = put_if_writes(*condition, previous.is_some());
            if writes {
                next.insert(key.clone(), value.clone());
            }
            output.as_ref().is_none_or(|output| *output == (writes, previous))
        }
        single => unreachable!("{single:?} is handled by kv"),
    };
    possible.then_some(next)
}

/// What a counter holds: the decimal form `i64::to_string` writes, and nothing else.
/// The register: the state after `operation` (`None`: nil), if its output is possible.
pub(crate) fn register(state: &Option<i64>, operation: &RegisterOperation) -> Option<Option<i64>> {
    match operation.command {
        RegisterCommand::Read { output } => {
            let possible = match output {
                ReadOutput::Unknown => true,
                ReadOutput::Nil => state.is_none(),
                ReadOutput::Value(value) => *state == Some(value),
            };
            possible.then_some(*state)
        }
        RegisterCommand::Write { value } => Some(Some(value)),
        RegisterCommand::Cas { from, to, swapped } => {
            let holds = *state == Some(from);
            if swapped.is_some_and(|swapped| swapped != holds) {
                return None;
            }
            Some(if holds { Some(to) } else { *state })
        }
    }
}
