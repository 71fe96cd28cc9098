//! An in-memory, deterministic file system that crashes like Linux and injects faults, for
//! tests and for the simulator.
//!
//! What it models:
//!
//! - Data written to a file and not yet synced (`sync_data`, `sync_all`) may be lost at a
//!   crash, one 512-byte sector at a time: a crash keeps or loses each sector of each
//!   unsynced write on its own (one chance in two), so it can tear a write. A lost sector
//!   keeps what the disk held before: zeros where the file had not reached.
//! - Directory entries created, renamed or removed and not yet made durable by a sync of
//!   their directory may be lost at a crash, each operation on its own (one chance in two).
//!   A rename is atomic: a crash leaves the old names or the new ones. A directory whose own
//!   entry is lost vanishes with everything in it.
//! - A failed sync forgets the file's unsynced writes, as Linux drops dirty pages after an
//!   `fsync` error: a retried sync then succeeds with the data gone.
//!
//! Fault injection, all drawn from one seeded generator, so a run is reproducible:
//! [`crash`](SimFs::crash), [`crash_after_ops`](SimFs::crash_after_ops) (stop between any two
//! steps of a write), [`fail_next`](SimFs::fail_next) and
//! [`fail_after_ops`](SimFs::fail_after_ops) (`ENOSPC` or `EIO`, at any step),
//! [`flip_bit`](SimFs::flip_bit) (bit rot), and [`faults`](SimFs::faults) counts each.
//!
//! A `SimFs` is a cheap handle: clones share one file system, so a simulator keeps one while
//! a storage engine owns another, crashes it, and opens a new engine on it. Single-threaded.
//! Renames across directories are not supported.

mod faults;
mod tree;

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::path::Path;
use std::rc::Rc;

use raftkv_core::prng::Prng;

use crate::fs::FileSystem;
use crate::sim_fs::tree::Tree;

pub use faults::{BitFlip, FailureKind, FaultCounters};

/// A simulated file system; see the [module documentation](self).
#[derive(Clone)]
pub struct SimFs {
    state: Rc<RefCell<State>>,
}

/// A file opened on a [`SimFs`]. A crash invalidates it, as it ends the process that held it.
#[derive(Debug)]
pub struct SimFile {
    inode: u64,
    /// The number of crashes before it was opened.
    epoch: u64,
}

#[derive(Debug)]
struct State {
    tree: Tree,
    rng: Prng,
    /// Mutating operations performed.
    ops: u64,
    /// Mutating operations left before the file system stops (`crash_after_ops`).
    ops_before_stop: Option<u64>,
    /// Every operation fails until the next crash.
    stopped: bool,
    /// Mutating operations to let through, then the one to fail and how.
    failure: Option<(u64, FailureKind)>,
    faults: FaultCounters,
}

/// Why a mutating operation did not happen.
enum Refusal {
    Stopped,
    Injected(FailureKind),
}

impl From<Refusal> for io::Error {
    fn from(refusal: Refusal) -> io::Error {
        match refusal {
            Refusal::Stopped => stopped_error(),
            Refusal::Injected(kind) => kind.error(),
        }
    }
}

impl SimFs {
    /// An empty file system whose faults are drawn from `seed`.
    pub fn new(seed: u64) -> SimFs {
        let state = State {
            tree: Tree::new(),
            rng: Prng::seeded(seed),
            ops: 0,
            ops_before_stop: None,
            stopped: false,
            failure: None,
            faults: FaultCounters::default(),
        };
        SimFs { state: Rc::new(RefCell::new(state)) }
    }

