//! Clients blocked on keys (BLPOP, BZPOPMIN, BLMOVE...; XREAD later): the
//! registry each shard keeps of who waits for which of its keys, in
//! arrival order, and which of those keys a write has made ready.
//!
//! A write reports its keys to the change hook (`Changes::key`), which
//! marks a key ready when someone waits for it here; the server serves
//! ready keys right after the write (or when the transaction holding the
//! key releases it), before any other command can see the key, re-running
//! each waiter's command in arrival order while the key can serve it.
//!
//! A client blocked on keys of several shards is registered on each; the
//! first shard to serve it, its timeout, CLIENT UNBLOCK or its going away
//! claims it (`BlockState::claim`, one atomic step), so it is served
//! exactly once. The other registrations are then removed by its
//! connection; a claimed waiter met before that is skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tessera_protocol::{Args, OwnedArgs, Proto};

/// One blocked client's claim: false until someone serves, times out,
/// unblocks or drops it.
#[derive(Default, Debug)]
pub struct BlockState {
    claimed: AtomicBool,
}

impl BlockState {
    /// Takes the client; true for exactly one caller.
    pub fn claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }
}

/// The type of value a waiter can be served from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitsFor {
    List,
    Zset,
}

/// A blocked command, as every shard it waits on holds it.
#[derive(Debug)]
pub struct Waiter {
    pub state: Arc<BlockState>,
    /// Where the reply goes: the connection's shard and the ticket it
    /// waits on there.
    pub conn_shard: usize,
    pub ticket: u32,
    pub db: usize,
    pub proto: Proto,
    /// The command's id in the command table, and its arguments.
    pub cmd: u16,
    pub args: OwnedArgs,
    pub waits_for: WaitsFor,
    /// The keys it waits for (BLMOVE's source; every key of the others),
    /// on all shards.
    pub keys: Vec<Vec<u8>>,
}

impl Waiter {
    /// The command that serves this waiter from `key` alone: the blocking
    /// command with `key` as its only key (so its reply names the key, and
    /// its options hold).
    pub fn rerun_for(&self, key: &[u8]) -> OwnedArgs {
        let a = self.args.args();
        let name = a.get(0);
        let mut o = OwnedArgs::default();
        if name.eq_ignore_ascii_case(b"blmpop") || name.eq_ignore_ascii_case(b"bzmpop") {
            // NAME timeout numkeys key... where [COUNT n]
            let numkeys = crate::util::parse_i64_strict(a.get(2)).unwrap_or(1).max(1) as usize;
            o.push(name);
            o.push(b"0");
            o.push(b"1");
            o.push(key);
            for i in (3 + numkeys)..a.len() {
                o.push(a.get(i));
            }
        } else if name.eq_ignore_ascii_case(b"blmove") || name.eq_ignore_ascii_case(b"brpoplpush") {
            return self.args.clone();
        } else {
            // BLPOP BRPOP BZPOPMIN BZPOPMAX: NAME key... timeout
            o.push(name);
            o.push(key);
            o.push(b"0");
        }
        o
    }

    pub fn args(&self) -> Args<'_> {
        self.args.args()
    }
}

/// Who waits for one key of one database, in arrival order.
struct KeyWaiters {
    db: usize,
    queue: VecDeque<Arc<Waiter>>,
    /// Already in `ready`.
    ready: bool,
}

/// A shard's blocked clients, by key (then database: a key is rarely
/// waited for in more than one), so a write looks its key up without
/// building anything.
#[derive(Default)]
pub struct BlockedKeys {
    keys: HashMap<Box<[u8]>, Vec<KeyWaiters>>,
    /// Keys written since they were last served, in the order written.
    ready: Vec<(usize, Box<[u8]>)>,
}

impl BlockedKeys {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn slot(&mut self, db: usize, key: &[u8]) -> Option<&mut KeyWaiters> {
        self.keys.get_mut(key)?.iter_mut().find(|q| q.db == db)
    }

