//! `serve --metrics-listen`: a real node answers `/metrics` with Prometheus text and `/health`
//! with 200 once it has a leader, over plain HTTP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{TestCluster, free_ports};

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

#[test]
fn a_node_answers_metrics_and_health_over_http() {
    let port = free_ports(1)[0];
    let listen = format!("--metrics-listen=127.0.0.1:{port}");
    let cluster = TestCluster::start_with(1, &[&listen]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let answer = TcpStream::connect(("127.0.0.1", port)).ok().map(|_| get(port, "/health"));
        match answer {
            Some((200, reason)) => break reason,
            other if Instant::now() > deadline => {
                panic!("never healthy: {other:?}\n{}", cluster.logs())
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert!(health.starts_with("ok: leader in term "), "{health}");
    assert!(health.contains(", leader n1, applied "), "{health}");
    cluster.client().put(b"k", b"v").expect("a put");
    let (status, metrics) = get(port, "/metrics");
    assert_eq!(status, 200);
    for line in ["raftkv_role{role=\"leader\"} 1", "raftkv_node_id 1", "raftkv_leader_id 1"] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from\n{metrics}");
    }
    for name in [
        "raftkv_term",
        "raftkv_commit_index",
        "raftkv_applied_index",
        "raftkv_wal_bytes",
        "raftkv_client_connections",
        "raftkv_raft_elections_total",
        "raftkv_refused_total{reason=\"bad_frames\"}",
    ] {
        assert!(metrics.lines().any(|l| l.starts_with(&format!("{name} "))), "{name}\n{metrics}");
    }
    assert_eq!(get(port, "/elsewhere").0, 404);
}
