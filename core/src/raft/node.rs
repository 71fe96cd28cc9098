//! The Raft node: election and replication as one sans-IO state machine.

use core::fmt;
use std::collections::{BTreeMap, VecDeque};

use smallvec::SmallVec;

use crate::ids::{LogId, LogIndex, NodeId, Term};
use crate::prng::Prng;
use crate::raft::ballot::Ballot;
use crate::raft::chunk_to_send::ChunkToSend;
use crate::raft::compacted::CompactedEntries;
use crate::raft::config::{Config, ConfigError};
use crate::raft::counters::Counters;
use crate::raft::durability::Durability;
use crate::raft::early_appends::{EarlyAppends, ReceivedAppend};
use crate::raft::entries_to_load::EntriesToLoad;
use crate::raft::entries_to_send::EntriesToSend;
use crate::raft::entry::{Entry, Payload};
use crate::raft::incoming_snapshot::IncomingSnapshot;
use crate::raft::log::RaftLog;
use crate::raft::membership::{Membership, Standing};
use crate::raft::message::{AppendOutcome, Body, Message};
use crate::raft::pending_transfer::PendingTransfer;
use crate::raft::persist::{
    HardState, PartialSnapshot, Persist, PersistId, Recovered, SavedSnapshot, Snapshot,
};
use crate::raft::progress::Progress;
use crate::raft::reads::Reads;
use crate::raft::recovery::Recovery;
use crate::time::{Duration, Instant};

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows the leader of its term, if it knows one.
    Follower,
    /// Asks whether it could win an election, without changing its term (pre-vote).
    PreCandidate,
    /// Campaigns in its term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// An event fed to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A message from a peer.
    Message(Message),
    /// The instant of `poll_timeout` has come.
    Timeout,
    /// The driver made `Persist { id }`, and every persist before it, durable.
    Persisted {
        /// The id of the last durable persist.
        id: PersistId,
    },
    /// The driver read back the snapshot received from the leader that `Output::LoadSnapshot`
    /// asked for, whole and intact, and keeps it on its disk, ready to install: the node
    /// installs it (`Output::RestoreSnapshot`, then `Persist::install_received`).
    SnapshotLoaded {
        /// The snapshot, with the membership its chunks carried and its size.
        snapshot: SavedSnapshot,
    },
    /// The snapshot received that `Output::LoadSnapshot` asked for is damaged on the driver's
    /// disk (a checksum failed): the node receives it again from its first byte.
    SnapshotDamaged {
        /// The last entry of the snapshot asked for.
        last: LogId,
    },
    /// The driver could not read back from its disk the entries of an `Output::SendEntries`
    /// up to `through` (a checksum failed, or its log no longer holds them): the node sends
    /// none of the entries up to there from the disk again, and asks for a snapshot past them
    /// (`RaftNode::needs_snapshot`), which it then sends instead.
    LogUnreadable {
        /// The last entry asked for.
        through: LogIndex,
    },
    /// The driver read back from its disk the entries of the last `Output::LoadEntries`, and
    /// checked them (`EntriesToLoad::matches`): the node applies them next.
    EntriesLoaded {
        /// The entries, in order.
        entries: Vec<Entry>,
    },
}

/// Something a node wants done, drained with `poll_output`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this message (best effort: Raft tolerates loss, duplication and reordering).
    Send(Message),
    /// Make this durable, then answer `Input::Persisted { id }`.
    Persist(Persist),
    /// These entries are committed: apply them, in order. Every entry is handed out once.
    Apply(Vec<Entry>),
    /// Every byte of the snapshot being received from the leader is durable (the persists'
    /// `snapshot_chunk`s): read it back, checking its checksums (a driver with a state machine
    /// decodes it as it reads), and answer `Input::SnapshotLoaded`, or
    /// `Input::SnapshotDamaged` if a checksum fails. Asked once per snapshot received.
    LoadSnapshot(PartialSnapshot),
    /// Replace the state machine with this snapshot from the leader, the one of the last
    /// `Input::SnapshotLoaded` (as the driver read it back); entries after it follow as
    /// `Apply`.
    RestoreSnapshot(SavedSnapshot),
    /// Send this chunk of the snapshot the driver keeps on its disk (see
    /// `RaftNode::keep_snapshot_on_disk`): read it from the snapshot saved at `last`, if that
    /// is the one there, and send the message; otherwise drop it (it goes again later).
    SendSnapshotChunk(ChunkToSend),
    /// Send this append, whose entries are no longer in memory (`Config::log_cache_bytes`):
    /// read them from the log on the driver's disk, check them (`EntriesToSend::matches`) and
    /// send the message; if they cannot be read, drop it and answer `Input::LogUnreadable`.
    /// A message dropped for any other reason is lost as on the network: it goes again later.
    SendEntries(EntriesToSend),
    /// Read back these committed entries, which the node left on the driver's disk at its
    /// start (`Recovered::on_disk`), from the log on the disk, check them
    /// (`EntriesToLoad::matches`) and answer `Input::EntriesLoaded`: the node applies nothing
    /// past them until then. One batch at a time, asked for while the one before is applied.
    /// If they cannot be read, stop the node (its next
    /// start finds and cuts away what is damaged); never answer with other entries.
    LoadEntries(EntriesToLoad),
    /// The read registered with this `ctx` may be served once the state machine has applied
    /// `index`.
    ReadReady {
        /// The caller's name for the read.
        ctx: u64,
        /// The read point.
        index: LogIndex,
    },
    /// The read registered with this `ctx` failed: the node stopped leading first.
    ReadAborted {
        /// The caller's name for the read.
        ctx: u64,
        /// The leader this node knows of now, where to retry.
        hint: Option<NodeId>,
    },
    /// The node's role, term or known leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The leader of the term, if known.
        leader: Option<NodeId>,
    },
    /// The membership in force changed: an entry of it was appended (it is in force from then
    /// on, committed or not), a new leader truncated one (the one before is in force again), or
    /// a snapshot from the leader brought one. Not reported at start: see `RaftNode::status`.
    MembershipChanged {
        /// The entry it comes from (the snapshot point if the log holds no membership entry).
        index: LogIndex,
        /// The membership now in force.
        membership: Membership,
        /// Where this node stands in it: a node that is no longer a voter says so here, and
        /// no longer campaigns.
        standing: Standing,
    },
}

