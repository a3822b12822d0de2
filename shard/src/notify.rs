//! Keyspace notifications (`notify-keyspace-events`): the events a command
//! causes, named and classed as Redis 7.0 publishes them, worked out in one
//! place from what the change hook sees (the command, its arguments, its
//! reply, and which of its keys existed before and after it ran), plus the
//! `expired` events of keys the store reclaimed meanwhile.
//!
//! The shard that owns the key makes the messages (`Changes::notices`);
//! the server publishes them on `__keyspace@<db>__:<key>` (message: the
//! event) and `__keyevent@<db>__:<event>` (message: the key), in that
//! order, as Redis does.

use tessera_protocol::Args;

use crate::command::{flags, CommandSpec};
use crate::util::{eq_ic, parse_i64_strict};

/// Redis's NOTIFY_* bits, as `notify-keyspace-events` sets them.
pub mod class {
    pub const KEYSPACE: u32 = 1;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 12;
    pub const NEW: u32 = 1 << 13;
}
use class::*;

/// One published message: (channel, payload).
pub type Notice = (Vec<u8>, Vec<u8>);

/// What was true of one key of a command before it ran.
#[derive(Clone, Copy, Debug, Default)]
pub struct Before {
    pub existed: bool,
    pub had_ttl: bool,
}

/// Adds the messages of one event to `out`, as `flags` asks.
pub fn push_event(out: &mut Vec<Notice>, flags: u32, db: usize, key: &[u8], event: &str, cls: u32) {
    if flags & cls == 0 {
        return;
    }
    if flags & KEYSPACE != 0 {
        let mut ch = format!("__keyspace@{db}__:").into_bytes();
        ch.extend_from_slice(key);
        out.push((ch, event.as_bytes().to_vec()));
    }
    if flags & KEYEVENT != 0 {
        out.push((
            format!("__keyevent@{db}__:{event}").into_bytes(),
            key.to_vec(),
        ));
    }
}

/// One key of a command, as the events need it.
pub struct KeyState<'a> {
    pub key: &'a [u8],
    pub write: bool,
    pub before: Before,
    pub exists: bool,
}

fn is_null(reply: &[u8]) -> bool {
    matches!(reply, b"$-1\r\n" | b"*-1\r\n" | b"_\r\n")
}

fn int_reply(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    parse_i64_strict(body)
}

/// The first bulk string of an array reply (the key LMPOP, BLPOP... name).
fn first_bulk(reply: &[u8]) -> Option<&[u8]> {
    let rest = reply
        .strip_prefix(b"*")
        .or_else(|| reply.strip_prefix(b">"))?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let rest = rest[nl + 1..].strip_prefix(b"$")?;
    let cr = rest.iter().position(|&b| b == b'\r')?;
    let n: usize = std::str::from_utf8(&rest[..cr]).ok()?.parse().ok()?;
    rest.get(cr + 2..cr + 2 + n)
}

/// The class of a `...STORE` command's event.
fn store_class(name: &str) -> u32 {
    match name {
        "sinterstore" | "sunionstore" | "sdiffstore" => SET,
        "sort" => LIST,
        _ => ZSET,
    }
}

