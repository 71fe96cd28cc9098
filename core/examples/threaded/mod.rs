//! A driver for a cluster in one process: each replica runs on a thread of its own, channels
//! are the network, and each node keeps its log in an in-memory disk that acknowledges a
//! batch of persists once it has applied them. Clients drive a `Clerk` on the caller's
//! thread. Shared by the `threads` and `bank` examples; the crate's documentation explains
//! the contract it follows.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::{self, JoinHandle};
use std::time;

use raftkv_core::client::{Clerk, ClerkConfig, ClerkError, ClerkInput, ClerkOutput};
use raftkv_core::loaded_snapshot::LoadedSnapshot;
use raftkv_core::protocol::{ClientReply, ClientRequest};
use raftkv_core::raft::{
    ChunkToSend, Config, Entry, HardState, Message, PartialSnapshot, Persist, ReceivedChunk,
    Recovered, Role, SavedSnapshot, Snapshot,
};
use raftkv_core::server::{Input, Output, Replica, ReplicaConfig, ReplyTo};
use raftkv_core::{Instant, NodeId, StateMachine};

/// Events waiting for a node or replies for a client; past this, more are dropped, which Raft
/// and the clerk both survive (they send again).
const QUEUE_BOUND: usize = 1024;

type Reply<S> = ClientReply<<S as StateMachine>::Reply>;
type ReplySender<S> = SyncSender<(NodeId, Reply<S>)>;
/// A node's thread: when the process crashes, it hands back its disk and inbox.
type Process<S> = JoinHandle<(Disk, Receiver<Event<S>>)>;

/// What reaches a node's thread.
enum Event<S: StateMachine> {
    Message(Message),
    Request {
        client: u64,
        reply_to: ReplySender<S>,
        request: ClientRequest<S::Command>,
    },
    /// The snapshot of an `Output::SaveSnapshot`, encoded on a thread of its own.
    SnapshotEncoded(Snapshot),
    /// The process dies: its memory is lost, its disk stays.
    Crash,
}

/// The time every node and client reads: nanoseconds since the cluster started.
#[derive(Clone, Copy)]
struct Clock(time::Instant);

impl Clock {
    fn now(self) -> Instant {
        Instant::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// How long to wait until `at` (a second when nothing is due).
    fn until(self, at: Option<Instant>) -> time::Duration {
        let nanos = at.map_or(1_000_000_000, |at| (at - self.now()).as_nanos());
        time::Duration::from_nanos(nanos)
    }
}

/// What a node made durable, in memory: what a restart recovers.
#[derive(Default)]
struct Disk {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    /// The leader's snapshot being received: its bytes from the first on.
    received: Option<ReceivedChunk>,
}

impl Disk {
    /// Executes a persist as its contract says: the snapshot received installed, the
    /// snapshot, truncation, entries, hard state, and a chunk of a snapshot being received.
    fn persist(&mut self, persist: Persist) {
        if let Some(installed) = persist.install_received {
            // The snapshot loaded is the one received: it moves into place.
            let received = self.received_snapshot().filter(|held| held.last == installed.last);
            self.save_snapshot(received.expect("the node installs what it loaded"));
            self.received = None;
        }
        if let Some(snapshot) = persist.snapshot {
            self.entries.retain(|entry| entry.index > snapshot.last.index);
            self.snapshot = Some(snapshot);
        }
        let first_written = persist.entries.first().map(|entry| entry.index);
        for from in persist.truncate_from.into_iter().chain(first_written) {
            self.entries.retain(|entry| entry.index < from);
        }
        self.entries.extend(persist.entries);
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        match (&mut self.received, persist.snapshot_chunk) {
            // The node continues the snapshot held exactly where it ends.
            (Some(held), Some(chunk)) if chunk.offset > 0 => held.data.extend(chunk.data),
            (received, Some(chunk)) => *received = Some(chunk),
            (_, None) => {}
        }
    }

    /// The snapshot received whole, as `Output::LoadSnapshot` asks for it.
    fn received_snapshot(&self) -> Option<Snapshot> {
        let held = self.received.as_ref().filter(|held| held.end() == held.total)?;
        let (last, membership, data) = (held.last, held.membership.clone(), held.data.clone());
        Some(Snapshot { last, membership, data })
    }

    /// Keeps the node's own snapshot, unless one as recent (from the leader) is here already.
    fn save_snapshot(&mut self, snapshot: Snapshot) {
        if self.snapshot.as_ref().is_some_and(|held| held.last.index >= snapshot.last.index) {
            return;
        }
        self.entries.retain(|entry| entry.index > snapshot.last.index);
        self.snapshot = Some(snapshot);
    }

    /// The bytes of `chunk`, if the snapshot held is the chunk's.
    fn chunk(&self, chunk: &ChunkToSend) -> Option<Vec<u8>> {
        let snapshot = self.snapshot.as_ref().filter(|held| held.last == chunk.last)?;
        let start = usize::try_from(chunk.offset).ok()?;
        let end = start.checked_add(usize::try_from(chunk.length).ok()?)?;
        snapshot.data.get(start..end).map(<[u8]>::to_vec)
    }

