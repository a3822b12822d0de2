use crate::*;
use tessera_shard::command::keys::{idle_seconds, scan_slots};
use tessera_shard::slot::key_slot;

#[test]
fn type_touch_exists() {
    let mut h = H::new();
    assert_eq!(h.cmd("TYPE k"), "+none\r\n");
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("TYPE k"), "+string\r\n");
    assert_eq!(h.cmd("TOUCH k nokey k"), int(2));
    assert_eq!(h.cmd("EXISTS k k nokey"), int(2));
}

#[test]
fn rename_and_renamenx() {
    let mut h = H::new();
    assert_eq!(h.cmd("RENAME nokey x"), err("ERR no such key"));
    assert_eq!(h.cmd("RENAMENX nokey nokey"), err("ERR no such key"));
    assert_eq!(h.cmd("SETEX a 100 1"), OK);
    assert_eq!(h.cmd("RENAME a a"), OK);
    assert_eq!(h.cmd("RENAMENX a a"), int(0));
    assert_eq!(h.cmd("RENAME a b"), OK);
    assert_eq!(h.cmd("EXISTS a"), int(0));
    assert_eq!(h.cmd("GET b"), bulk("1"));
    assert_eq!(h.cmd("TTL b"), int(100)); // the TTL moves with the value
    assert_eq!(h.cmd("SET c 2"), OK);
    assert_eq!(h.cmd("RENAMENX b c"), int(0));
    assert_eq!(h.cmd("RENAMENX b d"), int(1));
    assert_eq!(h.cmd("RENAME d c"), OK); // overwrites
    assert_eq!(h.cmd("GET c"), bulk("1"));
    assert_eq!(h.cmd("TTL c"), int(100));
    assert_eq!(h.shard.keyspace.db(0).len(), 1);
    assert_eq!(h.shard.keyspace.db(0).volatile_len(), 1);
    // An expired source is missing.
    h.now += 100_000;
    assert_eq!(h.cmd("RENAME c e"), err("ERR no such key"));
}

#[test]
fn copy_with_db_and_replace() {
    let mut h = H::new();
    assert_eq!(h.cmd("COPY a b"), int(0));
    assert_eq!(h.cmd("SETEX a 100 v"), OK);
    assert_eq!(
        h.cmd("COPY a a"),
        err("ERR source and destination objects are the same")
    );
    assert_eq!(
        h.cmd("COPY a a DB 0"),
        err("ERR source and destination objects are the same")
    );
    assert_eq!(h.cmd("COPY a b DB 16"), err("ERR DB index is out of range"));
    assert_eq!(h.cmd("COPY a b DB -1"), err("ERR DB index is out of range"));
    assert_eq!(h.cmd("COPY a b DB x"), NOT_INT);
    assert_eq!(
        h.cmd("COPY a b DB 99999999999"),
        err("ERR value is out of range, value must between -2147483648 and 2147483647")
    );
    assert_eq!(h.cmd("COPY a b DB 9223372036854775808"), NOT_INT);
    assert_eq!(h.cmd("COPY a b DB"), SYNTAX);
    assert_eq!(h.cmd("COPY a b foo"), SYNTAX);
    assert_eq!(h.cmd("COPY a b"), int(1));
    assert_eq!(h.cmd("TTL b"), int(100));
    assert_eq!(h.cmd("SET c old"), OK);
    assert_eq!(h.cmd("COPY a c"), int(0));
    assert_eq!(h.cmd("COPY a c REPLACE"), int(1));
    assert_eq!(h.cmd("GET c"), bulk("v"));
    assert_eq!(h.cmd("COPY a a DB 3"), int(1));
    assert_eq!(h.cmd("COPY a x REPLACE REPLACE DB 1 DB 2"), int(1));
    h.db = 3;
    assert_eq!(h.cmd("GET a"), bulk("v"));
    assert_eq!(h.cmd("TTL a"), int(100));
    h.db = 2;
    assert_eq!(h.cmd("GET x"), bulk("v"));
    h.db = 1;
    assert_eq!(h.cmd("EXISTS x"), int(0));
    // A copy is independent of its source.
    h.db = 0;
    assert_eq!(h.cmd("APPEND b 2"), int(2));
    assert_eq!(h.cmd("GET a"), bulk("v"));
}

