//! The replica: Raft, client sessions and the state machine, as one sans-IO state machine.

use core::fmt;
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, LogId, LogIndex, NodeId, RequestId, Term};
use crate::loaded_snapshot::LoadedSnapshot;
use crate::protocol::{ClientReply, ClientRequest, Op, Outcome, Reject};
use crate::raft::{
    self, ChangeRefused, MemberChange, Membership, Message, Payload, Persist, PersistId, RaftNode,
    Recovered, Role, Standing,
};
use crate::retired::Retired;
use crate::session::{SessionCheck, Sessions};
use crate::snapshot_job::SnapshotJob;
use crate::state_machine::{RestoreError, StateMachine};
use crate::time::Instant;

/// Settings of a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Settings of its Raft node.
    pub raft: raft::Config,
    /// A session idle this long (by the leader-stamped log clock) expires. Default 10 minutes:
    /// long enough for any client retry loop, short enough to bound the table.
    pub session_timeout_ms: u64,
    /// Once the applied entries held in the log weigh this many bytes, the replica snapshots its
    /// state and the log drops them. Default 64 MiB.
    pub snapshot_threshold_bytes: usize,
    /// ... or this percentage of the last snapshot's size, if more. Each snapshot rewrites the
    /// whole state: with a state much larger than the threshold, snapshots would follow each
    /// other without a pause and compete with the log for the disk. This keeps the bytes
    /// snapshots write in proportion to the bytes logged. Default 100; 0 snapshots at the
    /// byte threshold alone.
    pub snapshot_growth_percent: u32,
}

impl ReplicaConfig {
    /// Defaults around a Raft configuration.
    pub fn new(raft: raft::Config) -> ReplicaConfig {
        ReplicaConfig {
            raft,
            session_timeout_ms: 10 * 60 * 1_000,
            snapshot_threshold_bytes: 64 << 20,
            snapshot_growth_percent: 100,
        }
    }
}

/// Names where a reply goes; the driver chooses it (a connection, a simulated client) when it
/// passes a request in, and gets it back with the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyTo(pub u64);

/// An event fed to a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<C> {
    /// A message from a peer.
    Message(Message),
    /// The instant of `poll_timeout` has come.
    Timeout,
    /// The driver made `Persist { id }` and every earlier persist durable.
    Persisted {
        /// The id of the last durable persist.
        id: PersistId,
    },
    /// A client's request.
    Request {
        /// Where the reply goes.
        from: ReplyTo,
        /// The request.
        request: ClientRequest<C>,
    },
    /// The driver made the snapshot of an `Output::SaveSnapshot` durable (what its
    /// `SnapshotJob::encode` returned, `SavedSnapshot::of` it): the node may drop the log
    /// entries it covers, and sends it to followers that need it in chunks the driver reads
    /// from its disk (`Output::SendSnapshotChunk`).
    SnapshotSaved {
        /// The snapshot saved.
        snapshot: raft::SavedSnapshot,
    },
    /// The snapshot received that `Output::LoadSnapshot` asked for is intact on the driver's
    /// disk but does not decode (`LoadedSnapshot::decode` failed): a broken or hostile
    /// leader's. Counted (`undecodable`), never installed; the node receives it again (see
    /// `raft::Input::SnapshotDamaged`).
    SnapshotUndecodable {
        /// Its last entry.
        last: LogId,
    },
    /// The snapshot received that `Output::LoadSnapshot` asked for is damaged on the driver's
    /// disk (see `raft::Input::SnapshotDamaged`).
    SnapshotDamaged {
        /// Its last entry.
        last: LogId,
    },
    /// The entries of an `Output::SendEntries` up to `through` cannot be read back from the
    /// driver's disk (see `raft::Input::LogUnreadable`): the replica takes a snapshot past them.
    LogUnreadable {
        /// The last entry asked for.
        through: LogIndex,
    },
    /// The entries of the last `Output::LoadEntries`, read back from the driver's disk and
    /// checked (see `raft::Input::EntriesLoaded`): the replica applies them next.
    EntriesLoaded {
        /// The entries, in order.
        entries: Vec<raft::Entry>,
    },
}