    fn recover(&self) -> Recovered {
        let (snapshot, entries) = (self.snapshot.clone(), self.entries.clone());
        let partial_snapshot = self.received.as_ref().map(|held| PartialSnapshot {
            last: held.last,
            total: held.total,
            received: held.end(),
        });
        // Every entry comes back in memory: nothing is left on disk (`Recovered::on_disk`).
        Recovered {
            hard_state: self.hard_state,
            snapshot,
            entries,
            partial_snapshot,
            ..Default::default()
        }
    }
}

/// One process: a replica, its disk, and where its peers and clients are.
struct Node<S: StateMachine> {
    replica: Replica<S>,
    disk: Disk,
    inbox: Receiver<Event<S>>,
    /// Every node's inbox, this one's included (the snapshot encoder answers there).
    nodes: Vec<SyncSender<Event<S>>>,
    clients: HashMap<u64, ReplySender<S>>,
    clock: Clock,
    /// An empty state machine, to decode snapshots into.
    new_state: fn() -> S,
}

impl<S: StateMachine + Send + 'static> Node<S>
where
    S::Command: Send,
{
    /// Runs until it crashes; hands back its disk and inbox, which outlive the process.
    fn run(mut self) -> (Disk, Receiver<Event<S>>) {
        loop {
            let now = self.clock.now();
            match self.inbox.recv_timeout(self.clock.until(self.replica.poll_timeout())) {
                Ok(Event::Crash) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Event::Message(message)) => self.replica.handle(now, Input::Message(message)),
                Ok(Event::Request { client, reply_to, request }) => {
                    self.clients.insert(client, reply_to);
                    self.replica.handle(now, Input::Request { from: ReplyTo(client), request });
                }
                Ok(Event::SnapshotEncoded(snapshot)) => {
                    let saved = SavedSnapshot::of(&snapshot);
                    self.disk.save_snapshot(snapshot);
                    self.replica.handle(now, Input::SnapshotSaved { snapshot: saved });
                }
                Err(RecvTimeoutError::Timeout) => self.replica.handle(now, Input::Timeout),
            }
            self.drain(now);
        }
        (self.disk, self.inbox)
    }

    /// Carries out every output; acknowledges each batch of persists once it is on the disk.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut durable = None;
            while let Some(output) = self.replica.poll_output() {
                match output {
                    Output::Send(message) => self.send(message),
                    Output::Persist(persist) => {
                        durable = Some(persist.id);
                        self.disk.persist(persist);
                    }
                    Output::SaveSnapshot(job) => {
                        let me = self.nodes[index(self.replica.raft().id())].clone();
                        // Encoding takes time in proportion to the state: not on this thread.
                        thread::spawn(move || me.send(Event::SnapshotEncoded(job.encode())));
                    }
                    Output::SendEntries(_) => {
                        unreachable!("the log cache is off: every entry stays in memory")
                    }
                    Output::LoadEntries(_) => {
                        unreachable!("every entry is recovered in memory: none is on disk")
                    }
                    Output::SendSnapshotChunk(chunk) => {
                        if let Some(bytes) = self.disk.chunk(&chunk) {
                            self.send(chunk.into_message(bytes));
                        }
                    }
                    Output::LoadSnapshot(whole) => {
                        // Decoded as it is read (here from memory; a driver with a real disk
                        // reads it from there, off this thread if it is large).
                        let decoded = self.disk.received_snapshot().and_then(|snapshot| {
                            let saved = SavedSnapshot::of(&snapshot);
                            let empty = (self.new_state)();
                            LoadedSnapshot::decode(saved, &mut &snapshot.data[..], empty).ok()
                        });
                        match decoded {
                            Some(loaded) => self.replica.snapshot_loaded(now, loaded),
                            None => {
                                let damaged = Input::SnapshotDamaged { last: whole.last };
                                self.replica.handle(now, damaged);
                            }
                        }
                    }
                    Output::Reply { to, reply } => {
                        let id = self.replica.raft().id();
                        if let Some(client) = self.clients.get(&to.0) {
                            let _ = client.try_send((id, reply)); // Lost: the clerk retries.
                        }
                    }
                    Output::RoleChanged { role: Role::Leader, term, .. } => {
                        println!("node {}: leads term {term}", self.replica.raft().id());
                    }
                    Output::RoleChanged { .. } | Output::MembershipChanged { .. } => {}
                }
            }
            let Some(id) = durable else { return };
            self.replica.handle(now, Input::Persisted { id });
        }
    }

    fn send(&self, message: Message) {
        // Best effort: a full queue loses the message, as a network may.
        let _ = self.nodes[index(message.to)].try_send(Event::Message(message));
    }
}

/// Where node `id` sits in the lists: ids count from 1.
fn index(id: NodeId) -> usize {
    usize::try_from(id.0 - 1).expect("few nodes")
}

