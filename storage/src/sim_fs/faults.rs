//! The faults a [`SimFs`](super::SimFs) injects, and how many of each it injected.

use std::io;
use std::path::PathBuf;

/// An error a mutating operation can be made to fail with ([`SimFs::fail_next`](super::SimFs::fail_next)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// `ENOSPC`: the disk is full.
    NoSpace,
    /// `EIO`: the device reported an error.
    Io,
}

impl FailureKind {
    /// The error as the operating system reports it (Linux error numbers).
    pub(crate) fn error(self) -> io::Error {
        match self {
            FailureKind::NoSpace => io::Error::from_raw_os_error(28),
            FailureKind::Io => io::Error::from_raw_os_error(5),
        }
    }
}

/// One bit flipped by [`SimFs::flip_bit`](super::SimFs::flip_bit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitFlip {
    /// The file.
    pub path: PathBuf,
    /// The byte.
    pub offset: u64,
    /// The bit of that byte, 0 (least significant) to 7.
    pub bit: u8,
}

/// How many faults of each kind a [`SimFs`](super::SimFs) injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Crashes ([`SimFs::crash`](super::SimFs::crash)).
    pub crashes: u64,
    /// Crashes that struck between two operations chosen with
    /// [`SimFs::crash_after_ops`](super::SimFs::crash_after_ops).
    pub crashes_between_steps: u64,
    /// Unsynced writes of which a crash kept some sectors and lost others.
    pub torn_writes: u64,
    /// Unsynced writes a crash lost entirely.
    pub lost_writes: u64,
    /// Directory operations (create, rename, remove) not yet synced that a crash lost.
    pub lost_dir_ops: u64,
    /// Bits of durable data flipped.
    pub bit_flips: u64,
    /// Operations failed with `ENOSPC`.
    pub no_space_errors: u64,
    /// Operations failed with `EIO`.
    pub io_errors: u64,
}

impl std::ops::AddAssign for FaultCounters {
    fn add_assign(&mut self, other: FaultCounters) {
        self.crashes += other.crashes;
        self.crashes_between_steps += other.crashes_between_steps;
        self.torn_writes += other.torn_writes;
        self.lost_writes += other.lost_writes;
        self.lost_dir_ops += other.lost_dir_ops;
        self.bit_flips += other.bit_flips;
        self.no_space_errors += other.no_space_errors;
        self.io_errors += other.io_errors;
    }
}

impl FaultCounters {
    /// Counts one injected failure of `kind`.
    pub(crate) fn count_failure(&mut self, kind: FailureKind) {
        match kind {
            FailureKind::NoSpace => self.no_space_errors += 1,
            FailureKind::Io => self.io_errors += 1,
        }
    }
}