/// Something a replica wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<R> {
    /// Send this message to a peer.
    Send(Message),
    /// Make this durable, then answer `Input::Persisted { id }`.
    Persist(Persist),
    /// Encode this snapshot of the replica's own state and make it durable as the node's
    /// snapshot, then answer `Input::SnapshotSaved`. Encoding takes time in proportion to the
    /// state: do it away from the thread that feeds the replica. Unlike persists, it is not
    /// ordered with them: the snapshot holds only entries already durable here, and a later
    /// snapshot (one installed from the leader) must not be replaced by it. Until the answer
    /// the replica asks for no other; without one (a crash) it asks again after a restart.
    SaveSnapshot(SnapshotJob),
    /// Read this chunk of the node's snapshot from the driver's disk and send it (see
    /// `raft::Output::SendSnapshotChunk`). The replica keeps no snapshot data in memory: its
    /// snapshots are the ones the driver saved, or restored from.
    SendSnapshotChunk(raft::ChunkToSend),
    /// Read these entries from the log on the driver's disk, check them and send the append,
    /// or answer `Input::LogUnreadable` (see `raft::Output::SendEntries`; only with
    /// `raft::Config::log_cache_bytes` set).
    SendEntries(raft::EntriesToSend),
    /// Read these committed entries, which the replica left on the driver's disk at its start
    /// (`raft::Recovered::on_disk`), from the log there, check them and answer
    /// `Input::EntriesLoaded`; if they cannot be read, stop the node (see
    /// `raft::Output::LoadEntries`).
    LoadEntries(raft::EntriesToLoad),
    /// Every byte of the snapshot received from the leader is durable: read it back, checked,
    /// decoding it as it is read (`LoadedSnapshot::decode`, away from the thread that feeds
    /// the replica), and answer with [`Replica::snapshot_loaded`], or `Input::SnapshotDamaged`
    /// if a checksum fails or it does not decode (see `raft::Output::LoadSnapshot`). The
    /// snapshot stays on the driver's disk, to install (`Persist::install_received`).
    LoadSnapshot(raft::PartialSnapshot),
    /// Send this reply to a client.
    Reply {
        /// Where, as passed in with the request.
        to: ReplyTo,
        /// The reply.
        reply: ClientReply<R>,
    },
    /// The replica's role, term or known leader changed (for logs and status).
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The membership in force changed (see `raft::Output::MembershipChanged`): for logs, and
    /// for the driver to learn where the members are.
    MembershipChanged {
        /// The entry it comes from.
        index: LogIndex,
        /// The membership now in force.
        membership: Membership,
        /// Where this replica stands in it.
        standing: Standing,
    },
}

/// A request as it is logged: with the leader's clock, which drives session expiry
/// identically on every replica.
#[derive(Serialize, Deserialize)]
struct LoggedRequest<C> {
    client: ClientId,
    request: RequestId,
    stamp_ms: u64,
    op: Op<C>,
}

/// Why a replica could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaStartError {
    /// Its Raft node could not start.
    Raft(raft::StartError),
    /// The recovered snapshot does not decode.
    Snapshot(RestoreError),
}

impl fmt::Display for ReplicaStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaStartError::Raft(error) => write!(f, "{error}"),
            ReplicaStartError::Snapshot(error) => write!(f, "recovered {error}"),
        }
    }
}

impl std::error::Error for ReplicaStartError {}

/// Where a leader's log clock started: its stamps continue the log's clock at the pace of the
/// leader's own, whatever the origin of its `Instant`s.
#[derive(Clone, Copy, Debug)]
struct ClockAnchor {
    term: Term,
    log_ms: u64,
    local: Instant,
}

/// A proposed request waiting to be applied.
#[derive(Clone, Copy, Debug)]
struct Proposed {
    to: ReplyTo,
    request: RequestId,
    term: Term,
}

/// A read waiting for its read point.
#[derive(Clone, Debug)]
struct WaitingRead<C> {
    to: ReplyTo,
    request: RequestId,
    command: C,
}

