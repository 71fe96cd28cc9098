//! The leader's linearizable reads in progress (ReadIndex, thesis §6.4), and its rounds.
//!
//! A read registered at commit index `c` may be answered once a majority has confirmed, after
//! the read was registered, that it still follows this leader: then no other leader can have
//! committed anything the read would miss. Confirmation rides on appends: each carries the
//! leader's latest round, each answer echoes it, so an answer to round `r` was sent after the
//! leader began `r` (which also settles ambiguous rejections, see `progress::Rejection`).
//! When each round began is remembered too, for leases (see `raft::lease`).

use std::collections::VecDeque;

use crate::ids::{LogIndex, NodeId};
use crate::raft::round_starts::RoundStarts;
use crate::time::Instant;

/// A read waiting for a majority to confirm a round.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    ctx: u64,
    index: LogIndex,
    round: u64,
}

/// A damaged follower's recovery target, confirmed like a read: the commit index when the
/// leader heard from it, once a majority of sound voters answered a later round.
#[derive(Clone, Copy, Debug)]
struct PendingRecovery {
    follower: NodeId,
    nonce: u64,
    commit: LogIndex,
    round: u64,
}

/// The reads of one leadership, and its rounds.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// The latest round; messages sent from now on carry it.
    round: u64,
    /// A new round has begun that no message carries yet.
    round_due: bool,
    /// When the recent rounds began.
    starts: RoundStarts,
    /// Reads registered before the leader committed an entry of its term: until then its
    /// commit index may lag behind what earlier leaders committed.
    awaiting_commit: Vec<u64>,
    /// Reads waiting for confirmation, in round order.
    pending: VecDeque<PendingRead>,
    /// Recovery targets waiting for confirmation, in round order.
    recoveries: VecDeque<PendingRecovery>,
}

impl Reads {
    /// Panics unless the reads waiting are in round order and within the rounds begun, the
    /// rounds' starts are in order and not after `now`, and a node that does not lead
    /// (`leading` false) holds no read and remembers no round.
    pub(crate) fn check_invariants(&self, leading: bool, now: Instant) {
        self.starts.check_invariants(now);
        let rounds = |rounds: &mut dyn Iterator<Item = u64>| {
            let mut previous = 0;
            for round in rounds {
                assert!(previous <= round && round <= self.round, "rounds out of order");
                previous = round;
            }
        };
        rounds(&mut self.pending.iter().map(|read| read.round));
        rounds(&mut self.recoveries.iter().map(|recovery| recovery.round));
        if !leading {
            assert!(
                self.pending.is_empty()
                    && self.awaiting_commit.is_empty()
                    && self.recoveries.is_empty()
                    && self.starts.is_empty(),
                "reads or rounds held by a node that does not lead"
            );
        }
    }

    /// The latest round, which every message sent from now on carries.
    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    /// Begins a new round at `now` unless one has begun that no message carries yet; returns
    /// it.
    pub(crate) fn begin_round(&mut self, now: Instant) -> u64 {
        if !self.round_due {
            self.round =
                self.round.checked_add(1).expect("a leadership begins fewer than 2^64 rounds");
            self.round_due = true;
            self.starts.began(self.round, now);
        }
        self.round
    }

    /// An instant no later than the start of `round`, if it is remembered.
    pub(crate) fn no_later_than_start_of(&self, round: u64) -> Option<Instant> {
        self.starts.no_later_than_start_of(round)
    }

    /// Forgets when the rounds so far began: their answers no longer give a lease.
    pub(crate) fn forget_round_starts(&mut self) {
        self.starts.forget();
    }

    /// Forgets when the rounds began, and remembers no more for the rest of the leadership:
    /// no lease until it ends.
    pub(crate) fn stop_remembering_round_starts(&mut self) {
        self.starts.stop();
    }

    /// Whether a new round must go out now; from now on messages carry it.
    pub(crate) fn take_round_due(&mut self) -> bool {
        std::mem::take(&mut self.round_due)
    }

    /// Registers read `ctx` at the read point `index`, to be confirmed by a new round begun
    /// at `now`.
    pub(crate) fn register(&mut self, ctx: u64, index: LogIndex, now: Instant) {
        let round = self.begin_round(now);
        self.pending.push_back(PendingRead { ctx, index, round });
    }

    /// Registers `commit` as the target of `follower`'s recovery `nonce`, to be confirmed by a
    /// new round begun at `now`.
    pub(crate) fn register_recovery(
        &mut self,
        follower: NodeId,
        nonce: u64,
        commit: LogIndex,
        now: Instant,
    ) {
        let round = self.begin_round(now);
        self.recoveries.push_back(PendingRecovery { follower, nonce, commit, round });
    }

    /// The next recovery target whose round `confirmed` says a majority answered, as
    /// (follower, nonce, commit index).
    pub(crate) fn pop_confirmed_recovery(
        &mut self,
        confirmed: impl Fn(u64) -> bool,
    ) -> Option<(NodeId, u64, LogIndex)> {
        let recovery = self.recoveries.front().filter(|recovery| confirmed(recovery.round))?;
        let ready = (recovery.follower, recovery.nonce, recovery.commit);
        self.recoveries.pop_front();
        Some(ready)
    }

    /// Holds read `ctx` until the leader has committed an entry of its own term.
    pub(crate) fn await_commit(&mut self, ctx: u64) {
        self.awaiting_commit.push(ctx);
    }

    /// The reads that waited for the leader's first commit in its term.
    pub(crate) fn take_awaiting_commit(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.awaiting_commit)
    }

    /// The next read, in round order, whose round `confirmed` says a majority answered, as
    /// (ctx, read point); it is no longer pending.
    pub(crate) fn pop_confirmed(
        &mut self,
        confirmed: impl Fn(u64) -> bool,
    ) -> Option<(u64, LogIndex)> {
        let read = self.pending.front().filter(|read| confirmed(read.round))?;
        let ready = (read.ctx, read.index);
        self.pending.pop_front();
        Some(ready)
    }

    /// Leadership ended: every read fails, and the rounds (and their starts) start again with
    /// the next one.
    /// Returns the reads' ctxs.
    pub(crate) fn abort_all(&mut self) -> impl Iterator<Item = u64> + use<> {
        let reads = std::mem::take(self);
        reads.awaiting_commit.into_iter().chain(reads.pending.into_iter().map(|read| read.ctx))
    }
}
