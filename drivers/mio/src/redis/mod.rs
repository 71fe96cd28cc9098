//! The Redis protocol (RESP2 and RESP3) in front of the cluster: `raftkv serve
//! --redis-listen HOST:PORT` lets redis-cli, redis-benchmark and the Redis libraries of every
//! language talk to raftkv. When the node runs TLS, so does the listener, with the node's
//! certificate (or its own, `--redis-tls-cert`), and Redis clients present a certificate of
//! the cluster's CA (or `--redis-tls-ca`'s) unless `--redis-tls-auth-clients` says otherwise;
//! the bytes go through the same [`Transport`] as the node's other connections.
//!
//! [`Transport`]: crate::transport::Transport
//!
//! The listener ([`gateway`]) runs in the node's event loop and reaches the cluster as a
//! client does, with one session per Redis connection: exactly-once retries across leader
//! changes stay inside the server. On the leader, requests go straight to its replica; a node
//! that does not lead forwards them to the one that does, through the client protocol. [`resp`] reads commands and writes replies, [`commands`]
//! says what each command asks of the cluster, [`table`] lists them for `COMMAND`.

mod commands;
mod connection;
mod cursors;
mod gateway;
mod info;
mod pipeline;
mod refusals;
mod resp;
mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use raftkv_core::NodeId;
use tracing::info;

use crate::client::pool::ClerkPool;
use crate::server::{ConnectionLimits, Front};
use crate::tls::{ClientAuth, ClientTls, RedisTls};

/// The `serve` flags of the Redis listener.
#[derive(Debug, Args)]
pub(crate) struct RedisArgs {
    /// Also speak the Redis protocol (RESP2 and RESP3) here, e.g. 0.0.0.0:6379. Any node will
    /// do: commands go to the leader. Through TLS with the node's certificate when the node
    /// runs TLS, or with --redis-tls-cert (see --redis-tls-auth-clients); in the clear
    /// otherwise, or with --redis-plaintext, and then only on a loopback address unless
    /// --insecure-plaintext.
    /// Its connections share the client bounds (--max-client-connections,
    /// --client-idle-timeout-ms, --handshake-timeout-ms, --max-pending-connections,
    /// --max-reply-queue-bytes,
    /// --max-requests-per-connection, --max-frame-bytes).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) redis_listen: Option<SocketAddr>,
    /// Whether Redis clients must present a certificate of the cluster's CA, or of
    /// --redis-tls-ca (`redis-cli --tls --cacert ca.crt --cert client.crt --key client.key`):
    /// yes (default), optional (verified if presented), or no (TLS only encrypts). Other than
    /// yes on an address that is not loopback needs --redis-password-file, so that no one
    /// gets in unauthenticated.
    #[arg(long, value_enum, value_name = "yes|optional|no")]
    pub(crate) redis_tls_auth_clients: Option<ClientAuth>,
    /// The certificate the Redis listener presents instead of the node's (PEM, the chain
    /// after it), e.g. one of a public or company CA that Redis clients already trust; peers
    /// keep the cluster's CA. Needs --redis-tls-key. The listener then speaks TLS even if the
    /// node does not.
    #[arg(long, value_name = "FILE")]
    pub(crate) redis_tls_cert: Option<PathBuf>,
    /// The private key of --redis-tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) redis_tls_key: Option<PathBuf>,
    /// The CA certificate(s) that Redis clients' certificates must chain to (with
    /// --redis-tls-auth-clients yes or optional), instead of the cluster's CA.
    #[arg(long, value_name = "FILE")]
    pub(crate) redis_tls_ca: Option<PathBuf>,
    /// Speak Redis in the clear even though the node runs TLS: for clients on the same host,
    /// or behind a proxy that ends TLS. Only on a loopback address unless --insecure-plaintext.
    #[arg(long)]
    pub(crate) redis_plaintext: bool,
    /// A Redis command still without an answer from the cluster after this long is answered
    /// with an error (-CLUSTERDOWN, or -TRYAGAIN when the cluster was busy).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub(crate) redis_timeout_ms: u64,
    /// Commands of one connection sent to the cluster together at most: a pipelining client's
    /// commands go as one request (run in order, at one point, once) while the one before is
    /// answered. 1 sends them one at a time.
    #[arg(long, default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=raftkv_core::kv::MAX_BATCH_COMMANDS as u64))]
    pub(crate) redis_pipeline_depth: u64,
    /// SCAN cursors the node remembers (the newest); an older cursor is answered "invalid
    /// cursor".
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub(crate) redis_scan_cursors: usize,
    /// A file whose first line is the password Redis clients must give (AUTH, or HELLO with
    /// AUTH) before any other command. Without it, no password is asked.
    #[arg(long, value_name = "FILE")]
    pub(crate) redis_password_file: Option<PathBuf>,
}

