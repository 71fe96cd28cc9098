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
    // The variants below came later: appended, so the encoding of the others did not change.
    /// Keys in order, with their values if asked, one page at a time (read-only).
    Scan(Scan),
    /// The number of keys (read-only).
    Count,
    /// The values of several keys, read at one point (read-only).
    GetMany {
        /// The keys read, in the order of the answer.
        keys: Vec<Vec<u8>>,
    },
    /// How many of `keys` are present, a key named twice counting twice (read-only).
    Exists {
        /// The keys looked up.
        keys: Vec<Vec<u8>>,
    },
    /// Sets several keys at once, in one log entry: all of them or none.
    PutMany {
        /// Keys and their new values; a key named twice ends with its last value.
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Removes several keys at once; answers how many were present.
    DeleteMany {
        /// The keys removed.
        keys: Vec<Vec<u8>>,
    },
    /// Sets `key` to `value` if `condition` holds; answers whether it did and the value before.
    PutIf {
        /// The key written.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
        /// Its new value.
        #[serde(with = "crate::bytes")]
        value: Vec<u8>,
        /// When to write.
        condition: PutCondition,
    },
    /// Adds `delta` to the decimal integer `key` holds (a missing key counts as 0) and answers
    /// the sum; refused, without a change, if the value is not such an integer or the sum
    /// leaves the range of `i64`.
    Increment {
        /// The counter.
        #[serde(with = "crate::bytes")]
        key: Vec<u8>,
        /// What to add (negative to subtract).
        delta: i64,
    },
    /// Several commands run in order at one point, as one request of the session (one log
    /// entry if any of them writes, else one read): a client's pipeline sent at once, taking
    /// effect in its order and exactly once. Answered with a [`KvReply::Batch`] of the replies
    /// of the commands run, in order; it stops early, the rest not run, once the replies
    /// weigh [`BATCH_REPLY_BYTES`](crate::kv::BATCH_REPLY_BYTES). At most
    /// [`MAX_BATCH_COMMANDS`](crate::kv::MAX_BATCH_COMMANDS) commands, each one that
    /// [may join a batch](KvCommand::may_join_batch): not a `GetMany`, a `Scan` or a batch.
    Batch {
        /// The commands, in the order they run.
        commands: Vec<KvCommand>,
    },
}

/// When [`KvCommand::PutIf`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutCondition {
    /// Always (a put that answers the value it replaced).
    Always,
    /// Only if the key is missing.
    IfMissing,
    /// Only if the key is present.
    IfPresent,
}

/// What a [`KvCommand::Scan`] reads: the keys from `start` on (inclusive), before `end`
/// (exclusive) if given, that begin with `prefix`, at most `limit` of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The first key that may be returned (empty: from the first key). To read the next page,
    /// the `next` of the last one.
    #[serde(with = "crate::bytes")]
    pub start: Vec<u8>,
    /// The first key past the range, or `None` for no bound.
    #[serde(with = "crate::bytes::optional")]
    pub end: Option<Vec<u8>>,
    /// Only keys that begin with these bytes (empty: every key).
    #[serde(with = "crate::bytes")]
    pub prefix: Vec<u8>,
    /// Keys in a page at most, at least 1. A page also stops once its keys and values weigh
    /// [`SCAN_PAGE_BYTES`](crate::kv::SCAN_PAGE_BYTES), so that it fits in a reply.
    pub limit: u32,
    /// Whether the page carries the values too.
    pub with_values: bool,
}

