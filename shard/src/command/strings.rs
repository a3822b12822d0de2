//! String commands.

use tessera_protocol::{Args, Reply};

use super::acl::{
    FAST as A_FAST, READ as A_READ, SLOW as A_SLOW, STRING as A_STRING, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::table::{KEY1_R, KEY1_W};
use super::{CommandSpec, Ctx, KeySpec, Route, Split, Writes};
use crate::cmd;
use crate::store::{lru_clock, Entry, Object, ValueRef};
use crate::util::{eq_ic, parse_i64_strict};

mod xfloat;

const MSET_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 2,
    writes: Writes::All,
};
const MGET_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::None,
};
/// LCS key1 key2: both read, none written.
const LCS_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
    writes: Writes::None,
};

const W_DENY: u32 = WRITE | DENYOOM;
const W_DENY_FAST: u32 = WRITE | DENYOOM | FAST;
const AW_FAST: u32 = A_WRITE | A_STRING | A_FAST;
const AW_SLOW: u32 = A_WRITE | A_STRING | A_SLOW;
const AR_FAST: u32 = A_READ | A_STRING | A_FAST;
const AR_SLOW: u32 = A_READ | A_STRING | A_SLOW;
const GETRANGE_COMPLEXITY: &str = "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.";

// Arity, flags, ACL categories, key positions and docs as Redis 7.0's
// COMMAND INFO / COMMAND DOCS report them.
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("get", 2, READONLY | FAST, AR_FAST, "string", KEY1_R,
        Route::Keyed(get, Split::Gather), "Get the value of a key", "1.0.0", "O(1)"),
    cmd!("set", -3, W_DENY, AW_SLOW, "string", KEY1_W,
        Route::Keyed(set, Split::Gather), "Set the string value of a key", "1.0.0", "O(1)"),
    cmd!("setnx", 3, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(setnx, Split::Gather), "Set the value of a key, only if the key does not exist",
        "1.0.0", "O(1)"),
    cmd!("setex", 4, W_DENY, AW_SLOW, "string", KEY1_W,
        Route::Keyed(setex, Split::Gather), "Set the value and expiration of a key", "2.0.0", "O(1)"),
    cmd!("psetex", 4, W_DENY, AW_SLOW, "string", KEY1_W,
        Route::Keyed(psetex, Split::Gather), "Set the value and expiration in milliseconds of a key",
        "2.6.0", "O(1)"),
    cmd!("getset", 3, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(getset, Split::Gather), "Set the string value of a key and return its old value",
        "1.0.0", "O(1)"),
    cmd!("getdel", 2, WRITE | FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(getdel, Split::Gather), "Get the value of a key and delete the key", "6.2.0", "O(1)"),
    cmd!("getex", -2, WRITE | FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(getex, Split::Gather), "Get the value of a key and optionally set its expiration",
        "6.2.0", "O(1)"),
    cmd!("mget", -2, READONLY | FAST, AR_FAST, "string", MGET_KEYS,
        Route::Keyed(mget, Split::ConcatByKey), "Get the values of all the given keys", "1.0.0",
        "O(N) where N is the number of keys to retrieve."),
    cmd!("mset", -3, W_DENY, AW_SLOW, "string", MSET_KEYS,
        Route::Keyed(mset, Split::AllOk), "Set multiple keys to multiple values", "1.0.1",
        "O(N) where N is the number of keys to set."),
    cmd!("msetnx", -3, W_DENY, AW_SLOW, "string", MSET_KEYS,
        Route::Keyed(msetnx, Split::Gather),
        "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1",
        "O(N) where N is the number of keys to set."),
    cmd!("incr", 2, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(incr, Split::Gather), "Increment the integer value of a key by one", "1.0.0", "O(1)"),
    cmd!("decr", 2, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(decr, Split::Gather), "Decrement the integer value of a key by one", "1.0.0", "O(1)"),
    cmd!("incrby", 3, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(incrby, Split::Gather), "Increment the integer value of a key by the given amount",
        "1.0.0", "O(1)"),
    cmd!("decrby", 3, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(decrby, Split::Gather), "Decrement the integer value of a key by the given number",
        "1.0.0", "O(1)"),
    cmd!("incrbyfloat", 3, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(incrbyfloat, Split::Gather), "Increment the float value of a key by the given amount",
        "2.6.0", "O(1)"),
    cmd!("append", 3, W_DENY_FAST, AW_FAST, "string", KEY1_W,
        Route::Keyed(append, Split::Gather), "Append a value to a key", "2.0.0",
        "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation."),
    cmd!("strlen", 2, READONLY | FAST, AR_FAST, "string", KEY1_R,
        Route::Keyed(strlen, Split::Gather), "Get the length of the value stored in a key", "2.2.0", "O(1)"),
    cmd!("getrange", 4, READONLY, AR_SLOW, "string", KEY1_R,
        Route::Keyed(getrange, Split::Gather), "Get a substring of the string stored at a key", "2.4.0",
        GETRANGE_COMPLEXITY),
    cmd!("substr", 4, READONLY, AR_SLOW, "string", KEY1_R,
        Route::Keyed(getrange, Split::Gather), "Get a substring of the string stored at a key", "1.0.0",
        GETRANGE_COMPLEXITY),
    cmd!("setrange", 4, W_DENY, AW_SLOW, "string", KEY1_W,
        Route::Keyed(setrange, Split::Gather), "Overwrite part of a string at key starting at the specified offset",
        "2.2.0",
        "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument."),
    cmd!("lcs", -3, READONLY, AR_SLOW, "string", LCS_KEYS,
        Route::Keyed(lcs, Split::Gather), "Find longest common substring", "7.0.0",
        "O(N*M) where N and M are the lengths of s1 and s2, respectively"),
];

