//! Server and connection commands. Most are run by the connection itself
//! (`Route::Conn`: the server crate implements them); the shard-side parts
//! of fan-out commands (DBSIZE, FLUSHDB...) are here.

use tessera_protocol::{Args, Reply};

use super::acl::{
    ADMIN as A_ADMIN, CONNECTION as A_CONN, DANGEROUS as A_DANGER, FAST as A_FAST,
    KEYSPACE as A_KEYSPACE, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE,
};
use super::errors::SYNTAX;
use super::flags::*;
use super::table::{CONTAINER, NO_KEYS};
use super::{CommandSpec, Ctx, Merge, Route};
use crate::cmd;
use crate::util::eq_ic;

const CONN_FLAGS: u32 = NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("ping", -1, FAST | SENTINEL, A_FAST | A_CONN, "connection", NO_KEYS, Route::Local(ping),
        "Returns the server's liveliness response.", "1.0.0", "O(1)"),
    cmd!("echo", 2, FAST, A_FAST | A_CONN, "connection", NO_KEYS, Route::Local(echo), "Returns the given string.", "1.0.0",
        "O(1)"),
    cmd!("hello", -1, CONN_FLAGS | SENTINEL, A_FAST | A_CONN, "connection", NO_KEYS, Route::Conn,
        "Handshakes with the Redis server.", "6.0.0", "O(1)"),
    cmd!("auth", -2, CONN_FLAGS | SENTINEL, A_FAST | A_CONN, "connection", NO_KEYS, Route::Conn,
        "Authenticates the connection.", "1.0.0", "O(N) where N is the number of passwords defined for the user"),
    cmd!("select", 2, LOADING | STALE | FAST, A_FAST | A_CONN, "connection", NO_KEYS, Route::Conn,
        "Changes the selected database.", "1.0.0", "O(1)"),
    cmd!("quit", -1, CONN_FLAGS, A_FAST | A_CONN, "connection", NO_KEYS, Route::Conn, "Closes the connection.", "1.0.0",
        "O(1)"),
    cmd!("reset", 1, CONN_FLAGS, A_FAST | A_CONN, "connection", NO_KEYS, Route::Conn, "Resets the connection.", "6.2.0",
        "O(1)"),
    cmd!("client", -2, SENTINEL, A_SLOW, "connection", NO_KEYS, CONTAINER,
        "A container for client connection commands.", "2.4.0", "Depends on subcommand.", CLIENT_SUBS),
    cmd!("command", -1, LOADING | STALE | SENTINEL, A_SLOW | A_CONN, "server", NO_KEYS, CONTAINER,
        "Returns detailed information about all commands.", "2.8.13", "O(N) where N is the total number of Redis commands",
        COMMAND_SUBS),
    cmd!("info", -1, LOADING | STALE | SENTINEL, A_SLOW | A_DANGER, "server", NO_KEYS, Route::Conn,
        "Returns information and statistics about the server.", "1.0.0", "O(1)"),
    cmd!("dbsize", 1, READONLY | FAST, A_KEYSPACE | A_READ | A_FAST, "server", NO_KEYS,
        Route::Fanout(dbsize, Merge::SumInt), "Returns the number of keys in the database.", "1.0.0", "O(1)"),
    cmd!("flushdb", -1, WRITE, A_KEYSPACE | A_WRITE | A_SLOW | A_DANGER, "server", NO_KEYS,
        Route::Fanout(flushdb, Merge::AllOk), "Removes all keys from the current database.", "1.0.0",
        "O(N) where N is the number of keys in the selected database"),
    cmd!("flushall", -1, WRITE, A_KEYSPACE | A_WRITE | A_SLOW | A_DANGER, "server", NO_KEYS,
        Route::Fanout(flushall, Merge::AllOk), "Removes all keys from all databases.", "1.0.0",
        "O(N) where N is the total number of keys in all databases"),
    cmd!("swapdb", 3, WRITE | FAST, A_KEYSPACE | A_WRITE | A_FAST | A_DANGER, "server", NO_KEYS,
        Route::Fanout(swapdb, Merge::AllOk), "Swaps two Redis databases.", "4.0.0",
        "O(N) where N is the count of clients watching or blocking on keys from both databases."),
    cmd!("config", -2, 0, A_SLOW, "server", NO_KEYS, CONTAINER, "A container for server configuration commands.", "2.0.0",
        "Depends on subcommand.", CONFIG_SUBS),
    cmd!("time", 1, LOADING | STALE | FAST, A_FAST, "server", NO_KEYS, Route::Local(time),
        "Returns the server time.", "2.6.0", "O(1)"),
    cmd!("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, A_ADMIN | A_SLOW | A_DANGER, "server", NO_KEYS, Route::Conn,
        "A container for debugging commands.", "1.0.0", "Depends on subcommand."),
    cmd!("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY,
        A_ADMIN | A_SLOW | A_DANGER, "server", NO_KEYS, Route::Conn,
        "Synchronously saves the database(s) to disk and shuts down the Redis server.", "1.0.0",
        "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)"),
];

