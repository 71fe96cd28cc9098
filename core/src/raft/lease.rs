//! Lease reads (`Config::read_lease`, off by default): while its lease holds, a leader answers
//! a linearizable read at its commit index at once, without the round of messages a ReadIndex
//! read waits for. Without a lease (or without the option) reads fall back to ReadIndex.
//!
//! # Why no other leader commits anything while a lease holds
//!
//! Let `span` = `election_timeout_ms_min` × (1 − d) / (1 + d), d = `max_clock_drift_ppm`.
//!
//! 1. **The voters' promise.** A node with `read_lease` that hears from the leader of its term
//!    at its clock's `c` grants no vote before `c + election_timeout_ms_min` on its own clock
//!    (`vote_promise_until`), except to a candidate a leader sent (`Vote { transfer: true }`,
//!    after `TimeoutNow`). Unlike leader stickiness, the promise survives a change of term (a
//!    stale reply can raise a node's term without any leader being elected) and also covers
//!    votes in the node's own term. Nor does the node vote for itself before then: its
//!    election timer runs at least as long, and `campaign` is refused. A node that restarts
//!    has forgotten what it promised, at most `election_timeout_ms_min` from an instant before
//!    it crashed: it promises again from its start (its first `now`), which covers it. In that
//!    window it also refuses pre-votes; the argument does not need that (a pre-vote grant
//!    changes nothing, the vote that follows is refused), but it spares the cluster terms
//!    raised in vain.
//! 2. **Rounds date the promises.** Every append carries the leader's latest read round,
//!    every answer echoes it, and the leader remembers an instant no later than each recent
//!    round's start (`RoundStarts`). A voter that answered round `r` heard from the leader
//!    after `r` began at leader time `s(r)`, so its promise lasts `election_timeout_ms_min` on
//!    its clock from a real instant after `s(r)`. Its clock runs at most 1 + d times real
//!    time and the leader's at least 1 − d times, so the leader's clock reads at least
//!    `s(r) + span` before that promise ends. The lease starts at `t`, the value a quorum
//!    reaches of `s(r)` over the rounds each voter answered (the leader counting as `now`,
//!    the same quorum function as commits and ReadIndex, so a joint membership needs both
//!    halves), and holds while `now < t + span`: until then a quorum is bound by promises.
//!    With `read_lease` each heartbeat begins a round, so the lease keeps being renewed.
//! 3. **No other leader.** Suppose a leader of a later term were elected while the lease holds;
//!    take the first. Its voters form a quorum of its membership, which meets the quorum bound
//!    by promises (the intersection ReadIndex relies on; the lease is dropped whenever the
//!    leader appends a membership, so its quorum is that of the membership in force). The
//!    node in both broke its promise, unless it granted a transfer vote. A transfer vote in
//!    the first later term comes from a candidate this leader sent `TimeoutNow`: so a leader
//!    gives up its lease for the rest of its term when it starts a transfer (the `TimeoutNow`
//!    may outlive the transfer in the network). So no other leader commits while the lease
//!    holds, and a leader that has committed an entry of its term holds every entry committed
//!    before (as for ReadIndex): its commit index is a linearizable read point at the call.
//!
//! What this trusts beyond Raft: clock rates within d of real time, and a fresh `now` on every
//! node. A driver that reads its clock once per turn and then stalls (descheduled, paused,
//! swapping) before handling what the turn received passes a `now` that is late: a leader may
//! answer from a lease that has ended, a follower dates its promise too early. Such a stall
//! eats into the margin the drift bound leaves when clocks are in fact good: at the defaults
//! 300 ms × (1 − 0.9 / 1.1) ≈ 55 ms. Step-down, a new term, a membership change and the start
//! of a transfer all drop the lease.

use crate::raft::config::PPM;
use crate::raft::node::{RaftNode, Role};
use crate::time::{Duration, Instant};

impl RaftNode {
    /// How long a lease lasts in the leader's clock from the start of the rounds it rests on:
    /// the minimal election timeout, shortened for the clock drift both ways. Never longer.
    pub(crate) fn lease_span(&self) -> Duration {
        let drift = u128::from(self.config.max_clock_drift_ppm);
        let timeout = u128::from(self.election_timeout_min().as_nanos());
        let nanos = timeout * (u128::from(PPM) - drift) / (u128::from(PPM) + drift);
        Duration::from_nanos(u64::try_from(nanos).expect("shorter than the election timeout"))
    }

    /// Until when (excluded) this node may answer reads alone, if it holds a lease now: it
    /// leads with `read_lease`, no transfer has begun in its term, and a quorum answered
    /// rounds recent enough (see the module documentation).
    pub(crate) fn lease_until(&self) -> Option<Instant> {
        if !self.config.read_lease || self.role != Role::Leader || self.transfer.is_some() {
            return None;
        }
        let start = self.leader_quorum_value(Some(self.now), |progress| {
            self.reads.no_later_than_start_of(progress.read_round_acked())
        })?;
        assert!(start <= self.now, "a lease resting on a round begun in the future");
        let until = start + self.lease_span();
        (self.now < until).then_some(until)
    }

    /// A heartbeat goes out now: with `read_lease` it begins a new round, so that its answers
    /// renew the lease.
    pub(crate) fn begin_heartbeat_round(&mut self) {
        if self.config.read_lease {
            self.reads.begin_round(self.now);
            // The heartbeat about to go out carries it.
            self.reads.take_round_due();
        }
    }

    /// The membership in force changes: the answers so far came from the one before.
    pub(crate) fn drop_lease(&mut self) {
        self.reads.forget_round_starts();
    }

    /// A transfer begins: no lease for the rest of this term, as its target's votes bypass the
    /// voters' promises.
    pub(crate) fn forfeit_lease(&mut self) {
        self.reads.stop_remembering_round_starts();
    }

    /// With `read_lease`: this node heard from its leader (or starts): it grants no vote for a
    /// minimal election timeout from now, except to a transfer candidate.
    pub(crate) fn promise_votes(&mut self) {
        if self.config.read_lease {
            let until = self.now + self.election_timeout_min();
            self.vote_promise_until = self.vote_promise_until.max(until);
        }
    }

    /// Whether this node's promise forbids a vote now (for a candidate no leader sent).
    pub(crate) fn bound_by_vote_promise(&self) -> bool {
        self.now < self.vote_promise_until
    }

    /// Panics if a promise outlives its bound, a node without `read_lease` holds one, or a
    /// lease is held by a non-leader, during a transfer, or for longer than its span.
    pub(crate) fn check_lease_invariants(&self) {
        assert!(
            self.vote_promise_until <= self.now + self.election_timeout_min(),
            "a vote promise longer than the election timeout"
        );
        assert!(
            self.config.read_lease || self.vote_promise_until == Instant::ZERO,
            "a vote promise made without read_lease"
        );
        if let Some(until) = self.lease_until() {
            assert!(self.role == Role::Leader && self.transfer.is_none(), "a lease held amiss");
            assert!(
                until <= self.now + self.lease_span()
                    && self.lease_span() <= self.election_timeout_min(),
                "a lease outliving its bound"
            );
        }
    }

    fn election_timeout_min(&self) -> Duration {
        Duration::from_millis(self.config.election_timeout_ms_min)
    }
}