/// Looks a key up for a read command (Redis's `lookupKeyRead`): lazy
/// expiry, LRU touch, keyspace hit/miss counted.
pub fn lookup_read<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Entry> {
    let now = ctx.now;
    let shard = &mut *ctx.shard;
    let found = shard.keyspace.db(ctx.db).get(key, now);
    if found.is_some() {
        shard.stats.keyspace_hits += 1;
    } else {
        shard.stats.keyspace_misses += 1;
    }
    found
}

/// Reads a string key for a read command: Ok(None) when missing,
/// Err(()) (after writing WRONGTYPE) when it holds another type.
/// Counts keyspace hits and misses.
#[allow(clippy::result_unit_err)]
pub fn read_string<'c>(
    ctx: &'c mut Ctx,
    key: &[u8],
    reply: &mut Reply,
) -> Result<Option<&'c [u8]>, ()> {
    match lookup_read(ctx, key) {
        None => Ok(None),
        Some(e) => match e.value() {
            ValueRef::Str(s) => Ok(Some(s)),
            ValueRef::Obj(_) => {
                reply.error(WRONGTYPE);
                Err(())
            }
        },
    }
}

pub fn get(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(v) = read_string(ctx, args.get(1), reply) {
        match v {
            Some(s) => reply.bulk(s),
            None => reply.null(),
        }
    }
}

/// An expiry option's unit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpireUnit {
    Seconds,
    Millis,
}

/// Redis's `getExpireMillisecondsOrReply`: an EX/PX/EXAT/PXAT argument as
/// an absolute ms time. Errors: not an integer, or not positive / overflow
/// ("invalid expire time in '<cmd>' command").
pub fn expire_millis(
    arg: &[u8],
    unit: ExpireUnit,
    relative: bool,
    now: i64,
    cmd: &str,
) -> Result<i64, String> {
    let invalid = || format!("ERR invalid expire time in '{cmd}' command");
    let v = parse_i64_strict(arg).ok_or_else(|| NOT_INTEGER.to_string())?;
    if v <= 0 || (unit == ExpireUnit::Seconds && v > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if unit == ExpireUnit::Seconds {
        v * 1000
    } else {
        v
    };
    let at = if relative {
        ms.checked_add(now).ok_or_else(invalid)?
    } else {
        ms
    };
    if at <= 0 {
        return Err(invalid());
    }
    Ok(at)
}

/// Kept for callers of the first version: `None` = invalid expire time.
pub fn absolute_expire(arg: &[u8], unit: ExpireUnit, relative: bool, now: i64) -> Option<i64> {
    expire_millis(arg, unit, relative, now, "set").ok()
}

/// Options of SET and GETEX (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default, Debug)]
struct ExtOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    /// (argument index, unit, relative): the last EX/PX/EXAT/PXAT given.
    expire: Option<(usize, ExpireUnit, bool)>,
}

