//! A hand-wired cluster for scenario tests, whichever machine its nodes run: a FIFO network
//! that the test can cut, filter and reorder, a disk per node that keeps only acknowledged
//! persists across crashes, clients, and a transcript of everything, one line each.
//!
//! Messages are delivered at the current instant; time only moves when a test asks for it, by
//! jumping to the next timeout of any node or client. Every promise a node sends (a vote
//! grant, an append acknowledgement) is checked against its disk at the moment it is sent, no
//! term is led twice, and no two nodes apply different entries at one index.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raftkv_core::client::ClerkError;
use raftkv_core::kv::KvReply;
use raftkv_core::protocol::ClientReply;
use raftkv_core::raft::{Entry, HardState, Persist, Recovered, Role};
use raftkv_core::{Duration, Instant, LogIndex, NodeId, RequestId, Term};

use crate::checks::{check_promise, check_same_everywhere};
use crate::client::{Client, ClientEffect};
use crate::durable::Durable;
use crate::endpoint::{Endpoint, Routed};
use crate::machine::{Effect, Machine};
use crate::node_ids::{node_ids, slot_index};
use crate::transcript::{Transcript, outcome_text};
use raftkv_core::raft::SavedSnapshot;
use raftkv_core::snapshot_job::SnapshotJob;

/// The most messages [`Cluster::stabilize`] delivers before it calls the network livelocked;
/// the largest scenario of the tests needs a few thousand.
pub(crate) const DELIVERIES_MAX: u64 = 200_000;

/// The most timeouts that may fire at one instant of the cluster's time before a node counts
/// as spinning.
pub(crate) const TICKS_PER_INSTANT_MAX: u32 = 1_000;

/// One node, across its lives.
pub struct Slot<M: Machine> {
    pub config: M::Config,
    /// The node while it runs.
    pub node: Option<M>,
    /// What survives a crash: the persists acknowledged.
    pub disk: Durable,
    /// Persists handed out but not yet written (lost on a crash).
    pub unwritten: VecDeque<Persist>,
    /// Snapshots handed out to save but not yet saved (lost on a crash).
    pub unsaved_snapshots: VecDeque<SnapshotJob>,
    /// Entries a bare Raft node handed out to apply, by index. A restarted node applies again
    /// from its snapshot; it must apply the same entries. (A replica applies its own.)
    pub applied: BTreeMap<LogIndex, Entry>,
    /// Reads the node said may be served, as (context, index).
    pub reads_ready: Vec<(u64, LogIndex)>,
    /// How far ahead of the cluster's time the node's clock reads (clock origins differ
    /// between processes).
    pub clock_ahead: Duration,
}

/// A cluster of nodes of machine `M`, with their clients.
pub struct Cluster<M: Machine> {
    pub now: Instant,
    pub slots: Vec<Slot<M>>,
    /// What is in flight, oldest first.
    pub network: VecDeque<M::Packet>,
    /// Write and acknowledge every persist as soon as it is emitted.
    pub auto_persist: bool,
    /// Encode, save and acknowledge every snapshot as soon as a replica asks.
    pub auto_save_snapshots: bool,
    /// The clients, by index.
    pub clerks: Vec<M::Client>,
    /// What each client finished, in order.
    pub finished: Vec<Vec<(RequestId, Result<KvReply, ClerkError>)>>,
    /// Replies to requests sent by hand.
    pub by_hand: Vec<(NodeId, ClientReply<KvReply>)>,
    /// Directed links that drop everything.
    cut_links: BTreeSet<(Endpoint, Endpoint)>,
    transcript: Transcript,
    /// The node that led each term, across every node's lives: a term is led once.
    led: BTreeMap<Term, NodeId>,
}

