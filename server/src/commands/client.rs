//! CLIENT subcommands.

use tessera_protocol::{Args, Reply};
use tessera_shard::util::{eq_ic, parse_i64_strict};

use crate::conn::Conn;
use crate::runtime::ShardRuntime;

/// Redis refuses names with spaces, newlines or other special characters.
pub fn valid_name(name: &[u8]) -> Result<(), &'static str> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        Err("ERR Client names cannot contain spaces, newlines or special characters.")
    } else {
        Ok(())
    }
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of specified IDs only.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "HELP",
    "    Print this help.",
];

/// CLIENT ID
pub fn id(conn: &mut Conn, _args: Args<'_>) {
    let proto = conn.proto;
    let id = conn.meta.borrow().id;
    Reply::new(&mut conn.wbuf, proto).int(id as i64)
}

/// CLIENT GETNAME
pub fn getname(conn: &mut Conn, _args: Args<'_>) {
    let proto = conn.proto;
    let name = conn.meta.borrow().name.clone();
    let mut r = Reply::new(&mut conn.wbuf, proto);
    if name.is_empty() {
        r.null()
    } else {
        r.bulk(name.as_bytes())
    }
}

/// CLIENT SETNAME
pub fn setname(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    let name = args.get(2);
    if let Err(e) = valid_name(name) {
        return Reply::new(&mut conn.wbuf, proto).error(e);
    }
    conn.meta.borrow_mut().name = String::from_utf8_lossy(name).into_owned();
    Reply::new(&mut conn.wbuf, proto).ok()
}

/// CLIENT SETINFO
pub fn setinfo(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    let (attr, val) = (args.get(2), args.get(3));
    if val.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        let a = String::from_utf8_lossy(attr).to_ascii_lowercase();
        return Reply::new(&mut conn.wbuf, proto).error(&format!(
            "ERR {a} cannot contain spaces, newlines or special characters."
        ));
    }
    let v = String::from_utf8_lossy(val).into_owned();
    if eq_ic(attr, b"LIB-NAME") {
        conn.meta.borrow_mut().lib_name = v;
    } else if eq_ic(attr, b"LIB-VER") {
        conn.meta.borrow_mut().lib_ver = v;
    } else {
        let a = String::from_utf8_lossy(attr).into_owned();
        return Reply::new(&mut conn.wbuf, proto).error(&format!("ERR Unrecognized option '{a}'"));
    }
    Reply::new(&mut conn.wbuf, proto).ok()
}

/// CLIENT INFO
pub fn info(conn: &mut Conn, _args: Args<'_>) {
    let proto = conn.proto;
    let line = conn.meta.borrow().info_line() + "\n";
    Reply::new(&mut conn.wbuf, proto).verbatim("txt", line.as_bytes())
}

/// CLIENT HELP
pub fn help(conn: &mut Conn, _args: Args<'_>) {
    let proto = conn.proto;
    let mut r = Reply::new(&mut conn.wbuf, proto);
    r.array(HELP.len());
    for l in HELP {
        r.simple(l);
    }
}

