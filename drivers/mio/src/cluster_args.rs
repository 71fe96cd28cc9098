//! Where the cluster is and how to reach it: the options every client command, and the
//! benchmark, take.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::certs;
use crate::client::{Client, ClientOptions};
use crate::failure::Failure;
use crate::tls::{ClientTls, TlsError, TlsFiles};

/// Addresses of the cluster `raftkv local` starts, the default for client commands.
pub(crate) const LOCAL_CLUSTER: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

/// The addresses of `nodes` nodes on loopback from `base_port` on, and the `--peers` value
/// naming them 1, 2, ...: the clusters `raftkv local` and `raftkv bench --spawn-nodes` start.
pub(crate) fn loopback_cluster(nodes: u16, base_port: u16) -> (Vec<String>, String) {
    let addresses: Vec<String> =
        (0..nodes).map(|i| format!("127.0.0.1:{}", u32::from(base_port) + u32::from(i))).collect();
    let peers = addresses
        .iter()
        .enumerate()
        .map(|(i, address)| format!("{}={address}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    (addresses, peers)
}

/// Where `raftkv local` keeps its data by default.
pub(crate) fn local_data_dir() -> PathBuf {
    std::env::temp_dir().join("raftkv-local")
}

/// Where `raftkv local` keeps the certificates of the cluster in `data`.
pub(crate) fn local_certs_dir(data: &std::path::Path) -> PathBuf {
    data.join("certs")
}

/// Where the cluster is.
#[derive(Clone, Debug, Args)]
pub(crate) struct ClusterArgs {
    /// Comma-separated HOST:PORT of the nodes (any subset works; the leader is found).
    #[arg(
        long,
        env = "RAFTKV_CLUSTER",
        default_value = LOCAL_CLUSTER,
        value_name = "HOST:PORT,...",
        value_parser = parse_cluster
    )]
    pub(crate) cluster: String,
    /// The cluster's name, as given to `serve --cluster-name`.
    #[arg(long, env = "RAFTKV_CLUSTER_NAME", default_value = "raftkv")]
    pub(crate) cluster_name: String,
    /// Give up on an operation after this many milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub(crate) timeout_ms: u64,
    /// The cluster's CA certificate: connect with TLS (with --tls-cert and --tls-key).
    /// Without the three, the quick-start cluster's certificates are used when the cluster is
    /// the quick-start one and they exist; otherwise the connection is in the clear.
    #[arg(long, env = "RAFTKV_TLS_CA", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// This client's certificate, signed by the cluster's CA (`client.crt` of `certs init`).
    #[arg(long, env = "RAFTKV_TLS_CERT", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// This client's private key (`client.key` of `certs init`).
    #[arg(long, env = "RAFTKV_TLS_KEY", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
}

/// Checks `--cluster`: one or more HOST:PORT, comma-separated (a usage error otherwise).
fn parse_cluster(text: &str) -> Result<String, String> {
    let mut addresses = text.split(',').map(str::trim).filter(|a| !a.is_empty()).peekable();
    if addresses.peek().is_none() {
        return Err("expected HOST:PORT of one or more nodes, comma-separated".to_string());
    }
    for address in addresses {
        crate::server::check_address(address)?;
    }
    Ok(text.to_string())
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

    /// The TLS files given, or the quick-start cluster's for the quick-start cluster.
    fn tls_files(&self) -> Result<Option<TlsFiles>, TlsError> {
        let given =
            TlsFiles::from_parts(self.tls_ca.clone(), self.tls_cert.clone(), self.tls_key.clone())?;
        if given.is_some() || self.cluster != LOCAL_CLUSTER {
            return Ok(given);
        }
        let dir = local_certs_dir(&local_data_dir());
        let (cert, key) = certs::client_paths(&dir);
        let files = TlsFiles { ca: certs::ca_path(&dir), cert, key };
        let complete = files.ca.exists() && files.cert.exists() && files.key.exists();
        Ok(complete.then_some(files))
    }

    /// The client's TLS, if any.
    pub(crate) fn tls(&self) -> Result<Option<ClientTls>, TlsError> {
        self.tls_files()?.as_ref().map(ClientTls::load).transpose()
    }

    /// The client's settings.
    pub(crate) fn options(&self) -> Result<ClientOptions, TlsError> {
        Ok(ClientOptions {
            cluster_name: self.cluster_name.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            tls: self.tls()?,
            ..ClientOptions::default()
        })
    }

    /// Connects a client to the cluster.
    pub(crate) fn connect(&self) -> Result<Client, Failure> {
        Ok(Client::connect_with(&self.addresses(), self.options()?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_must_be_host_and_port_pairs() {
        assert!(parse_cluster("127.0.0.1:7001, node-2:7001,").is_ok());
        for bad in ["127.0.0.1", "", " , ", "127.0.0.1:7001,node-2"] {
            let refused = parse_cluster(bad).unwrap_err();
            assert!(refused.contains("HOST:PORT"), "{bad}: {refused}");
        }
    }
}
