//! Server configuration: one table of parameters drives the command line
//! (`--port 6380`), the redis.conf-syntax file, CONFIG GET and CONFIG SET.
//!
//! As in redis-server, the config file comes first (first argument, if it
//! does not start with `--`), then command-line options override it.
//! An unknown parameter or a bad value stops startup with one line naming it.

use std::fmt::Write as _;

/// How a parameter's value is parsed and shown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// An integer within a range.
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count with Redis's units (1k = 1000, 1kb = 1024, mb, gb).
    Memory {
        min: i64,
        max: i64,
    },
    Str,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
}

/// A parameter: name, kind, default, whether CONFIG SET may change it, and
/// what it does (for --help).
struct Param {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    mutable: bool,
    help: &'static str,
}

const GB: i64 = 1024 * 1024 * 1024;

/// Every parameter the server really has.
const PARAMS: &[Param] = &[
    Param {
        name: "port",
        kind: Kind::Int { min: 0, max: 65535 },
        default: "6379",
        mutable: false,
        help: "TCP port to listen on",
    },
    Param {
        name: "bind",
        kind: Kind::Str,
        default: "127.0.0.1",
        mutable: false,
        help: "addresses to listen on (space separated)",
    },
    Param {
        name: "databases",
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "16",
        mutable: false,
        help: "number of databases",
    },
    Param {
        name: "maxclients",
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "10000",
        mutable: true,
        help: "max connected clients",
    },
    Param {
        name: "requirepass",
        kind: Kind::Str,
        default: "",
        mutable: true,
        help: "password of the default user",
    },
    Param {
        name: "loglevel",
        kind: Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]),
        default: "notice",
        mutable: true,
        help: "log verbosity",
    },
    Param {
        name: "logfile",
        kind: Kind::Str,
        default: "",
        mutable: false,
        help: "log file (empty: standard output)",
    },
    Param {
        name: "proto-max-bulk-len",
        kind: Kind::Memory {
            min: 1024 * 1024,
            max: 4 * GB - 1,
        },
        default: "512mb",
        mutable: true,
        help: "largest bulk string a client may send",
    },
    Param {
        name: "client-query-buffer-limit",
        kind: Kind::Memory {
            min: 1024 * 1024,
            max: 4 * GB - 1,
        },
        default: "1gb",
        mutable: true,
        help: "largest query buffer of one client",
    },
    Param {
        name: "client-output-buffer-limit",
        kind: Kind::Str,
        default: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        mutable: true,
        help: "output buffer limits per client class (normal and pubsub enforced)",
    },
    Param {
        name: "timeout",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "0",
        mutable: true,
        help: "close idle clients after this many seconds (0: never)",
    },
    Param {
        name: "tcp-backlog",
        kind: Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        default: "511",
        mutable: false,
        help: "listen backlog",
    },
    Param {
        name: "hz",
        kind: Kind::Int { min: 1, max: 500 },
        default: "10",
        mutable: true,
        help: "active expiry cycles per second",
    },
    Param {
        name: "list-max-listpack-size",
        kind: Kind::Int {
            min: i32::MIN as i64,
            max: i32::MAX as i64,
        },
        default: "-2",
        mutable: true,
        help: "list node limit: -1..-5 = 4..64 KiB per node, positive = entries per node",
    },
    Param {
        name: "hash-max-listpack-entries",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
        mutable: true,
        help: "hashes with more fields than this use a hash table",
    },
    Param {
        name: "hash-max-listpack-value",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "64",
        mutable: true,
        help: "hashes with a longer field or value use a hash table",
    },
    Param {
        name: "set-max-intset-entries",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "512",
        mutable: true,
        help: "sets of integers with more members than this use a hash table",
    },
    Param {
        name: "zset-max-listpack-entries",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "128",
        mutable: true,
        help: "sorted sets with more members than this use the large encoding",
    },
    Param {
        name: "zset-max-listpack-value",
        kind: Kind::Memory {
            min: 0,
            max: i64::MAX,
        },
        default: "64",
        mutable: true,
        help: "sorted sets with a longer member use the large encoding",
    },
    Param {
        name: "active-expire-effort",
        kind: Kind::Int { min: 1, max: 10 },
        default: "1",
        mutable: true,
        help: "active expiry effort (1-10)",
    },
    Param {
        name: "save",
        kind: Kind::Enum(&[""]),
        default: "",
        mutable: true,
        help: "snapshots: none (Tessera has no persistence yet)",
    },
    Param {
        name: "appendonly",
        kind: Kind::Enum(&["no"]),
        default: "no",
        mutable: true,
        help: "append-only file: no (Tessera has no persistence yet)",
    },
    Param {
        name: "daemonize",
        kind: Kind::Enum(&["no"]),
        default: "no",
        mutable: false,
        help: "run in the background: no (use systemd)",
    },
    Param {
        name: "shards",
        kind: Kind::Int { min: 0, max: 1024 },
        default: "0",
        mutable: false,
        help: "number of shards (0: one per usable CPU, as the planner decides)",
    },
];

fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Parses a byte count with Redis's memory units.
pub fn parse_memory(s: &str) -> Option<i64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = [
        ("kb", 1024i64),
        ("mb", 1024 * 1024),
        ("gb", GB),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| l.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((&l, 1));
    let n: i64 = num.parse().ok()?;
    n.checked_mul(mul)
}

/// `client-output-buffer-limit` as Redis sets it: each `class hard soft
/// seconds` group given replaces that class's limits and the others stay;
/// the result is normalized (bytes, `slave` for `replica`).
fn merge_output_limits(current: &str, value: &str) -> Result<String, String> {
    const CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];
    let mut limits: [[u64; 3]; 3] = [[0; 3]; 3];
    let cur: Vec<&str> = current.split_whitespace().collect();
    for g in cur.chunks(4).filter(|g| g.len() == 4) {
        if let Some(i) = CLASSES.iter().position(|c| *c == g[0]) {
            for j in 0..3 {
                limits[i][j] = parse_memory(g[j + 1]).unwrap_or(0).max(0) as u64;
            }
        }
    }
    let w: Vec<&str> = value.split_whitespace().collect();
    if !w.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for g in w.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let hard = parse_memory(g[1]).filter(|&v| v >= 0);
        let soft = parse_memory(g[2]).filter(|&v| v >= 0);
        let secs = g[3].parse::<i64>().ok().filter(|&v| v >= 0);
        let (Some(h), Some(s), Some(t)) = (hard, soft, secs) else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.".into(),
            );
        };
        limits[class] = [h as u64, s as u64, t as u64];
    }
    Ok(CLASSES
        .iter()
        .zip(limits)
        .map(|(c, [h, s, t])| format!("{c} {h} {s} {t}"))
        .collect::<Vec<_>>()
        .join(" "))
}

fn validate(p: &Param, value: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "argument couldn't be parsed into {why} - '{value}'"
        ))
    };
    match p.kind {
        Kind::Int { min, max } => match value.parse::<i64>() {
            Ok(v) if v >= min && v <= max => Ok(v.to_string()),
            Ok(_) => Err(format!(
                "argument must be between {min} and {max} inclusive"
            )),
            Err(_) => bad("an integer"),
        },
        Kind::Memory { min, max } => match parse_memory(value) {
            Some(v) if v >= min && v <= max => Ok(v.to_string()),
            Some(_) => Err(format!(
                "argument must be between {min} and {max} inclusive"
            )),
            None => bad("an integer"),
        },
        Kind::Str => Ok(value.to_string()),
        Kind::Enum(words) => {
            let v = value.to_ascii_lowercase();
            if words.contains(&v.as_str()) {
                Ok(v)
            } else if words == [""] || words == ["no"] {
                Err(format!(
                    "'{value}' is not supported: Tessera has no persistence yet"
                ))
            } else {
                Err(format!(
                    "argument(s) must be one of the following: {}",
                    words.join(", ")
                ))
            }
        }
    }
}

