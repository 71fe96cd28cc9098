//! Three replicas of the key-value store in one process, on threads and channels, serving
//! three clients while each node in turn crashes and recovers from its (in-memory) disk.
//!
//! ```sh
//! cargo run -p raftkv-core --example threads
//! ```

mod threaded;

use std::thread;
use std::time::Duration;

use raftkv_core::NodeId;
use raftkv_core::kv::{KvCommand, KvReply, KvStore};
use threaded::Cluster;

const CLIENTS: u64 = 3;
const WRITES: u64 = 100;

fn key(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

fn main() {
    let mut cluster = Cluster::start(3, KvStore::default);
    thread::scope(|scope| {
        for client_number in 0..CLIENTS {
            let mut client = cluster.client();
            scope.spawn(move || {
                for i in 0..WRITES {
                    // Each client owns a key, and they all append to a shared one.
                    let own = KvCommand::Put {
                        key: key(&format!("client-{client_number}")),
                        value: i.to_string().into_bytes(),
                    };
                    let mark = format!("{client_number}:{i},").into_bytes();
                    let shared = KvCommand::Append { key: key("shared"), value: mark };
                    assert_eq!(client.call(own), Ok(KvReply::Done));
                    let appended = client.call(shared);
                    assert!(matches!(appended, Ok(KvReply::Length(_))), "{appended:?}");
                }
            });
        }
        // Meanwhile, each node in turn crashes and restarts from its disk.
        for id in 1..=3 {
            thread::sleep(Duration::from_millis(300));
            cluster.restart(NodeId(id));
        }
    });

    let mut reader = cluster.client();
    for client_number in 0..CLIENTS {
        let own = KvCommand::Get { key: key(&format!("client-{client_number}")) };
        let last = (WRITES - 1).to_string().into_bytes();
        assert_eq!(reader.call(own), Ok(KvReply::Value(Some(last))));
    }
    let Ok(KvReply::Value(Some(shared))) = reader.call(KvCommand::Get { key: key("shared") })
    else {
        panic!("the shared key is missing")
    };
    let shared = String::from_utf8(shared).expect("the clients wrote text");
    for client_number in 0..CLIENTS {
        // Every append of a client is there exactly once, in the order it made them.
        let marks: Vec<&str> = shared
            .split_terminator(',')
            .filter(|mark| mark.starts_with(&format!("{client_number}:")))
            .collect();
        let expected: Vec<String> = (0..WRITES).map(|i| format!("{client_number}:{i}")).collect();
        assert_eq!(marks, expected, "the appends of client {client_number}");
    }
    println!("{} operations, each applied exactly once, across 3 restarts", 2 * CLIENTS * WRITES);
    cluster.stop();
}
