//! Snapshots on real processes: the WAL is compacted, a restarted cluster recovers from its
//! snapshots, and a node that was down catches up through InstallSnapshot.

mod common;

use std::time::{Duration, Instant};

use common::{PATIENCE, TestCluster};

const SMALL: [&str; 4] = ["--snapshot-bytes", "8192", "--wal-segment-bytes", "16384"];

fn value(i: usize) -> String {
    format!("{i:04}-{}", "x".repeat(60))
}

#[test]
fn snapshots_compact_the_wal_and_bring_a_lagging_node_up_to_date() {
    let mut cluster = TestCluster::start_with(3, &SMALL);
    let mut client = cluster.client();
    client.put("first", "1").unwrap();
    cluster.kill(3);
    for i in 0..600 {
        client.put(format!("k{}", i % 50), value(i)).unwrap();
    }
    // Old segments went away once snapshots covered them.
    let statuses = client.status().unwrap();
    for node in 1..=2 {
        let first = cluster.data_dir(node).join("wal").join(format!("{:020}.wal", 1));
        assert!(!first.exists(), "node {node} kept its first segment");
        assert!(cluster.data_dir(node).join("snapshot").exists());
        let wal_bytes = statuses[node - 1].1.as_ref().unwrap().wal_bytes;
        assert!(wal_bytes < 64 << 10, "node {node} keeps {wal_bytes} bytes of WAL");
    }
    // Node 3 missed entries that are compacted away: it needs the leader's snapshot.
    cluster.spawn(3);
    let leader_commit = {
        let statuses = client.status().unwrap();
        statuses
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .find(|s| s.role == "Leader")
            .expect("a leader")
            .commit
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let statuses = client.status().unwrap();
        let caught_up = statuses[2]
            .1
            .as_ref()
            .is_ok_and(|s| s.applied >= leader_commit && s.snapshot_last.0 > 0);
        if caught_up {
            break;
        }
        assert!(Instant::now() < deadline, "node 3 did not catch up: {statuses:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // With node 1 gone, nodes 2 and 3 hold everything.
    cluster.kill(1);
    for i in 550..600 {
        assert_eq!(client.get(format!("k{}", i % 50)).unwrap(), Some(value(i).into_bytes()));
    }
    assert_eq!(client.get("first").unwrap().as_deref(), Some(&b"1"[..]));
    // And everything survives a restart of all nodes from their snapshots.
    cluster.kill(2);
    cluster.kill(3);
    for node in 1..=3 {
        cluster.spawn(node);
    }
    cluster.wait_for_leader(None);
    let mut client = cluster.client();
    assert_eq!(client.get("k49").unwrap(), Some(value(599).into_bytes()));
    assert!(cluster.log(1).contains("saving snapshot"));
    for node in 1..=3 {
        let log = cluster.log(node);
        assert!(log.contains("decoded the snapshot recovered from disk"), "node {node}:\n{log}");
    }
}

/// A follower killed (SIGKILL) while it receives a large snapshot finds the chunks it wrote
/// on its disk when it starts again, and the transfer resumes from there instead of starting
/// over.
#[test]
fn a_follower_killed_while_receiving_a_snapshot_resumes_the_transfer() {
    let mut cluster = TestCluster::start_with(3, &["--snapshot-bytes", "4000000"]);
    let mut client = cluster.client();
    client.put("first", "1").unwrap();
    cluster.kill(3);
    // About 40 MB of state, sent in chunks of 512 KiB: the leader snapshots it and compacts
    // the log node 3 missed.
    let big = |i: usize| format!("{i:06}").repeat((256 << 10) / 6);
    for i in 0..160 {
        client.put(format!("big{i}"), big(i)).unwrap();
    }
    let leader = cluster.wait_for_leader(None) as usize;
    // Once the leader's last snapshot is saved, the one node 3 receives stays the same.
    let wal = cluster.data_dir(leader).join("wal").join(format!("{:020}.wal", 1));
    let settled = |log: &str| {
        let saving = log.matches("saving snapshot").count();
        saving > 0 && saving == log.matches("snapshot saved").count()
    };
    let deadline = Instant::now() + PATIENCE;
    while wal.exists() || !settled(&cluster.log(leader)) {
        assert!(Instant::now() < deadline, "no snapshot compacted the log\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.spawn(3);
    let incoming = cluster.data_dir(3).join("snapshot.incoming");
    let received = |path: &std::path::Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let deadline = Instant::now() + PATIENCE;
    while received(&incoming) < 4 << 20 {
        assert!(Instant::now() < deadline, "no snapshot arrived\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(2));
    }
    cluster.kill(3);
    assert!(received(&incoming) > 0, "the chunks received are on disk");
    cluster.spawn(3);
    cluster.wait_for_log(3, "resuming the snapshot being received from the leader");
    let log = cluster.log(3);
    let resumed_at: u64 = log
        .split("resume_offset=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .expect("the resume offset is logged");
    assert!(resumed_at >= 1 << 20, "resumed at byte {resumed_at}\n{log}");
    cluster.wait_for_status(3, "caught up through the snapshot", |node, leader| {
        node.applied >= leader.commit && node.snapshot_last.0 > 0
    });
    assert!(!incoming.exists(), "the received snapshot is installed and dropped");
    cluster.kill(leader);
    let mut client = cluster.client();
    assert_eq!(client.get("big159").unwrap(), Some(big(159).into_bytes()));
    assert_eq!(client.get("first").unwrap().as_deref(), Some(&b"1"[..]));
}

/// With no log cache, a leader holds no applied entry in memory: a node that was down gets
/// the entries it missed read back from the leader's WAL, without a snapshot; and a node
/// restarted holds none of its log in memory, applying it as it reads it back from its WAL.
#[test]
fn a_lagging_node_catches_up_from_entries_read_back_from_the_wal() {
    let args = ["--log-cache-bytes", "0", "--snapshot-bytes", "100000000"];
    let mut cluster = TestCluster::start_with(3, &args);
    let mut client = cluster.client();
    client.put("first", "1").unwrap();
    cluster.kill(3);
    for i in 0..400 {
        client.put(format!("k{}", i % 50), value(i)).unwrap();
    }
    let statuses = client.status().unwrap();
    let leader = statuses.iter().filter_map(|(_, s)| s.as_ref().ok()).find(|s| s.role == "Leader");
    let leader = leader.expect("a leader");
    assert!(leader.log_entries < 50, "the leader holds {} entries", leader.log_entries);
    cluster.spawn(3);
    cluster.wait_for_status(3, "caught up from the WAL", |this, leader| {
        this.applied >= leader.commit && this.snapshot_last.0 == 0
    });
    cluster.kill(1);
    cluster.kill(2);
    cluster.spawn(2);
    let mut client = cluster.client();
    assert_eq!(client.get("k49").unwrap(), Some(value(399).into_bytes()));
    let log = cluster.log(2);
    let left_on_disk: Option<u64> = log
        .rsplit("entries_on_disk=")
        .next()
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    assert!(left_on_disk.is_some_and(|count| count > 400), "{left_on_disk:?}\n{log}");
}
