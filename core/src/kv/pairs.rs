//! The store's keys and values, in key order: a persistent map of buckets (`bucket`), each a
//! run of pairs packed in one allocation under its first key, so that a snapshot's view is
//! taken in constant time while the store goes on changing, and a pair costs little more than
//! its encoding.

use core::fmt;
use std::io;
use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;

use crate::kv::bucket::{self, BUCKET_BYTES, Bucket, PairList, Place};
use crate::kv::key::Key;

/// Keys and values, in key order.
#[derive(Clone, Default)]
pub(crate) struct Pairs {
    /// Each bucket under its first key; together they hold every pair once, in order.
    buckets: OrdMap<Key, Bucket>,
    /// Pairs held.
    len: usize,
    /// The bytes of the snapshot's encoding of the pairs, but for their count.
    bytes: usize,
}

impl Pairs {
    /// Number of pairs.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let (_, bucket) = self.buckets.get_prev(key)?;
        match bucket::locate(bucket, key) {
            Place::Found(at) => Some(&bucket[at.value]),
            Place::Missing { .. } => None,
        }
    }

    /// Whether the map holds `key`.
    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Puts `value` under `key`, replacing any value it had.
    pub(crate) fn insert(&mut self, key: &[u8], value: &[u8]) {
        let Some((_, bucket)) = self.buckets.get_prev_mut(key) else {
            return self.insert_first(key, value);
        };
        let place = bucket::locate(bucket, key);
        let replaced = match &place {
            Place::Found(at) => {
                // Unshared and the same size: overwritten where it lies, allocating nothing.
                // A view cannot see it: `get_prev_mut` copied every node of the map that a
                // view shares, so a bucket a view holds is counted twice and not unshared.
                if at.value.len() == value.len() {
                    if let Some(bytes) = Arc::get_mut(bucket) {
                        bytes[at.value.clone()].copy_from_slice(value);
                        return;
                    }
                }
                at.entry.len() + at.value.len()
            }
            Place::Missing { .. } => {
                self.len += 1;
                0
            }
        };
        let added = bucket::pair_len(key, value);
        self.bytes = self.bytes - replaced + added;
        if bucket::encoded_len(bucket) - replaced + added <= BUCKET_BYTES {
            *bucket = bucket::spliced(bucket, &place, key, value);
            return;
        }
        // The first bucket keeps the first key (the key put is not below it).
        let mut rebuilt = bucket::rebuilt_with(bucket, key, value).into_iter();
        *bucket = rebuilt.next().expect("a bucket for the pairs");
        rebuilt.for_each(|split| self.put_bucket(split));
    }

    /// Puts a pair whose key is below every bucket's first key (or the map is empty): into
    /// the first bucket, whose first key it becomes.
    fn insert_first(&mut self, key: &[u8], value: &[u8]) {
        self.len += 1;
        self.bytes += bucket::pair_len(key, value);
        let first = self.buckets.get_min().cloned();
        let mut list = PairList::new();
        list.push((key, value));
        if let Some((first_key, first)) = &first {
            self.buckets.remove(first_key.as_bytes());
            list.extend(bucket::pairs(first));
        }
        bucket::buckets(&list).into_iter().for_each(|rebuilt| self.put_bucket(rebuilt));
    }

    /// Puts `bucket` into the map under its first key; its keys are in no other bucket and
    /// lie between those of the buckets before and after it.
    pub(crate) fn put_bucket(&mut self, bucket: Bucket) {
        let first = Key::new(bucket::first_key(&bucket));
        let replaced = self.buckets.insert(first, bucket);
        debug_assert!(replaced.is_none(), "a bucket's first key is in no other bucket");
    }

    /// Counts in `len` and `bytes` a bucket's pairs that [`put_bucket`](Self::put_bucket)
    /// adds while a map is restored.
    pub(crate) fn count_restored(&mut self, pairs: usize, bytes: usize) {
        self.len += pairs;
        self.bytes += bytes;
    }

    /// Removes `key`; whether the map held it. A bucket left under a quarter full takes in
    /// the bucket after it if both fit in one, so that removals do not leave the map a bucket
    /// per pair.
    pub(crate) fn remove(&mut self, key: &[u8]) -> bool {
        let Some((first, bucket)) = self.buckets.get_prev(key) else {
            return false;
        };
        let Place::Found(at) = bucket::locate(bucket, key) else {
            return false;
        };
        self.len -= 1;
        self.bytes -= at.entry.len() + at.value.len();
        let (first, bucket) = (first.clone(), bucket.clone());
        let after = (Bound::Excluded(first.as_bytes()), Bound::Unbounded);
        let next = self.buckets.range::<_, [u8]>(after).next();
        let next = next.map(|(first, next)| (first.clone(), next.clone()));
        let mut list: PairList<'_> =
            bucket::pairs(&bucket).filter(|(held, _)| *held != key).collect();
        let left: usize = list.iter().map(|(key, value)| bucket::pair_len(key, value)).sum();
        if let Some((next_first, next)) = &next {
            if left < BUCKET_BYTES / 4 && left + next.len() <= BUCKET_BYTES {
                self.buckets.remove(next_first.as_bytes());
                list.extend(bucket::pairs(next));
            }
        }
        self.buckets.remove(first.as_bytes());
        if !list.is_empty() {
            bucket::buckets(&list).into_iter().for_each(|rebuilt| self.put_bucket(rebuilt));
        }
        true
    }

    /// The pairs from `from` on, in key order.
    pub(crate) fn range_from<'a>(
        &'a self,
        from: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        // The bucket that would hold `from` may hold keys before it too.
        let start = match self.buckets.get_prev(from) {
            Some((first, _)) => Bound::Included(first.as_bytes()),
            None => Bound::Unbounded,
        };
        self.buckets
            .range::<_, [u8]>((start, Bound::Unbounded))
            .flat_map(|(_, bucket)| bucket::pairs(bucket))
            .skip_while(move |(key, _)| *key < from)
    }

    /// Every pair, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.buckets.values().flat_map(|bucket| bucket::pairs(bucket))
    }

    /// The size of [`encode_into`](Self::encode_into)'s encoding, without writing it.
    pub(crate) fn encoded_len(&self) -> u64 {
        (bucket::varint_len(self.len) + self.bytes) as u64
    }

    /// Writes the pairs as a snapshot holds them: their count, then each key and value as a
    /// byte string, in key order (postcard's encoding of a sequence of such pairs).
    pub(crate) fn encode_into(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.write_count(out)?;
        self.buckets.values().try_for_each(|bucket| bucket::write_pairs(bucket, out))
    }

    /// Writes what [`encode_into`](Self::encode_into) writes, letting go of each bucket, and
    /// of each node of the map, once written (those the store still shares are freed when
    /// the store lets go of them too).
    pub(crate) fn encode_consuming(self, out: &mut dyn io::Write) -> io::Result<()> {
        self.write_count(out)?;
        self.buckets.into_iter().try_for_each(|(_, bucket)| bucket::write_pairs(&bucket, out))
    }

    /// The count of pairs that an encoding starts with.
    fn write_count(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let mut count = Vec::new();
        bucket::push_varint(&mut count, self.len);
        out.write_all(&count)
    }
}

