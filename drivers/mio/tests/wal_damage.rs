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

/// Bytes of a segment's header (WAL format version 2).
const SEGMENT_HEADER_BYTES: usize = 20;
/// Bytes of a record's header: its checksum, the payload's length and the payload's checksum.
const RECORD_HEADER_BYTES: usize = 12;

/// Where the records of a segment end, walking them by their lengths (the last bytes of a
/// record may be zeros, so the last non-zero byte does not tell).
fn records_end(segment: &Path) -> u64 {
    let bytes = fs::read(segment).unwrap();
    let mut offset = SEGMENT_HEADER_BYTES;
    while let Some(header) = bytes.get(offset..offset + RECORD_HEADER_BYTES) {
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let length = u32::from_le_bytes(header[4..8].try_into().unwrap()) as usize;
        offset += RECORD_HEADER_BYTES + length;
    }
    offset as u64
}

/// Where the bytes that are not zeros end.
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
        let end = records_end(&last);
        assert!(data_end(&last) <= end);
        // An intact record header announcing 1000 bytes right after the last record, followed
        // by only a few, the rest still zeros: a crash in the middle of a write.
        let file = OpenOptions::new().write(true).open(&last).unwrap();
        file.write_all_at(&torn_record(), end).unwrap();
        drop(file);
        assert_eq!(data_end(&last), end + 15);
        assert_eq!(records_end(&last), end + 1_012, "a record announcing 1000 bytes");
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
    cluster.wait_for_status(1, "caught up and sound", caught_up);
}

/// Node `status` holds everything the leader applied and takes part in elections again.
fn caught_up(status: &raftkv::NodeStatus, leader: &raftkv::NodeStatus) -> bool {
    !status.damaged && status.applied >= leader.applied && status.applied.0 > 0
}

/// Review finding, exactly as README advised an operator: stop a follower, remove its data
/// directory, start it again. It stayed at commit 0 forever: the leader took each of its
/// rejections, at or below the old match index, for a late answer to an older message. With
/// `--rejoin` it also stays out of elections until it has caught up; the leader compacted, so
/// it needs the snapshot.
#[test]
fn a_follower_whose_data_was_removed_catches_up() {
    for flags in [&[][..], &["--rejoin"][..]] {
        let mut cluster = TestCluster::start_with(3, &["--snapshot-bytes", "4096"]);
        let mut client = cluster.client();
        for i in 0..300 {
            client.put(format!("key{i}"), "v".repeat(40)).unwrap();
        }
        let leader = cluster.wait_for_leader(None);
        let follower = if leader == 3 { 2 } else { 3 };
        assert!(cluster.terminate(follower as usize).success());
        fs::remove_dir_all(cluster.data_dir(follower as usize)).unwrap();
        cluster.spawn_with(follower as usize, flags);
        cluster.wait_for_status(follower, "caught up after losing its data", caught_up);
        cluster.wait_for_log(follower as usize, "saving snapshot");
        let log = cluster.log(follower as usize);
        assert_eq!(log.contains("damaged=true"), !flags.is_empty(), "{log}");
    }
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
    cluster.wait_for_status(3, "caught up after rejoining", caught_up);

    // Once the directory holds the node's data again, the flag has no effect.
    assert!(cluster.terminate(3).success());
    cluster.spawn_with(3, &["--rejoin"]);
    client.append("k", "11,").unwrap();
    assert_eq!(client.get("k").unwrap(), Some(expected(12)));
    cluster.wait_for_log(3, "--rejoin ignored");
}
