//! XREAD and XREADGROUP: entries after an ID on one or more streams, and
//! for a group, the new entries it has not delivered (`>`, recorded in
//! its pending entries list unless NOACK) or a consumer's own pending
//! history (any other ID).

use tessera_protocol::{Args, Reply};

use super::errors::*;
use super::streams::{reply_entry, reply_id, ERR_INVALID_ID};
use super::{Ctx, KeyPos};
use crate::store::Object;
use crate::types::stream::{parse_id, EntryRef, Stream, StreamId};
use crate::util::{eq_ic, parse_i64_strict};

/// Redis 7.0 names XREAD here for XREADGROUP too.
const ERR_UNBALANCED: &str =
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.";

/// XREAD's keys, as Redis's xreadGetKeys finds them.
pub fn xread_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    find_keys(args, false, out)
}

pub fn xreadgroup_keys(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    find_keys(args, true, out)
}

fn find_keys(args: &Args, write: bool, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    let argc = args.len();
    let mut i = 1;
    let mut streams = None;
    while i < argc {
        let a = args.get(i);
        if eq_ic(a, b"block") || eq_ic(a, b"count") {
            i += 2;
        } else if eq_ic(a, b"group") {
            i += 3;
        } else if eq_ic(a, b"noack") {
            i += 1;
        } else if eq_ic(a, b"streams") {
            streams = Some(i);
            break;
        } else {
            break;
        }
    }
    let Some(at) = streams else {
        return Err(SYNTAX);
    };
    let rest = argc - at - 1;
    if rest == 0 {
        return Err(SYNTAX);
    }
    if !rest.is_multiple_of(2) {
        return Err(ERR_UNBALANCED);
    }
    for k in 0..rest / 2 {
        out.push(KeyPos {
            index: at + 1 + k,
            write,
        });
    }
    Ok(())
}

/// What an XREAD/XREADGROUP request asked for.
pub struct ReadArgs<'a> {
    pub count: usize,
    /// BLOCK's timeout in ms (None: no BLOCK).
    pub block: Option<i64>,
    pub group: Option<(&'a [u8], &'a [u8])>,
    pub noack: bool,
    /// Index of the first key.
    pub keys_at: usize,
    pub nkeys: usize,
}

/// Parses the options up to STREAMS, with Redis's errors.
pub fn parse_read_args<'a>(
    args: &Args<'a>,
    group: bool,
    reply: &mut Reply,
) -> Option<ReadArgs<'a>> {
    let argc = args.len();
    let mut r = ReadArgs {
        count: 0,
        block: None,
        group: None,
        noack: false,
        keys_at: 0,
        nkeys: 0,
    };
    let mut i = 1;
    let mut streams = None;
    while i < argc {
        let more = argc - i - 1;
        let a = args.get(i);
        if eq_ic(a, b"block") && more >= 1 {
            match parse_block_ms(args.get(i + 1)) {
                Ok(t) => r.block = Some(t),
                Err(e) => {
                    reply.error(e);
                    return None;
                }
            }
            i += 2;
        } else if eq_ic(a, b"count") && more >= 1 {
            let Some(n) = parse_i64_strict(args.get(i + 1)) else {
                reply.error(NOT_INTEGER);
                return None;
            };
            r.count = n.max(0) as usize;
            i += 2;
        } else if eq_ic(a, b"streams") && more >= 1 {
            streams = Some(i);
            break;
        } else if eq_ic(a, b"group") && more >= 2 {
            if !group {
                reply.error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                );
                return None;
            }
            r.group = Some((args.get(i + 1), args.get(i + 2)));
            i += 3;
        } else if eq_ic(a, b"noack") {
            if !group {
                reply.error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                );
                return None;
            }
            r.noack = true;
            i += 1;
        } else {
            reply.error(SYNTAX);
            return None;
        }
    }
    let Some(at) = streams else {
        reply.error(SYNTAX);
        return None;
    };
    let rest = argc - at - 1;
    if !rest.is_multiple_of(2) {
        reply.error(ERR_UNBALANCED);
        return None;
    }
    if group && r.group.is_none() {
        reply.error("ERR Missing GROUP option for XREADGROUP");
        return None;
    }
    r.keys_at = at + 1;
    r.nkeys = rest / 2;
    Some(r)
}

