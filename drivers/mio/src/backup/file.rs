//! The backup file `raftkv snapshot save` writes and `raftkv snapshot restore` reads:
//!
//! ```text
//! ["RKVBACK1"][header length: u32 LE][header: postcard SnapshotHeader][data][CRC32C: u32 LE]
//! ```
//!
//! The header names the last entry the snapshot covers (index and term), the membership in
//! force there and the data's length; the data is the state machine's snapshot as the nodes
//! store it; the checksum covers every byte before it. Written to `FILE.tmp` and renamed once
//! complete and synced, so a backup interrupted midway never leaves a file that looks whole.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::client::backup::BackupSink;
use crate::wire::SnapshotHeader;

/// The first bytes of a backup file.
const MAGIC: &[u8; 8] = b"RKVBACK1";
/// The largest header read: a membership of thousands of members.
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// Writes the backup file `raftkv snapshot restore` reads as [`Client::backup`] copies
/// the snapshot: into `FILE.tmp`, renamed `FILE` by [`finish`](Self::finish) once whole and
/// synced. A writer dropped unfinished, or whose `finish` fails, removes `FILE.tmp`.
///
/// [`Client::backup`]: crate::Client::backup
#[derive(Debug)]
pub struct BackupWriter {
    path: PathBuf,
    temporary: PathBuf,
    file: Option<Checksummed<BufWriter<File>>>,
    written: u64,
    expected: u64,
}

impl BackupWriter {
    /// A writer of the backup file `path`, which nothing touches before the copy begins.
    pub fn new(path: impl AsRef<Path>) -> BackupWriter {
        let path = path.as_ref();
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        BackupWriter {
            path: path.to_path_buf(),
            temporary: PathBuf::from(temporary),
            file: None,
            written: 0,
            expected: 0,
        }
    }

    /// Appends the checksum, syncs, and renames the file into place; on a failure, removes
    /// the temporary file.
    pub fn finish(mut self) -> io::Result<()> {
        let finished = self.complete();
        if finished.is_err() {
            // Gone already if only the directory's sync failed.
            let _ = fs::remove_file(&self.temporary);
        }
        finished
    }

    fn complete(&mut self) -> io::Result<()> {
        let Some(file) = self.file.take() else {
            return Err(io::Error::other("no snapshot was copied"));
        };
        if self.written != self.expected {
            return Err(io::Error::other("the copy is shorter than its snapshot"));
        }
        let checksum = file.checksum;
        let mut inner = file.inner;
        inner.write_all(&checksum.to_le_bytes())?;
        let file = inner.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&self.temporary, &self.path)?;
        let dir = self.path.parent().filter(|dir| !dir.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new("."))).and_then(|dir| dir.sync_all())
    }
}

impl BackupSink for BackupWriter {
    fn begin(&mut self, header: &SnapshotHeader) -> io::Result<()> {
        let encoded = postcard::to_allocvec(header).map_err(io::Error::other)?;
        let length = u32::try_from(encoded.len()).map_err(io::Error::other)?;
        let file = File::create(&self.temporary)?;
        let mut out = Checksummed { inner: BufWriter::new(file), checksum: 0 };
        out.write_all(MAGIC)?;
        out.write_all(&length.to_le_bytes())?;
        out.write_all(&encoded)?;
        self.file = Some(out);
        self.written = 0;
        self.expected = header.data_bytes;
        Ok(())
    }

    fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("no copy begun"))?;
        file.write_all(chunk)?;
        self.written = self.written.saturating_add(chunk.len() as u64);
        Ok(())
    }
}

impl Drop for BackupWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// A writer or reader that keeps the CRC32C of the bytes through it.
#[derive(Debug)]
struct Checksummed<T> {
    inner: T,
    checksum: u32,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.checksum = crc32c::crc32c_append(self.checksum, &bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.checksum = crc32c::crc32c_append(self.checksum, &buffer[..read]);
        Ok(read)
    }
}

/// A backup file, checked whole: its header, and where its data lies.
#[derive(Debug)]
pub(crate) struct BackupFile {
    pub(crate) header: SnapshotHeader,
    file: File,
    data_offset: u64,
}

