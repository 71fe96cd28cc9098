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
}