/// CLIENT LIST
pub async fn list(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    let mut ids: Option<Vec<u64>> = None;
    // TYPE pubsub / normal: subscribed clients, or the others.
    let mut pubsub: Option<bool> = None;
    let mut i = 2;
    while i < args.len() {
        if eq_ic(args.get(i), b"TYPE") && i + 1 < args.len() {
            let t = args.get(i + 1);
            if !(eq_ic(t, b"normal")
                || eq_ic(t, b"master")
                || eq_ic(t, b"replica")
                || eq_ic(t, b"slave")
                || eq_ic(t, b"pubsub"))
            {
                let t = String::from_utf8_lossy(t).into_owned();
                return Reply::new(&mut conn.wbuf, proto)
                    .error(&format!("ERR Unknown client type '{t}'"));
            }
            if eq_ic(t, b"pubsub") {
                pubsub = Some(true);
            } else if eq_ic(t, b"normal") {
                pubsub = Some(false);
            } else {
                ids = Some(Vec::new());
            }
            i += 2;
        } else if eq_ic(args.get(i), b"ID") && i + 1 < args.len() {
            let mut v = ids.take().unwrap_or_default();
            i += 1;
            while i < args.len() {
                match parse_i64_strict(args.get(i)) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return Reply::new(&mut conn.wbuf, proto).error("ERR Invalid client ID"),
                }
                i += 1;
            }
            ids = Some(v);
        } else {
            return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error");
        }
    }
    let lines = conn
        .rt
        .call_all(|| {
            Box::new(|rt: &ShardRuntime| {
                rt.clients
                    .borrow()
                    .iter()
                    .map(|(_, m)| {
                        let m = m.borrow();
                        (m.id, m.is_pubsub(), m.info_line())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let mut all: Vec<(u64, bool, String)> = lines.into_iter().flatten().flatten().collect();
    all.sort_by_key(|(id, _, _)| *id);
    let mut text = String::new();
    for (id, ps, l) in all {
        if ids.as_ref().is_none_or(|v| v.contains(&id)) && pubsub.is_none_or(|p| p == ps) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    Reply::new(&mut conn.wbuf, proto).verbatim("txt", text.as_bytes())
}

/// A client filter of CLIENT KILL.
#[derive(Clone, Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    skip: Option<u64>,
    /// TYPE pubsub (true) or normal (false).
    pubsub: Option<bool>,
    /// The connection asking: marked, but its socket is left for the reply.
    me: u64,
    /// MAXAGE: only connections older than this many seconds.
    max_age: Option<u64>,
}

/// CLIENT KILL
pub async fn kill(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    let me = conn.meta.borrow().id;
    let old_style = args.len() == 3;
    let mut f = KillFilter {
        me,
        ..KillFilter::default()
    };
    if old_style {
        f.addr = Some(String::from_utf8_lossy(args.get(2)).into_owned());
    } else {
        f.skip = Some(me);
        let mut i = 2;
        while i + 1 < args.len() {
            let (opt, val) = (args.get(i), args.get(i + 1));
            let v = String::from_utf8_lossy(val).into_owned();
            if eq_ic(opt, b"ID") {
                match parse_i64_strict(val) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => {
                        return Reply::new(&mut conn.wbuf, proto)
                            .error("ERR client-id should be greater than 0")
                    }
                }
            } else if eq_ic(opt, b"ADDR") {
                f.addr = Some(v);
            } else if eq_ic(opt, b"LADDR") {
                f.laddr = Some(v);
            } else if eq_ic(opt, b"SKIPME") {
                if eq_ic(val, b"yes") {
                    f.skip = Some(me);
                } else if eq_ic(val, b"no") {
                    f.skip = None;
                } else {
                    return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error");
                }
            } else if eq_ic(opt, b"USER") {
                // Every client is the default user's here.
                if val != b"default" {
                    return Reply::new(&mut conn.wbuf, proto)
                        .error(&format!("ERR No such user '{v}'"));
                }
            } else if eq_ic(opt, b"MAXAGE") {
                // Redis 7.4's filter: connections older than this (s).
                match parse_i64_strict(val) {
                    Some(n) if n >= 0 => f.max_age = Some(n as u64),
                    _ => return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error"),
                }
            } else if eq_ic(opt, b"TYPE") {
                {
                    if eq_ic(val, b"pubsub") {
                        f.pubsub = Some(true);
                    } else if eq_ic(val, b"normal") {
                        f.pubsub = Some(false);
                    } else if eq_ic(val, b"master")
                        || eq_ic(val, b"replica")
                        || eq_ic(val, b"slave")
                    {
                        f.id = Some(0);
                    } else {
                        return Reply::new(&mut conn.wbuf, proto)
                            .error(&format!("ERR Unknown client type '{v}'"));
                    }
                }
            } else {
                return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error");
            }
            i += 2;
        }
        if i != args.len() {
            return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error");
        }
    }
    let killed: usize = conn
        .rt
        .call_all(|| {
            let f = f.clone();
            Box::new(move |rt: &ShardRuntime| {
                let mut n = 0;
                for (_, m) in rt.clients.borrow().iter() {
                    let mut m = m.borrow_mut();
                    let hit = f.id.is_none_or(|id| id == m.id)
                        && f.addr.as_ref().is_none_or(|a| *a == m.addr)
                        && f.laddr.as_ref().is_none_or(|a| *a == m.laddr)
                        && f.skip != Some(m.id)
                        && f.pubsub.is_none_or(|p| p == m.is_pubsub())
                        && f.max_age.is_none_or(|a| m.created.elapsed().as_secs() > a);
                    if hit {
                        if m.id == f.me {
                            // This connection: it closes once it replied.
                            m.killed = true;
                        } else {
                            m.deliver(crate::clients::Event::Kill);
                        }
                        n += 1;
                    }
                }
                n
            })
        })
        .await
        .into_iter()
        .flatten()
        .sum();
    if conn.meta.borrow().killed {
        conn.close_after_write = true;
    }
    let mut r = Reply::new(&mut conn.wbuf, proto);
    if old_style {
        if killed == 0 {
            r.error("ERR No such client")
        } else {
            r.ok()
        }
    } else {
        r.int(killed as i64)
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: a client blocked in BLPOP & co. (on
/// any shard) replies as on its timeout, or with an UNBLOCKED error. 1 when
/// it was blocked and is now unblocked.
pub async fn unblock(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    if args.len() > 4 {
        let msg = tessera_shard::command::subcommand_syntax_error("client", args.get(1));
        return Reply::new(&mut conn.wbuf, proto).error_bytes(&msg);
    }
    let Some(id) = parse_i64_strict(args.get(2)) else {
        return Reply::new(&mut conn.wbuf, proto)
            .error("ERR value is not an integer or out of range");
    };
    let error = match args.try_get(3) {
        None => false,
        Some(a) if eq_ic(a, b"TIMEOUT") && args.len() == 4 => false,
        Some(a) if eq_ic(a, b"ERROR") && args.len() == 4 => true,
        Some(_) => {
            return Reply::new(&mut conn.wbuf, proto)
                .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        }
    };
    let hits: i64 = conn
        .rt
        .call_all(|| {
            Box::new(move |rt: &ShardRuntime| {
                for (_, m) in rt.clients.borrow().iter() {
                    let mut m = m.borrow_mut();
                    if m.id as i64 != id {
                        continue;
                    }
                    // The claim decides between this and whatever else
                    // could end the wait (a push, the timeout).
                    if m.blocked.as_ref().is_some_and(|b| b.claim()) {
                        m.deliver(crate::clients::Event::Unblock { error });
                        return 1;
                    }
                }
                0
            })
        })
        .await
        .into_iter()
        .flatten()
        .sum();
    Reply::new(&mut conn.wbuf, proto).int(hits)
}

/// CLIENT PAUSE timeout [WRITE|ALL]: every shard's clients are held
/// (pause.rs, gate.rs) until the timeout or CLIENT UNPAUSE.
pub fn pause(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    let Some(ms) = parse_i64_strict(args.get(2)) else {
        return Reply::new(&mut conn.wbuf, proto)
            .error("ERR timeout is not an integer or out of range");
    };
    if ms < 0 {
        return Reply::new(&mut conn.wbuf, proto).error("ERR timeout is negative");
    }
    let mode = match args.try_get(3) {
        None => crate::pause::ALL,
        Some(m) if args.len() == 4 && eq_ic(m, b"ALL") => crate::pause::ALL,
        Some(m) if args.len() == 4 && eq_ic(m, b"WRITE") => crate::pause::WRITE,
        Some(_) => {
            return Reply::new(&mut conn.wbuf, proto)
                .error("ERR CLIENT PAUSE mode must be WRITE or ALL")
        }
    };
    let now = tessera_shard::util::now_ms();
    conn.rt
        .shared
        .pause
        .pause(mode, now.saturating_add(ms), now);
    Reply::new(&mut conn.wbuf, proto).ok()
}

/// CLIENT UNPAUSE
pub fn unpause(conn: &mut Conn, _args: Args<'_>) {
    conn.rt.shared.pause.unpause();
    Reply::new(&mut conn.wbuf, conn.proto).ok()
}

/// CLIENT REPLY ON|OFF|SKIP (the replies are dropped in gate.rs).
pub fn reply_mode(conn: &mut Conn, args: Args<'_>) {
    let v = args.get(2);
    if eq_ic(v, b"ON") {
        conn.reply_off = false;
        conn.reply_skip_next = false;
        Reply::new(&mut conn.wbuf, conn.proto).ok()
    } else if eq_ic(v, b"OFF") {
        conn.reply_off = true;
    } else if eq_ic(v, b"SKIP") {
        if !conn.reply_off {
            conn.reply_skip_next = true;
        }
    } else {
        Reply::new(&mut conn.wbuf, conn.proto).error("ERR syntax error")
    }
}
