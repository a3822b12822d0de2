//! Commands run by the connection itself (`Route::Conn`): they change the
//! connection's state, or gather from every shard (INFO, SCAN, CLIENT
//! LIST...). Replies go straight to the write buffer: the connection has
//! flushed everything pending before calling here.

mod client;
mod config;
mod debug;
mod introspect;
mod keyspace;
mod latency;
pub(crate) mod slowlog;

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use tessera_protocol::{Args, Proto, Reply};
use tessera_shard::command::{table, CommandSpec};
use tessera_shard::util::{eq_ic, parse_i64_strict};

use crate::conn::Conn;
use crate::pubsub;
use tessera_shard::pubsub::Kind;

/// The Redis version whose behaviour Tessera follows; reported where
/// clients look for a Redis version (HELLO, INFO).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

/// What a connection command's handler returns: its work, which may wait
/// on other shards.
pub type Pending<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A connection command's handler.
pub type ConnFn = for<'a> fn(&'a mut Conn, Args<'a>) -> Pending<'a>;

/// A handler that never waits: its work is done when it returns.
fn done<'a>() -> Pending<'a> {
    Box::pin(std::future::ready(()))
}

use crate::script::eval::How;
const EVAL: How = How {
    by_sha: false,
    read_only: false,
};
const EVALSHA: How = How {
    by_sha: true,
    read_only: false,
};
const EVAL_RO: How = How {
    by_sha: false,
    read_only: true,
};
const EVALSHA_RO: How = How {
    by_sha: true,
    read_only: true,
};

