//! `raftkv certs init`: a cluster's certificate authority, a certificate for each node and one
//! for clients, with rcgen.
//!
//! A node's certificate names it `node-N.raftkv` (see `tls::identity`) and serves both to
//! accept connections and to dial peers; the client certificate only dials. `--hosts` adds
//! the host names and addresses clients dial to the nodes' certificates, for clients that
//! check them (Redis clients over TLS do). Keys are written
//! with mode 0600. A directory that already holds the CA keeps it: new node certificates are
//! signed by it, so a node can be added to a running cluster.

use core::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use raftkv_core::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::tls::identity::{node_name, parse_node_name};

/// Options of `raftkv certs`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  raftkv certs init certs --nodes 1,2,3          a CA, and certificates for nodes 1-3 and clients
  raftkv certs init certs --nodes 4              node 4's, signed by the CA already in certs
  raftkv certs init certs --nodes 1,2,3 --hosts localhost,127.0.0.1,kv.example.com
                                                 node certificates Redis clients accept there")]
pub(crate) struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Write ca.crt and ca.key (unless DIR has them: then they sign the rest), node-N.crt and
    /// node-N.key for each node, and client.crt and client.key (unless DIR has them).
    Init {
        /// Where to write the files (created if missing).
        dir: PathBuf,
        /// The node ids, comma-separated: 1,2,3.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<u64>,
        /// Host names (no wildcards) and IP addresses that clients dial, comma-separated, also named in
        /// every node certificate written: Redis clients over TLS check that the certificate
        /// names the host they dial (raftkv's own clients check the node id instead).
        #[arg(long, value_delimiter = ',', value_name = "HOSTS")]
        hosts: Vec<String>,
        /// Replace every file, the CA included: a new CA for the whole cluster.
        #[arg(long)]
        force: bool,
    },
}

/// What to do with files that exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Keep the CA and the client's files; refuse to replace a node's.
    Refuse,
    /// Keep every file; write only the missing ones.
    Keep,
    /// Replace everything, the CA included.
    Replace,
}

/// Why certificates could not be written.
#[derive(Debug)]
pub(crate) enum CertsError {
    /// Files that would be replaced (without `--force`).
    Exists(Vec<PathBuf>),
    /// A node id of 0.
    ZeroNode,
    /// A host of `--hosts` that is neither a DNS name nor an IP address, or is a node's name
    /// (which would let one node pass for another).
    BadHost {
        /// The host.
        host: String,
        /// Why.
        why: &'static str,
    },
    /// A file could not be read or written.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// rcgen could not make a key or a certificate, or read the CA.
    Generate(rcgen::Error),
}

impl fmt::Display for CertsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertsError::Exists(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "refusing to overwrite {} (use --force to replace every file)",
                    paths.join(", ")
                )
            }
            CertsError::ZeroNode => f.write_str("--nodes: node ids are positive"),
            CertsError::BadHost { host, why } => write!(f, "--hosts: {host:?} {why}"),
            CertsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CertsError::Generate(error) => write!(f, "cannot make a certificate: {error}"),
        }
    }
}

impl std::error::Error for CertsError {}

impl From<rcgen::Error> for CertsError {
    fn from(error: rcgen::Error) -> CertsError {
        CertsError::Generate(error)
    }
}

/// Runs `raftkv certs`.
pub(crate) fn run(args: &CertsArgs) -> Result<(), CertsError> {
    let CertsCommand::Init { dir, nodes, hosts, force } = &args.command;
    let nodes: Vec<NodeId> = nodes.iter().copied().map(NodeId).collect();
    let existing = if *force { Existing::Replace } else { Existing::Refuse };
    let written = init(dir, &nodes, hosts, existing)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The files of a directory made by `init`.
pub(crate) fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.crt")
}

/// Node `id`'s certificate and key in `dir`.
pub(crate) fn node_paths(dir: &Path, id: NodeId) -> (PathBuf, PathBuf) {
    (dir.join(format!("node-{}.crt", id.0)), dir.join(format!("node-{}.key", id.0)))
}

/// The client's certificate and key in `dir`.
pub(crate) fn client_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("client.crt"), dir.join("client.key"))
}

