//! Small files replaced atomically: written to a temporary file, synced, renamed over the old
//! one, and the directory synced, so that after a crash the file holds either the old or the
//! new contents, never a mix. Each carries a magic tag and a CRC32C of its contents.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::storage::error::StorageError;

const HEADER_BYTES: usize = 8 + 4 + 8;

/// Replaces `dir/name` with `magic`, a checksum and `contents`.
pub(crate) fn write(
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
    contents: &[u8],
) -> Result<(), StorageError> {
    let path = dir.join(name);
    let temporary = dir.join(format!("{name}.tmp"));
    let mut bytes = Vec::with_capacity(HEADER_BYTES + contents.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&crc32c::crc32c(contents).to_le_bytes());
    bytes.extend_from_slice(&(contents.len() as u64).to_le_bytes());
    bytes.extend_from_slice(contents);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(StorageError::io("create", &temporary))?;
    file.write_all(&bytes).map_err(StorageError::io("write", &temporary))?;
    file.sync_all().map_err(StorageError::io("sync", &temporary))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(StorageError::io("rename into place", &path))?;
    sync_dir(dir)
}

/// The contents of `dir/name`, or `None` if it does not exist.
pub(crate) fn read(
    dir: &Path,
    name: &str,
    magic: &[u8; 8],
) -> Result<Option<Vec<u8>>, StorageError> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StorageError::io("read", &path)(error)),
    };
    let corrupt = |offset: u64, reason: &str| StorageError::Corrupt {
        path: path.clone(),
        offset,
        reason: reason.to_string(),
    };
    if bytes.len() < HEADER_BYTES || bytes[..8] != magic[..] {
        return Err(corrupt(0, "missing or wrong header"));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let length = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let contents = &bytes[HEADER_BYTES..];
    if contents.len() as u64 != length {
        return Err(corrupt(12, "length does not match the file size"));
    }
    if crc32c::crc32c(contents) != crc {
        return Err(corrupt(HEADER_BYTES as u64, "checksum mismatch"));
    }
    Ok(Some(contents.to_vec()))
}

/// Makes the directory entries of `dir` (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(StorageError::io("sync directory", dir))
}

/// Creates `dir` (and its parents) if missing, and makes its entry durable in its parent, so
/// that what is later written inside cannot vanish with the directory after a crash.
pub(crate) fn create_dir(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(StorageError::io("create", dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Removes a temporary file left by a crash during [`write`].
pub(crate) fn remove_leftover(dir: &Path, name: &str) -> Result<(), StorageError> {
    let temporary = dir.join(format!("{name}.tmp"));
    match fs::remove_file(&temporary) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StorageError::io("remove", &temporary)(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back_and_damage_is_detected() {
        let dir = std::env::temp_dir().join(format!("raftkv-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write(&dir, "f", b"TESTMAG1", b"hello").unwrap();
        assert_eq!(read(&dir, "f", b"TESTMAG1").unwrap().as_deref(), Some(&b"hello"[..]));
        assert!(read(&dir, "missing", b"TESTMAG1").unwrap().is_none());
        let mut bytes = fs::read(dir.join("f")).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(dir.join("f"), bytes).unwrap();
        let error = read(&dir, "f", b"TESTMAG1").unwrap_err().to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
