//! Reading the records of a segment, and telling how they end: cleanly, in a torn write, or
//! in damage.
//!
//! A torn write is a crash in the middle of an append: some sectors of the last write never
//! reached the disk, and those still hold what the disk held before, the zeros the writer
//! prepared (or nothing, past the end of the file). Damage is a complete record whose bytes
//! changed afterwards, or any other inconsistency. Every write holds exactly one record and is
//! synced before the next one starts, so only the last record of the last segment can be torn.
//! Where the intact records stop:
//!
//! - a record header of zeros: the clean end, when only zeros follow; a torn write when
//!   something else follows (a later sector of the write survived, the header's did not);
//! - a header that fails its checksum: torn when it spans two 512-byte-aligned sectors and its
//!   part in one of them is all zeros (that sector of the write was lost; the part in the
//!   other may sit next to older records), damage otherwise;
//! - an intact header whose body fails its checksum: torn when the record's extent runs past
//!   the end of the file or holds a sector (or the part of a sector inside the extent) of only
//!   zeros, damage otherwise;
//! - an intact record that does not decode: damage.
//!
//! A torn write anywhere but in the last segment, or followed by an intact record anywhere
//! after it, is damage too.
//!
//! What an intact record holds is not zeros in any sector (see [`record`]: the payload is
//! scrambled, the body ends in a non-zero mark; only a value crafted against the keystream can
//! encode to a sector of zeros), so bit rot in the last record is damage, not a torn write,
//! unless it strikes a header spanning two sectors whose part in one of them is a single byte
//! of checksum that happens to be zero (one chance in 256 for such a header), or it zeroes a
//! whole header. The opposite mistake (a torn write taken for damage, for instance
//! when an entry holds the bytes of a WAL record) only keeps the node out of elections until it
//! has caught up.

use crate::wal::record::{self, Header, LogChange};
use crate::wal::segment;

/// A disk writes a sector whole or not at all.
const SECTOR_BYTES: usize = 512;

/// How the records of one segment ended.
#[derive(Debug)]
pub(crate) struct Scanned {
    /// Where the intact records end.
    pub(crate) end: u64,
    /// What follows them.
    pub(crate) ending: Ending,
}

/// What follows the intact records of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Only zeros.
    Clean,
    /// A torn write, never acknowledged.
    Torn(String),
    /// Damage: acknowledged data may be lost from here on.
    Damaged(String),
}

/// Reads the records of `bytes`, a whole segment file whose header checked out, the last
/// segment of the log if `is_last`, and hands each intact one to `on_record` with its offset
/// as it goes (one decoded record in memory at a time); a record it refuses ends the records
/// there, as damage.
pub(crate) fn scan(
    bytes: &[u8],
    is_last: bool,
    on_record: &mut dyn FnMut(u64, Vec<LogChange>) -> Result<(), String>,
) -> Scanned {
    let data_end = bytes.iter().rposition(|&byte| byte != 0).map_or(0, |last| last + 1);
    let mut offset = segment::HEADER_BYTES;
    let ending = loop {
        let torn = |reason: &str| torn_or_damaged(bytes, offset, data_end, is_last, reason);
        let Some(header) = bytes.get(offset..).and_then(|rest| rest.first_chunk()) else {
            break if offset >= data_end { Ending::Clean } else { torn("an incomplete header") };
        };
        let (length, body_crc) = match record::parse_header(header) {
            Header::Zeros if offset >= data_end => break Ending::Clean,
            Header::Zeros => break torn("a record header of zeros followed by other bytes"),
            Header::Damaged if zero_sector(bytes, offset, offset + record::HEADER_BYTES) => {
                break torn("a record header that fails its checksum, partly in a sector of zeros");
            }
            Header::Damaged => {
                break Ending::Damaged("a record header fails its checksum".to_string());
            }
            Header::Intact { length, body_crc } => (length, body_crc),
        };
        let body_start = offset + record::HEADER_BYTES;
        let Some(body) = body_start.checked_add(length).and_then(|end| bytes.get(body_start..end))
        else {
            break torn("a record that runs past the end of the file");
        };
        let extent_end = body_start + body.len();
        if !record::body_intact(body, body_crc) {
            if zero_sector(bytes, offset, extent_end) {
                break torn("a record body that fails its checksum and holds a sector of zeros");
            }
            break Ending::Damaged("a record body fails its checksum".to_string());
        }
        let handed_on = record::decode(body, offset as u64)
            .and_then(|changes| on_record(offset as u64, changes));
        match handed_on {
            Ok(()) => {}
            Err(reason) => break Ending::Damaged(reason),
        }
        offset = extent_end;
    };
    Scanned { end: offset as u64, ending }
}