impl PartialEq for Pairs {
    /// The same pairs, however they lie in buckets.
    fn eq(&self, other: &Pairs) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Pairs {}

impl fmt::Debug for Pairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;
    use crate::prng::Prng;

    /// A pair as the store's snapshots were encoded before buckets: through serde.
    #[derive(Serialize)]
    struct PairOut<'a> {
        #[serde(with = "crate::bytes")]
        key: &'a [u8],
        #[serde(with = "crate::bytes")]
        value: &'a [u8],
    }

    /// Every bucket is non-empty, under its first key, after the bucket before it, and within
    /// [`BUCKET_BYTES`] unless it holds one pair; the counts are the buckets'.
    fn assert_sound(pairs: &Pairs) {
        let mut previous_last: Option<&[u8]> = None;
        let (mut len, mut bytes) = (0, 0);
        for (first, bucket) in &pairs.buckets {
            assert_eq!(bucket::first_key(bucket), first.as_bytes());
            let count = bucket::pairs(bucket).count();
            let encoded: usize =
                bucket::pairs(bucket).map(|(key, value)| bucket::pair_len(key, value)).sum();
            assert!(encoded <= BUCKET_BYTES || count == 1, "{encoded} bytes");
            assert!(
                bucket::pairs(bucket).zip(bucket::pairs(bucket).skip(1)).all(|(a, b)| a.0 < b.0)
            );
            assert!(previous_last.is_none_or(|last| last < first.as_bytes()));
            previous_last = bucket::pairs(bucket).last().map(|(key, _)| key);
            len += count;
            bytes += encoded;
        }
        assert_eq!((pairs.len, pairs.bytes), (len, bytes));
    }

    fn encoded(pairs: &Pairs) -> Vec<u8> {
        let mut out = Vec::new();
        pairs.encode_into(&mut out).expect("a Vec takes anything");
        out
    }

    /// Keys short and long (inline and shared in the map), values empty, small and larger
    /// than a bucket.
    fn random_pair(rng: &mut Prng) -> (Vec<u8>, Vec<u8>) {
        let key_len = [0, 1, 3, 14, 22, 23, 40][rng.range_inclusive(0, 6) as usize];
        let mut key = vec![b'k'; key_len];
        if let Some(last) = key.last_mut() {
            *last = rng.range_inclusive(0, 255) as u8;
        }
        if key_len > 1 {
            key[0] = rng.range_inclusive(b'a'.into(), b'h'.into()) as u8;
        }
        let value_len = match rng.range_inclusive(0, 20) {
            0 => 0,
            1 => 3 * BUCKET_BYTES,
            _ => rng.range_inclusive(1, 200) as usize,
        };
        (key, vec![rng.range_inclusive(0, 255) as u8; value_len])
    }

    #[test]
    fn the_pairs_are_those_of_an_ordered_map_however_they_were_written() {
        let mut rng = Prng::seeded(13);
        let mut pairs = Pairs::default();
        let mut model = BTreeMap::new();
        let mut views = Vec::new();
        for step in 0..6000 {
            let (key, value) = random_pair(&mut rng);
            if rng.chance(1, 4) {
                assert_eq!(pairs.remove(&key), model.remove(&key).is_some());
            } else {
                pairs.insert(&key, &value);
                model.insert(key.clone(), value);
            }
            assert_eq!(pairs.get(&key), model.get(&key).map(Vec::as_slice));
            assert_eq!(pairs.contains_key(&key), model.contains_key(&key));
            if step % 1000 == 0 {
                // A view keeps what it saw, and writes while it lives copy the buckets.
                views.push((pairs.clone(), model.clone()));
            }
        }
        assert_sound(&pairs);
        assert_eq!(pairs.len(), model.len());
        let listed: Vec<_> = pairs.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(listed, model.clone().into_iter().collect::<Vec<_>>());
        for from in [&b""[..], b"a", b"dk", b"kk", b"zz"] {
            let range: Vec<_> = pairs.range_from(from).map(|(k, _)| k.to_vec()).collect();
            let expected: Vec<_> = model.range(from.to_vec()..).map(|(k, _)| k.clone()).collect();
            assert_eq!(range, expected, "from {from:?}");
        }
        for (view, seen) in &views {
            assert_sound(view);
            assert!(view.iter().eq(seen.iter().map(|(k, v)| (&k[..], &v[..]))));
        }
        // The encoding is the one serde wrote, and its size is known before it is written.
        let serde_pairs: Vec<PairOut<'_>> =
            model.iter().map(|(key, value)| PairOut { key, value }).collect();
        let expected = postcard::to_allocvec(&serde_pairs).expect("encodes");
        assert_eq!(encoded(&pairs), expected);
        assert_eq!(pairs.encoded_len(), expected.len() as u64);
    }

    #[test]
    fn an_unshared_value_of_the_same_length_is_overwritten_in_place_and_a_shared_one_is_not() {
        let mut pairs = Pairs::default();
        pairs.insert(b"a", b"1");
        pairs.insert(b"b", b"2");
        let bucket = |pairs: &Pairs| pairs.buckets.get(&b"a"[..]).expect("one bucket").clone();
        let address = Arc::as_ptr(&bucket(&pairs));
        pairs.insert(b"b", b"3");
        assert_eq!(Arc::as_ptr(&bucket(&pairs)), address, "overwritten where it lay");
        let view = pairs.clone();
        pairs.insert(b"b", b"4");
        assert_ne!(Arc::as_ptr(&bucket(&pairs)), address, "a view shares the bucket");
        assert_eq!((view.get(b"b"), pairs.get(b"b")), (Some(&b"3"[..]), Some(&b"4"[..])));
        assert_eq!(pairs, {
            let mut same = Pairs::default();
            same.insert(b"b", b"4");
            same.insert(b"a", b"1");
            same
        });
    }

    #[test]
    fn a_view_written_as_it_is_let_go_of_writes_the_same_bytes_and_shares_nothing_after() {
        let mut pairs = Pairs::default();
        for i in 0..2000u32 {
            pairs.insert(format!("key-{i}").as_bytes(), &[7; 90]);
        }
        let view = pairs.clone();
        pairs.insert(b"key-7", b"changed");
        let mut expected = Vec::new();
        view.encode_into(&mut expected).expect("a Vec takes anything");
        let mut written = Vec::new();
        view.encode_consuming(&mut written).expect("a Vec takes anything");
        assert_eq!(written, expected);
        assert!(pairs.buckets.values().all(|bucket| Arc::strong_count(bucket) == 1));
    }

    #[test]
    fn a_view_sees_none_of_the_puts_made_after_it_whichever_way_they_are_written() {
        let mut pairs = Pairs::default();
        for i in 10..40u8 {
            pairs.insert(&[b'k', i], &[i; 100]);
        }
        assert!(pairs.buckets.len() > 2, "several buckets");
        let view = pairs.clone();
        let seen = encoded(&view);
        pairs.insert(&[b'k', 12], &[0; 100]); // same length: in place were it unshared
        pairs.insert(&[b'k', 20], &[0; 7]); // shorter: spliced
        pairs.insert(&[b'k', 21, 0], b"new"); // a new key: spliced
        for i in 0..12 {
            pairs.insert(&[b'k', 30, i], &[1; 100]); // new keys that split their bucket
        }
        pairs.insert(b"a", b"first"); // below every bucket
        assert!(pairs.remove(&[b'k', 39]));
        assert_eq!(encoded(&view), seen, "the view's bytes are those it was taken with");
        assert_eq!(view.get(&[b'k', 12]), Some(&[12; 100][..]));
        assert_eq!(view.get(&[b'k', 21, 0]), None);
        assert_eq!((view.len(), pairs.len()), (30, 30 + 1 + 12 + 1 - 1));
        assert_eq!(pairs.get(&[b'k', 12]), Some(&[0; 100][..]));
        assert_sound(&view);
        assert_sound(&pairs);
    }

    #[test]
    fn keys_below_every_bucket_and_removed_first_keys_move_the_buckets_key() {
        let mut pairs = Pairs::default();
        let value = vec![0; 100];
        for key in (10..60u8).rev() {
            pairs.insert(&[key], &value);
            assert_sound(&pairs);
        }
        assert!(pairs.buckets.len() > 3, "split into several buckets");
        for key in 10..60u8 {
            assert!(pairs.remove(&[key]));
            assert!(!pairs.remove(&[key]), "removed once");
            assert_sound(&pairs);
            assert_eq!(
                pairs.iter().next().map(|(key, _)| key.to_vec()),
                (key < 59).then(|| vec![key + 1])
            );
        }
        assert_eq!((pairs.len(), pairs.buckets.len(), pairs.encoded_len()), (0, 0, 1));
    }

    #[test]
    fn buckets_emptied_by_removals_are_merged() {
        let mut pairs = Pairs::default();
        let mut rng = Prng::seeded(7);
        let mut keys: Vec<Vec<u8>> =
            (0..400u32).map(|i| format!("key-{i:04}").into_bytes()).collect();
        for key in &keys {
            pairs.insert(key, &[1; 100]);
        }
        // Removed in a random order, all but every tenth.
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.range_inclusive(0, i as u64) as usize);
        }
        for key in keys.iter().filter(|key| key.last() != Some(&b'0')) {
            assert!(pairs.remove(key));
        }
        assert_sound(&pairs);
        assert_eq!(pairs.len(), 40);
        // 40 pairs of 110 bytes fit in 5 buckets; unmerged, there would be one per pair or so.
        assert!(pairs.buckets.len() <= 12, "{} buckets", pairs.buckets.len());
    }
}
