//! The Redis listener through TLS, with real processes and the `redis` crate's rustls client:
//! commands and pipelines through a follower and the leader, a client without a certificate
//! refused when one is required (and let in with the password when it is optional), a client
//! in the clear told so and counted, one that stalls in its handshake closed (at the timeout,
//! or for a newer one at the cap), QUIT ending with a close_notify (after every answer, for a
//! slow reader too), and the flags that would let anyone in refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{PATIENCE, TestCluster, connect_when_listening, wait_with_deadline};
use redis::{ClientTlsConfig, Connection, RedisResult, TlsCertificates};

/// A TLS client of node `node`'s Redis listener, with the client certificate or without.
fn tls_client(cluster: &TestCluster, node: usize, with_certificate: bool) -> redis::Client {
    let [ca, cert, key] = cluster.client_tls_files();
    let read = |path| std::fs::read(path).expect("a certificate file");
    let client_tls = with_certificate
        .then(|| ClientTlsConfig { client_cert: read(cert), client_key: read(key) });
    let certificates = TlsCertificates { client_tls, root_cert: Some(read(ca)) };
    redis::Client::build_with_tls(cluster.redis_url(node), certificates).expect("a TLS client")
}

/// A connection through TLS with the client certificate, once the listener answers.
fn connect(cluster: &TestCluster, node: usize) -> Connection {
    connect_when_listening(&tls_client(cluster, node, true), node)
}

/// A field of `INFO stats`.
fn stat(connection: &mut Connection, field: &str) -> u64 {
    let text: String = redis::cmd("INFO").arg("stats").query(connection).expect("INFO");
    let prefix = format!("{field}:");
    let line = text.lines().find_map(|line| line.strip_prefix(&prefix));
    line.unwrap_or_else(|| panic!("no {field} in {text}")).trim().parse().expect("a number")
}

#[test]
fn set_get_and_pipelines_go_through_tls_on_a_follower_and_the_leader() {
    let cluster = TestCluster::start_redis_tls(3, &[]);
    let leader = cluster.wait_for_leader(None) as usize;
    let follower = if leader == 1 { 2 } else { 1 };
    for (node, role) in [(follower, "follower"), (leader, "leader")] {
        let mut c = connect(&cluster, node);
        let key = format!("greeting-{role}");
        let set: String = redis::cmd("SET").arg(&key).arg("hello").query(&mut c).expect("SET");
        assert_eq!(set, "OK");
        let got: String = redis::cmd("GET").arg(&key).query(&mut c).expect("GET");
        assert_eq!(got, "hello", "through the {role}");
        // Larger than a TLS record, and binary: split and joined again on the way.
        let value: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut pipe = redis::pipe();
        for i in 0..200 {
            pipe.cmd("SET").arg(format!("{role}-{i}")).arg(i).ignore();
        }
        pipe.cmd("SET").arg(format!("{role}-big")).arg(&value).ignore();
        for i in 0..200 {
            pipe.cmd("GET").arg(format!("{role}-{i}"));
        }
        pipe.cmd("GET").arg(format!("{role}-big"));
        let (numbers, big): (Vec<u32>, Vec<u8>) = {
            let mut answers: Vec<redis::Value> = pipe.query(&mut c).expect("the pipeline");
            let big =
                redis::from_redis_value(answers.pop().expect("the big value")).expect("bytes");
            (redis::from_redis_value(redis::Value::Array(answers)).expect("numbers"), big)
        };
        assert_eq!(numbers, (0..200).collect::<Vec<u32>>(), "in order, through the {role}");
        assert_eq!(big, value, "binary-safe through the {role}");
    }
}

/// A TLS stream to node 1's Redis listener with the client certificate, spoken by hand: it
/// reads exactly what the node sends, and when.
fn raw_tls_stream(
    cluster: &TestCluster,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let [ca, cert, key] = cluster.client_tls_files();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).expect("the CA")).expect("a trust anchor");
    let chain = vec![CertificateDer::from_pem_file(cert).expect("the client's certificate")];
    let key = PrivateKeyDer::from_pem_file(key).expect("the client's key");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("a client configuration");
    let name = ServerName::try_from("127.0.0.1").expect("an address");
    let tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("TLS");
    let socket = TcpStream::connect(cluster.redis_address(1)).expect("connects");
    socket.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    rustls::StreamOwned::new(tls, socket)
}

