//! COMMAND (generated from the command table) and INFO.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use tessera_protocol::{Args, Reply};
use tessera_shard::command::{acl, flags, lookup, lookup_sub, table, CommandSpec, KeySpec, Writes};
use tessera_shard::stats::ShardStats;
use tessera_shard::util::eq_ic;

use crate::conn::Conn;
use crate::runtime::ShardRuntime;

/// One command's COMMAND INFO entry (Redis 7's ten fields).
fn command_info(r: &mut Reply, c: &CommandSpec) {
    r.array(10);
    r.bulk(c.name.as_bytes());
    r.int(c.arity as i64);
    let fl: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(f, _)| c.flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    r.set(fl.len());
    for f in fl {
        r.simple(f);
    }
    let (first, last, step) = c.legacy_keys();
    r.int(first as i64);
    r.int(last as i64);
    r.int(step as i64);
    let cats: Vec<&str> = acl::NAMES
        .iter()
        .filter(|(f, _)| c.acl & f != 0)
        .map(|(_, n)| *n)
        .collect();
    r.set(cats.len());
    for cat in cats {
        r.simple(&format!("@{cat}"));
    }
    r.array(0); // tips
                // Key specs, derived from the same key positions routing uses.
    match c.keys {
        KeySpec::None => r.array(0),
        KeySpec::Range {
            first,
            last,
            step,
            writes,
        } => {
            r.array(1);
            // Shard channels are declared as keys that are not keys.
            let fl = if c.has(flags::PUBSUB) {
                "not_key"
            } else if writes != Writes::None {
                "RW"
            } else {
                "RO"
            };
            key_spec(r, first, last, step, fl);
        }
        KeySpec::Custom {
            legacy: (first, last, step),
            ..
        } => {
            r.array(1);
            key_spec(r, first, last, step, "RW");
        }
    }
    r.array(c.subcommands.len());
    for s in c.subcommands {
        command_info(r, s);
    }
}

fn key_spec(r: &mut Reply, first: i32, last: i32, step: i32, flag: &str) {
    r.map(3);
    r.bulk(b"flags");
    r.set(1);
    r.simple(flag);
    r.bulk(b"begin_search");
    r.map(2);
    r.bulk(b"type");
    r.bulk(b"index");
    r.bulk(b"spec");
    r.map(1);
    r.bulk(b"index");
    r.int(first as i64);
    r.bulk(b"find_keys");
    r.map(2);
    r.bulk(b"type");
    r.bulk(b"range");
    r.bulk(b"spec");
    r.map(3);
    r.bulk(b"lastkey");
    r.int(if last < 0 {
        last as i64
    } else {
        (last - first) as i64
    });
    r.bulk(b"keystep");
    r.int(step as i64);
    r.bulk(b"limit");
    r.int(0);
}

fn command_docs(r: &mut Reply, c: &CommandSpec) {
    r.bulk(c.name.as_bytes());
    let n = 4 + (!c.subcommands.is_empty()) as usize;
    r.map(n);
    r.bulk(b"summary");
    r.bulk(c.docs.summary.as_bytes());
    r.bulk(b"since");
    r.bulk(c.docs.since.as_bytes());
    r.bulk(b"group");
    r.bulk(c.group.as_bytes());
    r.bulk(b"complexity");
    r.bulk(c.docs.complexity.as_bytes());
    if !c.subcommands.is_empty() {
        r.bulk(b"subcommands");
        r.map(c.subcommands.len());
        for s in c.subcommands {
            command_docs(r, s);
        }
    }
}

/// Finds a command or "container|sub" by name.
fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&c| c == b'|') {
        Some(p) => lookup(&name[..p]).and_then(|c| lookup_sub(c, &name[p + 1..])),
        None => lookup(name),
    }
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "HELP",
    "    Print this help.",
];

