//! The lock on a data directory (`DIR/lock`, `flock`), held while a server runs, so that two
//! processes cannot share one directory.

use std::fs::{File, OpenOptions};
use std::path::Path;

use raftkv_storage::RealFs;

use crate::server::error::ServeError;

/// Creates `dir` if needed and locks it; the lock lasts as long as the returned file.
pub(crate) fn acquire(dir: &Path) -> Result<File, ServeError> {
    raftkv_storage::create_dir_durably(&RealFs, dir).map_err(ServeError::CreateDataDirectory)?;
    let path = dir.join("lock");
    let file = match OpenOptions::new().write(true).create(true).truncate(false).open(&path) {
        Ok(file) => file,
        Err(source) => return Err(ServeError::OpenLock { path, source }),
    };
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| ServeError::DataDirectoryInUse { dir: dir.to_path_buf() })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("raftkv-lock-{}", std::process::id()));
        let held = acquire(&dir).unwrap();
        let busy = acquire(&dir).unwrap_err().to_string();
        assert!(busy.contains("in use"), "{busy}");
        drop(held);
        acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
