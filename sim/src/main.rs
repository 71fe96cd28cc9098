//! `raftkv-sim`: run one seed, or a swarm of seeds, through the deterministic simulator.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant as WallClock, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raftkv_checker::Verdict;
use raftkv_sim::{
    CatchUpSettings, FaultCounters, FaultSet, MembershipStats, Options, Report, Shape,
    SnapshotOptions, TraceOutput,
};

/// Prints one line to standard output, like `println!`, except that a reader that went away
/// (`raftkv-sim run --trace | head`) is not an error: the rest of the output is dropped
/// quietly, and the exit status still tells the verdict.
macro_rules! say {
    ($($arg:tt)*) => { print_line(format_args!($($arg)*)) };
}

/// Deterministic simulation of a raftkv cluster: seeded network, disk, crash, pause and clock
/// faults; Raft safety checked at every step; liveness after the faults stop; the history
/// checked for linearizability. The same seed and options always give the same run.
#[derive(Parser)]
#[command(name = "raftkv-sim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one seed. Prints the seed and every drawn option, then a verdict line; exits 1 on a
    /// violation.
    Run(RunArgs),
    /// Runs every seed of a range with options drawn per seed; stops at the first failure and
    /// prints the command that reproduces it.
    Swarm(SwarmArgs),
    /// Measures how long a follower takes to catch up after missing many entries: it is down
    /// while the clients commit their puts, then restarts; prints the simulated time until it
    /// has applied everything the leader had committed. No faults.
    Catchup(CatchupArgs),
}

/// The most replicas the command line accepts; swarm draws up to seven.
const NODES_MAX: u64 = 9;

/// The most clients the command line accepts for a run; swarm draws up to ten.
const CLIENTS_MAX: u64 = 100;

/// The fewest replicas of the catch-up figure: one falls behind while a majority of the others
/// commits without it, which takes two more.
const CATCH_UP_NODES_MIN: u64 = 3;

/// The most clients the catch-up figure accepts, each with one put in flight.
const CATCH_UP_CLIENTS_MAX: u64 = 1_000;

/// Size and faults of a run. Left out, `run` uses the default shown and `swarm` draws them
/// per seed.
#[derive(Args, Clone)]
struct ShapeArgs {
    /// Replicas [run default: 5; swarm: 1 to 7, mostly 3 or 5].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=NODES_MAX))]
    nodes: Option<u64>,
    /// Clients, one operation at a time each [run default: 5; swarm: 1 to 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=CLIENTS_MAX))]
    clients: Option<u64>,
    /// Operations the clients issue in all, besides the final reads [run default: 500;
    /// swarm: 50 to 600].
    #[arg(long)]
    ops: Option<u64>,
    /// Fault classes: none, all, or a list of
    /// net,crash,partition,pause,clock,disk,transfer,membership [run default: all; swarm: each
    /// class on or off].
    #[arg(long)]
    faults: Option<FaultSet>,
    /// A replica snapshots its state once its applied log weighs this many bytes [default:
    /// drawn from the seed, like every other setting: the replicas' own 64 MiB in a quarter of
    /// the seeds, 1 to 20,000 bytes in the others].
    #[arg(long)]
    snapshot_bytes: Option<usize>,
    /// ... or once it weighs this percentage of the replica's last snapshot, if more [default:
    /// drawn from the seed: 0 (the byte threshold alone), 50 or 100 in runs that compact].
    #[arg(long, value_name = "PERCENT")]
    snapshot_growth_percent: Option<u32>,
    /// The clients also read and write several keys at once, scan, count, increment and
    /// put-if (weights drawn from the seed), and the checker judges those too.
    #[arg(long)]
    multi_key: bool,
    /// The clients also send batches: pipelines of 2 to 6 commands drawn like the others, run
    /// in order at one point (weight drawn from the seed), and the checker judges each as one
    /// operation.
    #[arg(long)]
    batches: bool,
    /// Leaders answer reads from their lease instead of a ReadIndex round, allowing for
    /// exactly the drift of the simulated clocks (see the README's read modes).
    #[arg(long)]
    lease_reads: bool,
    /// With --lease-reads: the clock drift the leases allow for, in parts per million, instead
    /// of the clocks' real bound. Only to show that the checker catches a lease that trusts
    /// the clocks more than they deserve.
    #[arg(long, hide = true, value_name = "PPM", requires = "lease_reads", value_parser = clap::value_parser!(u64).range(0..1_000_000))]
    lease_drift_ppm: Option<u64>,
    /// With the clock fault class: each node's clock drifts up to this many parts per million
    /// instead of the drawn bound. Only to widen what a lease with a too small
    /// --lease-drift-ppm gets wrong, so that a swarm finds it sooner.
    #[arg(long, hide = true, value_name = "PPM", value_parser = clap::value_parser!(u64).range(0..1_000_000))]
    clock_drift_ppm: Option<u64>,
}

