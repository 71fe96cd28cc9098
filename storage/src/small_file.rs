//! Small files replaced atomically: written to a temporary file, synced, renamed over the old
//! one, and the directory synced, so that after a crash the file holds either the old or the
//! new contents, never a mix. Each is `[magic: 8][CRC32C: u32 LE][length: u64 LE][contents]`,
//! the contents a postcard value.

use std::io;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::release::release_gradually;

/// Magic, checksum and length, before the contents.
pub(crate) const HEADER_BYTES: usize = 8 + 4 + 8;

/// Bytes read at a time when a file is checked without being held whole (`check_in_pieces`).
const CHECK_PIECE_BYTES: u64 = 1 << 20;

/// What a small file holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SmallFile<T> {
    /// There is no such file.
    Missing,
    /// Its value, checksum verified.
    Intact(T),
    /// It does not hold what it should.
    Damaged {
        /// Where the damage was noticed.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Replaces `dir/name` with `magic`, a checksum and `value`, durably.
pub(crate) fn replace<F: FileSystem, T: Serialize>(
    fs: &F,
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    value: &T,
) -> Result<(), StorageError> {
    let contents = postcard::to_allocvec(value).expect("encoding into a Vec cannot fail");
    let path = dir.join(name);
    let temporary = dir.join(temporary_name(name));
    let mut bytes = Vec::with_capacity(HEADER_BYTES.saturating_add(contents.len()));
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&crc32c::crc32c(&contents).to_le_bytes());
    bytes.extend_from_slice(&(contents.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&contents);
    let mut file = fs.create_new(&temporary).map_err(StorageError::io("create", &temporary))?;
    fs.write_at(&mut file, 0, &bytes).map_err(StorageError::io("write", &temporary))?;
    fs.sync_all(&mut file).map_err(StorageError::io("sync", &temporary))?;
    drop(file);
    fs.rename(&temporary, &path).map_err(StorageError::io("rename into place", &path))?;
    directory::sync(fs, dir)
}

/// Replaces `dir/name` with `magic`, a checksum and contents of `prefix` then `body_len`
/// bytes that `write_body` writes, durably, as [`replace`] does, without holding the contents
/// in memory: they go to the file through a buffer, the checksum computed on the way, and the
/// header is written last. Fails, leaving the old file, if `write_body` fails or writes
/// another number of bytes.
pub(crate) fn replace_streaming<F: FileSystem>(
    fs: &F,
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    prefix: &[u8],
    body_len: u64,
    write_body: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<(), StorageError> {
    let path = dir.join(name);
    let temporary = dir.join(temporary_name(name));
    let mut file = fs.create_new(&temporary).map_err(StorageError::io("create", &temporary))?;
    let mut writer = ContentsWriter::new(fs, &mut file);
    let written: io::Result<(u32, u64)> = (|| {
        io::Write::write_all(&mut writer, prefix)?;
        write_body(&mut writer)?;
        writer.finish()
    })();
    let (crc, length) = written.map_err(StorageError::io("write", &temporary))?;
    let announced = (prefix.len() as u64).checked_add(body_len);
    if announced != Some(length) {
        return Err(StorageError::Refused {
            reason: format!(
                "{}: {length} bytes of contents written, {announced:?} announced",
                temporary.display()
            ),
        });
    }
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(magic);
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&length.to_le_bytes());
    fs.write_at(&mut file, 0, &header).map_err(StorageError::io("write", &temporary))?;
    fs.sync_all(&mut file).map_err(StorageError::io("sync", &temporary))?;
    drop(file);
    // Held open across the rename, to give its space back a step at a time (a large file's
    // at once stalls the log's syncs); if it cannot be opened, it goes at once as before.
    let mut replaced = fs.open_for_writing(&path).ok();
    fs.rename(&temporary, &path).map_err(StorageError::io("rename into place", &path))?;
    directory::sync(fs, dir)?;
    if let Some(replaced) = &mut replaced {
        // The new file is in place: if the old one cannot be cut down, its space comes back
        // when it is closed.
        let _ = release_gradually(fs, replaced);
    }
    Ok(())
}

/// Bytes a [`ContentsWriter`] gathers before it writes them.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Bytes a [`ContentsWriter`] writes between two syncs of the file's data. A large file
/// written at once and synced at the end leaves the disk busy with all of it for the final
/// sync, and the log's syncs wait behind it; synced as it goes, the file never holds more than
/// this unwritten, and its writer goes at the pace of the disk.
const SYNC_EVERY_BYTES: u64 = 1 << 20;

/// Writes a small file's contents after its header, through a buffer, keeping their
/// checksum and length, and syncing the data every `SYNC_EVERY_BYTES`.
struct ContentsWriter<'a, F: FileSystem> {
    fs: &'a F,
    file: &'a mut F::File,
    buffer: Vec<u8>,
    crc: u32,
    length: u64,
    /// `length` at the last sync.
    synced: u64,
}

