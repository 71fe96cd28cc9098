//! The snapshot a follower receives from its leader, written chunk by chunk as the node's
//! persists carry them (`Persist::snapshot_chunk`), so that it never sits whole in memory
//! and a restart resumes the transfer where the disk stands.
//!
//! `DIR/snapshot.incoming` is a header, `[magic "RKVRCV01"][CRC32C of the body: u32 LE]
//! [length of the body: u32 LE][body: postcard (last entry, membership, total bytes)]`, then one
//! record per chunk, `[CRC32C of the rest of the record: u32 LE][length: u32 LE][offset in the
//! snapshot: u64 LE][bytes]`, in order. Reading stops at the first record that is short, fails
//! its checksum or does not start where the one before ended: a torn write, or damage. What
//! lies before it is what the node has; a chunk at offset 0 starts a new file.

use std::path::{Path, PathBuf};

use raftkv_core::LogId;
use raftkv_core::raft::{Membership, PartialSnapshot, ReceivedChunk, Snapshot};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::fs::FileSystem;

/// The file's name in the data directory.
pub(crate) const FILE: &str = "snapshot.incoming";
const MAGIC: &[u8; 8] = b"RKVRCV01";
/// Magic, checksum and length.
const HEADER_BYTES: usize = 16;
/// A membership of a few nodes weighs a few hundred bytes: a longer body is damage.
const BODY_BYTES_MAX: u32 = 1 << 20;
/// Checksum, length and offset.
const RECORD_HEADER_BYTES: usize = 16;

/// What the header says: which snapshot the file holds part of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    last: LogId,
    membership: Membership,
    total: u64,
}

/// The file being written, as far as it is good.
#[derive(Debug)]
pub(crate) struct ReceivedFile<F: FileSystem> {
    file: F::File,
    last: LogId,
    total: u64,
    /// Bytes of the snapshot the file holds, from the first on.
    received: u64,
    /// Where the next record goes: just past the last good one.
    end: u64,
    /// Written since the last sync.
    unsynced: bool,
    /// Created since the last sync: its directory entry must be made durable too.
    created: bool,
}

impl<F: FileSystem> ReceivedFile<F> {
    /// The part of a snapshot the file holds.
    pub(crate) fn partial(&self) -> PartialSnapshot {
        PartialSnapshot { last: self.last, total: self.total, received: self.received }
    }
}

/// Opens the file of `dir` found at a start: what it holds, from its first byte up to the
/// first record that is torn or damaged, ready to go on. A file that holds no part of a
/// snapshot newer than `snapshot_index` (or whose header is damaged) is removed: the
/// transfer starts again from the first byte, as after any loss.
pub(crate) fn open<F: FileSystem>(
    fs: &F,
    dir: &Path,
    snapshot_index: raftkv_core::LogIndex,
) -> Result<Option<ReceivedFile<F>>, StorageError> {
    let path = dir.join(FILE);
    let Some(reader) = fs.open_for_reading(&path).map_err(StorageError::io("open", &path))? else {
        return Ok(None);
    };
    let scanned = read_header(fs, &reader).map(|(identity, first)| {
        let (received, end) = scan(fs, &reader, first, identity.total, |_| {});
        (identity, received, end)
    });
    match scanned {
        Some((identity, received, end)) if identity.last.index > snapshot_index => {
            let file = fs.open_for_writing(&path).map_err(StorageError::io("open", &path))?;
            let (last, total) = (identity.last, identity.total);
            let unsynced = false;
            Ok(Some(ReceivedFile { file, last, total, received, end, unsynced, created: false }))
        }
        _ => {
            remove(fs, dir)?;
            Ok(None)
        }
    }
}