/// A replica of the state machine `S`: a Raft node, the client sessions and the state.
///
/// Calling order: feed one event with [`handle`](Self::handle), drain
/// [`poll_output`](Self::poll_output) until `None`, then call `handle(now, Input::Timeout)` at
/// [`poll_timeout`](Self::poll_timeout). Several events may be fed before a drain; proposals
/// made in between then share one append per follower.
///
/// Writes are proposed to the log and answered once applied. Read-only commands never enter the
/// log: the leader confirms its leadership (ReadIndex) and answers once its state machine has
/// caught up with the read point. A stale leader cut off in a minority cannot complete either.
///
/// A replica of the key-value store, alone in its cluster, fed requests by hand (a
/// [`Clerk`](crate::client::Clerk) does this for real clients): a session first, then
/// commands numbered within it. A retried request is answered from the session, never
/// applied twice.
///
/// ```
/// use raftkv_core::kv::{KvCommand, KvReply, KvStore};
/// use raftkv_core::protocol::{ClientReply, ClientRequest, Op, Outcome};
/// use raftkv_core::raft::{Config, Recovered, Role};
/// use raftkv_core::server::{Input, Output, Replica, ReplicaConfig, ReplyTo};
/// use raftkv_core::{ClientId, Instant, NodeId, RequestId};
///
/// /// Carries out the outputs (persists acknowledged at once: this sketch has no disk) and
/// /// returns the replies.
/// fn drain(replica: &mut Replica<KvStore>, now: Instant) -> Vec<ClientReply<KvReply>> {
///     let mut replies = Vec::new();
///     while let Some(output) = replica.poll_output() {
///         match output {
///             Output::Persist(persist) => {
///                 replica.handle(now, Input::Persisted { id: persist.id })
///             }
///             Output::Reply { reply, .. } => replies.push(reply),
///             _ => {}
///         }
///     }
///     replies
/// }
///
/// let config = ReplicaConfig::new(Config::new(NodeId(1), [NodeId(1)]));
/// let mut replica =
///     Replica::new(Instant::ZERO, config, Recovered::default(), KvStore::default()).unwrap();
/// let mut now = Instant::ZERO;
/// while replica.raft().role() != Role::Leader {
///     now = replica.poll_timeout().unwrap();
///     replica.handle(now, Input::Timeout);
///     drain(&mut replica, now);
/// }
///
/// let mut ask = |client, request, op| {
///     let request = ClientRequest { client, request: RequestId(request), op };
///     replica.handle(now, Input::Request { from: ReplyTo(0), request });
///     drain(&mut replica, now).pop().unwrap().outcome
/// };
/// let Outcome::Registered { client } = ask(ClientId(0), 1, Op::Register) else { panic!() };
/// let append = KvCommand::Append { key: b"log".to_vec(), value: b"a".to_vec() };
/// assert_eq!(ask(client, 2, Op::Command(append.clone())), Outcome::Done(KvReply::Length(1)));
/// // The reply was lost, say, and the client retries: same id, same answer, applied once.
/// assert_eq!(ask(client, 2, Op::Command(append)), Outcome::Done(KvReply::Length(1)));
/// let get = KvCommand::Get { key: b"log".to_vec() };
/// let value = KvReply::Value(Some(b"a".to_vec()));
/// assert_eq!(ask(client, 3, Op::Command(get)), Outcome::Done(value));
/// ```
pub struct Replica<S: StateMachine> {
    raft: RaftNode,
    state: S,
    sessions: Sessions<S::Reply>,
    /// Leader only: proposed requests by log index.
    proposed: BTreeMap<LogIndex, Proposed>,
    /// Leader only: reads waiting for ReadIndex, by read ctx.
    reads: BTreeMap<u64, WaitingRead<S::Command>>,
    /// Reads with a confirmed read point, in read point order, waiting for the state machine.
    reads_ready: VecDeque<(LogIndex, WaitingRead<S::Command>)>,
    next_read_ctx: u64,
    applied: LogIndex,
    outbox: VecDeque<Output<S::Reply>>,
    snapshot_threshold_bytes: usize,
    snapshot_growth_percent: u32,
    /// The snapshot handed to the driver to save, until it answers.
    snapshot_in_flight: Option<LogId>,
    /// A snapshot was asked for (`snapshot_now`) and not handed out yet.
    snapshot_asked: bool,
    /// What the replica let go of and the driver has not taken yet (`take_retired`).
    retired: Retired<S>,
    clock_anchor: Option<ClockAnchor>,
    /// Log entries and snapshots from a leader that did not decode (never written by this
    /// code: a bug or a hostile peer if non-zero).
    undecodable: u64,
    /// The snapshot received from the leader that the driver decoded, until the node installs
    /// it (`raft::Output::RestoreSnapshot`).
    loaded: Option<LoadedSnapshot<S>>,
}