    /// Drops the entry of `key` in `db` once nobody waits there.
    fn prune(&mut self, db: usize, key: &[u8]) {
        if let Some(dbs) = self.keys.get_mut(key) {
            dbs.retain(|q| !(q.db == db && q.queue.is_empty()));
            if dbs.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// Registers `w` as waiting for each of `keys` in its database (after
    /// everyone already waiting for them).
    pub fn register(&mut self, w: &Arc<Waiter>, keys: &[Vec<u8>]) {
        for k in keys {
            let dbs = self.keys.entry(k.as_slice().into()).or_default();
            let at = match dbs.iter().position(|q| q.db == w.db) {
                Some(i) => i,
                None => {
                    dbs.push(KeyWaiters {
                        db: w.db,
                        queue: VecDeque::new(),
                        ready: false,
                    });
                    dbs.len() - 1
                }
            };
            let q = &mut dbs[at].queue;
            if !q.iter().any(|x| Arc::ptr_eq(x, w)) {
                q.push_back(w.clone());
            }
        }
    }

    /// Removes `w` from each of `keys` (it was served, timed out, was
    /// unblocked or went away).
    pub fn unregister(&mut self, w: &Arc<Waiter>, keys: &[Vec<u8>]) {
        for k in keys {
            if let Some(q) = self.slot(w.db, k) {
                q.queue.retain(|x| !Arc::ptr_eq(x, w));
            }
            self.prune(w.db, k);
        }
    }

    /// A write changed `key` in `db`: ready if someone waits for it.
    #[inline]
    pub fn touched(&mut self, db: usize, key: &[u8]) {
        if self.keys.is_empty() {
            return;
        }
        let mut newly = false;
        if let Some(q) = self.slot(db, key) {
            newly = !q.ready;
            q.ready = true;
        }
        if newly {
            self.ready.push((db, key.into()));
        }
    }

    /// Every waited-for key of `db` is ready (SWAPDB brought in another
    /// database's keys).
    pub fn db_touched(&mut self, db: usize) {
        for (key, dbs) in self.keys.iter_mut() {
            for q in dbs.iter_mut().filter(|q| q.db == db && !q.ready) {
                q.ready = true;
                self.ready.push((db, key.clone()));
            }
        }
    }

    /// Takes the ready keys, in the order they became ready.
    pub fn take_ready(&mut self) -> Vec<(usize, Box<[u8]>)> {
        let ready = std::mem::take(&mut self.ready);
        for (db, key) in &ready {
            if let Some(q) = self.slot(*db, key) {
                q.ready = false;
            }
        }
        ready
    }

    /// Puts a key back among the ready ones (it could not be served yet: a
    /// transaction holds it).
    pub fn defer(&mut self, db: usize, key: &[u8]) {
        self.touched(db, key)
    }

    /// The first waiter of `key` that can still be served and waits for a
    /// value of type `t`, dropping the claimed ones met at the front
    /// (served elsewhere, timed out...). A key holds one type: waiters of
    /// another type stay queued for when it holds theirs.
    pub fn first_for(&mut self, db: usize, key: &[u8], t: WaitsFor) -> Option<Arc<Waiter>> {
        let q = self.slot(db, key)?;
        while q.queue.front().is_some_and(|w| w.state.is_claimed()) {
            q.queue.pop_front();
        }
        let found = q
            .queue
            .iter()
            .find(|w| !w.state.is_claimed() && w.waits_for == t)
            .cloned();
        self.prune(db, key);
        found
    }

    /// Number of (db, key) pairs someone waits for (INFO's blocked keys).
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(t: WaitsFor, args: &[&str]) -> Arc<Waiter> {
        Arc::new(Waiter {
            state: Arc::default(),
            conn_shard: 0,
            ticket: 0,
            db: 0,
            proto: Proto::Resp2,
            cmd: 0,
            args: OwnedArgs::from_parts(args),
            waits_for: t,
            keys: Vec::new(),
        })
    }

    #[test]
    fn ready_keys_are_reported_once_in_write_order() {
        let mut b = BlockedKeys::default();
        let w = waiter(WaitsFor::List, &["blpop", "a", "b", "0"]);
        b.register(&w, &[b"a".to_vec(), b"b".to_vec()]);
        b.touched(0, b"b");
        b.touched(0, b"a");
        b.touched(0, b"b");
        b.touched(1, b"a");
        b.touched(0, b"c");
        let r = b.take_ready();
        assert_eq!(r, vec![(0, b"b"[..].into()), (0, b"a"[..].into())]);
        assert!(!b.has_ready());
        b.unregister(&w, &[b"a".to_vec(), b"b".to_vec()]);
        assert!(b.is_empty());
    }

    #[test]
    fn claimed_waiters_are_skipped_and_dropped() {
        let mut b = BlockedKeys::default();
        let (w1, w2) = (
            waiter(WaitsFor::List, &["blpop", "a", "0"]),
            waiter(WaitsFor::List, &["blpop", "a", "0"]),
        );
        b.register(&w1, &[b"a".to_vec()]);
        b.register(&w2, &[b"a".to_vec()]);
        assert!(w1.state.claim());
        assert!(!w1.state.claim());
        let first = b.first_for(0, b"a", WaitsFor::List).unwrap();
        assert!(Arc::ptr_eq(&first, &w2));
        assert!(b.first_for(0, b"a", WaitsFor::Zset).is_none());
        assert!(w2.state.claim());
        assert!(b.first_for(0, b"a", WaitsFor::List).is_none());
        assert!(b.is_empty());
    }

    #[test]
    fn rerun_names_only_the_ready_key() {
        let w = waiter(
            WaitsFor::List,
            &["BLMPOP", "5", "2", "a", "b", "LEFT", "COUNT", "3"],
        );
        let o = w.rerun_for(b"b");
        let got: Vec<&[u8]> = o.args().iter().collect();
        let want: Vec<&[u8]> = vec![b"BLMPOP", b"0", b"1", b"b", b"LEFT", b"COUNT", b"3"];
        assert_eq!(got, want);
        let w = waiter(WaitsFor::Zset, &["bzpopmin", "a", "b", "1.5"]);
        let o = w.rerun_for(b"a");
        let got: Vec<&[u8]> = o.args().iter().collect();
        let want: Vec<&[u8]> = vec![b"bzpopmin", b"a", b"0"];
        assert_eq!(got, want);
    }
}
