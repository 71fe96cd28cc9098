//! A hand-wired cluster of key-value replicas and clerks: one FIFO network for peer messages,
//! requests and replies that the test can cut and filter, disks that keep only acknowledged
//! persists, and a transcript. Time moves only when the test asks, by jumping to the next
//! timeout of any replica or clerk.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part of the harness.

use std::collections::{BTreeSet, VecDeque};

use raftkv_core::client::{Clerk, ClerkConfig, ClerkError, ClerkInput, ClerkOutput};
use raftkv_core::kv::{KvCommand, KvReply, KvStore};
use raftkv_core::protocol::{ClientReply, ClientRequest, Op, Outcome};
use raftkv_core::raft::{Config, Message, Persist, Recovered, Role};
use raftkv_core::server::{Input, Output, Replica, ReplicaConfig, ReplyTo};
use raftkv_core::{Duration, Instant, NodeId, RequestId};

use crate::cluster::{Disk, node_ids, slot_index};

pub type Kv = Replica<KvStore>;

/// Where replies to requests the test sends by hand go.
pub const BY_HAND: ReplyTo = ReplyTo(999);

/// Anything in flight.
#[derive(Clone, Debug)]
pub enum Packet {
    Peer(Message),
    Request { client: usize, to: NodeId, request: ClientRequest<KvCommand> },
    Reply { client: usize, from: NodeId, reply: ClientReply<KvReply> },
}

impl Packet {
    /// The two ends, clients numbered from 100 so that they never clash with nodes.
    pub fn ends(&self) -> (u64, u64) {
        match self {
            Packet::Peer(message) => (message.from.0, message.to.0),
            Packet::Request { client, to, .. } => (100 + *client as u64, to.0),
            Packet::Reply { client, from, .. } => (from.0, 100 + *client as u64),
        }
    }
}

pub fn client_end(client: usize) -> u64 {
    100 + client as u64
}

pub struct KvCluster {
    pub now: Instant,
    pub configs: Vec<ReplicaConfig>,
    pub replicas: Vec<Option<Kv>>,
    pub disks: Vec<Disk>,
    pub clerks: Vec<Clerk<KvCommand, KvReply>>,
    /// What each clerk finished, in order.
    pub finished: Vec<Vec<(RequestId, Result<KvReply, ClerkError>)>>,
    /// Replies to requests sent by hand.
    pub by_hand: Vec<(NodeId, ClientReply<KvReply>)>,
    pub network: VecDeque<Packet>,
    /// Directed links (between ends) that drop everything.
    pub cut: BTreeSet<(u64, u64)>,
    /// How far ahead of the cluster's time each replica's clock reads (clock origins differ
    /// between processes).
    clock_offsets: Vec<Duration>,
    transcript: Option<Vec<String>>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn describe_reply(outcome: &Outcome<KvReply>) -> String {
    match outcome {
        Outcome::Registered { client } => format!("registered client={client}"),
        Outcome::Done(KvReply::Value(Some(value))) => format!("value={}", text(value)),
        Outcome::Done(KvReply::Value(None)) => "missing".to_string(),
        Outcome::Done(KvReply::Done) => "done".to_string(),
        Outcome::Done(KvReply::Cas { swapped, .. }) => format!("cas swapped={swapped}"),
        Outcome::Rejected(reject) => format!("rejected: {reject}"),
    }
}

impl KvCluster {
    pub fn new(nodes: u64, clients: usize) -> KvCluster {
        KvCluster::with_config(nodes, clients, |_| {})
    }

    pub fn with_config(
        nodes: u64,
        clients: usize,
        adjust: impl Fn(&mut ReplicaConfig),
    ) -> KvCluster {
        let voters = node_ids(nodes);
        let configs: Vec<ReplicaConfig> = voters
            .iter()
            .map(|&id| {
                let mut config = ReplicaConfig::new(Config::new(id, voters.clone()));
                adjust(&mut config);
                config
            })
            .collect();
        let replicas = configs
            .iter()
            .map(|config| {
                Some(
                    Replica::new(
                        Instant::ZERO,
                        config.clone(),
                        Recovered::default(),
                        KvStore::default(),
                    )
                    .expect("valid test configuration"),
                )
            })
            .collect();
        let clerks = (0..clients)
            .map(|client| {
                let mut config = ClerkConfig::new(voters.clone());
                config.seed = client as u64;
                Clerk::new(config)
            })
            .collect();
        KvCluster {
            now: Instant::ZERO,
            configs,
            replicas,
            disks: vec![Disk::default(); nodes as usize],
            clerks,
            finished: vec![Vec::new(); clients],
            by_hand: Vec::new(),
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            clock_offsets: vec![Duration::ZERO; nodes as usize],
            transcript: None,
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        node_ids(self.replicas.len() as u64)
    }

    pub fn replica(&self, node: NodeId) -> &Kv {
        self.replicas[slot_index(node)].as_ref().expect("replica is up")
    }

    pub fn replica_mut(&mut self, node: NodeId) -> &mut Kv {
        self.replicas[slot_index(node)].as_mut().expect("replica is up")
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.replicas[slot_index(node)].is_some()
    }

    /// What survives a crash of `node`.
    pub fn disk(&self, node: NodeId) -> &Disk {
        &self.disks[slot_index(node)]
    }

    pub fn start_transcript(&mut self) {
        self.transcript = Some(Vec::new());
    }

    pub fn take_transcript(&mut self) -> String {
        self.transcript.replace(Vec::new()).unwrap_or_default().join("\n") + "\n"
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(line());
        }
    }

