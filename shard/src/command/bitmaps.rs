//! Bitmap commands (on string values): SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD, BITFIELD_RO.

use tessera_protocol::{Args, Reply};

use super::acl::{
    BITMAP as A_BITMAP, FAST as A_FAST, READ as A_READ, SLOW as A_SLOW, WRITE as A_WRITE,
};
use super::errors::*;
use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::table::{KEY1_R, KEY1_W};
use super::{CommandSpec, Ctx, KeySpec, Route, Split, Writes};
use crate::cmd;
use crate::store::{lru_clock, Db, Entry, ValueRef};
use crate::util::{eq_ic, parse_i64_strict};

const BITOP_KEYS: KeySpec = KeySpec::Range {
    first: 2,
    last: -1,
    step: 1,
    writes: Writes::First,
};

pub static COMMANDS: &[CommandSpec] = &[
    cmd!("setbit", 4, WRITE | DENYOOM, A_WRITE | A_BITMAP | A_SLOW, "bitmap", KEY1_W, Route::Keyed(setbit, Split::Gather),
        "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", "2.2.0", "O(1)"),
    cmd!("getbit", 3, READONLY | FAST, A_READ | A_BITMAP | A_FAST, "bitmap", KEY1_R, Route::Keyed(getbit, Split::Gather),
        "Returns a bit value by offset.", "2.2.0", "O(1)"),
    cmd!("bitcount", -2, READONLY, A_READ | A_BITMAP | A_SLOW, "bitmap", KEY1_R, Route::Keyed(bitcount, Split::Gather),
        "Counts the number of set bits (population counting) in a string.", "2.6.0", "O(N)"),
    cmd!("bitpos", -3, READONLY, A_READ | A_BITMAP | A_SLOW, "bitmap", KEY1_R, Route::Keyed(bitpos, Split::Gather),
        "Finds the first set (1) or clear (0) bit in a string.", "2.8.7", "O(N)"),
    cmd!("bitop", -4, WRITE | DENYOOM, A_WRITE | A_BITMAP | A_SLOW, "bitmap", BITOP_KEYS, Route::Keyed(bitop, Split::Gather),
        "Performs bitwise operations on multiple strings, and stores the result.", "2.6.0", "O(N)"),
    cmd!("bitfield", -2, WRITE | DENYOOM, A_WRITE | A_BITMAP | A_SLOW, "bitmap", KEY1_W, Route::Keyed(bitfield, Split::Gather),
        "Performs arbitrary bitfield integer operations on strings.", "3.2.0",
        "O(1) for each subcommand specified"),
    cmd!("bitfield_ro", -2, READONLY | FAST, A_READ | A_BITMAP | A_FAST, "bitmap", KEY1_R, Route::Keyed(bitfield_ro, Split::Gather),
        "Performs arbitrary read-only bitfield integer operations on strings.", "6.0.0",
        "O(1) for each subcommand specified"),
];

const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";
const ERR_BITFIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Redis's getBitOffsetFromArgument: `#N` (times `bits`) when `hash`.
fn bit_offset(arg: &[u8], hash: bool, bits: u32, max_bulk: usize) -> Option<u64> {
    let use_hash = hash && bits > 0 && arg.first() == Some(&b'#');
    let mut v = parse_i64_strict(if use_hash { &arg[1..] } else { arg })?;
    if use_hash {
        v = v.checked_mul(bits as i64)?;
    }
    if v < 0 || (v as u64 >> 3) >= max_bulk as u64 {
        return None;
    }
    Some(v as u64)
}

/// Reads a string key (hits/misses counted): Ok(None) when missing, Err
/// after WRONGTYPE.
fn read_str<'c>(ctx: &'c mut Ctx, key: &[u8], reply: &mut Reply) -> Result<Option<&'c [u8]>, ()> {
    super::strings::read_string(ctx, key, reply)
}

/// The key's string as a growable buffer at least `min_len` long (created
/// when missing), for bit writes. None when the key holds another type.
pub fn string_for_write<'a>(
    db: &'a mut Db,
    key: &[u8],
    min_len: usize,
    now: i64,
) -> Option<&'a mut Vec<u8>> {
    let exists = match db.get(key, now) {
        Some(e) => {
            if !e.is_string() {
                return None;
            }
            true
        }
        None => false,
    };
    if !exists {
        db.insert(Entry::new_string(key, b"", None, lru_clock(now)), now);
    }
    let buf = db.get(key, now)?.string_buf_mut()?;
    if buf.len() < min_len {
        buf.resize(min_len, 0);
    }
    Some(buf)
}

