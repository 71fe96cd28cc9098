//! One WAL record (format version 2):
//!
//! ```text
//! [header CRC32C: u32 LE][length: u32 LE][payload CRC32C: u32 LE][payload: length bytes]
//! ```
//!
//! The header checksum covers the eight bytes after it (length and payload checksum), so a
//! header can be trusted on its own: a record whose header is intact has a known extent even
//! when its payload is damaged, which is what tells a torn write from corruption. The payload
//! is a postcard list of [`LogChange`]s: every change of one batch of persists, so that one
//! write holds one record.

use serde::{Deserialize, Serialize};

use raftkv_core::LogIndex;
use raftkv_core::raft::Entry;

/// Bytes before the payload.
pub(crate) const HEADER_BYTES: usize = 12;

/// One change to the log: drop every entry from `truncate_from` on, then append `entries`.
/// Appending an entry at index `i` also drops whatever the log held at `i` and after.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct LogChange {
    /// The first index to drop, if any.
    pub(crate) truncate_from: Option<LogIndex>,
    /// Consecutive entries.
    pub(crate) entries: Vec<Entry>,
}

/// The borrowed twin of [`LogChange`], to encode without copying entries.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct LogChangeRef<'a> {
    pub(crate) truncate_from: Option<LogIndex>,
    pub(crate) entries: &'a [Entry],
}

/// What the first [`HEADER_BYTES`] at an offset say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// Only zeros: no record was written here.
    Zeros,
    /// The header fails its checksum.
    Damaged,
    /// An intact header.
    Intact {
        /// Bytes of payload after the header.
        length: usize,
        /// The payload's checksum.
        payload_crc: u32,
    },
}

/// Encodes one record holding `changes`; `None` if its payload would not fit the length
/// field (4 GiB, far beyond any configured frame or batch limit).
pub(crate) fn encode(changes: &[LogChangeRef<'_>]) -> Option<Vec<u8>> {
    let bytes = vec![0; HEADER_BYTES];
    let mut bytes = postcard::to_extend(changes, bytes).expect("encoding into a Vec cannot fail");
    let length = u32::try_from(bytes.len() - HEADER_BYTES).ok()?;
    let payload_crc = crc32c::crc32c(&bytes[HEADER_BYTES..]);
    bytes[4..8].copy_from_slice(&length.to_le_bytes());
    bytes[8..12].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[4..12]);
    bytes[..4].copy_from_slice(&header_crc.to_le_bytes());
    Some(bytes)
}

/// Reads a record header.
pub(crate) fn parse_header(header: &[u8; HEADER_BYTES]) -> Header {
    if header.iter().all(|&byte| byte == 0) {
        return Header::Zeros;
    }
    let field = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[4..]) != field(0) {
        return Header::Damaged;
    }
    match usize::try_from(field(4)) {
        Ok(length) => Header::Intact { length, payload_crc: field(8) },
        Err(_) => Header::Damaged, // a length no address space here can hold
    }
}

/// Whether `payload` matches its checksum.
pub(crate) fn payload_intact(payload: &[u8], payload_crc: u32) -> bool {
    crc32c::crc32c(payload) == payload_crc
}

/// The changes an intact payload holds.
pub(crate) fn decode(payload: &[u8]) -> Result<Vec<LogChange>, String> {
    postcard::from_bytes(payload).map_err(|error| format!("record does not decode: {error}"))
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

    fn header_of(bytes: &[u8]) -> Header {
        parse_header(bytes[..HEADER_BYTES].try_into().unwrap())
    }

    #[test]
    fn records_round_trip() {
        let (first, second) = (entries(1..=3), entries(2..=2));
        let changes = [
            LogChangeRef { truncate_from: None, entries: &first },
            LogChangeRef { truncate_from: Some(LogIndex(2)), entries: &second },
        ];
        let bytes = encode(&changes).unwrap();
        let Header::Intact { length, payload_crc } = header_of(&bytes) else {
            panic!("the header is intact")
        };
        assert_eq!(HEADER_BYTES + length, bytes.len());
        assert!(payload_intact(&bytes[HEADER_BYTES..], payload_crc));
        let decoded = decode(&bytes[HEADER_BYTES..]).unwrap();
        assert_eq!(
            decoded,
            [
                LogChange { truncate_from: None, entries: first },
                LogChange { truncate_from: Some(LogIndex(2)), entries: second }
            ]
        );
        assert_eq!(parse_header(&[0; HEADER_BYTES]), Header::Zeros);
    }

    #[test]
    fn any_flipped_bit_is_caught_by_the_checksum_of_its_part() {
        let first = entries(1..=2);
        let bytes = encode(&[LogChangeRef { truncate_from: None, entries: &first }]).unwrap();
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            let header = header_of(&damaged);
            if position < HEADER_BYTES {
                assert_eq!(header, Header::Damaged, "flip at {position}");
            } else {
                let Header::Intact { payload_crc, .. } = header else { panic!("{header:?}") };
                assert!(!payload_intact(&damaged[HEADER_BYTES..], payload_crc), "at {position}");
            }
        }
    }
}
