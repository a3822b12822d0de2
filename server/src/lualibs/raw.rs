//! The thin layer between the libraries and Lua's C API.
//!
//! The four libraries are written against the raw C API (`mlua::ffi`) rather
//! than mlua's safe wrappers for one reason: their errors must be plain Lua
//! strings, exactly as the C originals raise them, so that a script's
//! `pcall(cjson.decode, s)` sees the same message as under Redis. mlua's own
//! callbacks raise wrapped userdata errors instead.
//!
//! Raising a Lua error is a `longjmp` out of the C function. The bodies here
//! therefore never raise directly: they return `Err(LuaError)`, and
//! [`lua_cfn!`] raises it only after every Rust value of the body has been
//! dropped, so no destructor is skipped. The C API calls a body makes can
//! still raise (allocation failure, as in the C originals): the bodies keep
//! their buffers in the VM's scratch userdata (scratch.rs), not in Rust
//! locals, so nothing is skipped or leaked then either.

use mlua::ffi;
use std::os::raw::c_int;

/// An error a library function raises, in the C originals' words.
pub enum LuaError {
    /// `luaL_error(L, msg)`: the message after the calling Lua line's
    /// position ("user_script:1: "), none when the caller is not Lua code.
    Msg(Vec<u8>),
    /// An error the Lua core raises from within a C function (e.g. "table
    /// index is nil"): the message as is, no position.
    Raw(Vec<u8>),
    /// `luaL_argerror(L, narg, msg)`: "bad argument #narg to 'name' (msg)".
    Arg(c_int, Vec<u8>),
}

pub type LuaResult<T> = Result<T, LuaError>;

impl LuaError {
    pub fn msg(s: impl Into<Vec<u8>>) -> LuaError {
        LuaError::Msg(s.into())
    }
    pub fn arg(narg: c_int, s: impl Into<Vec<u8>>) -> LuaError {
        LuaError::Arg(narg, s.into())
    }
}

/// Raises `e` as a Lua error. Never returns.
///
/// # Safety
/// Must be called from a C function running on `l`, with no live Rust value
/// that needs dropping in any frame between here and Lua.
#[cold]
pub unsafe fn raise(l: *mut ffi::lua_State, e: LuaError) -> ! {
    match e {
        LuaError::Msg(m) => {
            ffi::luaL_where(l, 1);
            ffi::lua_pushlstring(l, m.as_ptr().cast(), m.len());
            drop(m);
            ffi::lua_concat(l, 2);
            ffi::lua_error(l)
        }
        LuaError::Raw(m) => {
            ffi::lua_pushlstring(l, m.as_ptr().cast(), m.len());
            drop(m);
            ffi::lua_error(l)
        }
        LuaError::Arg(narg, m) => {
            ffi::lua_pushlstring(l, m.as_ptr().cast(), m.len());
            drop(m);
            // The message is anchored on the stack; luaL_argerror copies it.
            let p = ffi::lua_tolstring(l, -1, std::ptr::null_mut());
            ffi::luaL_argerror(l, narg, p);
            unreachable!("luaL_argerror returned")
        }
    }
}

/// Defines `extern "C-unwind" fn $name(L) -> c_int` around a body
/// `unsafe fn(*mut lua_State) -> LuaResult<c_int>`.
macro_rules! lua_cfn {
    ($name:ident, $body:path) => {
        unsafe extern "C-unwind" fn $name(l: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
            match $body(l) {
                Ok(n) => n,
                Err(e) => $crate::lualibs::raw::raise(l, e),
            }
        }
    };
}
pub(crate) use lua_cfn;

/// The type name `luaL_typename` gives: "no value" past the top.
pub unsafe fn type_name(l: *mut ffi::lua_State, idx: c_int) -> &'static str {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TNONE => "no value",
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TLIGHTUSERDATA | ffi::LUA_TUSERDATA => "userdata",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        _ => "?",
    }
}

/// `luaL_typerror`: "<expected> expected, got <actual>".
pub fn type_error(narg: c_int, expected: &str, got: &str) -> LuaError {
    LuaError::arg(narg, format!("{expected} expected, got {got}"))
}

