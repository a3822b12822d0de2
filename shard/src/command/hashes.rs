//! Hash commands.

use tessera_protocol::{Args, Reply};

use super::acl::{
    FAST as A_FAST, HASH as A_HASH, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::table::{KEY1_R, KEY1_W};
use super::{CommandSpec, Ctx, Route, Split};
use crate::cmd;
use crate::glob::glob_match;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::hash::{Hash, HashLimits};
use crate::types::ldouble::LDouble;
use crate::util::{eq_ic, parse_i64_strict};
use rand::rngs::SmallRng;
use rand::SeedableRng;

const W_FAST: u32 = A_WRITE | A_HASH | A_FAST;
const R_FAST: u32 = A_READ | A_HASH | A_FAST;
const R_SLOW: u32 = A_READ | A_HASH | A_SLOW;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("hset", -4, WRITE | DENYOOM | FAST, W_FAST, "hash", KEY1_W, Route::Keyed(hset, Split::Gather),
        "Creates or modifies the value of a field in a hash.", "2.0.0",
        "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs."),
    cmd!("hsetnx", 4, WRITE | DENYOOM | FAST, W_FAST, "hash", KEY1_W, Route::Keyed(hsetnx, Split::Gather),
        "Sets the value of a field in a hash only when the field doesn't exist.", "2.0.0", "O(1)"),
    cmd!("hget", 3, READONLY | FAST, R_FAST, "hash", KEY1_R, Route::Keyed(hget, Split::Gather),
        "Returns the value of a field in a hash.", "2.0.0", "O(1)"),
    cmd!("hmget", -3, READONLY | FAST, R_FAST, "hash", KEY1_R, Route::Keyed(hmget, Split::Gather),
        "Returns the values of all fields in a hash.", "2.0.0", "O(N) where N is the number of fields being requested."),
    cmd!("hmset", -4, WRITE | DENYOOM | FAST, W_FAST, "hash", KEY1_W, Route::Keyed(hmset, Split::Gather),
        "Sets the values of multiple fields.", "2.0.0", "O(N) where N is the number of fields being set."),
    cmd!("hdel", -3, WRITE | FAST, W_FAST, "hash", KEY1_W, Route::Keyed(hdel, Split::Gather),
        "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "2.0.0",
        "O(N) where N is the number of fields to be removed."),
    cmd!("hlen", 2, READONLY | FAST, R_FAST, "hash", KEY1_R, Route::Keyed(hlen, Split::Gather),
        "Returns the number of fields in a hash.", "2.0.0", "O(1)"),
    cmd!("hstrlen", 3, READONLY | FAST, R_FAST, "hash", KEY1_R, Route::Keyed(hstrlen, Split::Gather),
        "Returns the length of the value of a field.", "3.2.0", "O(1)"),
    cmd!("hexists", 3, READONLY | FAST, R_FAST, "hash", KEY1_R, Route::Keyed(hexists, Split::Gather),
        "Determines whether a field exists in a hash.", "2.0.0", "O(1)"),
    cmd!("hkeys", 2, READONLY, R_SLOW, "hash", KEY1_R, Route::Keyed(hkeys, Split::Gather),
        "Returns all fields in a hash.", "2.0.0", "O(N) where N is the size of the hash."),
    cmd!("hvals", 2, READONLY, R_SLOW, "hash", KEY1_R, Route::Keyed(hvals, Split::Gather),
        "Returns all values in a hash.", "2.0.0", "O(N) where N is the size of the hash."),
    cmd!("hgetall", 2, READONLY, R_SLOW, "hash", KEY1_R, Route::Keyed(hgetall, Split::Gather),
        "Returns all fields and values in a hash.", "2.0.0", "O(N) where N is the size of the hash."),
    cmd!("hincrby", 4, WRITE | DENYOOM | FAST, W_FAST, "hash", KEY1_W, Route::Keyed(hincrby, Split::Gather),
        "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
        "2.0.0", "O(1)"),
    cmd!("hincrbyfloat", 4, WRITE | DENYOOM | FAST, W_FAST, "hash", KEY1_W, Route::Keyed(hincrbyfloat, Split::Gather),
        "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
        "2.6.0", "O(1)"),
    cmd!("hrandfield", -2, READONLY, R_SLOW, "hash", KEY1_R, Route::Keyed(hrandfield, Split::Gather),
        "Returns one or more random fields from a hash.", "6.2.0",
        "O(N) where N is the number of fields returned"),
    cmd!("hscan", -3, READONLY, R_SLOW, "hash", KEY1_R, Route::Keyed(hscan, Split::Gather),
        "Iterates over fields and values of a hash.", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
];

fn limits(ctx: &Ctx) -> HashLimits {
    HashLimits {
        max_entries: ctx.shard.config.hash_max_listpack_entries,
        max_value: ctx.shard.config.hash_max_listpack_value,
    }
}

use super::typed::Found;

fn hash_mut<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Found<'a, Hash> {
    super::typed::typed_mut(db, key, now)
}

