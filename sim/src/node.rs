//! One simulated server: the replica while it runs, its disk across crashes, its own clock,
//! and what a paused process has not yet seen.

use raftkv_core::kv::KvStore;
use raftkv_core::prng::Prng;
use raftkv_core::raft::Config;
use raftkv_core::server::{Input, Replica, ReplicaConfig};
use raftkv_core::{Instant, NodeId};
use raftkv_storage::OpenReport;

use crate::clock::Clock;
use crate::disk::{CrashLoss, Disk};
use crate::machine::{CommandOf, Machine};
use crate::options::{ClockOptions, RaftOptions, SnapshotOptions};

/// The replicated key-value service as the simulator runs it by default.
pub type Kv = Replica<KvStore>;

/// A server of machine `M` and its hardware.
pub(crate) struct SimNode<M: Machine> {
    pub(crate) id: NodeId,
    /// The membership it starts with while its disk holds none: the initial voters for a node
    /// of the initial cluster, nobody for a node that joins it later.
    initial_voters: Vec<NodeId>,
    /// The running process; `None` while crashed.
    pub(crate) replica: Option<Replica<M::State>>,
    /// Grows with every crash: events of an earlier life are ignored.
    pub(crate) life: u64,
    pub(crate) clock: Clock,
    pub(crate) disk: Disk,
    /// A paused process handles nothing; what reaches it waits in `stalled`.
    pub(crate) paused: bool,
    pub(crate) stalled: Vec<Input<CommandOf<M>>>,
    /// The virtual time of the pending timer event and its generation; an event of an older
    /// generation is stale.
    pub(crate) timer: Option<Instant>,
    pub(crate) timer_generation: u64,
    /// Timeouts handled at the current instant: a node whose `poll_timeout` stays in the past
    /// would spin forever.
    pub(crate) timeouts_now: (Instant, u32),
    rng: Prng,
}

impl<M: Machine> SimNode<M> {
    pub(crate) fn new(
        id: NodeId,
        initial_voters: Vec<NodeId>,
        disk: Disk,
        rng: Prng,
    ) -> SimNode<M> {
        SimNode {
            id,
            initial_voters,
            replica: None,
            life: 0,
            clock: Clock::perfect(),
            disk,
            paused: false,
            stalled: Vec::new(),
            timer: None,
            timer_generation: 0,
            timeouts_now: (Instant::ZERO, 0),
            rng,
        }
    }

    /// Whether the process runs and is not paused.
    pub(crate) fn is_running(&self) -> bool {
        self.replica.is_some() && !self.paused
    }

    /// Starts the process at virtual time `now` from what its disk holds, with a fresh clock
    /// and a fresh random seed. Returns what the storage engine cut away; fails if the disk
    /// cannot be opened, breaks its promises, or holds what the replica refuses.
    pub(crate) fn start(
        &mut self,
        now: Instant,
        raft: &RaftOptions,
        snapshot: &SnapshotOptions,
        clock: &ClockOptions,
        state: M::State,
    ) -> Result<OpenReport, String> {
        let max = clock.drift_ppm_max as i64;
        let drift_ppm = self.rng.range_inclusive(0, 2 * max as u64) as i64 - max;
        let origin = match clock.offset_ms_max {
            0 => now,
            offset_ms_max => Instant::from_millis(self.rng.range_inclusive(0, offset_ms_max)),
        };
        self.clock = Clock::new(now, origin, drift_ppm);
        let mut config = Config::new(self.id, self.initial_voters.iter().copied());
        config.election_timeout_ms_min = raft.election_timeout_ms_min;
        config.election_timeout_ms_max = raft.election_timeout_ms_max;
        config.heartbeat_interval_ms = raft.heartbeat_interval_ms;
        config.max_entries_per_append = raft.max_entries_per_append;
        config.max_bytes_per_append = raft.max_bytes_per_append;
        config.max_inflight_appends = raft.max_inflight_appends;
        config.log_cache_bytes = raft.log_cache_bytes;
        if raft.read_lease {
            config.read_lease = true;
            config.max_clock_drift_ppm = raft.lease_drift_ppm;
        }
        config.snapshot_chunk_bytes = snapshot.chunk_bytes;
        config.max_inflight_snapshot_chunks = snapshot.max_inflight_chunks;
        config.seed = self.rng.next_u64();
        let mut config = ReplicaConfig::new(config);
        config.session_timeout_ms = raft.session_timeout_ms;
        config.snapshot_threshold_bytes = snapshot.threshold_bytes;
        config.snapshot_growth_percent = snapshot.growth_percent;
        let local = self.clock.local(now);
        let (recovered, report) = self.disk.open(raft.log_cache_bytes)?;
        let replica =
            Replica::new(local, config, recovered, state).map_err(|error| error.to_string())?;
        self.replica = Some(replica);
        self.paused = false;
        self.timer = None;
        Ok(report)
    }

    /// Kills the process: its memory, what it had not seen and the disk's unfinished writes
    /// are gone.
    pub(crate) fn crash(&mut self) -> CrashLoss {
        self.replica = None;
        self.life += 1;
        self.paused = false;
        self.stalled.clear();
        self.timer = None;
        self.disk.crash()
    }
}
