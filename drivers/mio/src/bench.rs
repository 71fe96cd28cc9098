//! `raftkv bench`: many concurrent sessions on one thread, then throughput and latency.
//!
//! Every session runs one operation at a time, like a synchronous application thread; all of
//! them share one connection per node. Each session first opens its session with one write,
//! and `get` and `mixed` runs first fill the key space; neither is timed. Latency is measured
//! from submission to answer, retries included. Every value written is unique (its session and
//! number, padded to the value size), so that a recorded history (`--history`) says which write
//! a read saw.

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
}

/// How long the benchmark waits for any operation to finish before it calls the cluster stuck.
const STALL: Duration = Duration::from_secs(30);

/// Runs the benchmark and prints its summary.
pub(crate) fn run(args: &BenchArgs) -> Result<(), Failure> {
    if args.clients == 0 || args.keys == 0 {
        return Err("--clients and --keys must be positive".to_string().into());
    }
    let tls = args.cluster.tls()?;
    let mut pool = ClerkPool::new(&args.cluster.addresses(), &args.cluster.cluster_name, tls)?;
    if !pool.connect(Duration::from_secs(5)).map_err(|e| e.to_string())? {
        return Err(format!("cluster unreachable ({})", pool.describe_links()).into());
    }
    let sessions: Vec<usize> = (0..args.clients).map(|_| pool.add_session()).collect();
    let mut run = Run {
        pool,
        history: args.history.as_ref().map(|_| History::new(sessions.len())),
        written: 0,
        value_size: args.value_size,
    };
    let warm_up_errors = warm_up(&mut run, args, &sessions)?;
    let mut measured = measure(&mut run, args, &sessions)?;
    let errors = warm_up_errors + measured.errors;
    report(args, &mut measured.latencies_ns, measured.elapsed, errors);
    if let (Some(path), Some(history)) = (&args.history, run.history) {
        history
            .write(path)
            .map_err(|e| format!("cannot write the history to {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The key of number `index`.
fn key(index: u64) -> Vec<u8> {
    format!("bench-{index:08}").into_bytes()
}

/// Opens every session, then fills the key space for reads; returns how many of these writes
/// failed.
fn warm_up(run: &mut Run, args: &BenchArgs, sessions: &[usize]) -> Result<u64, Failure> {
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
    Ok(errors)
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

fn report(args: &BenchArgs, latencies_ns: &mut [u64], elapsed: Duration, errors: u64) {
    latencies_ns.sort_unstable();
    let ops = latencies_ns.len() as u64;
    let percentile_ms = |per_mille: u64| -> f64 {
        if latencies_ns.is_empty() {
            return 0.0;
        }
        let rank = (ops * per_mille).div_ceil(1000).clamp(1, ops) - 1;
        latencies_ns[rank as usize] as f64 / 1e6
    };
    let ops_per_sec = ops as f64 / elapsed.as_secs_f64().max(1e-9);
    let (p50, p99, p999) = (percentile_ms(500), percentile_ms(990), percentile_ms(999));
    let max_ms = latencies_ns.last().map_or(0.0, |&ns| ns as f64 / 1e6);
    let workload = format!("{:?}", args.workload).to_lowercase();
    println!(
        "{workload}: {ops} ops by {} clients in {:.2} s: {ops_per_sec:.0} ops/s, \
         latency p50 {p50:.3} ms, p99 {p99:.3} ms, p99.9 {p999:.3} ms, max {max_ms:.3} ms, \
         errors {errors}",
        args.clients,
        elapsed.as_secs_f64()
    );
    if args.json {
        let summary = serde_json::json!({
            "workload": workload,
            "clients": args.clients,
            "value_size": args.value_size,
            "ops": ops,
            "elapsed_s": elapsed.as_secs_f64(),
            "ops_per_sec": ops_per_sec,
            "p50_ms": p50,
            "p99_ms": p99,
            "p999_ms": p999,
            "max_ms": max_ms,
            "errors": errors,
        });
        println!("{summary}");
    }
}
