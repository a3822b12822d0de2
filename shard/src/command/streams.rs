//! Stream commands: the table of every X command, and the ones that add,
//! delete and read ranges (XADD XLEN XDEL XTRIM XRANGE XREVRANGE). The
//! reads with a cursor live in `streams_read.rs`, the consumer-group
//! commands in `streams_group.rs` and `streams_claim.rs`, XINFO in
//! `streams_info.rs`.

use tessera_protocol::{Args, Reply};

use super::acl::{
    BLOCKING as A_BLOCKING, FAST as A_FAST, READ as A_READ, SLOW as A_SLOW, STREAM as A_STREAM,
    WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::streams_read as read;
use super::table::{KEY1_R, KEY1_W};
use super::typed::{typed_mut, typed_read, Found};
use super::{streams_claim as claim, streams_group as group, streams_info as info};
use super::{CommandSpec, Ctx, KeySpec, Route, Split};
use crate::cmd;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::stream::{
    parse_add_id, parse_id, AddId, EntryRef, IdError, Stream, StreamId, Trim,
};
use crate::util::{eq_ic, parse_i64_strict};

const W_FAST: u32 = A_WRITE | A_STREAM | A_FAST;
const W_SLOW: u32 = A_WRITE | A_STREAM | A_SLOW;
const R_FAST: u32 = A_READ | A_STREAM | A_FAST;
const R_SLOW: u32 = A_READ | A_STREAM | A_SLOW;

/// XREAD/XREADGROUP: the keys are the first half of what follows STREAMS.
const XREAD_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: read::xread_keys,
};
const XREADGROUP_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: read::xreadgroup_keys,
};
/// XGROUP and XINFO subcommands: the key is argument 2.
const KEY2_W: KeySpec = KeySpec::Range {
    first: 2,
    last: 2,
    step: 1,
    writes: super::Writes::All,
};
const KEY2_R: KeySpec = KeySpec::Range {
    first: 2,
    last: 2,
    step: 1,
    writes: super::Writes::None,
};

// XREAD and XREADGROUP lack Redis's `blocking` flag: the server's
// blocking machinery does not serve streams yet, so they run as plain
// reads and BLOCK with nothing to serve is refused (`streams_read.rs`).
pub static COMMANDS: &[CommandSpec] = &[
    cmd!("xadd", -5, WRITE | DENYOOM | FAST, W_FAST, "stream", KEY1_W, Route::Keyed(xadd, Split::Gather),
        "Appends a new message to a stream. Creates the key if it doesn't exist.", "5.0.0",
        "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted."),
    cmd!("xlen", 2, READONLY | FAST, R_FAST, "stream", KEY1_R, Route::Keyed(xlen, Split::Gather),
        "Return the number of messages in a stream.", "5.0.0", "O(1)"),
    cmd!("xdel", -3, WRITE | FAST, W_FAST, "stream", KEY1_W, Route::Keyed(xdel, Split::Gather),
        "Returns the number of messages after removing them from a stream.", "5.0.0",
        "O(1) for each single item to delete in the stream, regardless of the stream size."),
    cmd!("xtrim", -4, WRITE, W_SLOW, "stream", KEY1_W, Route::Keyed(xtrim, Split::Gather),
        "Deletes messages from the beginning of a stream.", "5.0.0",
        "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation."),
    cmd!("xrange", -4, READONLY, R_SLOW, "stream", KEY1_R, Route::Keyed(xrange, Split::Gather),
        "Returns the messages from a stream within a range of IDs.", "5.0.0",
        "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."),
    cmd!("xrevrange", -4, READONLY, R_SLOW, "stream", KEY1_R, Route::Keyed(xrevrange, Split::Gather),
        "Returns the messages from a stream within a range of IDs in reverse order.", "5.0.0",
        "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."),
    cmd!("xread", -4, READONLY, R_SLOW | A_BLOCKING, "stream", XREAD_KEYS, Route::Keyed(read::xread, Split::Gather),
        "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", "5.0.0",
        "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data."),
    cmd!("xreadgroup", -7, WRITE, W_SLOW | A_BLOCKING, "stream", XREADGROUP_KEYS, Route::Keyed(read::xreadgroup, Split::Gather),
        "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", "5.0.0",
        "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data."),
    cmd!("xack", -4, WRITE | FAST, W_FAST, "stream", KEY1_W, Route::Keyed(group::xack, Split::Gather),
        "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", "5.0.0",
        "O(1) for each message ID processed."),
    cmd!("xpending", -3, READONLY, R_SLOW, "stream", KEY1_R, Route::Keyed(group::xpending, Split::Gather),
        "Returns the information and entries from a stream consumer group's pending entries list.", "5.0.0",
        "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer."),
    cmd!("xclaim", -6, WRITE | FAST, W_FAST, "stream", KEY1_W, Route::Keyed(claim::xclaim, Split::Gather),
        "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", "5.0.0",
        "O(log N) with N being the number of messages in the PEL of the consumer group."),
    cmd!("xautoclaim", -6, WRITE | FAST, W_FAST, "stream", KEY1_W, Route::Keyed(claim::xautoclaim, Split::Gather),
        "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", "6.2.0",
        "O(1) if COUNT is small."),
    cmd!("xsetid", -3, WRITE | DENYOOM | FAST, W_FAST, "stream", KEY1_W, Route::Keyed(group::xsetid, Split::Gather),
        "An internal command for replicating stream values.", "5.0.0", "O(1)"),
    cmd!("xgroup", -2, 0, A_SLOW, "stream", super::table::NO_KEYS, super::table::CONTAINER,
        "A container for consumer groups commands.", "5.0.0", "Depends on subcommand.", group::SUBCOMMANDS),
    cmd!("xinfo", -2, 0, A_SLOW, "stream", super::table::NO_KEYS, super::table::CONTAINER,
        "A container for stream introspection commands.", "5.0.0", "Depends on subcommand.", info::SUBCOMMANDS),
];

