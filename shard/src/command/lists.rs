//! List commands.

use tessera_protocol::{Args, Reply};

use super::acl::{
    FAST as A_FAST, LIST as A_LIST, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::table::{KEY12_W, KEY1_R, KEY1_W};
use super::{CommandSpec, Ctx, KeyPos, KeySpec, Route, Split};
use crate::cmd;
use crate::store::{lru_clock, Db, Entry, Object};
use crate::types::list::{List, NodeLimit};
use crate::util::{eq_ic, parse_i64_strict};

const LMPOP_KEYS: KeySpec = KeySpec::Custom {
    legacy: (0, 0, 0),
    find: numkeys_at_1,
};

const W_FAST: u32 = A_WRITE | A_LIST | A_FAST;
const W_SLOW: u32 = A_WRITE | A_LIST | A_SLOW;
const R_FAST: u32 = A_READ | A_LIST | A_FAST;
const R_SLOW: u32 = A_READ | A_LIST | A_SLOW;

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("lpush", -3, WRITE | DENYOOM | FAST, W_FAST, "list", KEY1_W, Route::Keyed(lpush, Split::Gather),
        "Prepends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    cmd!("rpush", -3, WRITE | DENYOOM | FAST, W_FAST, "list", KEY1_W, Route::Keyed(rpush, Split::Gather),
        "Appends one or more elements to a list. Creates the key if it doesn't exist.", "1.0.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    cmd!("lpushx", -3, WRITE | DENYOOM | FAST, W_FAST, "list", KEY1_W, Route::Keyed(lpushx, Split::Gather),
        "Prepends one or more elements to a list only when the list exists.", "2.2.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    cmd!("rpushx", -3, WRITE | DENYOOM | FAST, W_FAST, "list", KEY1_W, Route::Keyed(rpushx, Split::Gather),
        "Appends an element to a list only when the list exists.", "2.2.0",
        "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments."),
    cmd!("lpop", -2, WRITE | FAST, W_FAST, "list", KEY1_W, Route::Keyed(lpop, Split::Gather),
        "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.",
        "1.0.0", "O(N) where N is the number of elements returned"),
    cmd!("rpop", -2, WRITE | FAST, W_FAST, "list", KEY1_W, Route::Keyed(rpop, Split::Gather),
        "Returns and removes the last elements of a list. Deletes the list if the last element was popped.",
        "1.0.0", "O(N) where N is the number of elements returned"),
    cmd!("llen", 2, READONLY | FAST, R_FAST, "list", KEY1_R, Route::Keyed(llen, Split::Gather),
        "Returns the length of a list.", "1.0.0", "O(1)"),
    cmd!("lrange", 4, READONLY, R_SLOW, "list", KEY1_R, Route::Keyed(lrange, Split::Gather),
        "Returns a range of elements from a list.", "1.0.0",
        "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range."),
    cmd!("lindex", 3, READONLY, R_SLOW, "list", KEY1_R, Route::Keyed(lindex, Split::Gather),
        "Returns an element from a list by its index.", "1.0.0",
        "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1)."),
    cmd!("lset", 4, WRITE | DENYOOM, W_SLOW, "list", KEY1_W, Route::Keyed(lset, Split::Gather),
        "Sets the value of an element in a list by its index.", "1.0.0",
        "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1)."),
    cmd!("linsert", 5, WRITE | DENYOOM, W_SLOW, "list", KEY1_W, Route::Keyed(linsert, Split::Gather),
        "Inserts an element before or after another element in a list.", "2.2.0",
        "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N)."),
    cmd!("lrem", 4, WRITE, W_SLOW, "list", KEY1_W, Route::Keyed(lrem, Split::Gather),
        "Removes elements from a list. Deletes the list if the last element was removed.", "1.0.0",
        "O(N+M) where N is the length of the list and M is the number of elements removed."),
    cmd!("ltrim", 4, WRITE, W_SLOW, "list", KEY1_W, Route::Keyed(ltrim, Split::Gather),
        "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", "1.0.0",
        "O(N) where N is the number of elements to be removed by the operation."),
    cmd!("lpos", -3, READONLY, R_SLOW, "list", KEY1_R, Route::Keyed(lpos, Split::Gather),
        "Returns the index of matching elements in a list.", "6.0.6",
        "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time."),
    cmd!("lmove", 5, WRITE | DENYOOM, W_SLOW, "list", KEY12_W, Route::Keyed(lmove, Split::Gather),
        "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.",
        "6.2.0", "O(1)"),
    cmd!("rpoplpush", 3, WRITE | DENYOOM, W_SLOW, "list", KEY12_W, Route::Keyed(rpoplpush, Split::Gather),
        "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.",
        "1.2.0", "O(1)"),
    cmd!("lmpop", -4, WRITE, W_SLOW, "list", LMPOP_KEYS, Route::Keyed(lmpop, Split::Gather),
        "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.",
        "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned."),
];

