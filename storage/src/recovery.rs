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

use raftkv_core::raft::{Entry, HardState, Recovered};
use raftkv_core::{LogId, Term};

use crate::directory;
use crate::error::StorageError;
use crate::fs::FileSystem;
use crate::options::StorageOptions;
use crate::report::{Cut, Dropped, OpenReport};
use crate::small_file::SmallFile;
use crate::wal::{self, LogChangeRef, Wal};
use crate::{hard_state, identity, snapshot, snapshot_reader};

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
/// durable and cuts away what is damaged. Before anything is cut, the hard state says durably
/// that the node is damaged, so that a crash during or after the cut cannot forget it.
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
    let mut hard_state = match &stored_hard_state {
        SmallFile::Intact(hard_state) => *hard_state,
        // A damaged one gets its term from the log below.
        SmallFile::Missing | SmallFile::Damaged { .. } => HardState::default(),
    };
    // The term saved is never below the log's kept after the cut: a hard state behind its
    // log cannot be recovered.
    let mut mark_damaged = |term: Term| -> Result<(), StorageError> {
        if !hard_state.damaged || term > hard_state.term {
            hard_state = HardState { term: hard_state.term.max(term), damaged: true, ..hard_state };
            hard_state::save(fs, dir, hard_state)?;
        }
        Ok(())
    };
    if fresh && options.rejoin {
        mark_damaged(Term(0))?;
    }
    let stored_snapshot = if options.read_snapshot_data {
        snapshot::load(fs, dir)?
    } else {
        snapshot_reader::load_without_data(fs, dir)?
    };
    let snapshot = match stored_snapshot {
        SmallFile::Missing => None,
        SmallFile::Intact(snapshot) => Some(snapshot),
        SmallFile::Damaged { offset, reason } => {
            mark_damaged(Term(0))?;
            // The log goes first: a crash in between finds the damaged snapshot again.
            wal::remove_all(fs, &wal_dir)?;
            snapshot::remove(fs, dir)?;
            let path = dir.join(snapshot::FILE);
            damage.push(Cut { path, offset, reason, dropped: Dropped::SnapshotAndLog });
            None
        }
    };
    let snapshot_last = snapshot.as_ref().map_or(LogId::ZERO, |snapshot| snapshot.last);
    let segment_bytes = options.segment_bytes;
    let mut before_cut =
        |log_term: Option<Term>| mark_damaged(log_term.unwrap_or(snapshot_last.term));
    let (mut wal, replayed) = Wal::open(
        fs,
        &wal_dir,
        snapshot_last,
        options.recovered_entry_bytes,
        segment_bytes,
        zero_fill_bytes,
        &mut before_cut,
    )?;
    damage.extend(replayed.damage);
    let (on_disk, mut entries) = (replayed.on_disk, replayed.entries);
    // Entries on disk never go back in term: the first held may (see below).
    let on_disk_last = on_disk.last_id().unwrap_or(snapshot_last);
    if let SmallFile::Damaged { offset, reason } = stored_hard_state {
        // The vote is lost; the term goes on from the last one the log or snapshot holds.
        let log_term = entries.last().map_or(on_disk_last.term, |entry| entry.term);
        mark_damaged(log_term.max(snapshot_last.term))?;
        let recovered = hard_state;
        let path = dir.join(hard_state::FILE);
        damage.push(Cut { path, offset, reason, dropped: Dropped::HardState { recovered } });
    }
    // Also on a start after a crash that followed the cut: the mark says the log was cut.
    if hard_state.damaged {
        if let Some(cut) = drop_entries_of_older_terms(&wal_dir, on_disk_last, &mut entries) {
            let from = entries.last().map_or(on_disk_last.index, |entry| entry.index).next();
            wal.append(fs, &[LogChangeRef { truncate_from: Some(from), entries: &[] }])?;
            damage.push(cut);
        }
    }
    // The snapshot being received, if any, is the storage's to open (`received_snapshot`).
    let recovered = Recovered { hard_state, snapshot, on_disk, entries, partial_snapshot: None };
    let report = OpenReport { fresh, torn_tail: replayed.torn_tail, damage };
    Ok(Opened { wal, hard_state, recovered, report })
}

/// After a cut, the log kept may hold entries that a record past the cut had erased, of a term
/// older than the snapshot or than an entry before them (a new leader's truncation was among
/// what was cut, and the snapshot taken later survived). They were never committed: drops them
/// from the first whose term goes back. `before` is the entry before `entries` (the last one
/// left on disk, or the snapshot point), whose term never goes back. The caller makes that
/// durable.
fn drop_entries_of_older_terms(
    wal_dir: &Path,
    before: LogId,
    entries: &mut Vec<Entry>,
) -> Option<Cut> {
    let mut term = before.term;
    let first_older = entries.iter().position(|entry| {
        let goes_back = entry.term < term;
        term = term.max(entry.term);
        goes_back
    })?;
    let dropped_from = entries[first_older].id();
    entries.truncate(first_older);
    let kept_last = entries.last().map_or(before.index, |entry| entry.index);
    Some(Cut {
        path: wal_dir.to_path_buf(),
        offset: 0,
        reason: format!(
            "entries from {dropped_from} on are of a term older than the snapshot or the entries \
             before them: a truncation that erased them was cut away"
        ),
        dropped: Dropped::LogAfter { kept_last },
    })
}
