//! Every parameter of Redis 7.0 (names, aliases, kinds, bounds, defaults
//! as CONFIG GET reports them, flags), plus Tessera's own, and whether
//! Tessera acts on it.

/// Numeric sub-flags, as Redis's numeric configs have them.
pub const MEM: u8 = 1;
pub const PERCENT: u8 = 2;
pub const OCTAL: u8 = 4;

/// A validity test of a string value (Redis's is_valid_fn).
pub type Check = fn(&str) -> Result<(), &'static str>;

/// How a parameter's value is parsed, shown and rewritten.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// yes / no.
    Bool,
    /// An integer (or byte count, percentage, octal number per `flags`)
    /// within `min..=max`; `unsigned` types compare as Redis's unsigned
    /// C types do (so -1 is out of range, not below it).
    Num {
        min: i128,
        max: i128,
        unsigned: bool,
        flags: u8,
    },
    /// One of a fixed set of words (case-insensitive).
    Enum(&'static [&'static str]),
    /// Free text; `null_if_empty` as Redis's EMPTY_STRING_IS_NULL (only
    /// matters to CONFIG REWRITE); `check` a validity test.
    Str {
        null_if_empty: bool,
        check: Option<Check>,
    },
    /// A parameter with its own syntax.
    Special(Special),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Special {
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyTrackingInfoPercentiles,
    /// shutdown-on-sigint / -sigterm: flags among save, nosave, now, force.
    ShutdownOnSig,
}

/// What Tessera does with a parameter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// Honoured as Redis does.
    Live,
    /// Accepted, validated, stored and returned by CONFIG GET; no effect yet.
    None,
    /// Tessera's own parameter (not in Redis).
    Tessera,
}

pub const IMMUTABLE: u8 = 1;
pub const PROTECTED: u8 = 2;
pub const HIDDEN: u8 = 4;
pub const MULTI_ARG: u8 = 8;

pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    /// The value CONFIG GET shows by default.
    pub default: &'static str,
    pub flags: u8,
    pub effect: Effect,
}

impl Param {
    pub fn immutable(&self) -> bool {
        self.flags & IMMUTABLE != 0
    }
    pub fn multi_arg(&self) -> bool {
        self.flags & MULTI_ARG != 0
    }
}

use Effect::{Live, None as NoEff, Tessera};

const INT_MAX: i128 = i32::MAX as i128;
const INT_MIN: i128 = i32::MIN as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

const fn b(
    name: &'static str,
    alias: Option<&'static str>,
    default: bool,
    flags: u8,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias,
        kind: Kind::Bool,
        default: if default { "yes" } else { "no" },
        flags,
        effect,
    }
}

/// A signed integer (int, long long, time_t, off_t, ssize_t).
const fn i(
    name: &'static str,
    alias: Option<&'static str>,
    min: i128,
    max: i128,
    default: &'static str,
    flags: u8,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias,
        kind: Kind::Num {
            min,
            max,
            unsigned: false,
            flags: 0,
        },
        default,
        flags,
        effect,
    }
}

/// An unsigned integer (unsigned int, unsigned long, size_t).
const fn u(
    name: &'static str,
    alias: Option<&'static str>,
    min: i128,
    max: i128,
    default: &'static str,
    flags: u8,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias,
        kind: Kind::Num {
            min,
            max,
            unsigned: true,
            flags: 0,
        },
        default,
        flags,
        effect,
    }
}

/// A byte count with units.
const fn m(
    name: &'static str,
    alias: Option<&'static str>,
    min: i128,
    max: i128,
    unsigned: bool,
    default: &'static str,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias,
        kind: Kind::Num {
            min,
            max,
            unsigned,
            flags: MEM,
        },
        default,
        flags: 0,
        effect,
    }
}

const fn e(
    name: &'static str,
    words: &'static [&'static str],
    default: &'static str,
    flags: u8,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias: None,
        kind: Kind::Enum(words),
        default,
        flags,
        effect,
    }
}

/// A string whose empty value means "not set" (Redis's NULL).
const fn sn(name: &'static str, alias: Option<&'static str>, flags: u8, effect: Effect) -> Param {
    Param {
        name,
        alias,
        kind: Kind::Str {
            null_if_empty: true,
            check: None,
        },
        default: "",
        flags,
        effect,
    }
}