pub const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";

/// Keys of `CMD numkeys key... rest` (LMPOP and friends): all written.
pub fn numkeys_at_1(args: &Args, out: &mut Vec<KeyPos>) -> Result<(), &'static str> {
    numkeys_keys(args, 1, true, out)
}

/// Keys after a numkeys argument at `at`; also checks that the keys and at
/// least one more argument fit, as the handlers do.
pub fn numkeys_keys(
    args: &Args,
    at: usize,
    write: bool,
    out: &mut Vec<KeyPos>,
) -> Result<(), &'static str> {
    let n = match parse_i64_strict(args.get(at)) {
        Some(n) if n > 0 => n as u64,
        _ => return Err(ERR_NUMKEYS),
    };
    if (at as u64) + n + 1 >= args.len() as u64 {
        return Err(SYNTAX);
    }
    for i in 0..n as usize {
        out.push(KeyPos {
            index: at + 1 + i,
            write,
        });
    }
    Ok(())
}

pub(crate) use super::typed::Found;

pub(crate) fn list_mut<'a>(db: &'a mut Db, key: &[u8], now: i64) -> Found<'a, List> {
    super::typed::typed_mut(db, key, now)
}

fn list_read<'c>(ctx: &'c mut Ctx, key: &[u8], reply: &mut Reply) -> Result<Option<&'c List>, ()> {
    super::typed::typed_read(ctx, key, reply)
}

#[inline]
fn limit(ctx: &Ctx) -> NodeLimit {
    NodeLimit(ctx.shard.config.list_max_listpack_size)
}

fn new_list_entry(key: &[u8], l: List, now: i64) -> Entry {
    Entry::new_object(key, Object::List(l), None, lru_clock(now))
}

fn push_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, front: bool, xx: bool) {
    let lim = limit(ctx);
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let push = |l: &mut List| {
        for v in args.iter().skip(2) {
            if front {
                l.push_front(v, lim);
            } else {
                l.push_back(v, lim);
            }
        }
        l.len()
    };
    match list_mut(db, key, now) {
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Ok(l) => reply.int(push(l) as i64),
        Found::Missing if xx => reply.int(0),
        Found::Missing => {
            let mut l = List::new();
            let n = push(&mut l);
            db.insert(new_list_entry(key, l, now), now);
            reply.int(n as i64);
        }
    }
}

pub fn lpush(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    push_generic(ctx, args, reply, true, false)
}
pub fn rpush(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    push_generic(ctx, args, reply, false, false)
}
pub fn lpushx(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    push_generic(ctx, args, reply, true, true)
}
pub fn rpushx(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    push_generic(ctx, args, reply, false, true)
}

/// Pops up to `count` elements from one end, replying with them as an array.
fn pop_into_reply(l: &mut List, front: bool, count: usize, reply: &mut Reply) {
    let n = count.min(l.len());
    reply.array(n);
    for _ in 0..n {
        let v = if front { l.pop_front() } else { l.pop_back() };
        reply.bulk(&v.unwrap_or_default());
    }
}

