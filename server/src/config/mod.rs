//! Server configuration: one table of parameters (every one of Redis 7.0,
//! aliases included, plus Tessera's own) drives the command line
//! (`--port 6380`), the redis.conf-syntax file, CONFIG GET, CONFIG SET and
//! CONFIG REWRITE.
//!
//! As in redis-server, the config file comes first (first argument, if it
//! does not start with `-`), then command-line options, read as more
//! lines of the file. A bad line stops startup with one line naming it.

mod rewrite;
pub mod table;
mod value;

use std::fmt::Write as _;

use table::{Effect, Kind, Param, HIDDEN, PARAMS, PROTECTED};
pub use value::memtoull;

/// A parameter by name or alias (any case): its index, and the name it
/// was found under (the alias when it was the alias).
fn lookup(name: &str) -> Option<(usize, &'static str)> {
    PARAMS.iter().enumerate().find_map(|(i, p)| {
        if p.name.eq_ignore_ascii_case(name) {
            Some((i, p.name))
        } else {
            p.alias
                .filter(|a| a.eq_ignore_ascii_case(name))
                .map(|a| (i, a))
        }
    })
}

/// Redis's config directives of the file that are not parameters, taken
/// without effect: retired names.
const DEPRECATED: &[&str] = &[
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
];

/// The effective configuration: every parameter's current value as the
/// text CONFIG GET shows, plus typed accessors for what the server reads.
#[derive(Clone, Debug)]
pub struct Config {
    values: Vec<String>,
    /// The config file given at startup, if any (absolute path).
    pub config_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let cwd = std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        Config {
            values: PARAMS
                .iter()
                .map(|p| {
                    if p.name == "dir" {
                        cwd.clone()
                    } else {
                        p.default.to_string()
                    }
                })
                .collect(),
            config_file: None,
        }
    }
}

/// Splits a CONFIG SET value of a multi-argument parameter as Redis does
/// (on every single space; nothing at all for an empty value).
fn split_spaces(v: &str) -> Vec<String> {
    if v.is_empty() {
        Vec::new()
    } else {
        v.split(' ').map(str::to_string).collect()
    }
}

impl Config {
    fn index(name: &str) -> Option<usize> {
        lookup(name).map(|(i, _)| i)
    }

    /// A parameter's current value, by name or alias.
    pub fn get(&self, name: &str) -> Option<&str> {
        Self::index(name).map(|i| self.values[i].as_str())
    }

    /// A numeric parameter's value.
    fn int(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    }

    /// Sets a parameter from a config line's arguments at startup.
    fn set_args(
        &mut self,
        name: &str,
        args: &[String],
        load: &mut value::Loading,
    ) -> Result<(), String> {
        let Some((i, _)) = lookup(name) else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        let p = &PARAMS[i];
        if !p.multi_arg() && args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        self.values[i] = value::set(p, args, &self.values[i], load)?;
        Ok(())
    }

