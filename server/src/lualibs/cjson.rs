//! `cjson`: lua-cjson 2.1.0 as bundled with Redis 7.0.
//!
//! `encode(v)` / `decode(s)`, `cjson.null` (a NULL light userdata), `new()`
//! (a module instance with its own settings) and the settings functions
//! `encode_sparse_array`, `encode_max_depth`, `decode_max_depth`,
//! `encode_number_precision`, `encode_keep_buffer`,
//! `encode_invalid_numbers`, `decode_invalid_numbers`. Settings live in a
//! userdata shared (as an upvalue) by the functions of one module table, so
//! they persist across scripts on one VM, as in Redis.
//!
//! Numbers are printed with C's `%.14g` and parsed with C's `strtod` (both
//! from libc, as in the original), so hex, `inf`, `nan` and rounding are the
//! same. Nesting is bounded by the depth settings and by the Lua stack
//! (`lua_checkstack`), as in the original; it is tracked on the heap, not by
//! native recursion, so it needs no thread stack beyond a constant.

use super::raw::{
    c_double_to_i32, check_bytes, check_cstr, check_integer, lua_cfn, push_bytes, raw_set_field,
    set_funcs, LuaError, LuaResult,
};
use super::scratch;
use mlua::ffi;
use std::os::raw::c_int;

/// One module instance's settings (lua-cjson's `json_config_t`, less its
/// buffers). Plain data: it lives in a Lua userdata without a finaliser.
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: c_int,
    sparse_ratio: c_int,
    sparse_safe: c_int,
    encode_max_depth: c_int,
    decode_max_depth: c_int,
    encode_invalid_numbers: c_int, // 0 off, 1 on, 2 null
    decode_invalid_numbers: c_int,
    encode_keep_buffer: c_int,
    encode_number_precision: c_int,
}

const DEFAULTS: Config = Config {
    sparse_convert: 0,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    decode_invalid_numbers: 1,
    encode_keep_buffer: 1,
    encode_number_precision: 14,
};

unsafe fn config<'a>(l: *mut ffi::lua_State) -> LuaResult<&'a mut Config> {
    let p = ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *mut Config;
    if p.is_null() {
        return Err(LuaError::msg("BUG: Unable to fetch CJSON configuration"));
    }
    Ok(&mut *p)
}

// ---- settings ---------------------------------------------------------

/// `json_arg_init`: at most `args` arguments; missing ones become nil.
unsafe fn arg_init<'a>(l: *mut ffi::lua_State, args: c_int) -> LuaResult<&'a mut Config> {
    let cfg = config(l)?;
    if ffi::lua_gettop(l) > args {
        return Err(LuaError::arg(args + 1, "found too many arguments"));
    }
    while ffi::lua_gettop(l) < args {
        ffi::lua_pushnil(l);
    }
    Ok(cfg)
}

/// `json_enum_option`: a boolean, or one of `options` by name. Pushes the
/// setting: a boolean when it is off/on, else the option's name.
unsafe fn enum_option(
    l: *mut ffi::lua_State,
    idx: c_int,
    setting: &mut c_int,
    options: &[&str],
    bool_true: c_int,
) -> LuaResult<()> {
    if ffi::lua_isnoneornil(l, idx) == 0 {
        if bool_true != 0 && ffi::lua_isboolean(l, idx) != 0 {
            *setting = ffi::lua_toboolean(l, idx) * bool_true;
        } else {
            let name = check_cstr(l, idx)?;
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(i) => *setting = i as c_int,
                None => {
                    let mut m = b"invalid option '".to_vec();
                    m.extend_from_slice(name);
                    m.push(b'\'');
                    return Err(LuaError::Arg(idx, m));
                }
            }
        }
    }
    if bool_true != 0 && (*setting == 0 || *setting == bool_true) {
        ffi::lua_pushboolean(l, *setting);
    } else {
        push_bytes(l, options[*setting as usize].as_bytes());
    }
    Ok(())
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// `json_integer_option`: an integer in [min, max] (the original reports a
/// bad value as argument #1 whatever its position).
unsafe fn integer_option(
    l: *mut ffi::lua_State,
    idx: c_int,
    setting: &mut c_int,
    min: c_int,
    max: c_int,
) -> LuaResult<()> {
    if ffi::lua_type(l, idx) != ffi::LUA_TNIL {
        let value = check_integer(l, idx)? as c_int;
        if !(min <= value && value <= max) {
            return Err(LuaError::arg(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    ffi::lua_pushinteger(l, *setting as ffi::lua_Integer);
    Ok(())
}

unsafe fn cfg_encode_sparse_array(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 3)?;
    enum_option(l, 1, &mut cfg.sparse_convert, BOOL_OPTIONS, 1)?;
    integer_option(l, 2, &mut cfg.sparse_ratio, 0, c_int::MAX)?;
    integer_option(l, 3, &mut cfg.sparse_safe, 0, c_int::MAX)?;
    Ok(3)
}

unsafe fn cfg_encode_max_depth(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.encode_max_depth, 1, c_int::MAX)?;
    Ok(1)
}

unsafe fn cfg_decode_max_depth(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.decode_max_depth, 1, c_int::MAX)?;
    Ok(1)
}

unsafe fn cfg_encode_number_precision(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.encode_number_precision, 1, 14)?;
    Ok(1)
}