fn pop_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, front: bool) {
    let name = if front { "lpop" } else { "rpop" };
    if args.len() > 3 {
        return reply.error(&super::arity_error(name));
    }
    let count = if args.len() == 3 {
        match parse_i64_strict(args.get(2)) {
            Some(c) if c >= 0 => Some(c as usize),
            _ => return reply.error("ERR value is out of range, must be positive"),
        }
    } else {
        None
    };
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let empty = match list_mut(db, key, now) {
        Found::Missing => {
            if count.is_some() {
                reply.null_array();
            } else {
                reply.null();
            }
            return;
        }
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(l) => {
            match count {
                Some(0) => return reply.array(0),
                Some(c) => pop_into_reply(l, front, c, reply),
                None => {
                    let v = if front { l.pop_front() } else { l.pop_back() };
                    reply.bulk(&v.unwrap_or_default());
                }
            }
            l.is_empty()
        }
    };
    if empty {
        db.remove(key, now);
    }
}

pub fn lpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    pop_generic(ctx, args, reply, true)
}
pub fn rpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    pop_generic(ctx, args, reply, false)
}

pub fn llen(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if let Ok(l) = list_read(ctx, args.get(1), reply) {
        reply.int(l.map_or(0, |l| l.len()) as i64);
    }
}

/// Redis's range normalisation (LRANGE, LTRIM): None = empty range.
fn norm_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}

pub fn lrange(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (Some(start), Some(end)) = (parse_i64_strict(args.get(2)), parse_i64_strict(args.get(3)))
    else {
        return reply.error(NOT_INTEGER);
    };
    let Ok(l) = list_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(l) = l else {
        return reply.array(0);
    };
    match norm_range(start, end, l.len()) {
        None => reply.array(0),
        Some((s, e)) => {
            let n = e - s + 1;
            reply.array(n);
            for v in l.iter_from(s).take(n) {
                reply.bulk(v);
            }
        }
    }
}

pub fn lindex(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(index) = parse_i64_strict(args.get(2)) else {
        return reply.error(NOT_INTEGER);
    };
    if let Ok(l) = list_read(ctx, args.get(1), reply) {
        match l.and_then(|l| l.get(index)) {
            Some(v) => reply.bulk(v),
            None => reply.null(),
        }
    }
}

pub fn lset(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(index) = parse_i64_strict(args.get(2)) else {
        return reply.error(NOT_INTEGER);
    };
    let lim = limit(ctx);
    let now = ctx.now;
    match list_mut(ctx.db(), args.get(1), now) {
        Found::Missing => reply.error(NO_SUCH_KEY),
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Ok(l) => {
            if l.set(index, args.get(3), lim) {
                reply.ok()
            } else {
                reply.error("ERR index out of range")
            }
        }
    }
}

pub fn linsert(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let after = if eq_ic(args.get(2), b"after") {
        true
    } else if eq_ic(args.get(2), b"before") {
        false
    } else {
        return reply.error(SYNTAX);
    };
    let lim = limit(ctx);
    let now = ctx.now;
    match list_mut(ctx.db(), args.get(1), now) {
        Found::Missing => reply.int(0),
        Found::Wrong => reply.error(WRONGTYPE),
        Found::Ok(l) => {
            if l.insert(args.get(3), after, args.get(4), lim) {
                reply.int(l.len() as i64)
            } else {
                reply.int(-1)
            }
        }
    }
}

pub fn lrem(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let Some(count) = parse_i64_strict(args.get(2)) else {
        return reply.error(NOT_INTEGER);
    };
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let empty = match list_mut(db, key, now) {
        Found::Missing => return reply.int(0),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(l) => {
            reply.int(l.remove(count, args.get(3)) as i64);
            l.is_empty()
        }
    };
    if empty {
        db.remove(key, now);
    }
}

pub fn ltrim(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (Some(start), Some(end)) = (parse_i64_strict(args.get(2)), parse_i64_strict(args.get(3)))
    else {
        return reply.error(NOT_INTEGER);
    };
    let now = ctx.now;
    let key = args.get(1);
    let db = ctx.db();
    let empty = match list_mut(db, key, now) {
        Found::Missing => return reply.ok(),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(l) => {
            match norm_range(start, end, l.len()) {
                None => l.trim(1, 0),
                Some((s, e)) => l.trim(s, e),
            }
            l.is_empty()
        }
    };
    if empty {
        db.remove(key, now);
    }
    reply.ok();
}

