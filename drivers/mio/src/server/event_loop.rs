//! The event loop: one thread, one mio poll, the replica, and every socket.
//!
//! Each turn: wait for readiness or the replica's next timeout; read every ready socket and
//! feed every frame to the replica without draining it in between (so the requests of many
//! clients share one append per follower); feed what the disk thread made durable; fire the
//! timeout if due; then drain the replica once and write every connection that has something
//! queued, one system call per connection.

use std::fs::File;
use std::ops::ControlFlow;
use std::sync::Arc;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use raftkv_core::kv::KvStore;
use raftkv_core::protocol::{ClientReply, Outcome, Reject};
use raftkv_core::raft::{self, Persist, PersistId, RaftNode, Recovered, Role, Standing};
use raftkv_core::server::{Input, Output, Replica, ReplicaConfig};
use raftkv_core::{Duration, Instant, NodeId};
use raftkv_storage::{DEFAULT_ZERO_FILL_BYTES, OpenReport, RealFs, Saved, Storage, StorageOptions};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::server::admin;
use crate::server::backup::BackupSource;
use crate::server::data_lock;
use crate::server::directory::Directory;
use crate::server::disk_thread::{DiskThread, ReadBack};
use crate::server::error::ServeError;
use crate::server::fd_limit;
use crate::server::front::Front;
use crate::server::inbound::{self, Delivery, InboundConnections};
use crate::server::instruments::Instruments;
use crate::server::join;
use crate::server::loop_counts::LoopCounts;
use crate::server::metrics::{self, Figures, LinkFigures, Published};
use crate::server::metrics_http;
use crate::server::options::{InlineSync, ServeOptions};
use crate::server::own_snapshot;
use crate::server::peer_record;
use crate::server::peer_set::PeerSet;
use crate::server::peers::PeerLink;
use crate::server::snapshot_chunks::SnapshotChunks;
use crate::server::snapshot_loader::{LoadFailed, SnapshotLoader};
use crate::server::snapshot_thread::SnapshotThread;
use crate::wire::{MembershipReport, NodeStatus};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The front's poll, and the connection its requests come from as the replica sees it.
const FRONT: Token = Token(3);
/// Peer links use tokens from here, one per peer at once.
const FIRST_PEER: usize = 16;
/// Accepted connections use tokens from here, never reused.
const FIRST_INBOUND: usize = 1 << 20;
/// A turn of the event loop this long is logged: every request waited for it. (On a busy
/// machine the loop's thread may also have waited for a core.)
const SLOW_TURN: std::time::Duration = std::time::Duration::from_millis(50);

/// What became of a turn's persists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WrittenOut {
    /// The turn had none.
    Nothing,
    /// Made durable on the loop's thread: the replica may hear of it at once.
    SyncedHere,
    /// Handed to the disk thread, which wakes the loop once they are durable.
    Queued,
}

/// The state of the event loop.
struct Server {
    options: ServeOptions,
    poll: Poll,
    listener: TcpListener,
    replica: Replica<KvStore>,
    disk: DiskThread,
    snapshots: SnapshotThread,
    snapshot_chunks: SnapshotChunks,
    /// Reads back the snapshots received whole from a leader.
    snapshot_loader: SnapshotLoader,
    /// The snapshot file, as backups read it.
    backups: BackupSource,
    inbound: InboundConnections,
    peers: PeerSet,
    /// Who the peers are and where: the links and the inbound connections follow it.
    directory: Directory,
    signals: Signals,
    clock: Clock,
    /// The last persist acknowledged to the replica.
    acknowledged: PersistId,
    /// Persists of this turn, handed to the disk thread after the messages went out.
    persists: Vec<Persist>,
    /// A signal asked to stop: stop once leadership is handed over, or at this instant.
    stop_at: Option<Instant>,
    /// When to look for connections past a timeout.
    next_sweep: Instant,
    /// Where the figures for `/metrics` and `/health` go, when asked for.
    metrics: Option<Published>,
    /// When to publish them next.
    next_publish: Instant,
    /// Entries and snapshots the replica skipped because they did not decode, as last logged.
    undecodable_logged: u64,
    /// What the loop counts for them.
    counts: LoopCounts,
    /// Clients of another protocol served in this loop (the Redis listener), if any.
    front: Option<Box<dyn Front>>,
    /// Where the loop records how long its turns take.
    instruments: Instruments,
    /// The front's poll woke this one since the front's last turn.
    front_woke: bool,
}

