//! `struct`: lua_struct 0.2 as bundled with Redis (pack, unpack, size).
//!
//! Format language: `<` `>` set little/big endian (native: little), `!n`
//! sets the maximum alignment (default 8 = `!`), `x` one pad byte,
//! `b/B h/H l/L T i/In I/In` integers (signed lower case) of 1, 2, 8, 8 and n
//! (default 4, at most 32) bytes, `f` `d` float and double, `cn` n bytes
//! (`c0`: the whole string when packing, the previous number's length when
//! unpacking), `s` a zero-terminated string, ' ' ignored. Sizes and the
//! x86-64 conversions of the C original are kept, including its quirks
//! (integers wider than 8 bytes carry zeros above, not sign).

use super::raw::{
    c_double_to_i64, c_double_to_u64, check_bytes, check_cstr, check_number, lua_cfn, opt_integer,
    push_bytes, set_funcs, LuaError, LuaResult,
};
use super::scratch;
use mlua::ffi;
use std::os::raw::c_int;

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Little,
    Big,
}

struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            endian: Endian::Little,
            align: 1,
        }
    }
}

/// A cursor over the format string (as C sees it: up to the first NUL).
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// `getnum`: the decimal number at the cursor, or `df` if none.
    fn getnum(&mut self, df: usize) -> LuaResult<usize> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(df);
        }
        let mut a: i32 = 0;
        while let Some(&c) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = (c - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(LuaError::msg("integral size overflow"));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a as usize)
    }
}

/// `optsize`: the size an option occupies (0 for control options and `s`).
fn optsize(opt: u8, fmt: &mut Fmt) -> LuaResult<usize> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => fmt.getnum(1)?,
        b'i' | b'I' => {
            let sz = fmt.getnum(4)?;
            if sz > MAXINTSIZE {
                return Err(LuaError::msg(format!(
                    "integral size {} is larger than limit of {}",
                    sz as i32, MAXINTSIZE
                )));
            }
            sz
        }
        _ => 0,
    })
}

/// `gettoalign`: padding before an item of `size` at offset `len`.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

/// `controloptions`: endianness, alignment, spaces; anything else is an
/// invalid option.
fn controloptions(opt: u8, fmt: &mut Fmt, h: &mut Header) -> LuaResult<()> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.endian = Endian::Big;
            Ok(())
        }
        b'<' => {
            h.endian = Endian::Little;
            Ok(())
        }
        b'!' => {
            let a = fmt.getnum(MAXALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(LuaError::msg(format!(
                    "alignment {} is not a power of 2",
                    a as i32
                )));
            }
            h.align = a;
            Ok(())
        }
        _ => {
            let mut m = b"invalid format option '".to_vec();
            m.push(opt);
            m.push(b'\'');
            Err(LuaError::Arg(1, m))
        }
    }
}

