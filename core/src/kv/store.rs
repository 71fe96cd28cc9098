//! The key-value state machine: an ordered map from keys to values.
//!
//! The map is persistent (`imbl::OrdMap`, a B+tree whose nodes are shared between copies and
//! copied on write): a snapshot's view is a copy of it, taken in constant time between two
//! events, and encoded on another thread while the node goes on applying commands. The
//! standard library has no such map, and writing a balanced persistent tree here would be a
//! second, less tested copy of a well-kept one. Keys and values are reference counted, so the
//! nodes a write copies while a view is alive copy pointers, not bytes. The map stays ordered:
//! range scans come later.

use std::io;
use std::sync::Arc;

use imbl::OrdMap;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

use crate::kv::command::{KvCommand, KvReply};
use crate::state_machine::{InvalidCommand, RestoreError, StateMachine};

/// Size limits, checked before a command reaches the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvLimits {
    /// Longest key. Default 4 KiB.
    pub max_key_bytes: usize,
    /// Longest value in a command, and longest value an append may produce. Default 1 MiB.
    pub max_value_bytes: usize,
}

impl Default for KvLimits {
    fn default() -> KvLimits {
        KvLimits { max_key_bytes: 4 << 10, max_value_bytes: 1 << 20 }
    }
}

/// Keys and values, in key order.
type Pairs = OrdMap<Arc<[u8]>, Arc<[u8]>>;

/// The replicated key-value store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    limits: KvLimits,
    entries: Pairs,
}

/// The store at one point in time, unchanged by later commands (see `StateMachine::View`).
#[derive(Clone, Debug)]
pub struct KvView {
    entries: Pairs,
}

/// A snapshot: the pairs in key order.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    entries: PairsOut<'a>,
}

/// The pairs of a view, encoded as a sequence without collecting them first.
struct PairsOut<'a>(&'a Pairs);

impl Serialize for PairsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sequence = serializer.serialize_seq(Some(self.0.len()))?;
        for (key, value) in self.0 {
            sequence.serialize_element(&PairOut { key, value })?;
        }
        sequence.end()
    }
}

#[derive(Serialize)]
struct PairOut<'a> {
    #[serde(with = "crate::bytes")]
    key: &'a [u8],
    #[serde(with = "crate::bytes")]
    value: &'a [u8],
}

/// `SnapshotOut` as decoded.
#[derive(Deserialize)]
struct SnapshotIn {
    entries: Vec<PairIn>,
}

#[derive(Deserialize)]
struct PairIn {
    #[serde(with = "crate::bytes")]
    key: Vec<u8>,
    #[serde(with = "crate::bytes")]
    value: Vec<u8>,
}

impl KvStore {
    /// An empty store with these limits.
    pub fn new(limits: KvLimits) -> KvStore {
        KvStore { limits, entries: OrdMap::new() }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(|value| &value[..])
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn check_value(&self, value: &[u8]) -> Result<(), InvalidCommand> {
        if value.len() > self.limits.max_value_bytes {
            return Err(InvalidCommand {
                reason: format!(
                    "value of {} bytes exceeds the limit of {} bytes",
                    value.len(),
                    self.limits.max_value_bytes
                ),
            });
        }
        Ok(())
    }
}

impl StateMachine for KvStore {
    type Command = KvCommand;
    type Reply = KvReply;
    type View = KvView;

    fn is_read_only(command: &KvCommand) -> bool {
        matches!(command, KvCommand::Get { .. })
    }

