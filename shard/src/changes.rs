//! The change hook: every write that goes through the command table
//! reports the keys it touched here, in one place (the server's `execute`
//! calls it after each write command, the gather step after writing keys
//! back to their owner, FLUSHDB/FLUSHALL/SWAPDB before they empty a
//! database). WATCH and blocking wake-ups (`blocking`) hang on it today;
//! keyspace notifications, the AOF and replication are meant to hang on it
//! too, so no feature needs a path of its own around the command table.
//!
//! While nothing listens, the hook costs the caller one branch
//! (`Changes::active`), so the single-key path pays nothing for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One connection's WATCH state, shared between the connection (on any
/// shard) and the registries of the shards that own its watched keys. Only
/// ever goes from clean to dirty until the connection unwatches.
#[derive(Default, Debug)]
pub struct WatchState {
    dirty: AtomicBool,
}

impl WatchState {
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }
    pub fn set_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

pub type Watcher = Arc<WatchState>;

/// A key being watched on this shard: by whom, in which database, and
/// whether it existed (logically: an expired key does not) when WATCH ran.
struct Watch {
    db: u16,
    who: Watcher,
    existed: bool,
}

/// The shard's listeners on writes.
#[derive(Default)]
pub struct Changes {
    /// Watched keys, by key name (the database is in each entry: a key is
    /// rarely watched in more than one).
    watched: HashMap<Box<[u8]>, Vec<Watch>>,
    /// Clients blocked on keys of this shard (BLPOP...): a write to one
    /// makes it ready to serve them.
    pub blocked: crate::blocking::BlockedKeys,
    /// `notify-keyspace-events` as flags (0: none wanted).
    pub notify: u32,
    /// Keyspace notifications made and not yet published.
    pub notices: Vec<crate::notify::Notice>,
    /// Client-side caching: who may cache which key (CLIENT TRACKING).
    pub tracking: crate::tracking::Tracking,
}

impl Changes {
    /// Whether any write must be reported (false: the caller skips the
    /// hook, and finding a command's keys, altogether).
    #[inline]
    pub fn active(&self) -> bool {
        !self.watched.is_empty()
            || !self.blocked.is_empty()
            || self.notify != 0
            || !self.tracking.is_empty()
    }

    /// Whether the writes just run left work for the server: blocked
    /// clients to serve, notifications to publish.
    #[inline]
    pub fn pending(&self) -> bool {
        self.blocked.has_ready() || !self.notices.is_empty() || self.tracking.has_out()
    }

    /// A write changed `key` in `db`. `_event` is the command's name, the
    /// event keyspace notifications will publish.
    pub fn key(&mut self, db: usize, key: &[u8], _event: &str) {
        if let Some(ws) = self.watched.get(key) {
            for w in ws.iter().filter(|w| w.db as usize == db) {
                w.who.set_dirty();
            }
        }
        self.blocked.touched(db, key);
        if !self.tracking.is_empty() {
            self.tracking.touched(key);
        }
    }

    /// `db` is about to be emptied (FLUSHDB, FLUSHALL) or swapped with
    /// another (SWAPDB): every watcher of a key that logically exists there,
    /// or in the database that replaces it, sees a change. `exists(db,
    /// key)` tells logical existence (an expired key does not exist).
    pub fn db_replaced(
        &mut self,
        db: usize,
        replaced_with: Option<usize>,
        mut exists: impl FnMut(usize, &[u8]) -> bool,
    ) {
        // A swapped-in database may hold what blocked clients wait for.
        if replaced_with.is_some() {
            self.blocked.db_touched(db);
        } else {
            // FLUSHDB/FLUSHALL: tracking clients drop everything.
            self.tracking.flushed();
        }
        for (key, ws) in &self.watched {
            for w in ws.iter().filter(|w| w.db as usize == db) {
                if exists(db, key) || replaced_with.is_some_and(|r| exists(r, key)) {
                    w.who.set_dirty();
                }
            }
        }
    }

    /// Registers a WATCH of `key` in `db`; `existed` is its logical
    /// existence now.
    pub fn watch(&mut self, db: usize, key: &[u8], who: &Watcher, existed: bool) {
        let ws = self.watched.entry(key.into()).or_default();
        if !ws
            .iter()
            .any(|w| w.db as usize == db && Arc::ptr_eq(&w.who, who))
        {
            ws.push(Watch {
                db: db as u16,
                who: who.clone(),
                existed,
            });
        }
    }

