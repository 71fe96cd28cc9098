//! The cluster of key-value replicas and clerks the service tests drive, from the test kit.

// Each test file uses its own part.
#![allow(unused_imports, unreachable_pub)]

pub use raftkv_testkit::{Endpoint, KvCluster, Packet};