/// A proposal or read reached a node that is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this node knows of, where to retry.
    pub hint: Option<NodeId>,
}

/// Why a node could not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// The configuration is unusable.
    Config(ConfigError),
    /// The recovered log is not consecutive after the snapshot, or its terms go backwards.
    BrokenLog {
        /// The first entry that does not fit.
        at: LogId,
    },
    /// A recovered term or index lies beyond its maximum ([`Term::MAX`], [`LogIndex::MAX`]):
    /// the disk holds garbage that passed its checksums, or was written by something else.
    BeyondMaximum,
    /// A recovered membership (the snapshot's, or an entry's at `at`) cannot be used.
    InvalidMembership {
        /// The entry, or the snapshot point.
        at: LogIndex,
    },
    /// The recovered log holds entries of a term later than the recovered hard state, which
    /// a driver that makes the hard state durable first can never produce.
    HardStateBehindLog {
        /// The recovered hard state's term.
        hard_state_term: Term,
        /// The last entry's term.
        log_term: Term,
    },
}

/// A snapshot of a node's state for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// Its vote in that term.
    pub vote: Option<NodeId>,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its last log entry.
    pub last_log: LogId,
    /// Its commit index.
    pub commit: LogIndex,
    /// The last entry handed out for applying.
    pub applied: LogIndex,
    /// The last log index known durable on its own disk.
    pub durable: LogIndex,
    /// The last entry covered by its snapshot.
    pub snapshot_last: LogId,
    /// Entries held in memory (those after the snapshot).
    pub log_entries: usize,
    /// Bytes of the entries held in memory.
    pub log_bytes: usize,
    /// Bytes of the applied entries after the snapshot, in memory or (past the log cache) on
    /// the driver's disk only: what the next snapshot compacts.
    pub applied_log_bytes: usize,
    /// Entries after the snapshot no longer in memory (`Config::log_cache_bytes`).
    pub log_evicted_entries: usize,
    /// Its disk lost acknowledged writes and it has not yet caught up with a leader: it takes
    /// no part in elections.
    pub damaged: bool,
    /// The membership in force (the latest its log holds, committed or not).
    pub membership: Membership,
    /// The entry the membership comes from, or the snapshot point if the node knows it from a
    /// snapshot only (0: the initial membership). A change is in progress while it lies after
    /// `commit`, or while the membership is joint.
    pub membership_index: LogIndex,
    /// Where this node stands in the membership.
    pub standing: Standing,
}

