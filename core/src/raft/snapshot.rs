//! Snapshots: compacting the log behind the state machine, and bringing a follower that needs
//! compacted entries up to date with the leader's snapshot, sent in chunks.

use crate::ids::{LogId, NodeId};
use crate::raft::message::{AppendOutcome, Body};
use crate::raft::node::{Output, RaftNode, Role};
use crate::raft::persist::Snapshot;
use crate::raft::progress::{Progress, ReplicationState};

/// A snapshot being received from the leader.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    last: LogId,
    total: u64,
    data: Vec<u8>,
}

impl RaftNode {
    /// Replaces the applied part of the log with `data`, the state machine's snapshot at the
    /// applied index. The snapshot is persisted like any other change; the node keeps it to send
    /// to followers that fall behind. Returns the last entry it covers, or `None` if nothing
    /// new was applied since the last snapshot.
    pub fn compact(&mut self, data: Vec<u8>) -> Option<LogId> {
        let applied = self.log.applied();
        if applied <= self.log.snapshot_last().index {
            return None;
        }
        let last = LogId::new(applied, self.log.term_at(applied)?);
        self.log.compact_to(last);
        let snapshot = Snapshot { last, data };
        self.durability.snapshot_taken(snapshot.clone());
        // Followers still receiving an older snapshot get this one instead.
        for progress in &mut self.progress {
            if matches!(progress.state, ReplicationState::Snapshot { .. }) {
                progress.start_snapshot(last);
            }
        }
        self.snapshot = Some(snapshot);
        self.counters.snapshots_taken += 1;
        Some(last)
    }

    /// The latest snapshot this node holds (its own or one installed from a leader).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The last entry of the leader's snapshot this node holds part of, still incomplete.
    pub fn snapshot_receiving(&self) -> Option<LogId> {
        self.incoming_snapshot.as_ref().map(|incoming| incoming.last)
    }

    /// Leader only: how many followers it is sending its snapshot to.
    pub fn snapshots_sending(&self) -> usize {
        let sending =
            |progress: &&Progress| matches!(progress.state, ReplicationState::Snapshot { .. });
        if self.role == Role::Leader { self.progress.iter().filter(sending).count() } else { 0 }
    }

    /// Sends a follower the chunks of the snapshot its window allows. With `resend`, a
    /// heartbeat: chunks not confirmed go again, and at least one chunk goes (the follower
    /// answers it even when it already installed the snapshot).
    pub(crate) fn send_snapshot(&mut self, peer: usize, resend: bool) {
        let Some(snapshot) = &self.snapshot else { return };
        let progress = &mut self.progress[peer];
        let ReplicationState::Snapshot { last, .. } = progress.state else { return };
        if last != snapshot.last {
            progress.start_snapshot(snapshot.last);
        }
        if resend {
            progress.on_heartbeat();
        }
        let total = snapshot.data.len() as u64;
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let window = self.config.max_inflight_snapshot_chunks as u64;
        let mut chunks = Vec::new();
        while let Some(chunk) = progress.next_snapshot_chunk(total, chunk_bytes, window) {
            chunks.push(chunk);
        }
        if chunks.is_empty() && resend {
            if let ReplicationState::Snapshot { acked, .. } = progress.state {
                chunks.push((acked, (total - acked).min(chunk_bytes)));
            }
        }
        let (to, term, last) = (self.peers[peer], self.term, snapshot.last);
        for (offset, length) in chunks {
            let Some(snapshot) = &self.snapshot else { return };
            let range = offset as usize..(offset + length) as usize;
            let chunk = snapshot.data[range].to_vec();
            self.send(to, term, Body::InstallSnapshot { last, total, offset, chunk });
        }
    }

    /// A chunk of the leader's snapshot.
    pub(crate) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        last: LogId,
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
            self.send_when_durable(from, Body::AppendReply { read_round: 0, outcome });
            return;
        }
        let incoming = match self.incoming_snapshot.take() {
            Some(incoming) if incoming.last == last && incoming.total == total => incoming,
            // A new snapshot starts at its first byte; anything else waits for a resend.
            _ if offset == 0 => IncomingSnapshot { last, total, data: Vec::new() },
            _ => {
                self.send(from, self.term, Body::InstallSnapshotReply { last, received: 0 });
                return;
            }
        };
        let mut incoming = incoming;
        if offset == incoming.data.len() as u64 {
            incoming.data.extend_from_slice(&chunk);
        }
        let received = incoming.data.len() as u64;
        if received < total {
            self.incoming_snapshot = Some(incoming);
            self.send(from, self.term, Body::InstallSnapshotReply { last, received });
            return;
        }
        self.install_snapshot(Snapshot { last, data: incoming.data });
        self.on_leader_commit_known(last.index);
        let outcome = AppendOutcome::Accepted { match_index: last.index };
        self.send_when_durable(from, Body::AppendReply { read_round: 0, outcome });
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let kept_suffix = self.log.install_snapshot(snapshot.last);
        self.durability.snapshot_installed(snapshot.clone(), kept_suffix);
        self.outbox.push_back(Output::RestoreSnapshot(snapshot.clone()));
        self.snapshot = Some(snapshot);
        self.counters.snapshots_installed += 1;
    }

    /// A follower's progress on the snapshot being sent to it.
    pub(crate) fn on_install_snapshot_reply(&mut self, from: NodeId, last: LogId, received: u64) {
        let Some(peer) = self.peer_index(from).filter(|_| self.role == Role::Leader) else {
            self.counters.dropped_unexpected += 1;
            return;
        };
        self.progress[peer].recent_active = true;
        self.progress[peer].on_snapshot_received(last, received);
        self.send_snapshot(peer, false);
    }
}
