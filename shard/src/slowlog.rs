//! The slow log (SLOWLOG): commands that ran longer than
//! `slowlog-log-slower-than`, kept on the shard that ran them. SLOWLOG GET
//! merges the shards' logs by entry id, which is node-wide and increasing,
//! so the merged log reads as one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// Redis's limits on what one entry keeps of a command.
pub const MAX_ARGC: usize = 32;
pub const MAX_ARG_LEN: usize = 128;

/// Entry ids, shared by every shard: a merged log sorts by them.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowEntry {
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: i64,
    pub micros: u64,
    /// The arguments, cut as Redis cuts them (see `entry_args`).
    pub args: Vec<Vec<u8>>,
    /// The client that sent it; its address and name are filled in by the
    /// server (`resolved`), which knows the connections.
    pub client_id: u64,
    pub addr: String,
    pub name: String,
    pub resolved: bool,
}

#[derive(Debug)]
pub struct SlowLog {
    /// Newest first, as SLOWLOG GET lists them.
    pub entries: VecDeque<SlowEntry>,
    pub max_len: usize,
    /// An entry was logged whose client is not known yet.
    pub unresolved: bool,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            entries: VecDeque::new(),
            max_len: 128,
            unresolved: false,
        }
    }
}

impl SlowLog {
    /// Logs a command that took `micros`.
    pub fn push<'a>(
        &mut self,
        args: impl ExactSizeIterator<Item = &'a [u8]>,
        micros: u64,
        now_ms: i64,
    ) {
        if self.max_len == 0 {
            return;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.entries.push_front(SlowEntry {
            id,
            time: now_ms / 1000,
            micros,
            args: entry_args(args),
            client_id: 0,
            addr: String::new(),
            name: String::new(),
            resolved: false,
        });
        self.entries.truncate(self.max_len);
        self.unresolved = true;
    }

    pub fn set_max_len(&mut self, n: usize) {
        self.max_len = n;
        self.entries.truncate(n);
    }

    /// Gives the entries logged since the last claim their client: its id,
    /// and its address and name when the caller knows them (otherwise
    /// SLOWLOG GET looks them up by id).
    pub fn claim(&mut self, client_id: u64, who: Option<(&str, &str)>) {
        self.unresolved = false;
        for e in self.entries.iter_mut().take_while(|e| !e.resolved) {
            e.resolved = true;
            e.client_id = client_id;
            if let Some((addr, name)) = who {
                e.addr = addr.to_string();
                e.name = name.to_string();
            }
        }
    }
}

/// A command's arguments as an entry keeps them: at most 32 (the last one
/// saying how many more there were), each at most 128 bytes (with how many
/// more bytes there were). AUTH and the like are redacted (`redact`).
pub fn entry_args<'a>(args: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let argc = args.len();
    let kept = if argc > MAX_ARGC { MAX_ARGC - 1 } else { argc };
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(kept.min(MAX_ARGC));
    for a in args.take(kept) {
        if a.len() > MAX_ARG_LEN {
            let mut v = a[..MAX_ARG_LEN].to_vec();
            v.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_ARG_LEN).as_bytes());
            out.push(v);
        } else {
            out.push(a.to_vec());
        }
    }
    if argc > MAX_ARGC {
        out.push(format!("... ({} more arguments)", argc - kept).into_bytes());
    }
    redact(&mut out);
    out
}

/// Which arguments Redis hides in the slow log and MONITOR: passwords of
/// AUTH, HELLO ... AUTH, MIGRATE ... AUTH/AUTH2, and the values of the
/// sensitive CONFIG SET parameters.
pub fn redacted(args: &[&[u8]]) -> Vec<bool> {
    use crate::util::eq_ic;
    let mut hide = vec![false; args.len()];
    let name = args.first().copied().unwrap_or(b"");
    if eq_ic(name, b"auth") {
        for h in hide.iter_mut().skip(1) {
            *h = true;
        }
    } else if eq_ic(name, b"hello") {
        let mut i = 2;
        while i < args.len() {
            if eq_ic(args[i], b"AUTH") {
                for h in hide.iter_mut().skip(i + 1).take(2) {
                    *h = true;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    } else if eq_ic(name, b"migrate") {
        let mut i = 6;
        while i < args.len() {
            if eq_ic(args[i], b"AUTH") {
                if let Some(h) = hide.get_mut(i + 1) {
                    *h = true;
                }
                i += 2;
            } else if eq_ic(args[i], b"AUTH2") {
                for h in hide.iter_mut().skip(i + 1).take(2) {
                    *h = true;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    } else if eq_ic(name, b"config") && args.len() >= 2 && eq_ic(args[1], b"set") {
        let mut i = 2;
        while i + 1 < args.len() {
            if eq_ic(args[i], b"requirepass") || eq_ic(args[i], b"masterauth") {
                hide[i + 1] = true;
            }
            i += 2;
        }
    }
    hide
}

fn redact(args: &mut [Vec<u8>]) {
    let hide = {
        let view: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        redacted(&view)
    };
    for (a, h) in args.iter_mut().zip(hide) {
        if h {
            *a = b"(redacted)".to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&[u8]]) -> Vec<Vec<u8>> {
        entry_args(v.iter().copied())
    }

    #[test]
    fn cuts_long_arguments_and_long_commands_as_redis() {
        let long = vec![b'x'; 200];
        let a = args(&[b"set", b"k", &long]);
        assert_eq!(a[2].len(), 128 + "... (72 more bytes)".len());
        assert!(a[2].ends_with(b"... (72 more bytes)"));
        let many: Vec<Vec<u8>> = (0..42).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(|v| v.as_slice()).collect();
        let a = args(&refs);
        assert_eq!(a.len(), 32);
        assert_eq!(a[31], b"... (11 more arguments)");
        assert_eq!(a[30], b"30");
        // Exactly 32 arguments are all kept.
        let a = args(&refs[..32]);
        assert_eq!(a.len(), 32);
        assert_eq!(a[31], b"31");
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(
            args(&[b"AUTH", b"u", b"p"])[1..],
            [b"(redacted)".to_vec(), b"(redacted)".to_vec()]
        );
        let a = args(&[b"hello", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]);
        assert_eq!(a[3], b"(redacted)");
        assert_eq!(a[4], b"(redacted)");
        assert_eq!(a[6], b"n");
        let a = args(&[
            b"config",
            b"set",
            b"requirepass",
            b"x",
            b"maxclients",
            b"10",
        ]);
        assert_eq!(a[3], b"(redacted)");
        assert_eq!(a[5], b"10");
    }

    #[test]
    fn keeps_the_newest_up_to_max_len() {
        let mut l = SlowLog::default();
        l.set_max_len(2);
        for i in 0..3u8 {
            l.push([&[b'a' + i][..]].into_iter(), 5, 1000);
        }
        assert_eq!(l.entries.len(), 2);
        assert!(l.entries[0].id > l.entries[1].id);
        assert_eq!(l.entries[0].args[0], b"c");
        assert!(l.unresolved);
        l.claim(7, Some(("1.2.3.4:5", "n")));
        assert!(!l.unresolved);
        assert!(l
            .entries
            .iter()
            .all(|e| e.client_id == 7 && e.addr == "1.2.3.4:5"));
        l.push([&b"d"[..]].into_iter(), 5, 1000);
        l.claim(8, None);
        assert_eq!(l.entries[0].client_id, 8);
        assert_eq!(l.entries[1].client_id, 7);
    }
}