impl<M: Machine> Cluster<M> {
    /// Starts a node for every config (node `i + 1` gets `configs[i]`) with an empty disk, at
    /// time zero, and the clients.
    pub fn start(configs: Vec<M::Config>, clerks: Vec<M::Client>) -> Cluster<M> {
        let slots = configs
            .into_iter()
            .map(|config| Slot {
                node: Some(M::start(Instant::ZERO, &config, Recovered::default())),
                config,
                disk: Durable::default(),
                unwritten: VecDeque::new(),
                unsaved_snapshots: VecDeque::new(),
                applied: BTreeMap::new(),
                reads_ready: Vec::new(),
                clock_ahead: Duration::ZERO,
            })
            .collect();
        Cluster {
            now: Instant::ZERO,
            slots,
            network: VecDeque::new(),
            auto_persist: true,
            auto_save_snapshots: true,
            finished: clerks.iter().map(|_| Vec::new()).collect(),
            clerks,
            by_hand: Vec::new(),
            cut_links: BTreeSet::new(),
            transcript: Transcript::default(),
            led: BTreeMap::new(),
        }
    }

    /// Starts one more node with an empty disk, and the next id (`slots.len() + 1`), at the
    /// current time. Returns its id.
    pub fn add_node(&mut self, config: M::Config) -> NodeId {
        let node = crate::node_ids::id(self.slots.len() as u64 + 1);
        let now = self.now;
        self.transcript.note(|| format!("{node}: start"));
        self.slots.push(Slot {
            node: Some(M::start(now, &config, Recovered::default())),
            config,
            disk: Durable::default(),
            unwritten: VecDeque::new(),
            unsaved_snapshots: VecDeque::new(),
            applied: BTreeMap::new(),
            reads_ready: Vec::new(),
            clock_ahead: Duration::ZERO,
        });
        self.drain(node);
        node
    }

    pub fn ids(&self) -> Vec<NodeId> {
        node_ids(self.slots.len() as u64)
    }

    pub fn slot(&self, node: NodeId) -> &Slot<M> {
        &self.slots[slot_index(node)]
    }

    fn slot_mut(&mut self, node: NodeId) -> &mut Slot<M> {
        &mut self.slots[slot_index(node)]
    }

    /// The running node `node`; panics if it is down.
    pub fn machine(&self, node: NodeId) -> &M {
        self.slot(node).node.as_ref().expect("node is up")
    }

    pub fn machine_mut(&mut self, node: NodeId) -> &mut M {
        self.slot_mut(node).node.as_mut().expect("node is up")
    }

    /// Whether `node` runs (a node the cluster never had does not).
    pub fn is_up(&self, node: NodeId) -> bool {
        self.slots.get(slot_index(node)).is_some_and(|slot| slot.node.is_some())
    }

    /// What survives a crash of `node`.
    pub fn disk(&self, node: NodeId) -> &Durable {
        &self.slot(node).disk
    }

    /// What node `node`'s disk holds, to damage it.
    pub fn disk_mut(&mut self, node: NodeId) -> &mut Durable {
        &mut self.slot_mut(node).disk
    }

    // ---- transcript ----

    pub fn start_transcript(&mut self) {
        self.transcript.start();
    }

    pub fn take_transcript(&mut self) -> String {
        self.transcript.take()
    }

    // ---- clocks ----

    /// What `node`'s clock reads now.
    pub fn clock_of(&self, node: NodeId) -> Instant {
        self.now + self.slot(node).clock_ahead
    }

    /// Makes `node`'s clock read `ahead` later than the cluster's time from now on (its
    /// process started that much earlier than the others).
    pub fn set_clock_ahead(&mut self, node: NodeId, ahead: Duration) {
        self.slot_mut(node).clock_ahead = ahead;
    }

    /// Moves the clock without firing any timeout (leases expire, deadlines pass unnoticed
    /// until the next `tick`).
    pub fn advance(&mut self, millis: u64) {
        self.now = self.now + Duration::from_millis(millis);
    }

    // ---- driving the nodes ----

    pub fn handle(&mut self, node: NodeId, input: M::Input) {
        let now = self.clock_of(node);
        if let Some(machine) = self.slot_mut(node).node.as_mut() {
            machine.handle(now, input);
            self.drain(node);
        }
    }

    /// Carries out what one node wants done: sends, persists, applies, replies.
    pub fn drain(&mut self, node: NodeId) {
        loop {
            let Some(machine) = self.slot_mut(node).node.as_mut() else {
                return;
            };
            let Some(effect) = machine.poll_effect() else {
                machine.check_invariants();
                return;
            };
            self.carry_out(node, effect);
        }
    }

