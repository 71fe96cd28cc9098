//! Reading back a snapshot received whole from the leader (see `received_snapshot`), a piece at
//! a time, each checked against its record before any byte of it is handed out: the caller
//! decodes the state as it reads, and the snapshot is never held whole in memory. Once the
//! data is read, [`finish`](ReceivedSnapshotReader::finish) writes the snapshot file's header,
//! so that installing it is a rename.

use std::io;
use std::path::{Path, PathBuf};

use raftkv_core::LogId;
use raftkv_core::raft::{Membership, PartialSnapshot, Snapshot};

use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::received_snapshot::{self, FILE, Identity, Piece, SUMS_FILE};
use crate::snapshot;

/// The data of a snapshot received whole, read checked ([`io::Read`]): a piece that fails its
/// checksum is an error of kind `InvalidData`.
#[derive(Debug)]
pub struct ReceivedSnapshotReader<F: FileSystem> {
    fs: F,
    path: PathBuf,
    /// Read through; and written to, for the header, by `finish`.
    data: F::File,
    data_for_header: F::File,
    identity: Identity,
    data_offset: u64,
    pieces: std::vec::IntoIter<Piece>,
    /// The piece being handed out, checked, and how much of it is.
    piece: Vec<u8>,
    handed_out: usize,
    /// The checksum of the snapshot file's contents so far: the prefix, then the data read.
    contents_crc: u32,
    read: u64,
    /// A piece failed its checksum: the file is damaged, whatever is read after.
    damaged: bool,
}

impl<F: FileSystem> ReceivedSnapshotReader<F> {
    /// Opens the snapshot received whole that `whole` names in `dir`. Fails if the files hold
    /// another snapshot, or less of it.
    pub fn open(
        fs: F,
        dir: &Path,
        whole: &PartialSnapshot,
    ) -> Result<ReceivedSnapshotReader<F>, StorageError> {
        let (path, sums_path) = (dir.join(FILE), dir.join(SUMS_FILE));
        let damaged = |path: &Path, reason: &str| StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: reason.to_string(),
        };
        let open = |path: &Path| {
            fs.open_for_reading(path)
                .map_err(StorageError::io("open", path))?
                .ok_or_else(|| damaged(path, "no snapshot received"))
        };
        let (sums, data) = (open(&sums_path)?, open(&path)?);
        let data_for_header =
            fs.open_for_writing(&path).map_err(StorageError::io("open", &path))?;
        let Some((identity, first_record)) = received_snapshot::read_sums_header(&fs, &sums) else {
            return Err(damaged(&sums_path, "damaged header"));
        };
        if (identity.last, identity.total) != (whole.last, whole.total)
            || !received_snapshot::data_prefix_is(&fs, &data, &identity)
        {
            return Err(damaged(&path, "holds another snapshot"));
        }
        let (pieces, _) = received_snapshot::scan(&fs, &sums, first_record, identity.total);
        let received = pieces.last().map_or(0, |piece| piece.offset + u64::from(piece.length));
        if received != identity.total {
            return Err(damaged(&sums_path, "a record is damaged or missing"));
        }
        let contents_crc = crc32c::crc32c(&identity.prefix());
        Ok(ReceivedSnapshotReader {
            fs,
            path,
            data,
            data_for_header,
            data_offset: identity.data_offset(),
            identity,
            pieces: pieces.into_iter(),
            piece: Vec::new(),
            handed_out: 0,
            contents_crc,
            read: 0,
            damaged: false,
        })
    }

    /// The last entry the snapshot covers.
    pub fn last(&self) -> LogId {
        self.identity.last
    }

    /// The membership in force at `last`.
    pub fn membership(&self) -> &Membership {
        &self.identity.membership
    }

    /// The size of the snapshot's data.
    pub fn total(&self) -> u64 {
        self.identity.total
    }

    /// Checks the data not read yet, then makes the data file a snapshot file: writes its
    /// header and syncs it. The snapshot is then ready to install (`Persist::install_received`).
    /// Fails if any piece failed its checksum, read here or before.
    pub fn finish(mut self) -> Result<(), StorageError> {
        if let Err(error) = io::copy(&mut self, &mut io::sink()) {
            return Err(self.damaged(&error));
        }
        if self.damaged {
            let error = io::Error::new(io::ErrorKind::InvalidData, "a piece failed its checksum");
            return Err(self.damaged(&error));
        }
        let length = (self.identity.prefix().len() as u64)
            .checked_add(self.identity.total)
            .expect("a file within u64");
        let mut header = Vec::with_capacity(crate::small_file::HEADER_BYTES);
        header.extend_from_slice(snapshot::MAGIC);
        header.extend_from_slice(&self.contents_crc.to_le_bytes());
        header.extend_from_slice(&length.to_le_bytes());
        let (fs, file) = (&self.fs, &mut self.data_for_header);
        fs.write_at(file, 0, &header).map_err(StorageError::io("write", &self.path))?;
        fs.sync_data(file).map_err(StorageError::io("sync", &self.path))
    }

    /// What a failed read means: the data file is damaged (or cannot be read).
    pub fn damaged(&self, error: &io::Error) -> StorageError {
        let reason = error.to_string();
        StorageError::Corrupt { path: self.path.clone(), offset: self.read, reason }
    }

    /// Reads and checks the next piece; `false` once every piece is handed out.
    fn next_piece(&mut self) -> io::Result<bool> {
        let Some(piece) = self.pieces.next() else { return Ok(false) };
        let at = self.data_offset.checked_add(piece.offset).expect("within the total");
        self.piece = self.fs.read_at(&self.data, at, piece.length as usize)?;
        if crc32c::crc32c(&self.piece) != piece.crc {
            self.damaged = true;
            self.piece.clear();
            self.handed_out = 0;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the data at {} fails its checksum", self.path.display(), piece.offset),
            ));
        }
        self.contents_crc = crc32c::crc32c_append(self.contents_crc, &self.piece);
        self.handed_out = 0;
        Ok(true)
    }
}

