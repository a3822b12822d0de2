//! Memory limit and eviction (`maxmemory`, `maxmemory-policy`).
//!
//! The budget is the node's, not each shard's: every shard publishes its
//! own usage in `NodeMemory` (one atomic per shard, written when it moved
//! by more than `PUBLISH_STEP` and on every periodic tick, so readers pay
//! no contended cache line per request), and the node's usage is the sum.
//! A shard about to run a command that may grow memory (flagged denyoom)
//! evicts its own keys while the node is over the limit, within Redis's
//! `maxmemory-eviction-tenacity` time limit, and the periodic work of every
//! shard does the same in bounded steps. Each evicts its share of the
//! excess: proportional to the keys it may evict (published beside the
//! usage), so all shards evict their own keys at the same rate, as one
//! node-wide pool would. So a shard holding the hot data may use more than 1/N of
//! the budget, and a shard that receives no writes still gives its share
//! back when the limit is lowered.

pub mod lfu;
pub mod policy;
pub mod pool;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::ShardState;
use crate::store::{lru_seconds, Entry};
use lfu::LfuParams;
pub use policy::Policy;
use pool::Pool;

/// Redis's reply to a denyoom command when memory cannot be freed.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// A shard republishes its usage when it moved by more than this.
const PUBLISH_STEP: isize = 16 * 1024;

/// One cache line per shard, so publishing never disturbs a neighbour.
#[repr(align(64))]
#[derive(Default)]
struct Slot {
    used: AtomicI64,
    /// Keys the policy may evict there.
    evictable: AtomicI64,
}

/// The usage (bytes above its startup usage) and evictable keys each
/// shard last published.
pub struct NodeMemory {
    shards: Box<[Slot]>,
}

impl NodeMemory {
    pub fn new(shards: usize) -> NodeMemory {
        NodeMemory {
            shards: (0..shards).map(|_| Slot::default()).collect(),
        }
    }

    fn publish(&self, shard: usize, used: isize) {
        if let Some(s) = self.shards.get(shard) {
            s.used.store(used as i64, Ordering::Relaxed);
        }
    }

    fn publish_evictable(&self, shard: usize, keys: usize) {
        if let Some(s) = self.shards.get(shard) {
            s.evictable.store(keys as i64, Ordering::Relaxed);
        }
    }

    /// The sum of what every shard published.
    pub fn total(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.used.load(Ordering::Relaxed))
            .sum()
    }

    /// Evictable keys on every shard.
    fn evictable(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.evictable.load(Ordering::Relaxed))
            .sum()
    }
}

fn no_usage() -> isize {
    0
}

/// One shard's side of the memory limit.
pub struct Evictor {
    /// `maxmemory` in bytes (0: no limit).
    pub maxmemory: u64,
    pub policy: Policy,
    /// `maxmemory-samples`: keys sampled per database per eviction.
    pub samples: usize,
    /// `maxmemory-eviction-tenacity`.
    pub tenacity: u32,
    pub lfu: LfuParams,
    /// Every shard's published usage (None: this shard is the node).
    pub node: Option<Arc<NodeMemory>>,
    /// This shard's allocated bytes (the server's counting allocator).
    pub usage: fn() -> isize,
    /// What the shard had allocated when it started serving (rings,
    /// buffers): not counted against `maxmemory`.
    pub baseline: isize,
    published: isize,
    pool: Pool,
    /// Keys evicted (INFO's evicted_keys).
    pub evicted_keys: u64,
    /// Time spent evicting, in microseconds (INFO's total_eviction_exceeded_time).
    pub evicting_us: u64,
}

impl Default for Evictor {
    fn default() -> Self {
        Evictor {
            maxmemory: 0,
            policy: Policy::NoEviction,
            samples: 5,
            tenacity: 10,
            lfu: LfuParams::default(),
            node: None,
            usage: no_usage,
            baseline: 0,
            published: 0,
            pool: Pool::default(),
            evicted_keys: 0,
            evicting_us: 0,
        }
    }
}