/// Runs node `options.id`, and `front` if given, until SIGINT or SIGTERM (`Ok`) or a fatal
/// error.
pub(crate) fn run(options: ServeOptions, front: Option<Box<dyn Front>>) -> Result<(), ServeError> {
    let mut server = start(options, front.is_some())?;
    if let Some(front) = &front {
        let fd = front.poll_fd();
        server
            .poll
            .registry()
            .register(&mut mio::unix::SourceFd(&fd), FRONT, Interest::READABLE)
            .map_err(ServeError::RegisterFront)?;
    }
    server.front = front;
    let result = server.serve();
    server.stop();
    result
}

/// Opens the data directory, sets up the poll and its sources, and starts the replica;
/// `with_front`: a front (the Redis listener) will accept connections too.
fn start(options: ServeOptions, with_front: bool) -> Result<Server, ServeError> {
    let clock = Clock::new();
    let (storage, recovered, lock) = open_data(&options)?;
    let replica = start_replica(&options, recovered, clock.now())?;
    let raft = replica.raft();
    let directory = directory(&options, raft)?;
    warn_if_removed(raft);
    let client_listeners = 1 + u64::from(with_front);
    fd_limit::raise(&options.connection_limits, client_listeners, directory.len());
    let poll = Poll::new().map_err(ServeError::CreatePoll)?;
    let mut listener = TcpListener::bind(options.listen)
        .map_err(|source| ServeError::Listen { address: options.listen, source })?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(ServeError::RegisterListener)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(ServeError::CreateWaker)?);
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(ServeError::CatchSignals)?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(ServeError::RegisterSignals)?;
    let instruments = Instruments::default();
    let snapshots =
        SnapshotThread::spawn(storage.snapshot_saver(), Arc::clone(&waker), instruments.clone())
            .map_err(ServeError::StartDiskThread)?;
    let snapshot_loader =
        SnapshotLoader::spawn(options.data.clone(), options.limits, Arc::clone(&waker))
            .map_err(ServeError::StartDiskThread)?;
    let disk = DiskThread::spawn(storage, lock, waker, instruments.clone())
        .map_err(ServeError::StartDiskThread)?;
    let now = clock.now();
    let mut peers = PeerSet::new(options.id, &options.cluster, FIRST_PEER, FIRST_INBOUND);
    let (members, retired) = (directory.peers(options.id), directory.retired());
    peers.sync(poll.registry(), &members, retired, directory.is_joining(), now);
    let mut inbound = InboundConnections::new(FIRST_INBOUND);
    inbound.set_directory(&directory);
    let snapshot_chunks = SnapshotChunks::new(options.data.clone());
    let backups = BackupSource::new(options.data.clone());
    let metrics = start_metrics(&options, instruments.clone())?;
    info!(
        node = %options.id,
        listen = %options.listen,
        cluster = %options.cluster,
        peers = directory.peers(options.id).len(),
        tls = options.tls.is_some(),
        "serving"
    );
    Ok(Server {
        options,
        poll,
        listener,
        replica,
        disk,
        snapshots,
        snapshot_chunks,
        snapshot_loader,
        backups,
        inbound,
        peers,
        directory,
        signals,
        clock,
        acknowledged: PersistId(0),
        persists: Vec::new(),
        stop_at: None,
        next_sweep: now,
        metrics,
        next_publish: now,
        undecodable_logged: 0,
        counts: LoopCounts::default(),
        front: None,
        front_woke: false,
        instruments,
    })
}

