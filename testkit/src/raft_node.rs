//! Bare Raft nodes under test: the node is the machine, its messages the packets, and it has
//! no clients; tests propose commands to it directly.

use raftkv_core::raft::{
    Body, ChangeRefused, Config, Entry, Input, MemberChange, Message, Output, Payload, PersistId,
    RaftNode, Recovered, SavedSnapshot, Snapshot,
};
use raftkv_core::{Instant, LogId, LogIndex, NodeId};

use crate::client::NoClient;
use crate::cluster::Cluster;
use crate::machine::{Effect, Machine};
use crate::node_ids::{id, node_ids};

impl Machine for RaftNode {
    type Config = Config;
    type Input = Input;
    type Packet = Message;
    type Client = NoClient;
    const TRANSCRIBES_PERSISTS: bool = true;

    fn start(now: Instant, config: &Config, recovered: Recovered) -> RaftNode {
        RaftNode::new(now, config.clone(), recovered).expect("the node starts from its disk")
    }

    fn next_life(config: &mut Config) {
        config.seed = config.seed.wrapping_add(1);
    }

    fn raft(&self) -> &RaftNode {
        self
    }

    fn handle(&mut self, now: Instant, input: Input) {
        RaftNode::handle(self, now, input);
    }

    fn campaign(&mut self, now: Instant) {
        RaftNode::campaign(self, now);
    }

    fn timeout_input() -> Input {
        Input::Timeout
    }

    fn persisted_input(id: PersistId) -> Input {
        Input::Persisted { id }
    }

    fn snapshot_loaded(&mut self, now: Instant, snapshot: Snapshot) {
        let snapshot = SavedSnapshot::of(&snapshot);
        RaftNode::handle(self, now, Input::SnapshotLoaded { snapshot });
    }

    fn snapshot_damaged_input(last: LogId) -> Input {
        Input::SnapshotDamaged { last }
    }

    fn log_unreadable_input(through: LogIndex) -> Input {
        Input::LogUnreadable { through }
    }

    fn entries_loaded_input(entries: Vec<Entry>) -> Input {
        Input::EntriesLoaded { entries }
    }

    fn packet_input(message: Message) -> Input {
        Input::Message(message)
    }

    fn poll_effect(&mut self) -> Option<Effect<Message>> {
        Some(match self.poll_output()? {
            Output::Send(message) => Effect::Send(message),
            Output::Persist(persist) => Effect::Persist(persist),
            Output::SendSnapshotChunk(chunk) => Effect::SendSnapshotChunk(chunk),
            Output::SendEntries(append) => Effect::SendEntries(append),
            Output::LoadEntries(load) => Effect::LoadEntries(load),
            Output::LoadSnapshot(whole) => Effect::LoadSnapshot(whole),
            Output::Apply(entries) => Effect::Apply(entries),
            Output::ReadReady { ctx, index } => Effect::ReadReady { ctx, index },
            Output::RoleChanged { role, term, leader } => {
                Effect::RoleChanged { role, term, leader }
            }
            output @ (Output::ReadAborted { .. }
            | Output::RestoreSnapshot(_)
            | Output::MembershipChanged { .. }) => Effect::Note(output.to_string()),
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        RaftNode::poll_timeout(self)
    }

    fn check_invariants(&self) {
        RaftNode::check_invariants(self);
    }
}

/// A cluster of bare Raft nodes.
pub type RaftCluster = Cluster<RaftNode>;

/// Whether `message` is part of an election (pre-vote or vote, asked or answered).
pub fn is_election_message(message: &Message) -> bool {
    matches!(
        message.body,
        Body::PreVote { .. }
            | Body::PreVoteReply { .. }
            | Body::Vote { .. }
            | Body::VoteReply { .. }
    )
}

impl Cluster<RaftNode> {
    /// `size` nodes with the default configuration.
    pub fn new(size: u64) -> RaftCluster {
        RaftCluster::with_config(size, |_| {})
    }

    /// `size` nodes, each configuration changed by `adjust`.
    pub fn with_config(size: u64, adjust: impl Fn(&mut Config)) -> RaftCluster {
        let voters = node_ids(size);
        let configs = (1..=size)
            .map(|n| {
                let mut config = Config::new(id(n), voters.clone());
                adjust(&mut config);
                config
            })
            .collect();
        Cluster::start(configs, Vec::new())
    }

    pub fn node(&self, node: NodeId) -> &RaftNode {
        self.machine(node)
    }

    pub fn node_mut(&mut self, node: NodeId) -> &mut RaftNode {
        self.machine_mut(node)
    }

    /// Like `elect`, but only election messages are delivered: the new leader's first appends
    /// stay in flight for the test to deliver or drop.
    pub fn elect_without_replicating(&mut self, node: NodeId) {
        self.campaign_until_leader(node, is_election_message);
    }

    /// Starts a node with the next id that joins the running cluster: it knows no membership
    /// and waits for a leader to add it. Returns its id.
    pub fn add_joining_node(&mut self, adjust: impl Fn(&mut Config)) -> NodeId {
        let node = id(self.slots.len() as u64 + 1);
        let mut config = Config::new(node, []);
        adjust(&mut config);
        self.add_node(config)
    }

    /// Proposes a membership change at `node` now, and carries out what it wants done.
    pub fn change_membership(
        &mut self,
        node: NodeId,
        changes: &[MemberChange],
    ) -> Result<LogId, ChangeRefused> {
        let now = self.clock_of(node);
        let proposed = self.node_mut(node).propose_membership_change(now, changes);
        self.drain(node);
        proposed
    }

    /// Proposes `command` at `node`, which must lead; returns the entry's id.
    pub fn propose(&mut self, node: NodeId, command: &[u8]) -> LogId {
        let now = self.clock_of(node);
        let id = self.node_mut(node).propose(now, command.to_vec()).expect("node leads");
        self.drain(node);
        id
    }

    /// The commands a node applied, as text.
    pub fn applied_commands(&self, node: NodeId) -> Vec<String> {
        self.slot(node)
            .applied
            .values()
            .filter_map(|entry| match &entry.payload {
                Payload::Command(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                Payload::Noop | Payload::Membership(_) => None,
            })
            .collect()
    }

    pub fn commit(&self, node: NodeId) -> LogIndex {
        self.node(node).status().commit
    }
}
