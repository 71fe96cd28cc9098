//! Ordered scans on a real cluster: `Client::scan` pages and `raftkv list`.

mod common;

use common::TestCluster;
use raftkv::Scan;

#[test]
fn scans_page_in_key_order_and_list_prints_them() {
    let cluster = TestCluster::start(3);
    let mut client = cluster.client();
    for key in ["user:2", "user:1", "item:1", "user:3", "zebra"] {
        client.put(key, format!("v-{key}")).expect("put");
    }
    client.put("bin", [0xffu8, 0x00]).expect("put");
    let mut scan = Scan {
        start: Vec::new(),
        end: None,
        prefix: b"user:".to_vec(),
        limit: 2,
        with_values: true,
    };
    let first = client.scan(&scan).expect("a page");
    assert_eq!(first.keys, [b"user:1".to_vec(), b"user:2".to_vec()]);
    assert_eq!(first.values, [b"v-user:1".to_vec(), b"v-user:2".to_vec()]);
    scan.start = first.next.expect("more keys");
    let second = client.scan(&scan).expect("a page");
    assert_eq!(second.keys, [b"user:3".to_vec()]);
    assert_eq!(second.next, None);

    let listed = cluster.cli(&["list", "--prefix", "user:", "--limit", "2"]);
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "user:1\tv-user:1\nuser:2\tv-user:2\n");
    let all = cluster.cli(&["list", "--json"]);
    assert!(all.status.success(), "{all:?}");
    let lines: Vec<String> =
        String::from_utf8_lossy(&all.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], r#"{"key":"bin","value_hex":"ff00"}"#);
    assert_eq!(lines[5], r#"{"key":"zebra","value":"v-zebra"}"#);
    let from = cluster.cli(&["list", "--start", "user:3"]);
    assert_eq!(String::from_utf8_lossy(&from.stdout), "user:3\tv-user:3\nzebra\tv-zebra\n");
}