/// Writes the CA, each node's files (naming `hosts` too) and the client's into `dir`; returns
/// what it wrote.
pub(crate) fn init(
    dir: &Path,
    nodes: &[NodeId],
    hosts: &[String],
    existing: Existing,
) -> Result<Vec<PathBuf>, CertsError> {
    if nodes.iter().any(|node| node.0 == 0) {
        return Err(CertsError::ZeroNode);
    }
    hosts.iter().try_for_each(|host| check_host(host))?;
    fs::create_dir_all(dir).map_err(|source| CertsError::Io { path: dir.into(), source })?;
    let present = |path: &Path| existing != Existing::Replace && path.exists();
    let node_files: Vec<(NodeId, PathBuf, PathBuf)> = nodes
        .iter()
        .map(|&id| {
            let (cert, key) = node_paths(dir, id);
            (id, cert, key)
        })
        .filter(|(_, cert, key)| !(existing == Existing::Keep && present(cert) && present(key)))
        .collect();
    if existing == Existing::Refuse {
        let clashes: Vec<PathBuf> = node_files
            .iter()
            .flat_map(|(_, cert, key)| [cert.clone(), key.clone()])
            .filter(|path| path.exists())
            .collect();
        if !clashes.is_empty() {
            return Err(CertsError::Exists(clashes));
        }
    }
    let mut written = Vec::new();
    let (ca_cert, ca_key) = (ca_path(dir), dir.join("ca.key"));
    let issuer = if present(&ca_cert) && present(&ca_key) {
        let key = KeyPair::from_pem(&read(&ca_key)?)?;
        Issuer::from_ca_cert_pem(&read(&ca_cert)?, key)?
    } else {
        let key = KeyPair::generate()?;
        let params = ca_params()?;
        let certificate = params.self_signed(&key)?;
        write(&ca_cert, &certificate.pem(), false, &mut written)?;
        write(&ca_key, &key.serialize_pem(), true, &mut written)?;
        Issuer::new(params, key)
    };
    for (id, cert, key) in node_files {
        let params = leaf_params(&node_name(id), hosts, true)?;
        issue(&params, &issuer, &cert, &key, &mut written)?;
    }
    let (cert, key) = client_paths(dir);
    if !(present(&cert) && present(&key)) {
        issue(&leaf_params("client.raftkv", &[], false)?, &issuer, &cert, &key, &mut written)?;
    }
    Ok(written)
}

/// Whether `host` may be named in a node's certificate: a DNS name or an IP address, and not a
/// node's name.
fn check_host(host: &str) -> Result<(), CertsError> {
    let bad = |why| Err(CertsError::BadHost { host: host.to_string(), why });
    if rustls::pki_types::ServerName::try_from(host).is_err() {
        return bad("is neither a DNS name nor an IP address");
    }
    // As certificate checks compare names: whatever the case, and with or without the root's
    // trailing dot.
    let compared = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if parse_node_name(&compared).is_some() {
        return bad("is a node's name, which only that node's certificate holds");
    }
    Ok(())
}

/// The CA: it signs certificates and nothing else.
fn ca_params() -> Result<CertificateParams, CertsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "raftkv cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params);
    Ok(params)
}

/// A node's certificate (it accepts and dials) or the client's (it dials only), naming `name`
/// first, then `hosts`.
fn leaf_params(name: &str, hosts: &[String], node: bool) -> Result<CertificateParams, CertsError> {
    let names: Vec<String> =
        std::iter::once(name).chain(hosts.iter().map(String::as_str)).map(str::to_string).collect();
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = if node {
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    set_validity(&mut params);
    Ok(params)
}

/// Valid from the start of last year for ten years: rotation is a new CA or new certificates
/// (see README), not expiry.
fn set_validity(params: &mut CertificateParams) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    // A year is 365.2425 days on average; an estimate off by a day at New Year does not
    // matter, since validity starts a year before.
    let year = 1970 + (seconds / 31_556_952) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

fn issue(
    params: &CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    cert: &Path,
    key: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), CertsError> {
    let key_pair = KeyPair::generate()?;
    let certificate = params.signed_by(&key_pair, issuer)?;
    write(cert, &certificate.pem(), false, written)?;
    write(key, &key_pair.serialize_pem(), true, written)
}

fn read(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|source| CertsError::Io { path: path.into(), source })
}