/// Accepted and reported; there is no buffer to keep (encoding builds a
/// fresh one), which changes nothing a script can observe.
unsafe fn cfg_encode_keep_buffer(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.encode_keep_buffer, BOOL_OPTIONS, 1)?;
    Ok(1)
}

unsafe fn cfg_encode_invalid_numbers(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 1)?;
    enum_option(
        l,
        1,
        &mut cfg.encode_invalid_numbers,
        &["off", "on", "null"],
        1,
    )?;
    Ok(1)
}

unsafe fn cfg_decode_invalid_numbers(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.decode_invalid_numbers, BOOL_OPTIONS, 1)?;
    Ok(1)
}

// ---- encoding ---------------------------------------------------------

unsafe fn encode_error(l: *mut ffi::lua_State, idx: c_int, reason: &str) -> LuaError {
    let t = super::raw::type_name(l, idx);
    LuaError::msg(format!("Cannot serialise {t}: {reason}"))
}

/// `%.*g` through libc, as the original's `fpconv_g_fmt` (C locale).
fn format_number(out: &mut Vec<u8>, num: f64, precision: c_int) {
    let mut buf = [0u8; 32];
    // SAFETY: the format takes an int and a double; the buffer's size bounds
    // the write.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%.*g".as_ptr(),
            precision,
            num,
        )
    };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    out.extend_from_slice(&buf[..n]);
}

unsafe fn append_number(
    l: *mut ffi::lua_State,
    cfg: &Config,
    out: &mut Vec<u8>,
    idx: c_int,
) -> LuaResult<()> {
    let num = ffi::lua_tonumber(l, idx);
    match cfg.encode_invalid_numbers {
        0 if !num.is_finite() => return Err(encode_error(l, idx, "must not be NaN or Inf")),
        1 if num.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        2 if !num.is_finite() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    format_number(out, num, cfg.encode_number_precision);
    Ok(())
}

/// lua-cjson's escapes: control characters, '"', '\\', '/' and DEL.
fn escape(c: u8) -> Option<&'static [u8]> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static CONTROL: [[u8; 6]; 32] = {
        let mut t = [[0u8; 6]; 32];
        let mut i = 0;
        while i < 32 {
            t[i] = [b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 15]];
            i += 1;
        }
        t
    };
    Some(match c {
        b'\x08' => b"\\b",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        b'\x0c' => b"\\f",
        b'\r' => b"\\r",
        0..=31 => &CONTROL[c as usize],
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'/' => b"\\/",
        127 => b"\\u007f",
        _ => return None,
    })
}

