//! What a run simulates: its shape (nodes, clients, operations, fault classes), given on the
//! command line or drawn per seed by the swarm, and every rate and bound, drawn from the seed
//! (swarm testing: each seed exercises a different mix, in integer ratios).

use core::fmt;
use core::str::FromStr;

use raftkv_core::NodeId;
use raftkv_core::client::ClerkConfig;
use raftkv_core::prng::Prng;
use raftkv_core::raft::Config;
use raftkv_core::server::ReplicaConfig;

/// A probability as an integer ratio: no floats, so draws are the same on every machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    /// Chances out of `denominator`.
    pub numerator: u64,
    /// The whole.
    pub denominator: u64,
}

impl Ratio {
    /// Never happens.
    pub const NEVER: Ratio = Ratio::new(0, 1);

    /// `numerator` chances in `denominator`.
    pub const fn new(numerator: u64, denominator: u64) -> Ratio {
        Ratio { numerator, denominator }
    }

    /// Draws whether it happens this time.
    pub fn happens(self, rng: &mut Prng) -> bool {
        rng.chance(self.numerator, self.denominator)
    }

    /// Whether it can ever happen.
    pub fn is_never(self) -> bool {
        self.numerator == 0
    }

    /// A ratio of at most `numerator_max / denominator`, drawn.
    fn draw(rng: &mut Prng, numerator_max: u64, denominator: u64) -> Ratio {
        Ratio::new(rng.range_inclusive(0, numerator_max), denominator)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// The classes of faults a run may inject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultSet {
    /// Packet loss and duplication, and delays with a long tail (reordering).
    pub net: bool,
    /// Crashes and restarts; what the disk had not acknowledged is lost.
    pub crash: bool,
    /// Network partitions: random halves, an isolated leader, one-way cuts, a bridge node.
    pub partition: bool,
    /// Pauses of a whole process (a stalled VM or a long GC), then resumption.
    pub pause: bool,
    /// Clocks that run at different rates and start at different origins.
    pub clock: bool,
    /// Slow persists with a long tail, and a torn last record when a node crashes.
    pub disk: bool,
    /// Leadership transfers an operator asks for, to a random node, at random times.
    pub transfer: bool,
    /// Membership changes at random times: learners added with new ids and promoted, voters
    /// removed (the leader too), crashed voters replaced by new nodes.
    pub membership: bool,
}

impl FaultSet {
    /// No fault at all: a reliable network with small jittered delays and fast disks.
    pub const NONE: FaultSet = FaultSet {
        net: false,
        crash: false,
        partition: false,
        pause: false,
        clock: false,
        disk: false,
        transfer: false,
        membership: false,
    };

    /// Every class.
    pub const ALL: FaultSet = FaultSet {
        net: true,
        crash: true,
        partition: true,
        pause: true,
        clock: true,
        disk: true,
        transfer: true,
        membership: true,
    };

    fn names(self) -> [(&'static str, bool); 8] {
        [
            ("net", self.net),
            ("crash", self.crash),
            ("partition", self.partition),
            ("pause", self.pause),
            ("clock", self.clock),
            ("disk", self.disk),
            ("transfer", self.transfer),
            ("membership", self.membership),
        ]
    }

    /// Each class on with even odds (swarm testing: a run without some fault class explores
    /// schedules that the class would mask).
    fn draw(rng: &mut Prng) -> FaultSet {
        FaultSet {
            net: rng.chance(1, 2),
            crash: rng.chance(1, 2),
            partition: rng.chance(1, 2),
            pause: rng.chance(1, 2),
            clock: rng.chance(1, 2),
            disk: rng.chance(1, 2),
            // Drawn last, so that the classes before it keep their draws.
            transfer: rng.chance(1, 2),
            // Last too, for the same reason.
            membership: rng.chance(1, 2),
        }
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FaultSet::NONE => f.write_str("none"),
            FaultSet::ALL => f.write_str("all"),
            set => {
                let on: Vec<&str> =
                    set.names().iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect();
                f.write_str(&on.join(","))
            }
        }
    }
}

impl FromStr for FaultSet {
    type Err = String;

    /// `none`, `all`, or a comma-separated list of
    /// `net,crash,partition,pause,clock,disk,transfer,membership`.
    fn from_str(text: &str) -> Result<FaultSet, String> {
        match text {
            "none" => return Ok(FaultSet::NONE),
            "all" => return Ok(FaultSet::ALL),
            _ => {}
        }
        let mut set = FaultSet::NONE;
        for name in text.split(',') {
            let flag = match name.trim() {
                "net" => &mut set.net,
                "crash" => &mut set.crash,
                "partition" => &mut set.partition,
                "pause" => &mut set.pause,
                "clock" => &mut set.clock,
                "disk" => &mut set.disk,
                "transfer" => &mut set.transfer,
                "membership" => &mut set.membership,
                other => {
                    return Err(format!(
                        "unknown fault class {other:?} (expected none, all, or a list of \
                         net,crash,partition,pause,clock,disk,transfer,membership)"
                    ));
                }
            };
            *flag = true;
        }
        Ok(set)
    }
}

/// The size of a run and the fault classes it injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Replicas.
    pub nodes: usize,
    /// Clients, each with its own clerk, one operation at a time.
    pub clients: usize,
    /// Operations the clients issue in all (the final reads of every key come on top).
    pub ops: u64,
    /// Fault classes injected during the faulty phase.
    pub faults: FaultSet,
}

