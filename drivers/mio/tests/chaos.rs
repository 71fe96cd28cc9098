//! Writers append unique tokens while leaders are killed with SIGKILL and restarted; in the
//! end every acknowledged append is there exactly once, in each writer's order.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{PATIENCE, TestCluster};

const WRITERS: usize = 4;
const KEYS: usize = 2;

/// What one writer learned: the appends acknowledged, and the ones whose fate is unknown.
#[derive(Default)]
struct Outcomes {
    acknowledged: Vec<u64>,
    unknown: Vec<u64>,
}

#[test]
fn acknowledged_appends_survive_repeated_leader_crashes_exactly_once() {
    let mut cluster = TestCluster::start(3);
    let addresses = cluster.addresses();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let outcomes: Vec<Arc<Mutex<Outcomes>>> =
        (0..WRITERS).map(|_| Arc::new(Mutex::new(Outcomes::default()))).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (addresses, stop, acks) = (addresses.clone(), stop.clone(), acks.clone());
            let outcomes = outcomes[writer].clone();
            thread::spawn(move || {
                let options = raftkv::ClientOptions {
                    timeout: Duration::from_secs(3),
                    ..raftkv::ClientOptions::default()
                };
                let mut client = raftkv::Client::connect_with(&addresses, options).unwrap();
                let key = format!("log-{}", writer % KEYS);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let token = format!("w{writer}-{n};");
                    match client.append(&key, token) {
                        Ok(()) => {
                            outcomes.lock().unwrap().acknowledged.push(n);
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => outcomes.lock().unwrap().unknown.push(n),
                    }
                    n += 1;
                }
            })
        })
        .collect();

    let wait_for_progress = |acks: &AtomicU64, more: u64, cluster: &TestCluster| {
        let target = acks.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + PATIENCE;
        while acks.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "writers made no progress\n{}", cluster.logs());
            thread::sleep(Duration::from_millis(10));
        }
    };
    for _ in 0..4 {
        wait_for_progress(&acks, 60, &cluster);
        let leader = cluster.wait_for_leader(None) as usize;
        cluster.kill(leader);
        wait_for_progress(&acks, 60, &cluster);
        cluster.spawn(leader);
    }
    wait_for_progress(&acks, 60, &cluster);
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }

    let mut client = cluster.client();
    let mut seen: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for key in 0..KEYS {
        let value = client.get(format!("log-{key}")).unwrap().unwrap_or_default();
        for token in String::from_utf8(value).unwrap().split_terminator(';') {
            let (writer, n) = token.trim_start_matches('w').split_once('-').unwrap();
            seen.entry(writer.parse().unwrap()).or_default().push(n.parse().unwrap());
        }
    }
    for (writer, outcomes) in outcomes.iter().enumerate() {
        let outcomes = outcomes.lock().unwrap();
        let applied = seen.remove(&writer).unwrap_or_default();
        assert!(applied.windows(2).all(|w| w[0] < w[1]), "writer {writer}: {applied:?}");
        for n in &outcomes.acknowledged {
            assert!(applied.contains(n), "writer {writer}: acknowledged append {n} is lost");
        }
        for n in &applied {
            assert!(
                outcomes.acknowledged.contains(n) || outcomes.unknown.contains(n),
                "writer {writer}: append {n} was never attempted"
            );
        }
    }
}
