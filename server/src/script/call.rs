//! `redis.call` and `redis.pcall`, the rest of the `redis` library, and
//! the sandbox's `pcall` and `error`, which carry Redis 7.0's error values.
//!
//! A command called from a script goes through the connection's ordinary
//! routes (`Conn::route`), marked in_tx: inline on this shard, or
//! forwarded, split or gathered across shards under the locks the script
//! holds. Waiting for another shard suspends the script's coroutine, so
//! `redis.call` is an async Rust function; Lua 5.1 cannot yield across a
//! C `pcall`, so `pcall` is one too (it runs its function as a coroutine).

use std::fmt;

use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};
use tessera_protocol::{ArgSpan, Args};
use tessera_shard::command::{self, flags, table};

use super::convert;
use super::vm::vm;

/// An error raised inside a script, with what Redis reports of it.
#[derive(Debug, Clone)]
pub struct ScriptError {
    /// The message.
    pub msg: String,
    /// True: it came as an error reply or `{err=...}` table and carries
    /// its own code; false: a plain Lua error, reported as `ERR msg`.
    pub coded: bool,
    /// The script line where it was raised, when known.
    pub line: Option<usize>,
    /// SCRIPT KILL: never caught by pcall.
    pub killed: bool,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ScriptError {}

impl ScriptError {
    pub fn coded(msg: impl Into<String>, line: Option<usize>) -> ScriptError {
        ScriptError {
            msg: msg.into(),
            coded: true,
            line,
            killed: false,
        }
    }

    pub fn killed() -> ScriptError {
        ScriptError {
            msg: super::kill::KILLED.to_string(),
            coded: true,
            line: None,
            killed: true,
        }
    }
}

/// The ScriptError inside an mlua error, if any.
pub fn script_error(e: &mlua::Error) -> Option<&ScriptError> {
    match e {
        mlua::Error::CallbackError { cause, .. } => script_error(cause),
        mlua::Error::ExternalError(ext) => ext.downcast_ref::<ScriptError>(),
        mlua::Error::WithContext { cause, .. } => script_error(cause),
        _ => None,
    }
}

/// Whether the script failed because the VM's memory bound was reached.
pub fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        _ => false,
    }
}

/// A Lua runtime error's message without mlua's traceback.
fn strip_traceback(s: &str) -> &str {
    s.split("\nstack traceback:").next().unwrap_or(s)
}

