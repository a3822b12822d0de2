//! SORT and SORT_RO, with Redis 7.0's option parsing, LIMIT arithmetic,
//! comparison rules and errors.
//!
//! BY and GET patterns name keys computed from the elements, which the
//! server cannot know when it routes the request. When a BY pattern sorts
//! by external keys (it has a `*`, and is not ignored as `BY nosort`) or a
//! GET pattern is not `#`, the connection first asks the sorted key's shard
//! for the keys the patterns will read (`PatternReads::keys`, with the same
//! substitution as SORT itself: `pattern_key`). When that shard owns them
//! all, SORT runs there as any other command; otherwise they are borrowed,
//! read-only, with SORT's own keys, and SORT runs on the connection's shard
//! (`server/src/gather.rs`). The shard then sees its own keys and the
//! borrowed ones (`ShardState::borrowed_keys`, which includes the borrowed
//! keys that do not exist).
//!
//! A pattern key that SORT cannot see is refused with an error
//! (`ERR_PATTERN_SHARD`), never silently read as missing. That happens
//! when more than `MAX_PATTERN_KEYS` distinct keys would be gathered (a BY
//! pattern reads one per element; GET one per element output, LIMIT's
//! range when BY reads no keys, else every element), or when the sorted
//! key changed between the two steps so that an element names a key that
//! was not borrowed.
//! Giving every pattern the sorted key's hash tag
//! (`SORT {u}ids BY {u}w_* GET {u}name_*`) keeps them on one shard, with
//! no bound and no extra step.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

use tessera_protocol::args::OwnedArgs;
use tessera_protocol::{Args, Proto, Reply};

use super::acl::{
    DANGEROUS as A_DANGEROUS, LIST as A_LIST, READ as A_READ, SET as A_SET, SLOW as A_SLOW,
    SORTEDSET as A_SORTEDSET, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, READONLY, WRITE};
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Route, ShardState, Split};
use crate::cmd;
use crate::slot::key_slot;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::list::{List, NodeLimit};
use crate::types::set::Member;
use crate::util::{eq_ic, parse_f64_strict, parse_i64_strict};

const SORT_KEYS: KeySpec = KeySpec::Custom {
    legacy: (1, 1, 1),
    find: sort_keys,
};
const SORT_RO_KEYS: KeySpec = KeySpec::Custom {
    legacy: (1, 1, 1),
    find: sort_ro_keys,
};
const ACL: u32 = A_SET | A_SORTEDSET | A_LIST | A_SLOW | A_DANGEROUS;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("sort", -2, WRITE | DENYOOM, A_WRITE | ACL, "generic", SORT_KEYS, Route::Keyed(sort, Split::Gather),
        "Sort the elements in a list, set or sorted set", "1.0.0",
        "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N)."),
    cmd!("sort_ro", -2, READONLY, A_READ | ACL, "generic", SORT_RO_KEYS, Route::Keyed(sort_ro, Split::Gather),
        "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", "7.0.0",
        "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N)."),
];

pub const ERR_SCORES: &str = "ERR One or more scores can't be converted into double";
pub const ERR_PATTERN_SHARD: &str =
    "ERR SORT BY/GET pattern key is owned by another shard: give it the sorted key's hash tag";

/// SORT's keys, as Redis's sortGetKeys finds them: the sorted key, and the
/// last STORE's destination (written), skipping LIMIT/GET/BY arguments.
fn sort_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    out.push(KeyPos {
        index: 1,
        write: false,
    });
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = args.get(i);
        if eq_ic(a, b"limit") {
            i += 2;
        } else if eq_ic(a, b"get") || eq_ic(a, b"by") {
            i += 1;
        } else if eq_ic(a, b"store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    if let Some(index) = store {
        out.push(KeyPos { index, write: true });
    }
    Ok(())
}

fn sort_ro_keys(_args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    out.push(KeyPos {
        index: 1,
        write: false,
    });
    Ok(())
}

/// How the source keeps its elements, which decides what "no sort" means.
#[derive(Clone, Copy, PartialEq)]
enum SourceKind {
    /// Lists (and sorted sets): a meaningful order, reversed by DESC.
    Ordered,
    /// Sets: no order; sorted ALPHA anyway when stored (Redis does it so
    /// that the stored result is deterministic).
    Unordered,
}

