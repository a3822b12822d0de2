//! The table entries of the string and generic-key families against what
//! Redis 7.0.15's `COMMAND INFO` reports (recorded from a live server):
//! (name, arity, flags, legacy key range, ACL categories).

use tessera_shard::command::{self, acl, flags, CommandSpec};

type InfoRow = (
    &'static str,
    i32,
    &'static str,
    (i32, i32, i32),
    &'static str,
);

const REDIS_7_0: &[InfoRow] = &[
    ("get", 2, "readonly fast", (1, 1, 1), "read string fast"),
    ("set", -3, "write denyoom", (1, 1, 1), "write string slow"),
    (
        "setnx",
        3,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    ("setex", 4, "write denyoom", (1, 1, 1), "write string slow"),
    ("psetex", 4, "write denyoom", (1, 1, 1), "write string slow"),
    (
        "getset",
        3,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    ("getdel", 2, "write fast", (1, 1, 1), "write string fast"),
    ("getex", -2, "write fast", (1, 1, 1), "write string fast"),
    ("mget", -2, "readonly fast", (1, -1, 1), "read string fast"),
    ("mset", -3, "write denyoom", (1, -1, 2), "write string slow"),
    (
        "msetnx",
        -3,
        "write denyoom",
        (1, -1, 2),
        "write string slow",
    ),
    (
        "incr",
        2,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    (
        "decr",
        2,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    (
        "incrby",
        3,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    (
        "decrby",
        3,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    (
        "incrbyfloat",
        3,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    (
        "append",
        3,
        "write denyoom fast",
        (1, 1, 1),
        "write string fast",
    ),
    ("strlen", 2, "readonly fast", (1, 1, 1), "read string fast"),
    ("getrange", 4, "readonly", (1, 1, 1), "read string slow"),
    ("substr", 4, "readonly", (1, 1, 1), "read string slow"),
    (
        "setrange",
        4,
        "write denyoom",
        (1, 1, 1),
        "write string slow",
    ),
    ("lcs", -3, "readonly", (1, 2, 1), "read string slow"),
    ("del", -2, "write", (1, -1, 1), "keyspace write slow"),
    (
        "unlink",
        -2,
        "write fast",
        (1, -1, 1),
        "keyspace write fast",
    ),
    (
        "exists",
        -2,
        "readonly fast",
        (1, -1, 1),
        "keyspace read fast",
    ),
    (
        "keys",
        2,
        "readonly",
        (0, 0, 0),
        "keyspace read slow dangerous",
    ),
    ("scan", -2, "readonly", (0, 0, 0), "keyspace read slow"),
    ("randomkey", 1, "readonly", (0, 0, 0), "keyspace read slow"),
    ("type", 2, "readonly fast", (1, 1, 1), "keyspace read fast"),
    (
        "touch",
        -2,
        "readonly fast",
        (1, -1, 1),
        "keyspace read fast",
    ),
    ("rename", 3, "write", (1, 2, 1), "keyspace write slow"),
    (
        "renamenx",
        3,
        "write fast",
        (1, 2, 1),
        "keyspace write fast",
    ),
    (
        "copy",
        -3,
        "write denyoom",
        (1, 2, 1),
        "keyspace write slow",
    ),
    ("move", 3, "write fast", (1, 1, 1), "keyspace write fast"),
    ("expire", -3, "write fast", (1, 1, 1), "keyspace write fast"),
    (
        "pexpire",
        -3,
        "write fast",
        (1, 1, 1),
        "keyspace write fast",
    ),
    (
        "expireat",
        -3,
        "write fast",
        (1, 1, 1),
        "keyspace write fast",
    ),
    (
        "pexpireat",
        -3,
        "write fast",
        (1, 1, 1),
        "keyspace write fast",
    ),
    ("ttl", 2, "readonly fast", (1, 1, 1), "keyspace read fast"),
    ("pttl", 2, "readonly fast", (1, 1, 1), "keyspace read fast"),
    (
        "expiretime",
        2,
        "readonly fast",
        (1, 1, 1),
        "keyspace read fast",
    ),
    (
        "pexpiretime",
        2,
        "readonly fast",
        (1, 1, 1),
        "keyspace read fast",
    ),
    ("persist", 2, "write fast", (1, 1, 1), "keyspace write fast"),
    ("object", -2, "", (0, 0, 0), "slow"),
    (
        "object|encoding",
        3,
        "readonly",
        (2, 2, 1),
        "keyspace read slow",
    ),
    (
        "object|idletime",
        3,
        "readonly",
        (2, 2, 1),
        "keyspace read slow",
    ),
    (
        "object|help",
        2,
        "loading stale",
        (0, 0, 0),
        "keyspace slow",
    ),
    (
        "object|freq",
        3,
        "readonly",
        (2, 2, 1),
        "keyspace read slow",
    ),
    (
        "object|refcount",
        3,
        "readonly",
        (2, 2, 1),
        "keyspace read slow",
    ),
];

fn names(bits: u32, table: &[(u32, &str)]) -> String {
    table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split_whitespace().collect();
    v.sort();
    v
}

fn find(name: &str) -> &'static CommandSpec {
    match name.split_once('|') {
        None => command::lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing")),
        Some((parent, sub)) => {
            let p = command::lookup(parent.as_bytes()).unwrap();
            command::lookup_sub(p, sub.as_bytes()).unwrap_or_else(|| panic!("{name} missing"))
        }
    }
}

#[test]
fn command_info_matches_redis() {
    for &(name, arity, fl, keys, cats) in REDIS_7_0 {
        let c = find(name);
        assert_eq!(c.name, name);
        assert_eq!(c.arity, arity, "{name} arity");
        assert_eq!(
            sorted(&names(c.flags, flags::NAMES)),
            sorted(fl),
            "{name} flags"
        );
        assert_eq!(c.legacy_keys(), keys, "{name} keys");
        assert_eq!(
            sorted(&names(c.acl, acl::NAMES)),
            sorted(cats),
            "{name} acl"
        );
    }
}
