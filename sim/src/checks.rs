//! Safety checked from outside, as the run goes: what every node says and does is compared
//! with what every other node said and did before.

use core::fmt;
use std::collections::BTreeMap;

use raftkv_core::raft::{
    AppendOutcome, Body, Entry, HardState, Membership, Message, Payload, Persist, RaftNode, Role,
};
use raftkv_core::server::Replica;
use raftkv_core::{Instant, LogId, LogIndex, NodeId, StateMachine, Term};

use raftkv_testkit::Durable;

use crate::node_ids::node_id;
use crate::trace::Fnv64;

/// The property a run broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Two leaders in one term.
    ElectionSafety,
    /// Two logs hold the same (index, term) with different entries or predecessors.
    LogMatching,
    /// A committed entry changed, or a new leader lacks one (leader completeness).
    LeaderCompleteness,
    /// A replica applied something other than the committed entry at an index.
    StateMachineSafety,
    /// A replica's applied index or snapshot went backwards.
    AppliedBackwards,
    /// A node promised (a vote, an acknowledgement) what its disk does not hold.
    Durability,
    /// A node asked its disk for something impossible, or could not restart from it.
    Storage,
    /// A node's log, on its disk or in its memory, holds more than compaction allows.
    LogSize,
    /// A node received what no correct peer sends: a malformed message.
    Protocol,
    /// Replicas at the same applied index hold different states.
    Divergence,
    /// A client got an answer of the wrong kind, or a valid command was refused.
    Client,
    /// An operation did not return in time after the faults stopped, or replicas did not
    /// catch up.
    Liveness,
    /// The history is not linearizable.
    Linearizability,
    /// Core panicked.
    Panic,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::ElectionSafety => "election safety",
            Check::LogMatching => "log matching",
            Check::LeaderCompleteness => "leader completeness",
            Check::StateMachineSafety => "state machine safety",
            Check::AppliedBackwards => "applied index went backwards",
            Check::Durability => "durability",
            Check::Storage => "storage",
            Check::LogSize => "log size",
            Check::Protocol => "protocol",
            Check::Divergence => "replica divergence",
            Check::Client => "client",
            Check::Liveness => "liveness",
            Check::Linearizability => "linearizability",
            Check::Panic => "panic",
        })
    }
}

/// A broken property, when and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time of the discovery.
    pub at: Instant,
    /// What broke.
    pub check: Check,
    /// The evidence.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.check, self.at, self.detail)
    }
}

/// A failed check, before the simulator stamps it with the time.
pub(crate) type Failed = (Check, String);

/// An entry as the checks remember it: its term and a hash of its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Digest {
    term: Term,
    payload: u64,
}

impl Digest {
    fn of(entry: &Entry) -> Digest {
        let payload = match &entry.payload {
            Payload::Noop => Fnv64::of(b"noop"),
            Payload::Command(bytes) => Fnv64::of(bytes),
            Payload::Membership(membership) => membership_digest(membership),
        };
        Digest { term: entry.term, payload }
    }
}

/// The digest of a membership entry's payload (rare: apart, so that `Digest::of` stays small).
#[cold]
fn membership_digest(membership: &Membership) -> u64 {
    Fnv64::of(format!("{membership:?}").as_bytes())
}

/// A committed log position.
#[derive(Clone, Copy, Debug)]
struct Committed {
    /// The entry (`None`: compacted into a snapshot before the checks saw it).
    digest: Option<Digest>,
    /// The term in which it was committed: the lowest term of a node seen committing it (its
    /// leader sees it first). Leaders of later terms must hold it.
    term: Term,
}

/// What the checks last saw of one node in its current life.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    commit: LogIndex,
    applied: LogIndex,
}

/// The global record every node is checked against.
pub(crate) struct Checks {
    /// The leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// Every entry any node ever wrote, by id: the term of its predecessor (if known) and its
    /// digest. Two logs holding one id must agree on both (log matching, by induction).
    written: BTreeMap<LogId, (Option<Term>, u64)>,
    /// Entries known committed, from index 1.
    committed: Vec<Committed>,
    seen: Vec<Seen>,
    /// Per node, the term and index up to which its durable log was compared with its log in
    /// memory (a leader only appends within its term, so in one term a range needs checking
    /// once).
    verified: Vec<(Term, LogIndex)>,
    /// The latest durable snapshot index of each node: it never goes back.
    snapshot_index: Vec<LogIndex>,
}

impl Checks {
    pub(crate) fn new(nodes: usize) -> Checks {
        Checks {
            leaders: BTreeMap::new(),
            written: BTreeMap::new(),
            committed: Vec::new(),
            seen: vec![Seen::default(); nodes],
            verified: vec![(Term(0), LogIndex(0)); nodes],
            snapshot_index: vec![LogIndex(0); nodes],
        }
    }