#[test]
fn move_between_dbs() {
    let mut h = H::new();
    assert_eq!(h.cmd("MOVE k abc"), NOT_INT);
    assert_eq!(h.cmd("MOVE k 16"), err("ERR DB index is out of range"));
    assert_eq!(h.cmd("MOVE k -1"), err("ERR DB index is out of range"));
    assert_eq!(
        h.cmd("MOVE k -99999999999"),
        err("ERR value is out of range, value must between -2147483648 and 2147483647")
    );
    assert_eq!(
        h.cmd("MOVE k 0"),
        err("ERR source and destination objects are the same")
    );
    assert_eq!(h.cmd("MOVE k 1"), int(0));
    assert_eq!(h.cmd("SETEX k 100 v"), OK);
    assert_eq!(h.cmd("MOVE k 1"), int(1));
    assert_eq!(h.cmd("EXISTS k"), int(0));
    assert_eq!(h.cmd("SET k w"), OK);
    assert_eq!(h.cmd("MOVE k 1"), int(0)); // exists there
    h.db = 1;
    assert_eq!(h.cmd("GET k"), bulk("v"));
    assert_eq!(h.cmd("TTL k"), int(100));
    assert_eq!(h.shard.keyspace.db(1).volatile_len(), 1);
    assert_eq!(h.shard.keyspace.db(0).volatile_len(), 0);
}

#[test]
fn expire_family() {
    let mut h = H::new();
    assert_eq!(h.cmd("EXPIRE nokey 10"), int(0));
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("EXPIRE k 10 foo"), err("ERR Unsupported option foo"));
    assert_eq!(h.cmd("EXPIRE k abc foo"), err("ERR Unsupported option foo"));
    assert_eq!(h.cmd("EXPIRE k abc NX"), NOT_INT);
    let nx_err = err("ERR NX and XX, GT or LT options at the same time are not compatible");
    let gtlt_err = err("ERR GT and LT options at the same time are not compatible");
    assert_eq!(h.cmd("EXPIRE k 10 nx xx"), nx_err);
    assert_eq!(h.cmd("EXPIRE k 10 NX GT"), nx_err);
    assert_eq!(h.cmd("EXPIRE k 10 NX LT"), nx_err);
    assert_eq!(h.cmd("EXPIRE k 10 GT LT"), gtlt_err);
    assert_eq!(h.cmd("EXPIRE k 10 XX GT LT"), gtlt_err);
    // No TTL: XX and GT refuse, LT and NX set.
    assert_eq!(h.cmd("EXPIRE k 10 XX"), int(0));
    assert_eq!(h.cmd("EXPIRE k 10 GT"), int(0));
    assert_eq!(h.cmd("EXPIRE k 100 LT"), int(1));
    assert_eq!(h.cmd("TTL k"), int(100));
    assert_eq!(h.cmd("EXPIRE k 50 NX"), int(0));
    assert_eq!(h.cmd("EXPIRE k 200 LT"), int(0));
    assert_eq!(h.cmd("EXPIRE k 50 LT"), int(1));
    assert_eq!(h.cmd("EXPIRE k 50 GT"), int(0));
    assert_eq!(h.cmd("EXPIRE k 60 GT XX"), int(1));
    assert_eq!(h.cmd("TTL k"), int(60));
    assert_eq!(h.cmd("PEXPIRE k 1500"), int(1));
    assert_eq!(h.cmd("PTTL k"), int(1500));
    let at = (T0 / 1000 + 30).to_string();
    assert_eq!(h.run(&["EXPIREAT", "k", &at]), int(1));
    assert_eq!(h.cmd("TTL k"), int(30));
    assert_eq!(h.cmd("EXPIRETIME k"), int(T0 / 1000 + 30));
    let at = (T0 + 1234).to_string();
    assert_eq!(h.run(&["PEXPIREAT", "k", &at]), int(1));
    assert_eq!(h.cmd("PEXPIRETIME k"), int(T0 + 1234));
    assert_eq!(h.cmd("PTTL k"), int(1234));
    assert_eq!(h.cmd("TTL k"), int(1));
    assert_eq!(h.cmd("EXPIRETIME k"), int(T0 / 1000 + 1));
    // Overflow checks.
    for (c, name) in [
        ("EXPIRE k 9223372036854775", "expire"),
        ("EXPIRE k 9223372036854774", "expire"),
        ("EXPIRE k -9223372036854775808", "expire"),
        ("PEXPIRE k 9223372036854775807", "pexpire"),
        ("EXPIREAT k 9223372036854775807", "expireat"),
    ] {
        assert_eq!(
            h.cmd(c),
            err(&format!("ERR invalid expire time in '{name}' command")),
            "{c}"
        );
    }
    assert_eq!(h.cmd("EXPIREAT k 9223372036854775"), int(1));
    assert_eq!(h.cmd("PEXPIREAT k 9223372036854775807"), int(1));
    assert_eq!(h.cmd("PEXPIRETIME k"), int(i64::MAX));
    assert_eq!(h.cmd("EXPIRETIME k"), int(9223372036854776)); // as Redis
                                                              // A time in the past deletes the key (and still answers 1).
    assert_eq!(h.cmd("EXPIRE k -1"), int(1));
    assert_eq!(h.cmd("EXISTS k"), int(0));
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("EXPIRE k 0"), int(1));
    assert_eq!(h.cmd("EXISTS k"), int(0));
    assert_eq!(h.cmd("SET k v"), OK);
    let now = T0.to_string();
    assert_eq!(h.run(&["PEXPIREAT", "k", &now]), int(1));
    assert_eq!(h.cmd("EXISTS k"), int(0));
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("EXPIRE k -9223372036854775"), int(1));
    assert_eq!(h.shard.keyspace.db(0).len(), 0);
    assert_eq!(h.shard.keyspace.db(0).volatile_len(), 0);
}

