//! The log: the entries after the last snapshot (in memory, but for applied ones past the log
//! cache, and for those a restart left on the driver's disk, which only that disk holds),
//! their terms, the commit and apply points, and the memberships the log holds.

use std::collections::VecDeque;

use crate::ids::{LogId, LogIndex, Term};
use crate::raft::entries_on_disk::EntriesOnDisk;
use crate::raft::entries_to_load::EntriesToLoad;
use crate::raft::entry::{Entry, Payload};
use crate::raft::membership::Membership;
use crate::raft::membership_log::MembershipLog;
use crate::raft::message::ConflictHint;
use crate::raft::term_runs::TermRuns;

/// The replicated log as this node holds it. Terms never decrease along the log, which lets
/// every term lookup be a binary search.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The last entry covered by the snapshot (`LogId::ZERO` without one).
    snapshot_last: LogId,
    /// The sizes (`Entry::size_bytes`) of the entries after the snapshot that are not in memory,
    /// from `snapshot_last.index + 1` on: applied and durable ones beyond the log cache, and
    /// those a restart left on the driver's disk (`Recovered::on_disk`), applied or not.
    evicted: VecDeque<u32>,
    /// The entries after those: `entries[0].index == snapshot_last.index + 1 + evicted.len()`.
    entries: VecDeque<Entry>,
    /// The terms of every entry after the snapshot, in memory or not.
    terms: TermRuns,
    /// Highest index known to be committed.
    committed: LogIndex,
    /// Highest index handed out to be applied.
    applied: LogIndex,
    /// Bytes of the entries held in memory (`Entry::size_bytes`).
    bytes: usize,
    /// Bytes of the entries no longer in memory (the sum of `evicted`).
    evicted_bytes: usize,
    /// Bytes of the applied entries after the snapshot, in memory or not: what compacting at
    /// `applied` would take out of the log.
    applied_bytes: usize,
    /// The membership at the snapshot point and those of the entries held, kept in step with
    /// every change of the entries.
    memberships: MembershipLog,
    /// The last entry of the batch of committed entries out of memory asked of the driver to
    /// apply (`Output::LoadEntries`), until it answers.
    loading: Option<LogIndex>,
    /// That batch, read back and checked, to hand out next for applying.
    loaded: Vec<Entry>,
}

/// What `append_from_leader` changed, for the persist that must record it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AppendChange {
    /// Entries from here on were dropped because they conflicted with the leader's.
    pub(crate) truncated_from: Option<LogIndex>,
    /// The first entry newly written.
    pub(crate) first_new: Option<LogIndex>,
}

impl RaftLog {
    /// A log recovered from a snapshot point, with `membership` in force there, the entries
    /// after it left on the driver's disk (`on_disk`, which starts right after it), and the
    /// consecutive entries after those.
    pub(crate) fn new(
        snapshot_last: LogId,
        membership: Membership,
        on_disk: EntriesOnDisk,
        entries: Vec<Entry>,
    ) -> RaftLog {
        debug_assert!(
            on_disk.first_index().is_none_or(|first| first == snapshot_last.index.next())
        );
        let (terms, evicted, on_disk_memberships) = on_disk.into_parts();
        let mut memberships = MembershipLog::new(snapshot_last.index, membership);
        for (id, membership) in on_disk_memberships {
            memberships.record(id, membership);
        }
        let mut log = RaftLog {
            snapshot_last,
            evicted_bytes: evicted.iter().map(|&size| size as usize).sum(),
            evicted,
            entries: VecDeque::with_capacity(entries.len()),
            terms,
            committed: snapshot_last.index,
            applied: snapshot_last.index,
            bytes: 0,
            applied_bytes: 0,
            memberships,
            loading: None,
            loaded: Vec::new(),
        };
        for entry in entries {
            log.append(entry);
        }
        log
    }

    /// Panics unless the log is well formed: `applied <= committed <= last`, the snapshot
    /// point applied, the entries consecutive after it with terms that never go back (checked
    /// at both ends, in constant time: the simulator checks after every step).
    pub(crate) fn check_invariants(&self) {
        let last = self.last_id();
        assert!(
            self.snapshot_last.index <= self.applied
                && self.applied <= self.committed
                && self.committed <= last.index,
            "snapshot {} applied {} committed {} last {}",
            self.snapshot_last,
            self.applied,
            self.committed,
            last
        );
        let held = self.entries.len() as u64;
        let evicted = self.evicted.len() as u64;
        let after_snapshot = held.checked_add(evicted).expect("fewer entries than u64::MAX");
        assert_eq!(last.index, self.snapshot_last.index.plus(after_snapshot), "a gap in the log");
        let applying_ends =
            self.loaded.first().zip(self.loaded.last()).map(|(f, l)| (f.index, l.index));
        let applying_ends = applying_ends.or(self.loading.map(|last| (self.applied.next(), last)));
        if let Some((first, last)) = applying_ends {
            assert!(
                first == self.applied.next() && last <= self.committed && last < self.first_held(),
                "a batch to apply from disk {first}..={last} astray (applied {}, first held {})",
                self.applied,
                self.first_held()
            );
        }
        if let Some(first) = self.entries.front() {
            assert_eq!(first.index, self.first_held(), "a gap after the entries evicted");
            assert!(
                self.snapshot_last.term <= first.term && first.term <= last.term,
                "terms go back along the log"
            );
            assert_eq!(self.terms.term_at(first.index), Some(first.term), "term runs astray");
        }
        if last.index > self.snapshot_last.index {
            assert_eq!(self.terms.term_at(last.index), Some(last.term), "term runs astray");
        }
        // Entries out of memory are all applied unless a restart left some on the disk.
        let evicted_applied = self.first_held().prev() <= self.applied;
        assert!(
            self.applied_bytes <= self.bytes.saturating_add(self.evicted_bytes)
                && (!evicted_applied || self.evicted_bytes <= self.applied_bytes),
            "applied bytes {} out of bounds: {} held, {} evicted",
            self.applied_bytes,
            self.bytes,
            self.evicted_bytes
        );
        self.check_memberships();
    }

