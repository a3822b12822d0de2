//! Conversions between RESP and Lua, with Redis 7.0's rules.
//!
//! A command's reply to Lua (`resp_to_lua`): integer -> number, bulk ->
//! string, nil bulk / nil array -> false, array -> table, status ->
//! `{ok=...}`, error -> `{err=...}`; after `redis.setresp(3)` also map ->
//! table, set -> `{member=true}`, null -> nil, boolean, double ->
//! `{double=n}`, big number -> `{big_number=s}`, verbatim ->
//! `{verbatim_string={format=, string=}}`.
//!
//! A script's result to RESP (`lua_to_resp`): string -> bulk, number ->
//! integer (truncated), true -> 1 (RESP3 scripts: a boolean), false ->
//! null, tables as above in reverse, an array stopped at its first nil.

use mlua::{Lua, Table, Value};
use tessera_protocol::{Proto, Reply};

/// What a reply parsed to.
pub enum Parsed {
    Value(Value),
    /// A top-level error reply: the message without its `-`.
    Error(String),
}

/// Nesting deeper than this in a script's result is refused.
const MAX_DEPTH: usize = 1000;

pub fn resp_to_lua(lua: &Lua, resp: &[u8]) -> mlua::Result<Parsed> {
    if resp.first() == Some(&b'-') {
        let end = memchr::memchr(b'\r', resp).unwrap_or(resp.len());
        return Ok(Parsed::Error(
            String::from_utf8_lossy(&resp[1..end]).into_owned(),
        ));
    }
    let mut pos = 0;
    let v = parse(lua, resp, &mut pos)?;
    Ok(Parsed::Value(v))
}

fn line<'a>(resp: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = *pos + 1;
    let end = memchr::memchr(b'\r', &resp[start.min(resp.len())..])
        .map(|e| start + e)
        .unwrap_or(resp.len());
    *pos = (end + 2).min(resp.len());
    &resp[start.min(end)..end]
}

fn num(b: &[u8]) -> i64 {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn single(lua: &Lua, key: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set(key, v)?;
    Ok(Value::Table(t))
}

fn parse(lua: &Lua, resp: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let Some(&kind) = resp.get(*pos) else {
        return Ok(Value::Boolean(false));
    };
    let l = line(resp, pos);
    Ok(match kind {
        b'+' => single(lua, "ok", lua.create_string(l)?)?,
        b'-' => single(lua, "err", lua.create_string(l)?)?,
        b':' => Value::Integer(num(l)),
        b'$' | b'=' => {
            let n = num(l);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let start = *pos;
            let end = (start + n as usize).min(resp.len());
            *pos = (end + 2).min(resp.len());
            let body = &resp[start..end];
            if kind == b'=' && body.len() >= 4 {
                let inner = lua.create_table_with_capacity(0, 2)?;
                inner.raw_set("format", lua.create_string(&body[..3])?)?;
                inner.raw_set("string", lua.create_string(&body[4..])?)?;
                single(lua, "verbatim_string", inner)?
            } else {
                Value::String(lua.create_string(body)?)
            }
        }
        b'*' | b'>' => {
            let n = num(l);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table_with_capacity(n as usize, 0)?;
            for i in 0..n as usize {
                let v = parse(lua, resp, pos)?;
                t.raw_seti(i + 1, v)?;
            }
            Value::Table(t)
        }
        b'%' => {
            let n = num(l).max(0) as usize;
            let t = lua.create_table_with_capacity(0, n)?;
            for _ in 0..n {
                let k = parse(lua, resp, pos)?;
                let v = parse(lua, resp, pos)?;
                t.raw_set(k, v)?;
            }
            single(lua, "map", t)?
        }
        b'~' => {
            let n = num(l).max(0) as usize;
            let t = lua.create_table_with_capacity(0, n)?;
            for _ in 0..n {
                let k = parse(lua, resp, pos)?;
                t.raw_set(k, true)?;
            }
            single(lua, "set", t)?
        }
        b'|' => {
            // An attribute: skipped, the value follows.
            let n = num(l).max(0) as usize;
            for _ in 0..2 * n {
                parse(lua, resp, pos)?;
            }
            parse(lua, resp, pos)?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(l == b"t"),
        b',' => {
            let d: f64 = std::str::from_utf8(l)
                .ok()
                .and_then(|s| match s {
                    "inf" => Some(f64::INFINITY),
                    "-inf" => Some(f64::NEG_INFINITY),
                    s => s.parse().ok(),
                })
                .unwrap_or(0.0);
            single(lua, "double", d)?
        }
        b'(' => single(lua, "big_number", lua.create_string(l)?)?,
        _ => Value::Boolean(false),
    })
}

/// A Lua number as C's `(long long)` cast gives it on x86-64, as Redis
/// converts: truncated, and out-of-range values (and NaN) as i64::MIN.
pub fn truncate(n: f64) -> i64 {
    // 2^63: the first double outside i64's range (-2^63 is inside).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// Writes a script's result (or a nested value) as the client's reply.
/// `resp3_script`: the script called `redis.setresp(3)`.
pub fn lua_to_resp(v: &Value, out: &mut Vec<u8>, proto: Proto, resp3_script: bool) {
    write(v, out, proto, resp3_script, 0)
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get::<Value>(name).unwrap_or(Value::Nil)
}

fn write(v: &Value, out: &mut Vec<u8>, proto: Proto, r3: bool, depth: usize) {
    let mut r = Reply::new(out, proto);
    match v {
        Value::String(s) => r.bulk(&s.as_bytes()),
        Value::Integer(n) => r.int(*n),
        Value::Number(n) => r.int(truncate(*n)),
        Value::Boolean(b) => {
            if r3 {
                r.bool(*b)
            } else if *b {
                r.int(1)
            } else {
                r.null()
            }
        }
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return r.error("ERR reached lua stack limit");
            }
            write_table(t, out, proto, r3, depth)
        }
        _ => r.null(),
    }
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(n) => Some(n.to_string().into_bytes()),
        Value::Number(n) => Some(format_lua_number(*n).into_bytes()),
        _ => None,
    }
}