    /// The machine loses power: every unsynced write and directory operation is kept or lost
    /// as the [module documentation](self) says, open files become unusable, and injected
    /// stops and failures are cleared.
    pub fn crash(&self) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let loss = state.tree.crash(&mut state.rng);
        state.faults.crashes += 1;
        if state.stopped {
            state.faults.crashes_between_steps += 1;
        }
        state.faults.torn_writes += loss.torn_writes;
        state.faults.lost_writes += loss.lost_writes;
        state.faults.lost_dir_ops += loss.lost_dir_ops;
        state.stopped = false;
        state.ops_before_stop = None;
        state.failure = None;
    }

    /// Lets the next `ops` mutating operations (create, write, sync, rename, remove, create
    /// or sync a directory) succeed; then every operation fails until [`crash`](Self::crash).
    /// A crash then strikes between those two steps.
    pub fn crash_after_ops(&self, ops: u64) {
        let mut state = self.state.borrow_mut();
        state.ops_before_stop = Some(ops);
        state.stopped = ops == 0;
    }

    /// Makes the next mutating operation fail with `kind`, doing nothing; a failed sync also
    /// forgets the file's unsynced writes.
    pub fn fail_next(&self, kind: FailureKind) {
        self.fail_after_ops(0, kind);
    }

    /// Lets the next `ops` mutating operations through, then fails the one after as
    /// [`fail_next`](Self::fail_next) does.
    pub fn fail_after_ops(&self, ops: u64, kind: FailureKind) {
        self.state.borrow_mut().failure = Some((ops, kind));
    }

    /// Flips one random bit of durable data in a random file for which `eligible` holds: bit
    /// rot. Returns where, or `None` if no such file holds durable data.
    pub fn flip_bit(&self, eligible: impl Fn(&Path) -> bool) -> Option<BitFlip> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let flip = state.tree.flip_bit(&mut state.rng, &eligible)?;
        state.faults.bit_flips += 1;
        Some(flip)
    }

    /// How many faults of each kind were injected so far.
    pub fn faults(&self) -> FaultCounters {
        self.state.borrow().faults
    }

    /// How many mutating operations succeeded so far.
    pub fn ops(&self) -> u64 {
        self.state.borrow().ops
    }

    /// Runs a read-only operation unless the file system is stopped.
    fn inspect<T>(&self, operation: impl FnOnce(&Tree) -> io::Result<T>) -> io::Result<T> {
        let state = self.state.borrow();
        if state.stopped {
            return Err(stopped_error());
        }
        operation(&state.tree)
    }

    /// Runs a mutating operation unless it is refused.
    fn mutate<T>(&self, operation: impl FnOnce(&mut Tree) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.borrow_mut();
        state.admit()?;
        operation(&mut state.tree)
    }

    /// Runs a sync of `file`; a refused one forgets the file's unsynced writes.
    fn sync(&self, file: &SimFile) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        state.check_handle(file)?;
        match state.admit() {
            Ok(()) => state.tree.sync_file(file.inode),
            Err(refusal) => {
                if let Refusal::Injected(_) = refusal {
                    state.tree.drop_unsynced(file.inode);
                }
                Err(refusal.into())
            }
        }
    }
}

impl State {
    /// Counts a mutating operation, or says why it may not happen.
    fn admit(&mut self) -> Result<(), Refusal> {
        if self.stopped {
            return Err(Refusal::Stopped);
        }
        if let Some(left) = self.ops_before_stop {
            let left = left.saturating_sub(1);
            self.ops_before_stop = Some(left);
            self.stopped = left == 0;
        }
        match self.failure {
            Some((0, kind)) => {
                self.failure = None;
                self.faults.count_failure(kind);
                return Err(Refusal::Injected(kind));
            }
            Some((left, kind)) => self.failure = Some((left - 1, kind)),
            None => {}
        }
        self.ops += 1;
        Ok(())
    }

    fn check_handle(&self, file: &SimFile) -> io::Result<()> {
        if file.epoch == self.faults.crashes {
            Ok(())
        } else {
            Err(io::Error::other("stale file handle: opened before a crash"))
        }
    }
}

fn stopped_error() -> io::Error {
    io::Error::other("simulated crash: the file system is stopped until it crashes")
}

impl FileSystem for SimFs {
    type File = SimFile;

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inspect(|tree| tree.list(dir))
    }

    fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        self.inspect(|tree| tree.read(path))
    }

    fn create_new(&self, path: &Path) -> io::Result<SimFile> {
        let epoch = self.state.borrow().faults.crashes;
        let inode = self.mutate(|tree| tree.create_new(path))?;
        Ok(SimFile { inode, epoch })
    }

    fn open_for_writing(&self, path: &Path) -> io::Result<SimFile> {
        let epoch = self.state.borrow().faults.crashes;
        let inode = self.inspect(|tree| tree.open(path))?;
        Ok(SimFile { inode, epoch })
    }

    fn open_for_reading(&self, path: &Path) -> io::Result<Option<SimFile>> {
        let epoch = self.state.borrow().faults.crashes;
        match self.inspect(|tree| tree.open(path)) {
            Ok(inode) => Ok(Some(SimFile { inode, epoch })),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn read_at(&self, file: &SimFile, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        self.state.borrow().check_handle(file)?;
        self.inspect(|tree| tree.read_at(file.inode, offset, length))
    }

    fn write_at(&self, file: &mut SimFile, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.state.borrow().check_handle(file)?;
        self.mutate(|tree| tree.write(file.inode, offset, bytes))
    }

    fn len(&self, file: &SimFile) -> io::Result<u64> {
        self.state.borrow().check_handle(file)?;
        self.inspect(|tree| tree.len(file.inode))
    }

    fn shrink(&self, file: &mut SimFile, length: u64) -> io::Result<()> {
        self.state.borrow().check_handle(file)?;
        self.mutate(|tree| tree.shrink(file.inode, length))
    }

    fn sync_data(&self, file: &mut SimFile) -> io::Result<()> {
        self.sync(file)
    }

    fn sync_all(&self, file: &mut SimFile) -> io::Result<()> {
        self.sync(file)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.mutate(|tree| tree.rename(from, to))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.mutate(|tree| tree.remove_file(path))
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.mutate(|tree| tree.create_dir_all(dir))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.mutate(|tree| tree.sync_dir(dir))
    }
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("SimFs").field("ops", &state.ops).field("faults", &state.faults).finish()
    }
}
