//! The command line: `raftkv serve`, `local`, `bench`, and the client commands.
//!
//! Exit status: 0 on success; 1 on an error (cluster unreachable, timeout, bad input, a server
//! that cannot start); 2 on a usage error (bad flags, TLS files that cannot be used, a refusal
//! to run in the clear or to overwrite certificates, a membership change refused as given); 3 when `get` finds no such key or `cas`
//! does not swap, so scripts can tell a definite "no" from a failure.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use raftkv_core::NodeId;
use raftkv_core::kv::KvLimits;
use tracing_subscriber::EnvFilter;

use crate::cluster_args::ClusterArgs;
use crate::failure::Failure;
use crate::frame::MAX_FRAME_BYTES;
use crate::peers_arg::parse_peers;
use crate::server::{self, ConnectionLimits, InlineSync, ServeOptions};
use crate::tls::{ClientAuth, ClientTls, NodeTls, RedisTls, TlsFiles};
use crate::{backup, bench, certs, kv_cli, list, local, member_cli, redis, status_cli};

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO: u8 = 3;

/// raftkv: a linearizable key-value store replicated with Raft.
///
/// Start a local three-node cluster with `raftkv local`, then try `raftkv put greeting hello`
/// and `raftkv get greeting` in another terminal.
#[derive(Debug, Parser)]
#[command(
    name = "raftkv",
    version,
    after_help = "Examples:
  raftkv local                       a three-node cluster on this machine
  raftkv put greeting hello
  raftkv get greeting
  raftkv status

