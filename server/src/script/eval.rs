//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, and how a script is made
//! atomic.
//!
//! A script runs on the connection's thread, in its shard's VM. Where it
//! may touch keys decides what it locks before it starts:
//!
//! - one shard in all: it runs inline, with no lock, when no transaction
//!   holds or waits for locks there (it never yields: nothing else can run
//!   on the shard meanwhile), else under a lock on the whole shard;
//! - several shards: a script may touch keys it did not declare, on any
//!   shard, so it runs as a "global" transaction: every shard locked whole
//!   (exclusive; shared for a read-only script), taken with the ordinary
//!   ordered acquisition (`txn::acquire`) before its first instruction.
//!   Whatever it reaches is already locked: it never asks for a lock while
//!   running, so it cannot deadlock, and no other client sees any of its
//!   writes before all of them. Its commands take the ordinary routes,
//!   marked in_tx as EXEC's are. The `TxGuard` releases everything however
//!   the script ends (an error, the connection going away).
//! - inside EXEC: the EXEC already holds every shard (multi.rs plans a
//!   script as touching every shard).
//!
//! Blocked clients whose keys the script pushed to are served after it, as
//! after EXEC.

use std::collections::BTreeMap;

use tessera_protocol::{Args, Reply};
use tessera_shard::command::scripting::declared_keys;
use tessera_shard::command::KeyPos;
use tessera_shard::util::eq_ic;

use super::call::describe;
use super::store::{self, Sha};
use super::vm::{self, Script};
use crate::conn::Conn;
use crate::txn::{LockSet, Mode, Plan};

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Which of the four commands.
#[derive(Clone, Copy)]
pub struct How {
    pub by_sha: bool,
    pub read_only: bool,
}

/// Clears what a running script publishes, however it ends (also when the
/// connection's future is dropped mid-script).
struct RunGuard {
    vm: std::rc::Rc<vm::ScriptVm>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.vm.running.conn.set(std::ptr::null_mut());
        self.vm.state.active.store(false, Ordering::Release);
        self.vm.state.wrote.store(false, Ordering::Release);
        self.vm.state.kill.store(false, Ordering::Release);
    }
}

