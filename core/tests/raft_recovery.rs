//! Nodes whose disks lost what they had acknowledged: the leader notices a follower whose log
//! went backwards and repairs it, and the node stays out of elections until it has caught up
//! (Protocol-Aware Recovery).

mod cluster;

use cluster::{Cluster, id};
use raftkv_core::raft::{Input, Role};

fn put_all(cluster: &mut Cluster, leader: raftkv_core::NodeId, count: usize) -> Vec<String> {
    let commands: Vec<String> = (0..count).map(|i| format!("v{i}")).collect();
    for command in &commands {
        cluster.propose(leader, command.as_bytes());
    }
    cluster.stabilize();
    commands
}

/// Review finding: a follower whose data directory was removed came back with an empty log,
/// and the leader took each of its rejections, all at or below the old match index, for a late
/// answer to an older message: it stayed at commit 0 forever.
#[test]
fn a_follower_that_lost_its_log_catches_up() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    let commands = put_all(&mut cluster, id(1), 20);
    cluster.lose_disk(id(3));
    cluster.run_for(1_000);
    assert_eq!(cluster.commit(id(3)), cluster.commit(id(1)));
    assert_eq!(cluster.applied_commands(id(3)), commands);
    assert_eq!(cluster.node(id(1)).counters().follower_logs_lost, 1);
    assert!(!cluster.node(id(3)).status().damaged, "caught up, it may vote again");
}

#[test]
fn a_follower_that_lost_its_log_gets_the_snapshot_when_the_leader_compacted() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    put_all(&mut cluster, id(1), 20);
    let last = cluster.node_mut(id(1)).compact(b"state after 20".to_vec()).expect("applied");
    cluster.lose_disk(id(3));
    cluster.run_for(1_000);
    assert_eq!(cluster.node(id(3)).counters().snapshots_installed, 1);
    assert_eq!(cluster.node(id(3)).status().snapshot_last, last);
    assert_eq!(cluster.commit(id(3)), cluster.commit(id(1)));
    assert!(!cluster.node(id(3)).status().damaged);
}

/// Found by the simulator (seed 1985 once disks could rot): a damaged follower took the first
/// entry of its leader's term that it received, capped at the commit index, for the leader's
/// commit index, and declared itself caught up at 2 while the leader had committed 11. It then
/// voted for a candidate that lacked committed entries.
#[test]
fn a_damaged_node_is_caught_up_only_at_its_leaders_commit_index() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_entries_per_append = 2;
        config.max_inflight_appends = 1;
    });
    cluster.elect(id(1));
    put_all(&mut cluster, id(1), 10);
    let commit = cluster.commit(id(1));
    assert_eq!(commit.0, 11);
    cluster.lose_disk(id(3));
    let mut checked = 0;
    for _ in 0..20 {
        let now = cluster.next_timeout().expect("a leader's heartbeat");
        cluster.advance((now - cluster.now).as_millis() + 1);
        cluster.handle(id(1), Input::Timeout);
        while cluster.deliver_one() {
            let status = cluster.node(id(3)).status();
            assert!(
                status.damaged || status.durable >= commit,
                "sound again with its log durable up to {} only, the commit is {commit}",
                status.durable
            );
            checked += 1;
        }
    }
    assert!(checked > 10 && !cluster.node(id(3)).status().damaged, "caught up in the end");
}

/// "x" is committed on nodes 1 and 3 only; node 3 then loses its disk and node 1 goes down.
/// If node 3 voted, node 2, which never had "x", could win and the committed "x" would be
/// lost (the harness fails on two entries applied at one index). A damaged node waits.
#[test]
fn a_node_that_lost_acknowledged_writes_does_not_vote_until_it_caught_up() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    cluster.partition(&[id(1)], &[id(2)]);
    cluster.propose(id(1), b"x");
    cluster.run_for(100); // The commit index reaches node 3 with a heartbeat.
    assert_eq!(cluster.applied_commands(id(3)), ["x"], "committed by nodes 1 and 3");
    cluster.lose_disk(id(3));
    cluster.crash(id(1));
    cluster.heal();
    cluster.run_for(5_000);
    assert_eq!(cluster.leader(), None, "node 2 lacks x and node 3 withholds its vote");
    assert!(cluster.node(id(3)).counters().withheld_while_damaged > 0);
    // A crash does not make it forget: the damage is in its hard state.
    cluster.crash(id(3));
    cluster.restart(id(3));
    assert!(cluster.node(id(3)).status().damaged);
    cluster.run_for(5_000);
    assert_eq!(cluster.leader(), None);

    cluster.restart(id(1));
    cluster.run_for(5_000);
    let leader = cluster.leader().expect("nodes 1 and 2 elect node 1, which holds x");
    assert_eq!(leader, id(1));
    for node in cluster.ids() {
        assert_eq!(cluster.applied_commands(node), ["x"], "node {node}");
    }
    assert!(!cluster.node(id(3)).status().damaged, "caught up");
    assert!(!cluster.slot(id(3)).disk.hard_state.damaged, "and says so durably");
    // Caught up, node 3 votes again: nodes 2 and 3 elect without node 1.
    cluster.crash(id(1));
    cluster.run_for(5_000);
    let leader = cluster.leader().expect("nodes 2 and 3 elect a leader");
    assert_eq!(cluster.node(leader).role(), Role::Leader);
    cluster.propose(leader, b"y");
    cluster.run_for(100);
    assert_eq!(cluster.applied_commands(id(3)), ["x", "y"]);
}

