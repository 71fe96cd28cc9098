//! What a replica let go of, for its driver to free on another thread: freeing a state
//! machine of a million pairs, or a snapshot threshold's worth of log entries, takes tens of
//! milliseconds, which on the node's thread would hold up every request behind it.

use core::fmt;

use crate::raft::CompactedEntries;
use crate::session::Sessions;
use crate::state_machine::StateMachine;

/// Things a replica keeps for its driver to take at most: past this, the oldest are freed
/// where they are, on the node's thread (a driver takes them after every event, so only one
/// that never does, such as a test's, reaches it).
const RETIRED_MAX: usize = 4;

/// Log entries, states and sessions a replica no longer uses (`Replica::take_retired`).
/// Dropping it frees them.
pub struct Retired<S: StateMachine> {
    /// Log entries a snapshot covers: one saved here, or one installed from the leader.
    entries: Vec<CompactedEntries>,
    /// States and their sessions: replaced by a snapshot installed from the leader, or
    /// decoded from one that the node did not install.
    states: Vec<(S, Sessions<S::Reply>)>,
}

impl<S: StateMachine> Retired<S> {
    pub(crate) fn new() -> Retired<S> {
        Retired { entries: Vec::new(), states: Vec::new() }
    }

    pub(crate) fn add_entries(&mut self, entries: CompactedEntries) {
        if self.entries.len() == RETIRED_MAX {
            self.entries.remove(0);
        }
        self.entries.push(entries);
    }

    pub(crate) fn add_state(&mut self, state: S, sessions: Sessions<S::Reply>) {
        if self.states.len() == RETIRED_MAX {
            self.states.remove(0);
        }
        self.states.push((state, sessions));
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.states.is_empty()
    }

    /// Log entries it holds.
    pub fn entries(&self) -> usize {
        self.entries.iter().map(CompactedEntries::len).sum()
    }

    /// States it holds.
    pub fn states(&self) -> usize {
        self.states.len()
    }
}

impl<S: StateMachine> fmt::Debug for Retired<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retired({} entries, {} states)", self.entries(), self.states())
    }
}
