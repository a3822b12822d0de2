//! Sorted-set algebra and store commands: ZUNION ZINTER ZDIFF (and their
//! STORE forms), ZINTERCARD, ZRANGESTORE. Sources are read one at a time
//! (a shard's tables lend one value at a time), so intersections and
//! differences copy the first source's members as candidates and then
//! check them against each other source in turn: the same per-member
//! aggregation order as Redis, hence the same floating-point results.

use std::collections::HashMap;

use tessera_protocol::{Args, Reply};

use super::errors::*;
use super::zsets::{limits, store_result, zset_read, RangeReq};
use super::zsets_range::RangeBy;
use super::{Ctx, KeyPos, KeySpec, Writes};
use crate::store::Object;
use crate::types::set::Set;
use crate::types::zset::leaf::cmp_key;
use crate::types::zset::Zset;
use crate::util::{eq_ic, parse_i64_strict};

/// ZRANGESTORE / GEOSEARCHSTORE: destination (written) then source (read).
pub const KEY12_WF: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
    writes: Writes::First,
};
/// ZUNION / ZINTER / ZDIFF / ZINTERCARD: numkeys at 1, the keys after it.
pub const NUMKEYS1_R: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: numkeys1_keys,
};
/// The STORE forms: destination at 1, numkeys at 2, the keys after it.
pub const DST_NUMKEYS: KeySpec = KeySpec::Custom {
    legacy: (1, 1, 1),
    find: dst_numkeys_keys,
};

fn numkeys_after(args: &Args, at: usize, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    // Bad counts are left to the handler, whose errors name the command.
    let n = match parse_i64_strict(args.get(at)) {
        Some(n) if n > 0 && at as u64 + (n as u64) < args.len() as u64 => n as u64,
        _ => return Ok(()),
    };
    for i in 0..n as usize {
        out.push(KeyPos {
            index: at + 1 + i,
            write: false,
        });
    }
    Ok(())
}

fn numkeys1_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    numkeys_after(args, 1, out)
}

fn dst_numkeys_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    if args.len() < 3 {
        return Err(SYNTAX);
    }
    out.push(KeyPos {
        index: 1,
        write: true,
    });
    numkeys_after(args, 2, out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's zunionInterAggregate: SUM turns inf + -inf (NaN) into 0.
#[inline]
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val
            }
        }
    }
}

/// An input of the set algebra: a sorted set, or a plain set whose
/// members all score 1 (as in Redis).
#[derive(Clone, Copy)]
enum Source<'a> {
    Zset(&'a Zset),
    Set(&'a Set),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Zset(z) => z.len(),
            Source::Set(s) => s.len(),
        }
    }
    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Source::Zset(z) => z.score(m),
            Source::Set(s) => s.contains(m).then_some(1.0),
        }
    }
    fn for_each(&self, mut f: impl FnMut(f64, &[u8])) {
        match self {
            Source::Zset(z) => z.for_each(0, z.len(), false, f),
            Source::Set(s) => {
                let mut b = itoa::Buffer::new();
                for m in s.iter() {
                    f(1.0, m.bytes(&mut b));
                }
            }
        }
    }
}

/// A source key's value (None when missing), without touching the LRU.
fn source<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<Source<'c>>, ()> {
    let now = ctx.now;
    let Some(e) = ctx.db().get_quiet(key, now) else {
        return Ok(None);
    };
    match e.object() {
        Some(Object::Zset(z)) => Ok(Some(Source::Zset(z))),
        Some(Object::Set(s)) => Ok(Some(Source::Set(s))),
        _ => Err(()),
    }
}

/// Length of a source key (0 when missing); Err(()) after WRONGTYPE.
fn source_len(ctx: &mut Ctx, key: &[u8], reply: &mut Reply) -> Result<usize, ()> {
    let hit = ctx.shard.keyspace.db(ctx.db).contains(key, ctx.now);
    if hit {
        ctx.shard.stats.keyspace_hits += 1;
    } else {
        ctx.shard.stats.keyspace_misses += 1;
    }
    match source(ctx, key) {
        Ok(s) => Ok(s.map_or(0, |s| s.len())),
        Err(()) => {
            reply.error(WRONGTYPE);
            Err(())
        }
    }
}

