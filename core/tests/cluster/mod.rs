//! The cluster of bare Raft nodes the scenario tests drive, from the test kit.

// Each test file uses its own part, and some declare the module without using it.
#![allow(unused_imports, unreachable_pub)]

pub use raftkv_testkit::{RaftCluster as Cluster, id, is_election_message};
