//! `cmsgpack`: lua_cmsgpack 0.4.0 as bundled with Redis.
//!
//! `pack(v1, ...)` concatenates the encodings of its arguments; `unpack(s)`
//! returns every value in `s`; `unpack_one(s [,offset])` and
//! `unpack_limit(s, limit [,offset])` return the next offset (-1 at the end)
//! followed by at most `limit` values.
//!
//! Encoding follows the original's choices: a number that is an exact int64
//! is an integer in its smallest msgpack form, any other number a float 32
//! if that is exact, else a float 64; a table whose keys are exactly 1..n is
//! an array, anything else a map (in `next` order); tables nested deeper
//! than 16 levels, and functions, userdata and threads, encode as nil.
//! Decoding knows the types the original knows (no bin, no ext: those are
//! "Bad data format in input.").

use super::raw::{
    c_double_to_i32, c_double_to_i64, check_bytes, check_integer, lua_cfn, opt_integer, push_bytes,
    set_funcs, LuaError, LuaResult,
};
use super::scratch;
use mlua::ffi;
use std::os::raw::c_int;

/// Tables nested deeper than this encode as nil (survives cycles).
const MAX_NESTING: i32 = 16;

unsafe fn check_stack(l: *mut ffi::lua_State, n: c_int, what: &str) -> LuaResult<()> {
    if ffi::lua_checkstack(l, n) == 0 {
        return Err(LuaError::msg(format!("stack overflow ({what})")));
    }
    Ok(())
}

fn encode_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

fn encode_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(buf: &mut Vec<u8>, d: f64) {
    if !d.is_infinite() && c_double_to_i64(d) as f64 == d {
        encode_int(buf, c_double_to_i64(d));
    } else if d == (d as f32) as f64 {
        buf.push(0xca);
        buf.extend_from_slice(&(d as f32).to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

fn encode_header(buf: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 0xffff {
        buf.push(b16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(b32);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// The original's array test: every key a number equal to a positive C
/// int, and as many keys as the largest one.
unsafe fn table_is_an_array(l: *mut ffi::lua_State) -> bool {
    let top = ffi::lua_gettop(l);
    let (mut count, mut max): (i64, i32) = (0, 0);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        ffi::lua_settop(l, -2);
        let n = if ffi::lua_type(l, -1) == ffi::LUA_TNUMBER {
            ffi::lua_tonumber(l, -1)
        } else {
            0.0
        };
        if n <= 0.0 || n.is_infinite() || c_double_to_i32(n) as f64 != n {
            ffi::lua_settop(l, top);
            return false;
        }
        if n > max as f64 {
            max = c_double_to_i32(n);
        }
        count += 1;
    }
    ffi::lua_settop(l, top);
    max as i64 == count
}

/// Encodes the value on top of the stack and pops it.
unsafe fn encode_value(l: *mut ffi::lua_State, buf: &mut Vec<u8>, level: i32) -> LuaResult<()> {
    let mut t = ffi::lua_type(l, -1);
    if t == ffi::LUA_TTABLE && level == MAX_NESTING {
        t = ffi::LUA_TNIL;
    }
    match t {
        ffi::LUA_TSTRING => {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            encode_bytes(buf, std::slice::from_raw_parts(p.cast(), len));
        }
        ffi::LUA_TBOOLEAN => buf.push(if ffi::lua_toboolean(l, -1) != 0 {
            0xc3
        } else {
            0xc2
        }),
        ffi::LUA_TNUMBER => encode_number(buf, ffi::lua_tonumber(l, -1)),
        ffi::LUA_TTABLE => {
            if table_is_an_array(l) {
                let len = ffi::lua_objlen(l, -1);
                encode_header(buf, len, 0x90, 0xdc, 0xdd);
                check_stack(l, 1, "in function mp_encode_lua_table_as_array")?;
                // The original's lua_gettable never reaches a metamethod here
                // (keys 1..len all exist); raw access runs no Lua code.
                for j in 1..=len {
                    ffi::lua_rawgeti_(l, -1, j as c_int);
                    encode_value(l, buf, level + 1)?;
                }
            } else {
                check_stack(l, 3, "in function mp_encode_lua_table_as_map")?;
                let mut len = 0usize;
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_settop(l, -2);
                    len += 1;
                }
                encode_header(buf, len, 0x80, 0xde, 0xdf);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pushvalue(l, -2);
                    encode_value(l, buf, level + 1)?; // key
                    encode_value(l, buf, level + 1)?; // value
                }
            }
        }
        _ => buf.push(0xc0),
    }
    ffi::lua_settop(l, -2);
    Ok(())
}

unsafe fn pack(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let nargs = ffi::lua_gettop(l);
    if nargs == 0 {
        return Err(LuaError::arg(0, "MessagePack pack needs input."));
    }
    if ffi::lua_checkstack(l, nargs) == 0 {
        return Err(LuaError::arg(0, "Too many arguments for MessagePack pack."));
    }
    scratch::with(l, 1, |s| {
        for i in 1..=nargs {
            check_stack(l, 1, "in function mp_check")?;
            ffi::lua_pushvalue(l, i);
            encode_value(l, &mut s.out, 0)?;
        }
        push_bytes(l, &s.out);
        Ok(1)
    })
}

/// Why decoding stopped.
enum Stop {
    Eof,
    BadFormat,
    Lua(LuaError),
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }
    /// The next `n` bytes, without consuming them.
    fn need(&self, n: usize) -> Result<&'a [u8], Stop> {
        if self.left() < n {
            return Err(Stop::Eof);
        }
        Ok(&self.data[self.pos..self.pos + n])
    }
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |v, &x| (v << 8) | x as u64)
}