/// Listens for `/metrics` and `/health` if asked to, on a thread of their own.
fn start_metrics(
    options: &ServeOptions,
    instruments: Instruments,
) -> Result<Option<Published>, ServeError> {
    let Some(address) = options.metrics_listen else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(address)
        .map_err(|source| ServeError::Listen { address, source })?;
    let published = Published::new(instruments);
    metrics_http::spawn(listener, published.clone(), options.health_max_apply_lag)
        .map_err(ServeError::StartMetricsThread)?;
    info!(%address, "serving /metrics and /health");
    Ok(Some(published))
}

/// Locks the data directory and reads back what is durable; returns the storage, what it
/// recovered, and the lock.
fn open_data(options: &ServeOptions) -> Result<(Storage<RealFs>, Recovered, File), ServeError> {
    let lock = data_lock::acquire(&options.data)?;
    peer_record::check_or_record(&options.data, &options.peers)?;
    let storage_options = StorageOptions {
        cluster: options.cluster.clone(),
        node: options.id,
        segment_bytes: options.segment_bytes,
        zero_fill_bytes: DEFAULT_ZERO_FILL_BYTES,
        rejoin: options.rejoin,
        // Decoded as it is read, when the replica starts (`own_snapshot`).
        read_snapshot_data: false,
        // No more than the log cache: the replica reads the rest back as it applies it.
        recovered_entry_bytes: Some(options.log_cache_bytes),
    };
    let (storage, recovered, report) =
        Storage::open(RealFs, &options.data, &storage_options).map_err(ServeError::Recover)?;
    log_recovery(options, &report, &recovered);
    Ok((storage, recovered, lock))
}

/// Tells the operator what recovery found: a rejoin, a repaired tail, damage, and the state
/// the node starts from.
fn log_recovery(options: &ServeOptions, report: &OpenReport, recovered: &Recovered) {
    if options.rejoin && report.fresh {
        warn!(
            "rejoining: this node's data was lost or removed; it takes no part in elections until \
             it has caught up with a leader"
        );
    } else if options.rejoin {
        warn!(
            "--rejoin ignored: {} already holds this node's data (the flag is for an empty data \
             directory only)",
            options.data.display()
        );
    }
    if let Some(torn) = &report.torn_tail {
        warn!(
            "repaired a torn record at the tail of the WAL (a crash during a write, never \
             acknowledged): {torn}"
        );
    }
    for cut in &report.damage {
        error!(
            "DAMAGED DATA: {cut}. This node may have lost writes it had acknowledged; it stays \
             out of elections until it has caught up with a leader"
        );
    }
    info!(
        node = %options.id,
        data = %options.data.display(),
        fresh = report.fresh,
        term = %recovered.hard_state.term,
        damaged = recovered.hard_state.damaged,
        entries = recovered.entries.len(),
        entries_on_disk = recovered.on_disk.len(),
        snapshot = ?recovered.snapshot.as_ref().map(|s| s.last.index.0),
        "recovered"
    );
    if let Some(partial) = &recovered.partial_snapshot {
        info!(
            last = %partial.last,
            resume_offset = partial.received,
            total = partial.total,
            "resuming the snapshot being received from the leader"
        );
    }
}

