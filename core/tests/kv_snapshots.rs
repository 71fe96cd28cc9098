//! Snapshots and log compaction: bounded logs, InstallSnapshot for lagging followers (chunked,
//! resumable), and recovery from a snapshot.

mod cluster;
mod kv_cluster;

use kv_cluster::{KvCluster, Packet};
use raftkv_core::NodeId;
use raftkv_core::kv::{KvCommand, KvReply};
use raftkv_core::raft::Body;

const THRESHOLD_BYTES: usize = 2_048;

fn small_snapshots(nodes: u64, clients: usize) -> KvCluster {
    KvCluster::with_config(nodes, clients, |config| {
        config.snapshot_threshold_bytes = THRESHOLD_BYTES;
        config.raft.snapshot_chunk_bytes = 32;
        config.raft.max_inflight_snapshot_chunks = 2;
    })
}

fn put(key: &str, value: &str) -> KvCommand {
    KvCommand::Put { key: key.into(), value: value.into() }
}

/// Runs `count` puts of client 0 to completion, cycling over `keys` keys.
fn write_many(cluster: &mut KvCluster, count: usize, keys: usize, tag: &str) {
    let done_before = cluster.finished[0].len();
    for i in 0..count {
        cluster.submit(0, put(&format!("k{}", i % keys), &format!("{tag}{i}")));
    }
    let target = done_before + count;
    assert!(cluster.run_until(60_000, |c| c.finished[0].len() == target), "all writes finished");
    assert!(cluster.finished[0][done_before..].iter().all(|(_, r)| *r == Ok(KvReply::Done)));
}

#[test]
fn the_log_stays_bounded_by_the_snapshot_threshold() {
    let mut cluster = small_snapshots(3, 1);
    cluster.wait_for_leader();
    let mut largest = 0;
    for round in 0..20 {
        write_many(&mut cluster, 20, 5, &format!("r{round}-"));
        for node in cluster.ids() {
            largest = largest.max(cluster.replica(node).raft().status().log_bytes);
        }
    }
    cluster.run_for(500);
    for node in cluster.ids() {
        let raft = cluster.replica(node).raft();
        assert!(raft.counters().snapshots_taken >= 5, "node {node} compacted repeatedly");
        assert_eq!(cluster.value(node, "k4").as_deref(), Some("r19-19"));
    }
    // Between two snapshots the log grows by the threshold plus one batch of applied entries.
    assert!(largest <= 2 * THRESHOLD_BYTES, "log held {largest} bytes");
}

#[test]
fn no_snapshot_is_taken_before_the_applied_log_reaches_the_threshold() {
    let mut cluster = small_snapshots(3, 1);
    cluster.wait_for_leader();
    write_many(&mut cluster, 3, 3, "small");
    cluster.run_for(500);
    for node in cluster.ids() {
        let raft = cluster.replica(node).raft();
        assert!(raft.status().applied_log_bytes < THRESHOLD_BYTES, "node {node}");
        assert_eq!(raft.counters().snapshots_taken, 0, "node {node}");
    }
}

/// Snapshots taken by every node of a cluster with `growth_percent`, after 10 KiB of values and
/// 300 small overwrites; checks each node's threshold against its last snapshot's size.
fn snapshots_over_a_large_state(growth_percent: u32) -> u64 {
    let mut cluster = KvCluster::with_config(3, 1, |config| {
        config.snapshot_threshold_bytes = THRESHOLD_BYTES;
        config.snapshot_growth_percent = growth_percent;
    });
    cluster.wait_for_leader();
    for i in 0..20 {
        cluster.submit(0, put(&format!("large{i}"), &"x".repeat(500)));
    }
    assert!(cluster.run_until(10_000, |c| c.finished[0].len() == 20));
    write_many(&mut cluster, 300, 5, "small");
    cluster.run_for(500);
    let mut taken = 0;
    for node in cluster.ids() {
        let replica = cluster.replica(node);
        let snapshot_bytes = replica.raft().snapshot_bytes() as usize;
        assert!(snapshot_bytes > 10_000, "node {node}: {snapshot_bytes} bytes");
        let grown = snapshot_bytes * growth_percent as usize / 100;
        assert_eq!(replica.snapshot_threshold(), grown.max(THRESHOLD_BYTES), "node {node}");
        assert!(replica.raft().status().applied_log_bytes < replica.snapshot_threshold());
        taken += replica.raft().counters().snapshots_taken;
    }
    taken
}

