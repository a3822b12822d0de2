//! SLOWLOG: each shard logs the slow commands it ran (exec.rs); SLOWLOG
//! GET merges them by entry id (node-wide, increasing). Also counts the
//! commands the connection runs itself (INFO commandstats, latency).

use std::collections::HashMap;

use tessera_protocol::{Args, Reply};
use tessera_shard::command::{CommandSpec, ShardState};
use tessera_shard::slowlog::SlowEntry;
use tessera_shard::util::parse_i64_strict;

use crate::clients::ClientMeta;
use crate::conn::Conn;
use crate::mesh::Request;
use crate::runtime::ShardRuntime;

const HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// Names the client of the entries just logged on this shard: the
/// connection that ran them here.
pub fn claim_for(st: &mut ShardState, meta: &ClientMeta) {
    st.slowlog
        .claim(meta.id, Some((meta.addr.as_str(), meta.name.as_str())));
}

/// Counts a command the connection ran itself (INFO commandstats, latency
/// histograms, SLOWLOG, the latency monitor), as exec.rs does for the
/// others. Not on the per-request path of data commands.
pub fn count_conn_command(
    conn: &mut Conn,
    spec: &'static CommandSpec,
    id: u16,
    args: &Args,
    ns: u64,
    error: Option<Vec<u8>>,
) {
    let rt = conn.rt.clone();
    let mut st = rt.state.borrow_mut();
    let s = st.stats.cmd(id);
    s.calls += 1;
    s.nsec += ns;
    if let Some(e) = error {
        s.failed_calls += 1;
        st.note_error(&e);
    }
    st.stats.total_commands += 1;
    st.latency.record_command(id, ns);
    if ns >= st.slow_ns {
        crate::exec::note_slow(&mut st, spec, args, ns);
        if st.slowlog.unresolved {
            claim_for(&mut st, &conn.meta.borrow());
        }
    }
}

/// Entries logged here for a client of shard `peer` (a forwarded batch)
/// get its address and name from there, while it is still connected.
pub fn ask_identity(rt: &ShardRuntime, peer: usize, client: u64) {
    let origin = rt.id;
    rt.send_now(
        peer,
        Request::Do(Box::new(move |rt: &ShardRuntime| {
            let who = rt.clients.borrow().iter().find_map(|(_, m)| {
                let m = m.borrow();
                (m.id == client).then(|| (m.addr.clone(), m.name.clone()))
            });
            let Some((addr, name)) = who else { return };
            rt.send_now(
                origin,
                Request::Do(Box::new(move |rt: &ShardRuntime| {
                    let mut st = rt.state.borrow_mut();
                    for e in st.slowlog.entries.iter_mut() {
                        if e.client_id == client && e.addr.is_empty() {
                            e.addr.clone_from(&addr);
                            e.name.clone_from(&name);
                        }
                    }
                })),
            );
        })),
    );
}

fn reply(conn: &mut Conn) -> Reply<'_> {
    Reply::new(&mut conn.wbuf, conn.proto)
}

/// SLOWLOG HELP
pub fn help(conn: &mut Conn, _args: Args<'_>) {
    let mut r = reply(conn);
    r.array(HELP.len());
    for l in HELP {
        r.simple(l);
    }
}

/// SLOWLOG LEN: the merged log's length.
pub async fn len(conn: &mut Conn, _args: Args<'_>) {
    let per = conn
        .rt
        .call_all(|| Box::new(|rt: &ShardRuntime| rt.state.borrow().slowlog.entries.len()))
        .await;
    let max = conn.rt.state.borrow().config.slowlog_max_len;
    let n: usize = per.into_iter().flatten().sum();
    reply(conn).int(n.min(max) as i64);
}

/// SLOWLOG RESET
pub async fn reset(conn: &mut Conn, _args: Args<'_>) {
    conn.rt
        .call_all(|| Box::new(|rt: &ShardRuntime| rt.state.borrow_mut().slowlog.entries.clear()))
        .await;
    reply(conn).ok();
}

/// SLOWLOG GET [count]
pub async fn get(conn: &mut Conn, args: Args<'_>) {
    let count = if args.len() > 3 {
        let msg = tessera_shard::command::subcommand_syntax_error("slowlog", args.get(1));
        return reply(conn).error_bytes(&msg);
    } else if args.len() == 3 {
        match parse_i64_strict(args.get(2)) {
            Some(n) if n >= -1 => n,
            _ => return reply(conn).error("ERR count should be greater than or equal to -1"),
        }
    } else {
        10
    };
    let max = conn.rt.state.borrow().config.slowlog_max_len;
    let take = if count < 0 {
        max
    } else {
        (count as usize).min(max)
    };
    let per = conn
        .rt
        .call_all(|| {
            Box::new(move |rt: &ShardRuntime| {
                let st = rt.state.borrow();
                st.slowlog
                    .entries
                    .iter()
                    .take(take)
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let mut all: Vec<SlowEntry> = per.into_iter().flatten().flatten().collect();
    all.sort_unstable_by_key(|e| std::cmp::Reverse(e.id));
    all.truncate(take);
    resolve_clients(conn, &mut all).await;
    let mut r = reply(conn);
    r.array(all.len());
    for e in &all {
        r.array(6);
        r.int(e.id as i64);
        r.int(e.time);
        r.int(e.micros as i64);
        r.array(e.args.len());
        for a in &e.args {
            r.bulk(a);
        }
        r.bulk(e.addr.as_bytes());
        r.bulk(e.name.as_bytes());
    }
}

/// Entries logged on a shard the client is not connected to carry only
/// its id: its address and name come from its own shard (empty when it
/// has gone since).
async fn resolve_clients(conn: &mut Conn, entries: &mut [SlowEntry]) {
    let mut ids: Vec<u64> = entries
        .iter()
        .filter(|e| e.client_id != 0 && e.addr.is_empty())
        .map(|e| e.client_id)
        .collect();
    if ids.is_empty() {
        return;
    }
    ids.sort_unstable();
    ids.dedup();
    let per = conn
        .rt
        .call_all(|| {
            let ids = ids.clone();
            Box::new(move |rt: &ShardRuntime| {
                rt.clients
                    .borrow()
                    .iter()
                    .filter_map(|(_, m)| {
                        let m = m.borrow();
                        ids.binary_search(&m.id)
                            .is_ok()
                            .then(|| (m.id, (m.addr.clone(), m.name.clone())))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let known: HashMap<u64, (String, String)> = per.into_iter().flatten().flatten().collect();
    for e in entries.iter_mut() {
        if let Some((addr, name)) = known.get(&e.client_id) {
            if e.addr.is_empty() {
                e.addr = addr.clone();
                e.name = name.clone();
            }
        }
    }
}
