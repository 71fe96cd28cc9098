//! Raft consensus as a sans-IO state machine: election with pre-vote and check-quorum,
//! pipelined replication with fast backtracking, the Figure 8 commit rule, persistence as an
//! output acknowledged by the driver, ReadIndex reads (and opt-in lease reads), and membership
//! changes by joint consensus, with learners.

mod ballot;
mod chunk_to_send;
mod compacted;
mod config;
mod counters;
mod durability;
mod early_appends;
mod election;
mod entries_on_disk;
mod entries_to_load;
mod entries_to_send;
mod entry;
mod incoming_snapshot;
mod lease;
mod log;
mod membership;
mod membership_change;
mod membership_log;
mod message;
mod node;
mod pending_transfer;
mod persist;
mod progress;
mod quorum;
mod read;
mod reads;
mod reconfiguration;
mod recovery;
mod replication;
mod round_starts;
mod snapshot;
mod term_runs;
mod transfer;

pub use chunk_to_send::ChunkToSend;
pub use compacted::CompactedEntries;
pub use config::{Config, ConfigError};
pub use counters::Counters;
pub use entries_on_disk::EntriesOnDisk;
pub use entries_to_load::EntriesToLoad;
pub use entries_to_send::EntriesToSend;
pub use entry::{Entry, Payload};
pub use membership::{Membership, MembershipError, Standing};
pub use membership_change::{ChangeRefused, MemberChange};
pub use message::{AppendOutcome, Body, ConflictHint, Malformed, Message, RecoveryTarget};
pub use node::{Input, NotLeader, Output, RaftNode, Role, StartError, Status};
pub use persist::{
    HardState, PartialSnapshot, Persist, PersistId, ReceivedChunk, Recovered, SavedSnapshot,
    Snapshot,
};
pub use transfer::TransferError;
