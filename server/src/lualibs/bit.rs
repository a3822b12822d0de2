//! `bit`: LuaBitOp 1.0.2, the 32-bit bit operations Redis exposes.
//!
//! Every argument is a Lua double normalised to 32 bits the way LuaBitOp
//! does it (adding 2^52+2^51 and taking the low word, so values wrap modulo
//! 2^32 and fractions round to nearest-even); results are signed 32-bit
//! values returned as doubles.

use super::raw::{lua_cfn, set_funcs, type_error, type_name, LuaResult};
use mlua::ffi;
use std::os::raw::c_int;

/// LuaBitOp's `barg`: the argument's low 32 bits after the 2^52+2^51 trick.
unsafe fn barg(l: *mut ffi::lua_State, idx: c_int) -> LuaResult<u32> {
    let n = ffi::lua_tonumber(l, idx) + 6_755_399_441_055_744.0;
    let b = n.to_bits() as u32;
    if b == 0 && ffi::lua_isnumber(l, idx) == 0 {
        return Err(type_error(idx, "number", type_name(l, idx)));
    }
    Ok(b)
}

unsafe fn ret(l: *mut ffi::lua_State, b: u32) -> LuaResult<c_int> {
    ffi::lua_pushnumber(l, b as i32 as f64);
    Ok(1)
}

unsafe fn tobit(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    ret(l, barg(l, 1)?)
}

unsafe fn bnot(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    ret(l, !barg(l, 1)?)
}

/// band/bor/bxor fold the arguments from the last one down, as LuaBitOp does
/// (so a type error names the highest bad argument first).
unsafe fn fold(l: *mut ffi::lua_State, op: fn(u32, u32) -> u32) -> LuaResult<c_int> {
    let mut b = barg(l, 1)?;
    let mut i = ffi::lua_gettop(l);
    while i > 1 {
        b = op(b, barg(l, i)?);
        i -= 1;
    }
    ret(l, b)
}

unsafe fn band(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    fold(l, |a, b| a & b)
}
unsafe fn bor(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    fold(l, |a, b| a | b)
}
unsafe fn bxor(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    fold(l, |a, b| a ^ b)
}

/// Shifts and rotates take the count modulo 32.
unsafe fn shift(l: *mut ffi::lua_State, op: fn(u32, u32) -> u32) -> LuaResult<c_int> {
    let b = barg(l, 1)?;
    let n = barg(l, 2)? & 31;
    ret(l, op(b, n))
}

unsafe fn lshift(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    shift(l, |b, n| b << n)
}
unsafe fn rshift(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    shift(l, |b, n| b >> n)
}
unsafe fn arshift(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    shift(l, |b, n| ((b as i32) >> n) as u32)
}
unsafe fn rol(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    shift(l, |b, n| b.rotate_left(n))
}
unsafe fn ror(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    shift(l, |b, n| b.rotate_right(n))
}

unsafe fn bswap(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    ret(l, barg(l, 1)?.swap_bytes())
}

/// `bit.tohex(x [,n])`: n hex digits (default 8, at most 8), upper case when
/// n is negative. -2^31 (whose negation overflows in C) gives 8 upper-case
/// digits, as Redis's build does.
unsafe fn tohex(l: *mut ffi::lua_State) -> LuaResult<c_int> {
    let mut b = barg(l, 1)?;
    let mut n: i32 = if ffi::lua_isnone(l, 2) != 0 {
        8
    } else {
        barg(l, 2)? as i32
    };
    let mut digits: &[u8; 16] = b"0123456789abcdef";
    if n < 0 {
        n = n.wrapping_neg();
        digits = b"0123456789ABCDEF";
    }
    let n = if !(0..=8).contains(&n) { 8 } else { n as usize };
    let mut buf = [0u8; 8];
    for i in (0..n).rev() {
        buf[i] = digits[(b & 15) as usize];
        b >>= 4;
    }
    super::raw::push_bytes(l, &buf[..n]);
    Ok(1)
}

lua_cfn!(c_tobit, tobit);
lua_cfn!(c_bnot, bnot);
lua_cfn!(c_band, band);
lua_cfn!(c_bor, bor);
lua_cfn!(c_bxor, bxor);
lua_cfn!(c_lshift, lshift);
lua_cfn!(c_rshift, rshift);
lua_cfn!(c_arshift, arshift);
lua_cfn!(c_rol, rol);
lua_cfn!(c_ror, ror);
lua_cfn!(c_bswap, bswap);
lua_cfn!(c_tohex, tohex);

/// Pushes the `bit` table.
pub unsafe fn open(l: *mut ffi::lua_State) {
    ffi::lua_createtable(l, 0, 12);
    set_funcs(
        l,
        &[
            ("tobit", c_tobit),
            ("bnot", c_bnot),
            ("band", c_band),
            ("bor", c_bor),
            ("bxor", c_bxor),
            ("lshift", c_lshift),
            ("rshift", c_rshift),
            ("arshift", c_arshift),
            ("rol", c_rol),
            ("ror", c_ror),
            ("bswap", c_bswap),
            ("tohex", c_tohex),
        ],
        0,
    );
}
