//! Sorted-set commands: adds, lookups, ranges, removals, pops, random
//! members and ZSCAN. The set-algebra and store commands (ZUNION...,
//! ZRANGESTORE) are in zsets_store.rs, geo commands in geo.rs.

use tessera_protocol::{Args, Reply};

use super::acl::{
    FAST as A_FAST, READ as A_READ, SLOW as A_SLOW, SORTEDSET as A_SORTEDSET, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::lists::Found;
use super::table::{KEY1_R, KEY1_W};
use super::zsets_store::{
    zdiff, zdiffstore, zinter, zintercard, zinterstore, zrangestore, zunion, zunionstore,
    DST_NUMKEYS, KEY12_WF, NUMKEYS1_R,
};
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Route, Split};
use crate::cmd;
use crate::glob::glob_match;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::zset::{Zset, ZsetLimits};
use crate::util::{eq_ic, parse_i64_strict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ZMPOP_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: zmpop_keys,
};

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
    match db.get(key, now) {
        None => Found::Missing,
        Some(e) => match e.object_mut() {
            Some(Object::Zset(z)) => Found::Ok(z),
            _ => Found::Wrong,
        },
    }
}

/// A key's sorted set for reading, counting keyspace hits and misses.
/// Ok(None) when missing; Err(()) after replying WRONGTYPE.
pub(crate) fn zset_read<'c>(
    ctx: &'c mut Ctx,
    key: &[u8],
    reply: &mut Reply,
) -> Result<Option<&'c Zset>, ()> {
    let now = ctx.now;
    let db = ctx.shard.keyspace.db(ctx.db);
    match db.get(key, now) {
        None => {
            ctx.shard.stats.keyspace_misses += 1;
            Ok(None)
        }
        Some(e) => {
            ctx.shard.stats.keyspace_hits += 1;
            match e.object() {
                Some(Object::Zset(z)) => Ok(Some(z)),
                _ => {
                    reply.error(WRONGTYPE);
                    Err(())
                }
            }
        }
    }
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
fn drop_if_empty(ctx: &mut Ctx, key: &[u8]) {
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

/// Skips C's isspace characters (strtod accepts them before a number).
fn skip_space(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    &s[n..]
}

/// strtod over the whole of `s` (after optional leading space): the value
/// and whether it overflowed or underflowed to zero (ERANGE). None when
/// `s` is not entirely a number. An empty string is 0, as strtod leaves
/// the end pointer on the terminator. Hex floats are not supported.
fn strtod_all(s: &[u8]) -> Option<(f64, bool)> {
    if s.is_empty() {
        return Some((0.0, false));
    }
    let t = skip_space(s);
    if t.is_empty() {
        return None;
    }
    let txt = std::str::from_utf8(t).ok()?;
    let v: f64 = match txt.parse() {
        Ok(v) => v,
        Err(_) => parse_hex_float(txt)?,
    };
    let body = txt.trim_start_matches(['+', '-']);
    let literal_inf = body.starts_with(['i', 'I']);
    let erange = if v.is_infinite() {
        !literal_inf
    } else if v == 0.0 {
        // Underflow: a mantissa with a non-zero digit that came out as 0.
        let mant = body.split(['e', 'E']).next().unwrap_or("");
        mant.bytes().any(|c| (b'1'..=b'9').contains(&c))
    } else {
        false
    };
    Some((v, erange))
}

/// C99 hex floats as strtod reads them: `[+-]0x<hex>[.<hex>][p[+-]<dec>]`.
fn parse_hex_float(t: &str) -> Option<f64> {
    let (neg, rest) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mant, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = e.parse().ok()?;
        v *= 2f64.powi(e);
    }
    Some(if neg { -v } else { v })
}

/// Redis's getDoubleFromObject: no leading space, not empty, not NaN, no
/// overflow (and no underflow to zero).
pub(crate) fn parse_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() || skip_space(s).len() != s.len() {
        return None;
    }
    match strtod_all(s)? {
        (v, false) if !v.is_nan() => Some(v),
        _ => None,
    }
}

/// An inclusive or exclusive score bound (zslParseRange).
fn parse_score_bound(s: &[u8]) -> Option<(f64, bool)> {
    let (body, ex) = match s.first() {
        Some(b'(') => (&s[1..], true),
        _ => (s, false),
    };
    let (v, _) = strtod_all(body)?;
    if v.is_nan() {
        return None;
    }
    Some((v, ex))
}

/// A score range as rank bounds of a set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScoreRange {
    pub min: f64,
    pub minex: bool,
    pub max: f64,
    pub maxex: bool,
}