impl<S: StateMachine> Replica<S> {
    /// Starts a replica from what its disk returned, with `state` as the empty state machine.
    pub fn new(
        now: Instant,
        config: ReplicaConfig,
        mut recovered: Recovered,
        state: S,
    ) -> Result<Replica<S>, ReplicaStartError> {
        let Some(snapshot) = recovered.snapshot.as_mut() else {
            let sessions = Sessions::new(config.session_timeout_ms);
            return Self::start(now, config, recovered, state, sessions, LogIndex(0));
        };
        let saved = raft::SavedSnapshot::of(snapshot);
        let data = std::mem::take(&mut snapshot.data);
        let loaded = LoadedSnapshot::decode(saved, &mut &data[..], state)
            .map_err(ReplicaStartError::Snapshot)?;
        drop(data);
        Self::with_loaded_snapshot(now, config, recovered, loaded)
    }

    /// Starts a replica from what its disk returned, whose snapshot the driver decoded as it
    /// read it from its disk (`LoadedSnapshot::decode`), where its data stays
    /// (`recovered.snapshot` need not hold it): a start never holds the snapshot's data and
    /// the state decoded from it at once.
    ///
    /// # Panics
    /// If `loaded` is not the recovered snapshot.
    pub fn with_loaded_snapshot(
        now: Instant,
        config: ReplicaConfig,
        recovered: Recovered,
        loaded: LoadedSnapshot<S>,
    ) -> Result<Replica<S>, ReplicaStartError> {
        let recovered_last = recovered.snapshot.as_ref().map(|snapshot| snapshot.last);
        assert_eq!(recovered_last, Some(loaded.snapshot.last), "not the recovered snapshot");
        let LoadedSnapshot { snapshot, state, sessions } = loaded;
        let sessions = sessions.with_timeout_ms(config.session_timeout_ms);
        let mut replica =
            Self::start(now, config, recovered, state, sessions, snapshot.last.index)?;
        // Chunks for followers are read from the driver's disk.
        replica.raft.keep_snapshot_on_disk(snapshot.bytes);
        Ok(replica)
    }

    fn start(
        now: Instant,
        config: ReplicaConfig,
        recovered: Recovered,
        state: S,
        sessions: Sessions<S::Reply>,
        applied: LogIndex,
    ) -> Result<Replica<S>, ReplicaStartError> {
        let raft = RaftNode::new(now, config.raft, recovered).map_err(ReplicaStartError::Raft)?;
        Ok(Replica {
            raft,
            state,
            sessions,
            proposed: BTreeMap::new(),
            reads: BTreeMap::new(),
            reads_ready: VecDeque::new(),
            next_read_ctx: 0,
            applied,
            outbox: VecDeque::new(),
            snapshot_threshold_bytes: config.snapshot_threshold_bytes,
            snapshot_growth_percent: config.snapshot_growth_percent,
            snapshot_in_flight: None,
            snapshot_asked: false,
            retired: Retired::new(),
            clock_anchor: None,
            undecodable: 0,
            loaded: None,
        })
    }

    /// The snapshot received from the leader that `Output::LoadSnapshot` asked for, read back
    /// and decoded by the driver: the node installs it, unless its log moved past it meanwhile
    /// (then it is dropped; see `raft::Input::SnapshotLoaded`). Drain the outputs after it, as
    /// after [`handle`](Self::handle).
    pub fn snapshot_loaded(&mut self, now: Instant, loaded: LoadedSnapshot<S>) {
        let snapshot = loaded.snapshot.clone();
        let last = snapshot.last;
        self.loaded = Some(loaded);
        self.raft.handle(now, raft::Input::SnapshotLoaded { snapshot });
        // Installed, it is restored once the outputs before it are drained; otherwise its
        // state goes now rather than stay in memory.
        if self.raft.snapshot().is_none_or(|held| held.last != last) {
            if let Some(unused) = self.loaded.take() {
                self.retired.add_state(unused.state, unused.sessions);
            }
        }
    }