/// The replica, from what the disk returned.
fn start_replica(
    options: &ServeOptions,
    recovered: Recovered,
    now: Instant,
) -> Result<Replica<KvStore>, ServeError> {
    let voters: Vec<NodeId> = options.peers.iter().map(|(id, _)| *id).collect();
    let mut raft_config = raft::Config::new(options.id, voters);
    // Addresses travel with the membership, so that a node added later learns them from the log.
    for (id, address) in &options.peers {
        let membership = std::mem::take(&mut raft_config.initial_membership);
        raft_config.initial_membership = membership.with_address(*id, address.as_bytes());
    }
    raft_config.election_timeout_ms_min = options.election_timeout_ms;
    raft_config.election_timeout_ms_max = options.election_timeout_ms * 2;
    raft_config.heartbeat_interval_ms = options.heartbeat_ms;
    raft_config.read_lease = options.read_lease;
    raft_config.max_clock_drift_ppm = options.max_clock_drift_ppm;
    // The disk thread reads entries the log let go of back from the WAL (`Output::SendEntries`).
    raft_config.log_cache_bytes = Some(options.log_cache_bytes);
    // Each start draws its own election jitter and names of pre-vote rounds (`Config::seed`):
    // the wall clock's nanoseconds differ between starts, the id between nodes.
    let wall_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    raft_config.seed = options.id.0.rotate_left(48) ^ wall_nanos;
    let mut replica_config = ReplicaConfig::new(raft_config);
    replica_config.snapshot_threshold_bytes = options.snapshot_bytes;
    replica_config.snapshot_growth_percent = options.snapshot_growth_percent;
    replica_config.session_timeout_ms = options.session_timeout_ms;
    let replica = match recovered.snapshot.as_ref().map(|snapshot| snapshot.last) {
        Some(last) => {
            let loaded = own_snapshot::load(&options.data, last, options.limits)?;
            Replica::with_loaded_snapshot(now, replica_config, recovered, loaded)
        }
        None => Replica::new(now, replica_config, recovered, KvStore::new(options.limits)),
    };
    replica.map_err(ServeError::StartReplica)
}

/// A node restarted on the data of a node the membership removed only follows: tell the
/// operator what to do instead.
fn warn_if_removed(raft: &raft::RaftNode) {
    let status = raft.status();
    let removed = match status.standing {
        Standing::Removed { .. } => true,
        Standing::NotAMember => !status.membership.is_empty(),
        Standing::Voter | Standing::Learner => false,
    };
    if removed {
        warn!(
            membership = %status.membership,
            "this node is not a member of the membership its data holds: it was removed, and \
             takes no part in elections; to bring this machine back, wipe its data directory \
             and join it under a new id"
        );
    }
}

/// Who the node reaches at start: the members of the membership its data directory (or
/// `--peers`) holds, and those it removed while that is not known committed; with none, the
/// members the nodes at `--join` name.
fn directory(options: &ServeOptions, raft: &RaftNode) -> Result<Directory, ServeError> {
    let membership = raft.membership();
    if !membership.is_empty() {
        if !options.join.is_empty() {
            info!(%membership, "--join ignored: the data directory holds this node's membership");
        }
        let (index, commit) = (raft.status().membership_index, raft.commit_index());
        return Ok(Directory::restarted(membership, index, raft.previous_membership(), commit));
    }
    if options.join.is_empty() {
        return Err(ServeError::NoMembership { dir: options.data.clone() });
    }
    Ok(Directory::joining(join::discover_members(options)?))
}