/// COMMAND
pub fn command_all(conn: &mut Conn, _args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    let all: Vec<_> = table::top_level().collect();
    r.array(all.len());
    for c in all {
        command_info(&mut r, c);
    }
}

/// COMMAND COUNT
pub fn count(conn: &mut Conn, _args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.int(table::top_level().count() as i64);
}

/// COMMAND INFO
pub fn info_cmd(conn: &mut Conn, args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    if args.len() == 2 {
        let all: Vec<_> = table::top_level().collect();
        r.array(all.len());
        for c in all {
            command_info(&mut r, c);
        }
    } else {
        r.array(args.len() - 2);
        for name in args.iter().skip(2) {
            match find(name) {
                Some(c) => command_info(&mut r, c),
                None => r.null_array(),
            }
        }
    }
}

/// COMMAND DOCS
pub fn docs(conn: &mut Conn, args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    if args.len() == 2 {
        let all: Vec<_> = table::top_level().collect();
        r.map(all.len());
        for c in all {
            command_docs(&mut r, c);
        }
    } else {
        let found: Vec<_> = args.iter().skip(2).filter_map(find).collect();
        r.map(found.len());
        for c in found {
            command_docs(&mut r, c);
        }
    }
}

/// COMMAND LIST
pub fn list(conn: &mut Conn, args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    let mut names: Vec<&str> = Vec::new();
    if args.len() == 2 {
        names = table::top_level().map(|c| c.name).collect();
    } else if args.len() == 5 && eq_ic(args.get(2), b"FILTERBY") {
        let (how, what) = (args.get(3), args.get(4));
        if eq_ic(how, b"PATTERN") {
            names = table::all()
                .iter()
                .filter(|c| tessera_shard::glob::glob_match(what, c.name.as_bytes(), true))
                .map(|c| c.name)
                .collect();
        } else if eq_ic(how, b"ACLCAT") {
            let cat = acl::NAMES
                .iter()
                .find(|(_, n)| eq_ic(n.as_bytes(), what))
                .map(|(f, _)| *f);
            names = table::all()
                .iter()
                .filter(|c| cat.is_some_and(|f| c.acl & f != 0))
                .map(|c| c.name)
                .collect();
        } else if !eq_ic(how, b"MODULE") {
            return r.error("ERR syntax error");
        }
    } else {
        return r.error("ERR syntax error");
    }
    r.array(names.len());
    for n in names {
        r.bulk(n.as_bytes());
    }
}

/// COMMAND GETKEYS
pub fn getkeys(conn: &mut Conn, args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    let inner = args.skip(2);
    let Some(mut c) = lookup(inner.get(0)) else {
        return r.error("ERR Invalid command specified");
    };
    if !c.subcommands.is_empty() && inner.len() >= 2 {
        if let Some(s) = lookup_sub(c, inner.get(1)) {
            c = s;
        }
    }
    if !c.arity_ok(inner.len()) {
        return r.error("ERR Invalid number of arguments specified for command");
    }
    let mut pos = Vec::new();
    if let Err(e) = c.key_positions(&inner, &mut pos) {
        return r.error(e);
    }
    // Shard channels (SSUBSCRIBE, SPUBLISH) are flagged not_key.
    if pos.is_empty() || c.has(flags::PUBSUB) {
        return r.error("ERR The command has no key arguments");
    }
    r.array(pos.len());
    for p in pos {
        r.bulk(inner.get(p.index));
    }
}

/// COMMAND HELP
pub fn help(conn: &mut Conn, _args: Args<'_>) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.array(COMMAND_HELP.len());
    for l in COMMAND_HELP {
        r.simple(l);
    }
}

/// What one shard reports for INFO.
struct ShardInfo {
    stats: ShardStats,
    used_memory: isize,
    /// What the shard held when it started (not counted for maxmemory).
    startup_memory: isize,
    evicted_keys: u64,
    keys: Vec<(usize, usize, usize)>, // (db, keys, volatile)
    clients: usize,
    pubsub_clients: usize,
    errors: std::collections::BTreeMap<String, u64>,
}

