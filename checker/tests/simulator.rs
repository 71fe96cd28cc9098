//! Histories from the simulator that the checker once left undecided (`histories/simulator`)
//! get the verdicts of `expected.tsv` within its bounds of search steps, with true witnesses.

mod support {
    pub(crate) mod kv_rules;
    // Its register model serves the other test crates.
    #[allow(dead_code)]
    pub(crate) mod spec;
    pub(crate) mod witness;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raftkv_checker::parse::{self, Format, ParsedHistory};
use raftkv_checker::{KvModel, check};
use support::spec;
use support::witness::assert_witnesses_hold;

fn histories() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories/simulator")
}

#[test]
fn once_undecided_histories_are_decided_within_their_bounds_of_steps() {
    let table = std::fs::read_to_string(histories().join("expected.tsv")).expect("readable");
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("path\texpected\tsteps_max"));
    let mut checked = 0;
    for line in lines {
        let [path, expected, steps_max] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("three fields: {line}");
        };
        let steps_max: u64 = steps_max.parse().expect("a number");
        let (_, history) = parse::read(&histories().join(path), Format::Jsonl).expect("readable");
        let ParsedHistory::Kv(history) = history else { panic!("{path} is a key-value history") };
        // The bound on steps is what the test asserts (the same on every run); the time limit
        // only keeps a regression from running for hours.
        let report = check(&history, &KvModel, Some(Duration::from_secs(120)));
        assert_eq!(report.verdict.as_str(), expected, "{path}: {report}");
        let steps: u64 = report.partitions.iter().map(|partition| partition.steps).sum();
        assert!(steps <= steps_max, "{path}: {steps} steps, more than {steps_max}");
        assert_witnesses_hold(&history, &report, BTreeMap::new(), spec::kv, path);
        checked += 1;
    }
    assert!(checked > 0, "expected.tsv lists histories");
}
