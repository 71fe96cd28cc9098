//! A node's disk: persists complete in order after a drawn latency (a slow one delays those
//! behind it, which batches them: group commit), and a crash keeps exactly what the node may
//! rely on, plus possibly part of the persist in flight (a torn last record).

use std::collections::VecDeque;

use raftkv_core::prng::Prng;
use raftkv_core::raft::{Entry, HardState, Persist, PersistId, Recovered, Snapshot};
use raftkv_core::{Instant, LogIndex};

use crate::options::DiskOptions;

/// What is on the platter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Durable {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<Snapshot>,
    /// Consecutive, after the snapshot.
    pub(crate) entries: Vec<Entry>,
}

impl Durable {
    /// The index of the last entry (or of the snapshot point).
    pub(crate) fn last_index(&self) -> LogIndex {
        match (self.entries.last(), &self.snapshot) {
            (Some(entry), _) => entry.index,
            (None, Some(snapshot)) => snapshot.last.index,
            (None, None) => LogIndex(0),
        }
    }

    /// The index of the snapshot point (0 without a snapshot).
    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.last.index)
    }

    /// The entry at `index`, if stored.
    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        let offset = index.0.checked_sub(first.0)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Drops every entry at `index` and after.
    fn truncate_from(&mut self, index: LogIndex) {
        if let Some(first) = self.entries.first() {
            let keep = index.0.saturating_sub(first.index.0);
            self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }

    /// Applies `persist` in the documented order (snapshot, truncation, entries, hard state),
    /// keeping only the first `entries_kept` of its entries. Fails if the result would not be
    /// a consecutive log, which no correct node asks for.
    fn apply(&mut self, persist: &Persist, entries_kept: usize) -> Result<(), String> {
        if let Some(snapshot) = &persist.snapshot {
            let keeps_suffix = self
                .entry(snapshot.last.index)
                .is_some_and(|entry| entry.term == snapshot.last.term);
            if keeps_suffix {
                self.entries.retain(|entry| entry.index > snapshot.last.index);
            } else {
                self.entries.clear();
            }
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(from) = persist.truncate_from {
            self.truncate_from(from);
        }
        for entry in persist.entries.iter().take(entries_kept) {
            // Writing at an index replaces whatever was stored there and after.
            self.truncate_from(entry.index);
            let expected = self.last_index().next();
            if entry.index != expected {
                return Err(format!(
                    "{persist} writes entry {} but the disk's next index is {expected}",
                    entry.id()
                ));
            }
            self.entries.push(entry.clone());
        }
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        Ok(())
    }
}

/// A persist handed to the disk, and when it will be durable.
#[derive(Clone, Debug)]
struct Pending {
    done_at: Instant,
    persist: Persist,
}

/// What a crash did to the persists in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CrashLoss {
    /// Persists not (wholly) written.
    pub(crate) lost: usize,
    /// The first of them landed in part: its id and the number of its entries kept.
    pub(crate) torn: Option<(PersistId, usize)>,
}

/// One node's disk, across its lives.
pub(crate) struct Disk {
    options: DiskOptions,
    rng: Prng,
    durable: Durable,
    queue: VecDeque<Pending>,
    /// When the last queued persist completes; later ones complete no earlier.
    busy_until: Instant,
}

impl Disk {
    pub(crate) fn new(options: DiskOptions, rng: Prng) -> Disk {
        Disk {
            options,
            rng,
            durable: Durable::default(),
            queue: VecDeque::new(),
            busy_until: Instant::ZERO,
        }
    }

    /// What a crash now would leave.
    pub(crate) fn durable(&self) -> &Durable {
        &self.durable
    }

    /// Whether a persist carrying a snapshot (taken or installed) is being written.
    pub(crate) fn snapshot_in_flight(&self) -> bool {
        self.queue.iter().any(|pending| pending.persist.snapshot.is_some())
    }

    /// Starts writing `persist` at `now`; returns when it will be durable.
    pub(crate) fn submit(&mut self, now: Instant, persist: Persist) -> Instant {
        let o = &self.options;
        let micros = if o.tail.happens(&mut self.rng) {
            self.rng.range_inclusive(o.latency_us_max, o.latency_tail_us_max)
        } else {
            self.rng.range_inclusive(o.latency_us_min, o.latency_us_max)
        };
        let done_at = now.add_nanos(micros * 1_000).max(self.busy_until);
        self.busy_until = done_at;
        self.queue.push_back(Pending { done_at, persist });
        done_at
    }

