//! `raftkv local`: the quick start, and a demonstration of fault tolerance. Runs a cluster of
//! real `raftkv serve` processes on 127.0.0.1, with TLS, says where they listen and what to
//! try, and stops them on Ctrl-C. A node that stops (kill one to see) is reported with whether
//! the others still make a majority, and how to start it again: Enter in `local`'s terminal,
//! or the printed command. Their data stays, so running `local` again brings the same cluster
//! back. The first start makes the cluster's certificates in `DATA/certs` (`raftkv certs
//! init`).

mod launcher;
mod ports;

use std::ffi::OsString;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc::{self, Receiver};
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
use launcher::Launcher;

/// Options of `raftkv local`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv local                                  three nodes on 127.0.0.1:7001-7003
  raftkv local --nodes 5 --base-port 8001 --data /tmp/five
  raftkv local --serve-arg=--read-lease         every node answers reads from its lease
Kill a node (its pid is printed) and the others carry on; press Enter to restart it.")]
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
    /// One more argument for every node's `raftkv serve`, after those `local` gives (repeatable;
    /// write it `--serve-arg=--flag` when it starts with a dash), e.g. `--read-lease`. Flags
    /// `local` sets itself (ids, peers, data, TLS, listeners) cannot be given again: the nodes
    /// would refuse to start. The restart command printed includes them.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
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
        return Err(Failure::Usage("--nodes must be at least 1".to_string()));
    }
    let listeners = [
        ("--base-port", args.base_port),
        ("--redis-base-port", args.redis_base_port),
        ("--metrics-base-port", args.metrics_base_port),
    ];
    let port_ranges = ports::ranges(args.nodes, &listeners).map_err(Failure::Usage)?;
    ports::ensure_free(&port_ranges).map_err(Failure::Error)?;
    let data = args.data.clone().unwrap_or_else(local_data_dir);
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let certs_dir = local_certs_dir(&data);
    let ids: Vec<raftkv_core::NodeId> =
        (1..=u64::from(args.nodes)).map(raftkv_core::NodeId).collect();
    // Named in the node certificates for Redis clients, which check the host they dial.
    let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
    certs::init(&certs_dir, &ids, &hosts, Existing::Keep).map_err(Failure::Certs)?;
    let (client_cert, client_key) = certs::client_paths(&certs_dir);
    let tls = ClientTls::from_files(certs::ca_path(&certs_dir), &client_cert, &client_key)?;
    let (addresses, peers) = crate::cluster_args::loopback_cluster(args.nodes, args.base_port);
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot catch signals: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let launcher = Launcher {
        exe,
        peers,
        data,
        certs_dir,
        redis_base_port: args.redis_base_port,
        metrics_base_port: args.metrics_base_port,
        extra_serve_args: args.serve_args.iter().map(OsString::from).collect(),
    };
    let mut nodes = Vec::new();
    for id in 1..=args.nodes {
        match launcher.spawn(id) {
            Ok(child) => nodes.push(Node { id, child }),
            Err(error) => {
                stop(&mut nodes);
                return Err(error);
            }
        }
    }
    print_nodes(&launcher, &nodes, &addresses);
    match wait_for_leader(&addresses, &mut nodes, &launcher, &tls) {
        Ok(leader) => println!("leader: node {leader}"),
        Err(error) => {
            stop(&mut nodes);
            return Err(error);
        }
    }
    print_what_to_try(&launcher, &addresses);
    let outcome = supervise(&launcher, &mut nodes, &mut signals, args.nodes);
    stop(&mut nodes);
    outcome
}

fn print_nodes(launcher: &Launcher, nodes: &[Node], addresses: &[String]) {
    let nodes_word = if nodes.len() == 1 { "node" } else { "nodes" };
    println!("raftkv local cluster of {} {nodes_word}", nodes.len());
    for (node, address) in nodes.iter().zip(addresses) {
        let redis = launcher
            .redis_address(node.id)
            .map_or(String::new(), |redis| format!("  redis {redis}"));
        println!(
            "  node {}: {address}{redis}  pid {}  data {}  log {}",
            node.id,
            node.child.id(),
            launcher.data_dir(node.id).display(),
            launcher.log_path(node.id).display()
        );
        if let Some(metrics) = launcher.metrics_address(node.id) {
            println!("          http://{metrics}/metrics  http://{metrics}/health");
        }
    }
}