    /// Starts checking one more node, at the next position.
    pub(crate) fn add_node(&mut self) {
        self.seen.push(Seen::default());
        self.verified.push((Term(0), LogIndex(0)));
        self.snapshot_index.push(LogIndex(0));
    }

    /// The term of the entry committed at `index`, if a node has committed it.
    pub(crate) fn committed_term(&self, index: LogIndex) -> Option<Term> {
        self.committed_at(index).map(|digest| digest.term)
    }

    fn committed_at(&self, index: LogIndex) -> Option<Digest> {
        let offset = usize::try_from(index.0.checked_sub(1)?).ok()?;
        self.committed.get(offset)?.digest
    }

    /// Records that node in term `term` sees the entry at `index` committed (`digest: None`:
    /// its content is unknown). Commits come in index order, so the record has no gap.
    fn record_committed(&mut self, index: LogIndex, digest: Option<Digest>, term: Term) {
        let offset = (index.0 - 1) as usize;
        match self.committed.get_mut(offset) {
            Some(known) => {
                known.digest = known.digest.or(digest);
                known.term = known.term.min(term);
            }
            None => {
                debug_assert_eq!(offset, self.committed.len(), "a gap in the committed record");
                self.committed.push(Committed { digest, term });
            }
        }
    }

    /// A node reports a new role: one leader per term, and a new leader holds every committed
    /// entry.
    pub(crate) fn on_role<S: StateMachine>(
        &mut self,
        role: Role,
        term: Term,
        replica: &Replica<S>,
    ) -> Result<(), Failed> {
        if role != Role::Leader {
            return Ok(());
        }
        let id = replica.raft().id();
        if let Some(&other) = self.leaders.get(&term) {
            if other != id {
                return Err((
                    Check::ElectionSafety,
                    format!("n{id} and n{other} both lead term {term}"),
                ));
            }
        }
        self.leaders.insert(term, id);
        let raft = replica.raft();
        let last = raft.status().last_log.index;
        // Entries committed in earlier terms, which this leader must hold.
        let owed = self.committed.partition_point(|committed| committed.term < term) as u64;
        if last.0 < owed {
            return Err((
                Check::LeaderCompleteness,
                format!(
                    "n{id} leads term {term} with a log ending at {last}, but entries up to {owed} were committed before"
                ),
            ));
        }
        for index in 1..=owed {
            let index = LogIndex(index);
            let Some(expected) = self.committed_at(index) else { continue };
            match raft.term_at(index) {
                Some(term_held) if term_held != expected.term => {
                    return Err((
                        Check::LeaderCompleteness,
                        format!(
                            "n{id} leads term {term} with entry {index}/{term_held}, but {index}/{} was committed before",
                            expected.term
                        ),
                    ));
                }
                // Compacted into its snapshot, or held: both fine.
                _ => {}
            }
        }
        Ok(())
    }

    /// A node hands its disk a persist: what it writes must agree with every log (log
    /// matching). It may differ from the committed record: a node behind in an old term
    /// takes entries from that term's leader, and only its commit point is checked.
    pub(crate) fn on_persist<S: StateMachine>(
        &mut self,
        persist: &Persist,
        replica: &Replica<S>,
    ) -> Result<(), Failed> {
        let raft = replica.raft();
        let id = raft.id();
        let mut prev_term =
            persist.entries.first().and_then(|first| raft.term_at(first.index.prev()));
        for entry in &persist.entries {
            let digest = Digest::of(entry);
            match self.written.get(&entry.id()) {
                Some(&(known_prev, payload)) => {
                    if payload != digest.payload {
                        return Err((
                            Check::LogMatching,
                            format!(
                                "n{id} writes entry {} with a payload other nodes hold differently",
                                entry.id()
                            ),
                        ));
                    }
                    if let (Some(known), Some(prev)) = (known_prev, prev_term) {
                        if known != prev {
                            return Err((
                                Check::LogMatching,
                                format!(
                                    "n{id} writes entry {} after an entry of term {prev}, elsewhere it follows term {known}",
                                    entry.id()
                                ),
                            ));
                        }
                    }
                }
                None => {
                    self.written.insert(entry.id(), (prev_term, digest.payload));
                }
            }
            prev_term = Some(entry.term);
        }
        Ok(())
    }

