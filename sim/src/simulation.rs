//! The event loop: one virtual clock, one queue of events ordered by (time, sequence number),
//! and the servers, disks, network and clients it drives. Tests script it directly (crash this
//! node, cut that link, run for a second); [`crate::run`] drives it with random faults and a
//! random workload.

use std::collections::BinaryHeap;

use raftkv_core::client::{ClerkError, ClerkInput, ClerkOutput};
use raftkv_core::loaded_snapshot::LoadedSnapshot;
use raftkv_core::prng::Prng;
use raftkv_core::protocol::{ClientRequest, Op};
use raftkv_core::raft::{
    Body, ChangeRefused, EntriesToLoad, EntriesToSend, Entry, MemberChange, PartialSnapshot,
    Persist, Role, SavedSnapshot,
};
use raftkv_core::server::{Input, Output};
use raftkv_core::snapshot_job::SnapshotJob;
use raftkv_core::{ClientId, Duration, Instant, LogId, LogIndex, NodeId, RequestId, Term};

use crate::checks::{Check, Checks, Failed, Violation};
use crate::disk::Disk;
use crate::event::{Event, Scheduled};
use crate::kv_machine::KvMachine;
use crate::machine::{CommandOf, Machine, ReplyOf};
use crate::membership_plan::MembershipPlan;
use crate::membership_stats::MembershipStats;
use crate::network::{Network, Route, TraceLine, machine_outcome_text};
use crate::node::SimNode;
use crate::node_ids::{self, node_id};
use crate::options::{Options, Streams};
use crate::persisted::{PersistedSize, WrittenAt, persisted_bytes};
use crate::phase::Auto;
use crate::quorum_checks::QuorumChecks;
use crate::recorded::{OpId, Recorded};
use crate::trace::{Actor, Trace, TraceOutput};
use crate::workload::Workload;
use raftkv_core::StateMachine;
use raftkv_core::server::Replica;
use raftkv_storage::sim_fs::FaultCounters;
use raftkv_testkit::{BY_HAND, Endpoint, Packet, Routed, client_of, reply_to};

/// An event of a simulation of the machine `M`.
type EventOf<M> = Event<CommandOf<M>, ReplyOf<M>>;

/// A round trip is two one-way trips, each up to the network's usual latency.
const LEGS_PER_ROUND_TRIP: u64 = 2;

/// Timeouts one node may handle at one instant before it counts as spinning.
const TIMEOUTS_PER_INSTANT_MAX: u32 = 1_000;

/// Counts of what happened in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Raft messages sent between replicas.
    pub messages: u64,
    /// Elections started (a node became candidate).
    pub elections: u64,
    /// Persists handed to disks.
    pub persists: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Crashes of a node whose disk was writing a snapshot (one it took or one it installed).
    pub crashes_snapshot_persist: u64,
    /// Crashes of a leader that was sending its snapshot to a follower.
    pub crashes_snapshot_send: u64,
    /// Crashes of a node that held part of a leader's snapshot.
    pub crashes_snapshot_receive: u64,
    /// Pauses injected.
    pub pauses: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// Leadership transfers requested.
    pub transfers: u64,
    /// Crashes that struck while the storage engine was writing persists in flight.
    pub torn_persists: u64,
    /// Batches of persists that failed (ENOSPC, EIO): the node stopped without acknowledging.
    pub disk_failures: u64,
    /// Bits rotted in a node's data.
    pub bit_rots: u64,
    /// Restarts at which the storage engine found damage and cut it away.
    pub damaged_restarts: u64,
    /// Snapshots the replicas took of their own state (log compactions).
    pub snapshots: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Restarts that resumed receiving a leader's snapshot from the part on their disk.
    pub snapshot_transfers_resumed: u64,
    /// Snapshots received whole that failed their checksums when read back (received again).
    pub received_snapshots_damaged: u64,
    /// What the simulated file systems injected, summed over the nodes (filled in at the end).
    pub storage: FaultCounters,
    /// Membership changes proposed, and refused.
    pub membership: MembershipStats,
    /// Reads leaders answered from their lease (`--lease-reads`).
    pub lease_reads: u64,
    /// Appends whose entries leaders read back from their disk, past their log cache.
    pub appends_from_disk: u64,
    /// Reads of entries back from a disk that failed (damaged, compacted): a snapshot past
    /// them followed.
    pub log_reads_failed: u64,
    /// Restarts that left entries on the disk, past the log cache (`Recovered::on_disk`).
    pub restarts_with_entries_on_disk: u64,
    /// Batches of those entries read back from the disk to apply, checked.
    pub loads_from_disk: u64,
}

impl Stats {
    /// Adds what a replica's counters say it did in its life.
    pub(crate) fn add_life<S: StateMachine>(&mut self, replica: &Replica<S>) {
        let counters = replica.raft().counters();
        self.snapshots += counters.snapshots_taken;
        self.snapshots_installed += counters.snapshots_installed;
        self.lease_reads += counters.lease_reads;
        self.appends_from_disk += counters.appends_from_disk;
        self.log_reads_failed += counters.log_reads_failed;
        self.loads_from_disk += counters.loads_from_disk;
    }
}