/// One page of a [`KvCommand::Scan`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPage {
    /// The keys, in order.
    pub keys: Vec<Vec<u8>>,
    /// Their values, one per key, if the scan asked for them; else empty.
    pub values: Vec<Vec<u8>>,
    /// Where the next page starts (its `start`), or `None`: the range has no more keys.
    #[serde(with = "crate::bytes::optional")]
    pub next: Option<Vec<u8>>,
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
    // The variants below came later: appended, so the encoding of the others did not change.
    /// Answer to `Append`: the length of the value it produced, in bytes.
    Length(u64),
    /// Answer to `Count`, `Exists` and `DeleteMany`: how many keys.
    Count(u64),
    /// Answer to `Scan`.
    Page(ScanPage),
    /// Answer to `GetMany`: a value or `None` (missing) per key, in the order asked.
    Values(Vec<Option<Vec<u8>>>),
    /// Answer to `PutIf`: whether it wrote, and the value before (`None`: missing).
    PutIf {
        /// The condition held and the key now holds the new value.
        written: bool,
        /// The value before the command.
        #[serde(with = "crate::bytes::optional")]
        previous: Option<Vec<u8>>,
    },
    /// Answer to `Increment`: the counter's new value.
    Integer(i64),
    /// The command ran and, given the state it found, changed nothing (an increment of a value
    /// that is not an integer, a read whose answer would be too large).
    Refused {
        /// Why.
        reason: String,
    },
    /// Answer to `Batch`: the replies of the commands it ran, in order; fewer than its commands
    /// if it stopped early (the others did not run).
    Batch(Vec<KvReply>),
}

impl KvCommand {
    /// The key of a command on one key; `None` for a command on several keys or none.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            KvCommand::Get { key }
            | KvCommand::Put { key, .. }
            | KvCommand::Append { key, .. }
            | KvCommand::Delete { key }
            | KvCommand::Cas { key, .. }
            | KvCommand::PutIf { key, .. }
            | KvCommand::Increment { key, .. } => Some(key),
            KvCommand::Scan(_)
            | KvCommand::Count
            | KvCommand::GetMany { .. }
            | KvCommand::Exists { .. }
            | KvCommand::PutMany { .. }
            | KvCommand::DeleteMany { .. }
            | KvCommand::Batch { .. } => None,
        }
    }

    /// Whether the command may be one of a [`KvCommand::Batch`]: its reply weighs at most one
    /// value (a value, a count, a length). A batch's reply, which its session keeps on every
    /// replica until its next request, then stays within
    /// [`BATCH_REPLY_BYTES`](crate::kv::BATCH_REPLY_BYTES) and one value; the values of a
    /// `GetMany` and the page of a `Scan` may weigh
    /// [`MAX_VALUES_REPLY_BYTES`](crate::kv::MAX_VALUES_REPLY_BYTES), so they go alone.
    pub fn may_join_batch(&self) -> bool {
        match self {
            KvCommand::Get { .. }
            | KvCommand::Put { .. }
            | KvCommand::Append { .. }
            | KvCommand::Delete { .. }
            | KvCommand::Cas { .. }
            | KvCommand::Count
            | KvCommand::Exists { .. }
            | KvCommand::PutMany { .. }
            | KvCommand::DeleteMany { .. }
            | KvCommand::PutIf { .. }
            | KvCommand::Increment { .. } => true,
            KvCommand::Scan(_) | KvCommand::GetMany { .. } | KvCommand::Batch { .. } => false,
        }
    }

    /// Every key the command names (for a scan, its bounds and prefix), for size checks.
    pub fn named_keys(&self) -> Vec<&[u8]> {
        let mut keys = Vec::new();
        let _: Result<(), ()> = self.try_for_each_named_key(&mut |key| {
            keys.push(key);
            Ok(())
        });
        keys
    }

    /// Calls `visit` on every key [`named_keys`](Self::named_keys) lists, in the same order,
    /// until it fails; without collecting them (the checks of every request do this).
    pub fn try_for_each_named_key<'a, E>(
        &'a self,
        visit: &mut impl FnMut(&'a [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            KvCommand::Scan(scan) => {
                visit(&scan.start)?;
                visit(&scan.prefix)?;
                scan.end.as_deref().map_or(Ok(()), visit)
            }
            KvCommand::Count => Ok(()),
            KvCommand::GetMany { keys }
            | KvCommand::Exists { keys }
            | KvCommand::DeleteMany { keys } => keys.iter().try_for_each(|key| visit(key)),
            KvCommand::PutMany { pairs } => pairs.iter().try_for_each(|(key, _)| visit(key)),
            KvCommand::Batch { commands } => {
                commands.iter().try_for_each(|command| command.try_for_each_named_key(visit))
            }
            single => single.key().map_or(Ok(()), visit),
        }
    }

    /// Bytes of keys and values the command carries.
    pub fn payload_bytes(&self) -> usize {
        let values = match self {
            KvCommand::Put { value, .. }
            | KvCommand::Append { value, .. }
            | KvCommand::PutIf { value, .. } => value.len(),
            KvCommand::Cas { expected, new, .. } => {
                expected.as_ref().map_or(0, Vec::len).saturating_add(new.len())
            }
            KvCommand::PutMany { pairs } => {
                pairs.iter().fold(0usize, |sum, (_, value)| sum.saturating_add(value.len()))
            }
            KvCommand::Batch { commands } => {
                return commands
                    .iter()
                    .fold(0usize, |sum, command| sum.saturating_add(command.payload_bytes()));
            }
            _ => 0,
        };
        let mut bytes = values;
        let _: Result<(), ()> = self.try_for_each_named_key(&mut |key| {
            bytes = bytes.saturating_add(key.len());
            Ok(())
        });
        bytes
    }
}

