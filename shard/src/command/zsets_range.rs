//! The ZRANGE family (by rank, score or member, legacy and unified forms),
//! ZREMRANGEBY*, and Redis's parsing of scores and range bounds.

use tessera_protocol::{Args, Reply};

use super::errors::*;
use super::lists::Found;
use super::zsets::{drop_if_empty, zset_mut, zset_read, ERR_MINMAX_FLOAT, ERR_MINMAX_LEX};
use super::Ctx;
use crate::types::zset::Zset;
use crate::util::{eq_ic, parse_i64_strict};

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
/// the end pointer on the terminator. Hex floats go through
/// `parse_hex_float`.
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
