//! XCLAIM and XAUTOCLAIM: moving pending entries of a consumer group to
//! another consumer (entries deleted from the stream meanwhile leave the
//! pending list instead).

use tessera_protocol::{Args, Reply};

use super::errors::WRONGTYPE;
use super::streams::{reply_entry, reply_id, stream_mut, ERR_INVALID_ID};
use super::streams_group::nokey_or_group;
use super::typed::Found;
use super::Ctx;
use crate::types::stream::{parse_id, Group, Nack, Stream, StreamId};
use crate::util::{eq_ic, parse_i64_strict};

/// Hands the pending entry `id` to `consumer` (creating the consumer,
/// seen now), with `time` as its delivery time; the count is set to
/// `retry` when given, else bumped unless `justid`.
fn claim_one(
    g: &mut Group,
    id: StreamId,
    consumer: &[u8],
    now: i64,
    time: i64,
    retry: Option<u64>,
    justid: bool,
) {
    let (c, _) = g.consumer(consumer, now);
    c.seen_time = now;
    let n = g.pel.get_mut(&id).expect("pending entry");
    if &*n.consumer != consumer {
        let old = std::mem::replace(&mut n.consumer, consumer.into());
        if let Some(o) = g.consumers.get_mut(&old) {
            o.pel.remove(&id);
        }
    }
    let n = g.pel.get_mut(&id).expect("pending entry");
    n.delivery_time = time;
    match retry {
        Some(r) => n.delivery_count = r,
        None if !justid => n.delivery_count += 1,
        None => {}
    }
    g.consumers
        .get_mut(consumer)
        .expect("consumer created")
        .pel
        .insert(id);
}

fn find<'a>(ctx: &'a mut Ctx, args: &Args, reply: &mut Reply) -> Option<&'a mut Stream> {
    let now = ctx.now;
    let (key, group) = (args.get(1), args.get(2));
    match stream_mut(ctx.db(), key, now) {
        Found::Wrong => {
            reply.error(WRONGTYPE);
            None
        }
        Found::Ok(s) if s.groups.contains_key(group) => Some(s),
        _ => {
            nokey_or_group(reply, key, group);
            None
        }
    }
}

pub fn xclaim(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let Some(s) = find(ctx, &args, reply) else {
        return;
    };
    let Some(min_idle) = parse_i64_strict(args.get(4)) else {
        return reply.error("ERR Invalid min-idle-time argument for XCLAIM");
    };
    let min_idle = min_idle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id(args.get(j), 0, true) {
            Some(p) => ids.push(p.id),
            None => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut time: Option<i64> = None;
    let mut retry: Option<u64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = args.get(j);
        let int = |at: usize, what: &str, reply: &mut Reply| -> Option<i64> {
            let v = parse_i64_strict(args.get(at));
            if v.is_none() {
                reply.error(&format!("ERR Invalid {what} option argument for XCLAIM"));
            }
            v
        };
        if eq_ic(opt, b"force") {
            force = true;
        } else if eq_ic(opt, b"justid") {
            justid = true;
        } else if eq_ic(opt, b"idle") && more > 0 {
            j += 1;
            let Some(v) = int(j, "IDLE", reply) else {
                return;
            };
            time = Some(now - v);
        } else if eq_ic(opt, b"time") && more > 0 {
            j += 1;
            let Some(v) = int(j, "TIME", reply) else {
                return;
            };
            time = Some(v);
        } else if eq_ic(opt, b"retrycount") && more > 0 {
            j += 1;
            let Some(v) = int(j, "RETRYCOUNT", reply) else {
                return;
            };
            retry = (v >= 0).then_some(v as u64);
        } else if eq_ic(opt, b"lastid") && more > 0 {
            j += 1;
            match parse_id(args.get(j), 0, true) {
                Some(p) => last_id = p.id,
                None => return reply.error(ERR_INVALID_ID),
            }
        } else {
            let mut e = b"ERR Unrecognized XCLAIM option '".to_vec();
            e.extend_from_slice(opt);
            e.push(b'\'');
            return reply.error_bytes(&e);
        }
        j += 1;
    }
    let time = match time {
        Some(t) if (0..=now).contains(&t) => t,
        _ => now,
    };
    let group = args.get(2);
    let consumer = args.get(3);
    {
        let g = s.groups.get_mut(group).expect("group checked");
        if last_id > g.last_id {
            g.last_id = last_id;
        }
    }
    // Decide what is claimed, then reply (entries are read after the
    // PEL changes, as the reply shows the entries themselves).
    let mut claimed = Vec::new();
    for id in ids {
        let exists = s.get(id).is_some();
        let g = s.groups.get_mut(group).expect("group checked");
        if !exists {
            g.ack(id);
            continue;
        }
        let mut fresh = false;
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                Nack {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: Box::default(),
                },
            );
            fresh = true;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        if !fresh && min_idle > 0 && now - n.delivery_time < min_idle {
            continue;
        }
        claim_one(g, id, consumer, now, time, retry, justid);
        claimed.push(id);
    }
    reply.array(claimed.len());
    for id in claimed {
        if justid {
            reply_id(reply, id);
        } else {
            match s.get(id) {
                Some(e) => reply_entry(reply, &e),
                None => reply.null(),
            }
        }
    }
}

