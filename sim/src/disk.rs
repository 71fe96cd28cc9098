//! A node's disk: the real storage engine (`raftkv-storage`) over a simulated file system that
//! crashes like Linux and injects faults. Persists complete in order after a drawn latency (a
//! slow one delays those behind it, which batches them: group commit); the engine then writes
//! and syncs them for real on the simulated file system, where a crash may strike between any
//! two of its steps, a write or sync may fail (ENOSPC, EIO), and bits may rot.
//!
//! Beside the engine, the disk keeps what the node was told is durable, as the contract of
//! `Persist` defines it: every acknowledged persist applied in order. After every restart the
//! engine's recovery is held against it: nothing acknowledged may be missing unless the engine
//! found damage and said so, and it may say so only when a fault could have caused it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use raftkv_core::prng::Prng;
use raftkv_core::raft::{
    EntriesOnDisk, Entry, PartialSnapshot, Persist, PersistId, Recovered, Snapshot,
};
use raftkv_core::{Instant, LogId, LogIndex, NodeId};
use raftkv_storage::sim_fs::{FailureKind, FaultCounters, SimFs};
use raftkv_storage::{
    OpenReport, Saved, SegmentPreparer, Storage, StorageError, StorageOptions, is_identity_file,
};
use raftkv_testkit::Durable;

use crate::options::DiskOptions;

/// A persist handed to the disk, and when it will be durable.
#[derive(Clone, Debug)]
struct Pending {
    done_at: Instant,
    persist: Persist,
}

/// What a crash did to the persists in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CrashLoss {
    /// Persists not acknowledged.
    pub(crate) lost: usize,
    /// The crash struck while the engine was writing them, after this many steps (file system
    /// operations): some may have landed in part. The last of them, by id.
    pub(crate) torn: Option<(PersistId, u64)>,
}

/// Why the disk stopped the node.
#[derive(Debug)]
pub(crate) struct DiskFailure {
    /// The engine's error.
    pub(crate) error: StorageError,
    /// The persists of the batch that failed, none acknowledged.
    pub(crate) lost: usize,
}

/// One node's disk, across its lives.
pub(crate) struct Disk {
    options: DiskOptions,
    rng: Prng,
    fs: SimFs,
    dir: PathBuf,
    storage_options: StorageOptions,
    /// The engine while the node runs, and its segment preparer if the disk prepares ahead.
    storage: Option<Storage<SimFs>>,
    preparer: Option<SegmentPreparer<SimFs>>,
    /// What it recovered at its last start, and every persist acknowledged since.
    acknowledged: Durable,
    queue: VecDeque<Pending>,
    /// When the last queued persist completes; later ones complete no earlier.
    busy_until: Instant,
    /// Persists handed to the engine or queued but never acknowledged, since the last start:
    /// a crash may have landed any part of them.
    unacknowledged: Vec<Persist>,
    /// Bits flipped since the last start: recovery may find damage.
    flips_since_start: u64,
}

/// The most file system operations a batch that writes a snapshot (or a chunk of one being
/// received) is drawn to be cut short after: it takes a dozen or two.
const SNAPSHOT_BATCH_STEPS_MAX: u64 = 24;

/// The same for a batch that only appends and saves a hard state: it takes a handful.
const BATCH_STEPS_MAX: u64 = 8;

/// The most file system operations `batch` is drawn to be cut short after (a crash after its
/// last step loses nothing).
fn steps_max(batch: &[Persist]) -> u64 {
    if batch.iter().any(|persist| installs_snapshot(persist) || persist.snapshot_chunk.is_some()) {
        SNAPSHOT_BATCH_STEPS_MAX
    } else {
        BATCH_STEPS_MAX
    }
}

impl Disk {
    pub(crate) fn new(options: DiskOptions, mut rng: Prng, node: NodeId) -> Disk {
        let fs = SimFs::new(rng.next_u64());
        let storage_options = StorageOptions {
            segment_bytes: options.segment_bytes,
            zero_fill_bytes: options.zero_fill_bytes,
            ..StorageOptions::new("sim", node)
        };
        Disk {
            options,
            rng,
            fs,
            dir: Path::new("data").join(format!("n{node}")),
            storage_options,
            storage: None,
            preparer: None,
            acknowledged: Durable::default(),
            queue: VecDeque::new(),
            busy_until: Instant::ZERO,
            unacknowledged: Vec::new(),
            flips_since_start: 0,
        }
    }