/// Parses SET (`for_set`) or GETEX options from `start`; Err = syntax error.
/// As in Redis, one expiry kind may be repeated (the last wins) but two
/// different kinds, or one with KEEPTTL/PERSIST, conflict.
fn parse_ext(args: &Args, start: usize, for_set: bool) -> Result<ExtOpts, ()> {
    let mut o = ExtOpts::default();
    // The expiry keyword used so far, as written (upper-cased).
    let mut kind: Option<&'static str> = None;
    let mut i = start;
    while i < args.len() {
        let a = args.get(i);
        let has_next = i + 1 < args.len();
        let exp_kind = ["EX", "PX", "EXAT", "PXAT"]
            .into_iter()
            .find(|k| eq_ic(a, k.as_bytes()));
        if for_set && eq_ic(a, b"NX") && !o.xx {
            o.nx = true;
        } else if for_set && eq_ic(a, b"XX") && !o.nx {
            o.xx = true;
        } else if for_set && eq_ic(a, b"GET") {
            o.get = true;
        } else if for_set && eq_ic(a, b"KEEPTTL") && kind.is_none() {
            o.keep_ttl = true;
        } else if !for_set && eq_ic(a, b"PERSIST") && kind.is_none() {
            o.persist = true;
        } else if let Some(k) = exp_kind.filter(|&k| {
            has_next && !o.keep_ttl && !o.persist && (kind.is_none() || kind == Some(k))
        }) {
            kind = Some(k);
            let unit = if k.starts_with('E') {
                ExpireUnit::Seconds
            } else {
                ExpireUnit::Millis
            };
            i += 1;
            o.expire = Some((i, unit, k.len() == 2));
        } else {
            return Err(());
        }
        i += 1;
    }
    Ok(o)
}

/// How SET-family commands answer.
#[derive(Clone, Copy, PartialEq)]
enum SetReply {
    /// +OK, or null when NX/XX stopped it.
    Ok,
    /// :1 when set, :0 when not (SETNX).
    OneZero,
}

/// Redis's `setGenericCommand`.
#[allow(clippy::too_many_arguments)]
fn set_generic(
    ctx: &mut Ctx,
    args: &Args,
    key: &[u8],
    value: &[u8],
    opts: &ExtOpts,
    cmd: &str,
    how: SetReply,
    reply: &mut Reply,
) {
    let now = ctx.now;
    let expire_at = match opts.expire {
        Some((pos, unit, relative)) => match expire_millis(args.get(pos), unit, relative, now, cmd)
        {
            Ok(t) => Some(t),
            Err(e) => return reply.error(&e),
        },
        None => None,
    };
    let exists = if opts.get {
        match read_string(ctx, key, reply) {
            Err(()) => return,
            Ok(Some(s)) => {
                reply.bulk(s);
                true
            }
            Ok(None) => {
                reply.null();
                false
            }
        }
    } else if opts.nx || opts.xx {
        ctx.db().get(key, now).is_some()
    } else {
        // Plain SET needs no lookup of its own: set_string finds or inserts.
        false
    };
    if (opts.nx && exists) || (opts.xx && !exists) {
        if !opts.get {
            match how {
                SetReply::Ok => reply.null(),
                SetReply::OneZero => reply.int(0),
            }
        }
        return;
    }
    ctx.db()
        .set_string(key, value, expire_at, opts.keep_ttl, now);
    if !opts.get {
        match how {
            SetReply::Ok => reply.ok(),
            SetReply::OneZero => reply.int(1),
        }
    }
}

pub fn set(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Ok(opts) = parse_ext(&args, 3, true) else {
        return reply.error(SYNTAX);
    };
    set_generic(
        ctx,
        &args,
        args.get(1),
        args.get(2),
        &opts,
        "set",
        SetReply::Ok,
        reply,
    );
}

pub fn setnx(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let opts = ExtOpts {
        nx: true,
        ..Default::default()
    };
    set_generic(
        ctx,
        &args,
        args.get(1),
        args.get(2),
        &opts,
        "setnx",
        SetReply::OneZero,
        reply,
    );
}

fn setex_generic(ctx: &mut Ctx, args: Args, unit: ExpireUnit, cmd: &str, reply: &mut Reply) {
    let opts = ExtOpts {
        expire: Some((2, unit, true)),
        ..Default::default()
    };
    set_generic(
        ctx,
        &args,
        args.get(1),
        args.get(3),
        &opts,
        cmd,
        SetReply::Ok,
        reply,
    );
}

pub fn setex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    setex_generic(ctx, args, ExpireUnit::Seconds, "setex", reply)
}

pub fn psetex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    setex_generic(ctx, args, ExpireUnit::Millis, "psetex", reply)
}