unsafe fn append_string(l: *mut ffi::lua_State, out: &mut Vec<u8>, idx: c_int) {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    let s = std::slice::from_raw_parts(p.cast::<u8>(), len);
    out.reserve(len + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if let Some(e) = escape(c) {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(e);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// `lua_array_length`: the array length of the table on top, or -1 when it
/// must be an object (any key not a positive integer, or too sparse with
/// conversion on).
unsafe fn array_length(l: *mut ffi::lua_State, cfg: &Config) -> LuaResult<c_int> {
    let (mut max, mut items): (c_int, c_int) = (0, 0);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        let k = if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER {
            ffi::lua_tonumber(l, -2)
        } else {
            0.0
        };
        if k != 0.0 && k.floor() == k && k >= 1.0 {
            if k > max as f64 {
                max = c_double_to_i32(k);
            }
            items = items.wrapping_add(1);
            ffi::lua_settop(l, -2);
            continue;
        }
        ffi::lua_settop(l, -3);
        return Ok(-1);
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Err(encode_error(l, -1, "excessively sparse array"));
        }
        return Ok(-1);
    }
    Ok(max)
}

/// A table being encoded: where its iteration stands. The encoder keeps
/// these on the heap rather than recursing, so deep nesting costs no native
/// stack; the Lua stack holds the tables themselves (and an object's current
/// key), one or two slots per level, as in the original.
pub enum EncFrame {
    Array { i: c_int, len: c_int },
    Object { comma: bool },
}

/// Appends the value on top of the stack; returns the frame to push if it
/// opened a table (`depth` = the number of tables already open).
unsafe fn visit(
    l: *mut ffi::lua_State,
    cfg: &Config,
    out: &mut Vec<u8>,
    depth: usize,
) -> LuaResult<Option<EncFrame>> {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => append_string(l, out, -1),
        ffi::LUA_TNUMBER => append_number(l, cfg, out, -1)?,
        ffi::LUA_TBOOLEAN => {
            let b: &[u8] = if ffi::lua_toboolean(l, -1) != 0 {
                b"true"
            } else {
                b"false"
            };
            out.extend_from_slice(b);
        }
        ffi::LUA_TTABLE => {
            let depth = (depth + 1).min(c_int::MAX as usize) as c_int;
            // Room for key, value and an error message, as the original asks.
            if !(depth <= cfg.encode_max_depth && ffi::lua_checkstack(l, 3) != 0) {
                return Err(LuaError::msg(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            let len = array_length(l, cfg)?;
            if len > 0 {
                out.push(b'[');
                return Ok(Some(EncFrame::Array { i: 0, len }));
            }
            out.push(b'{');
            ffi::lua_pushnil(l);
            return Ok(Some(EncFrame::Object { comma: false }));
        }
        ffi::LUA_TNIL => out.extend_from_slice(b"null"),
        ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => {
            out.extend_from_slice(b"null")
        }
        _ => return Err(encode_error(l, -1, "type not supported")),
    }
    Ok(None)
}

/// `json_append_data` for the value on top of the stack (left there).
unsafe fn append_data(
    l: *mut ffi::lua_State,
    cfg: &Config,
    out: &mut Vec<u8>,
    open: &mut Vec<EncFrame>,
) -> LuaResult<()> {
    loop {
        // The value on top of the stack.
        match visit(l, cfg, out, open.len())? {
            Some(o) => open.push(o),
            None if open.is_empty() => return Ok(()),
            None => ffi::lua_settop(l, -2),
        }
        // Find the next value: the next element of the innermost open table,
        // closing the tables that are finished.
        loop {
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match top {
                EncFrame::Array { i, len } => {
                    if *i < *len {
                        *i += 1;
                        if *i > 1 {
                            out.push(b',');
                        }
                        ffi::lua_rawgeti_(l, -1, *i);
                        break;
                    }
                    out.push(b']');
                }
                EncFrame::Object { comma } => {
                    // Stack: table, previous key (nil at first).
                    if ffi::lua_next(l, -2) != 0 {
                        if *comma {
                            out.push(b',');
                        }
                        *comma = true;
                        match ffi::lua_type(l, -2) {
                            ffi::LUA_TNUMBER => {
                                out.push(b'"');
                                append_number(l, cfg, out, -2)?;
                                out.extend_from_slice(b"\":");
                            }
                            ffi::LUA_TSTRING => {
                                append_string(l, out, -2);
                                out.push(b':');
                            }
                            _ => {
                                return Err(encode_error(
                                    l,
                                    -2,
                                    "table key must be a number or string",
                                ))
                            }
                        }
                        break;
                    }
                    out.push(b'}');
                }
            }
            // The innermost table is finished: it is a finished value.
            open.pop();
            if open.is_empty() {
                return Ok(());
            }
            ffi::lua_settop(l, -2);
        }
    }
}

unsafe fn encode(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let cfg = *config(l)?;
    if ffi::lua_gettop(l) != 1 {
        return Err(LuaError::arg(1, "expected 1 argument"));
    }
    scratch::with(l, 2, |s| {
        append_data(l, &cfg, &mut s.out, &mut s.json_enc)?;
        push_bytes(l, &s.out);
        Ok(1)
    })
}

// ---- decoding ---------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    String,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::String => "T_STRING",
            Tok::Number => "T_NUMBER",
            Tok::Boolean => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error => "T_ERROR",
        }
    }
}

