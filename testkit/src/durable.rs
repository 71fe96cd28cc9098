//! A model of what a node's disk holds once its persists are durable: every persist applied
//! in order, exactly as the contract of `Persist` says, and what a restart recovers from it.

use raftkv_core::LogIndex;
use raftkv_core::raft::{
    ChunkToSend, Entry, HardState, PartialSnapshot, Persist, ReceivedChunk, Recovered, Snapshot,
};

/// The durable state of one node: what it may rely on after a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The last durable snapshot.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, consecutive.
    pub entries: Vec<Entry>,
    /// The snapshot being received from a leader, as far as it is durable.
    pub received_snapshot: Option<PartialSnapshot>,
    /// Its bytes, from the first on, when this model saw every chunk of it (not when it was
    /// rebuilt from a `Recovered`, which holds only how far it got).
    pub received_data: Option<ReceivedChunk>,
}

impl Durable {
    /// What a node recovered: from there on, its persists apply to it. Every entry must be
    /// there (`Recovered::on_disk` empty): a model holds them all.
    pub fn recovered(recovered: &Recovered) -> Durable {
        assert!(recovered.on_disk.is_empty(), "a model of the disk holds every entry");
        Durable {
            hard_state: recovered.hard_state,
            snapshot: recovered.snapshot.clone(),
            entries: recovered.entries.clone(),
            received_snapshot: recovered.partial_snapshot,
            received_data: None,
        }
    }