pub fn setbit(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let max = ctx.shard.config.proto_max_bulk_len;
    let Some(off) = bit_offset(args.get(2), false, 0, max) else {
        return reply.error(ERR_BIT_OFFSET);
    };
    let on = match parse_i64_strict(args.get(3)) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return reply.error(ERR_BIT_VALUE),
    };
    let now = ctx.now;
    let byte = (off >> 3) as usize;
    let Some(buf) = string_for_write(ctx.db(), args.get(1), byte + 1, now) else {
        return reply.error(WRONGTYPE);
    };
    let bit = 7 - (off & 7) as u8;
    let old = (buf[byte] >> bit) & 1;
    buf[byte] = (buf[byte] & !(1 << bit)) | (on << bit);
    reply.int(old as i64);
}

pub fn getbit(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let max = ctx.shard.config.proto_max_bulk_len;
    let Some(off) = bit_offset(args.get(2), false, 0, max) else {
        return reply.error(ERR_BIT_OFFSET);
    };
    if let Ok(s) = read_str(ctx, args.get(1), reply) {
        let s = s.unwrap_or_default();
        let byte = (off >> 3) as usize;
        let v = s.get(byte).map_or(0, |b| (b >> (7 - (off & 7))) & 1);
        reply.int(v as i64);
    }
}

fn popcount(s: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().expect("8")).count_ones() as u64;
    }
    for b in chunks.remainder() {
        n += b.count_ones() as u64;
    }
    n
}

/// Parses BYTE|BIT; None after a syntax error reply.
fn unit_is_bit(a: &[u8], reply: &mut Reply) -> Option<bool> {
    if eq_ic(a, b"bit") {
        Some(true)
    } else if eq_ic(a, b"byte") {
        Some(false)
    } else {
        reply.error(SYNTAX);
        None
    }
}

pub fn bitcount(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let argc = args.len();
    let Ok(s) = read_str(ctx, args.get(1), reply) else {
        return;
    };
    let Some(s) = s else {
        return reply.int(0);
    };
    let (start, end, isbit) = match argc {
        2 => {
            return reply.int(popcount(s) as i64);
        }
        4 | 5 => {
            let (Some(st), Some(en)) =
                (parse_i64_strict(args.get(2)), parse_i64_strict(args.get(3)))
            else {
                return reply.error(NOT_INTEGER);
            };
            let isbit = if argc == 5 {
                match unit_is_bit(args.get(4), reply) {
                    Some(b) => b,
                    None => return,
                }
            } else {
                false
            };
            (st, en, isbit)
        }
        _ => return reply.error(SYNTAX),
    };
    if start < 0 && end < 0 && start > end {
        return reply.int(0);
    }
    let total = if isbit {
        s.len() as i64 * 8
    } else {
        s.len() as i64
    };
    let mut st = if start < 0 { total + start } else { start };
    let mut en = if end < 0 { total + end } else { end };
    st = st.max(0);
    en = en.max(0);
    if en >= total {
        en = total - 1;
    }
    if st > en {
        return reply.int(0);
    }
    if !isbit {
        return reply.int(popcount(&s[st as usize..=en as usize]) as i64);
    }
    let (sb, eb) = ((st >> 3) as usize, (en >> 3) as usize);
    let mut n = popcount(&s[sb..=eb]) as i64;
    // Bits of the first byte before `st`, and of the last after `en`.
    let first_mask: u8 = !(0xffu16 >> (st & 7)) as u8;
    let last_mask: u8 = ((1u16 << (7 - (en & 7))) - 1) as u8;
    n -= (s[sb] & first_mask).count_ones() as i64;
    n -= (s[eb] & last_mask).count_ones() as i64;
    reply.int(n);
}

pub fn bitpos(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    let argc = args.len();
    let bit = match parse_i64_strict(args.get(2)) {
        None => return reply.error(NOT_INTEGER),
        Some(b @ (0 | 1)) => b as u8,
        Some(_) => return reply.error("ERR The bit argument must be 1 or 0."),
    };
    let Ok(s) = read_str(ctx, args.get(1), reply) else {
        return;
    };
    let Some(s) = s else {
        return reply.int(if bit == 1 { -1 } else { 0 });
    };
    let mut isbit = false;
    let mut end_given = false;
    let (start, end) = match argc {
        3 => (0i64, s.len() as i64 - 1),
        4..=6 => {
            let Some(st) = parse_i64_strict(args.get(3)) else {
                return reply.error(NOT_INTEGER);
            };
            if argc == 6 {
                match unit_is_bit(args.get(5), reply) {
                    Some(b) => isbit = b,
                    None => return,
                }
            }
            let total = if isbit {
                s.len() as i64 * 8
            } else {
                s.len() as i64
            };
            let en = if argc >= 5 {
                end_given = true;
                match parse_i64_strict(args.get(4)) {
                    Some(e) => e,
                    None => return reply.error(NOT_INTEGER),
                }
            } else {
                total - 1
            };
            let mut st = if st < 0 { total + st } else { st };
            let mut en = if en < 0 { total + en } else { en };
            st = st.max(0);
            en = en.max(0);
            if en >= total {
                en = total - 1;
            }
            (st, en)
        }
        _ => return reply.error(SYNTAX),
    };
    if start > end {
        return reply.int(-1);
    }
    // Bit range [from, to] to search.
    let (from, to) = if isbit {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    };
    let mut i = from;
    while i <= to {
        // Whole bytes at a time when aligned.
        if i & 7 == 0 && i + 7 <= to {
            let b = s[(i >> 3) as usize];
            let skip = if bit == 1 { b == 0 } else { b == 0xff };
            if skip {
                i += 8;
                continue;
            }
        }
        let b = s[(i >> 3) as usize];
        if (b >> (7 - (i & 7))) & 1 == bit {
            return reply.int(i as i64);
        }
        i += 1;
    }
    // Not found: clear bits continue past the end of the string unless the
    // caller bounded the range.
    if bit == 0 && !end_given {
        return reply.int(((to >> 3) + 1) as i64 * 8);
    }
    reply.int(-1);
}