#[test]
fn a_state_larger_than_the_threshold_is_snapshotted_once_the_log_outweighs_it() {
    let at_the_threshold = snapshots_over_a_large_state(0);
    let grown = snapshots_over_a_large_state(100);
    assert!(grown >= 3, "every node snapshots: {grown}");
    assert!(grown * 2 <= at_the_threshold, "{grown} with growth, {at_the_threshold} without");
}

/// A cluster whose snapshot weighs about 500 bytes (16 chunks), with one follower that missed
/// everything since the start, just restarted. Returns the leader and the lagging follower.
fn lagging_follower(nodes: u64) -> (KvCluster, NodeId, NodeId) {
    let mut cluster = small_snapshots(nodes, 1);
    let leader = cluster.wait_for_leader();
    let lagging = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    cluster.crash(lagging);
    cluster.submit(0, put("padding", &"p".repeat(400)));
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    write_many(&mut cluster, 200, 10, "v");
    cluster.restart(lagging);
    (cluster, leader, lagging)
}

/// Runs until an InstallSnapshot chunk at `offset` or beyond is in flight.
fn run_until_chunk_at(cluster: &mut KvCluster, offset: u64) {
    let in_flight = |c: &KvCluster| {
        c.network.iter().any(|packet| match packet {
            Packet::Peer(message) => {
                matches!(message.body, Body::InstallSnapshot { offset: at, .. } if at >= offset)
            }
            _ => false,
        })
    };
    assert!(cluster.step_until(2_000, in_flight), "the transfer reached offset {offset}");
}

#[test]
fn a_lagging_follower_catches_up_through_a_chunked_snapshot() {
    let (mut cluster, leader, lagging) = lagging_follower(3);
    cluster.start_transcript();
    assert!(cluster.run_until(5_000, |c| c.value(lagging, "k9").as_deref() == Some("v199")));
    let transcript = cluster.take_transcript();
    let chunks = transcript.lines().filter(|l| l.contains("InstallSnapshot t=")).count();
    assert!(chunks >= 16, "the snapshot went in chunks of 32 bytes:\n{transcript}");
    let raft = cluster.replica(lagging).raft();
    assert_eq!(raft.counters().snapshots_installed, 1);
    assert_eq!(cluster.replica(lagging).state(), cluster.replica(leader).state());
    assert_eq!(cluster.replica(lagging).sessions(), cluster.replica(leader).sessions());
}

#[test]
fn a_follower_hands_out_the_state_and_log_a_snapshot_replaced_for_its_driver_to_free() {
    let (mut cluster, _, lagging) = lagging_follower(3);
    cluster.start_transcript();
    assert!(cluster.run_until(5_000, |c| c.value(lagging, "k9").as_deref() == Some("v199")));
    let transcript = cluster.take_transcript();
    let retired = format!("{lagging}: retired Retired(");
    let states = transcript.lines().filter(|line| line.starts_with(&retired));
    assert_eq!(states.filter(|line| line.ends_with(" 1 states)")).count(), 1, "{transcript}");
    assert!(cluster.replica_mut(lagging).take_retired().is_none(), "taken by the driver");
}

