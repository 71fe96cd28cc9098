//! The snapshot a follower receives from its leader, written chunk by chunk as the node's
//! persists carry them (`Persist::snapshot_chunk`), so that it never sits whole in memory, a
//! restart resumes the transfer where the disk stands, and, once whole, it becomes the node's
//! snapshot file by a rename: its data is written once.
//!
//! Two files hold it:
//!
//! - `DIR/snapshot.incoming` is laid out as the snapshot file will be: the file's header
//!   (zeros until the snapshot is whole and checked), the contents' prefix (last entry,
//!   membership, length of the data), then the data, each chunk written at its place.
//! - `DIR/snapshot.incoming.sums` says what of it is durable: a header, `[magic "RKVRCV02"]
//!   [CRC32C of the body: u32 LE][length of the body: u32 LE][body: postcard (last entry,
//!   membership, total bytes)]`, then one record per piece of data written, `[CRC32C of the
//!   rest of the record: u32 LE][offset in the data: u64 LE][length: u32 LE][CRC32C of the
//!   piece: u32 LE]`, in order. A record is written only once its piece is synced; reading
//!   stops at the first record that is short, fails its checksum or does not start where the
//!   one before ended.
//!
//! Once every byte is durable, the reader ([`ReceivedSnapshotReader`]) checks every piece
//! against its record while the caller decodes the data, and then writes the snapshot file's
//! header (the checksum of the whole contents, computed on the way) and syncs it. Installing
//! the snapshot ([`promote`]) renames the file over `DIR/snapshot` and syncs the directory.
//!
//! After a crash, at any step: a data file without its sums file, or with a sums file of
//! another snapshot, is removed (the transfer starts again); both of a snapshot no newer than
//! the node's are removed; a data file renamed into place leaves a sums file of a snapshot no
//! newer than the node's, which goes. A file of the previous format (`RKVRCV01`, the data and
//! the records in one file) has no sums file, and is removed likewise: the transfer starts
//! again, and the data directory is otherwise read as before.
//!
//! [`ReceivedSnapshotReader`]: crate::ReceivedSnapshotReader

use std::path::Path;

use raftkv_core::raft::{Membership, PartialSnapshot, ReceivedChunk, SavedSnapshot};
use raftkv_core::{LogId, LogIndex};
use serde::{Deserialize, Serialize};

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::HEADER_BYTES;
use crate::snapshot;

/// The data file's name in the data directory.
pub(crate) const FILE: &str = "snapshot.incoming";
/// The sums file's name in the data directory.
pub(crate) const SUMS_FILE: &str = "snapshot.incoming.sums";
const SUMS_MAGIC: &[u8; 8] = b"RKVRCV02";
/// Magic, checksum and length.
const SUMS_HEADER_BYTES: usize = 16;
/// A membership of a few nodes weighs a few hundred bytes: a longer body is damage.
const BODY_BYTES_MAX: u32 = 1 << 20;
/// Checksum, offset, length and the piece's checksum.
const RECORD_BYTES: usize = 20;
/// The longest piece one record covers: a reader checks a piece before it hands out any byte
/// of it, and holds one piece at a time.
pub(crate) const PIECE_BYTES_MAX: usize = 1 << 20;

/// Which snapshot the files hold part of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) last: LogId,
    pub(crate) membership: Membership,
    pub(crate) total: u64,
}

impl Identity {
    /// The snapshot file's contents before the data.
    pub(crate) fn prefix(&self) -> Vec<u8> {
        snapshot::contents_prefix(self.last, &self.membership, self.total)
    }

    /// Where the data starts in the data file.
    pub(crate) fn data_offset(&self) -> u64 {
        (HEADER_BYTES + self.prefix().len()) as u64
    }
}

/// What a record says of a piece of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) offset: u64,
    pub(crate) length: u32,
    pub(crate) crc: u32,
}

/// The files being written, as far as they are good.
#[derive(Debug)]
pub(crate) struct ReceivedFile<F: FileSystem> {
    data: F::File,
    sums: F::File,
    last: LogId,
    total: u64,
    data_offset: u64,
    /// Bytes of the snapshot written, from the first on.
    received: u64,
    /// Where the next record goes in the sums file.
    sums_end: u64,
    /// The records of pieces written since the last sync: they go to the sums file once the
    /// pieces are durable.
    unsynced_records: Vec<u8>,
    /// Created since the last sync: the directory entries must be made durable too.
    created: bool,
}

