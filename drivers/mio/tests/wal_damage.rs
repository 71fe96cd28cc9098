//! Damage to a node's write-ahead log: a torn tail is repaired, damage elsewhere stops the node.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{PATIENCE, TestCluster, wait_with_deadline};

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
        // A record header announcing 1000 bytes right after the last record, followed by only
        // a few: a crash in the middle of a write.
        let file = OpenOptions::new().write(true).open(&last).unwrap();
        file.write_all_at(&[0xe8, 0x03, 0, 0, 0x12, 0x34, 0x56, 0x78, 1, 2, 3], end).unwrap();
        drop(file);
        assert_eq!(data_end(&last), end + 11);
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

#[test]
fn a_corrupt_record_in_the_middle_stops_the_node_with_a_clear_error() {
    let cluster = written_and_stopped(30);
    let segment = cluster.segments(1).into_iter().next().expect("a segment");
    let mut bytes = fs::read(&segment).unwrap();
    let middle = data_end(&segment) as usize / 2;
    bytes[middle] ^= 0x55;
    fs::write(&segment, bytes).unwrap();

    let mut child = cluster.serve_command(1).spawn().unwrap();
    let status = wait_with_deadline(&mut child, PATIENCE).expect("the node refuses to start");
    assert!(!status.success());
    let log = cluster.log(1);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    assert!(log.contains("corrupt data in"), "{log}");
    assert!(log.contains(&name), "{log}");
    assert!(log.contains("at offset"), "{log}");
    assert!(log.contains("refusing to start"), "{log}");
}