/// Redis's zunionInterDiffGenericCommand. `dst`: the STORE destination's
/// argument index; `nk`: numkeys' index.
fn algebra(
    ctx: &mut Ctx,
    args: Args,
    reply: &mut Reply,
    op: Op,
    nk: usize,
    store: bool,
    card: bool,
) {
    let name = String::from_utf8_lossy(args.get(0)).to_ascii_lowercase();
    let Some(setnum) = parse_i64_strict(args.get(nk)) else {
        return reply.error(NOT_INTEGER);
    };
    if setnum < 1 {
        return reply.error(&format!(
            "ERR at least 1 input key is needed for '{}' command",
            name
        ));
    }
    if setnum as u64 > (args.len() - nk - 1) as u64 {
        return reply.error(SYNTAX);
    }
    let setnum = setnum as usize;
    let first = nk + 1;
    let mut lens = Vec::with_capacity(setnum);
    for i in 0..setnum {
        match source_len(ctx, args.get(first + i), reply) {
            Ok(n) => lens.push(n),
            Err(()) => return,
        }
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0i64;
    let mut j = first + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = args.get(j);
        if op != Op::Diff && !card && remaining > setnum && eq_ic(a, b"weights") {
            j += 1;
            for w in weights.iter_mut() {
                match super::zsets::parse_score(args.get(j)) {
                    Some(v) => *w = v,
                    None => return reply.error("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != Op::Diff && !card && remaining >= 2 && eq_ic(a, b"aggregate") {
            let v = args.get(j + 1);
            agg = if eq_ic(v, b"sum") {
                Aggregate::Sum
            } else if eq_ic(v, b"min") {
                Aggregate::Min
            } else if eq_ic(v, b"max") {
                Aggregate::Max
            } else {
                return reply.error(SYNTAX);
            };
            j += 2;
        } else if !store && !card && eq_ic(a, b"withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && eq_ic(a, b"limit") {
            match parse_i64_strict(args.get(j + 1)) {
                Some(l) if l >= 0 => limit = l,
                _ => return reply.error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return reply.error(SYNTAX);
        }
    }
    // Union and intersection visit the sources smallest first (a stable
    // sort, like glibc's qsort here): it decides the aggregation order.
    let mut order: Vec<usize> = (0..setnum).collect();
    if op != Op::Diff {
        order.sort_by_key(|&i| lens[i]);
    }
    let mut result: Vec<(f64, Vec<u8>)> = Vec::new();
    let mut cardinality = 0u64;
    match op {
        Op::Union => {
            let mut acc: HashMap<Vec<u8>, f64, foldhash::fast::RandomState> =
                HashMap::with_capacity_and_hasher(
                    lens.iter().copied().max().unwrap_or(0),
                    Default::default(),
                );
            for &i in &order {
                let w = weights[i];
                let Ok(Some(z)) = source(ctx, args.get(first + i)) else {
                    continue;
                };
                z.for_each(|s, m| {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.to_vec(), score);
                        }
                    }
                });
            }
            result = acc.into_iter().map(|(m, s)| (s, m)).collect();
        }
        Op::Inter | Op::Diff => {
            let i0 = order[0];
            let w0 = weights[i0];
            let mut cand: Vec<(f64, Vec<u8>, bool)> = Vec::new();
            if let Ok(Some(z)) = source(ctx, args.get(first + i0)) {
                cand.reserve(z.len());
                z.for_each(|s, m| {
                    let mut score = if op == Op::Inter { w0 * s } else { s };
                    if score.is_nan() {
                        score = 0.0;
                    }
                    cand.push((score, m.to_vec(), true));
                });
            }
            for &i in &order[1..] {
                if cand.iter().all(|c| !c.2) {
                    break;
                }
                let w = weights[i];
                let z = source(ctx, args.get(first + i)).ok().flatten();
                for c in cand.iter_mut().filter(|c| c.2) {
                    let found = z.and_then(|z| z.score(&c.1));
                    match (op, found) {
                        (Op::Inter, Some(v)) => aggregate(&mut c.0, v * w, agg),
                        (Op::Inter, None) => c.2 = false,
                        (_, Some(_)) => c.2 = false,
                        (_, None) => {}
                    }
                }
            }
            if card {
                cardinality = cand.iter().filter(|c| c.2).count() as u64;
                if limit > 0 {
                    cardinality = cardinality.min(limit as u64);
                }
            } else {
                result = cand
                    .into_iter()
                    .filter(|c| c.2)
                    .map(|(s, m, _)| (s, m))
                    .collect();
            }
        }
    }
    if card {
        return reply.int(cardinality as i64);
    }
    result.sort_by(|a, b| cmp_key(a.0, &a.1, b.0, &b.1));
    if store {
        let n = result.len();
        let z = Zset::from_sorted(result.iter().map(|(s, m)| (*s, m.as_slice())), limits(ctx));
        store_result(ctx, args.get(1), z);
        return reply.int(n as i64);
    }
    emit_vec(reply, &result, withscores);
}

/// A range reply from owned entries.
pub(crate) fn emit_vec(reply: &mut Reply, items: &[(f64, Vec<u8>)], withscores: bool) {
    let resp3 = reply.resp3();
    let n = items.len();
    reply.array(if withscores && !resp3 { n * 2 } else { n });
    for (s, m) in items {
        if withscores && resp3 {
            reply.array(2);
        }
        reply.bulk(m);
        if withscores {
            reply.double(*s);
        }
    }
}

pub fn zunion(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Union, 1, false, false)
}
pub fn zinter(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Inter, 1, false, false)
}
pub fn zdiff(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Diff, 1, false, false)
}
pub fn zunionstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Union, 2, true, false)
}
pub fn zinterstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Inter, 2, true, false)
}
pub fn zdiffstore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Diff, 2, true, false)
}
pub fn zintercard(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    algebra(ctx, args, reply, Op::Inter, 1, false, true)
}

pub fn zrangestore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(req) = RangeReq::parse(&args, 2, true, None, None, reply) else {
        return;
    };
    let Ok(z) = zset_read(ctx, req.key, reply) else {
        return;
    };
    let mut items: Vec<(f64, Vec<u8>)> = Vec::new();
    if let Some(z) = z {
        let (lo, hi) = req.ranks(z);
        items.reserve(hi - lo);
        z.for_each(lo, hi, false, |s, m| items.push((s, m.to_vec())));
    }
    let n = items.len();
    let lim = limits(ctx);
    // Redis adds the results one by one in reply order to a listpack (for
    // BYSCORE/BYLEX, or ranks that fit), converting when one no longer
    // fits: the scores added while it was a listpack went through text
    // and lost a -0 sign, even if the result ends up a skiplist.
    if req.by != RangeBy::Rank || n <= lim.max_entries {
        for k in 0..n {
            let i = if req.rev { n - 1 - k } else { k };
            if k + 1 > lim.max_entries || items[i].1.len() > lim.max_value {
                break;
            }
            items[i].0 += 0.0;
        }
    }
    let z = Zset::from_sorted(items.iter().map(|(s, m)| (*s, m.as_slice())), lim);
    store_result(ctx, args.get(1), z);
    reply.int(n as i64);
}