    /// What a node restarting from this state recovers.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            on_disk: Default::default(),
            entries: self.entries.clone(),
            partial_snapshot: self
                .received_snapshot
                .filter(|partial| partial.last.index > self.snapshot_index()),
        }
    }

    /// The index of the last entry, in the snapshot or after it.
    pub fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot_index(), |entry| entry.index)
    }

    /// The index of the snapshot point (0 without a snapshot).
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.last.index)
    }

    /// The entry at `index`, if held after the snapshot.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        let offset = index.0.checked_sub(first.0)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Applies `persist` as its contract says: the snapshot received installed, the snapshot
    /// (each replacing every entry it covers,
    /// unless a snapshot of the node's own as recent was saved meanwhile, which covers it),
    /// then the truncation, then the entries, and the hard state. Fails, naming the persist,
    /// if the log would not stay consecutive, which no correct node asks for.
    pub fn apply(&mut self, persist: &Persist) -> Result<(), String> {
        if let Some(installed) = &persist.install_received {
            let snapshot = self
                .load_received_snapshot(&PartialSnapshot {
                    last: installed.last,
                    total: installed.bytes,
                    received: installed.bytes,
                })
                .filter(|snapshot| snapshot.membership == installed.membership)
                .ok_or_else(|| format!("{persist}: installs a snapshot not received whole"))?;
            self.save_snapshot(&snapshot);
            self.received_snapshot = None;
            self.received_data = None;
        }
        if let Some(snapshot) = &persist.snapshot {
            self.save_snapshot(snapshot);
        }
        if let Some(from) = persist.truncate_from {
            self.truncate_from(from);
        }
        for entry in &persist.entries {
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
        if let Some(chunk) = &persist.snapshot_chunk {
            self.receive_chunk(chunk).map_err(|reason| format!("{persist}: {reason}"))?;
        }
        Ok(())
    }

    /// Adds `chunk` to the snapshot being received, or starts a new one with it.
    fn receive_chunk(&mut self, chunk: &ReceivedChunk) -> Result<(), String> {
        let received = chunk.end();
        if chunk.offset == 0 {
            self.received_snapshot =
                Some(PartialSnapshot { last: chunk.last, total: chunk.total, received });
            self.received_data = Some(chunk.clone());
            return Ok(());
        }
        let Some(held) = self.received_snapshot.as_mut() else {
            return Err("continues no snapshot being received".to_string());
        };
        if (held.last, held.total, held.received) != (chunk.last, chunk.total, chunk.offset) {
            return Err(format!(
                "does not continue the snapshot received, at {}@{}/{}",
                held.last, held.received, held.total
            ));
        }
        held.received = received;
        if let Some(data) = self.received_data.as_mut() {
            data.data.extend_from_slice(&chunk.data);
        }
        Ok(())
    }

    /// The snapshot received whole that `whole` names, read back as a driver does for
    /// `Output::LoadSnapshot`; `None` if this model does not hold all of its bytes.
    pub fn load_received_snapshot(&self, whole: &PartialSnapshot) -> Option<Snapshot> {
        let data = self.received_data.as_ref()?;
        let held = (data.last, data.total, data.data.len() as u64);
        (held == (whole.last, whole.total, whole.total)).then(|| Snapshot {
            last: data.last,
            membership: data.membership.clone(),
            data: data.data.clone(),
        })
    }

    /// The node's driver read back the snapshot received whole, `snapshot`, from its disk: this
    /// model holds its bytes from now on (one rebuilt from a `Recovered` holds only how far
    /// the transfer got), so that installing it gives the snapshot its data.
    pub fn received_read_back(&mut self, snapshot: &Snapshot) {
        let whole = Some(PartialSnapshot {
            last: snapshot.last,
            total: snapshot.data.len() as u64,
            received: snapshot.data.len() as u64,
        });
        if self.received_snapshot == whole {
            let (last, membership) = (snapshot.last, snapshot.membership.clone());
            let (total, data) = (snapshot.data.len() as u64, snapshot.data.clone());
            self.received_data = Some(ReceivedChunk { last, membership, total, offset: 0, data });
        }
    }

    /// Saves a snapshot of the node's own state, made durable apart from its persists: it
    /// replaces the entries it covers, unless the disk holds a snapshot as recent already (a
    /// leader's, installed meanwhile), which it must not replace.
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) {
        if snapshot.last.index <= self.snapshot_index() {
            return;
        }
        self.entries.retain(|entry| entry.index > snapshot.last.index);
        self.snapshot = Some(snapshot.clone());
    }

    /// The bytes of `chunk` read from the snapshot held, if it is the chunk's snapshot (a
    /// driver reads chunks from its disk, where a newer snapshot may have replaced it).
    pub fn snapshot_chunk(&self, chunk: &ChunkToSend) -> Option<Vec<u8>> {
        let snapshot = self.snapshot.as_ref().filter(|snapshot| snapshot.last == chunk.last)?;
        let offset = usize::try_from(chunk.offset).ok()?;
        let end = offset.checked_add(usize::try_from(chunk.length).ok()?)?;
        snapshot.data.get(offset..end).map(<[u8]>::to_vec)
    }

    /// Drops every entry at `index` and after.
    fn truncate_from(&mut self, index: LogIndex) {
        if let Some(first) = self.entries.first() {
            let keep = index.0.saturating_sub(first.index.0);
            self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::raft::{Membership, Payload, PersistId};
    use raftkv_core::{LogId, NodeId, Term};

    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index: LogIndex(index), term: Term(term), payload: Payload::Noop }
    }

    fn persist(entries: &[(u64, u64)]) -> Persist {
        Persist {
            id: PersistId(1),
            hard_state: None,
            truncate_from: None,
            entries: entries.iter().map(|&(index, term)| entry(index, term)).collect(),
            snapshot: None,
            install_received: None,
            snapshot_chunk: None,
        }
    }

    fn indexes(durable: &Durable) -> Vec<(u64, u64)> {
        durable.entries.iter().map(|entry| (entry.index.0, entry.term.0)).collect()
    }

    #[test]
    fn entries_replace_what_is_stored_from_their_index_on() {
        let mut durable = Durable::default();
        durable.apply(&persist(&[(1, 1), (2, 1), (3, 1)])).unwrap();
        durable.apply(&persist(&[(2, 2)])).unwrap();
        assert_eq!(indexes(&durable), [(1, 1), (2, 2)]);
        assert_eq!(durable.last_index(), LogIndex(2));
        assert_eq!(durable.entry(LogIndex(2)), Some(&entry(2, 2)));
    }

    #[test]
    fn a_snapshot_replaces_the_entries_it_covers_then_the_truncation_and_entries_apply() {
        let mut durable = Durable::default();
        durable.apply(&persist(&[(1, 1), (2, 1), (3, 1), (4, 1)])).unwrap();
        let snapshot = Snapshot {
            last: LogId { index: LogIndex(2), term: Term(1) },
            membership: Membership::with_voters([NodeId(1)]),
            data: vec![],
        };
        let hard_state = HardState { term: Term(2), vote: Some(NodeId(3)), damaged: false };
        let with_snapshot = Persist {
            snapshot: Some(snapshot.clone()),
            hard_state: Some(hard_state),
            ..persist(&[])
        };
        durable.apply(&with_snapshot).unwrap();
        assert_eq!(indexes(&durable), [(3, 1), (4, 1)], "the entries after it stay");
        assert_eq!(durable.snapshot_index(), LogIndex(2));
        assert_eq!(durable.hard_state, hard_state);
        let repair = Persist { truncate_from: Some(LogIndex(3)), ..persist(&[(3, 2)]) };
        durable.apply(&repair).unwrap();
        assert_eq!(indexes(&durable), [(3, 2)]);
        let recovered = durable.recover();
        assert_eq!(recovered.snapshot, Some(snapshot));
        assert_eq!(Durable::recovered(&recovered), durable);
    }

    /// Simulator seed 507630: a leader's snapshot at 253 was installed, the node applied it and
    /// entry 254, and its own snapshot at 254 became durable before the install did; the
    /// install then took the disk back to 253, dropping entry 254 from under the next append.
    #[test]
    fn an_installed_snapshot_older_than_an_own_snapshot_saved_meanwhile_is_covered_by_it() {
        let mut durable = Durable::default();
        durable.apply(&persist(&[(1, 1), (2, 1), (3, 1), (4, 1)])).unwrap();
        let at = |index| Snapshot {
            last: LogId { index: LogIndex(index), term: Term(1) },
            membership: Membership::with_voters([NodeId(1)]),
            data: vec![index as u8],
        };
        durable.save_snapshot(&at(4));
        durable.apply(&Persist { snapshot: Some(at(3)), ..persist(&[]) }).unwrap();
        durable.apply(&persist(&[(5, 1)])).unwrap();
        assert_eq!(durable.snapshot, Some(at(4)));
        assert_eq!(indexes(&durable), [(5, 1)]);
    }

    #[test]
    fn a_gap_in_the_log_is_refused() {
        let mut durable = Durable::default();
        durable.apply(&persist(&[(1, 1)])).unwrap();
        let refused = durable.apply(&persist(&[(3, 1)])).unwrap_err();
        assert!(refused.contains("next index is 2"), "{refused}");
    }

    #[test]
    fn chunks_received_add_up_to_a_snapshot_that_loads_and_a_newer_snapshot_drops_them() {
        let last = LogId { index: LogIndex(5), term: Term(1) };
        let membership = Membership::with_voters([NodeId(1)]);
        let chunk = |offset: u64, data: &[u8]| Persist {
            snapshot_chunk: Some(ReceivedChunk {
                last,
                membership: membership.clone(),
                total: 4,
                offset,
                data: data.to_vec(),
            }),
            ..persist(&[])
        };
        let mut durable = Durable::default();
        assert!(durable.apply(&chunk(2, b"cd")).is_err(), "nothing to continue");
        durable.apply(&chunk(0, b"ab")).unwrap();
        assert!(durable.apply(&chunk(3, b"d")).is_err(), "a gap");
        let partial = PartialSnapshot { last, total: 4, received: 2 };
        assert_eq!(durable.recover().partial_snapshot, Some(partial));
        durable.apply(&chunk(2, b"cd")).unwrap();
        let whole = PartialSnapshot { received: 4, ..partial };
        let loaded = durable.load_received_snapshot(&whole).expect("whole");
        assert_eq!((loaded.last, &loaded.data[..]), (last, &b"abcd"[..]));
        let newer = Snapshot {
            last: LogId { index: LogIndex(6), term: Term(1) },
            membership,
            data: vec![],
        };
        durable.save_snapshot(&newer);
        assert_eq!(durable.recover().partial_snapshot, None, "of no use past the snapshot");
    }
}
