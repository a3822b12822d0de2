//! Consumer-group commands: XGROUP (CREATE, SETID, DESTROY,
//! CREATECONSUMER, DELCONSUMER, HELP), XACK, XPENDING and XSETID.

use tessera_protocol::{Args, Reply};

use super::acl::{SLOW as A_SLOW, STREAM as A_STREAM};
use super::errors::*;
use super::flags::{DENYOOM, LOADING, STALE, WRITE};
use super::streams::{
    new_stream_entry, reply_id, stream_mut, stream_read, strict_id, ERR_INVALID_ID, SUB_KEY_W,
    SUB_W_SLOW,
};
use super::typed::Found;
use super::{subcommand_syntax_error, CommandSpec, Ctx, Route, Split};
use crate::cmd;
use crate::types::stream::{parse_id, Group, Stream, StreamId, INVALID_ENTRIES_READ};
use crate::util::{eq_ic, parse_i64_strict};

pub static SUBCOMMANDS: &[CommandSpec] = &[
    cmd!(
        "xgroup|create",
        -5,
        WRITE | DENYOOM,
        SUB_W_SLOW,
        "stream",
        SUB_KEY_W,
        Route::Keyed(xgroup_create, Split::Gather),
        "Creates a consumer group.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "xgroup|setid",
        -5,
        WRITE,
        SUB_W_SLOW,
        "stream",
        SUB_KEY_W,
        Route::Keyed(xgroup_setid, Split::Gather),
        "Sets the last-delivered ID of a consumer group.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "xgroup|destroy",
        4,
        WRITE,
        SUB_W_SLOW,
        "stream",
        SUB_KEY_W,
        Route::Keyed(xgroup_destroy, Split::Gather),
        "Destroys a consumer group.",
        "5.0.0",
        "O(N) where N is the number of entries in the group's pending entries list (PEL)."
    ),
    cmd!(
        "xgroup|createconsumer",
        5,
        WRITE | DENYOOM,
        SUB_W_SLOW,
        "stream",
        SUB_KEY_W,
        Route::Keyed(xgroup_createconsumer, Split::Gather),
        "Creates a consumer in a consumer group.",
        "6.2.0",
        "O(1)"
    ),
    cmd!(
        "xgroup|delconsumer",
        5,
        WRITE,
        SUB_W_SLOW,
        "stream",
        SUB_KEY_W,
        Route::Keyed(xgroup_delconsumer, Split::Gather),
        "Deletes a consumer from a consumer group.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "xgroup|help",
        2,
        LOADING | STALE,
        A_STREAM | A_SLOW,
        "stream",
        super::table::NO_KEYS,
        Route::Local(xgroup_help),
        "Returns helpful text about the different subcommands.",
        "5.0.0",
        "O(1)"
    ),
];

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

pub fn xgroup_help(_ctx: &mut Ctx, _args: Args, reply: &mut Reply) {
    reply.array(XGROUP_HELP.len());
    for l in XGROUP_HELP {
        reply.simple(l);
    }
}

const ERR_NEED_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

fn nogroup(reply: &mut Reply, key: &[u8], group: &[u8]) {
    let mut e = b"NOGROUP No such consumer group '".to_vec();
    e.extend_from_slice(group);
    e.extend_from_slice(b"' for key name '");
    e.extend_from_slice(key);
    e.push(b'\'');
    reply.error_bytes(&e);
}

/// `NOGROUP No such key '<key>' or consumer group '<group>'`.
pub(crate) fn nokey_or_group(reply: &mut Reply, key: &[u8], group: &[u8]) {
    let mut e = b"NOGROUP No such key '".to_vec();
    e.extend_from_slice(key);
    e.extend_from_slice(b"' or consumer group '");
    e.extend_from_slice(group);
    e.push(b'\'');
    reply.error_bytes(&e);
}

fn entries_read_arg(arg: &[u8], reply: &mut Reply) -> Option<i64> {
    let Some(n) = parse_i64_strict(arg) else {
        reply.error(NOT_INTEGER);
        return None;
    };
    if n < 0 && n != INVALID_ENTRIES_READ {
        reply.error("ERR value for ENTRIESREAD must be positive or -1");
        return None;
    }
    Some(n)
}

