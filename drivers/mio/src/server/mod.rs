//! The server: one raftkv node over TCP.
//!
//! One event-loop thread ([`event_loop`]) owns the replica and every socket: the listening port,
//! the links it dials to each peer ([`peers`], as many as the membership in force names:
//! [`directory`], [`peer_set`]) and the connections others open to it ([`inbound`]); the replica's
//! `poll_timeout` is the poll's timeout. A disk thread ([`disk_thread`]) writes and syncs persists
//! in batches and wakes the loop; a snapshot thread ([`snapshot_thread`]) encodes and saves the
//! snapshots the replica asks for, and the chunks sent to followers are read from the snapshot file
//! ([`snapshot_chunks`]); a loader thread ([`snapshot_loader`]) reads back, checked, a snapshot
//! received from the leader chunk by chunk.

mod accepted;
mod admin;
mod backup;
mod data_lock;
mod directory;
mod disk_thread;
mod error;
mod event_loop;
mod fd_limit;
mod front;
mod handshake;
mod inbound;
mod instruments;
mod join;
mod limits;
mod loop_counts;
mod metrics;
mod metrics_http;
mod options;
mod own_snapshot;
mod peer_record;
mod peer_set;
mod peers;
mod protocol_error;
mod refusal_log;
mod snapshot_chunks;
mod snapshot_loader;
mod snapshot_thread;

pub(crate) use admin::check_address;
pub(crate) use data_lock::acquire as lock_data_dir;
pub(crate) use error::ServeError;
pub(crate) use event_loop::run;
pub(crate) use front::{Front, FrontCounts, RefusalCounts};
pub(crate) use limits::ConnectionLimits;
pub(crate) use options::{InlineSync, ServeOptions};
pub(crate) use peer_record::record as record_peers;
