//! The `raftkv-check` command: exit statuses, the JSON output and the web page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn porcupine(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories/porcupine").join(path)
}

/// A file of this test's own, in cargo's scratch directory for integration tests.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, contents).expect("the scratch directory is writable");
    path
}

fn run(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftkv-check"))
        .args(args)
        .args(files)
        .output()
        .expect("raftkv-check runs")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("raftkv-check exits by itself")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

const NOT_LINEARIZABLE: &str = r#"{"id":0,"client":1,"kind":"put","key":"x","value":"1","call":10,"ret":20}
{"id":1,"client":2,"kind":"get","key":"x","output":"","call":30,"ret":40}
"#;

#[test]
fn exits_0_when_every_history_is_linearizable() {
    let output = run(&[], &[&porcupine("kv/c01-ok.txt"), &porcupine("jepsen/etcd_005.log")]);
    assert_eq!(status(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|line| line.contains("): linearizable (")), "{text}");
}

#[test]
fn exits_1_and_explains_when_a_history_is_not_linearizable() {
    let bad = scratch("not-linearizable.jsonl", NOT_LINEARIZABLE);
    let output = run(&[], &[&porcupine("kv/c01-ok.txt"), &bad]);
    assert_eq!(status(&output), 1, "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("not-linearizable (2 ops, 1 partition)"), "{text}");
    assert!(text.contains("key \"x\" holds \"1\""), "{text}");
    assert!(
        text.contains(
            r#"op 1 (client 2, called 30, returned 40): get("x") -> "": impossible there"#
        ),
        "{text}"
    );
}

#[test]
fn exits_3_when_the_time_limit_runs_out_and_nothing_fails() {
    // With no time at all, a search stops at its first look at the clock; this history needs
    // many more steps than that.
    let output =
        run(&["--timeout", "0"], &[&porcupine("jepsen/etcd_002.log"), &porcupine("kv/c01-ok.txt")]);
    assert_eq!(status(&output), 3, "{}", stderr(&output));
    assert!(stdout(&output).contains(
        "unknown (77 ops, 1 partition)\n  the time limit ran out while checking the register"
    ));
}

/// Many puts on one key that never returned, then reads that each need a different one of
/// them last: every subset of the puts may have taken effect, and the search cannot tell
/// which early. Without limits its time and memory grow without end (minutes and gigabytes).
fn never_returned_puts(puts: u64, reads: u64) -> String {
    let mut lines = String::new();
    for put in 0..puts {
        lines += &format!(
            "{{\"id\":{put},\"client\":{},\"kind\":\"put\",\"key\":\"k\",\"value\":\"v{put}\",\"call\":{put},\"ret\":null}}\n",
            100 + put
        );
    }
    for read in 0..reads {
        let (id, call) = (puts + read, 100 + 2 * read);
        let value = read * 17 % puts;
        lines += &format!(
            "{{\"id\":{id},\"client\":1,\"kind\":\"get\",\"key\":\"k\",\"output\":\"v{value}\",\"call\":{call},\"ret\":{}}}\n",
            call + 1
        );
    }
    lines
}

#[test]
fn a_pathological_history_ends_at_the_limits_with_the_gave_up_verdict() {
    let history = scratch("never-returned-puts.jsonl", &never_returned_puts(40, 30));
    let output = run(&["--json", "--timeout", "0.3", "--cache-mib", "4"], &[&history]);
    assert_eq!(status(&output), 3, "{}", stderr(&output));
    let object: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON object");
    assert_eq!(object["verdict"], "unknown");
    assert_eq!(object["gave_up"], "the time limit of 0.3 s ran out");
    assert_eq!(object["timed_out"], serde_json::json!(["key \"k\""]));
    let text = run(&["--timeout", "0.3", "--cache-mib", "4"], &[&history]);
    assert_eq!(status(&text), 3);
    assert!(
        stdout(&text).contains(
            "unknown (70 ops, 1 partition)\n  the time limit ran out while checking key \"k\""
        ),
        "{}",
        stdout(&text)
    );
}

#[test]
fn reads_standard_input_for_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftkv-check"))
        .args(["--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("raftkv-check runs");
    let mut stdin = child.stdin.take().expect("piped");
    std::io::Write::write_all(&mut stdin, NOT_LINEARIZABLE.as_bytes()).expect("it reads");
    drop(stdin);
    let output = child.wait_with_output().expect("it ends");
    assert_eq!(status(&output), 1);
    let object: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON object");
    assert_eq!(object["file"], "-");
    assert_eq!(object["verdict"], "not-linearizable");
}

#[test]
fn an_empty_history_is_reported_as_such() {
    let empty = scratch("empty.jsonl", "\n");
    let output = run(&[], &[&empty]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).contains("empty.jsonl: the history is empty: no operation to check"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unwritable_page_is_refused_before_checking() {
    let output = run(&["--html", "/nonexistent/page.html"], &[&porcupine("kv/c01-ok.txt")]);
    assert_eq!(status(&output), 2);
    assert!(stderr(&output).contains("/nonexistent/page.html: cannot write the page"));
    assert_eq!(stdout(&output), "", "nothing was checked");
}

#[test]
fn a_failure_outweighs_an_unknown() {
    let bad = scratch("outweighs.jsonl", NOT_LINEARIZABLE);
    let output = run(&["--timeout", "0"], &[&porcupine("jepsen/etcd_002.log"), &bad]);
    assert_eq!(status(&output), 1, "{}", stderr(&output));
}

#[test]
fn exits_2_naming_the_file_and_line_of_unreadable_input() {
    let garbled = scratch(
        "garbled.jsonl",
        "{\"id\":0,\"client\":1,\"kind\":\"delete\",\"key\":\"x\",\"call\":1,\"ret\":2}\nnot json\n",
    );
    let bad = scratch("unreadable-too.jsonl", NOT_LINEARIZABLE);
    let output = run(&[], &[&garbled, &bad]);
    assert_eq!(status(&output), 2);
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "{}:2: invalid JSON at column 2: expected ident",
            garbled.display()
        )),
        "{message}"
    );
    // The other files are still checked.
    assert!(stdout(&output).contains("not-linearizable"));
    let missing = run(&[], &[Path::new("no/such/file.jsonl")]);
    assert_eq!(status(&missing), 2);
    assert!(stderr(&missing).contains("no/such/file.jsonl: "), "{}", stderr(&missing));
}

#[test]
fn json_gives_one_object_per_file() {
    let garbled = scratch("garbled-for-json.txt", "{:process 0, :type :invoke}\n");
    let output = run(
        &["--json", "--format", "porcupine-kv"],
        &[&porcupine("kv/c10-ok.txt"), &porcupine("kv/c10-bad.txt"), &garbled],
    );
    assert_eq!(status(&output), 2);
    let objects: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 3);
    let ok = &objects[0];
    assert!(ok["file"].as_str().is_some_and(|file| file.ends_with("c10-ok.txt")));
    assert_eq!(ok["verdict"], "linearizable");
    assert_eq!(ok["ops"], 337);
    assert_eq!(ok["partitions"], 10);
    assert!(ok["ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(ok["format"], "porcupine-kv");
    let bad = &objects[1];
    assert_eq!(bad["verdict"], "not-linearizable");
    assert!(bad["failing_partition"].as_str().is_some_and(|name| name.starts_with("key ")));
    assert!(
        bad["explanation"]
            .as_str()
            .is_some_and(|text| text.contains("and no operation can come next:"))
    );
    let error = &objects[2];
    assert_eq!(error["line"], 1);
    assert_eq!(error["error"], "missing field :f");
}

#[test]
fn an_explicit_format_is_obeyed() {
    let output = run(&["--format", "jepsen-etcd"], &[&porcupine("kv/c01-ok.txt")]);
    assert_eq!(status(&output), 2);
    assert!(stderr(&output).contains("c01-ok.txt:1: not a Jepsen event"), "{}", stderr(&output));
}

#[test]
fn html_draws_every_history_on_one_page() {
    let bad = scratch("drawn.jsonl", NOT_LINEARIZABLE);
    let page = Path::new(env!("CARGO_TARGET_TMPDIR")).join("page.html");
    let output = run(
        &["--html", page.to_str().expect("a UTF-8 path")],
        &[&porcupine("jepsen/etcd_000.log"), &bad],
    );
    assert_eq!(status(&output), 1, "{}", stderr(&output));
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert_eq!(html.matches("<section ").count(), 2);
    assert_eq!(html.matches("<svg ").count(), 2);
    assert!(
        html.contains("class=\"op stuck due\""),
        "the operation that cannot be placed is marked"
    );
    assert!(!html.contains("src=") && !html.contains("href=\"http"), "self-contained");
}

#[test]
fn help_documents_the_exit_statuses() {
    let output = run(&["--help"], &[]);
    assert_eq!(status(&output), 0);
    let help = stdout(&output);
    for expected in [
        "--format",
        "--timeout",
        "[default: 60]",
        "--cache-mib",
        "--html",
        "--json",
        "Exit status: 0",
    ] {
        assert!(help.contains(expected), "{expected}: {help}");
    }
}
