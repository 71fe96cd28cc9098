//! Every history of Porcupine's test set gets the verdict Porcupine's own tests assert
//! (`histories/porcupine/expected.tsv`), and every witness the checker gives holds.

mod support {
    pub(crate) mod kv_rules;
    pub(crate) mod spec;
    pub(crate) mod witness;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raftkv_checker::parse::{self, Format, ParsedHistory};
use raftkv_checker::{KvModel, PartitionOutcome, RegisterModel, Verdict, check};
use support::spec;
use support::witness::assert_witnesses_hold;

fn histories() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories/porcupine")
}

struct Expected {
    path: String,
    model: String,
    verdict: String,
    ops: usize,
}

fn expected() -> Vec<Expected> {
    let table = std::fs::read_to_string(histories().join("expected.tsv"))
        .expect("expected.tsv is readable");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("a header").split('\t').collect();
    assert_eq!(header[..4], ["path", "model", "expected", "ops"]);
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            Expected {
                path: fields[0].to_owned(),
                model: fields[1].to_owned(),
                verdict: fields[2].to_owned(),
                ops: fields[3].parse().expect("ops is a number"),
            }
        })
        .collect()
}

#[test]
fn every_history_gets_the_expected_verdict_and_true_witnesses() {
    let rows = expected();
    assert_eq!(rows.len(), 109, "103 etcd logs and 6 key-value logs");
    for row in rows {
        let (format, history) =
            parse::read(&histories().join(&row.path), Format::Auto).expect("readable");
        let expected_format = match row.model.as_str() {
            "kv" => Format::PorcupineKv,
            // The one empty log reads as an empty history of either kind.
            _ if row.ops == 0 => Format::Jsonl,
            _ => Format::JepsenEtcd,
        };
        assert_eq!(format, expected_format, "{}", row.path);
        assert_eq!(history.len(), row.ops, "{}", row.path);
        let report = match &history {
            ParsedHistory::Kv(history) => {
                let report = check(history, &KvModel, None);
                assert_witnesses_hold(history, &report, BTreeMap::new(), spec::kv, &row.path);
                report
            }
            ParsedHistory::Register(history) => {
                let report = check(history, &RegisterModel, None);
                assert_witnesses_hold(history, &report, None, spec::register, &row.path);
                report
            }
        };
        assert_eq!(report.verdict.as_str(), row.verdict, "{}: {report}", row.path);
    }
}

#[test]
fn the_explanation_of_a_failure_is_the_same_every_time() {
    let (_, history) =
        parse::read(&histories().join("kv/c50-bad.txt"), Format::PorcupineKv).expect("readable");
    let ParsedHistory::Kv(history) = history else { panic!("a key-value history") };
    let first = check(&history, &KvModel, None).to_string();
    for _ in 0..3 {
        assert_eq!(check(&history, &KvModel, None).to_string(), first);
    }
    assert!(first.starts_with("not-linearizable (2024 ops, 10 partitions)\nkey "), "{first}");
}

#[test]
fn a_time_limit_gives_unknown_never_a_guess() {
    let (_, history) = parse::read(&histories().join("jepsen/etcd_002.log"), Format::JepsenEtcd)
        .expect("readable");
    let ParsedHistory::Register(history) = history else { panic!("a register history") };
    // With no time at all, the search stops at its first look at the clock; this history
    // needs many more steps than that.
    let report = check(&history, &RegisterModel, Some(Duration::ZERO));
    assert_eq!(report.verdict, Verdict::Unknown);
    assert!(matches!(report.partitions[0].outcome, PartitionOutcome::TimedOut));
    assert_eq!(check(&history, &RegisterModel, None).verdict, Verdict::Linearizable);
}