/// Key specs the subcommand tables use.
pub(crate) const SUB_KEY_W: KeySpec = KEY2_W;
pub(crate) const SUB_KEY_R: KeySpec = KEY2_R;
pub(crate) const SUB_W_SLOW: u32 = W_SLOW;
pub(crate) const SUB_R_SLOW: u32 = R_SLOW;

pub const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// A stream for writing.
pub(crate) fn stream_mut<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Found<'a, Stream> {
    typed_mut(db, key, now)
}

/// A stream for reading (keyspace hits and misses counted); Err after
/// replying WRONGTYPE.
pub(crate) fn stream_read<'c>(
    ctx: &'c mut Ctx,
    key: &[u8],
    reply: &mut Reply,
) -> Result<Option<&'c Stream>, ()> {
    typed_read(ctx, key, reply)
}

pub(crate) fn new_stream_entry(key: &[u8], s: Stream, now: i64) -> Entry {
    Entry::new_object(key, Object::Stream(Box::new(s)), None, lru_clock(now))
}

/// An ID as a bulk string.
pub(crate) fn reply_id(reply: &mut Reply, id: StreamId) {
    let mut b = [0u8; 41];
    reply.bulk(id.format(&mut b));
}

/// One entry: `[id, [field, value, ...]]`.
pub(crate) fn reply_entry(reply: &mut Reply, e: &EntryRef) {
    reply.array(2);
    reply_id(reply, e.id);
    reply.array(e.field_count() * 2);
    let mut ib = itoa::Buffer::new();
    e.for_each(|f, v| {
        reply.bulk(f.bytes(&mut ib));
        reply.bulk(v.bytes(&mut ib));
    });
}

/// A strict ID argument (no `-`/`+`), replying the error when invalid.
pub(crate) fn strict_id(arg: &[u8], missing_seq: u64, reply: &mut Reply) -> Option<StreamId> {
    match parse_id(arg, missing_seq, true) {
        Some(p) => Some(p.id),
        None => {
            reply.error(ERR_INVALID_ID);
            None
        }
    }
}