/// Finds (or compiles) the script a call names. Err: the error reply.
fn script_for(
    vm: &vm::ScriptVm,
    body_or_sha: &[u8],
    by_sha: bool,
) -> Result<(Sha, Script), String> {
    if by_sha {
        let sha = store::parse_sha(body_or_sha).ok_or(NOSCRIPT)?;
        if let Some(s) = vm.cached(&sha) {
            return Ok((sha, s));
        }
        // First run of this script on this shard: compile the body that
        // EVAL or SCRIPT LOAD left in the shared store.
        let body = store::get(&sha).ok_or(NOSCRIPT)?;
        let (flags, at) = vm::shebang(&body)?;
        return vm.compile(sha, &body[at..], flags).map(|s| (sha, s));
    }
    let sha = store::sha1_hex(body_or_sha);
    if let Some(s) = vm.cached(&sha) {
        return Ok((sha, s));
    }
    let (flags, at) = vm::shebang(body_or_sha)?;
    let s = vm.compile(sha, &body_or_sha[at..], flags)?;
    store::insert(sha, body_or_sha);
    Ok((sha, s))
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
pub async fn eval(conn: &mut Conn, args: Args<'_>, how: How) {
    let mut keypos: Vec<KeyPos> = Vec::new();
    if let Err(msg) = declared_keys(&args, &mut keypos) {
        return Reply::new(&mut conn.wbuf, conn.proto).error(msg);
    }
    let vm = vm::vm();
    let (sha, script) = match script_for(&vm, args.get(1), how.by_sha) {
        Ok(s) => s,
        Err(msg) => return Reply::new(&mut conn.wbuf, conn.proto).error(&msg),
    };
    let nkeys = keypos.len();
    let keys: Vec<&[u8]> = (0..nkeys).map(|i| args.get(3 + i)).collect();
    let argv: Vec<&[u8]> = (3 + nkeys..args.len()).map(|i| args.get(i)).collect();
    let read_only = how.read_only || script.flags.no_writes;
    run(conn, &vm, &sha, &script, &keys, &argv, read_only).await;
}

/// Runs a compiled script under the locks it needs and writes its reply.
pub async fn run(
    conn: &mut Conn,
    vm: &std::rc::Rc<vm::ScriptVm>,
    sha: &Sha,
    script: &Script,
    keys: &[&[u8]],
    argv: &[&[u8]],
    read_only: bool,
) {
    let rt = conn.rt.clone();
    let was_in_tx = conn.co.in_tx;
    let mut guard = None;
    let inline = rt.nshards() == 1 && rt.locks_idle();
    if !was_in_tx && !inline {
        let mode = if read_only {
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let plan: Plan = (0..rt.nshards())
            .map(|s| {
                let mut set = LockSet::default();
                set.add_whole(mode);
                (s, set)
            })
            .collect();
        match crate::txn::acquire(&rt, plan, BTreeMap::new()).await {
            Ok(g) => guard = Some(g),
            Err(()) => {
                return Reply::new(&mut conn.wbuf, conn.proto).error("ERR shard unavailable")
            }
        }
    }
    if let Err(e) = vm.set_args(keys, argv) {
        let (msg, _) = describe(&e);
        return Reply::new(&mut conn.wbuf, conn.proto).error(&msg);
    }
    let run_guard = RunGuard { vm: vm.clone() };
    vm.running.resp.set(2);
    vm.running.read_only.set(read_only);
    vm.state
        .active
        .store(true, std::sync::atomic::Ordering::Release);
    conn.co.in_tx = true;
    vm.running.conn.set(conn as *mut Conn);
    let result = script.func.call_async::<mlua::Value>(()).await;
    vm.running.conn.set(std::ptr::null_mut());
    conn.co.in_tx = was_in_tx;
    let resp3_script = vm.running.resp.get() == 3;
    drop(run_guard);
    let proto = conn.proto;
    match result {
        Ok(v) => super::convert::lua_to_resp(&v, &mut conn.wbuf, proto, resp3_script),
        Err(e) => {
            if super::call::is_memory_error(&e) {
                // Lua 5.1 has no emergency collection: free what the
                // failed script held before anything else runs.
                let _ = vm.lua.gc_collect();
                let _ = vm.lua.gc_collect();
            }
            let (msg, line) = describe(&e);
            let sha = std::str::from_utf8(sha).unwrap_or_default();
            let full = match line {
                Some(l) => format!("{msg} script: {sha}, on @user_script:{l}."),
                None => format!("{msg} script: {sha}"),
            };
            Reply::new(&mut conn.wbuf, proto).error(&full);
        }
    }
    if !was_in_tx {
        // Clients blocked on keys it pushed to are served now (by the
        // releases, when it held locks).
        rt.after_writes();
    }
    drop(guard);
}

/// SCRIPT LOAD
pub fn load(conn: &mut Conn, args: Args) {
    let vm = vm::vm();
    let body = args.get(2);
    let sha = store::sha1_hex(body);
    if vm.cached(&sha).is_none() {
        let compiled =
            vm::shebang(body).and_then(|(flags, at)| vm.compile(sha, &body[at..], flags));
        if let Err(msg) = compiled {
            return Reply::new(&mut conn.wbuf, conn.proto).error(&msg);
        }
    }
    store::insert(sha, body);
    Reply::new(&mut conn.wbuf, conn.proto).bulk(&sha);
}

/// SCRIPT EXISTS
pub fn exists(conn: &mut Conn, args: Args) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.array(args.len() - 2);
    for i in 2..args.len() {
        let found = store::parse_sha(args.get(i)).is_some_and(|s| store::exists(&s));
        r.int(found as i64);
    }
}

/// SCRIPT FLUSH [ASYNC|SYNC]
pub fn flush(conn: &mut Conn, args: Args) {
    let ok = match args.len() {
        2 => true,
        3 => eq_ic(args.get(2), b"sync") || eq_ic(args.get(2), b"async"),
        _ => false,
    };
    if !ok {
        return Reply::new(&mut conn.wbuf, conn.proto)
            .error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    store::flush();
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// SCRIPT KILL
pub fn kill(conn: &mut Conn) {
    match super::kill::kill_running() {
        Ok(()) => Reply::new(&mut conn.wbuf, conn.proto).ok(),
        Err(msg) => Reply::new(&mut conn.wbuf, conn.proto).error(msg),
    }
}

/// SCRIPT HELP
pub fn help(conn: &mut Conn) {
    const LINES: &[&str] = &[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.array(LINES.len());
    for l in LINES {
        r.simple(l);
    }
}
