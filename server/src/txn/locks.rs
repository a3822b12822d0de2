//! One shard's lock table: the intent locks that make a command or a
//! transaction spanning several shards atomic (docs/transactions.md).
//!
//! VLL-style: no lock objects, a pair of counters per locked key (shared,
//! exclusive) plus two for the whole shard, and one FIFO queue of requests
//! that could not be granted at once. A request is all the keys one
//! transaction needs on this shard; it is granted in one step or queued
//! whole, so a transaction never holds part of a shard while it waits for
//! the rest. A request is granted when it conflicts with no holder and no
//! request queued before it (so a stream of newcomers cannot starve a
//! queued transaction). While the table is empty, `is_idle` is all the
//! single-key path pays.

use std::collections::{HashMap, VecDeque};

/// A transaction's identity: the coordinating shard in the top 16 bits,
/// a counter of that shard below.
pub type TxId = u64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Shared,
    Exclusive,
}

impl Mode {
    pub fn of(write: bool) -> Mode {
        if write {
            Mode::Exclusive
        } else {
            Mode::Shared
        }
    }
}

/// Everything one transaction locks on one shard.
#[derive(Clone, Default, Debug)]
pub struct LockSet {
    /// (database, key, mode); one entry per key (`add` merges).
    pub keys: Vec<(u16, Box<[u8]>, Mode)>,
    /// The whole shard (FLUSHALL, SWAPDB, a SORT reading unknown keys...).
    pub whole: Option<Mode>,
}

impl LockSet {
    pub fn add(&mut self, db: usize, key: &[u8], mode: Mode) {
        let db = db as u16;
        match self
            .keys
            .iter_mut()
            .find(|(d, k, _)| *d == db && &k[..] == key)
        {
            Some(e) => {
                if mode == Mode::Exclusive {
                    e.2 = Mode::Exclusive;
                }
            }
            None => self.keys.push((db, key.into(), mode)),
        }
    }

    pub fn add_whole(&mut self, mode: Mode) {
        if self.whole != Some(Mode::Exclusive) {
            self.whole = Some(mode);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.whole.is_none()
    }

    fn has_exclusive(&self) -> bool {
        self.whole == Some(Mode::Exclusive) || self.keys.iter().any(|k| k.2 == Mode::Exclusive)
    }

    /// Whether two requests cannot hold their locks at the same time.
    fn conflicts(&self, other: &LockSet) -> bool {
        match (self.whole, other.whole) {
            (Some(Mode::Exclusive), _) => return !other.is_empty(),
            (_, Some(Mode::Exclusive)) => return !self.is_empty(),
            (Some(Mode::Shared), _) if other.has_exclusive() => return true,
            (_, Some(Mode::Shared)) if self.has_exclusive() => return true,
            _ => {}
        }
        self.keys.iter().any(|(d, k, m)| {
            other.keys.iter().any(|(od, ok, om)| {
                d == od && k == ok && (*m == Mode::Exclusive || *om == Mode::Exclusive)
            })
        })
    }
}

#[derive(Default, Clone, Copy)]
struct Count {
    shared: u32,
    exclusive: u32,
}

struct Queued<W> {
    tx: TxId,
    set: LockSet,
    waiter: W,
}

/// The table, generic over what a queued request's waiter is (the server
/// wakes a ticket or resumes a parked batch; tests use plain values).
pub struct LockTable<W> {
    /// Per key name, per database holding it locked: the counters.
    counts: HashMap<Box<[u8]>, Vec<(u16, Count)>>,
    whole_shared: u32,
    whole_exclusive: u32,
    /// Keys held exclusively, for whole-shard shared requests.
    exclusive_keys: u32,
    held: HashMap<TxId, LockSet>,
    queue: VecDeque<Queued<W>>,
}

impl<W> Default for LockTable<W> {
    fn default() -> Self {
        LockTable {
            counts: HashMap::new(),
            whole_shared: 0,
            whole_exclusive: 0,
            exclusive_keys: 0,
            held: HashMap::new(),
            queue: VecDeque::new(),
        }
    }
}

impl<W> LockTable<W> {
    /// Nothing held, nothing waiting: a command may run without looking.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.queue.is_empty()
    }

