//! Set commands.

use tessera_protocol::{Args, Reply};

use super::acl::{FAST as A_FAST, READ as A_READ, SET as A_SET, SLOW as A_SLOW, WRITE as A_WRITE};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::hashes::{parse_scan_cursor, parse_scan_options, ERR_RANGE_LONG};
use super::table::{ALL_R, KEY12_W, KEY1_R, KEY1_W};
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Route, Split, Writes};
use crate::cmd;
use crate::glob::glob_match;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::set::{Member, Set, SetLimits};
use crate::util::parse_i64_strict;

const W_FAST: u32 = A_WRITE | A_SET | A_FAST;
const W_SLOW: u32 = A_WRITE | A_SET | A_SLOW;
const R_FAST: u32 = A_READ | A_SET | A_FAST;
const R_SLOW: u32 = A_READ | A_SET | A_SLOW;

/// The *STORE commands: the destination is written, the sources read.
const DEST_THEN_SOURCES: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::First,
};
const SINTERCARD_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: sintercard_keys,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("sadd", -3, WRITE | DENYOOM | FAST, W_FAST, "set", KEY1_W, Route::Keyed(sadd, Split::Gather),
        "Add one or more members to a set", "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    cmd!("srem", -3, WRITE | FAST, W_FAST, "set", KEY1_W, Route::Keyed(srem, Split::Gather),
        "Remove one or more members from a set", "1.0.0", "O(N) where N is the number of members to be removed."),
    cmd!("smembers", 2, READONLY, R_SLOW, "set", KEY1_R, Route::Keyed(smembers, Split::Gather),
        "Get all the members in a set", "1.0.0", "O(N) where N is the set cardinality."),
    cmd!("sismember", 3, READONLY | FAST, R_FAST, "set", KEY1_R, Route::Keyed(sismember, Split::Gather),
        "Determine if a given value is a member of a set", "1.0.0", "O(1)"),
    cmd!("smismember", -3, READONLY | FAST, R_FAST, "set", KEY1_R, Route::Keyed(smismember, Split::Gather),
        "Returns the membership associated with the given elements for a set", "6.2.0",
        "O(N) where N is the number of elements being checked for membership"),
    cmd!("scard", 2, READONLY | FAST, R_FAST, "set", KEY1_R, Route::Keyed(scard, Split::Gather),
        "Get the number of members in a set", "1.0.0", "O(1)"),
    cmd!("spop", -2, WRITE | FAST, W_FAST, "set", KEY1_W, Route::Keyed(spop, Split::Gather),
        "Remove and return one or multiple random members from a set", "1.0.0",
        "Without the count argument O(1), otherwise O(N) where N is the value of the passed count."),
    cmd!("srandmember", -2, READONLY, R_SLOW, "set", KEY1_R, Route::Keyed(srandmember, Split::Gather),
        "Get one or multiple random members from a set", "1.0.0",
        "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count."),
    cmd!("smove", 4, WRITE | FAST, W_FAST, "set", KEY12_W, Route::Keyed(smove, Split::Gather),
        "Move a member from one set to another", "1.0.0", "O(1)"),
    cmd!("sinter", -2, READONLY, R_SLOW, "set", ALL_R, Route::Keyed(sinter, Split::Gather),
        "Intersect multiple sets", "1.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    cmd!("sintercard", -3, READONLY, R_SLOW, "set", SINTERCARD_KEYS, Route::Keyed(sintercard, Split::Gather),
        "Intersect multiple sets and return the cardinality of the result", "7.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    cmd!("sunion", -2, READONLY, R_SLOW, "set", ALL_R, Route::Keyed(sunion, Split::Gather),
        "Add multiple sets", "1.0.0", "O(N) where N is the total number of elements in all given sets."),
    cmd!("sdiff", -2, READONLY, R_SLOW, "set", ALL_R, Route::Keyed(sdiff, Split::Gather),
        "Subtract multiple sets", "1.0.0", "O(N) where N is the total number of elements in all given sets."),
    cmd!("sinterstore", -3, WRITE | DENYOOM, W_SLOW, "set", DEST_THEN_SOURCES, Route::Keyed(sinterstore, Split::Gather),
        "Intersect multiple sets and store the resulting set in a key", "1.0.0",
        "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets."),
    cmd!("sunionstore", -3, WRITE | DENYOOM, W_SLOW, "set", DEST_THEN_SOURCES, Route::Keyed(sunionstore, Split::Gather),
        "Add multiple sets and store the resulting set in a key", "1.0.0",
        "O(N) where N is the total number of elements in all given sets."),
    cmd!("sdiffstore", -3, WRITE | DENYOOM, W_SLOW, "set", DEST_THEN_SOURCES, Route::Keyed(sdiffstore, Split::Gather),
        "Subtract multiple sets and store the resulting set in a key", "1.0.0",
        "O(N) where N is the total number of elements in all given sets."),
    cmd!("sscan", -3, READONLY, R_SLOW, "set", KEY1_R, Route::Keyed(sscan, Split::Gather),
        "Incrementally iterate Set elements", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.."),
];