    /// What the node may rely on: what a crash now must leave, unless bits rot.
    pub(crate) fn durable(&self) -> &Durable {
        &self.acknowledged
    }

    /// Every fault the file system injected so far.
    pub(crate) fn faults(&self) -> FaultCounters {
        self.fs.faults()
    }

    /// The entries `first..=last.index` read back from the engine's log, checked: `Ok(None)`
    /// if the log cannot give them (not running, compacted, damaged: a driver then says so to
    /// the node, or stops it); an error if it gives entries other than the ones asked for
    /// (`Entry::is_run`) or than the ones acknowledged, which no bit flip may cause.
    pub(crate) fn read_entries(
        &self,
        first: LogIndex,
        last: LogId,
    ) -> Result<Option<Vec<Entry>>, String> {
        let Some(storage) = &self.storage else { return Ok(None) };
        let Ok(Some(entries)) = storage.read_entries(first, last) else {
            return Ok(None);
        };
        let asked = || format!("{first}..={last}");
        if !Entry::is_run(&entries, first, last) {
            return Err(format!("the log gave back other entries than {}", asked()));
        }
        let differs = entries.iter().find(|entry| {
            self.acknowledged.entry(entry.index).is_some_and(|acknowledged| acknowledged != *entry)
        });
        match differs {
            Some(entry) => Err(format!(
                "the log gave back entry {} other than the one acknowledged ({})",
                entry.id(),
                asked()
            )),
            None => Ok(Some(entries)),
        }
    }

    /// Whether a persist carrying a snapshot (taken or installed) is being written.
    pub(crate) fn snapshot_in_flight(&self) -> bool {
        self.queue.iter().any(|pending| installs_snapshot(&pending.persist))
    }

    /// Opens the engine on what the file system holds, for a node starting: what it recovers,
    /// and what it cut away. Fails if the engine cannot open the directory, or if what it
    /// recovers breaks its promise (see [`check_recovery`]).
    ///
    /// Only the latest entries up to `held_bytes` (if set) come back in memory, as the server
    /// opens its disk; the rest, left on the disk, are read back here to be checked and kept
    /// in the model of what is durable, as the node will read them when it applies them.
    pub(crate) fn open(
        &mut self,
        held_bytes: Option<usize>,
    ) -> Result<(Recovered, OpenReport), String> {
        let options =
            StorageOptions { recovered_entry_bytes: held_bytes, ..self.storage_options.clone() };
        let opened = Storage::open(self.fs.clone(), &self.dir, &options);
        let (storage, recovered, report) = opened.map_err(|error| error.to_string())?;
        let whole = whole_log(&storage, &recovered)?;
        let unacknowledged = std::mem::take(&mut self.unacknowledged);
        let flips = std::mem::replace(&mut self.flips_since_start, 0);
        check_recovery(&self.acknowledged, &unacknowledged, flips, &whole)?;
        self.acknowledged = Durable::recovered(&whole);
        self.preparer = self.options.prepare_segments.then(|| storage.segment_preparer());
        self.storage = Some(storage);
        Ok((recovered, report))
    }

    /// Starts writing `persist` at `now`; returns when it will be durable.
    pub(crate) fn submit(&mut self, now: Instant, persist: Persist) -> Instant {
        let o = &self.options;
        let micros = if o.tail.happens(&mut self.rng) {
            self.rng.range_inclusive(o.latency_us_max, o.latency_tail_us_max)
        } else {
            self.rng.range_inclusive(o.latency_us_min, o.latency_us_max)
        };
        let done_at = (now + raftkv_core::Duration::from_micros(micros)).max(self.busy_until);
        self.busy_until = done_at;
        self.queue.push_back(Pending { done_at, persist });
        done_at
    }

