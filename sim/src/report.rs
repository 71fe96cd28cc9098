//! How a run went: the verdict, the first violation, the figures, and the history; as text
//! and as one JSON object.

use raftkv_checker::{Model, Operation, Verdict};
use raftkv_core::Instant;
use raftkv_core::client::ClerkError;
use serde_json::json;

use crate::checks::{Check, Violation};
use crate::history;
use crate::machine::{CheckedOf, Machine};
use crate::options::Options;
use crate::persisted::PersistedMax;
use crate::simulation::{Simulation, Stats};

/// The outcome of one run, with its history as operations `O` of the checker's model (those
/// of the key-value store unless said otherwise).
#[derive(Clone, Debug)]
pub struct Report<O = Operation> {
    /// What ran.
    pub options: Options,
    /// The first broken property; `None` means the run passed.
    pub violation: Option<Violation>,
    /// The checker's verdict, when the history was checked (not after an earlier violation).
    pub linearizability: Option<Verdict>,
    /// Operations that returned with a reply.
    pub ops_ok: u64,
    /// Operations that returned not knowing whether they took effect.
    pub ops_indeterminate: u64,
    /// Operations still waiting for their answer when the run ended.
    pub ops_open: u64,
    /// Hash of every trace line.
    pub trace_hash: u64,
    /// Trace lines.
    pub trace_lines: u64,
    /// Virtual time the run took.
    pub sim_ms: u64,
    /// Counts of what happened.
    pub stats: Stats,
    /// The largest persisted Raft state (log and hard state) of any node during the run.
    pub persisted_max: PersistedMax,
    /// `persisted_max` divided by the snapshot threshold, in thousandths, rounded up.
    pub persisted_ratio_max_milli: u64,
    /// The history, in the checker's terms.
    pub history: Vec<O>,
}

impl<O> Report<O> {
    pub(crate) fn new<M: Machine<Model: Model<Operation = O>>>(
        mut simulation: Simulation<M>,
    ) -> Report<O> {
        let history = M::to_checker(&simulation.workload.history);
        let mut linearizability = None;
        if simulation.violation.is_none() {
            let model = simulation.workload.machine.model();
            let (verdict, explanation) = history::check(&history, &model);
            linearizability = Some(verdict);
            if let Some(explanation) = explanation {
                simulation.fail((Check::Linearizability, explanation));
            }
        }
        let mut counts = (0, 0, 0);
        for op in &simulation.workload.history {
            match &op.ret {
                Some((_, Ok(_))) => counts.0 += 1,
                Some((_, Err(ClerkError::Indeterminate))) => counts.1 += 1,
                Some((_, Err(ClerkError::Invalid { .. }))) => {}
                None => counts.2 += 1,
            }
        }
        Report {
            options: simulation.options,
            violation: simulation.violation,
            linearizability,
            ops_ok: counts.0,
            ops_indeterminate: counts.1,
            ops_open: counts.2,
            trace_hash: simulation.trace.hash(),
            trace_lines: simulation.trace.lines(),
            sim_ms: (simulation.now - Instant::ZERO).as_millis(),
            stats: simulation.stats,
            persisted_max: simulation.persisted.max(),
            persisted_ratio_max_milli: simulation.persisted.ratio_max_milli(),
            history,
        }
    }

    /// A run that core ended with a panic.
    pub(crate) fn panicked(options: Options, message: String) -> Report<O> {
        Report {
            options,
            violation: Some(Violation { at: Instant::ZERO, check: Check::Panic, detail: message }),
            linearizability: None,
            ops_ok: 0,
            ops_indeterminate: 0,
            ops_open: 0,
            trace_hash: 0,
            trace_lines: 0,
            sim_ms: 0,
            stats: Stats::default(),
            persisted_max: PersistedMax::default(),
            persisted_ratio_max_milli: 0,
            history: Vec::new(),
        }
    }

    /// Whether no property broke.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }

    /// Panics unless the run passed, with the verdict line and the command that reproduces the
    /// run: what a test that runs seeds asserts.
    #[track_caller]
    pub fn assert_passed(&self) {
        let reproduce = self.options.reproduce_command();
        assert!(self.passed(), "{}\nreproduce: {reproduce}", self.verdict_line());
    }

    /// The whole violation when it takes more than the verdict line shows (the checker's
    /// explanation of a history that is not linearizable).
    pub fn explanation(&self) -> Option<String> {
        let text = self.violation.as_ref()?.to_string();
        text.contains('\n').then_some(text)
    }