    /// A node sends a message: a vote grant or an acknowledgement of entries must describe
    /// what its disk already holds (the node may crash right after sending it).
    pub(crate) fn on_send<S: StateMachine>(
        &mut self,
        node: usize,
        message: &Message,
        durable: &Durable,
        replica: &Replica<S>,
    ) -> Result<(), Failed> {
        match &message.body {
            Body::VoteReply { granted: true } => {
                // A later durable term also keeps the node from voting again in this one.
                let promised =
                    HardState { term: message.term, vote: Some(message.to), damaged: false };
                if durable.hard_state != promised && durable.hard_state.term <= message.term {
                    return Err((
                        Check::Durability,
                        format!("{message} sent while the disk holds {}", durable.hard_state),
                    ));
                }
            }
            Body::AppendReply { outcome: AppendOutcome::Accepted { match_index }, .. } => {
                if durable.hard_state.term > message.term {
                    // Released after the node durably moved to a newer term, whose leader may
                    // have made it drop the entries. The old leader cannot commit with it: any
                    // quorum it gathers meets the newer leader's voters, who never ack the old
                    // term again and held no entry beyond that leader's log.
                    return Ok(());
                }
                // The promise is about entries; the term it is sent in may still be on its
                // way to the disk (a node tells a stale leader its newer term at once).
                if durable.last_index() < *match_index {
                    return Err((
                        Check::Durability,
                        format!(
                            "{message} sent while the disk holds entries up to {}",
                            durable.last_index()
                        ),
                    ));
                }
                let raft = replica.raft();
                if raft.term() != message.term {
                    // The log in memory may already follow a newer leader; the disk is behind it.
                    return Ok(());
                }
                let (verified_term, verified) = self.verified[node];
                let mut first = durable.snapshot_index().next();
                if verified_term == message.term {
                    first = first.max(verified.next());
                }
                for index in first.0..=match_index.0 {
                    let index = LogIndex(index);
                    let on_disk = durable.entry(index).map(|entry| entry.term);
                    let in_memory = raft.term_at(index);
                    if in_memory.is_some() && on_disk != in_memory {
                        return Err((
                            Check::Durability,
                            format!(
                                "{message} sent while the disk holds {index}/{} and the log {index}/{}",
                                on_disk.map_or("none".to_string(), |t| t.to_string()),
                                in_memory.map_or("none".to_string(), |t| t.to_string())
                            ),
                        ));
                    }
                }
                let verified = if verified_term == message.term { verified } else { LogIndex(0) };
                self.verified[node] = (message.term, verified.max(*match_index));
            }
            _ => {}
        }
        Ok(())
    }

    /// After every step of a node: what it committed agrees with the committed record (and
    /// extends it), and what it applied is what was committed, never going back.
    pub(crate) fn after_step<S: StateMachine>(
        &mut self,
        node: usize,
        replica: &Replica<S>,
    ) -> Result<(), Failed> {
        let raft = replica.raft();
        let status = raft.status();
        let seen = self.seen[node];
        let id = status.id;
        let counters = raft.counters();
        if counters.dropped_malformed > 0 {
            return Err((
                Check::Protocol,
                format!(
                    "n{id} dropped {} malformed messages; every peer here is correct",
                    counters.dropped_malformed
                ),
            ));
        }
        // Entries newly committed or applied may be compacted already (a replica that
        // snapshots after every batch does so within the step that commits them), or out of
        // memory (past the log cache, within the step that applies them).
        let from = seen.commit.min(seen.applied).next();
        let compacted = self.compacted(status.snapshot_last, from);
        let evicted_last = status.snapshot_last.index.plus(status.log_evicted_entries as u64);
        let evicted = self.evicted(raft, from, evicted_last);
        let digest_at = |index: LogIndex| {
            let known = compacted.get(&index).or_else(|| evicted.get(&index)).copied();
            raft.entry(index).map(Digest::of).or(known)
        };
        if status.commit > seen.commit {
            for index in seen.commit.0 + 1..=status.commit.0 {
                let index = LogIndex(index);
                let digest = digest_at(index);
                if let (Some(digest), Some(known)) = (digest, self.committed_at(index)) {
                    if known != digest {
                        return Err((
                            Check::LeaderCompleteness,
                            format!(
                                "n{id} commits {index}/{} where {index}/{} was committed",
                                digest.term, known.term
                            ),
                        ));
                    }
                }
                self.record_committed(index, digest, status.term);
            }
            self.seen[node].commit = status.commit;
        }
        let applied = replica.applied();
        if applied < seen.applied {
            return Err((
                Check::AppliedBackwards,
                format!("n{id} applied {applied} after {}", seen.applied),
            ));
        }
        if applied > status.commit {
            return Err((
                Check::StateMachineSafety,
                format!("n{id} applied {applied} beyond its commit {}", status.commit),
            ));
        }
        for index in seen.applied.0 + 1..=applied.0 {
            let index = LogIndex(index);
            let (Some(digest), Some(known)) = (digest_at(index), self.committed_at(index)) else {
                continue; // Compacted beyond the entries whose predecessors are known.
            };
            if digest != known {
                return Err((
                    Check::StateMachineSafety,
                    format!(
                        "n{id} applied {index}/{} where {index}/{} was committed",
                        digest.term, known.term
                    ),
                ));
            }
        }
        self.seen[node].applied = applied;
        Ok(())
    }

