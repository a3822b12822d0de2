//! Cluster-mode commands: CLUSTER's subcommands, READONLY, READWRITE and
//! ASKING. The node's cluster state lives in the server crate
//! (`server/src/cluster/`), which runs most of them on the connection;
//! the two that read keys of one slot (COUNTKEYSINSLOT, GETKEYSINSLOT)
//! run here, on every shard, and only the slot's owner finds any.

use tessera_protocol::{Args, Reply};

use super::acl::{
    ADMIN as A_ADMIN, CONNECTION as A_CONN, DANGEROUS as A_DANGER, FAST as A_FAST, SLOW as A_SLOW,
};
use super::flags::*;
use super::table::{CONTAINER, NO_KEYS};
use super::{CommandSpec, Ctx, Merge, Route};
use crate::cmd;
use crate::slot::SLOTS;
use crate::util::parse_i64_strict;

/// Redis's reply to every CLUSTER subcommand when cluster mode is off.
pub const DISABLED: &str = "ERR This instance has cluster support disabled";

const ADMIN_SUB: u32 = ADMIN | STALE | NO_ASYNC_LOADING;
const A_ADMIN_SUB: u32 = A_ADMIN | A_SLOW | A_DANGER;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!(
        "cluster",
        -2,
        0,
        A_SLOW,
        "cluster",
        NO_KEYS,
        CONTAINER,
        "A container for Redis Cluster commands.",
        "3.0.0",
        "Depends on subcommand.",
        CLUSTER_SUBS
    ),
    cmd!(
        "readonly",
        1,
        FAST | LOADING | STALE,
        A_FAST | A_CONN,
        "cluster",
        NO_KEYS,
        Route::Conn,
        "Enables read-only queries for a connection to a Redis Cluster replica node.",
        "3.0.0",
        "O(1)"
    ),
    cmd!(
        "readwrite",
        1,
        FAST | LOADING | STALE,
        A_FAST | A_CONN,
        "cluster",
        NO_KEYS,
        Route::Conn,
        "Enables read-write queries for a connection to a Redis Cluster replica node.",
        "3.0.0",
        "O(1)"
    ),
    cmd!(
        "asking",
        1,
        FAST,
        A_FAST | A_CONN,
        "cluster",
        NO_KEYS,
        Route::Conn,
        "Signals that a cluster client is following an -ASK redirect.",
        "3.0.0",
        "O(1)"
    ),
];

