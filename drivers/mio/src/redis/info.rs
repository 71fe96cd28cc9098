//! `INFO`: the node's state in Redis's `field:value` sections.

use std::fmt::Write;

use crate::redis::table::REDIS_VERSION;
use crate::wire::NodeStatus;

/// What the Redis listener adds to the node's status.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenerFacts {
    /// Its port.
    pub(crate) port: u16,
    /// Its connections now.
    pub(crate) connected_clients: usize,
    /// Connections it refused so far.
    pub(crate) rejected_connections: u64,
}

/// The text of `INFO`.
pub(crate) fn info_text(status: &NodeStatus, facts: ListenerFacts) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nraftkv_version:{}\r\nredis_mode:standalone\r\n\
         process_id:{}\r\ntcp_port:{}\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n\
         # Stats\r\nrejected_connections:{}\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        facts.port,
        facts.connected_clients,
        facts.rejected_connections,
    );
    // raftkv roles, not Redis's master/slave: every node takes writes and forwards them to
    // the leader.
    let role = status.role.to_ascii_lowercase();
    let leader = status.leader.map_or("none".to_string(), |leader| leader.to_string());
    let _ = write!(
        text,
        "# Replication\r\nrole:{role}\r\nnode_id:{}\r\nleader:{leader}\r\nterm:{}\r\n\
         commit_index:{}\r\napplied_index:{}\r\nlast_log_index:{}\r\ndamaged:{}\r\n\r\n\
         # Keyspace\r\ndb0:keys={},expires=0,avg_ttl=0\r\n",
        status.id,
        status.term,
        status.commit,
        status.applied,
        status.last_log,
        u8::from(status.damaged),
        status.keys,
    );
    text
}