/// A string that may be empty.
const fn s(
    name: &'static str,
    default: &'static str,
    flags: u8,
    check: Option<Check>,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias: None,
        kind: Kind::Str {
            null_if_empty: false,
            check,
        },
        default,
        flags,
        effect,
    }
}

const fn sp(
    name: &'static str,
    alias: Option<&'static str>,
    sp: Special,
    default: &'static str,
    flags: u8,
    effect: Effect,
) -> Param {
    Param {
        name,
        alias,
        kind: Kind::Special(sp),
        default,
        flags,
        effect,
    }
}

const M: u8 = 0; // modifiable
const I: u8 = IMMUTABLE;

fn base_name(v: &str, what: &'static str) -> Result<(), &'static str> {
    if v.contains('/') || v.contains('\\') {
        Err(what)
    } else {
        Ok(())
    }
}

fn check_dbfilename(v: &str) -> Result<(), &'static str> {
    base_name(v, "dbfilename can't be a path, just a filename")
}

fn check_appendfilename(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("appendfilename can't be empty");
    }
    base_name(v, "appendfilename can't be a path, just a filename")
}

fn check_appenddirname(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("appenddirname can't be empty");
    }
    base_name(v, "appenddirname can't be a path, just a dirname")
}

fn check_hostname(v: &str) -> Result<(), &'static str> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters");
    }
    if !v
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

/// proc-title-template: `{name}` variables among Redis's, `{{`/`}}` escapes,
/// and something left once expanded.
fn check_proc_title(v: &str) -> Result<(), &'static str> {
    const BAD: &str = "template format is invalid or contains unknown variables";
    const VARS: &[&str] = &[
        "title",
        "listen-addr",
        "server-mode",
        "port",
        "tls-port",
        "unixsocket",
        "config-file",
    ];
    let b = v.as_bytes();
    let mut i = 0;
    let mut literal = 0usize;
    let mut vars = 0usize;
    while i < b.len() {
        match b[i] {
            b'{' if b.get(i + 1) == Some(&b'{') => {
                literal += 1;
                i += 2;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                literal += 1;
                i += 2;
            }
            b'{' => {
                let Some(end) = v[i + 1..].find('}') else {
                    return Err(BAD);
                };
                if !VARS.contains(&&v[i + 1..i + 1 + end]) {
                    return Err(BAD);
                }
                vars += 1;
                i += end + 2;
            }
            b'}' => return Err(BAD),
            _ => {
                literal += 1;
                i += 1;
            }
        }
    }
    if literal + vars == 0 {
        return Err(BAD);
    }
    Ok(())
}

const PROTECTED_ACTION: &[&str] = &["no", "yes", "local"];