    /// Writes every persist due by `now` with the engine, as one batch; returns the last one's
    /// id, to acknowledge. The batch may fail (an injected ENOSPC or EIO at a drawn step), and
    /// then the node must stop, as a real one does.
    pub(crate) fn complete(&mut self, now: Instant) -> Result<Option<PersistId>, DiskFailure> {
        let mut batch = Vec::new();
        while self.queue.front().is_some_and(|pending| pending.done_at <= now) {
            batch.push(self.queue.pop_front().expect("front exists").persist);
        }
        let Some(last) = batch.last().map(|persist| persist.id) else { return Ok(None) };
        if self.options.io_error.happens(&mut self.rng) {
            let kind = if self.rng.chance(1, 2) { FailureKind::NoSpace } else { FailureKind::Io };
            let step = self.rng.range_inclusive(0, steps_max(&batch));
            self.fs.fail_after_ops(step, kind);
        }
        let storage = self.storage.as_mut().expect("a running node's disk is open");
        if let Err(error) = storage.persist(&batch) {
            let lost = batch.len();
            self.unacknowledged.extend(batch);
            return Err(DiskFailure { error, lost });
        }
        for persist in &batch {
            self.acknowledged.apply(persist).map_err(|reason| DiskFailure {
                error: StorageError::Refused { reason },
                lost: 0,
            })?;
        }
        if let (Some(preparer), Some(sequence)) = (&self.preparer, storage.segment_to_prepare()) {
            // As in the server, a failed preparation costs nothing but the head start.
            let _ = preparer.prepare(sequence);
        }
        Ok(Some(last))
    }

    /// Saves a snapshot of the node's own state apart from the persists, as the server's
    /// snapshot thread does, and drops the log segments it covers. Returns whether it replaced
    /// the snapshot on disk (not when a leader's as recent was installed meanwhile). A failure
    /// stops the node, as a failed persist does.
    pub(crate) fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<bool, DiskFailure> {
        let storage = self.storage.as_mut().expect("a running node's disk is open");
        let failed = |error| DiskFailure { error, lost: 0 };
        let saved = storage.snapshot_saver().save(snapshot).map_err(failed)?;
        if saved == Saved::Superseded {
            return Ok(false);
        }
        self.acknowledged.save_snapshot(snapshot);
        storage.compact_log(snapshot.last.index).map_err(failed)?;
        Ok(true)
    }

    /// Reads back the snapshot received whole that `whole` names, checking every checksum,
    /// and makes it ready to install (as the server's loader thread does): from now on, what
    /// the node was promised includes its data, which an install makes its snapshot's.
    pub(crate) fn load_received_snapshot(
        &mut self,
        whole: &PartialSnapshot,
    ) -> Result<Snapshot, StorageError> {
        let snapshot = raftkv_storage::load_received_snapshot(self.fs.clone(), &self.dir, whole)?;
        self.acknowledged.received_read_back(&snapshot);
        Ok(snapshot)
    }

    /// The node crashed: persists in flight are lost, except that, when the disk tears
    /// writes, the engine was writing them when the crash struck, at a drawn step. Then the
    /// file system loses what was not synced, as Linux may.
    pub(crate) fn crash(&mut self) -> CrashLoss {
        let in_flight: Vec<Persist> = self.queue.drain(..).map(|pending| pending.persist).collect();
        let lost = in_flight.len();
        let mut torn = None;
        if let (Some(storage), Some(last)) = (self.storage.as_mut(), in_flight.last()) {
            if self.options.torn.happens(&mut self.rng) {
                let steps = self.rng.range_inclusive(0, steps_max(&in_flight));
                self.fs.crash_after_ops(steps);
                // Whatever it reports, the process dies now.
                let _ = storage.persist(&in_flight);
                torn = Some((last.id, steps));
            }
        }
        self.unacknowledged.extend(in_flight);
        self.storage = None;
        self.preparer = None;
        self.busy_until = Instant::ZERO;
        self.fs.crash();
        CrashLoss { lost, torn }
    }

    /// Whether the disk may have lost what it acknowledged: bits rotted since the node last
    /// started, or it started damaged and has not said since that it caught up.
    pub(crate) fn is_suspect(&self) -> bool {
        self.flips_since_start > 0 || self.acknowledged.hard_state.damaged
    }

    /// Stops injecting write failures (the faults stop; a crash may still tear a write).
    pub(crate) fn stop_faults(&mut self) {
        self.options.io_error = crate::options::Ratio::NEVER;
    }

