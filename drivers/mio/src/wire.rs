//! What raftkv processes say to each other over TCP, frame by frame.
//!
//! Every node listens on one port for both peers and clients. The side that dials speaks
//! first with a [`Hello`] saying who it is; the node answers with a [`Welcome`] naming itself,
//! or refuses (wrong cluster, wrong protocol version, unknown peer) and closes. After that a
//! peer connection carries Raft messages one way (each node dials every other node for what it
//! sends), and a client connection carries [`ClientFrame`]s in and [`ServerFrame`]s out.

use serde::{Deserialize, Serialize};

use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::protocol::{ClientReply, ClientRequest};
use raftkv_core::raft::Membership;
use raftkv_core::{LogId, LogIndex, NodeId, Term};

use crate::connection_report::ConnectionReport;

/// The version of this protocol; a node refuses a `Hello` of another version. 2: pre-votes
/// name their round, and a node's status says whether its data is damaged. 3: a node's status
/// reports its connections. 4: entries may carry a membership, and snapshot chunks carry the
/// membership at their snapshot point. 5: a node's status counts the requests it answered
/// "busy" (the status frame grew a field; `Reject::Busy` itself was appended and changes no
/// older encoding). 6: a node's status names its membership, its standing in it and, on the
/// leader, how far each member's log reaches; clients may ask the leader to change the
/// membership or hand over its leadership (`ClientFrame::Admin`); a `Welcome` names the members
/// of the membership in force. 7: the commands on several keys, scans, conditional puts and
/// counters, and an append answers the length it produced. 8: the membership in a status names
/// the retired nodes. 9: backups (`AdminRequest::Backup`). 10: an append says whether it was
/// sent behind others still in flight (a follower may hold it until they land). 11: batches
/// of commands (`KvCommand::Batch`, in log entries, client frames and the sessions of
/// snapshots): a node of version 10 could not decode them, so versions 10 and 11 refuse each
/// other rather than let an older node skip entries it cannot read.
pub(crate) const PROTOCOL_VERSION: u32 = 11;

/// Bytes that start every `Hello`, so that a stray connection is told apart from a
/// misconfigured raftkv process.
pub(crate) const MAGIC: [u8; 6] = *b"raftkv";

/// The first frame of every connection, from the side that dialed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// Always [`MAGIC`].
    pub(crate) magic: [u8; 6],
    /// Always [`PROTOCOL_VERSION`] of the sender.
    pub(crate) version: u32,
    /// The cluster the sender belongs to or wants to talk to.
    pub(crate) cluster: String,
    /// Who is dialing.
    pub(crate) role: HelloRole,
}

/// Who dials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HelloRole {
    /// A node of the cluster, which will send Raft messages to `to`.
    Peer {
        /// The sender.
        from: NodeId,
        /// The node it believes it dialed.
        to: NodeId,
    },
    /// A client, which will send requests.
    Client,
}

/// The node's answer to a `Hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Welcome {
    /// The connection is accepted by node `node`.
    Accepted {
        /// The node that answered.
        node: NodeId,
        /// Every member of the membership in force and the address it is reached at, so a
        /// client given some of the addresses can find the others (empty on a node that joins
        /// and has not learned a membership yet).
        members: Vec<(NodeId, String)>,
    },
    /// The connection is refused, for this reason; the node closes it.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A frame from a client. `tag` lets many sessions share one connection: the answer carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ClientFrame {
    /// A request of the key-value service.
    Request {
        /// Echoed in the reply.
        tag: u32,
        /// The request.
        request: ClientRequest<KvCommand>,
    },
    /// What the node's state is (for `raftkv status`).
    Status {
        /// Echoed in the reply.
        tag: u32,
    },
    /// An operator's request to the leader (`raftkv member`, `raftkv transfer-leader`).
    Admin {
        /// Echoed in the reply.
        tag: u32,
        /// What is asked.
        request: AdminRequest,
    },
}

/// What an operator asks of the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AdminRequest {
    /// Start a membership change of one step.
    ChangeMembership(MemberStep),
    /// Hand leadership over to this voter.
    TransferLeader(NodeId),
    /// A step of copying a snapshot of the leader (`raftkv snapshot save`).
    Backup(BackupStep),
}

/// A step of copying a snapshot of the leader's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BackupStep {
    /// Name a snapshot that covers entry `at_least` (`None`: the leader's commit index now),
    /// and take one if the leader has none yet.
    Prepare {
        /// The entry the snapshot must cover.
        at_least: Option<LogIndex>,
    },
    /// `length` bytes of the data of the snapshot at `last`, from `offset`.
    Chunk {
        /// The snapshot, as `BackupAnswer::Ready` named it.
        last: LogId,
        /// Where the chunk starts in the data.
        offset: u64,
        /// Its length; at most [`MAX_BACKUP_CHUNK_BYTES`].
        length: u64,
    },
}

/// The largest chunk of a backup a node sends in one answer.
pub(crate) const MAX_BACKUP_CHUNK_BYTES: u64 = 1 << 20;

/// The answer to a [`BackupStep`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BackupAnswer {
    /// No snapshot covers `at_least` yet: one is being taken; ask again.
    Pending {
        /// The entry the snapshot must cover.
        at_least: LogIndex,
    },
    /// The snapshot to copy, in chunks.
    Ready(SnapshotHeader),
    /// A chunk of its data.
    Chunk {
        /// The bytes.
        data: Vec<u8>,
    },
    /// The snapshot asked for was replaced by a newer one: prepare again.
    Replaced,
}

