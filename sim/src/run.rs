//! A random run: the clients issue random operations while faults are injected; then the
//! faults stop and every operation must return (liveness), the clients read every key, the
//! replicas must converge, and the history must be linearizable.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use raftkv_core::{Duration, Instant};

use crate::checks::Check;
use crate::event::Event;
use crate::kv_machine::KvMachine;
use crate::machine::{CheckedOf, Machine};
use crate::node_ids::node_id;
use crate::options::Options;
use crate::phase::{Auto, Phase};
use crate::recorded::OpId;
use crate::report::Report;
use crate::simulation::Simulation;
use crate::trace::{Actor, TraceOutput};

/// How long the replicas may take to apply everything once the last operation returned.
const CONVERGENCE_MAX: Duration = Duration::from_millis(10_000);

/// How long the replicas may take to converge in all, while they keep applying: a follower
/// that lost its log catches up entry by entry when appends carry one entry and one is in
/// flight.
const CONVERGENCE_CAP: Duration = Duration::from_millis(600_000);

/// Liveness bounds after the faulty phase (plus [`CONVERGENCE_MAX`]) by which a run must have
/// ended: far beyond any healthy run, whose liveness deadlines fire long before.
const RUN_END_LIVENESS_BOUNDS: u64 = 10;

/// Runs one random simulation of the key-value store as `options` describe and reports how it
/// went. A panic in core is caught and reported as a violation, with the trace and history up
/// to it.
pub fn run(options: Options, output: TraceOutput) -> Report {
    let machine = KvMachine::new(options.workload.clone());
    run_machine(machine, options, output)
}