struct Token {
    kind: Tok,
    /// 0-based offset of the token (of the error, for `Tok::Error`).
    index: usize,
    number: f64,
    boolean: bool,
    /// For `Tok::Error`: what went wrong.
    err: &'static str,
}

struct Parser<'a> {
    cfg: &'a Config,
    /// The Lua string with its terminating NUL: parsing stops at a NUL, as
    /// in C, so reading one byte past any position before it is safe.
    data: &'a [u8],
    ptr: usize,
    depth: c_int,
    /// The current string token's decoded bytes.
    tmp: &'a mut Vec<u8>,
}

fn hex_digit(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data[i]
    }

    fn decode_hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            // A NUL stops the scan before the end of the buffer.
            v = (v << 4) | hex_digit(self.at(at + i))?;
        }
        Some(v)
    }

    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if (c as i8) <= b'9' as i8 {
            return false;
        }
        let rest = &self.data[p..];
        let starts = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        starts(b"inf") || starts(b"nan")
    }

    /// `\uXXXX` (or a surrogate pair) at `ptr`, appended as UTF-8.
    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.decode_hex4(self.ptr + 2) else {
            return false;
        };
        let mut escape_len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return false;
            }
            let Some(low) = self.decode_hex4(self.ptr + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            escape_len = 12;
        }
        // Every value here is at most 0x10FFFF: 1 to 4 bytes of UTF-8.
        let mut b = [0u8; 4];
        let n = if cp <= 0x7F {
            b[0] = cp as u8;
            1
        } else if cp <= 0x7FF {
            b[0] = 0xC0 | (cp >> 6) as u8;
            b[1] = 0x80 | (cp & 0x3F) as u8;
            2
        } else if cp <= 0xFFFF {
            b[0] = 0xE0 | (cp >> 12) as u8;
            b[1] = 0x80 | ((cp >> 6) & 0x3F) as u8;
            b[2] = 0x80 | (cp & 0x3F) as u8;
            3
        } else {
            b[0] = 0xF0 | (cp >> 18) as u8;
            b[1] = 0x80 | ((cp >> 12) & 0x3F) as u8;
            b[2] = 0x80 | ((cp >> 6) & 0x3F) as u8;
            b[3] = 0x80 | (cp & 0x3F) as u8;
            4
        };
        self.tmp.extend_from_slice(&b[..n]);
        self.ptr += escape_len;
        true
    }

    fn set_error(&self, t: &mut Token, err: &'static str) {
        t.kind = Tok::Error;
        t.index = self.ptr;
        t.err = err;
    }

    fn string_token(&mut self, t: &mut Token) {
        self.ptr += 1;
        self.tmp.clear();
        loop {
            let mut c = self.at(self.ptr);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return self.set_error(t, "unexpected end of string");
            }
            if c == b'\\' {
                c = match self.at(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => b'\x08',
                    b'f' => b'\x0c',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        return self.set_error(t, "invalid unicode escape code");
                    }
                    _ => return self.set_error(t, "invalid escape code"),
                };
                self.ptr += 1;
            }
            self.tmp.push(c);
            self.ptr += 1;
        }
        self.ptr += 1;
        t.kind = Tok::String;
    }

    fn number_token(&mut self, t: &mut Token) {
        let start = self.data[self.ptr..].as_ptr();
        let mut end: *mut libc::c_char = std::ptr::null_mut();
        // SAFETY: `data` ends with the Lua string's NUL terminator.
        let d = unsafe { libc::strtod(start.cast(), &mut end) };
        let used = end as usize - start as usize;
        if used == 0 {
            return self.set_error(t, "invalid number");
        }
        t.kind = Tok::Number;
        t.number = d;
        self.ptr += used;
    }

    fn next_token(&mut self, t: &mut Token) {
        let mut c;
        loop {
            c = self.at(self.ptr);
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.ptr += 1;
        }
        t.index = self.ptr;
        let single = match c {
            0 => Some(Tok::End),
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(k) = single {
            t.kind = k;
            if k != Tok::End {
                self.ptr += 1;
            }
            return;
        }
        if !matches!(
            c,
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9'
        ) {
            return self.set_error(t, "invalid token");
        }
        let rest = &self.data[self.ptr..];
        if c == b'"' {
            self.string_token(t)
        } else if c == b'-' || c.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                return self.set_error(t, "invalid number");
            }
            self.number_token(t)
        } else if rest.starts_with(b"true") {
            t.kind = Tok::Boolean;
            t.boolean = true;
            self.ptr += 4;
        } else if rest.starts_with(b"false") {
            t.kind = Tok::Boolean;
            t.boolean = false;
            self.ptr += 5;
        } else if rest.starts_with(b"null") {
            t.kind = Tok::Null;
            self.ptr += 4;
        } else if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            self.number_token(t)
        } else {
            self.set_error(t, "invalid token")
        }
    }

    fn parse_error(&self, expected: &str, t: &Token) -> LuaError {
        let found = if t.kind == Tok::Error {
            t.err
        } else {
            t.kind.name()
        };
        LuaError::msg(format!(
            "Expected {expected} but found {found} at character {}",
            (t.index as c_int).wrapping_add(1)
        ))
    }

    /// `json_decode_descend`: one level deeper, within the depth setting and
    /// with `slots` free on the Lua stack.
    unsafe fn descend(&mut self, l: *mut ffi::lua_State, slots: c_int) -> LuaResult<()> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && ffi::lua_checkstack(l, slots) != 0 {
            return Ok(());
        }
        Err(LuaError::msg(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.ptr as c_int
        )))
    }

    /// After an object's '{' or ',': the key string and the colon, leaving
    /// the key pushed and `t` at the value's first token.
    unsafe fn object_key(&mut self, l: *mut ffi::lua_State, t: &mut Token) -> LuaResult<()> {
        if t.kind != Tok::String {
            return Err(self.parse_error("object key string", t));
        }
        push_bytes(l, self.tmp);
        self.next_token(t);
        if t.kind != Tok::Colon {
            return Err(self.parse_error("colon", t));
        }
        self.next_token(t);
        Ok(())
    }

    /// Parses the value starting at token `t` and pushes it. Nesting is kept
    /// in a heap vector (`open`), not in native recursion; the Lua stack
    /// holds the open tables (and an object's pending key), as in the
    /// original, whose limits (depth setting, `lua_checkstack`) apply.
    /// `open` holds, for each open table, Some(next array index) or None
    /// (an object).
    unsafe fn value(
        &mut self,
        l: *mut ffi::lua_State,
        t: &mut Token,
        open: &mut Vec<Option<c_int>>,
    ) -> LuaResult<()> {
        loop {
            // A value starts at `t`.
            match t.kind {
                Tok::String => push_bytes(l, self.tmp),
                Tok::Number => ffi::lua_pushnumber(l, t.number),
                Tok::Boolean => ffi::lua_pushboolean(l, t.boolean as c_int),
                Tok::Null => ffi::lua_pushlightuserdata(l, std::ptr::null_mut()),
                Tok::ObjBegin => {
                    self.descend(l, 3)?;
                    ffi::lua_createtable(l, 0, 0);
                    self.next_token(t);
                    if t.kind == Tok::ObjEnd {
                        self.depth -= 1;
                    } else {
                        self.object_key(l, t)?;
                        open.push(None);
                        continue;
                    }
                }
                Tok::ArrBegin => {
                    self.descend(l, 2)?;
                    ffi::lua_createtable(l, 0, 0);
                    self.next_token(t);
                    if t.kind == Tok::ArrEnd {
                        self.depth -= 1;
                    } else {
                        open.push(Some(1));
                        continue;
                    }
                }
                _ => return Err(self.parse_error("value", t)),
            }
            // A value is complete on top of the stack: store it in its table,
            // then find where the next value starts (closing finished tables).
            loop {
                let Some(top) = open.last_mut() else {
                    return Ok(());
                };
                match top {
                    Some(i) => {
                        ffi::lua_rawseti_(l, -2, *i);
                        self.next_token(t);
                        if t.kind == Tok::ArrEnd {
                            self.depth -= 1;
                            open.pop();
                            continue;
                        }
                        if t.kind != Tok::Comma {
                            return Err(self.parse_error("comma or array end", t));
                        }
                        *i = i.wrapping_add(1);
                        self.next_token(t);
                        break;
                    }
                    None => {
                        ffi::lua_rawset(l, -3);
                        self.next_token(t);
                        if t.kind == Tok::ObjEnd {
                            self.depth -= 1;
                            open.pop();
                            continue;
                        }
                        if t.kind != Tok::Comma {
                            return Err(self.parse_error("comma or object end", t));
                        }
                        self.next_token(t);
                        self.object_key(l, t)?;
                        break;
                    }
                }
            }
        }
    }
}