pub fn bitop(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    #[derive(PartialEq, Clone, Copy)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match args.get(1) {
        a if eq_ic(a, b"and") => Op::And,
        a if eq_ic(a, b"or") => Op::Or,
        a if eq_ic(a, b"xor") => Op::Xor,
        a if eq_ic(a, b"not") => Op::Not,
        _ => return reply.error(SYNTAX),
    };
    if op == Op::Not && args.len() != 4 {
        return reply.error("ERR BITOP NOT must be called with a single source key.");
    }
    let now = ctx.now;
    let db = ctx.db();
    let mut srcs: Vec<Vec<u8>> = Vec::with_capacity(args.len() - 3);
    for k in args.iter().skip(3) {
        match db.get(k, now) {
            None => srcs.push(Vec::new()),
            Some(e) => match e.value() {
                ValueRef::Str(s) => srcs.push(s.to_vec()),
                ValueRef::Obj(_) => return reply.error(WRONGTYPE),
            },
        }
    }
    let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    if maxlen > 0 {
        match op {
            Op::Not => {
                for (r, b) in res.iter_mut().zip(&srcs[0]) {
                    *r = !b;
                }
            }
            _ => {
                res[..srcs[0].len()].copy_from_slice(&srcs[0]);
                for s in &srcs[1..] {
                    for (i, r) in res.iter_mut().enumerate() {
                        let b = s.get(i).copied().unwrap_or(0);
                        match op {
                            Op::And => *r &= b,
                            Op::Or => *r |= b,
                            Op::Xor => *r ^= b,
                            Op::Not => unreachable!(),
                        }
                    }
                }
                if op == Op::And && srcs.len() > 1 {
                    // Bytes past a shorter source are ANDed with zero.
                    let minlen = srcs.iter().map(|s| s.len()).min().unwrap_or(0);
                    for r in &mut res[minlen..] {
                        *r = 0;
                    }
                }
            }
        }
    }
    let dest = args.get(2);
    if maxlen > 0 {
        db.remove(dest, now);
        db.insert(Entry::new_string(dest, &res, None, lru_clock(now)), now);
    } else {
        db.remove(dest, now);
    }
    reply.int(maxlen as i64);
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set,
    Incr,
}

struct BfOp {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

fn bitfield_type(a: &[u8]) -> Option<(bool, u32)> {
    let signed = match a.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return None,
    };
    let bits = parse_i64_strict(&a[1..])?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return None;
    }
    Some((signed, bits as u32))
}

fn get_unsigned(buf: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        let pos = offset + j;
        let byte = buf.get((pos >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | ((byte >> (7 - (pos & 7))) & 1) as u64;
    }
    v
}

fn get_signed(buf: &[u8], offset: u64, bits: u32) -> i64 {
    let u = get_unsigned(buf, offset, bits);
    if bits < 64 && u & (1u64 << (bits - 1)) != 0 {
        (u | (u64::MAX << bits)) as i64
    } else {
        u as i64
    }
}

fn set_unsigned(buf: &mut [u8], offset: u64, bits: u32, v: u64) {
    for j in 0..bits as u64 {
        let bitval = (v >> (bits as u64 - 1 - j)) & 1;
        let pos = offset + j;
        let byte = &mut buf[(pos >> 3) as usize];
        let b = 7 - (pos & 7);
        *byte = (*byte & !(1 << b)) | ((bitval as u8) << b);
    }
}

/// Redis's checkSignedBitfieldOverflow: (direction, wrapped/saturated value).
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, i64) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min: i64 = -max - 1;
    let maxincr = max.wrapping_sub(value);
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        return (1, if ow == Overflow::Wrap { wrap() } else { max });
    }
    if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        return (-1, if ow == Overflow::Wrap { wrap() } else { min });
    }
    (0, 0)
}