impl ScoreRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }
    /// [lo, hi) ranks of the entries in range.
    pub fn ranks(&self, z: &Zset) -> (usize, usize) {
        let lo = z.count_below(self.min, self.minex);
        let hi = z.count_below(self.max, !self.maxex);
        (lo, hi.max(lo))
    }
}

#[derive(Clone, Copy, Debug)]
enum LexBound<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex_bound(s: &[u8]) -> Option<LexBound<'_>> {
    match s.first()? {
        b'+' if s.len() == 1 => Some(LexBound::Max),
        b'-' if s.len() == 1 => Some(LexBound::Min),
        b'(' => Some(LexBound::Excl(&s[1..])),
        b'[' => Some(LexBound::Incl(&s[1..])),
        _ => None,
    }
}

/// A member range (meaningful when all scores are equal, as in Redis).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LexRange<'a> {
    min: LexBound<'a>,
    max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange {
            min: parse_lex_bound(min)?,
            max: parse_lex_bound(max)?,
        })
    }
    /// Entries ordered before the bound (`upper`: as a range's max).
    fn below(z: &Zset, b: LexBound, upper: bool) -> usize {
        match b {
            LexBound::Min => 0,
            LexBound::Max => z.len(),
            LexBound::Incl(v) if upper => z.count_less(|_, m| m <= v),
            LexBound::Incl(v) => z.count_less(|_, m| m < v),
            LexBound::Excl(v) if upper => z.count_less(|_, m| m < v),
            LexBound::Excl(v) => z.count_less(|_, m| m <= v),
        }
    }
    pub fn ranks(&self, z: &Zset) -> (usize, usize) {
        let lo = Self::below(z, self.min, false);
        let hi = Self::below(z, self.max, true);
        (lo, hi.max(lo))
    }
}

/// Writes ranks `lo..hi` (ascending, or descending if `rev`) as a range
/// reply: members, with scores as doubles (RESP3: [member, score] pairs).
pub(crate) fn emit_range(
    reply: &mut Reply,
    z: &Zset,
    lo: usize,
    hi: usize,
    rev: bool,
    withscores: bool,
) {
    let n = hi.saturating_sub(lo);
    let resp3 = reply.resp3();
    reply.array(if withscores && !resp3 { n * 2 } else { n });
    z.for_each(lo, hi, rev, |s, m| {
        if withscores && resp3 {
            reply.array(2);
        }
        reply.bulk(m);
        if withscores {
            reply.double(s);
        }
    });
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

/// What a ZRANGE-family command selects by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeBy {
    Rank,
    Score,
    Lex,
}

/// A parsed ZRANGE-family request.
pub(crate) struct RangeReq<'a> {
    pub key: &'a [u8],
    pub by: RangeBy,
    pub rev: bool,
    pub withscores: bool,
    start: i64,
    end: i64,
    score: Option<ScoreRange>,
    lex: Option<LexRange<'a>>,
    offset: i64,
    limit: i64,
}

