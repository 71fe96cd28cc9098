//! Every resource a connection can make a node spend is bounded, on real processes: idle and
//! silent connections by caps and timeouts, replies a client never reads by the reply queue
//! cap (status replies included), unfinished frames by the frame timeout and the client
//! buffer budget, a forged snapshot by the snapshot size cap, and requests beyond the cap in flight by a
//! "busy" answer the clients retry. Each is counted in the
//! node's status, which the tests read rather than timing anything.

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;

use common::TestCluster;
use common::raw::{self, Hello, Welcome};
use raftkv_core::kv::KvCommand;
use raftkv_core::protocol::{ClientRequest, Op};
use raftkv_core::raft::{Body, Membership, Message};
use raftkv_core::{ClientId, LogId, LogIndex, NodeId, RequestId};

fn client_connection(address: &str) -> TcpStream {
    let mut stream = raw::connect(address);
    let welcome = raw::hello(&mut stream, &Hello::client());
    assert!(matches!(welcome, Some(Welcome::Accepted { .. })), "{welcome:?}");
    stream
}

#[test]
fn thousands_of_idle_connections_are_capped_and_closed_while_puts_go_on() {
    let cluster = TestCluster::start_with(
        3,
        &[
            "--max-pending-connections",
            "32",
            "--max-client-connections",
            "16",
            "--client-idle-timeout-ms",
            "1500",
            "--handshake-timeout-ms",
            "1000",
        ],
    );
    let leader = cluster.wait_for_leader(None) as usize;
    let address = cluster.addresses()[leader - 1].clone();
    let silent: Vec<TcpStream> =
        (0..5_000).map(|_| TcpStream::connect(&address).expect("connect")).collect();
    let mut idle: Vec<TcpStream> = (0..40).map(|_| client_connection(&address)).collect();
    let mut client = cluster.client();
    client.put("during", "the flood").unwrap();
    assert_eq!(client.get("during").unwrap().as_deref(), Some(&b"the flood"[..]));

    let status = cluster.status_of(leader);
    let connections = &status.connections;
    assert!(connections.pending <= 32, "{connections:?}");
    assert!(connections.clients <= 16, "{connections:?}");
    // Every silent connection but the last few was evicted or timed out.
    let closed = connections.refused.pending_evicted + connections.refused.handshake_timed_out;
    assert!(closed >= 5_000 - 32, "{connections:?}");
    // Each idle client beyond the cap made room by evicting another (or one timed out first).
    let made_room = connections.refused.clients_evicted + connections.refused.idle_closed;
    assert!(made_room >= 40 - 16, "{connections:?}");
    // What stays is closed by the timeouts.
    cluster.wait_for_node(leader, "closing idle and silent connections", |status| {
        let refused = &status.connections.refused;
        refused.idle_closed >= 1 && refused.handshake_timed_out >= 1
    });
    assert!(raw::is_closed(idle.last_mut().unwrap()), "an idle client stays connected");
    drop(silent);
    client.put("after", "the flood").unwrap();
}

/// At the cap, a new client makes room by closing the connection silent longest, but one
/// still owed replies stays while an idle one can go.
#[test]
fn at_the_client_cap_an_idle_connection_goes_before_a_busy_one_that_is_silent_longer() {
    const REPLY_BYTES: usize = 24 << 20;
    let cluster = TestCluster::start_with(
        1,
        &["--max-client-connections", "2", "--max-reply-queue-bytes", &(64u64 << 20).to_string()],
    );
    let address = cluster.addresses()[0].clone();
    let mut busy = client_connection(&address);
    busy.write_all(&raw::status_query()).unwrap();
    let one_reply = raw::read_frame(&mut busy).expect("a status reply").len() + 4;
    let queries = REPLY_BYTES / one_reply;
    // More replies than the sockets hold, none read: the node keeps the rest queued.
    busy.write_all(&raw::status_query().repeat(queries)).unwrap();
    cluster.wait_for_node(1, "queueing replies for the busy client", |status| {
        status.connections.largest_reply_queue_bytes >= 8 << 20
    });
    let mut idle = client_connection(&address);
    let _newcomer = client_connection(&address);
    assert!(raw::is_closed(&mut idle), "the idle client made room");
    // The busy one kept every reply: a closed connection's queue would have been dropped.
    let mut replies = BufReader::new(&mut busy);
    for read in 0..queries {
        assert!(raw::read_frame(&mut replies).is_some(), "{read} of {queries} replies, then none");
    }
    // The status query's own connection may make room too.
    let evicted = cluster.status_of(1).connections.refused.clients_evicted;
    assert!(evicted >= 1, "counted: {evicted}");
}