    /// Sets one parameter at startup (for the server's own adjustments).
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.set_args(name, &[value.to_string()], &mut value::Loading::default())
    }

    /// CONFIG SET of one or more pairs, all or nothing, with Redis 7.0's
    /// checks in its order and its error texts. `protected_ok`: whether
    /// this client may set protected parameters (enable-protected-configs).
    pub fn set_runtime(
        &mut self,
        pairs: &[(String, String)],
        protected_ok: bool,
    ) -> Result<(), String> {
        let mut unknown: Option<&str> = None;
        let mut failed: Option<(String, &str)> = None;
        let mut found: Vec<(usize, &'static str)> = Vec::new();
        let mut invalid = false;
        for (name, _) in pairs {
            let Some(hit) = lookup(name) else {
                if !invalid {
                    unknown = Some(name);
                    invalid = true;
                }
                continue;
            };
            if invalid {
                continue;
            }
            let p = &PARAMS[hit.0];
            if p.immutable() || (p.flags & PROTECTED != 0 && !protected_ok) {
                let why = if p.immutable() {
                    "can't set immutable config"
                } else {
                    "can't set protected config"
                };
                failed = Some((name.clone(), why));
                invalid = true;
                continue;
            }
            if found.contains(&hit) {
                failed = Some((name.clone(), "duplicate parameter"));
                invalid = true;
            }
            found.push(hit);
        }
        if let Some(name) = unknown {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
        if let Some((name, why)) = failed {
            return Err(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ));
        }
        let mut next = self.clone();
        for ((i, shown), (_, v)) in found.iter().zip(pairs) {
            let p = &PARAMS[*i];
            let args = if p.multi_arg() {
                split_spaces(v)
            } else {
                vec![v.clone()]
            };
            match value::set(p, &args, &next.values[*i], &mut value::Loading::default()) {
                Ok(v) => next.values[*i] = v,
                Err(e) => {
                    return Err(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{shown}') - {e}"
                    ))
                }
            }
        }
        // What takes effect outside the table.
        let dir = next.get("dir").unwrap_or("").to_string();
        if dir != self.get("dir").unwrap_or("") {
            if let Err(e) = std::env::set_current_dir(&dir) {
                return Err(format!(
                    "ERR CONFIG SET failed (possibly related to argument 'dir') - {}",
                    value::strerror(&e)
                ));
            }
        }
        *self = next;
        Ok(())
    }

    /// CONFIG GET: (name, value) pairs for the patterns, as Redis 7.0
    /// answers: a name without glob characters is looked up as given
    /// (hidden parameters too) and answered under the spelling asked; a
    /// pattern matches names and aliases, hidden ones excepted; a name is
    /// answered once.
    pub fn matching(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        let seen = |out: &Vec<(String, usize)>, n: &str| {
            out.iter().any(|(o, _)| o.eq_ignore_ascii_case(n))
        };
        for pat in patterns {
            if !pat.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
                let name = String::from_utf8_lossy(pat).into_owned();
                if seen(&out, &name) {
                    continue;
                }
                if let Some((i, _)) = lookup(&name) {
                    out.push((name, i));
                }
                continue;
            }
            for (i, p) in PARAMS.iter().enumerate() {
                if p.flags & HIDDEN != 0 {
                    continue;
                }
                for n in std::iter::once(p.name).chain(p.alias) {
                    if !seen(&out, n) && tessera_shard::glob::glob_match(pat, n.as_bytes(), true) {
                        out.push((n.to_string(), i));
                    }
                }
            }
        }
        out.into_iter()
            .map(|(n, i)| (n, self.values[i].clone()))
            .collect()
    }

    /// CONFIG REWRITE of the file the server was started with.
    pub fn rewrite(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Err("ERR The server is running without a config file".into());
        };
        rewrite::rewrite(self, path).map_err(|e| format!("ERR Rewriting config file: {e}"))
    }

    /// The current value of the parameter at `i` in the table.
    fn value_at(&self, i: usize) -> &str {
        &self.values[i]
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
        let v = self.get("client-output-buffer-limit").unwrap_or_default();
        let w: Vec<&str> = v.split_whitespace().collect();
        w.chunks(4)
            .find(|c| c.len() == 4 && c[0] == "normal")
            .and_then(|c| memtoull(c[1]).map(|v| v as i64))
            .unwrap_or(0) as usize
    }
    /// The `normal` class's soft limit and its seconds (0: none).
    pub fn output_soft_limit(&self) -> (usize, u64) {
        let v = self.get("client-output-buffer-limit").unwrap_or_default();
        let w: Vec<&str> = v.split_whitespace().collect();
        w.chunks(4)
            .find(|c| c.len() == 4 && c[0] == "normal")
            .and_then(|c| Some((memtoull(c[2])? as usize, c[3].parse::<u64>().ok()?)))
            .unwrap_or((0, 0))
    }
    /// One class's output limits (hard, soft, soft seconds; 0: none).
    pub fn output_limits_of(&self, class: &str) -> (usize, usize, u64) {
        let v = self.get("client-output-buffer-limit").unwrap_or_default();
        let w: Vec<&str> = v.split_whitespace().collect();
        w.chunks(4)
            .find(|c| c.len() == 4 && c[0] == class)
            .and_then(|c| {
                Some((
                    memtoull(c[1])? as usize,
                    memtoull(c[2])? as usize,
                    c[3].parse::<u64>().ok()?,
                ))
            })
            .unwrap_or((0, 0, 0))
    }
    /// `maxmemory` in bytes (0: no limit).
    pub fn maxmemory(&self) -> u64 {
        self.get("maxmemory").and_then(memtoull).unwrap_or(0)
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
            notify_keyspace_events: value::notify_keyspace_flags(
                self.get("notify-keyspace-events").unwrap_or(""),
            ),
            rdb_compression: self.get("rdbcompression") != Some("no"),
            tracking_table_max_keys: self.int("tracking-table-max-keys") as usize,
            cluster_enabled: self.get("cluster-enabled") == Some("yes"),
            slowlog_log_slower_than: self.int("slowlog-log-slower-than"),
            slowlog_max_len: self.int("slowlog-max-len").max(0) as usize,
            latency_monitor_threshold: self.int("latency-monitor-threshold").max(0) as u64,
            latency_tracking: self.get("latency-tracking") != Some("no"),
            maxmemory: self.maxmemory(),
            maxmemory_policy: tessera_shard::evict::Policy::parse(
                self.get("maxmemory-policy").unwrap_or("noeviction"),
            ),
            maxmemory_samples: self.int("maxmemory-samples").max(1) as usize,
            maxmemory_eviction_tenacity: self.int("maxmemory-eviction-tenacity").clamp(0, 100)
                as u32,
            lfu: tessera_shard::evict::lfu::LfuParams {
                log_factor: self.int("lfu-log-factor").clamp(0, u32::MAX as i64) as u32,
                decay_time: self.int("lfu-decay-time").clamp(0, u32::MAX as i64) as u32,
            },
            stream_node_max_bytes: self.int("stream-node-max-bytes") as usize,
            stream_node_max_entries: self.int("stream-node-max-entries") as usize,
        }
    }

    pub fn daemonize(&self) -> bool {
        self.get("daemonize") == Some("yes")
    }
    /// The pid file to write: as set, or Redis's default when daemonized.
    pub fn pidfile(&self) -> Option<String> {
        match self.get("pidfile").unwrap_or("") {
            "" if self.daemonize() => Some("/var/run/redis.pid".into()),
            "" => None,
            p => Some(p.to_string()),
        }
    }
    pub fn supervised(&self) -> &str {
        self.get("supervised").unwrap_or("no")
    }
    pub fn dir(&self) -> &str {
        self.get("dir").unwrap_or("")
    }
    /// Whether a client (local: on a loopback address) may CONFIG SET the
    /// protected parameters.
    pub fn protected_allowed(&self, local: bool) -> bool {
        match self.get("enable-protected-configs").unwrap_or("no") {
            "yes" => true,
            "local" => local,
            _ => false,
        }
    }
}

