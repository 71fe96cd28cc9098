//! Snapshots saved apart from the replica: the replica hands out a view
//! (`Output::SaveSnapshot`), one at a time, at an applied entry durable on its own disk, and
//! its log keeps every entry until the driver says the snapshot is saved.

mod cluster;
mod kv_cluster;

use kv_cluster::KvCluster;
use raftkv_core::NodeId;
use raftkv_core::kv::{KvCommand, KvReply};

const THRESHOLD_BYTES: usize = 2_048;

fn cluster_saving_by_hand() -> KvCluster {
    let mut cluster = KvCluster::with_config(3, 1, |config| {
        config.snapshot_threshold_bytes = THRESHOLD_BYTES;
    });
    cluster.auto_save_snapshots = false;
    cluster
}

fn put(i: usize) -> KvCommand {
    KvCommand::Put { key: format!("k{}", i % 7).into(), value: format!("value-{i}").into() }
}

/// Runs puts of client 0 until every node asked for a snapshot, then `extra` more.
fn write_until_every_node_asks(cluster: &mut KvCluster, extra: usize) {
    let mut written = 0;
    let asked =
        |c: &KvCluster| c.ids().iter().all(|&n| c.replica(n).snapshot_in_flight().is_some());
    while !asked(cluster) {
        written += 1;
        assert!(written < 1_000, "no snapshot was asked for");
        cluster.submit(0, put(written));
        assert!(cluster.run_until(2_000, |c| c.finished[0].len() == written));
    }
    for _ in 0..extra {
        written += 1;
        cluster.submit(0, put(written));
        assert!(cluster.run_until(2_000, |c| c.finished[0].len() == written));
    }
    assert!(cluster.finished[0].iter().all(|(_, result)| *result == Ok(KvReply::Done)));
}

#[test]
fn the_log_keeps_its_entries_until_the_snapshot_is_saved_and_one_is_asked_at_a_time() {
    let mut cluster = cluster_saving_by_hand();
    cluster.wait_for_leader();
    write_until_every_node_asks(&mut cluster, 60);
    for node in cluster.ids() {
        let replica = cluster.replica(node);
        let asked = replica.snapshot_in_flight().expect("asked");
        let status = replica.raft().status();
        assert_eq!(cluster.slot(node).unsaved_snapshots.len(), 1, "node {node}: one at a time");
        assert_eq!(status.snapshot_last.index.0, 0, "node {node} compacted before it was saved");
        assert!(status.applied_log_bytes > THRESHOLD_BYTES, "node {node}: entries kept");
        assert!(cluster.disk(node).snapshot.is_none());
        cluster.start_transcript();
        cluster.save_snapshots(node);
        let retired = format!("{node}: retired Retired({} entries, 0 states)", asked.index.0);
        let transcript = cluster.take_transcript();
        assert!(transcript.contains(&retired), "the log's entries handed out:\n{transcript}");
        let replica = cluster.replica(node);
        assert_eq!(replica.raft().status().snapshot_last, asked, "node {node} compacted to it");
        assert_eq!(replica.raft().counters().snapshots_taken, 1);
        let saved = cluster.disk(node).snapshot.as_ref().expect("on disk");
        assert_eq!(saved.last, asked);
        assert!(cluster.disk(node).entries.iter().all(|entry| entry.index > asked.index));
    }
    // What was applied while the first was being saved weighs the threshold: the next is
    // asked for at once, and the state it holds restores to the replica's.
    cluster.run_for(200);
    for node in cluster.ids() {
        let replica = cluster.replica(node);
        assert!(replica.snapshot_in_flight().is_some(), "node {node} asked again");
    }
}

#[test]
fn a_snapshot_never_saved_before_a_crash_is_asked_for_again_after_the_restart() {
    let mut cluster = cluster_saving_by_hand();
    let leader = cluster.wait_for_leader();
    write_until_every_node_asks(&mut cluster, 0);
    let follower: NodeId = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    cluster.crash(follower);
    cluster.restart(follower);
    assert!(cluster.slot(follower).unsaved_snapshots.is_empty(), "the crash lost it");
    // The restarted node applies its log again once it learns the commit index.
    cluster.submit(0, put(5_000));
    let done = cluster.finished[0].len() + 1;
    assert!(cluster.run_until(2_000, |c| c.finished[0].len() == done));
    cluster.run_for(200);
    assert!(cluster.replica(follower).snapshot_in_flight().is_some(), "asked again");
    cluster.save_snapshots(follower);
    assert!(cluster.disk(follower).snapshot.is_some());
}