/// `luaL_checknumber`.
pub unsafe fn check_number(l: *mut ffi::lua_State, narg: c_int) -> LuaResult<f64> {
    let d = ffi::lua_tonumber(l, narg);
    if d == 0.0 && ffi::lua_isnumber(l, narg) == 0 {
        return Err(type_error(narg, "number", type_name(l, narg)));
    }
    Ok(d)
}

/// `luaL_checkinteger` (Lua 5.1: the number truncated to `ptrdiff_t` by C).
pub unsafe fn check_integer(l: *mut ffi::lua_State, narg: c_int) -> LuaResult<i64> {
    let d = ffi::lua_tointeger_(l, narg);
    if d == 0 && ffi::lua_isnumber(l, narg) == 0 {
        return Err(type_error(narg, "number", type_name(l, narg)));
    }
    Ok(d as i64)
}

/// `luaL_optinteger`.
pub unsafe fn opt_integer(l: *mut ffi::lua_State, narg: c_int, def: i64) -> LuaResult<i64> {
    if ffi::lua_isnoneornil(l, narg) != 0 {
        Ok(def)
    } else {
        check_integer(l, narg)
    }
}

/// `luaL_checklstring`: numbers are converted in place, as in C. The slice
/// borrows the Lua string at `narg`, which must stay on the stack while it
/// is used.
pub unsafe fn check_bytes<'a>(l: *mut ffi::lua_State, narg: c_int) -> LuaResult<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, narg, &mut len);
    if p.is_null() {
        return Err(type_error(narg, "string", type_name(l, narg)));
    }
    Ok(std::slice::from_raw_parts(p.cast(), len))
}

/// `luaL_checkstring`'s view: the string up to its first NUL, as C sees it.
pub unsafe fn check_cstr<'a>(l: *mut ffi::lua_State, narg: c_int) -> LuaResult<&'a [u8]> {
    let s = check_bytes(l, narg)?;
    Ok(match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    })
}

/// `lua_pushlstring` of a byte slice.
pub unsafe fn push_bytes(l: *mut ffi::lua_State, s: &[u8]) {
    ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
}

/// 2^63, the first double outside `i64`.
const TWO63: f64 = 9_223_372_036_854_775_808.0;

/// The x86-64 `cvttsd2si` conversion C compilers emit for `(int64_t)d`:
/// out of range and NaN give `i64::MIN`.
pub fn c_double_to_i64(d: f64) -> i64 {
    if (-TWO63..TWO63).contains(&d) {
        d as i64
    } else {
        i64::MIN
    }
}

/// `(int)d` as compiled for x86-64: out of range and NaN give `i32::MIN`.
pub fn c_double_to_i32(d: f64) -> i32 {
    if d > -2_147_483_649.0 && d < 2_147_483_648.0 {
        d as i32
    } else {
        i32::MIN
    }
}

/// `(uint64_t)d` as gcc compiles it for x86-64 (values from 2^63 go
/// through a subtraction, so 2^64 and beyond wrap to 0; NaN gives 2^63).
pub fn c_double_to_u64(d: f64) -> u64 {
    if d >= TWO63 {
        (c_double_to_i64(d - TWO63) as u64) ^ (1u64 << 63)
    } else {
        c_double_to_i64(d) as u64
    }
}

/// Sets `t[name] = value-on-top` (popping it) without metamethods.
pub unsafe fn raw_set_field(l: *mut ffi::lua_State, t: c_int, name: &str) {
    let t = if t < 0 && t > ffi::LUA_REGISTRYINDEX {
        ffi::lua_gettop(l) + t + 1
    } else {
        t
    };
    push_bytes(l, name.as_bytes());
    ffi::lua_insert(l, -2);
    ffi::lua_rawset(l, t);
}

/// Registers `funcs` into the table on top of the stack, each as a C closure
/// over the `nup` values just below that table (left in place).
pub unsafe fn set_funcs(l: *mut ffi::lua_State, funcs: &[(&str, ffi::lua_CFunction)], nup: c_int) {
    for (name, f) in funcs {
        for _ in 0..nup {
            ffi::lua_pushvalue(l, -(nup + 1));
        }
        ffi::lua_pushcclosure(l, *f, nup);
        raw_set_field(l, -2, name);
    }
}
