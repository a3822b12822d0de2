//! Sorted-set commands: the table, shared helpers, adds and lookups.
//! Ranges and their parsing are in zsets_range.rs, pops / random members /
//! ZSCAN in zsets_pop.rs, set algebra and store commands in
//! zsets_store.rs, geo commands in geo.rs.

use tessera_protocol::{Args, Reply};

use super::acl::{
    FAST as A_FAST, READ as A_READ, SLOW as A_SLOW, SORTEDSET as A_SORTEDSET, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::lists::Found;
use super::table::{KEY1_R, KEY1_W};
use super::zsets_pop::{zmpop, zpopmax, zpopmin, zrandmember, zscan, ZMPOP_KEYS};
pub(crate) use super::zsets_range::{parse_score, RangeReq};
use super::zsets_range::{
    zrange, zrangebylex, zrangebyscore, zremrangebylex, zremrangebyrank, zremrangebyscore,
    zrevrange, zrevrangebylex, zrevrangebyscore,
};
use super::zsets_range::{LexRange, ScoreRange};
use super::zsets_store::{
    zdiff, zdiffstore, zinter, zintercard, zinterstore, zrangestore, zunion, zunionstore,
    DST_NUMKEYS, KEY12_WF, NUMKEYS1_R,
};
use super::{CommandSpec, Ctx, Route, Split};
use crate::cmd;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::zset::{Zset, ZsetLimits};
use crate::util::eq_ic;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("zadd", -4, WRITE | DENYOOM | FAST, A_WRITE | A_SORTEDSET | A_FAST, "sorted-set", KEY1_W, Route::Keyed(zadd, Split::Gather),
        "Add one or more members to a sorted set, or update its score if it already exists", "1.2.0",
        "O(log(N)) for each item added, where N is the number of elements in the sorted set."),
    cmd!("zincrby", 4, WRITE | DENYOOM | FAST, A_WRITE | A_SORTEDSET | A_FAST, "sorted-set", KEY1_W, Route::Keyed(zincrby, Split::Gather),
        "Increment the score of a member in a sorted set", "1.2.0",
        "O(log(N)) where N is the number of elements in the sorted set."),
    cmd!("zrem", -3, WRITE | FAST, A_WRITE | A_SORTEDSET | A_FAST, "sorted-set", KEY1_W, Route::Keyed(zrem, Split::Gather),
        "Remove one or more members from a sorted set", "1.2.0",
        "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed."),
    cmd!("zcard", 2, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zcard, Split::Gather),
        "Get the number of members in a sorted set", "1.2.0",
        "O(1)"),
    cmd!("zscore", 3, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zscore, Split::Gather),
        "Get the score associated with the given member in a sorted set", "1.2.0",
        "O(1)"),
    cmd!("zmscore", -3, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zmscore, Split::Gather),
        "Get the score associated with the given members in a sorted set", "6.2.0",
        "O(N) where N is the number of members being requested."),
    cmd!("zrank", 3, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zrank, Split::Gather),
        "Determine the index of a member in a sorted set", "2.0.0",
        "O(log(N))"),
    cmd!("zrevrank", 3, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zrevrank, Split::Gather),
        "Determine the index of a member in a sorted set, with scores ordered from high to low", "2.0.0",
        "O(log(N))"),
    cmd!("zcount", 4, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zcount, Split::Gather),
        "Count the members in a sorted set with scores within the given values", "2.0.0",
        "O(log(N)) with N being the number of elements in the sorted set."),
    cmd!("zlexcount", 4, READONLY | FAST, A_READ | A_SORTEDSET | A_FAST, "sorted-set", KEY1_R, Route::Keyed(zlexcount, Split::Gather),
        "Count the number of members in a sorted set between a given lexicographical range", "2.8.9",
        "O(log(N)) with N being the number of elements in the sorted set."),
    cmd!("zrange", -4, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrange, Split::Gather),
        "Return a range of members in a sorted set", "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned."),
    cmd!("zrangebyscore", -4, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrangebyscore, Split::Gather),
        "Return a range of members in a sorted set, by score", "1.0.5",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    cmd!("zrevrangebyscore", -4, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrevrangebyscore, Split::Gather),
        "Return a range of members in a sorted set, by score, with scores ordered from high to low", "2.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    cmd!("zrangebylex", -4, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrangebylex, Split::Gather),
        "Return a range of members in a sorted set, by lexicographical range", "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    cmd!("zrevrangebylex", -4, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrevrangebylex, Split::Gather),
        "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N))."),
    cmd!("zrevrange", -4, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrevrange, Split::Gather),
        "Return a range of members in a sorted set, by index, with scores ordered from high to low", "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned."),
    cmd!("zrangestore", -5, WRITE | DENYOOM, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", KEY12_WF, Route::Keyed(zrangestore, Split::Gather),
        "Store a range of members from sorted set into another key", "6.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key."),
    cmd!("zremrangebyrank", 4, WRITE, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_W, Route::Keyed(zremrangebyrank, Split::Gather),
        "Remove all members in a sorted set within the given indexes", "2.0.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation."),
    cmd!("zremrangebyscore", 4, WRITE, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_W, Route::Keyed(zremrangebyscore, Split::Gather),
        "Remove all members in a sorted set within the given scores", "1.2.0",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation."),
    cmd!("zremrangebylex", 4, WRITE, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_W, Route::Keyed(zremrangebylex, Split::Gather),
        "Remove all members in a sorted set between the given lexicographical range", "2.8.9",
        "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation."),
    cmd!("zpopmin", -2, WRITE | FAST, A_WRITE | A_SORTEDSET | A_FAST, "sorted-set", KEY1_W, Route::Keyed(zpopmin, Split::Gather),
        "Remove and return members with the lowest scores in a sorted set", "5.0.0",
        "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped."),
    cmd!("zpopmax", -2, WRITE | FAST, A_WRITE | A_SORTEDSET | A_FAST, "sorted-set", KEY1_W, Route::Keyed(zpopmax, Split::Gather),
        "Remove and return members with the highest scores in a sorted set", "5.0.0",
        "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped."),
    cmd!("zmpop", -4, WRITE, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", ZMPOP_KEYS, Route::Keyed(zmpop, Split::Gather),
        "Remove and return members with scores in a sorted set", "7.0.0",
        "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped."),
    cmd!("zrandmember", -2, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zrandmember, Split::Gather),
        "Get one or multiple random elements from a sorted set", "6.2.0",
        "O(N) where N is the number of elements returned"),
    cmd!("zscan", -3, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", KEY1_R, Route::Keyed(zscan, Split::Gather),
        "Incrementally iterate sorted sets elements and associated scores", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.."),
    cmd!("zunion", -3, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", NUMKEYS1_R, Route::Keyed(zunion, Split::Gather),
        "Add multiple sorted sets", "6.2.0",
        "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set."),
    cmd!("zinter", -3, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", NUMKEYS1_R, Route::Keyed(zinter, Split::Gather),
        "Intersect multiple sorted sets", "6.2.0",
        "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set."),
    cmd!("zdiff", -3, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", NUMKEYS1_R, Route::Keyed(zdiff, Split::Gather),
        "Subtract multiple sorted sets", "6.2.0",
        "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set."),
    cmd!("zunionstore", -4, WRITE | DENYOOM, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", DST_NUMKEYS, Route::Keyed(zunionstore, Split::Gather),
        "Add multiple sorted sets and store the resulting sorted set in a new key", "2.0.0",
        "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set."),
    cmd!("zinterstore", -4, WRITE | DENYOOM, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", DST_NUMKEYS, Route::Keyed(zinterstore, Split::Gather),
        "Intersect multiple sorted sets and store the resulting sorted set in a new key", "2.0.0",
        "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set."),
    cmd!("zdiffstore", -4, WRITE | DENYOOM, A_WRITE | A_SORTEDSET | A_SLOW, "sorted-set", DST_NUMKEYS, Route::Keyed(zdiffstore, Split::Gather),
        "Subtract multiple sorted sets and store the resulting sorted set in a new key", "6.2.0",
        "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set."),
    cmd!("zintercard", -3, READONLY, A_READ | A_SORTEDSET | A_SLOW, "sorted-set", NUMKEYS1_R, Route::Keyed(zintercard, Split::Gather),
        "Intersect multiple sorted sets and return the cardinality of the result", "7.0.0",
        "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets."),
];

