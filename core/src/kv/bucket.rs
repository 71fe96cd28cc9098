//! A bucket: a run of pairs adjacent in key order, held in one allocation as the bytes a
//! snapshot encodes them to (each key and value as a postcard byte string: its length as a
//! varint, then its bytes). Packed so, a pair costs its encoding and a share of its bucket's
//! header and slot in the map, where a pair of its own in the map cost a slot of 40 bytes in
//! leaves about 70% full and an allocation rounded up to 16 bytes with a 16-byte header.
//! Buckets are reference counted: a snapshot's view shares them with the store until a write
//! replaces one.

use std::ops::Range;
use std::sync::Arc;

/// A bucket's encoded pairs, in increasing key order; never empty in a map.
pub(crate) type Bucket = Arc<[u8]>;

/// A bucket grown past this many bytes is split, unless it holds a single pair. Each write
/// copies its bucket (or overwrites the value in place when no view shares the bucket and the
/// length is unchanged), and a write during a snapshot's save keeps the old bucket alive with
/// the view: small enough for both to stay cheap, large enough that a bucket's overhead (about
/// 90 bytes: header, slot and its share of the map's nodes) is spread over several pairs.
pub(crate) const BUCKET_BYTES: usize = 1024;

/// Where one pair lies in a bucket's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PairAt {
    /// The pair's bytes, from its key's length to its value's last byte.
    pub(crate) bytes: Range<usize>,
    pub(crate) key: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// Where a key lies in a bucket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// The bucket holds the key, in this pair.
    Found(PairAt),
    /// The bucket does not hold the key; its pair would start at this offset.
    Missing(usize),
}

/// The bytes `key` and `value` take in a bucket (and in a snapshot).
pub(crate) fn pair_len(key: &[u8], value: &[u8]) -> usize {
    varint_len(key.len()) + key.len() + varint_len(value.len()) + value.len()
}

/// Appends the pair's encoding to `out`.
pub(crate) fn push_pair(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    for part in [key, value] {
        push_varint(out, part.len());
        out.extend_from_slice(part);
    }
}

/// The bytes postcard takes to encode `value` as a varint.
pub(crate) fn varint_len(value: usize) -> usize {
    let bits = usize::BITS - value.leading_zeros();
    (bits.max(1) as usize).div_ceil(7)
}

/// Appends `value` as a postcard varint (an unsigned LEB128).
pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The pairs of a bucket, in order.
pub(crate) fn pairs(bucket: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    places(bucket).map(|at| (&bucket[at.key], &bucket[at.value]))
}

/// Where each pair of a bucket lies, in order.
pub(crate) fn places(bucket: &[u8]) -> impl Iterator<Item = PairAt> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        (offset < bucket.len()).then(|| {
            let at = pair_at(bucket, offset);
            offset = at.bytes.end;
            at
        })
    })
}

/// The first key of a non-empty bucket.
pub(crate) fn first_key(bucket: &[u8]) -> &[u8] {
    &bucket[pair_at(bucket, 0).key]
}

/// Where `key` lies in `bucket`, or where its pair would go: a scan from the start, which a
/// bucket's size keeps short.
pub(crate) fn locate(bucket: &[u8], key: &[u8]) -> Place {
    for at in places(bucket) {
        match bucket[at.key.clone()].cmp(key) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => return Place::Found(at),
            std::cmp::Ordering::Greater => return Place::Missing(at.bytes.start),
        }
    }
    Place::Missing(bucket.len())
}

/// `bucket`'s bytes with the pair of `key` put at `place` (replacing the pair found there).
pub(crate) fn with_pair(bucket: &[u8], place: &Place, key: &[u8], value: &[u8]) -> Vec<u8> {
    let (before, after) = match place {
        Place::Found(at) => (at.bytes.start, at.bytes.end),
        Place::Missing(offset) => (*offset, *offset),
    };
    let mut bytes = Vec::with_capacity(bucket.len() - (after - before) + pair_len(key, value));
    bytes.extend_from_slice(&bucket[..before]);
    push_pair(&mut bytes, key, value);
    bytes.extend_from_slice(&bucket[after..]);
    bytes
}

/// `bytes` (whole pairs) cut into buckets of at most [`BUCKET_BYTES`] each, but for a pair
/// larger than that, which has a bucket of its own: each cut at the pair boundary nearest the
/// middle, so that the pieces are about half full and the next writes land in room.
pub(crate) fn pieces(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let whole: Range<usize> = 0..bytes.len();
    let mut pending = vec![whole];
    while let Some(piece) = pending.pop() {
        let middle = piece.start + piece.len() / 2;
        let cut = places(&bytes[piece.clone()])
            .map(|at| piece.start + at.bytes.end)
            .filter(|&end| end < piece.end)
            .min_by_key(|&end| end.abs_diff(middle));
        match cut {
            Some(cut) if piece.len() > BUCKET_BYTES => {
                pending.push(cut..piece.end);
                pending.push(piece.start..cut);
            }
            _ => pieces.push(piece),
        }
    }
    pieces
}