impl<F: FileSystem> ReceivedFile<F> {
    /// The part of a snapshot the files hold (durably once synced).
    pub(crate) fn partial(&self) -> PartialSnapshot {
        PartialSnapshot { last: self.last, total: self.total, received: self.received }
    }
}

/// Opens the files of `dir` found at a start: what they hold, up to the first record that is
/// torn or damaged, ready to go on. Files that hold no part of a snapshot newer than
/// `snapshot_index`, or that do not go together, are removed: the transfer starts again from
/// the first byte, as after any loss.
pub(crate) fn open<F: FileSystem>(
    fs: &F,
    dir: &Path,
    snapshot_index: LogIndex,
) -> Result<Option<ReceivedFile<F>>, StorageError> {
    let (data_path, sums_path) = (dir.join(FILE), dir.join(SUMS_FILE));
    let sums = fs.open_for_reading(&sums_path).map_err(StorageError::io("open", &sums_path))?;
    let data = fs.open_for_reading(&data_path).map_err(StorageError::io("open", &data_path))?;
    let held = match (&sums, &data) {
        (Some(sums), Some(data)) => read_sums_header(fs, sums)
            .filter(|(identity, _)| identity.last.index > snapshot_index)
            .filter(|(identity, _)| data_prefix_is(fs, data, identity)),
        _ => None,
    };
    let Some((identity, first_record)) = held else {
        remove(fs, dir)?;
        return Ok(None);
    };
    let sums = sums.expect("checked above");
    let (pieces, sums_end) = scan(fs, &sums, first_record, identity.total);
    let received = pieces.last().map_or(0, |piece| piece.offset + u64::from(piece.length));
    Ok(Some(ReceivedFile {
        data: fs.open_for_writing(&data_path).map_err(StorageError::io("open", &data_path))?,
        sums: fs.open_for_writing(&sums_path).map_err(StorageError::io("open", &sums_path))?,
        last: identity.last,
        total: identity.total,
        data_offset: identity.data_offset(),
        received,
        sums_end,
        unsynced_records: Vec::new(),
        created: false,
    }))
}

/// Adds `chunk` to the files held (`received`), or starts new files with it (offset 0).
/// Nothing is durable before [`sync`].
pub(crate) fn write<F: FileSystem>(
    fs: &F,
    dir: &Path,
    received: &mut Option<ReceivedFile<F>>,
    chunk: &ReceivedChunk,
) -> Result<(), StorageError> {
    if chunk.offset == 0 {
        *received = None;
        remove(fs, dir)?;
        let identity =
            Identity { last: chunk.last, membership: chunk.membership.clone(), total: chunk.total };
        *received = Some(create(fs, dir, &identity)?);
    }
    let held = received.as_mut().filter(|held| {
        (held.last, held.total, held.received) == (chunk.last, chunk.total, chunk.offset)
    });
    let Some(held) = held else {
        let reason = format!(
            "a chunk of the snapshot received at {}@{} continues no file held",
            chunk.last, chunk.offset
        );
        return Err(StorageError::Refused { reason });
    };
    if chunk.end() > held.total {
        let reason = format!("a chunk of the snapshot {} ends past its size", chunk.last);
        return Err(StorageError::Refused { reason });
    }
    let path = dir.join(FILE);
    let at = held.data_offset.checked_add(chunk.offset).expect("the chunk lies within the total");
    fs.write_at(&mut held.data, at, &chunk.data).map_err(StorageError::io("write", &path))?;
    let mut offset = chunk.offset;
    for piece in chunk.data.chunks(PIECE_BYTES_MAX) {
        let length = u32::try_from(piece.len()).expect("a piece is at most PIECE_BYTES_MAX");
        let piece_sum = Piece { offset, length, crc: crc32c::crc32c(piece) };
        held.unsynced_records.extend_from_slice(&encode_record(piece_sum));
        offset += u64::from(length);
    }
    held.received = chunk.end();
    Ok(())
}