impl BackupFile {
    /// Opens `path` and checks it: the format, the header, the length, and the checksum over
    /// every byte (the file is read once here).
    pub(crate) fn open(path: &Path) -> Result<BackupFile, String> {
        let bad =
            |reason: &str| format!("{} is not a whole raftkv backup: {reason}", path.display());
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let total =
            file.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
        let mut input = Checksummed { inner: BufReader::new(&file), checksum: 0 };
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(|_| bad("too short"))?;
        if &magic != MAGIC {
            return Err(bad("wrong magic"));
        }
        let mut length = [0u8; 4];
        input.read_exact(&mut length).map_err(|_| bad("too short"))?;
        let length = u32::from_le_bytes(length);
        if length > MAX_HEADER_BYTES {
            return Err(bad("header too large"));
        }
        let mut encoded = vec![0u8; length as usize];
        input.read_exact(&mut encoded).map_err(|_| bad("too short"))?;
        let header: SnapshotHeader =
            postcard::from_bytes(&encoded).map_err(|_| bad("the header does not decode"))?;
        let data_offset = 12 + u64::from(length);
        let expected_total =
            data_offset.checked_add(header.data_bytes).and_then(|n| n.checked_add(4));
        if expected_total != Some(total) {
            return Err(bad("its length does not match its header"));
        }
        io::copy(&mut (&mut input).take(header.data_bytes), &mut io::sink())
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let computed = input.checksum;
        let mut stored = [0u8; 4];
        input.inner.read_exact(&mut stored).map_err(|_| bad("too short"))?;
        if u32::from_le_bytes(stored) != computed {
            return Err(bad("its checksum does not match (damaged)"));
        }
        Ok(BackupFile { header, file, data_offset })
    }

    /// Writes the snapshot's data to `out`, read again from the file.
    pub(crate) fn copy_data(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.data_offset))?;
        let copied = io::copy(&mut BufReader::new(file).take(self.header.data_bytes), out)?;
        if copied != self.header.data_bytes {
            return Err(io::Error::other("the backup file shrank while it was read"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::raft::Membership;
    use raftkv_core::{LogId, LogIndex, NodeId, Term};

    use super::*;

    fn header(data_bytes: u64) -> SnapshotHeader {
        SnapshotHeader {
            last: LogId::new(LogIndex(42), Term(3)),
            membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
            data_bytes,
        }
    }

    #[test]
    fn a_backup_reads_back_whole_and_any_damage_or_truncation_is_refused() {
        let dir = std::env::temp_dir().join(format!("raftkv-backup-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("backup");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = BackupWriter::new(&path);
        writer.begin(&header(10)).unwrap();
        writer.data(b"abandoned!").unwrap();
        writer.begin(&header(data.len() as u64)).unwrap();
        for chunk in data.chunks(30_000) {
            writer.data(chunk).unwrap();
        }
        writer.finish().unwrap();
        let backup = BackupFile::open(&path).unwrap();
        assert_eq!(backup.header, header(data.len() as u64));
        let mut copied = Vec::new();
        backup.copy_data(&mut copied).unwrap();
        assert_eq!(copied, data);

        let whole = fs::read(&path).unwrap();
        let mut flipped = whole.clone();
        flipped[5_000] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(BackupFile::open(&path).unwrap_err().contains("checksum"));
        fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        assert!(BackupFile::open(&path).unwrap_err().contains("length"));

        let mut short = BackupWriter::new(&path);
        short.begin(&header(10)).unwrap();
        short.data(b"four").unwrap();
        assert!(short.finish().is_err(), "a copy shorter than its snapshot");
        assert!(!dir.join("backup.tmp").exists(), "the temporary file stayed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("raftkv-backup-rename-{}", std::process::id()));
        // A directory that is not empty cannot be replaced by the file.
        let path = dir.join("backup");
        fs::create_dir_all(path.join("in-the-way")).unwrap();
        let mut writer = BackupWriter::new(&path);
        writer.begin(&header(4)).unwrap();
        writer.data(b"data").unwrap();
        assert!(dir.join("backup.tmp").exists());
        assert!(writer.finish().is_err(), "renamed over a directory");
        assert!(!dir.join("backup.tmp").exists(), "the temporary file stayed");
        assert!(path.join("in-the-way").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