    /// Panics unless every recorded membership is the payload of the entry it names, after the
    /// snapshot point and in log order (time linear in the membership entries held, which are
    /// few).
    fn check_memberships(&self) {
        let mut previous = self.memberships.base_index();
        assert!(previous <= self.snapshot_last.index, "a base membership after the snapshot");
        for (id, membership) in self.memberships.entries() {
            assert!(id.index > previous, "memberships out of order");
            previous = id.index;
            if id.index < self.first_held() {
                assert_eq!(self.term_at(id.index), Some(id.term), "a membership evicted astray");
                continue; // Evicted: the disk holds its entry.
            }
            let held = self.entry(id.index).filter(|entry| entry.id() == *id);
            assert!(
                held.is_some_and(|entry| entry.payload == Payload::Membership(membership.clone())),
                "the membership recorded at {id} is not the log's"
            );
        }
    }

    /// Bytes of the entries held in memory.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of the applied entries after the snapshot, in memory or not: what a snapshot at
    /// the applied index takes out of the log.
    pub(crate) fn applied_bytes(&self) -> usize {
        self.applied_bytes
    }

    /// Entries after the snapshot no longer in memory.
    pub(crate) fn evicted_len(&self) -> usize {
        self.evicted.len()
    }

    /// The first index held in memory (the one after the last, if none is).
    pub(crate) fn first_held(&self) -> LogIndex {
        self.snapshot_last.index.plus(self.evicted.len() as u64).next()
    }

    /// Drops from memory the oldest entries at or below `floor` (applied, and durable on the
    /// node's own disk, so that the driver can read them back from there) while the applied
    /// entries held weigh more than `budget` bytes. Their terms and sizes stay.
    pub(crate) fn evict_applied(&mut self, floor: LogIndex, budget: usize) {
        debug_assert!(floor <= self.applied);
        // Entries out of memory not yet applied (left on the disk at a restart) leave no
        // applied entry in memory: the difference is 0 then.
        while self.applied_bytes.saturating_sub(self.evicted_bytes) > budget
            && self.entries.front().is_some_and(|entry| entry.index <= floor)
        {
            let entry = self.entries.pop_front().expect("front exists");
            let size = entry.size_bytes();
            // One of 4 GiB or more (no message carries it) counts as 4 GiB once out of memory.
            let kept = u32::try_from(size).unwrap_or(u32::MAX);
            self.bytes -= size;
            self.applied_bytes -= size - kept as usize;
            self.evicted_bytes += kept as usize;
            self.evicted.push_back(kept);
        }
    }

    /// The last index of a batch of entries no longer in memory, from `from` on: at most
    /// `max_entries` and, beyond the first, at most `max_bytes`; `None` unless `from` is one of
    /// them. The batch stops where memory starts.
    pub(crate) fn evicted_batch(
        &self,
        from: LogIndex,
        max_entries: usize,
        max_bytes: usize,
    ) -> Option<LogIndex> {
        let offset = from.0.checked_sub(self.snapshot_last.index.next().0)?;
        let offset = usize::try_from(offset).ok().filter(|&offset| offset < self.evicted.len())?;
        let mut bytes = 0usize;
        let mut count = 0u64;
        for &size in self.evicted.iter().skip(offset).take(max_entries) {
            bytes = bytes.saturating_add(size as usize);
            if count > 0 && bytes > max_bytes {
                break;
            }
            count += 1;
        }
        count.checked_sub(1).map(|after_first| from.plus(after_first))
    }

    /// Drops the entries up to `last` (applied, and now covered by a snapshot of this node's
    /// own state machine).
    pub(crate) fn compact_to(&mut self, last: LogId) -> VecDeque<Entry> {
        debug_assert!(last.index <= self.applied && self.contains(last));
        let dropped = self.drop_through(last.index);
        self.memberships.compact_to(last.index);
        self.terms.compact_to(last.index);
        self.snapshot_last = last;
        dropped
    }

    /// Replaces the log up to `last` by a snapshot received from the leader, with `membership`
    /// in force there. Entries after it are kept if the log holds `last` itself (they then
    /// match the leader's); otherwise the whole log goes. Returns whether entries after `last`
    /// were kept, and the entries dropped (for the caller to free where it likes).
    pub(crate) fn install_snapshot(
        &mut self,
        last: LogId,
        membership: Membership,
    ) -> (bool, VecDeque<Entry>) {
        let keep_suffix = self.contains(last);
        let dropped = if keep_suffix {
            let dropped = self.drop_through(last.index);
            self.terms.compact_to(last.index);
            dropped
        } else {
            self.bytes = 0;
            self.evicted.clear();
            self.evicted_bytes = 0;
            self.terms.clear();
            std::mem::take(&mut self.entries)
        };
        self.memberships.install(last.index, membership, keep_suffix);
        self.loading = None;
        self.loaded.clear();
        self.snapshot_last = last;
        self.committed = self.committed.max(last.index);
        self.applied = last.index;
        self.applied_bytes = 0;
        (keep_suffix, dropped)
    }

