//! The `raftkv-sim` command line: what it prints first and last, its exit codes, its files.

use std::process::{Command, Output};

fn raftkv_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftkv-sim")).args(args).output().expect("the binary runs")
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone()).expect("text").lines().map(str::to_string).collect()
}

#[test]
fn run_prints_the_seed_first_and_ends_with_reproduce_and_a_json_line() {
    let output =
        raftkv_sim(&["run", "--seed", "3", "--ops", "100", "--faults", "net,crash", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let lines = lines(&output);
    assert!(
        lines[0].starts_with("seed=3 nodes=5 clients=5 ops=100 faults=net,crash"),
        "{}",
        lines[0]
    );
    let reproduce = &lines[lines.len() - 2];
    assert_eq!(
        reproduce,
        "reproduce: raftkv-sim run --seed 3 --nodes 5 --clients 5 --ops 100 --faults net,crash"
    );
    let json: serde_json::Value = serde_json::from_str(&lines[lines.len() - 1]).expect("JSON");
    for field in [
        "seed",
        "nodes",
        "clients",
        "ops_ok",
        "ops_indeterminate",
        "verdict",
        "violation",
        "trace_hash",
        "sim_ms",
        "wall_ms",
        "messages",
        "elections",
        "snapshot_bytes",
        "snapshots",
        "snapshots_installed",
        "persisted_bytes_max",
        "persisted_ratio_max",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["violation"], serde_json::Value::Null);
    assert_eq!(json["seed"], 3);
}

#[test]
fn run_without_json_ends_with_the_verdict_line() {
    let output = raftkv_sim(&["run", "--seed", "4", "--ops", "50", "--faults", "none"]);
    assert_eq!(output.status.code(), Some(0));
    let lines = lines(&output);
    assert!(lines[lines.len() - 2].starts_with("reproduce: raftkv-sim run --seed 4 "));
    assert!(lines[lines.len() - 1].starts_with("verdict: pass;"), "{}", lines[lines.len() - 1]);
}

#[test]
fn a_threshold_given_on_the_command_line_is_part_of_the_reproduce_line() {
    let output = raftkv_sim(&[
        "run",
        "--seed",
        "4",
        "--ops",
        "50",
        "--faults",
        "none",
        "--snapshot-bytes",
        "333",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let lines = lines(&output);
    assert!(lines.iter().any(|line| line.starts_with("snapshot: threshold_bytes=333 ")));
    let reproduce = &lines[lines.len() - 2];
    assert!(reproduce.ends_with(" --faults none --snapshot-bytes 333"), "{reproduce}");
}

#[test]
fn the_trace_is_the_same_every_time() {
    let args = ["run", "--seed", "5", "--ops", "60", "--faults", "all", "--trace"];
    let (first, second) = (lines(&raftkv_sim(&args)), lines(&raftkv_sim(&args)));
    assert!(first.len() > 500, "one line per event: {} lines", first.len());
    // Everything but the wall time on the verdict line.
    assert_eq!(first[..first.len() - 1], second[..second.len() - 1]);
    assert!(first.iter().any(|line| line.contains(" n1  ")), "lines name their node");
}

#[test]
fn the_history_file_is_read_back_by_the_checker() {
    let path =
        std::env::temp_dir().join(format!("raftkv-sim-history-{}.jsonl", std::process::id()));
    let path_text = path.to_str().expect("a UTF-8 path");
    let output = raftkv_sim(&[
        "run",
        "--seed",
        "6",
        "--ops",
        "80",
        "--faults",
        "none",
        "--history",
        path_text,
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = std::fs::read_to_string(&path).expect("written");
    std::fs::remove_file(&path).expect("removable");
    let history = raftkv_checker::parse::jsonl::parse(&text).expect("our format");
    let json: serde_json::Value =
        serde_json::from_str(lines(&output).last().expect("a last line")).expect("JSON");
    let returned = json["ops_ok"].as_u64().expect("a count")
        + json["ops_indeterminate"].as_u64().expect("a count");
    assert_eq!(history.len() as u64, returned + json["ops_open"].as_u64().expect("a count"));
    assert!(history.len() >= 80);
}

#[test]
fn swarm_counts_its_passes_and_ends_with_json() {
    let output = raftkv_sim(&["swarm", "--seeds", "0..6", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let lines = lines(&output);
    assert!(lines[0].starts_with("swarm: 6 passed of 6 runs"), "{}", lines[0]);
    let json: serde_json::Value = serde_json::from_str(&lines[lines.len() - 1]).expect("JSON");
    assert_eq!(json["passed"], 6);
    assert_eq!(json["verdict"], "pass");
    assert!(json["persisted_ratio_max"].as_f64().is_some_and(|ratio| ratio > 0.0), "{json}");
    assert!(
        json["persisted_ratio_max_run"]
            .as_str()
            .is_some_and(|run| run.starts_with("raftkv-sim run"))
    );
}

#[test]
fn catchup_prints_its_settings_then_the_figure_then_json() {
    let output =
        raftkv_sim(&["catchup", "--entries", "2000", "--snapshot-bytes", "4096", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let lines = lines(&output);
    assert!(
        lines[0]
            .starts_with("seed=1 nodes=3 clients=50 entries=2000 snapshot: threshold_bytes=4096")
    );
    assert!(lines[1].starts_with("catch-up: n"), "{}", lines[1]);
    let json: serde_json::Value = serde_json::from_str(&lines[2]).expect("JSON");
    assert!(json["entries_behind"].as_u64().is_some_and(|behind| behind >= 2_000), "{json}");
    assert_eq!(json["snapshots_installed"], 1);
    assert!(json["catch_up_us"].as_u64().is_some_and(|us| us > 0));
}

#[test]
fn bad_arguments_exit_with_2() {
    assert_eq!(raftkv_sim(&["run", "--faults", "flood"]).status.code(), Some(2));
    assert_eq!(raftkv_sim(&["swarm", "--seeds", "5..5"]).status.code(), Some(2));
    assert_eq!(raftkv_sim(&["run", "--nodes", "0"]).status.code(), Some(2));
}

#[test]
fn an_unwritable_history_is_refused_before_the_run() {
    let output =
        raftkv_sim(&["run", "--seed", "1", "--ops", "50", "--history", "/nonexistent/h.jsonl"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("raftkv-sim: cannot write the history to /nonexistent/h.jsonl: "),
        "{stderr}"
    );
    assert!(lines(&output).is_empty(), "nothing ran: {:?}", lines(&output));
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftkv-sim"))
        .args(["run", "--seed", "1", "--ops", "300", "--trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    stdout.read_line(&mut first).expect("a first line");
    assert!(first.starts_with("seed=1 "), "{first}");
    // Like `| head -1`: the reader goes away while far more trace is to come.
    drop(stdout);
    let output = child.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "no panic, no message");
}
