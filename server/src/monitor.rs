//! MONITOR: every command any connection of any shard runs, as a line in
//! Redis's format, delivered through the monitors' inboxes. While no
//! monitor exists, connections never come here (gate.rs: one load per
//! batch).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tessera_protocol::Args;
use tessera_shard::command::{flags, lookup, lookup_sub};
use tessera_shard::slowlog::redacted;

use crate::clients::Event;
use crate::conn::Conn;
use crate::mesh::Request;
use crate::runtime::ShardRuntime;

/// MONITOR: this connection receives every command from now on.
pub fn start(conn: &mut Conn) {
    let newly = !std::mem::replace(&mut conn.meta.borrow_mut().monitor, true);
    if newly {
        conn.rt.shared.monitors.fetch_add(1, Ordering::Relaxed);
        conn.rt.shared.monitor_shards[conn.rt.id].fetch_add(1, Ordering::Relaxed);
    }
    tessera_protocol::Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// A closing connection stops being a monitor.
pub fn stop(rt: &ShardRuntime, was_monitor: bool) {
    if was_monitor {
        rt.shared.monitors.fetch_sub(1, Ordering::Relaxed);
        rt.shared.monitor_shards[rt.id].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether Redis shows this request: a known command with the right
/// arity (refused ones never run), not an admin command.
fn shown(args: &Args) -> bool {
    let Some(mut c) = lookup(args.get(0)) else {
        return false;
    };
    if !c.subcommands.is_empty() && args.len() >= 2 {
        match lookup_sub(c, args.get(1)) {
            Some(s) => c = s,
            None => return false,
        }
    }
    c.arity_ok(args.len()) && !c.has(flags::ADMIN)
}

/// `"arg"` quoted as Redis's sdscatrepr: \\ \" \n \r \t \a \b escaped,
/// other unprintable bytes as \xHH.
pub fn quote(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'"');
    for &b in a {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// One monitor line: `+<secs>.<usecs> [<db> <addr>] "arg" ...`.
pub fn line(out: &mut Vec<u8>, db: usize, addr: &str, args: &[&[u8]]) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    out.extend_from_slice(
        format!("+{}.{:06} [{db} {addr}]", t.as_secs(), t.subsec_micros()).as_bytes(),
    );
    let hide = redacted(args);
    for (a, h) in args.iter().zip(hide) {
        out.push(b' ');
        quote(out, if h { b"(redacted)" } else { a });
    }
    out.extend_from_slice(b"\r\n");
}

/// The queued commands an EXEC is about to run, shown before it as Redis
/// shows them (they run, then EXEC is logged).
pub fn before_exec(conn: &Conn, args: &Args) -> Vec<u8> {
    let mut out = Vec::new();
    if !args.get(0).eq_ignore_ascii_case(b"exec") {
        return out;
    }
    if let Some(q) = conn.co.multi.as_ref() {
        let addr = conn.meta.borrow().addr.clone();
        for a in q.queued() {
            let v: Vec<&[u8]> = a.iter().collect();
            line(&mut out, conn.db, &addr, &v);
        }
    }
    out
}

/// Feeds a request that just ran to every monitor (after `before`, the
/// lines of an EXEC's commands).
pub fn feed(conn: &Conn, args: &Args, mut before: Vec<u8>) {
    // Queued in MULTI: shown when EXEC runs it.
    let queued = conn.co.multi.is_some()
        && !matches!(
            args.get(0).to_ascii_lowercase().as_slice(),
            b"exec" | b"discard" | b"multi" | b"watch" | b"quit" | b"reset"
        );
    if queued || !shown(args) {
        if before.is_empty() {
            return;
        }
    } else {
        let addr = conn.meta.borrow().addr.clone();
        let v: Vec<&[u8]> = args.iter().collect();
        line(&mut before, conn.db, &addr, &v);
    }
    broadcast(&conn.rt, Bytes::from(before));
}

/// Delivers lines to the monitors of every shard that has one.
fn broadcast(rt: &ShardRuntime, msg: Bytes) {
    for s in 0..rt.nshards() {
        if rt.shared.monitor_shards[s].load(Ordering::Relaxed) == 0 {
            continue;
        }
        if s == rt.id {
            deliver_here(rt, &msg);
        } else {
            let msg = msg.clone();
            rt.send_now(s, Request::Do(Box::new(move |rt| deliver_here(rt, &msg))));
        }
    }
}

fn deliver_here(rt: &ShardRuntime, msg: &Bytes) {
    for (_, m) in rt.clients.borrow().iter() {
        let mut m = m.borrow_mut();
        if m.monitor {
            m.deliver(Event::Message(msg.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_redis() {
        let mut o = Vec::new();
        quote(&mut o, b"x\ty\"\\\x01\xff\xc3\xa9 z");
        assert_eq!(o, b"\"x\\ty\\\"\\\\\\x01\\xff\\xc3\\xa9 z\"".to_vec());
    }

    #[test]
    fn lines_hide_passwords() {
        let mut o = Vec::new();
        line(
            &mut o,
            2,
            "127.0.0.1:5",
            &[b"HELLO", b"2", b"AUTH", b"u", b"p"],
        );
        let s = String::from_utf8(o).unwrap();
        assert!(s.starts_with('+'));
        assert!(s.ends_with(
            " [2 127.0.0.1:5] \"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"
        ));
    }
}