pub const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
pub const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
pub const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";
pub const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";

pub(crate) fn limits(ctx: &Ctx) -> ZsetLimits {
    ZsetLimits {
        max_entries: ctx.shard.config.zset_max_listpack_entries,
        max_value: ctx.shard.config.zset_max_listpack_value,
    }
}

pub(crate) fn zset_mut<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Found<'a, Zset> {
    super::typed::typed_mut(db, key, now)
}

/// A key's sorted set for reading, counting keyspace hits and misses.
/// Ok(None) when missing; Err(()) after replying WRONGTYPE.
pub(crate) fn zset_read<'c>(
    ctx: &'c mut Ctx,
    key: &[u8],
    reply: &mut Reply,
) -> Result<Option<&'c Zset>, ()> {
    super::typed::typed_read(ctx, key, reply)
}

/// Stores a store command's result under `key` (replacing whatever was
/// there, TTL included), or deletes `key` when the result is empty.
pub(crate) fn store_result(ctx: &mut Ctx, key: &[u8], z: Zset) {
    let now = ctx.now;
    if z.is_empty() {
        if let Some(e) = ctx.db().remove(key, now) {
            ctx.shard.free_entry(e);
        }
        return;
    }
    let e = Entry::new_object(key, Object::Zset(z), None, lru_clock(now));
    if let Some(old) = ctx.db().insert(e, now) {
        ctx.shard.free_entry(old);
    }
}