impl Shape {
    /// The shape of `raftkv-sim run` without options.
    pub const DEFAULT: Shape = Shape { nodes: 5, clients: 5, ops: 500, faults: FaultSet::ALL };

    /// The shape the swarm gives `seed`: 1 to 7 nodes (mostly odd), 1 to 10 clients, 50 to
    /// 600 operations, each fault class on or off.
    pub fn draw(seed: u64) -> Shape {
        let mut rng = Streams::new(seed).shape;
        let nodes = [1, 2, 3, 3, 3, 4, 5, 5, 5, 7][rng.range_inclusive(0, 9) as usize];
        Shape {
            nodes,
            clients: rng.range_inclusive(1, 10) as usize,
            ops: rng.range_inclusive(50, 600),
            faults: FaultSet::draw(&mut rng),
        }
    }
}

/// The random streams of a seed, each forked from the seed's generator in a fixed order, so
/// that a run given its shape on the command line replays the swarm run that drew it.
pub(crate) struct Streams {
    /// Draws the shape (swarm only; forked always, so the later streams do not move).
    pub(crate) shape: Prng,
    /// Draws the options.
    pub(crate) options: Prng,
    /// Hands sub-seeds to the nodes, disks, network, workload and faults.
    pub(crate) run: Prng,
    /// Draws the membership changes and seeds the nodes they add (forked last, so that runs
    /// without them keep every other draw).
    pub(crate) membership: Prng,
    /// Draws the weights of the operations on several keys (forked after the others, for the
    /// same reason).
    pub(crate) multi_key: Prng,
    /// Draws the weight of batches (forked last, for the same reason).
    pub(crate) batches: Prng,
}

impl Streams {
    pub(crate) fn new(seed: u64) -> Streams {
        let mut root = Prng::seeded(seed);
        let (shape, options, run) = (root.fork(), root.fork(), root.fork());
        let membership = root.fork();
        let multi_key = root.fork();
        Streams { shape, options, run, membership, multi_key, batches: root.fork() }
    }
}

/// Delays and faults of the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkOptions {
    /// Shortest one-way delay.
    pub latency_us_min: u64,
    /// Longest ordinary one-way delay; delays are uniform in between, so messages reorder.
    pub latency_us_max: u64,
    /// How often a delay is drawn from the tail instead.
    pub tail: Ratio,
    /// Longest delay of the tail.
    pub latency_tail_us_max: u64,
    /// How often a packet (peer message, client request or reply) is lost.
    pub loss: Ratio,
    /// How often a packet is delivered twice (the copy with its own delay).
    pub duplicate: Ratio,
    /// How often a packet is held back for 200 to 2,200 ms, as the network of MIT 6.5840's
    /// labs does with "long reordering": an answer, or an append, arrives after many later
    /// ones (and after later commits).
    pub long_delay: Ratio,
}

/// Persist latency, the storage engine's layout, and the faults of the simulated file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskOptions {
    /// Fastest persist.
    pub latency_us_min: u64,
    /// Slowest ordinary persist.
    pub latency_us_max: u64,
    /// How often a persist is slow (a long fsync).
    pub tail: Ratio,
    /// Slowest persist of the tail.
    pub latency_tail_us_max: u64,
    /// How often, when a node crashes with persists in flight, the engine was writing them:
    /// the crash strikes at a drawn step of the write, and the file system keeps or loses
    /// each unsynced sector and directory entry as Linux may.
    pub torn: Ratio,
    /// How often a batch of persists fails with ENOSPC or EIO at a drawn step; the node stops
    /// without acknowledging it, as a real one does, and restarts later.
    pub io_error: Ratio,
    /// Time between two rotted bits, uniform up to this; 0: bits never rot. A bit rots in the
    /// data of a node whose peers' disks are all sound, which then restarts (and finds it).
    pub bit_rot_interval_ms_max: u64,
    /// Size at which the engine closes a WAL segment (small, so that runs rotate and compact).
    pub segment_bytes: u64,
    /// How far ahead of its records the engine zero-fills a segment (0: not at all).
    pub zero_fill_bytes: u64,
    /// The engine's next WAL segment is prepared ahead of need (as the server's preparing
    /// thread does, here right after a batch), or the engine creates each segment itself.
    pub prepare_segments: bool,
    /// A disk that lies: it acknowledges every persist as soon as it gets it, long before it
    /// is durable (a volatile write cache). Raft cannot be safe on it; never drawn, it exists
    /// to show that the checks notice.
    pub lies: bool,
}

