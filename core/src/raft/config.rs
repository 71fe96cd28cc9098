//! The settings of one Raft node, with defaults suited to a LAN.

use core::fmt;

use crate::ids::NodeId;
use crate::raft::membership::{Membership, MembershipError};

/// How one node behaves. `Config::new` gives the defaults; change fields, then
/// [`Config::validate`] (the node does so when it starts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The membership of a cluster whose log and snapshot hold none yet: the voters a new
    /// cluster starts with, this node among them (the same on every node). Once a change is
    /// made, the membership lives in the log and snapshots, and this is only read again if a
    /// snapshot stored before snapshots recorded their membership comes back. Empty for a node
    /// that joins a running cluster: it learns the membership from its leader, and takes no
    /// part in elections until that names it a voter.
    pub initial_membership: Membership,
    /// Lower bound of the randomized election timeout. Default 300 ms: well above a LAN round
    /// trip plus an fsync, so a healthy leader is never suspected.
    pub election_timeout_ms_min: u64,
    /// Upper bound of the randomized election timeout. Default 600 ms: a span as wide as the
    /// lower bound makes split votes rare.
    pub election_timeout_ms_max: u64,
    /// How often a leader sends heartbeats. Default 50 ms: six beats per minimal election
    /// timeout, so a few lost heartbeats do not cause an election.
    pub heartbeat_interval_ms: u64,
    /// Most entries in one AppendEntries message. Default 256.
    pub max_entries_per_append: usize,
    /// Most payload bytes in one AppendEntries message (at least one entry is always sent).
    /// Default 1 MiB.
    pub max_bytes_per_append: usize,
    /// Most AppendEntries messages carrying entries in flight to one follower (pipelining).
    /// Default 32.
    pub max_inflight_appends: usize,
    /// Most appends a follower holds that arrived ahead of a gap in its log, until the gap
    /// fills (a network that reorders messages delivers pipelined appends out of order).
    /// Each is at most one append's size. Default 32, as many as a leader keeps in flight;
    /// 0 rejects them, and the leader probes again.
    pub max_early_appends: usize,
    /// The log cache: with `Some(bytes)`, the node keeps in memory only the entries not yet
    /// applied or not yet durable on its own disk, and applied ones up to `bytes` in all (the
    /// latest); older entries stay on the driver's disk until a snapshot compacts them, and an
    /// append that needs them leaves as `Output::SendEntries`, which the driver fills from its
    /// log on disk. The node keeps their terms (a few words per term) and sizes (4 bytes an
    /// entry). Default `None`: every entry after the snapshot stays in memory, and
    /// `Output::SendEntries` never comes: a driver opts in once it can read its log back.
    pub log_cache_bytes: Option<usize>,
    /// Bytes of snapshot per InstallSnapshot message. Default 512 KiB.
    pub snapshot_chunk_bytes: usize,
    /// Most InstallSnapshot messages in flight to one follower. Default 4.
    pub max_inflight_snapshot_chunks: usize,
    /// A learner is promoted to voter only while its log is at most this many entries behind
    /// the leader's last entry, and it acknowledged an append within the minimal election
    /// timeout. Default 256 (one full append): the new voter then holds every entry after one
    /// more round trip, so it cannot hold back commits of the new configuration, and it is
    /// known to be up.
    pub max_promotion_lag: u64,
    /// Whether a leader answers linearizable reads alone while its lease holds, instead of
    /// confirming its leadership with a round of messages per batch of reads (ReadIndex). The
    /// lease trusts that no node's clock runs faster or slower than real time by more than
    /// `max_clock_drift_ppm`, and that the driver answers a read soon after the call that
    /// granted it (no long pause in between); see `raft::lease`. Every node of a cluster must
    /// agree: a node with it set also refuses votes for a minimal election timeout after it
    /// starts. Default false: every read is a ReadIndex read.
    pub read_lease: bool,
    /// The most any node's clock may run faster or slower than real time, in parts per million;
    /// a lease is shortened by that much both ways. Must be below 1_000_000. Default 100_000
    /// (10%, far beyond what a working quartz clock drifts).
    pub max_clock_drift_ppm: u64,
    /// Seed of the node's random generator (election jitter, names of pre-vote rounds). Give
    /// every start of a node a different seed: a production driver from the wall clock or the
    /// operating system's entropy, a simulator from its own seeded generator (so a run is
    /// reproducible). A restart with the seed of an earlier life would draw the same names for
    /// its pre-vote rounds, and late answers from that life could count again.
    pub seed: u64,
}