#[test]
fn a_client_that_never_reads_its_status_replies_is_disconnected_at_the_reply_cap() {
    const CAP: u64 = 256 << 10;
    let cluster = TestCluster::start_with(3, &["--max-reply-queue-bytes", &CAP.to_string()]);
    let address = cluster.addresses()[0].clone();
    let mut stream = client_connection(&address);
    stream.set_write_timeout(Some(common::PATIENCE)).unwrap();
    // Some 30 MB of status replies asked for, none read.
    let queries = raw::status_query().repeat(200_000);
    let _ = stream.write_all(&queries);
    let status = cluster.wait_for_node(1, "closing the client that does not read", |status| {
        status.connections.refused.unread_replies_closed >= 1
    });
    let largest = status.connections.largest_reply_queue_bytes;
    assert!(largest <= CAP + 4096, "{largest} bytes of replies queued");
    assert!(raw::is_closed(&mut stream));
}

#[test]
fn pipelined_requests_wait_at_the_cap_in_the_socket_and_every_one_is_answered() {
    const CAP: u64 = 64;
    const REQUESTS: u64 = 5_000;
    let cluster = TestCluster::start_with(3, &["--max-requests-per-connection", &CAP.to_string()]);
    let leader = cluster.wait_for_leader(None) as usize;
    let mut stream = client_connection(&cluster.addresses()[leader - 1]);
    let mut requests = Vec::new();
    for number in 1..=REQUESTS {
        let request = ClientRequest {
            client: ClientId(0),
            request: RequestId(number),
            op: Op::Command(KvCommand::Get { key: b"k".to_vec() }),
        };
        requests.extend(raw::frame(&raw::ClientFrame::Request { tag: 0, request }));
    }
    stream.write_all(&requests).unwrap();
    for answered in 0..REQUESTS {
        assert!(raw::read_frame(&mut stream).is_some(), "{answered} answers, then none");
    }
    let connections = cluster.status_of(leader).connections;
    assert!(connections.most_requests_in_flight_on_a_connection <= CAP, "{connections:?}");
    assert!(connections.refused.held_at_request_cap >= 1, "{connections:?}");
    assert_eq!(connections.requests_in_flight, 0, "{connections:?}");
    assert_eq!(connections.held_back, 0, "{connections:?}");
}

#[test]
fn unfinished_and_oversized_frames_are_dropped_at_their_limits() {
    let cluster = TestCluster::start_with(3, &["--frame-timeout-ms", "1000"]);
    let address = cluster.addresses()[0].clone();
    // A frame announcing 2 GiB is refused at its length.
    let mut oversized = client_connection(&address);
    oversized.write_all(&[0xff, 0xff, 0xff, 0x7f]).unwrap();
    assert!(raw::is_closed(&mut oversized));
    // A frame that never completes is dropped at the frame timeout.
    let mut unfinished = client_connection(&address);
    unfinished.write_all(&(4u32 << 20).to_le_bytes()).unwrap();
    unfinished.write_all(&vec![0; 1 << 20]).unwrap();
    assert!(raw::is_closed(&mut unfinished), "an unfinished frame is kept");
    cluster.wait_for_node(1, "counting both", |status| {
        let refused = &status.connections.refused;
        refused.bad_frames >= 1 && refused.frame_timed_out >= 1
    });
    cluster.client().put("still", "serving").unwrap();
}

