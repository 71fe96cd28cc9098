//! A transcript of what a cluster's nodes and clients did, one line each, for tests to read
//! or to hold against a snapshot.

use raftkv_core::kv::KvReply;
use raftkv_core::protocol::Outcome;

/// The lines noted since it started; nothing is noted before.
#[derive(Clone, Debug, Default)]
pub(crate) struct Transcript {
    lines: Option<Vec<String>>,
}

impl Transcript {
    /// Notes every line from now on (dropping those not yet taken).
    pub(crate) fn start(&mut self) {
        self.lines = Some(Vec::new());
    }

    /// The lines noted since the start or the last take, each ended by a newline; noting goes
    /// on.
    pub(crate) fn take(&mut self) -> String {
        self.lines.replace(Vec::new()).unwrap_or_default().join("\n") + "\n"
    }

    /// Notes the line `line` makes, if the transcript runs (lines cost nothing otherwise).
    pub(crate) fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.lines {
            lines.push(line());
        }
    }
}

/// How a reply reads: values as text, since tests write short ones.
pub(crate) fn outcome_text(outcome: &Outcome<KvReply>) -> String {
    match outcome {
        Outcome::Registered { client } => format!("registered client={client}"),
        Outcome::Done(KvReply::Value(Some(value))) => {
            format!("value={}", String::from_utf8_lossy(value))
        }
        Outcome::Done(KvReply::Value(None)) => "missing".to_string(),
        Outcome::Done(KvReply::Done) => "done".to_string(),
        Outcome::Done(KvReply::Cas { swapped, .. }) => format!("cas swapped={swapped}"),
        Outcome::Done(KvReply::Length(length)) => format!("length={length}"),
        Outcome::Done(other) => format!("{other:?}"),
        Outcome::Rejected(reject) => format!("rejected: {reject}"),
    }
}