    /// Feeds one event.
    pub fn handle(&mut self, now: Instant, input: Input<S::Command>) {
        match input {
            Input::Message(message) => self.raft.handle(now, raft::Input::Message(message)),
            Input::Timeout => self.raft.handle(now, raft::Input::Timeout),
            Input::Persisted { id } => {
                self.raft.handle(now, raft::Input::Persisted { id });
                // The applied entry may have just become durable: see `maybe_snapshot`.
                self.maybe_snapshot();
            }
            Input::Request { from, request } => self.on_request(now, from, request),
            Input::SnapshotSaved { snapshot } => self.on_snapshot_saved(snapshot),
            Input::SnapshotDamaged { last } => {
                self.raft.handle(now, raft::Input::SnapshotDamaged { last })
            }
            Input::SnapshotUndecodable { last } => {
                self.undecodable += 1;
                self.raft.handle(now, raft::Input::SnapshotDamaged { last })
            }
            Input::LogUnreadable { through } => {
                self.raft.handle(now, raft::Input::LogUnreadable { through });
                self.maybe_snapshot();
            }
            Input::EntriesLoaded { entries } => {
                self.raft.handle(now, raft::Input::EntriesLoaded { entries })
            }
        }
    }

    /// The next thing to do, in order; `None` once drained.
    pub fn poll_output(&mut self) -> Option<Output<S::Reply>> {
        loop {
            if let Some(output) = self.outbox.pop_front() {
                return Some(output);
            }
            let output = self.raft.poll_output()?;
            self.on_raft_output(output);
        }
    }

