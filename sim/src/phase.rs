//! Where a random run stands: the faulty phase, then healed, final reads, convergence, done.

use raftkv_core::Instant;

/// Where a random run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Faults are injected while the clients issue their operations.
    Faulty,
    /// Faults stopped: every operation must return within the liveness bound.
    Healed,
    /// Every operation returned; the clients read every key.
    FinalReads,
    /// The reads returned; the replicas must apply everything and agree. They fail if they
    /// apply nothing new for a while (`until` moves on while they do), or take longer in all
    /// than `cap`.
    Converging {
        /// When the replicas must have applied something new, or be done.
        until: Instant,
        /// What they had applied, summed, when they last applied something new.
        applied: u64,
        /// When they must be done, progress or not.
        cap: Instant,
    },
    /// The run is over.
    Done,
}

/// The state of a random run's workload and faults.
pub(crate) struct Auto {
    pub(crate) phase: Phase,
}

impl Auto {
    pub(crate) fn is_faulty(&self) -> bool {
        self.phase == Phase::Faulty
    }

    pub(crate) fn is_healed(&self) -> bool {
        !self.is_faulty()
    }
}
