//! `raftkv local`: the quick start. Runs a cluster of real `raftkv serve` processes on
//! 127.0.0.1, with TLS, says where they listen and what to try, and stops them on Ctrl-C.
//! Their data stays, so running it again brings the same cluster back. The first start makes
//! the cluster's certificates in `DATA/certs` (`raftkv certs init`).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use rustix::process::{Pid, Signal, kill_process};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::certs::{self, Existing};
use crate::client::{Client, ClientOptions};
use crate::cluster_args::{LOCAL_CLUSTER, local_certs_dir, local_data_dir};
use crate::failure::Failure;
use crate::tls::ClientTls;

/// Options of `raftkv local`.
#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// How many nodes (an odd number tolerates the most failures for its size).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Where the nodes keep their data and logs (one subdirectory per node). Default: a
    /// `raftkv-local` directory in the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Node N listens on 127.0.0.1:(BASE_PORT + N - 1).
    #[arg(long, default_value_t = 7001)]
    base_port: u16,
    /// Node N also serves Redis clients on 127.0.0.1:(REDIS_BASE_PORT + N - 1); 0: none.
    #[arg(long, default_value_t = 7379)]
    redis_base_port: u16,
    /// Node N also answers /metrics and /health on 127.0.0.1:(METRICS_BASE_PORT + N - 1); 0:
    /// none.
    #[arg(long, default_value_t = 9101)]
    metrics_base_port: u16,
}

/// How long a new cluster may take to elect a leader.
const LEADER_PATIENCE: Duration = Duration::from_secs(15);

/// A child `raftkv serve`.
struct Node {
    id: u16,
    child: Child,
}

