//! Operations on the key-value store as clients record them (read and written as
//! [`crate::parse::jsonl`]).

use crate::model::Recorded;

/// One operation of a key-value history, one line of a JSON Lines history file.
///
/// `ret: None` means the client never learned the outcome: the operation may have taken effect
/// at any point after its call, or never, and its output is unknown (`None` too).
///
/// Serialized, it is one line of JSON; the impls live with that format, in
/// [`crate::parse::jsonl`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Unique within the history.
    pub id: u64,
    /// The client (process) that issued it.
    pub client: u64,
    /// When the client called it.
    pub call: u64,
    /// When the client learned the outcome, if it ever did.
    pub ret: Option<u64>,
    /// The key it reads or writes; empty (and unused) for an operation on several keys or a
    /// range ([`Command::keys`] names them).
    pub key: String,
    /// What it asked for and what came back.
    pub command: Command,
}

/// What an operation asked for, with its output when the client learned it.
///
/// An output of `None` stands for "unknown": the checker allows every output. The JSON Lines
/// reader guarantees that outputs are known exactly when `ret` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Reads the key; a missing key reads as `""`.
    Get {
        /// What it read; `None` when unknown.
        output: Option<String>,
    },
    /// Sets the key to `value`.
    Put {
        /// The value written.
        value: String,
    },
    /// Sets the key to its old value (`""` if missing) followed by `value`.
    Append {
        /// The value appended.
        value: String,
    },
    /// Removes the key.
    Delete,
    /// If the key holds `expected` (`None`: the key is missing), sets it to `value`.
    /// `swapped` is the output: `Some(true)` for `"ok"`, `Some(false)` for `"fail"`.
    Cas {
        /// The value the key must hold; `None`: it must be missing.
        expected: Option<String>,
        /// The value written if it does.
        value: String,
        /// Whether it swapped; `None` when unknown.
        swapped: Option<bool>,
    },
    /// Reads `keys` at one point.
    GetMany {
        /// The keys read, in the order of the output.
        keys: Vec<String>,
        /// Per key, its value or `None` (missing); `None` as a whole when unknown.
        output: Option<Vec<Option<String>>>,
    },
    /// Counts how many of `keys` are present (a key named twice counts twice).
    Exists {
        /// The keys looked up.
        keys: Vec<String>,
        /// How many; `None` when unknown.
        output: Option<u64>,
    },
    /// Sets several keys at once (a key named twice ends with its last value).
    PutMany {
        /// Keys and their new values.
        pairs: Vec<(String, String)>,
    },
    /// Removes several keys at once.
    DeleteMany {
        /// The keys removed.
        keys: Vec<String>,
        /// How many were present (a key named twice counts once); `None` when unknown.
        output: Option<u64>,
    },
    /// Counts the keys of the whole store.
    Count {
        /// How many; `None` when unknown.
        output: Option<u64>,
    },
    /// Reads a page of keys in order, with their values.
    Scan {
        /// Which keys.
        range: ScanRange,
        /// What it read; `None` when unknown.
        output: Option<ScanOutput>,
    },
    /// Adds `delta` to the decimal integer the key holds (missing: 0).
    Increment {
        /// What it adds.
        delta: i64,
        /// The sum, or `Err(())` when refused (the value is not a decimal integer without a
        /// plus sign, spaces or leading zeros, or the sum overflows an `i64`: nothing
        /// changed); `None` when unknown.
        output: Option<Result<i64, ()>>,
    },
    /// Sets the key to `value` if `condition` holds.
    PutIf {
        /// The value written if it does.
        value: String,
        /// When it writes.
        condition: PutCondition,
        /// Whether it wrote and the value before (`None`: missing); `None` when unknown.
        output: Option<(bool, Option<String>)>,
    },
    /// Several commands run in order at one point, each seeing what the ones before it left:
    /// a client's pipeline sent at once. Only the commands that ran are listed (a batch that
    /// stopped early lists those answered); an unknown outcome means all of them ran, or none.
    Batch {
        /// The commands, in the order they ran; none of them a batch.
        steps: Vec<BatchStep>,
    },
}

/// One command of a [`Command::Batch`], with its key (empty for a command on several keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchStep {
    /// The key it reads or writes, as [`Operation::key`].
    pub key: String,
    /// What it asked for and what came back.
    pub command: Command,
}

/// When a [`Command::PutIf`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutCondition {
    /// Always.
    Always,
    /// Only if the key is missing.
    IfMissing,
    /// Only if the key is present.
    IfPresent,
}

/// The keys a [`Command::Scan`] reads: from `start` on (inclusive), before `end` (exclusive)
/// if given, beginning with `prefix`, at most `limit` of them (in byte order of the keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRange {
    /// The first key it may read.
    pub start: String,
    /// The first key past the range, if any.
    pub end: Option<String>,
    /// Only keys beginning with it.
    pub prefix: String,
    /// The most keys it reads.
    pub limit: u64,
}

impl ScanRange {
    /// Whether `key` is in the range (the limit aside).
    pub fn contains(&self, key: &str) -> bool {
        key >= self.start.as_str()
            && self.end.as_deref().is_none_or(|end| key < end)
            && key.starts_with(self.prefix.as_str())
    }
}

/// What a [`Command::Scan`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOutput {
    /// The keys in order, with their values.
    pub pairs: Vec<(String, String)>,
    /// Whether the range held keys past the last one read (the page stopped at its limit of
    /// keys or bytes).
    pub more: bool,
}

impl Command {
    /// The keys an operation on several keys names (for a scan, the keys it read), or `None`
    /// for an operation on the one key of its [`Operation`].
    pub fn keys(&self) -> Option<Vec<&str>> {
        match self {
            Command::GetMany { keys, .. }
            | Command::Exists { keys, .. }
            | Command::DeleteMany { keys, .. } => Some(keys.iter().map(String::as_str).collect()),
            Command::PutMany { pairs } => Some(pairs.iter().map(|(key, _)| key.as_str()).collect()),
            Command::Scan { output, .. } => Some(
                output
                    .iter()
                    .flat_map(|output| output.pairs.iter().map(|(key, _)| key.as_str()))
                    .collect(),
            ),
            Command::Count { .. } => Some(Vec::new()),
            Command::Batch { steps } => Some(
                steps
                    .iter()
                    .flat_map(|step| step.command.keys().unwrap_or_else(|| vec![step.key.as_str()]))
                    .collect(),
            ),
            Command::Get { .. }
            | Command::Put { .. }
            | Command::Append { .. }
            | Command::Delete
            | Command::Cas { .. }
            | Command::Increment { .. }
            | Command::PutIf { .. } => None,
        }
    }
}

impl Recorded for Operation {
    fn id(&self) -> u64 {
        self.id
    }

    fn client(&self) -> u64 {
        self.client
    }

    fn call(&self) -> u64 {
        self.call
    }

    fn ret(&self) -> Option<u64> {
        self.ret
    }
}