impl KvReply {
    /// Bytes of keys and values the reply carries.
    pub fn payload_bytes(&self) -> usize {
        let sum = |parts: &mut dyn Iterator<Item = usize>| {
            parts.fold(0usize, |sum, bytes| sum.saturating_add(bytes))
        };
        match self {
            KvReply::Value(value) => value.as_ref().map_or(0, Vec::len),
            KvReply::Cas { previous, .. } | KvReply::PutIf { previous, .. } => {
                previous.as_ref().map_or(0, Vec::len)
            }
            KvReply::Page(page) => {
                sum(&mut page.keys.iter().chain(&page.values).chain(&page.next).map(Vec::len))
            }
            KvReply::Values(values) => sum(&mut values.iter().flatten().map(Vec::len)),
            KvReply::Refused { reason } => reason.len(),
            KvReply::Batch(replies) => sum(&mut replies.iter().map(KvReply::payload_bytes)),
            KvReply::Done | KvReply::Length(_) | KvReply::Count(_) | KvReply::Integer(_) => 0,
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
            KvCommand::Scan(scan) => write!(
                f,
                "scan from {:?} prefix {:?} limit {}",
                text(&scan.start),
                text(&scan.prefix),
                scan.limit
            ),
            KvCommand::Count => write!(f, "count"),
            KvCommand::GetMany { keys } => write!(f, "get {} keys", keys.len()),
            KvCommand::Exists { keys } => write!(f, "exists {} keys", keys.len()),
            KvCommand::PutMany { pairs } => write!(f, "put {} keys", pairs.len()),
            KvCommand::DeleteMany { keys } => write!(f, "delete {} keys", keys.len()),
            KvCommand::PutIf { key, value, condition } => {
                write!(f, "put {}={} {condition:?}", text(key), text(value))
            }
            KvCommand::Increment { key, delta } => write!(f, "increment {} by {delta}", text(key)),
            KvCommand::Batch { commands } => write!(f, "batch of {} commands", commands.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn the_named_keys_of_a_batch_are_its_commands_keys_in_order_and_the_visit_stops_at_a_failure() {
        let scan = Scan {
            start: bytes("s"),
            end: Some(bytes("t")),
            prefix: bytes("p"),
            limit: 1,
            with_values: false,
        };
        let batch = KvCommand::Batch {
            commands: vec![
                KvCommand::Put { key: bytes("a"), value: bytes("12345") },
                KvCommand::PutMany {
                    pairs: vec![(bytes("bb"), bytes("1")), (bytes("c"), bytes("22"))],
                },
                KvCommand::Scan(scan),
                KvCommand::Count,
            ],
        };
        let named: Vec<&[u8]> = vec![b"a", b"bb", b"c", b"s", b"p", b"t"];
        assert_eq!(batch.named_keys(), named);
        // Keys 1 + 2 + 1 + 3 bytes of the scan's bounds and prefix; values 5 + 1 + 2.
        assert_eq!(batch.payload_bytes(), 4 + 3 + 8);
        let mut visited = Vec::new();
        let stopped = batch.try_for_each_named_key(&mut |key| {
            visited.push(key);
            if key == b"c" { Err("stop") } else { Ok(()) }
        });
        assert_eq!((stopped, visited.len()), (Err("stop"), 3));
    }
}