/// Creates both files for the snapshot `identity` names, each with its header.
fn create<F: FileSystem>(
    fs: &F,
    dir: &Path,
    identity: &Identity,
) -> Result<ReceivedFile<F>, StorageError> {
    let (data_path, sums_path) = (dir.join(FILE), dir.join(SUMS_FILE));
    let mut data = fs.create_new(&data_path).map_err(StorageError::io("create", &data_path))?;
    // The snapshot file's header stays zeros until the data is whole and checked.
    let prefix = identity.prefix();
    fs.write_at(&mut data, HEADER_BYTES as u64, &prefix)
        .map_err(StorageError::io("write", &data_path))?;
    let mut sums = fs.create_new(&sums_path).map_err(StorageError::io("create", &sums_path))?;
    let header = encode_sums_header(identity);
    fs.write_at(&mut sums, 0, &header).map_err(StorageError::io("write", &sums_path))?;
    Ok(ReceivedFile {
        data,
        sums,
        last: identity.last,
        total: identity.total,
        data_offset: identity.data_offset(),
        received: 0,
        sums_end: header.len() as u64,
        unsynced_records: Vec::new(),
        created: true,
    })
}

/// Makes what [`write`] wrote durable: the data first, then (once new files' directory entries
/// are durable) the records that say it is there.
pub(crate) fn sync<F: FileSystem>(
    fs: &F,
    dir: &Path,
    received: &mut Option<ReceivedFile<F>>,
) -> Result<(), StorageError> {
    let Some(held) = received.as_mut().filter(|held| !held.unsynced_records.is_empty()) else {
        return Ok(());
    };
    let (data_path, sums_path) = (dir.join(FILE), dir.join(SUMS_FILE));
    fs.sync_data(&mut held.data).map_err(StorageError::io("sync", &data_path))?;
    if held.created {
        fs.sync_data(&mut held.sums).map_err(StorageError::io("sync", &sums_path))?;
        directory::sync(fs, dir)?;
        held.created = false;
    }
    fs.write_at(&mut held.sums, held.sums_end, &held.unsynced_records)
        .map_err(StorageError::io("write", &sums_path))?;
    fs.sync_data(&mut held.sums).map_err(StorageError::io("sync", &sums_path))?;
    held.sums_end += held.unsynced_records.len() as u64;
    held.unsynced_records.clear();
    Ok(())
}

/// Removes the files of `dir`, if there are any, the sums file first (not durably: files
/// found again at a start that hold nothing newer than the snapshot are removed then).
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    for name in [SUMS_FILE, FILE] {
        let path = dir.join(name);
        if fs.open_for_reading(&path).map_err(StorageError::io("open", &path))?.is_some() {
            fs.remove_file(&path).map_err(StorageError::io("remove", &path))?;
        }
    }
    Ok(())
}

/// Makes the snapshot received whole, `installed`, the snapshot file of `dir`: renames the data
/// file into place and syncs the directory, then removes the sums file. The data file must be
/// finished (`ReceivedSnapshotReader::finish`): a file that does not hold `installed` under a
/// snapshot file's header is refused.
pub(crate) fn promote<F: FileSystem>(
    fs: &F,
    dir: &Path,
    received: &mut Option<ReceivedFile<F>>,
    installed: &SavedSnapshot,
) -> Result<(), StorageError> {
    let path = dir.join(FILE);
    let identity = Identity {
        last: installed.last,
        membership: installed.membership.clone(),
        total: installed.bytes,
    };
    let data = fs.open_for_reading(&path).map_err(StorageError::io("open", &path))?;
    let finished = data.is_some_and(|data| {
        data_prefix_is(fs, &data, &identity) && header_is_finished(fs, &data, &identity)
    });
    if !finished {
        let reason = format!("no finished snapshot received at {} to install", installed.last);
        return Err(StorageError::Refused { reason });
    }
    *received = None;
    let target = dir.join(snapshot::FILE);
    fs.rename(&path, &target).map_err(StorageError::io("rename into place", &target))?;
    directory::sync(fs, dir)?;
    remove(fs, dir)
}

/// Whether the data file open in `data` starts its contents with the prefix of `identity`.
pub(crate) fn data_prefix_is<F: FileSystem>(fs: &F, data: &F::File, identity: &Identity) -> bool {
    let prefix = identity.prefix();
    fs.read_at(data, HEADER_BYTES as u64, prefix.len()).is_ok_and(|found| found == prefix)
}