/// A key's hash for reading (counting hits and misses). Ok(None) when
/// missing; Err(()) after replying WRONGTYPE.
fn hash_read<'c>(ctx: &'c mut Ctx, key: &[u8], reply: &mut Reply) -> Result<Option<&'c Hash>, ()> {
    super::typed::typed_read(ctx, key, reply)
}

/// Runs `f` on the key's hash, creating it when missing (it is stored only
/// if `f` left it non-empty). Err(()) after replying WRONGTYPE.
fn with_hash<R>(
    ctx: &mut Ctx,
    key: &[u8],
    reply: &mut Reply,
    f: impl FnOnce(&mut Hash) -> R,
) -> Result<R, ()> {
    let now = ctx.now;
    let db = ctx.db();
    match hash_mut(db, key, now) {
        Found::Wrong => {
            reply.error(WRONGTYPE);
            Err(())
        }
        Found::Ok(h) => Ok(f(h)),
        Found::Missing => {
            let mut h = Hash::new();
            let r = f(&mut h);
            if !h.is_empty() {
                db.insert(
                    Entry::new_object(key, Object::Hash(h), None, lru_clock(now)),
                    now,
                );
            }
            Ok(r)
        }
    }
}

fn hset_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, name: &str) -> Option<i64> {
    if args.len() % 2 == 1 {
        reply.error(&super::arity_error(name));
        return None;
    }
    let lim = limits(ctx);
    with_hash(ctx, args.get(1), reply, |h| {
        h.try_convert_for(args.iter().skip(2).map(|a| a.len()), lim);
        let mut created = 0;
        let mut i = 2;
        while i + 1 < args.len() {
            created += h.set(args.get(i), args.get(i + 1), lim) as i64;
            i += 2;
        }
        created
    })
    .ok()
}

pub fn hset(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Some(n) = hset_generic(ctx, args, reply, "hset") {
        reply.int(n);
    }
}

pub fn hmset(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if hset_generic(ctx, args, reply, "hmset").is_some() {
        reply.ok();
    }
}

pub fn hsetnx(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let lim = limits(ctx);
    let (f, v) = (args.get(2), args.get(3));
    if let Ok(n) = with_hash(ctx, args.get(1), reply, |h| {
        if h.contains(f) {
            0
        } else {
            h.try_convert_for([f.len(), v.len()], lim);
            h.set(f, v, lim);
            1
        }
    }) {
        reply.int(n);
    }
}

pub fn hget(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(h) = hash_read(ctx, args.get(1), reply) {
        match h.and_then(|h| h.get(args.get(2))) {
            Some(v) => reply.bulk(v),
            None => reply.null(),
        }
    }
}

pub fn hmget(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(h) = hash_read(ctx, args.get(1), reply) {
        reply.array(args.len() - 2);
        for f in args.iter().skip(2) {
            match h.and_then(|h| h.get(f)) {
                Some(v) => reply.bulk(v),
                None => reply.null(),
            }
        }
    }
}

