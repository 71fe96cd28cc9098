//! A bucket: a run of pairs adjacent in key order, held in one allocation. Packed so, a pair
//! costs little more than its encoding and a share of its bucket's header and slot in the map,
//! where a pair of its own in the map cost a slot of 40 bytes in leaves about 70% full and an
//! allocation rounded up to 16 bytes with a 16-byte header. Buckets are reference counted: a
//! snapshot's view shares them with the store until a write replaces one.
//!
//! Layout: the length of the index, the index, then the values one after the other. The
//! index holds each pair's key length, key and value length, as varints and bytes: the
//! snapshot's encoding of the pair but for its value. A lookup reads the index, a few cache
//! lines, rather than stepping from one pair to the next across the values; a snapshot writes
//! each pair's index entry and then its value.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use smallvec::SmallVec;

/// A bucket's pairs, in increasing key order; never empty in a map.
pub(crate) type Bucket = Arc<[u8]>;

/// A bucket whose pairs' encoding grows past this many bytes is split, unless it holds a
/// single pair. Each write copies its bucket (or overwrites the value in place when no view
/// shares the bucket and the length is unchanged), and a write during a snapshot's save keeps
/// the old bucket alive with the view: small enough for both to stay cheap, large enough that
/// a bucket's overhead (about 90 bytes: header, slot and its share of the map's nodes) is
/// spread over several pairs.
pub(crate) const BUCKET_BYTES: usize = 1024;

/// A key and its value, borrowed.
pub(crate) type Pair<'a> = (&'a [u8], &'a [u8]);

/// The pairs of one bucket, borrowed: as many as a bucket of small pairs holds, inline.
pub(crate) type PairList<'a> = SmallVec<[Pair<'a>; 16]>;

/// Where one pair lies in a bucket's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PairAt {
    /// Its entry in the index: key length, key, value length.
    pub(crate) entry: Range<usize>,
    pub(crate) key: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// Where a key lies in a bucket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The bucket holds the key, in this pair.
    Found(PairAt),
    /// The bucket does not hold the key; its pair would go at these offsets of the bucket:
    /// its entry into the index, its value among the values.
    Missing { entry: usize, value: usize },
}

impl Place {
    /// The bytes of the bucket that a pair put at this place replaces: its entry and its
    /// value where found, empty ranges where the key is missing.
    fn replaced(&self) -> (Range<usize>, Range<usize>) {
        match self {
            Place::Found(at) => (at.entry.clone(), at.value.clone()),
            Place::Missing { entry, value } => (*entry..*entry, *value..*value),
        }
    }
}

/// The bytes `key` and `value` take in a snapshot.
pub(crate) fn pair_len(key: &[u8], value: &[u8]) -> usize {
    varint_len(key.len()) + key.len() + varint_len(value.len()) + value.len()
}

/// The bytes postcard takes to encode `value` as a varint.
pub(crate) fn varint_len(value: usize) -> usize {
    let bits = usize::BITS - value.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

/// Appends `value` as a postcard varint.
pub(crate) fn push_varint(out: &mut Vec<u8>, value: usize) {
    let (bytes, len) = varint(value);
    out.extend_from_slice(&bytes[..len]);
}

/// `value` as a postcard varint (an unsigned LEB128): its bytes, and how many of them.
fn varint(mut value: usize) -> ([u8; 10], usize) {
    let mut bytes = [0; 10];
    let mut len = 0;
    while value >= 0x80 {
        bytes[len] = (value & 0x7f) as u8 | 0x80;
        value >>= 7;
        len += 1;
    }
    bytes[len] = value as u8;
    (bytes, len + 1)
}

/// Where each pair of a bucket lies, in order.
pub(crate) fn places(bucket: &[u8]) -> impl Iterator<Item = PairAt> + '_ {
    let (index_len, mut offset) = read_varint(bucket, 0);
    let index_end = offset + index_len;
    let mut value_start = index_end;
    std::iter::from_fn(move || {
        (offset < index_end).then(|| {
            let (key_len, key_start) = read_varint(bucket, offset);
            let key = key_start..key_start + key_len;
            let (value_len, entry_end) = read_varint(bucket, key.end);
            let value = value_start..value_start + value_len;
            assert!(value.end <= bucket.len(), "a bucket holds whole pairs");
            let at = PairAt { entry: offset..entry_end, key, value };
            (offset, value_start) = (entry_end, at.value.end);
            at
        })
    })
}