/// Parses a non-negative option value: `msg` for both non-integers and
/// negatives (Redis's getPositiveLongFromObjectOrReply with a message).
fn positive(arg: &[u8], msg: &str, reply: &mut Reply) -> Option<i64> {
    match parse_i64_strict(arg) {
        Some(v) if v >= 0 => Some(v),
        _ => {
            reply.error(msg);
            None
        }
    }
}

pub fn lpos(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let mut rank: i64 = 1;
    let mut count: i64 = -1;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = j + 1 < args.len();
        if eq_ic(opt, b"rank") && more {
            j += 1;
            match parse_i64_strict(args.get(j)) {
                None => return reply.error(NOT_INTEGER),
                Some(0) => return reply.error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ),
                Some(r) => rank = r,
            }
        } else if eq_ic(opt, b"count") && more {
            j += 1;
            match positive(args.get(j), "ERR COUNT can't be negative", reply) {
                Some(c) => count = c,
                None => return,
            }
        } else if eq_ic(opt, b"maxlen") && more {
            j += 1;
            match positive(args.get(j), "ERR MAXLEN can't be negative", reply) {
                Some(m) => maxlen = m,
                None => return,
            }
        } else {
            return reply.error(SYNTAX);
        }
        j += 1;
    }
    let Ok(l) = list_read(ctx, args.get(1), reply) else {
        return;
    };
    let Some(l) = l else {
        if count != -1 {
            reply.array(0);
        } else {
            reply.null();
        }
        return;
    };
    let ele = args.get(2);
    let want = if count == -1 { 1 } else { count as u64 };
    // Redis negates the rank in a C long: LONG_MIN stays negative and then
    // counts every match from the tail.
    let mut skip = if rank == i64::MIN {
        0
    } else {
        rank.unsigned_abs() - 1
    };
    let mut found: Vec<i64> = Vec::new();
    let len = l.len() as i64;
    let scan_max = if maxlen == 0 { u64::MAX } else { maxlen as u64 };
    let mut visit = |i: i64, v: &[u8], found: &mut Vec<i64>| -> bool {
        if v == ele {
            if skip > 0 {
                skip -= 1;
            } else {
                found.push(i);
                if want != 0 && found.len() as u64 >= want {
                    return false;
                }
            }
        }
        true
    };
    if rank > 0 {
        for (k, v) in l.iter().enumerate() {
            if k as u64 >= scan_max || !visit(k as i64, v, &mut found) {
                break;
            }
        }
    } else {
        for (k, v) in l.iter().rev().enumerate() {
            if k as u64 >= scan_max || !visit(len - 1 - k as i64, v, &mut found) {
                break;
            }
        }
    }
    if count != -1 {
        reply.array(found.len());
        for i in found {
            reply.int(i);
        }
    } else {
        match found.first() {
            Some(&i) => reply.int(i),
            None => reply.null(),
        }
    }
}

/// LEFT -> true (head), RIGHT -> false.
pub(crate) fn parse_where(a: &[u8]) -> Option<bool> {
    if eq_ic(a, b"left") {
        Some(true)
    } else if eq_ic(a, b"right") {
        Some(false)
    } else {
        None
    }
}

