//! Reading the snapshot file without holding it in memory: checked in pieces at a start, then
//! its data read a chunk at a time, to send it to followers or decode it. The reader keeps the
//! file open, and tells which snapshot it reads: chunks of another one must not be sent. A
//! newer snapshot saved over it meanwhile never mixes in; the old file is then cut down as it
//! is let go of (see `release`), and the reader's reads answer that it was replaced.
//!
//! The file's checksum covers the whole file and is checked when the node starts; a chunk read
//! here is not checked against it (the follower decodes what it installs, and refuses a
//! snapshot that does not decode).

use std::io;
use std::path::Path;

use raftkv_core::LogId;
use raftkv_core::raft::{Membership, Snapshot};
use serde::de::DeserializeOwned;

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::small_file::{self, HEADER_BYTES, SmallFile};
use crate::snapshot::{FILE, MAGIC, MAGIC_WITHOUT_MEMBERSHIP};

/// Bytes read first to find where the data starts: the last entry and the membership come
/// before it, and a membership of a few nodes weighs a few hundred bytes.
const PREFIX_BYTES: u64 = 4 << 10;

/// Bytes of data read at a time by `SnapshotData`.
const DATA_PIECE_BYTES: u64 = 1 << 20;

/// The snapshot file of a data directory, open for reading its data.
#[derive(Debug)]
pub struct SnapshotReader<F: FileSystem> {
    fs: F,
    file: F::File,
    last: LogId,
    membership: Membership,
    /// Where the data starts in the file.
    data_offset: u64,
    data_bytes: u64,
}

/// What a snapshot file says before its data.
pub(crate) struct Head {
    pub(crate) last: LogId,
    pub(crate) membership: Membership,
    /// Where the data starts in the file.
    data_offset: u64,
    pub(crate) data_bytes: u64,
}

impl<F: FileSystem> SnapshotReader<F> {
    /// Opens the snapshot file of `dir` (of either format); `None` if there is none.
    pub fn open(fs: F, dir: &Path) -> Result<Option<SnapshotReader<F>>, StorageError> {
        let path = dir.join(FILE);
        let Some(file) = fs.open_for_reading(&path).map_err(StorageError::io("open", &path))?
        else {
            return Ok(None);
        };
        let Head { last, membership, data_offset, data_bytes } = read_head(&fs, &file, &path)?;
        Ok(Some(SnapshotReader { fs, file, last, membership, data_offset, data_bytes }))
    }

    /// The data, read in order as an `io::Read`, a piece at a time.
    pub fn data(&self) -> SnapshotData<'_, F> {
        SnapshotData { reader: self, offset: 0, piece: Vec::new(), handed_out: 0 }
    }

    /// The last entry the snapshot covers.
    pub fn last(&self) -> LogId {
        self.last
    }

    /// The membership in force at `last` (empty in a file of format 1).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The size of the snapshot's data.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// `length` bytes of the data at `offset`; fails past its end. `None` once a newer
    /// snapshot replaced this one and its file is being cut down.
    pub fn read(&self, offset: u64, length: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let beyond = StorageError::Refused {
            reason: format!(
                "{length} bytes at {offset} lie beyond a snapshot of {} bytes",
                self.data_bytes
            ),
        };
        let end = offset.checked_add(length).filter(|&end| end <= self.data_bytes);
        let length = usize::try_from(length).ok().filter(|_| end.is_some());
        let Some(length) = length else { return Err(beyond) };
        let at = self.data_offset.saturating_add(offset);
        match self.fs.read_at(&self.file, at, length) {
            Ok(bytes) => Ok(Some(bytes)),
            // The range lies within the snapshot the file held: only its release cut it short.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(error) => Err(StorageError::io("read", Path::new(FILE))(error)),
        }
    }
}