/// BLOCK on streams is not served by the blocking machinery yet: refused
/// when it would have to wait, rather than answered as a timeout.
pub const ERR_NO_BLOCK: &str =
    "ERR BLOCK on streams with nothing to read yet is not supported by this server yet";

/// BLOCK's milliseconds, as Redis's getTimeoutFromObjectOrReply reads
/// them (an integer; 0: for ever).
fn parse_block_ms(arg: &[u8]) -> Result<i64, &'static str> {
    match parse_i64_strict(arg) {
        None => Err("ERR timeout is not an integer or out of range"),
        Some(n) if n < 0 => Err("ERR timeout is negative"),
        Some(n) => Ok(n),
    }
}

/// One stream's starting point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// Entries above this ID.
    After(StreamId),
    /// XREADGROUP's `>`: entries the group never delivered.
    New,
}

fn stream_at<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c mut Stream>, ()> {
    let now = ctx.now;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match e.object_mut() {
            Some(Object::Stream(s)) => Ok(Some(s)),
            _ => Err(()),
        },
    }
}

/// The last entry's ID (live), as Redis's streamLastValidID.
fn last_valid(s: &Stream) -> StreamId {
    s.last_entry().map(|e| e.id).unwrap_or(StreamId::MIN)
}

pub fn xread(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    read_generic(ctx, args, reply, false)
}

pub fn xreadgroup(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    read_generic(ctx, args, reply, true)
}