impl<F: FileSystem> io::Read for ReceivedSnapshotReader<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.handed_out == self.piece.len() && !self.next_piece()? {
            return Ok(0);
        }
        let available = &self.piece[self.handed_out..];
        let length = available.len().min(out.len());
        out[..length].copy_from_slice(&available[..length]);
        self.handed_out += length;
        self.read += length as u64;
        Ok(length)
    }
}

/// Reads back the snapshot received whole that `whole` names from `dir`, checking every
/// piece, and finishes it (see [`ReceivedSnapshotReader::finish`]): for callers whose
/// snapshots are small (tests, the simulator), which want the data in memory.
pub fn load_received_snapshot<F: FileSystem>(
    fs: F,
    dir: &Path,
    whole: &PartialSnapshot,
) -> Result<Snapshot, StorageError> {
    let mut reader = ReceivedSnapshotReader::open(fs, dir, whole)?;
    let mut data = Vec::new();
    if let Err(error) = io::Read::read_to_end(&mut reader, &mut data) {
        return Err(reader.damaged(&error));
    }
    let (last, membership) = (reader.last(), reader.membership().clone());
    reader.finish()?;
    Ok(Snapshot { last, membership, data })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use raftkv_core::raft::{ReceivedChunk, SavedSnapshot};
    use raftkv_core::{LogIndex, NodeId, Term};

    use super::*;
    use crate::directory;
    use crate::received_snapshot::{self, PIECE_BYTES_MAX};
    use crate::sim_fs::SimFs;

    const LAST: LogId = LogId { index: LogIndex(7), term: Term(2) };

    /// A directory that received `data` whole, in one chunk (several pieces).
    fn received(data: &[u8]) -> (SimFs, &'static Path, PartialSnapshot) {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        directory::create(&fs, dir).unwrap();
        let membership = Membership::with_voters([NodeId(1), NodeId(2)]);
        let total = data.len() as u64;
        let chunk = ReceivedChunk { last: LAST, membership, total, offset: 0, data: data.to_vec() };
        let mut held = None;
        received_snapshot::write(&fs, dir, &mut held, &chunk).unwrap();
        received_snapshot::sync(&fs, dir, &mut held).unwrap();
        (fs, dir, PartialSnapshot { last: LAST, total, received: total })
    }

    fn data() -> Vec<u8> {
        (0..PIECE_BYTES_MAX * 2 + 100).map(|i| (i % 241) as u8).collect()
    }

    #[test]
    fn a_snapshot_read_back_whole_is_finished_into_a_snapshot_file_that_installs() {
        let data = data();
        let (fs, dir, whole) = received(&data);
        let loaded = load_received_snapshot(fs.clone(), dir, &whole).unwrap();
        assert!(loaded.data == data);
        let installed = SavedSnapshot::of(&loaded);
        received_snapshot::promote(&fs, dir, &mut None, &installed).unwrap();
        let snapshot = snapshot::load(&fs, dir).unwrap();
        assert_eq!(snapshot, crate::small_file::SmallFile::Intact(loaded), "checksum and all");
        let other = PartialSnapshot { last: LogId { index: LogIndex(8), ..LAST }, ..whole };
        assert!(ReceivedSnapshotReader::open(fs, dir, &other).is_err(), "nothing received left");
    }

    #[test]
    fn a_damaged_piece_fails_the_read_and_the_finish_never_a_panic() {
        let data = data();
        let (fs, dir, whole) = received(&data);
        let path = dir.join(FILE);
        let mut contents = fs.read(&path).unwrap().unwrap();
        let in_second_piece = contents.len() - PIECE_BYTES_MAX;
        contents[in_second_piece] ^= 0x04;
        let mut file = fs.open_for_writing(&path).unwrap();
        fs.write_at(&mut file, 0, &contents).unwrap();
        fs.sync_data(&mut file).unwrap();
        let mut reader = ReceivedSnapshotReader::open(fs.clone(), dir, &whole).unwrap();
        let mut read = Vec::new();
        let failed = reader.read_to_end(&mut read).unwrap_err();
        assert_eq!(failed.kind(), io::ErrorKind::InvalidData);
        assert_eq!(read.len(), PIECE_BYTES_MAX, "the first piece, intact, and nothing after");
        // A caller that reads on gets the pieces after, but the file is never finished.
        assert!(reader.read(&mut [0; 10]).is_ok());
        assert!(matches!(reader.finish(), Err(StorageError::Corrupt { .. })));
        assert!(load_received_snapshot(fs, dir, &whole).is_err());
    }
}
