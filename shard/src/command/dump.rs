//! DUMP and RESTORE: a value in Redis's payload format (one RDB value, the
//! RDB version on 2 bytes, a CRC-64), interchangeable with redis-server.

use tessera_protocol::{Args, Reply};

use super::acl::{
    DANGEROUS as A_DANGER, KEYSPACE as A_KEYSPACE, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE,
};
use super::errors::{NOT_INTEGER, SYNTAX};
use super::flags::{DENYOOM, READONLY, WRITE};
use super::strings::lookup_read;
use super::table::{KEY1_R, KEY1_W};
use super::{CommandSpec, Ctx, Route, Split};
use crate::cmd;
use crate::rdb::{dump_payload, restore_payload, Limits};
use crate::store::lru_clock;
use crate::util::{eq_ic, parse_i64_strict};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("dump", 2, READONLY, A_KEYSPACE | A_READ | A_SLOW, "generic", KEY1_R,
        Route::Keyed(dump, Split::Gather),
        "Return a serialized version of the value stored at the specified key.", "2.6.0",
        "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1)."),
    cmd!("restore", -4, WRITE | DENYOOM, A_KEYSPACE | A_WRITE | A_SLOW | A_DANGER, "generic", KEY1_W,
        Route::Keyed(restore, Split::Gather),
        "Create a key using the provided serialized value, previously obtained using DUMP.", "2.6.0",
        "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N))."),
];

pub fn dump(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let compress = ctx.shard.config.rdb_compression;
    match lookup_read(ctx, args.get(1)) {
        None => reply.null(),
        Some(e) => reply.bulk(&dump_payload(&e.value(), compress)),
    }
}

pub fn restore(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let a = args.get(j);
        let more = j + 1 < args.len();
        if eq_ic(a, b"REPLACE") {
            replace = true;
        } else if eq_ic(a, b"ABSTTL") {
            absttl = true;
        } else if eq_ic(a, b"IDLETIME") && more && freq.is_none() {
            let Some(v) = parse_i64_strict(args.get(j + 1)) else {
                return reply.error(NOT_INTEGER);
            };
            if v < 0 {
                return reply.error("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = Some(v);
            j += 1;
        } else if eq_ic(a, b"FREQ") && more && idle.is_none() {
            let Some(v) = parse_i64_strict(args.get(j + 1)) else {
                return reply.error(NOT_INTEGER);
            };
            if !(0..=255).contains(&v) {
                return reply.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(v);
            j += 1;
        } else {
            return reply.error(SYNTAX);
        }
        j += 1;
    }
    let key = args.get(1);
    let now = ctx.now;
    if !replace && ctx.db().contains(key, now) {
        return reply.error("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = parse_i64_strict(args.get(2)) else {
        return reply.error(NOT_INTEGER);
    };
    if ttl < 0 {
        return reply.error("ERR Invalid TTL value, must be >= 0");
    }
    let lim = Limits::from_config(&ctx.shard.config);
    let value = match restore_payload(args.get(3), &lim) {
        Ok(v) => v,
        Err(e) => return reply.error(e),
    };
    if replace {
        if let Some(old) = ctx.db().remove(key, now) {
            ctx.shard.free_entry(old);
        }
    }
    let expire = match ttl {
        0 => None,
        t if absttl => Some(t),
        t => Some(t.saturating_add(now)),
    };
    if expire.is_some_and(|t| t <= now) {
        // Already expired: nothing is created (an old key was deleted).
        return reply.ok();
    }
    // Tessera keeps an LRU clock only: FREQ is accepted and not tracked.
    let _ = freq;
    let clock = lru_clock(now);
    let lru = match idle {
        Some(i) => clock.wrapping_sub((i.min(0xFF_FFFF)) as u32) & 0xFF_FFFF,
        None => clock,
    };
    let entry = value.into_entry(key, expire, lru);
    if let Some(old) = ctx.db().insert(entry, now) {
        ctx.shard.free_entry(old);
    }
    reply.ok();
}
