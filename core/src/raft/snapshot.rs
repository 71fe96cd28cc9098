//! Snapshots: compacting the log behind the state machine, and bringing a follower that needs
//! compacted entries up to date with the leader's snapshot, sent in chunks.

use crate::ids::{LogId, LogIndex, NodeId};
use crate::raft::chunk_to_send::ChunkToSend;
use crate::raft::compacted::CompactedEntries;
use crate::raft::incoming_snapshot::{IncomingSnapshot, Taken};
use crate::raft::membership::Membership;
use crate::raft::message::{AppendOutcome, Body};
use crate::raft::node::{Output, RaftNode, Role};
use crate::raft::persist::{ReceivedChunk, SavedSnapshot, Snapshot};

impl RaftNode {
    /// Whether [`compact`](Self::compact) would take a snapshot now: something was applied
    /// since the last one, and the membership there is known. A node that joined a cluster does
    /// not know the membership before the entry that added it, unless its leader sent it a
    /// snapshot; it compacts only once it has applied that far.
    pub fn compactable(&self) -> bool {
        let applied = self.log.applied();
        applied > self.log.snapshot_last().index && self.knows_membership_at(applied)
    }

    /// Whether the driver could not read back entries from its disk that followers may still
    /// need (`Input::LogUnreadable`) and no snapshot covers them yet: take one, past them,
    /// whatever the log weighs (a replica does).
    pub fn needs_snapshot(&self) -> bool {
        self.log_unreadable_through > self.log.snapshot_last().index
    }

    /// Whether this node knows the membership in force at `index` (at or after its snapshot
    /// point), as a snapshot there must record. A node that joined a running cluster does not
    /// know it before the entry that added it, unless its leader sent it a snapshot.
    pub fn knows_membership_at(&self, index: LogIndex) -> bool {
        !self.log.membership_at(index).is_empty()
    }

    /// Replaces the applied part of the log with `data`, the state machine's snapshot at the
    /// applied index, which records the membership in force there. The snapshot is persisted
    /// like any other change; the node keeps it to send to followers that fall behind. Returns
    /// the last entry it covers, or `None` unless [`compactable`](Self::compactable).
    pub fn compact(&mut self, data: Vec<u8>) -> Option<LogId> {
        if !self.compactable() {
            return None;
        }
        let applied = self.log.applied();
        let last = LogId::new(applied, self.log.term_at(applied)?);
        let membership = self.log.membership_at(applied).clone();
        self.log.compact_to(last);
        let snapshot = Snapshot { last, membership, data };
        self.durability.snapshot_taken(snapshot.clone());
        self.adopt_own_snapshot(snapshot);
        self.snapshot_on_disk = None;
        Some(last)
    }

    /// Where a snapshot of the state machine taken now stands, for a driver that encodes and
    /// saves it away from the node (then [`snapshot_saved`](Self::snapshot_saved)): the
    /// applied entry and the membership in force there. `None` unless
    /// [`compactable`](Self::compactable), and while the applied entry is not durable here yet:
    /// a snapshot saved ahead of the log's own writes could stand on a term that the hard state
    /// on disk has not reached, which no restart could recover.
    pub fn snapshot_point(&self) -> Option<(LogId, Membership)> {
        let applied = self.log.applied();
        if !self.compactable() || !self.applied_is_durable() {
            return None;
        }
        let last = LogId::new(applied, self.log.term_at(applied)?);
        Some((last, self.log.membership_at(applied).clone()))
    }

    /// Whether the last entry handed out to apply is durable here, as a snapshot point must be
    /// (see [`snapshot_point`](Self::snapshot_point)).
    pub fn applied_is_durable(&self) -> bool {
        self.log.applied() <= self.durability.durable_index()
    }

    /// The driver saved `saved`: this node's own state at a point that
    /// [`snapshot_point`](Self::snapshot_point) gave. The log drops the entries it covers
    /// (nothing is persisted: the driver may drop them from its disk as well), and the node
    /// sends it to followers in chunks the driver reads from its disk
    /// (`Output::SendSnapshotChunk`). Returns the entries the log dropped if the node took it
    /// (for the caller to free where it likes); one no newer than the node's snapshot (a
    /// leader's snapshot was installed meanwhile), or at an entry the log does not hold
    /// applied, is ignored (`None`).
    pub fn snapshot_saved(&mut self, saved: SavedSnapshot) -> Option<CompactedEntries> {
        let last = saved.last;
        let usable = last.index > self.log.snapshot_last().index
            && last.index <= self.log.applied()
            && self.log.term_at(last.index) == Some(last.term)
            && self.log.membership_at(last.index) == &saved.membership;
        if !usable {
            return None;
        }
        let compacted = self.log.compact_to(last);
        let snapshot = Snapshot { last, membership: saved.membership, data: Vec::new() };
        self.adopt_own_snapshot(snapshot);
        self.snapshot_on_disk = Some(saved.bytes);
        Some(CompactedEntries::new(compacted))
    }