impl<'a, F: FileSystem> ContentsWriter<'a, F> {
    fn new(fs: &'a F, file: &'a mut F::File) -> ContentsWriter<'a, F> {
        ContentsWriter {
            fs,
            file,
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES),
            crc: 0,
            length: 0,
            synced: 0,
        }
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.crc = crc32c::crc32c_append(self.crc, &self.buffer);
        let offset = (HEADER_BYTES as u64).saturating_add(self.length);
        self.fs.write_at(self.file, offset, &self.buffer)?;
        self.length = self.length.saturating_add(self.buffer.len() as u64);
        self.buffer.clear();
        if self.length.saturating_sub(self.synced) >= SYNC_EVERY_BYTES {
            self.fs.sync_data(self.file)?;
            self.synced = self.length;
        }
        Ok(())
    }

    /// Writes what is buffered; returns the checksum and the length of the contents.
    fn finish(mut self) -> io::Result<(u32, u64)> {
        self.write_buffer()?;
        Ok((self.crc, self.length))
    }
}

impl<F: FileSystem> io::Write for ContentsWriter<'_, F> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.write_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer()
    }
}

/// Reads `dir/name`, checking its magic, length and checksum.
pub(crate) fn read<F: FileSystem, T: DeserializeOwned>(
    fs: &F,
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
) -> Result<SmallFile<T>, StorageError> {
    read_versions(fs, dir, name, &[magic], |_, contents| postcard::from_bytes(contents))
}

/// Reads `dir/name`, written in one of the format versions whose magics `magics` lists,
/// checking its length and checksum; `decode` turns the contents into the value, given the
/// position in `magics` of the file's magic.
pub(crate) fn read_versions<F: FileSystem, T>(
    fs: &F,
    dir: &Path,
    name: &str,
    magics: &[&[u8; 8]],
    decode: impl FnOnce(usize, &[u8]) -> Result<T, postcard::Error>,
) -> Result<SmallFile<T>, StorageError> {
    let path = dir.join(name);
    let Some(bytes) = fs.read(&path).map_err(StorageError::io("read", &path))? else {
        return Ok(SmallFile::Missing);
    };
    let damaged = |offset: u64, reason: &str| SmallFile::Damaged { offset, reason: reason.into() };
    let version = magics.iter().position(|magic| bytes.get(..8) == Some(&magic[..]));
    let Some(version) = version.filter(|_| bytes.len() >= HEADER_BYTES) else {
        return Ok(damaged(0, "missing or wrong header"));
    };
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let length = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let contents = &bytes[HEADER_BYTES..];
    if contents.len() as u64 != length {
        return Ok(damaged(12, "length does not match the file size"));
    }
    if crc32c::crc32c(contents) != crc {
        return Ok(damaged(HEADER_BYTES as u64, "checksum mismatch"));
    }
    match decode(version, contents) {
        Ok(value) => Ok(SmallFile::Intact(value)),
        Err(error) => Ok(damaged(HEADER_BYTES as u64, &format!("contents do not decode: {error}"))),
    }
}

