//! Counts of what a node dropped or did: errors are values, and this is where they add up.

use core::fmt;

use serde::Serialize;

/// Running totals since the node started. A dropped message is never an error of the node;
/// these numbers show how often the network or a peer misbehaved. Serialized, each is named
/// by its field (a driver that exports them can check that it names them all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages addressed to another node.
    pub dropped_misaddressed: u64,
    /// Messages from an older term.
    pub dropped_stale_term: u64,
    /// Vote and pre-vote requests ignored because a leader was heard from recently (leader
    /// stickiness), and with `read_lease` also votes and campaigns refused within the node's
    /// vote promise (a minimal election timeout after it started or last heard a leader).
    pub dropped_in_lease: u64,
    /// Messages that make no sense in this node's role and term (e.g. a reply to a request it
    /// no longer has, or from a node it does not track: one removed from the membership).
    pub dropped_unexpected: u64,
    /// Messages that cannot be valid in any state (`Message::validate`): a term or index
    /// beyond the maximum, entries that do not form a log, a chunk outside its snapshot.
    pub dropped_malformed: u64,
    /// Persist acknowledgements for an id never issued or already acknowledged.
    pub dropped_bad_persist_ack: u64,
    /// Appends rejected because the log did not hold their predecessor.
    pub appends_rejected: u64,
    /// Appends that arrived ahead of a gap in the log and were held until it filled.
    pub appends_held: u64,
    /// Leader only: appends whose entries were no longer in memory, handed to the driver to
    /// send from its disk (`Output::SendEntries`).
    pub appends_from_disk: u64,
    /// Entries the driver could not read back from its disk (`Input::LogUnreadable`).
    pub log_reads_failed: u64,
    /// Batches of committed entries a restart left on the driver's disk, asked of it to apply
    /// (`Output::LoadEntries`).
    pub loads_from_disk: u64,
    /// Answers to `Output::LoadEntries` that were not the entries asked for, or came when none
    /// was asked for (`Input::EntriesLoaded`): dropped, and the batch asked for again.
    pub dropped_bad_loads: u64,
    /// Pre-vote rounds started.
    pub pre_elections: u64,
    /// Elections started (terms campaigned in).
    pub elections: u64,
    /// Times this node became leader.
    pub leaderships: u64,
    /// Snapshots of its own state machine this node took (log compactions).
    pub snapshots_taken: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Chunks of a leader's snapshot refused: they continue no snapshot being received
    /// (another snapshot's, or one past a gap: a chunk lost or reordered on the way).
    pub snapshot_chunks_refused: u64,
    /// Snapshots received whole that the driver found damaged on its disk when it read them
    /// back, received again from their first byte.
    pub received_snapshots_damaged: u64,
    /// Leader only: followers found to have lost entries they had acknowledged (a damaged or
    /// emptied disk), whose progress started again from what they hold.
    pub follower_logs_lost: u64,
    /// Elections this node did not start, and votes it did not grant, while its disk was
    /// damaged and it had not caught up with a leader.
    pub withheld_while_damaged: u64,
    /// Elections this node did not start because it is not a voter of the membership in force:
    /// a learner, a node removed from the cluster, or one not yet added (`Status::standing`
    /// says which).
    pub withheld_not_voter: u64,
    /// Leader only: nodes removed by a committed membership that still asked for votes, told
    /// that their removal committed.
    pub removed_nodes_told: u64,
    /// Pre-votes this node started as a learner because a candidate's log was behind its own
    /// (see `RaftNode::may_campaign`).
    pub learner_campaigns: u64,
    /// Leader only: reads answered at once from its lease (`Config::read_lease`).
    pub lease_reads: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "misaddressed={} stale={} in_lease={} unexpected={} malformed={} \
             bad_ack={} rejected={} held={} from_disk={} reads_failed={} loads={} bad_loads={} pre_elections={} elections={} \
             leaderships={} snapshots_taken={} snapshots_installed={} chunks_refused={} \
             received_damaged={} follower_logs_lost={} \
             withheld_while_damaged={} withheld_not_voter={} removed_nodes_told={} \
             learner_campaigns={} lease_reads={}",
            self.dropped_misaddressed,
            self.dropped_stale_term,
            self.dropped_in_lease,
            self.dropped_unexpected,
            self.dropped_malformed,
            self.dropped_bad_persist_ack,
            self.appends_rejected,
            self.appends_held,
            self.appends_from_disk,
            self.log_reads_failed,
            self.loads_from_disk,
            self.dropped_bad_loads,
            self.pre_elections,
            self.elections,
            self.leaderships,
            self.snapshots_taken,
            self.snapshots_installed,
            self.snapshot_chunks_refused,
            self.received_snapshots_damaged,
            self.follower_logs_lost,
            self.withheld_while_damaged,
            self.withheld_not_voter,
            self.removed_nodes_told,
            self.learner_campaigns,
            self.lease_reads
        )
    }
}
