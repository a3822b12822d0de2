//! The blocking pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP (lists) and
//! BZPOPMIN BZPOPMAX BZMPOP (sorted sets).
//!
//! Each handler does what its non-blocking twin does when a key can serve
//! it. When none can, it blocks (`Ctx::blocked`, no reply: the server
//! registers the client on its keys, see `crate::blocking`) or, where it
//! may not block (inside MULTI), replies as if its timeout had passed.

use tessera_protocol::{Args, Reply};

use super::acl::{
    BLOCKING as A_BLOCKING, FAST as A_FAST, LIST as A_LIST, SLOW as A_SLOW,
    SORTEDSET as A_SORTEDSET, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{BLOCKING, DENYOOM, FAST, NOSCRIPT, WRITE};
use super::lists::{list_mut, lmpop_at, move_generic, parse_where, Found, Popped};
use super::zsets_pop::{first_zset, zmpop_at, zpop_one_with_key};
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Route, Split, Writes};
use crate::blocking::WaitsFor;
use crate::cmd;
use crate::store::Object;
use crate::types::ldouble::LDouble;

/// Keys from argument 1 to the one before the timeout, all written.
const KEYS_BEFORE_TIMEOUT: KeySpec = KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
    writes: Writes::All,
};
/// BLMPOP/BZMPOP: `timeout numkeys key...`.
const NUMKEYS_AT_2: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: numkeys_at_2,
};
const SRC_DST: KeySpec = super::table::KEY12_W;

const L_BLOCK: u32 = A_WRITE | A_LIST | A_SLOW | A_BLOCKING;
const Z_BLOCK_FAST: u32 = A_WRITE | A_SORTEDSET | A_FAST | A_BLOCKING;
const Z_BLOCK_SLOW: u32 = A_WRITE | A_SORTEDSET | A_SLOW | A_BLOCKING;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("blpop", -3, WRITE | NOSCRIPT | BLOCKING, L_BLOCK, "list", KEYS_BEFORE_TIMEOUT, Route::Keyed(blpop, Split::Gather),
        "Pops the first element of the first non-empty list, or blocks until one is pushed.", "2.0.0",
        "O(N) where N is the number of provided keys."),
    cmd!("brpop", -3, WRITE | NOSCRIPT | BLOCKING, L_BLOCK, "list", KEYS_BEFORE_TIMEOUT, Route::Keyed(brpop, Split::Gather),
        "Pops the last element of the first non-empty list, or blocks until one is pushed.", "2.0.0",
        "O(N) where N is the number of provided keys."),
    cmd!("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, L_BLOCK, "list", SRC_DST, Route::Keyed(brpoplpush, Split::Gather),
        "Moves the last element of a list to the head of another, or blocks until there is one.", "2.2.0",
        "O(1)"),
    cmd!("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, L_BLOCK, "list", SRC_DST, Route::Keyed(blmove, Split::Gather),
        "Moves an element from one end of a list to an end of another, or blocks until there is one.", "6.2.0",
        "O(1)"),
    cmd!("blmpop", -5, WRITE | BLOCKING, L_BLOCK, "list", NUMKEYS_AT_2, Route::Keyed(blmpop, Split::Gather),
        "Pops elements from the first non-empty list, or blocks until one is pushed.", "7.0.0",
        "O(N+M) where N is the number of provided keys and M is the number of elements returned."),
    cmd!("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, Z_BLOCK_FAST, "sorted-set", KEYS_BEFORE_TIMEOUT, Route::Keyed(bzpopmin, Split::Gather),
        "Pops the lowest-scored member of the first non-empty sorted set, or blocks until there is one.", "5.0.0",
        "O(log(N)) with N being the number of elements in the sorted set."),
    cmd!("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, Z_BLOCK_FAST, "sorted-set", KEYS_BEFORE_TIMEOUT, Route::Keyed(bzpopmax, Split::Gather),
        "Pops the highest-scored member of the first non-empty sorted set, or blocks until there is one.", "5.0.0",
        "O(log(N)) with N being the number of elements in the sorted set."),
    cmd!("bzmpop", -5, WRITE | BLOCKING, Z_BLOCK_SLOW, "sorted-set", NUMKEYS_AT_2, Route::Keyed(bzmpop, Split::Gather),
        "Pops members from the first non-empty sorted set, or blocks until there is one.", "7.0.0",
        "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped."),
];

fn numkeys_at_2(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    super::lists::numkeys_keys(args, 2, true, out)
}

/// Redis's `timeout` argument, in seconds with decimals, as milliseconds
/// (0: for ever). Redis's errors, as redis-server 7.0 gives them (it
/// reads the value as a long double, so hex floats count, and a value too
/// large for its milliseconds comes out negative).
pub fn parse_timeout_ms(arg: &[u8]) -> Result<i64, &'static str> {
    const NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
    const NEGATIVE: &str = "ERR timeout is negative";
    let v = LDouble::parse(arg).ok_or(NOT_FLOAT)?;
    if !v.is_finite() {
        return Err(NEGATIVE);
    }
    let secs: f64 = v.to_human_string().parse().map_err(|_| NOT_FLOAT)?;
    let ms = (secs * 1000.0).ceil();
    if !(0.0..9.223_372_036_854_776e18).contains(&ms) {
        return Err(NEGATIVE);
    }
    Ok(ms as i64)
}