/// The pair that starts at `offset` of `bucket`. A bucket is only ever written whole pairs at
/// a time: anything else is a bug.
fn pair_at(bucket: &[u8], offset: usize) -> PairAt {
    let (key_len, key_start) = read_varint(bucket, offset);
    let key = key_start..key_start + key_len;
    let (value_len, value_start) = read_varint(bucket, key.end);
    let value = value_start..value_start + value_len;
    assert!(value.end <= bucket.len(), "a bucket holds whole pairs");
    PairAt { bytes: offset..value.end, key, value }
}

/// The varint at `offset` of `bytes` and the offset after it.
fn read_varint(bytes: &[u8], mut offset: usize) -> (usize, usize) {
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

    fn bucket(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (key, value) in pairs {
            push_pair(&mut bytes, key, value);
        }
        bytes
    }

    #[test]
    fn pairs_are_encoded_as_postcard_byte_strings() {
        for length in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let encoded = postcard::to_allocvec(&length).unwrap();
            assert_eq!(varint_len(length), encoded.len(), "{length}");
            let mut pushed = Vec::new();
            push_varint(&mut pushed, length);
            assert_eq!(pushed, encoded);
            assert_eq!(read_varint(&pushed, 0), (length, encoded.len()));
        }
        let value = vec![7; 200];
        let bytes = bucket(&[(b"k", &value)]);
        assert_eq!(&bytes[..5], [1, b'k', 0xc8, 0x01, 7]);
        assert_eq!(pair_len(b"k", &value), bytes.len());
    }

    #[test]
    fn keys_are_located_where_they_are_or_would_go() {
        let bytes = bucket(&[(b"b", b"1"), (b"d", b""), (b"f", b"333")]);
        assert_eq!(
            pairs(&bytes).collect::<Vec<_>>(),
            [(&b"b"[..], &b"1"[..]), (b"d", b""), (b"f", b"333")]
        );
        assert_eq!(first_key(&bytes), b"b");
        assert_eq!(locate(&bytes, b"a"), Place::Missing(0));
        assert_eq!(locate(&bytes, b"c"), Place::Missing(4));
        assert_eq!(locate(&bytes, b"g"), Place::Missing(bytes.len()));
        let Place::Found(at) = locate(&bytes, b"d") else { panic!("d is there") };
        assert_eq!((at.bytes, at.key, at.value), (4..7, 5..6, 7..7));
        let put = with_pair(&bytes, &locate(&bytes, b"d"), b"d", b"22");
        assert_eq!(put, bucket(&[(b"b", b"1"), (b"d", b"22"), (b"f", b"333")]));
        let added = with_pair(&bytes, &locate(&bytes, b"a"), b"a", b"0");
        assert_eq!(first_key(&added), b"a");
        assert_eq!(pairs(&added).count(), 4);
    }

    #[test]
    fn buckets_are_cut_near_their_middles_and_a_large_pair_alone() {
        let small = [0; 90];
        let keys: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i]).collect();
        let all: Vec<(&[u8], &[u8])> = keys.iter().map(|key| (&key[..], &small[..])).collect();
        let bytes = bucket(&all);
        let cut = pieces(&bytes);
        assert!(cut.len() >= 3, "{cut:?}");
        assert_eq!(cut.first().map(|piece| piece.start), Some(0));
        assert_eq!(cut.last().map(|piece| piece.end), Some(bytes.len()));
        for (piece, next) in cut.iter().zip(&cut[1..]) {
            assert_eq!(piece.end, next.start, "pieces follow each other");
        }
        for piece in &cut {
            assert!(piece.len() <= BUCKET_BYTES && piece.len() >= BUCKET_BYTES / 4, "{piece:?}");
            assert!(pairs(&bytes[piece.clone()]).count() > 0);
        }
        let large = vec![1; BUCKET_BYTES];
        let bytes = bucket(&[(b"a", b"x"), (b"b", &large), (b"c", b"y")]);
        let cut = pieces(&bytes);
        assert_eq!(cut.len(), 3, "the large pair alone: {cut:?}");
        assert_eq!(pairs(&bytes[cut[1].clone()]).collect::<Vec<_>>(), [(&b"b"[..], &large[..])]);
        let alone = bucket(&[(b"b", &large)]);
        assert_eq!(pieces(&alone).len(), 1, "a single pair is never cut");
        assert_eq!(pieces(&bucket(&[(b"a", b"1")])).len(), 1);
    }
}
