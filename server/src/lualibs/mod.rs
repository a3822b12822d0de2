//! Redis 7.0's Lua libraries, as globals for a script VM: `cjson`
//! (lua-cjson 2.1.0), `cmsgpack` (lua_cmsgpack 0.4.0), `bit` (LuaBitOp
//! 1.0.2) and `struct` (lua_struct 0.2), with the originals' behaviour and
//! error texts, implemented in Rust on Lua's C API (see [`raw`] for why).
//!
//! The scripting engine calls [`install`] once per VM, before it protects
//! the globals table. Making these tables read-only, as Redis does, is the
//! engine's job (it applies to every global library alike).

mod bit;
mod cjson;
mod cmsgpack;
mod raw;
mod scratch;
mod structlib;
#[cfg(test)]
mod tests;

use mlua::ffi;

/// Sets the globals `cjson`, `cmsgpack`, `bit` and `struct` on `lua`.
pub fn install(lua: &mlua::Lua) -> mlua::Result<()> {
    // SAFETY: the closure only uses the C API on the state it is given, in
    // protected mode (exec_raw), and leaves the stack balanced.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            type Open = unsafe fn(*mut ffi::lua_State);
            let libs: [(&str, Open); 4] = [
                ("cjson", cjson::open),
                ("cmsgpack", cmsgpack::open),
                ("bit", bit::open),
                ("struct", structlib::open),
            ];
            // One set of scratch buffers for the VM (see scratch.rs).
            scratch::push_new(l);
            for (name, open) in libs {
                open(l);
                raw::raw_set_field(l, ffi::LUA_GLOBALSINDEX, name);
            }
            ffi::lua_settop(l, -2);
        })
    }
}
