//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP,
//! with Redis 7.0's fields (a consumer has `seen-time`, shown as `idle`).

use tessera_protocol::{Args, Reply};

use super::acl::{SLOW as A_SLOW, STREAM as A_STREAM};
use super::errors::*;
use super::flags::{LOADING, READONLY, STALE};
use super::streams::{reply_entry, reply_id, stream_read, SUB_KEY_R, SUB_R_SLOW};
use super::{subcommand_syntax_error, CommandSpec, Ctx, Route, Split};
use crate::cmd;
use crate::types::stream::{Group, Stream, StreamId};
use crate::util::{eq_ic, parse_i64_strict};

pub static SUBCOMMANDS: &[CommandSpec] = &[
    cmd!(
        "xinfo|stream",
        -3,
        READONLY,
        SUB_R_SLOW,
        "stream",
        SUB_KEY_R,
        Route::Keyed(xinfo_stream, Split::Gather),
        "Returns information about a stream.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "xinfo|groups",
        3,
        READONLY,
        SUB_R_SLOW,
        "stream",
        SUB_KEY_R,
        Route::Keyed(xinfo_groups, Split::Gather),
        "Returns a list of the consumer groups of a stream.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "xinfo|consumers",
        4,
        READONLY,
        SUB_R_SLOW,
        "stream",
        SUB_KEY_R,
        Route::Keyed(xinfo_consumers, Split::Gather),
        "Returns a list of the consumers in a consumer group.",
        "5.0.0",
        "O(1)"
    ),
    cmd!(
        "xinfo|help",
        2,
        LOADING | STALE,
        A_STREAM | A_SLOW,
        "stream",
        super::table::NO_KEYS,
        Route::Local(xinfo_help),
        "Returns helpful text about the different subcommands.",
        "5.0.0",
        "O(1)"
    ),
];

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

pub fn xinfo_help(_ctx: &mut Ctx, _args: Args, reply: &mut Reply) {
    reply.array(XINFO_HELP.len());
    for l in XINFO_HELP {
        reply.simple(l);
    }
}

/// The stream at argument 2, or the error Redis gives (`no such key`).
fn existing<'c>(ctx: &'c mut Ctx, args: &Args, reply: &mut Reply) -> Option<&'c Stream> {
    match stream_read(ctx, args.get(2), reply) {
        Err(()) => None,
        Ok(None) => {
            reply.error(NO_SUCH_KEY);
            None
        }
        Ok(Some(s)) => Some(s),
    }
}

fn lag(reply: &mut Reply, s: &Stream, g: &Group) {
    match s.group_lag(g) {
        Some(n) => reply.int(n),
        None => reply.null(),
    }
}

fn entries_read(reply: &mut Reply, g: &Group) {
    if g.entries_read == crate::types::stream::INVALID_ENTRIES_READ {
        reply.null();
    } else {
        reply.int(g.entries_read);
    }
}