/// A simulated cluster with its clients.
///
/// Calling order: build it with [`Simulation::new`] (every node starts, nothing happens yet),
/// then script it: run it with [`run_for`](Self::run_for) or [`run_until`](Self::run_until),
/// inject faults ([`crash`](Self::crash), [`partition`](Self::partition), ...), issue
/// operations ([`submit`](Self::submit)), and end with [`finish`](Self::finish), which checks
/// the history. The first broken safety property stops the run; see
/// [`violation`](Self::violation).
pub struct Simulation<M: Machine = KvMachine> {
    pub(crate) options: Options,
    pub(crate) now: Instant,
    queue: BinaryHeap<Scheduled<CommandOf<M>, ReplyOf<M>>>,
    seq: u64,
    pub(crate) nodes: Vec<SimNode<M>>,
    pub(crate) network: Network,
    pub(crate) workload: Workload<M>,
    pub(crate) checks: Checks,
    /// Joint consensus: the quorums behind every election and commit.
    quorums: QuorumChecks,
    pub(crate) persisted: PersistedSize,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    pub(crate) violation: Option<Violation>,
    /// The random workload and faults of a [`crate::run`]; `None` when a test scripts the run.
    pub(crate) auto: Option<Auto>,
    /// The stream the fault injector draws from (forked whether or not it runs).
    pub(crate) fault_rng: Prng,
    /// The stream of the membership fault class and of the nodes it adds.
    pub(crate) membership_rng: Prng,
    pub(crate) membership_plan: MembershipPlan,
    outputs: Vec<Output<ReplyOf<M>>>,
    hand_requests: u64,
}

impl Simulation {
    /// A cluster of `options.shape.nodes` replicas of the key-value store and
    /// `options.shape.clients` clients, every node started with an empty disk at virtual time
    /// zero.
    pub fn new(options: Options, output: TraceOutput) -> Simulation {
        let machine = KvMachine::new(options.workload.clone());
        Simulation::with_machine(machine, options, output)
    }
}