/// Splits a redis.conf line into arguments as Redis's sdssplitargs does:
/// `"..."` with `\n \r \t \b \a \\ \" \xHH`, `'...'` with `\'`; a closing
/// quote must be followed by a space or the end. None: unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<String>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let mut cur: Vec<u8> = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'\\'
                    && i + 3 < b.len()
                    && b[i + 1] == b'x'
                    && b[i + 2].is_ascii_hexdigit()
                    && b[i + 3].is_ascii_hexdigit()
                {
                    let h = u8::from_str_radix(&line[i + 2..i + 4], 16).unwrap_or(0);
                    cur.push(h);
                    i += 4;
                    continue;
                } else if b[i] == b'\\' && i + 1 < b.len() {
                    cur.push(match b[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                    i += 2;
                    continue;
                } else if b[i] == b'"' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(b[i]);
                i += 1;
            } else if insq {
                if i >= b.len() {
                    return None;
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                } else if b[i] == b'\'' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(b[i]);
                i += 1;
            } else {
                if i >= b.len() || b[i].is_ascii_whitespace() {
                    break;
                }
                match b[i] {
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        out.push(String::from_utf8_lossy(&cur).into_owned());
    }
}

/// One directive to apply: its arguments and where it came from (for the
/// error line).
struct Directive {
    args: Vec<String>,
    origin: String,
}

/// Reads a config file (and its includes, in place) into directives.
fn read_file(path: &str, out: &mut Vec<Directive>, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("Fatal error, too many nested includes at '{path}'"));
    }
    let paths: Vec<String> = if path.contains(['*', '?', '[']) {
        // A pattern that matches nothing includes nothing, as in Redis.
        glob_paths(path)
    } else {
        vec![path.to_string()]
    };
    for p in paths {
        let text = std::fs::read(&p).map_err(|e| {
            format!(
                "Fatal error, can't open config file '{p}': {}",
                value::strerror(&e)
            )
        })?;
        let text = String::from_utf8_lossy(&text);
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches([' ', '\t', '\r', '\n']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = format!(
                "Reading the configuration file '{p}', at line {}: >>> '{line}'",
                n + 1
            );
            let Some(mut args) = split_args(line) else {
                return Err(format!("{origin}: Unbalanced quotes in configuration line"));
            };
            if args.is_empty() {
                continue;
            }
            args[0] = args[0].to_ascii_lowercase();
            if args[0] == "include" && args.len() == 2 {
                read_file(&args[1], out, depth + 1).map_err(|e| format!("{origin}: {e}"))?;
                continue;
            }
            out.push(Directive { args, origin });
        }
    }
    Ok(())
}