/// GETSET: replies the old value, then sets (dropping any TTL).
pub fn getset(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let key = args.get(1);
    match read_string(ctx, key, reply) {
        Err(()) => return,
        Ok(Some(s)) => reply.bulk(s),
        Ok(None) => reply.null(),
    }
    let now = ctx.now;
    ctx.db().set_string(key, args.get(2), None, false, now);
}

pub fn getdel(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let key = args.get(1);
    match read_string(ctx, key, reply) {
        Err(()) => {}
        Ok(None) => reply.null(),
        Ok(Some(s)) => {
            reply.bulk(s);
            let now = ctx.now;
            ctx.db().remove(key, now);
        }
    }
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST].
pub fn getex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Ok(opts) = parse_ext(&args, 2, false) else {
        return reply.error(SYNTAX);
    };
    let key = args.get(1);
    let now = ctx.now;
    // A missing key answers null before the expiry is even validated.
    match read_string(ctx, key, reply) {
        Err(()) => return,
        Ok(None) => return reply.null(),
        Ok(Some(_)) => {}
    }
    let expire_at = match opts.expire {
        Some((pos, unit, relative)) => {
            match expire_millis(args.get(pos), unit, relative, now, "getex") {
                Ok(t) => Some((t, relative)),
                Err(e) => return reply.error(&e),
            }
        }
        None => None,
    };
    let db = ctx.db();
    if let Some(s) = db.get_quiet(key, now).and_then(|e| e.as_str()) {
        reply.bulk(s);
    }
    match expire_at {
        Some((t, false)) if t <= now => {
            db.remove(key, now);
        }
        Some((t, _)) => {
            db.set_expire(key, Some(t), now);
        }
        None if opts.persist => {
            db.set_expire(key, None, now);
        }
        None => {}
    }
}

pub fn mget(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    reply.array(args.len() - 1);
    for key in args.iter().skip(1) {
        // Keys of another type answer null (and count as hits, as in Redis).
        match lookup_read(ctx, key).and_then(|e| e.as_str()) {
            Some(s) => reply.bulk(s),
            None => reply.null(),
        }
    }
}

pub fn mset(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if args.len() & 1 == 0 {
        reply.error("ERR wrong number of arguments for 'mset' command");
        return;
    }
    let now = ctx.now;
    let db = ctx.shard.keyspace.db(ctx.db);
    let mut i = 1;
    while i + 1 < args.len() {
        db.set_string(args.get(i), args.get(i + 1), None, false, now);
        i += 2;
    }
    reply.ok();
}

/// MSETNX: sets all pairs only if none of the keys exists.
pub fn msetnx(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if args.len() & 1 == 0 {
        return reply.error("ERR wrong number of arguments for 'msetnx' command");
    }
    let now = ctx.now;
    let db = ctx.db();
    if (1..args.len())
        .step_by(2)
        .any(|i| db.get(args.get(i), now).is_some())
    {
        return reply.int(0);
    }
    for i in (1..args.len()).step_by(2) {
        db.set_string(args.get(i), args.get(i + 1), None, false, now);
    }
    reply.int(1);
}

/// INCR/DECR/INCRBY/DECRBY: adds `by` to the integer at `key`, keeping its TTL.
pub fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64, reply: &mut Reply) {
    let now = ctx.now;
    let db = ctx.shard.keyspace.db(ctx.db);
    let current = match db.get(key, now) {
        None => 0,
        Some(e) => match e.value() {
            ValueRef::Str(s) => match parse_i64_strict(s) {
                Some(v) => v,
                None => return reply.error(NOT_INTEGER),
            },
            ValueRef::Obj(_) => return reply.error(WRONGTYPE),
        },
    };
    let Some(new) = current.checked_add(by) else {
        return reply.error(OVERFLOW);
    };
    let mut buf = itoa::Buffer::new();
    db.set_string(key, buf.format(new).as_bytes(), None, true, now);
    reply.int(new);
}

pub fn incr(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    incr_by(ctx, args.get(1), 1, reply)
}

pub fn decr(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    incr_by(ctx, args.get(1), -1, reply)
}

pub fn incrby(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match parse_i64_strict(args.get(2)) {
        Some(by) => incr_by(ctx, args.get(1), by, reply),
        None => reply.error(NOT_INTEGER),
    }
}

pub fn decrby(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match parse_i64_strict(args.get(2)) {
        // Redis refuses to negate i64::MIN.
        Some(by) if by != i64::MIN => incr_by(ctx, args.get(1), -by, reply),
        Some(_) => reply.error("ERR decrement would overflow"),
        None => reply.error(NOT_INTEGER),
    }
}

