//! Sorted sets: one packed `Leaf` of (score, member) entries while small
//! (reported as Redis's "listpack"), a `Tree` plus a member `Index` past
//! `zset-max-listpack-entries` members or once a member longer than
//! `zset-max-listpack-value` is added ("skiplist"). Like Redis 7.0, a set
//! converts back only when a store command (ZUNIONSTORE, ZRANGESTORE...)
//! builds a result that fits.
//!
//! Ranks are 0-based in (score, member) order; every rank, key or range
//! operation is O(log n) on the large encoding.

pub mod index;
pub mod leaf;
pub mod tree;

use std::cmp::Ordering;

use index::{member_hash, Index};
use leaf::{cmp_key, Leaf};
use tree::Tree;

/// Conversion thresholds (zset-max-listpack-entries / -value).
#[derive(Clone, Copy, Debug)]
pub struct ZsetLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for ZsetLimits {
    fn default() -> Self {
        ZsetLimits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

/// Redis's listpack keeps scores as text where "-0" reads back as 0: a
/// small set never holds -0 (a large one does, and prints "-0").
#[inline]
fn small_score(s: f64) -> f64 {
    s + 0.0
}

#[derive(Clone, Debug, Default)]
pub struct Big {
    tree: Tree,
    index: Index,
}

impl Big {
    /// (rank, score) of a member: the index proposes scores, the tree
    /// confirms one and gives its rank in the same lookup.
    fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        let tree = &self.tree;
        let mut rank = None;
        let s = self.index.find(member_hash(member), |s| {
            rank = tree.find(s, member);
            rank.is_some()
        })?;
        Some((rank?, s))
    }
    fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|(_, s)| s)
    }
    fn insert(&mut self, score: f64, member: &[u8]) {
        self.tree.insert(score, member);
        self.index.insert(member_hash(member), score);
    }
    /// Removes the entry of rank `r`.
    fn remove_at(&mut self, r: usize) {
        let (s, m) = self.tree.get(r);
        self.index.remove(member_hash(m), s);
        self.tree.remove_at(r);
    }
}

#[derive(Clone, Debug)]
pub enum Zset {
    Small(Leaf),
    Big(Box<Big>),
}

impl Default for Zset {
    fn default() -> Self {
        Zset::Small(Leaf::new())
    }
}

impl Zset {
    /// An empty set for a ZADD whose first member is `first_len` bytes long
    /// (Redis 7.0 picks the encoding from that member alone).
    pub fn new_for(first_len: usize, lim: ZsetLimits) -> Zset {
        if lim.max_entries == 0 || first_len > lim.max_value {
            Zset::Big(Box::default())
        } else {
            Zset::Small(Leaf::new())
        }
    }

