//! `raftkv bench`: many concurrent sessions on one thread, then throughput and latency.
//!
//! Every session runs one operation at a time, like a synchronous application thread; all of
//! them share one connection per node. Each session first opens its session with one write,
//! and `get` and `mixed` runs first fill the key space; neither is timed. Latency is measured
//! from submission to answer, retries included. Every value written is unique (its session and
//! number, padded to the value size), so that a recorded history (`--history`) says which write
//! a read saw.
//!
//! With `--spawn-nodes N` the benchmark starts its own cluster of this program (see `nodes`) and
//! reports what the nodes did during the run: leader changes, snapshots saved, resident memory.
//! With `--floor` it measures the floor under a single client's put on this machine before and
//! after the run (see `floor`) and prints the median latency as a multiple of the lower, and the
//! disk's own tail (its fdatasync p99 / p50) beside the run's p99 / p50.

mod bare_put;
mod floor;
mod nodes;
mod rank;
mod scratch;
mod summary;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use raftkv_core::kv::KvCommand;
use raftkv_core::prng::Prng;

use crate::client::pool::{ClerkPool, Finished};
use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;
use crate::history::History;
use floor::FloorReadings;
use nodes::{NodeSettings, SpawnedCluster};
use summary::{ClusterReport, Summary};

/// What the sessions do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Puts to random keys.
    Put,
    /// Linearizable gets of random keys.
    Get,
    /// Half gets, half puts.
    Mixed,
}

/// Options of `raftkv bench`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv bench                                   30,000 puts from 100 sessions
  raftkv bench --workload mixed --json
  raftkv bench --spawn-nodes 3 --ops 100000 --floor
  raftkv bench --history h.jsonl && raftkv-check h.jsonl")]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Operations in all, after warm-up.
    #[arg(long, default_value_t = 30_000)]
    ops: u64,
    /// Bytes of each value written (at least what it takes to make each value unique).
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Distinct keys used.
    #[arg(long, default_value_t = 1_000)]
    keys: u64,
    /// What to run.
    #[arg(long, value_enum, default_value_t = Workload::Put)]
    workload: Workload,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Record every operation (warm-up included) in FILE, in the JSON Lines history format that
    /// `raftkv-check` reads, to check the cluster's answers for linearizability.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Start N nodes of this program on 127.0.0.1 (in the clear) for the run, instead of using
    /// --cluster, and report their leader changes, snapshots and memory; they stop afterwards.
    #[arg(long, value_name = "N", default_value_t = 0)]
    spawn_nodes: u16,
    /// With --spawn-nodes: node N listens on 127.0.0.1:(BASE_PORT + N - 1).
    #[arg(long, default_value_t = 7101)]
    base_port: u16,
    /// With --spawn-nodes: where the nodes keep their data and logs. Default: a new directory
    /// in the system's temporary directory, removed after the run.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// With --spawn-nodes: the nodes' `--snapshot-bytes` (default: theirs).
    #[arg(long, value_name = "BYTES")]
    snapshot_bytes: Option<u64>,
    /// With --spawn-nodes: one more argument for every node's `raftkv serve` (repeatable).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Measure the floor under a put here (one 4 KiB fdatasync of a preallocated file, in the
    /// nodes' data directory or the temporary one, plus two loopback round trips) before the run
    /// and after it, and print the p50 latency as a multiple of the lower of the two, and the
    /// disk's own fdatasync p99 / p50 beside the run's p99 / p50. With --spawn-nodes N, also the
    /// cluster floor of N nodes on this one disk: a majority of them syncing 4 KiB at once
    /// (p50), plus the two round trips; and a bare put, the put's path (client, leader, followers,
    /// each node's sync) with none of raftkv's code on it.
    #[arg(long)]
    floor: bool,
}

/// How long the benchmark waits for any operation to finish before it calls the cluster stuck.
const STALL: Duration = Duration::from_secs(30);