/// Crashes and restarts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashOptions {
    /// Time between two crashes, uniform up to this.
    pub interval_ms_max: u64,
    /// Time a crashed node stays down, uniform up to this.
    pub downtime_ms_max: u64,
    /// Most nodes down at once (may be all of them: safety must hold regardless).
    pub down_max: usize,
    /// How often a snapshot persist handed to a disk, or a snapshot chunk sent, brings a crash
    /// of a node involved before it is done: random crashes alone seldom land in the few
    /// milliseconds a snapshot takes to write or send.
    pub during_snapshot: Ratio,
}

/// Network partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOptions {
    /// Time between the end of a partition and the next, uniform up to this.
    pub interval_ms_max: u64,
    /// How long a partition lasts, uniform up to this.
    pub duration_ms_max: u64,
}

/// Process pauses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseOptions {
    /// Time between two pauses, uniform up to this.
    pub interval_ms_max: u64,
    /// How long a pause lasts, uniform up to this.
    pub duration_ms_max: u64,
}

/// Clocks of the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockOptions {
    /// Each node life's clock runs this many parts per million fast or slow, at most.
    pub drift_ppm_max: u64,
    /// Each node life's clock starts at an origin up to this far from the simulation's
    /// (a process's monotonic clock starts anywhere).
    pub offset_ms_max: u64,
}

/// The operations `--multi-key` adds to the workload, in the order of
/// [`WorkloadOptions::multi`].
pub const MULTI_KEY_OPS: [&str; 8] =
    ["get_many", "exists", "put_many", "delete_many", "count", "scan", "increment", "put_if"];

/// The operations of [`MULTI_KEY_OPS`] a batch may not hold, as their replies may weigh many
/// values (`KvCommand::may_join_batch`): a batch draws its commands from the others.
pub const NOT_IN_BATCHES: [&str; 2] = ["get_many", "scan"];

/// How many commands a batch holds, at least and at most.
pub const BATCH_COMMANDS: (u64, u64) = (2, 6);

/// What the clients do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Keys `k0`.. used; few keys mean contention, which finds bugs.
    pub keys: u64,
    /// Relative weights of get, put, append, delete and cas.
    pub mix: [u64; 5],
    /// Relative weights, on the scale of `mix`, of the operations on several keys, ranges and
    /// counters, in the order of [`MULTI_KEY_OPS`]: all zero unless asked for
    /// ([`Options::with_multi_key_ops`]), so that the runs of a seed stay as they were.
    pub multi: [u64; MULTI_KEY_OPS.len()],
    /// Relative weight, on the scale of `mix`, of batches: a client's pipeline of
    /// [`BATCH_COMMANDS`] commands drawn like the others but for [`NOT_IN_BATCHES`], run in
    /// order at one point. Zero
    /// unless asked for ([`Options::with_batches`]), so that the runs of a seed stay as they were.
    pub batch: u64,
    /// A client waits up to this long between an operation's return and its next call.
    pub think_us_max: u64,
}

/// Timing and batching settings of the replicas and clerks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftOptions {
    /// Lower bound of the election timeout.
    pub election_timeout_ms_min: u64,
    /// Upper bound of the election timeout.
    pub election_timeout_ms_max: u64,
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Most entries per append.
    pub max_entries_per_append: usize,
    /// Most payload bytes per append.
    pub max_bytes_per_append: usize,
    /// Most appends in flight per follower.
    pub max_inflight_appends: usize,
    /// Idle time after which a client session expires.
    pub session_timeout_ms: u64,
    /// A clerk's wait for an answer before trying the next replica.
    pub request_timeout_ms: u64,
    /// Leaders answer reads from their lease (`Config::read_lease`): off unless asked for
    /// ([`Options::with_lease_reads`]), so that the runs of a seed stay as they were.
    pub read_lease: bool,
    /// The clock drift the replicas' leases allow for (`Config::max_clock_drift_ppm`): the
    /// clocks' own bound ([`ClockOptions::drift_ppm_max`]) unless a test sets a smaller one
    /// to show that the checker catches a lease that trusts too much.
    pub lease_drift_ppm: u64,
    /// Bytes of applied entries a replica keeps in memory (`Config::log_cache_bytes`); older
    /// ones a leader reads back from its disk to send, as the server does.
    pub log_cache_bytes: Option<usize>,
}

/// The simulator's log cache: small, so that every catch-up of more than a few dozen entries
/// reads them back from the leader's disk, through its faults.
pub const SIM_LOG_CACHE_BYTES: usize = 4 << 10;

