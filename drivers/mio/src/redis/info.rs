//! `INFO`: the node's state in Redis's `field:value` sections.

use crate::redis::table::REDIS_VERSION;
use crate::server::{FrontCounts, RefusalCounts};
use crate::wire::NodeStatus;

/// What the Redis listener adds to the node's status.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenerFacts {
    /// Its port.
    pub(crate) port: u16,
    pub(crate) counts: FrontCounts,
}

/// The sections, in the order Redis writes them.
const SECTIONS: [&str; 5] = ["server", "clients", "stats", "replication", "keyspace"];

/// The text of `INFO` with `asked` sections (lowercase): none, `default`, `all` or
/// `everything` give every section; a name that is no section adds nothing, as in Redis.
pub(crate) fn info_text(status: &NodeStatus, facts: ListenerFacts, asked: &[String]) -> String {
    let every = asked.is_empty()
        || asked.iter().any(|name| matches!(name.as_str(), "default" | "all" | "everything"));
    SECTIONS
        .iter()
        .filter(|section| every || asked.iter().any(|name| name == *section))
        .map(|section| section_text(section, status, facts))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// One section: its title line and its fields, each line ending with CRLF.
fn section_text(section: &str, status: &NodeStatus, facts: ListenerFacts) -> String {
    let fields: Vec<(&str, String)> = match section {
        "server" => vec![
            ("redis_version", REDIS_VERSION.to_string()),
            ("raftkv_version", env!("CARGO_PKG_VERSION").to_string()),
            ("redis_mode", "standalone".to_string()),
            ("process_id", std::process::id().to_string()),
            ("tcp_port", facts.port.to_string()),
        ],
        "clients" => vec![("connected_clients", facts.counts.connections.to_string())],
        "stats" => vec![
            ("rejected_connections", rejected_connections(facts.counts.refused).to_string()),
            ("tls_refused_connections", facts.counts.refused.tls_refused.to_string()),
            ("evicted_clients", facts.counts.refused.clients_evicted.to_string()),
            ("cluster_requests", facts.counts.cluster_requests.to_string()),
            ("cluster_commands", facts.counts.cluster_commands.to_string()),
        ],
        // raftkv roles, not Redis's master/slave: every node takes writes and forwards them
        // to the leader.
        "replication" => vec![
            ("role", status.role.to_ascii_lowercase()),
            ("node_id", status.id.to_string()),
            ("leader", status.leader.map_or("none".to_string(), |leader| leader.to_string())),
            ("term", status.term.to_string()),
            ("commit_index", status.commit.to_string()),
            ("applied_index", status.applied.to_string()),
            ("last_log_index", status.last_log.to_string()),
            ("damaged", u8::from(status.damaged).to_string()),
        ],
        _ => vec![("db0", format!("keys={},expires=0,avg_ttl=0", status.keys))],
    };
    let mut title = section.to_string();
    title[..1].make_ascii_uppercase();
    let mut text = format!("# {title}\r\n");
    for (name, value) in fields {
        text.push_str(&format!("{name}:{value}\r\n"));
    }
    text
}

/// Connections refused: for a command that was none, or a TLS failure (not those closed to
/// make room: they had been served).
fn rejected_connections(refusals: RefusalCounts) -> u64 {
    refusals.bad_commands.saturating_add(refusals.tls_refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(asked: &[&str]) -> String {
        let facts = ListenerFacts {
            port: 6379,
            counts: FrontCounts {
                connections: 4,
                refused: RefusalCounts { bad_commands: 1, tls_refused: 2, clients_evicted: 5 },
                cluster_requests: 10,
                cluster_commands: 25,
            },
        };
        let asked: Vec<String> = asked.iter().map(|name| (*name).to_owned()).collect();
        info_text(&NodeStatus::example(), facts, &asked)
    }

    fn titles(text: &str) -> Vec<&str> {
        text.lines().filter_map(|line| line.strip_prefix("# ")).collect()
    }

    #[test]
    fn every_section_unless_some_are_named() {
        let every = ["Server", "Clients", "Stats", "Replication", "Keyspace"];
        assert_eq!(titles(&info(&[])), every);
        assert_eq!(titles(&info(&["all"])), every);
        assert_eq!(titles(&info(&["default"])), every);
        assert_eq!(titles(&info(&["everything"])), every);
    }

    #[test]
    fn only_the_sections_named_in_redis_order() {
        let text = info(&["keyspace", "replication"]);
        assert_eq!(titles(&text), ["Replication", "Keyspace"]);
        assert!(text.contains("role:leader\r\nnode_id:2\r\nleader:2\r\nterm:7\r\n"), "{text}");
        assert!(text.contains("commit_index:40\r\napplied_index:39\r\n"), "{text}");
        assert!(text.ends_with("db0:keys=3,expires=0,avg_ttl=0\r\n"), "{text}");
        assert!(!text.contains("tcp_port"), "{text}");
        let clients = info(&["clients"]);
        assert_eq!(clients, "# Clients\r\nconnected_clients:4\r\n");
        let stats = info(&["stats"]);
        assert_eq!(
            stats,
            "# Stats\r\nrejected_connections:3\r\ntls_refused_connections:2\r\n\
             evicted_clients:5\r\ncluster_requests:10\r\ncluster_commands:25\r\n"
        );
        assert!(info(&["server"]).contains("tcp_port:6379\r\n"));
    }

    #[test]
    fn a_name_that_is_no_section_adds_nothing() {
        assert_eq!(info(&["commandstats"]), "");
        assert_eq!(titles(&info(&["commandstats", "stats"])), ["Stats"]);
    }
}