/// Found by the simulator (seed 14648): a damaged follower took the commit index of a late
/// append, sent by its leader before the follower's crash, for its target: it declared itself
/// caught up at 430 while 432 had been committed with the acknowledgements it lost, and later
/// voted for a leader without them. A target now comes only from a leader that heard from the
/// follower in this life and then confirmed its leadership with a majority.
#[test]
fn a_late_append_from_before_the_crash_does_not_end_a_recovery() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    put_all(&mut cluster, id(1), 3);
    // A heartbeat to node 3 that will arrive late, with the commit index of now.
    let now = cluster.next_timeout().expect("a heartbeat");
    cluster.advance((now - cluster.now).as_millis() + 1);
    cluster.handle(id(1), Input::Timeout);
    let late: Vec<_> = cluster.network.iter().filter(|m| m.to == id(3)).cloned().collect();
    cluster.drop_where(|m| m.to == id(3));
    let stale_commit = cluster.commit(id(1));
    put_all(&mut cluster, id(1), 3);
    assert!(cluster.commit(id(1)) > stale_commit, "committed with node 3's acknowledgements");
    cluster.lose_disk(id(3));
    cluster.isolate(id(3));
    cluster.network.extend(late);
    cluster.deliver_where(|m| m.to == id(3));
    assert!(cluster.node(id(3)).status().damaged, "the late append names no target");
    cluster.heal();
    cluster.run_for(1_000);
    assert!(!cluster.node(id(3)).status().damaged);
    assert_eq!(cluster.commit(id(3)), cluster.commit(id(1)));
}

/// A damaged follower's acknowledgements count toward no commit: with the only sound follower
/// cut off, the leader commits nothing, though the damaged one holds every entry.
#[test]
fn a_damaged_followers_acknowledgements_do_not_commit() {
    let mut cluster = Cluster::new(3);
    cluster.elect(id(1));
    put_all(&mut cluster, id(1), 2);
    cluster.lose_disk(id(3));
    cluster.isolate(id(2));
    let index = cluster.propose(id(1), b"after").index;
    cluster.run_for(200);
    assert!(cluster.node(id(3)).status().last_log.index >= index, "replicated to node 3");
    assert!(cluster.commit(id(1)) < index, "but not committed with its acknowledgement");
    assert!(cluster.node(id(3)).status().damaged, "no majority of sound voters confirms");
    cluster.heal();
    cluster.run_for(500);
    assert!(cluster.commit(id(1)) >= index);
    assert!(!cluster.node(id(3)).status().damaged);
}

/// A damaged node that is damaged again before it caught up (it restarts with a new name for
/// its recovery) is caught up under the new name: a leader that kept the old one would send
/// targets the node no longer answers to, and it would stay out of elections for good.
#[test]
fn a_node_damaged_again_while_recovering_still_catches_up() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.max_entries_per_append = 2;
        config.max_inflight_appends = 1;
    });
    cluster.elect(id(1));
    put_all(&mut cluster, id(1), 20);
    cluster.lose_disk(id(3));
    // A few rounds: the leader learns the first name and starts catching the node up.
    for _ in 0..3 {
        let now = cluster.next_timeout().expect("a leader's heartbeat");
        cluster.advance((now - cluster.now).as_millis() + 1);
        cluster.handle(id(1), Input::Timeout);
        for _ in 0..4 {
            cluster.deliver_one();
        }
    }
    assert!(cluster.node(id(3)).status().damaged, "still recovering");
    cluster.lose_disk(id(3));
    cluster.run_for(3_000);
    assert!(!cluster.node(id(3)).status().damaged, "caught up under its new name");
    assert_eq!(cluster.commit(id(3)), cluster.commit(id(1)));
}
