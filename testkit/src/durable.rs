//! A model of what a node's disk holds once its persists are durable: every persist applied
//! in order, exactly as the contract of `Persist` says, and what a restart recovers from it.

use raftkv_core::LogIndex;
use raftkv_core::raft::{Entry, HardState, Persist, Recovered, Snapshot};

/// The durable state of one node: what it may rely on after a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The last durable snapshot.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, consecutive.
    pub entries: Vec<Entry>,
}

impl Durable {
    /// What a node recovered: from there on, its persists apply to it.
    pub fn recovered(recovered: &Recovered) -> Durable {
        Durable {
            hard_state: recovered.hard_state,
            snapshot: recovered.snapshot.clone(),
            entries: recovered.entries.clone(),
        }
    }

    /// What a node restarting from this state recovers.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
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

    /// Applies `persist` as its contract says: the snapshot (replacing every entry it covers),
    /// then the truncation, then the entries, and the hard state. Fails, naming the persist,
    /// if the log would not stay consecutive, which no correct node asks for.
    pub fn apply(&mut self, persist: &Persist) -> Result<(), String> {
        if let Some(snapshot) = &persist.snapshot {
            self.entries.retain(|entry| entry.index > snapshot.last.index);
            self.snapshot = Some(snapshot.clone());
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
        Ok(())
    }

    /// Drops every entry at `index` and after.
    fn truncate_from(&mut self, index: LogIndex) {
        if let Some(first) = self.entries.first() {
            let keep = index.0.saturating_sub(first.index.0);
            self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }
}