/// Redis's checkUnsignedBitfieldOverflow.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, u64) {
    let max: u64 = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        return (1, if ow == Overflow::Wrap { wrap() } else { max });
    }
    if incr < 0 && incr < minincr {
        return (-1, if ow == Overflow::Wrap { wrap() } else { 0 });
    }
    (0, 0)
}

fn bitfield_generic(ctx: &mut Ctx, args: Args, reply: &mut Reply, ro: bool) {
    let max_bulk = ctx.shard.config.proto_max_bulk_len;
    let mut ops: Vec<BfOp> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest: u64 = 0;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = args.get(j);
        let op = if eq_ic(sub, b"get") && rem >= 2 {
            FieldOp::Get
        } else if eq_ic(sub, b"set") && rem >= 3 {
            FieldOp::Set
        } else if eq_ic(sub, b"incrby") && rem >= 3 {
            FieldOp::Incr
        } else if eq_ic(sub, b"overflow") && rem >= 1 {
            j += 1;
            let t = args.get(j);
            overflow = if eq_ic(t, b"wrap") {
                Overflow::Wrap
            } else if eq_ic(t, b"sat") {
                Overflow::Sat
            } else if eq_ic(t, b"fail") {
                Overflow::Fail
            } else {
                return reply.error("ERR Invalid OVERFLOW type specified");
            };
            j += 1;
            continue;
        } else {
            return reply.error(SYNTAX);
        };
        let Some((signed, bits)) = bitfield_type(args.get(j + 1)) else {
            return reply.error(ERR_BITFIELD_TYPE);
        };
        let Some(offset) = bit_offset(args.get(j + 2), true, bits, max_bulk) else {
            return reply.error(ERR_BIT_OFFSET);
        };
        let mut value = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + bits as u64 - 1);
            match parse_i64_strict(args.get(j + 3)) {
                Some(v) => value = v,
                None => return reply.error(NOT_INTEGER),
            }
        }
        ops.push(BfOp {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    let now = ctx.now;
    let key = args.get(1);
    if readonly {
        let Ok(s) = read_str(ctx, key, reply) else {
            return;
        };
        let s = s.unwrap_or_default();
        reply.array(ops.len());
        for o in &ops {
            if o.signed {
                reply.int(get_signed(s, o.offset, o.bits));
            } else {
                reply.int(get_unsigned(s, o.offset, o.bits) as i64);
            }
        }
        return;
    }
    if ro {
        return reply.error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let Some(buf) = string_for_write(ctx.db(), key, (highest >> 3) as usize + 1, now) else {
        return reply.error(WRONGTYPE);
    };
    reply.array(ops.len());
    for o in &ops {
        match o.op {
            FieldOp::Get => {
                if o.signed {
                    reply.int(get_signed(buf, o.offset, o.bits));
                } else {
                    reply.int(get_unsigned(buf, o.offset, o.bits) as i64);
                }
            }
            _ if o.signed => {
                let old = get_signed(buf, o.offset, o.bits);
                let (mut new, incr_in, base) = if o.op == FieldOp::Incr {
                    (old.wrapping_add(o.value), o.value, old)
                } else {
                    (o.value, 0, o.value)
                };
                let (of, lim) = signed_overflow(base, incr_in, o.bits, o.overflow);
                if of != 0 {
                    new = lim;
                }
                if of != 0 && o.overflow == Overflow::Fail {
                    reply.null();
                } else {
                    reply.int(if o.op == FieldOp::Incr { new } else { old });
                    set_unsigned(buf, o.offset, o.bits, new as u64);
                }
            }
            _ => {
                let old = get_unsigned(buf, o.offset, o.bits);
                let (mut new, incr_in, base) = if o.op == FieldOp::Incr {
                    (old.wrapping_add(o.value as u64), o.value, old)
                } else {
                    (o.value as u64, 0, o.value as u64)
                };
                let (of, lim) = unsigned_overflow(base, incr_in, o.bits, o.overflow);
                if of != 0 {
                    new = lim;
                }
                if of != 0 && o.overflow == Overflow::Fail {
                    reply.null();
                } else {
                    reply.int(if o.op == FieldOp::Incr {
                        new as i64
                    } else {
                        old as i64
                    });
                    set_unsigned(buf, o.offset, o.bits, new);
                }
            }
        }
    }
}

pub fn bitfield(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    bitfield_generic(ctx, args, reply, false)
}

pub fn bitfield_ro(ctx: &mut Ctx, args: Args, reply: &mut Reply) {
    bitfield_generic(ctx, args, reply, true)
}
