//! The scratch files the floor's measurements sync: pages of 4 KiB, written with zeros and
//! synced before any timing, as the WAL's prepared segments are.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes of each synced write, a WAL record's page.
pub(super) const PAGE_BYTES: usize = 4 << 10;

/// A new file at `path` of `pages` pages of zeros, written and synced.
pub(super) fn preallocated(path: &Path, pages: usize) -> io::Result<File> {
    let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path)?;
    let zeros = [0u8; PAGE_BYTES];
    for page in 0..pages {
        file.write_all_at(&zeros, (page * PAGE_BYTES) as u64)?;
    }
    file.sync_all()?;
    Ok(file)
}

/// Writes page `page` of `file` and syncs its data: a WAL write and its sync.
pub(super) fn write_and_sync(file: &File, page: usize) -> io::Result<()> {
    file.write_all_at(&[0x5a; PAGE_BYTES], (page * PAGE_BYTES) as u64)?;
    file.sync_data()
}