impl ShapeArgs {
    fn apply(&self, mut shape: Shape) -> Shape {
        if let Some(nodes) = self.nodes {
            shape.nodes = nodes as usize;
        }
        if let Some(clients) = self.clients {
            shape.clients = clients as usize;
        }
        if let Some(ops) = self.ops {
            shape.ops = ops;
        }
        if let Some(faults) = self.faults {
            shape.faults = faults;
        }
        shape
    }

    fn options(&self, seed: u64, shape: Shape) -> Options {
        let mut options = Options::draw(seed, self.apply(shape));
        if let Some(bytes) = self.snapshot_bytes {
            options.snapshot.threshold_bytes = bytes;
        }
        if let Some(percent) = self.snapshot_growth_percent {
            options.snapshot.growth_percent = percent;
        }
        if self.multi_key {
            options = options.with_multi_key_ops();
        }
        if self.batches {
            options = options.with_batches();
        }
        if let Some(ppm) = self.clock_drift_ppm.filter(|_| options.shape.faults.clock) {
            options.clock.drift_ppm_max = ppm;
        }
        if self.lease_reads {
            options = options.with_lease_reads();
        }
        if let Some(ppm) = self.lease_drift_ppm {
            options.raft.lease_drift_ppm = ppm;
        }
        options
    }
}

#[derive(Args)]
struct RunArgs {
    /// The seed of every random choice [default: drawn from the system time, and printed].
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Writes the history (JSON Lines, the format described in checker/README.md) to this file.
    #[arg(long, value_name = "OUT.jsonl")]
    history: Option<PathBuf>,
    /// Prints one line per event: virtual time, node, event.
    #[arg(long)]
    trace: bool,
    /// Ends with one JSON object of the run's figures.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SwarmArgs {
    /// The seeds, `A..B` (A up to B-1) or `A..=B`.
    #[arg(long, value_parser = parse_seeds)]
    seeds: Range<u64>,
    #[command(flatten)]
    shape: ShapeArgs,
    /// Ends with one JSON object of the swarm's figures.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CatchupArgs {
    /// The seed of the network's and disks' delays.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replicas.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(CATCH_UP_NODES_MIN..=NODES_MAX))]
    nodes: u64,
    /// Puts committed while the follower is down (one log entry each).
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Clients putting concurrently.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=CATCH_UP_CLIENTS_MAX))]
    clients: u64,
    /// The snapshot threshold; the replicas' own (64 MiB) turns compaction off for any
    /// simulated log, so the follower gets the whole log instead of a snapshot.
    #[arg(long, default_value_t = 64 << 10)]
    snapshot_bytes: usize,
    /// Ends with one JSON object of the figures.
    #[arg(long)]
    json: bool,
}

fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let bad = || format!("expected A..B or A..=B, got {text:?}");
    let (start, end) = text.split_once("..").ok_or_else(bad)?;
    let start: u64 = start.parse().map_err(|_| bad())?;
    let end = match end.strip_prefix('=') {
        Some(last) => last.parse::<u64>().map_err(|_| bad())?.checked_add(1).ok_or_else(bad)?,
        None => end.parse().map_err(|_| bad())?,
    };
    if end <= start {
        return Err(format!("the range {text:?} holds no seed"));
    }
    Ok(start..end)
}