pub fn xautoclaim(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let Some(min_idle) = parse_i64_strict(args.get(4)) else {
        return reply.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let min_idle = min_idle.max(0);
    let start_arg = args.get(5);
    let start = if start_arg.len() > 1 && start_arg[0] == b'(' {
        match parse_id(&start_arg[1..], 0, true) {
            None => return reply.error(ERR_INVALID_ID),
            Some(p) => match p.id.incr() {
                Some(id) => id,
                None => return reply.error("ERR invalid start ID for the interval"),
            },
        }
    } else {
        match parse_id(start_arg, 0, false) {
            Some(p) => p.id,
            None => return reply.error(ERR_INVALID_ID),
        }
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(args.get(j), b"count") && more > 0 {
            match parse_i64_strict(args.get(j + 1)) {
                Some(n) if (1..=i64::MAX / 16).contains(&n) => count = n,
                _ => return reply.error("ERR COUNT must be > 0"),
            }
            j += 2;
        } else if eq_ic(args.get(j), b"justid") {
            justid = true;
            j += 1;
        } else {
            return reply.error(super::errors::SYNTAX);
        }
    }
    let Some(s) = find(ctx, &args, reply) else {
        return;
    };
    let group = args.get(2);
    let consumer = args.get(3);
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let pel: Vec<StreamId> = s.groups[group]
        .pel
        .range(start..)
        .map(|(id, _)| *id)
        .collect();
    let mut next = StreamId::MIN;
    let mut it = pel.into_iter().peekable();
    while attempts > 0 && left > 0 {
        let Some(id) = it.next() else { break };
        attempts -= 1;
        let exists = s.get(id).is_some();
        let g = s.groups.get_mut(group).expect("group checked");
        if !exists {
            g.ack(id);
            deleted.push(id);
            left -= 1;
            continue;
        }
        let n = &g.pel[&id];
        if min_idle > 0 && now - n.delivery_time < min_idle {
            continue;
        }
        claim_one(g, id, consumer, now, now, None, justid);
        claimed.push(id);
        left -= 1;
    }
    if let Some(id) = it.next() {
        next = id;
    }
    reply.array(3);
    reply_id(reply, next);
    reply.array(claimed.len());
    for id in claimed {
        if justid {
            reply_id(reply, id);
        } else if let Some(e) = s.get(id) {
            reply_entry(reply, &e);
        }
    }
    reply.array(deleted.len());
    for id in deleted {
        reply_id(reply, id);
    }
}