/// Every parameter. Redis's are in the order of its config.c table.
pub const PARAMS: &[Param] = &[
    // yes/no
    b("rdbchecksum", None, true, I, Live),
    b("daemonize", None, false, I, Live),
    b("io-threads-do-reads", None, false, I, NoEff),
    b("always-show-logo", None, false, I, NoEff),
    b("protected-mode", None, true, M, NoEff),
    b("rdbcompression", None, true, M, Live),
    b("rdb-del-sync-files", None, false, M, NoEff),
    b("activerehashing", None, true, M, NoEff),
    b("stop-writes-on-bgsave-error", None, true, M, Live),
    b("set-proc-title", None, true, I, NoEff),
    b("dynamic-hz", None, true, M, NoEff),
    b("lazyfree-lazy-eviction", None, false, M, NoEff),
    b("lazyfree-lazy-expire", None, false, M, NoEff),
    b("lazyfree-lazy-server-del", None, false, M, NoEff),
    b("lazyfree-lazy-user-del", None, false, M, NoEff),
    b("lazyfree-lazy-user-flush", None, false, M, NoEff),
    b("repl-disable-tcp-nodelay", None, false, M, NoEff),
    b("repl-diskless-sync", None, true, M, NoEff),
    b("aof-rewrite-incremental-fsync", None, true, M, NoEff),
    b("no-appendfsync-on-rewrite", None, false, M, NoEff),
    b("cluster-require-full-coverage", None, true, M, Live),
    b("rdb-save-incremental-fsync", None, true, M, NoEff),
    b("aof-load-truncated", None, true, M, Live),
    b("aof-use-rdb-preamble", None, true, M, NoEff),
    b("aof-timestamp-enabled", None, false, M, NoEff),
    b(
        "cluster-replica-no-failover",
        Some("cluster-slave-no-failover"),
        false,
        M,
        NoEff,
    ),
    b(
        "replica-lazy-flush",
        Some("slave-lazy-flush"),
        false,
        M,
        NoEff,
    ),
    b(
        "replica-serve-stale-data",
        Some("slave-serve-stale-data"),
        true,
        M,
        NoEff,
    ),
    b("replica-read-only", Some("slave-read-only"), true, M, NoEff),
    b(
        "replica-ignore-maxmemory",
        Some("slave-ignore-maxmemory"),
        true,
        M,
        NoEff,
    ),
    b("jemalloc-bg-thread", None, true, M, NoEff),
    b("activedefrag", None, false, M, NoEff),
    b("syslog-enabled", None, false, I, NoEff),
    b("cluster-enabled", None, false, I, Live),
    b("appendonly", None, false, M, Live),
    b("cluster-allow-reads-when-down", None, false, M, Live),
    b("cluster-allow-pubsubshard-when-down", None, true, M, Live),
    b("crash-log-enabled", None, true, M, NoEff),
    b("crash-memcheck-enabled", None, true, M, NoEff),
    b("use-exit-on-panic", None, false, HIDDEN, NoEff),
    b("disable-thp", None, true, I, NoEff),
    b("cluster-allow-replica-migration", None, true, M, NoEff),
    b("replica-announced", None, true, M, NoEff),
    b("latency-tracking", None, true, M, Live),
    b("aof-disable-auto-gc", None, false, M, NoEff),
    b("replica-ignore-disk-write-errors", None, false, M, NoEff),
    // strings
    s("aclfile", "", I, None, NoEff),
    sn("unixsocket", None, I, NoEff),
    sn("pidfile", None, I, Live),
    sn("replica-announce-ip", Some("slave-announce-ip"), M, NoEff),
    sn("masteruser", None, M, NoEff),
    sn("cluster-announce-ip", None, M, Live),
    s("cluster-config-file", "nodes.conf", I, None, Live),
    Param {
        name: "cluster-announce-hostname",
        alias: None,
        kind: Kind::Str {
            null_if_empty: true,
            check: Some(check_hostname),
        },
        default: "",
        flags: M,
        effect: Live,
    },
    s("syslog-ident", "redis", I, None, NoEff),
    s(
        "dbfilename",
        "dump.rdb",
        PROTECTED,
        Some(check_dbfilename),
        Live,
    ),
    s(
        "appendfilename",
        "appendonly.aof",
        I,
        Some(check_appendfilename),
        Live,
    ),
    s(
        "appenddirname",
        "appendonlydir",
        I,
        Some(check_appenddirname),
        Live,
    ),
    sn("server_cpulist", None, I, NoEff),
    sn("bio_cpulist", None, I, NoEff),
    sn("aof_rewrite_cpulist", None, I, NoEff),
    sn("bgsave_cpulist", None, I, NoEff),
    s("ignore-warnings", "", M, None, NoEff),
    s(
        "proc-title-template",
        "{title} {listen-addr} {server-mode}",
        M,
        Some(check_proc_title),
        NoEff,
    ),
    sn("bind-source-addr", None, M, NoEff),
    s("logfile", "", I, None, Live),
    sn("masterauth", None, M, NoEff),
    sn("requirepass", None, M, Live),
    // enums
    e(
        "supervised",
        &["upstart", "systemd", "auto", "no"],
        "no",
        I,
        Live,
    ),
    e(
        "syslog-facility",
        &[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ],
        "local0",
        I,
        NoEff,
    ),
    e(
        "repl-diskless-load",
        &["disabled", "on-empty-db", "swapdb"],
        "disabled",
        M,
        NoEff,
    ),
    e(
        "loglevel",
        &["debug", "verbose", "notice", "warning"],
        "notice",
        M,
        Live,
    ),
    e(
        "maxmemory-policy",
        &[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ],
        "noeviction",
        M,
        Live,
    ),
    e(
        "appendfsync",
        &["everysec", "always", "no"],
        "everysec",
        M,
        Live,
    ),
    e(
        "oom-score-adj",
        &["no", "yes", "relative", "absolute"],
        "no",
        M,
        NoEff,
    ),
    e(
        "acl-pubsub-default",
        &["allchannels", "resetchannels"],
        "resetchannels",
        M,
        NoEff,
    ),
    e(
        "sanitize-dump-payload",
        &["no", "yes", "clients"],
        "no",
        M,
        NoEff,
    ),
    e(
        "propagation-error-behavior",
        &["ignore", "panic", "panic-on-replicas"],
        "ignore",
        M,
        NoEff,
    ),
    sp(
        "shutdown-on-sigint",
        None,
        Special::ShutdownOnSig,
        "default",
        MULTI_ARG,
        NoEff,
    ),
    sp(
        "shutdown-on-sigterm",
        None,
        Special::ShutdownOnSig,
        "default",
        MULTI_ARG,
        NoEff,
    ),
    e("enable-protected-configs", PROTECTED_ACTION, "no", I, Live),
    e("enable-debug-command", PROTECTED_ACTION, "no", I, NoEff),
    e("enable-module-command", PROTECTED_ACTION, "no", I, NoEff),
    e(
        "cluster-preferred-endpoint-type",
        &["ip", "hostname", "unknown-endpoint"],
        "ip",
        M,
        Live,
    ),
    // int
    i("databases", None, 1, INT_MAX, "16", I, Live),
    // Redis changes the listening port at run time; Tessera does not (yet).
    i("port", None, 0, 65535, "6379", I, Live),
    i("io-threads", None, 1, 128, "1", I, NoEff),
    i(
        "auto-aof-rewrite-percentage",
        None,
        0,
        INT_MAX,
        "100",
        M,
        Live,
    ),
    i(
        "cluster-replica-validity-factor",
        Some("cluster-slave-validity-factor"),
        0,
        INT_MAX,
        "10",
        M,
        NoEff,
    ),
    i(
        "list-max-listpack-size",
        Some("list-max-ziplist-size"),
        INT_MIN,
        INT_MAX,
        "-2",
        M,
        Live,
    ),
    i("tcp-keepalive", None, 0, INT_MAX, "300", M, NoEff),
    i("cluster-migration-barrier", None, 0, INT_MAX, "1", M, NoEff),
    i("active-defrag-cycle-min", None, 1, 99, "1", M, NoEff),
    i("active-defrag-cycle-max", None, 1, 99, "25", M, NoEff),
    i(
        "active-defrag-threshold-lower",
        None,
        0,
        1000,
        "10",
        M,
        NoEff,
    ),
    i(
        "active-defrag-threshold-upper",
        None,
        0,
        1000,
        "100",
        M,
        NoEff,
    ),
    i("lfu-log-factor", None, 0, INT_MAX, "10", M, Live),
    i("lfu-decay-time", None, 0, INT_MAX, "1", M, Live),
    i(
        "replica-priority",
        Some("slave-priority"),
        0,
        INT_MAX,
        "100",
        M,
        NoEff,
    ),
    i("repl-diskless-sync-delay", None, 0, INT_MAX, "5", M, NoEff),
    i("maxmemory-samples", None, 1, INT_MAX, "5", M, Live),
    i("maxmemory-eviction-tenacity", None, 0, 100, "10", M, Live),
    i("timeout", None, 0, INT_MAX, "0", M, Live),
    i(
        "replica-announce-port",
        Some("slave-announce-port"),
        0,
        65535,
        "0",
        M,
        NoEff,
    ),
    i("tcp-backlog", None, 0, INT_MAX, "511", I, Live),
    i("cluster-port", None, 0, 65535, "0", I, Live),
    i("cluster-announce-bus-port", None, 0, 65535, "0", M, Live),
    i("cluster-announce-port", None, 0, 65535, "0", M, Live),
    i("cluster-announce-tls-port", None, 0, 65535, "0", M, NoEff),
    i("repl-timeout", None, 1, INT_MAX, "60", M, NoEff),
    i(
        "repl-ping-replica-period",
        Some("repl-ping-slave-period"),
        1,
        INT_MAX,
        "10",
        M,
        NoEff,
    ),
    i("list-compress-depth", None, 0, INT_MAX, "0", M, NoEff),
    i(
        "rdb-key-save-delay",
        None,
        INT_MIN,
        INT_MAX,
        "0",
        HIDDEN,
        NoEff,
    ),
    i("key-load-delay", None, INT_MIN, INT_MAX, "0", HIDDEN, NoEff),
    i("active-expire-effort", None, 1, 10, "1", M, Live),
    i("hz", None, 0, INT_MAX, "10", M, Live),
    i(
        "min-replicas-to-write",
        Some("min-slaves-to-write"),
        0,
        INT_MAX,
        "0",
        M,
        NoEff,
    ),
    i(
        "min-replicas-max-lag",
        Some("min-slaves-max-lag"),
        0,
        INT_MAX,
        "10",
        M,
        NoEff,
    ),
    i("watchdog-period", None, 0, INT_MAX, "0", HIDDEN, NoEff),
    i("shutdown-timeout", None, 0, INT_MAX, "10", M, NoEff),
    i(
        "repl-diskless-sync-max-replicas",
        None,
        0,
        INT_MAX,
        "0",
        M,
        NoEff,
    ),
    // unsigned int
    u("maxclients", None, 1, u32::MAX as i128, "10000", M, Live),
    u("socket-mark-id", None, 0, u32::MAX as i128, "0", I, NoEff),
    Param {
        name: "unixsocketperm",
        alias: None,
        kind: Kind::Num {
            min: 0,
            max: 0o777,
            unsigned: true,
            flags: OCTAL,
        },
        default: "0",
        flags: I,
        effect: NoEff,
    },
    // unsigned long
    u(
        "active-defrag-max-scan-fields",
        None,
        1,
        LONG_MAX,
        "1000",
        M,
        NoEff,
    ),
    u("slowlog-max-len", None, 0, LONG_MAX, "128", M, Live),
    u("acllog-max-len", None, 0, LONG_MAX, "128", M, NoEff),
    // long long
    i(
        "busy-reply-threshold",
        Some("lua-time-limit"),
        0,
        LONG_MAX,
        "5000",
        M,
        NoEff,
    ),
    i("cluster-node-timeout", None, 0, LONG_MAX, "15000", M, Live),
    i(
        "slowlog-log-slower-than",
        None,
        -1,
        LONG_MAX,
        "10000",
        M,
        Live,
    ),
    i("latency-monitor-threshold", None, 0, LONG_MAX, "0", M, Live),
    m(
        "proto-max-bulk-len",
        None,
        1024 * 1024,
        LONG_MAX,
        false,
        "536870912",
        Live,
    ),
    i("stream-node-max-entries", None, 0, LONG_MAX, "100", M, Live),
    m(
        "repl-backlog-size",
        None,
        1,
        LONG_MAX,
        false,
        "1048576",
        NoEff,
    ),
    // unsigned long long
    m("maxmemory", None, 0, ULLONG_MAX, true, "0", Live),
    m(
        "cluster-link-sendbuf-limit",
        None,
        0,
        ULLONG_MAX,
        true,
        "0",
        NoEff,
    ),
    // size_t
    u(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        0,
        LONG_MAX,
        "512",
        M,
        Live,
    ),
    u("set-max-intset-entries", None, 0, LONG_MAX, "512", M, Live),
    u(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        0,
        LONG_MAX,
        "128",
        M,
        Live,
    ),
    m(
        "active-defrag-ignore-bytes",
        None,
        1,
        LONG_MAX,
        true,
        "104857600",
        NoEff,
    ),
    m(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        0,
        LONG_MAX,
        true,
        "64",
        Live,
    ),
    m(
        "stream-node-max-bytes",
        None,
        0,
        LONG_MAX,
        true,
        "4096",
        Live,
    ),
    m(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        0,
        LONG_MAX,
        true,
        "64",
        Live,
    ),
    m(
        "hll-sparse-max-bytes",
        None,
        0,
        LONG_MAX,
        true,
        "3000",
        NoEff,
    ),
    u(
        "tracking-table-max-keys",
        None,
        0,
        LONG_MAX,
        "1000000",
        M,
        Live,
    ),
    m(
        "client-query-buffer-limit",
        None,
        1024 * 1024,
        LONG_MAX,
        true,
        "1073741824",
        Live,
    ),
    Param {
        name: "maxmemory-clients",
        alias: None,
        kind: Kind::Num {
            min: -100,
            max: LONG_MAX,
            unsigned: false,
            flags: MEM | PERCENT,
        },
        default: "0",
        flags: M,
        effect: NoEff,
    },
    // time_t, off_t
    i("repl-backlog-ttl", None, 0, LONG_MAX, "3600", M, NoEff),
    m(
        "auto-aof-rewrite-min-size",
        None,
        0,
        LONG_MAX,
        false,
        "67108864",
        Live,
    ),
    i(
        "loading-process-events-interval-bytes",
        None,
        1024,
        INT_MAX,
        "2097152",
        HIDDEN,
        NoEff,
    ),
    // TLS (Tessera has no TLS yet)
    i("tls-port", None, 0, 65535, "0", M, NoEff),
    i(
        "tls-session-cache-size",
        None,
        0,
        INT_MAX,
        "20480",
        M,
        NoEff,
    ),
    i(
        "tls-session-cache-timeout",
        None,
        0,
        INT_MAX,
        "300",
        M,
        NoEff,
    ),
    b("tls-cluster", None, false, M, NoEff),
    b("tls-replication", None, false, M, NoEff),
    e(
        "tls-auth-clients",
        &["no", "yes", "optional"],
        "yes",
        M,
        NoEff,
    ),
    b("tls-prefer-server-ciphers", None, false, M, NoEff),
    b("tls-session-caching", None, true, M, NoEff),
    sn("tls-cert-file", None, M, NoEff),
    sn("tls-key-file", None, M, NoEff),
    sn("tls-key-file-pass", None, M, NoEff),
    sn("tls-client-cert-file", None, M, NoEff),
    sn("tls-client-key-file", None, M, NoEff),
    sn("tls-client-key-file-pass", None, M, NoEff),
    sn("tls-dh-params-file", None, M, NoEff),
    sn("tls-ca-cert-file", None, M, NoEff),
    sn("tls-ca-cert-dir", None, M, NoEff),
    sn("tls-protocols", None, M, NoEff),
    sn("tls-ciphers", None, M, NoEff),
    sn("tls-ciphersuites", None, M, NoEff),
    // special
    sp("dir", None, Special::Dir, "", PROTECTED, Live),
    sp("save", None, Special::Save, "", MULTI_ARG, Live),
    sp(
        "client-output-buffer-limit",
        None,
        Special::ClientOutputBufferLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        MULTI_ARG,
        Live,
    ),
    sp(
        "oom-score-adj-values",
        None,
        Special::OomScoreAdjValues,
        "0 200 800",
        MULTI_ARG,
        NoEff,
    ),
    sp(
        "notify-keyspace-events",
        None,
        Special::NotifyKeyspaceEvents,
        "",
        M,
        Live,
    ),
    // Redis rebinds at run time; Tessera does not (yet).
    sp(
        "bind",
        None,
        Special::Bind,
        "127.0.0.1",
        MULTI_ARG | I,
        Live,
    ),
    sp(
        "replicaof",
        Some("slaveof"),
        Special::ReplicaOf,
        "",
        MULTI_ARG | I,
        NoEff,
    ),
    sp(
        "latency-tracking-info-percentiles",
        None,
        Special::LatencyTrackingInfoPercentiles,
        "50 99 99.9",
        MULTI_ARG,
        Live,
    ),
    // Tessera's own
    i("shards", None, 0, 1024, "0", I, Tessera),
];