    /// Takes out the entries up to and including `index`, and returns them, in time in
    /// proportion to the fewer of those taken and those kept: there may be a whole snapshot
    /// threshold's worth to take. Many leave with the log's buffer, and the bytes they weighed
    /// are counted from the entries kept; those kept move to a new buffer with room for as many
    /// entries as the log held: what the log will likely hold again by the next compaction.
    /// Room reserved is address space, not memory, until entries fill it, so the two buffers
    /// weigh one full buffer until the caller frees the old one; and the new one need not grow
    /// step by step, each step copying it whole (growing in the allocator's heap, and leaving
    /// the old copy there free but resident: measured, it cost more memory than it saved).
    /// It never stays larger than what the log held last.
    fn drop_through(&mut self, index: LogIndex) -> VecDeque<Entry> {
        self.drop_evicted_through(index);
        let count = self.entries.partition_point(|entry| entry.index <= index);
        let bytes_of =
            |entries: &VecDeque<Entry>| -> usize { entries.iter().map(Entry::size_bytes).sum() };
        let (dropped, dropped_bytes) = if count <= self.entries.len() - count {
            let dropped: VecDeque<Entry> = self.entries.drain(..count).collect();
            let bytes = bytes_of(&dropped);
            (dropped, bytes)
        } else {
            let mut kept = VecDeque::with_capacity(self.entries.len());
            kept.extend(self.entries.drain(count..));
            let bytes = self.bytes - bytes_of(&kept);
            (std::mem::replace(&mut self.entries, kept), bytes)
        };
        let applied = self.applied;
        let unapplied_dropped: usize = dropped
            .iter()
            .rev()
            .take_while(|entry| entry.index > applied)
            .map(Entry::size_bytes)
            .sum();
        self.bytes -= dropped_bytes;
        self.applied_bytes -= dropped_bytes - unapplied_dropped;
        dropped
    }

    /// Forgets the sizes of the entries out of memory up to `index`.
    fn drop_evicted_through(&mut self, index: LogIndex) {
        let count_to = |index: LogIndex| {
            let after_snapshot = index.0.saturating_sub(self.snapshot_last.index.0);
            usize::try_from(after_snapshot).unwrap_or(usize::MAX).min(self.evicted.len())
        };
        let (count, applied_count) = (count_to(index), count_to(self.applied));
        let (mut bytes, mut applied_bytes) = (0usize, 0usize);
        for (position, size) in self.evicted.drain(..count).enumerate() {
            bytes += size as usize;
            if position < applied_count {
                applied_bytes += size as usize;
            }
        }
        self.evicted_bytes -= bytes;
        self.applied_bytes -= applied_bytes;
    }

    pub(crate) fn snapshot_last(&self) -> LogId {
        self.snapshot_last
    }

    pub(crate) fn committed(&self) -> LogIndex {
        self.committed
    }

    pub(crate) fn applied(&self) -> LogIndex {
        self.applied
    }

    pub(crate) fn last_id(&self) -> LogId {
        match self.entries.back() {
            Some(entry) => entry.id(),
            None if self.evicted.is_empty() => self.snapshot_last,
            None => {
                let last = self.first_held().prev();
                LogId::new(last, self.terms.term_at(last).expect("runs cover the log"))
            }
        }
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.last_id().index
    }