    /// The log entries that the last snapshot installed from the leader replaced, for the
    /// caller to free where it likes (they go with the next install if not taken).
    pub fn take_dropped_by_install(&mut self) -> Option<CompactedEntries> {
        self.dropped_by_install.take()
    }

    /// The driver keeps the snapshot this node holds on its disk, `bytes` of data, where it
    /// reads chunks from (`Output::SendSnapshotChunk`): the node drops its copy of the data, if
    /// it was handed one. For a replica once its state machine is restored from the snapshot.
    pub fn keep_snapshot_on_disk(&mut self, bytes: u64) {
        if let (Some(snapshot), None) = (self.snapshot.as_mut(), self.snapshot_on_disk) {
            self.snapshot_on_disk = Some(bytes);
            snapshot.data = Vec::new();
        }
    }

    /// The size of the snapshot's data, wherever it is kept (0 without one).
    pub fn snapshot_bytes(&self) -> u64 {
        let in_memory = self.snapshot.as_ref().map_or(0, |snapshot| snapshot.data.len() as u64);
        self.snapshot_on_disk.unwrap_or(in_memory)
    }

    /// Keeps `snapshot`, just taken of this node's state, to send to followers.
    fn adopt_own_snapshot(&mut self, snapshot: Snapshot) {
        // Followers still receiving an older snapshot get this one instead.
        for progress in self.progress.values_mut() {
            if progress.snapshot_sending().is_some() {
                progress.start_snapshot(snapshot.last);
            }
        }
        self.snapshot = Some(snapshot);
        self.counters.snapshots_taken += 1;
    }

    /// The latest snapshot this node holds (its own or one installed from a leader).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The last entry of the leader's snapshot this node holds part of, still incomplete.
    pub fn snapshot_receiving(&self) -> Option<LogId> {
        self.incoming_snapshot.as_ref().map(IncomingSnapshot::last)
    }

    /// Leader only: how many followers it is sending its snapshot to.
    pub fn snapshots_sending(&self) -> usize {
        let sending =
            self.progress.values().filter(|progress| progress.snapshot_sending().is_some());
        if self.role == Role::Leader { sending.count() } else { 0 }
    }

    /// Sends a follower the chunks of the snapshot its window allows. With `resend`, a
    /// heartbeat: chunks not confirmed go again, and at least one chunk goes (the follower
    /// answers it even when it already installed the snapshot).
    pub(crate) fn send_snapshot(&mut self, peer: NodeId, resend: bool) {
        let total = self.snapshot_bytes();
        let Some(snapshot) = &self.snapshot else { return };
        let last = snapshot.last;
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let window = self.config.max_inflight_snapshot_chunks as u64;
        let chunks =
            self.progress_of(peer).snapshot_chunks(last, total, chunk_bytes, window, resend);
        for (offset, length) in chunks {
            let Some(snapshot) = &self.snapshot else { return };
            let membership = snapshot.membership.clone();
            if self.snapshot_on_disk.is_some() {
                let (from, term) = (self.config.id, self.term);
                let chunk =
                    ChunkToSend { from, to: peer, term, last, membership, total, offset, length };
                self.outbox.push_back(Output::SendSnapshotChunk(chunk));
                continue;
            }
            let range = offset as usize..(offset + length) as usize;
            let chunk = snapshot.data[range].to_vec();
            let body = Body::InstallSnapshot { last, membership, total, offset, chunk };
            self.send(peer, self.term, body);
        }
    }

