//! A cluster of real `raftkv serve` processes on 127.0.0.1 for integration tests: free ports,
//! a fresh data directory, and every process killed and the directory removed on drop. In
//! the clear, or with TLS and certificates made by `raftkv certs init`.

#![allow(dead_code)] // Each test file uses its own part of the harness.

mod ports;
pub(crate) mod raw;

pub(crate) use ports::free_port_block;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use raftkv::{Client, ClientOptions, ClientTls, NodeStatus};

/// How long any condition may take to come true before a test fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

pub(crate) struct TestCluster {
    dir: PathBuf,
    ports: Vec<u16>,
    /// Nodes 1..=initial start the cluster (`--peers`); later ones join it (`--join`).
    initial: usize,
    nodes: Vec<Option<Child>>,
    /// Extra arguments of every `raftkv serve`.
    extra_args: Vec<String>,
    /// Whether the nodes run TLS, with the certificates in `certs_dir()`.
    tls: bool,
    /// Where each node serves Redis clients, if they do (`start_redis`).
    redis_ports: Vec<u16>,
}

impl TestCluster {
    /// Starts `size` nodes and waits until they have elected a leader.
    pub(crate) fn start(size: usize) -> TestCluster {
        TestCluster::start_with(size, &[])
    }

    /// Starts `size` nodes with extra `serve` arguments and waits for a leader.
    pub(crate) fn start_with(size: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::start_configured(size, extra_args, false)
    }

    /// Starts `size` nodes with TLS (certificates from `raftkv certs init`) and extra `serve`
    /// arguments, and waits for a leader.
    pub(crate) fn start_tls(size: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::start_configured(size, extra_args, true)
    }

    /// Starts `size` nodes, each also serving Redis clients (`--redis-listen`, see
    /// `redis_url`), and waits for a leader.
    pub(crate) fn start_redis(size: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::start_full(size, extra_args, false, true)
    }

    /// Starts `size` nodes with TLS, each also serving Redis clients through TLS, and waits for
    /// a leader.
    pub(crate) fn start_redis_tls(size: usize, extra_args: &[&str]) -> TestCluster {
        TestCluster::start_full(size, extra_args, true, true)
    }

    fn start_configured(size: usize, extra_args: &[&str], tls: bool) -> TestCluster {
        TestCluster::start_full(size, extra_args, tls, false)
    }

    /// A cluster of `size` nodes in the clear with its ports and directory chosen, none of
    /// them started (`spawn` each, then `wait_for_leader`).
    pub(crate) fn unstarted(size: usize) -> TestCluster {
        TestCluster::create(size, &[], false, false)
    }

    fn start_full(size: usize, extra_args: &[&str], tls: bool, redis: bool) -> TestCluster {
        let mut cluster = TestCluster::create(size, extra_args, tls, redis);
        for node in 1..=size {
            cluster.spawn(node);
        }
        cluster.wait_for_leader(None);
        cluster
    }

