//! The sequential specifications again, written plainly over whole stores, independent of the
//! checker's models (which see one key at a time and optimize their states).

use std::collections::BTreeMap;

use raftkv_checker::{Command, Operation, ReadOutput, RegisterCommand, RegisterOperation};

/// The key-value store: the state after `operation`, if its output is possible.
pub(crate) fn kv(
    store: &BTreeMap<String, String>,
    operation: &Operation,
) -> Option<BTreeMap<String, String>> {
    let key = &operation.key;
    let current = store.get(key);
    let mut next = store.clone();
    match &operation.command {
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
    }
    Some(next)
}

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