/// A torn write, if it may be one where it was found; damage otherwise.
fn torn_or_damaged(
    bytes: &[u8],
    offset: usize,
    data_end: usize,
    is_last: bool,
    reason: &str,
) -> Ending {
    if !is_last {
        return Ending::Damaged(format!("{reason}, in a segment that is not the last"));
    }
    match intact_record_after(bytes, offset, data_end) {
        Some(after) => {
            Ending::Damaged(format!("{reason}, but an intact record follows at offset {after}"))
        }
        None => Ending::Torn(reason.to_string()),
    }
}

/// Whether the part of `from..to` inside one of the 512-byte-aligned sectors it overlaps holds
/// only zeros (within the file).
fn zero_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    let to = to.min(bytes.len());
    let mut sector_start = from - from % SECTOR_BYTES;
    while sector_start < to {
        let sector_end = sector_start.saturating_add(SECTOR_BYTES).min(bytes.len());
        if bytes[sector_start.max(from)..sector_end.min(to)].iter().all(|&byte| byte == 0) {
            return true;
        }
        sector_start = sector_end;
    }
    false
}

/// The offset of the first intact record that starts after `offset` (and before `data_end`,
/// as a record header is never all zeros).
fn intact_record_after(bytes: &[u8], offset: usize, data_end: usize) -> Option<usize> {
    (offset + 1..data_end).find(|&start| {
        let Some(header) = bytes.get(start..).and_then(|rest| rest.first_chunk()) else {
            return false;
        };
        let Header::Intact { length, body_crc } = record::parse_header(header) else {
            return false;
        };
        let body_start = start + record::HEADER_BYTES;
        body_start
            .checked_add(length)
            .and_then(|end| bytes.get(body_start..end))
            .is_some_and(|body| record::body_intact(body, body_crc))
    })
}

#[cfg(test)]
mod tests {
    use raftkv_core::raft::{Entry, Payload};
    use raftkv_core::{LogIndex, Term};

    use super::*;
    use crate::wal::record::LogChangeRef;

    /// How many intact records `scan` hands on from `bytes`, the last segment.
    fn records(bytes: &[u8]) -> usize {
        let mut count = 0;
        scan(bytes, true, &mut |_, _| {
            count += 1;
            Ok(())
        });
        count
    }

    #[test]
    fn a_record_refused_ends_the_records_there_as_damage() {
        let mut bytes = segment::header(1).to_vec();
        for index in 1..=3 {
            bytes.extend(record(index, 10, bytes.len()));
        }
        let mut offsets = Vec::new();
        let scanned = scan(&bytes, true, &mut |offset, _| {
            offsets.push(offset);
            if offsets.len() == 2 { Err("refused".to_string()) } else { Ok(()) }
        });
        assert_eq!(scanned.end, offsets[1], "ends where the refused record starts");
        assert_eq!(scanned.ending, Ending::Damaged("refused".to_string()));
    }

    /// A record appending one entry at `index` whose command is `bytes` long, to be written at
    /// `offset`.
    fn record(index: u64, bytes: usize, offset: usize) -> Vec<u8> {
        let entry = Entry {
            index: LogIndex(index),
            term: Term(1),
            payload: Payload::Command(vec![7; bytes]),
        };
        let changes = [LogChangeRef { truncate_from: None, entries: std::slice::from_ref(&entry) }];
        record::encode(&changes, offset as u64).expect("small")
    }

    /// A segment whose second record's header starts 5 bytes before the first sector boundary.
    fn straddling_segment() -> (Vec<u8>, usize) {
        let mut bytes = segment::header(1).to_vec();
        bytes.extend_from_slice(&record_ending_at(1, bytes.len(), SECTOR_BYTES - 5));
        let second_at = bytes.len();
        bytes.extend_from_slice(&record(2, 100, second_at));
        bytes.resize(2 * SECTOR_BYTES, 0);
        (bytes, second_at)
    }