/// INCRBYFLOAT, computed as Redis does in x87 `long double` (see `xfloat`).
pub fn incrbyfloat(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let key = args.get(1);
    let now = ctx.now;
    let db = ctx.db();
    let current = match db.get(key, now) {
        None => Some(xfloat::XFloat::Zero { neg: false }),
        Some(e) => match e.value() {
            ValueRef::Str(s) => xfloat::parse(s),
            ValueRef::Obj(_) => return reply.error(WRONGTYPE),
        },
    };
    let (Some(current), Some(by)) = (current, xfloat::parse(args.get(2))) else {
        return reply.error(NOT_FLOAT);
    };
    match xfloat::incr(current, by) {
        Err(()) => reply.error("ERR increment would produce NaN or Infinity"),
        Ok(s) => {
            db.set_string(key, s.as_bytes(), None, true, now);
            reply.bulk(s.as_bytes());
        }
    }
}

/// Redis's `checkStringLength`: may a string grow to `size + append` bytes?
fn check_string_length(max: usize, size: u64, append: u64) -> bool {
    match size.checked_add(append) {
        Some(total) => total <= max as u64 && total <= i64::MAX as u64,
        None => false,
    }
}

pub fn append(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (key, tail) = (args.get(1), args.get(2));
    let now = ctx.now;
    let max = ctx.shard.config.proto_max_bulk_len;
    let db = ctx.db();
    if let Some(e) = db.get(key, now) {
        let Some(cur) = e.as_str().map(|s| s.len()) else {
            return reply.error(WRONGTYPE);
        };
        if !check_string_length(max, cur as u64, tail.len() as u64) {
            return reply.error(STRING_TOO_LONG);
        }
        // Appending (even nothing) makes the value "raw", as in Redis.
        if let Some(buf) = e.string_buf_mut() {
            buf.extend_from_slice(tail);
            reply.int(buf.len() as i64);
        }
        return;
    }
    // A new key gets the usual encoding of its value (int/embstr/raw).
    db.insert(Entry::new_string(key, tail, None, lru_clock(now)), now);
    reply.int(tail.len() as i64);
}

pub fn strlen(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match read_string(ctx, args.get(1), reply) {
        Err(()) => {}
        Ok(v) => reply.int(v.map_or(0, |s| s.len() as i64)),
    }
}

/// GETRANGE and SUBSTR: inclusive range, negative indexes from the end.
pub fn getrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (Some(start), Some(end)) = (parse_i64_strict(args.get(2)), parse_i64_strict(args.get(3)))
    else {
        return reply.error(NOT_INTEGER);
    };
    let s = match read_string(ctx, args.get(1), reply) {
        Err(()) => return,
        Ok(None) => return reply.bulk(b""),
        Ok(Some(s)) => s,
    };
    match substring_range(s.len(), start, end) {
        Some((a, b)) => reply.bulk(&s[a..=b]),
        None => reply.bulk(b""),
    }
}

