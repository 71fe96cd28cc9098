//! What the event loop counts for the metrics: the client requests it took as leader, by
//! kind, proposals (what goes through the log) apart from reads (answered after a read-index
//! round, never logged); and the leader changes it saw.

use std::collections::BTreeMap;

use raftkv_core::kv::{KvCommand, KvStore};
use raftkv_core::protocol::{ClientRequest, Op};
use raftkv_core::state_machine::StateMachine;
use raftkv_core::{NodeId, Term};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LoopCounts {
    /// By kind (`put`, `register`...).
    pub(super) proposals: BTreeMap<&'static str, u64>,
    /// By kind (`get`, `scan`...).
    pub(super) reads: BTreeMap<&'static str, u64>,
    /// Times a new leader was seen: another node, or the same one in a new term.
    pub(super) leader_changes: u64,
    /// The leader last seen, and its term.
    last_leader: Option<(NodeId, Term)>,
}

impl LoopCounts {
    /// This node learned of `leader` (if any) in `term`.
    pub(super) fn observe_leader(&mut self, leader: Option<NodeId>, term: Term) {
        let Some(leader) = leader else { return };
        if self.last_leader != Some((leader, term)) {
            self.last_leader = Some((leader, term));
            self.leader_changes = self.leader_changes.saturating_add(1);
        }
    }

    /// Counts one request taken as leader.
    pub(super) fn count_request(&mut self, request: &ClientRequest<KvCommand>) {
        let (counts, kind) = match &request.op {
            // A session opens through the log.
            Op::Register => (&mut self.proposals, "register"),
            Op::Command(command) if KvStore::is_read_only(command) => {
                (&mut self.reads, kind(command))
            }
            Op::Command(command) => (&mut self.proposals, kind(command)),
        };
        let count = counts.entry(kind).or_default();
        *count = count.saturating_add(1);
    }
}

/// The name of a command's kind, as the metrics label it.
fn kind(command: &KvCommand) -> &'static str {
    match command {
        KvCommand::Get { .. } => "get",
        KvCommand::Put { .. } => "put",
        KvCommand::Append { .. } => "append",
        KvCommand::Delete { .. } => "delete",
        KvCommand::Cas { .. } => "cas",
        KvCommand::Scan(_) => "scan",
        KvCommand::Count => "count",
        KvCommand::GetMany { .. } => "get_many",
        KvCommand::Exists { .. } => "exists",
        KvCommand::PutMany { .. } => "put_many",
        KvCommand::DeleteMany { .. } => "delete_many",
        KvCommand::PutIf { .. } => "put_if",
        KvCommand::Increment { .. } => "increment",
        KvCommand::Batch { .. } => "batch",
    }
}

#[cfg(test)]
mod tests {
    use raftkv_core::{ClientId, RequestId};

    use super::*;

    fn request(op: Op<KvCommand>) -> ClientRequest<KvCommand> {
        ClientRequest { client: ClientId(1), request: RequestId(1), op }
    }

    #[test]
    fn reads_and_proposals_are_counted_apart_by_kind() {
        let mut counts = LoopCounts::default();
        let get = KvCommand::Get { key: b"k".to_vec() };
        let put = KvCommand::Put { key: b"k".to_vec(), value: b"v".to_vec() };
        for op in [Op::Register, Op::Command(get.clone()), Op::Command(get), Op::Command(put)] {
            counts.count_request(&request(op));
        }
        assert_eq!(counts.proposals, BTreeMap::from([("put", 1), ("register", 1)]));
        assert_eq!(counts.reads, BTreeMap::from([("get", 2)]));
    }

    #[test]
    fn a_leader_change_is_a_new_leader_or_a_new_term() {
        let mut counts = LoopCounts::default();
        for (leader, term) in [(None, 1), (Some(1), 1), (Some(1), 1), (None, 2), (Some(1), 2)] {
            counts.observe_leader(leader.map(NodeId), Term(term));
        }
        assert_eq!(counts.leader_changes, 2);
        counts.observe_leader(Some(NodeId(3)), Term(2));
        assert_eq!(counts.leader_changes, 3);
    }
}