/// The events of one command that ran (its reply is not an error), in
/// Redis's order. `db` is the database it ran in.
pub fn command_events(
    out: &mut Vec<Notice>,
    flags: u32,
    spec: &CommandSpec,
    args: &Args,
    db: usize,
    keys: &[KeyState],
    reply: &[u8],
) {
    let name = spec.name;
    if reply.first() == Some(&b'-') {
        return;
    }
    let mut ev = |key: &[u8], event: &str, cls: u32| push_event(out, flags, db, key, event, cls);
    if !spec.has(flags::WRITE) {
        if flags & KEY_MISS != 0 {
            for k in keys.iter().filter(|k| !k.before.existed) {
                ev(k.key, "keymiss", KEY_MISS);
            }
        }
        return;
    }
    // A key the command created: `new` first, as Redis's dbAdd sends it.
    for k in keys
        .iter()
        .filter(|k| k.write && !k.before.existed && k.exists)
    {
        ev(k.key, "new", NEW);
    }
    let gone = |k: &KeyState| k.before.existed && !k.exists;
    let first = keys.first();
    let null = is_null(reply);
    let int = int_reply(reply);
    match name {
        "set" | "setnx" | "setex" | "psetex" | "getset" | "mset" | "msetnx" => {
            if matches!(name, "setnx" | "msetnx") && int == Some(0) {
                return;
            }
            let written = name != "set" || !null || args.iter().any(|a| eq_ic(a, b"get"));
            let with_ttl = matches!(name, "setex" | "psetex")
                || (name == "set"
                    && args.iter().skip(3).any(|a| {
                        ["ex", "px", "exat", "pxat"]
                            .iter()
                            .any(|o| eq_ic(a, o.as_bytes()))
                    }));
            if !written || (name == "set" && null && !keys.iter().all(|k| k.exists)) {
                return;
            }
            for k in keys.iter().filter(|k| k.exists) {
                ev(k.key, "set", STRING);
                if with_ttl {
                    ev(k.key, "expire", GENERIC);
                }
            }
        }
        "getdel" => {
            if let Some(k) = first.filter(|k| gone(k)) {
                ev(k.key, "del", GENERIC);
            }
        }
        "getex" => {
            let Some(k) = first.filter(|_| !null) else {
                return;
            };
            if gone(k) {
                ev(k.key, "del", GENERIC);
            } else if args.iter().skip(2).any(|a| eq_ic(a, b"persist")) {
                if k.before.had_ttl {
                    ev(k.key, "persist", GENERIC);
                }
            } else if args.len() > 2 {
                ev(k.key, "expire", GENERIC);
            }
        }
        "append" | "setrange" | "incrbyfloat" | "setbit" => {
            if let Some(k) = first.filter(|k| k.exists) {
                ev(k.key, name, STRING);
            }
        }
        "incr" | "incrby" | "decr" | "decrby" => {
            if let Some(k) = first {
                ev(k.key, "incrby", STRING);
            }
        }
        "bitfield" => {
            let writes = args
                .iter()
                .skip(2)
                .any(|a| eq_ic(a, b"set") || eq_ic(a, b"incrby"));
            if let Some(k) = first.filter(|k| writes && k.exists) {
                ev(k.key, "setbit", STRING);
            }
        }
        "pfadd" | "pfmerge" => {
            if name == "pfadd" && int == Some(0) && first.is_some_and(|k| k.before.existed) {
                return;
            }
            if let Some(k) = first {
                ev(k.key, "pfadd", STRING);
            }
        }
        "del" | "unlink" => {
            for k in keys.iter().filter(|k| gone(k)) {
                ev(k.key, "del", GENERIC);
            }
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            if let Some(k) = first.filter(|_| int == Some(1)) {
                ev(k.key, if k.exists { "expire" } else { "del" }, GENERIC);
            }
        }
        "restore" => {
            if let Some(k) = first.filter(|_| reply == b"+OK\r\n") {
                ev(k.key, "restore", GENERIC);
            }
        }
        "persist" => {
            if let Some(k) = first.filter(|_| int == Some(1)) {
                ev(k.key, "persist", GENERIC);
            }
        }
        "rename" | "renamenx" => {
            if int == Some(0) || keys.len() < 2 {
                return;
            }
            ev(keys[0].key, "rename_from", GENERIC);
            ev(keys[1].key, "rename_to", GENERIC);
        }
        "lpush" | "rpush" | "lpushx" | "rpushx" => {
            if let Some(k) = first.filter(|k| k.exists) {
                ev(
                    k.key,
                    if name.starts_with('l') {
                        "lpush"
                    } else {
                        "rpush"
                    },
                    LIST,
                );
            }
        }
        "lpop" | "rpop" | "lmpop" | "blpop" | "brpop" | "blmpop" | "zpopmin" | "zpopmax"
        | "zmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" => {
            if null || reply == b"*0\r\n" {
                return;
            }
            let key = match name {
                "lpop" | "rpop" | "zpopmin" | "zpopmax" => first.map(|k| k.key),
                _ => first_bulk(reply),
            };
            let Some(key) = key else { return };
            let left = |at: usize| args.get(at).eq_ignore_ascii_case(b"left");
            let min = |at: usize| args.get(at).eq_ignore_ascii_case(b"min");
            let (event, cls) = match name {
                "lpop" | "blpop" => ("lpop", LIST),
                "rpop" | "brpop" => ("rpop", LIST),
                "zpopmin" | "bzpopmin" => ("zpopmin", ZSET),
                "zpopmax" | "bzpopmax" => ("zpopmax", ZSET),
                "lmpop" | "blmpop" | "zmpop" | "bzmpop" => {
                    let at = if name.starts_with('b') { 2 } else { 1 };
                    let n = parse_i64_strict(args.get(at)).unwrap_or(1).max(1) as usize;
                    let w = at + 1 + n;
                    if name.ends_with("lmpop") {
                        (if left(w) { "lpop" } else { "rpop" }, LIST)
                    } else {
                        (if min(w) { "zpopmin" } else { "zpopmax" }, ZSET)
                    }
                }
                _ => return,
            };
            ev(key, event, cls);
            if keys.iter().any(|k| k.key == key && gone(k)) {
                ev(key, "del", GENERIC);
            }
        }
        "rpoplpush" | "lmove" | "brpoplpush" | "blmove" => {
            if null || keys.len() < 2 {
                return;
            }
            let (from_left, to_left) = match name {
                "rpoplpush" | "brpoplpush" => (false, true),
                _ => (
                    args.get(3).eq_ignore_ascii_case(b"left"),
                    args.get(4).eq_ignore_ascii_case(b"left"),
                ),
            };
            ev(keys[1].key, if to_left { "lpush" } else { "rpush" }, LIST);
            ev(keys[0].key, if from_left { "lpop" } else { "rpop" }, LIST);
            if gone(&keys[0]) && keys[0].key != keys[1].key {
                ev(keys[0].key, "del", GENERIC);
            }
        }
        "lset" | "linsert" | "lrem" | "ltrim" | "hdel" | "srem" | "spop" | "zrem"
        | "zremrangebyscore" | "zremrangebyrank" | "zremrangebylex" => {
            let Some(k) = first else { return };
            if int.is_some_and(|n| n <= 0) || null || reply == b"*0\r\n" {
                return;
            }
            let cls = match name.as_bytes()[0] {
                b'l' => LIST,
                b'h' => HASH,
                b's' => SET,
                _ => ZSET,
            };
            // LTRIM that removed nothing still reports ltrim, as Redis.
            ev(k.key, name, cls);
            if gone(k) {
                ev(k.key, "del", GENERIC);
            }
        }
        "hset" | "hmset" | "hsetnx" | "hincrby" | "hincrbyfloat" => {
            if name == "hsetnx" && int == Some(0) {
                return;
            }
            if let Some(k) = first {
                let event = if name.starts_with("hincr") {
                    name
                } else {
                    "hset"
                };
                ev(k.key, event, HASH);
            }
        }
        "sadd" => {
            if let Some(k) = first.filter(|_| int.is_some_and(|n| n > 0)) {
                ev(k.key, "sadd", SET);
            }
        }
        "smove" => {
            if int != Some(1) || keys.len() < 2 {
                return;
            }
            ev(keys[0].key, "srem", SET);
            if gone(&keys[0]) {
                ev(keys[0].key, "del", GENERIC);
            }
            ev(keys[1].key, "sadd", SET);
        }
        "zadd" | "zincrby" | "geoadd" => {
            let incr = name == "zincrby" || args.iter().skip(2).any(|a| eq_ic(a, b"incr"));
            if let Some(k) = first.filter(|_| !null) {
                ev(k.key, if incr { "zincr" } else { "zadd" }, ZSET);
            }
        }
        "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore"
        | "zdiffstore" | "zrangestore" | "geosearchstore" | "georadius" | "georadiusbymember"
        | "sort" | "bitop" => {
            // The destination: the first key for the *STORE commands; for
            // SORT, GEORADIUS and BITOP the written one.
            let Some(dst) = keys.iter().find(|k| k.write) else {
                return;
            };
            let (event, cls) = match name {
                "sort" => ("sortstore", LIST),
                "bitop" => ("set", STRING),
                "georadius" | "georadiusbymember" => ("georadiusstore", ZSET),
                _ => (name, store_class(name)),
            };
            if dst.exists {
                ev(dst.key, event, cls);
            } else if dst.before.existed {
                ev(dst.key, "del", GENERIC);
            }
        }
        "xadd"
        | "xtrim"
        | "xdel"
        | "xsetid"
        | "xgroup|create"
        | "xgroup|setid"
        | "xgroup|destroy"
        | "xgroup|createconsumer"
        | "xgroup|delconsumer" => {
            // Streams: the key is argument 1 (XGROUP's 2), the event the
            // command's name. A change shows in the reply: an ID, +OK, or
            // a count above 0. (XADD's trimming and DELCONSUMER of a
            // consumer with nothing pending do not show there: their
            // `xtrim` / `xgroup-delconsumer` events are not sent.)
            let Some(k) = first else { return };
            let changed = match name {
                "xadd" => !null,
                "xsetid" | "xgroup|create" | "xgroup|setid" => reply == b"+OK\r\n",
                _ => int.is_some_and(|n| n > 0),
            };
            if changed {
                ev(k.key, &name.replace('|', "-"), STREAM);
            }
        }
        _ => {}
    }
}

