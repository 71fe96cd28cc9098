//! Three real `raftkv serve` processes on 127.0.0.1: the client, failover, restarts, and
//! garbage on the port.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::TestCluster;

fn key(i: usize) -> String {
    format!("key-{i}")
}

#[test]
fn put_get_append_delete_and_cas_through_the_client_and_the_cli() {
    let cluster = TestCluster::start(3);
    let mut client = cluster.client();
    client.put("greeting", "hello").unwrap();
    client.append("greeting", ", world").unwrap();
    assert_eq!(client.get("greeting").unwrap().as_deref(), Some(&b"hello, world"[..]));
    assert_eq!(client.get("nothing").unwrap(), None);
    client.append("list", "a").unwrap();
    client.append("list", "b").unwrap();
    assert_eq!(client.get("list").unwrap().as_deref(), Some(&b"ab"[..]));

    let refused = client.cas("greeting", None, "x").unwrap();
    assert!(!refused.swapped);
    assert_eq!(refused.previous.as_deref(), Some(&b"hello, world"[..]));
    assert!(client.cas("greeting", Some(b"hello, world"), "bye").unwrap().swapped);
    client.delete("greeting").unwrap();
    assert_eq!(client.get("greeting").unwrap(), None);
    assert!(client.cas("greeting", None, "again").unwrap().swapped);

    // Values over the store's limit (1 MiB) or the frame limit (16 MiB) are refused for good.
    let refused = client.put("big", vec![b'x'; 2 << 20]).unwrap_err();
    assert!(matches!(refused, raftkv::Error::Invalid { .. }), "{refused}");
    let refused = client.put("huge", vec![b'x'; 17 << 20]).unwrap_err();
    assert!(matches!(refused, raftkv::Error::Invalid { .. }), "{refused}");
    client.put("small", "ok").unwrap();

    // The command line: `get` prints the value alone; a missing key exits with status 3.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(args)
            .env("RAFTKV_CLUSTER", cluster.addresses().join(","))
            .output()
            .expect("run the CLI")
    };
    assert!(cli(&["put", "cli-key", "cli value"]).status.success());
    let got = cli(&["get", "cli-key"]);
    assert!(got.status.success());
    assert_eq!(String::from_utf8_lossy(&got.stdout), "cli value");
    assert_eq!(cli(&["get", "no-such-key"]).status.code(), Some(3));
    assert!(cli(&["cas", "cli-key", "cli value", "new"]).status.success());
    assert_eq!(cli(&["cas", "--missing", "cli-key", "x"]).status.code(), Some(3));
    // Given one follower's address, the client learns the others and finds the leader.
    let leader = cluster.wait_for_leader(None) as usize;
    let follower = cluster.addresses()[leader % 3].clone();
    let mut partial = raftkv::Client::connect(&[follower.as_str()]).unwrap();
    partial.put("via-follower", "yes").unwrap();
    assert_eq!(partial.get("via-follower").unwrap().as_deref(), Some(&b"yes"[..]));
    assert_eq!(partial.status().unwrap().len(), 3);

    let status = cli(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(text.matches(" Leader ").count(), 1, "{text}");
}

#[test]
fn the_cli_fails_clearly_when_the_cluster_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["get", "k", "--cluster", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cluster unreachable"), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
}

#[test]
fn killing_the_leader_elects_another_and_keeps_every_acknowledged_write() {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    for i in 0..50 {
        client.put(key(i), format!("value-{i}")).unwrap();
    }
    let old_leader = cluster.wait_for_leader(None);
    cluster.kill(old_leader as usize);
    // Writes go on: the client finds the new leader by itself.
    for i in 50..100 {
        client.put(key(i), format!("value-{i}")).unwrap();
    }
    let new_leader = cluster.wait_for_leader(Some(old_leader));
    assert_ne!(new_leader, old_leader);
    for i in 0..100 {
        let value = client.get(key(i)).unwrap();
        assert_eq!(value, Some(format!("value-{i}").into_bytes()), "key {i}");
    }
    // The old leader comes back as a follower and catches up.
    cluster.spawn(old_leader as usize);
    client.append("after", "x").unwrap();
    assert_eq!(cluster.wait_for_leader(None), new_leader);
}

