//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, on strings in Redis's own
//! HLL format (see `types::hll`), so values copied with GET/SET between
//! Tessera and Redis keep working on both.

use tessera_protocol::{Args, Reply};

use super::acl::{
    FAST as A_FAST, HYPERLOGLOG as A_HLL, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::table::KEY1_W;
use super::{CommandSpec, Ctx, KeySpec, Route, Split, Writes};
use crate::cmd;
use crate::store::{lru_clock, Entry, ValueRef};
use crate::types::hll::{self, HllError, REGISTERS};

const ALL_READ: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::None,
};
const FIRST_WRITTEN: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
    writes: Writes::First,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("pfadd", -2, WRITE | DENYOOM | FAST, A_WRITE | A_HLL | A_FAST, "hyperloglog", KEY1_W,
        Route::Keyed(pfadd, Split::Gather), "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
        "2.8.9", "O(1) to add every element."),
    cmd!("pfcount", -2, READONLY | crate::command::flags::MAY_REPLICATE, A_READ | A_HLL | A_SLOW, "hyperloglog", ALL_READ,
        Route::Keyed(pfcount, Split::Gather),
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).", "2.8.9",
        "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys."),
    cmd!("pfmerge", -2, WRITE | DENYOOM, A_WRITE | A_HLL | A_SLOW, "hyperloglog", FIRST_WRITTEN,
        Route::Keyed(pfmerge, Split::Gather), "Merges one or more HyperLogLog values into a single key.", "2.8.9",
        "O(N) to merge N HyperLogLogs, but with high constant times."),
];

fn hll_error(reply: &mut Reply, e: HllError) {
    match e {
        HllError::NotHll => reply.error(hll::ERR_NOT_HLL),
        HllError::Corrupt => reply.error(hll::ERR_CORRUPT),
    }
}

pub fn pfadd(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let mut updated = false;
    match db.get(key, now) {
        Some(e) => match e.value() {
            ValueRef::Obj(_) => return reply.error(WRONGTYPE),
            ValueRef::Str(s) => {
                if let Err(err) = hll::check(s) {
                    return hll_error(reply, err);
                }
            }
        },
        None => {
            let mut e = Entry::new_string(key, b"", None, lru_clock(now));
            if let Some(b) = e.string_buf_mut() {
                *b = hll::new_hll();
            }
            db.insert(e, now);
            updated = true;
        }
    }
    let Some(buf) = db.get(key, now).and_then(|e| e.string_buf_mut()) else {
        return reply.error(WRONGTYPE);
    };
    for ele in args.iter().skip(2) {
        match hll::add(buf, ele) {
            Ok(true) => updated = true,
            Ok(false) => {}
            Err(e) => return hll_error(reply, e),
        }
    }
    if updated {
        hll::invalidate_cache(buf);
    }
    reply.int(updated as i64);
}

pub fn pfcount(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    if args.len() == 2 {
        let key = args.get(1);
        let db = ctx.db();
        let valid = match db.get(key, now) {
            None => return reply.int(0),
            Some(e) => match e.value() {
                ValueRef::Obj(_) => return reply.error(WRONGTYPE),
                ValueRef::Str(s) => hll::check(s),
            },
        };
        if let Err(e) = valid {
            return hll_error(reply, e);
        }
        let Some(buf) = db.get(key, now).and_then(|e| e.string_buf_mut()) else {
            return reply.error(WRONGTYPE);
        };
        match hll::count(buf) {
            Ok((c, _)) => reply.int(c as i64),
            Err(e) => hll_error(reply, e),
        }
        return;
    }
    let db = ctx.db();
    let mut max = Box::new([0u8; REGISTERS]);
    for k in args.iter().skip(1) {
        match db.get(k, now) {
            None => continue,
            Some(e) => match e.value() {
                ValueRef::Obj(_) => return reply.error(WRONGTYPE),
                ValueRef::Str(s) => {
                    if let Err(e) = hll::check(s).and_then(|_| hll::merge_into(&mut max, s)) {
                        return hll_error(reply, e);
                    }
                }
            },
        }
    }
    reply.int(hll::count_registers(&max) as i64);
}

pub fn pfmerge(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let db = ctx.db();
    let mut max = Box::new([0u8; REGISTERS]);
    let mut dense = false;
    for k in args.iter().skip(1) {
        match db.get(k, now) {
            None => continue,
            Some(e) => match e.value() {
                ValueRef::Obj(_) => return reply.error(WRONGTYPE),
                ValueRef::Str(s) => {
                    if let Err(e) = hll::check(s) {
                        return hll_error(reply, e);
                    }
                    dense |= hll::is_dense(s);
                    if let Err(e) = hll::merge_into(&mut max, s) {
                        return hll_error(reply, e);
                    }
                }
            },
        }
    }
    let dest = args.get(1);
    if db.get(dest, now).is_none() {
        let mut e = Entry::new_string(dest, b"", None, lru_clock(now));
        if let Some(b) = e.string_buf_mut() {
            *b = hll::new_hll();
        }
        db.insert(e, now);
    }
    let Some(buf) = db.get(dest, now).and_then(|e| e.string_buf_mut()) else {
        return reply.error(WRONGTYPE);
    };
    match hll::store_registers(buf, &max, dense) {
        Ok(()) => reply.ok(),
        Err(e) => hll_error(reply, e),
    }
}