/// Writes `text` to `path`, readable by its owner only if `secret`.
fn write(
    path: &Path,
    text: &str,
    secret: bool,
    written: &mut Vec<PathBuf>,
) -> Result<(), CertsError> {
    let mode = if secret { 0o600 } else { 0o644 };
    let io_error = |source| CertsError::Io { path: path.into(), source };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io_error)?;
    // The mode above applies to a new file only; a replaced one may have been wider.
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_error)?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io_error)?;
    written.push(path.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::identity::named_nodes;
    use crate::tls::{NodeTls, TlsFiles};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("raftkv-certs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn node_files(dir: &Path, id: u64) -> TlsFiles {
        let (cert, key) = node_paths(dir, NodeId(id));
        TlsFiles { ca: ca_path(dir), cert, key }
    }

    #[test]
    fn init_writes_node_certificates_that_name_their_node_and_keys_only_the_owner_reads() {
        let dir = temp_dir("init");
        let written = init(&dir, &[NodeId(1), NodeId(2)], &[], Existing::Refuse).unwrap();
        assert_eq!(written.len(), 8, "{written:?}");
        for id in [1, 2] {
            let files = node_files(&dir, id);
            let chain = files.chain().unwrap();
            assert_eq!(named_nodes(&chain[0]), vec![NodeId(id)]);
            NodeTls::load(&files, NodeId(id)).unwrap();
            let mode = fs::metadata(&files.key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            // Node 1's certificate does not make node 2.
            let other = NodeTls::load(&files, NodeId(3 - id)).unwrap_err().to_string();
            assert!(other.contains("names node(s)"), "{other}");
        }
        assert_eq!(fs::metadata(dir.join("ca.key")).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn init_refuses_to_replace_a_node_but_adds_one_with_the_same_ca_and_force_replaces_all() {
        let dir = temp_dir("again");
        init(&dir, &[NodeId(1)], &[], Existing::Refuse).unwrap();
        let ca = fs::read(ca_path(&dir)).unwrap();
        let refused = init(&dir, &[NodeId(1)], &[], Existing::Refuse).unwrap_err();
        assert!(matches!(&refused, CertsError::Exists(paths) if paths.len() == 2), "{refused}");
        let written = init(&dir, &[NodeId(2)], &[], Existing::Refuse).unwrap();
        assert_eq!(written, vec![node_paths(&dir, NodeId(2)).0, node_paths(&dir, NodeId(2)).1]);
        assert_eq!(fs::read(ca_path(&dir)).unwrap(), ca, "the CA is kept");
        // Node 2's certificate chains to the same CA as node 1's: node 2 loads with it.
        NodeTls::load(&node_files(&dir, 2), NodeId(2)).unwrap();
        assert!(init(&dir, &[NodeId(1), NodeId(2)], &[], Existing::Keep).unwrap().is_empty());
        init(&dir, &[NodeId(1)], &[], Existing::Replace).unwrap();
        assert_ne!(fs::read(ca_path(&dir)).unwrap(), ca, "--force makes a new CA");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hosts_are_named_by_node_certificates_but_a_node_name_is_refused() {
        let dir = temp_dir("hosts");
        let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
        init(&dir, &[NodeId(1)], &hosts, Existing::Refuse).unwrap();
        let chain = node_files(&dir, 1).chain().unwrap();
        let parsed = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
        let names: Vec<&str> = parsed.valid_dns_names().collect();
        assert_eq!(names, ["node-1.raftkv", "localhost"]);
        let ip = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        parsed.verify_is_valid_for_subject_name(&ip).unwrap();
        assert_eq!(named_nodes(&chain[0]), vec![NodeId(1)], "still node 1, and only it");
        for bad in ["node-1.raftkv", "NODE-1.RAFTKV", "node-1.raftkv.", "two words", ""] {
            let refused = init(&dir, &[NodeId(2)], &[bad.to_string()], Existing::Refuse);
            assert!(matches!(&refused, Err(CertsError::BadHost { host, .. }) if host == bad));
        }
        assert!(!node_paths(&dir, NodeId(2)).0.exists(), "nothing written");
        fs::remove_dir_all(&dir).unwrap();
    }
}