#[test]
fn ttl_rounding_and_expiry() {
    let mut h = H::new();
    assert_eq!(h.cmd("TTL k"), int(-2));
    assert_eq!(h.cmd("PTTL k"), int(-2));
    assert_eq!(h.cmd("EXPIRETIME k"), int(-2));
    assert_eq!(h.cmd("PEXPIRETIME k"), int(-2));
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("TTL k"), int(-1));
    assert_eq!(h.cmd("PEXPIRETIME k"), int(-1));
    assert_eq!(h.cmd("PEXPIRE k 10499"), int(1));
    assert_eq!(h.cmd("TTL k"), int(10));
    h.now += 9999; // 500 ms left: rounds to 1
    assert_eq!(h.cmd("TTL k"), int(1));
    h.now += 1; // 499 ms left: rounds to 0
    assert_eq!(h.cmd("TTL k"), int(0));
    assert_eq!(h.cmd("PTTL k"), int(499));
    h.now += 499;
    assert_eq!(h.cmd("TTL k"), int(-2));
    assert_eq!(h.cmd("GET k"), NULL);
}

#[test]
fn persist_removes_ttl() {
    let mut h = H::new();
    assert_eq!(h.cmd("PERSIST k"), int(0));
    assert_eq!(h.cmd("SET k v"), OK);
    assert_eq!(h.cmd("PERSIST k"), int(0));
    assert_eq!(h.cmd("EXPIRE k 100"), int(1));
    assert_eq!(h.shard.keyspace.db(0).volatile_len(), 1);
    assert_eq!(h.cmd("PERSIST k"), int(1));
    assert_eq!(h.cmd("TTL k"), int(-1));
    assert_eq!(h.shard.keyspace.db(0).volatile_len(), 0);
}