static CLIENT_SUBS: &[CommandSpec] = &[
    cmd!(
        "client|id",
        2,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Returns the unique client ID of the connection.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "client|setname",
        3,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Sets the connection name.",
        "2.6.9",
        "O(1)"
    ),
    cmd!(
        "client|getname",
        2,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Returns the name of the connection.",
        "2.6.9",
        "O(1)"
    ),
    cmd!(
        "client|setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Sets information specific to the client or connection.",
        "7.2.0",
        "O(1)"
    ),
    cmd!(
        "client|list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Lists open connections.",
        "2.4.0",
        "O(N) where N is the number of client connections"
    ),
    cmd!(
        "client|info",
        2,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Returns information about the connection.",
        "6.2.0",
        "O(1)"
    ),
    cmd!(
        "client|tracking",
        -3,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Controls server-assisted client-side caching for the connection.",
        "6.0.0",
        "O(1). Some options may introduce additional complexity."
    ),
    cmd!(
        "client|caching",
        3,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Instructs the server whether to track the keys in the next request.",
        "6.0.0",
        "O(1)"
    ),
    cmd!(
        "client|getredir",
        2,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Returns the client ID to which the connection's tracking notifications are redirected.",
        "6.0.0",
        "O(1)"
    ),
    cmd!(
        "client|trackinginfo",
        2,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Returns information about server-assisted client-side caching for the connection.",
        "6.2.0",
        "O(1)"
    ),
    cmd!(
        "client|unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Unblocks a client blocked by a blocking command from another connection.",
        "5.0.0",
        "O(log N) where N is the number of client connections"
    ),
    cmd!(
        "client|kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Terminates open connections.",
        "2.4.0",
        "O(N) where N is the number of client connections"
    ),
    cmd!(
        "client|help",
        2,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Returns helpful text about the different subcommands.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "client|pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Suspends commands processing.",
        "3.0.0",
        "O(1)"
    ),
    cmd!(
        "client|unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Resumes processing of clients that were paused.",
        "6.2.0",
        "O(N) Where N is the number of paused clients"
    ),
    cmd!(
        "client|reply",
        3,
        NOSCRIPT | LOADING | STALE,
        A_SLOW | A_CONN,
        "connection",
        NO_KEYS,
        Route::Conn,
        "Instructs the server whether to reply to commands.",
        "3.2.0",
        "O(1)"
    ),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    cmd!(
        "command|count",
        2,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns a count of commands.",
        "2.8.13",
        "O(1)"
    ),
    cmd!(
        "command|info",
        -2,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns information about one, multiple or all commands.",
        "2.8.13",
        "O(N) where N is the number of commands to look up"
    ),
    cmd!(
        "command|docs",
        -2,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns documentary information about one, multiple or all commands.",
        "7.0.0",
        "O(N) where N is the number of commands to look up"
    ),
    cmd!(
        "command|list",
        -2,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns a list of command names.",
        "7.0.0",
        "O(N) where N is the total number of Redis commands"
    ),
    cmd!(
        "command|getkeys",
        -3,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "server",
        NO_KEYS,
        Route::Conn,
        "Extracts the key names from an arbitrary command.",
        "2.8.13",
        "O(N) where N is the number of arguments to the command"
    ),
    cmd!(
        "command|help",
        2,
        LOADING | STALE,
        A_SLOW | A_CONN,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns helpful text about the different subcommands.",
        "5.0.0",
        "O(1)"
    ),
];

static CONFIG_SUBS: &[CommandSpec] = &[
    cmd!(
        "config|get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns the effective values of configuration parameters.",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided"
    ),
    cmd!(
        "config|set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Sets configuration parameters in-flight.",
        "2.0.0",
        "O(N) when N is the number of configuration parameters provided"
    ),
    cmd!(
        "config|resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Resets the server's statistics.",
        "2.0.0",
        "O(1)"
    ),
    cmd!(
        "config|rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        A_ADMIN | A_SLOW | A_DANGER,
        "server",
        NO_KEYS,
        Route::Conn,
        "Persists the effective configuration to file.",
        "2.8.0",
        "O(1)"
    ),
    cmd!(
        "config|help",
        2,
        LOADING | STALE,
        A_SLOW,
        "server",
        NO_KEYS,
        Route::Conn,
        "Returns helpful text about the different subcommands.",
        "5.0.0",
        "O(1)"
    ),
];

