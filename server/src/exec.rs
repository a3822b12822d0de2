//! Running one command on the shard that owns its keys: the same function
//! serves commands executed inline by a connection and commands that
//! arrived from another shard in a forwarded batch.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tessera_protocol::{Args, Proto, Reply};
use tessera_shard::changes::write_changed;
use tessera_shard::command::{flags, table, CommandSpec, Ctx, Route, ShardState};
use tessera_shard::notify::{self, Before, KeyState};
use tessera_shard::util::{eq_ic, parse_i64_strict};

/// Redis's reply to writes after a failed background save.
const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// Runs a command's handler and appends its reply to `out`. `count`
/// records it in INFO commandstats (false for the parts of a split command).
#[inline]
// The request's whole context, passed as plain arguments on the hot path
// (three callers; a struct would only be built to be taken apart here).
#[allow(clippy::too_many_arguments)]
pub fn execute(
    state: &mut ShardState,
    id: u16,
    args: Args,
    db: usize,
    proto: Proto,
    now: i64,
    count: bool,
    out: &mut Vec<u8>,
) {
    run(state, id, args, db, proto, now, count, false, out);
}

/// `execute` for a blocking command that may block: true when it found
/// nothing to serve it and replied nothing (the caller registers it).
#[allow(clippy::too_many_arguments)]
pub fn execute_may_block(
    state: &mut ShardState,
    id: u16,
    args: Args,
    db: usize,
    proto: Proto,
    now: i64,
    count: bool,
    out: &mut Vec<u8>,
) -> bool {
    run(state, id, args, db, proto, now, count, true, out)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run(
    state: &mut ShardState,
    id: u16,
    args: Args,
    db: usize,
    proto: Proto,
    now: i64,
    count: bool,
    may_block: bool,
    out: &mut Vec<u8>,
) -> bool {
    let spec: &'static CommandSpec = table::by_id(id);
    let handler = match spec.route {
        Route::Keyed(h, _) | Route::Local(h) | Route::Fanout(h, _) => h,
        Route::Conn => {
            // Never forwarded; reaching here is a routing bug, reported, not a crash.
            Reply::new(out, proto).error("ERR internal error: connection command on a shard");
            return false;
        }
    };
    let start = out.len();
    if state.misconf && spec.has(flags::WRITE) {
        Reply::new(out, proto).error(MISCONF);
        return false;
    }
    // maxmemory: a command that may grow memory first makes room (one
    // branch while no limit is set).
    if spec.has(flags::DENYOOM) && !state.make_room(now) {
        Reply::new(out, proto).error(tessera_shard::evict::OOM);
        return false;
    }
    // Keyspace notifications need to know which keys existed before.
    let notify = state.changes.notify;
    let before = if notify != 0 {
        keys_before(state, spec, &args, db, now)
    } else {
        Vec::new()
    };
    let t = crate::cycles::ticks();
    let mut blocked = false;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut ctx = Ctx::new(state, db, now);
        ctx.may_block = may_block;
        let mut reply = Reply::new(out, proto);
        handler(&mut ctx, args, &mut reply);
        blocked = ctx.blocked;
    }));
    if r.is_err() {
        // A handler bug must not take the server down: the client gets an
        // error and the shard keeps serving everyone else.
        log::warn!("command '{}' panicked; replied with an error", spec.name);
        out.truncate(start);
        Reply::new(out, proto).error("ERR internal error");
    }
    // Keys the command found expired: DEL in the AOF, before its own record.
    if state.aof.on {
        tessera_shard::aof::log_expired(state);
    }
    // Redis's dirty counter: writes that changed something; the AOF logs
    // the same writes.
    if spec.has(flags::WRITE) && !blocked && write_changed(spec.name, &out[start..]) {
        state.dirty += 1;
        if state.aof.on {
            state.aof.write(spec.name, &args, db, now, &out[start..]);
        }
    }
    // The change hook: a write reports the keys it changed (one branch
    // while nothing listens).
    if state.changes.active() && spec.has(flags::WRITE) && !blocked {
        report_writes(state, spec, &args, db, &out[start..]);
    }
    if notify != 0 && !blocked {
        notify_events(state, spec, &args, db, now, &before, &out[start..]);
    }
    // CLIENT TRACKING: a tracking client's read may now be cached.
    if state.changes.tracking.reader.is_some() && spec.has(flags::READONLY) {
        track_reads(state, spec, &args, &out[start..]);
    }
    let ns = crate::cycles::ns_between(t, crate::cycles::ticks());
    if count {
        let failed = out.get(start) == Some(&b'-');
        let st = state.stats.cmd(id);
        st.calls += 1;
        st.nsec += ns;
        if failed {
            st.failed_calls += 1;
            state.note_error(&out[start..]);
        }
        state.stats.total_commands += 1;
        state.latency.record_command(id, ns);
    }
    // SLOWLOG and the latency monitor: one comparison unless it was slow.
    if ns >= state.slow_ns && !blocked {
        note_slow(state, spec, &args, ns);
    }
    blocked
}