    /// Entries held in memory (after the snapshot).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The term of the entry at `index`, if this log still knows it (the snapshot point counts,
    /// and so do entries out of memory; entries compacted into the snapshot and entries past the
    /// end do not).
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_last.index {
            return Some(self.snapshot_last.term);
        }
        if index < self.snapshot_last.index || index > self.last_index() {
            return None;
        }
        self.terms.term_at(index)
    }

    /// The entry at `index`, if held in memory.
    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let offset = index.0.checked_sub(self.first_held().0)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Whether this log holds the entry `id` (and so, by log matching, all before it).
    pub(crate) fn contains(&self, id: LogId) -> bool {
        self.term_at(id.index) == Some(id.term)
    }

    /// Appends an entry the leader created; it must follow the last one.
    pub(crate) fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index().next());
        debug_assert!(entry.term >= self.last_id().term);
        self.bytes += entry.size_bytes();
        if let Payload::Membership(membership) = &entry.payload {
            self.memberships.record(entry.id(), membership.clone());
        }
        self.terms.push(entry.index, entry.term);
        self.entries.push_back(entry);
    }

    fn extend(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.append(entry.clone());
        }
    }

    /// Adds the leader's `entries`, which follow an entry this log holds. Entries already held
    /// are kept as they are (a duplicated or reordered message must never truncate the log);
    /// from the first conflicting entry on, the log is replaced by the leader's.
    ///
    /// # Panics
    /// If a conflicting entry lies at or below the commit index: callers pass only entries
    /// after the commit point (an append whose predecessor is below it is answered without
    /// touching the log), and a committed entry is the same in every log.
    pub(crate) fn append_from_leader(&mut self, entries: &[Entry]) -> AppendChange {
        for (position, entry) in entries.iter().enumerate() {
            if entry.index <= self.snapshot_last.index {
                continue; // Covered by the snapshot, hence committed and identical.
            }
            match self.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    assert!(
                        entry.index > self.committed,
                        "entry {} conflicts with the committed log up to {}",
                        entry.id(),
                        self.committed
                    );
                    self.truncate_from(entry.index);
                    self.extend(&entries[position..]);
                    return AppendChange {
                        truncated_from: Some(entry.index),
                        first_new: Some(entry.index),
                    };
                }
                None => {
                    self.extend(&entries[position..]);
                    return AppendChange { truncated_from: None, first_new: Some(entry.index) };
                }
            }
        }
        AppendChange::default()
    }

    fn truncate_from(&mut self, index: LogIndex) {
        assert!(index > self.applied, "truncating an applied entry at {index}");
        self.terms.truncate_from(index);
        while self.entries.back().is_some_and(|entry| entry.index >= index) {
            let entry = self.entries.pop_back().expect("back exists");
            self.bytes -= entry.size_bytes();
        }
        // Into the entries a restart left on the disk (unapplied, so not counted applied).
        let kept = index.0 - self.snapshot_last.index.next().0;
        let kept = usize::try_from(kept).expect("the log fits in memory");
        if kept < self.evicted.len() {
            self.evicted_bytes -=
                self.evicted.drain(kept..).map(|size| size as usize).sum::<usize>();
        }
        self.memberships.truncate_from(index);
    }

    /// The membership in force: the latest the log holds, committed or not.
    pub(crate) fn membership(&self) -> &Membership {
        self.memberships.latest().1
    }

    /// The index of the entry the membership in force comes from (the snapshot point, or 0,
    /// if the log holds no membership entry).
    pub(crate) fn membership_index(&self) -> LogIndex {
        self.memberships.latest().0
    }

    /// The membership the one in force replaced, if the log still knows it.
    pub(crate) fn previous_membership(&self) -> Option<&Membership> {
        self.memberships.previous()
    }

    /// The membership in force at the snapshot point.
    pub(crate) fn snapshot_membership(&self) -> &Membership {
        self.memberships.base()
    }

    /// The membership in force at `index`, which the log holds or is the snapshot point.
    pub(crate) fn membership_at(&self, index: LogIndex) -> &Membership {
        self.memberships.at(index)
    }

    /// How many membership entries lie after the commit index.
    pub(crate) fn uncommitted_memberships(&self) -> usize {
        self.memberships.count_after(self.committed)
    }

    /// Where a leader should look next when this log holds no entry at `prev_index` with the
    /// term the leader expected.
    pub(crate) fn conflict_hint(&self, prev_index: LogIndex) -> ConflictHint {
        match self.term_at(prev_index) {
            Some(term) if prev_index > self.snapshot_last.index => {
                ConflictHint { term: Some(term), first_index: self.first_index_of_term(term) }
            }
            _ => ConflictHint { term: None, first_index: self.last_index().next() },
        }
    }

    /// The first index after the snapshot whose entry has `term` (or a later term), the one
    /// after the last if none has.
    fn first_index_of_term(&self, term: Term) -> LogIndex {
        let after_snapshot = self.snapshot_last.index.next();
        match self.terms.first_index_from(term) {
            Some(first) if self.last_index() >= after_snapshot => first.max(after_snapshot),
            _ => self.last_index().next(),
        }
    }

    /// The last index whose entry has exactly `term`, if this log has one.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        let last = self.last_index();
        match self.terms.last_index_of(term, last) {
            Some(end) if end > self.snapshot_last.index => Some(end),
            _ => (self.snapshot_last.term == term && self.snapshot_last.index.0 > 0)
                .then_some(self.snapshot_last.index),
        }
    }

    /// Copies of the entries from `from` on (or from the first held, if `from` is no longer in
    /// memory), at most `max_entries` and, beyond the first, at most `max_bytes` in all.
    pub(crate) fn slice(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let offset = from.0.saturating_sub(self.first_held().0);
        let mut bytes = 0;
        let mut batch = Vec::new();
        for entry in self.entries.iter().skip(offset as usize).take(max_entries) {
            bytes += entry.size_bytes();
            if !batch.is_empty() && bytes > max_bytes {
                break;
            }
            batch.push(entry.clone());
        }
        batch
    }

    /// Moves the commit point forward to `index` (never backward). Returns whether it moved.
    ///
    /// # Panics
    /// If `index` lies past the end of the log: the callers commit what a majority holds, or
    /// what the leader committed of the entries it sent, never more than the log.
    pub(crate) fn commit_to(&mut self, index: LogIndex) -> bool {
        assert!(
            index <= self.last_index(),
            "commit {index} past the end of the log at {}",
            self.last_index()
        );
        if index > self.committed {
            self.committed = index;
            true
        } else {
            false
        }
    }

    /// Committed entries not yet handed out for applying, at most `max_entries`; marks them
    /// handed out. Those out of memory come from the disk first (see
    /// [`entries_to_load`](Self::entries_to_load)): none until they are loaded.
    pub(crate) fn take_committed(&mut self, max_entries: usize) -> Vec<Entry> {
        if let Some(last) = self.loaded.last().map(|entry| entry.index) {
            let batch = std::mem::take(&mut self.loaded);
            self.applied = last;
            self.applied_bytes += batch.iter().map(size_out_of_memory).sum::<usize>();
            return batch;
        }
        if self.applied.next() < self.first_held() {
            return Vec::new();
        }
        let count = (self.committed.0 - self.applied.0).min(max_entries as u64);
        let batch = self.slice(self.applied.next(), count as usize, usize::MAX);
        if let Some(last) = batch.last() {
            self.applied = last.index;
            self.applied_bytes += batch.iter().map(Entry::size_bytes).sum::<usize>();
        }
        batch
    }

    /// The next batch of committed entries to apply that are out of memory (left on the
    /// driver's disk at a restart), for the driver to read back: at most `max_entries` and,
    /// beyond the first, `max_bytes`. `None` if the next entry to apply is in memory or not
    /// committed, or while a batch is asked for and not yet handed out.
    pub(crate) fn entries_to_load(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
    ) -> Option<EntriesToLoad> {
        if self.loading.is_some() || !self.loaded.is_empty() || self.applied >= self.committed {
            return None;
        }
        let first = self.applied.next();
        let last = self.evicted_batch(first, max_entries, max_bytes)?.min(self.committed);
        self.loading = Some(last);
        let term = self.terms.term_at(last).expect("the log knows its terms");
        Some(EntriesToLoad { first, last: LogId::new(last, term) })
    }

    /// The driver read back `entries` for the batch asked for: kept to hand out if they are
    /// that batch, each entry with the term, size and membership the log knows it by. Returns
    /// whether they were; if not, the batch is asked for again.
    pub(crate) fn on_loaded(&mut self, entries: Vec<Entry>) -> bool {
        let Some(last) = self.loading.take() else { return false };
        let term = self.terms.term_at(last).expect("the log knows its terms");
        let asked = EntriesToLoad { first: self.applied.next(), last: LogId::new(last, term) };
        let known = |entry: &Entry| {
            let offset = entry.index.0 - self.snapshot_last.index.next().0;
            let size = usize::try_from(offset).ok().and_then(|offset| self.evicted.get(offset));
            let membership = match &entry.payload {
                Payload::Membership(membership) => Some(membership),
                Payload::Noop | Payload::Command(_) => None,
            };
            self.terms.term_at(entry.index) == Some(entry.term)
                && size.is_some_and(|&size| size as usize == size_out_of_memory(entry))
                && self.memberships.recorded(entry.id()) == membership
        };
        if !asked.matches(&entries) || !entries.iter().all(known) {
            return false;
        }
        self.loaded = entries;
        true
    }
}

