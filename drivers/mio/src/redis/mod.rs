//! The Redis protocol (RESP2 and RESP3) in front of the cluster: `raftkv serve
//! --redis-listen HOST:PORT` lets redis-cli, redis-benchmark and the Redis libraries of every
//! language talk to raftkv.
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
use crate::tls::ClientTls;

/// The `serve` flags of the Redis listener.
#[derive(Debug, Args)]
pub(crate) struct RedisArgs {
    /// Also speak the Redis protocol (RESP2 and RESP3, in the clear) here, e.g.
    /// 127.0.0.1:6379. Any node will do: commands go to the leader. Only a loopback address
    /// unless --insecure-plaintext. Its connections share the client bounds
    /// (--max-client-connections, --client-idle-timeout-ms, --max-reply-queue-bytes,
    /// --max-requests-per-connection, --max-frame-bytes).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) redis_listen: Option<SocketAddr>,
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
    pub(crate) tls: Option<ClientTls>,
    pub(crate) limits: ConnectionLimits,
    /// Largest command, as the node's frame limit.
    pub(crate) max_command_bytes: usize,
    pub(crate) timeout: Duration,
    pub(crate) idle_timeout: Duration,
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
    let pool = ClerkPool::new(&config.cluster, &config.cluster_name, config.tls.clone())
        .map_err(|e| format!("redis listener: {e}"))?;
    let listen = config.listen;
    let gateway = gateway::Gateway::new(config, listener, pool)
        .map_err(|e| format!("redis listener on {listen}: {e}"))?;
    info!(%listen, "serving Redis clients (try: redis-cli -h {} -p {})", listen.ip(), listen.port());
    Ok(Box::new(gateway))
}