/// The script line named in a traceback or message (`user_script:N:`).
fn traceback_line(s: &str) -> Option<usize> {
    let pos = s.find("user_script:")?;
    let rest = &s[pos + "user_script:".len()..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// What a script's failure replies: the message (with its code) and the
/// line, as Redis 7.0 words them.
pub fn describe(e: &mlua::Error) -> (String, Option<usize>) {
    if let Some(se) = script_error(e) {
        let msg = if se.coded {
            se.msg.clone()
        } else {
            format!("ERR {}", se.msg)
        };
        let line = se.line.or_else(|| traceback_of(e).and_then(traceback_line));
        return (msg, line);
    }
    match e {
        mlua::Error::RuntimeError(s) => {
            let msg = strip_traceback(s);
            let line = s
                .find("stack traceback:")
                .and_then(|p| traceback_line(&s[p..]))
                .or_else(|| traceback_line(msg));
            (format!("ERR {msg}"), line)
        }
        mlua::Error::MemoryError(_) => (
            "ERR Lua script ran out of memory (the script's memory bound was reached)".to_string(),
            None,
        ),
        mlua::Error::CallbackError { cause, traceback } => {
            let (m, l) = describe(cause);
            (m, l.or_else(|| traceback_line(traceback)))
        }
        other => (format!("ERR {}", strip_traceback(&other.to_string())), None),
    }
}

fn traceback_of(e: &mlua::Error) -> Option<&str> {
    match e {
        mlua::Error::CallbackError { traceback, .. } => Some(traceback),
        _ => None,
    }
}

/// The current line of the script's innermost frame at or above `level`
/// (1: the caller of the Rust function running now). Frames of other
/// chunks (the sandbox's metamethods, mlua's wrapper of async functions)
/// are skipped: Redis reports the script's line.
fn line_at(lua: &Lua, level: usize) -> Option<usize> {
    for l in level..level + 64 {
        let found = lua.inspect_stack(l, |d| {
            let ours = d.source().source.as_deref() == Some("@user_script");
            ours.then(|| d.current_line()).flatten()
        })?;
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Installs `redis`, `pcall` and `error` into the globals.
pub fn install(lua: &Lua, g: &Table) -> mlua::Result<()> {
    let redis = lua.create_table()?;
    redis.raw_set(
        "call",
        lua.create_async_function(|lua, args: MultiValue| {
            let line = line_at(&lua, 1);
            async move { redis_call(lua, args, true, line).await }
        })?,
    )?;
    redis.raw_set(
        "pcall",
        lua.create_async_function(|lua, args: MultiValue| {
            let line = line_at(&lua, 1);
            async move { redis_call(lua, args, false, line).await }
        })?,
    )?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, msg: Value| {
            let Value::String(s) = msg else {
                return Err(mlua::Error::external(ScriptError::coded(
                    "ERR wrong number or type of arguments",
                    line_at(lua, 1),
                )));
            };
            let b = s.as_bytes();
            let b: &[u8] = b.strip_prefix(b"-").unwrap_or(&b);
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(b)?)?;
            Ok(t)
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, msg: Value| {
            let Value::String(s) = msg else {
                return Err(mlua::Error::external(ScriptError::coded(
                    "ERR wrong number or type of arguments",
                    line_at(lua, 1),
                )));
            };
            let t = lua.create_table()?;
            t.raw_set("ok", s)?;
            Ok(t)
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|lua, v: MultiValue| {
            if v.len() != 1 {
                return Err(mlua::Error::external(ScriptError::coded(
                    "ERR wrong number of arguments",
                    line_at(lua, 1),
                )));
            }
            let s = lua
                .coerce_string(v.into_iter().next().unwrap_or(Value::Nil))?
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default();
            lua.create_string(super::store::sha1_hex(&s))
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|lua, v: MultiValue| {
            let mut it = v.into_iter();
            let level = match it.next() {
                Some(Value::Integer(n)) => n,
                Some(Value::Number(n)) => n as i64,
                _ => {
                    return Err(mlua::Error::external(ScriptError::coded(
                        "ERR redis.log() requires two arguments or more.",
                        line_at(lua, 1),
                    )))
                }
            };
            let mut text = String::new();
            for (i, a) in it.enumerate() {
                if i > 0 {
                    text.push(' ');
                }
                if let Some(s) = lua.coerce_string(a)? {
                    text.push_str(&s.to_string_lossy());
                }
            }
            match level {
                0 => log::debug!("script: {text}"),
                1 => log::info!("script: {text}"),
                2 => log::info!("script: {text}"),
                3 => log::warn!("script: {text}"),
                _ => {
                    return Err(mlua::Error::external(ScriptError::coded(
                        "ERR Invalid debug level.",
                        line_at(lua, 1),
                    )))
                }
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "setresp",
        lua.create_function(|lua, v: MultiValue| {
            let n = match v.iter().next() {
                Some(Value::Integer(n)) if v.len() == 1 => *n,
                Some(Value::Number(n)) if v.len() == 1 => *n as i64,
                _ => {
                    return Err(mlua::Error::external(ScriptError::coded(
                        "ERR redis.setresp() requires one argument.",
                        line_at(lua, 1),
                    )))
                }
            };
            if n != 2 && n != 3 {
                return Err(mlua::Error::external(ScriptError::coded(
                    "ERR RESP version must be 2 or 3.",
                    line_at(lua, 1),
                )));
            }
            vm().running.resp.set(n as u8);
            Ok(())
        })?,
    )?;
    // Effects replication is the only mode (as in Redis 7.0): these are
    // accepted and change nothing.
    redis.raw_set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("REDIS_VERSION", crate::commands::REDIS_COMPAT_VERSION)?;
    redis.raw_set("REDIS_VERSION_NUM", 0x07000f)?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    g.raw_set("redis", redis)?;
    g.raw_set(
        "pcall",
        lua.create_async_function(|lua, args: MultiValue| async move {
            let mut it = args.into_iter();
            let f = it.next().unwrap_or(Value::Nil);
            let rest: MultiValue = it.collect();
            let Value::Function(f) = f else {
                let t = f.type_name();
                let mut out = MultiValue::new();
                out.push_back(Value::Boolean(false));
                out.push_back(Value::String(
                    lua.create_string(format!("attempt to call a {t} value"))?,
                ));
                return Ok(out);
            };
            protected(&lua, f, rest).await
        })?,
    )?;
    g.raw_set(
        "error",
        lua.create_function(
            |lua, (v, level): (Value, Option<i64>)| -> mlua::Result<()> {
                let line = line_at(lua, 1);
                let err = match v {
                    Value::Table(t) => match t.raw_get::<Value>("err")? {
                        Value::String(s) => ScriptError::coded(s.to_string_lossy(), line),
                        _ => ScriptError {
                            msg: "execution failure".into(),
                            coded: false,
                            line,
                            killed: false,
                        },
                    },
                    Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                        let s = lua
                            .coerce_string(v)?
                            .map(|s| s.to_string_lossy())
                            .unwrap_or_default();
                        let level = level.unwrap_or(1);
                        let prefix = if level > 0 {
                            lua.inspect_stack(level as usize, |d| {
                                let src = d.source().short_src.map(|s| s.into_owned());
                                match (src, d.current_line()) {
                                    (Some(src), Some(l)) => format!("{src}:{l}: "),
                                    _ => String::new(),
                                }
                            })
                            .unwrap_or_default()
                        } else {
                            String::new()
                        };
                        ScriptError {
                            msg: format!("{prefix}{s}"),
                            coded: false,
                            line,
                            killed: false,
                        }
                    }
                    other => ScriptError {
                        msg: match other {
                            Value::Nil => "nil".into(),
                            Value::Boolean(b) => b.to_string(),
                            o => o.type_name().into(),
                        },
                        coded: false,
                        line,
                        killed: false,
                    },
                };
                Err(mlua::Error::external(err))
            },
        )?,
    )?;
    Ok(())
}

/// `pcall(f, ...)` as Redis 7.0 has it: true and the results, or false and
/// the error (an error table's `err` string, as Redis's pcall gives it).
async fn protected(lua: &Lua, f: Function, args: MultiValue) -> mlua::Result<MultiValue> {
    match f.call_async::<MultiValue>(args).await {
        Ok(mut vals) => {
            vals.push_front(Value::Boolean(true));
            Ok(vals)
        }
        Err(e) => {
            if let Some(se) = script_error(&e) {
                if se.killed {
                    return Err(e);
                }
            }
            if matches!(e, mlua::Error::MemoryError(_)) {
                return Err(e);
            }
            let msg = match script_error(&e) {
                Some(se) => se.msg.clone(),
                None => match &e {
                    mlua::Error::RuntimeError(s) => strip_traceback(s).to_string(),
                    mlua::Error::CallbackError { cause, .. } => {
                        strip_traceback(&cause.to_string()).to_string()
                    }
                    o => strip_traceback(&o.to_string()).to_string(),
                },
            };
            let mut out = MultiValue::new();
            out.push_back(Value::Boolean(false));
            out.push_back(Value::String(lua.create_string(msg)?));
            Ok(out)
        }
    }
}

fn call_error(msg: &str, raise: bool, line: Option<usize>, lua: &Lua) -> mlua::Result<Value> {
    if raise {
        Err(mlua::Error::external(ScriptError::coded(msg, line)))
    } else {
        let t = lua.create_table()?;
        t.raw_set("err", msg)?;
        Ok(Value::Table(t))
    }
}

/// One `redis.call` (raise: errors end the script) or `redis.pcall`
/// (errors come back as `{err=...}`).
async fn redis_call(
    lua: Lua,
    args: MultiValue,
    raise: bool,
    line: Option<usize>,
) -> mlua::Result<Value> {
    let vm = vm();
    let conn_ptr = vm.running.conn.get();
    if args.is_empty() {
        return call_error(
            "ERR Please specify at least one argument for this redis lib call",
            raise,
            line,
            &lua,
        );
    }
    if conn_ptr.is_null() {
        return call_error(
            "ERR redis.call is only available inside a running script",
            raise,
            line,
            &lua,
        );
    }
    let mut buf = Vec::new();
    let mut spans = Vec::with_capacity(args.len());
    for a in args.iter() {
        let start = buf.len();
        match a {
            Value::String(s) => buf.extend_from_slice(&s.as_bytes()),
            Value::Integer(n) => buf.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Value::Number(_) => match lua.coerce_string(a.clone())? {
                Some(s) => buf.extend_from_slice(&s.as_bytes()),
                None => unreachable_arg(),
            },
            _ => {
                return call_error(
                    "ERR Lua redis lib command arguments must be strings or integers",
                    raise,
                    line,
                    &lua,
                )
            }
        }
        spans.push(ArgSpan::new(start, buf.len() - start));
    }
    let frozen = Bytes::from(buf);
    let args = Args::new(&frozen, &spans);
    let Some(mut id) = table::lookup_id(args.get(0)) else {
        return call_error(
            "ERR Unknown Redis command called from script",
            raise,
            line,
            &lua,
        );
    };
    let mut spec = table::by_id(id);
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        match command::lookup_sub(spec, args.get(1)) {
            Some(sub) => {
                spec = sub;
                id = table::id_of(sub);
            }
            None => {
                return call_error(
                    "ERR Unknown Redis command called from script",
                    raise,
                    line,
                    &lua,
                )
            }
        }
    }
    if !spec.arity_ok(args.len()) {
        return call_error(
            "ERR Wrong number of args calling Redis command from script",
            raise,
            line,
            &lua,
        );
    }
    if spec.has(flags::NOSCRIPT) {
        return call_error(
            "ERR This Redis command is not allowed from script",
            raise,
            line,
            &lua,
        );
    }
    if spec.has(flags::WRITE) {
        if vm.running.read_only.get() {
            return call_error(
                "ERR Write commands are not allowed from read-only scripts.",
                raise,
                line,
                &lua,
            );
        }
        vm.state
            .wrote
            .store(true, std::sync::atomic::Ordering::Release);
    }
    // SAFETY: `eval::run` sets `conn` to the connection whose future is
    // polling this script, for exactly as long as the script runs, and
    // does not touch the connection itself meanwhile (it awaits the
    // script). Scripts on one thread never overlap: a script that can
    // yield holds every shard's lock, and one that runs without locks
    // never yields. The future is dropped with the script's coroutine,
    // so no call outlives the connection.
    let conn = unsafe { &mut *conn_ptr };
    let client_proto = conn.proto;
    conn.proto = if vm.running.resp.get() == 3 {
        tessera_protocol::Proto::Resp3
    } else {
        tessera_protocol::Proto::Resp2
    };
    let start = conn.wbuf.len();
    Box::pin(conn.route(spec, id, args, &frozen)).await;
    conn.flush_pending(&frozen).await;
    conn.proto = client_proto;
    let reply = convert::resp_to_lua(&lua, &conn.wbuf[start..]);
    conn.wbuf.truncate(start);
    match reply? {
        convert::Parsed::Error(msg) => call_error(&msg, raise, line, &lua),
        convert::Parsed::Value(v) => Ok(v),
    }
}

fn unreachable_arg() {}
