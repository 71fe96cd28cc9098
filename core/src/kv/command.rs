//! The commands of the key-value store and their replies.

use core::fmt;

use serde::{Deserialize, Serialize};

/// One operation on the store. Keys and values are bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// The value of `key`, if present.
    Get {
        /// The key read.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
    },
    /// Sets `key` to `value`.
    Put {
        /// The key written.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
        /// Its new value.
        #[serde(with = "crate::bytes")]
        value: Vec<u8>,
    },
    /// Appends `value` to the value of `key` (a missing key counts as empty).
    Append {
        /// The key written.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
        /// What to append.
        #[serde(with = "crate::bytes")]
        value: Vec<u8>,
    },
    /// Removes `key`.
    Delete {
        /// The key removed.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
    },
    /// Sets `key` to `new` if it currently holds `expected` (`None`: the key is missing).
    Cas {
        /// The key compared and written.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
        /// The value it must hold, or `None` for "missing".
        #[serde(with = "crate::bytes::optional")]
        expected: Option<Vec<u8>>,
        /// Its new value if the comparison holds.
        #[serde(with = "crate::bytes")]
        new: Vec<u8>,
    },
}

/// The result of a [`KvCommand`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    /// Answer to `Get`: the value, or `None` if the key is missing.
    Value(#[serde(with = "crate::bytes::optional")] Option<Vec<u8>>),
    /// `Put`, `Append` and `Delete` took effect.
    Done,
    /// Answer to `Cas`: whether it swapped, and the value the key held before (`None`: missing).
    Cas {
        /// The key held `expected` and now holds `new`.
        swapped: bool,
        /// The value before the command.
        #[serde(with = "crate::bytes::optional")]
        previous: Option<Vec<u8>>,
    },
}

impl KvCommand {
    /// The key the command touches.
    pub fn key(&self) -> &[u8] {
        match self {
            KvCommand::Get { key }
            | KvCommand::Put { key, .. }
            | KvCommand::Append { key, .. }
            | KvCommand::Delete { key }
            | KvCommand::Cas { key, .. } => key,
        }
    }
}

impl fmt::Display for KvCommand {
    /// For example `put x=1`, `cas x 1->2`, `cas x missing->2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        match self {
            KvCommand::Get { key } => write!(f, "get {}", text(key)),
            KvCommand::Put { key, value } => write!(f, "put {}={}", text(key), text(value)),
            KvCommand::Append { key, value } => write!(f, "append {}+={}", text(key), text(value)),
            KvCommand::Delete { key } => write!(f, "delete {}", text(key)),
            KvCommand::Cas { key, expected, new } => {
                let expected = expected.as_deref().map_or("missing".to_string(), text);
                write!(f, "cas {} {}->{}", text(key), expected, text(new))
            }
        }
    }
}
