//! The cluster `raftkv bench --spawn-nodes N` starts for its run: N `raftkv serve` processes of
//! this program on 127.0.0.1, in the clear, each with its data and its log in a directory of the
//! benchmark's. What the nodes did during the run is read back from their logs (leaderships
//! won, snapshots saved) and from `/proc` (resident memory), so that the same benchmark measures
//! any build of the server without asking it for counters.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::client::{Client, ClientOptions};

/// How long the new cluster may take to elect a leader.
const LEADER_PATIENCE: Duration = Duration::from_secs(15);
/// How long the nodes get to stop on SIGTERM before they are killed.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

/// The log line a node writes when it becomes leader.
const BECAME_LEADER: &str = "role=Leader";
/// The log line a node writes for every snapshot it saves (its own or a leader's).
const SAVING_SNAPSHOT: &str = "saving snapshot";

/// How the benchmark's nodes are set up.
#[derive(Clone, Debug)]
pub(crate) struct NodeSettings {
    /// How many nodes.
    pub(crate) nodes: u16,
    /// Node N listens on 127.0.0.1:(base_port + N - 1).
    pub(crate) base_port: u16,
    /// Where their data and logs go.
    pub(crate) data: PathBuf,
    /// Extra `raftkv serve` arguments, the same for every node.
    pub(crate) serve_args: Vec<String>,
}

/// One node of the benchmark's cluster.
struct Node {
    id: u16,
    child: Child,
}

/// The running cluster; stopped when dropped.
pub(crate) struct SpawnedCluster {
    nodes: Vec<Node>,
    addresses: Vec<String>,
    data: PathBuf,
}

/// What one node did, read after the run.
#[derive(Clone, Debug)]
pub(crate) struct NodeReport {
    pub(crate) id: u16,
    /// Resident memory now, in bytes.
    pub(crate) rss_bytes: u64,
    /// The most resident memory the process ever had, in bytes.
    pub(crate) peak_rss_bytes: u64,
    /// Snapshots it saved since it started.
    pub(crate) snapshots: u64,
    /// Size of its snapshot file now (0 without one): what its memory is held against.
    pub(crate) snapshot_bytes: u64,
    /// Times it became leader since it started.
    pub(crate) leaderships: u64,
}

impl NodeReport {
    /// Its peak resident memory as a multiple of its snapshot's size (none without a snapshot):
    /// the memory a store costs beside what it weighs encoded.
    pub(crate) fn peak_rss_over_snapshot(&self) -> Option<f64> {
        (self.snapshot_bytes > 0).then(|| self.peak_rss_bytes as f64 / self.snapshot_bytes as f64)
    }
}

impl SpawnedCluster {
    /// Starts the nodes and waits for a leader.
    pub(crate) fn start(settings: &NodeSettings) -> Result<SpawnedCluster, String> {
        if settings.nodes == 0 {
            return Err("--spawn-nodes must be positive to start nodes".to_string());
        }
        fs::create_dir_all(&settings.data)
            .map_err(|e| format!("cannot create {}: {e}", settings.data.display()))?;
        let (addresses, peers) =
            crate::cluster_args::loopback_cluster(settings.nodes, settings.base_port);
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut cluster =
            SpawnedCluster { nodes: Vec::new(), addresses, data: settings.data.clone() };
        for id in 1..=settings.nodes {
            let child = spawn(&exe, id, &peers, settings)?;
            cluster.nodes.push(Node { id, child });
        }
        cluster.wait_for_leader()?;
        Ok(cluster)
    }

    /// Where the nodes listen.
    pub(crate) fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Times any node became leader so far (the first election included).
    pub(crate) fn leaderships(&self) -> u64 {
        self.nodes
            .iter()
            .map(|node| count_lines(&log_path(&self.data, node.id), BECAME_LEADER))
            .sum()
    }

    /// What each node did so far, and its memory now.
    pub(crate) fn reports(&self) -> Vec<NodeReport> {
        self.nodes
            .iter()
            .map(|node| {
                let log = log_path(&self.data, node.id);
                let memory = ProcessMemory::read(node.child.id());
                NodeReport {
                    id: node.id,
                    rss_bytes: memory.rss_bytes,
                    peak_rss_bytes: memory.peak_rss_bytes,
                    snapshots: count_lines(&log, SAVING_SNAPSHOT),
                    snapshot_bytes: fs::metadata(
                        node_dir(&self.data, node.id).join(raftkv_storage::SNAPSHOT_FILE),
                    )
                    .map_or(0, |metadata| metadata.len()),
                    leaderships: count_lines(&log, BECAME_LEADER),
                }
            })
            .collect()
    }