/// The elements of a value SORT can sort, or None for other types
/// (WRONGTYPE). The one place that knows which types SORT accepts.
fn sort_source_elements(obj: &Object) -> Option<(SourceKind, Vec<Cow<'_, [u8]>>)> {
    match obj {
        Object::List(l) => Some((SourceKind::Ordered, l.iter().map(Cow::Borrowed).collect())),
        Object::Set(s) => Some((
            SourceKind::Unordered,
            s.iter()
                .map(|m| match m {
                    Member::Int(_) => Cow::Owned(m.to_vec()),
                    Member::Str(b) => Cow::Borrowed(b),
                })
                .collect(),
        )),
        // Sorted sets: members in score order, so that BY nosort and DESC
        // follow it.
        Object::Zset(z) => {
            let mut v = Vec::with_capacity(z.len());
            z.for_each(0, z.len(), false, |_, m| v.push(Cow::Owned(m.to_vec())));
            Some((SourceKind::Ordered, v))
        }
        _ => None,
    }
}

struct Options<'a> {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    by: Option<&'a [u8]>,
    dontsort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<&'a [u8]>,
}

/// Parses the options after the key; None after replying with the error.
fn parse_options<'a>(args: &Args<'a>, readonly: bool, reply: &mut Reply) -> Option<Options<'a>> {
    let mut o = Options {
        desc: false,
        alpha: false,
        limit: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
        store: None,
    };
    let mut j = 2;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if eq_ic(a, b"asc") {
            o.desc = false;
        } else if eq_ic(a, b"desc") {
            o.desc = true;
        } else if eq_ic(a, b"alpha") {
            o.alpha = true;
        } else if eq_ic(a, b"limit") && left >= 2 {
            match (
                parse_i64_strict(args.get(j + 1)),
                parse_i64_strict(args.get(j + 2)),
            ) {
                (Some(s), Some(c)) => o.limit = Some((s, c)),
                _ => {
                    reply.error(NOT_INTEGER);
                    return None;
                }
            }
            j += 2;
        } else if !readonly && eq_ic(a, b"store") && left >= 1 {
            o.store = Some(args.get(j + 1));
            j += 1;
        } else if eq_ic(a, b"by") && left >= 1 {
            let p = args.get(j + 1);
            o.by = Some(p);
            // A BY pattern without '*' means "do not sort".
            o.dontsort = !p.contains(&b'*');
            j += 1;
        } else if eq_ic(a, b"get") && left >= 1 {
            o.gets.push(args.get(j + 1));
            j += 1;
        } else {
            reply.error(SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// Redis's strtod-based score of a SORT element or BY value: leading
/// spaces allowed, the empty string is 0, overflow and underflow refused.
fn sort_score(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let t = {
        let i = s
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
        &s[i..]
    };
    let v = match parse_hex_float(t) {
        Some(v) => v,
        None => parse_f64_strict(t)?,
    };
    let lower = t.to_ascii_lowercase();
    let mantissa = lower.split(|&c| c == b'e').next().unwrap_or(&[]);
    if v.is_infinite() && !lower.windows(3).any(|w| w == b"inf") {
        return None; // ERANGE: overflow
    }
    if v == 0.0 && mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) {
        return None; // ERANGE: underflow
    }
    Some(v)
}

/// strtod's hexadecimal form (`0x1.8p3`, sign allowed): Some only when the
/// whole string is one.
fn parse_hex_float(t: &[u8]) -> Option<f64> {
    let (neg, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let t = t.strip_prefix(b"0x").or_else(|| t.strip_prefix(b"0X"))?;
    let (mant, exp) = match t.iter().position(|&c| c == b'p' || c == b'P') {
        Some(p) => (&t[..p], Some(&t[p + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mant.iter().position(|&c| c == b'.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, &mant[..0]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for &c in int {
        v = v * 16.0 + (c as char).to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for &c in frac {
        v += (c as char).to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = std::str::from_utf8(e).ok()?.parse().ok()?;
        v *= 2f64.powi(e);
    }
    Some(if neg { -v } else { v })
}

/// The key a BY/GET pattern names for `elem` (Redis's lookupKeyByPattern
/// substitution, less the `#` case that callers handle), written into
/// `key`: the first `*` is replaced by the element; `key->field` selects a
/// hash field, returned as Some(field). None: no `*`, the pattern names
/// nothing. The one implementation of the substitution, used by SORT and
/// by `PatternReads::keys`.
fn pattern_key<'p>(pattern: &'p [u8], elem: &[u8], key: &mut Vec<u8>) -> Option<Option<&'p [u8]>> {
    let star = pattern.iter().position(|&c| c == b'*')?;
    // A "->" after the '*' with something after it selects a hash field.
    let rest = &pattern[star + 1..];
    let arrow = rest
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&p| p + 2 < rest.len());
    let (post, field) = match arrow {
        Some(p) => (&rest[..p], Some(&rest[p + 2..])),
        None => (rest, None),
    };
    key.clear();
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(post);
    Some(field)
}

/// Which keys this shard can read for a pattern: those it owns, and the
/// foreign keys the gather step borrowed for the running command.
struct Visible<'a> {
    owned: &'a [u16],
    borrowed: &'a HashSet<Vec<u8>>,
}

impl Visible<'_> {
    fn sees(&self, key: &[u8]) -> bool {
        self.owned.binary_search(&key_slot(key)).is_ok() || self.borrowed.contains(key)
    }
}

/// Looks up what a BY/GET pattern names for `elem`: a string value, or a
/// hash field for `key->field`; a key of another type reads as missing,
/// as in Redis. Err(()) when the key is owned by another shard and was
/// not borrowed for this command (see the module comment): refused, never
/// silently read as missing.
fn lookup_pattern<'a>(
    db: &'a Db,
    vis: &Visible,
    now: i64,
    pattern: &[u8],
    elem: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<Option<&'a [u8]>, ()> {
    let Some(field) = pattern_key(pattern, elem, scratch) else {
        return Ok(None);
    };
    if !vis.sees(scratch) {
        return Err(());
    }
    let Some(e) = db.peek(scratch, now) else {
        return Ok(None);
    };
    Ok(match field {
        None => e.as_str(),
        Some(f) => match e.object() {
            Some(Object::Hash(h)) => h.get(f),
            _ => None,
        },
    })
}

/// At most this many distinct pattern keys are gathered for one SORT (when
/// one of them is owned by another shard than the sorted key's). Past it, SORT runs on the sorted key's shard as it would without
/// the gather step, and refuses a foreign pattern key it reaches
/// (`ERR_PATTERN_SHARD`): copying more keys than that per request would
/// cost more than the sort itself is worth on a shared-nothing server.
pub const MAX_PATTERN_KEYS: usize = 4096;

/// A SORT whose BY/GET patterns dereference keys, as routed (see
/// `pattern_reads`): its arguments, to be read on the sorted key's shard.
#[derive(Clone)]
pub struct PatternReads {
    args: OwnedArgs,
    readonly: bool,
}

/// For SORT/SORT_RO (`spec_name`): Some only when a BY pattern sorts by
/// external keys (it has a `*`) or a GET pattern is not `#`. None too when
/// the options do not parse (SORT replies the error).
pub fn pattern_reads(spec_name: &str, args: &Args) -> Option<PatternReads> {
    let readonly = match spec_name {
        "sort" => false,
        "sort_ro" => true,
        _ => return None,
    };
    let mut sink = Vec::new();
    let o = parse_options(args, readonly, &mut Reply::new(&mut sink, Proto::Resp2))?;
    let by = o.by.is_some() && !o.dontsort;
    if !by && o.gets.iter().all(|g| *g == b"#") {
        return None;
    }
    Some(PatternReads {
        args: OwnedArgs::from_parts(args.iter()),
        readonly,
    })
}

impl PatternReads {
    /// The sorted key.
    pub fn key(&self) -> &[u8] {
        self.args.args().get(1)
    }

    /// Run on the sorted key's shard: the distinct keys the patterns would
    /// read (hash-field patterns read their key part), or none when this
    /// shard owns them all and can run SORT alone. All of them, not only
    /// the foreign ones: SORT then runs on the connection's shard, for
    /// which this shard's keys are foreign too. BY reads a key for every
    /// element. GET reads one for each element output: when BY reads no
    /// keys the order is known here (`select`, as SORT computes it) and
    /// only LIMIT's range counts; otherwise every element does. None: more
    /// than MAX_PATTERN_KEYS with one foreign, or a value SORT refuses (it
    /// replies the error).
    pub fn keys(&self, shard: &mut ShardState, db: usize, now: i64) -> Option<Vec<Vec<u8>>> {
        let args = self.args.args();
        let mut sink = Vec::new();
        let mut o = parse_options(
            &args,
            self.readonly,
            &mut Reply::new(&mut sink, Proto::Resp2),
        )?;
        let owned: &[u16] = &shard.owned_slots;
        let Some(d) = shard.keyspace.db_if_exists(db) else {
            return Some(Vec::new());
        };
        let d: &Db = d;
        let (kind, elems) = match d.peek(args.get(1), now) {
            None => return Some(Vec::new()),
            Some(e) => e.object().and_then(sort_source_elements)?,
        };
        let by = o.by.filter(|_| !o.dontsort);
        let gets: Vec<&[u8]> = o.gets.iter().copied().filter(|g| *g != b"#").collect();
        let all: Vec<&[u8]> = elems.iter().map(|e| &e[..]).collect();
        let output: Vec<&[u8]> = if by.is_some() {
            all.clone()
        } else {
            let none = HashSet::new();
            let vis = Visible {
                owned,
                borrowed: &none,
            };
            let (items, range) = select(d, &vis, now, &mut o, kind, &elems).ok()?;
            items[range].iter().map(|it| &elems[it.idx][..]).collect()
        };
        let reads: Vec<(&[u8], &[&[u8]])> = by
            .iter()
            .map(|p| (*p, &all[..]))
            .chain(gets.iter().map(|p| (*p, &output[..])))
            .collect();
        let mut key = Vec::new();
        // First without keeping anything: the common case (hash tags, or one
        // shard) finds every key owned here and allocates nothing more.
        let foreign = reads.iter().any(|(p, es)| {
            es.iter().any(|elem| {
                pattern_key(p, elem, &mut key).is_some()
                    && owned.binary_search(&key_slot(&key)).is_err()
            })
        });
        if !foreign {
            return Some(Vec::new());
        }
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (p, es) in &reads {
            for elem in es.iter() {
                if pattern_key(p, elem, &mut key).is_none() {
                    break; // no '*': names nothing, for any element
                }
                if !seen.contains(key.as_slice()) {
                    if seen.len() == MAX_PATTERN_KEYS {
                        return None;
                    }
                    seen.insert(key.clone());
                }
            }
        }
        Some(seen.into_iter().collect())
    }
}

/// One element to sort: its index in the element vector, its numeric
/// score, and its BY value for ALPHA (None: missing, sorts first).
struct Item<'a> {
    idx: usize,
    score: f64,
    cmp: Option<&'a [u8]>,
}