pub fn ping(_ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match args.len() {
        1 => reply.simple("PONG"),
        2 => reply.bulk(args.get(1)),
        _ => reply.error("ERR wrong number of arguments for 'ping' command"),
    }
}

pub fn echo(_ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    reply.bulk(args.get(1));
}

pub fn time(_ctx: &mut Ctx, _args: Args, reply: &mut Reply) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    reply.array(2);
    reply.bulk_int(d.as_secs() as i64);
    reply.bulk_int(d.subsec_micros() as i64);
}

/// The shard's part of DBSIZE.
pub fn dbsize(ctx: &mut Ctx, _args: Args, reply: &mut Reply) {
    let n = ctx
        .shard
        .keyspace
        .db_if_exists(ctx.db)
        .map(|d| d.len())
        .unwrap_or(0);
    reply.int(n as i64);
}

/// Parses FLUSHDB/FLUSHALL's optional ASYNC|SYNC; Some(async) or None (syntax error).
fn flush_mode(args: &Args) -> Option<bool> {
    match args.len() {
        1 => Some(false),
        2 if eq_ic(args.get(1), b"ASYNC") => Some(true),
        2 if eq_ic(args.get(1), b"SYNC") => Some(false),
        _ => None,
    }
}

/// The shard's part of FLUSHDB. ASYNC hands the tables to the lazy-free
/// queue, which the shard drains in small steps between requests.
pub fn flushdb(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(lazy) = flush_mode(&args) else {
        return reply.error(SYNTAX);
    };
    report_replaced(ctx, ctx.db, None);
    if let Some(db) = ctx.shard.keyspace.db_if_exists(ctx.db) {
        let tables = db.take_all();
        if lazy {
            ctx.shard.lazy_free.extend(tables);
        }
    }
    reply.ok();
}

pub fn flushall(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(lazy) = flush_mode(&args) else {
        return reply.error(SYNTAX);
    };
    for db in 0..ctx.shard.keyspace.databases() {
        report_replaced(ctx, db, None);
    }
    let mut freed = Vec::new();
    let mut removed = 0u64;
    for (_, db) in ctx.shard.keyspace.dbs_mut() {
        removed += db.len() as u64;
        freed.extend(db.take_all());
    }
    // Redis's dirty counter grows by the keys removed, plus one for the
    // command: the server adds one per shard for the write, so only shard
    // 0 keeps it. With save points set, the emptied dataset is saved.
    let st = &mut *ctx.shard;
    st.dirty = (st.dirty + removed + (st.id == 0) as u64).saturating_sub(1);
    st.flushall_save = true;
    if lazy {
        ctx.shard.lazy_free.extend(freed);
    }
    reply.ok();
}

/// Tells the change hook that `db` is about to be emptied, or replaced by
/// `with` (SWAPDB): watchers of keys that exist on either side see a change.
fn report_replaced(ctx: &mut Ctx, db: usize, with: Option<usize>) {
    let st = &mut *ctx.shard;
    if st.changes.active() {
        let now = ctx.now;
        let keyspace = &st.keyspace;
        st.changes
            .db_replaced(db, with, |d, k| keyspace.exists(d, k, now));
    } else if with.is_none() {
        // Tracking clients of this shard's connections drop everything,
        // whether or not a key of theirs is in the table.
        st.changes.tracking.flushed();
    }
}

/// SWAPDB index1 index2: every shard swaps its two databases (the server
/// runs it on all shards at once, under a lock on each whole shard).
pub fn swapdb(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if ctx.shard.config.cluster_enabled {
        return reply.error("ERR SWAPDB is not allowed in cluster mode");
    }
    let n = ctx.shard.keyspace.databases() as i64;
    let Some(a) = crate::util::parse_i64_strict(args.get(1)) else {
        return reply.error("ERR invalid first DB index");
    };
    let Some(b) = crate::util::parse_i64_strict(args.get(2)) else {
        return reply.error("ERR invalid second DB index");
    };
    if a < 0 || a >= n || b < 0 || b >= n {
        return reply.error("ERR DB index is out of range");
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        report_replaced(ctx, a, Some(b));
        report_replaced(ctx, b, Some(a));
        ctx.shard.keyspace.swap(a, b);
        ctx.shard.expire_cursor.swap(a, b);
    }
    reply.ok();
}
