//! `raftkv local` as a demonstration of fault tolerance: a node killed is reported while the
//! others carry on, and Enter starts it again; ports in use and ports that do not fit are
//! refused before anything starts; the redis-cli line it prints works.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{PATIENCE, free_port_block};

/// A running `raftkv local`, its output read line by line.
struct Local {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
    data: std::path::PathBuf,
}

impl Local {
    /// Starts a cluster on `base_port` and up, with Redis listeners from `redis_base_port`
    /// (0: none).
    fn start(base_port: u16, redis_base_port: u16, name: &str) -> Local {
        let data = std::env::temp_dir().join(format!("raftkv-local-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(["local", "--base-port", &base_port.to_string()])
            .args(["--redis-base-port", &redis_base_port.to_string()])
            .args(["--metrics-base-port", "0"])
            .arg("--data")
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run raftkv local");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Local { child, stdin, lines, seen: Vec::new(), data }
    }

    /// Waits for a line containing `text`; returns it.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.seen.iter().find(|line| line.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    panic!("no {text:?} in the output of raftkv local:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// The pid of node `id`, from the listing.
    fn pid(&mut self, id: u16) -> i32 {
        let line = self.wait_for(&format!("node {id}: "));
        let pid = line.split("pid ").nth(1).and_then(|rest| rest.split_whitespace().next());
        pid.and_then(|pid| pid.parse().ok()).unwrap_or_else(|| panic!("no pid in {line:?}"))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = common::wait_with_deadline(&mut self.child, PATIENCE);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn kill(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).expect("a positive pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill the node");
}

#[test]
fn a_killed_node_is_reported_the_others_carry_on_and_enter_starts_it_again() {
    let base = free_port_block(3);
    let mut local = Local::start(base, 0, "demo");
    local.wait_for("leader: node");
    let pid = local.pid(2);

    // A second cluster on the same ports is refused before it starts anything.
    let second = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["local", "--base-port", &base.to_string(), "--redis-base-port", "0"])
        .args(["--metrics-base-port", "0"])
        .arg("--data")
        .arg(local.data.join("second"))
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let said = String::from_utf8_lossy(&second.stderr);
    let range = format!("ports {base}\u{2013}{} in use", base + 2);
    assert!(said.contains(&range) && said.contains("already running"), "{said}");

    kill(pid);
    local.wait_for("node 2 stopped");
    local.wait_for("the other 2 of 3 nodes keep running: a majority");
    let restart = local.wait_for("serve --id 2 --peers");
    assert!(restart.contains(&format!("1=127.0.0.1:{base}")), "{restart}");
    local.stdin.write_all(b"\n").unwrap();
    local.stdin.flush().unwrap();
    local.wait_for("node 2 started again");
    // Every node answers again.
    let addresses = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect::<Vec<_>>();
    let certs = local.data.join("certs");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(["status", "--cluster", &addresses.join(",")])
            .arg("--tls-ca")
            .arg(certs.join("ca.crt"))
            .arg("--tls-cert")
            .arg(certs.join("client.crt"))
            .arg("--tls-key")
            .arg(certs.join("client.key"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout).into_owned();
        if status.status.success() && !text.contains("unreachable") {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 does not answer again:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(local.child.try_wait().unwrap().is_none(), "raftkv local stopped");
}

#[test]
fn ports_that_do_not_fit_are_a_usage_error() {
    let run = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_raftkv")).arg("local").args(args).output().unwrap()
    };
    for (args, expected) in [
        (&["--base-port", "65534"][..], "no room for 3 nodes"),
        (&["--base-port", "0"], "--base-port must be a port"),
        (&["--base-port", "7001", "--redis-base-port", "7002"], "overlaps"),
        (&["--nodes", "0"], "--nodes must be at least 1"),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(expected), "{args:?}: {said}");
    }
}

#[test]
fn the_redis_cli_line_it_prints_works_through_tls() {
    let base = free_port_block(6);
    let mut local = Local::start(base, base + 3, "redis");
    local.wait_for("leader: node");
    let line = local.wait_for("redis-cli -p");
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |flag: &str| {
        let at = words.iter().position(|word| *word == flag);
        at.and_then(|at| words.get(at + 1)).copied().unwrap_or_else(|| panic!("{flag} in {line}"))
    };
    assert_eq!(after("-p"), (base + 3).to_string(), "{line}");
    assert!(words.contains(&"--tls"), "{line}");
    let read = |flag: &str| std::fs::read(after(flag)).unwrap_or_else(|e| panic!("{flag}: {e}"));
    let certificates = redis::TlsCertificates {
        client_tls: Some(redis::ClientTlsConfig {
            client_cert: read("--cert"),
            client_key: read("--key"),
        }),
        root_cert: Some(read("--cacert")),
    };
    // The host checked against the node's certificate, which `local` makes for 127.0.0.1.
    let url = format!("rediss://127.0.0.1:{}/", base + 3);
    let client = redis::Client::build_with_tls(url, certificates).expect("a TLS client");
    let mut connection = client.get_connection().expect("connected through TLS");
    let set: String =
        redis::cmd("SET").arg("greeting").arg("hello").query(&mut connection).unwrap();
    assert_eq!(set, "OK");
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("redis-cli is not installed: the printed line itself is not run");
        return;
    }
    let got = Command::new("sh")
        .arg("-c")
        .arg(line.trim().replace("set greeting hello", "get greeting"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "hello", "{got:?}");
}