/// Checks `dir/name` as [`read_versions`] does (one of `magics`, its length and checksum),
/// reading it a piece at a time rather than whole: for a file as large as a snapshot, whose
/// contents the caller then reads as it needs them. Returns the position of its magic in
/// `magics`.
pub(crate) fn check_in_pieces<F: FileSystem>(
    fs: &F,
    dir: &Path,
    name: &str,
    magics: &[&[u8; 8]],
) -> Result<SmallFile<usize>, StorageError> {
    let path = dir.join(name);
    let Some(file) = fs.open_for_reading(&path).map_err(StorageError::io("open", &path))? else {
        return Ok(SmallFile::Missing);
    };
    let damaged = |offset: u64, reason: &str| SmallFile::Damaged { offset, reason: reason.into() };
    // A read past the end is damage (the file is shorter than it says); any other failure is
    // the disk's.
    let read = |offset: u64, length: usize| match fs.read_at(&file, offset, length) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(StorageError::io("read", &path)(error)),
    };
    let Some(header) = read(0, HEADER_BYTES)? else {
        return Ok(damaged(0, "missing or wrong header"));
    };
    let Some(version) = magics.iter().position(|magic| header[..8] == magic[..]) else {
        return Ok(damaged(0, "missing or wrong header"));
    };
    let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let length = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
    let start = HEADER_BYTES as u64;
    let mut computed = 0;
    let mut checked = 0u64;
    while checked < length {
        let piece = (length - checked).min(CHECK_PIECE_BYTES);
        let Some(bytes) = read(start.saturating_add(checked), piece as usize)? else {
            return Ok(damaged(12, "length does not match the file size"));
        };
        computed = crc32c::crc32c_append(computed, &bytes);
        checked += piece;
    }
    if read(start.saturating_add(length), 1)?.is_some() {
        return Ok(damaged(12, "length does not match the file size"));
    }
    if computed != crc {
        return Ok(damaged(start, "checksum mismatch"));
    }
    Ok(SmallFile::Intact(version))
}

/// Removes `dir/name` if it exists, durably.
pub(crate) fn remove<F: FileSystem>(fs: &F, dir: &Path, name: &str) -> Result<(), StorageError> {
    let path = dir.join(name);
    match fs.remove_file(&path) {
        Ok(()) => directory::sync(fs, dir),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StorageError::io("remove", &path)(error)),
    }
}

/// Removes the temporary file a crash during [`replace`] may have left. Not synced: should
/// the removal be lost, the next start removes it again.
pub(crate) fn remove_leftover<F: FileSystem>(
    fs: &F,
    dir: &Path,
    name: &str,
) -> Result<(), StorageError> {
    let temporary = dir.join(temporary_name(name));
    match fs.remove_file(&temporary) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StorageError::io("remove", &temporary)(error)),
    }
}

fn temporary_name(name: &str) -> String {
    format!("{name}.tmp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_fs::SimFs;

    #[test]
    fn written_files_read_back_and_damage_is_detected() {
        let fs = SimFs::new(1);
        let dir = Path::new("dir");
        fs.create_dir_all(dir).unwrap();
        replace(&fs, dir, "f", b"TESTMAG1", &"hello").unwrap();
        let found: SmallFile<String> = read(&fs, dir, "f", b"TESTMAG1").unwrap();
        assert_eq!(found, SmallFile::Intact("hello".into()));
        assert_eq!(
            read::<_, String>(&fs, dir, "missing", b"TESTMAG1").unwrap(),
            SmallFile::Missing
        );
        let wrong_magic = read::<_, String>(&fs, dir, "f", b"TESTMAG2").unwrap();
        assert!(matches!(wrong_magic, SmallFile::Damaged { offset: 0, .. }), "{wrong_magic:?}");

        let mut bytes = fs.read(&dir.join("f")).unwrap().unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        let mut file = fs.open_for_writing(&dir.join("f")).unwrap();
        fs.write_at(&mut file, 0, &bytes).unwrap();
        let damaged = read::<_, String>(&fs, dir, "f", b"TESTMAG1").unwrap();
        let SmallFile::Damaged { reason, .. } = damaged else { panic!("{damaged:?}") };
        assert!(reason.contains("checksum mismatch"), "{reason}");
    }

    #[test]
    fn a_crash_leaves_the_old_or_the_new_contents() {
        let dir = Path::new("dir");
        for seed in 0..64 {
            let fs = SimFs::new(seed);
            directory::create(&fs, dir).unwrap();
            replace(&fs, dir, "f", b"TESTMAG1", &"old").unwrap();
            fs.crash_after_ops(seed % 6);
            let _ = replace(&fs, dir, "f", b"TESTMAG1", &"new");
            fs.crash();
            remove_leftover(&fs, dir, "f").unwrap();
            let found: SmallFile<String> = read(&fs, dir, "f", b"TESTMAG1").unwrap();
            let expected = [SmallFile::Intact("old".into()), SmallFile::Intact("new".into())];
            assert!(expected.contains(&found), "seed {seed}: {found:?}");
            assert_eq!(fs.read(&dir.join("f.tmp")).unwrap(), None, "seed {seed}");
        }
    }
}