const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
const ERR_NUMKEYS_ARGS: &str = "ERR Number of keys can't be greater than number of args";
const ERR_LIMIT: &str = "ERR LIMIT can't be negative";
const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";

/// SINTERCARD's keys: `numkeys key... [LIMIT n]`, checked as the handler
/// checks them (same errors, same order).
fn sintercard_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    let n = sintercard_numkeys(args)?;
    for i in 0..n {
        out.push(KeyPos {
            index: 2 + i,
            write: false,
        });
    }
    Ok(())
}

fn sintercard_numkeys(args: &Args) -> Result<usize, &'static str> {
    let n = match parse_i64_strict(args.get(1)) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(ERR_NUMKEYS),
    };
    if n > (args.len() - 2) as u64 {
        return Err(ERR_NUMKEYS_ARGS);
    }
    Ok(n as usize)
}

fn limits(ctx: &Ctx) -> SetLimits {
    SetLimits {
        max_intset_entries: ctx.shard.config.set_max_intset_entries,
    }
}

#[inline]
pub(crate) fn reply_member(reply: &mut Reply, m: Member) {
    match m {
        Member::Int(i) => reply.bulk_int(i),
        Member::Str(s) => reply.bulk(s),
    }
}

use super::typed::Found;

fn set_mut<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Found<'a, Set> {
    super::typed::typed_mut(db, key, now)
}

/// A key's set for reading (counting hits and misses). Ok(None) when
/// missing; Err(()) after replying WRONGTYPE.
fn set_read<'c>(ctx: &'c mut Ctx, key: &[u8], reply: &mut Reply) -> Result<Option<&'c Set>, ()> {
    super::typed::typed_read(ctx, key, reply)
}

/// Looks up every key (lazy expiry, LRU, hit/miss counts) and checks its
/// type in order, as Redis's multi-set commands do; then returns shared
/// views of them all. Err(()) after replying WRONGTYPE.
fn load_sets<'c>(
    ctx: &'c mut Ctx,
    keys: &[&[u8]],
    reply: &mut Reply,
) -> Result<Vec<Option<&'c Set>>, ()> {
    let now = ctx.now;
    let shard = &mut *ctx.shard;
    let db = shard.keyspace.db(ctx.db);
    for k in keys {
        match db.get(k, now) {
            None => shard.stats.keyspace_misses += 1,
            Some(e) => {
                shard.stats.keyspace_hits += 1;
                if !matches!(e.object(), Some(Object::Set(_))) {
                    reply.error(WRONGTYPE);
                    return Err(());
                }
            }
        }
    }
    let db: &Db = db;
    Ok(keys
        .iter()
        .map(|k| match db.peek(k, now).and_then(|e| e.object()) {
            Some(Object::Set(s)) => Some(s),
            _ => None,
        })
        .collect())
}