/// A container being decoded. Nesting is kept here, on the heap, rather
/// than in native recursion; the Lua stack holds the containers and pending
/// keys exactly as the original's recursion does, so its `luaL_checkstack`
/// limits (and messages) are the same.
pub enum MpFrame {
    /// The index being filled (pushed on the Lua stack) and the length.
    Array { i: usize, len: usize },
    /// Pairs left, and whether the next value decoded is a key.
    Map { left: usize, key: bool },
}

const TOO_MANY: &str = "too many return values at once; use unpack_one or unpack_limit instead.";

/// Decodes one scalar at the cursor and pushes it, or opens a container
/// (pushing its table) and returns it.
unsafe fn decode_item(l: *mut ffi::lua_State, c: &mut Cursor) -> Result<Option<MpFrame>, Stop> {
    let b0 = c.need(1)?[0];
    check_stack(l, 1, TOO_MANY).map_err(Stop::Lua)?;
    let (count, is_array) = match b0 {
        0xcc..=0xce => {
            let w = 1usize << (b0 - 0xcc);
            let v = be(&c.need(1 + w)?[1..]);
            ffi::lua_pushnumber(l, v as f64);
            c.pos += 1 + w;
            return Ok(None);
        }
        0xcf => {
            // Pushed through lua_pushinteger in the original: 2^63 and up
            // come back negative.
            let v = be(&c.need(9)?[1..]);
            ffi::lua_pushnumber(l, v as i64 as f64);
            c.pos += 9;
            return Ok(None);
        }
        0xd0..=0xd3 => {
            let w = 1usize << (b0 - 0xd0);
            let v = be(&c.need(1 + w)?[1..]);
            let shift = 64 - 8 * w as u32;
            ffi::lua_pushnumber(l, (((v << shift) as i64) >> shift) as f64);
            c.pos += 1 + w;
            return Ok(None);
        }
        0xc0 => {
            ffi::lua_pushnil(l);
            c.pos += 1;
            return Ok(None);
        }
        0xc2 | 0xc3 => {
            ffi::lua_pushboolean(l, (b0 == 0xc3) as c_int);
            c.pos += 1;
            return Ok(None);
        }
        0xca => {
            let v = be(&c.need(5)?[1..]) as u32;
            ffi::lua_pushnumber(l, f32::from_bits(v) as f64);
            c.pos += 5;
            return Ok(None);
        }
        0xcb => {
            let v = be(&c.need(9)?[1..]);
            ffi::lua_pushnumber(l, f64::from_bits(v));
            c.pos += 9;
            return Ok(None);
        }
        0xd9..=0xdb => {
            let w = 1usize << (b0 - 0xd9);
            let len = be(&c.need(1 + w)?[1..]) as usize;
            let s = c.need(1 + w + len)?;
            push_bytes(l, &s[1 + w..]);
            c.pos += 1 + w + len;
            return Ok(None);
        }
        0xdc..=0xdf => {
            let w = if b0 & 1 == 0 { 2 } else { 4 };
            let len = be(&c.need(1 + w)?[1..]) as usize;
            c.pos += 1 + w;
            (len, b0 <= 0xdd)
        }
        _ if b0 & 0x80 == 0 => {
            ffi::lua_pushnumber(l, b0 as f64);
            c.pos += 1;
            return Ok(None);
        }
        _ if b0 & 0xe0 == 0xe0 => {
            ffi::lua_pushnumber(l, b0 as i8 as f64);
            c.pos += 1;
            return Ok(None);
        }
        _ if b0 & 0xe0 == 0xa0 => {
            let len = (b0 & 0x1f) as usize;
            let s = c.need(1 + len)?;
            push_bytes(l, &s[1..]);
            c.pos += 1 + len;
            return Ok(None);
        }
        _ if b0 & 0xf0 == 0x90 => {
            c.pos += 1;
            ((b0 & 0xf) as usize, true)
        }
        _ if b0 & 0xf0 == 0x80 => {
            c.pos += 1;
            ((b0 & 0xf) as usize, false)
        }
        _ => return Err(Stop::BadFormat),
    };
    ffi::lua_createtable(l, 0, 0);
    if is_array {
        check_stack(l, 1, "in function mp_decode_to_lua_array").map_err(Stop::Lua)?;
        if count == 0 {
            return Ok(None);
        }
        ffi::lua_pushnumber(l, 1.0);
        Ok(Some(MpFrame::Array { i: 1, len: count }))
    } else if count == 0 {
        Ok(None)
    } else {
        Ok(Some(MpFrame::Map {
            left: count,
            key: true,
        }))
    }
}