#[test]
fn no_snapshot_is_asked_for_at_an_entry_not_yet_durable_on_the_nodes_own_disk() {
    let mut cluster = cluster_saving_by_hand();
    let leader = cluster.wait_for_leader();
    cluster.auto_persist = false;
    // The followers' disks keep up, the leader's does not: entries commit on the followers'
    // acknowledgements and the leader applies them, beyond what its own disk holds.
    let followers: Vec<NodeId> = cluster.ids().into_iter().filter(|&n| n != leader).collect();
    for i in 0..200 {
        cluster.submit(0, put(i));
        for _ in 0..4 {
            cluster.stabilize();
            for &follower in &followers {
                cluster.persist(follower);
            }
        }
    }
    let replica = cluster.replica(leader);
    assert!(replica.raft().status().applied_log_bytes > THRESHOLD_BYTES, "the leader applied");
    assert!(replica.snapshot_deferred());
    assert_eq!(replica.snapshot_in_flight(), None, "a snapshot ahead of the leader's disk");
    cluster.persist(leader);
    let asked = cluster.replica(leader).snapshot_in_flight().expect("asked once durable");
    assert!(asked.index <= cluster.disk(leader).last_index());
}

#[test]
fn a_replica_keeps_no_snapshot_data_in_memory_and_sends_chunks_read_from_its_disk() {
    let mut cluster = KvCluster::with_config(3, 1, |config| {
        config.snapshot_threshold_bytes = THRESHOLD_BYTES;
        config.raft.snapshot_chunk_bytes = 64;
    });
    let leader = cluster.wait_for_leader();
    let lagging: NodeId = cluster.ids().into_iter().find(|&n| n != leader).expect("a follower");
    cluster.crash(lagging);
    for i in 0..300 {
        cluster.submit(0, put(i));
        assert!(cluster.run_until(2_000, |c| c.finished[0].len() == i + 1));
    }
    let raft = cluster.replica(leader).raft();
    let held = raft.snapshot().expect("a snapshot");
    assert!(held.data.is_empty(), "the data is on the disk only");
    assert_eq!(
        raft.snapshot_bytes(),
        cluster.disk(leader).snapshot.as_ref().unwrap().data.len() as u64
    );
    cluster.restart(lagging);
    assert!(cluster.run_until(5_000, |c| {
        c.replica(lagging).raft().counters().snapshots_installed == 1
            && c.replica(lagging).applied() == c.replica(leader).applied()
    }));
    assert_eq!(cluster.replica(lagging).state(), cluster.replica(leader).state());
    // Restored from it, the follower keeps no copy of the data either.
    let installed = cluster.replica(lagging).raft();
    assert!(installed.snapshot().expect("installed").data.is_empty());
    assert!(installed.snapshot_bytes() > 0);
}

#[test]
fn a_snapshot_asked_for_is_taken_below_the_threshold_and_only_if_something_is_new() {
    let mut cluster = KvCluster::with_config(3, 1, |config| {
        config.snapshot_threshold_bytes = usize::MAX;
    });
    cluster.auto_save_snapshots = false;
    let leader = cluster.wait_for_leader();
    for i in 1..=5 {
        cluster.submit(0, put(i));
        assert!(cluster.run_until(2_000, |c| c.finished[0].len() == i));
    }
    assert_eq!(cluster.replica(leader).snapshot_in_flight(), None, "below the threshold");
    cluster.replica_mut(leader).snapshot_now();
    cluster.run_for(10);
    let asked = cluster.replica(leader).snapshot_in_flight().expect("taken when asked");
    assert_eq!(asked.index, cluster.replica(leader).applied());
    cluster.save_snapshots(leader);
    assert_eq!(cluster.replica(leader).raft().status().snapshot_last, asked);
    // Nothing applied since: asking again takes nothing.
    cluster.replica_mut(leader).snapshot_now();
    cluster.run_for(10);
    assert_eq!(cluster.replica(leader).snapshot_in_flight(), None);
    assert!(cluster.slot(leader).unsaved_snapshots.is_empty());
}