pub fn xinfo_stream(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let rest = args.len() - 3;
    let mut count: i64 = 10;
    let full = rest > 0;
    if full {
        if (rest != 1 && rest != 3) || !eq_ic(args.get(3), b"full") {
            return reply.error_bytes(&subcommand_syntax_error("xinfo", args.get(1)));
        }
        if rest == 3 {
            if !eq_ic(args.get(4), b"count") {
                return reply.error_bytes(&subcommand_syntax_error("xinfo", args.get(1)));
            }
            let Some(n) = parse_i64_strict(args.get(5)) else {
                return reply.error(NOT_INTEGER);
            };
            count = if n < 0 { 10 } else { n };
        }
    }
    let Some(s) = existing(ctx, &args, reply) else {
        return;
    };
    let kv = |reply: &mut Reply, k: &str| reply.bulk(k.as_bytes());
    reply.map(if full { 9 } else { 10 });
    kv(reply, "length");
    reply.int(s.len() as i64);
    kv(reply, "radix-tree-keys");
    reply.int(s.node_count() as i64);
    // Redis counts its radix tree's inner nodes; ours is a B-tree of the
    // same nodes: report the nodes plus a root, as a small rax has.
    kv(reply, "radix-tree-nodes");
    reply.int(s.node_count() as i64 + 1);
    kv(reply, "last-generated-id");
    reply_id(reply, s.last_id);
    kv(reply, "max-deleted-entry-id");
    reply_id(reply, s.max_deleted);
    kv(reply, "entries-added");
    reply.int(s.entries_added as i64);
    kv(reply, "recorded-first-entry-id");
    reply_id(reply, s.first_id);
    if !full {
        kv(reply, "groups");
        reply.int(s.groups.len() as i64);
        kv(reply, "first-entry");
        match s.first_entry() {
            Some(e) => reply_entry(reply, &e),
            None => reply.null(),
        }
        kv(reply, "last-entry");
        match s.last_entry() {
            Some(e) => reply_entry(reply, &e),
            None => reply.null(),
        }
        return;
    }
    let max = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    kv(reply, "entries");
    super::streams::reply_range(reply, s, StreamId::MIN, StreamId::MAX, false, max);
    kv(reply, "groups");
    reply.array(s.groups.len());
    for (name, g) in &s.groups {
        reply.map(7);
        kv(reply, "name");
        reply.bulk(name);
        kv(reply, "last-delivered-id");
        reply_id(reply, g.last_id);
        kv(reply, "entries-read");
        entries_read(reply, g);
        kv(reply, "lag");
        lag(reply, s, g);
        kv(reply, "pel-count");
        reply.int(g.pel.len() as i64);
        kv(reply, "pending");
        let n = g.pel.len().min(max);
        reply.array(n);
        for (id, nack) in g.pel.iter().take(n) {
            reply.array(4);
            reply_id(reply, *id);
            reply.bulk(&nack.consumer);
            reply.int(nack.delivery_time);
            reply.int(nack.delivery_count as i64);
        }
        kv(reply, "consumers");
        reply.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            reply.map(4);
            kv(reply, "name");
            reply.bulk(cname);
            kv(reply, "seen-time");
            reply.int(c.seen_time);
            kv(reply, "pel-count");
            reply.int(c.pel.len() as i64);
            kv(reply, "pending");
            let n = c.pel.len().min(max);
            reply.array(n);
            for id in c.pel.iter().take(n) {
                let nack = &g.pel[id];
                reply.array(3);
                reply_id(reply, *id);
                reply.int(nack.delivery_time);
                reply.int(nack.delivery_count as i64);
            }
        }
    }
}

pub fn xinfo_groups(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(s) = existing(ctx, &args, reply) else {
        return;
    };
    reply.array(s.groups.len());
    for (name, g) in &s.groups {
        reply.map(6);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"consumers");
        reply.int(g.consumers.len() as i64);
        reply.bulk(b"pending");
        reply.int(g.pel.len() as i64);
        reply.bulk(b"last-delivered-id");
        reply_id(reply, g.last_id);
        reply.bulk(b"entries-read");
        entries_read(reply, g);
        reply.bulk(b"lag");
        lag(reply, s, g);
    }
}

pub fn xinfo_consumers(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(2).to_vec();
    let Some(s) = existing(ctx, &args, reply) else {
        return;
    };
    let Some(g) = s.groups.get(args.get(3)) else {
        let mut e = b"NOGROUP No such consumer group '".to_vec();
        e.extend_from_slice(args.get(3));
        e.extend_from_slice(b"' for key name '");
        e.extend_from_slice(&key);
        e.push(b'\'');
        return reply.error_bytes(&e);
    };
    reply.array(g.consumers.len());
    for (name, c) in &g.consumers {
        reply.map(3);
        reply.bulk(b"name");
        reply.bulk(name);
        reply.bulk(b"pending");
        reply.int(c.pel.len() as i64);
        reply.bulk(b"idle");
        reply.int((now - c.seen_time).max(0));
    }
}
