//! The node's figures for monitoring: a snapshot the event loop publishes now and then, the
//! Prometheus text of `/metrics` and the verdict of `/health`, both read from that snapshot so
//! that a scrape never waits for the loop.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use raftkv_core::NodeId;
use raftkv_core::raft::Counters;

use super::front::FrontCounts;
use super::instruments::Instruments;
use super::loop_counts::LoopCounts;
use crate::connection_report::ConnectionReport;
use crate::wire::NodeStatus;

/// How often the event loop publishes its figures, at most, in milliseconds.
pub(super) const PUBLISH_EVERY_MS: u64 = 250;

/// Figures older than this make the node unhealthy: its event loop is stuck.
const STALE_AFTER: Duration = Duration::from_secs(5);

/// What the event loop publishes.
#[derive(Clone, Debug)]
pub(super) struct Figures {
    pub(super) status: NodeStatus,
    pub(super) counters: Counters,
    /// The link to each peer.
    pub(super) links: Vec<LinkFigures>,
    /// Client requests taken as leader, leader changes seen.
    pub(super) counts: LoopCounts,
    /// The Redis listener's, if the node runs one.
    pub(super) front: Option<FrontCounts>,
    /// When the loop published them.
    pub(super) at: Instant,
}

/// The state of the link to one peer.
#[derive(Clone, Debug)]
pub(super) struct LinkFigures {
    pub(super) peer: NodeId,
    pub(super) connected: bool,
    /// Times it came up again after it had been up.
    pub(super) reconnects: u64,
}

/// The figures last published, shared by the event loop and the HTTP thread, with the
/// instruments the disk and snapshot threads record into.
#[derive(Clone, Default)]
pub(super) struct Published {
    latest: Arc<Mutex<Option<Figures>>>,
    instruments: Instruments,
}

impl Published {
    pub(super) fn new(instruments: Instruments) -> Published {
        Published { latest: Arc::default(), instruments }
    }

    pub(super) fn publish(&self, figures: Figures) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(figures);
    }

    fn latest(&self) -> Option<Figures> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The Prometheus text of the latest figures (empty before the first).
    pub(super) fn metrics_text(&self) -> String {
        let encoded = |figures| encode_figures(&figures, &self.instruments);
        self.latest().map(encoded).unwrap_or_default()
    }

    /// Whether the node is healthy, with a one-line reason: it knows a leader, its data is
    /// whole, it has applied all but at most `max_apply_lag` of the entries it knows
    /// committed, and its figures are fresh.
    pub(super) fn health(&self, max_apply_lag: u64) -> (bool, String) {
        let Some(figures) = self.latest() else {
            return (false, "starting: no figures yet".to_owned());
        };
        health(&figures, max_apply_lag, Instant::now())
    }
}

fn health(figures: &Figures, max_apply_lag: u64, now: Instant) -> (bool, String) {
    let status = &figures.status;
    let age = now.saturating_duration_since(figures.at);
    let lag = status.commit.0.saturating_sub(status.applied.0);
    match status.leader {
        _ if age > STALE_AFTER => {
            (false, format!("stuck: no figures from the event loop for {} s", age.as_secs()))
        }
        _ if status.damaged => (false, "damaged: catching up with a leader".to_owned()),
        None => (false, format!("no leader known in term {}", status.term.0)),
        Some(_) if lag > max_apply_lag => (
            false,
            format!(
                "behind: applied {} of {} committed entries, more than {max_apply_lag} behind",
                status.applied.0, status.commit.0
            ),
        ),
        Some(leader) => (
            true,
            format!(
                "ok: {} in term {}, leader n{}, applied {} of {} committed",
                status.role.to_lowercase(),
                status.term.0,
                leader.0,
                status.applied.0,
                status.commit.0
            ),
        ),
    }
}

/// Registers a gauge named `name` holding `value`.
fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let gauge: Gauge = Gauge::default();
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, gauge);
}

/// Registers a counter family named `name`, one counter per label value.
fn counters_by(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    counts: impl IntoIterator<Item = (String, u64)>,
) {
    let family: Family<Vec<(String, String)>, Counter> = Family::default();
    for (value, count) in counts {
        family.get_or_create(&vec![(label.to_owned(), value)]).inc_by(count);
    }
    registry.register(name, help, family);
}

