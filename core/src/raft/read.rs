//! Linearizable reads without writing to the log (ReadIndex, thesis §6.4): the leader's side
//! of [`Reads`](crate::raft::reads::Reads).

use crate::ids::NodeId;
use crate::raft::node::{NotLeader, Output, RaftNode, Role};
use crate::time::Instant;

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
            self.reads.await_commit(ctx);
        }
        Ok(())
    }

    /// Answers read `ctx` at the commit index at once if this node alone makes a quorum or
    /// holds a lease (see `raft::lease`), else once a new round is confirmed.
    fn register_read(&mut self, ctx: u64) {
        let index = self.log.committed();
        if self.is_sole_voter() {
            self.outbox.push_back(Output::ReadReady { ctx, index });
            return;
        }
        if self.lease_until().is_some() {
            self.counters.lease_reads += 1;
            self.outbox.push_back(Output::ReadReady { ctx, index });
            return;
        }
        self.reads.register(ctx, index, self.now);
    }

    /// Makes sure a round later than `peer`'s match round goes out, so that its answer settles
    /// an ambiguous rejection (see `Rejection::Ambiguous`).
    pub(crate) fn ask_again_in_a_new_round(&mut self, peer: NodeId) {
        let round = self.reads.round();
        if !self.progress_of(peer).is_newer_round(round) {
            self.reads.begin_round(self.now);
        }
    }

    /// The leader's current read round, carried by every append.
    pub(crate) fn read_round(&self) -> u64 {
        self.reads.round()
    }

    /// The leader committed an entry: reads waiting for its first commit can be registered.
    pub(crate) fn on_leader_commit(&mut self) {
        if self.log.term_at(self.log.committed()) == Some(self.term) {
            for ctx in self.reads.take_awaiting_commit() {
                self.register_read(ctx);
            }
        }
    }

    /// Whether a new round must go out now (at most one per drain, shared by all its reads).
    pub(crate) fn take_read_round_due(&mut self) -> bool {
        self.reads.take_round_due()
    }

    /// Answers every read whose round a quorum has confirmed.
    pub(crate) fn release_reads(&mut self) {
        // This node confirms every round it began.
        let confirmed = self.leader_quorum_value(u64::MAX, |progress| progress.read_round_acked());
        while let Some((ctx, index)) = self.reads.pop_confirmed(|round| round <= confirmed) {
            self.outbox.push_back(Output::ReadReady { ctx, index });
        }
        while let Some((follower, nonce, commit)) =
            self.reads.pop_confirmed_recovery(|round| round <= confirmed)
        {
            // A follower removed since is no longer tracked.
            if let Some(progress) = self.progress.get_mut(&follower) {
                progress.on_recovery_confirmed(nonce, commit);
            }
        }
    }

    /// A damaged follower's reply: unless a target is confirmed or being confirmed, registers
    /// the commit index as its target, to confirm with a new round. A leader that has not yet
    /// committed an entry of its own term waits; the follower's next reply asks again.
    pub(crate) fn request_recovery_target(&mut self, peer: NodeId) {
        let commit = self.log.committed();
        if self.log.term_at(commit) != Some(self.term) {
            return;
        }
        if let Some(nonce) = self.progress_of(peer).take_recovery_request() {
            self.reads.register_recovery(peer, nonce, commit, self.now);
        }
    }

    /// Leadership is lost (to `hint`, if known): every read in progress fails.
    pub(crate) fn abort_reads_on_step_down(&mut self, hint: Option<NodeId>) {
        let aborted = self.reads.abort_all();
        self.outbox.extend(aborted.map(|ctx| Output::ReadAborted { ctx, hint }));
    }
}