    fn carry_out(&mut self, node: NodeId, effect: Effect<M::Packet>) {
        match effect {
            Effect::Send(message) => {
                check_promise(&message, &self.slot(node).disk, self.machine(node).raft());
                self.send(M::Packet::from(message));
            }
            Effect::Reply(packet) => self.send(packet),
            Effect::ReplyByHand(reply) => {
                self.transcript.note(|| {
                    format!("{node}->test #{} {}", reply.request, outcome_text(&reply.outcome))
                });
                self.by_hand.push((node, reply));
            }
            Effect::Persist(persist) => {
                if M::TRANSCRIBES_PERSISTS {
                    self.transcript.note(|| format!("{node}: {persist}"));
                }
                self.slot_mut(node).unwritten.push_back(persist);
                if self.auto_persist {
                    self.persist(node);
                }
            }
            Effect::SaveSnapshot(job) => {
                self.transcript.note(|| format!("{node}: save snapshot {}", job.last()));
                self.slot_mut(node).unsaved_snapshots.push_back(job);
                if self.auto_save_snapshots {
                    self.save_snapshots(node);
                }
            }
            Effect::SendSnapshotChunk(chunk) => {
                // Read from the disk, as a driver does: only the snapshot saved there at the
                // chunk's point has it.
                match self.slot(node).disk.snapshot_chunk(&chunk) {
                    Some(data) => self.carry_out(node, Effect::Send(chunk.into_message(data))),
                    None => {
                        self.transcript.note(|| format!("{node}: no such chunk on disk: {chunk}"))
                    }
                }
            }
            Effect::SendEntries(append) => {
                // Read from the disk, as a driver does: only what it made durable is there.
                let disk = &self.slot(node).disk;
                let entries: Option<Vec<Entry>> = (append.first().0..=append.last.index.0)
                    .map(|index| disk.entry(LogIndex(index)).cloned())
                    .collect();
                match entries.filter(|entries| append.matches(entries)) {
                    Some(entries) => {
                        self.carry_out(node, Effect::Send(append.into_message(entries)))
                    }
                    None => {
                        self.transcript.note(|| format!("{node}: unreadable on disk: {append}"));
                        let now = self.clock_of(node);
                        let through = append.last.index;
                        if let Some(machine) = self.slot_mut(node).node.as_mut() {
                            machine.handle(now, M::log_unreadable_input(through));
                            self.drain(node);
                        }
                    }
                }
            }
            Effect::LoadEntries(load) => {
                // Read from the disk, as a driver does; the model never loses what it holds.
                let disk = &self.slot(node).disk;
                let entries: Option<Vec<Entry>> = (load.first.0..=load.last.index.0)
                    .map(|index| disk.entry(LogIndex(index)).cloned())
                    .collect();
                let entries = entries.filter(|entries| load.matches(entries));
                let entries = entries.unwrap_or_else(|| panic!("{node}: not on disk: {load}"));
                self.transcript.note(|| format!("{node}: {load}"));
                let now = self.clock_of(node);
                if let Some(machine) = self.slot_mut(node).node.as_mut() {
                    machine.handle(now, M::entries_loaded_input(entries));
                    self.drain(node);
                }
            }
            Effect::LoadSnapshot(whole) => {
                let loaded = self.slot(node).disk.load_received_snapshot(&whole);
                self.transcript.note(|| format!("{node}: load received snapshot {}", whole.last));
                let now = self.clock_of(node);
                if let Some(machine) = self.slot_mut(node).node.as_mut() {
                    match loaded {
                        Some(snapshot) => machine.snapshot_loaded(now, snapshot),
                        None => machine.handle(now, M::snapshot_damaged_input(whole.last)),
                    }
                    self.drain(node);
                }
            }
            Effect::Apply(entries) => {
                let (first, last) = (entries[0].index, entries[entries.len() - 1].index);
                self.transcript.note(|| format!("{node}: apply {first}..{last}"));
                for entry in entries {
                    check_same_everywhere(node, &entry, self.slots.iter().map(|s| &s.applied));
                    self.slot_mut(node).applied.insert(entry.index, entry);
                }
            }
            Effect::ReadReady { ctx, index } => {
                self.transcript.note(|| format!("{node}: read #{ctx} ready at {index}"));
                self.slot_mut(node).reads_ready.push((ctx, index));
            }
            Effect::RoleChanged { role, term, leader } => {
                let leader = leader.map_or("none".to_string(), |leader| leader.to_string());
                self.transcript.note(|| format!("{node}: {role} t={term} leader={leader}"));
                if role == Role::Leader {
                    let earlier = self.led.insert(term, node);
                    assert!(earlier.is_none(), "term {term} led by {earlier:?}, now by {node}");
                }
            }
            Effect::Note(line) => self.transcript.note(|| format!("{node}: {line}")),
        }
    }

