//! WAL segment files, `wal/<sequence>.wal` (format version 4): a 20-byte header, records one
//! after another, then zeros.
//!
//! ```text
//! [magic "RKVWAL"][format version: u16 BE][sequence: u64 LE][CRC32C of the 16 bytes before: u32 LE]
//! ```
//!
//! A segment of another format version is refused, naming the file and the version found:
//! version 1 had no header checksum and records without a checksum of their own header;
//! version 2 records were not scrambled and had no end mark (see `record`).

/// Bytes of the header at the start of every segment.
pub(crate) const HEADER_BYTES: usize = 20;
/// The format version this code writes and reads. Version 3 was never used: it is one bit away
/// from versions 1 and 2, and a header one bit away from this format's is taken for damage.
pub(crate) const FORMAT_VERSION: u16 = 4;
const MAGIC: &[u8; 6] = b"RKVWAL";

/// What the start of a segment holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// The header of this segment.
    Intact,
    /// The file holds nothing but zeros: a crash right after it was created.
    Missing,
    /// A header of this format that does not hold together.
    Damaged(String),
    /// Not a segment of this format: another version, or not a raftkv WAL segment at all.
    Foreign(String),
}

/// The header of segment `sequence`.
pub(crate) fn header(sequence: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0; HEADER_BYTES];
    header[..6].copy_from_slice(MAGIC);
    header[6..8].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    header[8..16].copy_from_slice(&sequence.to_le_bytes());
    let crc = crc32c::crc32c(&header[..16]);
    header[16..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks the start of `bytes`, the whole file of segment `sequence`.
pub(crate) fn check_header(bytes: &[u8], sequence: u64) -> HeaderCheck {
    if bytes.iter().all(|&byte| byte == 0) {
        return HeaderCheck::Missing;
    }
    let expected = header(sequence);
    let Some(found) = bytes.get(..HEADER_BYTES) else {
        return if bytes.starts_with(MAGIC) {
            HeaderCheck::Damaged("the file ends inside the segment header".to_string())
        } else {
            HeaderCheck::Foreign("not a raftkv WAL segment".to_string())
        };
    };
    let checksum_holds = crc32c::crc32c(&found[..16]).to_le_bytes()[..] == found[16..];
    // Magic and version together, and how many bits set them apart from this format's.
    let differing_bits: u32 =
        found[..8].iter().zip(&expected[..8]).map(|(a, b)| (a ^ b).count_ones()).sum();
    if differing_bits > 0 {
        let version = u16::from_be_bytes([found[6], found[7]]);
        // One flipped bit in a header of this format is damage; a header that holds together
        // or differs more is another format, which must not be cut away as if it were damage.
        if differing_bits == 1 && !checksum_holds {
            return HeaderCheck::Damaged("the segment header fails its checksum".to_string());
        }
        if !found.starts_with(MAGIC) {
            return HeaderCheck::Foreign("not a raftkv WAL segment".to_string());
        }
        return HeaderCheck::Foreign(format!(
            "a WAL segment of format version {version}, but this raftkv reads version \
             {FORMAT_VERSION} only{}",
            if version < FORMAT_VERSION { " (it was written by an older raftkv)" } else { "" }
        ));
    }
    if !checksum_holds {
        return HeaderCheck::Damaged("the segment header fails its checksum".to_string());
    }
    if found[8..16] != expected[8..16] {
        let found = u64::from_le_bytes(found[8..16].try_into().expect("8 bytes"));
        return HeaderCheck::Damaged(format!(
            "the segment header names sequence {found}, its file name {sequence}"
        ));
    }
    HeaderCheck::Intact
}

/// The file name of segment `sequence`.
pub(crate) fn file_name(sequence: u64) -> String {
    format!("{sequence:020}.wal")
}

/// The sequence number in a segment's file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_headers_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("00000000000000000042.tmp"), None);
        assert_eq!(parse_file_name("42.wal"), None);
        let mut file = header(7).to_vec();
        file.extend_from_slice(&[1, 2, 3]);
        assert_eq!(check_header(&file, 7), HeaderCheck::Intact);
        assert_eq!(check_header(&[0; 100], 7), HeaderCheck::Missing);
        assert_eq!(check_header(&[], 7), HeaderCheck::Missing);
    }

    #[test]
    fn any_flipped_bit_of_a_header_is_damage() {
        for bit in 0..HEADER_BYTES * 8 {
            let mut file = header(7).to_vec();
            file[bit / 8] ^= 1 << (bit % 8);
            let check = check_header(&file, 7);
            assert!(matches!(check, HeaderCheck::Damaged(_)), "bit {bit}: {check:?}");
        }
        let check = check_header(&header(8), 7);
        assert!(matches!(&check, HeaderCheck::Damaged(reason) if reason.contains("sequence 8")));
    }

    #[test]
    fn other_versions_and_other_files_are_foreign() {
        // Version 1: the same magic, version 1, and records right after the sequence number.
        let mut version_1 = b"RKVWAL\x00\x01".to_vec();
        version_1.extend_from_slice(&7u64.to_le_bytes());
        version_1.extend_from_slice(&[0xe8, 3, 0, 0, 1, 2, 3, 4, 5]);
        let check = check_header(&version_1, 7);
        assert!(
            matches!(&check, HeaderCheck::Foreign(reason) if reason.contains("format version 1")),
            "{check:?}"
        );
        // Version 2 and a later version, each with a header that holds together.
        for version in [2, 5] {
            let mut other = header(7);
            other[7] = version;
            let crc = crc32c::crc32c(&other[..16]);
            other[16..].copy_from_slice(&crc.to_le_bytes());
            let check = check_header(&other, 7);
            assert!(
                matches!(&check, HeaderCheck::Foreign(reason)
                    if reason.contains(&format!("format version {version}"))),
                "{check:?}"
            );
        }
        let check = check_header(b"something else entirely", 7);
        assert_eq!(check, HeaderCheck::Foreign("not a raftkv WAL segment".to_string()));
    }
}
