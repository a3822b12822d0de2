//! Generic keyspace commands (DEL, EXISTS, EXPIRE, TTL, RENAME, OBJECT...),
//! and the shard's part of SCAN.

use tessera_protocol::{Args, Reply};

use super::acl::{
    DANGEROUS as A_DANGER, FAST as A_FAST, KEYSPACE as A_KEYSPACE, READ as A_READ, SLOW as A_SLOW,
    WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, LOADING, READONLY, STALE, WRITE};
use super::strings::lookup_read;
use super::table::{ALL_R, ALL_W, CONTAINER, KEY12_W, KEY1_R, KEY1_W, NO_KEYS};
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Merge, Route, ShardState, Split, Writes};
use crate::cmd;
use crate::glob::glob_match;
use crate::store::lru_clock;
use crate::util::{eq_ic, parse_i64_strict};

/// COPY: the source is only read, the destination written.
const COPY_KEYS: KeySpec = KeySpec::Custom {
    legacy: (1, 2, 1),
    find: copy_keys,
};
/// OBJECT <sub> key.
const KEY2_R: KeySpec = KeySpec::Range {
    first: 2,
    last: 2,
    step: 1,
    writes: Writes::None,
};

const KW_FAST: u32 = A_KEYSPACE | A_WRITE | A_FAST;
const KR_FAST: u32 = A_KEYSPACE | A_READ | A_FAST;
const KR_SLOW: u32 = A_KEYSPACE | A_READ | A_SLOW;

fn copy_keys(_args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    // Arity (at least 3) is checked before keys are looked for.
    out.push(KeyPos {
        index: 1,
        write: false,
    });
    out.push(KeyPos {
        index: 2,
        write: true,
    });
    Ok(())
}

