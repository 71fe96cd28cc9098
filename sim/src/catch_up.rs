//! The catch-up figure: one follower is down while the clients commit many entries, then it
//! restarts, and the figure is the simulated time from its restart until it has applied
//! everything the leader had committed. With snapshots on, the leader has compacted the
//! entries the follower lacks and sends its snapshot, then the entries after it; without, it
//! sends the whole log. No faults: the network and disks of a quiet run, the replicas' own
//! timing.

use raftkv_core::kv::KvCommand;
use raftkv_core::{Duration, LogIndex, NodeId};

use crate::options::{FaultSet, Options, RaftOptions, Shape, SnapshotOptions};
use crate::recorded::OpId;
use crate::simulation::Simulation;
use crate::trace::TraceOutput;

/// Keys the clients write (about 25 bytes each in the state machine: a snapshot of a few
/// dozen kilobytes).
const KEYS: u64 = 1_000;

/// How long a quiet cluster may take to elect its first leader: dozens of election timeouts.
const ELECTION_MS_MAX: u64 = 10_000;

/// How long the clients may wait for one of their puts to return: a quiet cluster answers in
/// milliseconds, so this only ends a stalled run.
const PUT_MS_MAX: u64 = 60_000;

/// How long the follower may take to catch up: far beyond the tens of milliseconds it takes,
/// so that a slow catch-up shows as a figure, not as a failure.
const CATCH_UP_MS_MAX: u64 = 600_000;

/// How the figure is taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUpSettings {
    /// The seed of the network's and disks' delays.
    pub seed: u64,
    /// Replicas (one of them falls behind).
    pub nodes: usize,
    /// Clients writing concurrently, one put at a time each.
    pub clients: usize,
    /// Puts committed while the follower is down.
    pub puts: u64,
    /// When replicas snapshot, and how snapshots are sent.
    pub snapshot: SnapshotOptions,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// The follower that fell behind.
    pub follower: NodeId,
    /// The last entry of its log when it went down.
    pub follower_last: LogIndex,
    /// The leader's commit index when the follower restarted: what it had to apply.
    pub leader_commit: LogIndex,
    /// Simulated time the clients took to commit their puts.
    pub fill: Duration,
    /// Simulated time from the follower's restart until it had applied `leader_commit`.
    pub catch_up: Duration,
    /// Snapshots the follower installed meanwhile.
    pub snapshots_installed: u64,
    /// Bytes of the leader's snapshot when the follower restarted (0 without one).
    pub snapshot_bytes: u64,
    /// Messages between replicas meanwhile.
    pub messages: u64,
    /// Appends the leader sent meanwhile with entries read back from its disk, no longer in
    /// its memory (`RaftOptions::log_cache_bytes`).
    pub appends_from_disk: u64,
}

impl CatchUp {
    /// Entries the follower lacked when it restarted.
    pub fn entries_behind(&self) -> u64 {
        self.leader_commit.0 - self.follower_last.0
    }
}

/// Takes the figure; an error says what went wrong (a broken safety property, or a run that
/// stalled).
pub fn catch_up(settings: &CatchUpSettings) -> Result<CatchUp, String> {
    let shape =
        Shape { nodes: settings.nodes, clients: settings.clients, ops: 0, faults: FaultSet::NONE };
    let mut options = Options::draw(settings.seed, shape);
    options.raft = RaftOptions::replica_defaults();
    options.snapshot = settings.snapshot.clone();
    let mut sim = Simulation::new(options, TraceOutput::Hidden);
    if !sim.run_until(ELECTION_MS_MAX, |s| s.leader().is_some()) {
        return Err(stalled(&sim, &format!("no leader within {ELECTION_MS_MAX} ms")));
    }
    let leader = sim.leader().expect("just elected");
    let follower = sim.node_ids().into_iter().find(|&id| id != leader).ok_or("one node only")?;
    let follower_last = sim.replica(follower).expect("up").raft().status().last_log.index;
    sim.crash(follower);
    let fill_started = sim.now();
    put_concurrently(&mut sim, settings.clients, settings.puts)?;
    let fill = sim.now() - fill_started;
    let leader = sim.leader().ok_or_else(|| stalled(&sim, "no leader after the puts"))?;
    let leader_raft = sim.replica(leader).expect("leads").raft();
    let leader_commit = leader_raft.status().commit;
    let snapshot_bytes = leader_raft.snapshot_bytes();
    let messages_before = sim.stats().messages;
    let from_disk_before = leader_raft.counters().appends_from_disk;
    let restarted = sim.now();
    sim.restart(follower);
    let applied =
        |s: &Simulation| s.replica(follower).is_some_and(|r| r.applied() >= leader_commit);
    if !sim.run_until(CATCH_UP_MS_MAX, applied) {
        let what = format!("the follower did not catch up within {CATCH_UP_MS_MAX} ms");
        return Err(stalled(&sim, &what));
    }
    let snapshots_installed =
        sim.replica(follower).expect("caught up").raft().counters().snapshots_installed;
    let from_disk = sim.replica(leader).map_or(0, |r| r.raft().counters().appends_from_disk);
    Ok(CatchUp {
        follower,
        follower_last,
        leader_commit,
        fill,
        catch_up: sim.now() - restarted,
        snapshots_installed,
        snapshot_bytes,
        messages: sim.stats().messages - messages_before,
        appends_from_disk: from_disk.saturating_sub(from_disk_before),
    })
}

/// Every client puts, one at a time, until `puts` have returned.
fn put_concurrently(sim: &mut Simulation, clients: usize, puts: u64) -> Result<(), String> {
    let mut issued = 0;
    let mut open: Vec<Option<OpId>> = vec![None; clients];
    loop {
        for (client, op) in open.iter_mut().enumerate() {
            if op.is_some_and(|op| !sim.op(op).is_finished()) {
                continue;
            }
            *op = None;
            if issued < puts {
                let key = format!("k{}", issued % KEYS).into_bytes();
                let value = format!("{issued:016}").into_bytes();
                *op = Some(sim.submit(client, KvCommand::Put { key, value }));
                issued += 1;
            }
        }
        let waiting: Vec<OpId> = open.iter().flatten().copied().collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let returned = |s: &Simulation| waiting.iter().any(|&op| s.op(op).is_finished());
        if !sim.run_until(PUT_MS_MAX, returned) {
            return Err(stalled(sim, &format!("no put returned within {PUT_MS_MAX} ms")));
        }
    }
}

fn stalled(sim: &Simulation, what: &str) -> String {
    match sim.violation() {
        Some(violation) => violation.to_string(),
        None => format!("{what} (at {})", sim.now()),
    }
}