fn new_token() -> Token {
    Token {
        kind: Tok::End,
        index: 0,
        number: 0.0,
        boolean: false,
        err: "",
    }
}

unsafe fn decode(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    if ffi::lua_gettop(l) != 1 {
        return Err(LuaError::arg(1, "expected 1 argument"));
    }
    let cfg = *config(l)?;
    let s = check_bytes(l, 1)?;
    if s.len() >= 2 && (s[0] == 0 || s[1] == 0) {
        return Err(LuaError::msg(
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    // Lua strings are NUL-terminated: include the terminator.
    let data = std::slice::from_raw_parts(s.as_ptr(), s.len() + 1);
    scratch::with(l, 2, |sc| {
        let mut p = Parser {
            cfg: &cfg,
            data,
            ptr: 0,
            depth: 0,
            tmp: &mut sc.tmp,
        };
        let mut t = new_token();
        p.next_token(&mut t);
        p.value(l, &mut t, &mut sc.json_dec)?;
        p.next_token(&mut t);
        if t.kind != Tok::End {
            return Err(p.parse_error("the end", &t));
        }
        Ok(1)
    })
}

unsafe fn new(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
    open(l);
    ffi::lua_remove(l, -2);
    Ok(1)
}

lua_cfn!(c_encode, encode);
lua_cfn!(c_decode, decode);
lua_cfn!(c_encode_sparse_array, cfg_encode_sparse_array);
lua_cfn!(c_encode_max_depth, cfg_encode_max_depth);
lua_cfn!(c_decode_max_depth, cfg_decode_max_depth);
lua_cfn!(c_encode_number_precision, cfg_encode_number_precision);
lua_cfn!(c_encode_keep_buffer, cfg_encode_keep_buffer);
lua_cfn!(c_encode_invalid_numbers, cfg_encode_invalid_numbers);
lua_cfn!(c_decode_invalid_numbers, cfg_decode_invalid_numbers);
lua_cfn!(c_new, new);

/// Pushes a new `cjson` module table with default settings, its functions
/// sharing the scratch userdata on top of the stack (left there).
pub unsafe fn open(l: *mut ffi::lua_State) {
    let cfg = ffi::lua_newuserdata(l, std::mem::size_of::<Config>()) as *mut Config;
    cfg.write(DEFAULTS);
    ffi::lua_pushvalue(l, -2);
    ffi::lua_createtable(l, 0, 13);
    set_funcs(
        l,
        &[
            ("encode", c_encode),
            ("decode", c_decode),
            ("encode_sparse_array", c_encode_sparse_array),
            ("encode_max_depth", c_encode_max_depth),
            ("decode_max_depth", c_decode_max_depth),
            ("encode_number_precision", c_encode_number_precision),
            ("encode_keep_buffer", c_encode_keep_buffer),
            ("encode_invalid_numbers", c_encode_invalid_numbers),
            ("decode_invalid_numbers", c_decode_invalid_numbers),
            ("new", c_new),
        ],
        2,
    );
    ffi::lua_remove(l, -2);
    ffi::lua_remove(l, -2);
    ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
    raw_set_field(l, -2, "null");
    push_bytes(l, b"cjson");
    raw_set_field(l, -2, "_NAME");
    push_bytes(l, b"2.1.0");
    raw_set_field(l, -2, "_VERSION");
}
