//! Redis clients against a real three-node cluster: the `redis` crate on the nodes' Redis
//! listeners, followers included (they forward to the leader), every command of the table,
//! pipelining, binary values, and a leader killed under pipelined writes with the history
//! checked for linearizability.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{PATIENCE, TestCluster, connect_when_listening};
use raftkv_checker::{Command, KvModel, Operation, Verdict, check};
use redis::{Connection, RedisResult};

fn connect(cluster: &TestCluster, node: usize) -> Connection {
    let client = redis::Client::open(cluster.redis_url(node)).expect("a valid url");
    connect_when_listening(&client, node)
}

fn query<T: redis::FromRedisValue>(connection: &mut Connection, words: &[&[u8]]) -> RedisResult<T> {
    let mut command = redis::cmd(std::str::from_utf8(words[0]).expect("a name"));
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query(connection)
}

fn error_text(result: RedisResult<redis::Value>) -> String {
    result.expect_err("an error").to_string()
}

/// A node other than the leader: its listener forwards.
fn follower(cluster: &TestCluster) -> usize {
    let leader = cluster.wait_for_leader(None) as usize;
    if leader == 1 { 2 } else { 1 }
}

#[test]
fn every_command_answers_as_redis_does_through_a_follower() {
    let cluster = TestCluster::start_redis(3, &[]);
    let node = follower(&cluster);
    every_command_answers_as_redis_does(&cluster, node, "role:follower");
}

/// On the leader, commands go straight to its replica rather than through a connection.
#[test]
fn every_command_answers_as_redis_does_through_the_leader() {
    let cluster = TestCluster::start_redis(3, &[]);
    let leader = cluster.wait_for_leader(None) as usize;
    every_command_answers_as_redis_does(&cluster, leader, "role:leader");
}