/// Logs a slow command in the slow log and the latency monitor, as Redis
/// does after each call (not for commands flagged skip_slowlog, EXEC...).
/// The entry's client is filled in by the caller, who knows it.
#[cold]
pub fn note_slow(state: &mut ShardState, spec: &CommandSpec, args: &Args, ns: u64) {
    if spec.has(flags::SKIP_SLOWLOG) {
        return;
    }
    let now_ms = tessera_shard::util::now_ms();
    let event = if spec.has(flags::FAST) {
        "fast-command"
    } else {
        "command"
    };
    state.latency.add_if_needed(event, ns / 1_000_000, now_ms);
    let micros = ns / 1000;
    let slower_than = state.config.slowlog_log_slower_than;
    if slower_than >= 0 && micros >= slower_than as u64 {
        state.slowlog.push(args.iter(), micros, now_ms);
    }
}

/// Tells the change hook which keys a write command changed: its written
/// keys in `db`, unless its reply says it changed nothing, plus the key
/// MOVE or COPY ... DB wrote in another database.
#[cold]
fn report_writes(state: &mut ShardState, spec: &CommandSpec, args: &Args, db: usize, reply: &[u8]) {
    if !write_changed(spec.name, reply) {
        return;
    }
    let mut keypos = Vec::new();
    if spec.key_positions(args, &mut keypos).is_err() {
        return;
    }
    for k in keypos.iter().filter(|k| k.write) {
        state.changes.key(db, args.get(k.index), spec.name);
    }
    let other_db = |s: &[u8]| parse_i64_strict(s).and_then(|n| usize::try_from(n).ok());
    match spec.name {
        "move" => {
            if let Some(to) = other_db(args.get(2)) {
                state.changes.key(to, args.get(1), spec.name);
            }
        }
        "copy" => {
            let mut i = 3;
            while i + 1 < args.len() {
                if eq_ic(args.get(i), b"DB") {
                    if let Some(to) = other_db(args.get(i + 1)) {
                        state.changes.key(to, args.get(2), spec.name);
                    }
                }
                i += 1;
            }
        }
        _ => {}
    }
}

/// For keyspace notifications: whether each of a command's keys existed
/// (and had a TTL) before it ran.
#[cold]
fn keys_before(
    state: &mut ShardState,
    spec: &CommandSpec,
    args: &Args,
    db: usize,
    now: i64,
) -> Vec<Before> {
    let mut keypos = Vec::new();
    if spec.key_positions(args, &mut keypos).is_err() {
        return Vec::new();
    }
    let d = state.keyspace.get(db);
    keypos
        .iter()
        .map(|k| {
            let e = d.and_then(|d| d.peek(args.get(k.index), now));
            Before {
                existed: e.is_some(),
                had_ttl: e.is_some_and(|e| e.expire_at().is_some()),
            }
        })
        .collect()
}

/// Makes a command's keyspace notifications (after the `expired` events of
/// keys it found expired), for the server to publish.
#[cold]
fn notify_events(
    state: &mut ShardState,
    spec: &CommandSpec,
    args: &Args,
    db: usize,
    now: i64,
    before: &[Before],
    reply: &[u8],
) {
    let flags = state.changes.notify;
    for (d, key) in state.keyspace.take_expired() {
        notify::push_event(
            &mut state.changes.notices,
            flags,
            d,
            &key,
            "expired",
            notify::class::EXPIRED,
        );
    }
    let mut keypos = Vec::new();
    if spec.key_positions(args, &mut keypos).is_err() || keypos.len() != before.len() {
        return;
    }
    let keys: Vec<KeyState> = keypos
        .iter()
        .zip(before)
        .map(|(k, b)| KeyState {
            key: args.get(k.index),
            write: k.write,
            before: *b,
            exists: state.keyspace.exists(db, args.get(k.index), now),
        })
        .collect();
    let notices = &mut state.changes.notices;
    notify::command_events(notices, flags, spec, args, db, &keys, reply);
    // MOVE and COPY ... DB name a key of another database.
    let changed = reply == b":1\r\n";
    let to_db = |s: &[u8]| parse_i64_strict(s).and_then(|n| usize::try_from(n).ok());
    match spec.name {
        "move" if changed => {
            if let Some(to) = to_db(args.get(2)) {
                notify::cross_db_events(
                    notices,
                    flags,
                    "move",
                    db,
                    to,
                    args.get(1),
                    args.get(1),
                    true,
                );
            }
        }
        "copy" if changed => {
            let mut to = db;
            let mut replace = false;
            for i in 3..args.len() {
                if eq_ic(args.get(i), b"DB") && i + 1 < args.len() {
                    to = to_db(args.get(i + 1)).unwrap_or(db);
                }
                replace |= eq_ic(args.get(i), b"REPLACE");
            }
            if to == db {
                // Its `new` was reported with the command's own keys.
                notify::push_event(
                    notices,
                    flags,
                    db,
                    args.get(2),
                    "copy_to",
                    notify::class::GENERIC,
                );
            } else {
                let (src, dst) = (args.get(1), args.get(2));
                notify::cross_db_events(notices, flags, "copy", db, to, src, dst, !replace);
            }
        }
        _ => {}
    }
}

/// Records the keys a tracking client just read (not on an error).
#[cold]
fn track_reads(state: &mut ShardState, spec: &CommandSpec, args: &Args, reply: &[u8]) {
    if reply.first() == Some(&b'-') {
        return;
    }
    let mut keypos = Vec::new();
    if spec.key_positions(args, &mut keypos).is_ok() {
        for k in &keypos {
            state.changes.tracking.read(args.get(k.index));
        }
    }
}