/// Removes a key whose set became empty.
fn remove_key(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    if let Some(e) = ctx.db().remove(key, now) {
        ctx.shard.free_entry(e);
    }
}

/// Stores a command's result set under `dst` (replacing whatever was
/// there, TTL included) or deletes `dst` when it is empty; replies with its
/// size, as the *STORE commands do.
fn store_result(ctx: &mut Ctx, dst: &[u8], set: Set, reply: &mut Reply) {
    let now = ctx.now;
    let n = set.len();
    let old = if n == 0 {
        ctx.db().remove(dst, now)
    } else {
        let e = Entry::new_object(dst, Object::Set(set), None, lru_clock(now));
        ctx.db().insert(e, now)
    };
    if let Some(e) = old {
        ctx.shard.free_entry(e);
    }
    reply.int(n as i64);
}

pub fn sadd(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let lim = limits(ctx);
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let add_all = |s: &mut Set| {
        args.iter()
            .skip(2)
            .map(|m| s.add(m, lim) as i64)
            .sum::<i64>()
    };
    match set_mut(db, key, now) {
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Ok(s) => reply.int(add_all(s)),
        Found::Missing => {
            let mut s = Set::new_for(args.get(2));
            reply.int(add_all(&mut s));
            db.insert(
                Entry::new_object(key, Object::Set(s), None, lru_clock(now)),
                now,
            );
        }
    }
}

pub fn srem(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(1);
    let empty = match set_mut(ctx.db(), key, now) {
        Found::Missing => return reply.int(0),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(s) => {
            let mut n = 0;
            for m in args.iter().skip(2) {
                if s.remove(m) {
                    n += 1;
                    if s.is_empty() {
                        break;
                    }
                }
            }
            reply.int(n);
            s.is_empty()
        }
    };
    if empty {
        remove_key(ctx, key);
    }
}

pub fn smembers(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(s) = set_read(ctx, args.get(1), reply) {
        match s {
            None => reply.set(0),
            Some(s) => {
                reply.set(s.len());
                for m in s.iter() {
                    reply_member(reply, m);
                }
            }
        }
    }
}

pub fn sismember(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(s) = set_read(ctx, args.get(1), reply) {
        reply.int(s.is_some_and(|s| s.contains(args.get(2))) as i64);
    }
}

pub fn smismember(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(s) = set_read(ctx, args.get(1), reply) {
        reply.array(args.len() - 2);
        for m in args.iter().skip(2) {
            reply.int(s.is_some_and(|s| s.contains(m)) as i64);
        }
    }
}

pub fn scard(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(s) = set_read(ctx, args.get(1), reply) {
        reply.int(s.map_or(0, |s| s.len()) as i64);
    }
}

pub fn spop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if args.len() > 3 {
        return reply.error(SYNTAX);
    }
    let count = if args.len() == 3 {
        match parse_i64_strict(args.get(2)) {
            // Redis's getPositiveLongFromObjectOrReply: one message for both.
            Some(c) if c >= 0 => Some(c as u64),
            _ => return reply.error(ERR_POSITIVE),
        }
    } else {
        None
    };
    let now = ctx.now;
    let key = args.get(1);
    let shard = &mut *ctx.shard;
    let rng = &mut shard.rng;
    let s = match set_mut(shard.keyspace.db(ctx.db), key, now) {
        Found::Missing => {
            return match count {
                None => reply.null(),
                Some(_) => reply.set(0),
            }
        }
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(s) => s,
    };
    match count {
        None => s.pop_many(1, rng, |m| reply_member(reply, m)),
        Some(0) => return reply.set(0),
        // The whole set, in its own order (Redis replies with a union of
        // the one key here, then deletes it).
        Some(c) if c >= s.len() as u64 => {
            reply.set(s.len());
            for m in s.iter() {
                reply_member(reply, m);
            }
            return remove_key(ctx, key);
        }
        Some(c) => {
            reply.set(c as usize);
            s.pop_many(c as usize, rng, |m| reply_member(reply, m));
        }
    }
    if s.is_empty() {
        remove_key(ctx, key);
    }
}