Exit status: 0 success, 1 error, 2 usage error, 3 a definite no (get: no such key; cas: no swap)."
)]
struct Cli {
    /// Log filter, e.g. `info`, `debug`, `raftkv=debug`. `RUST_LOG` takes precedence. Default:
    /// `info` for `serve` and `local`, `warn` for the client commands.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node of a cluster.
    Serve(Box<ServeArgs>),
    /// Start a local cluster of `raftkv serve` processes on 127.0.0.1 (the quick start).
    Local(local::LocalArgs),
    /// Print the value of KEY, its bytes exactly. Exit status 3 if there is none.
    Get(kv_cli::GetArgs),
    /// Set KEY to VALUE.
    Put(kv_cli::WriteArgs),
    /// Append VALUE to the value of KEY (a missing key counts as empty).
    Append(kv_cli::WriteArgs),
    /// Remove KEY.
    Delete(kv_cli::DeleteArgs),
    /// Compare and swap: set KEY to NEW if it holds EXPECTED (or, with --missing, if it is
    /// missing). Prints `ok` or `failed` and what KEY held; exit status 3 if it did not swap.
    Cas(kv_cli::CasArgs),
    /// Print the keys in order with their values, one `KEY<tab>VALUE` line each (or JSON).
    /// Examples: `raftkv list`, `raftkv list --prefix user: --limit 10 --json`.
    List(list::ListArgs),
    /// Print one line per node: id, role (`Learner` for a learner that follows), term,
    /// leader, commit, applied, log size. Exit status 1 unless a majority of voters answers.
    Status(status_cli::StatusArgs),
    /// Measure throughput and latency with many concurrent sessions.
    Bench(bench::BenchArgs),
    /// Make the certificates of a cluster: `raftkv certs init DIR --nodes 1,2,3`; later
    /// `raftkv certs init DIR --nodes 4` signs node 4's with the CA in DIR.
    Certs(certs::CertsArgs),
    /// Back the cluster up (`snapshot save FILE`), or seed a new node's data directory from a
    /// backup (`snapshot restore FILE --data DIR --id N --peers ...`).
    Snapshot(backup::SnapshotArgs),
    /// List, add, promote or remove the members of a running cluster.
    Member(member_cli::MemberArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish or powershell).
    #[command(after_help = "Examples:
  raftkv completions bash > /etc/bash_completion.d/raftkv
  raftkv completions zsh > \"${fpath[1]}/_raftkv\"
  raftkv completions fish > ~/.config/fish/completions/raftkv.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Hand leadership over to voter ID, and wait until it leads.
    #[command(after_help = "Example, before taking the leader's machine down:
  raftkv transfer-leader 2")]
    TransferLeader {
        /// The voter to lead.
        id: u64,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv serve --id 1 --peers 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001 \\
      --listen 0.0.0.0:7001 --data /var/lib/raftkv \\
      --tls-ca ca.crt --tls-cert node-1.crt --tls-key node-1.key
  raftkv serve --id 4 --listen 10.0.0.4:7001 --join 10.0.0.1:7001 --data /var/lib/raftkv ...
  raftkv serve --id 1 --data /var/lib/raftkv ...     a restart: the membership is in the log
  raftkv serve --id 1 ... --read-lease               on every node: reads from the leader's lease
  raftkv serve --id 1 ... --tls-ca ca.crt --tls-cert node-1.crt --tls-key node-1.key \\
      --redis-listen 0.0.0.0:6379              Redis clients too, through TLS:
  redis-cli -h 10.0.0.1 -p 6379 --tls --cacert ca.crt --cert client.crt --key client.key ping
  raftkv serve --id 1 ... --tls-ca ca.crt --tls-cert node-1.crt --tls-key node-1.key \\
      --redis-listen 0.0.0.0:6379 --redis-tls-cert kv1.example.com.crt \\
      --redis-tls-key kv1.example.com.key      the Redis port with a certificate of a public CA
  redis-cli -h kv1.example.com -p 6379 --tls --cert client.crt --key client.key ping")]
struct ServeArgs {
    /// This node's id: a positive number, unique in the cluster, never reused.
    #[arg(long)]
    id: u64,
    /// Start a new cluster of these nodes, this one included, as ID=HOST:PORT,
    /// comma-separated. Other nodes and clients reach each node at this address. Example:
    /// 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001. Once the cluster runs, its membership
    /// lives in its log: a later membership change overrides this.
    #[arg(long, value_name = "ID=HOST:PORT,...", conflicts_with = "join")]
    peers: Option<String>,
    /// Join a running cluster: addresses of some of its nodes, HOST:PORT, comma-separated.
    /// The node learns the members from them and waits, out of elections, until the leader
    /// adds it (`raftkv member add`). Needs --listen. Ignored once the data directory holds a
    /// membership; a node restarts with neither --join nor --peers.
    #[arg(long, value_name = "HOST:PORT,...")]
    join: Option<String>,
    /// With --join: how long to keep asking those nodes for the members (each attempt waits
    /// up to 2 s for an answer) before giving up with exit status 1. Default 30 s.
    #[arg(long, hide_default_value = true, default_value_t = 30_000, value_name = "MS")]
    join_timeout_ms: u64,
    /// Where to accept connections from peers and clients (one port for both). Default: this
    /// node's address in --peers; required otherwise. Use 0.0.0.0:PORT to listen on every
    /// interface.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Directory for the write-ahead log, hard state and snapshots; created if missing.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The cluster's name. Nodes and clients of another cluster are refused, which guards
    /// against wiring two clusters together by mistake.
    #[arg(long, env = "RAFTKV_CLUSTER_NAME", default_value = "raftkv")]
    cluster_name: String,
    /// Minimal election timeout; the actual one is drawn between this and twice this. Keep it
    /// well above a round trip plus an fsync; lower means faster failover.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    election_timeout_ms: u64,
    /// How often the leader sends heartbeats; must be below the election timeout.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    heartbeat_ms: u64,
    /// Answer reads (GET, scans, read-only batches) from the leader's lease: the leader serves
    /// them alone for a while after a majority answered its heartbeats, instead of confirming
    /// its leadership with a round trip to a majority for each batch of reads. Faster reads,
    /// but they trust time where the default trusts nothing but messages: (1) no node's clock
    /// runs faster or slower than real time by more than --max-clock-drift-ppm; (2) no node
    /// stalls (a paused VM, SIGSTOP, swapping, a debugger) between reading its clock and acting
    /// on what it received: a node reads its clock once per turn of its event loop, and a stall
    /// within a turn longer than the lease's margin (the election timeout × 2 × drift / (1 +
    /// drift), 55 ms at the defaults) can serve a stale read. Give every node of the cluster
    /// this flag and the same --election-timeout-ms. A node started with it refuses votes for
    /// one election timeout after it starts. Off by default (ReadIndex reads).
    #[arg(long)]
    read_lease: bool,
    /// With --read-lease: the most any node's clock may run faster or slower than real time,
    /// in parts per million; the lease is shortened by that much. Below 1000000. Default
    /// 100000 (10%, far more than a working clock drifts).
    #[arg(long, hide_default_value = true, default_value_t = 100_000, value_name = "PPM")]
    max_clock_drift_ppm: u64,
    /// Largest frame accepted from a peer or client; larger ones close the connection.
    #[arg(long, default_value_t = MAX_FRAME_BYTES, value_name = "BYTES")]
    max_frame_bytes: usize,
    /// Take a snapshot (and drop the log and the WAL segments it covers) once this many bytes
    /// of applied log have accumulated since the last one. Default 64 MiB.
    #[arg(long, hide_default_value = true, default_value_t = 64 << 20, value_name = "BYTES")]
    snapshot_bytes: usize,
    /// ... or once the applied log weighs this percentage of the last snapshot's size, if
    /// more: each snapshot rewrites the whole state, so a large state is not rewritten every
    /// few megabytes of log. 0 snapshots at --snapshot-bytes alone. At most 1000: the log
    /// between snapshots is kept in the WAL and replayed at a restart. Lower values hold less
    /// log but rewrite the state more often: measured with --snapshot-bytes 4000000 on a store
    /// of 500,000 keys that stopped growing, 50 lowered the peak memory by 14% and the
    /// throughput by 8%; on a store still growing to 1.26M keys, 50 lowered the peak by 5%
    /// and 25 by 3%, at 2% and 12% of the throughput (docs/performance.md).
    #[arg(long, default_value_t = 100, value_name = "PERCENT",
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    snapshot_growth_percent: u32,
    /// Bytes of applied log entries kept in memory (the latest) for followers that are a
    /// little behind. Older ones stay in the write-ahead log until a snapshot compacts them,
    /// and are read back from there, checked, to send to a follower further behind; only
    /// their terms and sizes stay in memory (4 bytes an entry). A restart likewise reads only
    /// this much of the latest entries into memory, and the others back from the log as it
    /// applies them, this much at a time (at least 1 MiB). Default 8 MiB.
    #[arg(long, hide_default_value = true, default_value_t = 8 << 20, value_name = "BYTES")]
    log_cache_bytes: usize,
    /// Size at which a write-ahead log segment is closed and the next one started. Default
    /// 64 MiB.
    #[arg(long, hide_default_value = true, default_value_t = raftkv_storage::DEFAULT_SEGMENT_BYTES, value_name = "BYTES")]
    wal_segment_bytes: u64,
    /// Which nodes write and sync their log on the event loop's thread when the disk thread
    /// has nothing to do, sparing two thread hand-offs per write: `follower` (followers and
    /// candidates; never a leader, which meanwhile reads requests and acknowledgements) or
    /// `never` (every write goes through the disk thread). `follower` lowers the latency of a
    /// lone client (about 8% at the median on a 2-CPU machine) and the CPU time per write
    /// (redis-benchmark SET on 2 CPUs: 16% more SETs/s, 17% less CPU on the leader and 15% on
    /// each follower); `never` is for a disk whose syncs are slow enough that a follower's
    /// loop should read on meanwhile. Nothing is acknowledged before it is durable either way.
    #[arg(long, value_enum, default_value_t = InlineSync::Follower, value_name = "WHICH")]
    inline_sync: InlineSync,
    /// Longest key a client may write; longer ones are refused before they reach the log.
    /// Every node of a cluster must use the same limits.
    #[arg(long, default_value_t = KvLimits::default().max_key_bytes, value_name = "BYTES")]
    max_key_bytes: usize,
    /// Longest value a client may write, and longest an append may grow a value to (an append
    /// past it is refused when applied, so every node of a cluster must use the same limit);
    /// must fit in a frame. Default 1 MiB.
    #[arg(long, hide_default_value = true, default_value_t = KvLimits::default().max_value_bytes, value_name = "BYTES")]
    max_value_bytes: usize,
    /// A client session idle this long expires (a later retry of its last request is then
    /// refused rather than applied twice). Every node must use the same value. Default 10 min.
    #[arg(long, hide_default_value = true, default_value_t = 600_000, value_name = "MS")]
    session_timeout_ms: u64,
    /// This node's data was lost or removed: start it with an empty data directory and this
    /// flag; it takes no part in elections until it has caught up with a leader. Ignored (with
    /// a log line) once the data directory holds this node's data.
    #[arg(long)]
    rejoin: bool,
    #[command(flatten)]
    tls: ServeTlsArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    redis: redis::RedisArgs,
    /// Also answer `GET /metrics` (Prometheus text) and `GET /health` (200 or 503 with a
    /// one-line reason) over plain HTTP at HOST:PORT, e.g. 127.0.0.1:9101.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<SocketAddr>,
    /// `/health` answers 503 when the node has applied fewer than its commit index minus this
    /// many entries.
    #[arg(long, default_value_t = 10_000, value_name = "ENTRIES")]
    health_max_apply_lag: u64,
}

/// TLS of a node.
#[derive(Debug, Args)]
struct ServeTlsArgs {
    /// The cluster's CA certificate (PEM): peers and clients must present a certificate it
    /// signed. With --tls-cert and --tls-key, every connection is TLS 1.3.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// This node's certificate (PEM), signed by the CA, naming node-ID.raftkv.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Run without TLS on an address other than loopback: anyone who reaches the port can
    /// then act as a peer or a client. Without TLS flags, only loopback addresses are served.
    #[arg(long)]
    insecure_plaintext: bool,
}

/// What connections may cost a node.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Client connections at once; at the cap, the one silent longest is closed for a new one
    /// (one still owed answers only if every client is).
    #[arg(long, default_value_t = ConnectionLimits::default().max_client_connections, value_name = "N")]
    max_client_connections: usize,
    /// Connections still in their TLS handshake or Hello (and, apart, Redis connections in
    /// their TLS handshake); at the cap, the oldest is closed for a new one.
    #[arg(long, default_value_t = ConnectionLimits::default().max_pending_connections, value_name = "N")]
    max_pending_connections: usize,
    /// Time from accept to the end of the TLS handshake and the Hello.
    #[arg(long, default_value_t = ConnectionLimits::default().handshake_timeout.as_millis(), value_name = "MS")]
    handshake_timeout_ms: u64,
    /// A client connection that sends nothing for this long is closed. Default 5 min.
    #[arg(long, hide_default_value = true, default_value_t = ConnectionLimits::default().client_idle_timeout.as_millis(), value_name = "MS")]
    client_idle_timeout_ms: u64,
    /// A frame that has begun to arrive must be complete within this.
    #[arg(long, default_value_t = ConnectionLimits::default().frame_timeout.as_millis(), value_name = "MS")]
    frame_timeout_ms: u64,
    /// Replies (of every kind, status included) queued to one client that does not read
    /// them; beyond, the client is disconnected. Default 8 MiB.
    #[arg(long, hide_default_value = true, default_value_t = ConnectionLimits::default().max_reply_queue_bytes, value_name = "BYTES")]
    max_reply_queue_bytes: usize,
    /// Bytes all client and pending connections may buffer together, received and to send;
    /// a connection that grows past it is closed. Default 256 MiB.
    #[arg(long, hide_default_value = true, default_value_t = ConnectionLimits::default().max_client_buffer_bytes, value_name = "BYTES")]
    max_client_buffer_bytes: usize,
    /// Largest snapshot accepted from a leader: larger ones are refused before anything is
    /// allocated for them. Must exceed the largest state the cluster holds. Default 1 GiB.
    #[arg(long, hide_default_value = true, default_value_t = ConnectionLimits::default().max_snapshot_bytes, value_name = "BYTES")]
    max_snapshot_bytes: u64,
    /// Requests of one client connection waiting for their answers; beyond, the connection is
    /// not read until answers go out.
    #[arg(long, default_value_t = ConnectionLimits::default().max_requests_per_connection, value_name = "N")]
    max_requests_per_connection: usize,
    /// Requests of all clients (the node's own Redis listener included) waiting in the
    /// replica; beyond, a new one is answered busy, for its client to retry after a backoff.
    #[arg(long, default_value_t = ConnectionLimits::default().max_requests_in_flight, value_name = "N")]
    max_requests_in_flight: usize,
}

impl LimitArgs {
    fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_client_connections: self.max_client_connections.max(1),
            max_pending_connections: self.max_pending_connections.max(1),
            handshake_timeout: raftkv_core::Duration::from_millis(self.handshake_timeout_ms),
            client_idle_timeout: raftkv_core::Duration::from_millis(self.client_idle_timeout_ms),
            frame_timeout: raftkv_core::Duration::from_millis(self.frame_timeout_ms),
            max_reply_queue_bytes: self.max_reply_queue_bytes,
            max_client_buffer_bytes: self.max_client_buffer_bytes,
            max_snapshot_bytes: self.max_snapshot_bytes,
            max_requests_per_connection: self.max_requests_per_connection.max(1),
            max_requests_in_flight: self.max_requests_in_flight.max(1),
        }
    }
}