fn is_int_opt(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// `putinteger`: the number's low `size` bytes (zeros beyond 8 bytes).
fn putinteger(out: &mut Vec<u8>, n: f64, endian: Endian, size: usize) {
    let mut value = if n < 0.0 {
        c_double_to_i64(n) as u64
    } else {
        c_double_to_u64(n)
    };
    let mut buf = [0u8; MAXINTSIZE];
    for i in 0..size {
        let at = if endian == Endian::Little {
            i
        } else {
            size - 1 - i
        };
        buf[at] = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    out.extend_from_slice(&buf[..size]);
}

unsafe fn pack(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    scratch::with(l, 1, |s| pack_into(l, &mut s.out))
}

unsafe fn pack_into(l: *mut ffi::lua_State, out: &mut Vec<u8>) -> LuaResult<c_int> {
    let fmt_s = check_cstr(l, 1)?;
    let mut fmt = Fmt { s: fmt_s, i: 0 };
    let mut h = Header::new();
    let mut arg: c_int = 2;
    let mut total: usize = 0;
    // The C original pushes a nil here to separate the arguments from its
    // buffer: an argument just past the last one reads as nil, not "no value".
    ffi::lua_pushnil(l);
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        let toalign = gettoalign(total, &h, opt, size);
        total += toalign;
        out.resize(out.len() + toalign, 0);
        match opt {
            _ if is_int_opt(opt) => {
                let n = check_number(l, arg)?;
                arg += 1;
                putinteger(out, n, h.endian, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(l, arg)? as f32;
                arg += 1;
                let b = if h.endian == Endian::Little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            b'd' => {
                let d = check_number(l, arg)?;
                arg += 1;
                let b = if h.endian == Endian::Little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            b'c' | b's' => {
                let s = check_bytes(l, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The original checks after moving past the argument.
                    return Err(LuaError::arg(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => controloptions(opt, &mut fmt, &mut h)?,
        }
        total += size;
    }
    push_bytes(l, out);
    Ok(1)
}

/// `getinteger`: `size` bytes as an unsigned or sign-extended integer.
fn getinteger(buf: &[u8], endian: Endian, signed: bool, size: usize) -> f64 {
    let mut v: u64 = 0;
    for i in 0..size {
        let b = if endian == Endian::Big {
            buf[i]
        } else {
            buf[size - 1 - i]
        };
        v = (v << 8) | b as u64;
    }
    if !signed {
        return v as f64;
    }
    // (size*8 - 1) is taken modulo 64 by the x86 shift, as in the original.
    let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

unsafe fn unpack(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let fmt_s = check_cstr(l, 1)?;
    let data = check_bytes(l, 2)?;
    let ld = data.len();
    let pos = opt_integer(l, 3, 1)? as u64;
    if pos == 0 {
        return Err(LuaError::arg(3, "offset must be 1 or greater"));
    }
    // A negative offset is a huge size_t in C: "data string too short".
    let mut pos = (pos - 1) as usize;
    let too_short = || LuaError::arg(2, "data string too short");
    let mut fmt = Fmt { s: fmt_s, i: 0 };
    let mut h = Header::new();
    let mut n: c_int = 0;
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        pos = pos
            .checked_add(gettoalign(pos, &h, opt, size))
            .ok_or_else(too_short)?;
        if pos.checked_add(size).is_none_or(|end| end > ld) {
            return Err(too_short());
        }
        if ffi::lua_checkstack(l, 2) == 0 {
            return Err(LuaError::msg("stack overflow (too many results)"));
        }
        match opt {
            _ if is_int_opt(opt) => {
                let signed = opt.is_ascii_lowercase();
                ffi::lua_pushnumber(l, getinteger(&data[pos..], h.endian, signed, size));
                n += 1;
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.endian == Endian::Little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                ffi::lua_pushnumber(l, f as f64);
                n += 1;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let d = if h.endian == Endian::Little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                ffi::lua_pushnumber(l, d);
                n += 1;
            }
            b'c' => {
                if size == 0 {
                    if n == 0 || ffi::lua_isnumber(l, -1) == 0 {
                        return Err(LuaError::msg("format 'c0' needs a previous size"));
                    }
                    size = c_double_to_u64(ffi::lua_tonumber(l, -1)) as usize;
                    ffi::lua_settop(l, -2);
                    n -= 1;
                    if size > ld || pos > ld - size {
                        return Err(too_short());
                    }
                }
                push_bytes(l, &data[pos..pos + size]);
                n += 1;
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(LuaError::msg("unfinished string in data"));
                };
                push_bytes(l, &data[pos..pos + e]);
                size = e + 1;
                n += 1;
            }
            _ => controloptions(opt, &mut fmt, &mut h)?,
        }
        pos += size;
    }
    ffi::lua_pushinteger(l, (pos + 1) as ffi::lua_Integer);
    Ok(n + 1)
}

unsafe fn size(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let fmt_s = check_cstr(l, 1)?;
    let mut fmt = Fmt { s: fmt_s, i: 0 };
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next() {
        let size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(LuaError::arg(1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(LuaError::arg(1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(opt, &mut fmt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    ffi::lua_pushinteger(l, pos as ffi::lua_Integer);
    Ok(1)
}

lua_cfn!(c_pack, pack);
lua_cfn!(c_unpack, unpack);
lua_cfn!(c_size, size);

/// Pushes the `struct` table, its functions sharing the scratch userdata
/// on top of the stack (left there).
pub unsafe fn open(l: *mut ffi::lua_State) {
    ffi::lua_createtable(l, 0, 3);
    set_funcs(
        l,
        &[("pack", c_pack), ("unpack", c_unpack), ("size", c_size)],
        1,
    );
}
