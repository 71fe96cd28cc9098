//! The directories and files of a [`SimFs`](super::SimFs), each in two versions: what the
//! running system sees (`current`) and what a crash would leave (`durable`), with the
//! operations in between remembered so that a crash can keep some of them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Component, Path, PathBuf};

use raftkv_core::prng::Prng;

use crate::sim_fs::faults::BitFlip;

/// A crash keeps or loses each sector of an unsynced write on its own, as a disk does.
const SECTOR_BYTES: u64 = 512;

/// Larger files are refused: a simulated disk lives in memory.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// What a name in a directory stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Directory,
}

/// A change to a directory's entries that no sync of the directory has made durable yet.
#[derive(Clone, Debug)]
enum DirOp {
    Create {
        name: String,
        node: Node,
    },
    Remove {
        name: String,
        node: Node,
    },
    /// Atomic: a crash keeps either the old names or the new ones.
    Rename {
        from: String,
        to: String,
        node: Node,
    },
}

#[derive(Clone, Debug, Default)]
struct Directory {
    current: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
    pending: Vec<DirOp>,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last sync, in order: offset and bytes.
    pending: Vec<(usize, Vec<u8>)>,
}

/// What a crash lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CrashLoss {
    pub(crate) torn_writes: u64,
    pub(crate) lost_writes: u64,
    pub(crate) lost_dir_ops: u64,
}

/// Every directory (by normalized path; the root is the empty path) and every file.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    directories: BTreeMap<PathBuf, Directory>,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
}

impl Tree {
    /// An empty file system: the root directory alone.
    pub(crate) fn new() -> Tree {
        let directories = BTreeMap::from([(PathBuf::new(), Directory::default())]);
        Tree { directories, inodes: BTreeMap::new(), next_inode: 1 }
    }