    /// When to call `handle(now, Input::Timeout)`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.raft.poll_timeout()
    }

    /// The Raft node, for status and inspection.
    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// Panics if the replica breaks an invariant (those of [`RaftNode::check_invariants`], and
    /// the state machine never ahead of what Raft handed out to apply). The simulator calls it
    /// after every step.
    pub fn check_invariants(&self) {
        self.raft.check_invariants();
        let handed_out = self.raft.applied_index();
        assert!(self.applied <= handed_out, "applied {} beyond {handed_out}", self.applied);
    }

    /// Hands leadership to `target` (see [`RaftNode::transfer_leadership`]).
    pub fn transfer_leadership(
        &mut self,
        now: Instant,
        target: NodeId,
    ) -> Result<(), raft::TransferError> {
        self.raft.transfer_leadership(now, target)
    }

    /// Proposes a membership change (see [`RaftNode::propose_membership_change`]). Its entries
    /// change nothing in the state machine; the change is done once `raft().status()` shows
    /// the new membership committed and not joint.
    pub fn propose_membership_change(
        &mut self,
        now: Instant,
        changes: &[MemberChange],
    ) -> Result<LogId, ChangeRefused> {
        self.raft.propose_membership_change(now, changes)
    }

    /// Makes the node campaign now (leadership hand-over, tests).
    pub fn campaign(&mut self, now: Instant) {
        self.raft.campaign(now);
    }

    /// The state machine as applied so far.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The client sessions as applied so far.
    pub fn sessions(&self) -> &Sessions<S::Reply> {
        &self.sessions
    }

    /// The last log index applied to the state machine.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// The snapshot handed to the driver to save (`Output::SaveSnapshot`), until it answered.
    pub fn snapshot_in_flight(&self) -> Option<LogId> {
        self.snapshot_in_flight
    }

    /// Hands the driver a snapshot at the applied entry as soon as it can (`Output::SaveSnapshot`),
    /// whatever the threshold: for a backup, say. Nothing happens if the snapshot covers every
    /// applied entry already; while one is in flight, the next is taken once it is saved.
    pub fn snapshot_now(&mut self) {
        if self.applied > self.raft.status().snapshot_last.index {
            self.snapshot_asked = true;
            self.maybe_snapshot();
        }
    }

    /// Log entries and snapshots that failed to decode (zero unless there is a bug or a
    /// hostile peer).
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    fn reply(&mut self, to: ReplyTo, request: RequestId, outcome: Outcome<S::Reply>) {
        self.outbox.push_back(Output::Reply { to, reply: ClientReply { request, outcome } });
    }

    fn on_request(&mut self, now: Instant, from: ReplyTo, request: ClientRequest<S::Command>) {
        let ClientRequest { client, request: request_id, op } = request;
        // A retry of a request already applied is answered from the session, whatever the
        // state now says of the command: a command valid when it was applied (an append) may
        // no longer be (the value it grew is larger now). On a follower too, which a retry
        // reaches when the leader fell silent: the reply is committed state however it was
        // learned, and validating the command again would refuse as invalid what took effect.
        if let SessionCheck::Duplicate(reply) = self.sessions.check(client, request_id) {
            let outcome = Outcome::Done(reply.clone());
            self.reply(from, request_id, outcome);
            return;
        }
        if let Op::Command(command) = &op {
            if let Err(invalid) = self.state.validate(command) {
                let reject = Reject::Invalid { reason: invalid.reason };
                self.reply(from, request_id, Outcome::Rejected(reject));
                return;
            }
        }
        if self.raft.role() != Role::Leader {
            let reject = Reject::NotLeader { hint: self.raft.leader() };
            self.reply(from, request_id, Outcome::Rejected(reject));
            return;
        }
        match op {
            Op::Command(command) if S::is_read_only(&command) => {
                let ctx = self.next_read_ctx;
                self.next_read_ctx += 1;
                match self.raft.read_index(now, ctx) {
                    Ok(()) => {
                        let read = WaitingRead { to: from, request: request_id, command };
                        self.reads.insert(ctx, read);
                    }
                    Err(raft::NotLeader { hint }) => {
                        let reject = Reject::NotLeader { hint };
                        self.reply(from, request_id, Outcome::Rejected(reject));
                    }
                }
            }
            op => {
                // Retries already applied were answered above. Everything else is decided where
                // it is applied, so that every replica decides the same.
                let stamp_ms = self.log_clock_stamp(now);
                let logged = LoggedRequest { client, request: request_id, stamp_ms, op };
                let bytes =
                    postcard::to_allocvec(&logged).expect("encoding into a Vec cannot fail");
                match self.raft.propose(now, bytes) {
                    Ok(id) => {
                        let proposed = Proposed { to: from, request: request_id, term: id.term };
                        self.proposed.insert(id.index, proposed);
                    }
                    Err(raft::NotLeader { hint }) => {
                        self.reply(from, request_id, Outcome::Rejected(Reject::NotLeader { hint }));
                    }
                }
            }
        }
    }

    /// The stamp of a request proposed now. Stamps continue the log clock (the latest stamp
    /// applied) from where this leader found it, at the pace of its own clock. They do not read
    /// the leader's clock directly: clock origins differ between processes, and a leader whose
    /// origin lay far ahead would expire every session at once.
    fn log_clock_stamp(&mut self, now: Instant) -> u64 {
        let term = self.raft.term();
        let applied_ms = self.sessions.clock_ms();
        if let Some(anchor) = self.clock_anchor.filter(|anchor| anchor.term == term) {
            let stamp_ms = anchor.log_ms + (now - anchor.local).as_millis();
            if stamp_ms >= applied_ms {
                return stamp_ms;
            }
        }
        // A new term, or entries of the previous leader stamped later than this clock reached:
        // start again from the clock as applied.
        self.clock_anchor = Some(ClockAnchor { term, log_ms: applied_ms, local: now });
        applied_ms
    }

    fn on_raft_output(&mut self, output: raft::Output) {
        match output {
            raft::Output::Send(message) => self.outbox.push_back(Output::Send(message)),
            raft::Output::Persist(persist) => self.outbox.push_back(Output::Persist(persist)),
            raft::Output::Apply(entries) => {
                for entry in entries {
                    self.apply(entry);
                }
                self.serve_ready_reads();
                self.maybe_snapshot();
            }
            raft::Output::RestoreSnapshot(snapshot) => {
                let loaded = self.loaded.take();
                let loaded = loaded.filter(|loaded| loaded.snapshot == snapshot);
                self.adopt(loaded.expect("the node installs only the snapshot it was handed"));
            }
            raft::Output::SendSnapshotChunk(chunk) => {
                self.outbox.push_back(Output::SendSnapshotChunk(chunk));
            }
            raft::Output::SendEntries(append) => self.outbox.push_back(Output::SendEntries(append)),
            raft::Output::LoadEntries(load) => self.outbox.push_back(Output::LoadEntries(load)),
            raft::Output::LoadSnapshot(whole) => self.outbox.push_back(Output::LoadSnapshot(whole)),
            raft::Output::ReadReady { ctx, index } => {
                if let Some(read) = self.reads.remove(&ctx) {
                    self.reads_ready.push_back((index, read));
                    self.serve_ready_reads();
                }
            }
            raft::Output::ReadAborted { ctx, hint } => {
                if let Some(read) = self.reads.remove(&ctx) {
                    let reject = Reject::NotLeader { hint };
                    self.reply(read.to, read.request, Outcome::Rejected(reject));
                }
            }
            raft::Output::RoleChanged { role, term, leader } => {
                if role != Role::Leader {
                    self.abandon_proposals(leader);
                }
                self.outbox.push_back(Output::RoleChanged { role, term, leader });
            }
            raft::Output::MembershipChanged { index, membership, standing } => {
                self.outbox.push_back(Output::MembershipChanged { index, membership, standing });
            }
        }
    }

    /// No longer leading: the proposals may or may not commit under the next leader. Their
    /// clients retry there; their sessions make that safe.
    fn abandon_proposals(&mut self, leader: Option<NodeId>) {
        for (_, proposed) in std::mem::take(&mut self.proposed) {
            let reject = Reject::NotLeader { hint: leader };
            self.reply(proposed.to, proposed.request, Outcome::Rejected(reject));
        }
    }

    fn apply(&mut self, entry: raft::Entry) {
        self.applied = entry.index;
        let outcome = match &entry.payload {
            Payload::Noop | Payload::Membership(_) => None,
            Payload::Command(bytes) => match postcard::from_bytes(bytes) {
                Ok(logged) => Some(self.apply_logged(entry.index, logged)),
                Err(_) => {
                    self.undecodable += 1;
                    None
                }
            },
        };
        if let Some(proposed) = self.proposed.remove(&entry.index) {
            // Losing leadership is reported (`RoleChanged`) before any entry of a later
            // leader is handed out to apply, and abandons every proposal: an entry found here
            // is the one proposed.
            assert_eq!(
                proposed.term,
                entry.term,
                "entry {} replaced a pending proposal",
                entry.id()
            );
            let outcome = match outcome {
                Some(outcome) => outcome,
                // A command this node encoded and cannot decode: answered, never applied.
                None => Outcome::Rejected(Reject::NotLeader { hint: self.raft.leader() }),
            };
            self.reply(proposed.to, proposed.request, outcome);
        }
    }

    fn apply_logged(
        &mut self,
        index: LogIndex,
        logged: LoggedRequest<S::Command>,
    ) -> Outcome<S::Reply> {
        self.sessions.advance_clock(logged.stamp_ms);
        match logged.op {
            Op::Register => {
                // The register entry's index is unique and the same on every replica.
                let client = ClientId(index.0);
                self.sessions.open(client);
                Outcome::Registered { client }
            }
            Op::Command(command) => match self.sessions.check(logged.client, logged.request) {
                SessionCheck::New => {
                    let reply = self.state.apply(&command);
                    self.sessions.record(logged.client, logged.request, reply.clone());
                    Outcome::Done(reply)
                }
                SessionCheck::Duplicate(reply) => Outcome::Done(reply.clone()),
                SessionCheck::Superseded => Outcome::Rejected(Reject::Superseded),
                SessionCheck::Unknown => Outcome::Rejected(Reject::SessionExpired),
            },
        }
    }

    /// Once the applied log is heavy enough, hands the driver a view of the state machine and
    /// the sessions to encode and save (one at a time), at an applied entry durable here.
    fn maybe_snapshot(&mut self) {
        if self.snapshot_in_flight.is_some()
            || (self.raft.applied_log_bytes() < self.snapshot_threshold()
                && !self.snapshot_asked
                && !self.raft.needs_snapshot())
        {
            return;
        }
        let Some((last, membership)) = self.raft.snapshot_point() else { return };
        if last.index != self.applied {
            // Entries handed out to apply are still on their way to the state machine.
            return;
        }
        let job = SnapshotJob::new::<S>(last, membership, self.state.view(), self.sessions.clone());
        self.snapshot_in_flight = Some(last);
        self.snapshot_asked = false;
        self.outbox.push_back(Output::SaveSnapshot(job));
    }

    /// The driver saved the snapshot handed to it: the log may drop what it covers. Anything
    /// else is not this replica's to take.
    fn on_snapshot_saved(&mut self, snapshot: raft::SavedSnapshot) {
        if self.snapshot_in_flight != Some(snapshot.last) {
            return;
        }
        self.snapshot_in_flight = None;
        if let Some(compacted) = self.raft.snapshot_saved(snapshot) {
            self.retired.add_entries(compacted);
        }
        // What was applied meanwhile may weigh the threshold already.
        self.maybe_snapshot();
    }

    /// What the replica let go of since it was last taken, for the driver to free on another
    /// thread: the log entries a snapshot saved or installed covers (there may be a whole
    /// threshold's worth), the state and sessions an installed snapshot replaced. Take it after
    /// each event and after draining the outputs (a snapshot is restored while they are
    /// drained); a replica keeps only a few things untaken, and frees older ones itself.
    pub fn take_retired(&mut self) -> Option<Retired<S>> {
        (!self.retired.is_empty()).then(|| std::mem::replace(&mut self.retired, Retired::new()))
    }

    /// Bytes of applied log at which the replica snapshots now: the configured threshold, or
    /// `snapshot_growth_percent` of its last snapshot's size if more.
    pub fn snapshot_threshold(&self) -> usize {
        let grown =
            self.raft.snapshot_bytes().saturating_mul(u64::from(self.snapshot_growth_percent))
                / 100;
        usize::try_from(grown).unwrap_or(usize::MAX).max(self.snapshot_threshold_bytes)
    }

    /// Whether the log may hold more applied entries than the snapshot threshold now: while a
    /// snapshot is being saved, while the applied entry is not durable here (no snapshot may
    /// stand on it yet), or while the node cannot compact at all: a node that joined a running
    /// cluster applies the entries from before it was added without knowing the membership
    /// they stood under, and may snapshot only once it applied the entry that added it (those
    /// entries are bounded by what its leader had not compacted). Otherwise the replica
    /// snapshots as soon as the threshold is reached.
    pub fn snapshot_deferred(&self) -> bool {
        self.snapshot_in_flight.is_some()
            || !self.raft.applied_is_durable()
            || !self.raft.knows_membership_at(self.applied)
    }

    /// Replaces sessions and state with a snapshot's.
    fn adopt(&mut self, loaded: LoadedSnapshot<S>) {
        let LoadedSnapshot { snapshot, state, sessions } = loaded;
        let sessions = sessions.with_timeout_ms(self.sessions.timeout_ms());
        let replaced_state = std::mem::replace(&mut self.state, state);
        let replaced_sessions = std::mem::replace(&mut self.sessions, sessions);
        self.retired.add_state(replaced_state, replaced_sessions);
        if let Some(dropped) = self.raft.take_dropped_by_install() {
            self.retired.add_entries(dropped);
        }
        self.applied = snapshot.last.index;
    }

    fn serve_ready_reads(&mut self) {
        while self.reads_ready.front().is_some_and(|(index, _)| *index <= self.applied) {
            let (_, read) = self.reads_ready.pop_front().expect("front exists");
            let reply = self.state.read(&read.command);
            self.reply(read.to, read.request, Outcome::Done(reply));
        }
    }
}

impl<R: fmt::Debug> fmt::Display for Output<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Send(message) => write!(f, "{message}"),
            Output::Persist(persist) => write!(f, "{persist}"),
            Output::SaveSnapshot(job) => write!(f, "save snapshot {}", job.last()),
            Output::SendSnapshotChunk(chunk) => write!(f, "{chunk}"),
            Output::SendEntries(append) => write!(f, "{append}"),
            Output::LoadEntries(load) => write!(f, "{load}"),
            Output::LoadSnapshot(whole) => {
                write!(f, "load received snapshot {} ({}B)", whole.last, whole.total)
            }
            Output::Reply { to, reply } => {
                write!(f, "reply to client {} #{}: {:?}", to.0, reply.request, reply.outcome)
            }
            Output::RoleChanged { role, term, leader } => match leader {
                Some(leader) => write!(f, "{role} t={term} leader={leader}"),
                None => write!(f, "{role} t={term} leader=none"),
            },
            Output::MembershipChanged { index, membership, standing } => {
                write!(f, "membership at {index}: {membership} ({standing})")
            }
        }
    }
}