impl<'a> RangeReq<'a> {
    /// Redis's zrangeGenericCommand steps 1-2: options from `at + 3`, then
    /// the range. None after replying with the error.
    pub fn parse(
        args: &Args<'a>,
        at: usize,
        store: bool,
        by: Option<RangeBy>,
        rev: Option<bool>,
        reply: &mut Reply,
    ) -> Option<RangeReq<'a>> {
        let (mut by_o, mut rev_o) = (by, rev);
        let mut withscores = false;
        let (mut offset, mut limit) = (0i64, -1i64);
        let mut j = at + 3;
        while j < args.len() {
            let a = args.get(j);
            let left = args.len() - j - 1;
            if !store && eq_ic(a, b"withscores") {
                withscores = true;
            } else if eq_ic(a, b"limit") && left >= 2 {
                let (Some(o), Some(l)) = (
                    parse_i64_strict(args.get(j + 1)),
                    parse_i64_strict(args.get(j + 2)),
                ) else {
                    reply.error(NOT_INTEGER);
                    return None;
                };
                offset = o;
                limit = l;
                j += 2;
            } else if rev_o.is_none() && eq_ic(a, b"rev") {
                rev_o = Some(true);
            } else if by.is_none() && by_o.is_none() && eq_ic(a, b"bylex") {
                by_o = Some(RangeBy::Lex);
            } else if by.is_none() && by_o.is_none() && eq_ic(a, b"byscore") {
                by_o = Some(RangeBy::Score);
            } else {
                reply.error(SYNTAX);
                return None;
            }
            j += 1;
        }
        let rev = rev_o.unwrap_or(false);
        let by = by_o.unwrap_or(RangeBy::Rank);
        if limit != -1 && by == RangeBy::Rank {
            reply.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
            return None;
        }
        if withscores && by == RangeBy::Lex {
            reply.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
            return None;
        }
        let (mut min, mut max) = (args.get(at + 1), args.get(at + 2));
        if rev && by != RangeBy::Rank {
            std::mem::swap(&mut min, &mut max);
        }
        let mut req = RangeReq {
            key: args.get(at),
            by,
            rev,
            withscores,
            start: 0,
            end: 0,
            score: None,
            lex: None,
            offset,
            limit,
        };
        match by {
            RangeBy::Rank => {
                let (Some(s), Some(e)) = (parse_i64_strict(min), parse_i64_strict(max)) else {
                    reply.error(NOT_INTEGER);
                    return None;
                };
                req.start = s;
                req.end = e;
            }
            RangeBy::Score => match ScoreRange::parse(min, max) {
                Some(r) => req.score = Some(r),
                None => {
                    reply.error(ERR_MINMAX_FLOAT);
                    return None;
                }
            },
            RangeBy::Lex => match LexRange::parse(min, max) {
                Some(r) => req.lex = Some(r),
                None => {
                    reply.error(ERR_MINMAX_LEX);
                    return None;
                }
            },
        }
        Some(req)
    }

    /// The selected ascending ranks [lo, hi) of `z` (walked backward when
    /// `rev`).
    pub fn ranks(&self, z: &Zset) -> (usize, usize) {
        let len = z.len() as i64;
        match self.by {
            RangeBy::Rank => {
                let (mut s, mut e) = (self.start, self.end);
                if s < 0 {
                    s += len;
                }
                if e < 0 {
                    e += len;
                }
                if s < 0 {
                    s = 0;
                }
                if s > e || s >= len {
                    return (0, 0);
                }
                if e >= len {
                    e = len - 1;
                }
                let (s, e) = (s as usize, e as usize);
                if self.rev {
                    let n = len as usize;
                    (n - 1 - e, n - s)
                } else {
                    (s, e + 1)
                }
            }
            RangeBy::Score | RangeBy::Lex => {
                let (lo, hi) = match (&self.score, &self.lex) {
                    (Some(r), _) => r.ranks(z),
                    (_, Some(r)) => r.ranks(z),
                    _ => (0, 0),
                };
                // LIMIT: a negative offset selects nothing, a negative
                // count everything after the offset.
                if self.offset < 0 {
                    return (0, 0);
                }
                let avail = (hi - lo) as u64;
                let off = (self.offset as u64).min(avail);
                let cnt = if self.limit < 0 {
                    avail - off
                } else {
                    (self.limit as u64).min(avail - off)
                };
                let (off, cnt) = (off as usize, cnt as usize);
                if self.rev {
                    (hi - off - cnt, hi - off)
                } else {
                    (lo + off, lo + off + cnt)
                }
            }
        }
    }
}

fn zrange_generic(
    ctx: &mut Ctx,
    args: Args,
    reply: &mut Reply,
    by: Option<RangeBy>,
    rev: Option<bool>,
) {
    let Some(req) = RangeReq::parse(&args, 1, false, by, rev, reply) else {
        return;
    };
    let Ok(z) = zset_read(ctx, req.key, reply) else {
        return;
    };
    let Some(z) = z else {
        return reply.array(0);
    };
    let (lo, hi) = req.ranks(z);
    emit_range(reply, z, lo, hi, req.rev, req.withscores);
}

pub fn zrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zrange_generic(ctx, args, reply, None, None)
}
pub fn zrevrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zrange_generic(ctx, args, reply, Some(RangeBy::Rank), Some(true))
}
pub fn zrangebyscore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zrange_generic(ctx, args, reply, Some(RangeBy::Score), Some(false))
}
pub fn zrevrangebyscore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zrange_generic(ctx, args, reply, Some(RangeBy::Score), Some(true))
}
pub fn zrangebylex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zrange_generic(ctx, args, reply, Some(RangeBy::Lex), Some(false))
}
pub fn zrevrangebylex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zrange_generic(ctx, args, reply, Some(RangeBy::Lex), Some(true))
}

