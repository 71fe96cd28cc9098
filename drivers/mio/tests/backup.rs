//! Backups: `raftkv snapshot save` through the leader of a running cluster, and `raftkv
//! snapshot restore` seeding a new cluster, at other addresses, that serves every key.

mod common;

use std::process::{Command, Output};

use common::TestCluster;

fn value(i: usize) -> Vec<u8> {
    let mut value = format!("value-{i}-").into_bytes();
    // 300 keys of 8 KiB: the snapshot's data takes several chunks of 1 MiB.
    value.resize(8 << 10, b'0' + (i % 10) as u8);
    value
}

fn restore(file: &std::path::Path, cluster: &TestCluster, node: usize) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["snapshot", "restore"])
        .arg(file)
        .arg("--data")
        .arg(cluster.data_dir(node))
        .args(["--id", &node.to_string(), "--peers", &cluster.peers()])
        .output()
        .expect("run raftkv snapshot restore")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_backup_restored_into_a_fresh_cluster_at_other_addresses_serves_every_key() {
    let old = TestCluster::start(3);
    let mut client = old.client();
    for i in 0..300 {
        client.put(format!("key-{i}"), value(i)).unwrap();
    }
    client.delete("key-7").unwrap();
    let file = std::env::temp_dir().join(format!("raftkv-backup-test-{}.rkv", std::process::id()));
    let saved = old.cli(&["snapshot", "save", file.to_str().unwrap()]);
    assert!(saved.status.success(), "{}\n{}", stderr(&saved), old.logs());
    assert!(String::from_utf8_lossy(&saved.stdout).contains("saved the snapshot at index"));
    // Written after the backup began: not in it.
    client.put("later", "not in the backup").unwrap();
    drop(client);
    drop(old);

    let mut new = TestCluster::unstarted(3);
    for node in 1..=3 {
        let restored = restore(&file, &new, node);
        assert!(restored.status.success(), "{}", stderr(&restored));
    }
    let again = restore(&file, &new, 1);
    assert_eq!(again.status.code(), Some(2), "restored over a node's data: {}", stderr(&again));
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    for node in 1..=3 {
        new.spawn(node);
    }
    new.wait_for_leader(None);
    let mut client = new.client();
    for i in 0..300 {
        let expected = (i != 7).then(|| value(i));
        assert_eq!(client.get(format!("key-{i}")).unwrap(), expected, "key {i}");
    }
    assert_eq!(client.get("later").unwrap(), None);
    client.put("after-restore", "yes").unwrap();
    let status = new.status_of(1);
    let voters: Vec<u64> = status.membership.voters.iter().map(|id| id.0).collect();
    assert_eq!(voters, [1, 2, 3]);

    // A damaged backup is refused before anything is written.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let mut fresh = TestCluster::unstarted(1);
    let damaged = restore(&file, &fresh, 1);
    assert_eq!(damaged.status.code(), Some(1));
    assert!(stderr(&damaged).contains("checksum"), "{}", stderr(&damaged));
    assert!(!fresh.data_dir(1).exists(), "a refused restore wrote a directory");
    fresh.kill(1);
    std::fs::remove_file(&file).unwrap();
}