/// The snapshot saved in `dir`, of either format, checked whole but read without its data
/// (`Snapshot::data` is empty), which a [`SnapshotReader`] reads as it
/// is needed: a start need not hold the snapshot and the state decoded from it at once.
pub(crate) fn load_without_data<F: FileSystem>(
    fs: &F,
    dir: &Path,
) -> Result<SmallFile<Snapshot>, StorageError> {
    small_file::remove_leftover(fs, dir, FILE)?;
    let magics = [MAGIC, MAGIC_WITHOUT_MEMBERSHIP];
    match small_file::check_in_pieces(fs, dir, FILE, &magics)? {
        SmallFile::Missing => return Ok(SmallFile::Missing),
        SmallFile::Damaged { offset, reason } => return Ok(SmallFile::Damaged { offset, reason }),
        SmallFile::Intact(_) => {}
    }
    let path = dir.join(FILE);
    let Some(file) = fs.open_for_reading(&path).map_err(StorageError::io("open", &path))? else {
        return Ok(SmallFile::Missing);
    };
    match read_head(fs, &file, &path) {
        Ok(head) => Ok(SmallFile::Intact(Snapshot {
            last: head.last,
            membership: head.membership,
            data: Vec::new(),
        })),
        Err(StorageError::Corrupt { offset, reason, .. }) => {
            Ok(SmallFile::Damaged { offset, reason })
        }
        Err(error) => Err(error),
    }
}

/// Reads what the snapshot file open as `file` says before its data (of either format).
pub(crate) fn read_head<F: FileSystem>(
    fs: &F,
    file: &F::File,
    path: &Path,
) -> Result<Head, StorageError> {
    let damaged = |offset: u64, reason: &str| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    };
    let header =
        fs.read_at(file, 0, HEADER_BYTES).map_err(|_| damaged(0, "shorter than its header"))?;
    let with_membership = match &header[..8] {
        magic if magic == MAGIC => true,
        magic if magic == MAGIC_WITHOUT_MEMBERSHIP => false,
        _ => return Err(damaged(0, "wrong magic")),
    };
    let contents_bytes = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    let header_bytes = HEADER_BYTES as u64;
    let mut prefix_bytes = PREFIX_BYTES.min(contents_bytes);
    let (last, membership, data_bytes, consumed) = loop {
        let length = usize::try_from(prefix_bytes).map_err(|_| damaged(12, "too large"))?;
        let prefix = fs
            .read_at(file, header_bytes, length)
            .map_err(|_| damaged(12, "shorter than its length says"))?;
        match decode_prefix(&prefix, with_membership) {
            Ok(decoded) => break decoded,
            Err(postcard::Error::DeserializeUnexpectedEnd) if prefix_bytes < contents_bytes => {
                prefix_bytes = prefix_bytes.saturating_mul(2).min(contents_bytes);
            }
            Err(error) => return Err(damaged(header_bytes, &error.to_string())),
        }
    };
    let data_offset = header_bytes.saturating_add(consumed);
    if consumed.checked_add(data_bytes) != Some(contents_bytes) {
        return Err(damaged(12, "the data's length does not match the file's"));
    }
    Ok(Head { last, membership, data_offset, data_bytes })
}

/// The data of a snapshot file, read in order (`SnapshotReader::data`).
#[derive(Debug)]
pub struct SnapshotData<'a, F: FileSystem> {
    reader: &'a SnapshotReader<F>,
    /// Where the next piece starts in the data.
    offset: u64,
    piece: Vec<u8>,
    /// Bytes of `piece` handed out so far.
    handed_out: usize,
}

impl<F: FileSystem> io::Read for SnapshotData<'_, F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.handed_out == self.piece.len() {
            let length = (self.reader.data_bytes - self.offset).min(DATA_PIECE_BYTES);
            if length == 0 {
                return Ok(0);
            }
            self.piece = self
                .reader
                .read(self.offset, length)
                .map_err(io::Error::other)?
                .ok_or_else(|| io::Error::other("a newer snapshot replaced the one read"))?;
            self.offset += length;
            self.handed_out = 0;
        }
        let available = &self.piece[self.handed_out..];
        let length = available.len().min(out.len());
        out[..length].copy_from_slice(&available[..length]);
        self.handed_out += length;
        Ok(length)
    }
}

/// The fields before the data, the data's length, and the bytes they take.
fn decode_prefix(
    prefix: &[u8],
    with_membership: bool,
) -> Result<(LogId, Membership, u64, u64), postcard::Error> {
    let (last, rest): (LogId, _) = take(prefix)?;
    let (membership, rest) =
        if with_membership { take(rest)? } else { (Membership::default(), rest) };
    let (data_bytes, rest): (u64, _) = take(rest)?;
    let consumed = (prefix.len() - rest.len()) as u64;
    Ok((last, membership, data_bytes, consumed))
}

