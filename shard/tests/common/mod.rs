//! What the shard's test binaries share: a shard owning every slot, running
//! a keyed command through the command table, and checking table entries
//! against what Redis 7.0.15's `COMMAND INFO` reports.

#![allow(dead_code)] // each test binary uses its own part of this

use tessera_protocol::args::OwnedArgs;
use tessera_protocol::reply::Proto;
use tessera_protocol::Reply;
use tessera_shard::command::{self, acl, flags, CommandSpec, Ctx, Route, ShardConfig, ShardState};

/// A shard that owns all 16384 slots, with the default configuration.
pub fn shard() -> ShardState {
    ShardState::new(0, ShardConfig::default(), (0..16384).collect())
}

/// Runs one keyed command (db 0, a fixed clock) and returns its raw reply.
pub fn run_proto(st: &mut ShardState, proto: Proto, parts: &[&str]) -> String {
    let a = OwnedArgs::from_parts(parts.iter().map(|p| p.as_bytes()));
    let spec = command::lookup(parts[0].as_bytes()).expect("command");
    assert!(spec.arity_ok(parts.len()), "arity of {parts:?}");
    let Route::Keyed(f, _) = spec.route else {
        panic!("not a keyed command")
    };
    let mut buf = Vec::new();
    let mut reply = Reply::new(&mut buf, proto);
    let mut ctx = Ctx::new(st, 0, 1_000_000);
    f(&mut ctx, a.args(), &mut reply);
    String::from_utf8_lossy(&buf).into_owned()
}

/// `run_proto` in RESP2.
pub fn run(st: &mut ShardState, parts: &[&str]) -> String {
    run_proto(st, Proto::Resp2, parts)
}

/// One `COMMAND INFO` row as Redis 7.0.15 reports it: (name, arity, flags,
/// legacy key range, ACL categories). Redis's computed `movablekeys` flag
/// is left out: it is not a table flag here.
pub type InfoRow = (
    &'static str,
    i32,
    &'static str,
    (i32, i32, i32),
    &'static str,
);

fn names(bits: u32, table: &[(u32, &'static str)]) -> Vec<&'static str> {
    let mut v: Vec<&str> = table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    v.sort();
    v
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split_whitespace().collect();
    v.sort();
    v
}

/// A command or a `parent|sub` subcommand.
fn find(name: &str) -> &'static CommandSpec {
    match name.split_once('|') {
        None => command::lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing")),
        Some((parent, sub)) => {
            let p = command::lookup(parent.as_bytes()).unwrap();
            command::lookup_sub(p, sub.as_bytes()).unwrap_or_else(|| panic!("{name} missing"))
        }
    }
}

/// Asserts that every row's command exists with Redis's arity, flags, key
/// range and ACL categories.
pub fn check_command_info(rows: &[InfoRow]) {
    for &(name, arity, fl, keys, cats) in rows {
        let c = find(name);
        assert_eq!(c.name, name);
        assert_eq!(c.arity, arity, "{name} arity");
        assert_eq!(names(c.flags, flags::NAMES), sorted(fl), "{name} flags");
        assert_eq!(c.legacy_keys(), keys, "{name} keys");
        assert_eq!(names(c.acl, acl::NAMES), sorted(cats), "{name} acl");
    }
}