/// Runs the benchmark and prints its summary.
pub(crate) fn run(args: &BenchArgs) -> Result<(), Failure> {
    if args.clients == 0 || args.keys == 0 {
        return Err("--clients and --keys must be positive".to_string().into());
    }
    let scratch = BenchData::new(args);
    // Spawned nodes keep their data beside the floor's scratch files: on the same disk.
    let shared_disk_nodes = Some(usize::from(args.spawn_nodes)).filter(|&nodes| nodes > 0);
    let measure_floor = || floor::measure(&scratch.path, shared_disk_nodes);
    let floor_before = if args.floor { Some(measure_floor()?) } else { None };
    let mut cluster = match args.spawn_nodes {
        0 => None,
        nodes => Some(SpawnedCluster::start(&node_settings(args, nodes, &scratch.path))?),
    };
    let (addresses, tls) = match &cluster {
        Some(cluster) => (cluster.addresses().to_vec(), None),
        None => (args.cluster.addresses(), args.cluster.tls()?),
    };
    let mut pool = ClerkPool::new(&addresses, &args.cluster.cluster_name, tls)?;
    if !pool.connect(Duration::from_secs(5)).map_err(|e| e.to_string())? {
        return Err(format!("cluster unreachable ({})", pool.describe_links()).into());
    }
    let sessions: Vec<usize> = (0..args.clients).map(|_| pool.add_session()).collect();
    let mut run = Run {
        pool,
        history: args.history.as_ref().map(|_| History::new(sessions.len())),
        written: 0,
        value_size: args.value_size,
        first_error: None,
    };
    let (warm_ups, warm_up_errors) = warm_up(&mut run, args, &sessions)?;
    if warm_up_errors > 0 {
        return Err(Failure::Error(format!(
            "{warm_up_errors} of {warm_ups} warm-up writes failed, the first with: {}",
            run.first_error.as_deref().unwrap_or("no reason given")
        )));
    }
    let leaderships_before = cluster.as_ref().map(SpawnedCluster::leaderships);
    let mut measured = measure(&mut run, args, &sessions)?;
    let cluster_report = match (&mut cluster, leaderships_before) {
        (Some(cluster), Some(before)) => Some(cluster_report(cluster, before)?),
        _ => None,
    };
    // The nodes stop before the floor is measured again: their shutdown I/O would raise it.
    drop(cluster);
    let floor = match floor_before {
        Some(before) => Some(FloorReadings { before, after: measure_floor()? }),
        None => None,
    };
    let errors = measured.errors;
    let summary = Summary::new(args, &mut measured.latencies_ns, measured.elapsed, errors);
    summary.print(args.json, floor.as_ref(), cluster_report.as_ref());
    if let (Some(path), Some(history)) = (&args.history, run.history) {
        history
            .write(path)
            .map_err(|e| format!("cannot write the history to {}: {e}", path.display()))?;
    }
    match run.first_error {
        Some(first) => Err(Failure::Error(format!(
            "{errors} of {} operations failed, the first with: {first}",
            args.ops
        ))),
        None => Ok(()),
    }
}

fn node_settings(args: &BenchArgs, nodes: u16, data: &std::path::Path) -> NodeSettings {
    let mut serve_args = Vec::new();
    if let Some(bytes) = args.snapshot_bytes {
        serve_args.extend(["--snapshot-bytes".to_string(), bytes.to_string()]);
    }
    serve_args.extend(args.serve_args.iter().cloned());
    NodeSettings { nodes, base_port: args.base_port, data: data.to_path_buf(), serve_args }
}

/// What the spawned nodes did during the measured run.
fn cluster_report(
    cluster: &mut SpawnedCluster,
    leaderships_before: u64,
) -> Result<ClusterReport, Failure> {
    if let Some(exited) = cluster.exited_node() {
        return Err(format!("node {exited} stopped during the run").into());
    }
    let nodes = cluster.reports();
    let leaderships: u64 = nodes.iter().map(|node| node.leaderships).sum();
    Ok(ClusterReport { leader_changes: leaderships.saturating_sub(leaderships_before), nodes })
}

/// The directory the benchmark's nodes and its floor measurement use; a default one is removed
/// when the benchmark ends.
struct BenchData {
    path: PathBuf,
    remove: bool,
}

impl BenchData {
    fn new(args: &BenchArgs) -> BenchData {
        match &args.data {
            Some(path) => BenchData { path: path.clone(), remove: false },
            None => {
                let name = format!("raftkv-bench-{}", std::process::id());
                BenchData { path: std::env::temp_dir().join(name), remove: true }
            }
        }
    }
}