/// BLMOVE's and BRPOPLPUSH's ends: (pop from the left, push to the left);
/// None when BLMOVE's are not LEFT or RIGHT.
pub fn move_ends(args: &Args) -> Option<(bool, bool)> {
    if args.get(0).eq_ignore_ascii_case(b"brpoplpush") {
        return Some((false, true));
    }
    Some((parse_where(args.get(3))?, parse_where(args.get(4))?))
}

/// The type of value a blocking command waits for.
pub fn waits_for(name: &str) -> WaitsFor {
    if name.starts_with("bz") {
        WaitsFor::Zset
    } else {
        WaitsFor::List
    }
}

/// Whether `key` holds a value a waiter for `t` can be served from
/// (collections are never empty: an emptied one is deleted).
pub fn can_serve(ctx: &mut Ctx, key: &[u8], t: WaitsFor) -> bool {
    let now = ctx.now;
    match ctx.db().get_quiet(key, now).and_then(|e| e.object()) {
        Some(Object::List(_)) => t == WaitsFor::List,
        Some(Object::Zset(_)) => t == WaitsFor::Zset,
        _ => false,
    }
}

/// Nothing to serve: block, or (inside MULTI) reply what a timeout does.
fn nothing(ctx: &mut Ctx, reply: &mut Reply, null_array: bool) {
    if ctx.may_block {
        ctx.blocked = true;
    } else if null_array {
        reply.null_array();
    } else {
        reply.null();
    }
}

fn timeout_ok(arg: &[u8], reply: &mut Reply) -> bool {
    match parse_timeout_ms(arg) {
        Ok(_) => true,
        Err(e) => {
            reply.error(e);
            false
        }
    }
}

fn bpop(ctx: &mut Ctx, args: Args, reply: &mut Reply, front: bool) {
    if !timeout_ok(args.get(args.len() - 1), reply) {
        return;
    }
    let now = ctx.now;
    for i in 1..args.len() - 1 {
        let key = args.get(i);
        let db = ctx.db();
        let empty = match list_mut(db, key, now) {
            Found::Missing => continue,
            Found::Wrong => return reply.error(WRONGTYPE),
            Found::Ok(l) => {
                let v = if front { l.pop_front() } else { l.pop_back() };
                reply.array(2);
                reply.bulk(key);
                reply.bulk(&v.unwrap_or_default());
                l.is_empty()
            }
        };
        if empty {
            if let Some(e) = db.remove(key, now) {
                ctx.shard.free_entry(e);
            }
        }
        return;
    }
    nothing(ctx, reply, true)
}

pub fn blpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    bpop(ctx, args, reply, true)
}

pub fn brpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    bpop(ctx, args, reply, false)
}

/// BLMOVE/BRPOPLPUSH: LMOVE when the source holds a list. Inside MULTI an
/// empty source replies a null bulk (not a null array), as Redis does.
fn bmove(ctx: &mut Ctx, args: &Args, from_left: bool, to_left: bool, reply: &mut Reply) {
    let now = ctx.now;
    match list_mut(ctx.db(), args.get(1), now) {
        Found::Missing => nothing(ctx, reply, false),
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Ok(_) => move_generic(ctx, args.get(1), args.get(2), from_left, to_left, reply),
    }
}

pub fn blmove(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (Some(from), Some(to)) = (parse_where(args.get(3)), parse_where(args.get(4))) else {
        return reply.error(SYNTAX);
    };
    if timeout_ok(args.get(5), reply) {
        bmove(ctx, &args, from, to, reply)
    }
}

pub fn brpoplpush(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if timeout_ok(args.get(3), reply) {
        bmove(ctx, &args, false, true, reply)
    }
}

pub fn blmpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if timeout_ok(args.get(1), reply) && lmpop_at(ctx, &args, 2, reply) == Popped::Nothing {
        nothing(ctx, reply, true)
    }
}

fn bzpop(ctx: &mut Ctx, args: Args, reply: &mut Reply, max: bool) {
    if !timeout_ok(args.get(args.len() - 1), reply) {
        return;
    }
    match first_zset(ctx, &args, 1..args.len() - 1) {
        Err(()) => reply.error(WRONGTYPE),
        Ok(None) => nothing(ctx, reply, true),
        Ok(Some(i)) => zpop_one_with_key(ctx, args.get(i), max, reply),
    }
}

pub fn bzpopmin(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    bzpop(ctx, args, reply, false)
}

pub fn bzpopmax(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    bzpop(ctx, args, reply, true)
}

pub fn bzmpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if timeout_ok(args.get(1), reply) && zmpop_at(ctx, &args, 2, reply) == Popped::Nothing {
        nothing(ctx, reply, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis_does() {
        assert_eq!(parse_timeout_ms(b"0"), Ok(0));
        assert_eq!(parse_timeout_ms(b"1.5"), Ok(1500));
        assert_eq!(parse_timeout_ms(b"0.0001"), Ok(1));
        assert_eq!(parse_timeout_ms(b"0x10"), Ok(16000));
        assert_eq!(parse_timeout_ms(b"-1"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout_ms(b"inf"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout_ms(b"1e30"), Err("ERR timeout is negative"));
        for bad in [&b"abc"[..], b" 1", b"nan", b""] {
            assert_eq!(
                parse_timeout_ms(bad),
                Err("ERR timeout is not a float or out of range")
            );
        }
    }
}