/// The follower writes the chunks it receives to its disk: restarted, it says how far it got
/// and the leader sends only the rest (and the window it sent before it heard).
#[test]
fn a_snapshot_transfer_resumes_after_the_follower_restarts_midway() {
    let (mut cluster, leader, lagging) = lagging_follower(3);
    // Let a few chunks through, then crash the follower in the middle of the transfer.
    run_until_chunk_at(&mut cluster, 256);
    let sending = cluster.replica(leader).raft().snapshot().map(|snapshot| snapshot.last);
    let total = cluster.replica(leader).raft().snapshot_bytes();
    assert_eq!(cluster.replica(leader).raft().snapshots_sending(), 1);
    assert_eq!(cluster.replica(lagging).raft().snapshot_receiving(), sending, "in part");
    cluster.crash(lagging);
    let durable = cluster.disk(lagging).received_snapshot.expect("chunks on its disk").received;
    assert!(durable >= 128, "{durable} bytes durable");
    cluster.run_for(300);
    cluster.restart(lagging);
    let receiving = cluster.replica(lagging).raft().snapshot_receiving();
    assert_eq!(receiving, sending, "resumed from its disk");
    cluster.start_transcript();
    assert!(cluster.run_until(5_000, |c| c.value(lagging, "k9").as_deref() == Some("v199")));
    let transcript = cluster.take_transcript();
    let sent_after_restart = transcript
        .lines()
        .filter(|line| line.contains("InstallSnapshot t=") && !line.contains("(dropped)"))
        .count() as u64;
    let (chunk_bytes, window) = (32, 2);
    let fresh = total.div_ceil(chunk_bytes);
    let rest = (total - durable).div_ceil(chunk_bytes);
    assert!(
        sent_after_restart < fresh && sent_after_restart <= rest + 2 * window,
        "{sent_after_restart} chunks after the restart, {rest} missing of {fresh}:\n{transcript}"
    );
    assert_eq!(cluster.replica(lagging).state(), cluster.replica(leader).state());
    assert_eq!(cluster.replica(leader).raft().snapshots_sending(), 0);
    assert_eq!(cluster.replica(lagging).raft().snapshot_receiving(), None, "installed");
    assert_eq!(cluster.disk(lagging).recover().partial_snapshot, None, "of no use once installed");
}

#[test]
fn a_snapshot_transfer_survives_a_change_of_leader() {
    let (mut cluster, leader, lagging) = lagging_follower(5);
    run_until_chunk_at(&mut cluster, 128);
    cluster.crash(leader);
    assert!(cluster.run_until(10_000, |c| c.value(lagging, "k9").as_deref() == Some("v199")));
    cluster.restart(leader);
    cluster.run_for(1_000);
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "k0").as_deref(), Some("v190"), "node {node}");
    }
}

#[test]
fn every_replica_recovers_from_its_snapshot_after_a_crash_of_all() {
    let mut cluster = small_snapshots(3, 1);
    cluster.wait_for_leader();
    write_many(&mut cluster, 150, 10, "a");
    for node in cluster.ids() {
        assert!(cluster.disk(node).snapshot.is_some(), "node {node} has one");
        cluster.crash(node);
    }
    for node in cluster.ids() {
        cluster.restart(node);
        let replica = cluster.replica(node);
        let snapshot_last = replica.raft().status().snapshot_last.index;
        assert_eq!(replica.applied(), snapshot_last, "node {node} starts from its snapshot");
        assert!(!replica.state().is_empty());
    }
    cluster.wait_for_leader();
    write_many(&mut cluster, 10, 10, "b");
    cluster.run_for(500);
    for node in cluster.ids() {
        assert_eq!(cluster.value(node, "k3").as_deref(), Some("b3"), "node {node}");
    }
}

#[test]
fn a_retry_after_a_snapshot_is_still_applied_once() {
    let mut cluster = small_snapshots(3, 1);
    let leader = cluster.wait_for_leader();
    cluster.submit(0, KvCommand::Append { key: "log".into(), value: "x".into() });
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == 1));
    // The append is now only in the snapshots' session tables.
    write_many(&mut cluster, 150, 10, "a");
    assert!(cluster.replica(leader).raft().status().snapshot_last.index.0 > 3);
    let client = cluster.clerks[0].client_id().expect("registered");
    let first_request = cluster.finished[0][0].0;
    let retry = raftkv_core::protocol::ClientRequest {
        client,
        request: first_request,
        op: raftkv_core::protocol::Op::Command(KvCommand::Append {
            key: "log".into(),
            value: "x".into(),
        }),
    };
    let follower = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    cluster.crash(leader);
    let new_leader = {
        cluster.run_until(5_000, |c| c.leader().is_some());
        cluster.leader().expect("a new leader")
    };
    assert!(new_leader == follower || new_leader != leader);
    cluster.request_by_hand(new_leader, retry);
    cluster.stabilize();
    assert_eq!(cluster.value(new_leader, "log").as_deref(), Some("x"), "applied once");
}