fn print_line(line: fmt::Arguments<'_>) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    let mut out = io::stdout().lock();
    let written = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
    if let Err(error) = written {
        if error.kind() != io::ErrorKind::BrokenPipe && !REPORTED.swap(true, Ordering::Relaxed) {
            eprintln!("raftkv-sim: cannot write to standard output: {error}");
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run(&args),
        Command::Swarm(args) => swarm(&args),
        Command::Catchup(args) => catchup(&args),
    }
}

fn catchup(args: &CatchupArgs) -> ExitCode {
    let mut snapshot = SnapshotOptions::replica_defaults();
    snapshot.threshold_bytes = args.snapshot_bytes;
    let settings = CatchUpSettings {
        seed: args.seed,
        nodes: args.nodes as usize,
        clients: args.clients as usize,
        puts: args.entries,
        snapshot,
    };
    say!(
        "seed={} nodes={} clients={} entries={} snapshot: threshold_bytes={} chunk_bytes={} \
         max_inflight_chunks={}",
        settings.seed,
        settings.nodes,
        settings.clients,
        settings.puts,
        settings.snapshot.threshold_bytes,
        settings.snapshot.chunk_bytes,
        settings.snapshot.max_inflight_chunks
    );
    let started = WallClock::now();
    let result = raftkv_sim::catch_up(&settings);
    let wall_ms = millis_since(started);
    let figure = match result {
        Ok(figure) => figure,
        Err(error) => {
            say!("catch-up: FAIL {error}");
            return ExitCode::FAILURE;
        }
    };
    say!(
        "catch-up: n{} restarted {} entries behind (its log ended at {}, the leader had \
         committed {}, in {} ms simulated) and applied them all {} later (simulated): \
         {} snapshots installed, the leader's of {} bytes; {} messages, {} appends read back \
         from the leader's disk; wall {wall_ms} ms",
        figure.follower,
        figure.entries_behind(),
        figure.follower_last,
        figure.leader_commit,
        figure.fill.as_millis(),
        figure.catch_up,
        figure.snapshots_installed,
        figure.snapshot_bytes,
        figure.messages,
        figure.appends_from_disk
    );
    if args.json {
        let json = serde_json::json!({
            "seed": settings.seed,
            "nodes": settings.nodes,
            "clients": settings.clients,
            "snapshot_bytes": settings.snapshot.threshold_bytes,
            "entries_behind": figure.entries_behind(),
            "leader_commit": figure.leader_commit.0,
            "fill_ms": figure.fill.as_millis(),
            "catch_up_us": figure.catch_up.as_micros(),
            "snapshots_installed": figure.snapshots_installed,
            "leader_snapshot_bytes": figure.snapshot_bytes,
            "messages": figure.messages,
            "appends_from_disk": figure.appends_from_disk,
            "wall_ms": wall_ms,
        });
        say!("{json}");
    }
    ExitCode::SUCCESS
}

fn millis_since(start: WallClock) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The rate of `count` things done in `wall_ms` milliseconds (at least one), per second.
fn per_second(count: u64, wall_ms: u64) -> u64 {
    const MILLIS_PER_SECOND: u64 = 1_000;
    count * MILLIS_PER_SECOND / wall_ms
}

fn run(args: &RunArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        nanos as u64
    });
    // Every output file is opened before the run, so that a path that cannot be written is
    // found at once rather than after the whole simulation.
    let history_file = match args.history.as_deref().map(File::create).transpose() {
        Ok(file) => file,
        Err(error) => {
            let path = args.history.as_deref().unwrap_or(Path::new("")).display();
            eprintln!("raftkv-sim: cannot write the history to {path}: {error}");
            return ExitCode::from(2);
        }
    };
    let options = args.shape.options(seed, Shape::DEFAULT);
    say!("{options}");
    let output = if args.trace { TraceOutput::Stdout } else { TraceOutput::Hidden };
    let started = WallClock::now();
    let report = raftkv_sim::run(options, output);
    let wall_ms = millis_since(started);
    let mut status = if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    if let (Some(file), Some(path)) = (history_file, &args.history) {
        if let Err(error) = write_history(file, &report) {
            eprintln!("raftkv-sim: cannot write the history to {}: {error}", path.display());
            status = ExitCode::from(2);
        }
    }
    if let Some(explanation) = report.explanation() {
        say!("{explanation}");
    }
    if args.json {
        say!("{}", report.verdict_line());
        say!("reproduce: {}", report.options.reproduce_command());
        say!("{}", report.json(wall_ms));
    } else {
        say!("reproduce: {}", report.options.reproduce_command());
        say!("{} wall_ms={wall_ms}", report.verdict_line());
    }
    status
}