    /// The first node whose process has exited, if any.
    pub(crate) fn exited_node(&mut self) -> Option<u16> {
        self.nodes
            .iter_mut()
            .find_map(|node| matches!(node.child.try_wait(), Ok(Some(_))).then_some(node.id))
    }

    fn wait_for_leader(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let options = ClientOptions {
            connect_timeout: Duration::from_millis(500),
            ..ClientOptions::default()
        };
        loop {
            if let Some(exited) = self.exited_node() {
                let log = log_path(&self.data, exited);
                return Err(format!("node {exited} exited at start; see {}", log.display()));
            }
            if let Ok(mut client) = Client::connect_with(&self.addresses, options.clone()) {
                let has_leader = client.status().is_ok_and(|statuses| {
                    statuses
                        .iter()
                        .filter_map(|(_, status)| status.as_ref().ok())
                        .any(|status| status.role == "Leader")
                });
                if has_leader {
                    return Ok(());
                }
            }
            if started.elapsed() > LEADER_PATIENCE {
                return Err(format!("no leader was elected within {LEADER_PATIENCE:?}"));
            }
            // Polling a process we started, for a leader to appear: nothing to wait on instead.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SpawnedCluster {
    /// Asks every node to stop (SIGTERM), waits a little, then kills what is left.
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = kill_process(Pid::from_child(&node.child), Signal::TERM);
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        for node in &mut self.nodes {
            while Instant::now() < deadline && matches!(node.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

fn log_path(data: &Path, id: u16) -> PathBuf {
    data.join(format!("n{id}.log"))
}

fn node_dir(data: &Path, id: u16) -> PathBuf {
    data.join(format!("n{id}"))
}

fn spawn(exe: &Path, id: u16, peers: &str, settings: &NodeSettings) -> Result<Child, String> {
    let log_path = log_path(&settings.data, id);
    let log = File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    Command::new(exe)
        .arg("serve")
        .args(["--id", &id.to_string()])
        .args(["--peers", peers])
        .arg("--data")
        .arg(node_dir(&settings.data, id))
        .args(&settings.serve_args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start node {id}: {e}"))
}

/// Lines of the file at `path` that contain `needle` (0 if it cannot be read).
fn count_lines(path: &Path, needle: &str) -> u64 {
    fs::read_to_string(path)
        .map(|text| text.lines().filter(|line| line.contains(needle)).count() as u64)
        .unwrap_or(0)
}

/// A process's memory as Linux reports it in `/proc/PID/status` (zero elsewhere).
struct ProcessMemory {
    rss_bytes: u64,
    peak_rss_bytes: u64,
}

impl ProcessMemory {
    fn read(pid: u32) -> ProcessMemory {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        ProcessMemory {
            rss_bytes: status_kib(&status, "VmRSS:").saturating_mul(1024),
            peak_rss_bytes: status_kib(&status, "VmHWM:").saturating_mul(1024),
        }
    }
}

/// The value of a `/proc/PID/status` field given in kB, such as `VmRSS:   1234 kB`.
fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_fields_are_read_in_kib() {
        let status = "Name:\traftkv\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), 1024);
        assert_eq!(status_kib(status, "VmHWM:"), 2048);
        assert_eq!(status_kib(status, "VmSwap:"), 0);
    }

    #[test]
    fn peak_memory_is_weighed_against_the_snapshot() {
        let report = |snapshot_bytes| NodeReport {
            id: 1,
            rss_bytes: 200,
            peak_rss_bytes: 300,
            snapshots: 1,
            snapshot_bytes,
            leaderships: 0,
        };
        assert_eq!(report(100).peak_rss_over_snapshot(), Some(3.0));
        assert_eq!(report(0).peak_rss_over_snapshot(), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        let memory = ProcessMemory::read(std::process::id());
        assert!(memory.rss_bytes > 0 && memory.peak_rss_bytes >= memory.rss_bytes);
    }
}