/// The files matching a glob pattern (`*`, `?`, `[...]` in the last
/// component, as config includes use), sorted.
fn glob_paths(pattern: &str) -> Vec<String> {
    let path = std::path::Path::new(pattern);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let f = e.file_name();
                    let f = f.to_string_lossy();
                    !f.starts_with('.')
                        && tessera_shard::glob::glob_match(name.as_bytes(), f.as_bytes(), false)
                })
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Applies one directive at startup.
fn apply(cfg: &mut Config, d: &Directive, load: &mut value::Loading) -> Result<(), String> {
    let name = d.args[0].as_str();
    let rest = &d.args[1..];
    if lookup(name).is_some() {
        return cfg.set_args(name, rest, load);
    }
    if DEPRECATED.contains(&name) && d.args.len() == 2 {
        return Ok(());
    }
    match name {
        "rename-command" if d.args.len() == 3 => {
            if tessera_shard::command::lookup(rest[0].as_bytes()).is_none() {
                Err("No such command in rename-command".into())
            } else {
                Err("rename-command is not supported by Tessera yet: commands can't be renamed or disabled".into())
            }
        }
        "user" if d.args.len() >= 2 => {
            Err("ACL users are not supported by Tessera yet (use requirepass)".into())
        }
        "loadmodule" if d.args.len() >= 2 => Err("modules are not supported by Tessera".into()),
        "sentinel" => Err("sentinel directive while not in sentinel mode".into()),
        _ => Err("Bad directive or wrong number of arguments".into()),
    }
}

/// Parses redis-server-style arguments: `[configfile] [--name value...]...`.
/// Returns the config and the arguments that are not parameters (planner
/// flags and the like, handled by clap).
pub fn from_args(args: &[String]) -> Result<(Config, Vec<String>), String> {
    let mut cfg = Config::default();
    let mut rest = Vec::new();
    let mut directives = Vec::new();
    let mut i = 0;
    if let Some(first) = args.first() {
        if !first.starts_with('-') {
            read_file(first, &mut directives, 0)?;
            let abs = std::path::Path::new(first);
            let abs = if abs.is_absolute() {
                abs.to_path_buf()
            } else {
                std::env::current_dir().unwrap_or_default().join(abs)
            };
            cfg.config_file = Some(abs.to_string_lossy().into_owned());
            i = 1;
        }
    }
    while i < args.len() {
        let a = &args[i];
        let name = a.strip_prefix("--").unwrap_or("");
        if !name.is_empty() && lookup(name).is_some() {
            // Like redis-server: the values are the arguments up to the next `--`.
            let mut d = vec![name.to_ascii_lowercase()];
            i += 1;
            while i < args.len() && !args[i].starts_with("--") {
                d.push(args[i].clone());
                i += 1;
            }
            let shown: Vec<String> = d.iter().map(|a| format!("{a:?}")).collect();
            directives.push(Directive {
                origin: format!(
                    "Reading the command line, option '--{name}': >>> '{}'",
                    shown.join(" ")
                ),
                args: d,
            });
        } else {
            rest.push(a.clone());
            i += 1;
        }
    }
    let mut load = value::Loading {
        active: true,
        save_seen: false,
    };
    for d in &directives {
        apply(&mut cfg, d, &mut load).map_err(|e| format!("{}: {e}", d.origin))?;
    }
    Ok((cfg, rest))
}