#[test]
fn large_unfinished_frames_on_many_connections_stay_within_the_client_buffer_budget() {
    const BUDGET: u64 = 8 << 20;
    let cluster = TestCluster::start_with(3, &["--max-client-buffer-bytes", &BUDGET.to_string()]);
    let address = cluster.addresses()[0].clone();
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut holder = client_connection(&address);
        holder.set_write_timeout(Some(common::PATIENCE)).unwrap();
        let _ = holder.write_all(&(12u32 << 20).to_le_bytes());
        let _ = holder.write_all(&vec![0; 3 << 20]);
        holders.push(holder);
    }
    let status = cluster.wait_for_node(1, "holding the buffer budget", |status| {
        status.connections.refused.buffer_budget_closed >= 1
    });
    assert!(status.connections.client_buffered_bytes <= BUDGET, "{:?}", status.connections);
    cluster.client().put("still", "serving").unwrap();
}

#[test]
fn a_forged_snapshot_announcing_a_terabyte_is_refused_before_the_replica_sees_it() {
    // In the clear (loopback), where a peer's hello is taken at its word: the cap still holds.
    let cluster = TestCluster::start(3);
    let leader = cluster.wait_for_leader(None);
    let target = leader % 3 + 1;
    let term = cluster.status_of(target as usize).term;
    let mut stream = raw::connect(&cluster.addresses()[target as usize - 1]);
    let welcome = raw::hello(&mut stream, &Hello::peer(leader, target));
    assert!(matches!(welcome, Some(Welcome::Accepted { .. })), "{welcome:?}");
    let forged = Message {
        from: NodeId(leader),
        to: NodeId(target),
        term,
        body: Body::InstallSnapshot {
            last: LogId::new(LogIndex(1 << 20), term),
            membership: Membership::with_voters([1, 2, 3].map(NodeId)),
            total: 1 << 40,
            offset: 0,
            chunk: vec![0; 64 << 10],
        },
    };
    stream.write_all(&raw::frame(&forged)).unwrap();
    assert!(raw::is_closed(&mut stream));
    cluster.wait_for_node(target as usize, "refusing the snapshot", |status| {
        status.connections.refused.snapshot_too_large == 1
    });
    cluster.client().put("still", "serving").unwrap();
}

#[test]
fn beyond_the_cap_in_flight_requests_are_answered_busy_and_retried_none_lost_or_doubled() {
    const CAP: u64 = 4;
    const CLIENTS: usize = 24;
    const APPENDS: usize = 30;
    let cluster = TestCluster::start_with(3, &["--max-requests-in-flight", &CAP.to_string()]);
    let leader = cluster.wait_for_leader(None) as usize;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let mut client = cluster.client();
            std::thread::spawn(move || {
                let key = format!("busy-{worker}");
                for number in 0..APPENDS {
                    client.append(&key, format!("{number},")).expect("every append completes");
                }
                client.get(&key).expect("the read completes")
            })
        })
        .collect();
    for (worker, handle) in workers.into_iter().enumerate() {
        let value = handle.join().expect("the client thread");
        // Appends are not idempotent: a lost or doubled one shows in the value.
        let expected: String = (0..APPENDS).map(|number| format!("{number},")).collect();
        assert_eq!(value.as_deref(), Some(expected.as_bytes()), "client {worker}");
    }
    let connections = cluster.status_of(leader).connections;
    assert!(connections.refused.busy > 0, "{connections:?}");
    assert_eq!(connections.requests_in_flight, 0, "{connections:?}");
    assert_eq!(connections.refused.held_at_request_cap, 0, "{connections:?}");
    assert!(cluster.log(leader).contains("answered a request busy"), "logged");
}
