//! The recorded operations in the checker's terms (the JSON Lines history format described in checker/README.md), and the
//! linearizability verdict on them.

use std::time::Duration;

use raftkv_checker::{Command, Model, Operation, PutCondition, ScanOutput, ScanRange, Verdict};
use raftkv_core::Instant;
use raftkv_core::client::ClerkError;
use raftkv_core::kv::{self, KvCommand, KvReply};

use crate::recorded::Recorded;

/// The longest the checker may search one history. Past it the verdict is unknown, which a
/// report shows but does not count as a violation.
pub const CHECK_TIME_MAX: Duration = Duration::from_secs(20);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The history of `recorded` operations, times in nanoseconds of virtual time (as the
/// checker's format recommends). An operation
/// that did not return, or returned without knowing whether it took effect, has `ret: None`.
pub fn to_checker(recorded: &[Recorded]) -> Vec<Operation> {
    recorded.iter().enumerate().map(|(id, op)| convert(id as u64, op)).collect()
}

fn convert(id: u64, op: &Recorded) -> Operation {
    let reply = match &op.ret {
        Some((at, Ok(reply))) => Some((nanos_since_origin(*at), reply)),
        Some((_, Err(ClerkError::Indeterminate | ClerkError::Invalid { .. }))) | None => None,
    };
    let command = match single_key_command(&op.command, reply.map(|(_, reply)| reply)) {
        Some(command) => command,
        None => multi_key_command(&op.command, reply.map(|(_, reply)| reply)),
    };
    Operation {
        id,
        client: op.client as u64,
        call: nanos_since_origin(op.call),
        ret: reply.map(|(at, _)| at),
        key: op.command.key().map(text).unwrap_or_default(),
        command,
    }
}

/// A command on one key with its outcome (`reply`, if known); `None` for the others.
fn single_key_command(command: &KvCommand, reply: Option<&KvReply>) -> Option<Command> {
    Some(match (command, reply) {
        (KvCommand::Get { .. }, Some(KvReply::Value(value))) => {
            Command::Get { output: Some(value.as_deref().map(text).unwrap_or_default()) }
        }
        (KvCommand::Get { .. }, _) => Command::Get { output: None },
        (KvCommand::Put { value, .. }, _) => Command::Put { value: text(value) },
        (KvCommand::Append { value, .. }, _) => Command::Append { value: text(value) },
        (KvCommand::Delete { .. }, _) => Command::Delete,
        (KvCommand::Cas { expected, new, .. }, reply) => Command::Cas {
            expected: expected.as_deref().map(text),
            value: text(new),
            swapped: match reply {
                Some(KvReply::Cas { swapped, .. }) => Some(*swapped),
                _ => None,
            },
        },
        (KvCommand::Increment { delta, .. }, reply) => Command::Increment {
            delta: *delta,
            output: match reply {
                Some(KvReply::Integer(sum)) => Some(Ok(*sum)),
                Some(KvReply::Refused { .. }) => Some(Err(())),
                _ => None,
            },
        },
        (KvCommand::PutIf { value, condition, .. }, reply) => Command::PutIf {
            value: text(value),
            condition: match condition {
                kv::PutCondition::Always => PutCondition::Always,
                kv::PutCondition::IfMissing => PutCondition::IfMissing,
                kv::PutCondition::IfPresent => PutCondition::IfPresent,
            },
            output: match reply {
                Some(KvReply::PutIf { written, previous }) => {
                    Some((*written, previous.as_deref().map(text)))
                }
                _ => None,
            },
        },
        _ => return None,
    })
}

/// A command on several keys, a range or the whole store, with its outcome (`reply`, if
/// known). A read the store refused (its answer too large) read nothing: unknown.
fn multi_key_command(command: &KvCommand, reply: Option<&KvReply>) -> Command {
    let texts = |keys: &[Vec<u8>]| keys.iter().map(|key| text(key)).collect::<Vec<_>>();
    let count = |reply: Option<&KvReply>| match reply {
        Some(KvReply::Count(count)) => Some(*count),
        _ => None,
    };
    match command {
        KvCommand::GetMany { keys } => Command::GetMany {
            keys: texts(keys),
            output: match reply {
                Some(KvReply::Values(values)) => {
                    Some(values.iter().map(|value| value.as_deref().map(text)).collect())
                }
                _ => None,
            },
        },
        KvCommand::Exists { keys } => Command::Exists { keys: texts(keys), output: count(reply) },
        KvCommand::DeleteMany { keys } => {
            Command::DeleteMany { keys: texts(keys), output: count(reply) }
        }
        KvCommand::PutMany { pairs } => Command::PutMany {
            pairs: pairs.iter().map(|(key, value)| (text(key), text(value))).collect(),
        },
        KvCommand::Count => Command::Count { output: count(reply) },
        KvCommand::Scan(scan) => Command::Scan {
            range: ScanRange {
                start: text(&scan.start),
                end: scan.end.as_deref().map(text),
                prefix: text(&scan.prefix),
                limit: u64::from(scan.limit),
            },
            output: match reply {
                Some(KvReply::Page(page)) if scan.with_values => Some(ScanOutput {
                    pairs: page
                        .keys
                        .iter()
                        .zip(&page.values)
                        .map(|(k, v)| (text(k), text(v)))
                        .collect(),
                    more: page.next.is_some(),
                }),
                _ => None,
            },
        },
        other => unreachable!("{other} is a command on one key, or one the workload never issues"),
    }
}

/// The checker's time stamp of `at`: nanoseconds of virtual time.
fn nanos_since_origin(at: Instant) -> u64 {
    (at - Instant::ZERO).as_nanos()
}

/// Whether `history` is linearizable by `model`; on a violation, the checker's explanation.
pub fn check<M: Model>(history: &[M::Operation], model: &M) -> (Verdict, Option<String>) {
    let report = raftkv_checker::check(history, model, Some(CHECK_TIME_MAX));
    match report.verdict {
        Verdict::NotLinearizable => (Verdict::NotLinearizable, Some(report.to_string())),
        verdict => (verdict, None),
    }
}
