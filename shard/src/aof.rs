//! The append-only file's shard side: what a write command is logged as
//! (Redis's rewrites of commands whose effect depends on the time, the
//! random generator or a blocking wait), and the shard's buffer of
//! records not yet handed to the server's AOF writer.
//!
//! A record is the command as Redis 7.0 propagates it: EXPIRE and friends
//! become PEXPIREAT with an absolute time (or DEL when that time has
//! passed), SET EX/PX/EXAT and SETEX/PSETEX become SET ... PXAT, GETEX
//! becomes PEXPIREAT/PERSIST, GETDEL becomes DEL, INCRBYFLOAT and
//! HINCRBYFLOAT become SET ... KEEPTTL / HSET of the result, SPOP becomes
//! SREM of what it popped, blocking pops become their non-blocking forms
//! on the key that served them, [B]LMPOP/[B]ZMPOP become LPOP/RPOP/
//! ZPOPMIN/ZPOPMAX with a count, and RESTORE with a relative TTL gets
//! ABSTTL. Replaying the records in order gives the same dataset at any
//! later time.

use tessera_protocol::Args;

use crate::util::{eq_ic, parse_i64_strict};

/// Records in RESP (multi-bulk), with the database they start and end in:
/// SELECTs are written between records only where the database changes,
/// and whoever concatenates logs writes one before a log whose first
/// database differs from where the previous one ended.
#[derive(Default, Debug)]
pub struct Log {
    pub bytes: Vec<u8>,
    pub first_db: usize,
    pub last_db: usize,
    pub records: u32,
}

impl Log {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Appends one command in database `db`.
    pub fn record<'a>(&mut self, db: usize, args: impl ExactSizeIterator<Item = &'a [u8]>) {
        self.select(db);
        write_command(&mut self.bytes, args);
        self.records += 1;
    }

    fn select(&mut self, db: usize) {
        if self.records == 0 {
            self.first_db = db;
        } else if db != self.last_db {
            write_select(&mut self.bytes, db);
        }
        self.last_db = db;
    }

    /// Appends another log after this one.
    pub fn append(&mut self, other: Log) {
        if other.is_empty() {
            return;
        }
        self.select(other.first_db);
        self.bytes.extend_from_slice(&other.bytes);
        self.last_db = other.last_db;
        self.records += other.records;
    }
}

pub fn write_select(out: &mut Vec<u8>, db: usize) {
    let n = db.to_string();
    write_command(out, [b"SELECT".as_slice(), n.as_bytes()].into_iter());
}

pub fn write_command<'a>(out: &mut Vec<u8>, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The shard's AOF state (in `ShardState`).
#[derive(Default)]
pub struct Feed {
    /// Whether writes are logged (appendonly yes, and not loading).
    pub on: bool,
    /// Records not yet handed to the writer, in execution order.
    pub log: Log,
    /// Set around a command that runs inside a transaction spanning
    /// shards: its records go to `captured`, which the transaction's
    /// coordinator writes as one MULTI/EXEC unit.
    pub capture: bool,
    pub captured: Log,
}

impl Feed {
    /// Logs a write that changed something (called by the server's
    /// `execute` only while `on`).
    pub fn write(&mut self, name: &str, args: &Args, db: usize, now: i64, reply: &[u8]) {
        let log = if self.capture {
            &mut self.captured
        } else {
            &mut self.log
        };
        propagate(name, args, db, now, reply, log);
    }
}

/// Keys that expired (lazily, or by the active cycle) are logged as DEL,
/// as Redis propagates them: redis-server does not expire keys while it
/// loads an AOF, so a later write must not find the old value. The log
/// is left for keyspace notifications when they want it, else emptied.
pub fn log_expired(st: &mut crate::command::ShardState) {
    if !st.aof.on {
        return;
    }
    let mut any = false;
    let log = if st.aof.capture {
        &mut st.aof.captured
    } else {
        &mut st.aof.log
    };
    for (db, key) in st.keyspace.expired_pending() {
        log.record(db, [b"DEL".as_slice(), key].into_iter());
        any = true;
    }
    if any && st.changes.notify == 0 {
        st.keyspace.take_expired();
    }
}