impl Server {
    /// Runs turns until a signal's stop is due (`Ok`) or a fatal error.
    fn serve(&mut self) -> Result<(), ServeError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(self.clock.now());
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ServeError::Poll(error));
            }
            let now = self.clock.now();
            let turn_started = std::time::Instant::now();
            if self.handle_events(&events, now).is_break() {
                return Ok(());
            }
            let resumed = self.inbound.resume_reads(self.poll.registry(), &self.options, now);
            self.deliver(resumed, now);
            self.turn_front(now);
            self.take_durable(now)?;
            self.fire_timers(now);
            self.drain(now);
            self.inbound.release_held(&self.options.connection_limits);
            // What a persist made durable on this thread releases (a follower's
            // acknowledgement, a leader's commit) goes out in this turn.
            while self.write_out(now) == WrittenOut::SyncedHere {
                self.take_durable(now)?;
                self.drain(now);
                self.inbound.release_held(&self.options.connection_limits);
            }
            // After the messages and persists went out: the front's writes to its clients
            // must not delay what the commit waits for.
            self.settle_front();
            self.publish_figures(now);
            self.record_turn(turn_started.elapsed());
            if self.stop_is_due(now) {
                return Ok(());
            }
        }
    }

    /// Handles the events of one poll, in order; breaks at a second stop signal.
    fn handle_events(&mut self, events: &Events, now: Instant) -> ControlFlow<()> {
        for event in events {
            match event.token() {
                LISTENER => {
                    self.inbound.accept(&self.listener, self.poll.registry(), &self.options, now)
                }
                WAKER => {}
                FRONT => self.front_woke = true,
                SIGNALS => self.on_signal(now)?,
                token if token.0 < FIRST_INBOUND => {
                    if let Some(link) = self.peers.by_token(token) {
                        link.on_event(self.poll.registry(), now);
                    }
                }
                token => {
                    let registry = self.poll.registry();
                    let deliveries =
                        self.inbound.on_event(registry, token, event, &self.options, now);
                    self.deliver(deliveries, now);
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A first SIGINT or SIGTERM starts a clean stop; a second one breaks: stop now.
    fn on_signal(&mut self, now: Instant) -> ControlFlow<()> {
        if self.signals.pending().next().is_some() {
            if self.stop_at.is_some() {
                info!("second signal: stopping now");
                return ControlFlow::Break(());
            }
            self.stop_at = Some(self.begin_stop(now));
        }
        ControlFlow::Continue(())
    }

    /// Closes connections past a timeout when a sweep is due, and fires the replica's timeout
    /// if due.
    fn fire_timers(&mut self, now: Instant) {
        if self.next_sweep <= now {
            let limits = &self.options.connection_limits;
            self.inbound.sweep(self.poll.registry(), limits, now);
            self.next_sweep = now + limits.sweep_interval();
        }
        if self.replica.poll_timeout().is_some_and(|at| at <= now) {
            self.replica.handle(now, Input::Timeout);
        }
    }

    /// Writes what this turn queued: messages to peers first, so that a follower starts its
    /// own write while this node's is queued; then replies; then makes the persists durable,
    /// on this thread if `--inline-sync` allows it and the disk thread is idle, else through
    /// the disk thread.
    fn write_out(&mut self, now: Instant) -> WrittenOut {
        for link in self.peers.iter_mut() {
            link.check_timeouts(self.poll.registry(), now);
            let tls = self.options.tls.as_ref();
            link.dial_if_due(self.poll.registry(), now, self.options.max_frame_bytes, tls);
            link.flush(self.poll.registry(), now);
        }
        self.inbound.flush(self.poll.registry(), now);
        if self.persists.is_empty() {
            return WrittenOut::Nothing;
        }
        let persists = std::mem::take(&mut self.persists);
        // Not a leader: it would read no requests or acknowledgements while it syncs, and
        // under load its disk thread overlaps the sync with that work.
        let inline = match self.options.inline_sync {
            InlineSync::Never => false,
            InlineSync::Follower => self.replica.raft().role() != Role::Leader,
        };
        if !inline {
            self.disk.submit(persists);
            return WrittenOut::Queued;
        }
        if self.disk.persist_inline_if_idle(persists) {
            WrittenOut::SyncedHere
        } else {
            WrittenOut::Queued
        }
    }

    /// Gives the front its turn if its poll woke this one or it is due, and hands its
    /// requests to the replica.
    fn turn_front(&mut self, now: Instant) {
        let Some(front) = &mut self.front else {
            return;
        };
        let due = front.next_turn_in().is_some_and(|wait| wait.is_zero());
        if !std::mem::take(&mut self.front_woke) && !due {
            return;
        }
        front.turn();
        let leads = self.replica.raft().role() == Role::Leader;
        for (tag, request) in front.take_requests() {
            if !self.inbound.admit_front_request(&self.options.connection_limits, now) {
                let busy = Outcome::Rejected(Reject::Busy);
                front.on_reply(tag, ClientReply { request: request.request, outcome: busy });
                continue;
            }
            // Counted for `/metrics` as the requests of the client connections are.
            if leads {
                self.counts.count_request(&request);
            }
            let from = inbound::reply_to(FRONT, tag);
            self.replica.handle(now, Input::Request { from, request });
        }
    }

    /// Lets the front answer its clients once the replies of the turn are in.
    fn settle_front(&mut self) {
        if let Some(mut front) = self.front.take() {
            front.settle(&mut || self.status());
            self.front = Some(front);
        }
    }

    /// Whether a stop a signal asked for is due: leadership is handed over, or time is up.
    fn stop_is_due(&self, now: Instant) -> bool {
        self.stop_at.is_some_and(|at| at <= now || self.replica.raft().role() != Role::Leader)
    }

    /// How long the poll may sleep: until the replica's timeout, the next peer dial or link
    /// timeout, the next sweep for silent connections, or the end of a leadership hand-over.
    fn poll_timeout(&self, now: Instant) -> Option<std::time::Duration> {
        if self.inbound.has_unfinished_reads() {
            return Some(std::time::Duration::ZERO);
        }
        let front = self.front.as_ref().and_then(|front| front.next_turn_in());
        let dials = self.peers.iter().filter_map(PeerLink::deadline);
        let next = self
            .replica
            .poll_timeout()
            .into_iter()
            .chain(dials)
            .chain(self.directory.deadline())
            .chain(self.stop_at)
            .chain(Some(self.next_sweep))
            .min();
        let until_next = next.map(|next| Clock::until(now, next));
        until_next.into_iter().chain(front).min()
    }

    /// A signal asked the node to stop. A leader first hands its leadership to a connected
    /// peer, so that clients wait for a hand-over instead of an election timeout; returns when
    /// to stop at the latest (now, if there is nothing to hand over).
    fn begin_stop(&mut self, now: Instant) -> Instant {
        let target = self.peers.members().find(|link| link.is_connected()).map(|link| link.id);
        match target {
            Some(target) if self.replica.raft().role() == Role::Leader => {
                match self.replica.transfer_leadership(now, target) {
                    Ok(()) => {
                        info!(%target, "signal received: handing leadership over, then stopping");
                        now + Duration::from_millis(2 * self.options.election_timeout_ms)
                    }
                    Err(error) => {
                        info!(%error, "signal received: stopping without a hand-over");
                        now
                    }
                }
            }
            _ => {
                info!("signal received: stopping");
                now
            }
        }
    }

    /// Acts on what an accepted connection received, in order.
    fn deliver(&mut self, deliveries: Vec<Delivery>, now: Instant) {
        for delivery in deliveries {
            match delivery {
                Delivery::Input(input) => {
                    if let Input::Request { request, .. } = &input {
                        if self.replica.raft().role() == Role::Leader {
                            self.counts.count_request(request);
                        }
                    }
                    self.replica.handle(now, input);
                }
                Delivery::StatusQuery { token, tag } => {
                    let status = self.status();
                    let registry = self.poll.registry();
                    self.inbound.answer_status(registry, token, tag, status, &self.options, now);
                }
                Delivery::Admin { token, tag, request } => {
                    let answer =
                        admin::carry_out(&mut self.replica, &mut self.backups, request, now);
                    let registry = self.poll.registry();
                    self.inbound.answer_admin(registry, token, tag, answer, &self.options, now);
                }
                Delivery::PeerDialedUs(from) => {
                    if let Some(link) = self.peers.get_mut(from) {
                        link.peer_dialed_us(self.poll.registry(), now);
                    }
                }
            }
        }
    }

    /// Publishes the figures for `/metrics` and `/health` if they are wanted and due (at
    /// once after a change of role, term or leader).
    fn publish_figures(&mut self, now: Instant) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        if now < self.next_publish {
            return;
        }
        self.next_publish = now + Duration::from_millis(metrics::PUBLISH_EVERY_MS);
        let links = self.peers.members().map(|link| LinkFigures {
            peer: link.id,
            connected: link.is_connected(),
            reconnects: link.reconnects(),
        });
        metrics.publish(Figures {
            status: self.status(),
            counters: self.replica.raft().counters().clone(),
            links: links.collect(),
            counts: self.counts.clone(),
            front: self.front.as_deref().map(Front::counts),
            at: std::time::Instant::now(),
        });
    }

    /// The node's state for `raftkv status`.
    fn status(&self) -> NodeStatus {
        let status = self.replica.raft().status();
        let standing = match status.standing {
            Standing::Voter => "voter",
            Standing::Learner => "learner",
            Standing::Removed { .. } => "removed",
            Standing::NotAMember => "not a member",
        };
        let membership = &status.membership;
        let addresses = membership
            .members()
            .into_iter()
            .filter_map(|id| {
                let address = membership.address(id)?;
                Some((id, String::from_utf8_lossy(address).into_owned()))
            })
            .collect();
        let membership = MembershipReport {
            index: status.membership_index,
            voters: membership.voters().to_vec(),
            outgoing: membership.outgoing_voters().to_vec(),
            learners: membership.learners().to_vec(),
            addresses,
            retired: membership.retired(),
        };
        NodeStatus {
            id: status.id,
            role: status.role.to_string(),
            term: status.term,
            leader: status.leader,
            commit: status.commit,
            applied: self.replica.applied(),
            last_log: status.last_log.index,
            snapshot_last: status.snapshot_last.index,
            log_entries: status.log_entries as u64,
            wal_bytes: self.disk.wal_bytes(),
            keys: self.replica.state().len() as u64,
            damaged: status.damaged,
            connections: self.inbound.report(),
            standing: standing.to_string(),
            membership,
            match_indexes: self.replica.raft().match_indexes().unwrap_or_default(),
        }
    }

    /// Tells the replica what the disk thread made durable since the last turn.
    fn take_durable(&mut self, now: Instant) -> Result<(), ServeError> {
        if let Some(failure) = self.disk.take_failure() {
            return Err(ServeError::Disk(failure));
        }
        let durable = self.disk.durable();
        if durable > self.acknowledged {
            self.acknowledged = durable;
            self.replica.handle(now, Input::Persisted { id: durable });
        }
        for read in self.disk.take_read_back() {
            match read {
                ReadBack::Read(message) => self.peers.send(&message),
                ReadBack::Unreadable(through) => {
                    self.replica.handle(now, Input::LogUnreadable { through });
                }
                ReadBack::Loaded(entries) => {
                    self.replica.handle(now, Input::EntriesLoaded { entries });
                }
            }
        }
        if let Some(finished) = self.snapshots.take_finished() {
            let (snapshot, saved) = finished.map_err(ServeError::Disk)?;
            let index = snapshot.last.index;
            // Compaction runs on this thread: how long it held the loop is logged.
            let started = std::time::Instant::now();
            let held = self.replica.raft().status().log_entries;
            self.replica.handle(now, Input::SnapshotSaved { snapshot });
            let kept = self.replica.raft().status().log_entries;
            self.free_retired();
            let took_us = started.elapsed().as_micros() as u64;
            info!(node = %self.options.id, %index, held, kept, took_us, "log compacted");
            if saved == Saved::Saved {
                self.disk.compact_log(index);
            }
        }
        if let Some((whole, loaded)) = self.snapshot_loader.take_finished() {
            let last = whole.last;
            match loaded {
                Ok(loaded) => {
                    self.replica.snapshot_loaded(now, loaded);
                    self.free_retired();
                }
                Err(LoadFailed::Damaged(_)) => {
                    self.replica.handle(now, Input::SnapshotDamaged { last });
                }
                Err(LoadFailed::Undecodable(_)) => {
                    self.replica.handle(now, Input::SnapshotUndecodable { last });
                }
            }
        }
        Ok(())
    }

    /// Records a turn's length, and logs one long enough to be felt by every client.
    fn record_turn(&self, took: std::time::Duration) {
        self.instruments.record_turn(took);
        if took >= SLOW_TURN {
            info!(node = %self.options.id, took_ms = took.as_millis() as u64, "slow event-loop turn");
        }
    }

    /// Has the snapshot thread free what the replica let go of, after each event that may
    /// retire something.
    fn free_retired(&mut self) {
        if let Some(retired) = self.replica.take_retired() {
            self.snapshots.free(retired);
        }
    }

    /// Carries out everything the replica asked for.
    fn drain(&mut self, now: Instant) {
        while let Some(output) = self.replica.poll_output() {
            match output {
                Output::Send(message) => self.peers.send(&message),
                Output::Persist(persist) => self.persists.push(persist),
                Output::SaveSnapshot(job) => self.snapshots.submit(job),
                Output::LoadSnapshot(whole) => self.snapshot_loader.submit(whole),
                Output::SendSnapshotChunk(chunk) => {
                    if let Some(message) = self.snapshot_chunks.message(chunk) {
                        self.peers.send(&message);
                    }
                }
                Output::SendEntries(append) => self.disk.read_entries(append),
                Output::LoadEntries(load) => self.disk.load_entries(load),
                Output::Reply { to, reply } => {
                    if let (FRONT, tag) = inbound::reply_target(to) {
                        self.inbound.front_request_answered();
                        if let Some(front) = &mut self.front {
                            front.on_reply(tag, reply);
                        }
                        continue;
                    }
                    let registry = self.poll.registry();
                    self.inbound.send_reply(registry, to, reply, &self.options, now);
                }
                Output::RoleChanged { role, term, leader } => {
                    self.counts.observe_leader(leader, term);
                    // Published this turn: `/health` must not wait to learn of a leader.
                    self.next_publish = now;
                    let leader = leader.map_or_else(|| "none".to_string(), |l| l.to_string());
                    info!(node = %self.options.id, %role, %term, %leader, "role changed");
                }
                Output::MembershipChanged { index, membership, standing } => {
                    info!(node = %self.options.id, %index, %membership, %standing, "membership changed");
                    let commit = self.replica.raft().commit_index();
                    self.directory.update(&membership, index, commit);
                    self.follow_directory(now);
                }
            }
        }
        // A snapshot installed from the leader was restored as the outputs drained.
        self.free_retired();
        if self.directory.on_commit(self.replica.raft().commit_index(), now) {
            self.follow_directory(now);
        }
        let undecodable = self.replica.undecodable();
        if undecodable > self.undecodable_logged {
            self.undecodable_logged = undecodable;
            error!(
                node = %self.options.id,
                undecodable,
                "committed entries or snapshots that do not decode were skipped: this node's \
                 state may differ from the others' (a bug); replace the node from a healthy one"
            );
        }
    }

    /// The directory changed: links and inbound connections follow it.
    fn follow_directory(&mut self, now: Instant) {
        let (peers, joining) = (self.directory.peers(self.options.id), self.directory.is_joining());
        let retired = self.directory.retired();
        self.peers.sync(self.poll.registry(), &peers, retired, joining, now);
        self.inbound.set_directory(&self.directory);
    }

    /// Stops cleanly: sends what is queued, makes every queued persist durable.
    fn stop(self) {
        let Server {
            mut inbound, mut peers, disk, snapshots, snapshot_loader, poll, clock, ..
        } = self;
        let now = clock.now();
        for link in peers.iter_mut() {
            link.flush(poll.registry(), now);
        }
        inbound.flush_before_exit();
        snapshots.shut_down();
        snapshot_loader.shut_down();
        disk.shut_down();
        info!("stopped");
    }
}