fn write_history(file: File, report: &Report) -> io::Result<()> {
    let mut out = BufWriter::new(file);
    raftkv_checker::parse::jsonl::write(&report.history, &mut out)?;
    out.flush()
}

fn swarm(args: &SwarmArgs) -> ExitCode {
    let seeds = args.seeds.clone();
    let bar = progress_bar(seeds.end - seeds.start);
    let started = WallClock::now();
    let mut tally = SwarmTally::default();
    for seed in seeds {
        let options = args.shape.options(seed, Shape::draw(seed));
        let run_started = WallClock::now();
        let report = raftkv_sim::run(options, TraceOutput::Hidden);
        bar.inc(1);
        if !tally.record(report, millis_since(run_started)) {
            break;
        }
    }
    bar.finish_and_clear();
    tally.print(args, millis_since(started).max(1));
    if tally.failure.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// A progress bar on a terminal, nothing otherwise.
fn progress_bar(count: u64) -> ProgressBar {
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(count), target);
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}")
            .expect("the template is valid");
    bar.set_style(style);
    bar
}

/// What the runs of a swarm add up to.
#[derive(Default)]
struct SwarmTally {
    passed: u64,
    sim_ops: u64,
    /// The commands that replay the runs whose history the checker could not decide in time.
    unknown: Vec<String>,
    /// The slowest run: its wall time and the command that replays it.
    slowest: (u64, String),
    /// The run whose persisted Raft state grew largest against its threshold: the ratio in
    /// thousandths, and the command that replays it.
    persisted_worst: (u64, String),
    /// Storage faults injected, summed over the runs.
    storage: FaultCounters,
    disk_failures: u64,
    damaged_restarts: u64,
    /// Reads answered from a leader's lease, summed over the runs.
    lease_reads: u64,
    appends_from_disk: u64,
    log_reads_failed: u64,
    restarts_with_entries_on_disk: u64,
    loads_from_disk: u64,
    /// Membership changes, summed over the runs.
    membership: MembershipStats,
    failure: Option<Report>,
}

impl SwarmTally {
    /// Adds one run, which took `run_ms`; returns whether the swarm goes on (it passed).
    fn record(&mut self, report: Report, run_ms: u64) -> bool {
        if run_ms >= self.slowest.0 {
            self.slowest = (run_ms, report.options.reproduce_command());
        }
        if report.persisted_ratio_max_milli > self.persisted_worst.0 {
            let command = report.options.reproduce_command();
            self.persisted_worst = (report.persisted_ratio_max_milli, command);
        }
        self.sim_ops += report.ops_ok + report.ops_indeterminate;
        if report.linearizability == Some(Verdict::Unknown) {
            self.unknown.push(report.options.reproduce_command());
        }
        self.storage += report.stats.storage;
        self.disk_failures += report.stats.disk_failures;
        self.damaged_restarts += report.stats.damaged_restarts;
        self.lease_reads += report.stats.lease_reads;
        self.appends_from_disk += report.stats.appends_from_disk;
        self.log_reads_failed += report.stats.log_reads_failed;
        self.restarts_with_entries_on_disk += report.stats.restarts_with_entries_on_disk;
        self.loads_from_disk += report.stats.loads_from_disk;
        self.membership += &report.stats.membership;
        if report.passed() {
            self.passed += 1;
            true
        } else {
            self.failure = Some(report);
            false
        }
    }

    fn runs(&self) -> u64 {
        self.passed + u64::from(self.failure.is_some())
    }