// Arity, flags, ACL categories, key positions and docs as Redis 7.0's
// COMMAND INFO / COMMAND DOCS report them.
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("del", -2, WRITE, A_KEYSPACE | A_WRITE | A_SLOW, "generic", ALL_W, Route::Keyed(del, Split::SumInt),
        "Delete a key", "1.0.0",
        "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1)."),
    cmd!("unlink", -2, WRITE | FAST, KW_FAST, "generic", ALL_W, Route::Keyed(del, Split::SumInt),
        "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", "4.0.0",
        "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of."),
    cmd!("exists", -2, READONLY | FAST, KR_FAST, "generic", ALL_R,
        Route::Keyed(exists, Split::SumInt), "Determine if a key exists", "1.0.0",
        "O(N) where N is the number of keys to check."),
    cmd!("keys", 2, READONLY, A_KEYSPACE | A_READ | A_SLOW | A_DANGER, "generic", NO_KEYS,
        Route::Fanout(keys, Merge::ConcatArray), "Find all keys matching the given pattern", "1.0.0",
        "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length."),
    cmd!("scan", -2, READONLY, KR_SLOW, "generic", NO_KEYS, Route::Conn,
        "Incrementally iterate the keys space", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    cmd!("randomkey", 1, READONLY, KR_SLOW, "generic", NO_KEYS, Route::Conn,
        "Return a random key from the keyspace", "1.0.0", "O(1)"),
    cmd!("type", 2, READONLY | FAST, KR_FAST, "generic", KEY1_R, Route::Keyed(type_, Split::Gather),
        "Determine the type stored at key", "1.0.0", "O(1)"),
    cmd!("touch", -2, READONLY | FAST, KR_FAST, "generic", ALL_R, Route::Keyed(touch, Split::SumInt),
        "Alters the last access time of a key(s). Returns the number of existing keys specified.", "3.2.1",
        "O(N) where N is the number of keys that will be touched."),
    cmd!("rename", 3, WRITE, A_KEYSPACE | A_WRITE | A_SLOW, "generic", KEY12_W,
        Route::Keyed(rename, Split::Gather), "Rename a key", "1.0.0", "O(1)"),
    cmd!("renamenx", 3, WRITE | FAST, KW_FAST, "generic", KEY12_W,
        Route::Keyed(renamenx, Split::Gather), "Rename a key, only if the new key does not exist", "1.0.0", "O(1)"),
    cmd!("copy", -3, WRITE | DENYOOM, A_KEYSPACE | A_WRITE | A_SLOW, "generic", COPY_KEYS,
        Route::Keyed(copy, Split::Gather), "Copy a key", "6.2.0",
        "O(N) worst case for collections, where N is the number of nested items. O(1) for string values."),
    cmd!("move", 3, WRITE | FAST, KW_FAST, "generic", KEY1_W, Route::Keyed(move_, Split::Gather),
        "Move a key to another database", "1.0.0", "O(1)"),
    cmd!("expire", -3, WRITE | FAST, KW_FAST, "generic", KEY1_W, Route::Keyed(expire, Split::Gather),
        "Set a key's time to live in seconds", "1.0.0", "O(1)"),
    cmd!("pexpire", -3, WRITE | FAST, KW_FAST, "generic", KEY1_W, Route::Keyed(pexpire, Split::Gather),
        "Set a key's time to live in milliseconds", "2.6.0", "O(1)"),
    cmd!("expireat", -3, WRITE | FAST, KW_FAST, "generic", KEY1_W, Route::Keyed(expireat, Split::Gather),
        "Set the expiration for a key as a UNIX timestamp", "1.2.0", "O(1)"),
    cmd!("pexpireat", -3, WRITE | FAST, KW_FAST, "generic", KEY1_W, Route::Keyed(pexpireat, Split::Gather),
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0", "O(1)"),
    cmd!("ttl", 2, READONLY | FAST, KR_FAST, "generic", KEY1_R, Route::Keyed(ttl, Split::Gather),
        "Get the time to live for a key in seconds", "1.0.0", "O(1)"),
    cmd!("pttl", 2, READONLY | FAST, KR_FAST, "generic", KEY1_R, Route::Keyed(pttl, Split::Gather),
        "Get the time to live for a key in milliseconds", "2.6.0", "O(1)"),
    cmd!("expiretime", 2, READONLY | FAST, KR_FAST, "generic", KEY1_R, Route::Keyed(expiretime, Split::Gather),
        "Get the expiration Unix timestamp for a key", "7.0.0", "O(1)"),
    cmd!("pexpiretime", 2, READONLY | FAST, KR_FAST, "generic", KEY1_R,
        Route::Keyed(pexpiretime, Split::Gather), "Get the expiration Unix timestamp for a key in milliseconds",
        "7.0.0", "O(1)"),
    cmd!("persist", 2, WRITE | FAST, KW_FAST, "generic", KEY1_W, Route::Keyed(persist, Split::Gather),
        "Remove the expiration from a key", "2.2.0", "O(1)"),
    cmd!("object", -2, 0, A_SLOW, "generic", NO_KEYS, CONTAINER,
        "A container for object introspection commands", "2.2.3", "Depends on subcommand.", OBJECT_SUBS),
];

static OBJECT_SUBS: &[CommandSpec] = &[
    cmd!(
        "object|encoding",
        3,
        READONLY,
        KR_SLOW,
        "generic",
        KEY2_R,
        Route::Keyed(object_encoding, Split::Gather),
        "Inspect the internal encoding of a Redis object",
        "2.2.3",
        "O(1)"
    ),
    cmd!(
        "object|help",
        2,
        LOADING | STALE,
        A_KEYSPACE | A_SLOW,
        "generic",
        NO_KEYS,
        Route::Local(object_help),
        "Show helpful text about the different subcommands",
        "6.2.0",
        "O(1)"
    ),
    cmd!(
        "object|freq",
        3,
        READONLY,
        KR_SLOW,
        "generic",
        KEY2_R,
        Route::Keyed(object_freq, Split::Gather),
        "Get the logarithmic access frequency counter of a Redis object",
        "4.0.0",
        "O(1)"
    ),
    cmd!(
        "object|idletime",
        3,
        READONLY,
        KR_SLOW,
        "generic",
        KEY2_R,
        Route::Keyed(object_idletime, Split::Gather),
        "Get the time since a Redis object was last accessed",
        "2.2.3",
        "O(1)"
    ),
    cmd!(
        "object|refcount",
        3,
        READONLY,
        KR_SLOW,
        "generic",
        KEY2_R,
        Route::Keyed(object_refcount, Split::Gather),
        "Get the number of references to the value of the key",
        "2.2.3",
        "O(1)"
    ),
];

/// DEL and UNLINK (a shard's part: the keys it owns).
pub fn del(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let mut n = 0;
    for k in args.iter().skip(1) {
        if let Some(e) = ctx.db().remove(k, now) {
            ctx.shard.free_entry(e);
            n += 1;
        }
    }
    reply.int(n as i64);
}

/// EXISTS: a key named twice counts twice, as in Redis.
pub fn exists(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let db = ctx.db();
    let n = args.iter().skip(1).filter(|k| db.contains(k, now)).count();
    reply.int(n as i64);
}

/// KEYS pattern: this shard's matching live keys.
pub fn keys(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let pattern = args.get(1);
    let now = ctx.now;
    let all = pattern == b"*";
    let mut found: Vec<&[u8]> = Vec::new();
    let shard = &mut *ctx.shard;
    if let Some(db) = shard.keyspace.db_if_exists(ctx.db) {
        for &slot in &shard.owned_slots {
            for e in db.slot(slot).iter() {
                if !e.is_expired(now) && (all || glob_match(pattern, e.key(), false)) {
                    found.push(e.key());
                }
            }
        }
    }
    reply.array(found.len());
    for k in found {
        reply.bulk(k);
    }
}

/// The shard's part of SCAN: scans whole slots among the owned slots in
/// `[start_slot, end_slot)`, in order, until at least `count` keys were
/// examined (expired keys are skipped but count as examined). Returns the
/// next slot to scan (`end_slot` when done) and the matching keys. A slot
/// is never split across calls, so a key present for the whole iteration
/// is returned exactly once.
#[allow(clippy::too_many_arguments)]
pub fn scan_slots(
    shard: &mut ShardState,
    db: usize,
    start_slot: u16,
    end_slot: u16,
    count: usize,
    pattern: Option<&[u8]>,
    type_filter: Option<&[u8]>,
    now: i64,
) -> (u16, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let Some(d) = shard.keyspace.db_if_exists(db) else {
        return (end_slot, out);
    };
    let count = count.max(1);
    let first = shard.owned_slots.partition_point(|&s| s < start_slot);
    let mut examined = 0;
    for &slot in &shard.owned_slots[first..] {
        if slot >= end_slot {
            break;
        }
        if examined >= count {
            return (slot, out);
        }
        for e in d.slot(slot).iter() {
            examined += 1;
            if e.is_expired(now) {
                continue;
            }
            if let Some(p) = pattern {
                if !glob_match(p, e.key(), false) {
                    continue;
                }
            }
            if let Some(t) = type_filter {
                if !eq_ic(t, e.type_name().as_bytes()) {
                    continue;
                }
            }
            out.push(e.key().to_vec());
        }
    }
    (end_slot, out)
}

/// TYPE: the value's type name, or "none" (does not touch the LRU clock).
pub fn type_(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match lookup_quiet(ctx, args.get(1)) {
        Some(t) => reply.simple(t),
        None => reply.simple("none"),
    }
}

/// A read lookup that leaves the LRU clock alone (Redis's LOOKUP_NOTOUCH);
/// counts hits and misses. Returns the type name of a live key.
fn lookup_quiet(ctx: &mut Ctx, key: &[u8]) -> Option<&'static str> {
    let now = ctx.now;
    let shard = &mut *ctx.shard;
    let t = shard
        .keyspace
        .db(ctx.db)
        .get_quiet(key, now)
        .map(|e| e.type_name());
    if t.is_some() {
        shard.stats.keyspace_hits += 1;
    } else {
        shard.stats.keyspace_misses += 1;
    }
    t
}