fn take<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, &[u8]), postcard::Error> {
    postcard::take_from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use raftkv_core::raft::Snapshot;
    use raftkv_core::{LogIndex, NodeId, Term};

    use super::*;
    use crate::sim_fs::SimFs;
    use crate::{directory, snapshot};

    #[test]
    fn chunks_read_back_the_data_of_the_snapshot_the_reader_opened() {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        assert!(SnapshotReader::open(fs.clone(), dir).unwrap().is_none());
        let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let last = LogId::new(LogIndex(70), Term(3));
        let first = Snapshot { last, membership: membership.clone(), data: data.clone() };
        snapshot::save(&fs, dir, &first).unwrap();
        let reader = SnapshotReader::open(fs.clone(), dir).unwrap().expect("a snapshot");
        assert_eq!(
            (reader.last(), reader.membership(), reader.data_bytes()),
            (last, &membership, 10_000)
        );
        // A newer snapshot renamed over it does not change what the open reader reads.
        let newer =
            Snapshot { last: LogId::new(LogIndex(90), Term(3)), membership, data: vec![7; 300] };
        snapshot::save(&fs, dir, &newer).unwrap();
        assert_eq!(reader.read(9_000, 1_000).unwrap(), Some(data[9_000..].to_vec()));
        assert_eq!(reader.read(0, 5).unwrap(), Some(data[..5].to_vec()));
        assert!(reader.read(9_999, 2).is_err(), "past the end");
        assert!(reader.read(u64::MAX, 2).is_err(), "an offset that overflows");
        let reopened = SnapshotReader::open(fs.clone(), dir).unwrap().expect("the newer one");
        assert_eq!(reopened.last().index, LogIndex(90));
        assert_eq!(reopened.read(0, 300).unwrap(), Some(vec![7; 300]));
        // One saved streaming, as the node saves its own, cuts the replaced file down: the
        // reader of the replaced one is told so rather than handed other bytes.
        let last = LogId::new(LogIndex(95), Term(3));
        let write = |out: &mut dyn std::io::Write| out.write_all(&[9; 300]);
        snapshot::save_streaming(&fs, dir, last, &Membership::default(), 300, write).unwrap();
        assert_eq!(reopened.read(0, 300).unwrap(), None);
        let newest = SnapshotReader::open(fs, dir).unwrap().expect("the newest one");
        assert_eq!(newest.read(0, 300).unwrap(), Some(vec![9; 300]));
    }

    #[test]
    fn a_snapshot_loaded_without_its_data_is_checked_whole_and_its_data_streams_back() {
        use std::io::Read;

        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        assert_eq!(load_without_data(&fs, dir).unwrap(), SmallFile::Missing);
        let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
        let last = LogId::new(LogIndex(7), Term(2));
        // Several pieces of the check and of the stream.
        let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
        let snapshot = Snapshot { last, membership: membership.clone(), data: data.clone() };
        snapshot::save(&fs, dir, &snapshot).unwrap();
        let without_data = Snapshot { data: Vec::new(), ..snapshot.clone() };
        assert_eq!(load_without_data(&fs, dir).unwrap(), SmallFile::Intact(without_data));
        let reader = SnapshotReader::open(fs.clone(), dir).unwrap().expect("a snapshot");
        let mut streamed = Vec::new();
        reader.data().read_to_end(&mut streamed).unwrap();
        assert_eq!(streamed, data);
        // One flipped bit in the data, a byte missing or one too many: damage.
        let path = dir.join(FILE);
        let whole = fs.read(&path).unwrap().unwrap();
        let mut flipped = whole.clone();
        flipped[2_000_000] ^= 1;
        let mut short = whole.clone();
        short.pop();
        let mut long = whole;
        long.push(0);
        for (contents, reason) in [(flipped, "checksum"), (short, "length"), (long, "length")] {
            fs.remove_file(&path).unwrap();
            let mut file = fs.create_new(&path).unwrap();
            fs.write_at(&mut file, 0, &contents).unwrap();
            let loaded = load_without_data(&fs, dir).unwrap();
            let SmallFile::Damaged { reason: found, .. } = &loaded else { panic!("{loaded:?}") };
            assert!(found.contains(reason), "{found}");
        }
    }
}