    /// A chunk of the leader's snapshot. The next bytes of the one being received (or the
    /// first of a new one) go to the driver's disk in the next persist; the answer says how
    /// many bytes are held, and leaves once they are durable.
    pub(crate) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        last: LogId,
        membership: Membership,
        total: u64,
        offset: u64,
        chunk: Vec<u8>,
    ) {
        if !self.follow_leader(from) {
            return;
        }
        let committed = self.log.committed();
        if last.index <= committed {
            // Nothing in it is new here: say how far this log is known to match.
            let outcome = AppendOutcome::Accepted { match_index: committed };
            self.send_append_reply(from, 0, outcome);
            return;
        }
        let length = chunk.len() as u64;
        match IncomingSnapshot::accept(&mut self.incoming_snapshot, last, total, offset, length) {
            Taken::Write { skip } => {
                let data = match usize::try_from(skip).expect("skip lies within the chunk") {
                    0 => chunk,
                    skip => chunk[skip..].to_vec(),
                };
                let offset = offset.checked_add(skip).expect("skip lies within the chunk");
                let received = ReceivedChunk { last, membership, total, offset, data };
                self.durability.snapshot_chunk_received(received);
                let barrier = self.durability.current_barrier();
                if let Some(incoming) = self.incoming_snapshot.as_mut() {
                    incoming.note_whole(barrier);
                }
            }
            Taken::Held => {}
            Taken::Refused => self.counters.snapshot_chunks_refused += 1,
        }
        let received = IncomingSnapshot::received_of(&self.incoming_snapshot, last, total);
        self.send_when_durable(from, Body::InstallSnapshotReply { last, received });
    }

    /// Asks the driver for the snapshot being received once every byte of it is durable.
    pub(crate) fn request_whole_snapshot(&mut self) {
        let Some(incoming) = self.incoming_snapshot.as_mut() else { return };
        let durability = &self.durability;
        if let Some(whole) = incoming.take_load_request(|id| durability.is_acknowledged(id)) {
            self.outbox.push_back(Output::LoadSnapshot(whole));
        }
    }

    /// The driver read back the snapshot received whole (`Output::LoadSnapshot`): install it,
    /// unless the log has moved past it meanwhile, and tell the leader.
    pub(crate) fn on_snapshot_loaded(&mut self, snapshot: SavedSnapshot) {
        let total = snapshot.bytes;
        let loading = self.incoming_snapshot.as_ref().and_then(IncomingSnapshot::loading);
        if loading != Some((snapshot.last, total)) {
            self.counters.dropped_unexpected += 1;
            return;
        }
        self.incoming_snapshot = None;
        let last = snapshot.last;
        // A leader holds every committed entry: it needs no snapshot of them.
        if last.index <= self.log.committed() || last.term > self.term || self.role == Role::Leader
        {
            return;
        }
        // A campaign begun while the snapshot was read back ends here: the snapshot's
        // membership replaces the one the campaign counts votes under, and may not have this
        // node as a voter.
        if matches!(self.role, Role::PreCandidate | Role::Candidate) {
            self.become_follower(self.term, None);
        }
        self.install_snapshot(snapshot);
        if let (Role::Follower, Some(leader)) = (self.role, self.leader) {
            let outcome = AppendOutcome::Accepted { match_index: last.index };
            self.send_append_reply(leader, 0, outcome);
        }
    }

    /// The driver found the snapshot received whole damaged on its disk: receive it again from
    /// its first byte (the leader learns so from the answer to its next chunk).
    pub(crate) fn on_snapshot_damaged(&mut self, last: LogId) {
        let loading = self.incoming_snapshot.as_ref().and_then(IncomingSnapshot::loading);
        if loading.is_none_or(|(loading, _)| loading != last) {
            self.counters.dropped_unexpected += 1;
            return;
        }
        self.incoming_snapshot = None;
        self.counters.received_snapshots_damaged += 1;
    }

    /// Installs the snapshot received whole, which the driver keeps on its disk: once the
    /// persist that installs it lands, it is the node's snapshot there, where chunks for
    /// followers are read (until then, chunks asked of it are dropped and go again later).
    fn install_snapshot(&mut self, snapshot: SavedSnapshot) {
        let (kept_suffix, dropped) =
            self.log.install_snapshot(snapshot.last, snapshot.membership.clone());
        self.dropped_by_install = Some(CompactedEntries::new(dropped));
        self.durability.snapshot_installed(snapshot.clone(), kept_suffix);
        self.outbox.push_back(Output::RestoreSnapshot(snapshot.clone()));
        let SavedSnapshot { last, membership, bytes } = snapshot;
        self.snapshot = Some(Snapshot { last, membership, data: Vec::new() });
        self.snapshot_on_disk = Some(bytes);
        self.counters.snapshots_installed += 1;
    }

    /// A follower's progress on the snapshot being sent to it.
    pub(crate) fn on_install_snapshot_reply(&mut self, from: NodeId, last: LogId, received: u64) {
        let Some(progress) = self.progress.get_mut(&from).filter(|_| self.role == Role::Leader)
        else {
            self.counters.dropped_unexpected += 1;
            return;
        };
        progress.on_heard(0);
        progress.on_snapshot_received(last, received);
        self.send_snapshot(from, false);
    }
}
