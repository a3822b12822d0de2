//! Cluster routing against a real 3-node redis-server cluster on loopback:
//! every key goes to its owner, each node gets its share, -MOVED and -ASK
//! are followed and counted, and the total stays exactly -n.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start_cluster() -> Option<Vec<Redis>> {
    if !have_redis() {
        return None;
    }
    let nodes: Vec<Redis> = (0..3)
        .map(|_| {
            Redis::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "{dir}/nodes.conf",
            ])
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli --cluster create");
    assert!(status.success(), "cluster create failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes
        .iter()
        .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    {
        assert!(
            Instant::now() < deadline,
            "cluster did not reach cluster_state:ok"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(nodes)
}

fn reset(nodes: &[Redis]) {
    for n in nodes {
        n.cli(&["FLUSHALL"]);
        n.cli(&["CONFIG", "RESETSTAT"]);
    }
}

#[test]
fn routes_every_key_to_its_owner_and_follows_redirects() {
    let Some(nodes) = start_cluster() else { return };
    let seed = nodes[0].port.to_string();
    let n = 3000u64;

    // 1. With the topology from CLUSTER SLOTS: no redirects, every key
    // written once (sequential keys 0..n), each node holding its share.
    reset(&nodes);
    let path = json_path("cluster");
    bench_line(&format!("-p {seed} --cluster -t set -n 3000 -r 3000 --distribution sequential -c 6 -P 4 --threads 2 --json {}", path.display()));
    let j = read_json(&path);
    assert_eq!(j["requests"], n);
    assert_eq!(j["error_count"], 0, "{}", j["errors"]);
    assert_eq!(j["redirects"]["moved"], 0);
    let calls: Vec<u64> = nodes.iter().map(|x| x.calls("set")).collect();
    let keys: Vec<u64> = nodes.iter().map(|x| x.dbsize()).collect();
    assert_eq!(calls.iter().sum::<u64>(), n, "{calls:?}");
    assert_eq!(calls, keys, "each node stored exactly the keys it was sent");
    for c in &calls {
        // Three equal slot ranges: about a third each.
        assert!((n / 5..n / 2).contains(c), "uneven share {calls:?}");
    }

    // 2. Starting from a map with every slot on the seed: keys owned by the
    // other nodes come back -MOVED, the map is corrected slot by slot, and
    // each request is retried on the owner, so the count stays exact.
    reset(&nodes);
    let path = json_path("stale");
    bench_line(&format!("-p {seed} --cluster --cluster-stale-map --io uring -t set -n 3000 -r 3000 --distribution sequential -c 4 -P 8 --json {}", path.display()));
    let j = read_json(&path);
    assert_eq!(j["requests"], n);
    assert_eq!(j["error_count"], 0, "{}", j["errors"]);
    let moved = j["redirects"]["moved"].as_u64().unwrap();
    assert!(moved > 0 && moved < n, "moved {moved}");
    let calls: Vec<u64> = nodes.iter().map(|x| x.calls("set")).collect();
    let keys: Vec<u64> = nodes.iter().map(|x| x.dbsize()).collect();
    assert_eq!(calls.iter().sum::<u64>(), n, "{calls:?}");
    assert_eq!(keys.iter().sum::<u64>(), n, "{keys:?}");
    assert_eq!(calls, keys);

    // 3. GET of those keys: all hits, from the owners.
    let path = json_path("get");
    bench_line(&format!(
        "-p {seed} --cluster -t get -n 3000 -r 3000 -c 6 -P 4 --json {}",
        path.display()
    ));
    let j = read_json(&path);
    assert_eq!(
        (j["hits"].as_u64(), j["misses"].as_u64()),
        (Some(n), Some(0))
    );
}

#[test]
fn follows_ask_during_a_slot_migration() {
    let Some(nodes) = start_cluster() else { return };
    reset(&nodes);
    // The key the template writes is key:000000000000; move its slot from
    // its owner to another node half-way (MIGRATING / IMPORTING), so the
    // owner answers -ASK for a key it does not hold.
    let slot = nodes[0].cli(&["CLUSTER", "KEYSLOT", "key:000000000000"]);
    let ids: Vec<String> = nodes.iter().map(|x| x.cli(&["CLUSTER", "MYID"])).collect();
    let owner = (0..3).find(|&i| owns(&nodes[i], slot.parse().unwrap()));
    let owner = owner.expect("an owner");
    let target = (owner + 1) % 3;
    assert_eq!(
        nodes[target].cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &ids[owner]]),
        "OK"
    );
    assert_eq!(
        nodes[owner].cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &ids[target]]),
        "OK"
    );
    let path = json_path("ask");
    bench_line(&format!(
        "-p {} --cluster -n 20 -c 2 -q --json {} -- SET key:000000000000 v",
        nodes[0].port,
        path.display()
    ));
    let j = read_json(&path);
    assert_eq!(j["requests"], 20);
    assert_eq!(j["error_count"], 0, "{}", j["errors"]);
    assert_eq!(j["redirects"]["ask"], 20);
    assert_eq!(nodes[target].calls("set"), 20);
    assert_eq!(nodes[owner].calls("set"), 0);
}

/// Whether `node` is the master of `slot`, from its own CLUSTER NODES line.
fn owns(node: &Redis, slot: u32) -> bool {
    let out = node.cli(&["CLUSTER", "NODES"]);
    let me = out
        .lines()
        .find(|l| l.contains("myself"))
        .expect("myself line");
    me.split_whitespace()
        .skip(8)
        .any(|range| match range.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse().unwrap()).contains(&slot),
            None => range.parse::<u32>().ok() == Some(slot),
        })
}
