//! raftkv-core: the sans-IO heart of raftkv.
//!
//! This crate holds Raft consensus, client sessions that make retries exactly-once, a
//! key-value state machine and the client that talks to it, as plain state machines. Nothing
//! here reads a clock, touches a socket or a file, or spawns a thread: a *driver* does that,
//! and the same code runs under the `raftkv` server (TCP, a write-ahead log), under the
//! deterministic simulator (`raftkv-sim`, seeded faults) and under whatever runtime you embed
//! it in. This page is the guide to writing such a driver.
//!
//! - [`raft::RaftNode`]: consensus, one per server. It replicates opaque byte commands.
//! - [`server::Replica`]: a Raft node, the client [`session`]s and a [`StateMachine`] as one
//!   state machine: what a server runs. [`kv::KvStore`] is the state machine raftkv serves;
//!   implement [`StateMachine`] to replicate your own.
//! - [`client::Clerk`]: the client of a replica: finds the leader, retries with backoff, and
//!   keeps a request's id across retries so that it is applied once.
//!
//! # The calling contract
//!
//! Every state machine here has the same three methods:
//!
//! ```text
//! fn handle(&mut self, now: Instant, input: Input);   // feed one event
//! fn poll_output(&mut self) -> Option<Output>;        // drain what it wants done, in order
//! fn poll_timeout(&self) -> Option<Instant>;          // when to feed Input::Timeout
//! ```
//!
//! A driver feeds an event with `handle`, then calls `poll_output` until it returns `None` and
//! carries out each output in the order given, then asks `poll_timeout` again (every event may
//! move it) and feeds `Input::Timeout` once its clock reaches that instant. Several events may
//! be fed before a drain (proposals fed together then share one append per follower). Feeding
//! `Timeout` early does no harm: nothing is due yet, so nothing happens.
//!
//! **Time** is an [`Instant`]: nanoseconds since an origin the driver chooses (process start,
//! say). It must not go backwards within one life of a node; clocks of different nodes need
//! not agree on their origin.
//!
//! # Delivering messages
//!
//! `Output::Send(message)` asks to deliver `message` to the node `message.to`, which is fed
//! `Input::Message(message)`. Delivery is best effort: Raft tolerates messages that are lost,
//! duplicated, delayed or reordered, so a driver may drop what it cannot send (a full queue, a
//! peer that is down) rather than block. Messages may be sent at once, before earlier persists
//! are durable: every message that promises durable state (a vote granted, entries
//! acknowledged) is held back by the node until its persist is acknowledged, and a leader
//! sending entries to its followers while its own write is in flight is what makes
//! replication pipelined. [`raft::Message`] is `serde`-serializable: any encoding will do on
//! the wire (the server uses `postcard`). Where peers are is the driver's business; the
//! membership can carry an opaque address per member (see
//! [`raft::Membership`]) that the node replicates but never reads.
//!
//! # Persisting, and what must be durable first
//!
//! `Output::Persist(persist)` asks to make a [`raft::Persist`] durable: a new term or vote
//! (`hard_state`), the snapshot received from the leader, installed (`install_received`), or
//! a snapshot in memory (`snapshot`), each replacing every entry it covers, a truncation of
//! conflicting entries (`truncate_from`) and entries to append, in that order, and a chunk of
//! a snapshot being received from the leader (`snapshot_chunk`, apart from the log, before or
//! after the rest: see [Snapshots](#snapshots)). Persists are
//! executed in the order they come, and once `persist` and every one
//! before it survive a crash (the `fsync` returned) the driver feeds
//! `Input::Persisted { id: persist.id }`. One acknowledgement covers every earlier persist,
//! so one `fsync` may cover a batch (group commit). The hard state must be durable no later
//! than the rest of its persist; writing the newest hard state of a batch first is fine.
//!
//! Never acknowledge what is not durable: a node counts its own vote and its own entries only
//! once acknowledged, and a vote or an entry lost after a crash is how two leaders get elected
//! in one term or a committed entry disappears. Acknowledging late is always safe, only slow.
//!
//! # Timers
//!
//! Elections, heartbeats, the leader's check that a majority still hears it, and a clerk's
//! retries all run off `poll_timeout`. A driver keeps one timer per state machine, set to
//! the latest answer of `poll_timeout` after each drain. Timeouts are in
//! [`raft::Config`] (`election_timeout_ms_min` and friends) and [`client::ClerkConfig`].
//!
//! # Recovery from disk
//!
//! A node starts from a [`raft::Recovered`]: the last durable hard state, the last durable
//! snapshot, the durable entries after it, consecutive, and the part of a leader's snapshot
//! it was receiving, if any; `Recovered::default()` starts a
//! new node. Whatever was acknowledged must come back. Give every start of a node a fresh
//! [`raft::Config::seed`] (the wall clock or the operating system's entropy will do). A
//! restarted replica restores its state machine from the snapshot at once; the entries after
//! it are applied again once the node learns they are committed, and clients get the same
//! answers as before thanks to the sessions, which are part of the replicated state. If a
//! disk lost acknowledged writes (a damaged file cut away, a data directory removed), set
//! [`raft::HardState::damaged`] in what is recovered: the node then stays out of elections
//! until it has caught up with a leader. The `raftkv-storage` crate is a storage engine that
//! keeps this contract on a real file system (a write-ahead log, group commit, checksums).
//!
//! # The log cache: entries read back from the driver's disk
//!
//! By default a node keeps every entry after its snapshot in memory. With
//! [`raft::Config::log_cache_bytes`] set to `Some(bytes)` it keeps only the entries not yet
//! applied or not yet acknowledged durable, and the latest applied ones up to `bytes`; the
//! older ones stay only on the driver's disk, until a snapshot compacts them (their terms stay
//! in memory as runs, a few words per term, and their sizes as 4 bytes each). A leader that
//! must send a follower such entries asks for `Output::SendEntries(append)`
//! ([`raft::EntriesToSend`]): the driver reads `append.first()..=append.last.index` from the
//! log it made durable, checks them with `append.matches(&entries)` (consecutive after
//! `append.prev`, the last one `append.last`) and sends `append.into_message(entries)`. The
//! entries asked for are committed, or held by a leader's log, which never truncates, so
//! whatever copy the disk holds of them ending at `append.last` is the one (the
//! `raftkv-storage` crate reads them back by index, checksums checked:
//! `Storage::read_entries`). If it cannot read them (a damaged record, a log compacted
//! meanwhile, a failed read), it sends nothing and feeds `Input::LogUnreadable { through:
//! append.last.index }`: the node sends none of the entries up to there from the disk again,
//! and a replica takes a snapshot past them ([`raft::RaftNode::needs_snapshot`]), which it
//! then sends to the followers that need them; a bare node's driver takes it with
//! [`raft::RaftNode::compact`]. A request the driver drops for another reason is a message
//! lost on the network: it goes again later. Opt in only once the driver can read its log
//! back: without the setting, `Output::SendEntries` never comes.
//!
//! A restart need not hold the whole log either. A driver may recover only the latest entries
//! into `Recovered::entries` and describe the earlier ones after the snapshot in
//! `Recovered::on_disk` ([`raft::EntriesOnDisk`]: each one's term and size, and the
//! memberships among them, recorded with `EntriesOnDisk::push` as it replays its log). The
//! node knows the whole log by them, and once it learns that they are committed it asks for
//! them, a batch at a time (the log cache's worth, or one append's if more):
//! `Output::LoadEntries(load)` ([`raft::EntriesToLoad`]). The driver reads
//! `load.first..=load.last.index` back from its log, checks them with `load.matches(&entries)`
//! and feeds `Input::EntriesLoaded { entries }`; the node checks each entry against the term,
//! size and membership it recorded, applies them (`Output::Apply`) and asks for the next batch.
//! It applies nothing past them meanwhile; it asks for the next batch as it hands out the one
//! loaded, so that the driver reads while the node applies (one batch asked for at a time,
//! at most two held between the driver and the node). If the driver
//! cannot read them, it must stop the node rather than feed anything else: a node cannot skip
//! committed entries, and its next start reads the log again (the `raftkv-storage` crate then
//! finds damage and cuts it away, and the node catches up from its leader). Answers that are
//! not the batch asked for are counted (`Counters::dropped_bad_loads`) and the batch is asked
//! for again. A driver that recovers every entry in memory (`on_disk` empty) never sees
//! `Output::LoadEntries`. The `raftkv-storage` crate recovers this way with
//! `StorageOptions::recovered_entry_bytes`.
//!
//! # Snapshots
//!
//! Once the applied log weighs [`server::ReplicaConfig::snapshot_threshold_bytes`] (or
//! [`server::ReplicaConfig::snapshot_growth_percent`] of the last snapshot's size, if more:
//! [`server::Replica::snapshot_threshold`]), a replica hands its driver
//! `Output::SaveSnapshot(job)`: a point-in-time view of the state machine and the sessions
//! ([`snapshot_job::SnapshotJob`]), taken in constant time. The driver encodes it where it
//! likes (`job.write_data` into a file on another thread, or `job.encode()` in memory for
//! small states), makes it durable as the node's snapshot unless the disk holds
//! a newer one already (one installed from the leader meanwhile), and feeds
//! `Input::SnapshotSaved { snapshot: SavedSnapshot::of(&snapshot) }`. Only then does the log
//! drop the entries the snapshot covers, and the driver may drop them from its disk. A crash
//! before the answer loses nothing: the replica asks again later.
//!
//! A replica keeps no snapshot data in memory: when a follower needs the snapshot, it asks
//! for `Output::SendSnapshotChunk(chunk)`. The driver reads `chunk.length` bytes at
//! `chunk.offset` from the snapshot it holds, if that snapshot is the one at `chunk.last`,
//! and sends `chunk.into_message(bytes)`; if it holds another, it drops the request (the node
//! asks again).
//!
//! A follower never holds a leader's snapshot in memory while it arrives either: each chunk
//! it takes comes out in a `Persist` as `persist.snapshot_chunk` ([`raft::ReceivedChunk`]),
//! to be added to the snapshot being received on the driver's disk (a chunk at offset 0 starts
//! a new one and discards any other; every other chunk continues the one held exactly where it
//! ends). The node answers the leader for those bytes only once the persist is acknowledged,
//! like any other promise. Once every byte is durable it asks for the snapshot back with
//! `Output::LoadSnapshot(whole)` ([`raft::PartialSnapshot`]): the driver reads it, away from
//! the thread that feeds the node if it is large, checks it (a checksum per chunk written
//! will do), and decodes it as it reads
//! ([`loaded_snapshot::LoadedSnapshot::decode`], into an empty state machine: the encoded
//! snapshot is never held whole), then hands the result to
//! [`server::Replica::snapshot_loaded`] (a bare [`raft::RaftNode`] takes
//! `raft::Input::SnapshotLoaded` with the snapshot's last entry, membership and size). A
//! damaged snapshot is never handed over: the driver feeds `Input::SnapshotDamaged { last }`
//! (`Input::SnapshotUndecodable { last }` if it is intact but does not decode), and the node
//! receives it again from its first byte. The driver keeps what it received: the node installs
//! it with a `Persist` carrying `persist.install_received`, in order with the log, and the
//! driver then makes it its snapshot, moving it into place rather than writing it again (the
//! `raftkv-storage` crate lays the received file out as its snapshot file and renames it). The
//! node sends it to followers from there (`Output::SendSnapshotChunk`).
//!
//! After a restart, the driver reports the snapshot it was receiving in
//! `Recovered::partial_snapshot` (its last entry, size, and the bytes durable from the first
//! on, up to the first chunk that is torn or fails its checksum): the follower tells the
//! leader, which sends only the rest. One no newer than the recovered snapshot is of no use.
//! The recovered snapshot itself need not be in memory either: a driver may leave its data on
//! disk (`Recovered::snapshot` with empty data), decode it as it reads it
//! ([`loaded_snapshot::LoadedSnapshot::decode`]) and start the replica with
//! [`server::Replica::with_loaded_snapshot`].
//!
//! # A whole driver
//!
//! One replica of the key-value store with a clerk, an in-memory disk, snapshots and a
//! restart, on a virtual clock. A cluster of several nodes adds only message delivery (see
//! [`raft::RaftNode`]); the crate's `examples/threads.rs` runs three replicas and their
//! clients on threads.
//!
//! ```
//! use raftkv_core::client::{Clerk, ClerkConfig, ClerkError, ClerkInput, ClerkOutput};
//! use raftkv_core::kv::{KvCommand, KvReply, KvStore};
//! use raftkv_core::raft::{Config, Entry, HardState, Persist, Recovered, SavedSnapshot, Snapshot};
//! use raftkv_core::server::{Input, Output, Replica, ReplicaConfig, ReplyTo};
//! use raftkv_core::{Instant, NodeId};
//!
//! /// What the node made durable: what a restart recovers.
//! #[derive(Default)]
//! struct Disk {
//!     hard_state: HardState,
//!     snapshot: Option<Snapshot>,
//!     entries: Vec<Entry>,
//! }
//!
//! impl Disk {
//!     /// Executes a persist as its contract says (and in memory, durable at once).
//!     fn persist(&mut self, persist: Persist) {
//!         if let Some(snapshot) = persist.snapshot {
//!             self.entries.retain(|entry| entry.index > snapshot.last.index);
//!             self.snapshot = Some(snapshot);
//!         }
//!         let truncate_from = persist.truncate_from.into_iter();
//!         for from in truncate_from.chain(persist.entries.first().map(|entry| entry.index)) {
//!             self.entries.retain(|entry| entry.index < from);
//!         }
//!         self.entries.extend(persist.entries);
//!         if let Some(hard_state) = persist.hard_state {
//!             self.hard_state = hard_state;
//!         }
//!     }
//!
//!     /// Saves the replica's own snapshot, unless a newer one is here already.
//!     fn save_snapshot(&mut self, snapshot: Snapshot) {
//!         if self.snapshot.as_ref().is_some_and(|held| held.last.index >= snapshot.last.index) {
//!             return;
//!         }
//!         self.entries.retain(|entry| entry.index > snapshot.last.index);
//!         self.snapshot = Some(snapshot);
//!     }
//!
//!     fn recover(&self) -> Recovered {
//!         Recovered {
//!             hard_state: self.hard_state,
//!             snapshot: self.snapshot.clone(),
//!             entries: self.entries.clone(),
//!             partial_snapshot: None, // A cluster of one receives no snapshot.
//!             ..Recovered::default() // Every entry in memory: none left on disk.
//!         }
//!     }
//! }
//!
//! struct Driver {
//!     now: Instant,
//!     replica: Replica<KvStore>,
//!     disk: Disk,
//!     clerk: Clerk<KvCommand, KvReply>,
//!     finished: Vec<Result<KvReply, ClerkError>>,
//! }
//!
//! impl Driver {
//!     /// Runs until the clerk has finished everything submitted to it.
//!     fn run(&mut self) {
//!         while self.clerk.pending() > 0 {
//!             self.drain();
//!             // Nothing else happens until the next timer: jump the virtual clock there.
//!             let timers = [self.replica.poll_timeout(), self.clerk.poll_timeout()];
//!             self.now = timers.into_iter().flatten().min().expect("a node always has a timer");
//!             self.replica.handle(self.now, Input::Timeout);
//!             self.clerk.handle(self.now, ClerkInput::Timeout);
//!         }
//!     }
//!
//!     /// Carries out every output, until neither state machine has anything left to do.
//!     fn drain(&mut self) {
//!         let now = self.now;
//!         loop {
//!             let mut busy = false;
//!             while let Some(output) = self.clerk.poll_output() {
//!                 busy = true;
//!                 match output {
//!                     ClerkOutput::Send { request, .. } => {
//!                         let from = ReplyTo(0); // The only client.
//!                         self.replica.handle(now, Input::Request { from, request });
//!                     }
//!                     ClerkOutput::Finished { result, .. } => self.finished.push(result),
//!                 }
//!             }
//!             let mut durable = None;
//!             while let Some(output) = self.replica.poll_output() {
//!                 busy = true;
//!                 match output {
//!                     Output::Persist(persist) => {
//!                         durable = Some(persist.id);
//!                         self.disk.persist(persist);
//!                     }
//!                     Output::SaveSnapshot(job) => {
//!                         let snapshot = job.encode();
//!                         let saved = SavedSnapshot::of(&snapshot);
//!                         self.disk.save_snapshot(snapshot);
//!                         self.replica.handle(now, Input::SnapshotSaved { snapshot: saved });
//!                     }
//!                     Output::Reply { reply, .. } => {
//!                         self.clerk.handle(now, ClerkInput::Reply { from: NodeId(1), reply });
//!                     }
//!                     Output::Send(_)
//!                     | Output::SendSnapshotChunk(_)
//!                     | Output::SendEntries(_)
//!                     | Output::LoadSnapshot(_) => unreachable!("a cluster of one has no peers"),
//!                     Output::LoadEntries(_) => unreachable!("every entry is recovered in memory"),
//!                     Output::RoleChanged { .. } | Output::MembershipChanged { .. } => {}
//!                 }
//!             }
//!             // Group commit: one acknowledgement for the whole batch, once it is durable.
//!             if let Some(id) = durable {
//!                 self.replica.handle(now, Input::Persisted { id });
//!             }
//!             if !busy {
//!                 return;
//!             }
//!         }
//!     }
//! }
//!
//! let config = |seed| {
//!     let mut raft = Config::new(NodeId(1), [NodeId(1)]);
//!     raft.seed = seed; // A new one for every start.
//!     let mut config = ReplicaConfig::new(raft);
//!     config.snapshot_threshold_bytes = 512; // Snapshot often, to show it.
//!     config
//! };
//! let replica = Replica::new(Instant::ZERO, config(1), Recovered::default(), KvStore::default())
//!     .expect("a new node starts");
//! let clerk = Clerk::new(ClerkConfig::new(vec![NodeId(1)]));
//! let mut driver =
//!     Driver { now: Instant::ZERO, replica, disk: Disk::default(), clerk, finished: Vec::new() };
//! for i in 0..20 {
//!     let command = KvCommand::Put { key: b"x".to_vec(), value: i.to_string().into_bytes() };
//!     driver.clerk.submit(driver.now, command);
//! }
//! driver.run();
//! assert_eq!(driver.finished, vec![Ok(KvReply::Done); 20]);
//! assert!(driver.disk.snapshot.is_some(), "the log was compacted");
//!
//! // A crash: memory is lost, the disk stays. The restarted replica recovers from it.
//! let restarted = Replica::new(driver.now, config(2), driver.disk.recover(), KvStore::default())
//!     .expect("the disk holds what this node wrote");
//! driver.replica = restarted;
//! driver.finished.clear();
//! driver.clerk.submit(driver.now, KvCommand::Get { key: b"x".to_vec() });
//! driver.run();
//! assert_eq!(driver.finished, [Ok(KvReply::Value(Some(b"19".to_vec())))]);
//! ```
//!
//! # Your own state machine
//!
//! A [`server::Replica`] replicates any [`StateMachine`]: commands and replies of your own,
//! with sessions, snapshots, linearizable reads and the [`client::Clerk`] for free. See the
//! trait's documentation for an example, the crate's `examples/bank.rs` for accounts with
//! atomic transfers on the threaded driver, and `raftkv-sim` to run your state machine under
//! seeded faults with a linearizability check.

#![warn(missing_docs)]

mod bytes;
pub mod client;
mod encoding;
pub mod ids;
pub mod kv;
pub mod loaded_snapshot;
pub mod prng;
pub mod protocol;
pub mod raft;
pub mod retired;
pub mod server;
pub mod session;
pub mod snapshot_job;
pub mod state_machine;
pub mod time;

pub use ids::{ClientId, LogId, LogIndex, NodeId, RequestId, Term};
pub use state_machine::StateMachine;
pub use time::{Duration, Instant};