pub fn srandmember(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if args.len() > 3 {
        return reply.error(SYNTAX);
    }
    let count = if args.len() == 3 {
        match parse_i64_strict(args.get(2)) {
            None => return reply.error(NOT_INTEGER),
            Some(i64::MIN) => return reply.error(ERR_RANGE_LONG),
            Some(c) => Some(c),
        }
    } else {
        None
    };
    let now = ctx.now;
    let shard = &mut *ctx.shard;
    let rng = &mut shard.rng;
    let s = match shard.keyspace.db(ctx.db).get(args.get(1), now) {
        None => {
            shard.stats.keyspace_misses += 1;
            return match count {
                None => reply.null(),
                Some(_) => reply.array(0),
            };
        }
        Some(e) => {
            shard.stats.keyspace_hits += 1;
            match e.object() {
                Some(Object::Set(s)) => s,
                _ => return reply.error(WRONGTYPE),
            }
        }
    };
    let Some(count) = count else {
        return reply_member(reply, s.random(rng).expect("sets are never empty"));
    };
    let n = s.len();
    if count < 0 {
        // Repetitions allowed: exactly |count| draws.
        let c = count.unsigned_abs() as usize;
        reply.array(c);
        for _ in 0..c {
            reply_member(reply, s.random(rng).expect("non-empty"));
        }
    } else if count as u64 >= n as u64 {
        reply.array(n);
        for m in s.iter() {
            reply_member(reply, m);
        }
    } else {
        let picked = s.sample_distinct(count as usize, rng);
        reply.array(picked.len());
        for m in picked {
            reply_member(reply, m);
        }
    }
}

pub fn smove(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (src, dst, m) = (args.get(1), args.get(2), args.get(3));
    let lim = limits(ctx);
    let now = ctx.now;
    let db = ctx.db();
    // Redis: a missing source answers 0 before any type check.
    match set_mut(db, src, now) {
        Found::Missing => return reply.int(0),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(_) => {}
    }
    if let Found::Wrong = set_mut(db, dst, now) {
        return reply.error(WRONGTYPE);
    }
    let Found::Ok(s) = set_mut(db, src, now) else {
        unreachable!("looked up above")
    };
    if src == dst {
        return reply.int(s.contains(m) as i64);
    }
    if !s.remove(m) {
        return reply.int(0);
    }
    if s.is_empty() {
        remove_key(ctx, src);
    }
    let db = ctx.db();
    match set_mut(db, dst, now) {
        Found::Ok(d) => {
            d.add(m, lim);
        }
        _ => {
            let mut d = Set::new_for(m);
            d.add(m, lim);
            db.insert(
                Entry::new_object(dst, Object::Set(d), None, lru_clock(now)),
                now,
            );
        }
    }
    reply.int(1);
}

/// The members of the intersection of `sets`, in the smallest set's order;
/// stops after `limit` (0: no limit). Any missing set makes it empty.
fn intersection<'a>(sets: &[Option<&'a Set>], limit: usize) -> Vec<Member<'a>> {
    let mut present: Vec<&Set> = Vec::with_capacity(sets.len());
    for s in sets {
        match s {
            Some(s) => present.push(s),
            None => return Vec::new(),
        }
    }
    present.sort_by_key(|s| s.len());
    let Some((first, rest)) = present.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in first.iter() {
        if rest.iter().all(|s| s.contains_member(m)) {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Diff,
}

/// A new set holding the union or difference of `sets`, built the way
/// Redis builds it (an intset that converts as members come), so its
/// encoding and, for an intset, its order are Redis's.
fn combine(sets: &[Option<&Set>], op: Op, lim: SetLimits) -> Set {
    let mut out = Set::new_int();
    match op {
        Op::Union => {
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    out.add_member(m, lim);
                }
            }
        }
        Op::Diff => {
            if let Some((Some(first), rest)) = sets.split_first() {
                for m in first.iter() {
                    if !rest.iter().flatten().any(|s| s.contains_member(m)) {
                        out.add_member(m, lim);
                    }
                }
            }
        }
    }
    out
}