fn ms(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Absolute expiry in ms from an option's unit and value.
fn absolute(unit: &[u8], v: &[u8], now: i64) -> Option<i64> {
    let n = parse_i64_strict(v)?;
    if eq_ic(unit, b"EX") {
        n.checked_mul(1000)?.checked_add(now)
    } else if eq_ic(unit, b"PX") {
        n.checked_add(now)
    } else if eq_ic(unit, b"EXAT") {
        n.checked_mul(1000)
    } else if eq_ic(unit, b"PXAT") {
        Some(n)
    } else {
        None
    }
}

/// Appends the records a write command is propagated as.
pub fn propagate(name: &str, args: &Args, db: usize, now: i64, reply: &[u8], log: &mut Log) {
    let a = |i: usize| args.get(i);
    match name {
        // Scripts are logged by the commands they run.
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "script"
        | "function" => {}
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            let unit: &[u8] = match name {
                "expire" => b"EX",
                "pexpire" => b"PX",
                "expireat" => b"EXAT",
                _ => b"PXAT",
            };
            let Some(at) = absolute(unit, a(2), now) else {
                return log.record(db, args.iter());
            };
            if at <= now {
                return log.record(db, [b"DEL".as_slice(), a(1)].into_iter());
            }
            let t = ms(at);
            let mut v: Vec<&[u8]> = vec![b"PEXPIREAT", a(1), &t];
            v.extend(args.iter().skip(3));
            log.record(db, v.into_iter());
        }
        "set" => {
            let mut i = 3;
            let mut at = None;
            while i < args.len() {
                if i + 1 < args.len() {
                    if let Some(t) = absolute(a(i), a(i + 1), now) {
                        at = Some(t);
                        i += 2;
                        continue;
                    }
                }
                i += 1;
            }
            match at {
                Some(t) => {
                    let t = ms(t);
                    log.record(db, [b"SET".as_slice(), a(1), a(2), b"PXAT", &t].into_iter())
                }
                None => log.record(db, args.iter()),
            }
        }
        "setex" | "psetex" => {
            let unit: &[u8] = if name == "setex" { b"EX" } else { b"PX" };
            match absolute(unit, a(2), now) {
                Some(t) => {
                    let t = ms(t);
                    log.record(db, [b"SET".as_slice(), a(1), a(3), b"PXAT", &t].into_iter())
                }
                None => log.record(db, args.iter()),
            }
        }
        "getex" => {
            if args.len() >= 3 && eq_ic(a(2), b"PERSIST") {
                return log.record(db, [b"PERSIST".as_slice(), a(1)].into_iter());
            }
            if args.len() >= 4 {
                if let Some(t) = absolute(a(2), a(3), now) {
                    if t <= now {
                        return log.record(db, [b"DEL".as_slice(), a(1)].into_iter());
                    }
                    let t = ms(t);
                    log.record(db, [b"PEXPIREAT".as_slice(), a(1), &t].into_iter());
                }
            }
        }
        "getdel" => log.record(db, [b"DEL".as_slice(), a(1)].into_iter()),
        "incrbyfloat" => {
            if let Some(Resp::Bulk(v)) = parse(reply) {
                log.record(db, [b"SET".as_slice(), a(1), v, b"KEEPTTL"].into_iter());
            }
        }
        "hincrbyfloat" => {
            if let Some(Resp::Bulk(v)) = parse(reply) {
                log.record(db, [b"HSET".as_slice(), a(1), a(2), v].into_iter());
            }
        }
        "spop" => {
            let members: Vec<&[u8]> = match parse(reply) {
                Some(Resp::Bulk(m)) => vec![m],
                Some(Resp::Agg(items)) => items
                    .into_iter()
                    .filter_map(|i| match i {
                        Resp::Bulk(m) => Some(m),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if !members.is_empty() {
                let mut v: Vec<&[u8]> = vec![b"SREM", a(1)];
                v.extend(members);
                log.record(db, v.into_iter());
            }
        }
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" => {
            let cmd: &[u8] = match name {
                "blpop" => b"LPOP",
                "brpop" => b"RPOP",
                "bzpopmin" => b"ZPOPMIN",
                _ => b"ZPOPMAX",
            };
            if let Some(Resp::Agg(items)) = parse(reply) {
                if let Some(Resp::Bulk(key)) = items.first() {
                    log.record(db, [cmd, key].into_iter());
                }
            }
        }
        "blmove" => log.record(
            db,
            [b"LMOVE".as_slice(), a(1), a(2), a(3), a(4)].into_iter(),
        ),
        "brpoplpush" => log.record(db, [b"RPOPLPUSH".as_slice(), a(1), a(2)].into_iter()),
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => {
            let list = name.ends_with("lmpop");
            // The direction follows the keys: numkeys is argument 1
            // (LMPOP, ZMPOP) or 2 (after the timeout).
            let nk_at = if name.starts_with('b') { 2 } else { 1 };
            let Some(nk) = parse_i64_strict(a(nk_at)) else {
                return;
            };
            let dir_at = nk_at + 1 + nk.max(0) as usize;
            let Some(dir) = args.try_get(dir_at) else {
                return;
            };
            let cmd: &[u8] = match (list, eq_ic(dir, b"LEFT") || eq_ic(dir, b"MIN")) {
                (true, true) => b"LPOP",
                (true, false) => b"RPOP",
                (false, true) => b"ZPOPMIN",
                (false, false) => b"ZPOPMAX",
            };
            if let Some(Resp::Agg(items)) = parse(reply) {
                if let (Some(Resp::Bulk(key)), Some(Resp::Agg(popped))) =
                    (items.first(), items.get(1))
                {
                    let n = popped.len().to_string();
                    log.record(db, [cmd, key, n.as_bytes()].into_iter());
                }
            }
        }
        "restore" => {
            let absttl = args.iter().skip(4).any(|x| eq_ic(x, b"ABSTTL"));
            match parse_i64_strict(a(2)) {
                Some(ttl) if ttl > 0 && !absttl => {
                    let t = ms(now.saturating_add(ttl));
                    let mut v: Vec<&[u8]> = vec![a(0), a(1), &t];
                    v.extend(args.iter().skip(3));
                    v.push(b"ABSTTL");
                    log.record(db, v.into_iter());
                }
                _ => log.record(db, args.iter()),
            }
        }
        _ => log.record(db, args.iter()),
    }
}

/// A reply, as much of it as propagation needs.
#[derive(Debug, PartialEq)]
pub enum Resp<'a> {
    Bulk(&'a [u8]),
    Agg(Vec<Resp<'a>>),
    Other,
}

/// Parses one RESP2/RESP3 reply (None: malformed).
pub fn parse(buf: &[u8]) -> Option<Resp<'_>> {
    parse_at(buf, 0, 0).map(|(r, _)| r)
}

fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], pos + end + 2))
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Option<(Resp<'_>, usize)> {
    if depth > 8 {
        return None;
    }
    let t = *buf.get(pos)?;
    let (head, next) = line(buf, pos + 1)?;
    match t {
        b'$' | b'=' | b'!' => {
            let n = parse_i64_strict(head)?;
            if n < 0 {
                return Some((Resp::Other, next));
            }
            let end = next.checked_add(n as usize)?;
            let body = buf.get(next..end)?;
            Some((Resp::Bulk(body), end + 2))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = parse_i64_strict(head)?;
            if n < 0 {
                return Some((Resp::Other, next));
            }
            let n = if t == b'%' { n * 2 } else { n } as usize;
            let mut items = Vec::with_capacity(n.min(1024));
            let mut p = next;
            for _ in 0..n {
                let (r, q) = parse_at(buf, p, depth + 1)?;
                items.push(r);
                p = q;
            }
            Some((Resp::Agg(items), p))
        }
        _ => Some((Resp::Other, next)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_protocol::OwnedArgs;

    fn logged(parts: &[&str], reply: &[u8], now: i64) -> String {
        let owned = OwnedArgs::from_parts(parts.iter().map(|s| s.as_bytes()));
        let name = parts[0].to_ascii_lowercase();
        let mut log = Log::default();
        propagate(&name, &owned.args(), 0, now, reply, &mut log);
        String::from_utf8(log.bytes).unwrap()
    }

    fn cmd(parts: &[&str]) -> String {
        let mut out = Vec::new();
        write_command(&mut out, parts.iter().map(|s| s.as_bytes()));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn relative_expiries_become_absolute() {
        let now = 1_000_000;
        assert_eq!(
            logged(&["EXPIRE", "k", "10"], b":1\r\n", now),
            cmd(&["PEXPIREAT", "k", "1010000"])
        );
        assert_eq!(
            logged(&["PEXPIRE", "k", "5", "NX"], b":1\r\n", now),
            cmd(&["PEXPIREAT", "k", "1000005", "NX"])
        );
        assert_eq!(
            logged(&["EXPIREAT", "k", "1"], b":1\r\n", now),
            cmd(&["DEL", "k"])
        );
        assert_eq!(
            logged(&["SET", "k", "v", "NX", "EX", "2"], b"+OK\r\n", now),
            cmd(&["SET", "k", "v", "PXAT", "1002000"])
        );
        assert_eq!(
            logged(&["SETEX", "k", "1", "v"], b"+OK\r\n", now),
            cmd(&["SET", "k", "v", "PXAT", "1001000"])
        );
        assert_eq!(
            logged(&["GETEX", "k", "PX", "7"], b"$1\r\nv\r\n", now),
            cmd(&["PEXPIREAT", "k", "1000007"])
        );
        assert_eq!(logged(&["GETEX", "k"], b"$1\r\nv\r\n", now), "");
        assert_eq!(
            logged(&["RESTORE", "k", "100", "payload"], b"+OK\r\n", now),
            cmd(&["RESTORE", "k", "1000100", "payload", "ABSTTL"])
        );
    }

    #[test]
    fn results_replace_non_deterministic_commands() {
        assert_eq!(
            logged(&["INCRBYFLOAT", "k", "0.1"], b"$3\r\n1.1\r\n", 0),
            cmd(&["SET", "k", "1.1", "KEEPTTL"])
        );
        assert_eq!(
            logged(&["SPOP", "s", "2"], b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", 0),
            cmd(&["SREM", "s", "a", "b"])
        );
        assert_eq!(
            logged(&["SPOP", "s"], b"$1\r\na\r\n", 0),
            cmd(&["SREM", "s", "a"])
        );
        assert_eq!(
            logged(
                &["BLPOP", "a", "b", "0"],
                b"*2\r\n$1\r\nb\r\n$1\r\nx\r\n",
                0
            ),
            cmd(&["LPOP", "b"])
        );
        assert_eq!(
            logged(
                &["BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "5"],
                b"*2\r\n$1\r\nb\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n",
                0
            ),
            cmd(&["RPOP", "b", "2"])
        );
        assert_eq!(
            logged(
                &["ZMPOP", "1", "z", "MIN"],
                b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nm\r\n,1\r\n",
                0
            ),
            cmd(&["ZPOPMIN", "z", "1"])
        );
        assert_eq!(logged(&["EVAL", "x", "0"], b"+OK\r\n", 0), "");
    }

    #[test]
    fn logs_select_only_where_the_database_changes() {
        let mut a = Log::default();
        a.record(2, [b"SET".as_slice(), b"k", b"v"].into_iter());
        a.record(2, [b"DEL".as_slice(), b"k"].into_iter());
        a.record(0, [b"DEL".as_slice(), b"j"].into_iter());
        let mut b = Log::default();
        b.record(0, [b"DEL".as_slice(), b"x"].into_iter());
        a.append(b);
        let want = [
            cmd(&["SET", "k", "v"]),
            cmd(&["DEL", "k"]),
            cmd(&["SELECT", "0"]),
            cmd(&["DEL", "j"]),
            cmd(&["DEL", "x"]),
        ]
        .concat();
        assert_eq!(String::from_utf8(a.bytes.clone()).unwrap(), want);
        assert_eq!((a.first_db, a.last_db, a.records), (2, 0, 4));
    }

    #[test]
    fn malformed_replies_log_nothing() {
        assert_eq!(logged(&["SPOP", "s"], b"$5\r\nab", 0), "");
        assert_eq!(logged(&["BLPOP", "a", "0"], b"*9\r\n", 0), "");
    }
}