    fn create(size: usize, extra_args: &[&str], tls: bool, redis: bool) -> TestCluster {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "raftkv-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test directory");
        // One call, so that no port is handed out twice.
        let mut ports = free_ports(if redis { size * 2 } else { size });
        let redis_ports = ports.split_off(size);
        let extra_args = extra_args.iter().map(|arg| arg.to_string()).collect();
        let nodes = (0..size).map(|_| None).collect();
        let cluster =
            TestCluster { dir, ports, initial: size, nodes, extra_args, tls, redis_ports };
        if tls {
            let ids = (1..=size).map(|id| id.to_string()).collect::<Vec<_>>().join(",");
            cluster.make_certificates(&ids);
        }
        cluster
    }

    /// Runs `raftkv certs init` for node ids `ids` (comma-separated): the first run makes the
    /// CA, later ones sign with it. The node certificates name 127.0.0.1 and localhost too,
    /// for Redis clients, which check the host they dial.
    fn make_certificates(&self, ids: &str) {
        let made = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(["certs", "init"])
            .arg(self.certs_dir())
            .args(["--nodes", ids, "--hosts", "localhost,127.0.0.1"])
            .output()
            .expect("run raftkv certs init");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    }

    /// Makes room for one more node, which will join the cluster (`--join` the first nodes'
    /// addresses), with a certificate of the cluster's CA if it runs TLS; returns its id. It
    /// is not started.
    pub(crate) fn add_node(&mut self) -> usize {
        self.ports.extend(free_ports(1));
        self.nodes.push(None);
        let node = self.nodes.len();
        if self.tls {
            self.make_certificates(&node.to_string());
        }
        node
    }

    /// The `redis://` address of node `node`'s Redis listener (clusters of `start_redis`), or
    /// `rediss://` with TLS.
    pub(crate) fn redis_url(&self, node: usize) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.redis_ports[node - 1])
    }

    /// The `HOST:PORT` of node `node`'s Redis listener.
    pub(crate) fn redis_address(&self, node: usize) -> String {
        format!("127.0.0.1:{}", self.redis_ports[node - 1])
    }

    pub(crate) fn addresses(&self) -> Vec<String> {
        self.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect()
    }

    /// Where `raftkv certs init` wrote the cluster's certificates (TLS clusters).
    pub(crate) fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// The client's TLS files (CA, certificate, key) of a TLS cluster.
    pub(crate) fn client_tls_files(&self) -> [PathBuf; 3] {
        let certs = self.certs_dir();
        [certs.join("ca.crt"), certs.join("client.crt"), certs.join("client.key")]
    }

    /// Client options that reach this cluster: TLS with the client certificate if it runs TLS.
    pub(crate) fn client_options(&self) -> ClientOptions {
        let tls = self.tls.then(|| {
            let [ca, cert, key] = self.client_tls_files();
            ClientTls::from_files(ca, cert, key).expect("load the client's certificate")
        });
        ClientOptions { tls, ..ClientOptions::default() }
    }

    pub(crate) fn data_dir(&self, node: usize) -> PathBuf {
        self.dir.join(format!("n{node}"))
    }

    pub(crate) fn log_path(&self, node: usize) -> PathBuf {
        self.dir.join(format!("n{node}.log"))
    }

    pub(crate) fn log(&self, node: usize) -> String {
        fs::read_to_string(self.log_path(node)).unwrap_or_default()
    }

    /// The `--peers` of the nodes that start the cluster.
    pub(crate) fn peers(&self) -> String {
        self.ports[..self.initial]
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}=127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The command line that runs node `node`.
    pub(crate) fn serve_command(&self, node: usize) -> Command {
        let peers = self.peers();
        let membership = if node <= self.initial {
            vec!["--peers".to_string(), peers]
        } else {
            let join = self.addresses()[..self.initial].join(",");
            let listen = self.addresses()[node - 1].clone();
            vec!["--listen".to_string(), listen, "--join".to_string(), join]
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(node))
            .expect("open the node's log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_raftkv"));
        command
            .arg("serve")
            .args(["--id", &node.to_string()])
            .args(membership)
            .arg("--data")
            .arg(self.data_dir(node))
            .args(["--election-timeout-ms", "150", "--heartbeat-ms", "30"])
            .args(self.tls_args(node))
            .args(
                self.redis_ports
                    .get(node - 1)
                    .map(|port| format!("--redis-listen=127.0.0.1:{port}")),
            )
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        command
    }

    /// The TLS flags of node `node`, if the cluster runs TLS.
    fn tls_args(&self, node: usize) -> Vec<PathBuf> {
        if !self.tls {
            return Vec::new();
        }
        let certs = self.certs_dir();
        vec![
            "--tls-ca".into(),
            certs.join("ca.crt"),
            "--tls-cert".into(),
            certs.join(format!("node-{node}.crt")),
            "--tls-key".into(),
            certs.join(format!("node-{node}.key")),
        ]
    }

    /// Starts (or restarts) node `node` (1-based).
    pub(crate) fn spawn(&mut self, node: usize) {
        self.spawn_with(node, &[]);
    }

    /// Starts (or restarts) node `node` with extra `serve` arguments for this start only.
    pub(crate) fn spawn_with(&mut self, node: usize, extra_args: &[&str]) {
        assert!(self.nodes[node - 1].is_none(), "node {node} is running");
        let child = self.serve_command(node).args(extra_args).spawn().expect("start raftkv serve");
        self.nodes[node - 1] = Some(child);
    }

    /// Kills node `node` with SIGKILL, as a crash would.
    pub(crate) fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `node` with SIGTERM and returns how it exited.
    pub(crate) fn terminate(&mut self, node: usize) -> ExitStatus {
        let mut child = self.nodes[node - 1].take().expect("node is running");
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .expect("send SIGTERM");
        wait_with_deadline(&mut child, PATIENCE).expect("node stops after SIGTERM")
    }

    /// Freezes node `node` (SIGSTOP), as a long pause or a stalled machine would.
    pub(crate) fn pause(&mut self, node: usize) {
        self.signal(node, rustix::process::Signal::STOP);
    }

    /// Lets a paused node go on (SIGCONT).
    pub(crate) fn resume(&mut self, node: usize) {
        self.signal(node, rustix::process::Signal::CONT);
    }

    fn signal(&self, node: usize, signal: rustix::process::Signal) {
        let child = self.nodes[node - 1].as_ref().expect("node is running");
        rustix::process::kill_process(rustix::process::Pid::from_child(child), signal)
            .expect("signal the node");
    }

    /// Whether node `node` is still running.
    pub(crate) fn is_running(&mut self, node: usize) -> bool {
        self.nodes[node - 1].as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Runs the command line against this cluster (every node's address, TLS if it runs it).
    pub(crate) fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_raftkv"));
        command.args(args).env("RAFTKV_CLUSTER", self.addresses().join(","));
        if self.tls {
            let [ca, cert, key] = self.client_tls_files();
            command
                .env("RAFTKV_TLS_CA", ca)
                .env("RAFTKV_TLS_CERT", cert)
                .env("RAFTKV_TLS_KEY", key);
        }
        command.output().expect("run the CLI")
    }

    /// A client of the whole cluster.
    pub(crate) fn client(&self) -> Client {
        let options = ClientOptions {
            timeout: PATIENCE,
            connect_timeout: Duration::from_secs(5),
            ..self.client_options()
        };
        Client::connect_with(&self.addresses(), options).expect("connect to the cluster")
    }

    /// Waits until a running node reports itself leader and returns its id; `not` excludes one.
    pub(crate) fn wait_for_leader(&self, not: Option<u64>) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(mut client) = Client::connect_with(
                &self.addresses(),
                ClientOptions {
                    connect_timeout: Duration::from_millis(500),
                    ..self.client_options()
                },
            ) {
                let leader = client.status().ok().and_then(|statuses| {
                    statuses
                        .into_iter()
                        .filter_map(|(_, status)| status.ok())
                        .find(|status| status.role == "Leader" && Some(status.id.0) != not)
                });
                if let Some(leader) = leader {
                    return leader.id.0;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {PATIENCE:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `node` reports a status for which `holds` is true, given the status of
    /// the leader too; panics with the logs if it does not within [`PATIENCE`].
    pub(crate) fn wait_for_status(
        &self,
        node: u64,
        what: &str,
        holds: impl Fn(&NodeStatus, &NodeStatus) -> bool,
    ) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(mut client) = Client::connect_with(&self.addresses(), self.client_options()) {
                let statuses: Vec<NodeStatus> = client
                    .status()
                    .map(|statuses| statuses.into_iter().filter_map(|(_, s)| s.ok()).collect())
                    .unwrap_or_default();
                let leader = statuses.iter().find(|status| status.role == "Leader");
                let this = statuses.iter().find(|status| status.id.0 == node);
                if let (Some(this), Some(leader)) = (this, leader) {
                    if holds(this, leader) {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "node {node}: not {what}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `node`'s log contains `text`; panics with the log if it does not
    /// within [`PATIENCE`].
    pub(crate) fn wait_for_log(&self, node: usize, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.log(node).contains(text) {
            assert!(Instant::now() < deadline, "no {text:?} in the log\n{}", self.log(node));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `node`'s status, asked of that node alone.
    pub(crate) fn status_of(&self, node: usize) -> NodeStatus {
        let address = self.addresses()[node - 1].clone();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = Client::connect_with(&[address.as_str()], self.client_options())
                .ok()
                .and_then(|mut client| client.status().ok())
                .and_then(|statuses| statuses.into_iter().find(|(a, _)| *a == address))
                .and_then(|(_, status)| status.ok());
            if let Some(status) = status {
                return status;
            }
            assert!(Instant::now() < deadline, "node {node} gives no status\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `node`'s status satisfies `holds`; returns that status.
    pub(crate) fn wait_for_node(
        &self,
        node: usize,
        what: &str,
        holds: impl Fn(&NodeStatus) -> bool,
    ) -> NodeStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self.status_of(node);
            if holds(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {node}: not {what}: {:?}\n{}",
                status.connections,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every node's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        (1..=self.nodes.len())
            .map(|node| format!("--- node {node} ---\n{}", self.log(node)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The WAL segment files of node `node`, in order.
    pub(crate) fn segments(&self, node: usize) -> Vec<PathBuf> {
        let mut segments: Vec<PathBuf> = fs::read_dir(self.data_dir(node).join("wal"))
            .expect("list the WAL")
            .map(|entry| entry.expect("list the WAL").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
            .collect();
        segments.sort();
        segments
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in 1..=self.nodes.len() {
            self.kill(node);
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits for `child` to exit, at most `patience`; kills it if it does not.
pub(crate) fn wait_with_deadline(child: &mut Child, patience: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + patience;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ports that were free a moment ago, outside the ephemeral range (see [`free_port_block`]).
pub(crate) fn free_ports(count: usize) -> Vec<u16> {
    let count = u16::try_from(count).expect("a number of ports");
    let base = free_port_block(count);
    (base..base + count).collect()
}

/// A connection of `client` to node `node`'s Redis listener, once it answers (a node opens
/// its listener a moment after it starts).
pub(crate) fn connect_when_listening(client: &redis::Client, node: usize) -> redis::Connection {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match client.get_connection() {
            Ok(connection) => return connection,
            Err(error) if Instant::now() < deadline => {
                eprintln!("waiting for node {node}'s redis listener: {error}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("node {node}'s redis listener: {error}"),
        }
    }
}