    pub(crate) fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let dir = self.directory(&normalize(dir)?)?;
        Ok(dir.current.keys().cloned().collect())
    }

    pub(crate) fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let (parent, name) = split(path)?;
        let Some(dir) = self.directories.get(&parent) else {
            return Ok(None);
        };
        match dir.current.get(&name) {
            None => Ok(None),
            Some(Node::File(inode)) => Ok(Some(self.inodes[inode].current.clone())),
            Some(Node::Directory) => Err(invalid(path, "is a directory")),
        }
    }

    /// Creates an empty file; returns its inode.
    pub(crate) fn create_new(&mut self, path: &Path) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        let inode = self.next_inode;
        let dir = self.directory_mut(&parent)?;
        if dir.current.contains_key(&name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, path.display().to_string()));
        }
        dir.current.insert(name.clone(), Node::File(inode));
        dir.pending.push(DirOp::Create { name, node: Node::File(inode) });
        self.next_inode += 1;
        self.inodes.insert(inode, Inode::default());
        Ok(inode)
    }

    /// The inode of the existing file at `path`.
    pub(crate) fn open(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        match self.directory(&parent)?.current.get(&name) {
            Some(Node::File(inode)) => Ok(*inode),
            Some(Node::Directory) => Err(invalid(path, "is a directory")),
            None => Err(not_found(path)),
        }
    }

    /// Exactly `length` bytes of the file at `offset` (it may have been renamed over since
    /// it was opened: its contents stay while it is open, as with Linux).
    pub(crate) fn read_at(&self, inode: u64, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let file = self.inodes.get(&inode).ok_or_else(stale)?;
        let start = usize::try_from(offset).ok();
        let range = start.and_then(|start| Some(start..start.checked_add(length)?));
        range.and_then(|range| file.current.get(range)).map(<[u8]>::to_vec).ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file")
        })
    }

    pub(crate) fn write(&mut self, inode: u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let fits = u64::try_from(bytes.len())
            .ok()
            .and_then(|length| offset.checked_add(length))
            .is_some_and(|end| end <= MAX_FILE_BYTES);
        // Below the limit, offsets and ends fit a usize and cannot overflow.
        let offset = usize::try_from(offset).ok().filter(|_| fits).ok_or_else(|| {
            io::Error::new(io::ErrorKind::FileTooLarge, "simulated files stop at 1 GiB")
        })?;
        let file = self.inodes.get_mut(&inode).ok_or_else(stale)?;
        overwrite(&mut file.current, offset, bytes);
        file.pending.push((offset, bytes.to_vec()));
        Ok(())
    }

    pub(crate) fn len(&self, inode: u64) -> io::Result<u64> {
        let file = self.inodes.get(&inode).ok_or_else(stale)?;
        Ok(file.current.len() as u64)
    }

    /// Cuts the file down to `length` bytes, durably at once: a crash never undoes it (the
    /// storage engine only shrinks files that no name reaches any more).
    pub(crate) fn shrink(&mut self, inode: u64, length: u64) -> io::Result<()> {
        let file = self.inodes.get_mut(&inode).ok_or_else(stale)?;
        let length = usize::try_from(length)
            .ok()
            .filter(|&length| length <= file.current.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "shrinks only"))?;
        file.current.truncate(length);
        file.durable.truncate(length);
        file.pending.retain_mut(|(offset, bytes)| {
            bytes.truncate(length.saturating_sub(*offset));
            !bytes.is_empty()
        });
        Ok(())
    }

    /// Makes the file's writes durable.
    pub(crate) fn sync_file(&mut self, inode: u64) -> io::Result<()> {
        let file = self.inodes.get_mut(&inode).ok_or_else(stale)?;
        for (offset, bytes) in std::mem::take(&mut file.pending) {
            overwrite(&mut file.durable, offset, &bytes);
        }
        Ok(())
    }

    /// Forgets the file's unsynced writes, as Linux does with dirty pages after a failed
    /// `fsync`: a retried sync then reports success for data that is gone.
    pub(crate) fn drop_unsynced(&mut self, inode: u64) {
        if let Some(file) = self.inodes.get_mut(&inode) {
            file.pending.clear();
            file.current.clone_from(&file.durable);
        }
    }

    pub(crate) fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (parent, from_name) = split(from)?;
        let (to_parent, to_name) = split(to)?;
        if parent != to_parent {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the simulated file system renames within one directory only",
            ));
        }
        let dir = self.directory_mut(&parent)?;
        let node = match dir.current.get(&from_name) {
            Some(node @ Node::File(_)) => *node,
            Some(Node::Directory) => return Err(invalid(from, "is a directory")),
            None => return Err(not_found(from)),
        };
        if dir.current.get(&to_name) == Some(&Node::Directory) {
            return Err(invalid(to, "is a directory"));
        }
        dir.current.remove(&from_name);
        dir.current.insert(to_name.clone(), node);
        dir.pending.push(DirOp::Rename { from: from_name, to: to_name, node });
        Ok(())
    }

    pub(crate) fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        let (parent, name) = split(path)?;
        let dir = self.directory_mut(&parent)?;
        let node = match dir.current.get(&name) {
            Some(node @ Node::File(_)) => *node,
            Some(Node::Directory) => return Err(invalid(path, "is a directory")),
            None => return Err(not_found(path)),
        };
        dir.current.remove(&name);
        dir.pending.push(DirOp::Remove { name, node });
        Ok(())
    }

    pub(crate) fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        let mut path = PathBuf::new();
        for name in normalize(dir)?.iter() {
            let name = name.to_string_lossy().into_owned();
            let parent = self.directory_mut(&path)?;
            match parent.current.get(&name) {
                Some(Node::Directory) => {}
                Some(Node::File(_)) => return Err(invalid(dir, "has a file for a parent")),
                None => {
                    parent.current.insert(name.clone(), Node::Directory);
                    parent
                        .pending
                        .push(DirOp::Create { name: name.clone(), node: Node::Directory });
                    path.push(&name);
                    self.directories.insert(path.clone(), Directory::default());
                    continue;
                }
            }
            path.push(&name);
        }
        Ok(())
    }

    pub(crate) fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        let dir = self.directory_mut(&normalize(dir)?)?;
        dir.durable.clone_from(&dir.current);
        dir.pending.clear();
        Ok(())
    }

    /// Keeps or loses each unsynced sector written and each unsynced directory operation
    /// (one chance in two each), then forgets everything that is not durable.
    pub(crate) fn crash(&mut self, rng: &mut Prng) -> CrashLoss {
        let mut loss = CrashLoss::default();
        for file in self.inodes.values_mut() {
            for (offset, bytes) in std::mem::take(&mut file.pending) {
                let (kept, lost) = keep_sectors(&mut file.durable, offset, &bytes, rng);
                match (kept, lost) {
                    (_, 0) => {}
                    (0, _) => loss.lost_writes += 1,
                    _ => loss.torn_writes += 1,
                }
            }
            file.current.clone_from(&file.durable);
        }
        for dir in self.directories.values_mut() {
            for op in std::mem::take(&mut dir.pending) {
                if rng.chance(1, 2) {
                    apply(&mut dir.durable, op);
                } else {
                    loss.lost_dir_ops += 1;
                }
            }
            dir.current.clone_from(&dir.durable);
        }
        self.forget_unreachable();
        loss
    }

    /// Flips one random bit of the durable data of a random file whose directory entry is
    /// durable (the page cache is kept in step). `None` if every such file is empty.
    pub(crate) fn flip_bit(
        &mut self,
        rng: &mut Prng,
        eligible: &dyn Fn(&Path) -> bool,
    ) -> Option<BitFlip> {
        let mut candidates = Vec::new();
        for (dir_path, dir) in &self.directories {
            for (name, node) in &dir.durable {
                if let Node::File(inode) = node {
                    let path = dir_path.join(name);
                    if !self.inodes[inode].durable.is_empty() && eligible(&path) {
                        candidates.push((path, *inode));
                    }
                }
            }
        }
        let last = u64::try_from(candidates.len()).ok()?.checked_sub(1)?;
        let pick = usize::try_from(rng.range_inclusive(0, last)).ok()?;
        let (path, inode) = candidates.swap_remove(pick);
        let file = self.inodes.get_mut(&inode)?;
        let last_byte = u64::try_from(file.durable.len()).ok()?.checked_sub(1)?;
        let offset = rng.range_inclusive(0, last_byte);
        let bit = u8::try_from(rng.range_inclusive(0, 7)).ok()?;
        let at = usize::try_from(offset).ok()?;
        file.durable[at] ^= 1 << bit;
        file.current.clone_from(&file.durable);
        for (offset, bytes) in &file.pending {
            overwrite(&mut file.current, *offset, bytes);
        }
        Some(BitFlip { path, offset, bit })
    }

    /// Drops directories whose own entry did not survive, and files no entry names.
    fn forget_unreachable(&mut self) {
        let mut paths: Vec<PathBuf> = self.directories.keys().cloned().collect();
        paths.sort_by_key(|path| path.components().count());
        let mut reachable = BTreeSet::from([PathBuf::new()]);
        for path in paths {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                continue; // the root
            };
            let linked = reachable.contains(parent)
                && self.directories[parent].durable.get(&*name.to_string_lossy())
                    == Some(&Node::Directory);
            if linked {
                reachable.insert(path);
            } else {
                self.directories.remove(&path);
            }
        }
        let named: BTreeSet<u64> = self
            .directories
            .values()
            .flat_map(|dir| dir.durable.values())
            .filter_map(|node| match node {
                Node::File(inode) => Some(*inode),
                Node::Directory => None,
            })
            .collect();
        self.inodes.retain(|inode, _| named.contains(inode));
    }

    fn directory(&self, path: &Path) -> io::Result<&Directory> {
        self.directories.get(path).ok_or_else(|| not_found(path))
    }

    fn directory_mut(&mut self, path: &Path) -> io::Result<&mut Directory> {
        self.directories.get_mut(path).ok_or_else(|| not_found(path))
    }
}

