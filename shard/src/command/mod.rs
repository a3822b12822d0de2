//! The command table: one entry per command (name, arity, flags, key
//! positions, ACL categories, routing, handler). Dispatch, `COMMAND`, key
//! extraction for slot routing and ACL categories all read this one table.
//!
//! Handlers live by family, one file each (strings, keys, server...).

pub mod bitmaps;
pub mod blocking;
pub mod cluster;
pub mod ctx;
pub mod dump;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod introspect;
pub mod keys;
pub mod lists;
pub mod persist;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod streams_claim;
pub mod streams_group;
pub mod streams_info;
pub mod streams_read;
pub mod strings;
pub mod table;
pub mod txn;
mod typed;
pub mod zsets;
pub mod zsets_pop;
pub mod zsets_range;
pub mod zsets_store;

pub use ctx::{Ctx, ShardConfig, ShardState};
use tessera_protocol::{Args, Reply};

/// A handler: runs on the shard that owns the command's keys.
pub type ExecFn = fn(&mut Ctx, Args, &mut Reply);

/// Command flags, with Redis's names (shown by COMMAND INFO).
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const NO_AUTH: u32 = 1 << 8;
    pub const MAY_REPLICATE: u32 = 1 << 9;
    pub const SENTINEL: u32 = 1 << 10;
    pub const NO_MULTI: u32 = 1 << 11;
    pub const ALLOW_BUSY: u32 = 1 << 12;
    pub const BLOCKING: u32 = 1 << 13;
    pub const SKIP_SLOWLOG: u32 = 1 << 14;
    pub const PUBSUB: u32 = 1 << 15;
    pub const NO_ASYNC_LOADING: u32 = 1 << 16;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (BLOCKING, "blocking"),
    ];
}

/// ACL categories, with Redis's names.
pub mod acl {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const HASH: u32 = 1 << 5;
    pub const SET: u32 = 1 << 6;
    pub const SORTEDSET: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    pub const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "keyspace"),
        (READ, "read"),
        (WRITE, "write"),
        (STRING, "string"),
        (LIST, "list"),
        (HASH, "hash"),
        (SET, "set"),
        (SORTEDSET, "sortedset"),
        (BITMAP, "bitmap"),
        (HYPERLOGLOG, "hyperloglog"),
        (GEO, "geo"),
        (STREAM, "stream"),
        (PUBSUB, "pubsub"),
        (ADMIN, "admin"),
        (FAST, "fast"),
        (SLOW, "slow"),
        (BLOCKING, "blocking"),
        (DANGEROUS, "dangerous"),
        (CONNECTION, "connection"),
        (TRANSACTION, "transaction"),
        (SCRIPTING, "scripting"),
    ];
}

/// Where a command's keys are.
#[derive(Clone, Copy)]
pub enum KeySpec {
    /// No keys.
    None,
    /// Redis's legacy (first, last, step): last < 0 counts from the end.
    /// `writes` tells which of those keys the command may modify, for the
    /// cross-shard path (keys only read are never written back).
    Range {
        first: i32,
        last: i32,
        step: i32,
        writes: Writes,
    },
    /// Positions computed from the arguments (numkeys, STORE...). The
    /// function also checks the arguments enough to find keys safely.
    Custom {
        legacy: (i32, i32, i32),
        find: fn(&Args, &mut Vec<KeyPos>) -> Result<(), &'static str>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    None,
    All,
    First,
}

/// One key of a request: its argument index and whether it may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPos {
    pub index: usize,
    pub write: bool,
}

/// How a command whose keys live on several shards is split.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Split {
    /// Keys are gathered to the connection's shard, the command runs there,
    /// and written keys go back to their owners (RENAME, COPY, MSETNX...).
    Gather,
    /// Each shard runs the command on its keys; the arrays are interleaved
    /// back into key order (MGET).
    ConcatByKey,
    /// Each shard runs the command on its keys; integer replies are summed
    /// (DEL, UNLINK, EXISTS, TOUCH).
    SumInt,
    /// Each shard runs the command on its key/value pairs; +OK (MSET).
    AllOk,
}

/// How the server runs a command.
#[derive(Clone, Copy)]
pub enum Route {
    /// On the shard owning the keys' slots (all keys on one shard: the whole
    /// request goes there; else split as `Split` says).
    Keyed(ExecFn, Split),
    /// Keyless, on the connection's own shard (PING, ECHO, TIME...).
    Local(ExecFn),
    /// On every shard, replies merged (DBSIZE, KEYS, FLUSHDB...).
    Fanout(ExecFn, Merge),
    /// By the connection itself (HELLO, AUTH, SELECT, CLIENT, INFO, SCAN...).
    Conn,
}

/// How the replies of a fan-out are combined.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Merge {
    SumInt,
    ConcatArray,
    AllOk,
}

/// Documentation fields for COMMAND DOCS.
#[derive(Clone, Copy)]
pub struct Docs {
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
}