/// One Raft node.
///
/// Calling order, as for every state machine of this crate: feed one event with
/// [`handle`](Self::handle) (or [`propose`](Self::propose)), then drain
/// [`poll_output`](Self::poll_output) until it returns `None`, then ask
/// [`poll_timeout`](Self::poll_timeout) when to call `handle(now, Input::Timeout)`. Every call
/// takes `now` from the driver's clock; the node never reads one.
///
/// Persistence is an output: the node never counts its own vote or entries as durable before
/// the driver acknowledges the `Persist` that carries them, and holds back every message that
/// promises durable state until then.
///
/// Three nodes elect a leader and commit a command, over a network that is a queue (the
/// crate's documentation says what a driver must do with each output):
///
/// ```
/// use std::collections::VecDeque;
///
/// use raftkv_core::raft::{Config, Input, Message, Output, Payload, RaftNode, Recovered, Role};
/// use raftkv_core::{Instant, NodeId};
///
/// /// Carries out `node`'s outputs: messages into the network, committed commands into
/// /// `applied`. A real driver writes each persist to disk before acknowledging it.
/// fn drain(
///     node: &mut RaftNode,
///     now: Instant,
///     net: &mut VecDeque<Message>,
///     applied: &mut Vec<Vec<u8>>,
/// ) {
///     loop {
///         let mut durable = None;
///         while let Some(output) = node.poll_output() {
///             match output {
///                 Output::Send(message) => net.push_back(message),
///                 Output::Persist(persist) => durable = Some(persist.id),
///                 Output::Apply(entries) => {
///                     for entry in entries {
///                         if let Payload::Command(command) = entry.payload {
///                             applied.push(command);
///                         }
///                     }
///                 }
///                 _ => {}
///             }
///         }
///         match durable {
///             Some(id) => node.handle(now, Input::Persisted { id }),
///             None => return,
///         }
///     }
/// }
///
/// let ids = [NodeId(1), NodeId(2), NodeId(3)];
/// let start = |id| RaftNode::new(Instant::ZERO, Config::new(id, ids), Recovered::default());
/// let mut nodes: Vec<RaftNode> = ids.into_iter().map(start).collect::<Result<_, _>>().unwrap();
/// let mut net: VecDeque<Message> = VecDeque::new();
/// let mut applied = vec![Vec::new(); 3];
/// let mut now = Instant::ZERO;
/// let mut proposed = false;
/// while applied.iter().any(|commands| commands.is_empty()) {
///     match net.pop_front() {
///         Some(message) => {
///             let to = nodes.iter().position(|node| node.id() == message.to).unwrap();
///             nodes[to].handle(now, Input::Message(message));
///         }
///         // Nothing in flight: move the clock to the next timer.
///         None => {
///             now = nodes.iter().filter_map(RaftNode::poll_timeout).min().unwrap();
///             for node in &mut nodes {
///                 node.handle(now, Input::Timeout); // Early is harmless.
///             }
///         }
///     }
///     if let Some(leader) = nodes.iter_mut().find(|node| node.role() == Role::Leader) {
///         if !proposed {
///             proposed = leader.propose(now, b"hello".to_vec()).is_ok();
///         }
///     }
///     for (node, applied) in nodes.iter_mut().zip(&mut applied) {
///         drain(node, now, &mut net, applied);
///     }
/// }
/// assert!(applied.iter().all(|commands| commands == &[b"hello".to_vec()]));
/// ```
pub struct RaftNode {
    pub(crate) config: Config,
    pub(crate) role: Role,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) leader: Option<NodeId>,
    /// The entries, and the memberships they hold.
    pub(crate) log: RaftLog,
    /// Leader only: one per node it replicates to (see `replication_targets`).
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// (Pre-)candidate only: the peers' answers so far.
    pub(crate) votes: Ballot,
    /// Pre-candidate only: the name of the current pre-vote round, echoed by the answers.
    pub(crate) pre_vote_round: u64,
    /// Candidate only: its vote for itself counts once this persist is acknowledged.
    pub(crate) own_vote_persist: PersistId,
    pub(crate) election_deadline: Instant,
    pub(crate) heartbeat_deadline: Instant,
    pub(crate) quorum_check_deadline: Instant,
    /// When the current leader was last heard from.
    pub(crate) leader_contact: Option<Instant>,
    /// With `read_lease`: no vote for a candidate no leader sent before this (see
    /// `raft::lease`). It outlives terms and roles; `Instant::ZERO` without `read_lease`.
    pub(crate) vote_promise_until: Instant,
    /// Leader only: entries or a new commit index are waiting to go out to every peer.
    pub(crate) broadcast_due: bool,
    /// Leader only: a leadership transfer in progress.
    pub(crate) transfer: Option<PendingTransfer>,
    /// Leader only: reads in progress.
    pub(crate) reads: Reads,
    /// The latest snapshot, kept to send to followers that fall behind.
    pub(crate) snapshot: Option<Snapshot>,
    /// The snapshot's data lives on the driver's disk, of this many bytes, not in `snapshot`
    /// (whose data is empty then): chunks go out as `Output::SendSnapshotChunk`.
    pub(crate) snapshot_on_disk: Option<u64>,
    /// The entries the last snapshot installed from the leader replaced
    /// (`take_dropped_by_install`).
    pub(crate) dropped_by_install: Option<CompactedEntries>,
    /// A snapshot being received from the leader.
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
    /// The driver could not read the entries up to here back from its disk
    /// (`Input::LogUnreadable`): none of them is sent from the disk until a snapshot covers
    /// them. `LogIndex(0)`: none.
    pub(crate) log_unreadable_through: LogIndex,
    pub(crate) durability: Durability,
    /// Whether the node may vote and campaign, or waits to catch up after a damaged disk.
    pub(crate) recovery: Recovery,
    /// Follower only: appends of its leader that arrived ahead of a gap in its log.
    pub(crate) early_appends: EarlyAppends,
    /// Learner only: since it last heard from a leader, it refused a candidate whose log is
    /// behind its own, so the voters may need its log to elect anyone (see `may_campaign`).
    pub(crate) log_needed: bool,
    pub(crate) now: Instant,
    pub(crate) rng: Prng,
    pub(crate) outbox: VecDeque<Output>,
    reported: Option<(Role, Term, Option<NodeId>)>,
    /// The membership last reported with `Output::MembershipChanged`.
    reported_membership: Membership,
    pub(crate) counters: Counters,
}

