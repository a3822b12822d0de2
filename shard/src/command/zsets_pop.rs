//! ZPOPMIN ZPOPMAX ZMPOP (non-blocking pops), ZRANDMEMBER and ZSCAN.

use tessera_protocol::{Args, Reply};

use super::errors::*;
use super::lists::{Found, Popped};
use super::zsets::{drop_if_empty, zset_mut, zset_read, ERR_POSITIVE};
use super::zsets_range::emit_range;
use super::{Ctx, KeyPos, KeySpec};
use crate::glob::glob_match;
use crate::types::zset::Zset;
use crate::util::{eq_ic, parse_i64_strict};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub(crate) const ZMPOP_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: zmpop_keys,
};

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
    if zmpop_at(ctx, &args, 1, reply) == Popped::Nothing {
        reply.null_array();
    }
}

/// ZMPOP's work with `numkeys` at argument `at` (1 for ZMPOP, 2 for
/// BZMPOP, after its timeout).
pub(crate) fn zmpop_at(ctx: &mut Ctx, args: &Args, at: usize, reply: &mut Reply) -> Popped {
    let numkeys = match parse_i64_strict(args.get(at)) {
        Some(n) if n >= 1 => n as u64,
        _ => {
            reply.error(ERR_NUMKEYS);
            return Popped::Replied;
        }
    };
    let where_idx = at as u64 + numkeys + 1;
    if where_idx >= args.len() as u64 {
        reply.error(SYNTAX);
        return Popped::Replied;
    }
    let where_idx = where_idx as usize;
    let w = args.get(where_idx);
    let max = if eq_ic(w, b"min") {
        false
    } else if eq_ic(w, b"max") {
        true
    } else {
        reply.error(SYNTAX);
        return Popped::Replied;
    };
    let mut count = -1i64;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && eq_ic(args.get(j), b"count") && more > 0 {
            j += 1;
            match parse_i64_strict(args.get(j)) {
                Some(c) if c >= 1 => count = c,
                _ => {
                    reply.error("ERR count should be greater than 0");
                    return Popped::Replied;
                }
            }
        } else {
            reply.error(SYNTAX);
            return Popped::Replied;
        }
        j += 1;
    }
    if count == -1 {
        count = 1;
    }
    match first_zset(ctx, args, at + 1..where_idx) {
        Err(()) => {
            reply.error(WRONGTYPE);
            return Popped::Replied;
        }
        Ok(None) => return Popped::Nothing,
        Ok(Some(_)) => {}
    }
    zpop_generic(
        ctx,
        args,
        at + 1..where_idx,
        max,
        count,
        true,
        true,
        true,
        reply,
    );
    Popped::Replied
}

/// The index of the first of `keys` holding a sorted set; Err when one
/// before it holds another type.
pub(crate) fn first_zset(
    ctx: &mut Ctx,
    args: &Args,
    keys: std::ops::Range<usize>,
) -> Result<Option<usize>, ()> {
    let now = ctx.now;
    for i in keys {
        match zset_mut(ctx.db(), args.get(i), now) {
            Found::Missing => continue,
            Found::Wrong => return Err(()),
            Found::Ok(_) => return Ok(Some(i)),
        }
    }
    Ok(None)
}

/// BZPOPMIN/BZPOPMAX's reply from a key known to hold a sorted set:
/// [key, member, score].
pub(crate) fn zpop_one_with_key(ctx: &mut Ctx, key: &[u8], max: bool, reply: &mut Reply) {
    let now = ctx.now;
    let Found::Ok(z) = zset_mut(ctx.db(), key, now) else {
        return reply.null_array();
    };
    let (lo, hi) = if max { (z.len() - 1, z.len()) } else { (0, 1) };
    reply.array(3);
    reply.bulk(key);
    z.for_each(lo, hi, max, |s, m| {
        reply.bulk(m);
        reply.double(s);
    });
    z.remove_range(lo, hi);
    drop_if_empty(ctx, key);
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

/// A score as a cursor: an order-preserving map of its bits (never 0,
/// which stays "start" / "done").
fn score_cursor(s: f64) -> u64 {
    let b = s.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn cursor_score(c: u64) -> f64 {
    f64::from_bits(if c >> 63 == 1 { c & !(1 << 63) } else { !c })
}

/// ZSCAN: a small set is returned whole (cursor 0), as in Redis. A large
/// one is walked in score order and the cursor is the next score to visit,
/// so members removed meanwhile never make others be skipped (SCAN's
/// guarantee): a call resumes at the first member of that score (some may
/// come twice, which SCAN allows) and never ends inside a run of equal
/// scores that it started in, so every call moves on.
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
    let len = z.len();
    let (lo, hi) = match z {
        Zset::Small(_) => (0, len),
        Zset::Big(_) => {
            let lo = if cursor == 0 {
                0
            } else {
                z.count_below(cursor_score(cursor), false)
            };
            let mut hi = lo.saturating_add(count).min(len);
            if hi < len && lo < len && z.get(hi).0 == z.get(lo).0 {
                hi = z.count_below(z.get(lo).0, true);
            }
            (lo, hi)
        }
    };
    let next = if hi >= len {
        0
    } else {
        score_cursor(z.get(hi).0)
    };
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