    fn validate(&self, command: &KvCommand) -> Result<(), InvalidCommand> {
        let key = command.key();
        if key.len() > self.limits.max_key_bytes {
            return Err(InvalidCommand {
                reason: format!(
                    "key of {} bytes exceeds the limit of {} bytes",
                    key.len(),
                    self.limits.max_key_bytes
                ),
            });
        }
        match command {
            KvCommand::Get { .. } | KvCommand::Delete { .. } => Ok(()),
            KvCommand::Put { value, .. } => self.check_value(value),
            KvCommand::Cas { expected, new, .. } => {
                self.check_value(new)?;
                expected.as_deref().map_or(Ok(()), |expected| self.check_value(expected))
            }
            KvCommand::Append { key, value } => {
                let current = self.get(key).map_or(0, <[u8]>::len);
                let grown = current.saturating_add(value.len());
                if grown > self.limits.max_value_bytes {
                    return Err(InvalidCommand {
                        reason: format!(
                            "append would grow the value to {grown} bytes, over the limit of {} bytes",
                            self.limits.max_value_bytes
                        ),
                    });
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, command: &KvCommand) -> KvReply {
        match command {
            KvCommand::Get { .. } => self.read(command),
            KvCommand::Put { key, value } => {
                self.entries.insert(Arc::from(&key[..]), Arc::from(&value[..]));
                KvReply::Done
            }
            KvCommand::Append { key, value } => {
                let mut grown = self.get(key).map(<[u8]>::to_vec).unwrap_or_default();
                grown.extend_from_slice(value);
                self.entries.insert(Arc::from(&key[..]), Arc::from(grown));
                KvReply::Done
            }
            KvCommand::Delete { key } => {
                self.entries.remove(&key[..]);
                KvReply::Done
            }
            KvCommand::Cas { key, expected, new } => {
                let previous = self.get(key).map(<[u8]>::to_vec);
                let swapped = previous == *expected;
                if swapped {
                    self.entries.insert(Arc::from(&key[..]), Arc::from(&new[..]));
                }
                KvReply::Cas { swapped, previous }
            }
        }
    }

    fn read(&self, command: &KvCommand) -> KvReply {
        KvReply::Value(self.get(command.key()).map(<[u8]>::to_vec))
    }

    fn view(&self) -> KvView {
        KvView { entries: self.entries.clone() }
    }

    fn encoded_len(view: &KvView) -> u64 {
        let snapshot = SnapshotOut { entries: PairsOut(&view.entries) };
        crate::encoding::encoded_len(&snapshot)
    }

    fn encode_into(view: &KvView, out: &mut dyn io::Write) -> io::Result<()> {
        let snapshot = SnapshotOut { entries: PairsOut(&view.entries) };
        postcard::to_io(&snapshot, out).map(drop).map_err(io::Error::other)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let decoded: SnapshotIn = postcard::from_bytes(snapshot)
            .map_err(|error| RestoreError { reason: error.to_string() })?;
        self.entries = decoded
            .entries
            .into_iter()
            .map(|pair| -> (Arc<[u8]>, Arc<[u8]>) { (pair.key.into(), pair.value.into()) })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn commands_change_the_store_as_documented() {
        let mut store = KvStore::default();
        let x = || bytes("x");
        assert_eq!(store.apply(&KvCommand::Get { key: x() }), KvReply::Value(None));
        store.apply(&KvCommand::Append { key: x(), value: bytes("a") });
        store.apply(&KvCommand::Append { key: x(), value: bytes("b") });
        assert_eq!(store.apply(&KvCommand::Get { key: x() }), KvReply::Value(Some(bytes("ab"))));
        store.apply(&KvCommand::Put { key: x(), value: bytes("p") });
        let failed = store.apply(&KvCommand::Cas { key: x(), expected: None, new: bytes("n") });
        assert_eq!(failed, KvReply::Cas { swapped: false, previous: Some(bytes("p")) });
        let swapped =
            store.apply(&KvCommand::Cas { key: x(), expected: Some(bytes("p")), new: bytes("n") });
        assert_eq!(swapped, KvReply::Cas { swapped: true, previous: Some(bytes("p")) });
        store.apply(&KvCommand::Delete { key: x() });
        assert_eq!(store.read(&KvCommand::Get { key: x() }), KvReply::Value(None));
        let created = store.apply(&KvCommand::Cas { key: x(), expected: None, new: bytes("c") });
        assert_eq!(created, KvReply::Cas { swapped: true, previous: None });
    }

    #[test]
    fn missing_and_empty_are_different_for_cas() {
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: bytes("k"), value: Vec::new() });
        let reply =
            store.apply(&KvCommand::Cas { key: bytes("k"), expected: None, new: bytes("v") });
        assert_eq!(reply, KvReply::Cas { swapped: false, previous: Some(Vec::new()) });
    }

    #[test]
    fn oversized_keys_values_and_appends_are_refused() {
        let mut store = KvStore::new(KvLimits { max_key_bytes: 4, max_value_bytes: 8 });
        let long_key = KvCommand::Get { key: bytes("12345") };
        assert!(store.validate(&long_key).unwrap_err().reason.contains("key of 5 bytes"));
        let long_value = KvCommand::Put { key: bytes("k"), value: vec![0; 9] };
        assert!(store.validate(&long_value).is_err());
        store.apply(&KvCommand::Put { key: bytes("k"), value: vec![0; 6] });
        let growing = KvCommand::Append { key: bytes("k"), value: vec![0; 3] };
        assert!(store.validate(&growing).unwrap_err().reason.contains("9 bytes"));
        assert!(store.validate(&KvCommand::Append { key: bytes("k"), value: vec![0; 2] }).is_ok());
    }

    #[test]
    fn a_snapshot_restores_the_same_store() {
        let mut store = KvStore::default();
        for i in 0..10 {
            store.apply(&KvCommand::Put { key: bytes(&format!("k{i}")), value: bytes("v") });
        }
        let mut restored = KvStore::default();
        restored.restore(&store.snapshot()).expect("decodes");
        assert_eq!(restored, store);
        assert!(restored.restore(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn a_view_keeps_the_state_it_was_taken_at() {
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: bytes("a"), value: bytes("1") });
        store.apply(&KvCommand::Put { key: bytes("b"), value: bytes("2") });
        let before = store.clone();
        let view = store.view();
        store.apply(&KvCommand::Put { key: bytes("a"), value: bytes("changed") });
        store.apply(&KvCommand::Append { key: bytes("b"), value: bytes("+") });
        store.apply(&KvCommand::Delete { key: bytes("a") });
        store.apply(&KvCommand::Put { key: bytes("c"), value: bytes("3") });
        let mut restored = KvStore::default();
        restored.restore(&KvStore::encode(&view)).expect("decodes");
        assert_eq!(restored, before);
        assert_eq!(store.get(b"b"), Some(&b"2+"[..]));
    }

    #[test]
    fn the_encoding_is_the_one_snapshots_had_before_views() {
        // Pairs in key order as a postcard sequence: what stored snapshots hold.
        let mut store = KvStore::default();
        store.apply(&KvCommand::Put { key: bytes("b"), value: bytes("2") });
        store.apply(&KvCommand::Put { key: bytes("a"), value: bytes("1") });
        assert_eq!(store.snapshot(), [2, 1, b'a', 1, b'1', 1, b'b', 1, b'2']);
        // Lengths past 127 take two bytes; the size is known before the encoding is written.
        store.apply(&KvCommand::Put { key: bytes("c"), value: vec![b'v'; 300] });
        let encoded = store.snapshot();
        assert_eq!(&encoded[9..13], [1, b'c', 0xac, 0x02]);
        assert_eq!(KvStore::encoded_len(&store.view()), encoded.len() as u64);
    }
}