fn human(bytes: f64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{:.2}{}", v, units[u])
}

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// `INFO all` / `everything`: the default sections plus the per-command
/// ones, in Redis's order.
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "tessera",
];

pub async fn info(conn: &mut Conn, args: Args<'_>) {
    let mut sections: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if sections.is_empty() {
        sections.push("default".into());
    }
    let mut expanded: Vec<String> = Vec::new();
    for s in &sections {
        let names: &[&str] = match s.as_str() {
            "default" => DEFAULT_SECTIONS,
            "all" | "everything" => ALL_SECTIONS,
            other => {
                expanded.push(other.to_string());
                continue;
            }
        };
        expanded.extend(names.iter().map(|n| n.to_string()));
    }
    let sections = expanded;
    let want = |s: &str| sections.iter().any(|x| x == s);
    let parts = conn
        .rt
        .call_all(|| {
            Box::new(|rt: &ShardRuntime| {
                let st = rt.state.borrow();
                ShardInfo {
                    stats: st.stats.clone(),
                    used_memory: crate::alloc::thread_allocated(),
                    startup_memory: st.evict.baseline,
                    evicted_keys: st.evict.evicted_keys,
                    keys: st
                        .keyspace
                        .dbs()
                        .map(|(i, d)| (i, d.len(), d.volatile_len()))
                        .collect(),
                    clients: rt.clients.borrow().len(),
                    pubsub_clients: rt
                        .clients
                        .borrow()
                        .iter()
                        .filter(|(_, m)| m.borrow().is_pubsub())
                        .count(),
                    errors: st.errors.clone(),
                }
            })
        })
        .await;
    let shared = conn.rt.shared.clone();
    let mut stats = ShardStats::new();
    let mut used = 0isize;
    let mut keys: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    for p in parts.iter().flatten() {
        for (code, n) in &p.errors {
            *errors.entry(code.clone()).or_default() += n;
        }
        stats.merge(&p.stats);
        used += p.used_memory;
        for &(db, k, v) in &p.keys {
            let e = keys.entry(db).or_default();
            e.0 += k;
            e.1 += v;
        }
    }
    let expired: u64 = {
        // Lazily expired keys are counted by each database.
        let per: Vec<Option<u64>> = conn
            .rt
            .call_all(|| {
                Box::new(|rt: &ShardRuntime| {
                    rt.state
                        .borrow()
                        .keyspace
                        .dbs()
                        .map(|(_, d)| d.expired_keys)
                        .sum::<u64>()
                })
            })
            .await;
        per.into_iter().flatten().sum()
    };
    let cfg = shared.config.lock().map(|c| c.clone()).unwrap_or_default();
    let uptime = shared.started.elapsed().as_secs();
    let mut s = String::new();
    let nl = "\r\n";
    if want("server") {
        let _ = write!(
            s,
            "# Server{nl}redis_version:{}{nl}tessera_version:{}{nl}redis_git_sha1:00000000{nl}redis_git_dirty:0{nl}redis_build_id:0{nl}redis_mode:{}{nl}os:{} {}{nl}arch_bits:64{nl}monotonic_clock:X86 TSC or ARM CNTVCT, calibrated{nl}multiplexing_api:io_uring{nl}atomicvar_api:c11-builtin{nl}process_id:{}{nl}process_supervised:no{nl}run_id:{}{nl}tcp_port:{}{nl}server_time_usec:{}{nl}uptime_in_seconds:{uptime}{nl}uptime_in_days:{}{nl}hz:{}{nl}configured_hz:{}{nl}lru_clock:{}{nl}executable:{}{nl}config_file:{}{nl}io_threads_active:0{nl}shards:{}{nl}shard_cpus:{}{nl}{nl}",
            super::REDIS_COMPAT_VERSION,
            env!("CARGO_PKG_VERSION"),
            if shared.cluster.enabled { "cluster" } else { "standalone" },
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            shared.run_id,
            shared.port.load(Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0),
            uptime / 86400,
            cfg.hz(),
            cfg.hz(),
            (tessera_shard::util::now_ms() / 1000) & ((1 << 24) - 1),
            std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            cfg.config_file.clone().unwrap_or_default(),
            shared.nshards(),
            shared.shard_cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        );
    }
    if want("clients") {
        let connected: usize = parts.iter().flatten().map(|p| p.clients).sum();
        let _ = write!(
            s,
            "# Clients{nl}connected_clients:{connected}{nl}cluster_connections:0{nl}maxclients:{}{nl}blocked_clients:{}{nl}tracking_clients:{}{nl}pubsub_clients:{}{nl}monitor_clients:{}{nl}{nl}",
            cfg.maxclients(),
            shared.blocked_clients.load(std::sync::atomic::Ordering::Relaxed),
            shared.tracking_clients.load(std::sync::atomic::Ordering::Relaxed),
            parts.iter().flatten().map(|p| p.pubsub_clients).sum::<usize>(),
            shared.monitors.load(Ordering::Relaxed),
        );
    }
    if want("memory") {
        let rss = crate::alloc::rss_bytes();
        let used = used.max(0) as usize;
        let startup: isize = parts.iter().flatten().map(|p| p.startup_memory).sum();
        let maxmemory = cfg.maxmemory();
        let _ = write!(
            s,
            "# Memory{nl}used_memory:{used}{nl}used_memory_human:{}{nl}used_memory_rss:{rss}{nl}used_memory_rss_human:{}{nl}used_memory_startup:{}{nl}maxmemory:{maxmemory}{nl}maxmemory_human:{}{nl}maxmemory_policy:{}{nl}mem_fragmentation_ratio:{:.2}{nl}mem_allocator:mimalloc{nl}",
            human(used as f64),
            human(rss as f64),
            startup.max(0),
            // Redis's bytesToHuman: whole bytes below 1K.
            if maxmemory < 1024 { format!("{maxmemory}B") } else { human(maxmemory as f64) },
            cfg.get("maxmemory-policy").unwrap_or("noeviction"),
            if used > 0 { rss as f64 / used as f64 } else { 0.0 },
        );
        for (i, p) in parts.iter().enumerate() {
            if let Some(p) = p {
                let _ = write!(s, "shard{i}_used_memory:{}{nl}", p.used_memory.max(0));
            }
        }
        s.push_str(nl);
    }
    if want("persistence") {
        let p = crate::persist::info_section(conn, nl).await;
        s.push_str(&p);
    }
    if want("stats") {
        let [ps_channels, ps_patterns, ps_shard] = crate::pubsub::totals(&conn.rt).await;
        let _ = write!(
            s,
            "# Stats{nl}total_connections_received:{}{nl}total_commands_processed:{}{nl}rejected_connections:{}{nl}expired_keys:{expired}{nl}expired_keys_active:{}{nl}evicted_keys:{}{nl}keyspace_hits:{}{nl}keyspace_misses:{}{nl}pubsub_channels:{ps_channels}{nl}pubsub_patterns:{ps_patterns}{nl}pubsubshard_channels:{ps_shard}{nl}tracking_total_keys:0{nl}total_error_replies:{}{nl}unexpected_error_replies:0{nl}evicted_clients:0{nl}forwarded_commands:{}{nl}{nl}",
            shared.total_connections.load(Ordering::Relaxed),
            stats.total_commands,
            shared.rejected_connections.load(Ordering::Relaxed),
            stats.expired_keys_active,
            parts.iter().flatten().map(|p| p.evicted_keys).sum::<u64>(),
            stats.keyspace_hits,
            stats.keyspace_misses,
            errors.values().sum::<u64>(),
            stats.forwarded_in,
        );
    }
    if want("replication") {
        let _ = write!(
            s,
            "# Replication{nl}role:master{nl}connected_slaves:0{nl}master_failover_state:no-failover{nl}master_replid:{}{nl}master_replid2:0000000000000000000000000000000000000000{nl}master_repl_offset:0{nl}second_repl_offset:-1{nl}repl_backlog_active:0{nl}repl_backlog_size:{}{nl}repl_backlog_first_byte_offset:0{nl}repl_backlog_histlen:0{nl}{nl}",
            shared.run_id,
            cfg.get("repl-backlog-size").unwrap_or("1048576"),
        );
    }
    if want("cpu") {
        let (sys, user) = rusage();
        let _ = write!(
            s,
            "# CPU{nl}used_cpu_sys:{sys:.6}{nl}used_cpu_user:{user:.6}{nl}used_cpu_sys_children:0.000000{nl}used_cpu_user_children:0.000000{nl}{nl}"
        );
    }
    if want("modules") {
        let _ = write!(s, "# Modules{nl}{nl}");
    }
    if want("commandstats") {
        let _ = write!(s, "# Commandstats{nl}");
        for (id, c) in stats.commands.iter().enumerate() {
            if c.calls == 0 && c.failed_calls == 0 && c.rejected_calls == 0 {
                continue;
            }
            let name = table::by_id(id as u16).name;
            let usec = c.nsec / 1000;
            let per = if c.calls > 0 {
                c.nsec as f64 / 1000.0 / c.calls as f64
            } else {
                0.0
            };
            let _ = write!(
                s,
                "cmdstat_{name}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}{nl}",
                c.calls, usec, c.rejected_calls, c.failed_calls
            );
        }
        s.push_str(nl);
    }
    if want("errorstats") {
        let _ = write!(s, "# Errorstats{nl}");
        for (code, n) in &errors {
            let _ = write!(s, "errorstat_{code}:count={n}{nl}");
        }
        s.push_str(nl);
    }
    if want("latencystats") && cfg.get("latency-tracking") != Some("no") {
        let hists = super::latency::merged_histograms(conn).await;
        let percentiles: Vec<f64> = cfg
            .get("latency-tracking-info-percentiles")
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        s.push_str(&super::latency::info_section(&hists, &percentiles, nl));
    }
    if want("cluster") {
        let _ = write!(
            s,
            "# Cluster{nl}{}{nl}",
            crate::cluster::info_fields(&shared)
        );
    }
    if want("keyspace") {
        let _ = write!(s, "# Keyspace{nl}");
        for (db, (k, v)) in keys {
            if k > 0 {
                let _ = write!(s, "db{db}:keys={k},expires={v},avg_ttl=0{nl}");
            }
        }
        s.push_str(nl);
    }
    if want("tessera") {
        // Per shard: what each core holds and does.
        let _ = write!(s, "# Tessera{nl}");
        for (i, p) in parts.iter().enumerate() {
            let Some(p) = p else { continue };
            let (k, v) = p
                .keys
                .iter()
                .fold((0, 0), |(k, v), &(_, dk, dv)| (k + dk, v + dv));
            let _ = write!(
                s,
                "tessera_shard{i}:keys={k},expires={v},commands={},used_memory={},clients={},forwarded_in={},keyspace_hits={},keyspace_misses={}{nl}",
                p.stats.total_commands,
                p.used_memory.max(0),
                p.clients,
                p.stats.forwarded_in,
                p.stats.keyspace_hits,
                p.stats.keyspace_misses,
            );
        }
        s.push_str(nl);
    }
    while s.ends_with("\r\n\r\n") {
        s.truncate(s.len() - 2);
    }
    Reply::new(&mut conn.wbuf, conn.proto).verbatim("txt", s.as_bytes());
}

/// Process CPU time (system, user) in seconds.
pub fn rusage() -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}