/// Applies a directory operation that a crash kept to the durable entries.
fn apply(entries: &mut BTreeMap<String, Node>, op: DirOp) {
    match op {
        DirOp::Create { name, node } => {
            entries.insert(name, node);
        }
        DirOp::Remove { name, node } => {
            if entries.get(&name) == Some(&node) {
                entries.remove(&name);
            }
        }
        DirOp::Rename { from, to, node } => {
            if entries.get(&from) == Some(&node) {
                entries.remove(&from);
            }
            entries.insert(to, node);
        }
    }
}

/// Applies each sector-aligned piece of a write to `durable` with one chance in two; returns
/// how many pieces were kept and lost.
fn keep_sectors(durable: &mut Vec<u8>, offset: usize, bytes: &[u8], rng: &mut Prng) -> (u64, u64) {
    let sector = SECTOR_BYTES as usize;
    let (mut kept, mut lost) = (0, 0);
    let mut start = 0;
    while start < bytes.len() {
        let position = offset + start;
        let piece_end = (position / sector + 1) * sector - offset;
        let end = piece_end.min(bytes.len());
        if rng.chance(1, 2) {
            overwrite(durable, position, &bytes[start..end]);
            kept += 1;
        } else {
            lost += 1;
        }
        start = end;
    }
    (kept, lost)
}

/// Writes `bytes` at `offset`, growing `data` with zeros as needed. Offsets and lengths were
/// checked against the file size limit by [`Tree::write`].
fn overwrite(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

/// `path` as a key of the tree: relative to the root, without `.`.
fn normalize(path: &Path) -> io::Result<PathBuf> {
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => normalized.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid(path, "uses `..` or a prefix"));
            }
        }
    }
    Ok(normalized)
}

/// The directory and the name of `path`.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let normalized = normalize(path)?;
    let name = normalized.file_name().ok_or_else(|| invalid(path, "names no file"))?;
    let name = name.to_string_lossy().into_owned();
    let parent = normalized.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((parent, name))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{} {what}", path.display()))
}

fn stale() -> io::Error {
    io::Error::other("stale handle: the file was forgotten by a crash")
}