/// Watches the nodes until Ctrl-C: reports a node that stops, and starts the stopped ones
/// again when Enter is pressed. Fails once every node has stopped.
fn supervise(
    launcher: &Launcher,
    nodes: &mut Vec<Node>,
    signals: &mut Signals,
    size: u16,
) -> Result<(), Failure> {
    let enter = enter_presses();
    let mut stopped: Vec<u16> = Vec::new();
    loop {
        if signals.pending().next().is_some() {
            println!("stopping");
            return Ok(());
        }
        while let Some((id, status)) = take_exited(nodes) {
            stopped.push(id);
            report_stop(launcher, id, &status, nodes.len(), size);
        }
        if nodes.is_empty() {
            return Err(Failure::Error(format!(
                "every node stopped; see their logs in {}",
                launcher.data.display()
            )));
        }
        if enter.try_recv().is_ok() {
            for id in std::mem::take(&mut stopped) {
                let child = launcher.spawn(id)?;
                println!("node {id} started again (pid {})", child.id());
                nodes.push(Node { id, child });
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Says which node stopped and how, whether the others still make a majority, and how to
/// start it again.
fn report_stop(
    launcher: &Launcher,
    id: u16,
    status: &std::process::ExitStatus,
    running: usize,
    size: u16,
) {
    println!("node {id} stopped ({status}); its log: {}", launcher.log_path(id).display());
    let majority = usize::from(size) / 2 + 1;
    if running >= majority {
        println!(
            "the other {running} of {size} nodes keep running: a majority, so the cluster still \
             serves"
        );
    } else {
        println!(
            "{running} of {size} nodes are running: no majority, so the cluster cannot serve \
             until another node is back"
        );
    }
    println!("press Enter here to start it again, or run in another terminal:");
    println!("  {}", launcher.command_line(id));
}

/// A channel that receives a message each time Enter is pressed on standard input (nothing if
/// standard input is closed).
fn enter_presses() -> Receiver<()> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if line.is_err() || sender.send(()).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Removes a node whose process has exited from `nodes`; returns its id and how it exited.
fn take_exited(nodes: &mut Vec<Node>) -> Option<(u16, std::process::ExitStatus)> {
    let position =
        nodes.iter_mut().position(|node| matches!(node.child.try_wait(), Ok(Some(_))))?;
    let mut node = nodes.remove(position);
    let status = node.child.wait().ok()?;
    Some((node.id, status))
}

/// Says what to type in another terminal: the client commands, and the variables they need
/// when the cluster is not the quick-start one.
fn print_what_to_try(launcher: &Launcher, addresses: &[String]) {
    let (data, certs_dir) = (launcher.data.as_path(), launcher.certs_dir.as_path());
    let program = shown_program(&launcher.exe);
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
    if let Some(redis) = launcher.redis_address(1) {
        let port = redis.rsplit(':').next().unwrap_or_default();
        let (cert, key) = certs::client_paths(certs_dir);
        let ca = certs::ca_path(certs_dir);
        let word = |path: PathBuf| launcher::shell_word(path.into_os_string());
        let tls = format!("--tls --cacert {} --cert {} --key {}", word(ca), word(cert), word(key));
        println!("  redis-cli -p {port} {tls} set greeting hello");
        println!("                                 (any node's Redis port will do)");
    }
    println!("  kill PID                       (a node's pid above): the others carry on");
    println!("Ctrl-C stops the cluster; `raftkv local` again brings it back with its data.");
}

/// Waits until some node reports a leader; fails if a node dies or no leader is elected within
/// [`LEADER_PATIENCE`].
fn wait_for_leader(
    addresses: &[String],
    nodes: &mut [Node],
    launcher: &Launcher,
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
                launcher.log_path(exited).display()
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