/// Runs one random simulation of `machine` as `options` describe (its workload options apart:
/// the machine draws its own commands) and reports how it went, the linearizability verdict of
/// `machine`'s model included. A panic in core is caught and reported as a violation.
pub fn run_machine<M: Machine>(
    machine: M,
    options: Options,
    output: TraceOutput,
) -> Report<CheckedOf<M>> {
    let started = panic::catch_unwind(AssertUnwindSafe(|| {
        Simulation::with_machine(machine, options.clone(), output)
    }));
    let mut simulation = match started {
        Ok(simulation) => simulation,
        Err(payload) => return Report::panicked(options, panic_message(payload.as_ref())),
    };
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| simulation.run_random())) {
        simulation.fail((Check::Panic, panic_message(payload.as_ref())));
    }
    simulation.finish()
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl<M: Machine> Simulation<M> {
    /// Drives the random workload and faults to the end of the run.
    fn run_random(&mut self) {
        self.auto = Some(Auto { phase: Phase::Faulty });
        self.start_faults();
        for client in 0..self.options.shape.clients {
            let think = self.workload.think_time();
            self.schedule_in(think, Event::ClientNext { client });
        }
        let faulty_end = Instant::from_millis(self.options.faulty_ms_max);
        let end = faulty_end
            + self.liveness_bound().saturating_mul(RUN_END_LIVENESS_BOUNDS)
            + CONVERGENCE_MAX;
        while self.violation.is_none() {
            self.advance_phase(faulty_end);
            if self.auto.as_ref().is_some_and(|auto| auto.phase == Phase::Done) {
                return;
            }
            let converging = matches!(self.phase(), Phase::Converging { .. });
            if (self.now > end && !converging) || !self.step() {
                self.fail((Check::Liveness, format!("the run did not end by {end}")));
            }
        }
    }

    fn phase(&self) -> Phase {
        self.auto.as_ref().map_or(Phase::Done, |auto| auto.phase)
    }

    fn set_phase(&mut self, phase: Phase) {
        if let Some(auto) = self.auto.as_mut() {
            auto.phase = phase;
        }
    }

    fn advance_phase(&mut self, faulty_end: Instant) {
        match self.phase() {
            Phase::Faulty if self.workload.to_issue == 0 || self.now >= faulty_end => {
                self.stop_faults()
            }
            Phase::Healed if self.workload.to_issue == 0 && self.workload.all_finished() => {
                self.trace.event(self.now, Actor::Sim, format_args!("final reads"));
                self.set_phase(Phase::FinalReads);
                let clients = self.options.shape.clients.max(1);
                for (i, read) in self.workload.machine.final_reads().into_iter().enumerate() {
                    self.submit(i % clients, read);
                }
            }
            Phase::FinalReads if self.workload.all_finished() => {
                let (until, cap) = (self.now + CONVERGENCE_MAX, self.now + CONVERGENCE_CAP);
                let applied = self.applied_total();
                self.set_phase(Phase::Converging { until, applied, cap });
            }
            Phase::Converging { until, applied, cap } => {
                if self.converged() {
                    self.trace.event(self.now, Actor::Sim, format_args!("converged"));
                    self.compare_replicas();
                    self.set_phase(Phase::Done);
                } else if self.applied_total() > applied && self.now < cap {
                    let (until, applied) = (self.now + CONVERGENCE_MAX, self.applied_total());
                    self.set_phase(Phase::Converging { until, applied, cap });
                } else if self.now >= until || self.now >= cap {
                    let detail = format!(
                        "the replicas did not apply everything, and applied nothing new for {} ms \
                         (or took over {} ms in all) after the last operation: {}",
                        CONVERGENCE_MAX.as_millis(),
                        CONVERGENCE_CAP.as_millis(),
                        self.applied_summary()
                    );
                    self.fail((Check::Liveness, detail));
                }
            }
            _ => {}
        }
    }

    /// What the running replicas have applied, summed: it grows while they converge.
    fn applied_total(&self) -> u64 {
        let replicas = self.nodes.iter().filter_map(|node| node.replica.as_ref());
        replicas.map(|replica| replica.applied().0).sum()
    }

    /// Every member runs and has applied everything any replica committed. The members are
    /// those of the membership of the replica that committed most: removed nodes, and nodes
    /// whose addition was lost with its leader's term, take no part.
    fn converged(&self) -> bool {
        let running = self.nodes.iter().filter_map(|node| node.replica.as_ref());
        let Some(furthest) = running.max_by_key(|replica| replica.raft().commit_index()) else {
            return false;
        };
        let commit = furthest.raft().commit_index();
        let membership = furthest.raft().membership();
        self.nodes
            .iter()
            .filter(|node| membership.is_member(node.id))
            .all(|node| node.replica.as_ref().is_some_and(|replica| replica.applied() == commit))
    }

    fn applied_summary(&self) -> String {
        let parts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| match &node.replica {
                Some(replica) => format!("n{} applied {}", node.id, replica.applied()),
                None => format!("n{} down", node.id),
            })
            .collect();
        parts.join(", ")
    }

    /// The faulty phase ends: links heal, packets stop getting lost, crashed nodes restart
    /// and paused ones resume; from now on every operation must return in time.
    fn stop_faults(&mut self) {
        self.trace.event(self.now, Actor::Sim, format_args!("faults stop"));
        self.set_phase(Phase::Healed);
        self.network.heal();
        self.network.stop_faults();
        for node in &mut self.nodes {
            node.disk.stop_faults();
        }
        for node in 0..self.nodes.len() {
            let id = node_id(node);
            self.restart(id);
            self.resume(id);
        }
        let open: Vec<OpId> = self.workload.open_ops().collect();
        for op in open {
            self.schedule_in(self.liveness_bound(), Event::LivenessDeadline { op });
        }
    }

    /// How long an operation may take once the faults stopped.
    fn liveness_bound(&self) -> Duration {
        Duration::from_millis(self.options.liveness_ms_max)
    }

    pub(crate) fn on_liveness_deadline(&mut self, op: OpId) {
        let recorded = &self.workload.history[op];
        if !recorded.is_finished() {
            let detail = format!(
                "c{}'s #{op} {} (called at {}) did not return within {} ms after the faults stopped",
                recorded.client,
                M::command_text(&recorded.command),
                recorded.call,
                self.options.liveness_ms_max
            );
            self.fail((Check::Liveness, detail));
        }
    }

    /// A new operation must return in time once the faults stopped.
    pub(crate) fn on_op_submitted(&mut self, op: OpId) {
        if self.auto.as_ref().is_some_and(Auto::is_healed) {
            self.schedule_in(self.liveness_bound(), Event::LivenessDeadline { op });
        }
    }

    /// A client's operation returned: it thinks, then issues the next one.
    pub(crate) fn on_op_finished(&mut self, client: usize) {
        if self.auto.is_some() && self.workload.to_issue > 0 {
            let think = self.workload.think_time();
            self.schedule_in(think, Event::ClientNext { client });
        }
    }

    pub(crate) fn on_client_next(&mut self, client: usize) {
        if self.workload.to_issue > 0 && self.workload.is_idle(client) {
            self.workload.to_issue -= 1;
            let command = self.workload.draw_command(client);
            self.submit(client, command);
        }
    }
}