/// Redis's `evictionTimeLimitUs`: how long one attempt to make room may
/// run before the rest is left to the periodic work (None: no limit).
pub fn time_limit(tenacity: u32) -> Option<Duration> {
    if tenacity <= 10 {
        Some(Duration::from_micros(50 * tenacity as u64))
    } else if tenacity < 100 {
        Some(Duration::from_micros(
            (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64,
        ))
    } else {
        None
    }
}

/// How an attempt to free memory ended.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Outcome {
    /// Under the limit.
    Ok,
    /// Stopped at the time limit, still over: the periodic work goes on.
    Running,
    /// Nothing more can be evicted.
    Fail,
}

impl Evictor {
    /// This shard's usage counted against `maxmemory`.
    pub fn own_used(&self) -> isize {
        (self.usage)() - self.baseline
    }

    /// The node's usage counted against `maxmemory`; republishes this
    /// shard's figure when it moved (or always, with `force`).
    pub fn node_used(&mut self, shard: usize, force: bool) -> u64 {
        let own = self.own_used();
        let Some(node) = &self.node else {
            return own.max(0) as u64;
        };
        if force || (own - self.published).abs() > PUBLISH_STEP {
            node.publish(shard, own);
            self.published = own;
        }
        (node.total() - self.published as i64 + own as i64).max(0) as u64
    }

    /// A key's eviction score under the current policy (higher: evict first).
    fn score(&self, e: &Entry, now: i64) -> u64 {
        match self.policy {
            Policy::AllkeysLfu | Policy::VolatileLfu => {
                255 - lfu::decayed(e.lru(), now, self.lfu) as u64
            }
            Policy::VolatileTtl => u64::MAX - e.expire_at().unwrap_or(i64::MAX).max(0) as u64,
            _ => crate::command::keys::idle_seconds(lru_seconds(now), e.lru()) as u64,
        }
    }
}

impl ShardState {
    /// Applies the memory settings of the shard's configuration.
    pub(crate) fn apply_evict(&mut self) {
        let c = &self.config;
        let policy = c.maxmemory_policy;
        if policy != self.evict.policy {
            self.evict.pool.clear();
        }
        self.evict.maxmemory = c.maxmemory;
        self.evict.policy = policy;
        self.evict.samples = c.maxmemory_samples.max(1);
        self.evict.tenacity = c.maxmemory_eviction_tenacity;
        self.evict.lfu = c.lfu;
        self.keyspace.set_access(policy.is_lfu().then_some(c.lfu));
    }

    /// Before a command that may grow memory (denyoom): frees memory while
    /// the node is over `maxmemory` (Redis's `performEvictions`). False when
    /// the command must be refused with `OOM`.
    #[inline]
    pub fn make_room(&mut self, now: i64) -> bool {
        if self.evict.maxmemory == 0 {
            return true;
        }
        self.make_room_slow(now)
    }

    #[cold]
    fn make_room_slow(&mut self, now: i64) -> bool {
        let used = self.evict.node_used(self.id, false);
        if used <= self.evict.maxmemory {
            return true;
        }
        if self.evict.policy == Policy::NoEviction {
            return false;
        }
        let need = self.share(used - self.evict.maxmemory);
        let limit = time_limit(self.evict.tenacity);
        let outcome = if need == 0 {
            Outcome::Fail
        } else {
            self.evict_bytes(need, now, limit)
        };
        match outcome {
            Outcome::Fail => {
                // Nothing to evict here: the write may go on while other
                // shards hold evictable keys (their periodic work frees
                // them), as long as the node is not far over the limit.
                let others = self.evict.node.as_ref().map_or(0, |n| n.evictable())
                    - self.evictable_keys() as i64;
                others > 0 && used - self.evict.maxmemory < self.evict.maxmemory / 8
            }
            _ => true,
        }
    }

