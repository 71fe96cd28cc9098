//! A snapshot of the store decoded into a map, a pair at a time as it is read: a restore holds
//! the map and no list of every pair besides.

use std::io;

use crate::encoding::{read_byte_string, read_varint};
use crate::kv::bucket::{self, BUCKET_BYTES, Bucket, Builder};
use crate::kv::pairs::Pairs;
use crate::state_machine::RestoreError;

/// A restored bucket is closed once it holds this many bytes: room is left for the writes
/// that follow, which would otherwise split nearly every bucket they reach.
const RESTORED_BUCKET_BYTES: usize = BUCKET_BYTES * 3 / 4;

/// Buckets inserted together, in the order that fills the map's leaves (`insert_spread`); a
/// power of two.
const RUN_BUCKETS: usize = 1024;

/// A run of buckets made, waiting to be inserted; each is taken out as it is.
type Run = Vec<Option<Bucket>>;

/// Reads the map that a snapshot of the store holds (`Pairs::encode_into` encodes it: a
/// count, then each key and value as a byte string) from `snapshot`, packing the pairs into
/// buckets as they come. Refused unless its keys are in increasing order, as every encoder of
/// the store wrote them.
pub(crate) fn read_pairs(snapshot: &mut dyn io::Read) -> Result<Pairs, RestoreError> {
    let count = read_varint(snapshot)?;
    let mut pairs = Pairs::default();
    // Not sized by `count`, which a damaged snapshot may overstate.
    let mut run: Run = Vec::with_capacity(RUN_BUCKETS);
    let mut filling = Filling::default();
    let mut previous: Option<Vec<u8>> = None;
    for _ in 0..count {
        let key = read_byte_string(snapshot)?;
        let value = read_byte_string(snapshot)?;
        if previous.as_ref().is_some_and(|previous| *previous >= key) {
            let reason = "the snapshot's keys are not in increasing order".to_string();
            return Err(RestoreError { reason });
        }
        let pair_len = bucket::pair_len(&key, &value);
        if filling.pairs > 0 && filling.builder.encoded_len() + pair_len > BUCKET_BYTES {
            filling.close(&mut pairs, &mut run);
        }
        filling.builder.push(&key, &value);
        filling.pairs += 1;
        if filling.builder.encoded_len() >= RESTORED_BUCKET_BYTES {
            filling.close(&mut pairs, &mut run);
        }
        previous = Some(key);
    }
    filling.close(&mut pairs, &mut run);
    insert_spread(&mut pairs, &mut run);
    Ok(pairs)
}

/// The bucket being filled.
#[derive(Default)]
struct Filling {
    builder: Builder,
    pairs: usize,
}

impl Filling {
    /// Adds the pairs pushed (if any) to the run as a bucket, and inserts the run if it is
    /// full.
    fn close(&mut self, pairs: &mut Pairs, run: &mut Run) {
        if self.pairs == 0 {
            return;
        }
        pairs.count_restored(self.pairs, self.builder.encoded_len());
        run.push(Some(self.builder.finish()));
        self.pairs = 0;
        if run.len() == RUN_BUCKETS {
            insert_spread(pairs, run);
        }
    }
}

/// Inserts `run` (buckets in increasing key order, after every key of `pairs`) and empties
/// it, in the bit-reversed order of the buckets' positions: the middle one first, then the
/// quarters, and so on. In key order, the map's B+tree would split each full leaf in two and
/// never add to the left half again, leaving every leaf half full; spread, the leaves fill.
fn insert_spread(pairs: &mut Pairs, run: &mut Run) {
    let slots = run.len().next_power_of_two();
    let position_bits = slots.trailing_zeros();
    for slot in 0..slots {
        let position = slot.reverse_bits().checked_shr(usize::BITS - position_bits).unwrap_or(0);
        if let Some(bucket) = run.get_mut(position).and_then(Option::take) {
            pairs.put_bucket(bucket);
        }
    }
    debug_assert!(run.iter().all(Option::is_none), "every bucket of the run was inserted");
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
        for count in [0, 1, 2, 3, 5, 100, 20 * RUN_BUCKETS + 7] {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..count)
                .map(|i| {
                    // Values of many lengths, some larger than a bucket.
                    let value_len = if i % 1000 == 999 { 2 * BUCKET_BYTES } else { i % 300 };
                    (format!("key-{i:06}").into_bytes(), vec![b'v'; value_len])
                })
                .collect();
            let restored = read_pairs(&mut &encoded(&pairs)[..]).expect("decodes");
            assert_eq!(restored.len(), count);
            for (key, value) in &pairs {
                assert_eq!(restored.get(key), Some(&value[..]));
            }
            let read: Vec<(Vec<u8>, Vec<u8>)> =
                restored.iter().map(|(key, value)| (key.to_vec(), value.to_vec())).collect();
            assert_eq!(read, pairs, "in order");
            assert_eq!(restored.encoded_len(), encoded(&pairs).len() as u64);
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
