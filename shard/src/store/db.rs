//! One numbered database of one shard: a hash table per cluster slot.
//!
//! Why one table per slot: counting, listing, expiring or handing over a
//! slot (to another shard or node) then costs only that slot's keys, as in
//! Valkey 8's per-slot "kvstore". A shard keeps tables only for slots that
//! hold keys; an empty table allocates nothing.

use std::cell::Cell;

use hashbrown::HashTable;

use super::entry::{prefetch_line, Entry};
use super::snapshot::DbSnapshot;
use crate::evict::lfu::LfuParams;
use crate::slot::{key_slot, SLOTS};

/// The LRU clock: seconds, 24 bits, like Redis's `LRU_CLOCK()`.
#[inline]
pub fn lru_seconds(now_ms: i64) -> u32 {
    ((now_ms / 1000) as u32) & 0xFF_FFFF
}

thread_local! {
    /// Whether this shard's policy is an LFU one: new entries then start
    /// with an LFU counter instead of an LRU clock. Set by the shard's own
    /// thread when its policy changes (`Keyspace::set_access`).
    static STAMP_LFU: Cell<bool> = const { Cell::new(false) };
}

/// Makes this thread's new entries start with an LFU counter (or not).
pub fn set_stamp_lfu(on: bool) {
    STAMP_LFU.with(|c| c.set(on));
}

/// The 24 access bits of a new entry: the LRU clock, or under an LFU
/// policy the current minute with the initial counter (Redis's
/// `createObject`).
#[inline]
pub fn lru_clock(now_ms: i64) -> u32 {
    if STAMP_LFU.with(|c| c.get()) {
        crate::evict::lfu::initial(now_ms)
    } else {
        lru_seconds(now_ms)
    }
}

/// How reads update an entry's access bits: the LRU clock, or the LFU
/// counter (with the policy's parameters and a cheap random stream).
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub lfu: Option<LfuParams>,
    rng: u64,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            lfu: None,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl Access {
    /// Updates an entry's access bits for a read or write of it.
    #[inline(always)]
    fn touch(&mut self, e: &mut Entry, now: i64) {
        match self.lfu {
            None => e.set_lru(lru_seconds(now)),
            Some(p) => self.touch_lfu(e, now, p),
        }
    }

    #[inline(never)]
    fn touch_lfu(&mut self, e: &mut Entry, now: i64, p: LfuParams) {
        // xorshift64: the counter only needs a fair coin, not a good RNG.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        e.set_lru(crate::evict::lfu::touched(
            e.lru(),
            now,
            p,
            (x >> 32) as u32,
        ));
    }
}

#[derive(Default)]
pub struct SlotTable {
    table: HashTable<Entry>,
    /// Keys with an expiry in this slot (lets the active cycle skip slots).
    volatile: u32,
}

impl SlotTable {
    pub fn len(&self) -> usize {
        self.table.len()
    }
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter()
    }
}

pub struct Db {
    slots: Box<[SlotTable]>,
    keys: usize,
    volatile: usize,
    hasher: foldhash::fast::FixedState,
    /// Keys removed because they had expired (lazily or actively).
    pub expired_keys: u64,
    /// Names of the keys removed because they had expired, kept while
    /// keyspace notifications want `expired` events (None otherwise).
    pub expired_log: Option<Vec<Box<[u8]>>>,
    /// The snapshot in progress (BGSAVE), if any: see `snapshot.rs`.
    snap: Option<Box<DbSnapshot>>,
    /// How accesses update entries (LRU clock or LFU counter).
    pub access: Access,
}

/// Notes an expired key's name in the log, when one is kept.
#[inline]
fn log_expired(log: &mut Option<Vec<Box<[u8]>>>, key: &[u8]) {
    if let Some(l) = log {
        l.push(key.into());
    }
}

impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Db {
    pub fn new() -> Db {
        let mut slots = Vec::with_capacity(SLOTS);
        slots.resize_with(SLOTS, SlotTable::default);
        Db {
            slots: slots.into_boxed_slice(),
            keys: 0,
            volatile: 0,
            hasher: foldhash::fast::FixedState::with_seed(rand::random()),
            expired_keys: 0,
            expired_log: None,
            snap: None,
            access: Access::default(),
        }
    }

    /// Sets how accesses update entries; on the shard's own thread, so new
    /// entries (`lru_clock`) follow too.
    pub fn set_access(&mut self, lfu: Option<LfuParams>) {
        self.access.lfu = lfu;
        set_stamp_lfu(lfu.is_some());
    }

    /// The snapshot hook, before anything that may change or remove `key`:
    /// one branch while no snapshot runs.
    #[inline(always)]
    fn before_write(&mut self, key: &[u8]) {
        if self.snap.is_some() {
            self.snap_before_write(key);
        }
    }

    #[cold]
    #[inline(never)]
    fn snap_before_write(&mut self, key: &[u8]) {
        let Some(snap) = self.snap.as_deref_mut() else {
            return;
        };
        let slot = key_slot(key);
        if !snap.claim(slot, key) {
            return;
        }
        let h = Self::hash(&self.hasher, key);
        if let Some(e) = self.slots[slot as usize].table.find(h, |e| e.key() == key) {
            snap.write(e);
        }
    }

    /// Starts a snapshot of this database (as index `db_index`).
    pub fn snapshot_start(&mut self, db_index: usize, compress: bool) {
        self.snap = Some(Box::new(DbSnapshot::new(db_index, compress)));
    }

    /// Whether a snapshot of this database is in progress.
    pub fn snapshot_running(&self) -> bool {
        self.snap.is_some()
    }

    /// Walks slots until about `budget` entries were encoded; true when
    /// every slot is done.
    pub fn snapshot_step(&mut self, budget: usize) -> bool {
        let Some(snap) = self.snap.as_deref_mut() else {
            return true;
        };
        let mut done = 0;
        while snap.next_slot < SLOTS && done < budget {
            let slot = snap.next_slot;
            let early = snap.early.remove(&(slot as u16));
            if let Some(e) = &early {
                snap.early_bytes = snap
                    .early_bytes
                    .saturating_sub(e.iter().map(|k| k.len() + 32).sum());
            }
            for e in self.slots[slot].table.iter() {
                if early.as_ref().is_some_and(|s| s.contains(e.key())) {
                    continue;
                }
                snap.write(e);
                done += 1;
            }
            snap.next_slot += 1;
        }
        snap.next_slot >= SLOTS
    }

    /// The snapshot's encoded records so far (the caller writes them out).
    pub fn snapshot_output(&mut self) -> Option<(usize, &mut Vec<u8>)> {
        self.snap.as_deref_mut().map(|s| (s.db_index, &mut s.out))
    }

    /// Extra memory the snapshot holds.
    pub fn snapshot_extra_bytes(&self) -> usize {
        self.snap.as_ref().map_or(0, |s| s.extra_bytes())
    }

    /// Ends the snapshot: (its database index, keys, keys with an expiry).
    pub fn snapshot_end(&mut self) -> Option<(usize, u64, u64)> {
        self.snap.take().map(|s| (s.db_index, s.keys, s.expires))
    }

    #[inline]
    fn hash(hasher: &foldhash::fast::FixedState, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        hasher.hash_one(key)
    }

    /// Number of live-or-not-yet-reclaimed keys.
    pub fn len(&self) -> usize {
        self.keys
    }
    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }
    pub fn volatile_len(&self) -> usize {
        self.volatile
    }
    pub fn slot_len(&self, slot: u16) -> usize {
        self.slots[slot as usize].len()
    }
    pub fn slot(&self, slot: u16) -> &SlotTable {
        &self.slots[slot as usize]
    }

    /// Batch prefetch, first step: starts loading the slot table header of
    /// `key` and returns what the second step needs. A connection runs the
    /// first step over every request of a pipelined batch, then the second,
    /// so the cache misses of the whole batch overlap instead of being paid
    /// one after another (the idea of Valkey 8's batch key prefetching).
    #[inline]
    pub fn prefetch_slot(&self, key: &[u8]) -> (u64, u16) {
        let h = Self::hash(&self.hasher, key);
        let slot = key_slot(key);
        prefetch_line(&self.slots[slot as usize] as *const SlotTable as *const u8);
        (h, slot)
    }

    /// Batch prefetch, second step: probes the slot's table (its control
    /// bytes and buckets, now the only misses) and starts loading every
    /// candidate's block without waiting for it; candidates are rejected
    /// unread, so the probe ends at the first empty group.
    #[inline]
    pub fn prefetch_entry(&self, (h, slot): (u64, u16)) {
        let st = &self.slots[slot as usize];
        if st.table.is_empty() {
            // A slot this shard does not own (or an empty one): nothing.
            return;
        }
        let _ = st.table.find(h, |e| {
            e.prefetch();
            false
        });
    }

    /// Looks a key up, removing it instead if it has expired (lazy expiry),
    /// and refreshes its LRU clock.
    #[inline]
    pub fn get(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.before_write(key);
        let h = Self::hash(&self.hasher, key);
        let st = &mut self.slots[key_slot(key) as usize];
        match st.table.find_entry(h, |e| e.key() == key) {
            Ok(occ) => {
                if occ.get().is_expired(now) {
                    occ.remove();
                    st.volatile -= 1;
                    self.volatile -= 1;
                    self.keys -= 1;
                    self.expired_keys += 1;
                    log_expired(&mut self.expired_log, key);
                    None
                } else {
                    let e = occ.into_mut();
                    self.access.touch(e, now);
                    Some(e)
                }
            }
            Err(_) => None,
        }
    }

    /// Like `get`, without touching the LRU clock (OBJECT IDLETIME, TTL...).
    pub fn get_quiet(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.before_write(key);
        let h = Self::hash(&self.hasher, key);
        let st = &mut self.slots[key_slot(key) as usize];
        match st.table.find_entry(h, |e| e.key() == key) {
            Ok(occ) => {
                if occ.get().is_expired(now) {
                    occ.remove();
                    st.volatile -= 1;
                    self.volatile -= 1;
                    self.keys -= 1;
                    self.expired_keys += 1;
                    log_expired(&mut self.expired_log, key);
                    None
                } else {
                    Some(occ.into_mut())
                }
            }
            Err(_) => None,
        }
    }

    /// A live key's entry, with no side effect at all (no lazy expiry, no
    /// LRU): for commands that read several keys at once (SINTER, SORT BY)
    /// after a first pass of `get` on each.
    pub fn peek(&self, key: &[u8], now: i64) -> Option<&Entry> {
        let h = Self::hash(&self.hasher, key);
        self.slots[key_slot(key) as usize]
            .table
            .find(h, |e| e.key() == key)
            .filter(|e| !e.is_expired(now))
    }

    /// True when the key exists and has not expired.
    pub fn contains(&mut self, key: &[u8], now: i64) -> bool {
        self.get_quiet(key, now).is_some()
    }

    /// Inserts an entry, replacing any entry under the same key; returns the
    /// replaced one if it was still live.
    pub fn insert(&mut self, entry: Entry, now: i64) -> Option<Entry> {
        self.before_write(entry.key());
        let key = entry.key();
        let h = Self::hash(&self.hasher, key);
        let slot = key_slot(key) as usize;
        let new_volatile = entry.expire_at().is_some() as u32;
        let hasher = &self.hasher;
        let st = &mut self.slots[slot];
        match st.table.entry(
            h,
            |e| e.key() == entry.key(),
            |e| Self::hash(hasher, e.key()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut occ) => {
                let old = std::mem::replace(occ.get_mut(), entry);
                let old_volatile = old.expire_at().is_some() as u32;
                st.volatile = st.volatile + new_volatile - old_volatile;
                self.volatile = self.volatile + new_volatile as usize - old_volatile as usize;
                if old.is_expired(now) {
                    self.expired_keys += 1;
                    log_expired(&mut self.expired_log, old.key());
                    None
                } else {
                    Some(old)
                }
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(entry);
                st.volatile += new_volatile;
                self.volatile += new_volatile as usize;
                self.keys += 1;
                None
            }
        }
    }

    /// SET's fast path: writes a string value, reusing the existing entry
    /// when there is one. `expire`: None keeps no TTL unless `keep_ttl`.
    /// Returns true if the key existed (and was live) before.
    pub fn set_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire: Option<i64>,
        keep_ttl: bool,
        now: i64,
    ) -> bool {
        self.before_write(key);
        // One probe for find-or-insert: SET is the hottest write, and each
        // probe of a cold slot table costs cache misses.
        let h = Self::hash(&self.hasher, key);
        let hasher = &self.hasher;
        let st = &mut self.slots[key_slot(key) as usize];
        match st
            .table
            .entry(h, |e| e.key() == key, |e| Self::hash(hasher, e.key()))
        {
            hashbrown::hash_table::Entry::Occupied(mut occ) => {
                let e = occ.get_mut();
                // An expired entry counts as absent: it is replaced whole and
                // its TTL is not kept.
                let live = !e.is_expired(now);
                if !live {
                    self.expired_keys += 1;
                    log_expired(&mut self.expired_log, key);
                }
                let old_exp = e.expire_at();
                let new_exp = if keep_ttl && live { old_exp } else { expire };
                if e.is_string() && old_exp.is_some() == new_exp.is_some() {
                    e.set_string(value, false);
                    e.set_expire(new_exp);
                    self.access.touch(e, now);
                } else {
                    let bits = e.lru();
                    *e = Entry::new_string(key, value, new_exp, bits);
                    self.access.touch(e, now);
                }
                let (was, is) = (old_exp.is_some() as u32, new_exp.is_some() as u32);
                st.volatile = st.volatile + is - was;
                self.volatile = self.volatile + is as usize - was as usize;
                live
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                let is = expire.is_some() as u32;
                v.insert(Entry::new_string(key, value, expire, lru_clock(now)));
                st.volatile += is;
                self.volatile += is as usize;
                self.keys += 1;
                false
            }
        }
    }

    /// Removes a key; an expired key counts as absent (but is reclaimed).
    pub fn remove(&mut self, key: &[u8], now: i64) -> Option<Entry> {
        self.before_write(key);
        let h = Self::hash(&self.hasher, key);
        let st = &mut self.slots[key_slot(key) as usize];
        match st.table.find_entry(h, |e| e.key() == key) {
            Ok(occ) => {
                let (e, _) = occ.remove();
                self.keys -= 1;
                if e.expire_at().is_some() {
                    st.volatile -= 1;
                    self.volatile -= 1;
                }
                if e.is_expired(now) {
                    self.expired_keys += 1;
                    log_expired(&mut self.expired_log, key);
                    None
                } else {
                    Some(e)
                }
            }
            Err(_) => None,
        }
    }

    /// Sets or clears a live key's expiry. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire: Option<i64>, now: i64) -> bool {
        let slot = key_slot(key) as usize;
        let Some(e) = self.get_quiet(key, now) else {
            return false;
        };
        let was = e.expire_at().is_some();
        e.set_expire(expire);
        let is = expire.is_some();
        if was != is {
            let st = &mut self.slots[slot];
            if is {
                st.volatile += 1;
                self.volatile += 1;
            } else {
                st.volatile -= 1;
                self.volatile -= 1;
            }
        }
        true
    }

    /// Drops every key. Returns the tables, so a caller that wants to free
    /// a huge keyspace without stalling (FLUSHALL ASYNC) can drop them in
    /// slices; dropping the returned value frees everything at once.
    pub fn take_all(&mut self) -> Vec<SlotTable> {
        // A snapshot in progress first writes everything it has not yet.
        if self.snap.is_some() {
            self.snapshot_step(usize::MAX);
        }
        let mut out = Vec::new();
        for st in self.slots.iter_mut() {
            if !st.is_empty() {
                out.push(std::mem::take(st));
            }
        }
        self.keys = 0;
        self.volatile = 0;
        out
    }

    /// Active expiry over the slots from `cursor` on: reclaims expired keys
    /// of volatile slots until `max_checks` entries were examined. Returns
    /// (next cursor, entries checked, keys reclaimed).
    pub fn expire_step(
        &mut self,
        cursor: usize,
        now: i64,
        max_checks: usize,
    ) -> (usize, usize, usize) {
        let mut checked = 0;
        let mut reclaimed = 0;
        let mut slot = cursor % SLOTS;
        let mut visited = 0;
        while visited < SLOTS && checked < max_checks {
            if st_needs_snap(&self.snap, slot) && self.slots[slot].volatile > 0 {
                // Keys about to be reclaimed are written first if the
                // snapshot has not reached them.
                if let Some(snap) = self.snap.as_deref_mut() {
                    for e in self.slots[slot].table.iter() {
                        if e.is_expired(now) && snap.claim(slot as u16, e.key()) {
                            snap.write(e);
                        }
                    }
                }
            }
            let st = &mut self.slots[slot];
            if st.volatile > 0 {
                let before = st.table.len();
                checked += before;
                let mut gone_volatile = 0;
                let log = &mut self.expired_log;
                st.table.retain(|e| {
                    if e.is_expired(now) {
                        gone_volatile += 1;
                        log_expired(log, e.key());
                        false
                    } else {
                        true
                    }
                });
                st.volatile -= gone_volatile;
                self.volatile -= gone_volatile as usize;
                let removed = before - st.table.len();
                self.keys -= removed;
                reclaimed += removed;
            }
            slot = (slot + 1) % SLOTS;
            visited += 1;
        }
        self.expired_keys += reclaimed as u64;
        (slot, checked, reclaimed)
    }

    /// Keys with an expiry in `slot`.
    pub fn slot_volatile(&self, slot: u16) -> u32 {
        self.slots[slot as usize].volatile
    }

    /// Calls `f` on up to `n` entries of `slot` (only those with a TTL when
    /// `volatile_only`), from position `skip` on, wrapping: the eviction
    /// pool's sample. Entries sit in hash order, so consecutive ones are as
    /// good as random ones, and cost one scan of the table's control bytes.
    pub fn sample_slot(
        &self,
        slot: u16,
        skip: usize,
        n: usize,
        volatile_only: bool,
        mut f: impl FnMut(&Entry),
    ) {
        let t = &self.slots[slot as usize].table;
        let len = t.len();
        if len == 0 {
            return;
        }
        let start = skip % len;
        t.iter()
            .skip(start)
            .chain(t.iter().take(start))
            .filter(|e| !volatile_only || e.expire_at().is_some())
            .take(n)
            .for_each(&mut f);
    }

    /// A random live key among the given slots (weighted by slot size).
    pub fn random_key(
        &mut self,
        owned: &[u16],
        now: i64,
        rng: &mut impl rand::Rng,
    ) -> Option<Vec<u8>> {
        // A few tries: expired keys met on the way are reclaimed and skipped.
        for _ in 0..16 {
            let total: usize = owned.iter().map(|&s| self.slots[s as usize].len()).sum();
            if total == 0 {
                return None;
            }
            let mut pick = rng.random_range(0..total);
            let mut found = None;
            for &s in owned {
                let n = self.slots[s as usize].len();
                if pick < n {
                    found = self.slots[s as usize]
                        .iter()
                        .nth(pick)
                        .map(|e| e.key().to_vec());
                    break;
                }
                pick -= n;
            }
            let key = found?;
            if self.contains(&key, now) {
                return Some(key);
            }
        }
        None
    }
}