/// `mp_decode_to_lua_type`: decodes one value (with everything nested in
/// it) and pushes it.
unsafe fn decode_value(
    l: *mut ffi::lua_State,
    c: &mut Cursor,
    open: &mut Vec<MpFrame>,
) -> Result<(), Stop> {
    open.clear();
    loop {
        if let Some(o) = decode_item(l, c)? {
            open.push(o);
            continue;
        }
        // A value is complete on top of the stack: store it in its
        // container, closing the containers it completes.
        loop {
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match top {
                MpFrame::Array { i, len } => {
                    ffi::lua_rawset(l, -3);
                    if *i == *len {
                        open.pop();
                        continue;
                    }
                    *i += 1;
                    ffi::lua_pushnumber(l, *i as f64);
                    break;
                }
                MpFrame::Map { left, key } => {
                    if *key {
                        *key = false;
                        break;
                    }
                    match ffi::lua_type(l, -2) {
                        ffi::LUA_TNIL => {
                            return Err(Stop::Lua(LuaError::Raw(b"table index is nil".to_vec())))
                        }
                        ffi::LUA_TNUMBER if ffi::lua_tonumber(l, -2).is_nan() => {
                            return Err(Stop::Lua(LuaError::Raw(b"table index is NaN".to_vec())))
                        }
                        _ => ffi::lua_rawset(l, -3),
                    }
                    *left -= 1;
                    if *left == 0 {
                        open.pop();
                        continue;
                    }
                    *key = true;
                    break;
                }
            }
        }
    }
}

/// `mp_unpack_full`: decodes up to `limit` values from `offset` (both 0:
/// everything, and no offset returned). Both are Lua integers (64-bit); the
/// error messages print them as C ints, as the original does.
unsafe fn unpack_full(l: *mut ffi::lua_State, limit: i64, offset: i64) -> LuaResult<c_int> {
    let s = check_bytes(l, 1)?;
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The original prints the input's length where it says "limit".
        return Err(LuaError::msg(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32,
            s.len() as i32
        )));
    }
    if offset as u64 > s.len() as u64 {
        return Err(LuaError::msg(format!(
            "Start offset {} greater than input length {}.",
            offset as i32,
            s.len() as i32
        )));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cursor {
        data: s,
        pos: offset as usize,
    };
    let mut cnt: i64 = 0;
    scratch::with(l, 1, |sc| {
        while c.left() > 0 && cnt < limit {
            decode_value(l, &mut c, &mut sc.mp_dec).map_err(|e| match e {
                Stop::Eof => LuaError::msg("Missing bytes in input."),
                Stop::BadFormat => LuaError::msg("Bad data format in input."),
                Stop::Lua(e) => e,
            })?;
            cnt += 1;
        }
        Ok(())
    })?;
    if !decode_all {
        check_stack(l, 1, "in function mp_unpack_full")?;
        let next = if c.left() == 0 { -1 } else { c.pos as i32 };
        ffi::lua_pushinteger(l, next as ffi::lua_Integer);
        ffi::lua_insert(l, 2);
        cnt += 1;
    }
    Ok(cnt as c_int)
}

unsafe fn unpack(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    unpack_full(l, 0, 0)
}

unsafe fn unpack_one(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let offset = opt_integer(l, 2, 0)?;
    ffi::lua_settop(l, ffi::lua_gettop(l).min(1));
    unpack_full(l, 1, offset)
}

unsafe fn unpack_limit(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let limit = check_integer(l, 2)?;
    let offset = opt_integer(l, 3, 0)?;
    ffi::lua_settop(l, ffi::lua_gettop(l).min(1));
    unpack_full(l, limit, offset)
}

lua_cfn!(c_pack, pack);
lua_cfn!(c_unpack, unpack);
lua_cfn!(c_unpack_one, unpack_one);
lua_cfn!(c_unpack_limit, unpack_limit);

/// Pushes the `cmsgpack` table, its functions sharing the scratch userdata
/// on top of the stack (left there).
pub unsafe fn open(l: *mut ffi::lua_State) {
    ffi::lua_createtable(l, 0, 8);
    set_funcs(
        l,
        &[
            ("pack", c_pack),
            ("unpack", c_unpack),
            ("unpack_one", c_unpack_one),
            ("unpack_limit", c_unpack_limit),
        ],
        1,
    );
    for (k, v) in [
        ("_NAME", "cmsgpack"),
        ("_VERSION", "lua-cmsgpack 0.4.0"),
        ("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo"),
        ("_DESCRIPTION", "MessagePack C implementation for Lua"),
    ] {
        push_bytes(l, v.as_bytes());
        super::raw::raw_set_field(l, -2, k);
    }
}