pub fn hdel(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let empty = match hash_mut(db, key, now) {
        Found::Missing => return reply.int(0),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(h) => {
            let mut n = 0;
            for f in args.iter().skip(2) {
                if h.del(f) {
                    n += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            reply.int(n);
            h.is_empty()
        }
    };
    if empty {
        if let Some(e) = db.remove(key, now) {
            ctx.shard.free_entry(e);
        }
    }
}

pub fn hlen(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(h) = hash_read(ctx, args.get(1), reply) {
        reply.int(h.map_or(0, |h| h.len()) as i64);
    }
}

pub fn hstrlen(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(h) = hash_read(ctx, args.get(1), reply) {
        reply.int(h.and_then(|h| h.get(args.get(2))).map_or(0, |v| v.len()) as i64);
    }
}

pub fn hexists(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(h) = hash_read(ctx, args.get(1), reply) {
        reply.int(h.is_some_and(|h| h.contains(args.get(2))) as i64);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum What {
    Keys,
    Vals,
    All,
}

fn getall_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, what: What) {
    let Ok(h) = hash_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(h) = h else {
        return if what == What::All {
            reply.map(0)
        } else {
            reply.array(0)
        };
    };
    match what {
        What::All => reply.map(h.len()),
        _ => reply.array(h.len()),
    }
    for (f, v) in h.iter() {
        if what != What::Vals {
            reply.bulk(f);
        }
        if what != What::Keys {
            reply.bulk(v);
        }
    }
}

pub fn hkeys(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    getall_generic(ctx, args, reply, What::Keys)
}
pub fn hvals(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    getall_generic(ctx, args, reply, What::Vals)
}
pub fn hgetall(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    getall_generic(ctx, args, reply, What::All)
}

pub fn hincrby(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(incr) = parse_i64_strict(args.get(3)) else {
        return reply.error(NOT_INTEGER);
    };
    let lim = limits(ctx);
    let field = args.get(2);
    let r = with_hash(ctx, args.get(1), reply, |h| {
        let cur = match h.get(field) {
            None => 0,
            Some(v) => match parse_i64_strict(v) {
                Some(n) => n,
                None => return Err("ERR hash value is not an integer"),
            },
        };
        let Some(new) = cur.checked_add(incr) else {
            return Err(OVERFLOW);
        };
        let mut b = itoa::Buffer::new();
        h.set(field, b.format(new).as_bytes(), lim);
        Ok(new)
    });
    match r {
        Ok(Ok(n)) => reply.int(n),
        Ok(Err(e)) => reply.error(e),
        Err(()) => {}
    }
}

pub fn hincrbyfloat(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(incr) = LDouble::parse(args.get(3)) else {
        return reply.error(NOT_FLOAT);
    };
    if !incr.is_finite() {
        return reply.error("ERR value is NaN or Infinity");
    }
    let lim = limits(ctx);
    let field = args.get(2);
    let r = with_hash(ctx, args.get(1), reply, |h| {
        let cur = match h.get(field) {
            None => LDouble::zero(),
            Some(v) => match LDouble::parse(v) {
                Some(n) => n,
                None => return Err("ERR hash value is not a float"),
            },
        };
        let new = cur.add(&incr);
        if !new.is_finite() {
            return Err("ERR increment would produce NaN or Infinity");
        }
        let s = new.to_human_string();
        h.set(field, s.as_bytes(), lim);
        Ok(s)
    });
    match r {
        Ok(Ok(s)) => reply.bulk(s.as_bytes()),
        Ok(Err(e)) => reply.error(e),
        Err(()) => {}
    }
}

pub const ERR_RANGE_LONG: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

pub fn hrandfield(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    // A generator of its own, seeded from the shard's (the hash borrows ctx).
    let mut rng = SmallRng::seed_from_u64(rand::Rng::random(&mut ctx.shard.rng));
    if args.len() == 2 {
        let Ok(h) = hash_read(ctx, args.get(1), reply) else {
            return;
        };
        let Some(h) = h else {
            return reply.null();
        };
        match h.random(&mut rng) {
            Some((f, _)) => reply.bulk(f),
            None => reply.null(),
        }
        return;
    }
    let mut withvalues = false;
    if args.len() == 4 && eq_ic(args.get(3), b"withvalues") {
        withvalues = true;
    } else if args.len() >= 4 {
        return reply.error(SYNTAX);
    }
    let l = match parse_i64_strict(args.get(2)) {
        None => return reply.error(NOT_INTEGER),
        Some(i64::MIN) => return reply.error(ERR_RANGE_LONG),
        Some(l) => l,
    };
    let resp3 = reply.resp3();
    let Ok(h) = hash_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(h) = h else {
        return reply.array(0);
    };
    let size = h.len();
    let (count, uniq) = if l >= 0 {
        (l as u64, true)
    } else {
        (l.unsigned_abs(), false)
    };
    if count == 0 {
        return reply.array(0);
    }
    let emit = |reply: &mut Reply, f: &[u8], v: &[u8]| {
        if withvalues && resp3 {
            reply.array(2);
        }
        reply.bulk(f);
        if withvalues {
            reply.bulk(v);
        }
    };
    let header = |reply: &mut Reply, n: usize| {
        if withvalues && !resp3 {
            reply.array(n * 2)
        } else {
            reply.array(n)
        }
    };
    // Repetitions allowed (negative count), or a single element.
    if !uniq || count == 1 {
        let n = count as usize;
        header(reply, n);
        for _ in 0..n {
            let (f, v) = h.random(&mut rng).expect("non-empty");
            emit(reply, f, v);
        }
        return;
    }
    // The whole hash.
    if count >= size as u64 {
        header(reply, size);
        for (f, v) in h.iter() {
            emit(reply, f, v);
        }
        return;
    }
    // Distinct fields: a partial shuffle of all of them.
    let n = count as usize;
    let mut all: Vec<(&[u8], &[u8])> = h.iter().collect();
    for i in 0..n {
        let j = rand::Rng::random_range(&mut rng, i..all.len());
        all.swap(i, j);
    }
    header(reply, n);
    for &(f, v) in &all[..n] {
        emit(reply, f, v);
    }
}

/// Redis's parseScanCursorOrReply (strtoul: optional sign, digits, no
/// leading space; an empty string is cursor 0; "-1" wraps).
pub fn parse_scan_cursor(s: &[u8]) -> Option<u64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if s.is_empty() {
        return Some(0);
    }
    if digits.is_empty() || !digits.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses `[MATCH pattern] [COUNT n]` from argument `from`; None after
/// replying with the error.
pub fn parse_scan_options<'a>(
    args: &Args<'a>,
    from: usize,
    reply: &mut Reply,
) -> Option<(Option<&'a [u8]>, usize)> {
    let mut pattern = None;
    let mut count = 10usize;
    let mut i = from;
    while i < args.len() {
        let rem = args.len() - i;
        if eq_ic(args.get(i), b"count") && rem >= 2 {
            match parse_i64_strict(args.get(i + 1)) {
                None => {
                    reply.error(NOT_INTEGER);
                    return None;
                }
                Some(c) if c < 1 => {
                    reply.error(SYNTAX);
                    return None;
                }
                Some(c) => count = c as usize,
            }
            i += 2;
        } else if eq_ic(args.get(i), b"match") && rem >= 2 {
            let p = args.get(i + 1);
            pattern = if p == b"*" { None } else { Some(p) };
            i += 2;
        } else {
            reply.error(SYNTAX);
            return None;
        }
    }
    Some((pattern, count))
}

pub fn hscan(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(cursor) = parse_scan_cursor(args.get(2)) else {
        return reply.error("ERR invalid cursor");
    };
    let Ok(h) = hash_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(h) = h else {
        reply.array(2);
        reply.bulk(b"0");
        return reply.array(0);
    };
    let Some((pattern, count)) = parse_scan_options(&args, 3, reply) else {
        return;
    };
    let mut items: Vec<(&[u8], &[u8])> = Vec::new();
    let next = h.scan(cursor, count, |f, v| {
        if pattern.is_none_or(|p| glob_match(p, f, false)) {
            items.push((f, v));
        }
    });
    reply.array(2);
    let mut b = itoa::Buffer::new();
    reply.bulk(b.format(next).as_bytes());
    reply.array(items.len() * 2);
    for (f, v) in items {
        reply.bulk(f);
        reply.bulk(v);
    }
}
