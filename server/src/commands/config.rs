//! CONFIG GET / SET / RESETSTAT.

use std::sync::atomic::Ordering;

use tessera_protocol::{Args, Reply};

use crate::conn::Conn;
use crate::runtime::ShardRuntime;

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "HELP",
    "    Print this help.",
];

/// CONFIG GET
pub fn get(conn: &mut Conn, args: Args<'_>) {
    let cfg = conn
        .rt
        .shared
        .config
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    for pat in args.iter().skip(2) {
        for (k, v) in cfg.matching(pat) {
            if !pairs.iter().any(|(n, _)| *n == k) {
                pairs.push((k, v));
            }
        }
    }
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.map(pairs.len());
    for (k, v) in pairs {
        r.bulk(k.as_bytes());
        r.bulk(v.as_bytes());
    }
}

/// CONFIG SET
pub async fn set(conn: &mut Conn, args: Args<'_>) {
    if !args.len().is_multiple_of(2) {
        return Reply::new(&mut conn.wbuf, conn.proto)
            .error("ERR wrong number of arguments for 'config|set' command");
    }
    // All or nothing, as Redis 7 does.
    let updated = {
        let Ok(mut cfg) = conn.rt.shared.config.lock() else {
            return;
        };
        let mut next = cfg.clone();
        for pair in (2..args.len()).step_by(2) {
            let name = String::from_utf8_lossy(args.get(pair)).into_owned();
            let value = String::from_utf8_lossy(args.get(pair + 1)).into_owned();
            if let Err(e) = next.set_runtime(&name, &value) {
                drop(cfg);
                return Reply::new(&mut conn.wbuf, conn.proto).error(&e);
            }
        }
        *cfg = next.clone();
        next
    };
    crate::logging::set_level(updated.loglevel());
    conn.rt.shared.config_gen.fetch_add(1, Ordering::Relaxed);
    let sc = updated.shard_config();
    let _ = conn
        .rt
        .call_all(|| {
            let sc = sc.clone();
            Box::new(move |rt: &ShardRuntime| rt.state.borrow_mut().config = sc)
        })
        .await;
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// CONFIG RESETSTAT
pub async fn resetstat(conn: &mut Conn, _args: Args<'_>) {
    let _ = conn
        .rt
        .call_all(|| Box::new(|rt: &ShardRuntime| rt.state.borrow_mut().stats.reset()))
        .await;
    conn.rt.shared.total_connections.store(0, Ordering::Relaxed);
    conn.rt
        .shared
        .rejected_connections
        .store(0, Ordering::Relaxed);
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// CONFIG HELP
pub fn help(conn: &mut Conn, _args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.array(HELP.len());
    for l in HELP {
        r.simple(l);
    }
}