/// Whether the data file open in `data` has a snapshot file's header for the contents of
/// `identity` (the checksum is checked when the file is read as the node's snapshot).
fn header_is_finished<F: FileSystem>(fs: &F, data: &F::File, identity: &Identity) -> bool {
    let Ok(header) = fs.read_at(data, 0, HEADER_BYTES) else { return false };
    let length = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    let expected = (identity.prefix().len() as u64).checked_add(identity.total);
    &header[..8] == snapshot::MAGIC && Some(length) == expected
}

fn encode_sums_header(identity: &Identity) -> Vec<u8> {
    let body = postcard::to_allocvec(identity).expect("encoding into a Vec cannot fail");
    let mut header = Vec::with_capacity(SUMS_HEADER_BYTES + body.len());
    header.extend_from_slice(SUMS_MAGIC);
    header.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    let length = u32::try_from(body.len()).expect("a membership weighs little");
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&body);
    header
}

/// The header of the sums file open in `reader`, and where the records start; `None` if
/// damaged (or of another format).
pub(crate) fn read_sums_header<F: FileSystem>(fs: &F, reader: &F::File) -> Option<(Identity, u64)> {
    let header = fs.read_at(reader, 0, SUMS_HEADER_BYTES).ok()?;
    if &header[..8] != SUMS_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let length = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    if length > BODY_BYTES_MAX {
        return None;
    }
    let body = fs.read_at(reader, SUMS_HEADER_BYTES as u64, length as usize).ok()?;
    if crc32c::crc32c(&body) != crc {
        return None;
    }
    let identity: Identity = postcard::from_bytes(&body).ok()?;
    Some((identity, SUMS_HEADER_BYTES as u64 + u64::from(length)))
}