/// Runs the command line; returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) | Command::Local(_) => "info",
        _ => "warn",
    };
    init_logging(cli.log_level.as_deref().unwrap_or(default_level));
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Local(args) => local::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Get(args) => kv_cli::get(&args),
        Command::Put(args) => kv_cli::write(kv_cli::WriteKind::Put, &args),
        Command::Append(args) => kv_cli::write(kv_cli::WriteKind::Append, &args),
        Command::Delete(args) => kv_cli::delete(&args),
        Command::Cas(args) => kv_cli::cas(&args),
        Command::List(args) => list::run(&args),
        Command::Status(args) => status_cli::run(&args),
        Command::Certs(args) => certs::run(&args).map_err(Failure::Certs),
        Command::Member(args) => member_cli::run(&args),
        Command::Snapshot(args) => backup::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "raftkv", &mut std::io::stdout());
            Ok(())
        }
        Command::TransferLeader { id, cluster } => member_cli::transfer_leader(id, &cluster),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::No) => ExitCode::from(EXIT_NO),
        Err(failure) if failure.is_usage() => {
            eprintln!("raftkv: {failure}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(failure) => {
            eprintln!("raftkv: {failure}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color_asked())
        .init();
}

/// Whether `NO_COLOR` is set to a non-empty value: then logs are plain text even on a
/// terminal (<https://no-color.org>).
fn no_color_asked() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let id = NodeId(args.id);
    if args.id == 0 {
        return Err(Failure::Usage("--id must be positive".to_string()));
    }
    let peers = match &args.peers {
        Some(peers) => parse_peers(peers).map_err(Failure::Usage)?,
        None => Vec::new(),
    };
    let own = peers.iter().find(|(peer, _)| *peer == id).map(|(_, address)| address.as_str());
    if own.is_none() && !peers.is_empty() {
        return Err(Failure::Usage(format!("--peers does not list this node (--id {id})")));
    }
    let join = parse_join(args.join.as_deref())?;
    if args.join_timeout_ms == 0 {
        return Err(Failure::Usage("--join-timeout-ms must be positive".to_string()));
    }
    let Some(listen) = args.listen.as_deref().or(own) else {
        return Err(Failure::Usage("give --listen (or --peers, which names it)".to_string()));
    };
    let listen: SocketAddr = listen
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve --listen {listen}: {e}"))?
        .next()
        .ok_or_else(|| format!("--listen {listen} resolves to no address"))?;
    if args.heartbeat_ms == 0 || args.heartbeat_ms >= args.election_timeout_ms {
        return Err(Failure::Usage(
            "--heartbeat-ms must be positive and below --election-timeout-ms".to_string(),
        ));
    }
    if args.max_clock_drift_ppm >= 1_000_000 {
        return Err(Failure::Usage(format!(
            "--max-clock-drift-ppm must be below 1000000, not {}",
            args.max_clock_drift_ppm
        )));
    }
    let limits =
        KvLimits { max_key_bytes: args.max_key_bytes, max_value_bytes: args.max_value_bytes };
    // A command carries a key and up to two values (cas), plus framing.
    let largest_command = limits
        .max_key_bytes
        .saturating_add(limits.max_value_bytes.saturating_mul(2))
        .saturating_add(1024);
    if largest_command > args.max_frame_bytes {
        return Err(Failure::Usage(format!(
            "--max-key-bytes plus twice --max-value-bytes ({largest_command} bytes with framing) \
             must fit in --max-frame-bytes ({})",
            args.max_frame_bytes
        )));
    }
    let (tls, join_tls) = serve_tls(&args.tls, id, listen)?;
    let front = match redis_config(&args, &peers, &join, id, listen)? {
        Some(config) => Some(redis::start(config)?),
        None => None,
    };
    let options = ServeOptions {
        id,
        listen,
        peers,
        join,
        join_tls,
        join_timeout: std::time::Duration::from_millis(args.join_timeout_ms),
        data: args.data,
        cluster: args.cluster_name,
        election_timeout_ms: args.election_timeout_ms,
        heartbeat_ms: args.heartbeat_ms,
        read_lease: args.read_lease,
        max_clock_drift_ppm: args.max_clock_drift_ppm,
        max_frame_bytes: args.max_frame_bytes,
        snapshot_bytes: args.snapshot_bytes.max(1),
        snapshot_growth_percent: args.snapshot_growth_percent,
        log_cache_bytes: args.log_cache_bytes,
        segment_bytes: args.wal_segment_bytes.max(1),
        limits,
        session_timeout_ms: args.session_timeout_ms,
        rejoin: args.rejoin,
        connection_limits: args.limits.limits(),
        tls,
        metrics_listen: args.metrics_listen,
        health_max_apply_lag: args.health_max_apply_lag,
        inline_sync: args.inline_sync,
    };
    server::run(options, front).map_err(Failure::Serve)
}

/// The Redis listener's settings, if `--redis-listen` asks for one. It reaches the cluster as a
/// client would, with this node's certificate when the cluster runs TLS.
fn redis_config(
    args: &ServeArgs,
    peers: &[(NodeId, String)],
    join: &[String],
    id: NodeId,
    node_listen: SocketAddr,
) -> Result<Option<redis::RedisConfig>, Failure> {
    let Some(listen) = args.redis.redis_listen else {
        return Ok(None);
    };
    let files = TlsFiles::from_parts(
        args.tls.tls_ca.clone(),
        args.tls.tls_cert.clone(),
        args.tls.tls_key.clone(),
    )?;
    let listener_tls = redis_listener_tls(args, files.as_ref(), listen)?;
    let cluster_tls = files.as_ref().map(ClientTls::load).transpose()?;
    let password =
        args.redis.redis_password_file.as_deref().map(redis::read_password).transpose()?;
    let limits = args.limits.limits();
    // This node first when --peers does not name it (it joins, or restarts without them);
    // the clerks learn the other members from the nodes' welcomes.
    let mut cluster: Vec<String> = peers.iter().map(|(_, address)| address.clone()).collect();
    let own_position = match peers.iter().position(|(peer, _)| *peer == id) {
        Some(position) => position,
        None => {
            cluster.insert(0, node_listen.to_string());
            0
        }
    };
    cluster.extend(
        join.iter().filter(|address| !cluster.contains(address)).cloned().collect::<Vec<_>>(),
    );
    Ok(Some(redis::RedisConfig {
        listen,
        cluster,
        own_position,
        own_id: id,
        cluster_name: args.cluster_name.clone(),
        cluster_tls,
        listener_tls,
        idle_timeout: std::time::Duration::from_millis(limits.client_idle_timeout.as_millis()),
        handshake_timeout: std::time::Duration::from_millis(limits.handshake_timeout.as_millis()),
        limits,
        max_command_bytes: args.max_frame_bytes,
        timeout: std::time::Duration::from_millis(args.redis.redis_timeout_ms.max(1)),
        scan_cursors: args.redis.redis_scan_cursors,
        pipeline_depth: usize::try_from(args.redis.redis_pipeline_depth).unwrap_or(usize::MAX),
        password,
    }))
}

/// The Redis listener's TLS: its own certificate (`--redis-tls-cert`), else the node's when
/// the node runs TLS, unless `--redis-plaintext`. Nobody gets in unauthenticated on an address
/// other than loopback by accident: in the clear only with --insecure-plaintext, and through
/// TLS without client certificates only with a password.
fn redis_listener_tls(
    args: &ServeArgs,
    node_files: Option<&TlsFiles>,
    listen: SocketAddr,
) -> Result<Option<RedisTls>, Failure> {
    let redis = &args.redis;
    let own = redis_certificate(redis)?;
    let public = !listen.ip().is_loopback();
    if own.is_some() && redis.redis_plaintext {
        return Err(Failure::Usage(
            "--redis-tls-cert gives the Redis listener a certificate, --redis-plaintext takes \
             TLS away from it: give one or the other"
                .to_string(),
        ));
    }
    let node_pair = node_files.map(|files| (files.cert.clone(), files.key.clone()));
    match own.or(node_pair) {
        Some((cert, key)) if !redis.redis_plaintext => {
            let cluster_ca = node_files.map(|files| files.ca.as_path());
            redis_tls(redis, &cert, &key, cluster_ca, listen).map(Some)
        }
        _ if redis.redis_tls_auth_clients.is_some() || redis.redis_tls_ca.is_some() => {
            Err(Failure::Usage(
                "--redis-tls-auth-clients and --redis-tls-ca apply to a Redis listener that \
                 speaks TLS: give the node --tls-ca, --tls-cert and --tls-key, or the listener \
                 --redis-tls-cert and --redis-tls-key, and not --redis-plaintext"
                    .to_string(),
            ))
        }
        _ if public && !args.tls.insecure_plaintext => Err(Failure::Usage(format!(
            "refusing to serve Redis clients in the clear on {listen}: give the node \
             --tls-ca, --tls-cert and --tls-key (the listener then speaks TLS), or the \
             listener --redis-tls-cert and --redis-tls-key, use a loopback address, or \
             --insecure-plaintext on a network you trust"
        ))),
        _ => Ok(None),
    }
}

/// The listener's own certificate and key, if given: both or neither.
fn redis_certificate(redis: &redis::RedisArgs) -> Result<Option<(PathBuf, PathBuf)>, Failure> {
    match (&redis.redis_tls_cert, &redis.redis_tls_key) {
        (Some(cert), Some(key)) => Ok(Some((cert.clone(), key.clone()))),
        (None, None) => Ok(None),
        _ => Err(Failure::Usage(
            "--redis-tls-cert and --redis-tls-key go together: give both (the certificate the \
             Redis listener presents and its private key) or neither (it presents the node's)"
                .to_string(),
        )),
    }
}

/// The listener's TLS, presenting `cert` (with `key`), clients' certificates verified against
/// `--redis-tls-ca` or else `cluster_ca`, as `--redis-tls-auth-clients` says.
fn redis_tls(
    redis: &redis::RedisArgs,
    cert: &Path,
    key: &Path,
    cluster_ca: Option<&Path>,
    listen: SocketAddr,
) -> Result<RedisTls, Failure> {
    let auth = redis.redis_tls_auth_clients.unwrap_or(ClientAuth::Required);
    let public = !listen.ip().is_loopback();
    if auth != ClientAuth::Required && public && redis.redis_password_file.is_none() {
        return Err(Failure::Usage(format!(
            "refusing to serve Redis clients on {listen} without client certificates \
             and without a password: anyone who reaches it could read and write. Give \
             --redis-password-file, or keep --redis-tls-auth-clients yes"
        )));
    }
    let client_ca = redis.redis_tls_ca.as_deref().or(cluster_ca);
    match (auth, client_ca) {
        (ClientAuth::Off, _) if redis.redis_tls_ca.is_some() => Err(Failure::Usage(
            "--redis-tls-ca verifies Redis clients' certificates, which \
             --redis-tls-auth-clients no does not ask for: drop one of them"
                .to_string(),
        )),
        (ClientAuth::Required | ClientAuth::Optional, None) => Err(Failure::Usage(
            "Redis clients' certificates need a CA to be verified against, and the node runs \
             no TLS: give --redis-tls-ca, or --redis-tls-auth-clients no (with \
             --redis-password-file on an address other than loopback)"
                .to_string(),
        )),
        (_, client_ca) => Ok(RedisTls::load(cert, key, client_ca, auth)?),
    }
}

/// The node's TLS from its flags, and the same certificate as a client's (to ask a cluster it
/// joins for its members); without them, only a loopback address may be served, unless the
/// operator insists.
fn serve_tls(
    args: &ServeTlsArgs,
    id: NodeId,
    listen: SocketAddr,
) -> Result<(Option<NodeTls>, Option<ClientTls>), Failure> {
    let files =
        TlsFiles::from_parts(args.tls_ca.clone(), args.tls_cert.clone(), args.tls_key.clone())?;
    match files {
        Some(files) => Ok((Some(NodeTls::load(&files, id)?), Some(ClientTls::load(&files)?))),
        None if listen.ip().is_loopback() || args.insecure_plaintext => Ok((None, None)),
        None => Err(Failure::Usage(format!(
            "refusing to serve {listen} without TLS: anyone who reaches it could act as a peer. \
             Give --tls-ca, --tls-cert and --tls-key (see `raftkv certs init`), or \
             --insecure-plaintext to run in the clear on a network you trust"
        ))),
    }
}

/// Parses `--join host:port,host:port`.
fn parse_join(text: Option<&str>) -> Result<Vec<String>, Failure> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let addresses: Vec<String> =
        text.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_string).collect();
    if addresses.is_empty() {
        return Err(Failure::Usage("--join lists no address".to_string()));
    }
    for address in &addresses {
        server::check_address(address)
            .map_err(|problem| Failure::Usage(format!("--join: {problem}")))?;
    }
    Ok(addresses)
}
