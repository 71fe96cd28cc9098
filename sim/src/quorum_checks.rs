//! Joint consensus checked from outside: every election won and every commit a leader makes
//! must rest on the votes and acknowledgements the simulator saw delivered to it, from a
//! majority of the voters of the membership it uses and, while that membership is joint, from
//! a majority of the outgoing voters too. Two such quorums, of one membership or of two
//! memberships one joint step apart, always share a node: that is what keeps two leaders from
//! deciding differently across a membership change.

use std::collections::{BTreeMap, BTreeSet};

use raftkv_core::raft::{AppendOutcome, Body, Membership, Message};
use raftkv_core::{LogIndex, NodeId, Term};

use crate::checks::{Check, Failed};

/// What every candidate and leader was told, by term. Kept for the whole run: a paused leader
/// of an old term still counts what reached it before a newer leader was elected.
#[derive(Default)]
pub(crate) struct QuorumChecks {
    /// The nodes whose granted votes reached each (term, candidate).
    votes: BTreeMap<(Term, NodeId), BTreeSet<NodeId>>,
    /// For each (term, leader), the highest index each node acknowledged holding as that
    /// leader's log holds it.
    acks: BTreeMap<(Term, NodeId), BTreeMap<NodeId, LogIndex>>,
    /// The commit index each leader was last checked at, in its term; the first is the one
    /// it was elected with.
    checked: BTreeMap<NodeId, (Term, LogIndex)>,
}

impl QuorumChecks {
    /// A message reached a running node: a granted vote or an acknowledgement of entries counts
    /// for it from now on.
    pub(crate) fn on_delivered(&mut self, message: &Message) {
        let key = (message.term, message.to);
        match &message.body {
            Body::VoteReply { granted: true } => {
                self.votes.entry(key).or_default().insert(message.from);
            }
            // A recovering follower's too: what it acknowledges is on its disk (the durability
            // check says so). A disk that loses data later makes a failed node, one of the
            // minority Raft survives: it takes no part in elections until it has recovered.
            Body::AppendReply { outcome: AppendOutcome::Accepted { match_index }, .. } => {
                let held = self.acks.entry(key).or_default().entry(message.from).or_default();
                *held = (*held).max(*match_index);
            }
            _ => {}
        }
    }

    /// `leader` won the election of `term` under `membership`: the votes delivered to it,
    /// its own included, make a quorum of it.
    pub(crate) fn on_elected(
        &mut self,
        leader: NodeId,
        term: Term,
        membership: &Membership,
    ) -> Result<(), Failed> {
        let mut voters = self.votes.get(&(term, leader)).cloned().unwrap_or_default();
        voters.insert(leader);
        match missing_majority(&voters, membership) {
            None => Ok(()),
            Some(side) => Err((
                Check::ElectionSafety,
                format!(
                    "n{leader} leads term {term} with the votes of {} only, no majority of the \
                     {side} voters of {membership}",
                    list(&voters)
                ),
            )),
        }
    }

    /// Leader `leader` of `term`, under `membership`, has commit index `commit`, and holds
    /// that entry on its own disk if `holds_itself`: the nodes that acknowledged it make a
    /// quorum of the membership.
    pub(crate) fn on_leader_commit(
        &mut self,
        leader: NodeId,
        term: Term,
        commit: LogIndex,
        membership: &Membership,
        holds_itself: bool,
    ) -> Result<(), Failed> {
        let checked = self.checked.entry(leader).or_insert((term, commit));
        if checked.0 != term {
            // Elected with this commit index, learned as a follower: it rests on an earlier
            // leader's quorum.
            *checked = (term, commit);
            return Ok(());
        }
        if commit <= checked.1 {
            return Ok(());
        }
        checked.1 = commit;
        let acks = self.acks.get(&(term, leader));
        let mut holders: BTreeSet<NodeId> = acks
            .into_iter()
            .flatten()
            .filter(|&(_, &held)| held >= commit)
            .map(|(&node, _)| node)
            .collect();
        if holds_itself {
            holders.insert(leader);
        }
        match missing_majority(&holders, membership) {
            None => Ok(()),
            Some(side) => Err((
                Check::LeaderCompleteness,
                format!(
                    "n{leader} commits up to {commit} in term {term} with only {} holding it, \
                     no majority of the {side} voters of {membership}",
                    list(&holders)
                ),
            )),
        }
    }
}