    fn send(&mut self, packet: Packet, line: String) {
        let (from, to) = packet.ends();
        let down = !self.is_up(NodeId(if to < 100 { to } else { from }));
        let dropped = self.cut.contains(&(from, to)) || down;
        self.note(|| if dropped { format!("{line}  (dropped)") } else { line });
        if !dropped {
            self.network.push_back(packet);
        }
    }

    // ---- driving ----

    /// What `node`'s clock reads now.
    pub fn clock_of(&self, node: NodeId) -> Instant {
        self.now + self.clock_offsets[slot_index(node)]
    }

    /// Makes `node`'s clock read `ahead` later than the cluster's time from now on (its
    /// process started that much earlier than the others).
    pub fn set_clock_ahead(&mut self, node: NodeId, ahead: Duration) {
        self.clock_offsets[slot_index(node)] = ahead;
    }

    pub fn handle(&mut self, node: NodeId, input: Input<KvCommand>) {
        let now = self.clock_of(node);
        if let Some(replica) = self.replicas[slot_index(node)].as_mut() {
            replica.handle(now, input);
            self.drain_replica(node);
        }
    }

    pub fn drain_replica(&mut self, node: NodeId) {
        loop {
            let Some(replica) = self.replicas[slot_index(node)].as_mut() else {
                return;
            };
            let Some(output) = replica.poll_output() else {
                return;
            };
            match output {
                Output::Send(message) => {
                    let line = message.to_string();
                    self.send(Packet::Peer(message), line);
                }
                Output::Persist(persist) => self.persist(node, persist),
                Output::Reply { to, reply } if to == BY_HAND => {
                    self.note(|| {
                        format!(
                            "{node}->test #{} {}",
                            reply.request,
                            describe_reply(&reply.outcome)
                        )
                    });
                    self.by_hand.push((node, reply));
                }
                Output::Reply { to, reply } => {
                    let client = to.0 as usize;
                    let line = format!(
                        "{node}->c{client} #{} {}",
                        reply.request,
                        describe_reply(&reply.outcome)
                    );
                    self.send(Packet::Reply { client, from: node, reply }, line);
                }
                Output::RoleChanged { role, term, leader } => {
                    let leader = leader.map_or("none".to_string(), |l| l.to_string());
                    self.note(|| format!("{node}: {role} t={term} leader={leader}"));
                }
            }
        }
    }

    /// Every persist is written and acknowledged at once.
    fn persist(&mut self, node: NodeId, persist: Persist) {
        self.disks[slot_index(node)].write(&persist);
        self.handle(node, Input::Persisted { id: persist.id });
    }

    pub fn drain_clerk(&mut self, client: usize) {
        while let Some(output) = self.clerks[client].poll_output() {
            match output {
                ClerkOutput::Send { to, request } => {
                    let line = match &request.op {
                        Op::Register => format!("c{client}->{to} #{} register", request.request),
                        Op::Command(command) => {
                            format!("c{client}->{to} #{} {command}", request.request)
                        }
                    };
                    self.send(Packet::Request { client, to, request }, line);
                }
                ClerkOutput::Finished { request, result } => {
                    self.note(|| format!("c{client}: #{request} finished {result:?}"));
                    self.finished[client].push((request, result));
                }
            }
        }
    }

    pub fn submit(&mut self, client: usize, command: KvCommand) -> RequestId {
        let now = self.now;
        let request = self.clerks[client].submit(now, command);
        self.drain_clerk(client);
        request
    }

    /// Sends a request by hand to a replica; the reply lands in `by_hand`.
    pub fn request_by_hand(&mut self, node: NodeId, request: ClientRequest<KvCommand>) {
        self.handle(node, Input::Request { from: BY_HAND, request });
    }

    pub fn deliver(&mut self, packet: Packet) {
        let now = self.now;
        match packet {
            Packet::Peer(message) => self.handle(message.to, Input::Message(message)),
            Packet::Request { client, to, request } => {
                self.handle(to, Input::Request { from: ReplyTo(client as u64), request })
            }
            Packet::Reply { client, from, reply } => {
                self.clerks[client].handle(now, ClerkInput::Reply { from, reply });
                self.drain_clerk(client);
            }
        }
    }

    pub fn stabilize(&mut self) {
        for node in self.ids() {
            self.drain_replica(node);
        }
        while let Some(packet) = self.network.pop_front() {
            self.deliver(packet);
        }
    }

    /// Delivers the matching packets in flight, oldest first, until none is left.
    pub fn deliver_where(&mut self, matches: impl Fn(&Packet) -> bool) {
        while let Some(position) = self.network.iter().position(&matches) {
            let packet = self.network.remove(position).expect("in range");
            self.deliver(packet);
        }
    }

