//! Giving a large file's space back to the disk a step at a time. Removing a file of tens of
//! MiB at once has the file system free (and, on a disk mounted with online discard, trim)
//! all of its blocks in one go, which on a virtual disk held up every other write for 20–30
//! ms, the log's syncs included. A file let go of is therefore unlinked while still open,
//! then cut down a step at a time; closing it frees nothing more.

use std::io;

use crate::fs::FileSystem;

/// Bytes freed at a time: a step stalls a concurrent sync for about a millisecond.
const STEP_BYTES: u64 = 1 << 20;

/// Cuts `file` (already unlinked, or renamed over) down to nothing, a step at a time.
pub(crate) fn release_gradually<F: FileSystem>(fs: &F, file: &mut F::File) -> io::Result<()> {
    let mut length = fs.len(file)?;
    while length > 0 {
        length = length.saturating_sub(STEP_BYTES);
        fs.shrink(file, length)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sim_fs::SimFs;

    #[test]
    fn a_removed_file_held_open_is_cut_down_to_nothing() {
        let fs = SimFs::new(1);
        let path = Path::new("segment");
        let mut file = fs.create_new(path).unwrap();
        fs.write_at(&mut file, 0, &vec![7; 2 * STEP_BYTES as usize + 100]).unwrap();
        fs.sync_data(&mut file).unwrap();
        fs.remove_file(path).unwrap();
        release_gradually(&fs, &mut file).unwrap();
        assert_eq!(fs.len(&file).unwrap(), 0);
        assert!(fs.list(Path::new("")).unwrap().is_empty());
    }

    #[test]
    fn a_shrink_drops_the_unsynced_writes_past_the_new_end() {
        let fs = SimFs::new(2);
        let path = Path::new("file");
        let mut file = fs.create_new(path).unwrap();
        fs.write_at(&mut file, 0, &[1; 10]).unwrap();
        fs.write_at(&mut file, 10, &[2; 10]).unwrap();
        fs.shrink(&mut file, 15).unwrap();
        assert!(fs.shrink(&mut file, 16).is_err(), "a shrink never grows the file");
        fs.sync_data(&mut file).unwrap();
        let mut expected = vec![1; 10];
        expected.extend([2; 5]);
        assert_eq!(fs.read(path).unwrap(), Some(expected));
    }
}