    /// Keys the policy may evict on this shard.
    fn evictable_keys(&self) -> usize {
        let vol = self.evict.policy.volatile_only();
        self.keyspace
            .dbs()
            .map(|(_, d)| if vol { d.volatile_len() } else { d.len() })
            .sum()
    }

    /// This shard's part of the node's `excess` bytes: proportional to the
    /// keys it may evict (not to its memory, which also holds buffers
    /// and what other shards' threads allocated), so every shard evicts
    /// its own keys at the same rate, as one node-wide pool would.
    fn share(&mut self, excess: u64) -> u64 {
        let mine = self.evictable_keys();
        let Some(node) = &self.evict.node else {
            return if mine == 0 { 0 } else { excess };
        };
        node.publish_evictable(self.id, mine);
        if mine == 0 {
            return 0;
        }
        let all = node.evictable().max(1) as u128;
        ((excess as u128 * mine as u128).div_ceil(all) as u64).max(1)
    }

    /// The periodic work's step: while the node is over the limit, evicts
    /// this shard's share of the excess (`share`) for at most `budget`. True while the node is still over the limit.
    pub fn evict_tick(&mut self, now: i64, budget: Duration) -> bool {
        // Published on every tick, limit or not, so that when a limit is
        // set every shard's figures are already there to share the work.
        let used = self.evict.node_used(self.id, true);
        if let Some(node) = &self.evict.node {
            node.publish_evictable(self.id, self.evictable_keys());
        }
        if self.evict.maxmemory == 0 {
            return false;
        }
        if used <= self.evict.maxmemory || self.evict.policy == Policy::NoEviction {
            return false;
        }
        let share = self.share(used - self.evict.maxmemory);
        if share > 0 {
            self.evict_bytes(share, now, Some(budget));
        }
        self.evict.node_used(self.id, true) > self.evict.maxmemory
    }

    /// Evicts keys until `need` bytes were freed on this shard, nothing is
    /// left to evict, or `limit` passed (checked every 16 keys, as Redis).
    fn evict_bytes(&mut self, need: u64, now: i64, limit: Option<Duration>) -> Outcome {
        let start = Instant::now();
        let before = self.evict.own_used();
        let mut keys = 0u64;
        let outcome = loop {
            if (before - self.evict.own_used()).max(0) as u64 >= need {
                break Outcome::Ok;
            }
            if !self.evict_one(now) {
                break Outcome::Fail;
            }
            keys += 1;
            if keys.is_multiple_of(16) && limit.is_some_and(|l| start.elapsed() > l) {
                break Outcome::Running;
            }
        };
        self.evict.evicting_us += start.elapsed().as_micros() as u64;
        // Flush the published figure so the next check sees what was freed.
        if keys > 0 {
            self.evict.node_used(self.id, true);
        }
        outcome
    }

    /// Evicts the best victim under the policy; false when there is none.
    fn evict_one(&mut self, now: i64) -> bool {
        let Some((db, key)) = self.pick_victim(now) else {
            return false;
        };
        let Some(e) = self.keyspace.db(db).remove(&key, now) else {
            return true;
        };
        // Freed at once (not lazily): what is freed must show in the usage.
        drop(e);
        self.evict.evicted_keys += 1;
        self.changes.key(db, &key, "evicted");
        let flags = self.changes.notify;
        if flags != 0 {
            crate::notify::push_event(
                &mut self.changes.notices,
                flags,
                db,
                &key,
                "evicted",
                crate::notify::class::EVICTED,
            );
        }
        true
    }