pub fn sort(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    sort_generic(ctx, args, reply, false)
}

pub fn sort_ro(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    sort_generic(ctx, args, reply, true)
}

fn sort_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, readonly: bool) {
    let Some(mut o) = parse_options(&args, readonly, reply) else {
        return;
    };
    let now = ctx.now;
    let lim = NodeLimit(ctx.shard.config.list_max_listpack_size);
    let shard = &mut *ctx.shard;
    let vis = Visible {
        owned: &shard.owned_slots,
        borrowed: &shard.borrowed_keys,
    };
    let db = shard.keyspace.db(ctx.db);
    // The sorted key: lazy expiry, LRU and hit counts through `get`.
    match db.get(args.get(1), now) {
        None => shard.stats.keyspace_misses += 1,
        Some(_) => shard.stats.keyspace_hits += 1,
    }
    let db: &Db = db;
    let (kind, elems) = match db.peek(args.get(1), now) {
        None => (SourceKind::Ordered, Vec::new()),
        Some(e) => match e.object().and_then(sort_source_elements) {
            Some(x) => x,
            None => return reply.error(WRONGTYPE),
        },
    };
    let (items, range) = match select(db, &vis, now, &mut o, kind, &elems) {
        Ok(x) => x,
        Err(e) => return reply.error(e),
    };
    let range = &items[range];
    let mut scratch = Vec::new();
    // The output, looked up in full before replying (a pattern on another
    // shard must fail the whole command).
    let mut out: Vec<Option<&[u8]>> = Vec::with_capacity(range.len() * o.gets.len().max(1));
    for it in range {
        let elem: &[u8] = &elems[it.idx];
        if o.gets.is_empty() {
            out.push(Some(elem));
        }
        for g in &o.gets {
            if *g == b"#" {
                out.push(Some(elem));
                continue;
            }
            match lookup_pattern(db, &vis, now, g, elem, &mut scratch) {
                Ok(v) => out.push(v),
                Err(()) => return reply.error(ERR_PATTERN_SHARD),
            }
        }
    }
    match o.store {
        None => {
            reply.array(out.len());
            for v in out {
                match v {
                    Some(v) => reply.bulk(v),
                    None => reply.null(),
                }
            }
        }
        Some(dst) => {
            // A missing GET value is stored as an empty string.
            let owned_out: Vec<Vec<u8>> =
                out.iter().map(|v| v.unwrap_or_default().to_vec()).collect();
            drop(out);
            store_list(ctx, dst, owned_out, lim, reply);
        }
    }
}