/// QUIT through TLS ends with a close_notify: a client can tell the end of the answers from a
/// truncation (rustls reports an EOF without one as an error).
#[test]
fn quit_through_tls_ends_with_a_close_notify() {
    let cluster = TestCluster::start_redis_tls(1, &[]);
    drop(connect(&cluster, 1));
    let mut stream = raw_tls_stream(&cluster);
    stream.write_all(b"PING\r\nQUIT\r\n").expect("sends");
    let mut answers = String::new();
    stream.read_to_string(&mut answers).expect("the answers, then a close_notify");
    assert_eq!(answers, "+PONG\r\n+OK\r\n");
}

/// A client that pipelines large GETs and QUIT, then reads slowly, gets every answer whole:
/// the node closes only once the TLS records rustls still holds have left too. (Whether the
/// last answers are still in rustls when the node has nothing more to hand it depends on the
/// kernel's socket buffers: this exercises the path, it cannot force it.)
#[test]
fn quit_after_a_large_answer_to_a_slow_tls_reader_loses_nothing() {
    const GETS: usize = 8;
    let cluster = TestCluster::start_redis_tls(1, &[]);
    let value: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let ok: String =
        redis::cmd("SET").arg("big").arg(&value).query(&mut connect(&cluster, 1)).expect("SET");
    assert_eq!(ok, "OK");
    let mut stream = raw_tls_stream(&cluster);
    // More answers than the kernel's socket buffers hold.
    stream.write_all(&b"GET big\r\n".repeat(GETS)).expect("sends");
    stream.write_all(b"QUIT\r\n").expect("sends");
    // The scenario, not a wait for something: a reader slower than the node, so that the
    // socket stays full while the node still has records to send.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut answers = Vec::new();
    let mut chunk = [0; 16 << 10];
    loop {
        match stream.read(&mut chunk).expect("every answer, then a close_notify") {
            0 => break,
            read => answers.extend_from_slice(&chunk[..read]),
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut answer = format!("${}\r\n", value.len()).into_bytes();
    answer.extend_from_slice(&value);
    answer.extend_from_slice(b"\r\n");
    let mut expected = answer.repeat(GETS);
    expected.extend_from_slice(b"+OK\r\n");
    assert_eq!(answers.len(), expected.len(), "the answers' length");
    assert!(answers == expected, "the answers' bytes");
}

#[test]
fn clients_without_a_certificate_of_the_ca_are_refused_unless_optional_with_a_password() {
    let cluster = TestCluster::start_redis_tls(1, &[]);
    let mut admitted = connect(&cluster, 1);
    let before = stat(&mut admitted, "tls_refused_connections");
    let anonymous = tls_client(&cluster, 1, false);
    let refused: RedisResult<String> =
        anonymous.get_connection().and_then(|mut c| redis::cmd("PING").query(&mut c));
    assert!(refused.is_err(), "a client without a certificate was served: {refused:?}");
    let after = stat(&mut admitted, "tls_refused_connections");
    assert_eq!(after, before + 1, "the refusal is counted");
    assert!(cluster.log(1).contains("peer sent no certificates"), "{}", cluster.log(1));

    // A certificate of another CA: refused and counted too.
    let dir = std::env::temp_dir().join(format!("raftkv-redis-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let other = dir.join("other-ca");
    let made = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["certs", "init", other.to_str().expect("a path"), "--nodes", "1"])
        .output()
        .expect("certs init");
    assert!(made.status.success());
    let read = |path: std::path::PathBuf| std::fs::read(path).expect("a certificate file");
    let certificates = TlsCertificates {
        client_tls: Some(ClientTlsConfig {
            client_cert: read(other.join("client.crt")),
            client_key: read(other.join("client.key")),
        }),
        root_cert: Some(read(cluster.client_tls_files()[0].clone())),
    };
    let stranger = redis::Client::build_with_tls(cluster.redis_url(1), certificates).unwrap();
    let refused: RedisResult<String> =
        stranger.get_connection().and_then(|mut c| redis::cmd("PING").query(&mut c));
    assert!(refused.is_err(), "a client of another CA was served: {refused:?}");
    assert_eq!(stat(&mut admitted, "tls_refused_connections"), before + 2);

    let password = dir.join("password");
    std::fs::write(&password, "s3cret\n").expect("written");
    let flags = [
        "--redis-tls-auth-clients=optional".to_string(),
        format!("--redis-password-file={}", password.display()),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let optional = TestCluster::start_redis_tls(1, &flags);
    let mut c = tls_client(&optional, 1, false).get_connection().expect("let in without one");
    let refused: RedisResult<String> = redis::cmd("GET").arg("k").query(&mut c);
    assert!(refused.expect_err("a password first").to_string().contains("NOAUTH"));
    let ok: String = redis::cmd("AUTH").arg("s3cret").query(&mut c).expect("the password");
    assert_eq!(ok, "OK");
    let ok: String = redis::cmd("SET").arg("k").arg("v").query(&mut c).expect("served");
    assert_eq!(ok, "OK");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_in_the_clear_on_the_tls_port_is_told_and_counted_and_logged_rarely() {
    let cluster = TestCluster::start_redis_tls(1, &["--handshake-timeout-ms=500"]);
    let mut admitted = connect(&cluster, 1);
    let before = stat(&mut admitted, "tls_refused_connections");
    let rejected_before = stat(&mut admitted, "rejected_connections");
    let started = Instant::now();
    let attempts = 20;
    for _ in 0..attempts {
        let mut plain = TcpStream::connect(cluster.redis_address(1)).expect("connects");
        plain.set_read_timeout(Some(PATIENCE)).expect("a timeout");
        plain.write_all(b"*1\r\n$4\r\nPING\r\n").expect("sends");
        let mut answer = String::new();
        plain.read_to_string(&mut answer).expect("an answer, then the close");
        assert!(answer.starts_with("-ERR this port speaks TLS"), "{answer:?}");
    }
    let elapsed = started.elapsed();
    assert_eq!(stat(&mut admitted, "tls_refused_connections"), before + attempts);
    assert_eq!(stat(&mut admitted, "rejected_connections"), rejected_before + attempts);
    // Every refusal counted; the log gets at most one line a second.
    let logged = cluster.log(1).matches("spoke in the clear to the TLS port").count() as u64;
    assert!(
        (1..=elapsed.as_secs() + 1).contains(&logged),
        "{logged} lines in {elapsed:?} for {attempts} refusals"
    );

    // A handshake that stops after a record's first bytes holds up no one else, and is closed
    // after the handshake timeout, and counted.
    let mut stalled = stalled_handshake(&cluster);
    let still: String = redis::cmd("PING").query(&mut admitted).expect("served meanwhile");
    assert_eq!(still, "PONG");
    stalled.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    let mut nothing = Vec::new();
    assert_eq!(stalled.read_to_end(&mut nothing).expect("closed, not timed out"), 0);
    assert_eq!(stat(&mut admitted, "tls_refused_connections"), before + attempts + 1);
}

/// A TLS connection that sends a record's first bytes and stops there.
fn stalled_handshake(cluster: &TestCluster) -> TcpStream {
    let mut stalled = TcpStream::connect(cluster.redis_address(1)).expect("connects");
    stalled.write_all(&[0x16, 0x03, 0x01]).expect("sends");
    stalled
}

#[test]
fn handshakes_beyond_the_pending_cap_close_the_oldest_one_still_going() {
    // A handshake timeout far beyond the test: only the cap closes handshakes here.
    let flags = ["--max-pending-connections=2", "--handshake-timeout-ms=60000"];
    let cluster = TestCluster::start_redis_tls(1, &flags);
    // A handshake that ended no longer counts.
    let mut admitted = connect(&cluster, 1);
    let before = stat(&mut admitted, "tls_refused_connections");
    let mut oldest = stalled_handshake(&cluster);
    let mut second = stalled_handshake(&cluster);
    // Accepted in the order they connected: the third makes room by closing the oldest.
    let _third = stalled_handshake(&cluster);
    oldest.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    // Closed with its first bytes unread (the node may evict it before reading them), the
    // kernel resets the connection instead of ending it: both say it was closed.
    let closed = oldest.read_to_end(&mut Vec::new()).map_err(|error| error.kind());
    assert!(
        matches!(closed, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
        "closed for the third, not {closed:?}"
    );
    assert_eq!(stat(&mut admitted, "tls_refused_connections"), before + 1);
    second.set_nonblocking(true).expect("non-blocking");
    let still = second.read(&mut [0; 16]).map_err(|error| error.kind());
    assert_eq!(still, Err(std::io::ErrorKind::WouldBlock), "the second is still open");
}

#[test]
fn serve_refuses_redis_flags_that_would_let_anyone_in() {
    let dir = std::env::temp_dir().join(format!("raftkv-redis-tls-usage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    let made = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["certs", "init", certs.to_str().expect("a path"), "--nodes", "1"])
        .output()
        .expect("certs init");
    assert!(made.status.success());
    let file = |name: &str| certs.join(name).to_str().expect("a path").to_string();
    let tls = [
        "--tls-ca".to_string(),
        file("ca.crt"),
        "--tls-cert".to_string(),
        file("node-1.crt"),
        "--tls-key".to_string(),
        file("node-1.key"),
    ];
    let serve = |extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_raftkv"));
        command.args(["serve", "--id", "1", "--listen", "127.0.0.1:1", "--data"]);
        command.arg(dir.join("data")).args(extra).stderr(Stdio::piped());
        let mut child = command.spawn().expect("serve starts");
        let status = wait_with_deadline(&mut child, PATIENCE).expect("serve exits");
        let mut stderr = String::new();
        child.stderr.as_mut().expect("piped").read_to_string(&mut stderr).expect("read");
        (status.code(), stderr)
    };
    let public = ["--redis-listen", "0.0.0.0:1"];
    let (code, stderr) = serve(&[&public[..], &["--redis-tls-auth-clients", "no"]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("apply to a Redis listener that speaks TLS"), "{stderr}");
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    for auth in ["no", "optional"] {
        let flags = [&tls[..], &public, &["--redis-tls-auth-clients", auth]].concat();
        let (code, stderr) = serve(&flags);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("without client certificates and without a password"), "{stderr}");
    }
    let (code, stderr) = serve(&[&tls[..], &public, &["--redis-plaintext"]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("refusing to serve Redis clients in the clear"), "{stderr}");

    // The listener's own certificate: with its key, and a CA to check clients against.
    let loopback = ["--redis-listen", "127.0.0.1:1"];
    let cert = format!("--redis-tls-cert={}", file("node-1.crt"));
    let key = format!("--redis-tls-key={}", file("node-1.key"));
    let ca = format!("--redis-tls-ca={}", file("ca.crt"));
    let (code, stderr) = serve(&[&tls[..], &loopback, &[&cert]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--redis-tls-cert and --redis-tls-key go together"), "{stderr}");
    let (code, stderr) =
        serve(&[&tls[..], &loopback, &[&cert, &key, "--redis-plaintext"]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("give one or the other"), "{stderr}");
    let (code, stderr) = serve(&[&loopback[..], &[&cert, &key]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("give --redis-tls-ca"), "{stderr}");
    let no = ["--redis-tls-auth-clients", "no"];
    let (code, stderr) = serve(&[&tls[..], &loopback, &[&cert, &key, &ca], &no].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--redis-tls-ca verifies"), "{stderr}");
    let (code, stderr) = serve(&[&loopback[..], &[&ca]].concat());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("apply to a Redis listener that speaks TLS"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `raftkv certs init` of a CA apart from the cluster's, in `dir`: its `node-1.crt` names
/// 127.0.0.1, as a certificate of a public or company CA would name the host clients dial,
/// and its `client.crt` is a client certificate of that CA.
fn another_ca(dir: &std::path::Path) {
    let made = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["certs", "init", dir.to_str().expect("a path"), "--nodes", "1"])
        .args(["--hosts", "localhost,127.0.0.1"])
        .output()
        .expect("certs init");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
}

/// A TLS client of node `node`'s Redis listener that trusts the CA of `root` and presents the
/// certificate and key of `pair`, if given.
fn client_of(
    cluster: &TestCluster,
    node: usize,
    root: &std::path::Path,
    pair: Option<[&std::path::Path; 2]>,
) -> redis::Client {
    let url = format!("rediss://{}/", cluster.redis_address(node));
    let read = |path: &std::path::Path| std::fs::read(path).expect("a certificate file");
    let client_tls =
        pair.map(|[cert, key]| ClientTlsConfig { client_cert: read(cert), client_key: read(key) });
    let certificates = TlsCertificates { client_tls, root_cert: Some(read(root)) };
    redis::Client::build_with_tls(url, certificates).expect("a TLS client")
}

/// Whether `client` gets its PING answered.
fn served(client: &redis::Client) -> bool {
    let pong: RedisResult<String> =
        client.get_connection().and_then(|mut c| redis::cmd("PING").query(&mut c));
    pong.is_ok()
}

#[test]
fn the_redis_port_presents_its_own_certificate_while_peers_keep_the_cluster_ca() {
    let dir = std::env::temp_dir().join(format!("raftkv-redis-own-cert-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let company = dir.join("company");
    another_ca(&company);
    let (company_ca, company_cert, company_key) =
        (company.join("ca.crt"), company.join("client.crt"), company.join("client.key"));
    let own = [
        format!("--redis-tls-cert={}", company.join("node-1.crt").display()),
        format!("--redis-tls-key={}", company.join("node-1.key").display()),
    ];
    let own: Vec<&str> = own.iter().map(String::as_str).collect();
    let cluster = TestCluster::start_redis_tls(3, &own);
    let leader = cluster.wait_for_leader(None) as usize;
    let follower = if leader == 1 { 2 } else { 1 };
    let [cluster_ca, cert, key] = cluster.client_tls_files();

    // Clients trust the company's CA and, by default, present a certificate of the cluster's.
    let client = client_of(&cluster, follower, &company_ca, Some([&cert, &key]));
    let mut c = connect_when_listening(&client, follower);
    let ok: String = redis::cmd("SET").arg("k").arg("v").query(&mut c).expect("SET");
    assert_eq!(ok, "OK", "through the follower: it reached the leader with the cluster's CA");
    let got: String = redis::cmd("GET").arg("k").query(&mut c).expect("GET");
    assert_eq!(got, "v");
    let cluster_only = client_of(&cluster, follower, &cluster_ca, Some([&cert, &key]));
    assert!(!served(&cluster_only), "the node's certificate is no longer presented");
    let company_client =
        client_of(&cluster, follower, &company_ca, Some([&company_cert, &company_key]));
    assert!(!served(&company_client), "clients are still checked against the cluster's CA");
    assert!(!served(&client_of(&cluster, follower, &company_ca, None)), "a certificate is asked");

    // With --redis-tls-ca, the company's client certificates instead.
    let ca = format!("--redis-tls-ca={}", company_ca.display());
    let single = TestCluster::start_redis_tls(1, &[own[0], own[1], &ca]);
    let company_client = client_of(&single, 1, &company_ca, Some([&company_cert, &company_key]));
    let mut c = connect_when_listening(&company_client, 1);
    let pong: String = redis::cmd("PING").query(&mut c).expect("PING");
    assert_eq!(pong, "PONG");
    let [_, cert, key] = single.client_tls_files();
    assert!(!served(&client_of(&single, 1, &company_ca, Some([&cert, &key]))));

    // A node in the clear: its Redis listener speaks TLS all the same.
    let plain = TestCluster::start_redis(1, &[own[0], own[1], "--redis-tls-auth-clients=no"]);
    let mut c = connect_when_listening(&client_of(&plain, 1, &company_ca, None), 1);
    let pong: String = redis::cmd("PING").query(&mut c).expect("PING");
    assert_eq!(pong, "PONG");
    let _ = std::fs::remove_dir_all(&dir);
}
