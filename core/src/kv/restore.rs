//! A snapshot of the store decoded into a map: the pairs go into the map as they are decoded,
//! borrowed from the snapshot's bytes, so that a restore holds the snapshot and the map and no
//! list of every pair besides.

use core::fmt;
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::kv::key::Key;
use crate::kv::pairs::Pairs;
use crate::state_machine::RestoreError;

/// Pairs inserted together, in the order that fills the map's leaves (`insert_spread`); a
/// power of two.
const RUN_PAIRS: usize = 4096;

/// The map a snapshot of the store holds (`store::SnapshotOut` encodes it). Refused unless its
/// keys are in increasing order, as every encoder of the store wrote them.
pub(crate) fn decode_pairs(snapshot: &[u8]) -> Result<Pairs, RestoreError> {
    let decoded: SnapshotIn = postcard::from_bytes(snapshot)
        .map_err(|error| RestoreError { reason: error.to_string() })?;
    decoded.entries.0.ok_or_else(|| RestoreError {
        reason: "the snapshot's keys are not in increasing order".to_string(),
    })
}

#[derive(Deserialize)]
struct SnapshotIn {
    entries: PairsIn,
}

/// The pairs, or `None` once a key is not after the one before: told apart here rather than as
/// a decoding error, whose message postcard does not keep.
struct PairsIn(Option<Pairs>);

impl<'de> Deserialize<'de> for PairsIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PairsIn, D::Error> {
        deserializer.deserialize_seq(PairsVisitor)
    }
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = PairsIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of keys and values in increasing key order")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<PairsIn, A::Error> {
        let mut pairs = Pairs::new();
        let mut run: Vec<PairIn<'de>> = Vec::with_capacity(RUN_PAIRS);
        let mut previous: Option<&'de [u8]> = None;
        while let Some(pair) = sequence.next_element::<PairIn<'de>>()? {
            if previous.is_some_and(|previous| previous >= pair.key) {
                return Ok(PairsIn(None));
            }
            previous = Some(pair.key);
            run.push(pair);
            if run.len() == RUN_PAIRS {
                insert_spread(&mut pairs, &mut run);
            }
        }
        insert_spread(&mut pairs, &mut run);
        Ok(PairsIn(Some(pairs)))
    }
}

/// A pair borrowed from the snapshot's bytes.
#[derive(Deserialize)]
struct PairIn<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

/// Inserts `run` (in increasing key order, after every key of `pairs`) and empties it, in the
/// bit-reversed order of the pairs' positions: the middle pair first, then the quarters, and so
/// on. In key order, the map's B+tree would split each full leaf in two and never add to the
/// left half again, leaving every leaf half full; spread, the leaves fill (a restored store
/// of 1.26M keys and 100-byte values: 170 bytes per pair instead of 219).
fn insert_spread(pairs: &mut Pairs, run: &mut Vec<PairIn<'_>>) {
    let slots = run.len().next_power_of_two();
    let position_bits = slots.trailing_zeros();
    for slot in 0..slots {
        let position = slot.reverse_bits().checked_shr(usize::BITS - position_bits).unwrap_or(0);
        if let Some(pair) = run.get(position) {
            pairs.insert(Key::new(pair.key), Arc::from(pair.value));
        }
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of `pairs` as the store encodes one.
    fn encoded(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut bytes = postcard::to_allocvec(&pairs.len()).expect("encodes");
        for (key, value) in pairs {
            for part in [key, value] {
                bytes.extend(postcard::to_allocvec(&part.len()).expect("encodes"));
                bytes.extend_from_slice(part);
            }
        }
        bytes
    }

    #[test]
    fn every_pair_of_runs_of_any_length_is_restored() {
        for count in [0, 1, 2, 3, 5, RUN_PAIRS - 1, RUN_PAIRS, RUN_PAIRS + 1, 3 * RUN_PAIRS + 7] {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..count)
                .map(|i| (format!("key-{i:06}").into_bytes(), i.to_string().into_bytes()))
                .collect();
            let restored = decode_pairs(&encoded(&pairs)).expect("decodes");
            assert_eq!(restored.len(), count);
            for (key, value) in &pairs {
                assert_eq!(restored.get(&key[..]).map(|value| &value[..]), Some(&value[..]));
            }
        }
    }

    #[test]
    fn keys_out_of_order_or_repeated_are_refused() {
        let pair = |key: &str| (key.as_bytes().to_vec(), b"v".to_vec());
        assert!(decode_pairs(&encoded(&[pair("a"), pair("b")])).is_ok());
        let unordered = decode_pairs(&encoded(&[pair("b"), pair("a")])).unwrap_err();
        assert!(unordered.reason.contains("increasing order"), "{}", unordered.reason);
        assert!(decode_pairs(&encoded(&[pair("a"), pair("a")])).is_err(), "a key twice");
    }
}