/// The side of `membership` (`incoming` or `outgoing`) of which `nodes` hold no majority, if
/// any.
fn missing_majority(nodes: &BTreeSet<NodeId>, membership: &Membership) -> Option<&'static str> {
    let majority_of = |voters: &[NodeId]| {
        let held = voters.iter().filter(|voter| nodes.contains(voter)).count();
        2 * held > voters.len()
    };
    if !majority_of(membership.voters()) {
        return Some("incoming");
    }
    if membership.is_joint() && !majority_of(membership.outgoing_voters()) {
        return Some("outgoing");
    }
    None
}

fn list(nodes: &BTreeSet<NodeId>) -> String {
    let names: Vec<String> = nodes.iter().map(|node| format!("n{node}")).collect();
    format!("{{{}}}", names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    fn vote(from: u64, to: u64, term: u64) -> Message {
        Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(term),
            body: Body::VoteReply { granted: true },
        }
    }

    /// A joint membership, as only a leader makes one: from its encoding.
    fn joint(voters: &[u64], outgoing: &[u64]) -> Membership {
        let text = serde_json::json!({
            "voters": voters, "outgoing": outgoing, "learners": [], "addresses": {}
        });
        let membership: Membership = serde_json::from_value(text).expect("a membership");
        assert!(membership.is_joint() && membership.validate().is_ok());
        membership
    }

    fn ack(from: u64, to: u64, term: u64, match_index: u64) -> Message {
        let outcome = AppendOutcome::Accepted { match_index: LogIndex(match_index) };
        Message {
            body: Body::AppendReply { read_round: 0, outcome, recovering: None },
            ..vote(from, to, term)
        }
    }

    #[test]
    fn a_leader_needs_the_votes_of_a_majority_of_each_side_of_a_joint_membership() {
        let three = Membership::with_voters(ids(&[1, 2, 3]));
        let mut checks = QuorumChecks::default();
        checks.on_delivered(&vote(2, 1, 5));
        assert_eq!(checks.on_elected(NodeId(1), Term(5), &three), Ok(()));
        // From {1,2,3} to {3,4,5}: n1 and n2 are a majority of the old voters only.
        let joint = joint(&[3, 4, 5], &[1, 2, 3]);
        checks.on_delivered(&vote(2, 1, 6));
        let failed = checks.on_elected(NodeId(1), Term(6), &joint).expect_err("no new majority");
        assert_eq!(failed.0, Check::ElectionSafety);
        assert!(failed.1.contains("incoming"), "{}", failed.1);
        checks.on_delivered(&vote(5, 4, 7));
        checks.on_delivered(&vote(3, 4, 7));
        let failed = checks.on_elected(NodeId(4), Term(7), &joint).expect_err("no old majority");
        assert!(failed.1.contains("outgoing"), "{}", failed.1);
        checks.on_delivered(&vote(4, 3, 8));
        checks.on_delivered(&vote(2, 3, 8));
        assert_eq!(checks.on_elected(NodeId(3), Term(8), &joint), Ok(()));
    }

    #[test]
    fn a_commit_needs_acknowledgements_from_a_majority_of_each_side() {
        let joint = joint(&[3, 4, 5], &[1, 2, 3]);
        let mut checks = QuorumChecks::default();
        let elected_with = checks.on_leader_commit(NodeId(1), Term(4), LogIndex(3), &joint, true);
        assert_eq!(elected_with, Ok(()), "learned before it led");
        checks.on_delivered(&ack(2, 1, 4, 10));
        checks.on_delivered(&ack(4, 1, 4, 9));
        // n1 and n2 hold 10: a majority of the old voters, none of the new ones.
        let failed = checks
            .on_leader_commit(NodeId(1), Term(4), LogIndex(10), &joint, true)
            .expect_err("no new majority");
        assert_eq!(failed.0, Check::LeaderCompleteness);
        checks.on_delivered(&ack(3, 1, 4, 10));
        checks.on_delivered(&ack(4, 1, 4, 10));
        assert_eq!(checks.on_leader_commit(NodeId(1), Term(4), LogIndex(10), &joint, true), Ok(()));
        // Acknowledgements of another term never count.
        checks.on_delivered(&ack(3, 1, 3, 20));
        checks.on_delivered(&ack(4, 1, 3, 20));
        assert!(checks.on_leader_commit(NodeId(1), Term(4), LogIndex(20), &joint, true).is_err());
    }
}
