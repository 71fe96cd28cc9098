//! Damage to a node's data: a torn WAL tail is repaired quietly; other damage is cut away loudly
//! and the node starts, the cluster serving every acknowledged write; a node whose data was
//! removed rejoins with `--rejoin`.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::TestCluster;

/// A cluster with `writes` acknowledged appends to key `k`, then stopped cleanly.
fn written_and_stopped(writes: usize) -> TestCluster {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    for i in 0..writes {
        client.append("k", format!("{i},")).unwrap();
    }
    for node in 1..=3 {
        assert!(cluster.terminate(node).success());
    }
    cluster
}

/// Where the records of a segment end (the writer zero-fills the space after them).
fn data_end(segment: &Path) -> u64 {
    let bytes = fs::read(segment).unwrap();
    bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last as u64 + 1)
}

fn expected(writes: usize) -> Vec<u8> {
    (0..writes).map(|i| format!("{i},")).collect::<String>().into_bytes()
}

#[test]
fn a_torn_record_at_the_tail_is_cut_off_on_start() {
    let mut cluster = written_and_stopped(20);
    for node in 1..=3 {
        let last = cluster.segments(node).pop().expect("a segment");
        let end = data_end(&last);
        // An intact record header announcing 1000 bytes right after the last record, followed
        // by only a few, the rest still zeros: a crash in the middle of a write.
        let file = OpenOptions::new().write(true).open(&last).unwrap();
        file.write_all_at(&torn_record(), end).unwrap();
        drop(file);
        assert_eq!(data_end(&last), end + 15);
    }
    for node in 1..=3 {
        cluster.spawn(node);
    }
    cluster.wait_for_leader(None);
    let mut client = cluster.client();
    assert_eq!(client.get("k").unwrap(), Some(expected(20)));
    client.append("k", "more").unwrap();
    let log = cluster.log(1);
    assert!(log.contains("repaired a torn record"), "{log}");
}

/// The first bytes of a record (WAL format version 2) of 1000 bytes of payload: a header
/// whose checksum holds, and three bytes of payload.
fn torn_record() -> Vec<u8> {
    let mut fields = 1000u32.to_le_bytes().to_vec();
    fields.extend_from_slice(&0x1234_5678u32.to_le_bytes());
    let mut bytes = crc32c::crc32c(&fields).to_le_bytes().to_vec();
    bytes.extend_from_slice(&fields);
    bytes.extend_from_slice(&[1, 2, 3]);
    bytes
}

#[test]
fn a_corrupt_record_in_the_middle_is_cut_away_loudly_and_the_cluster_serves_everything() {
    let mut cluster = written_and_stopped(30);
    let segment = cluster.segments(1).into_iter().next().expect("a segment");
    let mut bytes = fs::read(&segment).unwrap();
    let middle = data_end(&segment) as usize / 2;
    bytes[middle] ^= 0x55;
    fs::write(&segment, bytes).unwrap();

    for node in 1..=3 {
        cluster.spawn(node);
    }
    cluster.wait_for_leader(None);
    let mut client = cluster.client();
    assert_eq!(client.get("k").unwrap(), Some(expected(30)));
    client.append("k", "more").unwrap();
    assert!(cluster.is_running(1), "the damaged node runs\n{}", cluster.log(1));
    let log = cluster.log(1);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(log.contains("DAMAGED DATA"), "{log}");
    assert!(log.contains(&name), "{log}");
    assert!(log.contains("at offset"), "{log}");
    assert!(log.contains("dropped the log after entry"), "{log}");
    assert!(log.contains("stays out of elections until it has caught up"), "{log}");
}

#[test]
fn a_node_whose_data_was_removed_rejoins_with_the_flag() {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    for i in 0..10 {
        client.append("k", format!("{i},")).unwrap();
    }
    cluster.kill(3);
    fs::remove_dir_all(cluster.data_dir(3)).unwrap();
    cluster.spawn_with(3, &["--rejoin"]);
    client.append("k", "10,").unwrap();
    assert_eq!(client.get("k").unwrap(), Some(expected(11)));
    cluster.wait_for_log(3, "rejoining: this node's data was lost or removed");
    cluster.wait_for_log(3, "damaged=true");

    // Once the directory holds the node's data again, the flag has no effect.
    assert!(cluster.terminate(3).success());
    cluster.spawn_with(3, &["--rejoin"]);
    client.append("k", "11,").unwrap();
    assert_eq!(client.get("k").unwrap(), Some(expected(12)));
    cluster.wait_for_log(3, "--rejoin ignored");
}