/// Runs the local cluster until Ctrl-C.
pub(crate) fn run(args: &LocalArgs) -> Result<(), Failure> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".to_string().into());
    }
    let data = args.data.clone().unwrap_or_else(local_data_dir);
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let certs_dir = local_certs_dir(&data);
    let ids: Vec<raftkv_core::NodeId> =
        (1..=u64::from(args.nodes)).map(raftkv_core::NodeId).collect();
    certs::init(&certs_dir, &ids, Existing::Keep).map_err(Failure::Certs)?;
    let (client_cert, client_key) = certs::client_paths(&certs_dir);
    let tls = ClientTls::from_files(certs::ca_path(&certs_dir), &client_cert, &client_key)?;
    let (addresses, peers) = crate::cluster_args::loopback_cluster(args.nodes, args.base_port);
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot catch signals: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut nodes = Vec::new();
    for id in 1..=args.nodes {
        let redis = redis_address(args.redis_base_port, id);
        let metrics = redis_address(args.metrics_base_port, id);
        match spawn(&exe, id, &peers, &data, &certs_dir, redis.as_deref(), metrics.as_deref()) {
            Ok(child) => nodes.push(Node { id, child }),
            Err(error) => {
                stop(&mut nodes);
                return Err(error);
            }
        }
    }
    let nodes_word = if args.nodes == 1 { "node" } else { "nodes" };
    println!("raftkv local cluster of {} {nodes_word}", args.nodes);
    for (node, address) in nodes.iter().zip(&addresses) {
        let redis = redis_address(args.redis_base_port, node.id)
            .map_or(String::new(), |redis| format!("  redis {redis}"));
        println!(
            "  node {}: {address}{redis}  data {}  log {}",
            node.id,
            data.join(format!("n{}", node.id)).display(),
            log_path(&data, node.id).display()
        );
        if let Some(metrics) = redis_address(args.metrics_base_port, node.id) {
            println!("          http://{metrics}/metrics  http://{metrics}/health");
        }
    }
    match wait_for_leader(&addresses, &mut nodes, &data, &tls) {
        Ok(leader) => println!("leader: node {leader}"),
        Err(error) => {
            stop(&mut nodes);
            return Err(error);
        }
    }
    let redis = redis_address(args.redis_base_port, 1);
    print_what_to_try(&exe, &addresses, &data, &certs_dir, redis.as_deref());

    let outcome = loop {
        if signals.pending().next().is_some() {
            println!("stopping");
            break Ok(());
        }
        if let Some(exited) = exited_node(&mut nodes) {
            break Err(format!(
                "node {exited} stopped unexpectedly; see {}",
                log_path(&data, exited).display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop(&mut nodes);
    outcome.map_err(Failure::Error)
}

/// Says what to type in another terminal: the client commands, and the variables they need
/// when the cluster is not the quick-start one.
fn print_what_to_try(
    exe: &Path,
    addresses: &[String],
    data: &Path,
    certs_dir: &Path,
    redis: Option<&str>,
) {
    let program = shown_program(exe);
    let cluster = addresses.join(",");
    println!("TLS: every connection; certificates in {}", certs_dir.display());
    println!("try, in another terminal:");
    if cluster != LOCAL_CLUSTER {
        println!("  export RAFTKV_CLUSTER={cluster}");
    }
    if cluster != LOCAL_CLUSTER || data != local_data_dir() {
        let (cert, key) = certs::client_paths(certs_dir);
        println!("  export RAFTKV_TLS_CA={}", certs::ca_path(certs_dir).display());
        println!("  export RAFTKV_TLS_CERT={}", cert.display());
        println!("  export RAFTKV_TLS_KEY={}", key.display());
    }
    println!("  {program} put greeting hello && {program} get greeting");
    println!("  {program} status");
    if let Some(redis) = redis {
        let port = redis.rsplit(':').next().unwrap_or_default();
        println!("  redis-cli -p {port} set greeting hello   (any node's Redis port will do)");
    }
    println!("Ctrl-C stops the cluster; `raftkv local` again brings it back with its data.");
}

/// Where node `id` serves Redis clients (or metrics), if `base_port` is not 0.
fn redis_address(base_port: u16, id: u16) -> Option<String> {
    let port = u32::from(base_port) + u32::from(id) - 1;
    (base_port != 0 && port <= u32::from(u16::MAX)).then(|| format!("127.0.0.1:{port}"))
}

fn log_path(data: &Path, id: u16) -> PathBuf {
    data.join(format!("n{id}.log"))
}

fn spawn(
    exe: &Path,
    id: u16,
    peers: &str,
    data: &Path,
    certs_dir: &Path,
    redis: Option<&str>,
    metrics: Option<&str>,
) -> Result<Child, Failure> {
    let log_path = log_path(data, id);
    let log: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let (node_cert, node_key) = certs::node_paths(certs_dir, raftkv_core::NodeId(u64::from(id)));
    let mut command = Command::new(exe);
    command.arg("serve");
    if let Some(redis) = redis {
        command.args(["--redis-listen", redis]);
    }
    if let Some(metrics) = metrics {
        command.args(["--metrics-listen", metrics]);
    }
    command
        .args(["--id", &id.to_string()])
        .args(["--peers", peers])
        .arg("--data")
        .arg(data.join(format!("n{id}")))
        .arg("--tls-ca")
        .arg(certs::ca_path(certs_dir))
        .arg("--tls-cert")
        .arg(&node_cert)
        .arg("--tls-key")
        .arg(&node_key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start node {id}: {e}").into())
}

/// Waits until some node reports a leader; fails if a node dies or no leader is elected within
/// [`LEADER_PATIENCE`].
fn wait_for_leader(
    addresses: &[String],
    nodes: &mut [Node],
    data: &Path,
    tls: &ClientTls,
) -> Result<u64, Failure> {
    let started = Instant::now();
    let options = ClientOptions {
        connect_timeout: Duration::from_millis(500),
        tls: Some(tls.clone()),
        ..ClientOptions::default()
    };
    loop {
        if let Some(exited) = exited_node(nodes) {
            return Err(format!(
                "node {exited} exited at start; see {}",
                log_path(data, exited).display()
            )
            .into());
        }
        if let Ok(mut client) = Client::connect_with(addresses, options.clone()) {
            if let Ok(statuses) = client.status() {
                let leader = statuses
                    .iter()
                    .filter_map(|(_, status)| status.as_ref().ok())
                    .find(|status| status.role == "Leader");
                if let Some(leader) = leader {
                    return Ok(leader.id.0);
                }
            }
        }
        if started.elapsed() > LEADER_PATIENCE {
            let seconds = LEADER_PATIENCE.as_secs();
            return Err(format!("no leader was elected within {seconds} s").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first node whose process has exited, if any.
fn exited_node(nodes: &mut [Node]) -> Option<u16> {
    for node in nodes.iter_mut() {
        if matches!(node.child.try_wait(), Ok(Some(_))) {
            return Some(node.id);
        }
    }
    None
}

/// Asks every node to stop (SIGTERM), waits a little, then kills what is left.
fn stop(nodes: &mut [Node]) {
    for node in nodes.iter() {
        let _ = kill_process(Pid::from_child(&node.child), Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for node in nodes.iter_mut() {
        while Instant::now() < deadline {
            if !matches!(node.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
}

/// How to call this program from the current directory.
fn shown_program(exe: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|dir| exe.strip_prefix(dir).ok().map(Path::to_path_buf));
    match relative {
        Some(path) => path.display().to_string(),
        None => exe.display().to_string(),
    }
}