/// The stream and group a subcommand names: the errors of Redis's
/// xgroupCommand when the key is missing (and `need_key`) or the group
/// is missing (and `need_group`). Ok(None): the key is missing (allowed).
fn lookup<'a>(
    ctx: &'a mut Ctx,
    args: &Args,
    need_key: bool,
    need_group: bool,
    reply: &mut Reply,
) -> Result<Option<&'a mut Stream>, ()> {
    let now = ctx.now;
    let key = args.get(2);
    let s = match stream_mut(ctx.db(), key, now) {
        Found::Wrong => {
            reply.error(WRONGTYPE);
            return Err(());
        }
        Found::Missing => None,
        Found::Ok(s) => Some(s),
    };
    if need_key && s.is_none() {
        reply.error(ERR_NEED_KEY);
        return Err(());
    }
    if need_group
        && !s
            .as_ref()
            .is_some_and(|s| s.groups.contains_key(args.get(3)))
    {
        nogroup(reply, key, args.get(3));
        return Err(());
    }
    Ok(s)
}

pub fn xgroup_create(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < args.len() {
        if eq_ic(args.get(i), b"mkstream") {
            mkstream = true;
            i += 1;
        } else if eq_ic(args.get(i), b"entriesread") && i + 1 < args.len() {
            let Some(n) = entries_read_arg(args.get(i + 1), reply) else {
                return;
            };
            entries_read = n;
            i += 2;
        } else {
            return reply.error_bytes(&subcommand_syntax_error("xgroup", args.get(1)));
        }
    }
    if args.len() > 8 {
        return reply.error_bytes(&subcommand_syntax_error("xgroup", args.get(1)));
    }
    let now = ctx.now;
    let key = args.get(2);
    let Ok(s) = lookup(ctx, &args, !mkstream, false, reply) else {
        return;
    };
    let last = s.as_ref().map(|s| s.last_id).unwrap_or_default();
    let id = if args.get(4) == b"$" {
        last
    } else {
        match parse_id(args.get(4), 0, true) {
            Some(p) => p.id,
            None => return reply.error(ERR_INVALID_ID),
        }
    };
    let name = args.get(3);
    match s {
        Some(s) => {
            if s.groups.contains_key(name) {
                return reply.error("BUSYGROUP Consumer Group name already exists");
            }
            s.groups.insert(name.into(), Group::new(id, entries_read));
        }
        None => {
            let mut s = Stream::new();
            s.groups.insert(name.into(), Group::new(id, entries_read));
            ctx.db().insert(new_stream_entry(key, s, now), now);
        }
    }
    reply.ok();
}

pub fn xgroup_setid(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if args.len() != 5 && args.len() != 7 {
        return reply.error_bytes(&subcommand_syntax_error("xgroup", args.get(1)));
    }
    let Ok(Some(s)) = lookup(ctx, &args, true, true, reply) else {
        return;
    };
    let id = if args.get(4) == b"$" {
        s.last_id
    } else {
        match parse_id(args.get(4), 0, false) {
            Some(p) => p.id,
            None => return reply.error(ERR_INVALID_ID),
        }
    };
    let mut entries_read = INVALID_ENTRIES_READ;
    if args.len() == 7 {
        if !eq_ic(args.get(5), b"entriesread") || parse_i64_strict(args.get(6)).is_none() {
            return reply.error_bytes(&subcommand_syntax_error("xgroup", args.get(1)));
        }
        let Some(n) = entries_read_arg(args.get(6), reply) else {
            return;
        };
        entries_read = n;
    }
    let g = s.groups.get_mut(args.get(3)).expect("group checked");
    g.last_id = id;
    g.entries_read = entries_read;
    reply.ok();
}

pub fn xgroup_destroy(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Ok(Some(s)) = lookup(ctx, &args, true, false, reply) else {
        return;
    };
    reply.int(s.groups.remove(args.get(3)).is_some() as i64);
}

pub fn xgroup_createconsumer(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let Ok(Some(s)) = lookup(ctx, &args, true, true, reply) else {
        return;
    };
    let g = s.groups.get_mut(args.get(3)).expect("group checked");
    let (_, created) = g.consumer(args.get(4), now);
    reply.int(created as i64);
}

pub fn xgroup_delconsumer(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Ok(Some(s)) = lookup(ctx, &args, true, true, reply) else {
        return;
    };
    let g = s.groups.get_mut(args.get(3)).expect("group checked");
    reply.int(g.remove_consumer(args.get(4)).unwrap_or(0) as i64);
}

