//! Loading `dir/dbfilename` at startup: the file is decoded once, before
//! the shards start, into each shard's keys (by slot owner); each shard
//! then inserts its own. A corrupt or truncated file stops startup with
//! the reason (exit status 1); streams and modules are refused by name.

use std::io::BufReader;
use std::time::Instant;

use tessera_shard::rdb::{self, Limits};
use tessera_shard::slot::key_slot;
use tessera_shard::store::lru_clock;

use crate::config::Config;
use crate::runtime::{ShardRuntime, Shared};

/// Reads the RDB file if there is one. Err: why it cannot be loaded.
/// With `appendonly yes` the AOF is loaded instead (as Redis does).
pub fn load_at_startup(shared: &Shared, cfg: &Config) -> Result<(), String> {
    if cfg.get("appendonly") == Some("yes") {
        return super::aof::prepare(shared, cfg);
    }
    let name = cfg.get("dbfilename").unwrap_or("dump.rdb").to_string();
    load_rdb_file(shared, cfg, std::path::Path::new(&name), &name)
}

/// Decodes an RDB file into the shards' keys (absent: nothing to load).
pub fn load_rdb_file(
    shared: &Shared,
    cfg: &Config,
    path: &std::path::Path,
    name: &str,
) -> Result<(), String> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "Fatal error loading the DB ({name}): {e}. Exiting."
            ))
        }
    };
    let start = Instant::now();
    let sc = cfg.shard_config();
    let lim = Limits::from_config(&sc);
    let now = tessera_shard::util::now_ms();
    let clock = lru_clock(now);
    let mut per: Vec<Vec<(usize, tessera_shard::store::Entry)>> =
        (0..shared.nshards()).map(|_| Vec::new()).collect();
    let mut expired = 0u64;
    let mut loaded = 0u64;
    let sum = rdb::load(
        BufReader::with_capacity(1 << 20, f),
        sc.databases,
        &lim,
        |k| {
            if k.expire.is_some_and(|t| t <= now) {
                // As a master does: keys already expired are not loaded.
                expired += 1;
                return Ok(());
            }
            let lru = match k.idle {
                Some(i) => clock.wrapping_sub(i.min(0xFF_FFFF) as u32) & 0xFF_FFFF,
                None => clock,
            };
            let owner = shared.owner(key_slot(&k.key));
            per[owner].push((k.db, k.value.into_entry(&k.key, k.expire, lru)));
            loaded += 1;
            Ok(())
        },
    )
    .map_err(|e| format!("Fatal error loading the DB ({name}): {e}. Exiting."))?;
    if sum.functions_skipped > 0 {
        log::warn!(
            "{} function libraries in the RDB file were skipped (Tessera has no functions yet)",
            sum.functions_skipped
        );
    }
    let ver = sum
        .aux
        .iter()
        .find(|(k, _)| k == b"redis-ver")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| "?".into());
    log::info!(
        "Loading RDB produced by version {ver} (RDB format version {})",
        sum.version
    );
    log::info!(
        "Done loading RDB, keys loaded: {loaded}, keys expired: {expired}{}.",
        if sum.empty_skipped > 0 {
            format!(", empty keys skipped: {}", sum.empty_skipped)
        } else {
            String::new()
        }
    );
    log::info!(
        "DB loaded from disk: {:.3} seconds",
        start.elapsed().as_secs_f64()
    );
    shared
        .persist
        .load_keys_loaded
        .store(loaded, std::sync::atomic::Ordering::SeqCst);
    shared
        .persist
        .load_keys_expired
        .store(expired, std::sync::atomic::Ordering::SeqCst);
    if let Ok(mut l) = shared.persist.loaded.lock() {
        *l = per;
    }
    Ok(())
}

/// A shard takes its loaded keys (once, as it starts).
pub fn install_loaded(rt: &ShardRuntime) {
    let mine = match rt.shared.persist.loaded.lock() {
        Ok(mut l) => l.get_mut(rt.id).map(std::mem::take).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    install(rt, mine);
    // The AOF's replay waits for every shard's base keys.
    rt.shared
        .persist
        .aof
        .ready_shards
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// A shard takes its part of a file DEBUG RELOAD decoded.
pub fn install_reloaded(rt: &ShardRuntime) {
    let mine = match rt.shared.persist.loaded.lock() {
        Ok(mut l) => l.get_mut(rt.id).map(std::mem::take).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    install(rt, mine);
}

fn install(rt: &ShardRuntime, mine: Vec<(usize, tessera_shard::store::Entry)>) {
    if mine.is_empty() {
        return;
    }
    let now = tessera_shard::util::now_ms();
    let mut st = rt.state.borrow_mut();
    for (db, e) in mine {
        st.keyspace.db(db).insert(e, now);
    }
}