/// The handler of every `Route::Conn` command and subcommand of the
/// command table, by its table name. `BY_ID` indexes them by command id
/// once; `every_connection_command_has_a_handler` checks both ways.
static HANDLERS: &[(&str, ConnFn)] = &[
    ("hello", |c, a| {
        hello(c, a);
        done()
    }),
    ("auth", |c, a| {
        auth(c, a);
        done()
    }),
    ("select", |c, a| {
        select(c, a);
        done()
    }),
    ("quit", |c, _| {
        Reply::new(&mut c.wbuf, c.proto).ok();
        c.close_after_write = true;
        done()
    }),
    ("reset", |c, _| {
        reset(c);
        done()
    }),
    ("shutdown", |c, a| {
        Box::pin(crate::persist::shutdown_cmd(c, a))
    }),
    ("save", |c, a| Box::pin(crate::persist::save_cmd(c, a))),
    ("bgsave", |c, a| Box::pin(crate::persist::bgsave_cmd(c, a))),
    ("bgrewriteaof", |c, a| {
        Box::pin(crate::persist::bgrewriteaof_cmd(c, a))
    }),
    ("lastsave", |c, a| {
        crate::persist::lastsave_cmd(c, a);
        done()
    }),
    ("multi", |c, _| {
        crate::txn::multi::multi(c);
        done()
    }),
    ("exec", |c, _| Box::pin(crate::txn::multi::exec(c))),
    ("discard", |c, _| {
        crate::txn::multi::discard(c);
        done()
    }),
    ("watch", |c, a| Box::pin(crate::txn::watch::watch(c, a))),
    ("unwatch", |c, _| {
        crate::txn::watch::unwatch(c);
        done()
    }),
    ("info", |c, a| Box::pin(introspect::info(c, a))),
    ("command", |c, a| {
        introspect::command_all(c, a);
        done()
    }),
    ("command|count", |c, a| {
        introspect::count(c, a);
        done()
    }),
    ("command|info", |c, a| {
        introspect::info_cmd(c, a);
        done()
    }),
    ("command|docs", |c, a| {
        introspect::docs(c, a);
        done()
    }),
    ("command|list", |c, a| {
        introspect::list(c, a);
        done()
    }),
    ("command|getkeys", |c, a| {
        introspect::getkeys(c, a);
        done()
    }),
    ("command|help", |c, a| {
        introspect::help(c, a);
        done()
    }),
    ("config|get", |c, a| {
        config::get(c, a);
        done()
    }),
    ("config|set", |c, a| Box::pin(config::set(c, a))),
    ("config|resetstat", |c, a| Box::pin(config::resetstat(c, a))),
    ("config|rewrite", |c, a| {
        config::rewrite(c, a);
        done()
    }),
    ("config|help", |c, a| {
        config::help(c, a);
        done()
    }),
    ("client|id", |c, a| {
        client::id(c, a);
        done()
    }),
    ("client|setname", |c, a| {
        client::setname(c, a);
        done()
    }),
    ("client|getname", |c, a| {
        client::getname(c, a);
        done()
    }),
    ("client|setinfo", |c, a| {
        client::setinfo(c, a);
        done()
    }),
    ("client|info", |c, a| {
        client::info(c, a);
        done()
    }),
    ("client|help", |c, a| {
        client::help(c, a);
        done()
    }),
    ("client|list", |c, a| Box::pin(client::list(c, a))),
    ("client|kill", |c, a| Box::pin(client::kill(c, a))),
    ("client|unblock", |c, a| Box::pin(client::unblock(c, a))),
    ("client|pause", |c, a| {
        client::pause(c, a);
        done()
    }),
    ("client|unpause", |c, a| {
        client::unpause(c, a);
        done()
    }),
    ("client|reply", |c, a| {
        client::reply_mode(c, a);
        done()
    }),
    ("monitor", |c, _| {
        crate::monitor::start(c);
        done()
    }),
    ("client|tracking", |c, a| {
        Box::pin(crate::tracking::tracking(c, a))
    }),
    ("client|caching", |c, a| {
        crate::tracking::caching(c, a);
        done()
    }),
    ("client|getredir", |c, a| {
        crate::tracking::getredir(c, a);
        done()
    }),
    ("client|trackinginfo", |c, a| {
        crate::tracking::trackinginfo(c, a);
        done()
    }),
    ("slowlog|get", |c, a| Box::pin(slowlog::get(c, a))),
    ("slowlog|len", |c, a| Box::pin(slowlog::len(c, a))),
    ("slowlog|reset", |c, a| Box::pin(slowlog::reset(c, a))),
    ("slowlog|help", |c, a| {
        slowlog::help(c, a);
        done()
    }),
    ("latency|latest", |c, a| Box::pin(latency::latest(c, a))),
    ("latency|history", |c, a| Box::pin(latency::history(c, a))),
    ("latency|reset", |c, a| Box::pin(latency::reset(c, a))),
    ("latency|graph", |c, a| Box::pin(latency::graph(c, a))),
    ("latency|doctor", |c, a| Box::pin(latency::doctor(c, a))),
    ("latency|histogram", |c, a| {
        Box::pin(latency::histogram(c, a))
    }),
    ("latency|help", |c, a| {
        latency::help(c, a);
        done()
    }),
    ("eval", |c, a| {
        Box::pin(crate::script::eval::eval(c, a, EVAL))
    }),
    ("evalsha", |c, a| {
        Box::pin(crate::script::eval::eval(c, a, EVALSHA))
    }),
    ("eval_ro", |c, a| {
        Box::pin(crate::script::eval::eval(c, a, EVAL_RO))
    }),
    ("evalsha_ro", |c, a| {
        Box::pin(crate::script::eval::eval(c, a, EVALSHA_RO))
    }),
    ("script|load", |c, a| {
        crate::script::eval::load(c, a);
        done()
    }),
    ("script|exists", |c, a| {
        crate::script::eval::exists(c, a);
        done()
    }),
    ("script|flush", |c, a| {
        crate::script::eval::flush(c, a);
        done()
    }),
    ("script|kill", |c, _| {
        crate::script::eval::kill(c);
        done()
    }),
    ("script|help", |c, _| {
        crate::script::eval::help(c);
        done()
    }),
    ("scan", |c, a| Box::pin(keyspace::scan(c, a))),
    ("randomkey", |c, _| Box::pin(keyspace::randomkey(c))),
    ("debug", |c, a| Box::pin(keyspace::debug(c, a))),
    ("subscribe", |c, a| {
        pubsub::subscribe(c, a, Kind::Channel);
        done()
    }),
    ("psubscribe", |c, a| {
        pubsub::subscribe(c, a, Kind::Pattern);
        done()
    }),
    ("ssubscribe", |c, a| {
        pubsub::subscribe(c, a, Kind::Shard);
        done()
    }),
    ("unsubscribe", |c, a| {
        pubsub::unsubscribe(c, a, Kind::Channel);
        done()
    }),
    ("punsubscribe", |c, a| {
        pubsub::unsubscribe(c, a, Kind::Pattern);
        done()
    }),
    ("sunsubscribe", |c, a| {
        pubsub::unsubscribe(c, a, Kind::Shard);
        done()
    }),
    ("pubsub|channels", |c, a| {
        Box::pin(pubsub::channels(c, a, Kind::Channel))
    }),
    ("pubsub|shardchannels", |c, a| {
        Box::pin(pubsub::channels(c, a, Kind::Shard))
    }),
    ("pubsub|numsub", |c, a| {
        Box::pin(pubsub::numsub(c, a, Kind::Channel))
    }),
    ("pubsub|shardnumsub", |c, a| {
        Box::pin(pubsub::numsub(c, a, Kind::Shard))
    }),
    ("pubsub|numpat", |c, _| Box::pin(pubsub::numpat(c))),
    ("pubsub|help", |c, _| {
        pubsub::help(c);
        done()
    }),
];