static CLUSTER_SUBS: &[CommandSpec] = &[
    cmd!("cluster|addslots", -3, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Assigns new hash slots to a node.", "3.0.0", "O(N) where N is the total number of hash slot arguments"),
    cmd!("cluster|addslotsrange", -4, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Assigns new hash slot ranges to a node.", "7.0.0", "O(N) where N is the total number of the slots between the start slot and end slot arguments."),
    cmd!("cluster|bumpepoch", 2, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Advances the cluster config epoch.", "3.0.0", "O(1)"),
    cmd!("cluster|count-failure-reports", 3, ADMIN | STALE, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Returns the number of active failure reports active for a node.", "3.0.0", "O(N) where N is the number of failure reports"),
    cmd!("cluster|countkeysinslot", 3, STALE, A_SLOW, "cluster", NO_KEYS,
        Route::Fanout(countkeysinslot, Merge::SumInt),
        "Returns the number of keys in a hash slot.", "3.0.0", "O(1)"),
    cmd!("cluster|delslots", -3, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Sets hash slots as unbound for a node.", "3.0.0", "O(N) where N is the total number of hash slot arguments"),
    cmd!("cluster|delslotsrange", -4, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Sets hash slot ranges as unbound for a node.", "7.0.0", "O(N) where N is the total number of the slots between the start slot and end slot arguments."),
    cmd!("cluster|flushslots", 2, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Deletes all slots information from a node.", "3.0.0", "O(1)"),
    cmd!("cluster|forget", 3, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Removes a node from the nodes table.", "3.0.0", "O(1)"),
    cmd!("cluster|getkeysinslot", 4, STALE, A_SLOW, "cluster", NO_KEYS,
        Route::Fanout(getkeysinslot, Merge::ConcatArray),
        "Returns the key names in a hash slot.", "3.0.0", "O(N) where N is the number of requested keys"),
    cmd!("cluster|help", 2, LOADING | STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns helpful text about the different subcommands.", "5.0.0", "O(1)"),
    cmd!("cluster|info", 2, STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns information about the state of a node.", "3.0.0", "O(1)"),
    cmd!("cluster|keyslot", 3, STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns the hash slot for a key.", "3.0.0", "O(N) where N is the number of bytes in the key"),
    cmd!("cluster|links", 2, STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns a list of all TCP links to and from peer nodes.", "7.0.0", "O(N) where N is the total number of Cluster nodes"),
    cmd!("cluster|meet", -4, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Forces a node to handshake with another node.", "3.0.0", "O(1)"),
    cmd!("cluster|myid", 2, STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns the ID of a node.", "3.0.0", "O(1)"),
    cmd!("cluster|myshardid", 2, STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns the shard ID of a node.", "7.2.0", "O(1)"),
    cmd!("cluster|nodes", 2, STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns the cluster configuration for a node.", "3.0.0", "O(N) where N is the total number of Cluster nodes"),
    cmd!("cluster|replicas", 3, ADMIN | STALE, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Lists the replica nodes of a master node.", "5.0.0", "O(N) where N is the number of replicas."),
    cmd!("cluster|reset", -2, ADMIN | STALE | NOSCRIPT, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Resets a node.", "3.0.0", "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect."),
    cmd!("cluster|saveconfig", 2, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Forces a node to save the cluster configuration to disk.", "3.0.0", "O(1)"),
    cmd!("cluster|set-config-epoch", 3, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Sets the configuration epoch for a new node.", "3.0.0", "O(1)"),
    cmd!("cluster|setslot", -4, ADMIN_SUB, A_ADMIN_SUB, "cluster", NO_KEYS, Route::Conn,
        "Binds a hash slot to a node.", "3.0.0", "O(1)"),
    cmd!("cluster|shards", 2, LOADING | STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns the mapping of cluster slots to shards.", "7.0.0", "O(N) where N is the total number of cluster nodes"),
    cmd!("cluster|slots", 2, LOADING | STALE, A_SLOW, "cluster", NO_KEYS, Route::Conn,
        "Returns the mapping of cluster slots to nodes.", "3.0.0", "O(N) where N is the total number of Cluster nodes"),
];

/// The slot argument of COUNTKEYSINSLOT, or the error Redis replies with.
fn slot_arg(raw: &[u8]) -> Result<u16, &'static str> {
    match parse_i64_strict(raw) {
        None => Err("ERR value is not an integer or out of range"),
        Some(s) if !(0..SLOTS as i64).contains(&s) => Err("ERR Invalid slot"),
        Some(s) => Ok(s as u16),
    }
}

/// CLUSTER COUNTKEYSINSLOT slot: this shard's keys of the slot (the sum
/// over shards is the node's count; only one shard owns the slot).
pub fn countkeysinslot(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if !ctx.shard.config.cluster_enabled {
        return reply.error(DISABLED);
    }
    match slot_arg(args.get(2)) {
        Err(e) => reply.error(e),
        Ok(slot) => {
            let n = ctx.shard.keyspace.get(0).map_or(0, |d| d.slot_len(slot));
            reply.int(n as i64)
        }
    }
}

/// CLUSTER GETKEYSINSLOT slot count: up to `count` of this shard's keys
/// of the slot (Redis checks the count before the slot).
pub fn getkeysinslot(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if !ctx.shard.config.cluster_enabled {
        return reply.error(DISABLED);
    }
    const BAD: &str = "ERR value is not an integer or out of range";
    let Some(max) = parse_i64_strict(args.get(3)) else {
        return reply.error(BAD);
    };
    let Some(slot) = parse_i64_strict(args.get(2)) else {
        return reply.error(BAD);
    };
    if max < 0 || !(0..SLOTS as i64).contains(&slot) {
        return reply.error("ERR Invalid slot or number of keys");
    }
    let Some(db) = ctx.shard.keyspace.get(0) else {
        return reply.array(0);
    };
    let table = db.slot(slot as u16);
    let n = table.len().min(max as usize);
    reply.array(n);
    for e in table.iter().take(n) {
        reply.bulk(e.key());
    }
}