    pub fn drop_where(&mut self, matches: impl Fn(&Packet) -> bool) {
        self.network.retain(|packet| !matches(packet));
    }

    /// When `node` wants its timeout, in the cluster's time (now, if it is overdue).
    fn timeout_of(&self, node: NodeId) -> Option<Instant> {
        let due = self.replicas[slot_index(node)].as_ref()?.poll_timeout()?;
        Some(self.now + (due - self.clock_of(node)))
    }

    fn next_timeout(&self) -> Option<Instant> {
        let replicas = self.ids().into_iter().filter_map(|node| self.timeout_of(node));
        let clerks = self.clerks.iter().filter_map(Clerk::poll_timeout);
        replicas.chain(clerks).min()
    }

    /// Jumps to the next timeout, fires everything due, stabilizes.
    pub fn tick(&mut self) {
        self.fire_next_timeouts();
        self.stabilize();
    }

    /// One step at a time: delivers the oldest packet in flight, or if there is none, fires the
    /// next timeouts; stops as soon as `done` holds (checked before every step) or `millis` of
    /// virtual time pass. Returns whether `done` held.
    pub fn step_until(&mut self, millis: u64, done: impl Fn(&KvCluster) -> bool) -> bool {
        let end = self.now + Duration::from_millis(millis);
        while !done(self) {
            if let Some(packet) = self.network.pop_front() {
                self.deliver(packet);
            } else if self.next_timeout().is_some_and(|next| next <= end) {
                self.fire_next_timeouts();
            } else {
                return false;
            }
        }
        true
    }

    fn fire_next_timeouts(&mut self) {
        let Some(next) = self.next_timeout() else {
            return;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for node in self.ids() {
            if self.timeout_of(node).is_some_and(|due| due <= now) {
                self.handle(node, Input::Timeout);
            }
        }
        for client in 0..self.clerks.len() {
            if self.clerks[client].poll_timeout().is_some_and(|due| due <= now) {
                self.clerks[client].handle(now, ClerkInput::Timeout);
                self.drain_clerk(client);
            }
        }
    }

    /// Runs until `done` holds or `millis` of virtual time pass; returns whether it held.
    pub fn run_until(&mut self, millis: u64, done: impl Fn(&KvCluster) -> bool) -> bool {
        let end = self.now + Duration::from_millis(millis);
        self.stabilize();
        while !done(self) {
            match self.next_timeout() {
                Some(next) if next <= end => self.tick(),
                _ => {
                    self.now = end;
                    return false;
                }
            }
        }
        true
    }

    pub fn run_for(&mut self, millis: u64) {
        self.run_until(millis, |_| false);
    }

    // ---- faults and queries ----

    pub fn leader(&self) -> Option<NodeId> {
        self.replicas
            .iter()
            .flatten()
            .filter(|replica| replica.raft().role() == Role::Leader)
            .max_by_key(|replica| replica.raft().term())
            .map(|replica| replica.raft().id())
    }

    pub fn wait_for_leader(&mut self) -> NodeId {
        assert!(self.run_until(5_000, |c| c.leader().is_some()), "a leader is elected");
        self.leader().expect("checked")
    }

    pub fn elect(&mut self, node: NodeId) {
        for _ in 0..3 {
            let clock = self.clock_of(node);
            self.replica_mut(node).campaign(clock);
            self.drain_replica(node);
            self.stabilize();
            if self.replica(node).raft().role() == Role::Leader {
                return;
            }
        }
        panic!("node {node} could not win an election");
    }

    pub fn isolate_node(&mut self, node: NodeId) {
        let ends: Vec<u64> = self
            .ids()
            .into_iter()
            .map(|id| id.0)
            .chain((0..self.clerks.len()).map(client_end))
            .collect();
        for end in ends {
            if end != node.0 {
                self.cut.insert((node.0, end));
                self.cut.insert((end, node.0));
            }
        }
    }

    /// Cuts every link between the nodes and clients of one side and those of the other.
    pub fn partition(&mut self, side_a: &[u64], side_b: &[u64]) {
        for &a in side_a {
            for &b in side_b {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn crash(&mut self, node: NodeId) {
        self.note(|| format!("{node}: crash"));
        self.replicas[slot_index(node)] = None;
        self.network.retain(|packet| packet.ends().1 != node.0);
    }

    pub fn restart(&mut self, node: NodeId) {
        self.note(|| format!("{node}: restart"));
        let recovered = self.disks[slot_index(node)].recover();
        let config = self.configs[slot_index(node)].clone();
        let replica = Replica::new(self.clock_of(node), config, recovered, KvStore::default())
            .expect("recovers");
        self.replicas[slot_index(node)] = Some(replica);
        self.drain_replica(node);
    }

    /// The value of `key` in a replica's state machine.
    pub fn value(&self, node: NodeId, key: &str) -> Option<String> {
        self.replica(node).state().get(key.as_bytes()).map(text)
    }
}
