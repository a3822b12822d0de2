//! One Lua 5.1 VM per shard thread, built once on first use: Redis 7.0's
//! sandbox, the `redis` library, and the cache of compiled scripts.
//!
//! The sandbox, as Redis 7.0 has it: the base, table, string and math
//! libraries (no io, os, package, loadfile, dofile, print); reading a
//! global that does not exist and creating a global are errors; the
//! library tables refuse new fields. KEYS and ARGV are two tables of the
//! VM, refilled for each call (no per-call environment is built).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

use super::kill::{self, RunState};
use super::store::{self, Sha};
use crate::conn::Conn;

/// The most memory one shard's Lua VM may hold: a script that allocates
/// without bound fails with an error instead of exhausting the machine.
pub const LUA_MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// Instructions between two looks at the kill flag.
const HOOK_EVERY: u32 = 10_000;

/// Flags of a compiled script (from its `#!lua` shebang).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ScriptFlags {
    /// Declared with a shebang (flags then default to "none allowed").
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
}

/// A compiled script.
#[derive(Clone)]
pub struct Script {
    pub func: Function,
    pub flags: ScriptFlags,
}

/// The script running on this thread, if any: what `redis.call` needs.
pub struct Running {
    /// The connection running it; set only while its future is polled
    /// inside `eval::run` (see the SAFETY note in call.rs).
    pub conn: Cell<*mut Conn>,
    /// `redis.setresp`: the protocol of replies the script sees.
    pub resp: Cell<u8>,
    /// EVAL_RO, EVALSHA_RO, or a `no-writes` script.
    pub read_only: Cell<bool>,
}

pub struct ScriptVm {
    pub lua: Lua,
    keys: Table,
    argv: Table,
    globals: Table,
    cache: RefCell<HashMap<Sha, Script>>,
    epoch: Cell<u64>,
    pub running: Running,
    pub state: Arc<RunState>,
}

thread_local! {
    static VM: RefCell<Option<Rc<ScriptVm>>> = const { RefCell::new(None) };
}

/// This thread's VM, built on first use.
pub fn vm() -> Rc<ScriptVm> {
    VM.with(|v| {
        let mut v = v.borrow_mut();
        if let Some(vm) = v.as_ref() {
            return vm.clone();
        }
        let vm = Rc::new(ScriptVm::new().expect("building the Lua VM"));
        *v = Some(vm.clone());
        vm
    })
}

/// The sandbox's Lua side: errors on reading missing globals and creating
/// new ones, and read-only library tables.
const SANDBOX: &str = r#"
local rawget, error, tostring, setmetatable = rawget, error, tostring, setmetatable
local G = ...
local function readonly() error("Attempt to modify a readonly table", 2) end
for _, name in ipairs({"string", "table", "math", "redis", "coroutine", "cjson", "cmsgpack", "bit", "struct"}) do
  local lib = rawget(G, name)
  if lib then setmetatable(lib, {__newindex = readonly}) end
end
setmetatable(G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __newindex = readonly,
})
"#;

impl ScriptVm {
    fn new() -> mlua::Result<ScriptVm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        let g = lua.globals();
        for name in [
            "loadfile", "dofile", "print", "module", "require", "package",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        super::call::install(&lua, &g)?;
        // cjson, cmsgpack, bit and struct, before the sandbox seals them.
        tessera_server::lualibs::install(&lua)?;
        let keys = lua.create_table()?;
        let argv = lua.create_table()?;
        g.raw_set("KEYS", keys.clone())?;
        g.raw_set("ARGV", argv.clone())?;
        lua.load(SANDBOX)
            .set_name("=sandbox")
            .call::<()>(g.clone())?;
        lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
        let state = kill::register();
        let st = state.clone();
        // Global: every coroutine mlua creates for a call gets it.
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if st.kill.swap(false, Ordering::AcqRel) {
                    return Err(mlua::Error::external(super::call::ScriptError::killed()));
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(ScriptVm {
            lua,
            keys,
            argv,
            globals: g,
            cache: RefCell::new(HashMap::new()),
            epoch: Cell::new(store::epoch()),
            running: Running {
                conn: Cell::new(std::ptr::null_mut()),
                resp: Cell::new(2),
                read_only: Cell::new(false),
            },
            state,
        })
    }

    /// The compiled script for `sha`, if this shard has it (after SCRIPT
    /// FLUSH on any shard, the cache is dropped first).
    pub fn cached(&self, sha: &Sha) -> Option<Script> {
        let e = store::epoch();
        if e != self.epoch.get() {
            self.cache.borrow_mut().clear();
            self.epoch.set(e);
        }
        self.cache.borrow().get(sha).cloned()
    }

    /// Compiles a body (its shebang line already parsed) and caches it.
    /// Err: Redis's compile error text.
    pub fn compile(&self, sha: Sha, code: &[u8], flags: ScriptFlags) -> Result<Script, String> {
        let func = self
            .lua
            .load(code)
            .set_name("@user_script")
            .set_environment(self.globals.clone())
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                format!("ERR Error compiling script (new function): {msg}")
            })?;
        let func = self.untail(func);
        let s = Script { func, flags };
        self.cache.borrow_mut().insert(sha, s.clone());
        Ok(s)
    }

    /// The script with its tail calls made ordinary calls (tailcall.rs);
    /// as compiled if its bytecode cannot be patched.
    fn untail(&self, func: Function) -> Function {
        let mut bin = func.dump(false);
        if !super::tailcall::untail(&mut bin) {
            return func;
        }
        self.lua
            .load(&bin[..])
            .set_mode(mlua::chunk::ChunkMode::Binary)
            .set_environment(self.globals.clone())
            .into_function()
            .unwrap_or(func)
    }

    /// Fills KEYS and ARGV for one call, reusing their tables.
    pub fn set_args(&self, keys: &[&[u8]], argv: &[&[u8]]) -> mlua::Result<()> {
        fill(&self.lua, &self.keys, keys)?;
        fill(&self.lua, &self.argv, argv)
    }
}

fn fill(lua: &Lua, t: &Table, items: &[&[u8]]) -> mlua::Result<()> {
    let old = t.raw_len();
    for (i, a) in items.iter().enumerate() {
        t.raw_seti(i + 1, lua.create_string(a)?)?;
    }
    for i in items.len() + 1..=old {
        t.raw_seti(i, Value::Nil)?;
    }
    Ok(())
}

/// Parses a `#!lua [flags=a,b]` first line. Ok((flags, offset of the code
/// to compile: the newline ending the shebang, so line numbers hold)).
pub fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    let mut flags = ScriptFlags::default();
    if !body.starts_with(b"#!") {
        return Ok((flags, 0));
    }
    flags.shebang = true;
    let end = memchr::memchr(b'\n', body).unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[2..end]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    if parts.next() != Some("lua") {
        let whole = String::from_utf8_lossy(&body[..end]);
        return Err(format!("ERR Unexpected engine in script shebang: {whole}"));
    }
    for p in parts {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {p}"));
        };
        for f in list.split(',').filter(|f| !f.is_empty()) {
            match f {
                "no-writes" => flags.no_writes = true,
                "allow-oom" => flags.allow_oom = true,
                "allow-stale" => flags.allow_stale = true,
                "no-cluster" => flags.no_cluster = true,
                "allow-cross-slot-keys" => flags.allow_cross_slot = true,
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    Ok((flags, end))
}