/// Removes `key` if its sorted set became empty.
pub(crate) fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now;
    let db = ctx.db();
    if let Found::Ok(z) = zset_mut(db, key, now) {
        if z.is_empty() {
            if let Some(e) = db.remove(key, now) {
                ctx.shard.free_entry(e);
            }
        }
    }
}

/// ZADD's options.
#[derive(Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

enum AddOut {
    Added,
    Updated,
    /// Processed, score unchanged.
    Same,
    Nop,
    Nan,
}

/// Redis's zsetAdd for one pair: (what happened, the resulting score).
fn zadd_one(
    z: &mut Zset,
    score: f64,
    member: &[u8],
    f: AddFlags,
    lim: ZsetLimits,
) -> (AddOut, f64) {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return (AddOut::Nop, cur);
            }
            let mut score = score;
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return (AddOut::Nan, cur);
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return (AddOut::Nop, cur);
            }
            if score != cur {
                z.set_score(member, cur, score);
                (AddOut::Updated, score)
            } else {
                // Processed without a change (-0 vs 0 keeps the old bits).
                (AddOut::Same, score)
            }
        }
        None if f.xx => (AddOut::Nop, score),
        None => {
            z.insert(score, member, lim);
            (AddOut::Added, score)
        }
    }
}

fn zadd_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, mut f: AddFlags) {
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let o = args.get(idx);
        if eq_ic(o, b"nx") {
            f.nx = true;
        } else if eq_ic(o, b"xx") {
            f.xx = true;
        } else if eq_ic(o, b"ch") {
            ch = true;
        } else if eq_ic(o, b"incr") {
            f.incr = true;
        } else if eq_ic(o, b"gt") {
            f.gt = true;
        } else if eq_ic(o, b"lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return reply.error(SYNTAX);
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return reply.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return reply.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 1 {
        return reply.error("ERR INCR option supports a single increment-element pair");
    }
    // Every score is checked before anything is written.
    for j in 0..elements {
        if parse_score(args.get(idx + 2 * j)).is_none() {
            return reply.error(NOT_FLOAT);
        }
    }
    let lim = limits(ctx);
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let mut fresh = None;
    let z = match zset_mut(db, key, now) {
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(z) => z,
        Found::Missing => {
            if f.xx {
                return if f.incr { reply.null() } else { reply.int(0) };
            }
            fresh.insert(Zset::new_for(args.get(idx + 1).len(), lim))
        }
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last = 0.0;
    let mut nan = false;
    for j in 0..elements {
        let score = parse_score(args.get(idx + 2 * j)).unwrap_or(0.0);
        let member = args.get(idx + 2 * j + 1);
        let (out, s) = zadd_one(z, score, member, f, lim);
        match out {
            AddOut::Added => {
                added += 1;
                processed += 1;
            }
            AddOut::Updated => {
                updated += 1;
                processed += 1;
            }
            AddOut::Same => processed += 1,
            AddOut::Nop => {}
            AddOut::Nan => {
                nan = true;
                break;
            }
        }
        last = s;
    }
    if let Some(z) = fresh {
        if !z.is_empty() {
            db.insert(
                Entry::new_object(key, Object::Zset(z), None, lru_clock(now)),
                now,
            );
        }
    }
    if nan {
        return reply.error(ERR_NAN);
    }
    if f.incr {
        if processed > 0 {
            reply.double(last)
        } else {
            reply.null()
        }
    } else {
        reply.int(if ch { added + updated } else { added })
    }
}

pub fn zadd(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zadd_generic(ctx, args, reply, AddFlags::default())
}

pub fn zincrby(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zadd_generic(
        ctx,
        args,
        reply,
        AddFlags {
            incr: true,
            ..AddFlags::default()
        },
    )
}

pub fn zrem(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    match zset_mut(db, key, now) {
        Found::Missing => return reply.int(0),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(z) => {
            let mut n = 0;
            for m in args.iter().skip(2) {
                if z.remove(m).is_some() {
                    n += 1;
                    if z.is_empty() {
                        break;
                    }
                }
            }
            reply.int(n);
        }
    }
    drop_if_empty(ctx, key);
}

pub fn zcard(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(z) = zset_read(ctx, args.get(1), reply) {
        reply.int(z.map_or(0, |z| z.len()) as i64);
    }
}

pub fn zscore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(z) = zset_read(ctx, args.get(1), reply) {
        match z.and_then(|z| z.score(args.get(2))) {
            Some(s) => reply.double(s),
            None => reply.null(),
        }
    }
}

pub fn zmscore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(z) = zset_read(ctx, args.get(1), reply) {
        reply.array(args.len() - 2);
        for m in args.iter().skip(2) {
            match z.and_then(|z| z.score(m)) {
                Some(s) => reply.double(s),
                None => reply.null(),
            }
        }
    }
}

fn rank_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, rev: bool) {
    if let Ok(z) = zset_read(ctx, args.get(1), reply) {
        let Some(z) = z else {
            return reply.null();
        };
        match z.rank(args.get(2)) {
            Some((r, _)) => reply.int(if rev { z.len() - 1 - r } else { r } as i64),
            None => reply.null(),
        }
    }
}

pub fn zrank(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    rank_generic(ctx, args, reply, false)
}
pub fn zrevrank(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    rank_generic(ctx, args, reply, true)
}

pub fn zcount(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(r) = ScoreRange::parse(args.get(2), args.get(3)) else {
        return reply.error(ERR_MINMAX_FLOAT);
    };
    if let Ok(z) = zset_read(ctx, args.get(1), reply) {
        let (lo, hi) = z.map_or((0, 0), |z| r.ranks(z));
        reply.int((hi - lo) as i64);
    }
}

pub fn zlexcount(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(r) = LexRange::parse(args.get(2), args.get(3)) else {
        return reply.error(ERR_MINMAX_LEX);
    };
    if let Ok(z) = zset_read(ctx, args.get(1), reply) {
        let (lo, hi) = z.map_or((0, 0), |z| r.ranks(z));
        reply.int((hi - lo) as i64);
    }
}