/// The effective configuration: every parameter's current value as text,
/// plus typed accessors for what the server reads often.
#[derive(Clone, Debug)]
pub struct Config {
    values: Vec<String>,
    /// The config file given at startup, if any.
    pub config_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            values: PARAMS.iter().map(|p| p.default.to_string()).collect(),
            config_file: None,
        }
    }
}

impl Config {
    fn index(name: &str) -> Option<usize> {
        PARAMS
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        Self::index(name).map(|i| self.values[i].as_str())
    }

    /// A numeric parameter (defaults may carry memory units: "512mb").
    fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(parse_memory).unwrap_or(0)
    }

    /// Sets a parameter at startup (file or command line).
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), String> {
        let Some(p) = param(name) else {
            return Err(format!("unknown option '{name}'"));
        };
        let i = Self::index(p.name).unwrap_or(0);
        let v = if p.name == "client-output-buffer-limit" {
            merge_output_limits(&self.values[i], value)
        } else {
            validate(p, value)
        }
        .map_err(|e| format!("option '{}': {e}", p.name))?;
        self.values[i] = v;
        Ok(())
    }

    /// CONFIG SET of one parameter; errors in Redis's words.
    pub fn set_runtime(&mut self, name: &str, value: &str) -> Result<(), String> {
        let Some(p) = param(name) else {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        if !p.mutable {
            return Err(format!("ERR CONFIG SET failed (possibly related to argument '{}') - can't set immutable config", p.name));
        }
        let i = Self::index(p.name).unwrap_or(0);
        let v = if p.name == "client-output-buffer-limit" {
            merge_output_limits(&self.values[i], value)
        } else {
            validate(p, value)
        }
        .map_err(|e| {
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {e}",
                p.name
            )
        })?;
        self.values[i] = v;
        Ok(())
    }

    /// CONFIG GET: (name, value) pairs of parameters matching the glob.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        PARAMS
            .iter()
            .zip(&self.values)
            .filter(|(p, _)| tessera_shard::glob::glob_match(pattern, p.name.as_bytes(), true))
            .map(|(p, v)| (p.name, v.clone()))
            .collect()
    }

    pub fn port(&self) -> u16 {
        self.int("port") as u16
    }
    pub fn bind(&self) -> Vec<String> {
        self.get("bind")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
    pub fn databases(&self) -> usize {
        self.int("databases") as usize
    }
    pub fn maxclients(&self) -> usize {
        self.int("maxclients") as usize
    }
    pub fn requirepass(&self) -> Option<String> {
        self.get("requirepass")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
    pub fn loglevel(&self) -> &str {
        self.get("loglevel").unwrap_or("notice")
    }
    pub fn logfile(&self) -> &str {
        self.get("logfile").unwrap_or("")
    }
    pub fn proto_max_bulk_len(&self) -> usize {
        self.int("proto-max-bulk-len") as usize
    }
    pub fn query_buffer_limit(&self) -> usize {
        self.int("client-query-buffer-limit") as usize
    }
    /// The hard output-buffer limit of normal clients (0: none).
    pub fn output_hard_limit(&self) -> usize {
        let v = self.get("client-output-buffer-limit").unwrap_or("");
        let w: Vec<&str> = v.split_whitespace().collect();
        w.chunks(4)
            .find(|c| c.len() == 4 && c[0] == "normal")
            .and_then(|c| parse_memory(c[1]))
            .unwrap_or(0) as usize
    }
    /// The `normal` class's soft limit and its seconds (0: none).
    pub fn output_soft_limit(&self) -> (usize, u64) {
        let v = self.get("client-output-buffer-limit").unwrap_or("");
        let w: Vec<&str> = v.split_whitespace().collect();
        w.chunks(4)
            .find(|c| c.len() == 4 && c[0] == "normal")
            .and_then(|c| Some((parse_memory(c[2])? as usize, c[3].parse::<u64>().ok()?)))
            .unwrap_or((0, 0))
    }
    /// One class's output limits (hard, soft, soft seconds; 0: none).
    pub fn output_limits_of(&self, class: &str) -> (usize, usize, u64) {
        let v = self.get("client-output-buffer-limit").unwrap_or("");
        let w: Vec<&str> = v.split_whitespace().collect();
        w.chunks(4)
            .find(|c| c.len() == 4 && c[0] == class)
            .and_then(|c| {
                Some((
                    parse_memory(c[1])? as usize,
                    parse_memory(c[2])? as usize,
                    c[3].parse::<u64>().ok()?,
                ))
            })
            .unwrap_or((0, 0, 0))
    }
    pub fn timeout_secs(&self) -> u64 {
        self.int("timeout") as u64
    }
    pub fn tcp_backlog(&self) -> i32 {
        self.int("tcp-backlog").clamp(0, i32::MAX as i64) as i32
    }
    pub fn hz(&self) -> u32 {
        self.int("hz") as u32
    }
    pub fn active_expire_effort(&self) -> u32 {
        self.int("active-expire-effort") as u32
    }
    pub fn shards(&self) -> usize {
        self.int("shards") as usize
    }

    /// The shard-side copy of the settings handlers need.
    pub fn shard_config(&self) -> tessera_shard::command::ShardConfig {
        tessera_shard::command::ShardConfig {
            databases: self.databases(),
            proto_max_bulk_len: self.proto_max_bulk_len(),
            active_expire_effort: self.active_expire_effort(),
            hz: self.hz(),
            list_max_listpack_size: self.int("list-max-listpack-size"),
            hash_max_listpack_entries: self.int("hash-max-listpack-entries") as usize,
            hash_max_listpack_value: self.int("hash-max-listpack-value") as usize,
            zset_max_listpack_entries: self.int("zset-max-listpack-entries") as usize,
            zset_max_listpack_value: self.int("zset-max-listpack-value") as usize,
            set_max_intset_entries: self.int("set-max-intset-entries") as usize,
        }
    }
}

/// Splits a redis.conf line into arguments (quotes as sdssplitargs does).
fn split_config_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut cur = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(ch) = chars.next() {
                if ch == '\\' && c == '"' {
                    match chars.next() {
                        Some('n') => cur.push('\n'),
                        Some('t') => cur.push('\t'),
                        Some(o) => cur.push(o),
                        None => break,
                    }
                } else if ch == c {
                    closed = true;
                    break;
                } else {
                    cur.push(ch);
                }
            }
            if !closed {
                return Err("Unbalanced quotes in configuration line".into());
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                cur.push(ch);
                chars.next();
            }
        }
        out.push(cur);
    }
    Ok(out)
}