impl RaftOptions {
    /// The replicas' and clerks' own defaults (elections after 300 to 600 ms, heartbeats every
    /// 50 ms, sessions of ten minutes, a clerk waiting a second for an answer), but for the log
    /// cache, which is on ([`SIM_LOG_CACHE_BYTES`]) where a replica's default keeps every entry
    /// in memory.
    pub fn replica_defaults() -> RaftOptions {
        let config = ReplicaConfig::new(Config::new(NodeId(1), [NodeId(1)]));
        let clerk = ClerkConfig::new(vec![NodeId(1)]);
        let raft = &config.raft;
        RaftOptions {
            election_timeout_ms_min: raft.election_timeout_ms_min,
            election_timeout_ms_max: raft.election_timeout_ms_max,
            heartbeat_interval_ms: raft.heartbeat_interval_ms,
            max_entries_per_append: raft.max_entries_per_append,
            max_bytes_per_append: raft.max_bytes_per_append,
            max_inflight_appends: raft.max_inflight_appends,
            session_timeout_ms: config.session_timeout_ms,
            request_timeout_ms: clerk.request_timeout_ms,
            read_lease: raft.read_lease,
            lease_drift_ppm: raft.max_clock_drift_ppm,
            log_cache_bytes: Some(SIM_LOG_CACHE_BYTES),
        }
    }
}

/// When replicas snapshot their state, and how a leader sends a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// A replica snapshots its state once the applied log it holds weighs this many bytes...
    pub threshold_bytes: usize,
    /// ... or this percentage of its last snapshot's size, if more.
    pub growth_percent: u32,
    /// Bytes of snapshot per InstallSnapshot message.
    pub chunk_bytes: usize,
    /// Most InstallSnapshot messages in flight to one follower.
    pub max_inflight_chunks: usize,
}

impl SnapshotOptions {
    /// The replicas' own defaults: a threshold no simulated run reaches, and chunks larger than
    /// any simulated snapshot.
    pub fn replica_defaults() -> SnapshotOptions {
        let config = ReplicaConfig::new(Config::new(NodeId(1), [NodeId(1)]));
        SnapshotOptions {
            threshold_bytes: config.snapshot_threshold_bytes,
            growth_percent: config.snapshot_growth_percent,
            chunk_bytes: config.raft.snapshot_chunk_bytes,
            max_inflight_chunks: config.raft.max_inflight_snapshot_chunks,
        }
    }

    /// One run in four keeps the replicas' defaults; the others compact, a quarter of them
    /// after nearly every batch applied (a threshold of 1 to 200 bytes, a few entries), and
    /// send snapshots in chunks as small as 16 bytes, so that transfers span many messages and
    /// crashes and leader changes strike in the middle of them.
    fn draw(rng: &mut Prng) -> SnapshotOptions {
        let defaults = SnapshotOptions::replica_defaults();
        let tier = rng.range_inclusive(0, 3) as usize;
        let (low, high) = [(1, 200), (200, 2_000), (2_000, 20_000), (0, 0)][tier];
        // Drawn in every tier, so that the draws after it do not depend on the tier.
        let threshold_bytes = rng.range_inclusive(low, high) as usize;
        let chunk_bytes = [16, 64, 1_024, defaults.chunk_bytes][rng.range_inclusive(0, 3) as usize];
        let max_inflight_chunks = [1, 2, 4, 16][rng.range_inclusive(0, 3) as usize];
        if tier == 3 {
            return defaults;
        }
        let growth_percent = defaults.growth_percent;
        SnapshotOptions { threshold_bytes, growth_percent, chunk_bytes, max_inflight_chunks }
    }
}

/// Membership changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipOptions {
    /// Time between two attempts at a change, uniform up to this.
    pub interval_ms_max: u64,
    /// Fewest voters a removal leaves (a cluster that starts with fewer only grows).
    pub voters_min: usize,
    /// Most voters a promotion makes.
    pub voters_max: usize,
    /// Most nodes a run adds.
    pub added_max: usize,
}

/// The fewest voters the membership fault class leaves a cluster with.
pub const MEMBERSHIP_VOTERS_MIN: usize = 3;

/// The most voters the membership fault class grows a cluster to.
pub const MEMBERSHIP_VOTERS_MAX: usize = 7;

/// The longest faulty phase: clients stalled by faults still reach the healed phase.
const FAULTY_MS_MAX: u64 = 300_000;

/// The liveness bound: room for many elections and clerk retries once the faults stop.
const LIVENESS_MS_MAX: u64 = 30_000;

/// Every setting of one run. [`Options::draw`] fills it from a seed; tests may build or
/// adjust one by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The seed of every random choice of the run.
    pub seed: u64,
    /// Size and fault classes.
    pub shape: Shape,
    /// Network delays and faults (loss and duplication only with `net`).
    pub network: NetworkOptions,
    /// Disk latency and torn writes.
    pub disk: DiskOptions,
    /// Crashes, if `crash`.
    pub crash: CrashOptions,
    /// Partitions, if `partition`.
    pub partition: PartitionOptions,
    /// Pauses, if `pause`.
    pub pause: PauseOptions,
    /// Clock drift and origins, if `clock`.
    pub clock: ClockOptions,
    /// What the clients do.
    pub workload: WorkloadOptions,
    /// Replica and clerk settings.
    pub raft: RaftOptions,
    /// Time between two leadership transfers, uniform up to this (if `transfer`).
    pub transfer_interval_ms_max: u64,
    /// Snapshot threshold and transfer.
    pub snapshot: SnapshotOptions,
    /// Membership changes, if `membership`.
    pub membership: MembershipOptions,
    /// The faulty phase ends when the clients have issued every operation, or after this long.
    pub faulty_ms_max: u64,
    /// Once faults stop, every operation must return within this long (liveness).
    pub liveness_ms_max: u64,
}

