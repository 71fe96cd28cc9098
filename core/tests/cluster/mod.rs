//! A hand-wired cluster of Raft nodes for scenario tests: a FIFO network that the test can cut,
//! filter and reorder, a disk per node that keeps only acknowledged persists across crashes,
//! and a transcript of everything the nodes emitted, one line each.
//!
//! Messages are delivered at the current instant; time only moves when a test asks for it, by
//! jumping to the next timeout. Every promise a node sends (a vote grant, an append
//! acknowledgement) is checked against its disk at the moment it is sent.

#![allow(dead_code, unreachable_pub)] // Each test file uses its own part of the harness.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use raftkv_core::raft::{
    AppendOutcome, Body, Config, Entry, HardState, Input, Message, Output, Payload, Persist,
    RaftNode, Recovered, Role, Snapshot,
};
use raftkv_core::{Duration, Instant, LogIndex, NodeId, Term};

/// What survives a crash: the persists the node's driver acknowledged.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot.
    pub entries: Vec<Entry>,
}

impl Disk {
    pub fn write(&mut self, persist: &Persist) {
        if let Some(snapshot) = &persist.snapshot {
            self.entries.retain(|entry| entry.index > snapshot.last.index);
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(from) = persist.truncate_from {
            self.entries.retain(|entry| entry.index < from);
        }
        if let Some(first) = persist.entries.first() {
            self.entries.retain(|entry| entry.index < first.index);
            self.entries.extend(persist.entries.iter().cloned());
        }
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
    }

    /// What a restarted node recovers.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }

    /// The last index the disk holds, in the snapshot or after it.
    pub fn last_index(&self) -> LogIndex {
        let snapshot = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.last.index);
        self.entries.last().map_or(snapshot, |entry| entry.index)
    }
}

pub struct Slot {
    pub config: Config,
    pub node: Option<RaftNode>,
    pub disk: Disk,
    /// Persists handed out but not yet written (lost on a crash).
    pub unwritten: VecDeque<Persist>,
    /// Entries applied, by index. A restarted node applies again from its snapshot; it must
    /// apply the same entries.
    pub applied: BTreeMap<LogIndex, Entry>,
    pub reads_ready: Vec<(u64, LogIndex)>,
}

pub struct Cluster {
    pub now: Instant,
    pub slots: Vec<Slot>,
    pub network: VecDeque<Message>,
    /// Directed links that drop every message.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Write and acknowledge every persist as soon as it is emitted.
    pub auto_persist: bool,
    transcript: Option<Vec<String>>,
    pub delivered: u64,
    /// The node that led each term, across every node's lives: a term is led once.
    led: BTreeMap<Term, NodeId>,
}

pub fn id(n: u64) -> NodeId {
    NodeId(n)
}

/// The ids of a cluster of `size` nodes: 1 to `size`.
pub fn node_ids(size: u64) -> Vec<NodeId> {
    (1..=size).map(NodeId).collect()
}

/// Where node `node` sits in a harness's vectors: ids count from 1, positions from 0.
pub fn slot_index(node: NodeId) -> usize {
    let index = node.0.checked_sub(1).and_then(|index| usize::try_from(index).ok());
    index.unwrap_or_else(|| panic!("no node {node}: ids count from 1"))
}

pub fn is_election_message(message: &Message) -> bool {
    matches!(
        message.body,
        Body::PreVote { .. }
            | Body::PreVoteReply { .. }
            | Body::Vote { .. }
            | Body::VoteReply { .. }
    )
}

impl Cluster {
    pub fn new(size: u64) -> Cluster {
        Cluster::with_config(size, |_| {})
    }