fn set_from(members: &[Member], lim: SetLimits) -> Set {
    let mut out = Set::new_int();
    for &m in members {
        out.add_member(m, lim);
    }
    out
}

fn keys_from<'a>(args: &Args<'a>, from: usize, to: usize) -> Vec<&'a [u8]> {
    (from..to).map(|i| args.get(i)).collect()
}

fn reply_set(reply: &mut Reply, s: &Set) {
    reply.set(s.len());
    for m in s.iter() {
        reply_member(reply, m);
    }
}

pub fn sinter(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let keys = keys_from(&args, 1, args.len());
    if let Ok(sets) = load_sets(ctx, &keys, reply) {
        let out = intersection(&sets, 0);
        reply.set(out.len());
        for m in out {
            reply_member(reply, m);
        }
    }
}

pub fn sintercard(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let n = match sintercard_numkeys(&args) {
        Ok(n) => n,
        Err(e) => return reply.error(e),
    };
    let mut limit = 0usize;
    let mut i = 2 + n;
    while i < args.len() {
        if super::super::util::eq_ic(args.get(i), b"limit") && i + 1 < args.len() {
            match parse_i64_strict(args.get(i + 1)) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => return reply.error(ERR_LIMIT),
            }
            i += 2;
        } else {
            return reply.error(SYNTAX);
        }
    }
    let keys = keys_from(&args, 2, 2 + n);
    if let Ok(sets) = load_sets(ctx, &keys, reply) {
        reply.int(intersection(&sets, limit).len() as i64);
    }
}

pub fn sinterstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let lim = limits(ctx);
    let keys = keys_from(&args, 2, args.len());
    let Ok(sets) = load_sets(ctx, &keys, reply) else {
        return;
    };
    let out = set_from(&intersection(&sets, 0), lim);
    store_result(ctx, args.get(1), out, reply);
}

fn union_diff(ctx: &mut Ctx, args: Args, reply: &mut Reply, op: Op, store: bool) {
    let lim = limits(ctx);
    let from = if store { 2 } else { 1 };
    let keys = keys_from(&args, from, args.len());
    let Ok(sets) = load_sets(ctx, &keys, reply) else {
        return;
    };
    let out = combine(&sets, op, lim);
    if store {
        store_result(ctx, args.get(1), out, reply);
    } else {
        reply_set(reply, &out);
    }
}

pub fn sunion(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    union_diff(ctx, args, reply, Op::Union, false)
}
pub fn sdiff(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    union_diff(ctx, args, reply, Op::Diff, false)
}
pub fn sunionstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    union_diff(ctx, args, reply, Op::Union, true)
}
pub fn sdiffstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    union_diff(ctx, args, reply, Op::Diff, true)
}

pub fn sscan(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(cursor) = parse_scan_cursor(args.get(2)) else {
        return reply.error("ERR invalid cursor");
    };
    let Ok(s) = set_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(s) = s else {
        reply.array(2);
        reply.bulk(b"0");
        return reply.array(0);
    };
    let Some((pattern, count)) = parse_scan_options(&args, 3, reply) else {
        return;
    };
    let mut items: Vec<Member> = Vec::new();
    let mut buf = itoa::Buffer::new();
    let next = s.scan(cursor, count, |m| {
        if pattern.is_none_or(|p| glob_match(p, m.bytes(&mut buf), false)) {
            items.push(m);
        }
    });
    reply.array(2);
    reply.bulk(buf.format(next).as_bytes());
    reply.array(items.len());
    for m in items {
        reply_member(reply, m);
    }
}
