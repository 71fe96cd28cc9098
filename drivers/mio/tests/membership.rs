//! Membership changes of real `raftkv serve` processes through the command line: a node joins
//! with `--join`, is added as a learner, promoted, a founding node removed, the leader killed;
//! a node whose disk was wiped is replaced by a new id, with TLS. Every acknowledged write
//! survives, and bad requests are refused with exit status 2.

mod common;

use std::process::Output;

use common::TestCluster;
use raftkv::Client;

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the command line; asserts that it succeeded; returns its standard output.
fn succeeds(cluster: &TestCluster, args: &[&str]) -> String {
    let output = cluster.cli(args);
    assert!(output.status.success(), "{args:?}: {}\n{}", text(&output), cluster.logs());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the command line; asserts that it failed as a usage error, with `reason` on stderr.
fn refused(cluster: &TestCluster, args: &[&str], reason: &str) {
    let output = cluster.cli(args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(reason), "{args:?}: {reason:?} not in {stderr}");
}

/// The voters `member list --json` shows.
fn voters(cluster: &TestCluster) -> Vec<u64> {
    let listed: serde_json::Value =
        serde_json::from_str(&succeeds(cluster, &["member", "list", "--json"])).expect("JSON");
    assert_eq!(listed["changing"], false, "{listed}");
    listed["voters"].as_array().expect("voters").iter().map(|v| v.as_u64().unwrap()).collect()
}

/// Puts `keys` (named after their numbers) through `client`.
fn put_all(client: &mut Client, keys: std::ops::Range<usize>) {
    for i in keys {
        client.put(format!("key-{i}"), format!("value-{i}")).expect("an acknowledged put");
    }
}

fn assert_all_there(client: &mut Client, keys: std::ops::Range<usize>) {
    for i in keys {
        let value = client.get(format!("key-{i}")).expect("a read");
        assert_eq!(value, Some(format!("value-{i}").into_bytes()), "key {i}");
    }
}

#[test]
fn a_node_joins_is_promoted_and_a_founder_leaves_while_every_write_survives() {
    let mut cluster = TestCluster::start(3);
    let mut client = cluster.client();
    put_all(&mut client, 0..100);

    let four = cluster.add_node();
    cluster.spawn(four);
    let address = cluster.addresses()[four - 1].clone();
    // Joining, it learned the members but waits, out of elections, to be added.
    let joining =
        cluster.wait_for_node(four, "joining", |status| status.standing == "not a member");
    assert_eq!(joining.role, "Follower");
    refused(&cluster, &["member", "add", "5", &cluster.addresses()[1]], "is node 2's already");
    refused(&cluster, &["member", "add", "5", "no-port"], "not HOST:PORT");
    refused(&cluster, &["member", "add", "0", &address], "node ids are positive");
    refused(&cluster, &["member", "promote", "4"], "not a learner");
    for node in 1..=3 {
        let log = cluster.log(node);
        assert!(
            !log.contains("node 4 is not a member"),
            "node 4 dialed before it was added: {log}"
        );
    }

    // A learner that never answers is not promoted: the change stops short, with the reason.
    let silent = cluster.cli(&["member", "add", "9", "127.0.0.1:1", "--timeout-ms", "1000"]);
    assert_eq!(silent.status.code(), Some(1), "{}", text(&silent));
    assert!(String::from_utf8_lossy(&silent.stderr).contains("has not acknowledged"));
    let removed = succeeds(&cluster, &["member", "remove", "9"]);
    assert!(removed.contains("voters=1,2,3 retired=9"), "{removed}");

    let added = succeeds(&cluster, &["member", "add", "4", &address, "--learner"]);
    assert!(added.contains("voters=1,2,3 learners=4 retired=9"), "{added}");
    refused(&cluster, &["member", "add", "4", "127.0.0.1:1", "--learner"], "already a member");
    succeeds(&cluster, &["member", "add", "4", &address, "--learner"]); // a retry: done already
    cluster.wait_for_node(four, "a learner", |status| status.standing == "learner");
    let status = succeeds(&cluster, &["status"]);
    assert_eq!(status.matches(" Learner ").count(), 1, "{status}");
    put_all(&mut client, 100..120);

    let promoted = succeeds(&cluster, &["member", "promote", "4"]);
    assert!(promoted.contains("voters=1,2,3,4"), "{promoted}");
    let listed = succeeds(&cluster, &["member", "list"]);
    assert!(listed.contains(&address) && listed.contains("settled"), "{listed}");

    let removed = succeeds(&cluster, &["member", "remove", "1"]);
    assert!(removed.contains("voters=2,3,4 retired=1,9"), "{removed}");
    assert!(cluster.terminate(1).success(), "{}", cluster.log(1));
    put_all(&mut client, 120..140);

    let leader = cluster.wait_for_leader(None);
    assert_ne!(leader, 1);
    cluster.kill(leader as usize);
    cluster.wait_for_leader(Some(leader));
    put_all(&mut client, 140..150);
    assert_all_there(&mut client, 0..150);
    assert_eq!(voters(&cluster), [2, 3, 4]);
}

#[test]
fn a_node_whose_disk_was_wiped_is_replaced_by_a_new_id_with_tls() {
    let mut cluster = TestCluster::start_tls(3, &[]);
    let mut client = cluster.client();
    put_all(&mut client, 0..50);
    // Node 3's disk is lost for good.
    cluster.kill(3);
    std::fs::remove_dir_all(cluster.data_dir(3)).expect("wipe node 3's data");
    put_all(&mut client, 50..60);

    let four = cluster.add_node();
    cluster.spawn(four);
    let address = cluster.addresses()[four - 1].clone();
    // Without --learner: added as a learner, promoted once caught up.
    let added = succeeds(&cluster, &["member", "add", "4", &address]);
    assert!(added.contains("voters=1,2,3,4"), "{added}");
    let removed = succeeds(&cluster, &["member", "remove", "3"]);
    assert!(removed.contains("voters=1,2,4 retired=3"), "{removed}");
    // Its id is never used again, not even by a node that would join under it.
    let again = cluster.addresses()[2].clone();
    refused(&cluster, &["member", "add", "3", &again], "never used again");
    put_all(&mut client, 60..70);

    let leader = cluster.wait_for_leader(None) as usize;
    let other = [1, 2, 4].into_iter().find(|&node| node != leader).expect("a follower");
    succeeds(&cluster, &["transfer-leader", &other.to_string()]);
    assert_eq!(cluster.wait_for_leader(None) as usize, other);
    refused(&cluster, &["transfer-leader", "3"], "not a voter");
    succeeds(&cluster, &["member", "remove", "3"]); // a retry: done already
    refused(&cluster, &["member", "remove", "9"], "node 9 is not a member (members: 1,2,4)");
    assert_all_there(&mut client, 0..70);
    assert_eq!(voters(&cluster), [1, 2, 4]);

    // Restarted, node 4 finds its membership in its data directory, not at --join.
    assert!(cluster.terminate(four).success(), "{}", cluster.log(four));
    cluster.spawn(four);
    cluster.wait_for_log(four, "--join ignored");
    put_all(&mut client, 70..80);
    cluster.wait_for_status(4, "caught up", |status, leader| status.applied >= leader.commit);
}

#[test]
fn serve_needs_peers_or_join_and_a_listen_address_to_join() {
    let dir = std::env::temp_dir().join(format!("raftkv-membership-usage-{}", std::process::id()));
    let data = dir.join("data");
    let serve = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(["serve", "--id", "4", "--data", data.to_str().unwrap()])
            .args(args)
            .output()
            .expect("run raftkv serve")
    };
    let cases: [(&[&str], &str); 4] = [
        (&["--listen", "127.0.0.1:1"], "holds no membership"),
        (&["--join", "127.0.0.1:1"], "give --listen"),
        (&["--join", "nowhere", "--listen", "127.0.0.1:1"], "not HOST:PORT"),
        (&["--join", "127.0.0.1:1", "--peers", "4=127.0.0.1:1"], "cannot be used with"),
    ];
    for (args, reason) in cases {
        let output = serve(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{args:?}: {reason:?} not in {stderr}");
    }
    let output =
        serve(&["--join", "127.0.0.1:1", "--listen", "127.0.0.1:1", "--join-timeout-ms", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("must be positive"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node that joins gives up after `--join-timeout-ms` when no node answers at `--join`,
/// with exit status 1 and what went wrong (by default it would try for 30 s).
#[test]
fn a_joining_node_gives_up_after_its_join_timeout() {
    let dir = std::env::temp_dir().join(format!("raftkv-join-timeout-{}", std::process::id()));
    let port = common::free_port_block(2);
    let (nobody, listen) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", port + 1));
    let started = std::time::Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["serve", "--id", "4", "--data", dir.join("data").to_str().unwrap()])
        .args(["--join", &nobody, "--listen", &listen, "--join-timeout-ms", "500"])
        .output()
        .expect("run raftkv serve");
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&nobody), "the addresses it tried: {stderr}");
    assert!(elapsed < std::time::Duration::from_secs(10), "gave up after {elapsed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