    fn count(&self, db: u16, key: &[u8]) -> Count {
        self.counts
            .get(key)
            .and_then(|v| v.iter().find(|(d, _)| *d == db))
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    fn free_of_holders(&self, set: &LockSet) -> bool {
        match set.whole {
            Some(Mode::Exclusive) => return self.held.is_empty(),
            Some(Mode::Shared) if self.whole_exclusive > 0 || self.exclusive_keys > 0 => {
                return false
            }
            _ => {}
        }
        if self.whole_exclusive > 0 {
            return false;
        }
        set.keys.iter().all(|(db, key, mode)| {
            let c = self.count(*db, key);
            match mode {
                Mode::Shared => c.exclusive == 0,
                Mode::Exclusive => c.exclusive == 0 && c.shared == 0 && self.whole_shared == 0,
            }
        })
    }

    /// Whether `set` could be granted now: no holder and no earlier waiter
    /// conflicts with it.
    pub fn grantable(&self, set: &LockSet) -> bool {
        self.free_of_holders(set) && !self.queue.iter().any(|q| q.set.conflicts(set))
    }

    fn hold(&mut self, tx: TxId, set: LockSet) {
        match set.whole {
            Some(Mode::Exclusive) => self.whole_exclusive += 1,
            Some(Mode::Shared) => self.whole_shared += 1,
            None => {}
        }
        for (db, key, mode) in &set.keys {
            let per_db = self.counts.entry(key.clone()).or_default();
            let at = match per_db.iter().position(|(d, _)| d == db) {
                Some(i) => i,
                None => {
                    per_db.push((*db, Count::default()));
                    per_db.len() - 1
                }
            };
            let c = &mut per_db[at].1;
            match mode {
                Mode::Shared => c.shared += 1,
                Mode::Exclusive => {
                    c.exclusive += 1;
                    self.exclusive_keys += 1;
                }
            }
        }
        // A transaction asks each shard once; a second grant to the same
        // id (never made by the coordinator) would merge its keys.
        match self.held.get_mut(&tx) {
            Some(h) => {
                h.keys.extend(set.keys);
                if set.whole.is_some() {
                    h.whole = set.whole;
                }
            }
            None => {
                self.held.insert(tx, set);
            }
        }
    }

    fn unhold(&mut self, set: &LockSet) {
        match set.whole {
            Some(Mode::Exclusive) => self.whole_exclusive -= 1,
            Some(Mode::Shared) => self.whole_shared -= 1,
            None => {}
        }
        for (db, key, mode) in &set.keys {
            let Some(per_db) = self.counts.get_mut(&key[..]) else {
                continue;
            };
            if let Some(i) = per_db.iter().position(|(d, _)| d == db) {
                let c = &mut per_db[i].1;
                match mode {
                    Mode::Shared => c.shared -= 1,
                    Mode::Exclusive => {
                        c.exclusive -= 1;
                        self.exclusive_keys -= 1;
                    }
                }
                if c.shared == 0 && c.exclusive == 0 {
                    per_db.swap_remove(i);
                }
            }
            if per_db.is_empty() {
                self.counts.remove(&key[..]);
            }
        }
    }

    /// Grants `set` to `tx` if it can be at once; else leaves nothing
    /// behind (the optimistic first try of a multi-shard transaction).
    pub fn try_acquire(&mut self, tx: TxId, set: LockSet) -> bool {
        if self.grantable(&set) {
            self.hold(tx, set);
            true
        } else {
            false
        }
    }

    /// Grants `set` to `tx` at once if it can be, giving `waiter` back;
    /// else queues it with `waiter`, handed back by a later `release`.
    pub fn acquire(&mut self, tx: TxId, set: LockSet, waiter: W) -> Option<W> {
        if self.grantable(&set) {
            self.hold(tx, set);
            Some(waiter)
        } else {
            self.queue.push_back(Queued { tx, set, waiter });
            None
        }
    }

    /// Drops everything `tx` holds or waits for on this shard, then grants
    /// what the queue can now have, in order. Returns the granted waiters.
    pub fn release(&mut self, tx: TxId) -> Vec<(TxId, W)> {
        if let Some(set) = self.held.remove(&tx) {
            self.unhold(&set);
        }
        self.queue.retain(|q| q.tx != tx);
        let mut granted = Vec::new();
        // One pass in order: a request is granted when nothing held and
        // nothing still queued before it conflicts.
        let mut i = 0;
        while i < self.queue.len() {
            let blocked_by_earlier = self
                .queue
                .iter()
                .take(i)
                .any(|q| q.set.conflicts(&self.queue[i].set));
            if !blocked_by_earlier && self.free_of_holders(&self.queue[i].set) {
                let q = self.queue.remove(i).expect("index in range");
                self.hold(q.tx, q.set);
                granted.push((q.tx, q.waiter));
            } else {
                i += 1;
            }
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[(&str, bool)]) -> LockSet {
        let mut s = LockSet::default();
        for (k, w) in ks {
            s.add(0, k.as_bytes(), Mode::of(*w));
        }
        s
    }

    #[test]
    fn shared_locks_share_and_exclusive_ones_queue() {
        let mut t: LockTable<u32> = LockTable::default();
        assert!(t.is_idle());
        assert!(t.acquire(1, keys(&[("a", false)]), 0).is_some());
        assert!(t.acquire(2, keys(&[("a", false)]), 0).is_some());
        assert!(t.acquire(3, keys(&[("a", true)]), 30).is_none());
        // A newcomer that conflicts with the queued writer waits behind it.
        assert!(t.acquire(4, keys(&[("a", false)]), 40).is_none());
        assert!(t.release(1).is_empty());
        assert_eq!(t.release(2), vec![(3, 30)]);
        assert_eq!(t.release(3), vec![(4, 40)]);
        t.release(4);
        assert!(t.is_idle());
    }

    #[test]
    fn whole_shard_locks_exclude_keys() {
        let mut t: LockTable<u32> = LockTable::default();
        let mut whole = LockSet::default();
        whole.add_whole(Mode::Exclusive);
        assert!(t.acquire(1, keys(&[("a", false)]), 0).is_some());
        assert!(t.acquire(2, whole, 20).is_none());
        assert!(t.acquire(3, keys(&[("b", false)]), 30).is_none());
        assert_eq!(t.release(1), vec![(2, 20)]);
        assert_eq!(t.release(2), vec![(3, 30)]);
    }

    #[test]
    fn releasing_a_queued_request_forgets_it() {
        let mut t: LockTable<u32> = LockTable::default();
        assert!(t.acquire(1, keys(&[("a", true)]), 0).is_some());
        assert!(t.acquire(2, keys(&[("a", true)]), 20).is_none());
        assert!(t.release(2).is_empty());
        assert!(t.release(1).is_empty());
        assert!(t.is_idle());
    }

    /// A model check of the scheduling: random transactions over several
    /// shards take their locks shard by shard in ascending order (as
    /// `txn::acquire` does), run once they hold everything, then release;
    /// some give up half way (a client gone). In every one of many random
    /// interleavings: no two holders of a shard conflict, every
    /// transaction finishes (no deadlock, no starvation), and conflicting
    /// transactions are granted every shard they share in the same order
    /// as they ran (the schedule is serializable).
    #[test]
    fn random_interleavings_are_serializable_and_never_deadlock() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeMap;

        #[derive(Clone, Copy, PartialEq, Debug)]
        enum St {
            Asking,
            Waiting,
            Running,
            Done,
        }
        const SHARDS: usize = 4;
        for seed in 0..300u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let ntx = rng.random_range(2..24);
            let plans: Vec<BTreeMap<usize, LockSet>> = (0..ntx)
                .map(|_| {
                    let mut plan = BTreeMap::new();
                    for _ in 0..rng.random_range(1..=3) {
                        let shard = rng.random_range(0..SHARDS);
                        let set: &mut LockSet = plan.entry(shard).or_default();
                        if rng.random_ratio(1, 12) {
                            set.add_whole(Mode::of(rng.random_bool(0.5)));
                        } else {
                            let key = [b'k', rng.random_range(0..5u8)];
                            set.add(0, &key, Mode::of(rng.random_bool(0.5)));
                        }
                    }
                    plan
                })
                .collect();
            let order: Vec<Vec<usize>> =
                plans.iter().map(|p| p.keys().copied().collect()).collect();
            let mut tables: Vec<LockTable<usize>> =
                (0..SHARDS).map(|_| LockTable::default()).collect();
            let mut st = vec![St::Asking; ntx];
            let mut next = vec![0usize; ntx];
            let gives_up: Vec<bool> = (0..ntx).map(|_| rng.random_ratio(1, 10)).collect();
            // (shard, tx) -> when it was granted there; tx -> when it ran.
            let mut granted_at: HashMap<(usize, usize), u64> = HashMap::new();
            let mut ran_at: HashMap<usize, u64> = HashMap::new();
            let mut clock = 0u64;
            let grant = |tx: usize,
                         shard: usize,
                         st: &mut Vec<St>,
                         next: &mut Vec<usize>,
                         at: &mut HashMap<(usize, usize), u64>,
                         clock: u64| {
                at.insert((shard, tx), clock);
                next[tx] += 1;
                st[tx] = if next[tx] == order[tx].len() {
                    St::Running
                } else {
                    St::Asking
                };
            };
            loop {
                let live: Vec<usize> = (0..ntx)
                    .filter(|&t| matches!(st[t], St::Asking | St::Running))
                    .collect();
                if live.is_empty() {
                    assert!(
                        st.iter().all(|s| *s == St::Done),
                        "seed {seed}: deadlock: {st:?}"
                    );
                    break;
                }
                clock += 1;
                let t = live[rng.random_range(0..live.len())];
                let mut released = Vec::new();
                if st[t] == St::Asking && gives_up[t] && next[t] > 0 && rng.random_ratio(1, 3) {
                    // A client gone mid-way: everything it asked goes.
                    st[t] = St::Done;
                    released.extend(order[t].iter().take(next[t] + 1).copied());
                } else if st[t] == St::Asking {
                    let shard = order[t][next[t]];
                    match tables[shard].acquire(t as TxId, plans[t][&shard].clone(), t) {
                        Some(_) => grant(t, shard, &mut st, &mut next, &mut granted_at, clock),
                        None => st[t] = St::Waiting,
                    }
                } else {
                    // Holding every lock: it runs, then releases.
                    ran_at.insert(t, clock);
                    st[t] = St::Done;
                    released.extend(order[t].iter().copied());
                }
                for shard in released {
                    for (tx, w) in tables[shard].release(t as TxId) {
                        assert_eq!(tx as usize, w);
                        clock += 1;
                        grant(w, shard, &mut st, &mut next, &mut granted_at, clock);
                    }
                }
                // No two holders of a shard conflict.
                for shard in 0..SHARDS {
                    let holders: Vec<usize> = (0..ntx)
                        .filter(|&x| tables[shard].held.contains_key(&(x as TxId)))
                        .collect();
                    for (i, &a) in holders.iter().enumerate() {
                        for &b in &holders[i + 1..] {
                            assert!(
                                !plans[a][&shard].conflicts(&plans[b][&shard]),
                                "seed {seed}: {a} and {b} both hold shard {shard}"
                            );
                        }
                    }
                }
            }
            for table in &tables {
                assert!(table.is_idle(), "seed {seed}: locks left behind");
            }
            // Conflicting transactions that both ran were granted every
            // shared shard in the order they ran.
            for a in 0..ntx {
                for b in 0..ntx {
                    let (Some(ra), Some(rb)) = (ran_at.get(&a), ran_at.get(&b)) else {
                        continue;
                    };
                    if ra >= rb {
                        continue;
                    }
                    for (shard, set) in &plans[a] {
                        if let Some(other) = plans[b].get(shard) {
                            if set.conflicts(other) {
                                assert!(
                                    granted_at[&(*shard, a)] < granted_at[&(*shard, b)],
                                    "seed {seed}: {a} ran before {b} but was granted shard {shard} after it"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