impl Options {
    /// Draws every setting of `shape` from `seed`. The same seed and shape always give the same
    /// options.
    pub fn draw(seed: u64, shape: Shape) -> Options {
        let rng = &mut Streams::new(seed).options;
        let faults = shape.faults;
        // Every draw happens whether or not its class is on, so that turning a class off does
        // not change the others.
        let network = draw_network(rng, faults.net);
        let disk = draw_disk(rng, faults.disk);
        let crash = CrashOptions {
            interval_ms_max: rng.range_inclusive(200, 5_000),
            downtime_ms_max: rng.range_inclusive(10, 3_000),
            down_max: rng.range_inclusive(1, shape.nodes as u64) as usize,
            during_snapshot: Ratio::NEVER,
        };
        let partition = PartitionOptions {
            interval_ms_max: rng.range_inclusive(200, 5_000),
            duration_ms_max: rng.range_inclusive(100, 5_000),
        };
        let pause = PauseOptions {
            interval_ms_max: rng.range_inclusive(200, 5_000),
            duration_ms_max: rng.range_inclusive(10, 2_000),
        };
        let drift_ppm_max = [1_000, 10_000, 100_000][rng.range_inclusive(0, 2) as usize];
        let offset_ms_max = [0, 1_000, 60_000, 3_600_000][rng.range_inclusive(0, 3) as usize];
        let clock = if faults.clock {
            ClockOptions { drift_ppm_max, offset_ms_max }
        } else {
            ClockOptions { drift_ppm_max: 0, offset_ms_max: 0 }
        };
        let workload = draw_workload(rng);
        let raft = draw_raft(rng);
        // Drawn after everything else, so that earlier draws keep their values.
        let transfer_interval_ms_max = rng.range_inclusive(200, 10_000);
        // After the transfer interval, for the same reason: seeds recorded before snapshots
        // were drawn keep every other option.
        let snapshot = SnapshotOptions::draw(rng);
        let crash = CrashOptions { during_snapshot: Ratio::draw(rng, 50, 1_000), ..crash };
        // Drawn last, for the same reason; half the runs with faulty networks reorder long.
        let long_delay = Ratio::draw(rng, 10, 100);
        let reorders_long = rng.chance(1, 2);
        let network = match faults.net && reorders_long {
            true => NetworkOptions { long_delay, ..network },
            false => network,
        };
        let disk = draw_storage(rng, faults.disk, disk);
        // Drawn last, for the same reason.
        let disk = DiskOptions { prepare_segments: rng.chance(1, 2), ..disk };
        // Drawn last, for the same reason.
        let membership = MembershipOptions {
            interval_ms_max: rng.range_inclusive(100, 3_000),
            voters_min: MEMBERSHIP_VOTERS_MIN,
            voters_max: MEMBERSHIP_VOTERS_MAX,
            added_max: rng.range_inclusive(1, 12) as usize,
        };
        // Drawn last, for the same reason. Half the runs that compact snapshot at the byte
        // threshold alone, as often as it allows; the others wait for the log to outweigh a
        // part of the last snapshot.
        let growth_percent = [0, 0, 50, 100][rng.range_inclusive(0, 3) as usize];
        let snapshot = match snapshot == SnapshotOptions::replica_defaults() {
            true => snapshot,
            false => SnapshotOptions { growth_percent, ..snapshot },
        };
        Options {
            seed,
            shape,
            network,
            disk,
            crash,
            partition,
            pause,
            clock,
            workload,
            raft,
            transfer_interval_ms_max,
            snapshot,
            membership,
            faulty_ms_max: FAULTY_MS_MAX,
            liveness_ms_max: LIVENESS_MS_MAX,
        }
    }

    /// These options with the operations on several keys, ranges and counters in the
    /// workload too (`--multi-key`), at weights drawn from the seed: each from 0 to 3, on the
    /// scale of the others' 0 to 10, so that scans and counts (which the checker must judge
    /// with every key at once) stay a minority.
    pub fn with_multi_key_ops(mut self) -> Options {
        let rng = &mut Streams::new(self.seed).multi_key;
        for weight in &mut self.workload.multi {
            *weight = rng.range_inclusive(0, 3);
        }
        // At least one of them, or the flag would do nothing.
        let pick = rng.range_inclusive(0, MULTI_KEY_OPS.len() as u64 - 1) as usize;
        self.workload.multi[pick] = self.workload.multi[pick].max(1);
        self
    }