/// A number as Lua 5.1's tostring writes it (`%.14g`).
pub fn format_lua_number(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == n.trunc() && n.abs() < 1e15 {
        return (n as i64).to_string();
    }
    // %.14g: 14 significant digits, trailing zeros removed.
    let exp = n.abs().log10().floor() as i32;
    if (-5..14).contains(&exp) {
        let decimals = (13 - exp).max(0) as usize;
        let s = format!("{n:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        s
    } else {
        let s = format!("{n:.13e}");
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        let e: i32 = e.parse().unwrap_or(0);
        format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

fn write_table(t: &Table, out: &mut Vec<u8>, proto: Proto, r3: bool, depth: usize) {
    let err = field(t, "err");
    if let Some(msg) = bytes_of(&err) {
        // Sent as is after the reply's own '-' (redis.error_reply strips
        // a leading '-', `{err=...}` does not).
        return Reply::new(out, proto).error_bytes(&msg);
    }
    let ok = field(t, "ok");
    if let Some(msg) = bytes_of(&ok) {
        return Reply::new(out, proto).simple_bytes(&msg);
    }
    match field(t, "double") {
        Value::Number(d) => return Reply::new(out, proto).double(d),
        Value::Integer(d) => return Reply::new(out, proto).double(d as f64),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        let b = s.as_bytes();
        if proto == Proto::Resp3 {
            out.push(b'(');
            out.extend(
                b.iter()
                    .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
            );
            out.extend_from_slice(b"\r\n");
        } else {
            Reply::new(out, proto).bulk(&b);
        }
        return;
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        Reply::new(out, proto).map(pairs.len());
        for (k, v) in &pairs {
            write(k, out, proto, r3, depth + 1);
            write(v, out, proto, r3, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| k)
            .collect();
        Reply::new(out, proto).set(keys.len());
        for k in &keys {
            write(k, out, proto, r3, depth + 1);
        }
        return;
    }
    if let Value::Table(vs) = field(t, "verbatim_string") {
        if let (Value::String(f), Value::String(s)) = (field(&vs, "format"), field(&vs, "string")) {
            let f = f.to_string_lossy();
            if f.len() == 3 {
                return Reply::new(out, proto).verbatim(&f, &s.as_bytes());
            }
        }
    }
    // An array, up to its first nil.
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
        i += 1;
    }
    Reply::new(out, proto).array(items.len());
    for v in &items {
        write(v, out, proto, r3, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(truncate(3.99), 3);
        assert_eq!(truncate(-3.5), -3);
        assert_eq!(truncate(1e20), i64::MIN);
        assert_eq!(truncate(f64::NAN), i64::MIN);
    }

    #[test]
    fn lua_numbers_format_like_tostring() {
        assert_eq!(format_lua_number(3.5), "3.5");
        assert_eq!(format_lua_number(10.0), "10");
        assert_eq!(format_lua_number(0.1), "0.1");
        assert_eq!(format_lua_number(1e20), "1e+20");
        assert_eq!(format_lua_number(1.0 / 3.0), "0.33333333333333");
    }

    #[test]
    fn replies_round_trip_through_lua() {
        let lua = Lua::new();
        let Parsed::Value(v) = resp_to_lua(&lua, b"*3\r\n:1\r\n$1\r\na\r\n$-1\r\n").unwrap() else {
            panic!("an array");
        };
        let mut out = Vec::new();
        lua_to_resp(&v, &mut out, Proto::Resp2, false);
        // nil bulk -> false -> nil bulk
        assert_eq!(out, b"*3\r\n:1\r\n$1\r\na\r\n$-1\r\n");
        let Parsed::Error(e) = resp_to_lua(&lua, b"-ERR x\r\n").unwrap() else {
            panic!("an error");
        };
        assert_eq!(e, "ERR x");
    }
}