/// The pairs of a bucket, in order.
pub(crate) fn pairs(bucket: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    places(bucket).map(|at| (&bucket[at.key], &bucket[at.value]))
}

/// The first key of a non-empty bucket.
pub(crate) fn first_key(bucket: &[u8]) -> &[u8] {
    pairs(bucket).next().expect("a bucket holds a pair").0
}

/// Where `key` lies in `bucket`, or where its pair would go: a scan of the index, which a
/// bucket's size keeps short.
pub(crate) fn locate(bucket: &[u8], key: &[u8]) -> Place {
    for at in places(bucket) {
        match bucket[at.key.clone()].cmp(key) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return Place::Found(at),
            std::cmp::Ordering::Greater => {
                return Place::Missing { entry: at.entry.start, value: at.value.start };
            }
        }
    }
    Place::Missing { entry: index_range(bucket).end, value: bucket.len() }
}

/// Where a bucket's index lies in its bytes (after the index's length).
fn index_range(bucket: &[u8]) -> Range<usize> {
    let (index_len, start) = read_varint(bucket, 0);
    start..start + index_len
}

/// The bytes a bucket's pairs take in a snapshot: the bucket but for its index's length.
pub(crate) fn encoded_len(bucket: &[u8]) -> usize {
    bucket.len() - index_range(bucket).start
}

/// `bucket` with `key` and `value` put at `place` (as [`locate`] found it), replacing the
/// pair there if the key was found: copied from the old bytes in one pass, the pieces of the
/// index and of the values on either side of the place each moved whole, rather than decoded
/// into a list of pairs and encoded again. Bucket sizes are the caller's concern.
pub(crate) fn spliced(bucket: &[u8], place: &Place, key: &[u8], value: &[u8]) -> Bucket {
    let index = index_range(bucket);
    let (old_entry, old_value) = place.replaced();
    let entry_len = varint_len(key.len()) + key.len() + varint_len(value.len());
    let index_len = index.len() - old_entry.len() + entry_len;
    let values_len = bucket.len() - index.end - old_value.len() + value.len();
    assemble(index_len, values_len, |out| {
        write_part(out, &bucket[index.start..old_entry.start]);
        write_varint(out, key.len());
        write_part(out, key);
        write_varint(out, value.len());
        write_part(out, &bucket[old_entry.end..index.end]);
        write_part(out, &bucket[index.end..old_value.start]);
        write_part(out, value);
        write_part(out, &bucket[old_value.end..]);
    })
}

/// The buckets of `bucket`'s pairs with `key` and `value` put among them (replacing the
/// pair of `key` if it holds one): what a put that takes a bucket past [`BUCKET_BYTES`]
/// leaves, cut as [`buckets`] cuts.
pub(crate) fn rebuilt_with(bucket: &[u8], key: &[u8], value: &[u8]) -> SmallVec<[Bucket; 2]> {
    let mut list = PairList::new();
    let mut put = false;
    for (held, held_value) in pairs(bucket) {
        if !put && held >= key {
            list.push((key, value));
            put = true;
            if held == key {
                continue;
            }
        }
        list.push((held, held_value));
    }
    if !put {
        list.push((key, value));
    }
    buckets(&list)
}

/// Writes a bucket's pairs as a snapshot holds them: each index entry, then its value.
pub(crate) fn write_pairs(bucket: &[u8], out: &mut dyn io::Write) -> io::Result<()> {
    places(bucket).try_for_each(|at| {
        out.write_all(&bucket[at.entry])?;
        out.write_all(&bucket[at.value])
    })
}