pub struct CommandSpec {
    /// Lowercase name, as COMMAND reports it ("client|id" for subcommands).
    pub name: &'static str,
    /// Redis arity: positive = exact argc, negative = at least -arity.
    pub arity: i32,
    pub flags: u32,
    pub acl: u32,
    pub group: &'static str,
    pub keys: KeySpec,
    pub route: Route,
    pub docs: Docs,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The argument indexes of this request's keys. Returns an error text
    /// when the arguments are too malformed to find them (the handler then
    /// reports Redis's exact error on whatever shard runs it).
    pub fn key_positions(&self, args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
        out.clear();
        match self.keys {
            KeySpec::None => Ok(()),
            KeySpec::Range {
                first,
                last,
                step,
                writes,
            } => {
                let argc = args.len() as i32;
                if first <= 0 || first >= argc {
                    return Ok(());
                }
                let last = if last < 0 {
                    argc + last
                } else {
                    last.min(argc - 1)
                };
                let mut i = first;
                while i <= last {
                    let write = match writes {
                        Writes::None => false,
                        Writes::All => true,
                        Writes::First => i == first,
                    };
                    out.push(KeyPos {
                        index: i as usize,
                        write,
                    });
                    i += step.max(1);
                }
                Ok(())
            }
            KeySpec::Custom { find, .. } => find(args, out),
        }
    }

    /// (first, last, step) as COMMAND INFO shows it.
    pub fn legacy_keys(&self) -> (i32, i32, i32) {
        match self.keys {
            KeySpec::None => (0, 0, 0),
            KeySpec::Range {
                first, last, step, ..
            } => (first, last, step),
            KeySpec::Custom { legacy, .. } => legacy,
        }
    }
}

/// Finds a command by name, ASCII case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    table::lookup(name)
}

/// Finds a subcommand of a container command (CLIENT ID, CONFIG GET...).
pub fn lookup_sub(parent: &'static CommandSpec, sub: &[u8]) -> Option<&'static CommandSpec> {
    let plen = parent.name.len() + 1;
    parent
        .subcommands
        .iter()
        .find(|c| c.name.len() > plen && c.name.as_bytes()[plen..].eq_ignore_ascii_case(sub))
}

/// Redis's reply for an unknown command, byte for byte: the name and the
/// arguments are echoed raw (Redis formats them with `%.*s`, so each stops
/// at a NUL byte), the name cut at 128 bytes, and the quoted arguments
/// added while they total under 128 bytes, the last one cut to fit.
pub fn unknown_command_error(args: &Args) -> Vec<u8> {
    let mut s = Vec::with_capacity(96);
    s.extend_from_slice(b"ERR unknown command '");
    s.extend_from_slice(c_str(args.get(0), 128));
    s.extend_from_slice(b"', with args beginning with: ");
    let mut shown = 0;
    for a in args.iter().skip(1) {
        if shown >= 128 {
            break;
        }
        let a = c_str(a, 128 - shown);
        s.push(b'\'');
        s.extend_from_slice(a);
        s.extend_from_slice(b"' ");
        shown += a.len() + 3;
    }
    s
}

/// Redis's reply for a wrong number of arguments.
pub fn arity_error(name: &str) -> String {
    format!("ERR wrong number of arguments for '{}' command", name)
}

/// Redis's reply for an unknown subcommand, with the subcommand's raw
/// bytes (up to a NUL byte, at most 128).
pub fn unknown_subcommand_error(parent: &str, sub: &[u8]) -> Vec<u8> {
    subcommand_error("ERR unknown subcommand '", parent, sub)
}

/// Redis's reply for a container command's unknown subcommand or wrong
/// argument count (DEBUG...), with the subcommand's raw bytes.
pub fn subcommand_syntax_error(parent: &str, sub: &[u8]) -> Vec<u8> {
    subcommand_error(
        "ERR unknown subcommand or wrong number of arguments for '",
        parent,
        sub,
    )
}

/// `<head><sub>'. Try <PARENT> HELP.`, the shape of both errors above.
fn subcommand_error(head: &str, parent: &str, sub: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(head.len() + 64);
    s.extend_from_slice(head.as_bytes());
    s.extend_from_slice(c_str(sub, 128));
    s.extend_from_slice(b"'. Try ");
    s.extend_from_slice(parent.to_ascii_uppercase().as_bytes());
    s.extend_from_slice(b" HELP.");
    s
}

/// What C's `%.*s` prints of `b` with precision `max`: up to the first NUL
/// byte, at most `max` bytes.
fn c_str(b: &[u8], max: usize) -> &[u8] {
    let end = memchr::memchr(0, b).unwrap_or(b.len()).min(max);
    &b[..end]
}

/// The command table's error texts shared by handlers.
pub mod errors {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '{}' command";
    pub const STRING_TOO_LONG: &str =
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
}