    /// These options with batches in the workload too (`--batches`), at a weight drawn from
    /// the seed, 1 to 4 on the scale of the others' 0 to 10.
    pub fn with_batches(mut self) -> Options {
        self.workload.batch = Streams::new(self.seed).batches.range_inclusive(1, 4);
        self
    }

    /// These options with leaders answering reads from their lease (`--lease-reads`), which
    /// allows for exactly the clocks' drift: the tightest lease that is still safe.
    pub fn with_lease_reads(mut self) -> Options {
        self.raft.read_lease = true;
        self.raft.lease_drift_ppm = self.clock.drift_ppm_max;
        self
    }

    /// The command line that replays this run.
    pub fn reproduce_command(&self) -> String {
        let mut command = format!(
            "raftkv-sim run --seed {} --nodes {} --clients {} --ops {} --faults {}",
            self.seed, self.shape.nodes, self.shape.clients, self.shape.ops, self.shape.faults
        );
        if self.workload.multi.iter().any(|weight| *weight > 0) {
            command.push_str(" --multi-key");
        }
        if self.workload.batch > 0 {
            command.push_str(" --batches");
        }
        let drawn_clock = Options::draw(self.seed, self.shape).clock;
        if self.clock.drift_ppm_max != drawn_clock.drift_ppm_max {
            command.push_str(&format!(" --clock-drift-ppm {}", self.clock.drift_ppm_max));
        }
        if self.raft.read_lease {
            command.push_str(" --lease-reads");
            if self.raft.lease_drift_ppm != self.clock.drift_ppm_max {
                command.push_str(&format!(" --lease-drift-ppm {}", self.raft.lease_drift_ppm));
            }
        }
        let drawn = Options::draw(self.seed, self.shape).snapshot;
        let threshold_bytes = self.snapshot.threshold_bytes;
        if threshold_bytes != drawn.threshold_bytes {
            command.push_str(&format!(" --snapshot-bytes {threshold_bytes}"));
        }
        let growth_percent = self.snapshot.growth_percent;
        if growth_percent != drawn.growth_percent {
            command.push_str(&format!(" --snapshot-growth-percent {growth_percent}"));
        }
        command
    }
}

fn draw_network(rng: &mut Prng, faulty: bool) -> NetworkOptions {
    let latency_us_min = rng.range_inclusive(20, 500);
    let latency_us_max = latency_us_min + rng.range_inclusive(0, 10_000);
    let tail = Ratio::draw(rng, 10, 100);
    let latency_tail_us_max = latency_us_max + rng.range_inclusive(0, 400_000);
    let loss_max = [1, 10, 30][rng.range_inclusive(0, 2) as usize];
    let loss = Ratio::draw(rng, loss_max, 100);
    let duplicate = Ratio::draw(rng, 10, 100);
    if faulty {
        NetworkOptions {
            latency_us_min,
            latency_us_max,
            tail,
            latency_tail_us_max,
            loss,
            duplicate,
            long_delay: Ratio::NEVER,
        }
    } else {
        NetworkOptions {
            latency_us_min: 100,
            latency_us_max: 1_000,
            tail: Ratio::NEVER,
            latency_tail_us_max: 1_000,
            loss: Ratio::NEVER,
            duplicate: Ratio::NEVER,
            long_delay: Ratio::NEVER,
        }
    }
}

fn draw_disk(rng: &mut Prng, faulty: bool) -> DiskOptions {
    let latency_us_min = rng.range_inclusive(10, 1_000);
    let latency_us_max = latency_us_min + rng.range_inclusive(0, 20_000);
    let tail = Ratio::draw(rng, 10, 100);
    let latency_tail_us_max = latency_us_max + rng.range_inclusive(0, 300_000);
    let torn = Ratio::draw(rng, 4, 4);
    if faulty {
        DiskOptions {
            latency_us_min,
            latency_us_max,
            tail,
            latency_tail_us_max,
            torn,
            io_error: Ratio::NEVER,
            bit_rot_interval_ms_max: 0,
            segment_bytes: 64 << 10,
            zero_fill_bytes: 0,
            prepare_segments: false,
            lies: false,
        }
    } else {
        DiskOptions {
            latency_us_min: 50,
            latency_us_max: 500,
            tail: Ratio::NEVER,
            latency_tail_us_max: 500,
            torn: Ratio::NEVER,
            io_error: Ratio::NEVER,
            bit_rot_interval_ms_max: 0,
            segment_bytes: 64 << 10,
            zero_fill_bytes: 0,
            prepare_segments: false,
            lies: false,
        }
    }
}

/// The engine's layout, drawn in every run (small segments, so that runs rotate and compact
/// them), and with `disk` faults the file system's: failed writes and rotting bits.
fn draw_storage(rng: &mut Prng, faulty: bool, disk: DiskOptions) -> DiskOptions {
    let segment_bytes = [512, 4 << 10, 64 << 10][rng.range_inclusive(0, 2) as usize];
    let zero_fill_bytes = [0, 512, 4 << 10][rng.range_inclusive(0, 2) as usize];
    let io_error = Ratio::draw(rng, 5, 1_000);
    let bit_rot_interval_ms_max = [0, 500, 5_000][rng.range_inclusive(0, 2) as usize];
    let disk = DiskOptions { segment_bytes, zero_fill_bytes, ..disk };
    if faulty { DiskOptions { io_error, bit_rot_interval_ms_max, ..disk } } else { disk }
}

