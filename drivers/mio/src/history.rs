//! Histories of client operations, written as JSON Lines in the format `raftkv-check` reads
//! (`raftkv_checker::parse::jsonl`): `raftkv bench --history FILE` records one, so a real
//! cluster's behaviour can be checked for linearizability.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use raftkv_core::client::ClerkError;
use raftkv_core::kv::{KvCommand, KvReply};
use serde_json::{Map, Value, json};

/// Operations in progress and finished, by session.
pub(crate) struct History {
    origin: Instant,
    /// Per session: the operation in progress and when it was called.
    calls: Vec<Option<(u64, KvCommand)>>,
    /// Finished operations: call time and line (without its id).
    lines: Vec<(u64, Map<String, Value>)>,
}

impl History {
    /// An empty history of `sessions` clients; times count from now, in nanoseconds.
    pub(crate) fn new(sessions: usize) -> History {
        History { origin: Instant::now(), calls: vec![None; sessions], lines: Vec::new() }
    }

    /// Session `session` calls `command`.
    pub(crate) fn call(&mut self, session: usize, command: &KvCommand) {
        self.calls[session] = Some((self.nanos(), command.clone()));
    }

    /// Session `session` learned how its operation ended. An error leaves the outcome unknown
    /// (`ret: null`): it may or may not have taken effect.
    pub(crate) fn ret(&mut self, session: usize, result: &Result<KvReply, ClerkError>) {
        let Some((call, command)) = self.calls[session].take() else {
            return;
        };
        let text = |bytes: &[u8]| Value::String(String::from_utf8_lossy(bytes).into_owned());
        let mut line = Map::new();
        line.insert("client".into(), json!(session));
        let key = command.key().expect("the benchmark's commands name one key");
        line.insert("key".into(), text(key));
        let kind = match &command {
            KvCommand::Get { .. } => "get",
            KvCommand::Put { value, .. } => {
                line.insert("value".into(), text(value));
                "put"
            }
            KvCommand::Append { value, .. } => {
                line.insert("value".into(), text(value));
                "append"
            }
            KvCommand::Delete { .. } => "delete",
            KvCommand::Cas { expected, new, .. } => {
                line.insert("expected".into(), expected.as_deref().map_or(Value::Null, text));
                line.insert("value".into(), text(new));
                "cas"
            }
            other => unreachable!("the benchmark does not issue {other}"),
        };
        line.insert("kind".into(), json!(kind));
        line.insert("call".into(), json!(call));
        match result {
            Ok(reply) => {
                match reply {
                    KvReply::Value(value) => {
                        line.insert("output".into(), text(value.as_deref().unwrap_or_default()));
                    }
                    KvReply::Cas { swapped, .. } => {
                        line.insert("output".into(), json!(if *swapped { "ok" } else { "fail" }));
                    }
                    _ => {}
                }
                line.insert("ret".into(), json!(self.nanos()));
            }
            Err(_) => {
                line.insert("ret".into(), Value::Null);
            }
        }
        self.lines.push((call, line));
    }

    /// Writes the history to `path`, one operation a line, ordered by call time. Operations
    /// still in progress are written as never returned.
    pub(crate) fn write(mut self, path: &Path) -> io::Result<()> {
        for session in 0..self.calls.len() {
            self.ret(session, &Err(ClerkError::Indeterminate));
        }
        self.lines.sort_by_key(|(call, _)| *call);
        let mut out = BufWriter::new(File::create(path)?);
        for (id, (_, mut line)) in self.lines.into_iter().enumerate() {
            line.insert("id".into(), json!(id));
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use raftkv_checker::{Command, KvModel, Verdict, check};

    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn histories_are_read_back_by_the_checker() {
        let mut history = History::new(3);
        let put = KvCommand::Put { key: bytes("k"), value: bytes("1") };
        history.call(0, &put);
        history.ret(0, &Ok(KvReply::Done));
        let cas = KvCommand::Cas { key: bytes("k"), expected: None, new: bytes("2") };
        history.call(1, &cas);
        history.ret(1, &Ok(KvReply::Cas { swapped: false, previous: Some(bytes("1")) }));
        history.call(2, &KvCommand::Append { key: bytes("k"), value: bytes("x") });
        history.ret(2, &Err(ClerkError::Indeterminate));
        history.call(0, &KvCommand::Get { key: bytes("k") });
        history.ret(0, &Ok(KvReply::Value(Some(bytes("1x")))));
        history.call(1, &KvCommand::Delete { key: bytes("k") });

        let path =
            std::env::temp_dir().join(format!("raftkv-history-{}.jsonl", std::process::id()));
        history.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let operations = raftkv_checker::parse::jsonl::parse(&text).unwrap();
        assert_eq!(operations.len(), 5);
        assert_eq!(operations[0].command, Command::Put { value: "1".into() });
        assert_eq!(
            operations[1].command,
            Command::Cas { expected: None, value: "2".into(), swapped: Some(false) }
        );
        assert_eq!(operations[2].ret, None);
        assert_eq!(operations[3].command, Command::Get { output: Some("1x".into()) });
        assert_eq!((operations[4].command.clone(), operations[4].ret), (Command::Delete, None));
        let report = check(&operations, &KvModel, None);
        assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    }
}