    /// Rots one bit of the node's data (anything but its identity file, whose damage only an
    /// operator can repair). Returns where, if the disk holds data.
    pub(crate) fn flip_bit(&mut self) -> Option<String> {
        let flip = self.fs.flip_bit(|path| !is_identity_file(path))?;
        self.flips_since_start += 1;
        Some(format!("{} at {} bit {}", flip.path.display(), flip.offset, flip.bit))
    }
}

/// `recovered` with the entries it left on disk read back from `storage`, checked against
/// what the recovery said of them (terms, sizes, memberships): what the node may rely on.
fn whole_log(storage: &Storage<SimFs>, recovered: &Recovered) -> Result<Recovered, String> {
    let on_disk = &recovered.on_disk;
    let mut whole = Recovered { on_disk: EntriesOnDisk::default(), ..recovered.clone() };
    let (Some(first), Some(last)) = (on_disk.first_index(), on_disk.last_id()) else {
        return Ok(whole);
    };
    let read = storage.read_entries(first, last).map_err(|error| error.to_string())?;
    let read =
        read.ok_or_else(|| format!("the log left {first}..={last} on disk, then lost it"))?;
    let mut described = EntriesOnDisk::default();
    read.iter().for_each(|entry| described.push(entry));
    if &described != on_disk {
        return Err(format!("the entries {first}..={last} read back are not those recovered"));
    }
    whole.entries = read.into_iter().chain(recovered.entries.iter().cloned()).collect();
    Ok(whole)
}

/// Whether `persist` stores a snapshot, the node's own or the one received from the leader.
fn installs_snapshot(persist: &Persist) -> bool {
    persist.snapshot.is_some() || persist.install_received.is_some()
}

/// Holds what the engine recovered against what the node was promised: the acknowledged
/// state, changed only by the persists never acknowledged (`unacknowledged`), any part of which
/// may have landed. With no damage reported, no acknowledged entry may be missing or changed
/// (unless an unacknowledged persist truncated or rewrote it), the term may not go back, a vote
/// of the term may not change, the snapshot may not go back. Damage may be reported only when
/// bits rotted since the last start, or when the node was damaged already.
fn check_recovery(
    acknowledged: &Durable,
    unacknowledged: &[Persist],
    flips: u64,
    recovered: &Recovered,
) -> Result<(), String> {
    let hard_state = recovered.hard_state;
    if hard_state.damaged {
        if flips == 0 && !acknowledged.hard_state.damaged {
            return Err(format!(
                "the storage engine reports damage but no bit rotted: {hard_state}"
            ));
        }
        return Ok(());
    }
    let promised = acknowledged.hard_state;
    let vote_kept = hard_state.term > promised.term
        || (hard_state.term == promised.term
            && (promised.vote.is_none() || hard_state.vote == promised.vote));
    if !vote_kept {
        return Err(format!("recovered hard state {hard_state} after {promised} was durable"));
    }
    let snapshot_index = recovered.snapshot.as_ref().map_or(LogIndex(0), |s| s.last.index);
    if snapshot_index < acknowledged.snapshot_index() {
        return Err(format!(
            "recovered a snapshot at {snapshot_index} after one at {} was durable",
            acknowledged.snapshot_index()
        ));
    }
    check_received_snapshot(acknowledged, unacknowledged, flips, recovered)?;
    // The lowest index an unacknowledged persist may have rewritten.
    let rewritten_from = unacknowledged
        .iter()
        .filter_map(|persist| persist.truncate_from.or(persist.entries.first().map(|e| e.index)))
        .min();
    let first_recovered = snapshot_index.next();
    for entry in &acknowledged.entries {
        if entry.index < first_recovered || rewritten_from.is_some_and(|from| entry.index >= from) {
            continue;
        }
        let offset = (entry.index.0 - first_recovered.0) as usize;
        let held = recovered.entries.get(offset);
        if held.map(Entry::id) != Some(entry.id())
            || held.map(|e| &e.payload) != Some(&entry.payload)
        {
            return Err(format!(
                "acknowledged entry {} is missing or changed after the restart ({})",
                entry.id(),
                held.map_or("none".to_string(), |e| e.id().to_string())
            ));
        }
    }
    Ok(())
}

