//! `serve --metrics-listen`: real nodes answer `/metrics` with Prometheus text and `/health`
//! with 200 once they have a leader, over plain HTTP; the series move as the cluster works.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{PATIENCE, TestCluster, free_ports};

/// One HTTP/1.1 GET; returns the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the metrics port answers");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("a timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("the request goes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("the server closes after answering");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok());
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .and_then(|length| length.parse::<usize>().ok());
    assert_eq!(length, Some(body.len()), "{head}");
    (status.expect("a status code"), body.to_owned())
}

/// A series (its name and labels, as printed) and the test its value must pass.
type Wanted<'a> = (&'a str, fn(f64) -> bool);

/// The value of the series `series` (its name and labels, as printed), if present.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls node `port`'s `/metrics` until every series of `wanted` is present and its value
/// passes its test.
fn wait_for_metrics(port: u16, cluster: &TestCluster, wanted: &[Wanted<'_>]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, metrics) = get(port, "/metrics");
        assert_eq!(status, 200);
        let missing =
            wanted.iter().find(|(series, holds)| !value(&metrics, series).is_some_and(holds));
        match missing {
            None => return,
            Some((series, _)) if Instant::now() > deadline => {
                panic!("{series} never as wanted:\n{metrics}\n{}", cluster.logs())
            }
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Polls node `port`'s `/health` until it answers 200; returns its reason.
fn wait_until_healthy(port: u16, cluster: &TestCluster) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = TcpStream::connect(("127.0.0.1", port)).ok().map(|_| get(port, "/health"));
        match answer {
            Some((200, reason)) => return reason,
            other if Instant::now() > deadline => {
                panic!("never healthy: {other:?}\n{}", cluster.logs())
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn a_node_answers_metrics_and_health_over_http() {
    let metrics_ports = free_ports(3);
    let mut cluster = TestCluster::unstarted(3);
    let serve_args = |node: usize| {
        let listen = format!("--metrics-listen=127.0.0.1:{}", metrics_ports[node - 1]);
        // Small snapshots, so that a few puts make one.
        [listen, "--snapshot-bytes=4096".to_owned()]
    };
    for node in 1..=3 {
        cluster.spawn_with(node, &serve_args(node).each_ref().map(String::as_str));
    }
    let leader = cluster.wait_for_leader(None);
    let port = metrics_ports[leader as usize - 1];
    let health = wait_until_healthy(port, &cluster);
    assert!(health.starts_with("ok: leader in term "), "{health}");
    assert!(health.contains(&format!(", leader n{leader}, applied ")), "{health}");
    let mut client = cluster.client();
    for key in 0..40 {
        client.put(format!("k{key}"), [b'v'; 200]).expect("a put");
    }
    assert_eq!(client.get("k0").expect("a get"), Some(vec![b'v'; 200]));
    let is_one = |value| value == 1.0;
    let positive = |value| value > 0.0;
    let at_least_40 = |value| value >= 40.0;
    let followers: Vec<u64> = (1..=3).filter(|node| *node != leader).collect();
    let links_up: Vec<String> = followers
        .iter()
        .map(|follower| format!("raftkv_peer_connected{{peer=\"{follower}\"}}"))
        .collect();
    let mut wanted: Vec<Wanted<'_>> = vec![
        ("raftkv_role{role=\"leader\"}", is_one),
        ("raftkv_term", positive),
        ("raftkv_commit_index", at_least_40),
        ("raftkv_applied_index", at_least_40),
        ("raftkv_wal_bytes", positive),
        ("raftkv_client_connections", positive),
        ("raftkv_raft_elections_total", |value| value >= 0.0),
        ("raftkv_refused_total{reason=\"bad_frames\"}", |value| value == 0.0),
        ("raftkv_leader_changes_total", positive),
        ("raftkv_proposals_total{kind=\"put\"}", at_least_40),
        ("raftkv_reads_total{kind=\"get\"}", positive),
        ("raftkv_wal_sync_seconds_count", at_least_40),
        ("raftkv_wal_batch_entries_sum", at_least_40),
        ("raftkv_wal_batch_bytes_sum", |value| value >= 40.0 * 200.0),
        ("raftkv_snapshots_saved_total", positive),
        ("raftkv_snapshot_save_seconds_count", positive),
        ("raftkv_peers_connected", |value| value == 2.0),
    ];
    wanted.extend(links_up.iter().map(|series| (series.as_str(), is_one as fn(f64) -> bool)));
    wait_for_metrics(port, &cluster, &wanted);

    // A follower restarts: the leader's link to it goes down, then comes up again.
    let follower = followers[0] as usize;
    cluster.kill(follower);
    let connected = format!("raftkv_peer_connected{{peer=\"{follower}\"}}");
    wait_for_metrics(port, &cluster, &[(connected.as_str(), |value| value == 0.0)]);
    cluster.spawn_with(follower, &serve_args(follower).each_ref().map(String::as_str));
    let reconnects = format!("raftkv_peer_reconnects_total{{peer=\"{follower}\"}}");
    wait_for_metrics(
        port,
        &cluster,
        &[(connected.as_str(), is_one), (reconnects.as_str(), |value| value >= 1.0)],
    );
    assert_eq!(get(port, "/elsewhere").0, 404);
}

/// The Redis listener's counters (those of `INFO stats`) are series of `/metrics` too, and move
/// with its traffic.
#[test]
fn the_redis_listeners_counters_are_in_metrics() {
    let port = free_ports(1)[0];
    let listen = format!("--metrics-listen=127.0.0.1:{port}");
    let cluster = TestCluster::start_redis(1, &[&listen]);
    let is_zero = |value| value == 0.0;
    wait_for_metrics(
        port,
        &cluster,
        &[
            ("raftkv_redis_connections", is_zero),
            ("raftkv_redis_cluster_requests_total", is_zero),
            ("raftkv_redis_cluster_commands_total", is_zero),
            ("raftkv_redis_refused_total{reason=\"bad_commands\"}", is_zero),
        ],
    );
    let client = redis::Client::open(cluster.redis_url(1)).expect("a valid url");
    let mut connection = common::connect_when_listening(&client, 1);
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
        pipe.cmd("GET").arg(format!("k{i}")).ignore();
    }
    pipe.query::<()>(&mut connection).expect("the pipeline");
    let mut garbled = TcpStream::connect(cluster.redis_address(1)).expect("connects");
    garbled.write_all(b"*1\r\n+PING\r\n").expect("sends");
    let mut answer = String::new();
    let _ = garbled.read_to_string(&mut answer);
    assert!(answer.starts_with("-ERR Protocol error"), "{answer}");
    wait_for_metrics(
        port,
        &cluster,
        &[
            ("raftkv_redis_connections", |value| value == 1.0),
            ("raftkv_redis_cluster_requests_total", |value| value >= 1.0),
            ("raftkv_redis_cluster_commands_total", |value| value == 100.0),
            ("raftkv_redis_refused_total{reason=\"bad_commands\"}", |value| value == 1.0),
            ("raftkv_redis_refused_total{reason=\"clients_evicted\"}", is_zero),
        ],
    );
}

/// With `--read-lease` the leader answers reads from its lease: they are right, and counted.
#[test]
fn with_read_lease_the_leader_answers_reads_from_its_lease() {
    let metrics_ports = free_ports(3);
    let mut cluster = TestCluster::unstarted(3);
    for node in 1..=3 {
        let listen = format!("--metrics-listen=127.0.0.1:{}", metrics_ports[node - 1]);
        cluster.spawn_with(node, &[&listen, "--read-lease"]);
    }
    let leader = cluster.wait_for_leader(None);
    let port = metrics_ports[leader as usize - 1];
    let mut client = cluster.client();
    client.put("k", b"v").expect("a put");
    // The first reads may come before a heartbeat round gave the leader its lease.
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert_eq!(client.get("k").expect("a get"), Some(b"v".to_vec()));
        let (_, metrics) = get(port, "/metrics");
        if value(&metrics, "raftkv_raft_lease_reads_total").is_some_and(|reads| reads > 0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no read from the lease:\n{metrics}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
