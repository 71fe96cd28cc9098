//! The key-value state machine: an ordered map from keys to values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// The replicated key-value store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStore {
    limits: KvLimits,
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A snapshot: the pairs in key order.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    entries: Vec<PairOut<'a>>,
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
        KvStore { limits, entries: BTreeMap::new() }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
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
                self.entries.insert(key.clone(), value.clone());
                KvReply::Done
            }
            KvCommand::Append { key, value } => {
                self.entries.entry(key.clone()).or_default().extend_from_slice(value);
                KvReply::Done
            }
            KvCommand::Delete { key } => {
                self.entries.remove(key);
                KvReply::Done
            }
            KvCommand::Cas { key, expected, new } => {
                let previous = self.entries.get(key).cloned();
                let swapped = previous == *expected;
                if swapped {
                    self.entries.insert(key.clone(), new.clone());
                }
                KvReply::Cas { swapped, previous }
            }
        }
    }

    fn read(&self, command: &KvCommand) -> KvReply {
        KvReply::Value(self.get(command.key()).map(<[u8]>::to_vec))
    }

    fn snapshot(&self) -> Vec<u8> {
        let entries = self.entries.iter().map(|(key, value)| PairOut { key, value }).collect();
        postcard::to_allocvec(&SnapshotOut { entries }).expect("encoding into a Vec cannot fail")
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let decoded: SnapshotIn = postcard::from_bytes(snapshot)
            .map_err(|error| RestoreError { reason: error.to_string() })?;
        self.entries = decoded.entries.into_iter().map(|pair| (pair.key, pair.value)).collect();
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
}