    /// The last line of a run's text output: one line, whatever the violation.
    pub fn verdict_line(&self) -> String {
        let figures = format!(
            "ops_ok={} ops_indeterminate={} ops_open={} sim_ms={} messages={} elections={} trace_hash={:016x}",
            self.ops_ok,
            self.ops_indeterminate,
            self.ops_open,
            self.sim_ms,
            self.stats.messages,
            self.stats.elections,
            self.trace_hash
        );
        match (&self.violation, self.linearizability) {
            (Some(violation), _) => {
                let text = violation.to_string();
                let first_line = text.lines().next().unwrap_or_default();
                format!("verdict: FAIL {first_line}; {figures}")
            }
            (None, Some(Verdict::Unknown)) => {
                format!(
                    "verdict: pass (linearizability unknown: the checker ran out of time); {figures}"
                )
            }
            (None, _) => format!("verdict: pass; {figures}"),
        }
    }

    /// The run as one JSON object; `wall_ms` is the real time it took.
    pub fn json(&self, wall_ms: u64) -> serde_json::Value {
        let shape = &self.options.shape;
        json!({
            "seed": self.options.seed,
            "nodes": shape.nodes,
            "clients": shape.clients,
            "ops": shape.ops,
            "faults": shape.faults.to_string(),
            "ops_ok": self.ops_ok,
            "ops_indeterminate": self.ops_indeterminate,
            "ops_open": self.ops_open,
            "verdict": if self.passed() { "pass" } else { "fail" },
            "violation": self.violation.as_ref().map(ToString::to_string),
            "linearizable": match self.linearizability {
                Some(Verdict::Linearizable) => "yes",
                Some(Verdict::NotLinearizable) => "no",
                Some(Verdict::Unknown) => "unknown",
                None => "unchecked",
            },
            "trace_hash": format!("{:016x}", self.trace_hash),
            "trace_lines": self.trace_lines,
            "sim_ms": self.sim_ms,
            "wall_ms": wall_ms,
            "messages": self.stats.messages,
            "elections": self.stats.elections,
            "persists": self.stats.persists,
            "crashes": self.stats.crashes,
            "crashes_snapshot_persist": self.stats.crashes_snapshot_persist,
            "crashes_snapshot_send": self.stats.crashes_snapshot_send,
            "crashes_snapshot_receive": self.stats.crashes_snapshot_receive,
            "torn_persists": self.stats.torn_persists,
            "storage": self.storage_json(),
            "pauses": self.stats.pauses,
            "partitions": self.stats.partitions,
            "transfers": self.stats.transfers,
            "membership": self.stats.membership.json(),
            "snapshot_bytes": self.options.snapshot.threshold_bytes,
            "snapshot_growth_percent": self.options.snapshot.growth_percent,
            "snapshots": self.stats.snapshots,
            "snapshots_installed": self.stats.snapshots_installed,
            "lease_reads": self.stats.lease_reads,
            "snapshot_transfers_resumed": self.stats.snapshot_transfers_resumed,
            "received_snapshots_damaged": self.stats.received_snapshots_damaged,
            "persisted_bytes_max": self.persisted_max.bytes,
            // Computed in integers; a decimal only on the way out.
            "persisted_ratio_max": self.persisted_ratio_max_milli as f64 / 1_000.0,
        })
    }
}

impl<O> Report<O> {
    /// The storage faults of the run: what the simulated file systems injected, and what the
    /// storage engine and the nodes made of them.
    fn storage_json(&self) -> serde_json::Value {
        let fs = &self.stats.storage;
        json!({
            "crashes_mid_write": fs.crashes_between_steps,
            "torn_writes": fs.torn_writes,
            "lost_writes": fs.lost_writes,
            "lost_dir_ops": fs.lost_dir_ops,
            "bit_flips": fs.bit_flips,
            "enospc": fs.no_space_errors,
            "eio": fs.io_errors,
            "disk_failures": self.stats.disk_failures,
            "damaged_restarts": self.stats.damaged_restarts,
        })
    }
}

impl<M: Machine> Simulation<M> {
    /// Ends the run: compares replicas that applied as far as each other, checks the history,
    /// and reports.
    pub fn finish(mut self) -> Report<CheckedOf<M>> {
        if self.violation.is_none() {
            self.compare_replicas();
        }
        for node in &self.nodes {
            if let Some(replica) = &node.replica {
                self.stats.add_life(replica);
            }
            self.stats.storage += node.disk.faults();
        }
        Report::new(self)
    }
}