    /// The key to evict: a random one, or the best of the pool after
    /// sampling every database.
    fn pick_victim(&mut self, now: i64) -> Option<(usize, Box<[u8]>)> {
        let policy = self.evict.policy;
        let volatile = policy.volatile_only();
        if policy == Policy::NoEviction || self.owned_slots.is_empty() {
            return None;
        }
        let ndb = self.keyspace.databases();
        if policy.is_random() {
            let first = self.rng_index(ndb);
            for i in 0..ndb {
                let db = (first + i) % ndb;
                let (skip, start) = self.rng_pair();
                if let Some(k) = sample(self, db, 1, volatile, now, skip, start, |_, _| 0).pop() {
                    return Some((db, k.1));
                }
            }
            return None;
        }
        let n = self.evict.samples;
        for db in 0..ndb {
            let (skip, start) = self.rng_pair();
            let sampled = sample(self, db, n, volatile, now, skip, start, |e, now| {
                self.evict.score(e, now)
            });
            for (score, key) in sampled {
                self.evict.pool.offer(score, db, &key);
            }
        }
        while let Some(c) = self.evict.pool.pop_best() {
            let live = self.keyspace.get(c.db).and_then(|d| d.peek(&c.key, now));
            if live.is_some_and(|e| !volatile || e.expire_at().is_some()) {
                return Some((c.db, c.key));
            }
        }
        None
    }

    fn rng_index(&mut self, n: usize) -> usize {
        use rand::Rng;
        self.rng.random_range(0..n.max(1))
    }

    /// Where a sample starts: (position in the slot, owned slot index).
    fn rng_pair(&mut self) -> (usize, usize) {
        use rand::Rng;
        (
            self.rng.random::<u32>() as usize,
            self.rng.random::<u32>() as usize,
        )
    }
}

