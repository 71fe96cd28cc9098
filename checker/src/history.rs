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
    /// The key it reads or writes.
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