/// Adds `chunk` to the file held (`received`), or starts a new file with it (offset 0).
/// Nothing is durable before [`sync`].
pub(crate) fn write<F: FileSystem>(
    fs: &F,
    dir: &Path,
    received: &mut Option<ReceivedFile<F>>,
    chunk: &ReceivedChunk,
) -> Result<(), StorageError> {
    let path = dir.join(FILE);
    if chunk.offset == 0 {
        *received = None;
        remove(fs, dir)?;
        let mut file = fs.create_new(&path).map_err(StorageError::io("create", &path))?;
        let identity =
            Identity { last: chunk.last, membership: chunk.membership.clone(), total: chunk.total };
        let header = encode_header(&identity);
        fs.write_at(&mut file, 0, &header).map_err(StorageError::io("write", &path))?;
        let (last, total, end) = (chunk.last, chunk.total, header.len() as u64);
        *received = Some(ReceivedFile {
            file,
            last,
            total,
            received: 0,
            end,
            unsynced: true,
            created: true,
        });
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
    let record = encode_record(chunk.offset, &chunk.data)?;
    fs.write_at(&mut held.file, held.end, &record).map_err(StorageError::io("write", &path))?;
    held.end = held.end.checked_add(record.len() as u64).expect("a file within u64");
    held.received = chunk.end();
    held.unsynced = true;
    Ok(())
}

/// Makes what [`write`] wrote durable.
pub(crate) fn sync<F: FileSystem>(
    fs: &F,
    dir: &Path,
    received: &mut Option<ReceivedFile<F>>,
) -> Result<(), StorageError> {
    let Some(held) = received.as_mut().filter(|held| held.unsynced) else { return Ok(()) };
    let path = dir.join(FILE);
    fs.sync_data(&mut held.file).map_err(StorageError::io("sync", &path))?;
    if held.created {
        fs.sync_dir(dir).map_err(StorageError::io("sync", dir))?;
    }
    (held.unsynced, held.created) = (false, false);
    Ok(())
}

/// Removes the file of `dir`, if there is one (not durably: a file found again at a start
/// that holds nothing newer than the snapshot is removed then).
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(FILE);
    if fs.open_for_reading(&path).map_err(StorageError::io("open", &path))?.is_some() {
        fs.remove_file(&path).map_err(StorageError::io("remove", &path))?;
    }
    Ok(())
}

/// Reads back the snapshot received whole that `whole` names from the file of `dir`, checking
/// every checksum: to run where the caller likes, apart from the writes. Fails if the file
/// holds another snapshot, less of it, or damage.
pub fn load_received_snapshot<F: FileSystem>(
    fs: &F,
    dir: &Path,
    whole: &PartialSnapshot,
) -> Result<Snapshot, StorageError> {
    let path: PathBuf = dir.join(FILE);
    let damaged = |offset: u64, reason: &str| StorageError::Corrupt {
        path: path.clone(),
        offset,
        reason: reason.to_string(),
    };
    let Some(reader) = fs.open_for_reading(&path).map_err(StorageError::io("open", &path))? else {
        return Err(damaged(0, "no snapshot received"));
    };
    let Some((identity, first)) = read_header(fs, &reader) else {
        return Err(damaged(0, "damaged header"));
    };
    if (identity.last, identity.total) != (whole.last, whole.total) {
        return Err(damaged(0, "holds another snapshot"));
    }
    let mut data = Vec::new();
    let (received, end) =
        scan(fs, &reader, first, identity.total, |bytes| data.extend_from_slice(bytes));
    if received != identity.total {
        return Err(damaged(end, "a record is damaged or missing"));
    }
    Ok(Snapshot { last: identity.last, membership: identity.membership, data })
}

fn encode_header(identity: &Identity) -> Vec<u8> {
    let body = postcard::to_allocvec(identity).expect("encoding into a Vec cannot fail");
    let mut header = Vec::with_capacity(HEADER_BYTES + body.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    let length = u32::try_from(body.len()).expect("a membership weighs little");
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&body);
    header
}

/// The header of the file open in `reader`, and where the records start; `None` if damaged.
fn read_header<F: FileSystem>(fs: &F, reader: &F::File) -> Option<(Identity, u64)> {
    let header = fs.read_at(reader, 0, HEADER_BYTES).ok()?;
    if &header[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let length = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    if length > BODY_BYTES_MAX {
        return None;
    }
    let body = fs.read_at(reader, HEADER_BYTES as u64, length as usize).ok()?;
    if crc32c::crc32c(&body) != crc {
        return None;
    }
    let identity: Identity = postcard::from_bytes(&body).ok()?;
    Some((identity, HEADER_BYTES as u64 + u64::from(length)))
}

fn encode_record(offset: u64, data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let length = u32::try_from(data.len())
        .map_err(|_| StorageError::Refused { reason: "a chunk of 4 GiB or more".to_string() })?;
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + data.len());
    record.extend_from_slice(&[0; 4]);
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&offset.to_le_bytes());
    record.extend_from_slice(data);
    let crc = crc32c::crc32c(&record[4..]);
    record[..4].copy_from_slice(&crc.to_le_bytes());
    Ok(record)
}