/// The parameters, for --help: those Tessera acts on first, then the
/// names it accepts without effect yet.
pub fn help_text() -> String {
    let mut s = String::new();
    for p in PARAMS.iter().filter(|p| p.effect != Effect::None) {
        let _ = writeln!(
            s,
            "  --{:<28} {} (default: '{}')",
            p.name,
            table::help(p),
            if p.name == "dir" { "." } else { p.default }
        );
    }
    let _ = writeln!(
        s,
        "\n  Accepted, no effect yet (every other Redis 7.0 parameter):\n{}",
        no_effect_list()
    );
    s
}

/// The names (with aliases) Tessera accepts without effect yet, in
/// alphabetical order, one paragraph (the README holds the same list).
pub fn no_effect_list() -> String {
    let mut names: Vec<String> = PARAMS
        .iter()
        .filter(|p| p.effect == Effect::None && p.flags & HIDDEN == 0)
        .map(|p| match p.alias {
            Some(a) => format!("`{}` (`{a}`)", p.name),
            None => format!("`{}`", p.name),
        })
        .collect();
    names.sort();
    let mut out = String::new();
    let mut line = String::new();
    for n in names {
        if !line.is_empty() && line.len() + n.len() + 2 > 76 {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&n);
        line.push(',');
    }
    line.pop();
    out.push_str(&line);
    out
}

