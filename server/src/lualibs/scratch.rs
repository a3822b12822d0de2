//! Reusable buffers owned by the Lua VM.
//!
//! A library call that fails inside the Lua C API (allocation failure under
//! a memory bound, a full Lua stack) leaves by `longjmp`, skipping the
//! destructors of its Rust frames. So the calls keep their output and work
//! buffers not in Rust locals but here: in one userdata per VM, shared as an
//! upvalue by the library functions and freed by its `__gc`. A call that is
//! cut short leaves them behind to be cleared and reused by the next call,
//! nothing leaks. Buffers grown past [`KEEP`] are shrunk after each call.
//!
//! A call holds the buffers for its duration. Under Redis's sandbox no Lua
//! code can run inside a library call (every table access is raw; no
//! `newproxy`, so no Lua finalizers), but if one did and re-entered a
//! library, the inner call sees the buffers held and uses fresh ones of its
//! own. A holder cut short by `longjmp` is recognised by its native stack
//! position: a live holder is always up the stack from any call it
//! (indirectly) makes.

use super::cjson::EncFrame;
use super::cmsgpack::MpFrame;
use mlua::ffi;
use std::os::raw::c_int;

/// Capacity kept between calls; larger buffers are shrunk back.
const KEEP: usize = 1 << 20;

/// Tells a scratch userdata from any other (its `__gc` could be reached and
/// called with another userdata through the debug library).
const MAGIC: u64 = 0x7e55_e7a5_c7a7_c4ed;

#[derive(Default)]
pub struct Scratch {
    magic: u64,
    /// Native stack address of the holding call's frame; 0 when free.
    holder: usize,
    /// Output being built (encoders, packers).
    pub out: Vec<u8>,
    /// cjson's decoded string token.
    pub tmp: Vec<u8>,
    pub json_enc: Vec<EncFrame>,
    pub json_dec: Vec<Option<c_int>>,
    pub mp_dec: Vec<MpFrame>,
}

#[inline(always)]
fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl Scratch {
    fn clear(&mut self) {
        self.out.clear();
        self.tmp.clear();
        self.json_enc.clear();
        self.json_dec.clear();
        self.mp_dec.clear();
    }

    fn release(&mut self) {
        self.holder = 0;
        fn trim<T>(v: &mut Vec<T>) {
            if v.capacity() * std::mem::size_of::<T>() > KEEP {
                v.clear();
                v.shrink_to(KEEP / std::mem::size_of::<T>().max(1));
            }
        }
        trim(&mut self.out);
        trim(&mut self.tmp);
        trim(&mut self.json_enc);
        trim(&mut self.json_dec);
        trim(&mut self.mp_dec);
    }
}

unsafe extern "C-unwind" fn gc(l: *mut ffi::lua_State) -> c_int {
    let p = ffi::lua_touserdata(l, 1) as *mut Scratch;
    if !p.is_null()
        && ffi::lua_objlen(l, 1) == std::mem::size_of::<Scratch>()
        && (*p).magic == MAGIC
    {
        // Leave an empty, unmarked value behind: a second call is a no-op.
        std::ptr::replace(p, Scratch::default());
    }
    0
}

/// Pushes a new scratch userdata.
pub unsafe fn push_new(l: *mut ffi::lua_State) {
    let p = ffi::lua_newuserdata(l, std::mem::size_of::<Scratch>()) as *mut Scratch;
    p.write(Scratch {
        magic: MAGIC,
        ..Scratch::default()
    });
    ffi::lua_createtable(l, 0, 2);
    ffi::lua_pushcfunction(l, gc);
    ffi::lua_setfield(l, -2, c"__gc".as_ptr());
    ffi::lua_pushboolean(l, 0);
    ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
    ffi::lua_setmetatable(l, -2);
}

/// Runs `f` with the VM's scratch buffers (upvalue `up` of the running C
/// function), cleared; or with fresh ones if a call up the stack holds them.
pub unsafe fn with<R>(
    l: *mut ffi::lua_State,
    up: c_int,
    f: impl FnOnce(&mut Scratch) -> super::raw::LuaResult<R>,
) -> super::raw::LuaResult<R> {
    let marker = here();
    let p = ffi::lua_touserdata(l, ffi::lua_upvalueindex(up)) as *mut Scratch;
    if !p.is_null() && ((*p).holder == 0 || marker >= (*p).holder) {
        let s = &mut *p;
        s.holder = marker;
        s.clear();
        let r = f(s);
        s.release();
        return r;
    }
    let mut own = Scratch::default();
    f(&mut own)
}