    /// A record of entry `index` written at `offset` whose extent ends at `end`.
    fn record_ending_at(index: u64, offset: usize, end: usize) -> Vec<u8> {
        let mut size = end - offset;
        let mut found = record(index, size, offset);
        while offset + found.len() != end {
            size = if offset + found.len() < end { size + 1 } else { size - 1 };
            found = record(index, size, offset);
        }
        found
    }

    /// A segment whose only record ends one byte into the second sector.
    fn one_byte_over_segment() -> Vec<u8> {
        let mut bytes = segment::header(1).to_vec();
        bytes.extend_from_slice(&record_ending_at(1, bytes.len(), SECTOR_BYTES + 1));
        bytes.resize(2 * SECTOR_BYTES, 0);
        bytes
    }

    /// Found by the simulator (seed 401804): a bit rotted in the last record of the log, whose
    /// last byte sat alone in the next sector and was a zero (as postcard ends most entries);
    /// the record was taken for a torn write and acknowledged entries vanished unreported.
    #[test]
    fn a_flipped_bit_in_a_last_record_with_one_byte_in_the_next_sector_is_damage() {
        let mut bytes = one_byte_over_segment();
        assert_eq!(records(&bytes), 1, "intact");
        bytes[300] ^= 0x40;
        let scanned = scan(&bytes, true, &mut |_, _| Ok(()));
        assert_eq!(records(&bytes), 0);
        assert!(matches!(scanned.ending, Ending::Damaged(_)), "{:?}", scanned.ending);
    }

    #[test]
    fn a_last_record_whose_byte_in_the_next_sector_was_lost_is_a_torn_write() {
        let mut bytes = one_byte_over_segment();
        bytes[SECTOR_BYTES] = 0;
        let scanned = scan(&bytes, true, &mut |_, _| Ok(()));
        assert!(matches!(scanned.ending, Ending::Torn(_)), "{:?}", scanned.ending);
    }

    #[test]
    fn a_flipped_bit_in_a_last_record_holding_a_value_of_zeros_is_damage() {
        let entry =
            Entry { index: LogIndex(1), term: Term(1), payload: Payload::Command(vec![0; 3000]) };
        let changes = [LogChangeRef { truncate_from: None, entries: std::slice::from_ref(&entry) }];
        let mut bytes = segment::header(1).to_vec();
        bytes.extend_from_slice(&record::encode(&changes, bytes.len() as u64).expect("small"));
        bytes.resize(8 * SECTOR_BYTES, 0);
        assert_eq!(records(&bytes), 1, "intact");
        bytes[1500] ^= 0x01;
        let scanned = scan(&bytes, true, &mut |_, _| Ok(()));
        assert!(matches!(scanned.ending, Ending::Damaged(_)), "{:?}", scanned.ending);
    }

    /// Found by the simulator (seed 2152): a crash lost the first sector of a write whose
    /// record header spanned two sectors; the header's first five bytes were zeros again, next
    /// to older records in that sector, and the torn write was taken for damage.
    #[test]
    fn a_header_across_a_sector_boundary_with_its_first_part_lost_is_a_torn_write() {
        let (mut bytes, second_at) = straddling_segment();
        assert_eq!(records(&bytes), 2, "both records intact");
        bytes[second_at..SECTOR_BYTES].fill(0);
        assert_eq!(records(&bytes), 1);
        let scanned = scan(&bytes, true, &mut |_, _| Ok(()));
        assert!(matches!(scanned.ending, Ending::Torn(_)), "{:?}", scanned.ending);
    }

    #[test]
    fn a_flipped_bit_in_a_header_across_a_sector_boundary_is_damage() {
        let (mut bytes, second_at) = straddling_segment();
        bytes[second_at + 2] ^= 0x04;
        let scanned = scan(&bytes, true, &mut |_, _| Ok(()));
        assert!(matches!(scanned.ending, Ending::Damaged(_)), "{:?}", scanned.ending);
    }
}