#[test]
fn object_subcommands() {
    let mut h = H::new();
    assert_eq!(h.cmd("OBJECT ENCODING nokey"), NULL);
    assert_eq!(h.cmd("OBJECT REFCOUNT nokey"), NULL);
    assert_eq!(h.cmd("OBJECT IDLETIME nokey"), NULL);
    assert_eq!(h.cmd("OBJECT FREQ nokey"), NULL);
    assert_eq!(h.cmd("MSET i 5 j 123456 e hello"), OK);
    let big = "x".repeat(45);
    assert_eq!(h.run(&["SET", "r", &big]), OK);
    assert_eq!(h.cmd("OBJECT ENCODING i"), bulk("int"));
    assert_eq!(h.cmd("OBJECT ENCODING j"), bulk("int"));
    assert_eq!(h.cmd("OBJECT ENCODING e"), bulk("embstr"));
    assert_eq!(h.cmd("OBJECT ENCODING r"), bulk("raw"));
    assert_eq!(h.cmd("OBJECT REFCOUNT i"), int(2147483647));
    assert_eq!(h.cmd("OBJECT REFCOUNT j"), int(1));
    assert_eq!(h.cmd("OBJECT REFCOUNT e"), int(1));
    assert_eq!(
        h.cmd("OBJECT FREQ e"),
        err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
    );
    assert_eq!(h.cmd("OBJECT IDLETIME e"), int(0));
    h.now += 5_000;
    assert_eq!(h.cmd("OBJECT IDLETIME e"), int(5)); // OBJECT does not touch
    assert_eq!(h.cmd("TTL e"), int(-1));
    assert_eq!(h.cmd("TYPE e"), "+string\r\n");
    assert_eq!(h.cmd("OBJECT IDLETIME e"), int(5));
    assert_eq!(h.cmd("GET e"), bulk("hello"));
    assert_eq!(h.cmd("OBJECT IDLETIME e"), int(0));
    h.now += 3_000;
    assert_eq!(h.cmd("TOUCH e"), int(1));
    assert_eq!(h.cmd("OBJECT IDLETIME e"), int(0));
    assert_eq!(idle_seconds(5, 10), 5 + (1 << 24) - 1 - 10);
    let help = h.cmd("OBJECT HELP");
    assert!(help.starts_with(
        "*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
    ));
    assert!(help.ends_with("+HELP\r\n+    Prints this help.\r\n"));
    assert_eq!(
        h.cmd("OBJECT HELP x"),
        err("ERR wrong number of arguments for 'object|help' command")
    );
}

#[test]
fn scan_slots_visits_every_key_once() {
    // A shard owning every other slot.
    let owned: Vec<u16> = (0..16384).step_by(2).collect();
    let mut h = H::new();
    h.shard.owned_slots = owned;
    let mut mine = Vec::new();
    for i in 0..3000 {
        let k = format!("key:{i}");
        if key_slot(k.as_bytes()) & 1 == 0 {
            mine.push(k.clone());
        }
        assert_eq!(h.run(&["SET", &k, "v"]), OK);
    }
    // A volatile key that has expired is skipped.
    assert_eq!(h.cmd("SET gone v PX 10"), OK);
    h.now += 10;
    let mut seen = Vec::new();
    let (mut slot, mut calls) = (0u16, 0);
    while slot < 16384 {
        let (next, keys) = scan_slots(&mut h.shard, 0, slot, 16384, 10, None, None, h.now);
        assert!(next > slot);
        slot = next;
        seen.extend(keys);
        calls += 1;
    }
    assert!(calls > 50);
    let mut seen: Vec<String> = seen
        .into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect();
    seen.sort();
    mine.sort();
    mine.retain(|k| k != "gone");
    assert_eq!(seen, mine);
    // MATCH and TYPE filters; an end bound; a db never written.
    let (next, keys) = scan_slots(
        &mut h.shard,
        0,
        0,
        16384,
        100000,
        Some(b"key:1?"),
        Some(b"STRING"),
        h.now,
    );
    assert_eq!(next, 16384);
    assert!(!keys.is_empty() && keys.iter().all(|k| k.len() == 6));
    let (_, keys) = scan_slots(
        &mut h.shard,
        0,
        0,
        16384,
        100000,
        None,
        Some(b"list"),
        h.now,
    );
    assert!(keys.is_empty());
    let (next, keys) = scan_slots(&mut h.shard, 0, 100, 200, 1_000_000, None, None, h.now);
    assert_eq!(next, 200);
    assert!(keys.iter().all(|k| (100..200).contains(&key_slot(k))));
    assert_eq!(
        scan_slots(&mut h.shard, 5, 0, 16384, 10, None, None, h.now),
        (16384, vec![])
    );
}
