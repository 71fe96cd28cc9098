//! The lock on a data directory (`DIR/lock`, `flock`), held while a server runs, so that two
//! processes cannot share one directory.

use std::fs::{File, OpenOptions};
use std::path::Path;

use raftkv_storage::RealFs;

/// Creates `dir` if needed and locks it; the lock lasts as long as the returned file.
pub(crate) fn acquire(dir: &Path) -> Result<File, String> {
    raftkv_storage::create_dir_durably(&RealFs, dir).map_err(|error| error.to_string())?;
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| format!("data directory {} is in use by another raftkv process", dir.display()),
    )?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("raftkv-lock-{}", std::process::id()));
        let held = acquire(&dir).unwrap();
        let busy = acquire(&dir).unwrap_err();
        assert!(busy.contains("in use"), "{busy}");
        drop(held);
        acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