/// Runs every command of the table through node `node`'s listener; its `INFO` says `role`.
fn every_command_answers_as_redis_does(cluster: &TestCluster, node: usize, role: &str) {
    let mut c = connect(cluster, node);
    let q = |c: &mut Connection, words: &[&str]| -> RedisResult<redis::Value> {
        let words: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
        query(c, &words)
    };
    let s = |c: &mut Connection, words: &[&str]| -> Option<String> {
        let words: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
        query(c, &words).expect("answered")
    };
    let n = |c: &mut Connection, words: &[&str]| -> i64 {
        let words: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
        query(c, &words).expect("answered")
    };
    assert_eq!(s(&mut c, &["PING"]).as_deref(), Some("PONG"));
    assert_eq!(s(&mut c, &["ECHO", "hi"]).as_deref(), Some("hi"));
    assert_eq!(s(&mut c, &["SELECT", "0"]).as_deref(), Some("OK"));
    assert!(error_text(q(&mut c, &["SELECT", "1"])).contains("out of range"));
    assert!(n(&mut c, &["CLIENT", "ID"]) > 0);
    assert_eq!(s(&mut c, &["CLIENT", "SETNAME", "tester"]).as_deref(), Some("OK"));
    assert_eq!(s(&mut c, &["CLIENT", "GETNAME"]).as_deref(), Some("tester"));
    assert!(n(&mut c, &["COMMAND", "COUNT"]) >= 25);

    assert_eq!(s(&mut c, &["GET", "k"]), None);
    assert_eq!(s(&mut c, &["SET", "k", "v1"]).as_deref(), Some("OK"));
    assert_eq!(s(&mut c, &["GET", "k"]).as_deref(), Some("v1"));
    assert_eq!(s(&mut c, &["SET", "k", "v2", "NX"]), None, "NX on a present key");
    assert_eq!(s(&mut c, &["SET", "other", "x", "XX"]), None, "XX on a missing key");
    assert_eq!(s(&mut c, &["SET", "k", "v3", "XX", "GET"]).as_deref(), Some("v1"));
    assert!(error_text(q(&mut c, &["SET", "k", "v", "EX", "10"])).contains("do not expire"));
    assert_eq!(s(&mut c, &["GETSET", "k", "v4"]).as_deref(), Some("v3"));
    assert_eq!(n(&mut c, &["SETNX", "k", "v5"]), 0);
    assert_eq!(n(&mut c, &["SETNX", "fresh", "f"]), 1);
    assert_eq!(n(&mut c, &["APPEND", "k", "+"]), 3);
    assert_eq!(n(&mut c, &["STRLEN", "k"]), 3);
    assert_eq!(n(&mut c, &["STRLEN", "nothing"]), 0);
    assert_eq!(n(&mut c, &["EXISTS", "k", "k", "nothing"]), 2);
    assert_eq!(s(&mut c, &["MSET", "a", "1", "b", "2", "c", "3"]).as_deref(), Some("OK"));
    let values: Vec<Option<String>> = query(&mut c, &[b"MGET", b"a", b"zz", b"c"]).unwrap();
    assert_eq!(values, [Some("1".to_string()), None, Some("3".to_string())]);
    assert_eq!(n(&mut c, &["INCR", "a"]), 2);
    assert_eq!(n(&mut c, &["INCRBY", "a", "40"]), 42);
    assert_eq!(n(&mut c, &["DECR", "a"]), 41);
    assert_eq!(n(&mut c, &["DECRBY", "counter", "5"]), -5);
    assert!(error_text(q(&mut c, &["INCR", "k"])).contains("not an integer"));
    assert_eq!(n(&mut c, &["CAS", "b", "2", "two"]), 1);
    assert_eq!(n(&mut c, &["CAS", "b", "2", "deux"]), 0);
    assert_eq!(s(&mut c, &["GET", "b"]).as_deref(), Some("two"));
    assert_eq!(n(&mut c, &["DBSIZE"]), 6);
    let keys: Vec<String> = query(&mut c, &[b"KEYS", b"*"]).unwrap();
    assert_eq!(keys, ["a", "b", "c", "counter", "fresh", "k"]);
    let prefixed: Vec<String> = query(&mut c, &[b"KEYS", b"c*"]).unwrap();
    assert_eq!(prefixed, ["c", "counter"]);
    assert!(error_text(q(&mut c, &["KEYS", "a?c"])).contains("prefix*"));
    assert_eq!(n(&mut c, &["DEL", "a", "nothing", "c"]), 2);
    assert_eq!(n(&mut c, &["UNLINK", "counter"]), 1);
    // INFO tells the node's own state, which a follower reaches once it applied the deletes.
    let deadline = Instant::now() + PATIENCE;
    let info = loop {
        let info: String = query(&mut c, &[b"INFO"]).unwrap();
        if info.contains("db0:keys=3") || Instant::now() > deadline {
            break info;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(info.contains(role) && info.contains("leader:"), "{info}");
    assert!(info.contains("db0:keys=3"), "{info}");
    let unknown = error_text(q(&mut c, &["FLUSHALL"]));
    assert!(unknown.contains("unknown command 'flushall'"), "{unknown}");
    assert!(error_text(q(&mut c, &["GET"])).contains("wrong number of arguments"));
}

#[test]
fn scan_pages_through_every_key_once_with_match_and_count() {
    let cluster = TestCluster::start_redis(3, &[]);
    let mut c = connect(&cluster, 1);
    let mut pipe = redis::pipe();
    for i in 0..250 {
        pipe.cmd("SET").arg(format!("user:{i:03}")).arg(i).ignore();
        pipe.cmd("SET").arg(format!("item:{i:03}")).arg(i).ignore();
    }
    pipe.query::<()>(&mut c).expect("the writes");
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(100)
            .query(&mut c)
            .expect("a page");
        assert!(keys.len() <= 100);
        seen.extend(keys);
        pages += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..250).map(|i| format!("user:{i:03}")).collect();
    assert_eq!(seen, expected, "every key once, in order");
    let iterated: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg("item:*")
        .clone()
        .iter(&mut c)
        .expect("iterates")
        .collect::<Result<_, _>>()
        .expect("every page");
    assert_eq!(iterated.len(), 250, "the crate's SCAN iterator follows the numeric cursors");
}

#[test]
fn pipelines_are_answered_in_order_and_values_are_binary_safe() {
    let cluster = TestCluster::start_redis(3, &[]);
    let mut c = connect(&cluster, follower(&cluster));
    let binary: Vec<u8> = (0..=255u8).chain(*b"\r\n$-1\r\n*0\r\n").collect();
    let binary_key: &[u8] = b"key\r\nwith\0bytes";
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("INCR").arg("counter");
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    pipe.cmd("SET").arg(binary_key).arg(&binary).ignore();
    pipe.cmd("GET").arg(binary_key);
    pipe.cmd("GET").arg("k499");
    let answers: Vec<redis::Value> = pipe.query(&mut c).expect("the pipeline");
    assert_eq!(answers.len(), 502);
    for (i, answer) in answers[..500].iter().enumerate() {
        let count: i64 = redis::from_redis_value(answer.clone()).expect("an integer");
        assert_eq!(count, i as i64 + 1, "answers in the order of the commands");
    }
    let read: Vec<u8> = redis::from_redis_value(answers[500].clone()).expect("bytes");
    assert_eq!(read, binary);
    let last: String = redis::from_redis_value(answers[501].clone()).expect("text");
    assert_eq!(last, "499");
}

/// On the leader, with batches of at most 7 commands: a pipeline's commands on one key take
/// effect in the order sent, each GET seeing the SET just before it and none after.
#[test]
fn a_pipeline_of_sets_and_gets_on_one_key_takes_effect_in_order_through_the_leader() {
    let cluster = TestCluster::start_redis(3, &["--redis-pipeline-depth", "7"]);
    let mut c = connect(&cluster, cluster.wait_for_leader(None) as usize);
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.cmd("SET").arg("k").arg(i);
        pipe.cmd("GET").arg("k");
        if i % 50 == 0 {
            pipe.cmd("PING").ignore();
            pipe.cmd("MGET").arg("k").arg("missing").ignore();
        }
    }
    let answers: Vec<(String, String)> = pipe.query(&mut c).expect("the pipeline");
    for (i, (set, get)) in answers.iter().enumerate() {
        assert_eq!((set.as_str(), get.as_str()), ("OK", i.to_string().as_str()), "pair {i}");
    }
    let stats: String = query(&mut c, &[b"INFO", b"stats"]).expect("INFO");
    let field = |name: &str| -> u64 {
        let line = stats.lines().find_map(|line| line.strip_prefix(name)).expect(name);
        line.trim_start_matches(':').trim().parse().expect("a number")
    };
    let (requests, commands) = (field("cluster_requests"), field("cluster_commands"));
    assert!(commands >= 600 + 6, "every SET, GET and MGET went to the cluster: {stats}");
    assert!(requests < commands / 2, "commands went in batches of up to 7: {stats}");
}