/// The handlers by command id (None: not a connection command, or a
/// container, which is never run without its subcommand).
static BY_ID: LazyLock<Vec<Option<ConnFn>>> = LazyLock::new(|| {
    let mut by_id: Vec<Option<ConnFn>> = vec![None; table::count()];
    for &(name, f) in HANDLERS.iter().chain(crate::cluster::HANDLERS) {
        if let Some(id) = table::all().iter().position(|c| c.name == name) {
            by_id[id] = Some(f);
        }
    }
    by_id
});

/// Runs a connection command through its handler.
pub async fn run(conn: &mut Conn, spec: &'static CommandSpec, id: u16, args: Args<'_>) {
    match BY_ID.get(id as usize).copied().flatten() {
        Some(handler) => handler(conn, args).await,
        None => {
            // A container called without a subcommand (its arity lets the
            // name alone through), or a table entry without a handler.
            let msg = if spec.subcommands.is_empty() {
                format!("ERR unknown command '{}'", spec.name)
            } else {
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
    let cluster = conn.rt.shared.cluster.enabled;
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
    r.bulk(if cluster { b"cluster" } else { b"standalone" });
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
}

fn select(conn: &mut Conn, args: Args) {
    let Some(n) = parse_i64_strict(args.get(1)) else {
        return reply(conn).error("ERR value is not an integer or out of range");
    };
    if conn.rt.shared.cluster.enabled && n != 0 {
        return reply(conn).error("ERR SELECT is not allowed in cluster mode");
    }
    let dbs = conn.rt.state.borrow().config.databases as i64;
    if n < 0 || n >= dbs {
        return reply(conn).error("ERR DB index is out of range");
    }
    conn.db = n as usize;
    conn.meta.borrow_mut().db = conn.db;
    reply(conn).ok();
}

fn reset(conn: &mut Conn) {
    pubsub::reset(conn);
    conn.co.multi = None;
    crate::txn::multi::show(conn);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_shard::command::Route;

    #[test]
    fn every_connection_command_has_a_handler() {
        for (id, c) in table::all().iter().enumerate() {
            let conn_routed = matches!(c.route, Route::Conn);
            // A container may run alone too (COMMAND), or only with its
            // subcommands (CLIENT, CONFIG: arity errors otherwise).
            if conn_routed && c.subcommands.is_empty() {
                assert!(BY_ID[id].is_some(), "{}: no handler", c.name);
            }
            if !conn_routed {
                assert!(
                    BY_ID[id].is_none(),
                    "{}: a handler for another route",
                    c.name
                );
            }
        }
        for (name, _) in HANDLERS.iter().chain(crate::cluster::HANDLERS) {
            assert!(
                table::all().iter().any(|c| c.name == *name),
                "{name} is not in the table"
            );
        }
    }
}
