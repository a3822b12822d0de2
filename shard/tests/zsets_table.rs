//! The sorted-set and geo table entries against what Redis 7.0.15's
//! `COMMAND INFO` reports (recorded from a live server): name, arity,
//! flags (Redis's computed `movablekeys` left out: it is not a table
//! flag here), legacy key range, ACL categories.

use tessera_shard::command::{acl, flags, lookup};

/// (name, arity, flags, legacy keys, ACL categories).
type InfoRow = (
    &'static str,
    i32,
    &'static str,
    (i32, i32, i32),
    &'static str,
);

const REDIS_7_0: &[InfoRow] = &[
    (
        "zadd",
        -4,
        "write denyoom fast",
        (1, 1, 1),
        "write sortedset fast",
    ),
    (
        "zincrby",
        4,
        "write denyoom fast",
        (1, 1, 1),
        "write sortedset fast",
    ),
    ("zrem", -3, "write fast", (1, 1, 1), "write sortedset fast"),
    (
        "zcard",
        2,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    (
        "zscore",
        3,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    (
        "zmscore",
        -3,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    (
        "zrank",
        3,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    (
        "zrevrank",
        3,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    (
        "zcount",
        4,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    (
        "zlexcount",
        4,
        "readonly fast",
        (1, 1, 1),
        "read sortedset fast",
    ),
    ("zrange", -4, "readonly", (1, 1, 1), "read sortedset slow"),
    (
        "zrangebyscore",
        -4,
        "readonly",
        (1, 1, 1),
        "read sortedset slow",
    ),
    (
        "zrevrangebyscore",
        -4,
        "readonly",
        (1, 1, 1),
        "read sortedset slow",
    ),
    (
        "zrangebylex",
        -4,
        "readonly",
        (1, 1, 1),
        "read sortedset slow",
    ),
    (
        "zrevrangebylex",
        -4,
        "readonly",
        (1, 1, 1),
        "read sortedset slow",
    ),
    (
        "zrevrange",
        -4,
        "readonly",
        (1, 1, 1),
        "read sortedset slow",
    ),
    (
        "zrangestore",
        -5,
        "write denyoom",
        (1, 2, 1),
        "write sortedset slow",
    ),
    (
        "zremrangebyrank",
        4,
        "write",
        (1, 1, 1),
        "write sortedset slow",
    ),
    (
        "zremrangebyscore",
        4,
        "write",
        (1, 1, 1),
        "write sortedset slow",
    ),
    (
        "zremrangebylex",
        4,
        "write",
        (1, 1, 1),
        "write sortedset slow",
    ),
    (
        "zpopmin",
        -2,
        "write fast",
        (1, 1, 1),
        "write sortedset fast",
    ),
    (
        "zpopmax",
        -2,
        "write fast",
        (1, 1, 1),
        "write sortedset fast",
    ),
    ("zmpop", -4, "write", (0, 0, 0), "write sortedset slow"),
    (
        "zrandmember",
        -2,
        "readonly",
        (1, 1, 1),
        "read sortedset slow",
    ),
    ("zunion", -3, "readonly", (0, 0, 0), "read sortedset slow"),
    ("zinter", -3, "readonly", (0, 0, 0), "read sortedset slow"),
    ("zdiff", -3, "readonly", (0, 0, 0), "read sortedset slow"),
    (
        "zunionstore",
        -4,
        "write denyoom",
        (1, 1, 1),
        "write sortedset slow",
    ),
    (
        "zinterstore",
        -4,
        "write denyoom",
        (1, 1, 1),
        "write sortedset slow",
    ),
    (
        "zdiffstore",
        -4,
        "write denyoom",
        (1, 1, 1),
        "write sortedset slow",
    ),
    (
        "zintercard",
        -3,
        "readonly",
        (0, 0, 0),
        "read sortedset slow",
    ),
    ("zscan", -3, "readonly", (1, 1, 1), "read sortedset slow"),
    ("geoadd", -5, "write denyoom", (1, 1, 1), "write geo slow"),
    ("geodist", -4, "readonly", (1, 1, 1), "read geo slow"),
    ("geohash", -2, "readonly", (1, 1, 1), "read geo slow"),
    ("geopos", -2, "readonly", (1, 1, 1), "read geo slow"),
    ("geosearch", -7, "readonly", (1, 1, 1), "read geo slow"),
    (
        "geosearchstore",
        -8,
        "write denyoom",
        (1, 2, 1),
        "write geo slow",
    ),
    (
        "georadius",
        -6,
        "write denyoom",
        (1, 1, 1),
        "write geo slow",
    ),
    (
        "georadiusbymember",
        -5,
        "write denyoom",
        (1, 1, 1),
        "write geo slow",
    ),
    ("georadius_ro", -6, "readonly", (1, 1, 1), "read geo slow"),
    (
        "georadiusbymember_ro",
        -5,
        "readonly",
        (1, 1, 1),
        "read geo slow",
    ),
];

fn names(bits: u32, table: &[(u32, &str)]) -> Vec<String> {
    let mut v: Vec<String> = table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    v.sort();
    v
}

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn zset_and_geo_entries_match_redis() {
    for &(name, arity, fl, keys, cats) in REDIS_7_0 {
        let c = lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(c.arity, arity, "{name} arity");
        assert_eq!(names(c.flags, flags::NAMES), sorted(fl), "{name} flags");
        assert_eq!(c.legacy_keys(), keys, "{name} keys");
        assert_eq!(names(c.acl, acl::NAMES), sorted(cats), "{name} acl");
    }
}
