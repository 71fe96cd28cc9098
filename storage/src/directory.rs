//! Directories whose entries survive a crash.

use std::io;
use std::path::Path;

use crate::error::StorageError;
use crate::fs::FileSystem;

/// Makes the entries of `dir` (creations, renames, removals) durable.
pub(crate) fn sync<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    fs.sync_dir(dir).map_err(StorageError::io("sync directory", dir))
}

/// Creates `dir` and its missing parents, and makes each new entry durable in its parent, so
/// that what is later written inside cannot vanish with a directory after a crash.
pub fn create<F: FileSystem>(fs: &F, dir: &Path) -> Result<(), StorageError> {
    let mut missing = Vec::new();
    let mut probe = Some(dir);
    while let Some(path) = probe.filter(|path| !path.as_os_str().is_empty()) {
        match fs.list(path) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => missing.push(path),
            Err(error) => return Err(StorageError::io("list", path)(error)),
        }
        probe = path.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs.create_dir_all(dir).map_err(StorageError::io("create", dir))?;
    // Parents first: a child's entry is only as durable as the directory holding it.
    for created in missing.iter().rev() {
        match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync(fs, parent)?,
            _ => sync(fs, Path::new("."))?,
        }
    }
    Ok(())
}
