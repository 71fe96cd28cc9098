//! Clients read and write while leaders are killed with SIGKILL and restarted, or frozen with
//! SIGSTOP until another leads and then woken, and finally while every node is killed at once. Every operation
//! is recorded with its call and return times, and the history must be linearizable (checked
//! by `raftkv-checker`); besides, every acknowledged append is there exactly once, in each
//! client's order.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{PATIENCE, TestCluster};
use raftkv_checker::{Command, KvModel, Operation, Verdict, check};
use raftkv_core::prng::Prng;

const CLIENTS: u64 = 4;
/// Keys that only ever get appends: the exactly-once check reads them back.
const LOG_KEYS: u64 = 2;
/// Keys that get puts, gets and compare-and-sets.
const REGISTER_KEYS: u64 = 2;

/// One client's operations: the history, and the appends it saw acknowledged or not.
#[derive(Default)]
struct Record {
    operations: Vec<Operation>,
    acknowledged: Vec<u64>,
    unknown: Vec<u64>,
}

fn nanos_since(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

/// Runs one client until `stop`, recording everything it does.
fn run_client(
    client: u64,
    addresses: &[String],
    origin: Instant,
    stop: &AtomicBool,
    acks: &AtomicU64,
    record: &Mutex<Record>,
) {
    let options = raftkv::ClientOptions {
        timeout: Duration::from_secs(3),
        ..raftkv::ClientOptions::default()
    };
    let mut kv = raftkv::Client::connect_with(addresses, options).unwrap();
    let mut rng = Prng::seeded(client);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let call = nanos_since(origin);
        let (key, command, ok) = if rng.chance(1, 2) {
            let key = format!("log-{}", client % LOG_KEYS);
            let token = format!("c{client}-{n};");
            let result = kv.append(&key, &token);
            let mut record = record.lock().unwrap();
            if result.is_ok() {
                record.acknowledged.push(n);
                acks.fetch_add(1, Ordering::Relaxed);
            } else {
                record.unknown.push(n);
            }
            (key, Command::Append { value: token }, result.is_ok())
        } else {
            let key = format!("reg-{}", rng.range_inclusive(0, REGISTER_KEYS - 1));
            let value = format!("c{client}-{n}");
            match rng.range_inclusive(0, 2) {
                0 => match kv.get(&key) {
                    Ok(got) => {
                        let output = String::from_utf8(got.unwrap_or_default()).unwrap();
                        (key, Command::Get { output: Some(output) }, true)
                    }
                    Err(_) => (key, Command::Get { output: None }, false),
                },
                1 => {
                    let ok = kv.put(&key, &value).is_ok();
                    (key, Command::Put { value }, ok)
                }
                _ => {
                    // Expect what this client last wrote there, or the key missing.
                    let expected = (rng.chance(1, 2)).then(|| format!("c{client}-{}", n - 1));
                    match kv.cas(&key, expected.as_deref().map(str::as_bytes), &value) {
                        Ok(outcome) => {
                            let swapped = Some(outcome.swapped);
                            (key, Command::Cas { expected, value, swapped }, true)
                        }
                        Err(_) => (key, Command::Cas { expected, value, swapped: None }, false),
                    }
                }
            }
        };
        let ret = ok.then(|| nanos_since(origin));
        record.lock().unwrap().operations.push(Operation {
            id: 0,
            client,
            call,
            ret,
            key,
            command,
        });
    }
}

#[test]
fn histories_stay_linearizable_and_appends_exactly_once_through_crashes_and_pauses() {
    let mut cluster = TestCluster::start(3);
    let addresses = cluster.addresses();
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let records: Vec<Arc<Mutex<Record>>> =
        (0..CLIENTS).map(|_| Arc::new(Mutex::new(Record::default()))).collect();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (addresses, stop, acks) = (addresses.clone(), stop.clone(), acks.clone());
            let record = records[client as usize].clone();
            thread::spawn(move || run_client(client, &addresses, origin, &stop, &acks, &record))
        })
        .collect();

    kill_pause_and_restart(&mut cluster, &acks);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }

    let history = merged_history(&records);
    let report = check(&history, &KvModel, Some(Duration::from_secs(60)));
    assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    check_appends_exactly_once(&cluster, &records);
}

/// Waits until the clients have had `more` operations acknowledged.
fn wait_for_progress(acks: &AtomicU64, more: u64, cluster: &TestCluster) {
    let target = acks.load(Ordering::Relaxed) + more;
    let deadline = Instant::now() + PATIENCE;
    while acks.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < deadline, "clients made no progress\n{}", cluster.logs());
        thread::sleep(Duration::from_millis(10));
    }
}

/// Kills leaders and restarts them, freezes leaders and wakes them, then kills and restarts
/// every node at once, letting the clients make progress in between.
fn kill_pause_and_restart(cluster: &mut TestCluster, acks: &AtomicU64) {
    for round in 0..6 {
        wait_for_progress(acks, 30, cluster);
        let leader = cluster.wait_for_leader(None) as usize;
        if round % 2 == 0 {
            cluster.kill(leader);
            wait_for_progress(acks, 30, cluster);
            cluster.spawn(leader);
        } else {
            // A frozen leader is deposed; when it wakes up it must not serve stale answers.
            cluster.pause(leader);
            wait_for_progress(acks, 30, cluster);
            cluster.resume(leader);
        }
    }
    // Every node at once, under load.
    wait_for_progress(acks, 30, cluster);
    for node in 1..=3 {
        cluster.kill(node);
    }
    for node in 1..=3 {
        cluster.spawn(node);
    }
    wait_for_progress(acks, 30, cluster);
}

/// Every client's operations, ordered by call and numbered in that order.
fn merged_history(records: &[Arc<Mutex<Record>>]) -> Vec<Operation> {
    let mut history: Vec<Operation> = Vec::new();
    for record in records {
        history.append(&mut record.lock().unwrap().operations);
    }
    history.sort_by_key(|operation| operation.call);
    for (id, operation) in history.iter_mut().enumerate() {
        operation.id = id as u64;
    }
    history
}

/// Reads the log keys back: every acknowledged append is there once, in its client's order,
/// and nothing that was never attempted is.
fn check_appends_exactly_once(cluster: &TestCluster, records: &[Arc<Mutex<Record>>]) {
    let mut kv = cluster.client();
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for key in 0..LOG_KEYS {
        let value = kv.get(format!("log-{key}")).unwrap().unwrap_or_default();
        for token in String::from_utf8(value).unwrap().split_terminator(';') {
            let (client, n) = token.trim_start_matches('c').split_once('-').unwrap();
            seen.entry(client.parse().unwrap()).or_default().push(n.parse().unwrap());
        }
    }
    for (client, record) in records.iter().enumerate() {
        let record = record.lock().unwrap();
        let applied = seen.remove(&(client as u64)).unwrap_or_default();
        assert!(applied.windows(2).all(|w| w[0] < w[1]), "client {client}: {applied:?}");
        for n in &record.acknowledged {
            assert!(applied.contains(n), "client {client}: acknowledged append {n} is lost");
        }
        for n in &applied {
            assert!(
                record.acknowledged.contains(n) || record.unknown.contains(n),
                "client {client}: append {n} was never attempted"
            );
        }
    }
}