impl<M: Machine> Simulation<M> {
    /// A cluster of `options.shape.nodes` replicas of `machine`'s state machine and
    /// `options.shape.clients` clients running its workload, every node started with an empty
    /// disk at virtual time zero.
    pub fn with_machine(machine: M, options: Options, output: TraceOutput) -> Simulation<M> {
        let streams = Streams::new(options.seed);
        let mut rng = streams.run;
        let shape = options.shape;
        let voters: Vec<NodeId> = node_ids::all(shape.nodes).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let disk = Disk::new(options.disk.clone(), rng.fork(), id);
                SimNode::new(id, voters.clone(), disk, rng.fork())
            })
            .collect();
        let network = Network::new(options.network.clone(), rng.fork(), shape.nodes, shape.clients);
        let workload = Workload::new(
            machine,
            options.workload.clone(),
            &options.raft,
            rng.fork(),
            &voters,
            shape.clients,
            shape.ops,
        );
        let fault_rng = rng.fork();
        let mut simulation = Simulation {
            checks: Checks::new(shape.nodes),
            quorums: QuorumChecks::default(),
            persisted: PersistedSize::new(
                shape.nodes,
                options.snapshot.threshold_bytes,
                options.snapshot.growth_percent,
            ),
            options,
            now: Instant::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            nodes,
            network,
            workload,
            trace: Trace::new(output),
            stats: Stats::default(),
            violation: None,
            auto: None,
            fault_rng,
            membership_rng: streams.membership,
            membership_plan: MembershipPlan::new(shape.nodes),
            outputs: Vec::new(),
            hand_requests: 0,
        };
        for node in 0..simulation.nodes.len() {
            simulation.start_node(node);
        }
        simulation
    }

    // ---- the loop ----

    pub(crate) fn schedule(&mut self, at: Instant, event: EventOf<M>) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, event });
    }

    pub(crate) fn schedule_in(&mut self, delay: Duration, event: EventOf<M>) {
        self.schedule(self.now + delay, event);
    }

    /// Handles the next event; false when none is left.
    pub(crate) fn step(&mut self) -> bool {
        let Some(next) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(next.at);
        match next.event {
            Event::Deliver(packet) => self.deliver(*packet),
            Event::NodeTimer { node, generation } => self.on_node_timer(node, generation),
            Event::DiskDone { node, life } => self.on_disk_done(node, life),
            Event::SnapshotEncoded { node, life, job } => {
                self.on_snapshot_encoded(node, life, &job)
            }
            Event::SnapshotLoad { node, life, whole } => self.on_snapshot_load(node, life, whole),
            Event::EntriesLoad { node, life, load } => self.on_entries_load(node, life, load),
            Event::LyingAck { node, life, id } => {
                if self.nodes[node].life == life {
                    self.trace.event(
                        self.now,
                        Self::actor(node),
                        format_args!("persisted #{} (a lie)", id.0),
                    );
                    self.node_input(node, Input::Persisted { id });
                }
            }
            Event::ClerkTimer { client, generation } => {
                let state = &mut self.workload.clients[client];
                if state.timer_generation == generation {
                    state.timer = None;
                    state.clerk.handle(self.now, ClerkInput::Timeout);
                    self.drain_clerk(client);
                }
            }
            Event::ClientNext { client } => self.on_client_next(client),
            Event::Fault(fault) => self.on_fault(fault),
            Event::LivenessDeadline { op } => self.on_liveness_deadline(op),
        }
        true
    }

    /// Runs for `millis` of virtual time (less if a safety property breaks).
    pub fn run_for(&mut self, millis: u64) {
        self.run_until(millis, |_| false);
    }

    /// Runs until `done` holds, for at most `millis` of virtual time; returns whether `done`
    /// held. Stops early, returning false, when a safety property breaks.
    pub fn run_until(&mut self, millis: u64, done: impl Fn(&Simulation<M>) -> bool) -> bool {
        let end = self.now + Duration::from_millis(millis);
        loop {
            if done(self) {
                return true;
            }
            if self.violation.is_some() {
                return false;
            }
            if self.queue.peek().is_none_or(|next| next.at > end) {
                self.now = end;
                return done(self);
            }
            self.step();
        }
    }

    /// Records the first broken property; the run stops there.
    pub(crate) fn fail(&mut self, (check, detail): Failed) {
        if self.violation.is_none() {
            self.trace.event(self.now, Actor::Sim, format_args!("VIOLATION {check}: {detail}"));
            self.violation = Some(Violation { at: self.now, check, detail });
        }
    }

    fn checked(&mut self, result: Result<(), Failed>) {
        if let Err(failed) = result {
            self.fail(failed);
        }
    }

    // ---- nodes ----

    pub(crate) fn actor(node: usize) -> Actor {
        Actor::Node(node_id(node).0)
    }

    fn start_node(&mut self, node: usize) {
        let options = &self.options;
        let state = self.workload.machine.new_state();
        let started = self.nodes[node].start(
            self.now,
            &options.raft,
            &options.snapshot,
            &options.clock,
            state,
        );
        let state = &self.nodes[node];
        match started {
            Ok(report) => {
                let durable = state.disk.durable();
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!(
                        "start life={} {} snapshot={} entries={} clock={}+{}ppm",
                        state.life,
                        durable.hard_state,
                        durable.snapshot_index(),
                        durable.entries.len(),
                        state.clock.local(self.now),
                        state.clock.drift_ppm()
                    ),
                );
                for cut in report.torn_tail.iter().chain(&report.damage) {
                    self.trace.event(self.now, Self::actor(node), format_args!("{cut}"));
                }
                self.stats.damaged_restarts += u64::from(!report.damage.is_empty());
                if let Some(partial) = durable.received_snapshot {
                    let (last, received, total) = (partial.last, partial.received, partial.total);
                    self.trace.event(
                        self.now,
                        Self::actor(node),
                        format_args!("resumes receiving snapshot {last} at {received}/{total}"),
                    );
                    self.stats.snapshot_transfers_resumed += 1;
                }
                let replica = state.replica.as_ref().expect("just started");
                let on_disk = replica.raft().status().log_evicted_entries > 0;
                self.stats.restarts_with_entries_on_disk += u64::from(on_disk);
                let damaged = durable.hard_state.damaged;
                let result = self.checks.on_restart(node, durable, replica, damaged);
                let size = self.persisted.on_restart(node, durable, damaged);
                self.checked(result.and(size));
                self.drain_node(node);
            }
            Err(error) => self.fail((
                Check::Storage,
                format!("n{} cannot restart from its disk: {error}", node_id(node)),
            )),
        }
    }

    /// Feeds `input` to a node, or keeps it for later if the process is paused.
    fn node_input(&mut self, node: usize, input: Input<CommandOf<M>>) {
        let state = &mut self.nodes[node];
        if state.paused {
            state.stalled.push(input);
            return;
        }
        let Some(replica) = state.replica.as_mut() else {
            return;
        };
        replica.handle(state.clock.local(self.now), input);
        self.drain_node(node);
    }

    /// Carries out everything a node asked for, then checks it.
    fn drain_node(&mut self, node: usize) {
        let Some(replica) = self.nodes[node].replica.as_mut() else {
            return;
        };
        let mut outputs = std::mem::take(&mut self.outputs);
        while let Some(output) = replica.poll_output() {
            if let Output::Persist(persist) = &output {
                // The replica's applied index is the one the persist was built at: the batch
                // the Raft node hands out after it has not reached the replica yet.
                let written_at = (!replica.snapshot_deferred()).then(|| WrittenAt {
                    applied: replica.applied(),
                    threshold_bytes: replica.snapshot_threshold() as u64,
                });
                self.persisted.on_persist(node, persist.id, written_at);
            }
            outputs.push(output);
        }
        for output in outputs.drain(..) {
            if self.violation.is_some() {
                break;
            }
            self.on_output(node, output);
        }
        self.outputs = outputs;
        let state = &self.nodes[node];
        if let Some(replica) = state.replica.as_ref() {
            replica.check_invariants();
            let result = self.checks.after_step(node, replica);
            let applied_log_bytes = replica.raft().applied_log_bytes();
            let deferred = replica.snapshot_deferred();
            let threshold_bytes = replica.snapshot_threshold();
            let size =
                self.persisted.after_step(node, applied_log_bytes, threshold_bytes, deferred);
            self.checked(result.and(size));
            self.check_commit_quorum(node);
        }
        self.schedule_node_timer(node);
    }

    fn on_output(&mut self, node: usize, output: Output<ReplyOf<M>>) {
        let id = node_id(node);
        let state = &self.nodes[node];
        let replica = state.replica.as_ref().expect("outputs come from a running replica");
        match output {
            Output::Send(message) => {
                self.stats.messages += 1;
                let result = self.checks.on_send(node, &message, state.disk.durable(), replica);
                self.checked(result);
                if let Body::InstallSnapshot { .. } = message.body {
                    // Within about a round trip, while the next chunks are under way.
                    let latency_max = Duration::from_micros(self.options.network.latency_us_max);
                    let until = self.now + latency_max.saturating_mul(LEGS_PER_ROUND_TRIP);
                    self.maybe_crash_during_snapshot(node, until);
                }
                self.send(Packet::Peer(message));
            }
            Output::Persist(persist) => {
                let result = self.checks.on_persist(&persist, replica);
                self.checked(result);
                self.submit_persist(node, persist);
            }
            Output::SendSnapshotChunk(chunk) => {
                // Read from the disk, as the server does: only the snapshot saved there at
                // the chunk's point has it; otherwise the chunk goes again later.
                match state.disk.durable().snapshot_chunk(&chunk) {
                    Some(data) => self.on_output(node, Output::Send(chunk.into_message(data))),
                    None => self.trace.event(
                        self.now,
                        Self::actor(node),
                        format_args!("no such chunk on disk: {chunk}"),
                    ),
                }
            }
            Output::SendEntries(append) => self.send_entries_from_disk(node, append),
            Output::LoadEntries(load) => {
                // Read back later, as on the server's disk thread.
                let life = state.life;
                let after = Duration::from_micros(self.options.disk.latency_us_max);
                self.schedule(self.now + after, Event::EntriesLoad { node, life, load });
            }
            Output::LoadSnapshot(whole) => {
                // Read back later, as on a thread of its own (see `SaveSnapshot`).
                let life = state.life;
                let after = Duration::from_micros(self.options.disk.latency_us_max);
                self.schedule(self.now + after, Event::SnapshotLoad { node, life, whole });
            }
            Output::SaveSnapshot(job) => {
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!("save snapshot {}", job.last()),
                );
                // Encoded and saved later, as on a thread of its own, while the node goes on:
                // after the disk's longest latency (not drawn, so that the runs' random draws
                // stay those of the other events).
                let life = state.life;
                let after = Duration::from_micros(self.options.disk.latency_us_max);
                self.schedule(self.now + after, Event::SnapshotEncoded { node, life, job });
            }
            Output::Reply { to, reply } if to == BY_HAND => {
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!(
                        "reply to the test #{}: {}",
                        reply.request,
                        machine_outcome_text::<M>(&reply.outcome)
                    ),
                );
            }
            Output::Reply { to, reply } => {
                let client = client_of(to);
                self.send(Packet::Reply { from: id, client, reply });
            }
            Output::RoleChanged { role, term, leader } => {
                self.on_role_changed(node, role, term, leader);
            }
            Output::MembershipChanged { index, membership, standing } => {
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!("membership at {index}: {membership} ({standing})"),
                );
            }
        }
    }

    /// Sends the append of `append` with its entries read back from node `node`'s log on disk,
    /// as the server does; if they cannot be read, tells the node so.
    fn send_entries_from_disk(&mut self, node: usize, append: EntriesToSend) {
        match self.nodes[node].disk.read_entries(append.first(), append.last) {
            Ok(Some(entries)) if append.matches(&entries) => {
                self.on_output(node, Output::Send(append.into_message(entries)))
            }
            Ok(_) => {
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!("cannot read back from the disk: {append}"),
                );
                let through = append.last.index;
                self.node_input(node, Input::LogUnreadable { through });
            }
            Err(reason) => self.fail((Check::Storage, format!("n{}: {reason}", node_id(node)))),
        }
    }

    /// Hands node `node`'s persist (checked) to its disk and schedules its completion.
    fn submit_persist(&mut self, node: usize, persist: Persist) {
        self.stats.persists += 1;
        self.trace.event(self.now, Self::actor(node), format_args!("{persist}"));
        let state = &mut self.nodes[node];
        let life = state.life;
        let id = persist.id;
        // A snapshot installed, or a chunk of one received: crashes here test resuming.
        let writes_snapshot = persist.snapshot.is_some()
            || persist.install_received.is_some()
            || persist.snapshot_chunk.is_some();
        let done_at = state.disk.submit(self.now, persist);
        self.schedule(done_at, Event::DiskDone { node, life });
        if writes_snapshot {
            self.maybe_crash_during_snapshot(node, done_at);
        }
        if self.options.disk.lies {
            self.schedule(self.now, Event::LyingAck { node, life, id });
        }
    }

    /// Node `node` took `role` in `term`: traced, counted, and checked (one leader a term, the
    /// quorum that elected it).
    fn on_role_changed(&mut self, node: usize, role: Role, term: Term, leader: Option<NodeId>) {
        let leader = leader.map_or("none".to_string(), |leader| format!("n{leader}"));
        self.trace.event(
            self.now,
            Self::actor(node),
            format_args!("{role} t={term} leader={leader}"),
        );
        if role == Role::Candidate {
            self.stats.elections += 1;
        }
        let replica = self.nodes[node].replica.as_ref().expect("roles come from a running replica");
        let mut result = self.checks.on_role(role, term, replica);
        if role == Role::Leader {
            let membership = replica.raft().membership();
            result = result.and(self.quorums.on_elected(node_id(node), term, membership));
        }
        self.checked(result);
    }

    /// A leader's commit index rests on a quorum of the acknowledgements delivered to it, and
    /// on its own disk.
    fn check_commit_quorum(&mut self, node: usize) {
        let state = &self.nodes[node];
        let Some(raft) = state.replica.as_ref().map(Replica::raft) else { return };
        if raft.role() != Role::Leader {
            return;
        }
        let commit = raft.commit_index();
        let durable = state.disk.durable();
        let holds_itself = durable.snapshot_index() >= commit
            || durable.entry(commit).map(|entry| entry.term) == raft.term_at(commit);
        let result = self.quorums.on_leader_commit(
            raft.id(),
            raft.term(),
            commit,
            raft.membership(),
            holds_itself,
        );
        self.checked(result);
    }

    fn schedule_node_timer(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        let Some(deadline) = state.replica.as_ref().and_then(|replica| replica.poll_timeout())
        else {
            state.timer = None;
            return;
        };
        let at = state.clock.virtual_at(deadline).max(self.now);
        if state.timer == Some(at) {
            return;
        }
        state.timer = Some(at);
        state.timer_generation += 1;
        let generation = state.timer_generation;
        self.schedule(at, Event::NodeTimer { node, generation });
    }

    fn on_node_timer(&mut self, node: usize, generation: u64) {
        let state = &mut self.nodes[node];
        if state.timer_generation != generation || !state.is_running() {
            return;
        }
        state.timer = None;
        if state.timeouts_now.0 == self.now {
            state.timeouts_now.1 += 1;
        } else {
            state.timeouts_now = (self.now, 1);
        }
        if state.timeouts_now.1 > TIMEOUTS_PER_INSTANT_MAX {
            self.fail((
                Check::Liveness,
                format!("n{} handled {TIMEOUTS_PER_INSTANT_MAX} timeouts at one instant: poll_timeout stays in the past", node_id(node)),
            ));
            return;
        }
        self.node_input(node, Input::Timeout);
    }

    fn on_disk_done(&mut self, node: usize, life: u64) {
        let state = &mut self.nodes[node];
        if state.life != life {
            return;
        }
        match state.disk.complete(self.now) {
            Err(failure) => {
                self.stats.disk_failures += 1;
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!(
                        "disk failed, {} persists unacknowledged: {}; the node stops",
                        failure.lost, failure.error
                    ),
                );
                self.stop_after_disk_failure(node);
            }
            Ok(None) => {}
            Ok(Some(id)) => {
                let durable = state.disk.durable();
                let result = self.checks.on_durable(node, durable);
                let size = self.persisted.on_durable(node, id, durable);
                self.checked(result.and(size));
                self.trace.event(self.now, Self::actor(node), format_args!("persisted #{}", id.0));
                if !self.options.disk.lies {
                    self.node_input(node, Input::Persisted { id });
                }
            }
        }
    }

    /// `read`, a read back from the disk that node `node` asked for in its life `life`, if it
    /// is to be done now: none if the node restarted since; none while it is paused, when the
    /// read is scheduled again (`again`) after the disk's latency, so that it gets it once it
    /// goes on.
    fn read_due<T>(
        &mut self,
        node: usize,
        life: u64,
        read: T,
        again: fn(usize, u64, T) -> EventOf<M>,
    ) -> Option<T> {
        if self.nodes[node].life != life {
            return None;
        }
        if self.nodes[node].paused {
            let after = Duration::from_micros(self.options.disk.latency_us_max);
            self.schedule(self.now + after, again(node, life, read));
            return None;
        }
        Some(read)
    }

    /// Reads back the snapshot received whole that the node asked for, checking every
    /// checksum, and decodes it, as the server's loader thread does: a damaged file is never
    /// installed, the node receives it again. A paused node gets it once it goes on.
    fn on_snapshot_load(&mut self, node: usize, life: u64, whole: PartialSnapshot) {
        let again = |node, life, whole| Event::SnapshotLoad { node, life, whole };
        let Some(whole) = self.read_due(node, life, whole, again) else { return };
        let last = whole.last;
        let loaded = match self.nodes[node].disk.load_received_snapshot(&whole) {
            Ok(snapshot) => {
                let saved = SavedSnapshot::of(&snapshot);
                let state = self.workload.machine.new_state();
                LoadedSnapshot::decode(saved, &mut &snapshot.data[..], state).map_err(|error| {
                    (Input::SnapshotUndecodable { last }, format!("does not decode: {error}"))
                })
            }
            Err(error) => {
                self.stats.received_snapshots_damaged += 1;
                Err((Input::SnapshotDamaged { last }, error.to_string()))
            }
        };
        match loaded {
            Ok(loaded) => {
                self.persisted.on_snapshot(node, loaded.snapshot().bytes as usize);
                let state = &mut self.nodes[node];
                let Some(replica) = state.replica.as_mut() else { return };
                replica.snapshot_loaded(state.clock.local(self.now), loaded);
                self.drain_node(node);
            }
            Err((input, error)) => {
                let actor = Self::actor(node);
                self.trace.event(
                    self.now,
                    actor,
                    format_args!("received snapshot {last}: {error}"),
                );
                self.node_input(node, input);
            }
        }
    }

    /// Hands the node the committed entries it left on its disk at its start, read back and
    /// checked against what was acknowledged, as the server's disk thread does; if the disk
    /// cannot give them, the node stops, as the server does, and its next start checks its
    /// log. A paused node gets them once it goes on.
    fn on_entries_load(&mut self, node: usize, life: u64, load: EntriesToLoad) {
        let again = |node, life, load| Event::EntriesLoad { node, life, load };
        let Some(load) = self.read_due(node, life, load, again) else { return };
        match self.nodes[node].disk.read_entries(load.first, load.last) {
            Ok(Some(entries)) if load.matches(&entries) => {
                self.trace.event(self.now, Self::actor(node), format_args!("{load}"));
                self.node_input(node, Input::EntriesLoaded { entries });
            }
            Ok(_) => {
                self.trace.event(
                    self.now,
                    Self::actor(node),
                    format_args!("cannot read back from the disk: {load}; the node stops"),
                );
                self.stop_after_disk_failure(node);
            }
            Err(reason) => self.fail((Check::Storage, format!("n{}: {reason}", node_id(node)))),
        }
    }

    fn on_snapshot_encoded(&mut self, node: usize, life: u64, job: &SnapshotJob) {
        if self.nodes[node].life != life {
            return;
        }
        let snapshot = job.encode();
        let actor = Self::actor(node);
        match self.nodes[node].disk.save_snapshot(&snapshot) {
            Err(failure) => {
                self.stats.disk_failures += 1;
                let error = failure.error;
                self.trace.event(
                    self.now,
                    actor,
                    format_args!("saving snapshot {} failed: {error}; the node stops", job.last()),
                );
                self.stop_after_disk_failure(node);
            }
            Ok(replaced) => {
                let result = self.checks.on_durable(node, self.nodes[node].disk.durable());
                self.checked(result);
                let outcome = if replaced { "saved" } else { "superseded" };
                let (last, bytes) = (snapshot.last, snapshot.data.len());
                self.trace.event(
                    self.now,
                    actor,
                    format_args!("snapshot {last} {outcome} ({bytes}B)"),
                );
                self.persisted.on_snapshot(node, snapshot.data.len());
                let snapshot = SavedSnapshot::of(&snapshot);
                self.node_input(node, Input::SnapshotSaved { snapshot });
            }
        }
    }

    // ---- network ----

    pub(crate) fn send(&mut self, packet: Packet<CommandOf<M>, ReplyOf<M>>) {
        let (from, to) = (packet.source(), packet.destination());
        match self.network.route(from, to) {
            Route::Cut => self.trace_packet(&packet, "cut"),
            Route::Lost => self.trace_packet(&packet, "lost"),
            Route::Delivered(delay) => self.schedule_in(delay, Event::Deliver(Box::new(packet))),
            Route::Duplicated(first, second) => {
                self.trace_packet(&packet, "duplicated");
                self.schedule_in(first, Event::Deliver(Box::new(packet.clone())));
                self.schedule_in(second, Event::Deliver(Box::new(packet)));
            }
        }
    }

    fn trace_packet(&mut self, packet: &Packet<CommandOf<M>, ReplyOf<M>>, fate: &str) {
        let actor = match packet.source() {
            Endpoint::Node(id) => Actor::Node(id.0),
            Endpoint::Client(client) => Actor::Client(client),
        };
        self.trace.event(self.now, actor, format_args!("{} ({fate})", TraceLine::<M>(packet)));
    }

    fn deliver(&mut self, packet: Packet<CommandOf<M>, ReplyOf<M>>) {
        match packet.destination() {
            Endpoint::Node(id) => {
                let node = self.node_index(id);
                let state = &self.nodes[node];
                if state.replica.is_none() {
                    self.trace.event(
                        self.now,
                        Actor::Node(id.0),
                        format_args!("down, drops {}", TraceLine::<M>(&packet)),
                    );
                    return;
                }
                self.trace.event(
                    self.now,
                    Actor::Node(id.0),
                    format_args!("<- {}", TraceLine::<M>(&packet)),
                );
                let input = match packet {
                    Packet::Peer(message) => {
                        self.quorums.on_delivered(&message);
                        if let Body::InstallSnapshot { total, offset, chunk, .. } = &message.body {
                            if offset + (chunk.len() as u64) < *total {
                                // It holds part of a snapshot now, unless it dropped the chunk.
                                self.maybe_crash_during_snapshot(node, self.now);
                            }
                        }
                        Input::Message(message)
                    }
                    Packet::Request { client, request, .. } => {
                        Input::Request { from: reply_to(client), request }
                    }
                    Packet::Reply { .. } => unreachable!("replies go to clients"),
                };
                self.node_input(node, input);
            }
            Endpoint::Client(client) => {
                self.trace.event(
                    self.now,
                    Actor::Client(client),
                    format_args!("<- {}", TraceLine::<M>(&packet)),
                );
                let Packet::Reply { from, reply, .. } = packet else {
                    unreachable!("only replies go to clients")
                };
                self.workload.clients[client]
                    .clerk
                    .handle(self.now, ClerkInput::Reply { from, reply });
                self.drain_clerk(client);
            }
        }
    }

    // ---- clients ----

    fn drain_clerk(&mut self, client: usize) {
        let mut outputs = Vec::new();
        while let Some(output) = self.workload.clients[client].clerk.poll_output() {
            outputs.push(output);
        }
        for output in outputs {
            match output {
                ClerkOutput::Send { to, request } => {
                    self.send(Packet::Request { client, to, request })
                }
                ClerkOutput::Finished { request, result } => {
                    self.on_finished(client, request, result)
                }
            }
        }
        let state = &mut self.workload.clients[client];
        match state.clerk.poll_timeout() {
            Some(at) if state.timer != Some(at.max(self.now)) => {
                let at = at.max(self.now);
                state.timer = Some(at);
                state.timer_generation += 1;
                let generation = state.timer_generation;
                self.schedule(at, Event::ClerkTimer { client, generation });
            }
            Some(_) => {}
            None => state.timer = None,
        }
    }

    fn on_finished(
        &mut self,
        client: usize,
        request: RequestId,
        result: Result<ReplyOf<M>, ClerkError>,
    ) {
        let Some(op) = self.workload.finish(client, request, self.now, result) else {
            return;
        };
        let recorded = &self.workload.history[op];
        let (_, result) = recorded.ret.as_ref().expect("just finished");
        self.trace.event(
            self.now,
            Actor::Client(client),
            format_args!("return #{op} {}", result_text::<M>(result)),
        );
        match result {
            Ok(reply) if !M::reply_fits(&recorded.command, reply) => {
                let command = M::command_text(&recorded.command);
                let detail = format!("c{client} got {reply:?} for {command}");
                self.fail((Check::Client, detail));
            }
            Err(ClerkError::Invalid { reason }) => {
                let detail = format!(
                    "c{client}'s {} was refused as invalid: {reason}",
                    M::command_text(&recorded.command)
                );
                self.fail((Check::Client, detail));
            }
            _ => {}
        }
        self.on_op_finished(client);
    }

    /// Client `client` issues `command` now; returns the operation's id in the history.
    pub fn submit(&mut self, client: usize, command: CommandOf<M>) -> OpId {
        self.trace.event(
            self.now,
            Actor::Client(client),
            format_args!("call #{} {}", self.workload.history.len(), M::command_text(&command)),
        );
        let op = self.workload.submit(client, self.now, command);
        self.on_op_submitted(op);
        self.drain_clerk(client);
        op
    }

    // ---- faults a test scripts ----

    pub(crate) fn node_index(&self, id: NodeId) -> usize {
        let index = node_ids::node_index(id).filter(|&index| index < self.nodes.len());
        index.unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Kills node `id`: it loses its memory and the writes its disk had not finished.
    pub fn crash(&mut self, id: NodeId) {
        let node = self.node_index(id);
        if self.nodes[node].replica.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let state = &self.nodes[node];
        self.stats.crashes_snapshot_persist += u64::from(state.disk.snapshot_in_flight());
        if let Some(replica) = &state.replica {
            self.stats.add_life(replica);
            let raft = replica.raft();
            self.stats.crashes_snapshot_send += u64::from(raft.snapshots_sending() > 0);
            self.stats.crashes_snapshot_receive += u64::from(raft.snapshot_receiving().is_some());
        }
        let loss = self.nodes[node].crash();
        if loss.torn.is_some() {
            self.stats.torn_persists += 1;
        }
        let result = self.persisted.on_crash(node, self.nodes[node].disk.durable());
        self.checked(result);
        let torn = match loss.torn {
            Some((persist, steps)) => {
                format!(", struck the write up to #{} after {steps} steps", persist.0)
            }
            None => String::new(),
        };
        self.trace.event(
            self.now,
            Actor::Node(id.0),
            format_args!("crash: {} persists unacknowledged{torn}", loss.lost),
        );
    }

    /// Rots one bit of node `id`'s data (anything but its identity file); the node finds out
    /// when it next starts. Returns where, if its disk holds any data.
    pub fn rot_bit(&mut self, id: NodeId) -> Option<String> {
        let node = self.node_index(id);
        let flip = self.nodes[node].disk.flip_bit()?;
        self.stats.bit_rots += 1;
        self.trace.event(self.now, Actor::Node(id.0), format_args!("bit rot: {flip}"));
        Some(flip)
    }

    /// Starts crashed node `id` again from its disk.
    pub fn restart(&mut self, id: NodeId) {
        let node = self.node_index(id);
        if self.nodes[node].replica.is_none() {
            self.start_node(node);
        }
    }

    /// Stalls node `id`'s process: it handles nothing until resumed, while its disk, its clock
    /// and the network go on.
    pub fn pause(&mut self, id: NodeId) {
        let node = self.node_index(id);
        if self.nodes[node].is_running() {
            self.stats.pauses += 1;
            self.nodes[node].paused = true;
            self.trace.event(self.now, Actor::Node(id.0), format_args!("pause"));
        }
    }

    /// Lets paused node `id` go on: it handles what reached it meanwhile, then its timers.
    pub fn resume(&mut self, id: NodeId) {
        let node = self.node_index(id);
        let state = &mut self.nodes[node];
        if !state.paused {
            return;
        }
        state.paused = false;
        let stalled = std::mem::take(&mut state.stalled);
        self.trace.event(
            self.now,
            Actor::Node(id.0),
            format_args!("resume, {} inputs waiting", stalled.len()),
        );
        for input in stalled {
            self.node_input(node, input);
        }
        self.nodes[node].timer = None;
        self.schedule_node_timer(node);
    }

    /// Cuts every link between endpoints of different sides; endpoints in no side keep all
    /// their links.
    pub fn partition(&mut self, sides: &[Vec<Endpoint>]) {
        self.stats.partitions += 1;
        self.network.partition(sides);
        let text: Vec<String> = sides
            .iter()
            .map(|side| side.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
            .collect();
        self.trace.event(self.now, Actor::Sim, format_args!("partition {}", text.join(" | ")));
    }

    /// Cuts node `id` off from every other node and client.
    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<Endpoint> =
            self.network.endpoints().filter(|&end| end != Endpoint::Node(id)).collect();
        self.partition(&[vec![Endpoint::Node(id)], others]);
    }

    /// Cuts the one link from `from` to `to` (the other direction stays).
    pub fn cut(&mut self, from: Endpoint, to: Endpoint) {
        self.network.set_cut(from, to, true);
        self.trace.event(self.now, Actor::Sim, format_args!("cut {from}->{to}"));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.network.heal();
        self.trace.event(self.now, Actor::Sim, format_args!("heal"));
    }

    // ---- queries ----

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The options the simulation runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The replica of node `id`, unless it is crashed.
    pub fn replica(&self, id: NodeId) -> Option<&Replica<M::State>> {
        self.nodes[self.node_index(id)].replica.as_ref()
    }

    /// The ids of every node, those added by membership changes included, in the order they
    /// were added.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    /// Every running node that believes it leads, as (term, id), oldest term first.
    pub fn leaders(&self) -> Vec<(Term, NodeId)> {
        let mut leaders: Vec<(Term, NodeId)> = self
            .nodes
            .iter()
            .filter_map(|node| node.replica.as_ref())
            .map(Replica::raft)
            .filter(|raft| raft.role() == Role::Leader)
            .map(|raft| (raft.term(), raft.id()))
            .collect();
        leaders.sort();
        leaders
    }

    /// The running, unpaused leader of the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leaders()
            .into_iter()
            .rev()
            .map(|(_, id)| id)
            .find(|&id| self.nodes[self.node_index(id)].is_running())
    }

    /// The committed entry at `index` as node `id` holds it, if it is up, has committed that
    /// far and still holds the entry: in memory, or (past its log cache) on its disk only.
    pub fn committed_entry(&self, id: NodeId, index: LogIndex) -> Option<&Entry> {
        let raft = self.replica(id)?.raft();
        let status = raft.status();
        if status.commit < index || index <= status.snapshot_last.index {
            return None;
        }
        let on_disk = || self.nodes[self.node_index(id)].disk.durable().entry(index);
        raft.entry(index).or_else(on_disk)
    }

    /// The term of the entry committed at `index`, as the simulator recorded it from every
    /// node's commits (also once every node compacted it), if it is committed.
    pub fn committed_term(&self, index: LogIndex) -> Option<Term> {
        self.checks.committed_term(index)
    }

    /// The Raft state node `id` keeps on its disk: its log after the snapshot and its hard
    /// state, in bytes (what a crash now would leave; the snapshot counts apart).
    pub fn persisted_bytes(&self, id: NodeId) -> u64 {
        persisted_bytes(self.nodes[self.node_index(id)].disk.durable())
    }

    /// The operation `op` as its client saw it so far.
    pub fn op(&self, op: OpId) -> &Recorded<CommandOf<M>, ReplyOf<M>> {
        &self.workload.history[op]
    }

    /// Every operation issued so far, in call order.
    pub fn history(&self) -> &[Recorded<CommandOf<M>, ReplyOf<M>>] {
        &self.workload.history
    }

    /// What happened so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The hash of the trace so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// The first broken safety property, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Proposes a command at node `id` as a test would with Raft's `Start`: if the node leads,
    /// the command enters its log and the entry's id is returned. The command is a put of
    /// `value` to key `raft`, outside any client session (its reply is only traced).
    pub fn start(&mut self, id: NodeId, value: &str) -> Option<LogId> {
        let node = self.node_index(id);
        let raft = self.nodes[node].replica.as_ref()?.raft();
        if raft.role() != Role::Leader || !self.nodes[node].is_running() {
            return None;
        }
        let before = raft.status().last_log;
        self.hand_requests += 1;
        let command = M::hand_command(value);
        let request = ClientRequest {
            client: ClientId(0),
            request: RequestId(self.hand_requests),
            op: Op::Command(command),
        };
        self.trace.event(self.now, Actor::Node(id.0), format_args!("test proposes {value}"));
        self.node_input(node, Input::Request { from: BY_HAND, request });
        let after = self.nodes[node].replica.as_ref()?.raft().status().last_log;
        (after.index > before.index).then_some(after)
    }

    /// Starts a new node, with the next id, an empty disk and no membership: it waits for a
    /// leader to add it (see [`propose_membership_change`](Self::propose_membership_change)).
    pub fn add_node(&mut self) -> NodeId {
        let node = self.nodes.len();
        let id = node_id(node);
        let disk = Disk::new(self.options.disk.clone(), self.membership_rng.fork(), id);
        let mut added = SimNode::new(id, Vec::new(), disk, self.membership_rng.fork());
        if self.auto.as_ref().is_some_and(Auto::is_healed) {
            added.disk.stop_faults();
        }
        self.nodes.push(added);
        self.network.add_node();
        self.checks.add_node();
        self.persisted.add_node();
        self.trace.event(self.now, Actor::Node(id.0), format_args!("added, empty"));
        self.start_node(node);
        id
    }

    /// Proposes a membership change at node `id`, as an operator would; refused unless it
    /// runs and leads.
    pub fn propose_membership_change(
        &mut self,
        id: NodeId,
        changes: &[MemberChange],
    ) -> Result<LogId, ChangeRefused> {
        let node = self.node_index(id);
        let state = &mut self.nodes[node];
        let local = state.clock.local(self.now);
        let result = match state.replica.as_mut().filter(|_| !state.paused) {
            Some(replica) => replica.propose_membership_change(local, changes),
            None => Err(ChangeRefused::NotLeader { hint: None }),
        };
        self.stats.membership.record(changes, &result);
        let outcome = match &result {
            Ok(entry) => format!("proposed at {entry}"),
            Err(refused) => format!("refused: {refused}"),
        };
        self.trace.event(
            self.now,
            Actor::Node(id.0),
            format_args!("membership change {changes:?} {outcome}"),
        );
        self.drain_node(node);
        result
    }

    /// Asks node `id`, if it leads, to hand its leadership over to `target`.
    pub fn transfer_leadership(&mut self, id: NodeId, target: NodeId) {
        let node = self.node_index(id);
        let state = &mut self.nodes[node];
        if !state.is_running() {
            return;
        }
        self.stats.transfers += 1;
        let local = state.clock.local(self.now);
        if let Some(replica) = state.replica.as_mut() {
            let result = replica.transfer_leadership(local, target);
            let outcome = match result {
                Ok(()) => "asked".to_string(),
                Err(error) => format!("refused: {error}"),
            };
            self.trace.event(
                self.now,
                Actor::Node(id.0),
                format_args!("transfer to n{target} {outcome}"),
            );
        }
        self.drain_node(node);
    }

    /// Replicas that applied up to the same index must hold the same state and sessions.
    pub(crate) fn compare_replicas(&mut self) {
        let running: Vec<&Replica<M::State>> =
            self.nodes.iter().filter_map(|node| node.replica.as_ref()).collect();
        for (i, a) in running.iter().enumerate() {
            for b in &running[i + 1..] {
                if a.applied() == b.applied()
                    && (a.state() != b.state() || a.sessions() != b.sessions())
                {
                    let detail = format!(
                        "n{} and n{} both applied up to {} but hold different states",
                        a.raft().id(),
                        b.raft().id(),
                        a.applied()
                    );
                    self.fail((Check::Divergence, detail));
                    return;
                }
            }
        }
    }
}

fn result_text<M: Machine>(result: &Result<ReplyOf<M>, ClerkError>) -> String {
    match result {
        Ok(reply) => M::reply_text(reply),
        Err(error) => format!("error: {error}"),
    }
}
