//! One WAL record (format version 4):
//!
//! ```text
//! [header CRC32C: u32 LE][length: u32 LE][body CRC32C: u32 LE][body: length bytes]
//! body = [payload XOR keystream][END_MARK]
//! ```
//!
//! The header checksum covers the eight bytes after it (length and body checksum), so a
//! header can be trusted on its own: a record whose header is intact has a known extent even
//! when its body is damaged, which is what tells a torn write from corruption. The payload
//! is a postcard list of [`LogChange`]s: every change of one batch of persists, so that one
//! write holds one record.
//!
//! A torn write leaves zeros where its lost sectors were, so no part of an intact record may
//! look like that: the payload is XORed with a keystream drawn from the record's offset (a run
//! of zeros in an entry, a value of zeros say, is not zeros on disk), and the body ends with a
//! non-zero mark (the part of a record alone in its last sector is never zeros, even when the
//! payload ends in a zero byte, as most do). A stretch of payload that equals the keystream
//! where it lies still encodes to zeros: a chance of 2^-8 a byte by accident, so only a value
//! crafted against the keystream can fill a sector that way. Version 2 wrote neither: bit rot
//! in the last record of the log could be taken for a torn write and the record cut off
//! silently.

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
        /// Bytes of body after the header.
        length: usize,
        /// The body's checksum.
        body_crc: u32,
    },
}

/// The last byte of every body; several bits set, so that no single flipped bit makes it zero.
const END_MARK: u8 = 0xA5;

/// Encodes one record holding `changes`, to be written at `offset` of its segment; `None` if
/// its body would not fit the length field (4 GiB, far beyond any configured frame or batch
/// limit).
pub(crate) fn encode(changes: &[LogChangeRef<'_>], offset: u64) -> Option<Vec<u8>> {
    let bytes = vec![0; HEADER_BYTES];
    let mut bytes = postcard::to_extend(changes, bytes).expect("encoding into a Vec cannot fail");
    scramble(&mut bytes[HEADER_BYTES..], offset);
    bytes.push(END_MARK);
    let length = u32::try_from(bytes.len() - HEADER_BYTES).ok()?;
    let body_crc = crc32c::crc32c(&bytes[HEADER_BYTES..]);
    bytes[4..8].copy_from_slice(&length.to_le_bytes());
    bytes[8..12].copy_from_slice(&body_crc.to_le_bytes());
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
        Ok(length) => Header::Intact { length, body_crc: field(8) },
        Err(_) => Header::Damaged, // a length no address space here can hold
    }
}

/// Whether `body` matches its checksum.
pub(crate) fn body_intact(body: &[u8], body_crc: u32) -> bool {
    crc32c::crc32c(body) == body_crc
}

/// The changes an intact body holds, of the record at `offset`.
pub(crate) fn decode(body: &[u8], offset: u64) -> Result<Vec<LogChange>, String> {
    let Some((&END_MARK, scrambled)) = body.split_last() else {
        return Err("record does not end with its mark".to_string());
    };
    let mut payload = scrambled.to_vec();
    scramble(&mut payload, offset);
    postcard::from_bytes(&payload).map_err(|error| format!("record does not decode: {error}"))
}

/// XORs `bytes` with the keystream of the record at `offset` (its own inverse): SplitMix64
/// from a seed of the offset, eight bytes a step.
fn scramble(bytes: &mut [u8], offset: u64) {
    let mut state = offset ^ 0x5241_4654_4B56_5741; // "RAFTKVWA"
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    };
    for chunk in bytes.chunks_mut(8) {
        for (byte, key) in chunk.iter_mut().zip(next()) {
            *byte ^= key;
        }
    }
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
        let bytes = encode(&changes, 4096).unwrap();
        let Header::Intact { length, body_crc } = header_of(&bytes) else {
            panic!("the header is intact")
        };
        assert_eq!(HEADER_BYTES + length, bytes.len());
        assert!(body_intact(&bytes[HEADER_BYTES..], body_crc));
        let decoded = decode(&bytes[HEADER_BYTES..], 4096).unwrap();
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
        let bytes = encode(&[LogChangeRef { truncate_from: None, entries: &first }], 20).unwrap();
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            let header = header_of(&damaged);
            if position < HEADER_BYTES {
                assert_eq!(header, Header::Damaged, "flip at {position}");
            } else {
                let Header::Intact { body_crc, .. } = header else { panic!("{header:?}") };
                assert!(!body_intact(&damaged[HEADER_BYTES..], body_crc), "at {position}");
            }
        }
    }

    /// What a torn write leaves (zeros) must not appear inside an intact record: not for a
    /// value of zeros, not at the end of a body whose payload ends in a zero byte.
    #[test]
    fn no_sector_of_a_record_is_zeros_even_for_a_value_of_zeros() {
        let entry =
            Entry { index: LogIndex(9), term: Term(3), payload: Payload::Command(vec![0; 4096]) };
        let noop = Entry { index: LogIndex(10), term: Term(3), payload: Payload::Noop };
        let entries = [entry, noop];
        let plain =
            postcard::to_allocvec(&[LogChangeRef { truncate_from: None, entries: &entries }])
                .unwrap();
        assert_eq!(plain.last(), Some(&0), "the payload ends in a zero byte");
        for offset in [20, 512, 1 << 20] {
            let bytes =
                encode(&[LogChangeRef { truncate_from: None, entries: &entries }], offset).unwrap();
            assert_ne!(bytes.last(), Some(&0));
            let longest_zero_run = bytes.split(|&byte| byte != 0).map(<[u8]>::len).max().unwrap();
            assert!(longest_zero_run < 8, "a run of {longest_zero_run} zeros at offset {offset}");
            let decoded = decode(&bytes[HEADER_BYTES..], offset).unwrap();
            assert_eq!(decoded[0].entries, entries);
            let elsewhere = decode(&bytes[HEADER_BYTES..], offset + 1).ok();
            assert_ne!(elsewhere, Some(decoded), "the offset is part of the key");
        }
    }
}