#[test]
fn resp3_hello_answers_a_map_and_nulls_change_shape() {
    let cluster = TestCluster::start_redis(3, &[]);
    let address =
        cluster.redis_url(1).trim_start_matches("redis://").trim_end_matches('/').to_string();
    let mut stream = TcpStream::connect(&address).expect("connects");
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    let exchange = |stream: &mut TcpStream, request: &[u8], until: &[u8]| -> String {
        stream.write_all(request).expect("sends");
        let mut answer = Vec::new();
        let mut buffer = [0; 4096];
        while !answer.ends_with(until) {
            let read = stream.read(&mut buffer).expect("reads");
            assert!(read > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buffer[..read]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert_eq!(exchange(&mut stream, b"GET nothing\r\n", b"\r\n"), "$-1\r\n");
    let hello = exchange(&mut stream, b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", b"*0\r\n");
    assert!(hello.starts_with("%7\r\n") && hello.contains("proto\r\n:3"), "{hello}");
    assert_eq!(exchange(&mut stream, b"GET nothing\r\n", b"\r\n"), "_\r\n");
    assert_eq!(exchange(&mut stream, b"QUIT\r\n", b"\r\n"), "+OK\r\n");
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).expect("closed"), 0, "QUIT closes");
}

#[test]
fn a_password_is_asked_before_any_command() {
    let dir = std::env::temp_dir().join(format!("raftkv-redis-password-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("password");
    std::fs::write(&file, "s3cret\n").expect("written");
    let flag = format!("--redis-password-file={}", file.display());
    let cluster = TestCluster::start_redis(1, &[&flag]);
    let mut c = connect(&cluster, 1);
    let refused = error_text(query(&mut c, &[b"GET", b"k"]));
    assert!(refused.contains("NOAUTH"), "{refused}");
    assert!(error_text(query(&mut c, &[b"AUTH", b"wrong"])).contains("WRONGPASS"));
    let ok: String = query(&mut c, &[b"AUTH", b"s3cret"]).expect("accepted");
    assert_eq!(ok, "OK");
    let value: Option<String> = query(&mut c, &[b"GET", b"k"]).expect("served");
    assert_eq!(value, None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The workload's history, as the checker reads it.
struct Recorder {
    origin: Instant,
    history: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn record(&self, client: u64, key: &str, command: Command, call: u64, ret: Option<u64>) {
        let mut history = self.history.lock().expect("not poisoned");
        let id = history.len() as u64;
        history.push(Operation { id, client, call, ret, key: key.to_string(), command });
    }
}

const KEYS: u64 = 5;

/// Records what a pipeline of (APPEND, GET) pairs on `keys` answered.
fn record_answers(
    recorder: &Recorder,
    client: u64,
    pairs: &[(String, String)],
    answers: &[redis::Value],
    call: u64,
) -> Vec<String> {
    let ret = recorder.now();
    let mut acknowledged = Vec::new();
    for (i, (key, token)) in pairs.iter().enumerate() {
        let appended = matches!(answers[2 * i], redis::Value::Int(_));
        let append = Command::Append { value: token.clone() };
        recorder.record(client, key, append, call, appended.then_some(ret));
        if appended {
            acknowledged.push(token.clone());
        }
        let output = match &answers[2 * i + 1] {
            redis::Value::Nil => Some(String::new()),
            value => redis::from_redis_value::<String>(value.clone()).ok(),
        };
        if let (true, Some(value)) = (appended, &output) {
            // The GET was sent after the APPEND on the same connection: it must see it.
            assert!(value.contains(token.as_str()), "GET {key} after APPEND {token}: {value}");
        }
        let known = output.is_some();
        recorder.record(client, key, Command::Get { output }, call, known.then_some(ret));
    }
    acknowledged
}

/// A client of the workload: pipelines of appends of unique tokens, each followed by a read,
/// through one node's listener, moving to the next node when its connection fails. Returns
/// the tokens whose appends were acknowledged.
fn run_client(urls: &[String], recorder: &Recorder, client: u64, until: Instant) -> Vec<String> {
    let mut node = client as usize % urls.len();
    let open = |node: usize| redis::Client::open(urls[node].as_str())?.get_connection();
    let mut connection = open(node).expect("connects");
    let mut acknowledged = Vec::new();
    let mut round = 0u64;
    while Instant::now() < until {
        round += 1;
        let pairs: Vec<(String, String)> = (0..3)
            .map(|k| {
                (format!("key{}", (client + round + k) % KEYS), format!("c{client}r{round}k{k};"))
            })
            .collect();
        let mut pipe = redis::pipe();
        for (key, token) in &pairs {
            pipe.cmd("APPEND").arg(key).arg(token);
            pipe.cmd("GET").arg(key);
        }
        let call = recorder.now();
        match pipe.query::<Vec<redis::Value>>(&mut connection) {
            Ok(answers) => {
                acknowledged.extend(record_answers(recorder, client, &pairs, &answers, call));
            }
            Err(_) => {
                // Each append may or may not have taken effect.
                for (key, token) in &pairs {
                    let append = Command::Append { value: token.clone() };
                    recorder.record(client, key, append, call, None);
                }
                let deadline = Instant::now() + PATIENCE;
                connection = loop {
                    node = (node + 1) % urls.len();
                    match open(node) {
                        Ok(connection) => break connection,
                        Err(_) if Instant::now() < deadline => {}
                        Err(error) => panic!("no node to reconnect to: {error}"),
                    }
                };
            }
        }
    }
    acknowledged
}

#[test]
fn a_leader_killed_under_pipelined_appends_loses_and_doubles_no_acknowledged_write() {
    let mut cluster = TestCluster::start_redis(3, &[]);
    let urls: Vec<String> = (1..=3).map(|node| cluster.redis_url(node)).collect();
    let recorder = Recorder { origin: Instant::now(), history: Mutex::new(Vec::new()) };
    let leader = cluster.wait_for_leader(None) as usize;
    let until = Instant::now() + Duration::from_secs(5);
    let (acknowledged, killed_at) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|client| {
                let (urls, recorder) = (&urls, &recorder);
                scope.spawn(move || run_client(urls, recorder, client, until))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1_500));
        let killed_at = recorder.now();
        cluster.kill(leader);
        let acknowledged: Vec<String> =
            workers.into_iter().flat_map(|worker| worker.join().expect("a worker")).collect();
        (acknowledged, killed_at)
    });
    cluster.wait_for_leader(Some(leader as u64));
    let survivor = if leader == 1 { 2 } else { 1 };
    let mut reader = connect(&cluster, survivor);
    let mut final_values = String::new();
    for key in (0..KEYS).map(|k| format!("key{k}")) {
        let call = recorder.now();
        let value: Option<String> = query(&mut reader, &[b"GET", key.as_bytes()]).expect("read");
        let value = value.unwrap_or_default();
        recorder.record(
            99,
            &key,
            Command::Get { output: Some(value.clone()) },
            call,
            Some(recorder.now()),
        );
        final_values.push_str(&value);
    }
    for token in &acknowledged {
        assert_eq!(final_values.matches(token.as_str()).count(), 1, "{token} applied once");
    }
    let history = recorder.history.into_inner().expect("not poisoned");
    let after_kill = history.iter().filter(|op| op.call > killed_at && op.ret.is_some()).count();
    assert!(after_kill > 10, "the workload went on after the kill ({after_kill} operations)");
    assert!(acknowledged.len() > 100, "{} acknowledged appends", acknowledged.len());
    let report = check(&history, &KvModel, Some(Duration::from_secs(120)));
    assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
}

/// The leader's own listener hands its requests straight to the replica, under the cap on
/// requests in flight that every client counts against: beyond it they are answered busy and
/// retried, none lost or doubled.
#[test]
fn the_leaders_listener_counts_against_the_cap_in_flight_and_its_busy_requests_are_retried() {
    const CONNECTIONS: usize = 12;
    const PIPELINES: usize = 10;
    let cluster = TestCluster::start_redis(3, &["--max-requests-in-flight", "2"]);
    let leader = cluster.wait_for_leader(None) as usize;
    std::thread::scope(|scope| {
        for worker in 0..CONNECTIONS {
            let mut c = connect(&cluster, leader);
            scope.spawn(move || {
                let key = format!("busy-{worker}");
                for round in 0..PIPELINES {
                    let mut pipe = redis::pipe();
                    for number in 0..5 {
                        pipe.cmd("APPEND").arg(&key).arg(format!("{round}.{number},")).ignore();
                    }
                    pipe.query::<()>(&mut c).expect("every append completes");
                }
                let value: String = query(&mut c, &[b"GET", key.as_bytes()]).expect("read");
                // Appends are not idempotent: a lost or doubled one shows in the value.
                let expected: String = (0..PIPELINES)
                    .flat_map(|round| (0..5).map(move |number| format!("{round}.{number},")))
                    .collect();
                assert_eq!(value, expected, "connection {worker}");
            });
        }
    });
    let connections = cluster.status_of(leader).connections;
    assert!(connections.refused.busy > 0, "{connections:?}");
    assert_eq!(connections.requests_in_flight, 0, "{connections:?}");
    assert!(cluster.log(leader).contains("answered a request busy"), "logged");
}

/// Reads what `stream` sends until it closes (or the patience runs out).
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `request` and reads the answer: one line.
fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).expect("sends");
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    let mut answer = Vec::new();
    let mut byte = [0];
    while !answer.ends_with(b"\r\n") {
        let read = stream.read(&mut byte).expect("reads");
        assert!(read > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A connection to node `node`'s Redis listener, once it listens.
fn connect_raw(cluster: &TestCluster, node: usize) -> TcpStream {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(cluster.redis_address(node)) {
            Ok(stream) => return stream,
            Err(error) if Instant::now() < deadline => {
                eprintln!("waiting for node {node}'s redis listener: {error}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("node {node}'s redis listener: {error}"),
        }
    }
}

/// A field of `INFO stats`, asked on `stream`.
fn stats_field(stream: &mut TcpStream, name: &str) -> u64 {
    let header = exchange(stream, b"INFO stats\r\n");
    let length: usize = header.trim_start_matches('$').trim().parse().expect("a bulk string");
    let mut body = vec![0; length + 2];
    stream.read_exact(&mut body).expect("the sections");
    let text = String::from_utf8_lossy(&body);
    let line = text.lines().find_map(|line| line.strip_prefix(&format!("{name}:")));
    line.unwrap_or_else(|| panic!("no {name} in {text}")).parse().expect("a number")
}

#[test]
fn at_the_cap_the_connection_silent_longest_is_closed_for_a_new_one() {
    let cluster = TestCluster::start_redis(1, &["--max-client-connections=2"]);
    let address = cluster.redis_address(1);
    let mut first = connect_raw(&cluster, 1);
    assert_eq!(exchange(&mut first, b"PING\r\n"), "+PONG\r\n");
    let mut second = TcpStream::connect(&address).expect("connects");
    assert_eq!(exchange(&mut second, b"PING\r\n"), "+PONG\r\n");
    let mut third = TcpStream::connect(&address).expect("connects");
    assert_eq!(exchange(&mut third, b"PING\r\n"), "+PONG\r\n", "served, not refused");
    assert_eq!(read_until_closed(&mut first), "", "the one silent longest made room");
    assert_eq!(exchange(&mut second, b"PING\r\n"), "+PONG\r\n");
    assert_eq!(stats_field(&mut third, "evicted_clients"), 1);
    assert_eq!(stats_field(&mut third, "rejected_connections"), 0);
    assert!(cluster.log(1).contains("closed a connection to make room"), "logged");
}

/// At the cap, a connection that has not given the password goes first, however recent, and
/// one waiting for its answers stays, however silent, while another may go.
#[test]
fn at_the_cap_unauthenticated_connections_go_first_and_busy_ones_stay() {
    const VALUE_BYTES: usize = 256 << 10;
    // Answers of 50 MiB, far more than the socket buffers and the reply queue hold: the
    // connection that asks for them and reads none keeps commands unanswered.
    const GETS: usize = 200;
    let dir = std::env::temp_dir().join(format!("raftkv-redis-evict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("password");
    std::fs::write(&file, "s3cret\n").expect("written");
    let password = format!("--redis-password-file={}", file.display());
    let cluster = TestCluster::start_redis(1, &[&password, "--max-client-connections=3"]);
    let address = cluster.redis_address(1);
    let auth = b"AUTH s3cret\r\n";

    let mut busy = connect_raw(&cluster, 1);
    assert_eq!(exchange(&mut busy, auth), "+OK\r\n");
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${VALUE_BYTES}\r\n").into_bytes();
    set.extend(std::iter::repeat_n(b'v', VALUE_BYTES));
    set.extend_from_slice(b"\r\n");
    assert_eq!(exchange(&mut busy, &set), "+OK\r\n");
    busy.write_all(&b"GET big\r\n".repeat(GETS)).expect("sends");
    let mut idle = TcpStream::connect(&address).expect("connects");
    assert_eq!(exchange(&mut idle, auth), "+OK\r\n");
    let mut stranger = TcpStream::connect(&address).expect("connects");
    assert!(exchange(&mut stranger, b"GET big\r\n").starts_with("-NOAUTH"));

    let mut newcomer = TcpStream::connect(&address).expect("connects");
    assert_eq!(exchange(&mut newcomer, auth), "+OK\r\n");
    assert_eq!(read_until_closed(&mut stranger), "", "unauthenticated: the first to go");
    let mut latest = TcpStream::connect(&address).expect("connects");
    assert_eq!(exchange(&mut latest, auth), "+OK\r\n");
    assert_eq!(read_until_closed(&mut idle), "", "the idle one, not the busy one");
    assert_eq!(stats_field(&mut latest, "evicted_clients"), 2);

    let answer_bytes = format!("${VALUE_BYTES}\r\n").len() + VALUE_BYTES + 2;
    let mut answers = vec![0; answer_bytes * GETS];
    busy.read_exact(&mut answers).expect("every answer");
    assert_eq!(exchange(&mut busy, b"PING\r\n"), "+PONG\r\n", "the busy one stayed");
    assert_eq!(exchange(&mut newcomer, b"PING\r\n"), "+PONG\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_connections_and_garbled_ones_are_closed() {
    let cluster = TestCluster::start_redis(1, &["--client-idle-timeout-ms=600"]);
    let address = cluster.redis_address(1);
    let mut silent = connect_raw(&cluster, 1);
    assert_eq!(exchange(&mut silent, b"PING\r\n"), "+PONG\r\n");
    assert_eq!(read_until_closed(&mut silent), "", "silent past the idle timeout: closed");
    let mut garbled = TcpStream::connect(&address).expect("connects");
    garbled.write_all(b"*1\r\n+PING\r\n").expect("sends");
    let answer = read_until_closed(&mut garbled);
    assert!(answer.starts_with("-ERR Protocol error: expected '$'"), "{answer}");
    assert_eq!(
        stats_field(&mut TcpStream::connect(&address).expect("connects"), "rejected_connections"),
        1
    );
}