fn draw_workload(rng: &mut Prng) -> WorkloadOptions {
    let keys = [1, 2, 3, 5, 8][rng.range_inclusive(0, 4) as usize];
    let mut mix = [0; 5];
    for weight in &mut mix {
        *weight = rng.range_inclusive(0, 10);
    }
    // Reads pin down the order writes took effect in; without them the checker must try
    // every order of concurrent appends against the final value.
    mix[0] = mix[0].max(1);
    WorkloadOptions {
        keys,
        mix,
        multi: [0; MULTI_KEY_OPS.len()],
        batch: 0,
        think_us_max: [0, 1_000, 50_000][rng.range_inclusive(0, 2) as usize],
    }
}

fn draw_raft(rng: &mut Prng) -> RaftOptions {
    let election_timeout_ms_min = rng.range_inclusive(150, 400);
    let election_timeout_ms_max = election_timeout_ms_min * 2;
    let heartbeat_interval_ms = election_timeout_ms_min / rng.range_inclusive(3, 10);
    RaftOptions {
        election_timeout_ms_min,
        election_timeout_ms_max,
        heartbeat_interval_ms,
        max_entries_per_append: [1, 3, 64, 256][rng.range_inclusive(0, 3) as usize],
        max_bytes_per_append: [64, 4_096, 1 << 20][rng.range_inclusive(0, 2) as usize],
        max_inflight_appends: [1, 2, 8, 32][rng.range_inclusive(0, 3) as usize],
        // Mostly the replicas' default; sometimes short, so that sessions expire mid-run.
        session_timeout_ms: if rng.chance(1, 8) {
            rng.range_inclusive(2_000, 20_000)
        } else {
            RaftOptions::replica_defaults().session_timeout_ms
        },
        request_timeout_ms: rng.range_inclusive(200, 1_500),
        read_lease: false,
        lease_drift_ppm: 0,
        // Not drawn, so that the runs' other draws stay those of earlier versions.
        log_cache_bytes: Some(SIM_LOG_CACHE_BYTES),
    }
}

/// Prints as `name=value` pairs, one group a line, for the head of a run's output.
impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shape;
        writeln!(
            f,
            "seed={} nodes={} clients={} ops={} faults={}",
            self.seed, s.nodes, s.clients, s.ops, s.faults
        )?;
        writeln!(f, "{}", self.network)?;
        writeln!(f, "{}", self.disk)?;
        if s.faults.crash {
            writeln!(f, "{}", self.crash)?;
        }
        if s.faults.partition {
            writeln!(f, "{}", self.partition)?;
        }
        if s.faults.pause {
            writeln!(f, "{}", self.pause)?;
        }
        if s.faults.transfer {
            writeln!(f, "transfer: interval_ms_max={}", self.transfer_interval_ms_max)?;
        }
        if s.faults.membership {
            writeln!(f, "{}", self.membership)?;
        }
        writeln!(f, "{}", self.clock)?;
        writeln!(f, "{}", self.workload)?;
        writeln!(f, "{}", self.raft)?;
        writeln!(f, "{}", self.snapshot)?;
        write!(f, "faulty_ms_max={} liveness_ms_max={}", self.faulty_ms_max, self.liveness_ms_max)
    }
}

impl fmt::Display for NetworkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "network: latency_us={}..{} tail={} latency_tail_us_max={} loss={} duplicate={} \
             long_delay={}",
            self.latency_us_min,
            self.latency_us_max,
            self.tail,
            self.latency_tail_us_max,
            self.loss,
            self.duplicate,
            self.long_delay
        )
    }
}

impl fmt::Display for DiskOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "disk: latency_us={}..{} tail={} latency_tail_us_max={} torn={} io_error={} \
             bit_rot_interval_ms_max={} segment_bytes={} zero_fill_bytes={} \
             prepare_segments={}{}",
            self.latency_us_min,
            self.latency_us_max,
            self.tail,
            self.latency_tail_us_max,
            self.torn,
            self.io_error,
            self.bit_rot_interval_ms_max,
            self.segment_bytes,
            self.zero_fill_bytes,
            self.prepare_segments,
            if self.lies { " LIES (acknowledges before durable)" } else { "" }
        )
    }
}

impl fmt::Display for CrashOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash: interval_ms_max={} downtime_ms_max={} down_max={} during_snapshot={}",
            self.interval_ms_max, self.downtime_ms_max, self.down_max, self.during_snapshot
        )
    }
}

impl fmt::Display for PartitionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition: interval_ms_max={} duration_ms_max={}",
            self.interval_ms_max, self.duration_ms_max
        )
    }
}