fn encode_record(piece: Piece) -> [u8; RECORD_BYTES] {
    let mut record = [0; RECORD_BYTES];
    record[4..12].copy_from_slice(&piece.offset.to_le_bytes());
    record[12..16].copy_from_slice(&piece.length.to_le_bytes());
    record[16..20].copy_from_slice(&piece.crc.to_le_bytes());
    let crc = crc32c::crc32c(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    record
}

/// Reads the records of the sums file open in `reader` from file offset `at` on, up to the
/// first that is short, damaged, not where the one before ended, or past `total`. Returns the
/// pieces they describe and the file offset just past the last good one.
pub(crate) fn scan<F: FileSystem>(
    fs: &F,
    reader: &F::File,
    mut at: u64,
    total: u64,
) -> (Vec<Piece>, u64) {
    let mut pieces = Vec::new();
    let mut received = 0u64;
    while received < total {
        let Ok(record) = fs.read_at(reader, at, RECORD_BYTES) else { break };
        let crc = u32::from_le_bytes(record[..4].try_into().expect("4 bytes"));
        let offset = u64::from_le_bytes(record[4..12].try_into().expect("8 bytes"));
        let length = u32::from_le_bytes(record[12..16].try_into().expect("4 bytes"));
        let piece_crc = u32::from_le_bytes(record[16..20].try_into().expect("4 bytes"));
        let fits = length > 0
            && length as usize <= PIECE_BYTES_MAX
            && u64::from(length) <= total - received;
        if crc32c::crc32c(&record[4..]) != crc || offset != received || !fits {
            break;
        }
        pieces.push(Piece { offset, length, crc: piece_crc });
        received += u64::from(length);
        at += RECORD_BYTES as u64;
    }
    (pieces, at)
}

#[cfg(test)]
mod tests {
    use raftkv_core::{NodeId, Term};

    use super::*;
    use crate::sim_fs::SimFs;

    const LAST: LogId = LogId { index: LogIndex(7), term: Term(2) };

    fn chunk(offset: u64, data: &[u8]) -> ReceivedChunk {
        let membership = Membership::with_voters([NodeId(1), NodeId(2)]);
        ReceivedChunk { last: LAST, membership, total: 6, offset, data: data.to_vec() }
    }

    fn setup() -> (SimFs, &'static Path) {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        (fs, dir)
    }

    #[test]
    fn chunks_written_resume_after_a_restart_where_the_records_end() {
        let (fs, dir) = setup();
        let mut received = None;
        write(&fs, dir, &mut received, &chunk(0, b"ab")).unwrap();
        write(&fs, dir, &mut received, &chunk(2, b"cd")).unwrap();
        sync(&fs, dir, &mut received).unwrap();
        assert!(write(&fs, dir, &mut received, &chunk(5, b"f")).is_err(), "a gap");
        // Written but never synced: its record never reached the sums file.
        write(&fs, dir, &mut received, &chunk(4, b"ef")).unwrap();
        let mut received = open(&fs, dir, LogIndex(0)).unwrap();
        let partial = PartialSnapshot { last: LAST, total: 6, received: 4 };
        assert_eq!(received.as_ref().map(ReceivedFile::partial), Some(partial));
        write(&fs, dir, &mut received, &chunk(4, b"ef")).unwrap();
        sync(&fs, dir, &mut received).unwrap();
        let whole = PartialSnapshot { received: 6, ..partial };
        let reopened = open(&fs, dir, LogIndex(0)).unwrap();
        assert_eq!(reopened.as_ref().map(ReceivedFile::partial), Some(whole));
        // Of no use once a snapshot at or past it is held: both files go.
        assert!(open(&fs, dir, LAST.index).unwrap().is_none());
        assert!(fs.read(&dir.join(FILE)).unwrap().is_none());
        assert!(fs.read(&dir.join(SUMS_FILE)).unwrap().is_none());
    }

    #[test]
    fn a_damaged_record_ends_what_is_held_and_files_that_do_not_go_together_are_removed() {
        let (fs, dir) = setup();
        let mut received = None;
        for (offset, data) in [(0, b"ab"), (2, b"cd"), (4, b"ef")] {
            write(&fs, dir, &mut received, &chunk(offset, data)).unwrap();
            sync(&fs, dir, &mut received).unwrap();
        }
        let sums_path = dir.join(SUMS_FILE);
        let mut sums = fs.read(&sums_path).unwrap().unwrap();
        // Rot one bit of the second record.
        let second = sums.len() - 2 * RECORD_BYTES;
        sums[second + 5] ^= 0x10;
        let mut file = fs.open_for_writing(&sums_path).unwrap();
        fs.write_at(&mut file, 0, &sums).unwrap();
        fs.sync_data(&mut file).unwrap();
        let reopened = open(&fs, dir, LogIndex(0)).unwrap();
        let partial = PartialSnapshot { last: LAST, total: 6, received: 2 };
        assert_eq!(reopened.as_ref().map(ReceivedFile::partial), Some(partial), "up to the damage");
        // A data file of another snapshot than its sums file says: both go.
        let mut data = fs.open_for_writing(&dir.join(FILE)).unwrap();
        fs.write_at(&mut data, HEADER_BYTES as u64, &[0xff]).unwrap();
        fs.sync_data(&mut data).unwrap();
        assert!(open(&fs, dir, LogIndex(0)).unwrap().is_none());
        assert!(fs.read(&sums_path).unwrap().is_none(), "removed");
    }

    #[test]
    fn a_file_of_the_previous_format_is_removed_and_the_transfer_starts_again() {
        let (fs, dir) = setup();
        let mut old = fs.create_new(&dir.join(FILE)).unwrap();
        fs.write_at(&mut old, 0, b"RKVRCV01 and records of the old format").unwrap();
        fs.sync_data(&mut old).unwrap();
        assert!(open(&fs, dir, LogIndex(0)).unwrap().is_none());
        assert!(fs.read(&dir.join(FILE)).unwrap().is_none(), "removed");
    }

    #[test]
    fn an_unfinished_file_is_never_installed() {
        let (fs, dir) = setup();
        let mut received = None;
        write(&fs, dir, &mut received, &chunk(0, b"abcdef")).unwrap();
        sync(&fs, dir, &mut received).unwrap();
        let c = chunk(0, b"");
        let installed = SavedSnapshot { last: LAST, membership: c.membership, bytes: 6 };
        let refused = promote(&fs, dir, &mut received, &installed);
        assert!(matches!(refused, Err(StorageError::Refused { .. })), "{refused:?}");
        assert!(fs.read(&dir.join(snapshot::FILE)).unwrap().is_none());
    }
}