/// TOUCH: refreshes the keys' access time; counts the existing ones.
pub fn touch(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let n = args
        .iter()
        .skip(1)
        .filter(|k| lookup_read(ctx, k).is_some())
        .count();
    reply.int(n as i64);
}

fn rename_generic(ctx: &mut Ctx, args: &Args, nx: bool, reply: &mut Reply) {
    let (src, dst) = (args.get(1), args.get(2));
    let now = ctx.now;
    let db = ctx.db();
    if db.get(src, now).is_none() {
        return reply.error(NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { reply.int(0) } else { reply.ok() };
    }
    if nx && db.get(dst, now).is_some() {
        return reply.int(0);
    }
    if let Some(e) = db.remove(src, now) {
        // Value, TTL and access time move with it; any old `dst` is replaced.
        db.insert(e.with_key(dst), now);
    }
    if nx {
        reply.int(1)
    } else {
        reply.ok()
    }
}

pub fn rename(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    rename_generic(ctx, &args, false, reply)
}

pub fn renamenx(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    rename_generic(ctx, &args, true, reply)
}

/// Redis's `getIntFromObjectOrReply` + `selectDb` check for a db argument.
fn parse_db_index(ctx: &Ctx, arg: &[u8]) -> Result<usize, &'static str> {
    let n = parse_i64_strict(arg).ok_or(NOT_INTEGER)?;
    if i32::try_from(n).is_err() {
        return Err("ERR value is out of range, value must between -2147483648 and 2147483647");
    }
    if n < 0 || n as usize >= ctx.shard.config.databases {
        return Err(DB_INDEX);
    }
    Ok(n as usize)
}

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// COPY source destination [DB destination-db] [REPLACE].
pub fn copy(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (src, dst) = (args.get(1), args.get(2));
    let mut replace = false;
    let mut dst_db = ctx.db;
    let mut j = 3;
    while j < args.len() {
        let a = args.get(j);
        if eq_ic(a, b"REPLACE") {
            replace = true;
        } else if eq_ic(a, b"DB") && j + 1 < args.len() {
            match parse_db_index(ctx, args.get(j + 1)) {
                Ok(n) => dst_db = n,
                Err(e) => return reply.error(e),
            }
            j += 1;
        } else {
            return reply.error(SYNTAX);
        }
        j += 1;
    }
    if ctx.shard.config.cluster_enabled && (ctx.db != 0 || dst_db != 0) {
        return reply.error("ERR Copying to another database is not allowed in cluster mode");
    }
    if dst_db == ctx.db && src == dst {
        return reply.error(SAME_OBJECT);
    }
    let now = ctx.now;
    let Some(e) = lookup_read(ctx, src) else {
        return reply.int(0);
    };
    // The copy is a new object: its access time is now.
    let mut copy = e.clone().with_key(dst);
    copy.set_lru(lru_clock(now));
    let target = ctx.shard.keyspace.db(dst_db);
    if target.contains(dst, now) && !replace {
        return reply.int(0);
    }
    target.insert(copy, now);
    reply.int(1);
}

