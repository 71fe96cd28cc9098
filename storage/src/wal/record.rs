//! One WAL record: `[length: u32 LE][crc: u32 LE][payload]`, where the payload is a postcard
//! [`WalRecord`] and the CRC32C covers the length bytes and the payload (so a damaged length
//! is caught too).

use serde::{Deserialize, Serialize};

use raftkv_core::LogIndex;
use raftkv_core::raft::Entry;

/// Bytes before the payload.
pub(crate) const HEADER_BYTES: usize = 8;

/// What one record says. One record per persist: replaying records in order rebuilds the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WalRecord {
    /// Drop every entry from `truncate_from` on, then append `entries`. Appending an entry at
    /// index `i` also drops whatever the log held at `i` and after.
    Append {
        /// The first index to drop, if any.
        truncate_from: Option<LogIndex>,
        /// Consecutive entries.
        entries: Vec<Entry>,
    },
}

/// The borrowed twin of [`WalRecord`], to encode without copying entries.
#[derive(Serialize)]
enum WalRecordRef<'a> {
    Append { truncate_from: Option<LogIndex>, entries: &'a [Entry] },
}

/// Appends one record for an append of `entries` after dropping from `truncate_from`.
pub(crate) fn encode_append(truncate_from: Option<LogIndex>, entries: &[Entry], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    let record = WalRecordRef::Append { truncate_from, entries };
    let mut bytes =
        postcard::to_extend(&record, std::mem::take(out)).expect("encoding into a Vec cannot fail");
    let length = u32::try_from(bytes.len() - start - HEADER_BYTES)
        .expect("a persist of 4 GiB is beyond any configured limit");
    let length_bytes = length.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&length_bytes), &bytes[start + HEADER_BYTES..]);
    bytes[start..start + 4].copy_from_slice(&length_bytes);
    bytes[start + 4..start + HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    *out = bytes;
}

/// What lies at an offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// An intact record, and the offset just after it.
    Record(WalRecord, usize),
    /// The bytes run out before a whole record.
    Incomplete,
    /// The bytes are not an intact record.
    Bad(String),
}

/// Reads the record at the start of `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> Parsed {
    let Some(header) = bytes.get(..HEADER_BYTES) else {
        return Parsed::Incomplete;
    };
    let length_bytes: [u8; 4] = header[..4].try_into().expect("4 bytes");
    let length = u32::from_le_bytes(length_bytes) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if length == 0 {
        return Parsed::Bad("zero-length record".to_string());
    }
    let Some(payload) = bytes.get(HEADER_BYTES..HEADER_BYTES + length) else {
        return Parsed::Incomplete;
    };
    if crc32c::crc32c_append(crc32c::crc32c(&length_bytes), payload) != crc {
        return Parsed::Bad("checksum mismatch".to_string());
    }
    match postcard::from_bytes(payload) {
        Ok(record) => Parsed::Record(record, HEADER_BYTES + length),
        Err(error) => Parsed::Bad(format!("record does not decode: {error}")),
    }
}

/// Whether an intact record starts anywhere in `bytes` after its first byte. Used after a bad
/// record: if one does, the damage is not a torn tail.
pub(crate) fn intact_record_after(bytes: &[u8]) -> Option<usize> {
    (1..bytes.len()).find(|&offset| matches!(parse(&bytes[offset..]), Parsed::Record(..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftkv_core::Term;
    use raftkv_core::raft::Payload;

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
        range
            .map(|index| Entry {
                index: LogIndex(index),
                term: Term(1),
                payload: Payload::Command(vec![index as u8; 10]),
            })
            .collect()
    }

    #[test]
    fn records_round_trip() {
        let mut out = Vec::new();
        encode_append(None, &entries(1..=3), &mut out);
        let first = out.len();
        encode_append(Some(LogIndex(2)), &entries(2..=2), &mut out);
        let Parsed::Record(record, used) = parse(&out) else { panic!("first record is intact") };
        assert_eq!(used, first);
        assert_eq!(record, WalRecord::Append { truncate_from: None, entries: entries(1..=3) });
        assert!(matches!(parse(&out[first..]), Parsed::Record(..)));
        assert_eq!(parse(&out[..first - 1]), Parsed::Incomplete);
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let mut out = Vec::new();
        encode_append(None, &entries(1..=2), &mut out);
        for position in 0..out.len() {
            let mut damaged = out.clone();
            damaged[position] ^= 0x10;
            assert!(
                !matches!(parse(&damaged), Parsed::Record(..)),
                "flip at {position} went unnoticed"
            );
        }
    }

    #[test]
    fn an_intact_record_is_found_after_damage() {
        let mut out = Vec::new();
        encode_append(None, &entries(1..=1), &mut out);
        let second = out.len();
        encode_append(None, &entries(2..=2), &mut out);
        out[3] ^= 0xff;
        assert_eq!(intact_record_after(&out), Some(second));
        assert_eq!(intact_record_after(&out[..second]), None);
    }
}