/// A range bound: `-`, `+`, `(id` (exclusive) or an ID, as Redis's
/// streamParseIntervalIDOrReply; exclusive bounds are moved inward. XRANGE,
/// XREVRANGE and XPENDING take them.
pub(super) fn range_bound(arg: &[u8], start: bool, reply: &mut Reply) -> Option<StreamId> {
    let missing = if start { 0 } else { u64::MAX };
    if arg.len() > 1 && arg[0] == b'(' {
        let id = strict_id(&arg[1..], missing, reply)?;
        let moved = if start { id.incr() } else { id.decr() };
        if moved.is_none() {
            reply.error(if start {
                "ERR invalid start ID for the interval"
            } else {
                "ERR invalid end ID for the interval"
            });
        }
        return moved;
    }
    match parse_id(arg, missing, false) {
        Some(p) => Some(p.id),
        None => {
            reply.error(ERR_INVALID_ID);
            None
        }
    }
}

/// How XADD and XTRIM trim, as parsed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TrimArgs {
    pub how: Option<Trim>,
    pub approx: bool,
    pub limit: u64,
}

/// XADD's options before the ID.
struct AddArgs {
    trim: TrimArgs,
    nomkstream: bool,
    /// Index of the ID argument.
    id_at: usize,
    id: AddId,
}