impl RaftNode {
    /// Starts a node from what its disk returned (`Recovered::default()` for a new node). The
    /// membership in force is recomputed from the snapshot's and the membership entries of the
    /// recovered log.
    pub fn new(now: Instant, config: Config, recovered: Recovered) -> Result<RaftNode, StartError> {
        config.validate().map_err(StartError::Config)?;
        let durable = check_recovered(&recovered)?;
        let Recovered { hard_state, mut snapshot, on_disk, entries, partial_snapshot } = recovered;
        let snapshot_last = snapshot.as_ref().map_or(LogId::ZERO, |s| s.last);
        // One no newer than the snapshot held is of no use; one past its size, of no sense.
        let incoming_snapshot = partial_snapshot
            .filter(|partial| {
                partial.last.index > snapshot_last.index
                    && partial.last.is_valid()
                    && partial.received <= partial.total
            })
            .map(IncomingSnapshot::resumed);
        if let Some(snapshot) = snapshot.as_mut().filter(|s| s.membership.is_empty()) {
            // Stored before snapshots recorded their membership: it never changed then.
            snapshot.membership = config.initial_membership.clone();
        }
        let membership =
            snapshot.as_ref().map_or(&config.initial_membership, |s| &s.membership).clone();
        let log = RaftLog::new(snapshot_last, membership, on_disk, entries);
        let rng = Prng::seeded(config.seed);
        let mut node = RaftNode {
            role: Role::Follower,
            term: hard_state.term,
            vote: hard_state.vote,
            leader: None,
            reported_membership: log.membership().clone(),
            log,
            progress: BTreeMap::new(),
            votes: Ballot::default(),
            pre_vote_round: 0,
            own_vote_persist: PersistId(0),
            election_deadline: now,
            heartbeat_deadline: now,
            quorum_check_deadline: now,
            leader_contact: None,
            vote_promise_until: Instant::ZERO,
            broadcast_due: false,
            transfer: None,
            reads: Reads::default(),
            snapshot,
            snapshot_on_disk: None,
            dropped_by_install: None,
            incoming_snapshot,
            log_unreadable_through: LogIndex(0),
            durability: Durability::new(durable),
            recovery: Recovery::new(false, 0),
            early_appends: EarlyAppends::new(config.max_early_appends),
            log_needed: false,
            now,
            rng,
            outbox: VecDeque::new(),
            reported: None,
            counters: Counters::default(),
            config,
        };
        if hard_state.damaged {
            if node.is_sole_voter() {
                // Nobody to catch up from: it is the only copy, and says so durably.
                node.durability.hard_state_changed();
            } else {
                node.recovery = Recovery::new(true, node.rng.next_u64());
            }
        }
        node.reset_election_timer();
        // What it promised before a restart is forgotten; this covers it.
        node.promise_votes();
        Ok(node)
    }