/// Whether a snapshot runs and has not yet walked `slot`.
#[inline]
fn st_needs_snap(snap: &Option<Box<DbSnapshot>>, slot: usize) -> bool {
    snap.as_ref().is_some_and(|s| slot >= s.next_slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let mut db = Db::new();
        assert!(!db.set_string(b"a", b"1", None, false, 0));
        assert!(db.set_string(b"a", b"2", None, false, 0));
        assert_eq!(db.get(b"a", 0).unwrap().as_str(), Some(&b"2"[..]));
        assert_eq!(db.len(), 1);
        assert!(db.remove(b"a", 0).is_some());
        assert!(db.get(b"a", 0).is_none());
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn lazy_expiry_counts() {
        let mut db = Db::new();
        db.set_string(b"a", b"1", Some(100), false, 0);
        assert_eq!(db.volatile_len(), 1);
        assert!(db.get(b"a", 99).is_some());
        assert!(db.get(b"a", 100).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.volatile_len(), 0);
        assert_eq!(db.expired_keys, 1);
    }

    #[test]
    fn keep_ttl_and_overwrite() {
        let mut db = Db::new();
        db.set_string(b"a", b"1", Some(100), false, 0);
        db.set_string(b"a", b"2", None, true, 0);
        assert_eq!(db.get(b"a", 0).unwrap().expire_at(), Some(100));
        db.set_string(b"a", b"3", None, false, 0);
        assert_eq!(db.get(b"a", 0).unwrap().expire_at(), None);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn active_expiry_reclaims_everything_expired() {
        let mut db = Db::new();
        for i in 0..1000 {
            let k = format!("k{i}");
            db.set_string(
                k.as_bytes(),
                b"v",
                if i % 2 == 0 { Some(10) } else { None },
                false,
                0,
            );
        }
        assert_eq!(db.volatile_len(), 500);
        let mut cursor = 0;
        let mut total = 0;
        for _ in 0..100 {
            let (c, _, r) = db.expire_step(cursor, 10, 200);
            cursor = c;
            total += r;
        }
        assert_eq!(total, 500);
        assert_eq!(db.len(), 500);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn set_expire_tracks_volatile() {
        let mut db = Db::new();
        db.set_string(b"a", b"1", None, false, 0);
        assert!(db.set_expire(b"a", Some(50), 0));
        assert_eq!(db.volatile_len(), 1);
        assert!(db.set_expire(b"a", None, 0));
        assert_eq!(db.volatile_len(), 0);
        assert!(!db.set_expire(b"zz", None, 0));
    }
}
