//! The file-system operations the storage engine needs, and nothing more, so that the same
//! engine runs on a real disk ([`RealFs`](crate::RealFs)) and in the simulator
//! ([`SimFs`](crate::sim_fs::SimFs)).

use std::fmt::Debug;
use std::io;
use std::path::Path;

/// A synchronous file system with POSIX durability rules: data written to a file is durable
/// once that file is synced; a created, renamed or removed directory entry is durable once
/// its directory is synced. Until then a crash may lose either.
pub trait FileSystem: Debug {
    /// A file opened for writing.
    type File: Debug;

    /// The names of the entries of directory `dir` (files and directories), in no order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// The whole contents of the file at `path`; `None` if there is no such file.
    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;

    /// Creates an empty file at `path` and opens it for writing; fails if one exists.
    fn create_new(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens the existing file at `path` for writing.
    fn open_for_writing(&self, path: &Path) -> io::Result<Self::File>;

    /// Opens the existing file at `path` for reading; `None` if there is no such file. The
    /// handle keeps reading that file even once another is renamed over its name.
    fn open_for_reading(&self, path: &Path) -> io::Result<Option<Self::File>>;

    /// Reads exactly `length` bytes at `offset`; fails if the file ends before.
    fn read_at(&self, file: &Self::File, offset: u64, length: usize) -> io::Result<Vec<u8>>;

    /// Writes all of `bytes` at `offset`, growing the file (with zeros) if needed.
    fn write_at(&self, file: &mut Self::File, offset: u64, bytes: &[u8]) -> io::Result<()>;

    /// The file's length in bytes.
    fn len(&self, file: &Self::File) -> io::Result<u64>;

    /// Cuts the file down to `length` bytes, which must not exceed its length.
    fn shrink(&self, file: &mut Self::File, length: u64) -> io::Result<()>;

    /// Makes the file's data (and its size) durable: `fdatasync`.
    fn sync_data(&self, file: &mut Self::File) -> io::Result<()>;

    /// Makes the file's data and all of its metadata durable: `fsync`.
    fn sync_all(&self, file: &mut Self::File) -> io::Result<()>;

    /// Renames `from` to `to` atomically, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Creates directory `dir` and every missing parent.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Makes the entries of directory `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}