/// ZREMRANGEBY{RANK,SCORE,LEX}: the range is parsed before the key is
/// looked up, as in Redis.
fn zremrange_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, by: RangeBy) {
    let (a, b) = (args.get(2), args.get(3));
    let mut rank = (0i64, 0i64);
    let mut score = None;
    let mut lex = None;
    match by {
        RangeBy::Rank => match (parse_i64_strict(a), parse_i64_strict(b)) {
            (Some(s), Some(e)) => rank = (s, e),
            _ => return reply.error(NOT_INTEGER),
        },
        RangeBy::Score => match ScoreRange::parse(a, b) {
            Some(r) => score = Some(r),
            None => return reply.error(ERR_MINMAX_FLOAT),
        },
        RangeBy::Lex => match LexRange::parse(a, b) {
            Some(r) => lex = Some(r),
            None => return reply.error(ERR_MINMAX_LEX),
        },
    }
    let now = ctx.now;
    let key = args.get(1);
    match zset_mut(ctx.db(), key, now) {
        Found::Missing => return reply.int(0),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(z) => {
            let (lo, hi) = match by {
                RangeBy::Rank => {
                    let req = RangeReq {
                        key,
                        by,
                        rev: false,
                        withscores: false,
                        start: rank.0,
                        end: rank.1,
                        score: None,
                        lex: None,
                        offset: 0,
                        limit: -1,
                    };
                    req.ranks(z)
                }
                RangeBy::Score => score.map_or((0, 0), |r| r.ranks(z)),
                RangeBy::Lex => lex.map_or((0, 0), |r| r.ranks(z)),
            };
            z.remove_range(lo, hi);
            reply.int((hi - lo) as i64);
        }
    }
    drop_if_empty(ctx, key);
}

pub fn zremrangebyrank(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zremrange_generic(ctx, args, reply, RangeBy::Rank)
}
pub fn zremrangebyscore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zremrange_generic(ctx, args, reply, RangeBy::Score)
}
pub fn zremrangebylex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zremrange_generic(ctx, args, reply, RangeBy::Lex)
}

/// Redis's genericZpopCommand (non-blocking): pops up to `count` (-1: one,
/// not given) from the first non-empty key.
#[allow(clippy::too_many_arguments)]
fn zpop_generic(
    ctx: &mut Ctx,
    args: &Args,
    keys: std::ops::Range<usize>,
    max: bool,
    count: i64,
    emitkey: bool,
    nested: bool,
    nil_when_empty: bool,
    reply: &mut Reply,
) {
    let now = ctx.now;
    let mut found = None;
    for i in keys {
        let key = args.get(i);
        match zset_mut(ctx.db(), key, now) {
            Found::Missing => continue,
            Found::Wrong => return reply.error(WRONGTYPE),
            Found::Ok(_) => {
                found = Some(key);
                break;
            }
        }
    }
    let Some(key) = found else {
        return if nil_when_empty {
            reply.null_array()
        } else {
            reply.array(0)
        };
    };
    if count == 0 {
        return reply.array(0);
    }
    let Found::Ok(z) = zset_mut(ctx.db(), key, now) else {
        return reply.array(0);
    };
    let n = z.len().min(if count < 0 { 1 } else { count as usize });
    let (lo, hi) = if max { (z.len() - n, z.len()) } else { (0, n) };
    if emitkey {
        reply.array(2);
        reply.bulk(key);
    }
    reply.array(if nested { n } else { n * 2 });
    z.for_each(lo, hi, max, |s, m| {
        if nested {
            reply.array(2);
        }
        reply.bulk(m);
        reply.double(s);
    });
    z.remove_range(lo, hi);
    drop_if_empty(ctx, key);
}

fn zpop_minmax(ctx: &mut Ctx, args: Args, reply: &mut Reply, max: bool) {
    if args.len() > 3 {
        return reply.error(SYNTAX);
    }
    let mut count = -1;
    if args.len() == 3 {
        match parse_i64_strict(args.get(2)) {
            Some(c) if c >= 0 => count = c,
            _ => return reply.error(ERR_POSITIVE),
        }
    }
    let nested = reply.resp3() && count != -1;
    zpop_generic(ctx, &args, 1..2, max, count, false, nested, false, reply);
}

pub fn zpopmin(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zpop_minmax(ctx, args, reply, false)
}
pub fn zpopmax(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    zpop_minmax(ctx, args, reply, true)
}

const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";

/// ZMPOP numkeys key... MIN|MAX [COUNT n]: the keys after numkeys.
fn zmpop_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    let n = match parse_i64_strict(args.get(1)) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(ERR_NUMKEYS),
    };
    if 2 + n > args.len() as u64 {
        return Err(SYNTAX);
    }
    for i in 0..n as usize {
        out.push(KeyPos {
            index: 2 + i,
            write: true,
        });
    }
    Ok(())
}