pub(crate) fn move_generic(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    reply: &mut Reply,
) {
    let lim = limit(ctx);
    let now = ctx.now;
    let db = ctx.db();
    if src == dst {
        match list_mut(db, src, now) {
            Found::Missing => reply.null(),
            Found::Wrong => reply.error(WRONGTYPE),
            Found::Ok(l) => {
                let v = if from_left {
                    l.pop_front()
                } else {
                    l.pop_back()
                }
                .unwrap_or_default();
                if to_left {
                    l.push_front(&v, lim)
                } else {
                    l.push_back(&v, lim)
                }
                reply.bulk(&v);
            }
        }
        return;
    }
    match list_mut(db, src, now) {
        Found::Missing => return reply.null(),
        Found::Wrong => return reply.error(WRONGTYPE),
        Found::Ok(_) => {}
    }
    if let Found::Wrong = list_mut(db, dst, now) {
        return reply.error(WRONGTYPE);
    }
    let (v, empty) = match list_mut(db, src, now) {
        Found::Ok(l) => {
            let v = if from_left {
                l.pop_front()
            } else {
                l.pop_back()
            }
            .unwrap_or_default();
            (v, l.is_empty())
        }
        _ => unreachable!("checked above"),
    };
    if empty {
        db.remove(src, now);
    }
    let push = |l: &mut List| {
        if to_left {
            l.push_front(&v, lim)
        } else {
            l.push_back(&v, lim)
        }
    };
    match list_mut(db, dst, now) {
        Found::Ok(l) => push(l),
        _ => {
            let mut l = List::new();
            push(&mut l);
            db.insert(new_list_entry(dst, l, now), now);
        }
    }
    reply.bulk(&v);
}

pub fn lmove(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let (Some(from), Some(to)) = (parse_where(args.get(3)), parse_where(args.get(4))) else {
        return reply.error(SYNTAX);
    };
    move_generic(ctx, args.get(1), args.get(2), from, to, reply)
}

pub fn rpoplpush(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    move_generic(ctx, args.get(1), args.get(2), false, true, reply)
}

/// Parses `numkeys key... where [COUNT n]` from argument `at`: (numkeys,
/// direction, count). Replies with Redis's error on failure.
fn parse_mpop(args: &Args, at: usize, reply: &mut Reply) -> Option<(usize, bool, usize)> {
    let numkeys = match parse_i64_strict(args.get(at)) {
        Some(n) if n > 0 => n as u64,
        _ => {
            reply.error(ERR_NUMKEYS);
            return None;
        }
    };
    let where_idx = at as u64 + numkeys + 1;
    if where_idx >= args.len() as u64 {
        reply.error(SYNTAX);
        return None;
    }
    let where_idx = where_idx as usize;
    let Some(left) = parse_where(args.get(where_idx)) else {
        reply.error(SYNTAX);
        return None;
    };
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && eq_ic(args.get(j), b"count") && j + 1 < args.len() {
            j += 1;
            match parse_i64_strict(args.get(j)) {
                Some(c) if c > 0 => count = Some(c as usize),
                _ => {
                    reply.error("ERR count should be greater than 0");
                    return None;
                }
            }
        } else {
            reply.error(SYNTAX);
            return None;
        }
        j += 1;
    }
    Some((numkeys as usize, left, count.unwrap_or(1)))
}

pub fn lmpop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    if lmpop_at(ctx, &args, 1, reply) == Popped::Nothing {
        reply.null_array();
    }
}

/// What a pop from the first non-empty of several keys did.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum Popped {
    /// Replied: elements, or an error.
    Replied,
    /// Every key is missing; nothing was replied.
    Nothing,
}

/// LMPOP's work with `numkeys` at argument `at` (1 for LMPOP, 2 for
/// BLMPOP, after its timeout).
pub(crate) fn lmpop_at(ctx: &mut Ctx, args: &Args, at: usize, reply: &mut Reply) -> Popped {
    let Some((numkeys, left, count)) = parse_mpop(args, at, reply) else {
        return Popped::Replied;
    };
    let now = ctx.now;
    let db = ctx.db();
    for i in 0..numkeys {
        let key = args.get(at + 1 + i);
        let empty = match list_mut(db, key, now) {
            Found::Missing => continue,
            Found::Wrong => {
                reply.error(WRONGTYPE);
                return Popped::Replied;
            }
            Found::Ok(l) => {
                reply.array(2);
                reply.bulk(key);
                pop_into_reply(l, left, count, reply);
                l.is_empty()
            }
        };
        if empty {
            db.remove(key, now);
        }
        return Popped::Replied;
    }
    Popped::Nothing
}