#[test]
fn a_small_key_set_keeps_the_snapshot_small() {
    let mut cluster = small_snapshots(3, 1);
    cluster.wait_for_leader();
    for round in 0..200 {
        cluster.submit(0, put(&format!("k{}", round % 3), &format!("{round}")));
        cluster.submit(0, KvCommand::Get { key: format!("k{}", round % 3).into() });
    }
    assert!(cluster.run_until(60_000, |c| c.finished[0].len() == 400));
    for node in cluster.ids() {
        let raft = cluster.replica(node).raft();
        assert!(raft.snapshot().is_some(), "node {node}: snapshots were taken");
        // The data is on the node's disk; the node knows its size.
        let bytes = raft.snapshot_bytes();
        assert!(0 < bytes && bytes < 1_024, "node {node}: {bytes} bytes");
    }
}

/// A cluster that keeps 256 bytes of applied entries in memory and takes no snapshot of its
/// own, with one follower that missed 200 writes, just restarted.
fn lagging_follower_behind_the_log_cache() -> (KvCluster, NodeId, NodeId) {
    let mut cluster = KvCluster::with_config(3, 1, |config| {
        config.snapshot_threshold_bytes = 1 << 20;
        config.raft.log_cache_bytes = Some(256);
        config.raft.max_entries_per_append = 16;
    });
    let leader = cluster.wait_for_leader();
    let lagging = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    cluster.crash(lagging);
    write_many(&mut cluster, 200, 10, "v");
    cluster.restart(lagging);
    (cluster, leader, lagging)
}

#[test]
fn a_lagging_follower_catches_up_from_entries_read_back_from_the_leaders_disk() {
    let (mut cluster, leader, lagging) = lagging_follower_behind_the_log_cache();
    let status = cluster.replica(leader).raft().status();
    assert!(status.log_evicted_entries >= 190, "{} evicted", status.log_evicted_entries);
    assert!(status.log_bytes <= 256 + 200, "{} bytes held", status.log_bytes);
    assert!(cluster.run_until(5_000, |c| c.value(lagging, "k9").as_deref() == Some("v199")));
    let raft = cluster.replica(leader).raft();
    assert!(raft.counters().appends_from_disk >= 12, "{}", raft.counters().appends_from_disk);
    assert_eq!(raft.counters().log_reads_failed, 0);
    assert_eq!(cluster.replica(lagging).raft().counters().snapshots_installed, 0);
    assert_eq!(cluster.replica(lagging).state(), cluster.replica(leader).state());
}

#[test]
fn entries_the_disk_cannot_give_back_go_in_a_snapshot_taken_past_them() {
    let (mut cluster, leader, lagging) = lagging_follower_behind_the_log_cache();
    // The leader's disk lost its oldest entries: reading them back fails.
    cluster.disk_mut(leader).entries.drain(..50);
    assert!(cluster.run_until(5_000, |c| c.value(lagging, "k9").as_deref() == Some("v199")));
    let raft = cluster.replica(leader).raft();
    assert!(raft.counters().log_reads_failed >= 1);
    assert!(!raft.needs_snapshot(), "the snapshot taken covers them");
    assert_eq!(raft.counters().snapshots_taken, 1);
    assert_eq!(cluster.replica(lagging).raft().counters().snapshots_installed, 1);
    assert_eq!(cluster.replica(lagging).state(), cluster.replica(leader).state());
}
