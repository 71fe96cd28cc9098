//! raftkv: a linearizable key-value store replicated with Raft, over TCP.
//!
//! This crate is the `raftkv` binary (server, command-line client, local cluster, benchmark)
//! and the Rust client library, [`Client`].

mod backup;
mod bench;
mod certs;
pub mod cli;
mod client;
mod clock;
mod cluster_args;
mod conn;
mod connection_report;
mod failure;
mod frame;
mod history;
mod kv_cli;
mod list;
mod local;
mod log_throttle;
mod member_cli;
mod peers_arg;
mod redis;
mod server;
mod status_cli;
mod tls;
mod transport;
mod wire;

pub use backup::BackupWriter;
pub use client::{AddressStatus, BackupSink, CasOutcome, Client, ClientOptions, Error, MemberList};
pub use connection_report::{ConnectionReport, Refusals};
pub use raftkv_core::kv::{Scan, ScanPage};
pub use tls::{ClientTls, TlsError};
pub use wire::{MemberStep, MembershipReport, NodeStatus, SnapshotHeader};