/// What a snapshot holds besides its data (see [`Client::backup`](crate::Client::backup)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The last entry it covers.
    pub last: LogId,
    /// The membership in force there.
    pub membership: Membership,
    /// The size of its data.
    pub data_bytes: u64,
}

/// One step of a membership change, as an operator asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberStep {
    /// Add node `id`, reached at `address` (`HOST:PORT`), as a learner: it receives the log
    /// but does not vote.
    AddLearner {
        /// The new node; ids are never reused.
        id: NodeId,
        /// Where the other nodes reach it.
        address: String,
    },
    /// Make learner `id` a voter (once it has caught up with the leader).
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Remove member `id`, voter or learner (the leader itself too: it hands over once the
    /// change commits).
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// The leader's answer to an [`AdminRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AdminAnswer {
    /// Started: the membership entry is appended, or the hand-over begun. It is not done yet:
    /// the asker watches the statuses until it is.
    Started,
    /// This node does not lead; ask `hint`, the leader it knows of.
    NotLeader {
        /// The leader this node knows of.
        hint: Option<NodeId>,
    },
    /// A step of a backup is answered.
    Backup(BackupAnswer),
    /// Refused, with the reason. `retry`: it may succeed later as it is (another change is in
    /// progress, the learner has not caught up yet); otherwise the request itself is wrong.
    Refused {
        /// Why.
        reason: String,
        /// Whether asking again later may succeed.
        retry: bool,
    },
}

/// A frame from a node to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ServerFrame {
    /// The answer to a request.
    Reply {
        /// The request's tag.
        tag: u32,
        /// The answer.
        reply: ClientReply<KvReply>,
    },
    /// The answer to a status query.
    Status {
        /// The query's tag.
        tag: u32,
        /// The node's state (boxed: far larger than a reply).
        status: Box<NodeStatus>,
    },
    /// The answer to an [`AdminRequest`].
    Admin {
        /// The request's tag.
        tag: u32,
        /// The answer.
        answer: AdminAnswer,
    },
}

/// One node's state as `raftkv status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// Its role: `Follower`, `PreCandidate`, `Candidate` or `Leader`.
    pub role: String,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit: LogIndex,
    /// The last log index applied to its state machine.
    pub applied: LogIndex,
    /// Its last log index.
    pub last_log: LogIndex,
    /// The last index its snapshot covers (0 without one).
    pub snapshot_last: LogIndex,
    /// Log entries it holds in memory (after the snapshot).
    pub log_entries: u64,
    /// Bytes of its write-ahead log on disk.
    pub wal_bytes: u64,
    /// Keys in its state machine.
    pub keys: u64,
    /// Its data was damaged or removed and it has not caught up yet: it takes no part in
    /// elections.
    pub damaged: bool,
    /// Its accepted connections, what they buffer, and what it refused.
    pub connections: ConnectionReport,
    /// Where it stands in the membership it uses: `voter`, `learner`, `removed` (by a
    /// membership entry, not necessarily committed yet) or `not a member` (a node that joins
    /// and has not been added yet).
    pub standing: String,
    /// The membership it uses: the latest its log holds, committed or not.
    pub membership: MembershipReport,
    /// On the leader only: how far the log of each node it replicates to is known to reach
    /// (its own last entry for itself), by node id.
    pub match_indexes: Vec<(NodeId, LogIndex)>,
}

#[cfg(test)]
impl NodeStatus {
    /// For tests: node 2 leading term 7, 41 entries, 40 committed, 39 applied, three keys.
    pub(crate) fn example() -> NodeStatus {
        NodeStatus {
            id: NodeId(2),
            role: "Leader".to_owned(),
            term: Term(7),
            leader: Some(NodeId(2)),
            commit: LogIndex(40),
            applied: LogIndex(39),
            last_log: LogIndex(41),
            snapshot_last: LogIndex(0),
            log_entries: 41,
            wal_bytes: 4096,
            keys: 3,
            damaged: false,
            connections: ConnectionReport::default(),
            standing: "voter".to_owned(),
            membership: MembershipReport::default(),
            match_indexes: Vec::new(),
        }
    }
}

/// A membership as `raftkv status` and `raftkv member list` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipReport {
    /// The log entry it comes from (or the snapshot point; 0: the initial membership).
    pub index: LogIndex,
    /// The voters (those of the new configuration during a joint change), sorted.
    pub voters: Vec<NodeId>,
    /// During a joint change, the voters of the configuration being left; otherwise empty.
    pub outgoing: Vec<NodeId>,
    /// The learners, sorted.
    pub learners: Vec<NodeId>,
    /// Each member's address, by node id.
    pub addresses: Vec<(NodeId, String)>,
    /// The nodes removed from the cluster, whose ids are never used again, sorted.
    pub retired: Vec<NodeId>,
}

impl MembershipReport {
    /// The address of member `id`, if known.
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.addresses.iter().find(|(member, _)| *member == id).map(|(_, a)| a.as_str())
    }

    /// Every member, voters (incoming and outgoing) and learners, sorted, each once.
    pub fn members(&self) -> Vec<NodeId> {
        let mut members: Vec<NodeId> =
            self.voters.iter().chain(&self.outgoing).chain(&self.learners).copied().collect();
        members.sort_unstable();
        members.dedup();
        members
    }
}