    /// Feeds one event.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = self.now.max(now);
        match input {
            Input::Message(message) => self.step(message),
            Input::Timeout => self.on_timeout(),
            Input::Persisted { id } => self.on_persisted(id),
            Input::SnapshotLoaded { snapshot } => self.on_snapshot_loaded(snapshot),
            Input::SnapshotDamaged { last } => self.on_snapshot_damaged(last),
            Input::LogUnreadable { through } => self.on_log_unreadable(through),
            Input::EntriesLoaded { entries } => {
                if !self.log.on_loaded(entries) {
                    self.counters.dropped_bad_loads += 1;
                }
            }
        }
    }

    /// The next thing to do, in order; `None` once drained.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outbox.is_empty() {
            self.flush();
        }
        self.outbox.pop_front()
    }

    /// When to call `handle(now, Input::Timeout)`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.role {
            Role::Leader => self.heartbeat_deadline.min(self.quorum_check_deadline),
            Role::Follower | Role::PreCandidate | Role::Candidate => self.election_deadline,
        })
    }

    /// Starts a pre-vote now instead of waiting for the election timeout (used by operators
    /// and tests). A leader ignores it, and so do a node whose disk was damaged and that has
    /// not caught up yet, a node that is not a voter, and, with `read_lease`, a node within
    /// its vote promise (a minimal election timeout after it started or last heard from a
    /// leader; counted in `dropped_in_lease`).
    pub fn campaign(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.role == Role::Leader {
            return;
        }
        if self.bound_by_vote_promise() {
            self.counters.dropped_in_lease += 1;
            return;
        }
        self.start_pre_vote();
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The node's term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The leader this node knows of in its term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The highest index known committed (as in `status`, without building one).
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed()
    }

    /// The last entry handed out for applying (as in `status`, without building one).
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied()
    }

    /// Bytes of the applied entries after the snapshot, in memory or not: what the next
    /// snapshot compacts (as in `status`, without building one).
    pub fn applied_log_bytes(&self) -> usize {
        self.log.applied_bytes()
    }

    /// The term of the entry at `index`, if the log holds it (or it is the snapshot point).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term_at(index)
    }

    /// The entry at `index`, if the log holds it in memory.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// What the node dropped and did so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The node's state, for operators and tests.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            last_log: self.log.last_id(),
            commit: self.log.committed(),
            applied: self.log.applied(),
            durable: self.durability.durable_index(),
            snapshot_last: self.log.snapshot_last(),
            log_entries: self.log.len(),
            log_bytes: self.log.bytes(),
            applied_log_bytes: self.log.applied_bytes(),
            log_evicted_entries: self.log.evicted_len(),
            damaged: self.recovery.is_damaged(),
            membership: self.log.membership().clone(),
            membership_index: self.log.membership_index(),
            standing: self.standing(),
        }
    }

    /// The membership in force: the latest the log holds, committed or not.
    pub fn membership(&self) -> &Membership {
        self.log.membership()
    }

    /// The membership the one in force replaced, if the log still holds it. Until the one in
    /// force commits, a leader still replicates to the members of this one (those it removed
    /// must learn that it did), so a driver keeps reaching them.
    pub fn previous_membership(&self) -> Option<&Membership> {
        self.log.previous_membership()
    }

    /// Panics if the node's state breaks an invariant: a well-formed log no later than the
    /// term, a leader that voted for itself durably and tracks exactly the nodes it replicates
    /// to, no leader state outside a leader, a damaged node or a removed one out of elections,
    /// memberships as the change rules leave them. Costs time linear in the number of members,
    /// in-flight messages and membership entries, not in the log; the simulator calls it after
    /// every step.
    pub fn check_invariants(&self) {
        self.log.check_invariants();
        let last = self.log.last_id();
        assert!(
            last.term <= self.term && self.term <= Term::MAX,
            "log term {last} past {}",
            self.term
        );
        self.durability.check_invariants(last.index);
        self.early_appends.check_invariants();
        self.reads.check_invariants(self.role == Role::Leader, self.now);
        self.check_lease_invariants();
        let id = self.config.id;
        match self.role {
            Role::Leader => self.check_leader_invariants(),
            Role::Candidate | Role::PreCandidate | Role::Follower => {
                assert!(
                    self.progress.is_empty() && self.transfer.is_none(),
                    "leader state kept after leading"
                );
                assert!(self.leader != Some(id), "a non-leader names itself leader");
            }
        }
        match self.role {
            Role::Candidate => {
                assert_eq!(self.vote, Some(id), "a candidate that did not vote for itself")
            }
            Role::PreCandidate | Role::Follower | Role::Leader => {}
        }
        if matches!(self.role, Role::Candidate | Role::PreCandidate) {
            assert!(self.may_campaign(), "a node that may not campaign in an election");
        }
        if self.recovery.is_damaged() {
            assert_eq!(self.role, Role::Follower, "a damaged node in an election");
        }
        if let Some(snapshot) = &self.snapshot {
            assert!(
                snapshot.last == self.log.snapshot_last()
                    && &snapshot.membership == self.log.snapshot_membership(),
                "the snapshot kept is not the log's"
            );
        }
    }

    /// A leader's share of `check_invariants`: its vote, its progress, and the change rules (it
    /// leaves a joint membership as soon as it commits, keeps at most one membership entry
    /// uncommitted once it committed in its term, and leads as a non-voter only until both the
    /// membership in force and an entry of its term have committed).
    fn check_leader_invariants(&self) {
        let id = self.config.id;
        assert!(
            self.vote == Some(id) && self.leader == Some(id),
            "a leader that did not vote for itself"
        );
        assert!(
            self.durability.is_acknowledged(self.own_vote_persist),
            "a leader whose vote is not durable"
        );
        let membership = self.log.membership();
        if self.is_changing_membership() || membership.is_joint() {
            let tracked: Vec<NodeId> = self.progress.keys().copied().collect();
            assert_eq!(tracked, self.replication_targets(), "progress not kept for the targets");
        } else {
            // As many as the members besides this node, and each of them: exactly them.
            let others = membership.voters().len() + membership.learners().len()
                - usize::from(membership.is_member(id));
            let members = membership.voters().iter().chain(membership.learners());
            assert!(
                self.progress.len() == others
                    && members
                        .filter(|&&member| member != id)
                        .all(|m| self.progress.contains_key(m)),
                "progress not kept for the members"
            );
        }
        for progress in self.progress.values() {
            progress.check_invariants(self.log.last_index());
        }
        let uncommitted = self.is_changing_membership();
        assert!(!membership.is_joint() || uncommitted, "a leader stays in a committed joint state");
        let committed_in_term = self.log.term_at(self.log.committed()) == Some(self.term);
        assert!(
            membership.is_voter(id) || uncommitted || !committed_in_term,
            "a non-voter kept leading past the commit that let it hand over"
        );
        if self.log.term_at(self.log.committed()) == Some(self.term) {
            assert!(self.log.uncommitted_memberships() <= 1, "two membership changes at once");
        }
    }

    pub(crate) fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, damaged: self.recovery.is_damaged() }
    }

    /// Leader only: the highest value a quorum of the membership in force reaches, where this
    /// node has `own` (if it votes) and each other voter what `of_peer` says of its progress
    /// (the commit index, a confirmed read round).
    pub(crate) fn leader_quorum_value<T: Ord + Copy>(
        &self,
        own: T,
        of_peer: impl Fn(&Progress) -> T,
    ) -> T {
        let id = self.config.id;
        self.log.membership().quorum().highest_reached(|voter| match voter == id {
            true => own,
            false => of_peer(self.progress.get(&voter).expect("a leader tracks every voter")),
        })
    }

    /// Whether this node votes in the membership in force.
    pub(crate) fn is_voter(&self) -> bool {
        self.log.membership().is_voter(self.config.id)
    }

    /// Whether this node may campaign: it votes in the membership in force, or that membership
    /// removed it but is not committed as far as this node knows, or it is a learner whose log
    /// a candidate showed to be needed.
    ///
    /// A node removed by an entry that may never commit is still needed by the membership
    /// before it: if it stayed out, the other voters of that membership might never reach a
    /// majority, the removed node's log holding entries theirs lack. A learner may be needed
    /// the same way: a voter that appended the learner's promotion asks it for its vote, and
    /// it must refuse if its log is ahead (seed 147: the one voter holding the same log was
    /// down, and no voter could win). Either campaigns under the membership in force, where
    /// its own vote does not count, so the voters' majority alone elects it, as safe as any
    /// election; once an entry of its term commits, the voters hold its log and it hands
    /// leadership to one of them (`advance_membership`).
    pub(crate) fn may_campaign(&self) -> bool {
        let id = self.config.id;
        self.is_voter()
            || (self.is_changing_membership()
                && self.log.previous_membership().is_some_and(|previous| previous.is_voter(id)))
            || (self.log_needed && self.log.membership().is_learner(id))
    }

    /// Whether this node alone makes a quorum (a cluster of one voter).
    pub(crate) fn is_sole_voter(&self) -> bool {
        let id = self.config.id;
        self.is_voter() && self.log.membership().quorum().is_acknowledged(|voter| voter == id)
    }

    /// The voters other than this node, to ask for votes.
    pub(crate) fn other_voters(&self) -> Vec<NodeId> {
        let mut voters = self.log.membership().all_voters();
        voters.retain(|&voter| voter != self.config.id);
        voters
    }

    /// Leader only: the nodes it tracks progress of, in id order.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.progress.keys().copied().collect()
    }

    pub(crate) fn send(&mut self, to: NodeId, term: Term, body: Body) {
        let message = Message { from: self.config.id, to, term, body };
        self.outbox.push_back(Output::Send(message));
    }

    /// Answers an append: an acceptance promises the log up to its match, so it leaves once
    /// that is durable; a rejection promises nothing. A damaged node names its recovery.
    pub(crate) fn send_append_reply(
        &mut self,
        to: NodeId,
        read_round: u64,
        outcome: AppendOutcome,
    ) {
        let body = Body::AppendReply { read_round, outcome, recovering: self.recovery.nonce() };
        match outcome {
            AppendOutcome::Accepted { .. } => self.send_when_durable(to, body),
            AppendOutcome::Rejected { .. } => self.send(to, self.term, body),
        }
    }

    /// Sends a message that promises the node's current state once that state is durable.
    pub(crate) fn send_when_durable(&mut self, to: NodeId, body: Body) {
        let message = Message { from: self.config.id, to, term: self.term, body };
        if let Some(message) = self.durability.hold_until_durable(message) {
            self.outbox.push_back(Output::Send(message));
        }
    }

    pub(crate) fn reset_election_timer(&mut self) {
        let timeout_ms = self.rng.range_inclusive(
            self.config.election_timeout_ms_min,
            self.config.election_timeout_ms_max,
        );
        self.election_deadline = self.now + Duration::from_millis(timeout_ms);
    }

    /// Whether this node has heard from a live leader within the minimal election timeout, or
    /// is that leader: then it refuses to help depose it (leader stickiness, thesis §9.6).
    /// With `read_lease`, also while its vote promise holds (see `raft::lease`).
    pub(crate) fn in_leader_lease(&self) -> bool {
        match self.role {
            Role::Leader => true,
            Role::Follower => {
                let heard = self.leader.is_some()
                    && self.leader_contact.is_some_and(|contact| {
                        self.now
                            < contact + Duration::from_millis(self.config.election_timeout_ms_min)
                    });
                heard || self.bound_by_vote_promise()
            }
            Role::PreCandidate | Role::Candidate => false,
        }
    }

    fn step(&mut self, message: Message) {
        if message.validate().is_err() {
            self.counters.dropped_malformed += 1;
            return;
        }
        // A message from a node outside the membership is processed all the same (Raft §4.1):
        // a leader adding this node is not in the membership it knows yet, and a candidate of a
        // newer membership needs its vote. Replies count only from nodes this one tracks.
        if message.to != self.config.id {
            self.counters.dropped_misaddressed += 1;
            return;
        }
        if message.term > self.term {
            match message.body {
                // Pre-votes carry the term the sender would campaign in; they change nothing.
                Body::PreVote { .. } | Body::PreVoteReply { granted: true, .. } => {}
                Body::Vote { transfer: false, .. } if self.in_leader_lease() => {
                    self.counters.dropped_in_lease += 1;
                    return;
                }
                Body::Append { .. } | Body::InstallSnapshot { .. } => {
                    self.become_follower(message.term, Some(message.from))
                }
                _ => self.become_follower(message.term, None),
            }
        } else if message.term < self.term {
            self.counters.dropped_stale_term += 1;
            self.answer_stale(message);
            return;
        }
        let from = message.from;
        let term = message.term;
        match message.body {
            Body::PreVote { last, round } => self.on_pre_vote(from, term, last, round),
            Body::Vote { last, transfer } => self.on_vote(from, last, transfer),
            Body::TimeoutNow => self.on_timeout_now(from),
            Body::PreVoteReply { granted, round } => {
                self.on_pre_vote_reply(from, term, granted, round)
            }
            Body::VoteReply { granted } => self.on_vote_reply(from, term, granted),
            Body::Append { prev, entries, commit, read_round, recovery, pipelined } => {
                let append = ReceivedAppend { from, term, prev, entries, commit, read_round };
                self.on_append(append, recovery, pipelined)
            }
            Body::AppendReply { read_round, outcome, recovering } => {
                self.on_append_reply(from, read_round, outcome, recovering)
            }
            Body::InstallSnapshot { last, membership, total, offset, chunk } => {
                self.on_install_snapshot(from, last, membership, total, offset, chunk)
            }
            Body::InstallSnapshotReply { last, received } => {
                self.on_install_snapshot_reply(from, last, received)
            }
        }
    }

    /// A message from an older term. A stale leader or pre-candidate is told the current term,
    /// so it steps down; without this answer a leader cut off in a minority, or a node whose
    /// term ran ahead, could keep the cluster from settling.
    fn answer_stale(&mut self, message: Message) {
        match message.body {
            Body::InstallSnapshot { .. } => {
                let outcome = AppendOutcome::Accepted { match_index: self.log.committed() };
                // It acknowledges the log up to the commit index, which may not be durable yet
                // here; and the sender may lead this term by the time it arrives.
                self.send_append_reply(message.from, 0, outcome);
            }
            Body::Append { prev, .. } => {
                let hint = self.log.conflict_hint(prev.index);
                let outcome = AppendOutcome::Rejected { prev_index: prev.index, hint };
                self.send_append_reply(message.from, 0, outcome);
            }
            Body::PreVote { round, .. } => {
                self.send(message.from, self.term, Body::PreVoteReply { granted: false, round })
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self) {
        match self.role {
            Role::Leader => {
                self.expire_transfer();
                if self.now >= self.quorum_check_deadline {
                    if !self.quorum_active() {
                        self.become_follower(self.term, None);
                        return;
                    }
                    self.quorum_check_deadline =
                        self.now + Duration::from_millis(self.config.election_timeout_ms_min);
                }
                if self.now >= self.heartbeat_deadline {
                    self.heartbeat_deadline =
                        self.now + Duration::from_millis(self.config.heartbeat_interval_ms);
                    self.begin_heartbeat_round();
                    self.broadcast_heartbeat();
                }
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                if self.now >= self.election_deadline {
                    self.start_pre_vote();
                }
            }
        }
    }

    /// Check-quorum: a leader that has not heard from a majority within a minimal election
    /// timeout steps down, so that a leader cut off in a minority stops accepting requests.
    fn quorum_active(&mut self) -> bool {
        let active: SmallVec<[(NodeId, bool); 8]> = self
            .progress
            .iter_mut()
            .map(|(&peer, progress)| (peer, progress.take_recent_active()))
            .collect();
        let id = self.config.id;
        self.log.membership().quorum().is_acknowledged(|voter| {
            voter == id || active.iter().any(|&(peer, recent)| peer == voter && recent)
        })
    }

    fn on_persisted(&mut self, id: PersistId) {
        let Ok(released) = self.durability.acknowledge(id) else {
            self.counters.dropped_bad_persist_ack += 1;
            return;
        };
        self.outbox.extend(released.map(Output::Send));
        if self.recovery.on_durable(self.durability.durable_index()) {
            self.durability.hard_state_changed(); // No longer damaged.
        }
        match self.role {
            Role::Leader => self.maybe_commit(),
            Role::Candidate => self.tally_votes(false),
            Role::Follower | Role::PreCandidate => {}
        }
    }

    /// Turns deferred work into outputs: one append per peer for everything proposed since the
    /// last drain (batching), the pending persist, a role change, committed entries.
    fn flush(&mut self) {
        if self.role == Role::Leader {
            if self.take_read_round_due() {
                self.broadcast_heartbeat();
            } else if std::mem::take(&mut self.broadcast_due) {
                for peer in self.peers() {
                    self.replicate_to(peer);
                }
            }
        }
        if let Some(persist) = self.durability.take_persist(&self.log, self.hard_state()) {
            self.outbox.push_back(Output::Persist(persist));
        }
        self.request_whole_snapshot();
        // A role change goes before the entries it let commit: a deposed leader learns that
        // it lost leadership before it applies a later leader's entry where its own proposal
        // was.
        let now_reported = (self.role, self.term, self.leader);
        if self.reported != Some(now_reported) {
            self.reported = Some(now_reported);
            self.outbox.push_back(Output::RoleChanged {
                role: self.role,
                term: self.term,
                leader: self.leader,
            });
        }
        if &self.reported_membership != self.log.membership() {
            self.reported_membership = self.log.membership().clone();
            self.outbox.push_back(Output::MembershipChanged {
                index: self.log.membership_index(),
                membership: self.reported_membership.clone(),
                standing: self.standing(),
            });
        }
        // The next batch from the disk is asked for before the one loaded is handed out, so
        // that the driver reads it while the entries are applied.
        if let Some(load) = self.log.entries_to_load(usize::MAX, self.load_bytes()) {
            self.counters.loads_from_disk += 1;
            self.outbox.push_back(Output::LoadEntries(load));
        }
        let committed = self.log.take_committed(self.config.max_entries_per_append);
        if !committed.is_empty() {
            self.outbox.push_back(Output::Apply(committed));
        }
        if let Some(budget) = self.config.log_cache_bytes {
            // Only what the driver's disk holds, and no entry still to be applied.
            let floor = self.log.applied().min(self.durability.durable_index());
            self.log.evict_applied(floor, budget);
        }
    }

    /// Bytes of entries to apply that one `Output::LoadEntries` asks for (at least one entry):
    /// the log cache's worth, which the node holds of applied entries anyway, or one append's
    /// if more (a cache of 0 would load one entry at a time). Few, large reads: each costs the
    /// driver a round trip to its disk.
    fn load_bytes(&self) -> usize {
        let cache = self.config.log_cache_bytes.unwrap_or(0);
        cache.max(self.config.max_bytes_per_append)
    }
}

/// Checks what a disk returned: terms and indexes within their maxima, a consecutive log
/// after the snapshot whose terms never go back and that no later than the hard state, usable
/// memberships. Returns the last index, durable by definition.
fn check_recovered(recovered: &Recovered) -> Result<LogIndex, StartError> {
    let snapshot_last = recovered.snapshot.as_ref().map_or(LogId::ZERO, |s| s.last);
    let last_recovered = recovered.entries.last().map_or(snapshot_last, Entry::id);
    let hard_state = recovered.hard_state;
    if hard_state.term > Term::MAX || !snapshot_last.is_valid() || !last_recovered.is_valid() {
        return Err(StartError::BeyondMaximum);
    }
    if snapshot_last.term > hard_state.term {
        return Err(StartError::HardStateBehindLog {
            hard_state_term: hard_state.term,
            log_term: snapshot_last.term,
        });
    }
    let mut expected = snapshot_last;
    let on_disk = &recovered.on_disk;
    if let (Some(first), Some(last)) = (on_disk.first_id(), on_disk.last_id()) {
        if !last.is_valid() {
            return Err(StartError::BeyondMaximum);
        }
        if first.index != expected.index.next() || first.term < expected.term {
            return Err(StartError::BrokenLog { at: first });
        }
        for (id, membership) in on_disk.memberships() {
            let invalid = StartError::InvalidMembership { at: id.index };
            membership.validate().map_err(|_| invalid)?;
        }
        expected = last;
    }
    for entry in &recovered.entries {
        if entry.index != expected.index.next() || entry.term < expected.term {
            return Err(StartError::BrokenLog { at: entry.id() });
        }
        expected = entry.id();
        if let Payload::Membership(membership) = &entry.payload {
            let invalid = StartError::InvalidMembership { at: entry.index };
            membership.validate().map_err(|_| invalid)?;
        }
    }
    if expected.term > hard_state.term {
        return Err(StartError::HardStateBehindLog {
            hard_state_term: hard_state.term,
            log_term: expected.term,
        });
    }
    // An empty membership is that of a snapshot stored before snapshots recorded it.
    if let Some(snapshot) = recovered.snapshot.as_ref().filter(|s| !s.membership.is_empty()) {
        let invalid = StartError::InvalidMembership { at: snapshot_last.index };
        snapshot.membership.validate().map_err(|_| invalid)?;
    }
    Ok(expected.index)
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Follower => "Follower",
            Role::PreCandidate => "PreCandidate",
            Role::Candidate => "Candidate",
            Role::Leader => "Leader",
        })
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Send(message) => write!(f, "{message}"),
            Output::Persist(persist) => write!(f, "{persist}"),
            Output::Apply(entries) => match (entries.first(), entries.last()) {
                (Some(first), Some(last)) => write!(f, "apply {}..{}", first.index, last.index),
                _ => write!(f, "apply nothing"),
            },
            Output::SendSnapshotChunk(chunk) => write!(f, "{chunk}"),
            Output::SendEntries(append) => write!(f, "{append}"),
            Output::LoadEntries(load) => write!(f, "{load}"),
            Output::LoadSnapshot(whole) => {
                write!(f, "load received snapshot {} ({}B)", whole.last, whole.total)
            }
            Output::RestoreSnapshot(snapshot) => {
                write!(f, "restore snapshot {} ({}B)", snapshot.last, snapshot.bytes)
            }
            Output::ReadReady { ctx, index } => write!(f, "read #{ctx} ready at {index}"),
            Output::ReadAborted { ctx, .. } => write!(f, "read #{ctx} aborted"),
            Output::RoleChanged { role, term, leader } => {
                write!(f, "{role} t={term}")?;
                match leader {
                    Some(leader) => write!(f, " leader={leader}"),
                    None => write!(f, " leader=none"),
                }
            }
            Output::MembershipChanged { index, membership, standing } => {
                write!(f, "membership at {index}: {membership} ({standing})")
            }
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(error) => write!(f, "invalid configuration: {error}"),
            StartError::BeyondMaximum => {
                write!(f, "recovered term or index beyond the largest valid one")
            }
            StartError::BrokenLog { at } => {
                write!(
                    f,
                    "recovered log is broken at entry {at} (not consecutive or term goes back)"
                )
            }
            StartError::InvalidMembership { at } => {
                write!(f, "recovered membership at {at} cannot be used")
            }
            StartError::HardStateBehindLog { hard_state_term, log_term } => write!(
                f,
                "recovered log reaches term {log_term} but the hard state only term {hard_state_term}"
            ),
        }
    }
}

impl std::error::Error for StartError {}