/// What an entry weighs once out of memory (its size, capped at 4 GiB: see `evicted`).
fn size_out_of_memory(entry: &Entry) -> usize {
    u32::try_from(entry.size_bytes()).unwrap_or(u32::MAX) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::entry::Payload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Noop }
    }

    fn log_of_terms(terms: &[u64]) -> RaftLog {
        let entries = terms.iter().enumerate().map(|(i, &t)| entry(i as u64 + 1, t)).collect();
        RaftLog::new(LogId::ZERO, Membership::default(), EntriesOnDisk::default(), entries)
    }

    #[test]
    fn terms_are_looked_up_inside_and_outside_the_log() {
        let log = log_of_terms(&[1, 1, 2]);
        assert_eq!(log.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(4)), None);
        assert_eq!(log.last_id(), LogId::new(LogIndex(3), Term(2)));
        assert_eq!(log.entry(LogIndex(3)).map(ToString::to_string).as_deref(), Some("3/2 noop"));
    }

    #[test]
    fn duplicated_append_keeps_longer_log() {
        let mut log = log_of_terms(&[1, 1, 1, 1]);
        let change = log.append_from_leader(&[entry(2, 1), entry(3, 1)]);
        assert_eq!(change, AppendChange::default());
        assert_eq!(log.last_index(), LogIndex(4));
    }

    #[test]
    fn conflicting_append_truncates_from_first_conflict() {
        let mut log = log_of_terms(&[1, 1, 1, 1]);
        let change = log.append_from_leader(&[entry(2, 1), entry(3, 2)]);
        assert_eq!(change.truncated_from, Some(LogIndex(3)));
        assert_eq!(change.first_new, Some(LogIndex(3)));
        assert_eq!(log.last_id(), LogId::new(LogIndex(3), Term(2)));
        assert_eq!(log.bytes(), 3 * 24, "the dropped entries no longer count");
    }

    #[test]
    #[should_panic(expected = "conflicts with the committed log")]
    fn overwriting_a_committed_entry_is_a_bug() {
        let mut log = log_of_terms(&[1, 1]);
        log.commit_to(LogIndex(2));
        log.append_from_leader(&[entry(2, 3)]);
    }

    #[test]
    fn conflict_hint_names_first_index_of_the_conflicting_term() {
        let log = log_of_terms(&[1, 2, 2, 2, 3]);
        assert_eq!(
            log.conflict_hint(LogIndex(4)),
            ConflictHint { term: Some(Term(2)), first_index: LogIndex(2) }
        );
        assert_eq!(
            log.conflict_hint(LogIndex(9)),
            ConflictHint { term: None, first_index: LogIndex(6) }
        );
    }

    #[test]
    fn last_index_of_term_finds_the_end_of_a_term() {
        let log = log_of_terms(&[1, 2, 2, 4]);
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(3)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert_eq!(log.last_index_of_term(Term(5)), None);
        assert_eq!(log.last_index_of_term(Term(1)), Some(LogIndex(1)));
    }

    #[test]
    fn the_snapshot_point_ends_its_term_when_no_entry_after_it_has_that_term() {
        let mut log = log_of_terms(&[1, 2, 2, 3]);
        log.commit_to(LogIndex(3));
        log.take_committed(10);
        log.compact_to(LogId::new(LogIndex(3), Term(2)));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(3)));
        assert_eq!(log.last_index_of_term(Term(1)), None, "compacted away");
        assert_eq!(log.last_index_of_term(Term(3)), Some(LogIndex(4)));
        let empty =
            RaftLog::new(LogId::ZERO, Membership::default(), EntriesOnDisk::default(), Vec::new());
        assert_eq!(empty.last_index_of_term(Term(0)), None, "index 0 is before the log");
        // Probing at the snapshot point: the hint says where the log ends, not the term there.
        assert_eq!(
            log.conflict_hint(LogIndex(3)),
            ConflictHint { term: None, first_index: LogIndex(5) }
        );
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn slice_respects_entry_and_byte_limits_but_sends_at_least_one() {
        let log = log_of_terms(&[1, 1, 1, 1]);
        // Noops weigh 24 bytes: a limit of exactly two holds two.
        assert_eq!(log.slice(LogIndex(1), 10, 48).len(), 2);
        assert_eq!(log.slice(LogIndex(1), 10, 47).len(), 1);
        assert_eq!(log.slice(LogIndex(2), 2, usize::MAX).len(), 2);
        assert_eq!(log.slice(LogIndex(1), 10, 1).len(), 1);
        assert!(log.slice(LogIndex(5), 10, 100).is_empty());
    }

    #[test]
    fn compaction_keeps_the_snapshot_point_for_the_next_consistency_check() {
        let mut log = log_of_terms(&[1, 1, 2, 2]);
        log.commit_to(LogIndex(3));
        log.take_committed(10);
        assert_eq!(log.applied_bytes(), 3 * 24);
        log.compact_to(LogId::new(LogIndex(3), Term(2)));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(2)));
        assert_eq!(log.term_at(LogIndex(2)), None);
        assert_eq!(log.len(), 1);
        assert_eq!((log.bytes(), log.applied_bytes()), (24, 0));
        assert_eq!(log.slice(LogIndex(1), 10, usize::MAX).len(), 1, "from the first held");
    }

    #[test]
    fn compaction_hands_back_the_entries_it_took_out_whichever_part_is_shorter() {
        for through in 1..=4 {
            let mut log = log_of_terms(&[1, 1, 1, 1, 1]);
            log.commit_to(LogIndex(5));
            log.take_committed(4);
            let taken = log.compact_to(LogId::new(LogIndex(through), Term(1)));
            let indexes: Vec<u64> = taken.iter().map(|entry| entry.index.0).collect();
            assert_eq!(indexes, (1..=through).collect::<Vec<u64>>());
            let held = 5 - through as usize;
            let applied = 4 - through as usize;
            assert_eq!((log.bytes(), log.applied_bytes()), (held * 24, applied * 24), "{through}");
            log.check_invariants();
        }
    }

    #[test]
    fn compacting_most_of_the_log_leaves_room_for_what_it_held_and_no_more() {
        let mut log = log_of_terms(&[1; 1000]);
        // A buffer grown far past what the log holds now (a burst of appends long ago).
        log.entries.reserve(100_000);
        log.commit_to(LogIndex(1000));
        log.take_committed(1000);
        let taken = log.compact_to(LogId::new(LogIndex(990), Term(1)));
        assert_eq!((taken.len(), log.len()), (990, 10));
        let capacity = log.entries.capacity();
        assert!((1000..2000).contains(&capacity), "capacity {capacity}");
        log.check_invariants();
    }

    #[test]
    fn compacting_part_of_the_applied_entries_keeps_the_rest_counted_as_applied() {
        let mut log = log_of_terms(&[1, 1, 1, 1]);
        assert_eq!(log.len(), 4);
        log.commit_to(LogIndex(4));
        log.take_committed(10);
        log.compact_to(LogId::new(LogIndex(2), Term(1)));
        assert_eq!(log.len(), 2);
        assert_eq!((log.bytes(), log.applied_bytes()), (2 * 24, 2 * 24));
    }

    #[test]
    fn an_installed_snapshot_keeps_only_a_matching_suffix() {
        let mut matching = log_of_terms(&[1, 1, 2, 2]);
        let (kept, dropped) =
            matching.install_snapshot(LogId::new(LogIndex(2), Term(1)), Membership::default());
        assert!(kept);
        assert_eq!(dropped.iter().map(|entry| entry.index.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(matching.last_index(), LogIndex(4));
        assert_eq!((matching.committed(), matching.applied()), (LogIndex(2), LogIndex(2)));

        let mut conflicting = log_of_terms(&[1, 1, 2, 2]);
        let membership = Membership::default();
        let (kept, dropped) =
            conflicting.install_snapshot(LogId::new(LogIndex(3), Term(3)), membership);
        assert!(!kept);
        assert_eq!(dropped.len(), 4, "the whole log is handed back");
        assert_eq!(conflicting.last_id(), LogId::new(LogIndex(3), Term(3)));
        assert_eq!(conflicting.bytes(), 0);
    }

    fn membership_entry(index: u64, term: u64, voters: &[u64]) -> Entry {
        let membership = Membership::with_voters(voters.iter().map(|&id| crate::NodeId(id)));
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Membership(membership) }
    }

    fn voters(membership: &Membership) -> Vec<u64> {
        membership.voters().iter().map(|id| id.0).collect()
    }

    #[test]
    fn the_latest_membership_is_in_force_and_a_truncated_one_falls_back() {
        let start = Membership::with_voters([crate::NodeId(1)]);
        let entries = vec![entry(1, 1), membership_entry(2, 1, &[1, 2]), entry(3, 1)];
        let mut log = RaftLog::new(LogId::ZERO, start, EntriesOnDisk::default(), entries);
        assert_eq!(voters(log.membership()), [1, 2]);
        assert_eq!(voters(log.membership_at(LogIndex(1))), [1]);
        assert_eq!(log.membership_index(), LogIndex(2));
        log.append(membership_entry(4, 1, &[1, 2, 3]));
        assert_eq!(voters(log.previous_membership().unwrap()), [1, 2]);
        assert_eq!(log.uncommitted_memberships(), 2);
        log.commit_to(LogIndex(2));
        assert_eq!(log.uncommitted_memberships(), 1);
        // A new leader's entries replace the entry at 4: the membership at 2 is in force again.
        let change = log.append_from_leader(&[entry(4, 2)]);
        assert_eq!(change.truncated_from, Some(LogIndex(4)));
        assert_eq!(voters(log.membership()), [1, 2]);
        assert_eq!(log.membership_index(), LogIndex(2));
        log.check_invariants();
    }

    #[test]
    fn compaction_and_snapshots_keep_the_membership_at_the_snapshot_point() {
        let start = Membership::with_voters([crate::NodeId(1)]);
        let entries = vec![membership_entry(1, 1, &[1, 2]), entry(2, 1), entry(3, 1)];
        let mut log = RaftLog::new(LogId::ZERO, start, EntriesOnDisk::default(), entries);
        log.commit_to(LogIndex(3));
        log.take_committed(10);
        log.compact_to(LogId::new(LogIndex(2), Term(1)));
        assert_eq!(voters(log.snapshot_membership()), [1, 2]);
        assert_eq!(log.membership_index(), LogIndex(1), "still the entry's index");
        assert_eq!(log.previous_membership(), None, "compacted away");
        log.check_invariants();
        let leaders = Membership::with_voters([crate::NodeId(7)]);
        assert!(!log.install_snapshot(LogId::new(LogIndex(9), Term(2)), leaders.clone()).0);
        assert_eq!(log.membership(), &leaders);
        assert_eq!(log.membership_index(), LogIndex(9));
        log.check_invariants();
    }

    #[test]
    #[should_panic(expected = "past the end of the log")]
    fn a_commit_past_the_log_is_a_bug() {
        log_of_terms(&[1, 1]).commit_to(LogIndex(3));
    }

    /// A log of `terms`, all committed and applied, with the applied ones beyond `budget` bytes
    /// evicted up to `floor`.
    fn evicted_log(terms: &[u64], floor: u64, budget: usize) -> RaftLog {
        let mut log = log_of_terms(terms);
        log.commit_to(log.last_index());
        log.take_committed(usize::MAX);
        log.evict_applied(LogIndex(floor), budget);
        log.check_invariants();
        log
    }

    #[test]
    fn eviction_keeps_the_budget_of_applied_entries_and_nothing_past_the_floor() {
        let log = evicted_log(&[1, 1, 2, 2, 2, 3], 6, 2 * 24);
        assert_eq!((log.evicted_len(), log.len(), log.first_held()), (4, 2, LogIndex(5)));
        assert_eq!((log.bytes(), log.applied_bytes()), (2 * 24, 6 * 24), "still counted applied");
        assert!(log.entry(LogIndex(4)).is_none() && log.entry(LogIndex(5)).is_some());
        let floored = evicted_log(&[1, 1, 2, 2, 2, 3], 2, 0);
        assert_eq!(floored.first_held(), LogIndex(3), "nothing past the floor goes");
        // Unapplied entries never go, whatever the floor says.
        let mut unapplied = log_of_terms(&[1, 1, 1]);
        unapplied.commit_to(LogIndex(3));
        unapplied.take_committed(1);
        unapplied.evict_applied(LogIndex(1), 0);
        assert_eq!(unapplied.first_held(), LogIndex(2));
    }

    #[test]
    fn terms_and_hints_reach_across_evicted_entries() {
        let log = evicted_log(&[1, 1, 2, 2, 2, 3, 3], 7, 24);
        assert_eq!(log.first_held(), LogIndex(7));
        let terms: Vec<Option<u64>> =
            (0..=8).map(|i| log.term_at(LogIndex(i)).map(|term| term.0)).collect();
        assert_eq!(
            terms,
            [Some(0), Some(1), Some(1), Some(2), Some(2), Some(2), Some(3), Some(3), None]
        );
        assert!(log.contains(LogId::new(LogIndex(4), Term(2))));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(1)), Some(LogIndex(2)));
        assert_eq!(
            log.conflict_hint(LogIndex(5)),
            ConflictHint { term: Some(Term(2)), first_index: LogIndex(3) }
        );
        // Everything evicted: the last entry's id comes from the terms kept.
        let all = evicted_log(&[1, 2, 2], 3, 0);
        assert_eq!((all.len(), all.last_id()), (0, LogId::new(LogIndex(3), Term(2))));
    }

    #[test]
    fn a_batch_from_disk_obeys_the_limits_and_stops_where_memory_starts() {
        let log = evicted_log(&[1; 6], 6, 2 * 24);
        assert_eq!(log.evicted_batch(LogIndex(1), 10, usize::MAX), Some(LogIndex(4)));
        assert_eq!(log.evicted_batch(LogIndex(2), 2, usize::MAX), Some(LogIndex(3)));
        assert_eq!(log.evicted_batch(LogIndex(1), 10, 48), Some(LogIndex(2)));
        assert_eq!(log.evicted_batch(LogIndex(3), 10, 1), Some(LogIndex(3)), "one at least");
        assert_eq!(log.evicted_batch(LogIndex(5), 10, 100), None, "in memory");
        assert_eq!(log.evicted_batch(LogIndex(0), 10, 100), None, "the snapshot point");
    }

    #[test]
    fn compaction_forgets_evicted_entries_it_covers_wherever_it_falls() {
        for through in 1..=6 {
            let mut log = evicted_log(&[1, 1, 1, 2, 2, 2], 6, 2 * 24);
            log.compact_to(LogId::new(LogIndex(through), Term(if through <= 3 { 1 } else { 2 })));
            log.check_invariants();
            let left = 6 - through as usize;
            assert_eq!(log.applied_bytes(), left * 24, "{through}");
            assert_eq!(log.evicted_len(), 4usize.saturating_sub(through as usize), "{through}");
            assert_eq!(log.last_id(), LogId::new(LogIndex(6), Term(2)));
            assert!(log.term_at(LogIndex(through)).is_some(), "the snapshot point");
        }
        let mut installed = evicted_log(&[1, 1, 2, 2], 4, 0);
        let (kept, _) =
            installed.install_snapshot(LogId::new(LogIndex(9), Term(3)), Membership::default());
        assert!(!kept);
        assert_eq!((installed.evicted_len(), installed.applied_bytes()), (0, 0));
        installed.check_invariants();
    }

    #[test]
    #[should_panic(expected = "truncating an applied entry")]
    fn truncating_into_evicted_entries_is_a_bug() {
        let mut log = evicted_log(&[1, 1, 1], 3, 0);
        log.truncate_from(LogIndex(2));
    }

    #[test]
    fn committed_entries_are_handed_out_once() {
        let mut log = log_of_terms(&[1, 1, 1]);
        assert!(log.commit_to(LogIndex(3)));
        assert_eq!(log.committed(), LogIndex(3));
        assert_eq!(log.take_committed(2).len(), 2);
        assert_eq!(log.take_committed(10).len(), 1);
        assert!(log.take_committed(10).is_empty());
        assert!(!log.commit_to(LogIndex(1)));
    }

    /// A log restarted with `on_disk` left on the driver's disk and `held` in memory after.
    fn restarted_log(on_disk: &[Entry], held: Vec<Entry>) -> RaftLog {
        let mut described = EntriesOnDisk::default();
        on_disk.iter().for_each(|entry| described.push(entry));
        let log = RaftLog::new(LogId::ZERO, Membership::default(), described, held);
        log.check_invariants();
        log
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|entry| entry.index.0).collect()
    }

    #[test]
    fn a_restarted_log_applies_the_entries_left_on_disk_first_loading_them_in_batches() {
        let on_disk = [entry(1, 1), entry(2, 1), membership_entry(3, 2, &[1, 2]), entry(4, 2)];
        let mut log = restarted_log(&on_disk, vec![entry(5, 2), entry(6, 2)]);
        assert_eq!((log.evicted_len(), log.len(), log.last_id().index), (4, 2, LogIndex(6)));
        assert_eq!(voters(log.membership()), [1, 2], "memberships on disk are in force");
        assert_eq!(log.entries_to_load(10, usize::MAX), None, "nothing committed yet");
        log.commit_to(LogIndex(6));
        assert!(log.take_committed(10).is_empty(), "the next one is on disk");
        let first = log.entries_to_load(2, usize::MAX).expect("a batch");
        assert_eq!((first.first, first.last), (LogIndex(1), LogId::new(LogIndex(2), Term(1))));
        assert_eq!(log.entries_to_load(2, usize::MAX), None, "one batch at a time");
        log.check_invariants();
        assert!(log.on_loaded(on_disk[..2].to_vec()));
        assert_eq!(indexes(&log.take_committed(10)), [1, 2]);
        assert_eq!((log.applied(), log.applied_bytes()), (LogIndex(2), 2 * 24));
        log.check_invariants();
        let second = log.entries_to_load(10, usize::MAX).expect("the rest on disk");
        assert_eq!(second.last, LogId::new(LogIndex(4), Term(2)), "stops where memory starts");
        assert!(log.on_loaded(on_disk[2..].to_vec()));
        assert_eq!(indexes(&log.take_committed(10)), [3, 4]);
        assert_eq!(indexes(&log.take_committed(10)), [5, 6], "then from memory");
        assert_eq!(
            log.applied_bytes(),
            on_disk.iter().chain([&entry(5, 2), &entry(6, 2)]).map(Entry::size_bytes).sum()
        );
        log.evict_applied(LogIndex(6), 24);
        assert_eq!((log.evicted_len(), log.len()), (5, 1));
        log.check_invariants();
    }

    #[test]
    fn loaded_entries_other_than_the_log_knows_are_refused_and_asked_for_again() {
        let on_disk = [entry(1, 1), membership_entry(2, 1, &[1, 2]), entry(3, 1)];
        let mut log = restarted_log(&on_disk, Vec::new());
        assert!(!log.on_loaded(on_disk.to_vec()), "not asked for");
        log.commit_to(LogIndex(3));
        let asked = log.entries_to_load(10, usize::MAX).expect("a batch");
        let command = Entry { payload: Payload::Command(vec![1]), ..entry(1, 1) };
        let another_membership = membership_entry(2, 1, &[1, 3]);
        let wrong = [
            vec![command, on_disk[1].clone(), on_disk[2].clone()],
            vec![on_disk[0].clone(), another_membership, on_disk[2].clone()],
            vec![on_disk[0].clone(), entry(2, 1), on_disk[2].clone()],
            on_disk[..2].to_vec(),
        ];
        for entries in wrong {
            assert!(!log.on_loaded(entries), "refused");
            assert_eq!(log.entries_to_load(10, usize::MAX), Some(asked), "asked again");
            assert!(log.take_committed(10).is_empty(), "nothing applied");
        }
        assert!(log.on_loaded(on_disk.to_vec()));
        assert_eq!(log.take_committed(10).len(), 3);
        log.check_invariants();
    }

    #[test]
    fn a_leader_may_truncate_entries_left_on_disk_that_are_not_committed() {
        let mut log = restarted_log(&[entry(1, 1), entry(2, 1), entry(3, 1)], vec![entry(4, 1)]);
        log.commit_to(LogIndex(1));
        let change = log.append_from_leader(&[entry(2, 1), entry(3, 2)]);
        assert_eq!(change.truncated_from, Some(LogIndex(3)));
        assert_eq!((log.evicted_len(), log.len(), log.bytes()), (2, 1, 24));
        assert_eq!(log.last_id(), LogId::new(LogIndex(3), Term(2)));
        log.check_invariants();
        let mut all_on_disk = restarted_log(&[entry(1, 1), entry(2, 1)], Vec::new());
        all_on_disk.append_from_leader(&[entry(1, 2)]);
        assert_eq!((all_on_disk.evicted_len(), all_on_disk.len()), (0, 1));
        all_on_disk.check_invariants();
    }

    #[test]
    fn a_snapshot_installed_over_entries_left_on_disk_keeps_those_after_it_to_load() {
        let on_disk = [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)];
        let mut log = restarted_log(&on_disk, Vec::new());
        log.commit_to(LogIndex(4));
        log.entries_to_load(1, usize::MAX).expect("a batch");
        let (kept, _) =
            log.install_snapshot(LogId::new(LogIndex(2), Term(1)), Membership::default());
        assert!(kept);
        assert_eq!((log.evicted_len(), log.applied(), log.applied_bytes()), (2, LogIndex(2), 0));
        log.check_invariants();
        assert!(!log.on_loaded(on_disk[..1].to_vec()), "the batch asked for before is gone");
        let asked = log.entries_to_load(10, usize::MAX).expect("what follows the snapshot");
        assert_eq!((asked.first, asked.last.index), (LogIndex(3), LogIndex(4)));
        assert!(log.on_loaded(on_disk[2..].to_vec()));
        assert_eq!(indexes(&log.take_committed(10)), [3, 4]);
        log.compact_to(LogId::new(LogIndex(3), Term(1)));
        assert_eq!((log.evicted_len(), log.applied_bytes()), (1, 24));
        log.check_invariants();
    }
}
