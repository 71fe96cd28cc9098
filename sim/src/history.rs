//! The recorded operations in the checker's terms (the JSON Lines history format described in checker/README.md), and the
//! linearizability verdict on them.

use std::time::Duration;

use raftkv_checker::{Command, Model, Operation, Verdict};
use raftkv_core::Instant;
use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply};

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
    let command = match (&op.command, reply.map(|(_, reply)| reply)) {
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
        (other, _) => unreachable!("the simulated workload does not issue {other}"),
    };
    Operation {
        id,
        client: op.client as u64,
        call: nanos_since_origin(op.call),
        ret: reply.map(|(at, _)| at),
        key: text(op.command.key().expect("the simulated workload names one key")),
        command,
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