    /// Makes every persist due by `now` durable; returns the last one's id, to acknowledge.
    pub(crate) fn complete(&mut self, now: Instant) -> Result<Option<PersistId>, String> {
        let mut last = None;
        while self.queue.front().is_some_and(|p| p.done_at <= now) {
            let pending = self.queue.pop_front().expect("front exists");
            let kept = pending.persist.entries.len();
            self.durable.apply(&pending.persist, kept)?;
            last = Some(pending.persist.id);
        }
        Ok(last)
    }

    /// The node crashed: persists in flight are lost, except that the first may land in part
    /// when the disk tears records. A torn persist keeps its hard state with a prefix of its
    /// entries (the hard state is never durable later than the entries written with it), or
    /// nothing.
    pub(crate) fn crash(&mut self) -> Result<CrashLoss, String> {
        let lost = self.queue.len();
        let mut torn = None;
        if let Some(first) = self.queue.front() {
            if self.options.torn.happens(&mut self.rng) {
                let count = first.persist.entries.len() as u64;
                let kept = self.rng.range_inclusive(0, count) as usize;
                let persist = first.persist.clone();
                self.durable.apply(&persist, kept)?;
                torn = Some((persist.id, kept));
            }
        }
        self.queue.clear();
        self.busy_until = Instant::ZERO;
        Ok(CrashLoss { lost, torn })
    }

    /// What a restarting node reads back.
    pub(crate) fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.durable.hard_state,
            snapshot: self.durable.snapshot.clone(),
            entries: self.durable.entries.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Ratio;
    use raftkv_core::raft::Payload;
    use raftkv_core::{NodeId, Term};

    fn options(torn: Ratio) -> DiskOptions {
        DiskOptions {
            latency_us_min: 100,
            latency_us_max: 100,
            tail: Ratio::NEVER,
            latency_tail_us_max: 100,
            torn,
            lies: false,
        }
    }

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Noop }
    }

    fn persist(id: u64, term: u64, truncate: Option<u64>, entries: &[(u64, u64)]) -> Persist {
        Persist {
            id: PersistId(id),
            hard_state: Some(HardState { term: Term(term), vote: Some(NodeId(1)), damaged: false }),
            truncate_from: truncate.map(LogIndex),
            entries: entries.iter().map(|&(i, t)| entry(i, t)).collect(),
            snapshot: None,
        }
    }

    #[test]
    fn persists_land_in_order_and_an_entry_replaces_what_follows_it() {
        let mut disk = Disk::new(options(Ratio::NEVER), Prng::seeded(1));
        let at = disk.submit(Instant::ZERO, persist(1, 1, None, &[(1, 1), (2, 1), (3, 1)]));
        disk.submit(Instant::ZERO, persist(2, 2, None, &[(2, 2)]));
        assert_eq!(disk.complete(Instant::ZERO), Ok(None), "nothing due yet");
        assert_eq!(disk.complete(at), Ok(Some(PersistId(2))));
        let terms: Vec<u64> = disk.durable().entries.iter().map(|e| e.term.0).collect();
        assert_eq!(terms, [1, 2]);
        assert_eq!(disk.durable().hard_state.term, Term(2));
    }

    #[test]
    fn a_crash_loses_what_was_not_written_and_may_tear_the_first_persist() {
        let mut disk = Disk::new(options(Ratio::new(1, 1)), Prng::seeded(3));
        let at = disk.submit(Instant::ZERO, persist(1, 1, None, &[(1, 1)]));
        disk.complete(at).expect("consecutive");
        disk.submit(at, persist(2, 3, Some(1), &[(1, 3), (2, 3), (3, 3)]));
        disk.submit(at, persist(3, 4, None, &[(4, 3)]));
        let loss = disk.crash().expect("consecutive");
        assert_eq!(loss.lost, 2);
        let (id, kept) = loss.torn.expect("always torn at 1/1");
        assert_eq!(id, PersistId(2));
        let recovered = disk.recover();
        assert_eq!(recovered.hard_state.term, Term(3), "hard state lands first");
        assert_eq!(recovered.entries.len(), kept);
        assert!(recovered.entries.iter().all(|e| e.term == Term(3)));
    }

    #[test]
    fn a_gap_in_the_log_is_refused() {
        let mut disk = Disk::new(options(Ratio::NEVER), Prng::seeded(1));
        let at = disk.submit(Instant::ZERO, persist(1, 1, None, &[(2, 1)]));
        assert!(disk.complete(at).is_err());
    }
}
