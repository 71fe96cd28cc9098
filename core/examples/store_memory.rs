//! What the key-value store's map costs: resident memory per key and the time of puts, gets
//! and a snapshot's encoding, for the benchmark's keys (`bench-00001234`) and values, in one
//! thread and without Raft. Then a snapshot's view is held while more puts are applied, as
//! when a node saves one, to show what the copies written meanwhile cost.
//!
//! ```sh
//! cargo run --release -p raftkv-core --example store_memory [PUTS KEYS VALUE_BYTES]
//! ```
//!
//! The defaults are those of `scripts/stall-bench.sh`'s store cases: 2,000,000 puts of 100
//! bytes to random keys among 2,000,000 (about 1.26M keys at the end). Resident memory is read
//! from `/proc/self/status` (Linux); elsewhere it prints as 0.

use std::process::ExitCode;
use std::time::Instant;

use raftkv_core::StateMachine;
use raftkv_core::kv::{KvCommand, KvStore};
use raftkv_core::prng::Prng;

/// Puts applied while a snapshot's view is alive: about what a node applies during a save.
const PUTS_DURING_SAVE: u64 = 60_000;

fn main() -> ExitCode {
    let arguments: Vec<u64> = match std::env::args().skip(1).map(|a| a.parse()).collect() {
        Ok(arguments) => arguments,
        Err(error) => {
            eprintln!("usage: store_memory [PUTS KEYS VALUE_BYTES] (numbers): {error}");
            return ExitCode::from(2);
        }
    };
    let [puts, keys, value_bytes] = match arguments[..] {
        [] => [2_000_000, 2_000_000, 100],
        [puts, keys, value_bytes] if keys > 0 => [puts, keys, value_bytes],
        _ => {
            eprintln!("usage: store_memory [PUTS KEYS VALUE_BYTES], KEYS at least 1");
            return ExitCode::from(2);
        }
    };
    let value = vec![b'v'; usize::try_from(value_bytes).expect("a value fits in memory")];
    let mut rng = Prng::seeded(0x5eed);
    let mut store = KvStore::default();
    let before = resident_bytes();
    let started = Instant::now();
    for _ in 0..puts {
        let key = key(rng.range_inclusive(0, keys - 1));
        store.apply(&KvCommand::Put { key, value: value.clone() });
    }
    let put_seconds = started.elapsed().as_secs_f64();
    let held = resident_bytes().saturating_sub(before);
    let encoded = KvStore::encoded_len(&store.view());
    let pairs = store.len() as f64;
    println!("keys {} after {puts} puts of {value_bytes}-byte values", store.len());
    println!(
        "resident {:.1} MiB: {:.1} bytes per key, for {:.1} bytes of encoding per key ({:.2}x)",
        held as f64 / f64::from(1 << 20),
        held as f64 / pairs,
        encoded as f64 / pairs,
        held as f64 / encoded as f64
    );
    println!("puts {:.0} per second", puts as f64 / put_seconds);

    let started = Instant::now();
    let mut found = 0u64;
    for _ in 0..puts {
        found += u64::from(store.get(&key(rng.range_inclusive(0, keys - 1))).is_some());
    }
    println!(
        "gets {:.0} per second ({found} found)",
        puts as f64 / started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let snapshot = store.snapshot();
    println!(
        "snapshot of {} bytes encoded in {:.0} ms",
        snapshot.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(snapshot);

    let view = store.view();
    let before_save = resident_bytes();
    for _ in 0..PUTS_DURING_SAVE {
        let key = key(rng.range_inclusive(0, keys - 1));
        store.apply(&KvCommand::Put { key, value: value.clone() });
    }
    let copies = resident_bytes().saturating_sub(before_save);
    let mut sink = std::io::sink();
    KvStore::encode_into(&view, &mut sink).expect("a sink takes anything");
    println!(
        "{PUTS_DURING_SAVE} puts while a view was alive: resident +{:.1} MiB",
        copies as f64 / f64::from(1 << 20)
    );
    ExitCode::SUCCESS
}

/// The key of number `index`, as `raftkv bench` names them.
fn key(index: u64) -> Vec<u8> {
    format!("bench-{index:08}").into_bytes()
}

/// This process's resident memory, in bytes (0 where `/proc` does not tell).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0).saturating_mul(1024)
}