/// Redis's description of what the listed parameters do in Tessera,
/// for --help.
pub fn help(p: &Param) -> &'static str {
    match p.name {
        "port" => "TCP port to listen on",
        "bind" => "addresses to listen on (space separated; `-` marks an optional one)",
        "databases" => "number of databases",
        "maxclients" => "max connected clients",
        "requirepass" => "password of the default user",
        "loglevel" => "log verbosity",
        "logfile" => "log file (empty: standard output)",
        "proto-max-bulk-len" => "largest bulk string a client may send",
        "client-query-buffer-limit" => "largest query buffer of one client",
        "client-output-buffer-limit" => {
            "output buffer limits per client class (normal and pubsub enforced)"
        }
        "timeout" => "close idle clients after this many seconds (0: never)",
        "tcp-backlog" => "listen backlog",
        "hz" => "active expiry cycles per second",
        "active-expire-effort" => "active expiry effort (1-10)",
        "daemonize" => "run in the background (pidfile defaults to /var/run/redis.pid)",
        "pidfile" => "write the process id to this file",
        "dir" => "working directory",
        "supervised" => "systemd: notify readiness through NOTIFY_SOCKET",
        "enable-protected-configs" => "allow CONFIG SET of dir and dbfilename (no, yes, local)",
        "shards" => "number of shards (0: one per usable CPU, as the planner decides)",
        _ if p.effect == Effect::None => "accepted, no effect yet",
        _ => "encoding threshold, as in Redis",
    }
}