pub fn zmpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let numkeys = match parse_i64_strict(args.get(1)) {
        Some(n) if n >= 1 => n as u64,
        _ => return reply.error(ERR_NUMKEYS),
    };
    let where_idx = 1 + numkeys + 1;
    if where_idx >= args.len() as u64 {
        return reply.error(SYNTAX);
    }
    let where_idx = where_idx as usize;
    let w = args.get(where_idx);
    let max = if eq_ic(w, b"min") {
        false
    } else if eq_ic(w, b"max") {
        true
    } else {
        return reply.error(SYNTAX);
    };
    let mut count = -1i64;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && eq_ic(args.get(j), b"count") && more > 0 {
            j += 1;
            match parse_i64_strict(args.get(j)) {
                Some(c) if c >= 1 => count = c,
                _ => return reply.error("ERR count should be greater than 0"),
            }
        } else {
            return reply.error(SYNTAX);
        }
        j += 1;
    }
    if count == -1 {
        count = 1;
    }
    zpop_generic(
        ctx,
        &args,
        2..where_idx,
        max,
        count,
        true,
        true,
        true,
        reply,
    );
}

pub fn zrandmember(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    // A generator of its own, seeded from the shard's (the set borrows ctx).
    let mut rng = SmallRng::seed_from_u64(ctx.shard.rng.random());
    if args.len() == 2 {
        let Ok(z) = zset_read(ctx, args.get(1), reply) else {
            return;
        };
        match z {
            Some(z) if !z.is_empty() => reply.bulk(z.get(rng.random_range(0..z.len())).1),
            _ => reply.null(),
        }
        return;
    }
    let mut withscores = false;
    if args.len() == 4 && eq_ic(args.get(3), b"withscores") {
        withscores = true;
    } else if args.len() >= 4 {
        return reply.error(SYNTAX);
    }
    let l = match parse_i64_strict(args.get(2)) {
        None => return reply.error(NOT_INTEGER),
        Some(i64::MIN) => return reply.error(super::hashes::ERR_RANGE_LONG),
        Some(l) => l,
    };
    let resp3 = reply.resp3();
    let Ok(z) = zset_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(z) = z else {
        return reply.array(0);
    };
    let (count, uniq) = if l >= 0 {
        (l as u64, true)
    } else {
        (l.unsigned_abs(), false)
    };
    if count == 0 {
        return reply.array(0);
    }
    let size = z.len();
    let emit = |reply: &mut Reply, r: usize| {
        let (s, m) = z.get(r);
        if withscores && resp3 {
            reply.array(2);
        }
        reply.bulk(m);
        if withscores {
            reply.double(s);
        }
    };
    let header =
        |reply: &mut Reply, n: usize| reply.array(if withscores && !resp3 { n * 2 } else { n });
    if !uniq || count == 1 {
        let n = count as usize;
        header(reply, n);
        for _ in 0..n {
            emit(reply, rng.random_range(0..size));
        }
        return;
    }
    if count >= size as u64 {
        return emit_range(reply, z, 0, size, false, withscores);
    }
    // Distinct members: a partial shuffle of the ranks.
    let n = count as usize;
    let mut ranks: Vec<u32> = (0..size as u32).collect();
    for i in 0..n {
        let j = rng.random_range(i..ranks.len());
        ranks.swap(i, j);
    }
    header(reply, n);
    for &r in &ranks[..n] {
        emit(reply, r as usize);
    }
}

/// ZSCAN: a small set is returned whole; a large one by rank, `count` at a
/// time (the cursor is the next rank; see the README for what that means
/// when the set changes between calls).
pub fn zscan(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    use super::hashes::{parse_scan_cursor, parse_scan_options};
    let Some(cursor) = parse_scan_cursor(args.get(2)) else {
        return reply.error("ERR invalid cursor");
    };
    let Ok(z) = zset_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(z) = z else {
        reply.array(2);
        reply.bulk(b"0");
        return reply.array(0);
    };
    let Some((pattern, count)) = parse_scan_options(&args, 3, reply) else {
        return;
    };
    let (lo, hi) = match z {
        Zset::Small(_) => (0, z.len()),
        Zset::Big(_) => {
            let lo = (cursor as usize).min(z.len());
            (lo, lo.saturating_add(count).min(z.len()))
        }
    };
    let next = if hi >= z.len() { 0 } else { hi as u64 };
    let mut items: Vec<(f64, &[u8])> = Vec::new();
    for r in lo..hi {
        let (s, m) = z.get(r);
        if pattern.is_none_or(|p| glob_match(p, m, false)) {
            items.push((s, m));
        }
    }
    reply.array(2);
    let mut b = itoa::Buffer::new();
    reply.bulk(b.format(next).as_bytes());
    reply.array(items.len() * 2);
    let mut tmp = [0u8; 40];
    for (s, m) in items {
        reply.bulk(m);
        reply.bulk(tessera_protocol::reply::format_double(s, &mut tmp));
    }
}