/// Everything the listener needs.
#[derive(Clone, Debug)]
pub(crate) struct RedisConfig {
    pub(crate) listen: SocketAddr,
    /// The nodes' client addresses, this node's included.
    pub(crate) cluster: Vec<String>,
    /// This node's place in `cluster`: the pool's link there is local.
    pub(crate) own_position: usize,
    /// This node.
    pub(crate) own_id: NodeId,
    pub(crate) cluster_name: String,
    /// How the listener's clerks reach the cluster: TLS with the node's certificate, if it
    /// runs TLS.
    pub(crate) cluster_tls: Option<ClientTls>,
    /// The listener's own TLS (none: in the clear).
    pub(crate) listener_tls: Option<RedisTls>,
    pub(crate) limits: ConnectionLimits,
    /// Largest command, as the node's frame limit.
    pub(crate) max_command_bytes: usize,
    pub(crate) timeout: Duration,
    pub(crate) idle_timeout: Duration,
    /// Time from accept to the end of a TLS handshake.
    pub(crate) handshake_timeout: Duration,
    pub(crate) scan_cursors: usize,
    /// Commands of one connection in one request to the cluster at most.
    pub(crate) pipeline_depth: usize,
    pub(crate) password: Option<Vec<u8>>,
}

/// Reads the password file of `--redis-password-file`: its first line.
pub(crate) fn read_password(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read --redis-password-file {}: {e}", path.display()))?;
    let first = text.split(|byte| *byte == b'\n').next().unwrap_or_default();
    let password = first.strip_suffix(b"\r").unwrap_or(first);
    if password.is_empty() {
        return Err(format!("--redis-password-file {} holds no password", path.display()));
    }
    Ok(password.to_vec())
}

/// Binds the listener; the listener runs in the node's event loop, which the front returned
/// is handed to. Fails if the address cannot be served.
pub(crate) fn start(config: RedisConfig) -> Result<Box<dyn Front>, String> {
    let listener = mio::net::TcpListener::bind(config.listen)
        .map_err(|e| format!("cannot listen for Redis clients on {}: {e}", config.listen))?;
    let pool = ClerkPool::new(&config.cluster, &config.cluster_name, config.cluster_tls.clone())
        .map_err(|e| format!("redis listener: {e}"))?;
    let listen = config.listen;
    let tls = match config.listener_tls.as_ref().map(RedisTls::auth) {
        None => "",
        Some(ClientAuth::Required) => " --tls --cacert CA.crt --cert CLIENT.crt --key CLIENT.key",
        Some(ClientAuth::Optional | ClientAuth::Off) => " --tls --cacert CA.crt",
    };
    let gateway = gateway::Gateway::new(config, listener, pool)
        .map_err(|e| format!("redis listener on {listen}: {e}"))?;
    info!(%listen, "serving Redis clients (try: redis-cli -h {} -p {}{tls})", listen.ip(), listen.port());
    Ok(Box::new(gateway))
}