pub fn xack(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(1);
    let s = match stream_mut(ctx.db(), key, now) {
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Missing => None,
        Found::Ok(s) => Some(s),
    };
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in args.iter().skip(3) {
        let Some(id) = strict_id(a, 0, reply) else {
            return;
        };
        ids.push(id);
    }
    let Some(g) = s.and_then(|s| s.groups.get_mut(args.get(2))) else {
        return reply.int(0);
    };
    let n = ids.into_iter().filter(|id| g.ack(*id)).count();
    reply.int(n as i64);
}

pub fn xpending(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let argc = args.len();
    let summary = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return reply.error(SYNTAX);
    }
    let mut min_idle = 0i64;
    let mut range = None;
    let mut consumer = None;
    if argc >= 6 {
        let mut at = 3;
        if eq_ic(args.get(3), b"idle") {
            let Some(n) = parse_i64_strict(args.get(4)) else {
                return reply.error(NOT_INTEGER);
            };
            min_idle = n;
            if argc < 8 {
                return reply.error(SYNTAX);
            }
            at += 2;
        }
        let Some(count) = parse_i64_strict(args.get(at + 2)) else {
            return reply.error(NOT_INTEGER);
        };
        let Some(start) = super::streams::range_bound(args.get(at), true, reply) else {
            return;
        };
        let Some(end) = super::streams::range_bound(args.get(at + 1), false, reply) else {
            return;
        };
        range = Some((start, end, count.max(0) as usize));
        if at + 3 < argc {
            consumer = Some(args.get(at + 3));
        }
    }
    let now = ctx.now;
    let key = args.get(1);
    let gname = args.get(2);
    let s = match stream_read(ctx, key, reply) {
        Err(()) => return,
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(gname)) else {
        return nokey_or_group(reply, key, gname);
    };
    if summary {
        reply.array(4);
        reply.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            reply.null();
            reply.null();
            reply.null_array();
            return;
        }
        reply_id(reply, *g.pel.keys().next().expect("non-empty"));
        reply_id(reply, *g.pel.keys().next_back().expect("non-empty"));
        let with: Vec<_> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .collect();
        reply.array(with.len());
        for (name, c) in with {
            reply.array(2);
            reply.bulk(name);
            reply.bulk_int(c.pel.len() as i64);
        }
        return;
    }
    let (start, end, count) = range.expect("extended form");
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(name) {
            None => return reply.array(0),
            Some(c) if start <= end => c.pel.range(start..=end).copied().collect(),
            Some(_) => Vec::new(),
        },
        None if start <= end => g.pel.range(start..=end).map(|(id, _)| *id).collect(),
        None => Vec::new(),
    };
    let rows: Vec<_> = ids
        .iter()
        .filter_map(|id| g.pel.get(id).map(|n| (*id, n)))
        .filter(|(_, n)| min_idle == 0 || now - n.delivery_time >= min_idle)
        .take(count)
        .collect();
    reply.array(rows.len());
    for (id, n) in rows {
        reply.array(4);
        reply_id(reply, id);
        reply.bulk(&n.consumer);
        reply.int((now - n.delivery_time).max(0));
        reply.int(n.delivery_count as i64);
    }
}

pub fn xsetid(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(id) = strict_id(args.get(2), 0, reply) else {
        return;
    };
    let mut entries_added: i64 = -1;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = args.get(i);
        if eq_ic(opt, b"entriesadded") && more > 0 {
            let Some(n) = parse_i64_strict(args.get(i + 1)) else {
                return reply.error(NOT_INTEGER);
            };
            if n < 0 {
                return reply.error("ERR entries_added must be positive");
            }
            entries_added = n;
            i += 2;
        } else if eq_ic(opt, b"maxdeletedid") && more > 0 {
            let Some(m) = strict_id(args.get(i + 1), 0, reply) else {
                return;
            };
            if id < m {
                return reply.error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                );
            }
            max_deleted = m;
            i += 2;
        } else {
            return reply.error(SYNTAX);
        }
    }
    let now = ctx.now;
    let s = match stream_mut(ctx.db(), args.get(1), now) {
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Missing => return reply.error(NO_SUCH_KEY),
        Found::Ok(s) => s,
    };
    if !s.is_empty() {
        let top = s.last_entry().map(|e| e.id).unwrap_or_default();
        if id < top {
            return reply.error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return reply.error(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_deleted.is_zero() {
        s.max_deleted = max_deleted;
    }
    reply.ok();
}
