//! TLS clusters of real processes: the CLI with certificates; plaintext clients, clients of
//! another CA, and certificates used to claim another node are refused and counted; forged
//! peer messages never reach the protocol; `serve` refuses unusable TLS files and plaintext
//! on a non-loopback address with a usage error.

mod common;

use std::io::Write;
use std::process::{Command, Output};
use std::time::Duration;

use common::raw::{self, Hello, Welcome};
use common::{TestCluster, wait_with_deadline};
use raftkv::{Client, ClientOptions, ClientTls};
use raftkv_core::raft::{Body, Message};
use raftkv_core::{LogId, LogIndex, NodeId, Term};

fn raftkv(args: &[&str], env: &[(&str, &std::path::Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_raftkv"));
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run raftkv")
}

#[test]
fn put_get_and_status_go_through_the_cli_with_certificates_and_not_without() {
    let cluster = TestCluster::start_tls(3, &[]);
    let addresses = cluster.addresses().join(",");
    let [ca, cert, key] = cluster.client_tls_files();
    let cluster_env = std::path::PathBuf::from(&addresses);
    let env = [
        ("RAFTKV_CLUSTER", cluster_env.as_path()),
        ("RAFTKV_TLS_CA", ca.as_path()),
        ("RAFTKV_TLS_CERT", cert.as_path()),
        ("RAFTKV_TLS_KEY", key.as_path()),
    ];
    assert!(raftkv(&["put", "greeting", "hello"], &env).status.success());
    let got = raftkv(&["get", "greeting"], &env);
    assert_eq!(String::from_utf8_lossy(&got.stdout), "hello");
    let status = raftkv(&["status", "--json"], &env);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.lines().filter(|line| line.contains("\"connections\"")).count(), 3, "{text}");

    // In the clear, the client gets no answer from a TLS node, and is told why that may be.
    let plain = raftkv(&["get", "greeting", "--timeout-ms", "1000"], &env[..1]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("if the cluster uses TLS") && stderr.contains("--tls-ca"), "{stderr}");
    // Some TLS flags but not all: a usage error.
    let partial = raftkv(&["get", "greeting"], &env[..2]);
    assert_eq!(partial.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("all three"));
}

#[test]
fn a_plaintext_client_and_a_client_of_another_ca_are_refused_and_counted() {
    let cluster = TestCluster::start_tls(3, &[]);
    let addresses = cluster.addresses();
    let quick =
        ClientOptions { connect_timeout: Duration::from_secs(1), ..ClientOptions::default() };
    assert!(Client::connect_with(&addresses, quick.clone()).is_err(), "plaintext accepted");

    let other = cluster.certs_dir().with_file_name("other-ca");
    let made = raftkv(&["certs", "init", other.to_str().unwrap(), "--nodes", "1"], &[]);
    assert!(made.status.success());
    let foreign = ClientTls::from_files(
        other.join("ca.crt"),
        other.join("client.crt"),
        other.join("client.key"),
    )
    .unwrap();
    let options = ClientOptions { tls: Some(foreign), ..quick };
    assert!(Client::connect_with(&addresses, options).is_err(), "a node of another CA accepted");
    // A client of another CA that trusts this cluster's nodes: the node refuses its certificate.
    let [ca, ..] = cluster.client_tls_files();
    let mut stream = raw::connect_tls(
        &addresses[0],
        1,
        &ca,
        &other.join("client.crt"),
        &other.join("client.key"),
    );
    assert!(raw::hello(&mut stream, &Hello::client()).is_none());
    // No certificate at all: a peer's hello in the clear.
    let mut plain = raw::connect(&addresses[0]);
    assert!(raw::hello(&mut plain, &Hello::peer(2, 1)).is_none());

    let status = cluster.wait_for_node(1, "counting failed handshakes", |status| {
        status.connections.refused.handshake_failed >= 3
    });
    assert_eq!(status.connections.refused.peer_identity_refused, 0);
    assert!(cluster.log(1).contains("TLS handshake failed"), "{}", cluster.log(1));
    cluster.client().put("still", "serving").unwrap();
}

#[test]
fn a_node_certificate_claiming_another_node_and_a_client_certificate_claiming_a_node_are_refused() {
    let cluster = TestCluster::start_tls(3, &[]);
    let leader = cluster.wait_for_leader(None);
    let target = leader % 3 + 1; // a follower
    let others: Vec<u64> = (1..=3).filter(|&id| id != target).collect();
    let term_before = cluster.status_of(target as usize).term;
    let certs = cluster.certs_dir();
    let address = cluster.addresses()[target as usize - 1].clone();
    let attempts = [(format!("node-{}", others[0]), others[1]), ("client".to_string(), others[0])];
    for (identity, claimed) in attempts {
        let cert = certs.join(format!("{identity}.crt"));
        let key = certs.join(format!("{identity}.key"));
        let mut stream = raw::connect_tls(&address, target, &certs.join("ca.crt"), &cert, &key);
        let welcome = raw::hello(&mut stream, &Hello::peer(claimed, target));
        assert!(
            matches!(&welcome, Some(Welcome::Refused { reason }) if reason.contains("certificate names")),
            "{identity} claiming node {claimed}: {welcome:?}"
        );
        // A forged append of a huge term, as once wedged a cluster: it never reaches the node.
        let forged = Message {
            from: NodeId(claimed),
            to: NodeId(target),
            term: Term(1 << 40),
            body: Body::Append {
                prev: LogId::new(LogIndex(0), Term(0)),
                entries: Vec::new(),
                commit: LogIndex(0),
                read_round: 0,
                recovery: None,
                pipelined: false,
            },
        };
        let _ = stream.write_all(&raw::frame(&forged));
        assert!(raw::is_closed(&mut stream), "the connection stays open");
    }
    let status = cluster.wait_for_node(target as usize, "counting the refused peers", |status| {
        status.connections.refused.peer_identity_refused >= 2
    });
    assert_eq!(status.term, term_before, "a forged term reached the node");
    assert!(cluster.log(target as usize).contains("certificate names"));
    cluster.client().put("still", "serving").unwrap();
}

#[test]
fn serve_refuses_plaintext_off_loopback_and_unusable_certificates_with_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("raftkv-serve-usage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    assert!(
        raftkv(&["certs", "init", certs.to_str().unwrap(), "--nodes", "1,2"], &[]).status.success()
    );
    let again = raftkv(&["certs", "init", certs.to_str().unwrap(), "--nodes", "1"], &[]);
    assert_eq!(again.status.code(), Some(2), "overwrote certificates");
    let serve = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_raftkv"));
        command.args(["serve", "--id", "1", "--peers", "1=0.0.0.0:1,2=127.0.0.1:2"]);
        command.arg("--data").arg(dir.join("data")).args(extra);
        let mut child = command.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let status = wait_with_deadline(&mut child, common::PATIENCE).expect("serve exits");
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status.code(), stderr)
    };
    let (code, stderr) = serve(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--insecure-plaintext"), "{stderr}");
    let file = |name: &str| certs.join(name).to_str().unwrap().to_string();
    let (ca, cert2, key1, key2) =
        (file("ca.crt"), file("node-2.crt"), file("node-1.key"), file("node-2.key"));
    let (code, stderr) = serve(&["--tls-ca", &ca, "--tls-cert", &cert2, "--tls-key", &key2]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not node 1"), "{stderr}");
    let cert1 = file("node-1.crt");
    let (code, stderr) = serve(&["--tls-ca", &ca, "--tls-cert", &cert1, "--tls-key", &key2]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used together"), "{stderr}");
    let (code, stderr) =
        serve(&["--tls-ca", &file("missing.crt"), "--tls-cert", &cert1, "--tls-key", &key1]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