/// Pairs in increasing key order made into buckets: one, or, if their encoding passes
/// [`BUCKET_BYTES`], several, each cut at the pair boundary nearest the middle of its bytes,
/// so that the pieces are about half full and the next writes land in room; a pair larger
/// than a bucket gets one of its own.
pub(crate) fn buckets(pairs: &[Pair<'_>]) -> SmallVec<[Bucket; 2]> {
    let mut buckets = SmallVec::new();
    let mut pending: SmallVec<[&[Pair<'_>]; 4]> = SmallVec::new();
    pending.push(pairs);
    while let Some(piece) = pending.pop() {
        let total: usize = piece.iter().map(|(key, value)| pair_len(key, value)).sum();
        if total <= BUCKET_BYTES || piece.len() < 2 {
            buckets.push(bucket_of(piece));
            continue;
        }
        let mut before = 0;
        let cut = (1..piece.len())
            .map(|end| {
                before += pair_len(piece[end - 1].0, piece[end - 1].1);
                (end, before)
            })
            .min_by_key(|&(_, before)| before.abs_diff(total / 2))
            .map_or(1, |(end, _)| end);
        pending.push(&piece[cut..]);
        pending.push(&piece[..cut]);
    }
    buckets
}

/// The bucket of `pairs` (in increasing key order).
fn bucket_of(pairs: &[Pair<'_>]) -> Bucket {
    let index_len: usize = pairs
        .iter()
        .map(|(key, value)| varint_len(key.len()) + key.len() + varint_len(value.len()))
        .sum();
    let values_len: usize = pairs.iter().map(|(_, value)| value.len()).sum();
    assemble(index_len, values_len, |out| {
        for (key, value) in pairs {
            write_varint(out, key.len());
            write_part(out, key);
            write_varint(out, value.len());
        }
        pairs.iter().for_each(|(_, value)| write_part(out, value));
    })
}

/// A bucket of an index of `index_len` bytes and values of `values_len`: the index's length
/// written, then `fill` writes the index and the values. Allocated at its size and filled,
/// rather than written into a `Vec` and copied.
fn assemble(index_len: usize, values_len: usize, fill: impl FnOnce(&mut &mut [u8])) -> Bucket {
    let len = varint_len(index_len) + index_len + values_len;
    let mut bucket: Bucket = std::iter::repeat_n(0, len).collect();
    let mut out = &mut Arc::get_mut(&mut bucket).expect("a new bucket is unshared")[..];
    write_varint(&mut out, index_len);
    fill(&mut out);
    debug_assert!(out.is_empty(), "the bucket was filled");
    bucket
}

/// Writes `part` at the start of `out` and moves `out` past it.
fn write_part(out: &mut &mut [u8], part: &[u8]) {
    let (written, rest) = std::mem::take(out).split_at_mut(part.len());
    written.copy_from_slice(part);
    *out = rest;
}

fn write_varint(out: &mut &mut [u8], value: usize) {
    let (bytes, len) = varint(value);
    write_part(out, &bytes[..len]);
}

/// A bucket made a pair at a time, in increasing key order (a restore's, which knows the
/// pairs only as it reads them).
#[derive(Default)]
pub(crate) struct Builder {
    index: Vec<u8>,
    values: Vec<u8>,
}

impl Builder {
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        push_varint(&mut self.index, key.len());
        self.index.extend_from_slice(key);
        push_varint(&mut self.index, value.len());
        self.values.extend_from_slice(value);
    }

    /// The bytes the pairs pushed since the last `finish` take in a snapshot.
    pub(crate) fn encoded_len(&self) -> usize {
        self.index.len() + self.values.len()
    }

    /// The bucket of the pairs pushed, which the builder forgets.
    pub(crate) fn finish(&mut self) -> Bucket {
        let bucket = assemble(self.index.len(), self.values.len(), |out| {
            write_part(out, &self.index);
            write_part(out, &self.values);
        });
        self.index.clear();
        self.values.clear();
        bucket
    }
}

/// The varint at `offset` of `bytes` and the offset after it. A bucket is only ever written
/// by [`assemble`]: anything else is a bug.
#[inline]
fn read_varint(bytes: &[u8], mut offset: usize) -> (usize, usize) {
    let first = bytes[offset];
    if first < 0x80 {
        // Keys and most values are under 128 bytes: their lengths take one byte.
        return (usize::from(first), offset + 1);
    }
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let byte = bytes[offset];
        offset += 1;
        assert!(shift < usize::BITS, "a bucket's lengths fit in memory");
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (value, offset);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(pairs: &[Pair<'_>]) -> Bucket {
        let mut builder = Builder::default();
        pairs.iter().for_each(|(key, value)| builder.push(key, value));
        builder.finish()
    }

    #[test]
    fn pairs_are_written_as_postcard_byte_strings() {
        for length in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let encoded = postcard::to_allocvec(&length).unwrap();
            assert_eq!(varint_len(length), encoded.len(), "{length}");
            let mut pushed = Vec::new();
            push_varint(&mut pushed, length);
            assert_eq!(pushed, encoded);
            assert_eq!(read_varint(&pushed, 0), (length, encoded.len()));
        }
        let value = vec![7; 200];
        let bytes = bucket(&[(b"k", &value), (b"l", b"")]);
        let mut written = Vec::new();
        write_pairs(&bytes, &mut written).unwrap();
        assert_eq!(&written[..5], [1, b'k', 0xc8, 0x01, 7]);
        assert_eq!(&written[204..], [1, b'l', 0]);
        assert_eq!(pair_len(b"k", &value) + pair_len(b"l", b""), written.len());
    }

    #[test]
    fn keys_are_located_where_they_are_or_would_go() {
        let bytes = bucket(&[(b"b", b"1"), (b"d", b""), (b"f", b"333")]);
        assert_eq!(
            pairs(&bytes).collect::<Vec<_>>(),
            [(&b"b"[..], &b"1"[..]), (b"d", b""), (b"f", b"333")]
        );
        assert_eq!(first_key(&bytes), b"b");
        // The index (3 entries of 3 bytes) starts after its length, the values after it.
        assert_eq!(locate(&bytes, b"a"), Place::Missing { entry: 1, value: 10 });
        assert_eq!(locate(&bytes, b"c"), Place::Missing { entry: 4, value: 11 });
        assert_eq!(locate(&bytes, b"g"), Place::Missing { entry: 10, value: 14 });
        assert_eq!(encoded_len(&bytes), 13);
        let Place::Found(at) = locate(&bytes, b"f") else { panic!("f is there") };
        assert_eq!(&bytes[at.key], b"f");
        assert_eq!(&bytes[at.value], b"333");
        assert_eq!(&bytes[at.entry], [1, b'f', 3]);
    }

    #[test]
    fn a_spliced_bucket_is_the_bucket_of_its_pairs_with_the_one_put() {
        let long = vec![9; 300];
        let held: [Pair<'_>; 3] = [(b"b", b"1"), (b"d", b""), (b"f", b"333")];
        let bytes = bucket(&held);
        for (key, value) in [
            (&b"a"[..], &b"first"[..]),
            (b"c", b"x"),
            (b"g", &long),
            (b"b", b""),
            (b"d", &long),
            (b"f", b"444"),
        ] {
            let mut expected: Vec<Pair<'_>> =
                held.iter().filter(|(k, _)| *k != key).copied().collect();
            expected.push((key, value));
            expected.sort();
            let spliced = spliced(&bytes, &locate(&bytes, key), key, value);
            assert_eq!(spliced, bucket(&expected), "{key:?} put");
            assert_eq!(encoded_len(&spliced), expected.iter().map(|(k, v)| pair_len(k, v)).sum());
        }
    }

    #[test]
    fn buckets_are_cut_near_their_middles_and_a_large_pair_alone() {
        let small = [0; 90];
        let keys: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i]).collect();
        let all: Vec<(&[u8], &[u8])> = keys.iter().map(|key| (&key[..], &small[..])).collect();
        let cut = buckets(&all);
        assert!(cut.len() >= 3, "{} buckets", cut.len());
        let rejoined: Vec<(&[u8], &[u8])> = cut.iter().flat_map(|bucket| pairs(bucket)).collect();
        assert_eq!(rejoined, all, "the pairs, in order");
        for bucket in &cut {
            let bytes: usize = pairs(bucket).map(|(key, value)| pair_len(key, value)).sum();
            assert!((BUCKET_BYTES / 4..=BUCKET_BYTES).contains(&bytes), "{bytes}");
        }
        let large = vec![1; BUCKET_BYTES];
        let cut = buckets(&[(b"a", b"x"), (b"b", &large), (b"c", b"y")]);
        assert_eq!(cut.len(), 3, "the large pair alone");
        assert_eq!(pairs(&cut[1]).collect::<Vec<_>>(), [(&b"b"[..], &large[..])]);
        assert_eq!(buckets(&[(b"b", &large)]).len(), 1, "a single pair is never cut");
    }
}