/// MOVE and COPY write a key of another database: their events, which
/// name both. `created`: the key they wrote did not exist there before
/// (always for MOVE; for COPY unless REPLACE found one).
#[allow(clippy::too_many_arguments)]
pub fn cross_db_events(
    out: &mut Vec<Notice>,
    flags: u32,
    name: &str,
    db: usize,
    to_db: usize,
    src: &[u8],
    dst: &[u8],
    created: bool,
) {
    if name == "move" {
        push_event(out, flags, db, src, "move_from", GENERIC);
    }
    if created && to_db != db {
        push_event(out, flags, to_db, dst, "new", NEW);
    }
    match name {
        "move" => push_event(out, flags, to_db, dst, "move_to", GENERIC),
        "copy" => push_event(out, flags, to_db, dst, "copy_to", GENERIC),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::table;
    use tessera_protocol::OwnedArgs;

    const KEA: u32 = KEYSPACE | KEYEVENT | 0x17fc;

    fn events(words: &[&str], keys: &[(bool, bool)], reply: &[u8]) -> Vec<String> {
        let a = OwnedArgs::from_parts(words);
        let spec = table::lookup(words[0].as_bytes()).unwrap();
        let mut kp = Vec::new();
        spec.key_positions(&a.args(), &mut kp).unwrap();
        let ks: Vec<KeyState> = kp
            .iter()
            .zip(keys)
            .map(|(p, &(existed, exists))| KeyState {
                key: a.args().get(p.index),
                write: p.write,
                before: Before {
                    existed,
                    had_ttl: false,
                },
                exists,
            })
            .collect();
        let mut out = Vec::new();
        command_events(&mut out, KEA, spec, &a.args(), 0, &ks, reply);
        out.iter()
            .filter(|(ch, _)| ch.starts_with(b"__keyevent"))
            .map(|(ch, m)| {
                format!(
                    "{}|{}",
                    String::from_utf8_lossy(&ch[15..]),
                    String::from_utf8_lossy(m)
                )
            })
            .collect()
    }

    #[test]
    fn events_are_named_as_redis_names_them() {
        assert_eq!(
            events(&["set", "s", "1", "EX", "10"], &[(false, true)], b"+OK\r\n"),
            ["set|s", "expire|s"]
        );
        assert_eq!(
            events(&["set", "s", "1", "NX"], &[(true, true)], b"$-1\r\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            events(&["decrby", "n", "2"], &[(true, true)], b":1\r\n"),
            ["incrby|n"]
        );
        assert_eq!(
            events(
                &["rpoplpush", "l", "l2"],
                &[(true, false), (false, true)],
                b"$1\r\na\r\n"
            ),
            ["lpush|l2", "rpop|l", "del|l"]
        );
        assert_eq!(
            events(
                &["lmpop", "1", "l3", "LEFT"],
                &[(true, false)],
                b"*2\r\n$2\r\nl3\r\n*1\r\n$1\r\na\r\n"
            ),
            ["lpop|l3", "del|l3"]
        );
        assert_eq!(
            events(
                &["del", "a", "b", "c"],
                &[(true, false), (false, false), (true, false)],
                b":2\r\n"
            ),
            ["del|a", "del|c"]
        );
        assert_eq!(
            events(&["expire", "k", "0"], &[(true, false)], b":1\r\n"),
            ["del|k"]
        );
        assert_eq!(
            events(
                &["sdiffstore", "d", "a", "a"],
                &[(true, false), (true, true), (true, true)],
                b":0\r\n"
            ),
            ["del|d"]
        );
        assert_eq!(
            events(&["zincrby", "z", "1", "a"], &[(true, true)], b"$1\r\n2\r\n"),
            ["zincr|z"]
        );
        assert_eq!(
            events(&["hdel", "h", "f"], &[(true, false)], b":1\r\n"),
            ["hdel|h", "del|h"]
        );
        assert_eq!(
            events(&["get", "nokey"], &[(false, false)], b"$-1\r\n"),
            Vec::<String>::new()
        );
    }
}