    /// The entries from `from` up to `snapshot_last` that a node's log held before it
    /// compacted them (or that the leader's held, for a snapshot installed from it): by log
    /// matching, the entries written with those ids, chained back from the snapshot point
    /// through their predecessors' terms. The chain stops where a predecessor's term was never
    /// seen.
    fn compacted(&self, snapshot_last: LogId, from: LogIndex) -> BTreeMap<LogIndex, Digest> {
        let mut chain = BTreeMap::new();
        let mut id = snapshot_last;
        while id.index >= from && id.index.0 > 0 {
            let Some(&(prev_term, payload)) = self.written.get(&id) else { break };
            chain.insert(id.index, Digest { term: id.term, payload });
            let Some(prev_term) = prev_term else { break };
            id = LogId::new(id.index.prev(), prev_term);
        }
        chain
    }

    /// The entries from `from` up to `last` that a node's log let go of from memory, past its
    /// log cache: those written with their ids (the log still knows their terms).
    fn evicted(
        &self,
        raft: &RaftNode,
        from: LogIndex,
        last: LogIndex,
    ) -> BTreeMap<LogIndex, Digest> {
        let digest = |index: LogIndex| {
            let term = raft.term_at(index)?;
            let &(_, payload) = self.written.get(&LogId::new(index, term))?;
            Some((index, Digest { term, payload }))
        };
        (from.0..=last.0).filter_map(|index| digest(LogIndex(index))).collect()
    }

    /// A node restarted from its disk: it starts from its snapshot, which never goes back
    /// unless the disk was `damaged`.
    pub(crate) fn on_restart<S: StateMachine>(
        &mut self,
        node: usize,
        durable: &Durable,
        replica: &Replica<S>,
        damaged: bool,
    ) -> Result<(), Failed> {
        let snapshot = durable.snapshot_index();
        let id = replica.raft().id();
        // A damaged disk may have dropped its snapshot with the rest: the node catches up.
        if snapshot < self.snapshot_index[node] && !damaged {
            return Err((
                Check::AppliedBackwards,
                format!(
                    "n{id} restarts from a snapshot at {snapshot} after one at {}",
                    self.snapshot_index[node]
                ),
            ));
        }
        self.snapshot_index[node] = snapshot;
        let applied = replica.applied();
        if applied != snapshot {
            return Err((
                Check::AppliedBackwards,
                format!("n{id} restarts at applied {applied}, its snapshot is at {snapshot}"),
            ));
        }
        self.seen[node] = Seen { commit: replica.raft().commit_index(), applied };
        self.verified[node] = (Term(0), LogIndex(0));
        Ok(())
    }

    /// A persist became durable: the disk's snapshot never goes back.
    pub(crate) fn on_durable(&mut self, node: usize, durable: &Durable) -> Result<(), Failed> {
        let snapshot = durable.snapshot_index();
        if snapshot < self.snapshot_index[node] {
            return Err((
                Check::AppliedBackwards,
                format!(
                    "n{}'s disk replaces its snapshot at {} by one at {snapshot}",
                    node_id(node),
                    self.snapshot_index[node]
                ),
            ));
        }
        self.snapshot_index[node] = snapshot;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u64, term: u64) -> LogId {
        LogId::new(LogIndex(index), Term(term))
    }

    #[test]
    fn compacted_entries_are_found_back_through_their_predecessors_terms() {
        let mut checks = Checks::new(1);
        checks.written.insert(id(1, 1), (Some(Term(0)), 11));
        checks.written.insert(id(2, 1), (Some(Term(1)), 12));
        checks.written.insert(id(3, 2), (Some(Term(1)), 13));
        // Another node's entry at 3, from a term whose leader did not commit it.
        checks.written.insert(id(3, 1), (Some(Term(1)), 99));
        checks.written.insert(id(4, 2), (None, 14));
        let chain = checks.compacted(id(3, 2), LogIndex(2));
        let found: Vec<(u64, u64, u64)> =
            chain.iter().map(|(index, d)| (index.0, d.term.0, d.payload)).collect();
        assert_eq!(found, [(2, 1, 12), (3, 2, 13)]);
        // A predecessor whose term was never seen ends the chain.
        assert_eq!(checks.compacted(id(4, 2), LogIndex(1)).len(), 1);
    }
}
