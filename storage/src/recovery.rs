//! Reading a data directory back after a restart, and cutting away what is damaged.
//!
//! What happens on damage follows Protocol-Aware Recovery (Alagappan et al., FAST '18): a torn
//! write at the end of the log was never acknowledged and is cut off quietly. Any other damage
//! means the node may have lost writes it acknowledged (entries, a vote): what is damaged is
//! cut away, durably, so that no later start can see it again, and the node is reported
//! damaged, to stay out of elections until it has caught up with a leader, who holds every
//! committed entry.
//!
//! - a damaged WAL record: the log is cut at the first one;
//! - a damaged hard state: the node goes on with the last term its log or snapshot holds and
//!   no vote;
//! - a damaged snapshot: it is dropped with the whole log (entries after a snapshot that is
//!   gone are of no use);
//! - a damaged identity file: the node refuses to start, since only an operator can tell whose
//!   data this is.

use std::path::Path;

use raftkv_core::LogId;
use raftkv_core::raft::{HardState, Recovered};

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::options::StorageOptions;
use crate::report::{Cut, Dropped, OpenReport};
use crate::small_file::SmallFile;
use crate::wal::{self, Wal};
use crate::{hard_state, identity, snapshot};

/// The directory of the WAL segments inside the data directory.
const WAL_DIR: &str = "wal";

/// Everything opening a data directory yields.
#[derive(Debug)]
pub(crate) struct Opened<H> {
    pub(crate) wal: Wal<H>,
    pub(crate) hard_state: HardState,
    pub(crate) recovered: Recovered,
    pub(crate) report: OpenReport,
}

/// Opens `dir` for the node of `options` (creating it if needed), reads back everything
/// durable and cuts away what is damaged.
pub(crate) fn open<F: FileSystem>(
    fs: &F,
    dir: &Path,
    options: &StorageOptions,
) -> Result<Opened<F::File>, StorageError> {
    let zero_fill_bytes = options.checked_zero_fill_bytes()?;
    directory::create(fs, dir)?;
    let fresh = identity::check(fs, dir, &options.cluster, options.node)?;
    let wal_dir = dir.join(WAL_DIR);
    let mut damage = Vec::new();
    let stored_hard_state = hard_state::load(fs, dir)?;
    let snapshot = match snapshot::load(fs, dir)? {
        SmallFile::Missing => None,
        SmallFile::Intact(snapshot) => Some(snapshot),
        SmallFile::Damaged { offset, reason } => {
            // The log goes first: a crash in between finds the damaged snapshot again.
            wal::remove_all(fs, &wal_dir)?;
            snapshot::remove(fs, dir)?;
            let path = dir.join(snapshot::FILE);
            damage.push(Cut { path, offset, reason, dropped: Dropped::SnapshotAndLog });
            None
        }
    };
    let snapshot_last = snapshot.as_ref().map_or(LogId::ZERO, |snapshot| snapshot.last);
    let (wal, replayed) =
        Wal::open(fs, &wal_dir, snapshot_last.index, options.segment_bytes, zero_fill_bytes)?;
    damage.extend(replayed.damage);
    let hard_state = match stored_hard_state {
        SmallFile::Missing => HardState::default(),
        SmallFile::Intact(hard_state) => hard_state,
        SmallFile::Damaged { offset, reason } => {
            let log_term = replayed.entries.last().map_or(snapshot_last.term, |entry| entry.term);
            let recovered = HardState { term: log_term.max(snapshot_last.term), vote: None };
            hard_state::save(fs, dir, recovered)?;
            let path = dir.join(hard_state::FILE);
            damage.push(Cut { path, offset, reason, dropped: Dropped::HardState { recovered } });
            recovered
        }
    };
    let recovered =
        Recovered { hard_state, snapshot, entries: replayed.entries, damaged: !damage.is_empty() };
    let report = OpenReport { fresh, torn_tail: replayed.torn_tail, damage };
    Ok(Opened { wal, hard_state, recovered, report })
}