impl fmt::Display for PauseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pause: interval_ms_max={} duration_ms_max={}",
            self.interval_ms_max, self.duration_ms_max
        )
    }
}

impl fmt::Display for MembershipOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "membership: interval_ms_max={} voters={}..{} added_max={}",
            self.interval_ms_max, self.voters_min, self.voters_max, self.added_max
        )
    }
}

impl fmt::Display for ClockOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clock: drift_ppm_max={} offset_ms_max={}",
            self.drift_ppm_max, self.offset_ms_max
        )
    }
}

impl fmt::Display for WorkloadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workload: keys={} mix(get,put,append,delete,cas)={:?} think_us_max={}",
            self.keys, self.mix, self.think_us_max
        )?;
        if self.multi.iter().any(|weight| *weight > 0) {
            write!(f, " multi({})={:?}", MULTI_KEY_OPS.join(","), self.multi)?;
        }
        if self.batch > 0 {
            write!(f, " batch={}", self.batch)?;
        }
        Ok(())
    }
}

impl fmt::Display for RaftOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raft: election_timeout_ms={}..{} heartbeat_interval_ms={} max_entries_per_append={} \
             max_bytes_per_append={} max_inflight_appends={} session_timeout_ms={} \
             request_timeout_ms={}",
            self.election_timeout_ms_min,
            self.election_timeout_ms_max,
            self.heartbeat_interval_ms,
            self.max_entries_per_append,
            self.max_bytes_per_append,
            self.max_inflight_appends,
            self.session_timeout_ms,
            self.request_timeout_ms
        )?;
        if self.read_lease {
            write!(f, " read_lease lease_drift_ppm={}", self.lease_drift_ppm)?;
        }
        if let Some(bytes) = self.log_cache_bytes {
            write!(f, " log_cache_bytes={bytes}")?;
        }
        Ok(())
    }
}

impl fmt::Display for SnapshotOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot: threshold_bytes={} growth_percent={} chunk_bytes={} max_inflight_chunks={}",
            self.threshold_bytes, self.growth_percent, self.chunk_bytes, self.max_inflight_chunks
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_sets_parse_and_print_back() {
        for text in ["none", "all", "net", "crash,disk", "net,partition,pause,clock", "transfer"] {
            let set: FaultSet = text.parse().expect("valid");
            assert_eq!(set.to_string(), text);
        }
        assert_eq!(
            "net,crash,partition,pause,clock,disk,transfer,membership"
                .parse::<FaultSet>()
                .expect("valid"),
            FaultSet::ALL
        );
        assert!("net,flood".parse::<FaultSet>().is_err());
    }

    #[test]
    fn one_seed_draws_the_same_options_and_turning_a_class_off_changes_only_it() {
        let all = Options::draw(7, Shape::DEFAULT);
        assert_eq!(all, Options::draw(7, Shape::DEFAULT));
        let mut shape = Shape::DEFAULT;
        shape.faults.net = false;
        let quiet_net = Options::draw(7, shape);
        assert_eq!(quiet_net.disk, all.disk);
        assert_eq!(quiet_net.workload, all.workload);
        assert_ne!(quiet_net.network, all.network);
        assert_ne!(Options::draw(8, Shape::DEFAULT), all);
        shape.faults.membership = false;
        let without_membership = Options::draw(7, shape);
        assert_eq!(without_membership, Options { shape, ..quiet_net });
    }

    #[test]
    fn the_membership_class_draws_after_every_other_option() {
        // Drawn whatever the classes, so turning one on or off moves nothing else.
        let options = Options::draw(42, Shape::DEFAULT);
        let before = Options::draw(42, Shape { faults: FaultSet::NONE, ..Shape::DEFAULT });
        assert_eq!(options.membership, before.membership);
        assert_eq!(options.snapshot, before.snapshot);
        assert_eq!(options.disk.prepare_segments, before.disk.prepare_segments);
        let shape = Shape::draw(42);
        let mut without = shape;
        without.faults.membership = false;
        assert_eq!(Options::draw(42, shape).raft, Options::draw(42, without).raft);
    }

    #[test]
    fn snapshot_thresholds_drawn_per_seed_range_from_a_few_bytes_to_the_default() {
        let default = SnapshotOptions::replica_defaults();
        let drawn: Vec<SnapshotOptions> =
            (0..100).map(|seed| Options::draw(seed, Shape::DEFAULT).snapshot).collect();
        let thresholds: Vec<usize> = drawn.iter().map(|s| s.threshold_bytes).collect();
        assert!(thresholds.iter().any(|&bytes| bytes <= 200), "compaction at every batch");
        assert!(thresholds.iter().any(|&bytes| (2_000..=20_000).contains(&bytes)));
        assert!(drawn.contains(&default), "some runs keep the replicas' defaults");
        assert!(drawn.iter().any(|s| s.chunk_bytes == 16 && s.max_inflight_chunks == 1));
    }
}