    /// A set from entries already in (score, member) order, encoded the way
    /// Redis encodes a store command's result.
    pub fn from_sorted<'a>(
        entries: impl ExactSizeIterator<Item = (f64, &'a [u8])> + Clone,
        lim: ZsetLimits,
    ) -> Zset {
        let n = entries.len();
        let maxlen = entries.clone().map(|(_, m)| m.len()).max().unwrap_or(0);
        if n <= lim.max_entries && maxlen <= lim.max_value {
            let mut l = Leaf::new();
            for (s, m) in entries {
                l.push(small_score(s), m);
            }
            Zset::Small(l)
        } else {
            let mut b = Box::new(Big {
                tree: Tree::new(),
                index: Index::with_capacity(n),
            });
            for (s, m) in entries {
                b.insert(s, m);
            }
            Zset::Big(b)
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Zset::Small(l) => l.len(),
            Zset::Big(b) => b.tree.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Zset::Small(_) => "listpack",
            Zset::Big(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Small(l) => l.score_of(member).map(|(_, s)| s),
            Zset::Big(b) => b.score(member),
        }
    }

    /// (rank, score) of a member.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match self {
            Zset::Small(l) => l.score_of(member),
            Zset::Big(b) => b.find(member),
        }
    }

    /// Adds a member that is not in the set, converting first if the set
    /// would outgrow its encoding (Redis's zsetAdd).
    pub fn insert(&mut self, score: f64, member: &[u8], lim: ZsetLimits) {
        if let Zset::Small(l) = self {
            if l.len() + 1 > lim.max_entries || member.len() > lim.max_value {
                self.convert();
            }
        }
        match self {
            Zset::Small(l) => {
                l.insert(small_score(score), member);
            }
            Zset::Big(b) => b.insert(score, member),
        }
    }

    /// Moves an existing member from score `old` to `new`.
    pub fn set_score(&mut self, member: &[u8], old: f64, new: f64) {
        if old.to_bits() == new.to_bits() {
            return;
        }
        match self {
            Zset::Small(l) => {
                if let Some((_, off)) = l.find(old, member) {
                    l.remove_at(off);
                    l.insert(small_score(new), member);
                }
            }
            Zset::Big(b) => {
                if let Some(r) = b.tree.find(old, member) {
                    b.tree.remove_at(r);
                    b.tree.insert(new, member);
                    b.index.set_score(member_hash(member), old, new);
                }
            }
        }
    }

    /// Removes a member; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Small(l) => {
                let (_, s) = l.score_of(member)?;
                let (_, off) = l.find(s, member)?;
                l.remove_at(off);
                Some(s)
            }
            Zset::Big(b) => {
                let (r, s) = b.find(member)?;
                b.remove_at(r);
                Some(s)
            }
        }
    }

    /// The entry of rank `r` (< len).
    pub fn get(&self, r: usize) -> (f64, &[u8]) {
        match self {
            Zset::Small(l) => l.get(r),
            Zset::Big(b) => b.tree.get(r),
        }
    }

    /// How many entries satisfy `less` (true on a prefix of the order).
    pub fn count_less(&self, less: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match self {
            Zset::Small(l) => l.count_less(less).0,
            Zset::Big(b) => b.tree.count_less(less),
        }
    }

    /// Entries with a score below `score` (or at most `score` if `incl`).
    pub fn count_below(&self, score: f64, incl: bool) -> usize {
        self.count_less(|s, _| if incl { s <= score } else { s < score })
    }

    /// Rank of the first entry not less than (score, member).
    pub fn lower_bound(&self, score: f64, member: &[u8]) -> usize {
        self.count_less(|s, m| cmp_key(s, m, score, member) == Ordering::Less)
    }

    /// Calls `f` on ranks `from..to` in ascending order, or descending
    /// (`from..to` are still ascending ranks).
    pub fn for_each(&self, from: usize, to: usize, rev: bool, mut f: impl FnMut(f64, &[u8])) {
        let to = to.min(self.len());
        match self {
            Zset::Small(l) => l.for_each(from, to, rev, &mut f),
            Zset::Big(b) => b.tree.for_each(from, to, rev, &mut f),
        }
    }

    /// Removes ranks `from..to`.
    pub fn remove_range(&mut self, from: usize, to: usize) {
        let to = to.min(self.len());
        if from >= to {
            return;
        }
        match self {
            Zset::Small(l) => l.remove_range(from, to - from),
            Zset::Big(b) => {
                let n = b.tree.len();
                if (to - from) * 4 <= n || to - from <= 64 {
                    for _ in from..to {
                        b.remove_at(from);
                    }
                    return;
                }
                // A large part goes: rebuilding from what stays is O(n)
                // with a small constant, one O(log n) removal per member is
                // not (ZREMRANGEBYRANK of half a million members).
                let mut nb = Big {
                    tree: Tree::new(),
                    index: Index::with_capacity(n - (to - from)),
                };
                b.tree.for_each(0, from, false, &mut |s, m| nb.insert(s, m));
                b.tree.for_each(to, n, false, &mut |s, m| nb.insert(s, m));
                **b = nb;
            }
        }
    }

    fn convert(&mut self) {
        if let Zset::Small(l) = self {
            let mut b = Box::new(Big {
                tree: Tree::new(),
                index: Index::with_capacity(l.len() + 1),
            });
            for (s, m) in l.iter() {
                b.insert(s, m);
            }
            *self = Zset::Big(b);
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Zset::Small(l) => l.capacity(),
            Zset::Big(b) => b.tree.heap_bytes() + b.index.heap_bytes(),
        }
    }

    /// Allocations freeing this set costs (Redis's lazyfreeGetFreeEffort).
    pub fn free_effort(&self) -> usize {
        match self {
            Zset::Small(_) => 1,
            Zset::Big(b) => b.tree.leaf_count(),
        }
    }

    /// Frees part of a large set; true when nothing is left.
    pub fn free_some(&mut self, budget: usize) -> bool {
        match self {
            Zset::Small(_) => true,
            Zset::Big(b) => {
                if b.tree.free_some(budget) {
                    b.index = Index::default();
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes per member and insert speed at 1M members (`cargo test -p
    /// tessera-shard --release zset_footprint -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn zset_footprint() {
        let lim = ZsetLimits::default();
        for (name, scores) in [("rising", false), ("random", true)] {
            let t0 = std::time::Instant::now();
            let mut z = Zset::new_for(8, lim);
            let mut x: u64 = 1;
            for i in 0..1_000_000u64 {
                let m = format!("member:{}", i);
                let s = if scores {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 40) as f64
                } else {
                    i as f64
                };
                z.insert(s, m.as_bytes(), lim);
            }
            let ins = t0.elapsed();
            let t1 = std::time::Instant::now();
            let mut acc = 0;
            for i in (0..1_000_000u64).step_by(7) {
                acc += z.rank(format!("member:{}", i).as_bytes()).unwrap().0;
            }
            let rk = t1.elapsed();
            eprintln!(
                "{name}: {:.1} B/member heap, insert {:.0} ns, rank {:.0} ns ({acc})",
                z.heap_bytes() as f64 / 1e6,
                ins.as_nanos() as f64 / 1e6,
                rk.as_nanos() as f64 / (1e6 / 7.0)
            );
        }
    }
}