impl Drop for BenchData {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The key of number `index`.
fn key(index: u64) -> Vec<u8> {
    format!("bench-{index:08}").into_bytes()
}

/// Opens every session, then fills the key space for reads; returns how many writes that took
/// and how many of them failed.
fn warm_up(run: &mut Run, args: &BenchArgs, sessions: &[usize]) -> Result<(u64, u64), Failure> {
    let fill = if args.workload == Workload::Put { 0 } else { args.keys };
    let warm_ups = (sessions.len() as u64).max(fill);
    let mut errors = 0u64;
    for index in 0..warm_ups.min(sessions.len() as u64) {
        run.put(sessions[index as usize], key(index % args.keys));
    }
    let mut next_warm_up = sessions.len() as u64;
    let mut done = 0;
    while done < warm_ups {
        let finished = run.wait()?;
        done += 1;
        errors += u64::from(finished.result.is_err());
        if next_warm_up < warm_ups {
            run.put(finished.session, key(next_warm_up % args.keys));
            next_warm_up += 1;
        }
    }
    Ok((warm_ups, errors))
}

/// What the timed operations took.
struct Measured {
    /// Each operation's latency, in nanoseconds.
    latencies_ns: Vec<u64>,
    /// From the first submission to the last answer.
    elapsed: Duration,
    /// Operations that failed.
    errors: u64,
}

/// Runs `args.ops` operations of the workload, every session with one at a time, and times
/// them.
fn measure(run: &mut Run, args: &BenchArgs, sessions: &[usize]) -> Result<Measured, Failure> {
    let progress = if args.json { ProgressBar::hidden() } else { ProgressBar::new(args.ops) };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} ops {per_sec} eta {eta}")
            .expect("the template is valid"),
    );
    let mut rng = Prng::seeded(0x5eed);
    let mut next = |run: &mut Run, session: usize| {
        let index = rng.range_inclusive(0, args.keys - 1);
        let read = match args.workload {
            Workload::Put => false,
            Workload::Get => true,
            Workload::Mixed => rng.chance(1, 2),
        };
        if read {
            run.submit(session, KvCommand::Get { key: key(index) });
        } else {
            run.put(session, key(index));
        }
    };
    let started = Instant::now();
    let mut submitted_at = vec![started; sessions.len()];
    let mut issued = 0u64;
    for &session in sessions {
        if issued == args.ops {
            break;
        }
        submitted_at[session] = Instant::now();
        next(run, session);
        issued += 1;
    }
    let mut latencies_ns = Vec::with_capacity(args.ops as usize);
    let mut errors = 0u64;
    while (latencies_ns.len() as u64) < issued {
        let finished = run.wait()?;
        let latency = submitted_at[finished.session].elapsed();
        latencies_ns.push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        errors += u64::from(finished.result.is_err());
        progress.inc(1);
        if issued < args.ops {
            submitted_at[finished.session] = Instant::now();
            next(run, finished.session);
            issued += 1;
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    Ok(Measured { latencies_ns, elapsed, errors })
}

/// The sessions at work, and what they did.
struct Run {
    pool: ClerkPool,
    history: Option<History>,
    /// Values written so far, to make each one unique.
    written: u64,
    value_size: usize,
    /// Why the first operation that failed did.
    first_error: Option<String>,
}

impl Run {
    fn submit(&mut self, session: usize, command: KvCommand) {
        if let Some(history) = &mut self.history {
            history.call(session, &command);
        }
        self.pool.submit(session, command);
    }

    /// Writes a fresh value, unique in the run, to `key`.
    fn put(&mut self, session: usize, key: Vec<u8>) {
        self.written += 1;
        let mut value = format!("{session}.{}.", self.written).into_bytes();
        value.resize(value.len().max(self.value_size), b'v');
        self.submit(session, KvCommand::Put { key, value });
    }

    fn wait(&mut self) -> Result<Finished, Failure> {
        let finished = wait(&mut self.pool)?;
        if let (Err(error), None) = (&finished.result, &self.first_error) {
            self.first_error = Some(error.to_string());
        }
        if let Some(history) = &mut self.history {
            history.ret(finished.session, &finished.result);
        }
        Ok(finished)
    }
}

fn wait(pool: &mut ClerkPool) -> Result<Finished, Failure> {
    pool.next_finished(STALL).map_err(|e| e.to_string())?.ok_or_else(|| {
        Failure::Error(format!(
            "no operation finished for {STALL:?}; the cluster seems stuck ({})",
            pool.describe_links()
        ))
    })
}
