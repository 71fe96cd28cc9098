//! What the cluster harness needs of the machine under test, a Raft node or a replica: start
//! it, feed it, drain it as effects the harness carries out.

use core::fmt;

use raftkv_core::kv::KvReply;
use raftkv_core::protocol::ClientReply;
use raftkv_core::raft::{
    ChunkToSend, EntriesToLoad, EntriesToSend, Entry, Message, PartialSnapshot, Persist, PersistId,
    RaftNode, Recovered, Role, SavedSnapshot, Snapshot,
};
use raftkv_core::snapshot_job::SnapshotJob;
use raftkv_core::{Instant, LogId, LogIndex, NodeId, Term};

use crate::client::Client;
use crate::endpoint::Routed;

/// A node the harness drives.
pub trait Machine: Sized {
    /// How a node is configured.
    type Config: Clone;
    /// What it is fed.
    type Input;
    /// What travels between it, its peers and its clients.
    type Packet: Routed + Clone + fmt::Debug + fmt::Display + From<Message>;
    /// Who sends it requests (nobody, for a bare Raft node).
    type Client: Client<Self::Packet>;
    /// Whether the transcript shows persists and their acknowledgements: a Raft node's story
    /// is told by its disk, a replica's by its clients' requests.
    const TRANSCRIBES_PERSISTS: bool;

    /// Starts a node from what its disk holds; panics if it refuses to.
    fn start(now: Instant, config: &Self::Config, recovered: Recovered) -> Self;

    /// Readies `config` for the node's next life: every life draws from a seed of its own, as
    /// `Config::seed` asks.
    fn next_life(config: &mut Self::Config);

    /// The Raft node inside.
    fn raft(&self) -> &RaftNode;

    fn handle(&mut self, now: Instant, input: Self::Input);

    /// Makes the node campaign now.
    fn campaign(&mut self, now: Instant);

    /// The input that says a timeout is due.
    fn timeout_input() -> Self::Input;

    /// The input that acknowledges persist `id`.
    fn persisted_input(id: PersistId) -> Self::Input;

    /// The input that says the snapshot of an `Effect::SaveSnapshot` is saved (`None`: the
    /// machine never asks for one).
    fn snapshot_saved_input(snapshot: SavedSnapshot) -> Option<Self::Input> {
        let _ = snapshot;
        None
    }

    /// Hands the node the snapshot received that `Effect::LoadSnapshot` asked for, read back
    /// from its disk (a node with a state machine decodes it; one that does not decode is
    /// damaged).
    fn snapshot_loaded(&mut self, now: Instant, snapshot: Snapshot);

    /// The input that says the snapshot received that `Effect::LoadSnapshot` asked for is
    /// damaged on the node's disk.
    fn snapshot_damaged_input(last: LogId) -> Self::Input;

    /// The input saying that the entries up to `through` cannot be read from the disk.
    fn log_unreadable_input(through: LogIndex) -> Self::Input;

    /// The input that hands the node the entries of an `Effect::LoadEntries`, read back.
    fn entries_loaded_input(entries: Vec<Entry>) -> Self::Input;

    /// The input that hands the node a packet addressed to it.
    fn packet_input(packet: Self::Packet) -> Self::Input;

    /// The next thing the node wants done; `None` once drained.
    fn poll_effect(&mut self) -> Option<Effect<Self::Packet>>;

    fn poll_timeout(&self) -> Option<Instant>;

    /// Panics if the node breaks an invariant.
    fn check_invariants(&self);
}

/// What a node wants done, whichever machine it is; `P` is its packet type.
#[derive(Clone, Debug)]
pub enum Effect<P> {
    /// Send a Raft message to a peer.
    Send(Message),
    /// Send this reply to a client.
    Reply(P),
    /// Answer the test, which sent a request by hand.
    ReplyByHand(ClientReply<KvReply>),
    /// Make this durable, then acknowledge it.
    Persist(Persist),
    /// Encode this snapshot, save it, then say so.
    SaveSnapshot(SnapshotJob),
    /// Read this chunk from the snapshot on the node's disk and send it.
    SendSnapshotChunk(ChunkToSend),
    /// Read these entries from the node's disk and send the append.
    SendEntries(EntriesToSend),
    /// Read these committed entries from the node's disk and hand them to the node.
    LoadEntries(EntriesToLoad),
    /// Read back the snapshot received whole from the node's disk and hand it to the node.
    LoadSnapshot(PartialSnapshot),
    /// These committed entries are the node's to apply.
    Apply(Vec<Entry>),
    /// The read with context `ctx` may be served once `index` is applied.
    ReadReady {
        ctx: u64,
        index: LogIndex,
    },
    RoleChanged {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
    /// Nothing for the harness to do but note this line.
    Note(String),
}