/// SORT's order and LIMIT: the elements as items in output order, and the
/// range of them to output. BY values are looked up through `vis` (see
/// `lookup_pattern`); without a BY pattern nothing is looked up. May
/// adjust `o` (BY nosort STORE on a set sorts it ALPHA).
fn select<'a>(
    db: &'a Db,
    vis: &Visible,
    now: i64,
    o: &mut Options,
    kind: SourceKind,
    elems: &'a [Cow<'_, [u8]>],
) -> Result<(Vec<Item<'a>>, std::ops::Range<usize>), &'static str> {
    if o.dontsort && kind == SourceKind::Unordered && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    // LIMIT, with Redis's clamping (i128: no overflow on extreme values).
    let n = elems.len() as i128;
    let (ls, lc) = o.limit.unwrap_or((0, -1));
    let mut start = (ls as i128).max(0);
    let mut end = if lc < 0 {
        n - 1
    } else {
        start + lc as i128 - 1
    };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    if end >= n {
        end = n - 1;
    }
    let mut items: Vec<Item> = (0..elems.len())
        .map(|idx| Item {
            idx,
            score: 0.0,
            cmp: None,
        })
        .collect();
    if kind == SourceKind::Ordered && o.dontsort && o.desc {
        items.reverse();
    }
    let mut scratch = Vec::new();
    if !o.dontsort {
        let mut bad = false;
        for it in items.iter_mut() {
            let elem: &[u8] = &elems[it.idx];
            let by = match o.by {
                // A BY pattern here always has a '*' (else: dontsort).
                Some(p) => match lookup_pattern(db, vis, now, p, elem, &mut scratch) {
                    Err(()) => return Err(ERR_PATTERN_SHARD),
                    Ok(None) => continue,
                    Ok(Some(v)) => {
                        if o.alpha {
                            it.cmp = Some(v);
                        }
                        v
                    }
                },
                None => elem,
            };
            if !o.alpha {
                match sort_score(by) {
                    Some(s) => it.score = s,
                    None => bad = true,
                }
            }
        }
        if bad {
            return Err(ERR_SCORES);
        }
        let (alpha, bypattern, desc) = (o.alpha, o.by.is_some(), o.desc);
        items.sort_by(|a, b| {
            let (ea, eb) = (&elems[a.idx], &elems[b.idx]);
            let c = if !alpha {
                // Equal scores: the elements decide, so the result is
                // deterministic (Redis's sortCompare).
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| ea.cmp(eb))
            } else if bypattern {
                a.cmp.cmp(&b.cmp)
            } else {
                ea.cmp(eb)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }
    let range = if end >= start {
        start as usize..end as usize + 1
    } else {
        0..0
    };
    Ok((items, range))
}

/// SORT ... STORE: the result as a list (replacing dst, TTL included), or
/// dst deleted when the result is empty; replies with its length.
fn store_list(ctx: &mut Ctx, dst: &[u8], out: Vec<Vec<u8>>, lim: NodeLimit, reply: &mut Reply) {
    let now = ctx.now;
    let n = out.len();
    let old = if n == 0 {
        ctx.db().remove(dst, now)
    } else {
        let mut l = List::new();
        for v in &out {
            l.push_back(v, lim);
        }
        let e = Entry::new_object(dst, Object::List(l), None, lru_clock(now));
        ctx.db().insert(e, now)
    };
    if let Some(e) = old {
        ctx.shard.free_entry(e);
    }
    reply.int(n as i64);
}

#[cfg(test)]
mod tests {
    use super::sort_score;

    #[test]
    fn scores_follow_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b"1.5 "), None);
        assert_eq!(sort_score(b"   "), None);
        assert_eq!(sort_score(b"abc"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"1e-400"), None);
        assert_eq!(sort_score(b"0e5"), Some(0.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(sort_score(b"0x"), None);
        assert_eq!(sort_score(b"0xg"), None);
    }
}
