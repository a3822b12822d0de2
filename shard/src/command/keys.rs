//! Generic keyspace commands (DEL, EXISTS, EXPIRE, TTL, RENAME, SCAN...).

use tessera_protocol::{Args, Reply};

use super::acl::{
    DANGEROUS as A_DANGER, FAST as A_FAST, KEYSPACE as A_KEYSPACE, READ as A_READ, SLOW as A_SLOW,
    WRITE as A_WRITE,
};
use super::flags::{FAST, READONLY, WRITE};
use super::table::{ALL_R, ALL_W, NO_KEYS};
use super::{CommandSpec, Ctx, Merge, Route, Split};
use crate::cmd;
use crate::glob::glob_match;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("del", -2, WRITE, A_KEYSPACE | A_WRITE | A_SLOW, "generic", ALL_W, Route::Keyed(del, Split::SumInt),
        "Deletes one or more keys.", "1.0.0",
        "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1)."),
    cmd!("unlink", -2, WRITE | FAST, A_KEYSPACE | A_WRITE | A_FAST, "generic", ALL_W, Route::Keyed(del, Split::SumInt),
        "Asynchronously deletes one or more keys.", "4.0.0",
        "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of."),
    cmd!("exists", -2, READONLY | FAST, A_KEYSPACE | A_READ | A_FAST, "generic", ALL_R,
        Route::Keyed(exists, Split::SumInt), "Determines whether one or more keys exist.", "1.0.0",
        "O(N) where N is the number of keys to check."),
    cmd!("keys", 2, READONLY, A_KEYSPACE | A_READ | A_SLOW | A_DANGER, "generic", NO_KEYS,
        Route::Fanout(keys, Merge::ConcatArray), "Returns all key names that match a pattern.", "1.0.0",
        "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length."),
    cmd!("scan", -2, READONLY, A_KEYSPACE | A_READ | A_SLOW, "generic", NO_KEYS, Route::Conn,
        "Iterates over the key names in the database.", "2.8.0",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection."),
    cmd!("randomkey", 1, READONLY, A_KEYSPACE | A_READ | A_SLOW, "generic", NO_KEYS, Route::Conn,
        "Returns a random key name from the database.", "1.0.0", "O(1)"),
];

/// DEL and UNLINK (a shard's part: the keys it owns).
pub fn del(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let mut n = 0;
    for k in args.iter().skip(1) {
        if let Some(e) = ctx.db().remove(k, now) {
            ctx.shard.free_entry(e);
            n += 1;
        }
    }
    reply.int(n as i64);
}

/// EXISTS: a key named twice counts twice, as in Redis.
pub fn exists(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let db = ctx.db();
    let n = args.iter().skip(1).filter(|k| db.contains(k, now)).count();
    reply.int(n as i64);
}

/// KEYS pattern: this shard's matching live keys.
pub fn keys(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let pattern = args.get(1);
    let now = ctx.now;
    let all = pattern == b"*";
    let mut found: Vec<&[u8]> = Vec::new();
    let shard = &mut *ctx.shard;
    if let Some(db) = shard.keyspace.db_if_exists(ctx.db) {
        for &slot in &shard.owned_slots {
            for e in db.slot(slot).iter() {
                if !e.is_expired(now) && (all || glob_match(pattern, e.key(), false)) {
                    found.push(e.key());
                }
            }
        }
    }
    reply.array(found.len());
    for k in found {
        reply.bulk(k);
    }
}