    pub fn with_config(size: u64, adjust: impl Fn(&mut Config)) -> Cluster {
        let voters = node_ids(size);
        let slots = voters
            .iter()
            .map(|&node_id| {
                let mut config = Config::new(node_id, voters.clone());
                adjust(&mut config);
                let node = RaftNode::new(Instant::ZERO, config.clone(), Recovered::default())
                    .expect("valid test configuration");
                Slot {
                    config,
                    node: Some(node),
                    disk: Disk::default(),
                    unwritten: VecDeque::new(),
                    applied: BTreeMap::new(),
                    reads_ready: Vec::new(),
                }
            })
            .collect();
        Cluster {
            now: Instant::ZERO,
            slots,
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            auto_persist: true,
            transcript: None,
            delivered: 0,
            led: BTreeMap::new(),
        }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        node_ids(self.slots.len() as u64)
    }

    pub fn slot(&self, node: NodeId) -> &Slot {
        &self.slots[slot_index(node)]
    }

    fn slot_mut(&mut self, node: NodeId) -> &mut Slot {
        &mut self.slots[slot_index(node)]
    }

    pub fn node(&self, node: NodeId) -> &RaftNode {
        self.slot(node).node.as_ref().expect("node is up")
    }

    pub fn node_mut(&mut self, node: NodeId) -> &mut RaftNode {
        self.slot_mut(node).node.as_mut().expect("node is up")
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.slot(node).node.is_some()
    }

    // ---- transcript ----

    pub fn start_transcript(&mut self) {
        self.transcript = Some(Vec::new());
    }

    pub fn take_transcript(&mut self) -> String {
        let lines = self.transcript.replace(Vec::new()).unwrap_or_default();
        lines.join("\n") + "\n"
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(transcript) = &mut self.transcript {
            transcript.push(line());
        }
    }

    // ---- driving ----

    pub fn handle(&mut self, node: NodeId, input: Input) {
        let now = self.now;
        if let Some(raft) = self.slot_mut(node).node.as_mut() {
            raft.handle(now, input);
            self.drain(node);
        }
    }

    /// Drains one node's outputs into the network, its disk and its apply record.
    pub fn drain(&mut self, node: NodeId) {
        loop {
            let Some(raft) = self.slot_mut(node).node.as_mut() else {
                return;
            };
            let Some(output) = raft.poll_output() else {
                raft.check_invariants();
                return;
            };
            match output {
                Output::Send(message) => {
                    self.check_promise(&message);
                    let dropped =
                        self.cut.contains(&(message.from, message.to)) || !self.is_up(message.to);
                    self.note(|| format!("{message}{}", if dropped { "  (dropped)" } else { "" }));
                    if !dropped {
                        self.network.push_back(message);
                    }
                }
                Output::Persist(persist) => {
                    self.note(|| format!("{node}: {persist}"));
                    self.slot_mut(node).unwritten.push_back(persist);
                    if self.auto_persist {
                        self.persist(node);
                    }
                }
                Output::Apply(entries) => {
                    let (first, last) = (entries[0].index, entries[entries.len() - 1].index);
                    self.note(|| format!("{node}: apply {first}..{last}"));
                    for entry in entries {
                        self.check_same_everywhere(node, &entry);
                        self.slot_mut(node).applied.insert(entry.index, entry);
                    }
                }
                Output::ReadReady { ctx, index } => {
                    self.note(|| format!("{node}: read #{ctx} ready at {index}"));
                    self.slot_mut(node).reads_ready.push((ctx, index));
                }
                Output::RoleChanged { role: Role::Leader, term, .. } => {
                    self.note(|| format!("{node}: Leader t={term} leader={node}"));
                    let earlier = self.led.insert(term, node);
                    assert!(earlier.is_none(), "term {term} led by {earlier:?}, now by {node}");
                }
                output @ (Output::ReadAborted { .. }
                | Output::RoleChanged { .. }
                | Output::RestoreSnapshot(_)) => {
                    self.note(|| format!("{node}: {output}"));
                }
            }
        }
    }

    /// Writes every persist the node handed out and acknowledges the last one.
    pub fn persist(&mut self, node: NodeId) {
        let slot = self.slot_mut(node);
        let mut last = None;
        while let Some(persist) = slot.unwritten.pop_front() {
            slot.disk.write(&persist);
            last = Some(persist.id);
        }
        if let Some(id) = last {
            self.note(|| format!("{node}: persisted #{}", id.0));
            self.handle(node, Input::Persisted { id });
        }
    }

