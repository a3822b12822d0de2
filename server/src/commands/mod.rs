//! Commands run by the connection itself (`Route::Conn`): they change the
//! connection's state, or gather from every shard (INFO, SCAN, CLIENT
//! LIST...). Replies go straight to the write buffer: the connection has
//! flushed everything pending before calling here.

mod client;
mod config;
mod introspect;
mod keyspace;

use std::sync::atomic::Ordering;

use tessera_protocol::{Args, Proto, Reply};
use tessera_shard::command::CommandSpec;
use tessera_shard::util::{eq_ic, parse_i64_strict};

use crate::conn::Conn;

/// The Redis version whose behaviour Tessera follows; reported where
/// clients look for a Redis version (HELLO, INFO).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

pub async fn run(conn: &mut Conn, spec: &'static CommandSpec, _id: u16, args: Args<'_>) {
    match spec.name {
        "hello" => hello(conn, args),
        "auth" => auth(conn, args),
        "select" => select(conn, args),
        "quit" => {
            Reply::new(&mut conn.wbuf, conn.proto).ok();
            conn.close_after_write = true;
        }
        "reset" => reset(conn),
        "multi" => crate::txn::multi::multi(conn),
        // Boxed: EXEC runs commands through the routes that brought it here.
        "exec" => Box::pin(crate::txn::multi::exec(conn)).await,
        "discard" => crate::txn::multi::discard(conn),
        "watch" => crate::txn::watch::watch(conn, args).await,
        "unwatch" => crate::txn::watch::unwatch(conn),
        "shutdown" => shutdown(conn, args),
        "info" => introspect::info(conn, args).await,
        "command" | "command|count" | "command|info" | "command|docs" | "command|list"
        | "command|getkeys" | "command|help" => introspect::command(conn, spec, args),
        "config|get" | "config|set" | "config|resetstat" | "config|help" => {
            config::run(conn, spec, args).await
        }
        "client|id" | "client|setname" | "client|getname" | "client|setinfo" | "client|list"
        | "client|info" | "client|kill" | "client|help" => client::run(conn, spec, args).await,
        "scan" => keyspace::scan(conn, args).await,
        "randomkey" => keyspace::randomkey(conn).await,
        "debug" => keyspace::debug(conn, args).await,
        _ => {
            let msg = if spec.subcommands.is_empty() {
                format!("ERR unknown command '{}'", spec.name)
            } else {
                // A container called without a subcommand.
                tessera_shard::command::arity_error(spec.name)
            };
            Reply::new(&mut conn.wbuf, conn.proto).error(&msg);
        }
    }
}

fn reply(conn: &mut Conn) -> Reply<'_> {
    Reply::new(&mut conn.wbuf, conn.proto)
}

/// Checks a password against `requirepass`. Ok(true) = accepted.
fn check_password(conn: &Conn, user: Option<&[u8]>, pass: &[u8]) -> Result<bool, &'static str> {
    let required = conn
        .rt
        .shared
        .config
        .lock()
        .ok()
        .and_then(|c| c.requirepass());
    match required {
        None => {
            if user.is_none() {
                Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
            } else {
                Ok(user == Some(b"default".as_slice()))
            }
        }
        Some(p) => Ok(user.is_none_or(|u| u == b"default") && p.as_bytes() == pass),
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(conn: &mut Conn, args: Args) {
    let (user, pass) = match args.len() {
        2 => (None, args.get(1)),
        3 => (Some(args.get(1)), args.get(2)),
        _ => return reply(conn).error("ERR syntax error"),
    };
    match check_password(conn, user, pass) {
        Ok(true) => {
            conn.authed = true;
            reply(conn).ok();
        }
        Ok(false) => reply(conn).error(WRONGPASS),
        Err(e) => reply(conn).error(e),
    }
}

fn hello(conn: &mut Conn, args: Args) {
    let mut proto = conn.proto;
    let mut i = 1;
    if args.len() >= 2 {
        match parse_i64_strict(args.get(1)) {
            Some(2) => proto = Proto::Resp2,
            Some(3) => proto = Proto::Resp3,
            Some(_) => return reply(conn).error("NOPROTO unsupported protocol version"),
            None => {
                return reply(conn).error("ERR Protocol version is not an integer or out of range")
            }
        }
        i = 2;
    }
    let mut setname: Option<&[u8]> = None;
    let mut authed_now = false;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq_ic(args.get(i), b"AUTH") && more >= 2 {
            match check_password(conn, Some(args.get(i + 1)), args.get(i + 2)) {
                Ok(true) => authed_now = true,
                Ok(false) => return reply(conn).error(WRONGPASS),
                Err(_) => return reply(conn).error(WRONGPASS),
            }
            i += 3;
        } else if eq_ic(args.get(i), b"SETNAME") && more >= 1 {
            setname = Some(args.get(i + 1));
            i += 2;
        } else {
            let opt = String::from_utf8_lossy(args.get(i)).into_owned();
            return reply(conn).error(&format!("ERR Syntax error in HELLO option '{opt}'"));
        }
    }
    if !conn.authed && !authed_now {
        return reply(conn).error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = setname {
        if let Err(e) = client::valid_name(name) {
            return reply(conn).error(e);
        }
    }
    conn.authed = true;
    if let Some(name) = setname {
        conn.meta.borrow_mut().name = String::from_utf8_lossy(name).into_owned();
    }
    conn.proto = proto;
    conn.meta.borrow_mut().proto = proto;
    let id = conn.meta.borrow().id;
    let mut r = reply(conn);
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(REDIS_COMPAT_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(if proto == Proto::Resp3 { 3 } else { 2 });
    r.bulk(b"id");
    r.int(id as i64);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
}

fn select(conn: &mut Conn, args: Args) {
    let Some(n) = parse_i64_strict(args.get(1)) else {
        return reply(conn).error("ERR value is not an integer or out of range");
    };
    let dbs = conn.rt.state.borrow().config.databases as i64;
    if n < 0 || n >= dbs {
        return reply(conn).error("ERR DB index is out of range");
    }
    conn.db = n as usize;
    conn.meta.borrow_mut().db = conn.db;
    reply(conn).ok();
}

fn reset(conn: &mut Conn) {
    conn.co.multi = None;
    conn.co.watching = None;
    conn.db = 0;
    conn.proto = Proto::Resp2;
    conn.authed = conn
        .rt
        .shared
        .config
        .lock()
        .ok()
        .and_then(|c| c.requirepass())
        .is_none();
    {
        let mut m = conn.meta.borrow_mut();
        m.db = 0;
        m.proto = Proto::Resp2;
        m.name.clear();
    }
    reply(conn).simple("RESET");
}

fn shutdown(conn: &mut Conn, args: Args) {
    for a in args.iter().skip(1) {
        if eq_ic(a, b"ABORT") {
            return reply(conn).error("ERR No shutdown in progress.");
        }
        if !(eq_ic(a, b"NOSAVE") || eq_ic(a, b"SAVE") || eq_ic(a, b"NOW") || eq_ic(a, b"FORCE")) {
            return reply(conn).error("ERR syntax error");
        }
    }
    log::warn!("User requested shutdown...");
    conn.rt.shared.stop.store(true, Ordering::SeqCst);
    // Like Redis: no reply, the connection closes as the server stops.
    conn.close_after_write = true;
}
