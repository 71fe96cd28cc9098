//! Where the cluster is: the options every client command, and the benchmark, take.

use std::time::Duration;

use clap::Args;

use crate::client::{self, Client, ClientOptions};

/// Addresses of the cluster `raftkv local` starts, the default for client commands.
pub(crate) const LOCAL_CLUSTER: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

/// Where the cluster is.
#[derive(Clone, Debug, Args)]
pub(crate) struct ClusterArgs {
    /// Comma-separated HOST:PORT of the nodes (any subset works; the leader is found).
    #[arg(long, env = "RAFTKV_CLUSTER", default_value = LOCAL_CLUSTER, value_name = "ADDR,...")]
    pub(crate) cluster: String,
    /// The cluster's name, as given to `serve --cluster-name`.
    #[arg(long, env = "RAFTKV_CLUSTER_NAME", default_value = "raftkv")]
    pub(crate) cluster_name: String,
    /// Give up on an operation after this many milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub(crate) timeout_ms: u64,
}

impl ClusterArgs {
    /// The addresses given, blanks left out.
    pub(crate) fn addresses(&self) -> Vec<String> {
        self.cluster
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The client's settings.
    pub(crate) fn options(&self) -> ClientOptions {
        ClientOptions {
            cluster_name: self.cluster_name.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            ..ClientOptions::default()
        }
    }

    /// Connects a client to the cluster.
    pub(crate) fn connect(&self) -> Result<Client, client::Error> {
        Client::connect_with(&self.addresses(), self.options())
    }
}