    /// Puts `packet` in flight, unless its link is cut or it goes to a node that is down.
    fn send(&mut self, packet: M::Packet) {
        let (from, to) = (packet.source(), packet.destination());
        let down = matches!(to, Endpoint::Node(node) if !self.is_up(node));
        let dropped = down || self.cut_links.contains(&(from, to));
        self.transcript.note(|| format!("{packet}{}", if dropped { "  (dropped)" } else { "" }));
        if !dropped {
            self.network.push_back(packet);
        }
    }

    /// Writes every persist the node handed out and acknowledges the last one.
    pub fn persist(&mut self, node: NodeId) {
        let slot = self.slot_mut(node);
        let mut last = None;
        while let Some(persist) = slot.unwritten.pop_front() {
            slot.disk.apply(&persist).unwrap_or_else(|broken| panic!("node {node}: {broken}"));
            last = Some(persist.id);
        }
        if let Some(id) = last {
            if M::TRANSCRIBES_PERSISTS {
                self.transcript.note(|| format!("{node}: persisted #{}", id.0));
            }
            self.handle(node, M::persisted_input(id));
        }
    }

    /// Encodes and saves the snapshots the node asked for so far, as a driver's snapshot
    /// thread would, and tells the node each one is saved (those it asks for then wait).
    pub fn save_snapshots(&mut self, node: NodeId) {
        let asked = self.slot(node).unsaved_snapshots.len();
        for _ in 0..asked {
            let Some(job) = self.slot_mut(node).unsaved_snapshots.pop_front() else { break };
            let snapshot = job.encode();
            self.slot_mut(node).disk.save_snapshot(&snapshot);
            self.transcript.note(|| format!("{node}: snapshot saved {}", snapshot.last));
            if let Some(input) = M::snapshot_saved_input(SavedSnapshot::of(&snapshot)) {
                self.handle(node, input);
            }
        }
    }

    // ---- driving the clients ----

    /// Carries out what one client wants done: sends, and records what it finished.
    pub fn drain_clerk(&mut self, client: usize) {
        while let Some(effect) = self.clerks[client].poll_effect(client) {
            match effect {
                ClientEffect::Send(packet) => self.send(packet),
                ClientEffect::Finished(request, result) => {
                    self.transcript.note(|| format!("c{client}: #{request} finished {result:?}"));
                    self.finished[client].push((request, result));
                }
            }
        }
    }

    // ---- the network ----

    /// Hands `packet` to its destination now.
    pub fn deliver(&mut self, packet: M::Packet) {
        match packet.destination() {
            Endpoint::Node(node) => self.handle(node, M::packet_input(packet)),
            Endpoint::Client(client) => {
                let now = self.now;
                self.clerks[client].receive(now, packet);
                self.drain_clerk(client);
            }
        }
    }

    /// Delivers the oldest packet in flight; returns false when none is.
    pub fn deliver_one(&mut self) -> bool {
        let Some(packet) = self.network.pop_front() else {
            return false;
        };
        self.deliver(packet);
        true
    }

    /// Delivers the packets in flight that match, oldest first, until none is left (answers
    /// they cause are delivered too if they match); the others stay in flight, in order.
    pub fn deliver_where(&mut self, matches: impl Fn(&M::Packet) -> bool) {
        while self.deliver_first_where(&matches) {}
    }