/// Up to `n` live keys of `db` with their scores: from the first owned slot
/// holding candidates at or after a random one, the keys from a random
/// position in that slot on.
#[allow(clippy::too_many_arguments)]
fn sample(
    st: &ShardState,
    db: usize,
    n: usize,
    volatile: bool,
    now: i64,
    skip: usize,
    start: usize,
    score: impl Fn(&Entry, i64) -> u64,
) -> Vec<(u64, Box<[u8]>)> {
    let mut out = Vec::with_capacity(n);
    let Some(d) = st.keyspace.get(db) else {
        return out;
    };
    if d.is_empty() || (volatile && d.volatile_len() == 0) {
        return out;
    }
    let owned = &st.owned_slots;
    let first = start % owned.len();
    for i in 0..owned.len() {
        let slot = owned[(first + i) % owned.len()];
        let has = if volatile {
            d.slot_volatile(slot) > 0
        } else {
            d.slot_len(slot) > 0
        };
        if !has {
            continue;
        }
        d.sample_slot(slot, skip, n - out.len(), volatile, |e| {
            if !e.is_expired(now) {
                out.push((score(e, now), e.key().into()));
            }
        });
        if out.len() >= n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ShardConfig;

    fn shard(policy: Policy) -> ShardState {
        let config = ShardConfig {
            maxmemory_policy: policy,
            maxmemory_samples: 10,
            ..Default::default()
        };
        ShardState::new(0, config, (0..crate::slot::SLOTS as u16).collect())
    }

    /// Evicts `n` keys and returns how many had names starting with `prefix`.
    fn evict_n(st: &mut ShardState, n: usize, prefix: &str, now: i64) -> usize {
        let mut hits = 0;
        for _ in 0..n {
            let (db, key) = st.pick_victim(now).expect("a victim");
            hits += key.starts_with(prefix.as_bytes()) as usize;
            assert!(st.keyspace.db(db).remove(&key, now).is_some());
        }
        hits
    }

    #[test]
    fn volatile_ttl_takes_the_nearest_expiry() {
        let mut st = shard(Policy::VolatileTtl);
        let now = 1_000_000;
        for i in 0..2000 {
            let db = st.keyspace.db(0);
            db.set_string(
                format!("soon{i}").as_bytes(),
                b"v",
                Some(now + 10_000 + i),
                false,
                now,
            );
            db.set_string(
                format!("late{i}").as_bytes(),
                b"v",
                Some(now + 9_000_000 + i),
                false,
                now,
            );
            db.set_string(format!("keep{i}").as_bytes(), b"v", None, false, now);
        }
        let soon = evict_n(&mut st, 500, "soon", now);
        assert!(soon >= 495, "{soon}");
        assert_eq!(st.keyspace.db(0).len(), 5500);
    }

    #[test]
    fn lru_takes_idle_keys_and_volatile_only_keys_with_ttl() {
        let mut st = shard(Policy::VolatileLru);
        let t0 = 1_000_000;
        for i in 0..2000 {
            let db = st.keyspace.db(0);
            db.set_string(
                format!("old{i}").as_bytes(),
                b"v",
                Some(t0 + 1_000_000),
                false,
                t0,
            );
            db.set_string(format!("keep{i}").as_bytes(), b"v", None, false, t0);
        }
        let t1 = t0 + 100_000;
        for i in 0..2000 {
            st.keyspace.db(0).set_string(
                format!("new{i}").as_bytes(),
                b"v",
                Some(t1 + 1_000_000),
                false,
                t1,
            );
        }
        let old = evict_n(&mut st, 1000, "old", t1);
        assert!(old >= 990, "{old}");
        // Only keys with a TTL go, until none is left.
        evict_n(&mut st, 3000, "", t1);
        assert!(st.pick_victim(t1).is_none());
        assert_eq!(st.keyspace.db(0).len(), 2000);
    }

    #[test]
    fn lfu_takes_rarely_used_keys() {
        let mut st = shard(Policy::AllkeysLfu);
        let now = 1_000_000;
        for i in 0..2000 {
            let db = st.keyspace.db(0);
            db.set_string(format!("cold{i}").as_bytes(), b"v", None, false, now);
            db.set_string(format!("hot{i}").as_bytes(), b"v", None, false, now);
            for _ in 0..20 {
                db.get(format!("hot{i}").as_bytes(), now);
            }
        }
        let cold = evict_n(&mut st, 1000, "cold", now);
        assert!(cold >= 990, "{cold}");
    }

    #[test]
    fn time_limits_follow_tenacity() {
        assert_eq!(time_limit(0), Some(Duration::ZERO));
        assert_eq!(time_limit(10), Some(Duration::from_micros(500)));
        assert_eq!(time_limit(11), Some(Duration::from_micros(575)));
        assert_eq!(time_limit(100), None);
    }
}

#[cfg(test)]
mod shard_range_tests {
    use super::*;
    use crate::command::ShardConfig;
    use crate::slot::key_slot;

    #[test]
    fn lfu_on_a_quarter_of_the_slots() {
        let config = ShardConfig {
            maxmemory_policy: Policy::AllkeysLfu,
            maxmemory_samples: 10,
            ..Default::default()
        };
        let mut st = ShardState::new(0, config, (0..4096u16).collect());
        let now = 1_764_000_000_000;
        let mine = |p: &str, n: usize| -> Vec<String> {
            (0..n * 8)
                .map(|i| format!("{p}:{i}"))
                .filter(|k| key_slot(k.as_bytes()) < 4096)
                .take(n)
                .collect()
        };
        let cold = mine("cold", 750);
        let hot = mine("hot", 125);
        for k in &cold {
            st.keyspace
                .db(0)
                .set_string(k.as_bytes(), &[b'v'; 1000], None, false, now);
        }
        for k in &hot {
            st.keyspace
                .db(0)
                .set_string(k.as_bytes(), &[b'v'; 1000], None, false, now);
            for _ in 0..30 {
                st.keyspace.db(0).get(k.as_bytes(), now);
            }
        }
        let mut hot_gone = 0;
        for i in 0..600 {
            assert!(st.evict_one(now + i));
            hot_gone = hot
                .iter()
                .filter(|k| st.keyspace.db(0).peek(k.as_bytes(), now).is_none())
                .count();
        }
        assert!(hot_gone <= 5, "{hot_gone}");
    }
}