    /// Removes `who`'s watch of `key` in `db` (UNWATCH, EXEC, DISCARD, a
    /// closed connection).
    pub fn unwatch(&mut self, db: usize, key: &[u8], who: &Watcher) {
        if let Some(ws) = self.watched.get_mut(key) {
            ws.retain(|w| !(w.db as usize == db && Arc::ptr_eq(&w.who, who)));
            if ws.is_empty() {
                self.watched.remove(key);
            }
        }
    }

    /// At EXEC, with the key locked: a watched key whose logical existence
    /// changed since WATCH without a write reported (it expired) makes the
    /// transaction fail, as in Redis. `exists_now` is its existence now.
    pub fn check_expired(&self, db: usize, key: &[u8], who: &Watcher, exists_now: bool) {
        if let Some(ws) = self.watched.get(key) {
            for w in ws {
                if w.db as usize == db && Arc::ptr_eq(&w.who, who) && w.existed != exists_now {
                    who.set_dirty();
                }
            }
        }
    }

    /// Number of watched (db, key) pairs on this shard (INFO).
    pub fn watched_keys(&self) -> usize {
        self.watched.values().map(Vec::len).sum()
    }
}

/// Whether a write command's reply says it changed nothing, so that
/// watchers are not told of a change Redis would not signal either: an
/// error (commands check before they modify), a null reply (a pop of a
/// missing key, SET NX that did not set; but SET ... GET of a missing key
/// did set), or 0 from a command whose integer reply counts what it
/// changed.
pub fn write_changed(name: &str, reply: &[u8]) -> bool {
    match reply {
        [b'-', ..] => false,
        b"$-1\r\n" | b"*-1\r\n" | b"_\r\n" => name == "set",
        b":0\r\n" => !matches!(
            name,
            "del"
                | "unlink"
                | "expire"
                | "pexpire"
                | "expireat"
                | "pexpireat"
                | "persist"
                | "setnx"
                | "msetnx"
                | "hsetnx"
                | "renamenx"
                | "move"
                | "copy"
                | "smove"
                | "sadd"
                | "srem"
                | "zrem"
                | "hdel"
                | "lrem"
                | "pfadd"
                | "lpushx"
                | "rpushx"
                | "linsert"
                | "zremrangebyscore"
                | "zremrangebyrank"
                | "zremrangebylex"
        ),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_marks_only_its_watchers_in_its_database() {
        let mut c = Changes::default();
        let (a, b) = (Watcher::default(), Watcher::default());
        c.watch(0, b"k", &a, false);
        c.watch(1, b"k", &b, false);
        assert!(c.active());
        c.key(0, b"k", "set");
        assert!(a.is_dirty());
        assert!(!b.is_dirty());
        c.unwatch(0, b"k", &a);
        c.unwatch(1, b"k", &b);
        assert!(!c.active());
    }

    #[test]
    fn flush_marks_watchers_of_existing_keys_only() {
        let mut c = Changes::default();
        let (a, b) = (Watcher::default(), Watcher::default());
        c.watch(0, b"here", &a, true);
        c.watch(0, b"gone", &b, false);
        c.db_replaced(0, None, |_, k| k == b"here");
        assert!(a.is_dirty());
        assert!(!b.is_dirty());
    }

    #[test]
    fn expiry_since_watch_is_a_change() {
        let mut c = Changes::default();
        let (a, b) = (Watcher::default(), Watcher::default());
        c.watch(0, b"k", &a, true);
        c.watch(0, b"stale", &b, false);
        c.check_expired(0, b"k", &a, false);
        c.check_expired(0, b"stale", &b, false);
        assert!(a.is_dirty());
        assert!(!b.is_dirty());
    }

    #[test]
    fn no_op_replies_are_not_changes() {
        assert!(!write_changed("del", b":0\r\n"));
        assert!(write_changed("del", b":1\r\n"));
        assert!(write_changed("incrby", b":0\r\n"));
        assert!(!write_changed("set", b"-ERR syntax error\r\n"));
        assert!(write_changed("set", b"$-1\r\n"));
        assert!(!write_changed("lpop", b"$-1\r\n"));
    }
}