/// Parses the options of XADD (`xadd`: from argument 2 up to the ID) or
/// XTRIM, with Redis's errors and its default LIMIT for `~`.
fn parse_trim_args(
    ctx: &Ctx,
    args: &Args,
    xadd: bool,
    reply: &mut Reply,
) -> Option<(TrimArgs, bool, usize, AddId)> {
    const BOTH: &str =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    let mut t = TrimArgs {
        how: None,
        approx: false,
        limit: 0,
    };
    let mut limit_given = false;
    let mut nomk = false;
    let mut id = AddId::Auto;
    let argc = args.len();
    let mut i = 2;
    while i < argc {
        let more = argc - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            break;
        } else if (eq_ic(opt, b"maxlen") || eq_ic(opt, b"minid")) && more > 0 {
            if t.how.is_some() {
                reply.error(BOTH);
                return None;
            }
            t.approx = false;
            let next = args.get(i + 1);
            if more >= 2 && (next == b"~" || next == b"=") {
                t.approx = next == b"~";
                i += 1;
            }
            let v = args.get(i + 1);
            if eq_ic(opt, b"maxlen") {
                let Some(n) = parse_i64_strict(v) else {
                    reply.error(NOT_INTEGER);
                    return None;
                };
                if n < 0 {
                    reply.error("ERR The MAXLEN argument must be >= 0.");
                    return None;
                }
                t.how = Some(Trim::MaxLen(n as u64));
            } else {
                t.how = Some(Trim::MinId(strict_id(v, 0, reply)?));
            }
            i += 2;
        } else if eq_ic(opt, b"limit") && more > 0 {
            let Some(n) = parse_i64_strict(args.get(i + 1)) else {
                reply.error(NOT_INTEGER);
                return None;
            };
            if n < 0 {
                reply.error("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            t.limit = n as u64;
            limit_given = true;
            i += 2;
        } else if xadd && eq_ic(opt, b"nomkstream") {
            nomk = true;
            i += 1;
        } else if xadd {
            match parse_add_id(opt) {
                Some(a) => {
                    id = a;
                    break;
                }
                None => {
                    reply.error(ERR_INVALID_ID);
                    return None;
                }
            }
        } else {
            reply.error(SYNTAX);
            return None;
        }
    }
    if t.limit > 0 && t.how.is_none() {
        reply
            .error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && t.how.is_none() {
        reply.error("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if limit_given {
        if !t.approx {
            reply.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
    } else if t.approx {
        let n = 100 * ctx.shard.config.stream_node_max_entries as u64;
        t.limit = if n == 0 || n > 1_000_000 { 10_000 } else { n };
    } else {
        t.limit = 0;
    }
    Some((t, nomk, i, id))
}

pub fn xadd(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some((trim, nomkstream, id_at, id)) = parse_trim_args(ctx, &args, true, reply) else {
        return;
    };
    let a = AddArgs {
        trim,
        nomkstream,
        id_at,
        id,
    };
    let fields = a.id_at + 1;
    let argc = args.len();
    if argc < fields + 2 || (argc - fields) % 2 == 1 {
        return reply.error(&super::arity_error("xadd"));
    }
    if a.id == AddId::Explicit(StreamId::MIN) {
        return reply.error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let lim = ctx.shard.config.stream_limits();
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let mut created = None;
    let s: &mut Stream = match stream_mut(db, key, now) {
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(s) => s,
        Found::Missing if a.nomkstream => return reply.null(),
        Found::Missing => created.insert(Stream::new()),
    };
    if s.last_id == StreamId::MAX {
        return reply
            .error("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let id =
        match s.next_id(a.id, now.max(0) as u64) {
            Ok(id) => id,
            Err(IdError::Zero) => {
                return reply.error("ERR The ID specified in XADD must be greater than 0-0")
            }
            Err(IdError::TooSmall) => return reply.error(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
        };
    let pairs = ArgPairs {
        args: &args,
        from: fields,
    };
    s.add(id, &pairs, lim);
    if let Some(how) = a.trim.how {
        s.trim(how, a.trim.approx, a.trim.limit);
    }
    reply_id(reply, id);
    if let Some(s) = created {
        ctx.db().insert(new_stream_entry(key, s, now), now);
    }
}

/// The field-value arguments of a request, as a stream takes them.
pub(crate) struct ArgPairs<'a, 'b> {
    pub args: &'a Args<'b>,
    pub from: usize,
}

impl crate::types::stream::Pairs for ArgPairs<'_, '_> {
    fn pairs(&self) -> usize {
        (self.args.len() - self.from) / 2
    }
    fn get(&self, i: usize) -> &[u8] {
        self.args.get(self.from + i)
    }
}

pub fn xlen(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    match stream_read(ctx, args.get(1), reply) {
        Err(()) => {}
        Ok(None) => reply.int(0),
        Ok(Some(s)) => reply.int(s.len() as i64),
    }
}

pub fn xdel(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let now = ctx.now;
    let key = args.get(1);
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in args.iter().skip(2) {
        let Some(id) = strict_id(a, 0, reply) else {
            return;
        };
        ids.push(id);
    }
    match stream_mut(ctx.db(), key, now) {
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Missing => reply.int(0),
        Found::Ok(s) => {
            let n = ids.into_iter().filter(|id| s.delete(*id)).count();
            reply.int(n as i64);
        }
    }
}

pub fn xtrim(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some((t, _, _, _)) = parse_trim_args(ctx, &args, false, reply) else {
        return;
    };
    let now = ctx.now;
    match stream_mut(ctx.db(), args.get(1), now) {
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Missing => reply.int(0),
        Found::Ok(s) => {
            let how = t.how.expect("XTRIM has a strategy");
            reply.int(s.trim(how, t.approx, t.limit) as i64)
        }
    }
}

pub fn xrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    range_generic(ctx, args, reply, false)
}

pub fn xrevrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    range_generic(ctx, args, reply, true)
}

fn range_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, rev: bool) {
    let (start_arg, end_arg) = if rev {
        (args.get(3), args.get(2))
    } else {
        (args.get(2), args.get(3))
    };
    let Some(start) = range_bound(start_arg, true, reply) else {
        return;
    };
    let Some(end) = range_bound(end_arg, false, reply) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if eq_ic(args.get(j), b"count") && j + 1 < args.len() {
            let Some(n) = parse_i64_strict(args.get(j + 1)) else {
                return reply.error(NOT_INTEGER);
            };
            count = n.max(0);
            j += 2;
        } else {
            return reply.error(SYNTAX);
        }
    }
    let s = match stream_read(ctx, args.get(1), reply) {
        Err(()) => return,
        Ok(None) => return reply.array(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return reply.null_array();
    }
    let max = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    reply_range(reply, s, start, end, rev, max);
}

/// Replies with up to `max` entries of `start..=end` as an array.
pub(crate) fn reply_range(
    reply: &mut Reply,
    s: &Stream,
    start: StreamId,
    end: StreamId,
    rev: bool,
    max: usize,
) {
    // The count is known once the range is walked: collect the entries
    // (references into the nodes, no copies) first.
    let mut found: Vec<EntryRef> = Vec::new();
    s.range(start, end, rev, |e| {
        found.push(e);
        found.len() < max
    });
    reply.array(found.len());
    for e in &found {
        reply_entry(reply, e);
    }
}
