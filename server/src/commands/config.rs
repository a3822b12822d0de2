//! CONFIG GET / SET / RESETSTAT / REWRITE / HELP.

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
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
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
    let patterns: Vec<&[u8]> = args.iter().skip(2).collect();
    let pairs = cfg.matching(&patterns);
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.map(pairs.len());
    for (k, v) in pairs {
        r.bulk(k.as_bytes());
        r.bulk(v.as_bytes());
    }
}

/// Whether the client connects from this machine (Redis's islocalClient:
/// a loopback address).
fn is_local(addr: &str) -> bool {
    addr.starts_with("127.") || addr.starts_with("[::1]") || addr.starts_with("::1")
}

/// CONFIG SET
pub async fn set(conn: &mut Conn, args: Args<'_>) {
    if !args.len().is_multiple_of(2) {
        return Reply::new(&mut conn.wbuf, conn.proto).error("ERR syntax error");
    }
    let pairs: Vec<(String, String)> = (2..args.len())
        .step_by(2)
        .map(|i| {
            (
                String::from_utf8_lossy(args.get(i)).into_owned(),
                String::from_utf8_lossy(args.get(i + 1)).into_owned(),
            )
        })
        .collect();
    let local = is_local(&conn.meta.borrow().addr);
    // All or nothing, as Redis 7 does.
    let updated = {
        let Ok(mut cfg) = conn.rt.shared.config.lock() else {
            return;
        };
        let allowed = cfg.protected_allowed(local);
        if let Err(e) = cfg.set_runtime(&pairs, allowed) {
            drop(cfg);
            return Reply::new(&mut conn.wbuf, conn.proto).error(&e);
        }
        cfg.clone()
    };
    crate::logging::set_level(updated.loglevel());
    conn.rt.shared.config_gen.fetch_add(1, Ordering::Relaxed);
    let sc = updated.shard_config();
    let _ = conn
        .rt
        .call_all(|| {
            let sc = sc.clone();
            Box::new(move |rt: &ShardRuntime| rt.state.borrow_mut().set_config(sc))
        })
        .await;
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// CONFIG REWRITE
pub fn rewrite(conn: &mut Conn, _args: Args<'_>) {
    let cfg = conn
        .rt
        .shared
        .config
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    match cfg.rewrite() {
        Ok(()) => {
            log::warn!("CONFIG REWRITE executed with success.");
            r.ok()
        }
        Err(e) => {
            if cfg.config_file.is_some() {
                log::warn!(
                    "CONFIG REWRITE failed: {}",
                    e.trim_start_matches("ERR Rewriting config file: ")
                );
            }
            r.error(&e)
        }
    }
}

/// CONFIG RESETSTAT
pub async fn resetstat(conn: &mut Conn, _args: Args<'_>) {
    let _ = conn
        .rt
        .call_all(|| {
            Box::new(|rt: &ShardRuntime| {
                let mut st = rt.state.borrow_mut();
                st.stats.reset();
                st.latency.hist.clear();
                st.errors.clear();
            })
        })
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