    /// A vote grant or an append acknowledgement must describe what is already on disk; a
    /// vote request and a leader's messages rely on a term and a vote that must be, too.
    fn check_promise(&self, message: &Message) {
        let disk = &self.slot(message.from).disk;
        match &message.body {
            Body::Vote { .. } => assert_eq!(
                disk.hard_state,
                HardState { term: message.term, vote: Some(message.from), damaged: false },
                "{message} sent before the candidate's term and vote were durable"
            ),
            Body::Append { .. } | Body::InstallSnapshot { .. } | Body::TimeoutNow => assert!(
                disk.hard_state.term >= message.term,
                "{message} sent before the leader's term was durable"
            ),
            Body::VoteReply { granted: true } => assert_eq!(
                disk.hard_state,
                HardState { term: message.term, vote: Some(message.to), damaged: false },
                "{message} sent before the vote was durable"
            ),
            Body::AppendReply { outcome: AppendOutcome::Accepted { match_index }, .. } => {
                assert!(disk.hard_state.term >= message.term, "{message} before its term");
                let raft = self.node(message.from);
                let durable = disk.last_index();
                assert!(durable >= *match_index, "{message} but only {durable} durable");
                assert!(
                    disk.entries
                        .iter()
                        .filter(|entry| entry.index <= *match_index)
                        .all(|entry| raft.term_at(entry.index) == Some(entry.term)),
                    "{message} promises entries that differ from the durable ones"
                );
            }
            _ => {}
        }
    }

    /// State machine safety: no two nodes, and no node across restarts, apply different entries
    /// at one index.
    fn check_same_everywhere(&self, node: NodeId, entry: &Entry) {
        for other in &self.slots {
            if let Some(applied) = other.applied.get(&entry.index) {
                assert_eq!(
                    applied, entry,
                    "node {node} applies {entry} where {applied} was applied"
                );
            }
        }
    }

    /// Delivers the oldest message in flight; returns false when none is.
    pub fn deliver_one(&mut self) -> bool {
        let Some(message) = self.network.pop_front() else {
            return false;
        };
        self.deliver(message);
        true
    }

    fn deliver(&mut self, message: Message) {
        self.delivered += 1;
        let to = message.to;
        self.handle(to, Input::Message(message));
    }

    /// Delivers the messages in flight that match, oldest first, until none is left (answers
    /// they cause are delivered too if they match); the others stay in flight, in order.
    pub fn deliver_where(&mut self, matches: impl Fn(&Message) -> bool) {
        loop {
            let Some(position) = self.network.iter().position(&matches) else {
                return;
            };
            let message = self.network.remove(position).expect("position is in range");
            self.deliver(message);
        }
    }

    /// Drops the messages in flight that match.
    pub fn drop_where(&mut self, matches: impl Fn(&Message) -> bool) {
        self.network.retain(|message| !matches(message));
    }

    /// Delivers messages until the network is quiet.
    pub fn stabilize(&mut self) {
        for node in self.ids() {
            self.drain(node);
        }
        while self.deliver_one() {}
    }