/// A cluster of replicas of `S`, each on its thread.
pub(crate) struct Cluster<S: StateMachine> {
    nodes: Vec<SyncSender<Event<S>>>,
    threads: Vec<Option<Process<S>>>,
    new_state: fn() -> S,
    clock: Clock,
    /// Node lives started so far: each start draws its own seed.
    starts: u64,
    next_client: u64,
}

impl<S: StateMachine + Send + 'static> Cluster<S>
where
    S::Command: Send,
{
    /// Starts `size` new replicas of `new_state()`, ids 1 to `size`.
    pub(crate) fn start(size: u64, new_state: fn() -> S) -> Cluster<S> {
        let (nodes, inboxes): (Vec<_>, Vec<_>) =
            (0..size).map(|_| sync_channel(QUEUE_BOUND)).unzip();
        let clock = Clock(time::Instant::now());
        let mut cluster =
            Cluster { nodes, threads: Vec::new(), new_state, clock, starts: 0, next_client: 0 };
        for (i, inbox) in inboxes.into_iter().enumerate() {
            let thread = cluster.spawn(NodeId(i as u64 + 1), Disk::default(), inbox);
            cluster.threads.push(Some(thread));
        }
        cluster
    }

    fn spawn(&mut self, id: NodeId, disk: Disk, inbox: Receiver<Event<S>>) -> Process<S> {
        let voters = (1..=self.nodes.len() as u64).map(NodeId);
        let mut raft = Config::new(id, voters);
        (raft.election_timeout_ms_min, raft.election_timeout_ms_max) = (150, 300);
        raft.heartbeat_interval_ms = 30;
        self.starts += 1;
        raft.seed = self.starts; // A seed of its own for every life.
        let mut config = ReplicaConfig::new(raft);
        config.snapshot_threshold_bytes = 4 << 10; // Small, so that the examples compact.
        let now = self.clock.now();
        let replica = Replica::new(now, config, disk.recover(), (self.new_state)())
            .expect("a disk this driver wrote is one the node starts from");
        let node = Node {
            replica,
            disk,
            inbox,
            nodes: self.nodes.clone(),
            clients: HashMap::new(),
            clock: self.clock,
            new_state: self.new_state,
        };
        thread::spawn(move || node.run())
    }

    /// Crashes node `id` and starts it again from what its disk holds.
    pub(crate) fn restart(&mut self, id: NodeId) {
        let thread = self.threads[index(id)].take().expect("the node runs");
        self.nodes[index(id)].send(Event::Crash).expect("the node runs");
        let (disk, inbox) = thread.join().expect("the node did not panic");
        println!("node {id}: restarted from {} entries after its snapshot", disk.entries.len());
        self.threads[index(id)] = Some(self.spawn(id, disk, inbox));
    }

    /// A new client of the cluster, which may move to another thread.
    pub(crate) fn client(&mut self) -> Client<S> {
        self.next_client += 1;
        let mut config = ClerkConfig::new((1..=self.nodes.len() as u64).map(NodeId).collect());
        config.seed = self.next_client;
        let (reply_to, replies) = sync_channel(QUEUE_BOUND);
        let clerk = Clerk::new(config);
        let (id, nodes, clock) = (self.next_client, self.nodes.clone(), self.clock);
        Client { id, clerk, replies, reply_to, nodes, clock }
    }

    /// Stops every node.
    pub(crate) fn stop(mut self) {
        for (node, thread) in self.nodes.iter().zip(&mut self.threads) {
            let _ = node.send(Event::Crash);
            if let Some(thread) = thread.take() {
                thread.join().expect("the node did not panic");
            }
        }
    }
}

/// A client: a clerk, and the channel its replies come back on.
pub(crate) struct Client<S: StateMachine> {
    id: u64,
    clerk: Clerk<S::Command, S::Reply>,
    replies: Receiver<(NodeId, Reply<S>)>,
    reply_to: ReplySender<S>,
    nodes: Vec<SyncSender<Event<S>>>,
    clock: Clock,
}

impl<S: StateMachine> Client<S> {
    /// Runs `command` in the cluster, exactly once, and returns its reply.
    pub(crate) fn call(&mut self, command: S::Command) -> Result<S::Reply, ClerkError> {
        let submitted = self.clerk.submit(self.clock.now(), command);
        loop {
            while let Some(output) = self.clerk.poll_output() {
                match output {
                    ClerkOutput::Send { to, request } => {
                        let reply_to = self.reply_to.clone();
                        let event = Event::Request { client: self.id, reply_to, request };
                        let _ = self.nodes[index(to)].try_send(event); // Lost: it retries.
                    }
                    ClerkOutput::Finished { request, result } => {
                        assert_eq!(request, submitted, "one call at a time");
                        return result;
                    }
                }
            }
            let wait = self.clock.until(self.clerk.poll_timeout());
            let input = match self.replies.recv_timeout(wait) {
                Ok((from, reply)) => ClerkInput::Reply { from, reply },
                Err(_) => ClerkInput::Timeout,
            };
            self.clerk.handle(self.clock.now(), input);
        }
    }
}