    /// Prints the failure, if any, the summary line and, with `--json`, the figures.
    fn print(&self, args: &SwarmArgs, wall_ms: u64) {
        if let Some(report) = &self.failure {
            say!("{}", report.options);
            if let Some(explanation) = report.explanation() {
                say!("{explanation}");
            }
            say!("{}", report.verdict_line());
        }
        for command in &self.unknown {
            say!("undecided: {command}");
        }
        let reproduce = self.failure.as_ref().map(|report| report.options.reproduce_command());
        if args.json {
            say!("{}", self.summary(args, wall_ms));
            if let Some(command) = &reproduce {
                say!("reproduce: {command}");
            }
            say!("{}", self.json(args, wall_ms));
        } else {
            if let Some(command) = &reproduce {
                say!("reproduce: {command}");
            }
            say!("{}", self.summary(args, wall_ms));
        }
    }

    fn summary(&self, args: &SwarmArgs, wall_ms: u64) -> String {
        let (runs, seeds) = (self.runs(), args.seeds.end - args.seeds.start);
        let (s, m) = (&self.storage, &self.membership);
        let summary = format!(
            "swarm: {} passed of {runs} runs ({seeds} seeds asked) in {wall_ms} ms: {} runs/s, \
             {} simulated ops/s; {} histories the checker could not decide in time; slowest \
             run {} ms: {}; largest persisted Raft state {}.{:03} times the threshold: {}; \
             storage faults: {} crashes mid-write, {} torn and {} lost writes, {} bit flips, \
             {} ENOSPC, {} EIO, {} damaged restarts; {} appends read back from disk, {} \
             reads failed, {} restarts with entries left on disk, {} loads of them to apply; \
             membership: {} learners added, {} promotions, {} removals, {} \
             replacements, {} refusals",
            self.passed,
            per_second(runs, wall_ms),
            per_second(self.sim_ops, wall_ms),
            self.unknown.len(),
            self.slowest.0,
            self.slowest.1,
            self.persisted_worst.0 / 1_000,
            self.persisted_worst.0 % 1_000,
            self.persisted_worst.1,
            s.crashes_between_steps,
            s.torn_writes,
            s.lost_writes,
            s.bit_flips,
            s.no_space_errors,
            s.io_errors,
            self.damaged_restarts,
            self.appends_from_disk,
            self.log_reads_failed,
            self.restarts_with_entries_on_disk,
            self.loads_from_disk,
            m.learners_added,
            m.promotions,
            m.removals,
            m.replacements,
            m.refused()
        );
        match args.shape.lease_reads {
            true => format!("{summary}; {} reads answered from a lease", self.lease_reads),
            false => summary,
        }
    }

    fn json(&self, args: &SwarmArgs, wall_ms: u64) -> serde_json::Value {
        let failure = self.failure.as_ref();
        let s = &self.storage;
        serde_json::json!({
            "seeds": format!("{}..{}", args.seeds.start, args.seeds.end),
            "runs": self.runs(),
            "passed": self.passed,
            "verdict": if failure.is_some() { "fail" } else { "pass" },
            "failed_seed": failure.map(|report| report.options.seed),
            "violation": failure.and_then(|report| report.violation.as_ref().map(ToString::to_string)),
            "reproduce": failure.map(|report| report.options.reproduce_command()),
            "wall_ms": wall_ms,
            "runs_per_s": per_second(self.runs(), wall_ms),
            "sim_ops_per_s": per_second(self.sim_ops, wall_ms),
            "slowest_ms": self.slowest.0,
            "slowest": self.slowest.1,
            "linearizability_unknown": self.unknown.len(),
            "linearizability_unknown_runs": self.unknown,
            "persisted_ratio_max": self.persisted_worst.0 as f64 / 1_000.0,
            "persisted_ratio_max_run": self.persisted_worst.1,
            "storage": {
                "crashes_mid_write": s.crashes_between_steps,
                "torn_writes": s.torn_writes,
                "lost_writes": s.lost_writes,
                "lost_dir_ops": s.lost_dir_ops,
                "bit_flips": s.bit_flips,
                "enospc": s.no_space_errors,
                "eio": s.io_errors,
                "disk_failures": self.disk_failures,
                "damaged_restarts": self.damaged_restarts,
            },
            "membership": self.membership.json(),
            "lease_reads": self.lease_reads,
            "appends_from_disk": self.appends_from_disk,
            "log_reads_failed": self.log_reads_failed,
            "restarts_with_entries_on_disk": self.restarts_with_entries_on_disk,
            "loads_from_disk": self.loads_from_disk,
        })
    }
}