#[test]
fn stopping_and_restarting_every_node_keeps_every_acknowledged_write() {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    for i in 0..100 {
        client.append(key(i % 10), format!("{i},")).unwrap();
    }
    drop(client);
    // One clean stop, two crashes.
    assert!(cluster.terminate(1).success(), "{}", cluster.log(1));
    assert!(cluster.log(1).contains("stopped"));
    cluster.kill(2);
    cluster.kill(3);
    for node in 1..=3 {
        cluster.spawn(node);
    }
    cluster.wait_for_leader(None);
    let mut client = cluster.client();
    for k in 0..10 {
        let expected: String = (0..100).filter(|i| i % 10 == k).map(|i| format!("{i},")).collect();
        assert_eq!(client.get(key(k)).unwrap(), Some(expected.into_bytes()), "key {k}");
    }
}

#[test]
fn garbage_on_the_port_is_refused_and_the_cluster_carries_on() {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    client.put("before", "1").unwrap();
    let address = cluster.addresses()[0].clone();
    let garbage: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[
            0x10, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4,
            0xf3, 0xf2, 0xf1, 0xf0,
        ],
        &[0xff, 0xff, 0xff, 0x7f],
        &[0x00; 64],
    ];
    for bytes in garbage {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(common::PATIENCE)).unwrap();
        stream.write_all(bytes).unwrap();
        // The node closes the connection (possibly after a refusal frame).
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
    // A half-sent frame from a client that goes away.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.write_all(&[0x40, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(stream);
    // A client of another cluster is refused with a clear reason.
    let other = raftkv::Client::connect_with(
        &[address.as_str()],
        raftkv::ClientOptions {
            cluster_name: "another".to_string(),
            connect_timeout: Duration::from_secs(2),
            ..raftkv::ClientOptions::default()
        },
    );
    let error = other.err().expect("refused").to_string();
    assert!(error.contains("wrong cluster"), "{error}");

    client.put("after", "2").unwrap();
    assert_eq!(client.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(client.get("after").unwrap().as_deref(), Some(&b"2"[..]));
    for node in 1..=3 {
        assert!(cluster.is_running(node), "node {node} died");
    }
    assert!(cluster.log(1).contains("closed a connection"), "{}", cluster.log(1));
}

#[test]
fn stopping_the_leader_hands_leadership_over_first() {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    client.put("k", "v").unwrap();
    let leader = cluster.wait_for_leader(None);
    assert!(cluster.terminate(leader as usize).success());
    let log = cluster.log(leader as usize);
    assert!(log.contains("handing leadership over"), "{log}");
    assert_ne!(cluster.wait_for_leader(Some(leader)), leader);
    assert_eq!(client.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn without_a_majority_a_write_times_out_and_the_client_recovers_afterwards() {
    let mut cluster = TestCluster::start(3);
    let options = raftkv::ClientOptions {
        timeout: Duration::from_secs(1),
        ..raftkv::ClientOptions::default()
    };
    let mut client = raftkv::Client::connect_with(&cluster.addresses(), options).unwrap();
    client.put("k", "1").unwrap();
    cluster.kill(2);
    cluster.kill(3);
    let error = client.put("k", "2").unwrap_err();
    assert!(matches!(error, raftkv::Error::Timeout { .. }), "{error}");
    cluster.spawn(2);
    cluster.spawn(3);
    cluster.wait_for_leader(None);
    // The timed-out write may or may not have taken effect; nothing else may have happened.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    let value = loop {
        match client.get("k") {
            Ok(value) => break value,
            Err(error) => assert!(std::time::Instant::now() < deadline, "{error}"),
        }
    };
    assert!(matches!(value.as_deref(), Some(b"1" | b"2")), "{value:?}");
    client.put("k", "3").unwrap();
    assert_eq!(client.get("k").unwrap().as_deref(), Some(&b"3"[..]));
}