/// The part of a leader's snapshot that was durable must come back, at least as far, unless
/// bits rotted, or a persist never acknowledged may have replaced or dropped it (a chunk that
/// starts a new one, a snapshot installed).
fn check_received_snapshot(
    acknowledged: &Durable,
    unacknowledged: &[Persist],
    flips: u64,
    recovered: &Recovered,
) -> Result<(), String> {
    let recovered_snapshot = recovered.snapshot.as_ref().map_or(LogIndex(0), |s| s.last.index);
    let Some(promised) = acknowledged.received_snapshot else { return Ok(()) };
    let replaced = unacknowledged.iter().any(|persist| {
        installs_snapshot(persist) || persist.snapshot_chunk.as_ref().is_some_and(|c| c.offset == 0)
    });
    if flips > 0 || replaced || promised.last.index <= recovered_snapshot {
        return Ok(());
    }
    let kept = recovered.partial_snapshot.filter(|held| {
        (held.last, held.total) == (promised.last, promised.total)
            && held.received >= promised.received
    });
    match kept {
        Some(_) => Ok(()),
        None => Err(format!(
            "{} bytes of the snapshot {} received were durable, the restart holds {:?}",
            promised.received, promised.last, recovered.partial_snapshot
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Ratio;
    use raftkv_core::Term;
    use raftkv_core::raft::{HardState, Payload};

    fn options(torn: Ratio) -> DiskOptions {
        DiskOptions {
            latency_us_min: 100,
            latency_us_max: 100,
            tail: Ratio::NEVER,
            latency_tail_us_max: 100,
            torn,
            io_error: Ratio::NEVER,
            bit_rot_interval_ms_max: 0,
            segment_bytes: 512,
            zero_fill_bytes: 0,
            prepare_segments: false,
            lies: false,
        }
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Command(vec![7; 40]) }
    }

    fn persist(id: u64, term: u64, entries: std::ops::RangeInclusive<u64>) -> Persist {
        Persist {
            id: PersistId(id),
            hard_state: Some(HardState { term: Term(term), vote: Some(NodeId(1)), damaged: false }),
            truncate_from: None,
            entries: entries.map(|index| entry(index, term)).collect(),
            snapshot: None,
            install_received: None,
            snapshot_chunk: None,
        }
    }

    fn recovered(entries: std::ops::RangeInclusive<u64>, term: u64) -> Recovered {
        Recovered {
            hard_state: HardState { term: Term(term), vote: Some(NodeId(1)), damaged: false },
            snapshot: None,
            entries: entries.map(|index| entry(index, term)).collect(),
            ..Recovered::default()
        }
    }

    #[test]
    fn the_engine_keeps_what_was_acknowledged_across_crashes_that_tear_writes() {
        let mut disk = Disk::new(options(Ratio::new(1, 1)), Prng::seeded(3), NodeId(1));
        // Only the latest entry stays in memory: the others are read back and checked.
        let held_bytes = Some(100);
        disk.open(held_bytes).expect("a new disk opens");
        let mut next = 1;
        for round in 1..=30u64 {
            let at = disk.submit(Instant::ZERO, persist(round, 1, next..=next + 2));
            assert_eq!(disk.complete(at).expect("no failures injected"), Some(PersistId(round)));
            next += 3;
            // One more in flight, which the crash strikes while it is written.
            disk.submit(Instant::ZERO, persist(round + 100, 1, next..=next + 2));
            let loss = disk.crash();
            assert_eq!(loss.lost, 1);
            assert!(loss.torn.is_some(), "always torn at 1/1");
            let (recovered, report) = disk.open(held_bytes).expect("the engine keeps its promise");
            assert_eq!(recovered.entries.len(), 1, "the rest left on disk");
            assert!(report.damage.is_empty(), "a crash is not damage: {report:?}");
            // The persist in flight may have landed, or not.
            next = recovered.entries.last().expect("entries").index.0 + 1;
            assert!(next > round * 3, "round {round}: acknowledged entries are all there");
        }
        assert!(disk.faults().crashes_between_steps > 0);
    }

    #[test]
    fn a_recovery_that_lost_an_acknowledged_entry_or_vote_is_refused() {
        let mut acknowledged = Durable::recovered(&recovered(1..=5, 2));
        assert_eq!(check_recovery(&acknowledged, &[], 0, &recovered(1..=5, 2)), Ok(()));
        let lost = check_recovery(&acknowledged, &[], 0, &recovered(1..=4, 2));
        assert!(lost.unwrap_err().contains("acknowledged entry 5/2"));
        // Unless a persist never acknowledged rewrote it.
        let rewrite = Persist {
            truncate_from: Some(LogIndex(5)),
            entries: Vec::new(),
            ..persist(9, 2, 1..=1)
        };
        assert_eq!(check_recovery(&acknowledged, &[rewrite], 0, &recovered(1..=4, 2)), Ok(()));
        let mut other_vote = recovered(1..=5, 2);
        other_vote.hard_state.vote = Some(NodeId(2));
        assert!(check_recovery(&acknowledged, &[], 0, &other_vote).is_err());
        let mut damaged = recovered(1..=2, 2);
        damaged.hard_state.damaged = true;
        let refused = check_recovery(&acknowledged, &[], 0, &damaged);
        assert!(refused.unwrap_err().contains("no bit rotted"));
        assert_eq!(check_recovery(&acknowledged, &[], 1, &damaged), Ok(()), "a bit rotted");
        acknowledged.hard_state.damaged = true;
        assert_eq!(check_recovery(&acknowledged, &[], 0, &damaged), Ok(()), "damaged already");
    }

    #[test]
    fn a_recovery_that_lost_durable_bytes_of_a_snapshot_received_is_refused() {
        use raftkv_core::LogId;
        use raftkv_core::raft::{Membership, PartialSnapshot, ReceivedChunk};
        let last = LogId::new(LogIndex(9), Term(2));
        let chunk = |offset: u64| ReceivedChunk {
            last,
            membership: Membership::with_voters([NodeId(1)]),
            total: 8,
            offset,
            data: vec![1; 4],
        };
        // A persist that carries a chunk only.
        let carrying = |id, offset| Persist {
            snapshot_chunk: Some(chunk(offset)),
            entries: Vec::new(),
            ..persist(id, 2, 1..=1)
        };
        let mut acknowledged = Durable::default();
        for offset in [0, 4] {
            acknowledged.apply(&carrying(1, offset)).unwrap();
        }
        let holding = |received| Recovered {
            partial_snapshot: Some(PartialSnapshot { last, total: 8, received }),
            entries: Vec::new(),
            ..recovered(1..=1, 2)
        };
        assert_eq!(check_recovery(&acknowledged, &[], 0, &holding(8)), Ok(()));
        let lost = check_recovery(&acknowledged, &[], 0, &holding(4)).unwrap_err();
        assert!(lost.contains("8 bytes of the snapshot 9/2"), "{lost}");
        assert_eq!(check_recovery(&acknowledged, &[], 1, &holding(4)), Ok(()), "a bit rotted");
        // A chunk never acknowledged may have started the file again.
        assert_eq!(check_recovery(&acknowledged, &[carrying(2, 0)], 0, &holding(4)), Ok(()));
    }

    #[test]
    fn a_failed_write_stops_the_node_without_acknowledging() {
        let mut disk = Disk::new(
            DiskOptions { io_error: Ratio::new(1, 1), ..options(Ratio::NEVER) },
            Prng::seeded(5),
            NodeId(1),
        );
        disk.open(None).expect("a new disk opens");
        let (mut failed, mut next) = (0, 1);
        for round in 1..=10 {
            let at = disk.submit(Instant::ZERO, persist(round, 1, next..=next + 2));
            match disk.complete(at) {
                Err(failure) => {
                    failed += 1;
                    assert_eq!(failure.lost, 1);
                    disk.crash();
                    let (recovered, _) = disk.open(None).expect("keeps what was acknowledged");
                    next = recovered.entries.last().map_or(1, |entry| entry.index.0 + 1);
                }
                // The step drawn lay past the batch.
                Ok(acknowledged) => {
                    assert_eq!(acknowledged, Some(PersistId(round)));
                    next += 3;
                }
            }
        }
        assert!(failed >= 3, "{failed} of 10 batches failed");
        let faults = disk.faults();
        assert_eq!(faults.no_space_errors + faults.io_errors, failed);
    }
}