/// MOVE key db.
pub fn move_(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if ctx.shard.config.cluster_enabled {
        return reply.error("ERR MOVE is not allowed in cluster mode");
    }
    let key = args.get(1);
    let dst_db = match parse_db_index(ctx, args.get(2)) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    if dst_db == ctx.db {
        return reply.error(SAME_OBJECT);
    }
    let now = ctx.now;
    if ctx.db().get(key, now).is_none() {
        return reply.int(0);
    }
    if ctx.shard.keyspace.db(dst_db).contains(key, now) {
        return reply.int(0);
    }
    if let Some(e) = ctx.db().remove(key, now) {
        ctx.shard.keyspace.db(dst_db).insert(e, now);
    }
    reply.int(1);
}

/// EXPIRE-family option flags.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_expire_flags(args: &Args) -> Result<ExpireFlags, String> {
    let mut f = ExpireFlags::default();
    for a in args.iter().skip(3) {
        if eq_ic(a, b"NX") {
            f.nx = true;
        } else if eq_ic(a, b"XX") {
            f.xx = true;
        } else if eq_ic(a, b"GT") {
            f.gt = true;
        } else if eq_ic(a, b"LT") {
            f.lt = true;
        } else {
            return Err(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            ));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if f.gt && f.lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    Ok(f)
}

/// Redis's `expireGenericCommand`. `basetime`: now for relative forms, 0
/// for absolute ones.
fn expire_generic(
    ctx: &mut Ctx,
    args: &Args,
    relative: bool,
    seconds: bool,
    cmd: &str,
    reply: &mut Reply,
) {
    let flags = match parse_expire_flags(args) {
        Ok(f) => f,
        Err(e) => return reply.error(&e),
    };
    let Some(mut when) = parse_i64_strict(args.get(2)) else {
        return reply.error(NOT_INTEGER);
    };
    let invalid = format!("ERR invalid expire time in '{cmd}' command");
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return reply.error(&invalid);
        }
        when *= 1000;
    }
    let now = ctx.now;
    let basetime = if relative { now } else { 0 };
    if when > i64::MAX - basetime {
        return reply.error(&invalid);
    }
    when += basetime;
    let key = args.get(1);
    let db = ctx.db();
    let Some(e) = db.get(key, now) else {
        return reply.int(0);
    };
    let current = e.expire_at();
    let refuse = (flags.nx && current.is_some())
        || (flags.xx && current.is_none())
        || (flags.gt && current.is_none_or(|c| when <= c))
        || (flags.lt && current.is_some_and(|c| when >= c));
    if refuse {
        return reply.int(0);
    }
    if when <= now {
        db.remove(key, now);
    } else {
        db.set_expire(key, Some(when), now);
    }
    reply.int(1);
}

pub fn expire(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    expire_generic(ctx, &args, true, true, "expire", reply)
}

