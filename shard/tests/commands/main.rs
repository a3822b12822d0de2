//! Command handlers run through the command table, the way the server runs
//! them, with exact RESP replies asserted.

#![allow(clippy::new_without_default, clippy::type_complexity)]

#[path = "../common/mod.rs"]
mod common;
mod info;
mod keys;
mod strings;

use tessera_protocol::args::OwnedArgs;
use tessera_protocol::{Proto, Reply};
use tessera_shard::command::{self, arity_error, Ctx, Route, ShardConfig, ShardState};

/// A shard owning every slot, and a controlled clock.
pub struct H {
    pub shard: ShardState,
    pub db: usize,
    pub now: i64,
    pub proto: Proto,
}

/// A fixed "now" (ms) far from 0, so relative expiries are realistic.
pub const T0: i64 = 1_700_000_000_000;

impl H {
    pub fn new() -> H {
        H::with_config(ShardConfig::default())
    }

    pub fn with_config(config: ShardConfig) -> H {
        H {
            shard: ShardState::new(0, config, (0..16384).collect()),
            db: 0,
            now: T0,
            proto: Proto::Resp2,
        }
    }

    /// Runs one command from its parts; returns the raw RESP reply.
    pub fn run<S: AsRef<[u8]>>(&mut self, parts: &[S]) -> String {
        let owned = OwnedArgs::from_parts(parts);
        let args = owned.args();
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, self.proto);
        let name = args.get(0);
        let Some(mut spec) = command::lookup(name) else {
            panic!("unknown command {}", String::from_utf8_lossy(name));
        };
        if !spec.arity_ok(args.len()) {
            reply.error(&arity_error(spec.name));
            return String::from_utf8(out).unwrap();
        }
        if !spec.subcommands.is_empty() {
            match command::lookup_sub(spec, args.get(1)) {
                Some(sub) => spec = sub,
                None => {
                    reply.error_bytes(&command::unknown_subcommand_error(spec.name, args.get(1)));
                    return String::from_utf8(out).unwrap();
                }
            }
            if !spec.arity_ok(args.len()) {
                reply.error(&arity_error(spec.name));
                return String::from_utf8(out).unwrap();
            }
        }
        let handler = match spec.route {
            Route::Keyed(f, _) | Route::Local(f) | Route::Fanout(f, _) => f,
            Route::Conn => panic!("{} is run by the connection", spec.name),
        };
        let mut ctx = Ctx::new(&mut self.shard, self.db, self.now);
        handler(&mut ctx, args, &mut reply);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Runs a command written inline (space-separated, no quoting).
    pub fn cmd(&mut self, line: &str) -> String {
        let parts: Vec<&str> = line.split(' ').collect();
        self.run(&parts)
    }
}

/// RESP helpers for expected replies.
pub fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}
pub fn int(n: i64) -> String {
    format!(":{n}\r\n")
}
pub fn err(s: &str) -> String {
    format!("-{s}\r\n")
}
pub const OK: &str = "+OK\r\n";
pub const NULL: &str = "$-1\r\n";
pub const EMPTY: &str = "$0\r\n\r\n";
pub const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
pub const SYNTAX: &str = "-ERR syntax error\r\n";

#[test]
fn arity_errors_use_redis_names() {
    let mut h = H::new();
    assert_eq!(
        h.cmd("SETNX k"),
        err("ERR wrong number of arguments for 'setnx' command")
    );
    assert_eq!(
        h.cmd("object encoding"),
        err("ERR wrong number of arguments for 'object|encoding' command")
    );
    assert_eq!(
        h.cmd("OBJECT foo"),
        err("ERR unknown subcommand 'foo'. Try OBJECT HELP.")
    );
    assert_eq!(
        h.cmd("GETRANGE k 0"),
        err("ERR wrong number of arguments for 'getrange' command")
    );
}

/// COMMAND INFO essentials, as Redis 7.0 reports them.
#[test]
fn table_matches_redis_command_info() {
    use command::flags::*;
    let cases: &[(&str, i32, u32, (i32, i32, i32))] = &[
        ("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1)),
        ("setex", 4, WRITE | DENYOOM, (1, 1, 1)),
        ("getdel", 2, WRITE | FAST, (1, 1, 1)),
        ("getex", -2, WRITE | FAST, (1, 1, 1)),
        ("msetnx", -3, WRITE | DENYOOM, (1, -1, 2)),
        ("getrange", 4, READONLY, (1, 1, 1)),
        ("lcs", -3, READONLY, (1, 2, 1)),
        ("touch", -2, READONLY | FAST, (1, -1, 1)),
        ("rename", 3, WRITE, (1, 2, 1)),
        ("copy", -3, WRITE | DENYOOM, (1, 2, 1)),
        ("move", 3, WRITE | FAST, (1, 1, 1)),
        ("expire", -3, WRITE | FAST, (1, 1, 1)),
        ("ttl", 2, READONLY | FAST, (1, 1, 1)),
        ("object", -2, 0, (0, 0, 0)),
    ];
    for &(name, arity, flags, keys) in cases {
        let c = command::lookup(name.as_bytes()).unwrap();
        assert_eq!(c.arity, arity, "{name}");
        assert_eq!(c.flags, flags, "{name}");
        assert_eq!(c.legacy_keys(), keys, "{name}");
    }
    let obj = command::lookup(b"object").unwrap();
    let enc = command::lookup_sub(obj, b"ENCODING").unwrap();
    assert_eq!((enc.arity, enc.legacy_keys()), (3, (2, 2, 1)));
    // COPY writes only its destination; RENAME both keys.
    let mut pos = Vec::new();
    let a = OwnedArgs::from_parts(["COPY", "a", "b", "DB", "1"]);
    command::lookup(b"copy")
        .unwrap()
        .key_positions(&a.args(), &mut pos)
        .unwrap();
    assert_eq!(
        pos.iter().map(|k| (k.index, k.write)).collect::<Vec<_>>(),
        vec![(1, false), (2, true)]
    );
    let a = OwnedArgs::from_parts(["RENAME", "a", "b"]);
    command::lookup(b"rename")
        .unwrap()
        .key_positions(&a.args(), &mut pos)
        .unwrap();
    assert!(pos.iter().all(|k| k.write) && pos.len() == 2);
    let a = OwnedArgs::from_parts(["LCS", "a", "b", "LEN"]);
    command::lookup(b"lcs")
        .unwrap()
        .key_positions(&a.args(), &mut pos)
        .unwrap();
    assert!(pos.iter().all(|k| !k.write) && pos.len() == 2);
}
