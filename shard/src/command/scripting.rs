//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: the connection runs them
//! (the server's `script` module holds the Lua VM of each shard, the
//! script cache and the cross-shard locking: docs/scripting.md); the table
//! gives them Redis 7.0's arity, flags, key positions and ACL categories.

use tessera_protocol::Args;

use super::acl::{SCRIPTING as A_SCRIPT, SLOW as A_SLOW};
use super::flags::*;
use super::table::{CONTAINER, NO_KEYS};
use super::{CommandSpec, KeyPos, KeySpec, Route};
use crate::cmd;
use crate::util::parse_i64_strict;

/// `script numkeys key... arg...`: the keys a script declares.
const SCRIPT_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: declared_keys,
};

/// The keys after EVAL's numkeys (argument 2). A script may write any of
/// them; zero keys is allowed.
pub fn declared_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    let n = match parse_i64_strict(args.get(2)) {
        Some(n) if n >= 0 => n as u64,
        Some(_) => return Err("ERR Number of keys can't be negative"),
        None => return Err("ERR value is not an integer or out of range"),
    };
    if n > (args.len() as u64).saturating_sub(3) {
        return Err("ERR Number of keys can't be greater than number of args");
    }
    for i in 0..n as usize {
        out.push(KeyPos {
            index: 3 + i,
            write: true,
        });
    }
    Ok(())
}

const EVAL_FLAGS: u32 = NOSCRIPT | MAY_REPLICATE | STALE;
const EVAL_RO_FLAGS: u32 = NOSCRIPT | READONLY | STALE;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("eval", -3, EVAL_FLAGS, A_SLOW | A_SCRIPT, "scripting", SCRIPT_KEYS, Route::Conn,
        "Executes a server-side Lua script.", "2.6.0", "Depends on the script that is executed."),
    cmd!("evalsha", -3, EVAL_FLAGS, A_SLOW | A_SCRIPT, "scripting", SCRIPT_KEYS, Route::Conn,
        "Executes a server-side Lua script by SHA1 digest.", "2.6.0", "Depends on the script that is executed."),
    cmd!("eval_ro", -3, EVAL_RO_FLAGS, A_SLOW | A_SCRIPT, "scripting", SCRIPT_KEYS, Route::Conn,
        "Executes a read-only server-side Lua script.", "7.0.0", "Depends on the script that is executed."),
    cmd!("evalsha_ro", -3, EVAL_RO_FLAGS, A_SLOW | A_SCRIPT, "scripting", SCRIPT_KEYS, Route::Conn,
        "Executes a read-only server-side Lua script by SHA1 digest.", "7.0.0",
        "Depends on the script that is executed."),
    cmd!("script", -2, 0, A_SLOW, "scripting", NO_KEYS, CONTAINER,
        "A container for Lua scripts management commands.", "2.6.0", "Depends on subcommand.", SCRIPT_SUBS),
];

#[rustfmt::skip]
static SCRIPT_SUBS: &[CommandSpec] = &[
    cmd!("script|load", 3, NOSCRIPT | MAY_REPLICATE | STALE, A_SLOW | A_SCRIPT, "scripting", NO_KEYS, Route::Conn,
        "Loads a server-side Lua script to the script cache.", "2.6.0",
        "O(N) with N being the length in bytes of the script body."),
    cmd!("script|exists", -3, NOSCRIPT | STALE, A_SLOW | A_SCRIPT, "scripting", NO_KEYS, Route::Conn,
        "Determines whether server-side Lua scripts exist in the script cache.", "2.6.0",
        "O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation)."),
    cmd!("script|flush", -2, NOSCRIPT | MAY_REPLICATE, A_SLOW | A_SCRIPT, "scripting", NO_KEYS, Route::Conn,
        "Removes all server-side Lua scripts from the script cache.", "2.6.0",
        "O(N) with N being the number of scripts in cache"),
    cmd!("script|kill", 2, NOSCRIPT | ALLOW_BUSY, A_SLOW | A_SCRIPT, "scripting", NO_KEYS, Route::Conn,
        "Terminates a server-side Lua script during execution.", "2.6.0", "O(1)"),
    cmd!("script|help", 2, LOADING | STALE, A_SLOW | A_SCRIPT, "scripting", NO_KEYS, Route::Conn,
        "Returns helpful text about the different subcommands.", "5.0.0", "O(1)"),
];
