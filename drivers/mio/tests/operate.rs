//! The command line as an operator and a script use it: exit statuses, values as bytes,
//! `status` without a majority, a benchmark whose operations fail, and what `serve` refuses.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output, Stdio};

use common::TestCluster;

fn raftkv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftkv")).args(args).output().expect("run raftkv")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `output` is a usage error (exit status 2) whose message contains `expected`.
fn assert_usage(output: &Output, expected: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    assert!(stderr(output).contains(expected), "{expected:?} not in {}", stderr(output));
}

#[test]
fn usage_errors_exit_with_status_2_and_say_what_is_expected() {
    assert_usage(&raftkv(&["get", "k", "--cluster", "127.0.0.1"]), "HOST:PORT");
    assert_usage(&raftkv(&["get", "k", "--cluster", ""]), "HOST:PORT");
    assert_usage(&raftkv(&["cas", "k", "new"]), "NEW");
    assert_usage(&raftkv(&["cas", "--missing", "k", "a", "b"]), "--missing");
    assert_usage(&raftkv(&["put", "k"]), "VALUE");
    assert_usage(&raftkv(&["put", "k", "v", "--value-file", "f"]), "cannot be used");
    let missing_file = raftkv(&["put", "k", "--value-file", "/nonexistent/value"]);
    assert_usage(&missing_file, "/nonexistent/value");
    let data = std::env::temp_dir().join(format!("raftkv-usage-{}", std::process::id()));
    let data = data.to_str().expect("a UTF-8 path");
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--data", data];
        args.extend(extra);
        raftkv(&args)
    };
    let same_address = serve(&["--id", "1", "--peers", "1=127.0.0.1:1,2=127.0.0.1:1"]);
    assert_usage(&same_address, "nodes 1 and 2 have the same address 127.0.0.1:1");
    assert_usage(&serve(&["--id", "4", "--peers", "1=127.0.0.1:1"]), "does not list this node");
    assert_usage(&serve(&["--id", "0", "--peers", "1=127.0.0.1:1"]), "--id must be positive");
    assert_usage(&serve(&["--id", "1", "--peers", "1=127.0.0.1"]), "not HOST:PORT");
    let heartbeat = serve(&["--id", "1", "--peers", "1=127.0.0.1:1", "--heartbeat-ms", "500"]);
    assert_usage(&heartbeat, "--heartbeat-ms");
    let drift =
        serve(&["--id", "1", "--peers", "1=127.0.0.1:1", "--max-clock-drift-ppm", "1000000"]);
    assert_usage(&drift, "--max-clock-drift-ppm must be below 1000000");
    let growth =
        serve(&["--id", "1", "--peers", "1=127.0.0.1:1", "--snapshot-growth-percent", "5000"]);
    assert_usage(&growth, "--snapshot-growth-percent");
    let huge_values = serve(&[
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:1",
        "--max-value-bytes",
        &u64::MAX.to_string(),
    ]);
    assert_usage(&huge_values, "--max-frame-bytes");
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn a_data_directory_refuses_another_peer_set_and_takes_its_own_back() {
    let mut cluster = TestCluster::start(1);
    assert!(cluster.terminate(1).success(), "{}", cluster.log(1));
    let other_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let peers = format!("1={},2={other_port}", cluster.addresses()[0]);
    let data = cluster.data_dir(1);
    let refused = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["serve", "--id", "1", "--peers", &peers, "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_usage(&refused, "belongs to the cluster started with --peers 1=127.0.0.1:");
    // The same peers as at the first start are taken back.
    cluster.spawn(1);
    cluster.wait_for_leader(None);
}

/// Runs a client command against `cluster` with `input` on its standard input.
fn cli_with_input(cluster: &TestCluster, args: &[&OsStr], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(args)
        .env("RAFTKV_CLUSTER", cluster.addresses().join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the CLI");
    child.stdin.take().expect("piped").write_all(input).expect("write the input");
    child.wait_with_output().expect("run the CLI")
}

#[test]
fn values_are_bytes_from_arguments_standard_input_or_files_and_get_prints_them_exactly() {
    let cluster = TestCluster::start(1);
    let os = |text: &str| OsStr::new(text).to_owned();
    let binary: &[u8] = b"a\0b\xff\n";
    let put = cli_with_input(&cluster, &[&os("put"), &os("from-stdin"), &os("-")], binary);
    assert!(put.status.success(), "{}", stderr(&put));
    let got = cluster.cli(&["get", "from-stdin"]);
    assert_eq!(got.stdout, binary, "the value's bytes exactly, and nothing more");

    let file = std::env::temp_dir().join(format!("raftkv-value-{}", std::process::id()));
    std::fs::write(&file, b"from a file\xfe").unwrap();
    let put_file = cluster.cli(&["put", "from-file", "--value-file", file.to_str().unwrap()]);
    assert!(put_file.status.success(), "{}", stderr(&put_file));
    assert_eq!(cluster.cli(&["get", "from-file"]).stdout, b"from a file\xfe");
    std::fs::remove_file(&file).unwrap();

    // Arguments that are not UTF-8 are keys and values like any other.
    let key = OsStr::from_bytes(b"key-\xff");
    let value = OsStr::from_bytes(b"value-\xfe");
    let put = cli_with_input(&cluster, &[&os("put"), key, value], b"");
    assert!(put.status.success(), "{}", stderr(&put));
    let appended = cli_with_input(&cluster, &[&os("append"), key, &os("-")], b"!");
    assert!(appended.status.success(), "{}", stderr(&appended));
    let got = cli_with_input(&cluster, &[&os("get"), key], b"");
    assert_eq!(got.stdout, b"value-\xfe!");
    let swapped = cli_with_input(&cluster, &[&os("cas"), key, &os("value-\u{fe}!"), &os("x")], b"");
    assert_eq!(swapped.status.code(), Some(3), "the expected value is other bytes");

    let json = cluster.cli(&["get", "from-stdin", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        "{\"key\":\"from-stdin\",\"value_hex\":\"610062ff0a\"}\n"
    );
    cluster.cli(&["put", "text", "hello"]);
    let json = cluster.cli(&["get", "text", "--json"]);
    assert_eq!(String::from_utf8_lossy(&json.stdout), "{\"key\":\"text\",\"value\":\"hello\"}\n");
    let missing = cluster.cli(&["get", "nothing", "--json"]);
    assert_eq!(missing.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&missing.stdout), "{\"key\":\"nothing\",\"value\":null}\n");

    // A benchmark whose every write is refused says why, fails, and counts no more errors than
    // operations.
    let bench = cluster.cli(&["bench", "--value-size", "2097152", "--ops", "3", "--clients", "2"]);
    assert_eq!(bench.status.code(), Some(1), "{}", stderr(&bench));
    assert!(stderr(&bench).contains("exceeds the limit"), "{}", stderr(&bench));
}

#[test]
fn status_lists_each_node_once_and_fails_without_a_majority() {
    let mut cluster = TestCluster::start(3);
    let healthy = cluster.cli(&["status"]);
    assert!(healthy.status.success(), "{}", stderr(&healthy));
    let leader = cluster.wait_for_leader(None) as usize;
    cluster.kill(leader % 3 + 1);
    let one_down = cluster.cli(&["status"]);
    assert!(one_down.status.success(), "a majority answers: {}", stderr(&one_down));
    assert_eq!(String::from_utf8_lossy(&one_down.stdout).lines().count(), 3);
    cluster.kill(leader);
    for args in [&["status"][..], &["status", "--json"]] {
        let two_down = cluster.cli(args);
        let text = String::from_utf8_lossy(&two_down.stdout).into_owned();
        assert_eq!(text.lines().count(), 3, "one line per node: {text}");
        assert_eq!(two_down.status.code(), Some(1), "{text}");
        assert!(stderr(&two_down).contains("only 1 of 3 voters answered"), "{}", stderr(&two_down));
    }
}

#[test]
fn completions_are_generated_for_each_shell_and_an_unknown_shell_is_a_usage_error() {
    for (shell, marker) in
        [("bash", "_raftkv()"), ("zsh", "#compdef raftkv"), ("fish", "complete -c raftkv")]
    {
        let output = raftkv(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        assert!(script.contains("snapshot") && script.contains("value-file"), "{shell}");
    }
    assert_usage(&raftkv(&["completions", "tcsh"]), "tcsh");
}

#[test]
fn every_command_s_help_shows_examples_and_says_each_default_once() {
    let commands = [
        "serve",
        "local",
        "get",
        "put",
        "append",
        "delete",
        "cas",
        "list",
        "status",
        "bench",
        "certs",
        "member",
        "snapshot",
        "completions",
        "transfer-leader",
    ];
    for command in commands {
        let help = raftkv(&[command, "--help"]);
        assert!(help.status.success(), "{command}");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Example"), "{command} --help shows no example:\n{text}");
        for option in text.split("\n  ").filter(|option| option.contains("Default ")) {
            assert!(!option.contains("[default:"), "{command}: a default said twice: {option}");
        }
    }
}