fn read_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, group: bool) {
    let Some(r) = parse_read_args(&args, group, reply) else {
        return;
    };
    // Check every key and ID before serving any, as Redis does.
    let mut froms = Vec::with_capacity(r.nkeys);
    for k in 0..r.nkeys {
        let key = args.get(r.keys_at + k);
        let id_arg = args.get(r.keys_at + r.nkeys + k);
        let s = match stream_at(ctx, key) {
            Err(()) => return reply.error(WRONGTYPE),
            Ok(s) => s,
        };
        if let Some((g, _)) = r.group {
            if !s.as_ref().is_some_and(|s| s.groups.contains_key(g)) {
                let mut e = b"NOGROUP No such key '".to_vec();
                e.extend_from_slice(key);
                e.extend_from_slice(b"' or consumer group '");
                e.extend_from_slice(g);
                e.extend_from_slice(b"' in XREADGROUP with GROUP option");
                return reply.error_bytes(&e);
            }
        }
        let from = if id_arg == b"$" {
            if group {
                return reply.error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            From::After(s.map(|s| s.last_id).unwrap_or_default())
        } else if id_arg == b">" {
            if !group {
                return reply.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            From::New
        } else {
            match parse_id(id_arg, 0, true) {
                Some(p) => From::After(p.id),
                None => return reply.error(ERR_INVALID_ID),
            }
        };
        froms.push(from);
    }
    let served = serve(ctx, &args, &r, &froms, reply);
    if served {
        return;
    }
    match r.block {
        Some(_) => reply.error(ERR_NO_BLOCK),
        None => reply.null_array(),
    }
}

/// Serves what can be served now: replies and returns true, or replies
/// nothing and returns false when no stream had anything.
pub fn serve(ctx: &mut Ctx, args: &Args, r: &ReadArgs, froms: &[From], reply: &mut Reply) -> bool {
    let now = ctx.now;
    // Which streams serve, and from where: known before the reply's
    // length is written.
    let mut plan: Vec<(usize, StreamId, bool)> = Vec::new();
    for (k, from) in froms.iter().enumerate() {
        let key = args.get(r.keys_at + k);
        let Ok(Some(s)) = stream_at(ctx, key) else {
            continue;
        };
        match (r.group, *from) {
            (None, From::After(gt)) => {
                if !s.is_empty() && last_valid(s) > gt {
                    plan.push((k, gt, false));
                }
            }
            (Some((g, c)), from) => {
                let Some(grp) = s.groups.get(g) else { continue };
                let start = match from {
                    From::After(id) => Some((id, true)),
                    From::New if !s.is_empty() && last_valid(s) > grp.last_id => {
                        Some((grp.last_id, false))
                    }
                    From::New => None,
                };
                let grp = s.groups.get_mut(g).expect("group checked");
                let (cons, _) = grp.consumer(c, now);
                cons.seen_time = now;
                if let Some((id, history)) = start {
                    plan.push((k, id, history));
                }
            }
            (None, From::New) => {}
        }
    }
    if plan.is_empty() {
        return false;
    }
    if reply.resp3() {
        reply.map(plan.len());
    } else {
        reply.array(plan.len());
    }
    for (k, gt, history) in plan {
        let key = args.get(r.keys_at + k);
        if !reply.resp3() {
            reply.array(2);
        }
        reply.bulk(key);
        let Ok(Some(s)) = stream_at(ctx, key) else {
            reply.array(0);
            continue;
        };
        let max = if r.count == 0 { usize::MAX } else { r.count };
        let Some(start) = gt.incr() else {
            reply.array(0);
            continue;
        };
        match r.group {
            None => super::streams::reply_range(reply, s, start, StreamId::MAX, false, max),
            Some((g, c)) if history => reply_history(reply, s, g, c, start, max, now),
            Some((g, c)) => deliver_new(reply, s, g, c, start, max, r.noack, now),
        }
    }
    true
}

/// A consumer's pending entries from `start` (XREADGROUP with an ID):
/// each delivered again (count and time bumped); an entry deleted since
/// shows as `[id, nil]`.
fn reply_history(
    reply: &mut Reply,
    s: &mut Stream,
    g: &[u8],
    c: &[u8],
    start: StreamId,
    max: usize,
    now: i64,
) {
    let ids: Vec<StreamId> = s.groups[g].consumers[c]
        .pel
        .range(start..)
        .take(max)
        .copied()
        .collect();
    let mut live = Vec::with_capacity(ids.len());
    reply.array(ids.len());
    for id in &ids {
        match s.get(*id) {
            Some(e) => {
                reply_entry(reply, &e);
                live.push(*id);
            }
            None => {
                reply.array(2);
                reply_id(reply, *id);
                reply.null_array();
            }
        }
    }
    let grp = s.groups.get_mut(g).expect("group checked");
    for id in live {
        if let Some(n) = grp.pel.get_mut(&id) {
            n.delivery_time = now;
            n.delivery_count += 1;
        }
    }
}

/// New entries above `start` for a group (`>`): each moves the group's
/// last ID and read counter and, unless NOACK, enters the PEL of the
/// group and of the consumer (taken from another consumer if XGROUP
/// SETID had moved the group back).
#[allow(clippy::too_many_arguments)]
fn deliver_new(
    reply: &mut Reply,
    s: &mut Stream,
    g: &[u8],
    c: &[u8],
    start: StreamId,
    max: usize,
    noack: bool,
    now: i64,
) {
    let mut ids: Vec<StreamId> = Vec::new();
    {
        let ro: &Stream = s;
        let mut found: Vec<EntryRef> = Vec::new();
        ro.range(start, StreamId::MAX, false, |e| {
            found.push(e);
            found.len() < max
        });
        reply.array(found.len());
        for e in &found {
            reply_entry(reply, e);
            ids.push(e.id);
        }
    }
    let meta = s.meta();
    let grp = s.groups.get_mut(g).expect("group checked");
    for id in ids {
        if id > grp.last_id {
            meta.advance_group(grp, id);
        }
        if !noack {
            grp.deliver_new(id, c, now);
        }
    }
}