    /// Delivers the first packet in flight that matches; returns whether there was one.
    pub fn deliver_first_where(&mut self, matches: impl Fn(&M::Packet) -> bool) -> bool {
        let Some(position) = self.network.iter().position(matches) else {
            return false;
        };
        let packet = self.network.remove(position).expect("position is in range");
        self.deliver(packet);
        true
    }

    /// Drops the packets in flight that match.
    pub fn drop_where(&mut self, matches: impl Fn(&M::Packet) -> bool) {
        self.network.retain(|packet| !matches(packet));
    }

    /// Delivers packets until the network is quiet.
    ///
    /// # Panics
    /// If the network does not go quiet within [`DELIVERIES_MAX`] messages: a livelock.
    pub fn stabilize(&mut self) {
        for node in self.ids() {
            self.drain(node);
        }
        let mut delivered = 0;
        while self.deliver_one() {
            delivered += 1;
            assert!(delivered < DELIVERIES_MAX, "the network never goes quiet: a livelock");
        }
    }

    // ---- time ----

    /// When `node` wants its timeout, in the cluster's time (now, if it is overdue).
    fn timeout_of(&self, node: NodeId) -> Option<Instant> {
        let due = self.slot(node).node.as_ref()?.poll_timeout()?;
        Some(self.now + (due - self.clock_of(node)))
    }

    /// The earliest timeout of any live node or client.
    pub fn next_timeout(&self) -> Option<Instant> {
        let nodes = self.ids().into_iter().filter_map(|node| self.timeout_of(node));
        let clients = self.clerks.iter().filter_map(Client::poll_timeout);
        nodes.chain(clients).min()
    }