impl Config {
    /// Defaults for node `id` in a cluster that starts with `voters` (none for a node that
    /// joins a running cluster).
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Config {
        Config {
            id,
            initial_membership: Membership::with_voters(voters),
            election_timeout_ms_min: 300,
            election_timeout_ms_max: 600,
            heartbeat_interval_ms: 50,
            max_entries_per_append: 256,
            max_bytes_per_append: 1 << 20,
            max_inflight_appends: 32,
            max_early_appends: 32,
            log_cache_bytes: None,
            snapshot_chunk_bytes: 512 << 10,
            max_inflight_snapshot_chunks: 4,
            max_promotion_lag: 256,
            read_lease: false,
            max_clock_drift_ppm: 100_000,
            seed: id.0,
        }
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.initial_membership.is_empty() {
            self.initial_membership.validate().map_err(ConfigError::Membership)?;
            if !self.initial_membership.voters().contains(&self.id) {
                return Err(ConfigError::NotAVoter(self.id));
            }
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= self.election_timeout_ms_min
        {
            return Err(ConfigError::HeartbeatNotBelowElectionTimeout);
        }
        if self.election_timeout_ms_min > self.election_timeout_ms_max {
            return Err(ConfigError::ElectionTimeoutRange);
        }
        if self.max_entries_per_append == 0
            || self.max_bytes_per_append == 0
            || self.max_inflight_appends == 0
            || self.snapshot_chunk_bytes == 0
            || self.max_inflight_snapshot_chunks == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        if self.max_clock_drift_ppm >= PPM {
            return Err(ConfigError::ClockDrift);
        }
        Ok(())
    }
}

/// Parts per million in one.
pub(crate) const PPM: u64 = 1_000_000;

/// Why a [`Config`] cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The initial membership cannot be used.
    Membership(MembershipError),
    /// This node is not among the voters of a non-empty initial membership.
    NotAVoter(NodeId),
    /// The heartbeat interval must be positive and below the minimal election timeout.
    HeartbeatNotBelowElectionTimeout,
    /// The minimal election timeout exceeds the maximal one.
    ElectionTimeoutRange,
    /// A message or window limit is zero.
    ZeroLimit,
    /// The clock drift bound is not below a million parts per million.
    ClockDrift,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Membership(error) => write!(f, "initial membership: {error}"),
            ConfigError::NotAVoter(id) => write!(f, "node {id} is not among the voters"),
            ConfigError::HeartbeatNotBelowElectionTimeout => {
                write!(f, "the heartbeat interval must be positive and below the election timeout")
            }
            ConfigError::ElectionTimeoutRange => {
                write!(f, "election_timeout_ms_min exceeds election_timeout_ms_max")
            }
            ConfigError::ZeroLimit => write!(f, "message and in-flight limits must be positive"),
            ConfigError::ClockDrift => write!(f, "max_clock_drift_ppm must be below 1000000"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unusable_setting_is_refused_with_its_reason() {
        let valid = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        assert_eq!(valid.validate(), Ok(()));
        let cases: [(&str, Config, ConfigError); 10] = [
            (
                "twice",
                Config {
                    initial_membership: Membership::with_voters([NodeId(1), NodeId(1)]),
                    ..valid.clone()
                },
                ConfigError::Membership(MembershipError::ListedTwice(NodeId(1))),
            ),
            (
                "absent",
                Config { id: NodeId(4), ..valid.clone() },
                ConfigError::NotAVoter(NodeId(4)),
            ),
            (
                "no beat",
                Config { heartbeat_interval_ms: 0, ..valid.clone() },
                ConfigError::HeartbeatNotBelowElectionTimeout,
            ),
            (
                "slow beat",
                Config { heartbeat_interval_ms: 300, ..valid.clone() },
                ConfigError::HeartbeatNotBelowElectionTimeout,
            ),
            (
                "range",
                Config { election_timeout_ms_min: 700, ..valid.clone() },
                ConfigError::ElectionTimeoutRange,
            ),
            (
                "entries",
                Config { max_entries_per_append: 0, ..valid.clone() },
                ConfigError::ZeroLimit,
            ),
            ("bytes", Config { max_bytes_per_append: 0, ..valid.clone() }, ConfigError::ZeroLimit),
            ("window", Config { max_inflight_appends: 0, ..valid.clone() }, ConfigError::ZeroLimit),
            ("chunks", Config { snapshot_chunk_bytes: 0, ..valid.clone() }, ConfigError::ZeroLimit),
            (
                "drift",
                Config { max_clock_drift_ppm: PPM, ..valid.clone() },
                ConfigError::ClockDrift,
            ),
        ];
        for (name, config, error) in cases {
            assert_eq!(config.validate(), Err(error.clone()), "{name}");
            assert!(!error.to_string().is_empty());
        }
        let chunk_window = Config { max_inflight_snapshot_chunks: 0, ..valid.clone() };
        assert_eq!(chunk_window.validate(), Err(ConfigError::ZeroLimit));
        let equal =
            Config { election_timeout_ms_min: 600, heartbeat_interval_ms: 50, ..valid.clone() };
        assert_eq!(equal.validate(), Ok(()), "a fixed election timeout is allowed");
        let drifting = Config { max_clock_drift_ppm: PPM - 1, read_lease: true, ..valid.clone() };
        assert_eq!(drifting.validate(), Ok(()), "any drift below one is allowed");
        let joining = Config::new(NodeId(4), []);
        assert_eq!(joining.validate(), Ok(()), "a node that joins knows no membership yet");
        assert_eq!(ConfigError::NotAVoter(NodeId(4)).to_string(), "node 4 is not among the voters");
    }
}