    /// The earliest timeout of any live node.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|slot| slot.node.as_ref()?.poll_timeout()).min()
    }

    /// Jumps to the next timeout, fires it, and stabilizes.
    pub fn tick(&mut self) {
        let Some(next) = self.next_timeout() else {
            return;
        };
        self.now = self.now.max(next);
        for node in self.ids() {
            let due = self.slot(node).node.as_ref().and_then(RaftNode::poll_timeout);
            if due.is_some_and(|due| due <= self.now) {
                self.handle(node, Input::Timeout);
            }
        }
        self.stabilize();
    }

    /// Runs until `millis` of virtual time have passed.
    pub fn run_for(&mut self, millis: u64) {
        let end = self.now + Duration::from_millis(millis);
        self.stabilize();
        while self.next_timeout().is_some_and(|next| next <= end) {
            self.tick();
        }
        self.now = end;
    }

    // ---- faults ----

    pub fn isolate(&mut self, node: NodeId) {
        for other in self.ids() {
            if other != node {
                self.cut.insert((node, other));
                self.cut.insert((other, node));
            }
        }
    }

    /// Cuts every link between the two groups.
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
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

    /// Stops the node; whatever it handed out but the disk did not acknowledge is lost, and so
    /// are the messages in flight to it.
    pub fn crash(&mut self, node: NodeId) {
        self.note(|| format!("{node}: crash"));
        let slot = self.slot_mut(node);
        slot.node = None;
        slot.unwritten.clear();
        self.network.retain(|message| message.to != node);
    }

    /// Crashes the node, empties its disk (an operator removed its data directory), and
    /// starts it again as a driver told that it rejoins does: its hard state says damaged.
    pub fn lose_disk(&mut self, node: NodeId) {
        self.crash(node);
        let hard_state = HardState { damaged: true, ..HardState::default() };
        self.slot_mut(node).disk = Disk { hard_state, ..Disk::default() };
        self.restart(node);
    }

    /// Starts the node again from its disk.
    pub fn restart(&mut self, node: NodeId) {
        self.note(|| format!("{node}: restart"));
        let now = self.now;
        let slot = self.slot_mut(node);
        let recovered = slot.disk.recover();
        // Every life draws from a seed of its own, as `Config::seed` asks.
        slot.config.seed = slot.config.seed.wrapping_add(1);
        slot.node = Some(RaftNode::new(now, slot.config.clone(), recovered).expect("recovers"));
        self.drain(node);
    }

    // ---- queries ----

    /// The live leaders, by term.
    pub fn leaders(&self) -> Vec<(Term, NodeId)> {
        let mut leaders: Vec<(Term, NodeId)> = self
            .slots
            .iter()
            .filter_map(|slot| slot.node.as_ref())
            .filter(|raft| raft.role() == Role::Leader)
            .map(|raft| (raft.term(), raft.id()))
            .collect();
        leaders.sort();
        leaders
    }

    /// The one leader of the highest term among the live nodes whose links are intact.
    pub fn leader(&self) -> Option<NodeId> {
        self.leaders().last().map(|&(_, leader)| leader)
    }

    /// Makes `node` campaign now (again, if its term was behind) and settles the election,
    /// delivering every message.
    pub fn elect(&mut self, node: NodeId) {
        self.campaign_until_leader(node, |_| true);
    }

    /// Like `elect`, but only election messages are delivered: the new leader's first appends
    /// stay in flight for the test to deliver or drop.
    pub fn elect_without_replicating(&mut self, node: NodeId) {
        self.campaign_until_leader(node, is_election_message);
    }

    fn campaign_until_leader(&mut self, node: NodeId, deliver: impl Fn(&Message) -> bool) {
        for _ in 0..3 {
            let now = self.now;
            self.node_mut(node).campaign(now);
            self.drain(node);
            self.deliver_where(&deliver);
            if self.node(node).role() == Role::Leader {
                return;
            }
        }
        panic!("node {node} could not win an election");
    }

    /// Moves the clock without firing any timeout (leases expire, deadlines pass unnoticed
    /// until the next `tick`).
    pub fn advance(&mut self, millis: u64) {
        self.now = self.now + Duration::from_millis(millis);
    }

    /// Delivers the first message in flight that matches; returns whether there was one.
    pub fn deliver_first_where(&mut self, matches: impl Fn(&Message) -> bool) -> bool {
        let Some(position) = self.network.iter().position(matches) else {
            return false;
        };
        let message = self.network.remove(position).expect("position is in range");
        self.deliver(message);
        true
    }

    pub fn propose(&mut self, node: NodeId, command: &[u8]) -> raftkv_core::LogId {
        let now = self.now;
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
                Payload::Noop => None,
            })
            .collect()
    }

    pub fn commit(&self, node: NodeId) -> LogIndex {
        self.node(node).status().commit
    }
}
