//! Key-value replicas under test, with clerks: peers' messages, requests and replies travel
//! as packets, and a test may also send requests by hand.

use raftkv_core::client::{Clerk, ClerkConfig};
use raftkv_core::kv::{KvCommand, KvReply, KvStore};
use raftkv_core::loaded_snapshot::LoadedSnapshot;
use raftkv_core::protocol::ClientRequest;
use raftkv_core::raft::{Config, Entry, PersistId, RaftNode, Recovered, SavedSnapshot, Snapshot};
use raftkv_core::server::{Input, Output, Replica, ReplicaConfig};
use raftkv_core::state_machine::StateMachine;
use raftkv_core::{Instant, LogId, LogIndex, NodeId, RequestId};

use crate::client::KvClerk;
use crate::cluster::Cluster;
use crate::machine::{Effect, Machine};
use crate::node_ids::{id, node_ids};
use crate::packet::Packet;
use crate::reply_target::{BY_HAND, client_of, reply_to};

impl<S> Machine for Replica<S>
where
    S: StateMachine<Command = KvCommand, Reply = KvReply> + Default,
{
    type Config = ReplicaConfig;
    type Input = Input<KvCommand>;
    type Packet = Packet;
    type Client = KvClerk;
    const TRANSCRIBES_PERSISTS: bool = false;

    fn start(now: Instant, config: &ReplicaConfig, recovered: Recovered) -> Replica<S> {
        Replica::new(now, config.clone(), recovered, S::default())
            .expect("the replica starts from its disk")
    }

    fn next_life(config: &mut ReplicaConfig) {
        RaftNode::next_life(&mut config.raft);
    }

    fn raft(&self) -> &RaftNode {
        Replica::raft(self)
    }

    fn handle(&mut self, now: Instant, input: Input<KvCommand>) {
        Replica::handle(self, now, input);
    }

    fn campaign(&mut self, now: Instant) {
        Replica::campaign(self, now);
    }

    fn timeout_input() -> Input<KvCommand> {
        Input::Timeout
    }

    fn persisted_input(id: PersistId) -> Input<KvCommand> {
        Input::Persisted { id }
    }

    fn snapshot_saved_input(snapshot: SavedSnapshot) -> Option<Input<KvCommand>> {
        Some(Input::SnapshotSaved { snapshot })
    }

    fn snapshot_loaded(&mut self, now: Instant, snapshot: Snapshot) {
        let saved = SavedSnapshot::of(&snapshot);
        match LoadedSnapshot::decode(saved, &mut &snapshot.data[..], S::default()) {
            Ok(loaded) => Replica::snapshot_loaded(self, now, loaded),
            Err(_) => {
                let undecodable = Input::SnapshotUndecodable { last: snapshot.last };
                Replica::handle(self, now, undecodable);
            }
        }
    }

    fn snapshot_damaged_input(last: LogId) -> Input<KvCommand> {
        Input::SnapshotDamaged { last }
    }

    fn log_unreadable_input(through: LogIndex) -> Input<KvCommand> {
        Input::LogUnreadable { through }
    }

    fn entries_loaded_input(entries: Vec<Entry>) -> Input<KvCommand> {
        Input::EntriesLoaded { entries }
    }

    fn packet_input(packet: Packet) -> Input<KvCommand> {
        match packet {
            Packet::Peer(message) => Input::Message(message),
            Packet::Request { client, request, .. } => {
                Input::Request { from: reply_to(client), request }
            }
            Packet::Reply { .. } => panic!("replies go to clients, not {packet}"),
        }
    }

    fn poll_effect(&mut self) -> Option<Effect<Packet>> {
        let Some(output) = self.poll_output() else {
            // Freed here, as a driver frees it on another thread; noted for tests to see.
            return self.take_retired().map(|retired| Effect::Note(format!("retired {retired:?}")));
        };
        Some(match output {
            Output::Send(message) => Effect::Send(message),
            Output::Persist(persist) => Effect::Persist(persist),
            Output::SaveSnapshot(job) => Effect::SaveSnapshot(job),
            Output::SendSnapshotChunk(chunk) => Effect::SendSnapshotChunk(chunk),
            Output::SendEntries(append) => Effect::SendEntries(append),
            Output::LoadEntries(load) => Effect::LoadEntries(load),
            Output::LoadSnapshot(whole) => Effect::LoadSnapshot(whole),
            Output::Reply { to, reply } if to == BY_HAND => Effect::ReplyByHand(reply),
            Output::Reply { to, reply } => {
                let from = Replica::raft(self).id();
                Effect::Reply(Packet::Reply { from, client: client_of(to), reply })
            }
            Output::RoleChanged { role, term, leader } => {
                Effect::RoleChanged { role, term, leader }
            }
            output @ Output::MembershipChanged { .. } => Effect::Note(output.to_string()),
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Replica::poll_timeout(self)
    }

    fn check_invariants(&self) {
        Replica::check_invariants(self);
    }
}

/// A cluster of key-value replicas and their clerks.
pub type KvCluster = Cluster<Replica<KvStore>>;

impl<S> Cluster<Replica<S>>
where
    S: StateMachine<Command = KvCommand, Reply = KvReply> + Default,
{
    /// `nodes` replicas with the default configuration, and `clients` clerks.
    pub fn new(nodes: u64, clients: usize) -> Cluster<Replica<S>> {
        Cluster::<Replica<S>>::with_config(nodes, clients, |_| {})
    }

    /// `nodes` replicas, each configuration changed by `adjust`, and `clients` clerks (client
    /// `i` draws from seed `i`).
    pub fn with_config(
        nodes: u64,
        clients: usize,
        adjust: impl Fn(&mut ReplicaConfig),
    ) -> Cluster<Replica<S>> {
        let voters = node_ids(nodes);
        let configs = (1..=nodes)
            .map(|n| {
                let mut config = ReplicaConfig::new(Config::new(id(n), voters.clone()));
                adjust(&mut config);
                config
            })
            .collect();
        let clerks = (0..clients)
            .map(|client| {
                let mut config = ClerkConfig::new(voters.clone());
                config.seed = client as u64;
                Clerk::new(config)
            })
            .collect();
        Cluster::start(configs, clerks)
    }

    pub fn replica(&self, node: NodeId) -> &Replica<S> {
        self.machine(node)
    }

    pub fn replica_mut(&mut self, node: NodeId) -> &mut Replica<S> {
        self.machine_mut(node)
    }

    /// Client `client` submits `command` now; returns the id its result will carry.
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

    /// Cuts `node` off from every other node and client (as `isolate` does).
    pub fn isolate_node(&mut self, node: NodeId) {
        self.isolate(node);
    }
}

impl Cluster<Replica<KvStore>> {
    /// The value of `key` in a replica's state machine, as text.
    pub fn value(&self, node: NodeId, key: &str) -> Option<String> {
        let value = self.replica(node).state().get(key.as_bytes())?;
        Some(String::from_utf8_lossy(value).into_owned())
    }
}