/// Reads the records from file offset `at` on, handing each one's bytes to `each`, up to the
/// first that is short, damaged, or not where the one before ended, or past `total`. Returns
/// the bytes of the snapshot they hold and the file offset just past the last good one.
fn scan<F: FileSystem>(
    fs: &F,
    reader: &F::File,
    mut at: u64,
    total: u64,
    mut each: impl FnMut(&[u8]),
) -> (u64, u64) {
    let mut received = 0u64;
    while received < total {
        let Ok(header) = fs.read_at(reader, at, RECORD_HEADER_BYTES) else { break };
        let crc = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let length = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let offset = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        if offset != received || u64::from(length) > total - received {
            break;
        }
        let data_at = at + RECORD_HEADER_BYTES as u64;
        let Ok(data) = fs.read_at(reader, data_at, length as usize) else { break };
        if crc32c::crc32c_append(crc32c::crc32c(&header[4..]), &data) != crc {
            break;
        }
        each(&data);
        received += u64::from(length);
        at = data_at + u64::from(length);
    }
    (received, at)
}

#[cfg(test)]
mod tests {
    use raftkv_core::{LogIndex, NodeId, Term};

    use super::*;
    use crate::directory;
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
    fn chunks_written_resume_after_a_restart_and_load_back_whole() {
        let (fs, dir) = setup();
        let mut received = None;
        write(&fs, dir, &mut received, &chunk(0, b"ab")).unwrap();
        write(&fs, dir, &mut received, &chunk(2, b"cd")).unwrap();
        sync(&fs, dir, &mut received).unwrap();
        assert!(write(&fs, dir, &mut received, &chunk(5, b"f")).is_err(), "a gap");
        // A restart: the file is opened again.
        let mut received = open(&fs, dir, LogIndex(0)).unwrap();
        let partial = PartialSnapshot { last: LAST, total: 6, received: 4 };
        assert_eq!(received.as_ref().map(ReceivedFile::partial), Some(partial));
        let whole = PartialSnapshot { received: 6, ..partial };
        assert!(load_received_snapshot(&fs, dir, &whole).is_err(), "not whole yet");
        write(&fs, dir, &mut received, &chunk(4, b"ef")).unwrap();
        sync(&fs, dir, &mut received).unwrap();
        let loaded = load_received_snapshot(&fs, dir, &whole).unwrap();
        assert_eq!((loaded.last, &loaded.data[..]), (LAST, &b"abcdef"[..]));
        assert_eq!(loaded.membership, chunk(0, b"").membership);
        // Of no use once a snapshot at or past it is held: removed at the next start.
        assert!(open(&fs, dir, LAST.index).unwrap().is_none());
        assert!(open(&fs, dir, LogIndex(0)).unwrap().is_none(), "removed");
    }

    #[test]
    fn a_torn_or_rotten_record_ends_what_is_held_and_is_never_loaded() {
        let (fs, dir) = setup();
        let mut received = None;
        for (offset, data) in [(0, b"ab"), (2, b"cd"), (4, b"ef")] {
            write(&fs, dir, &mut received, &chunk(offset, data)).unwrap();
        }
        sync(&fs, dir, &mut received).unwrap();
        let whole = PartialSnapshot { last: LAST, total: 6, received: 6 };
        assert!(load_received_snapshot(&fs, dir, &whole).is_ok());
        // Rot one bit in the second record's bytes.
        let path = dir.join(FILE);
        let mut contents = fs.read(&path).unwrap().unwrap();
        let second_record_data = contents.len() - (RECORD_HEADER_BYTES + 2) - 2;
        contents[second_record_data] ^= 0x10;
        let mut file = fs.open_for_writing(&path).unwrap();
        fs.write_at(&mut file, 0, &contents).unwrap();
        fs.sync_data(&mut file).unwrap();
        let found = load_received_snapshot(&fs, dir, &whole);
        assert!(matches!(found, Err(StorageError::Corrupt { .. })), "{found:?}");
        let reopened = open(&fs, dir, LogIndex(0)).unwrap();
        let partial = PartialSnapshot { last: LAST, total: 6, received: 2 };
        assert_eq!(reopened.as_ref().map(ReceivedFile::partial), Some(partial), "up to the damage");
        // A damaged header holds nothing: the file goes.
        contents[9] ^= 0x01;
        fs.write_at(&mut file, 0, &contents).unwrap();
        fs.sync_data(&mut file).unwrap();
        assert!(open(&fs, dir, LogIndex(0)).unwrap().is_none());
        assert!(fs.read(&path).unwrap().is_none(), "removed");
    }
}