/// Redis's GETRANGE index rules; `None` = empty result.
pub fn substring_range(len: usize, mut start: i64, mut end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let l = len as i64;
    if start < 0 {
        start = l.wrapping_add(start);
    }
    if end < 0 {
        end = l.wrapping_add(end);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= l {
        end = l - 1;
    }
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

pub fn setrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (key, value) = (args.get(1), args.get(3));
    let Some(offset) = parse_i64_strict(args.get(2)) else {
        return reply.error(NOT_INTEGER);
    };
    if offset < 0 {
        return reply.error("ERR offset is out of range");
    }
    let now = ctx.now;
    let max = ctx.shard.config.proto_max_bulk_len;
    let db = ctx.db();
    let fits = check_string_length(max, offset as u64, value.len() as u64);
    if let Some(e) = db.get(key, now) {
        let Some(olen) = e.as_str().map(|s| s.len()) else {
            return reply.error(WRONGTYPE);
        };
        if value.is_empty() {
            return reply.int(olen as i64);
        }
        if !fits {
            return reply.error(STRING_TOO_LONG);
        }
        if let Some(buf) = e.string_buf_mut() {
            write_at(buf, offset as usize, value);
            reply.int(buf.len() as i64);
        }
        return;
    }
    if value.is_empty() {
        return reply.int(0);
    }
    if !fits {
        return reply.error(STRING_TOO_LONG);
    }
    let mut buf = Vec::new();
    write_at(&mut buf, offset as usize, value);
    let len = buf.len();
    let mut e = Entry::new_object(key, Object::Str(buf), None, lru_clock(now));
    e.string_buf_mut(); // marks it "raw", as Redis creates it
    db.insert(e, now);
    reply.int(len as i64);
}

/// Writes `value` at `offset`, zero-padding the gap.
fn write_at(buf: &mut Vec<u8>, offset: usize, value: &[u8]) {
    let end = offset + value.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset..end].copy_from_slice(value);
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN].
pub fn lcs(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let mut vals: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut wrong = false;
    for (i, v) in vals.iter_mut().enumerate() {
        if let Some(e) = lookup_read(ctx, args.get(1 + i)) {
            match e.as_str() {
                Some(s) => *v = s.to_vec(),
                None => wrong = true,
            }
        }
    }
    if wrong {
        return reply.error("ERR The specified keys must contain string values");
    }
    let (mut get_len, mut get_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = j + 1 < args.len();
        if eq_ic(opt, b"IDX") {
            get_idx = true;
        } else if eq_ic(opt, b"LEN") {
            get_len = true;
        } else if eq_ic(opt, b"WITHMATCHLEN") {
            with_len = true;
        } else if eq_ic(opt, b"MINMATCHLEN") && more {
            let Some(n) = parse_i64_strict(args.get(j + 1)) else {
                return reply.error(NOT_INTEGER);
            };
            min_len = n.max(0);
            j += 1;
        } else {
            return reply.error(SYNTAX);
        }
        j += 1;
    }
    if get_idx && get_len {
        return reply.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let [a, b] = &vals;
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return reply.error("ERR String too long for LCS");
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells.saturating_mul(4) > ctx.shard.config.proto_max_bulk_len as u64 {
        return reply
            .error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let r = lcs_compute(a, b, get_idx || !get_len);
    if get_idx {
        let ranges: Vec<_> = r
            .ranges
            .iter()
            .filter(|m| min_len == 0 || m.len as i64 >= min_len)
            .collect();
        reply.map(2);
        reply.bulk(b"matches");
        reply.array(ranges.len());
        for m in ranges {
            reply.array(2 + with_len as usize);
            reply.array(2);
            reply.int(m.a.0 as i64);
            reply.int(m.a.1 as i64);
            reply.array(2);
            reply.int(m.b.0 as i64);
            reply.int(m.b.1 as i64);
            if with_len {
                reply.int(m.len as i64);
            }
        }
        reply.bulk(b"len");
        reply.int(r.len as i64);
    } else if get_len {
        reply.int(r.len as i64);
    } else {
        reply.bulk(&r.string);
    }
}

/// One matching range of LCS IDX (inclusive positions in each string).
#[derive(Debug, PartialEq, Eq)]
pub struct LcsMatch {
    pub a: (u32, u32),
    pub b: (u32, u32),
    pub len: u32,
}

pub struct LcsResult {
    pub len: u32,
    pub string: Vec<u8>,
    /// From the end of the strings backwards, as Redis reports them.
    pub ranges: Vec<LcsMatch>,
}

/// The classic dynamic-programming LCS, walked back from the end the way
/// Redis walks it (so ties pick the same subsequence and ranges).
pub fn lcs_compute(a: &[u8], b: &[u8], walk: bool) -> LcsResult {
    let (alen, blen) = (a.len(), b.len());
    let w = blen + 1;
    let mut t = vec![0u32; (alen + 1) * w];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    let mut out = LcsResult {
        len: total,
        string: Vec::new(),
        ranges: Vec::new(),
    };
    if !walk {
        return out;
    }
    let mut string = vec![0u8; total as usize];
    let mut idx = total as usize;
    let (mut i, mut j) = (alen, blen);
    // The range being built: (a_start, a_end, b_start, b_end).
    let mut cur: Option<(usize, usize, usize, usize)> = None;
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            string[idx - 1] = a[i - 1];
            match &mut cur {
                None => cur = Some((i - 1, i - 1, j - 1, j - 1)),
                Some(r) if r.0 == i && r.2 == j => {
                    r.0 -= 1;
                    r.2 -= 1;
                }
                Some(_) => emit = true,
            }
            if let Some(r) = cur {
                if r.0 == 0 || r.2 == 0 {
                    emit = true;
                }
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if cur.is_some() {
                emit = true;
            }
        }
        if emit {
            if let Some((a0, a1, b0, b1)) = cur.take() {
                out.ranges.push(LcsMatch {
                    a: (a0 as u32, a1 as u32),
                    b: (b0 as u32, b1 as u32),
                    len: (a1 - a0 + 1) as u32,
                });
            }
        }
    }
    out.string = string;
    out
}