    /// Jumps to the next timeout and fires everything due then.
    fn fire_next_timeouts(&mut self) {
        let Some(next) = self.next_timeout() else {
            return;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for node in self.ids() {
            if self.timeout_of(node).is_some_and(|due| due <= now) {
                self.handle(node, M::timeout_input());
            }
        }
        for client in 0..self.clerks.len() {
            if self.clerks[client].poll_timeout().is_some_and(|due| due <= now) {
                self.clerks[client].timeout(now);
                self.drain_clerk(client);
            }
        }
    }

    /// Jumps to the next timeout, fires everything due, and stabilizes.
    pub fn tick(&mut self) {
        self.fire_next_timeouts();
        self.stabilize();
    }

    /// Runs until `done` holds or `millis` of virtual time pass; returns whether it held.
    ///
    /// # Panics
    /// If more than [`TICKS_PER_INSTANT_MAX`] timeouts fire without time moving: a node whose
    /// `poll_timeout` stays in the past spins.
    pub fn run_until(&mut self, millis: u64, done: impl Fn(&Cluster<M>) -> bool) -> bool {
        let end = self.now + Duration::from_millis(millis);
        self.stabilize();
        let mut ticks_now = (self.now, 0);
        while !done(self) {
            match self.next_timeout() {
                Some(next) if next <= end => {
                    ticks_now = if next.max(self.now) == ticks_now.0 {
                        (ticks_now.0, ticks_now.1 + 1)
                    } else {
                        (next.max(self.now), 1)
                    };
                    assert!(
                        ticks_now.1 < TICKS_PER_INSTANT_MAX,
                        "timeouts spin at {}",
                        ticks_now.0
                    );
                    self.tick()
                }
                _ => {
                    self.now = end;
                    return false;
                }
            }
        }
        true
    }

    /// Runs until `millis` of virtual time have passed.
    pub fn run_for(&mut self, millis: u64) {
        self.run_until(millis, |_| false);
    }

    /// One step at a time: delivers the oldest packet in flight, or if there is none, fires the
    /// next timeouts; stops as soon as `done` holds (checked before every step) or `millis` of
    /// virtual time pass. Returns whether `done` held.
    pub fn step_until(&mut self, millis: u64, done: impl Fn(&Cluster<M>) -> bool) -> bool {
        let end = self.now + Duration::from_millis(millis);
        while !done(self) {
            if self.deliver_one() {
                continue;
            }
            if self.next_timeout().is_some_and(|next| next <= end) {
                self.fire_next_timeouts();
            } else {
                return false;
            }
        }
        true
    }

    // ---- faults ----

    /// Cuts the one link from `from` to `to` (the other direction stays).
    pub fn cut(&mut self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) {
        self.cut_links.insert((from.into(), to.into()));
    }

    /// Cuts every link between the ends of one side and those of the other.
    pub fn partition<E: Copy + Into<Endpoint>>(&mut self, side_a: &[E], side_b: &[E]) {
        for &a in side_a {
            for &b in side_b {
                self.cut(a, b);
                self.cut(b, a);
            }
        }
    }

    /// Cuts `node` off from every other node and client.
    pub fn isolate(&mut self, node: NodeId) {
        let nodes = self.ids().into_iter().filter(|&other| other != node).map(Endpoint::Node);
        let others: Vec<Endpoint> =
            nodes.chain((0..self.clerks.len()).map(Endpoint::Client)).collect();
        self.partition(&[Endpoint::Node(node)], &others);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut_links.clear();
    }

    /// Stops the node; whatever it handed out but the disk did not acknowledge is lost, and so
    /// are the packets in flight to it.
    pub fn crash(&mut self, node: NodeId) {
        self.transcript.note(|| format!("{node}: crash"));
        let slot = self.slot_mut(node);
        slot.node = None;
        slot.unwritten.clear();
        slot.unsaved_snapshots.clear();
        self.network.retain(|packet| packet.destination() != Endpoint::Node(node));
    }

    /// Starts the node again from its disk.
    pub fn restart(&mut self, node: NodeId) {
        self.transcript.note(|| format!("{node}: restart"));
        let now = self.clock_of(node);
        let slot = self.slot_mut(node);
        M::next_life(&mut slot.config);
        slot.node = Some(M::start(now, &slot.config, slot.disk.recover()));
        self.drain(node);
    }

    /// Crashes the node, empties its disk (an operator removed its data directory), and
    /// starts it again as a driver told that it rejoins does: its hard state says damaged.
    pub fn lose_disk(&mut self, node: NodeId) {
        self.crash(node);
        let hard_state = HardState { damaged: true, ..HardState::default() };
        self.slot_mut(node).disk = Durable { hard_state, ..Durable::default() };
        self.restart(node);
    }

    // ---- leaders ----

    /// The live leaders, by term.
    pub fn leaders(&self) -> Vec<(Term, NodeId)> {
        let mut leaders: Vec<(Term, NodeId)> = self
            .slots
            .iter()
            .filter_map(|slot| Some(slot.node.as_ref()?.raft()))
            .filter(|raft| raft.role() == Role::Leader)
            .map(|raft| (raft.term(), raft.id()))
            .collect();
        leaders.sort();
        leaders
    }

    /// The live leader of the highest term (of the highest id, if two lead one term).
    pub fn leader(&self) -> Option<NodeId> {
        self.leaders().last().map(|&(_, leader)| leader)
    }

    /// Runs until some node leads, for at most five seconds; returns it.
    pub fn wait_for_leader(&mut self) -> NodeId {
        assert!(self.run_until(5_000, |c| c.leader().is_some()), "a leader is elected");
        self.leader().expect("checked")
    }

    /// Makes `node` campaign now (again, if its term was behind) and settles the election,
    /// delivering every packet.
    pub fn elect(&mut self, node: NodeId) {
        self.campaign_until_leader(node, |_| true);
    }

    /// Makes `node` campaign until it leads, delivering only the packets that match.
    pub fn campaign_until_leader(&mut self, node: NodeId, deliver: impl Fn(&M::Packet) -> bool) {
        for _ in 0..3 {
            let now = self.clock_of(node);
            self.machine_mut(node).campaign(now);
            self.drain(node);
            self.deliver_where(&deliver);
            if self.machine(node).raft().role() == Role::Leader {
                return;
            }
        }
        panic!("node {node} could not win an election");
    }
}