pub fn pexpire(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    expire_generic(ctx, &args, true, false, "pexpire", reply)
}

pub fn expireat(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    expire_generic(ctx, &args, false, true, "expireat", reply)
}

pub fn pexpireat(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    expire_generic(ctx, &args, false, false, "pexpireat", reply)
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 missing, -1 no expiry; seconds
/// are rounded to the nearest, as Redis does.
fn ttl_generic(ctx: &mut Ctx, args: &Args, ms: bool, absolute: bool, reply: &mut Reply) {
    let now = ctx.now;
    let Some(exp) = lookup_expire(ctx, args.get(1)) else {
        return reply.int(-2);
    };
    let Some(at) = exp else {
        return reply.int(-1);
    };
    let t = if absolute { at } else { at - now }.max(0);
    // Unsigned, as Redis's reply shows for expiries near i64::MAX.
    reply.int(if ms {
        t
    } else {
        ((t as u64 + 500) / 1000) as i64
    });
}

/// The expiry of a live key (no LRU touch); `None` when missing.
fn lookup_expire(ctx: &mut Ctx, key: &[u8]) -> Option<Option<i64>> {
    let now = ctx.now;
    let shard = &mut *ctx.shard;
    let r = shard
        .keyspace
        .db(ctx.db)
        .get_quiet(key, now)
        .map(|e| e.expire_at());
    if r.is_some() {
        shard.stats.keyspace_hits += 1;
    } else {
        shard.stats.keyspace_misses += 1;
    }
    r
}

pub fn ttl(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    ttl_generic(ctx, &args, false, false, reply)
}

pub fn pttl(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    ttl_generic(ctx, &args, true, false, reply)
}

pub fn expiretime(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    ttl_generic(ctx, &args, false, true, reply)
}

pub fn pexpiretime(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    ttl_generic(ctx, &args, true, true, reply)
}

pub fn persist(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let key = args.get(1);
    let now = ctx.now;
    let db = ctx.db();
    match db.get(key, now).map(|e| e.expire_at().is_some()) {
        Some(true) => {
            db.set_expire(key, None, now);
            reply.int(1);
        }
        _ => reply.int(0),
    }
}

/// What OBJECT's subcommands look at: (encoding, shared-int?, lru).
fn object_lookup(ctx: &mut Ctx, key: &[u8]) -> Option<(&'static str, bool, u32)> {
    let now = ctx.now;
    let shard = &mut *ctx.shard;
    let r = shard.keyspace.db(ctx.db).get_quiet(key, now).map(|e| {
        let enc = e.encoding();
        // Redis shares the objects of the integers 0..9999.
        let shared = enc == "int"
            && e.as_str()
                .and_then(parse_i64_strict)
                .is_some_and(|v| (0..10000).contains(&v));
        (enc, shared, e.lru())
    });
    if r.is_some() {
        shard.stats.keyspace_hits += 1;
    } else {
        shard.stats.keyspace_misses += 1;
    }
    r
}

pub fn object_encoding(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match object_lookup(ctx, args.get(2)) {
        Some((enc, _, _)) => reply.bulk(enc.as_bytes()),
        None => reply.null(),
    }
}

pub fn object_refcount(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match object_lookup(ctx, args.get(2)) {
        Some((_, shared, _)) => reply.int(if shared { i32::MAX as i64 } else { 1 }),
        None => reply.null(),
    }
}

pub fn object_idletime(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some((_, _, lru)) = object_lookup(ctx, args.get(2)) else {
        return reply.null();
    };
    if ctx.shard.evict.policy.is_lfu() {
        return reply.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    reply.int(idle_seconds(crate::store::lru_seconds(ctx.now), lru) as i64);
}

/// Redis's `estimateObjectIdleTime` in seconds (24-bit clock that wraps).
pub fn idle_seconds(clock: u32, lru: u32) -> u32 {
    const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
    if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_CLOCK_MAX - lru)
    }
}

pub fn object_freq(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some((_, _, bits)) = object_lookup(ctx, args.get(2)) else {
        return reply.null();
    };
    if !ctx.shard.evict.policy.is_lfu() {
        return reply.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    // The counter as it stands after the decay due (not touched by OBJECT).
    reply.int(crate::evict::lfu::decayed(bits, ctx.now, ctx.shard.evict.lfu) as i64);
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

pub fn object_help(_ctx: &mut Ctx, _args: Args, reply: &mut Reply) {
    reply.array(OBJECT_HELP.len());
    for line in OBJECT_HELP {
        reply.simple(line);
    }
}