/// Parses redis-server-style arguments: `[configfile] [--name value...]...`.
/// Returns the config and the arguments that are not parameters (planner
/// flags and the like, handled by clap).
pub fn from_args(args: &[String]) -> Result<(Config, Vec<String>), String> {
    let mut cfg = Config::default();
    let mut rest = Vec::new();
    let mut i = 0;
    if let Some(first) = args.first() {
        if !first.starts_with("--") && !first.starts_with('-') {
            let text = std::fs::read_to_string(first)
                .map_err(|e| format!("can't open config file '{first}': {e}"))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let parts = split_config_line(line)
                    .map_err(|e| format!("config file '{first}' line {}: {e}", n + 1))?;
                let Some((name, vals)) = parts.split_first() else {
                    continue;
                };
                if param(name).is_none() {
                    return Err(format!(
                        "config file '{first}' line {}: unknown option '{name}'",
                        n + 1
                    ));
                }
                cfg.set_startup(name, &vals.join(" "))
                    .map_err(|e| format!("config file '{first}' line {}: {e}", n + 1))?;
            }
            cfg.config_file = Some(first.clone());
            i = 1;
        }
    }
    while i < args.len() {
        let a = &args[i];
        let name = a.strip_prefix("--").unwrap_or("");
        if !name.is_empty() && param(name).is_some() {
            // Like redis-server: the value is every argument up to the next `--`.
            let mut vals = Vec::new();
            i += 1;
            while i < args.len() && !args[i].starts_with("--") {
                vals.push(args[i].clone());
                i += 1;
            }
            if vals.is_empty() && param(name).is_some_and(|p| p.kind != Kind::Str) {
                return Err(format!("option '--{name}' needs a value"));
            }
            cfg.set_startup(name, &vals.join(" "))?;
        } else {
            rest.push(a.clone());
            i += 1;
        }
    }
    Ok((cfg, rest))
}