/// Whether a value is the kind's default, comparing as Redis does.
fn is_default(p: &Param, v: &str) -> bool {
    match p.kind {
        Kind::Num { .. } => value::num_raw(p.kind, v) == value::num_raw(p.kind, p.default),
        _ => v == p.default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn set1(c: &mut Config, n: &str, v: &str) -> Result<(), String> {
        c.set_runtime(&[(n.to_string(), v.to_string())], false)
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
        assert!(
            e.contains("'--port'") && e.contains("couldn't be parsed into an integer"),
            "{e}"
        );
        let e = from_args(&args(&["--databases", "0"])).unwrap_err();
        assert!(
            e.contains("databases") && e.contains("between 1 and 2147483647"),
            "{e}"
        );
        let e = from_args(&args(&["--requirepass"])).unwrap_err();
        assert!(e.contains("wrong number of arguments"), "{e}");
    }

    #[test]
    fn config_file_then_command_line() {
        let base = std::env::temp_dir().join(format!("tessera-cfg-{}", std::process::id()));
        let inc = base.with_extension("inc");
        let file = base.with_extension("conf");
        std::fs::write(&inc, "maxclients 5\n").unwrap();
        std::fs::write(
            &file,
            format!(
                "# comment\n  \nport 7000\nrequirepass \"s3 cret\"\ninclude {}\nsave 900 1\nsave 300 10\nSLAVE-READ-ONLY no\nhash-max-ziplist-entries 100\nlist-max-ziplist-entries 5\nclient-output-buffer-limit replica 1mb 2mb 3\nnotify-keyspace-events \"\"\n",
                inc.display()
            ),
        )
        .unwrap();
        let (c, _) = from_args(&args(&[file.to_str().unwrap(), "--port", "7001"])).unwrap();
        assert_eq!(c.port(), 7001);
        assert_eq!(c.requirepass().as_deref(), Some("s3 cret"));
        assert_eq!(c.maxclients(), 5);
        assert_eq!(c.get("save"), Some("900 1 300 10"));
        assert_eq!(c.get("replica-read-only"), Some("no"));
        assert_eq!(c.get("hash-max-listpack-entries"), Some("100"));
        assert_eq!(
            c.get("client-output-buffer-limit"),
            Some("normal 0 0 0 slave 1048576 2097152 3 pubsub 33554432 8388608 60")
        );
        assert!(c.config_file.as_deref().unwrap().starts_with('/'));
        for (text, want) in [
            (
                "nosuchoption 1\n",
                "Bad directive or wrong number of arguments",
            ),
            ("port 1 2\n", "wrong number of arguments"),
            ("port \"1\n", "Unbalanced quotes"),
            (
                "rename-command NOSUCH x\n",
                "No such command in rename-command",
            ),
            ("maxmemory 1.5gb\n", "argument must be a memory value"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = from_args(&args(&[file.to_str().unwrap()])).unwrap_err();
            assert!(e.contains(want) && e.contains("line 1"), "{text}: {e}");
        }
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(&inc);
    }

    #[test]
    fn runtime_set_rules() {
        let mut c = Config::default();
        assert!(set1(&mut c, "maxclients", "100").is_ok());
        assert_eq!(
            set1(&mut c, "PORT", "1").unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'PORT') - can't set immutable config"
        );
        assert_eq!(
            set1(&mut c, "dir", "/").unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"
        );
        assert_eq!(
            set1(&mut c, "nope", "1").unwrap_err(),
            "ERR Unknown option or number of arguments for CONFIG SET - 'nope'"
        );
        assert_eq!(
            set1(&mut c, "MAXMEMORY", "x").unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        );
        assert_eq!(
            set1(&mut c, "lua-time-limit", "x").unwrap_err(),
            "ERR CONFIG SET failed (possibly related to argument 'lua-time-limit') - argument couldn't be parsed into an integer"
        );
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        // All or nothing.
        let e = c
            .set_runtime(&pairs(&[("timeout", "5"), ("maxclients", "0")]), false)
            .unwrap_err();
        assert!(
            e.contains("'maxclients') - argument must be between 1 and 4294967295 inclusive"),
            "{e}"
        );
        assert_eq!(c.get("timeout"), Some("0"));
        let e = c
            .set_runtime(&pairs(&[("timeout", "5"), ("TIMEOUT", "6")]), false)
            .unwrap_err();
        assert!(e.ends_with("'TIMEOUT') - duplicate parameter"), "{e}");
        c.set_runtime(
            &pairs(&[
                ("hz", "0"),
                ("maxmemory", "1gb"),
                ("maxmemory-clients", "5%"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(c.hz(), 1);
        assert_eq!(c.get("maxmemory"), Some("1073741824"));
        assert_eq!(c.get("maxmemory-clients"), Some("5%"));
        set1(&mut c, "oom-score-adj", "relative").unwrap();
        assert_eq!(c.get("oom-score-adj"), Some("yes"));
        assert_eq!(c.output_hard_limit(), 0);
        set1(&mut c, "client-output-buffer-limit", "normal 1mb 512kb 10").unwrap();
        assert_eq!(c.output_hard_limit(), 1 << 20);
        assert_eq!(c.output_soft_limit(), (512 << 10, 10));
        assert_eq!(c.output_limits_of("pubsub"), (32 << 20, 8 << 20, 60));
        set1(&mut c, "client-output-buffer-limit", "pubsub 1mb 256kb 5").unwrap();
        assert_eq!(c.output_limits_of("pubsub"), (1 << 20, 256 << 10, 5));
        assert_eq!(c.output_hard_limit(), 1 << 20);
    }

    #[test]
    fn config_get_as_redis() {
        let c = Config::default();
        let names = |pats: &[&[u8]]| -> Vec<String> {
            c.matching(pats).into_iter().map(|(n, _)| n).collect()
        };
        assert_eq!(names(&[b"MAXCLIENTS", b"maxclients"]), vec!["MAXCLIENTS"]);
        assert_eq!(
            names(&[b"*ziplist*"]),
            vec![
                "list-max-ziplist-size",
                "hash-max-ziplist-entries",
                "zset-max-ziplist-entries",
                "hash-max-ziplist-value",
                "zset-max-ziplist-value"
            ]
        );
        // Hidden parameters answer only to their exact name.
        assert_eq!(names(&[b"key-load*"]), Vec::<String>::new());
        assert_eq!(names(&[b"key-load-delay"]), vec!["key-load-delay"]);
        let all = c.matching(&[b"*"]);
        let redis_names = PARAMS
            .iter()
            .filter(|p| p.flags & HIDDEN == 0 && p.effect != Effect::Tessera);
        let count: usize = redis_names.map(|p| 1 + p.alias.is_some() as usize).sum();
        assert_eq!(
            count, 192,
            "the names redis-server 7.0.15 lists for CONFIG GET *"
        );
        assert_eq!(all.len(), count + 1);
    }

    /// The README lists exactly the parameters accepted without effect.
    #[test]
    fn readme_lists_the_no_effect_parameters() {
        let readme = include_str!("../../../README.md");
        let start = "<!-- no-effect-start (generated: config::no_effect_list) -->\n";
        let end = "\n<!-- no-effect-end -->";
        let a = readme.find(start).expect("README marker") + start.len();
        let b = readme[a..].find(end).expect("README end marker") + a;
        assert_eq!(&readme[a..b], no_effect_list(), "update the README list");
    }
}
