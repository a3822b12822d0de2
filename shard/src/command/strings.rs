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
use crate::store::ValueRef;
use crate::util::{eq_ic, parse_i64_strict};

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

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("get", 2, READONLY | FAST, A_READ | A_STRING | A_FAST, "string", KEY1_R,
        Route::Keyed(get, Split::Gather), "Returns the string value of a key.", "1.0.0", "O(1)"),
    cmd!("set", -3, WRITE | DENYOOM, A_WRITE | A_STRING | A_SLOW, "string", KEY1_W,
        Route::Keyed(set, Split::Gather),
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "1.0.0", "O(1)"),
    cmd!("mget", -2, READONLY | FAST, A_READ | A_STRING | A_FAST, "string", MGET_KEYS,
        Route::Keyed(mget, Split::ConcatByKey), "Atomically returns the string values of one or more keys.", "1.0.0",
        "O(N) where N is the number of keys to retrieve."),
    cmd!("mset", -3, WRITE | DENYOOM, A_WRITE | A_STRING | A_SLOW, "string", MSET_KEYS,
        Route::Keyed(mset, Split::AllOk), "Atomically creates or modifies the string values of one or more keys.",
        "1.0.1", "O(N) where N is the number of keys to set."),
    cmd!("incr", 2, WRITE | DENYOOM | FAST, A_WRITE | A_STRING | A_FAST, "string", KEY1_W,
        Route::Keyed(incr, Split::Gather),
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)"),
    cmd!("decr", 2, WRITE | DENYOOM | FAST, A_WRITE | A_STRING | A_FAST, "string", KEY1_W,
        Route::Keyed(decr, Split::Gather),
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)"),
    cmd!("incrby", 3, WRITE | DENYOOM | FAST, A_WRITE | A_STRING | A_FAST, "string", KEY1_W,
        Route::Keyed(incrby, Split::Gather),
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)"),
    cmd!("decrby", 3, WRITE | DENYOOM | FAST, A_WRITE | A_STRING | A_FAST, "string", KEY1_W,
        Route::Keyed(decrby, Split::Gather),
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)"),
];

/// Reads a string key for a read command: Ok(None) when missing,
/// Err(()) (after writing WRONGTYPE) when it holds another type.
/// Counts keyspace hits and misses.
pub fn read_string<'c>(
    ctx: &'c mut Ctx,
    key: &[u8],
    reply: &mut Reply,
) -> Result<Option<&'c [u8]>, ()> {
    let now = ctx.now;
    let db = ctx.shard.keyspace.db(ctx.db);
    match db.get(key, now) {
        None => {
            ctx.shard.stats.keyspace_misses += 1;
            Ok(None)
        }
        Some(e) => {
            ctx.shard.stats.keyspace_hits += 1;
            match e.value() {
                ValueRef::Str(s) => Ok(Some(s)),
                ValueRef::Obj(_) => {
                    reply.error(WRONGTYPE);
                    Err(())
                }
            }
        }
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
#[derive(Clone, Copy, PartialEq)]
pub enum ExpireUnit {
    Seconds,
    Millis,
}

/// Turns an EX/PX/EXAT/PXAT argument into an absolute ms time, with Redis's
/// checks (positive, no overflow). `None` = invalid expire time.
pub fn absolute_expire(arg: &[u8], unit: ExpireUnit, relative: bool, now: i64) -> Option<i64> {
    let v = parse_i64_strict(arg)?;
    if v <= 0 {
        return None;
    }
    let ms = match unit {
        ExpireUnit::Seconds => v.checked_mul(1000)?,
        ExpireUnit::Millis => v,
    };
    if relative {
        ms.checked_add(now)
    } else {
        Some(ms)
    }
}

pub fn set(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let key = args.get(1);
    let value = args.get(2);
    let (mut nx, mut xx, mut want_get, mut keep_ttl) = (false, false, false, false);
    let mut expire: Option<(usize, ExpireUnit, bool)> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i);
        let has_next = i + 1 < args.len();
        if eq_ic(a, b"NX") && !xx {
            nx = true;
        } else if eq_ic(a, b"XX") && !nx {
            xx = true;
        } else if eq_ic(a, b"GET") {
            want_get = true;
        } else if eq_ic(a, b"KEEPTTL") && expire.is_none() {
            keep_ttl = true;
        } else if has_next
            && expire.is_none()
            && !keep_ttl
            && (eq_ic(a, b"EX") || eq_ic(a, b"PX") || eq_ic(a, b"EXAT") || eq_ic(a, b"PXAT"))
        {
            let unit = if eq_ic(a, b"EX") || eq_ic(a, b"EXAT") {
                ExpireUnit::Seconds
            } else {
                ExpireUnit::Millis
            };
            let relative = a.len() == 2;
            i += 1;
            expire = Some((i, unit, relative));
        } else {
            reply.error(SYNTAX);
            return;
        }
        i += 1;
    }
    let now = ctx.now;
    let expire_at = match expire {
        Some((pos, unit, relative)) => match absolute_expire(args.get(pos), unit, relative, now) {
            Some(t) => Some(t),
            None => {
                reply.error("ERR invalid expire time in 'set' command");
                return;
            }
        },
        None => None,
    };
    let db = ctx.shard.keyspace.db(ctx.db);
    let exists = match db.get(key, now) {
        Some(e) => {
            if want_get {
                match e.value() {
                    ValueRef::Str(s) => reply.bulk(s),
                    ValueRef::Obj(_) => {
                        reply.error(WRONGTYPE);
                        return;
                    }
                }
            }
            true
        }
        None => {
            if want_get {
                reply.null();
            }
            false
        }
    };
    if (nx && exists) || (xx && !exists) {
        if !want_get {
            reply.null();
        }
        return;
    }
    db.set_string(key, value, expire_at, keep_ttl, now);
    if !want_get {
        reply.ok();
    }
}

pub fn mget(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    reply.array(args.len() - 1);
    let now = ctx.now;
    for key in args.iter().skip(1) {
        let db = ctx.shard.keyspace.db(ctx.db);
        match db.get(key, now).and_then(|e| e.as_str()) {
            Some(s) => {
                reply.bulk(s);
                ctx.shard.stats.keyspace_hits += 1;
            }
            None => {
                reply.null();
                ctx.shard.stats.keyspace_misses += 1;
            }
        }
    }
}

pub fn mset(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if args.len() % 2 == 0 {
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