fn encode_figures(figures: &Figures, instruments: &Instruments) -> String {
    let mut registry = Registry::with_prefix("raftkv");
    register_status(&mut registry, &figures.status);
    register_links(&mut registry, &figures.links);
    register_connections(&mut registry, &figures.status.connections);
    register_loop_counts(&mut registry, &figures.counts);
    if let Some(front) = &figures.front {
        register_redis(&mut registry, front);
    }
    register_counters(&mut registry, &figures.counters);
    instruments.register(&mut registry);
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

fn register_status(registry: &mut Registry, status: &NodeStatus) {
    let roles: Family<Vec<(String, String)>, Gauge> = Family::default();
    for role in ["Follower", "PreCandidate", "Candidate", "Leader"] {
        let label = vec![("role".to_owned(), role.to_lowercase())];
        roles.get_or_create(&label).set(i64::from(status.role == role));
    }
    registry.register("role", "1 for the node's role, 0 for the others", roles);
    gauge(registry, "node_id", "This node's id", status.id.0);
    gauge(registry, "term", "Current term", status.term.0);
    let leader = status.leader.map_or(0, |leader| leader.0);
    gauge(registry, "leader_id", "The leader this node knows of (0: none)", leader);
    gauge(registry, "commit_index", "Commit index", status.commit.0);
    let applied = status.applied.0;
    gauge(registry, "applied_index", "Last index applied to the state machine", applied);
    gauge(registry, "last_log_index", "Last log index", status.last_log.0);
    let snapshot = status.snapshot_last.0;
    gauge(registry, "snapshot_index", "Last index the snapshot covers", snapshot);
    gauge(registry, "log_entries", "Log entries held in memory", status.log_entries);
    gauge(registry, "wal_bytes", "Bytes of the write-ahead log on disk", status.wal_bytes);
    gauge(registry, "keys", "Keys in the state machine", status.keys);
    let damaged = u64::from(status.damaged);
    gauge(registry, "damaged", "1 while damaged data keeps it out of elections", damaged);
}

fn register_links(registry: &mut Registry, links: &[LinkFigures]) {
    let connected = links.iter().filter(|link| link.connected).count() as u64;
    gauge(registry, "peers", "Peers this node links to", links.len() as u64);
    gauge(registry, "peers_connected", "Peers whose link is connected", connected);
    let states: Family<Vec<(String, String)>, Gauge> = Family::default();
    for link in links {
        let label = vec![("peer".to_owned(), link.peer.0.to_string())];
        states.get_or_create(&label).set(i64::from(link.connected));
    }
    registry.register("peer_connected", "1 while the link to the peer is connected", states);
    let reconnects = links.iter().map(|link| (link.peer.0.to_string(), link.reconnects));
    let help = "Times the link to the peer came up again after it had been up";
    counters_by(registry, "peer_reconnects", help, "peer", reconnects);
}

fn register_connections(registry: &mut Registry, connections: &ConnectionReport) {
    gauge(registry, "client_connections", "Accepted client connections", connections.clients);
    gauge(registry, "peer_connections", "Accepted peer connections", connections.peers);
    gauge(registry, "pending_connections", "Connections in their handshake", connections.pending);
    let in_flight = connections.requests_in_flight;
    gauge(registry, "requests_in_flight", "Client requests awaiting answers", in_flight);
    let buffered = connections.client_buffered_bytes;
    gauge(registry, "client_buffered_bytes", "Bytes client connections buffer", buffered);
    // Every reason the report has, by its field name, so that a new reason shows up here too.
    let reasons = match serde_json::to_value(&connections.refused) {
        Ok(serde_json::Value::Object(reasons)) => reasons,
        _ => serde_json::Map::new(),
    };
    let refused = reasons.into_iter().map(|(reason, count)| (reason, count.as_u64().unwrap_or(0)));
    let help = "Connections refused or closed, by reason";
    counters_by(registry, "refused", help, "reason", refused);
}

/// The Redis listener's series, named after its `INFO` fields.
fn register_redis(registry: &mut Registry, counts: &FrontCounts) {
    let help = "Connections of Redis clients to this node's Redis listener";
    gauge(registry, "redis_connections", help, counts.connections);
    let refused = [
        ("bad_commands", counts.refused.bad_commands),
        ("tls_refused", counts.refused.tls_refused),
        ("clients_evicted", counts.refused.clients_evicted),
    ];
    let refused = refused.map(|(reason, count)| (reason.to_owned(), count));
    let help = "Redis connections refused or closed to make room, by reason";
    counters_by(registry, "redis_refused", help, "reason", refused);
    let help = "Requests the Redis listener sent to the cluster";
    let requests: Counter = Counter::default();
    requests.inc_by(counts.cluster_requests);
    registry.register("redis_cluster_requests", help, requests);
    let help =
        "Redis commands those requests carried (more than requests: pipelines go as batches)";
    let commands: Counter = Counter::default();
    commands.inc_by(counts.cluster_commands);
    registry.register("redis_cluster_commands", help, commands);
}

fn register_loop_counts(registry: &mut Registry, counts: &LoopCounts) {
    let proposals = counts.proposals.iter().map(|(kind, count)| (kind.to_string(), *count));
    let help = "Client requests taken as leader to go through the log, by kind";
    counters_by(registry, "proposals", help, "kind", proposals);
    let reads = counts.reads.iter().map(|(kind, count)| (kind.to_string(), *count));
    let help = "Client reads taken as leader (a read-index round, no log entry), by kind";
    counters_by(registry, "reads", help, "kind", reads);
    let changes: Counter = Counter::default();
    changes.inc_by(counts.leader_changes);
    let help = "Times this node saw a new leader: another node, or the same one in a new term";
    registry.register("leader_changes", help, changes);
}

fn register_counters(registry: &mut Registry, counters: &Counters) {
    let raft: [(&str, &str, u64); 25] = [
        (
            "dropped_misaddressed",
            "Messages addressed to another node",
            counters.dropped_misaddressed,
        ),
        ("dropped_stale_term", "Messages from an older term", counters.dropped_stale_term),
        (
            "dropped_in_lease",
            "Votes refused while a leader was heard from or within a vote promise",
            counters.dropped_in_lease,
        ),
        (
            "dropped_unexpected",
            "Messages that make no sense in this role and term",
            counters.dropped_unexpected,
        ),
        ("dropped_malformed", "Messages that cannot be valid", counters.dropped_malformed),
        (
            "dropped_bad_persist_ack",
            "Persist acknowledgements never issued or repeated",
            counters.dropped_bad_persist_ack,
        ),
        (
            "appends_rejected",
            "Appends rejected for a missing predecessor",
            counters.appends_rejected,
        ),
        (
            "appends_held",
            "Appends that arrived ahead of a gap, held until it filled",
            counters.appends_held,
        ),
        (
            "appends_from_disk",
            "Appends whose entries were read back from the WAL to send",
            counters.appends_from_disk,
        ),
        (
            "log_reads_failed",
            "Reads of entries from the WAL that failed (a snapshot is taken past them)",
            counters.log_reads_failed,
        ),
        (
            "loads_from_disk",
            "Batches of entries a restart left in the WAL, read back to apply",
            counters.loads_from_disk,
        ),
        (
            "dropped_bad_loads",
            "Entries read back to apply that were not the ones asked for",
            counters.dropped_bad_loads,
        ),
        ("pre_elections", "Pre-vote rounds started", counters.pre_elections),
        ("elections", "Elections started", counters.elections),
        ("leaderships", "Times this node became leader", counters.leaderships),
        ("snapshots_taken", "Snapshots of its own state taken", counters.snapshots_taken),
        (
            "snapshots_installed",
            "Snapshots received from a leader and installed",
            counters.snapshots_installed,
        ),
        (
            "snapshot_chunks_refused",
            "Snapshot chunks refused: they continue no snapshot being received",
            counters.snapshot_chunks_refused,
        ),
        (
            "received_snapshots_damaged",
            "Snapshots received whole found damaged on disk, received again",
            counters.received_snapshots_damaged,
        ),
        (
            "follower_logs_lost",
            "Followers found to have lost acknowledged entries",
            counters.follower_logs_lost,
        ),
        (
            "withheld_while_damaged",
            "Elections and votes withheld while damaged",
            counters.withheld_while_damaged,
        ),
        ("withheld_not_voter", "Elections not started as a non-voter", counters.withheld_not_voter),
        ("removed_nodes_told", "Removed nodes told of their removal", counters.removed_nodes_told),
        (
            "learner_campaigns",
            "Pre-votes started as a learner whose log was needed",
            counters.learner_campaigns,
        ),
        ("lease_reads", "Reads answered at once from the leader's lease", counters.lease_reads),
    ];
    for (name, help, value) in raft {
        let counter: Counter = Counter::default();
        counter.inc_by(value);
        registry.register(format!("raft_{name}"), help, counter);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use raftkv_core::LogIndex;

    use super::*;

    fn figures(leader: Option<u64>, commit: u64, applied: u64, at: Instant) -> Figures {
        Figures {
            status: NodeStatus {
                role: "Follower".to_owned(),
                leader: leader.map(NodeId),
                commit: LogIndex(commit),
                applied: LogIndex(applied),
                last_log: LogIndex(commit),
                log_entries: commit,
                ..NodeStatus::example()
            },
            counters: Counters { elections: 4, ..Counters::default() },
            links: vec![
                LinkFigures { peer: NodeId(1), connected: true, reconnects: 2 },
                LinkFigures { peer: NodeId(3), connected: false, reconnects: 0 },
            ],
            counts: {
                let mut counts = LoopCounts::default();
                counts.proposals = BTreeMap::from([("put", 5)]);
                counts.reads = BTreeMap::from([("get", 6)]);
                counts.leader_changes = 3;
                counts
            },
            front: Some(FrontCounts {
                connections: 2,
                refused: crate::server::RefusalCounts { clients_evicted: 4, ..Default::default() },
                cluster_requests: 10,
                cluster_commands: 30,
            }),
            at,
        }
    }

    #[test]
    fn healthy_with_a_leader_applied_close_to_commit_and_fresh_figures() {
        let now = Instant::now();
        let (ok, reason) = health(&figures(Some(1), 10, 9, now), 5, now);
        assert!(ok, "{reason}");
        assert_eq!(reason, "ok: follower in term 7, leader n1, applied 9 of 10 committed");
        let (ok, reason) = health(&figures(None, 10, 10, now), 5, now);
        assert!(!ok);
        assert_eq!(reason, "no leader known in term 7");
        let (ok, reason) = health(&figures(Some(1), 100, 10, now), 5, now);
        assert!(!ok);
        assert!(reason.starts_with("behind: applied 10 of 100"), "{reason}");
        let (ok, reason) = health(&figures(Some(1), 10, 10, now), 5, now + 2 * STALE_AFTER);
        assert!(!ok);
        assert!(reason.starts_with("stuck: "), "{reason}");
    }

    /// The list of Raft counters is written by hand (each with its help); a counter added to
    /// core and not to it would go unexported.
    #[test]
    fn every_raft_counter_is_exported() {
        let text =
            encode_figures(&figures(Some(1), 10, 9, Instant::now()), &Instruments::default());
        let serde_json::Value::Object(counters) =
            serde_json::to_value(Counters::default()).expect("counters serialize")
        else {
            panic!("counters serialize as an object");
        };
        for name in counters.keys() {
            let metric = format!("raftkv_raft_{name}_total ");
            assert!(text.contains(&metric), "{metric} is missing:\n{text}");
        }
    }

    /// README's operations section has a table of every series; a series added here and not
    /// there would go undocumented.
    #[test]
    fn every_series_is_in_the_readme() {
        let readme = include_str!("../../../../README.md");
        let text =
            encode_figures(&figures(Some(1), 10, 9, Instant::now()), &Instruments::default());
        let families = text.lines().filter_map(|line| line.strip_prefix("# TYPE raftkv_"));
        let mut checked = 0;
        for family in families {
            let (name, kind) = family.split_once(' ').expect("a name and a type");
            let name = if kind == "counter" { format!("{name}_total") } else { name.to_owned() };
            let row = [format!("| `{name}` |"), format!("| `{name}{{")];
            assert!(row.iter().any(|row| readme.contains(row)), "{name} is not in README.md");
            checked += 1;
        }
        assert!(checked > 40, "only {checked} families in\n{text}");
    }

    #[test]
    fn the_metrics_text_holds_the_figures() {
        let text =
            encode_figures(&figures(Some(1), 10, 9, Instant::now()), &Instruments::default());
        for line in [
            "raftkv_role{role=\"follower\"} 1",
            "raftkv_role{role=\"leader\"} 0",
            "raftkv_term 7",
            "raftkv_leader_id 1",
            "raftkv_applied_index 9",
            "raftkv_wal_bytes 4096",
            "raftkv_peers_connected 1",
            "raftkv_peers 2",
            "raftkv_peer_connected{peer=\"1\"} 1",
            "raftkv_peer_connected{peer=\"3\"} 0",
            "raftkv_peer_reconnects_total{peer=\"1\"} 2",
            "raftkv_proposals_total{kind=\"put\"} 5",
            "raftkv_reads_total{kind=\"get\"} 6",
            "raftkv_leader_changes_total 3",
            "raftkv_wal_sync_seconds_count 0",
            "raftkv_snapshots_saved_total 0",
            "raftkv_raft_elections_total 4",
            "raftkv_refused_total{reason=\"bad_frames\"} 0",
            "raftkv_redis_connections 2",
            "raftkv_redis_refused_total{reason=\"clients_evicted\"} 4",
            "raftkv_redis_refused_total{reason=\"tls_refused\"} 0",
            "raftkv_redis_cluster_requests_total 10",
            "raftkv_redis_cluster_commands_total 30",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_node_without_a_redis_listener_has_no_redis_series() {
        let figures = Figures { front: None, ..figures(Some(1), 10, 9, Instant::now()) };
        let text = encode_figures(&figures, &Instruments::default());
        assert!(!text.contains("raftkv_redis_"), "{text}");
        assert!(text.contains("raftkv_client_connections "), "{text}");
    }
}