/// The parameters, for --help.
pub fn help_text() -> String {
    let mut s = String::new();
    for p in PARAMS {
        let _ = writeln!(
            s,
            "  --{:<28} {} (default: '{}')",
            p.name, p.help, p.default
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let (c, rest) = from_args(&args(&[
            "--port",
            "6380",
            "--bind",
            "0.0.0.0",
            "::1",
            "--print-plan",
        ]))
        .unwrap();
        assert_eq!(c.port(), 6380);
        assert_eq!(c.bind(), vec!["0.0.0.0", "::1"]);
        assert_eq!(c.databases(), 16);
        assert_eq!(c.proto_max_bulk_len(), 512 * 1024 * 1024);
        assert_eq!(c.query_buffer_limit(), 1024 * 1024 * 1024);
        assert_eq!(rest, vec!["--print-plan"]);
    }

    #[test]
    fn bad_values_are_named() {
        let e = from_args(&args(&["--port", "notanumber"])).unwrap_err();
        assert!(e.contains("port"), "{e}");
        let e = from_args(&args(&["--databases", "0"])).unwrap_err();
        assert!(e.contains("databases"), "{e}");
    }

    #[test]
    fn config_file_then_command_line() {
        let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# comment\nport 7000\nrequirepass \"s3 cret\"\nmaxclients 5\n",
        )
        .unwrap();
        let (c, _) = from_args(&args(&[dir.to_str().unwrap(), "--port", "7001"])).unwrap();
        assert_eq!(c.port(), 7001);
        assert_eq!(c.requirepass().as_deref(), Some("s3 cret"));
        assert_eq!(c.maxclients(), 5);
        std::fs::write(&dir, "nosuchoption 1\n").unwrap();
        let e = from_args(&args(&[dir.to_str().unwrap()])).unwrap_err();
        assert!(e.contains("nosuchoption") && e.contains("line 1"), "{e}");
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn output_limits_merge_per_class_as_redis() {
        let mut c = Config::default();
        c.set_runtime("client-output-buffer-limit", "pubsub 1mb 256kb 60")
            .unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 262144 60")
        );
        assert_eq!(c.output_limits_of("pubsub"), (1048576, 262144, 60));
        c.set_runtime("client-output-buffer-limit", "replica 1k 2k 3 normal 1 2 3")
            .unwrap();
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 1 2 3 slave 1000 2000 3 pubsub 1048576 262144 60")
        );
        assert_eq!(c.output_hard_limit(), 1);
        for (bad, why) in [
            ("pubsub 1mb", "Wrong number"),
            ("master 1 2 3", "Invalid client class"),
            ("pubsub x 1 1", "Error in hard"),
            ("pubsub 1 1 -1", "Error in hard"),
        ] {
            let e = c
                .set_runtime("client-output-buffer-limit", bad)
                .unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(c.output_limits_of("pubsub"), (1048576, 262144, 60));
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1kb"), Some(1024));
        assert_eq!(parse_memory("512MB"), Some(512 * 1024 * 1024));
        assert_eq!(parse_memory("x"), None);
    }

    #[test]
    fn runtime_set_rules() {
        let mut c = Config::default();
        assert!(c.set_runtime("maxclients", "100").is_ok());
        assert!(c
            .set_runtime("port", "1")
            .unwrap_err()
            .contains("immutable"));
        assert!(c
            .set_runtime("nope", "1")
            .unwrap_err()
            .starts_with("ERR Unknown option"));
        assert_eq!(c.matching(b"max*"), vec![("maxclients", "100".to_string())]);
        assert_eq!(c.output_hard_limit(), 0);
    }
}
