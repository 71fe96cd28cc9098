//! A snapshot of the store decoded into a map, a pair at a time as it is read: a restore holds
//! the map and no list of every pair besides.

use std::io;
use std::sync::Arc;

use crate::encoding::{read_byte_string, read_varint};
use crate::kv::key::Key;
use crate::kv::pairs::Pairs;
use crate::state_machine::RestoreError;

/// Pairs inserted together, in the order that fills the map's leaves (`insert_spread`); a
/// power of two.
const RUN_PAIRS: usize = 4096;

/// A run of pairs read, waiting to be inserted; each is taken out as it is.
type Run = Vec<Option<(Key, Arc<[u8]>)>>;

/// Reads the map that a snapshot of the store holds (`store::SnapshotOut` encodes it: a
/// count, then each key and value as a byte string) from `snapshot`. Refused unless
/// its keys are in increasing order, as every encoder of the store wrote them.
pub(crate) fn read_pairs(snapshot: &mut dyn io::Read) -> Result<Pairs, RestoreError> {
    let count = read_varint(snapshot)?;
    let mut pairs = Pairs::new();
    // Not sized by `count`, which a damaged snapshot may overstate.
    let mut run: Run = Vec::with_capacity(RUN_PAIRS);
    let mut previous: Option<Key> = None;
    for _ in 0..count {
        let key = Key::new(&read_byte_string(snapshot)?);
        let value = Arc::<[u8]>::from(read_byte_string(snapshot)?);
        if previous.as_ref().is_some_and(|previous| *previous >= key) {
            let reason = "the snapshot's keys are not in increasing order".to_string();
            return Err(RestoreError { reason });
        }
        previous = Some(key.clone());
        run.push(Some((key, value)));
        if run.len() == RUN_PAIRS {
            insert_spread(&mut pairs, &mut run);
        }
    }
    insert_spread(&mut pairs, &mut run);
    Ok(pairs)
}

/// Inserts `run` (in increasing key order, after every key of `pairs`) and empties it, in the
/// bit-reversed order of the pairs' positions: the middle pair first, then the quarters, and so
/// on. In key order, the map's B+tree would split each full leaf in two and never add to the
/// left half again, leaving every leaf half full; spread, the leaves fill (a restored store
/// of 1.26M keys and 100-byte values: 170 bytes per pair instead of 219).
fn insert_spread(pairs: &mut Pairs, run: &mut Run) {
    let slots = run.len().next_power_of_two();
    let position_bits = slots.trailing_zeros();
    for slot in 0..slots {
        let position = slot.reverse_bits().checked_shr(usize::BITS - position_bits).unwrap_or(0);
        if let Some((key, value)) = run.get_mut(position).and_then(Option::take) {
            pairs.insert(key, value);
        }
    }
    debug_assert!(run.iter().all(Option::is_none), "every pair of the run was inserted");
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
            let restored = read_pairs(&mut &encoded(&pairs)[..]).expect("decodes");
            assert_eq!(restored.len(), count);
            for (key, value) in &pairs {
                assert_eq!(restored.get(&key[..]).map(|value| &value[..]), Some(&value[..]));
            }
        }
    }

    #[test]
    fn keys_out_of_order_or_repeated_are_refused() {
        let pair = |key: &str| (key.as_bytes().to_vec(), b"v".to_vec());
        assert!(read_pairs(&mut &encoded(&[pair("a"), pair("b")])[..]).is_ok());
        let unordered = read_pairs(&mut &encoded(&[pair("b"), pair("a")])[..]).unwrap_err();
        assert!(unordered.reason.contains("increasing order"), "{}", unordered.reason);
        assert!(read_pairs(&mut &encoded(&[pair("a"), pair("a")])[..]).is_err(), "a key twice");
    }
}
