//! raftkv: a linearizable key-value store replicated with Raft, over TCP.
//!
//! This crate is the `raftkv` binary (server, command-line client, local cluster, benchmark)
//! and the Rust client library, [`Client`].

mod bench;
pub mod cli;
mod client;
mod clock;
mod cluster_args;
mod conn;
mod failure;
mod frame;
mod history;
mod local;
mod server;
mod wire;

pub use client::{AddressStatus, CasOutcome, Client, ClientOptions, Error};
pub use wire::NodeStatus;
