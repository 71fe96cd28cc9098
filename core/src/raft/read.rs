//! Linearizable reads without writing to the log (ReadIndex, thesis §6.4).
//!
//! A read registered at commit index `c` may be answered once the state machine has applied
//! `c` and the leader has confirmed, after registering it, that a majority still follows it:
//! then no other leader can have committed anything the read would miss. Confirmation rides on
//! appends: each carries the leader's latest read round, each answer echoes it.

use std::collections::VecDeque;

use crate::ids::{LogIndex, NodeId};
use crate::raft::node::{NotLeader, Output, RaftNode, Role};
use crate::time::Instant;

/// A read waiting for a majority to confirm a round.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRead {
    ctx: u64,
    index: LogIndex,
    round: u64,
}

/// The leader's reads in progress, and its rounds: every append carries the latest round and
/// every answer echoes it, so an answer to round `r` was sent after the leader began `r`.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// The latest round; messages sent from now on carry it.
    pub(crate) round: u64,
    /// A new round has begun that no message carries yet.
    round_due: bool,
    /// Reads registered before the leader committed an entry of its term: until then its
    /// commit index may lag behind what earlier leaders committed.
    awaiting_commit: Vec<u64>,
    /// Reads waiting for confirmation, in round order.
    pending: VecDeque<PendingRead>,
}

impl Reads {
    /// Panics unless the reads waiting are in round order and within the rounds begun, and a
    /// node that does not lead (`leading` false) holds none.
    pub(crate) fn check_invariants(&self, leading: bool) {
        let mut previous = 0;
        for read in &self.pending {
            assert!(previous <= read.round && read.round <= self.round, "reads out of order");
            previous = read.round;
        }
        if !leading {
            assert!(
                self.pending.is_empty() && self.awaiting_commit.is_empty(),
                "reads held by a node that does not lead"
            );
        }
    }

    /// Begins a new round unless one has begun that no message carries yet; returns it.
    fn begin_round(&mut self) -> u64 {
        if !self.round_due {
            self.round += 1;
            self.round_due = true;
        }
        self.round
    }
}

impl RaftNode {
    /// Asks for a linearizable read point. The node answers with `Output::ReadReady { ctx,
    /// index }` once it is safe to serve the read from a state machine that has applied
    /// `index`, or `Output::ReadAborted { ctx, .. }` if it loses leadership first.
    pub fn read_index(&mut self, now: Instant, ctx: u64) -> Result<(), NotLeader> {
        self.now = self.now.max(now);
        if self.role != Role::Leader {
            return Err(NotLeader { hint: self.leader });
        }
        if self.log.term_at(self.log.committed()) == Some(self.term) {
            self.register_read(ctx);
        } else {
            self.reads.awaiting_commit.push(ctx);
        }
        Ok(())
    }

    fn register_read(&mut self, ctx: u64) {
        let index = self.log.committed();
        if self.peers.is_empty() {
            self.outbox.push_back(Output::ReadReady { ctx, index });
            return;
        }
        let round = self.reads.begin_round();
        self.reads.pending.push_back(PendingRead { ctx, index, round });
    }

    /// Makes sure a round later than `peer`'s match round goes out, so that its answer settles
    /// an ambiguous rejection (see `Rejection::Ambiguous`).
    pub(crate) fn ask_again_in_a_new_round(&mut self, peer: usize) {
        if !self.progress[peer].is_newer_round(self.reads.round) {
            self.reads.begin_round();
        }
    }

    /// The leader's current read round, carried by every append.
    pub(crate) fn read_round(&self) -> u64 {
        self.reads.round
    }

    /// The leader committed an entry: reads waiting for its first commit can be registered.
    pub(crate) fn on_leader_commit(&mut self) {
        if self.log.term_at(self.log.committed()) == Some(self.term) {
            for ctx in std::mem::take(&mut self.reads.awaiting_commit) {
                self.register_read(ctx);
            }
        }
    }

    /// Whether a new round must go out now (at most one per drain, shared by all its reads).
    pub(crate) fn take_read_round_due(&mut self) -> bool {
        std::mem::take(&mut self.reads.round_due)
    }

    /// Answers every read whose round a majority has confirmed.
    pub(crate) fn release_reads(&mut self) {
        while let Some(read) = self.reads.pending.front().copied() {
            let confirmed =
                1 + self.progress.iter().filter(|p| p.read_round_acked >= read.round).count();
            if confirmed < self.quorum() {
                break;
            }
            self.reads.pending.pop_front();
            self.outbox.push_back(Output::ReadReady { ctx: read.ctx, index: read.index });
        }
    }

    /// Leadership is lost (to `hint`, if known): every read in progress fails.
    pub(crate) fn abort_reads_on_step_down(&mut self, hint: Option<NodeId>) {
        let reads = std::mem::take(&mut self.reads);
        let aborted = reads.awaiting_commit.into_iter().chain(reads.pending.iter().map(|r| r.ctx));
        self.outbox.extend(aborted.map(|ctx| Output::ReadAborted { ctx, hint }));
    }
}
