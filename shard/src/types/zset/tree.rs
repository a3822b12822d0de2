//! The order of a large sorted set: a B+tree over (score, member) whose
//! leaves are packed `Leaf` runs and whose inner nodes keep, per child, its
//! entry count (so rank lookups and rank ranges are O(log n)) and a lower
//! bound key (so key lookups descend without touching the leaves).
//!
//! Why not Redis's skiplist: a skiplist node costs a pointer per level, a
//! span per level, a back pointer and a separate allocation per member
//! (about 60 B on top of the member); here a member costs its bytes plus
//! 9-10 bytes inside a ~1 KiB leaf, and the inner levels are ~1% of that.
//!
//! Invariants: `seps[j]` is a lower bound of every key in `kids[j + 1]` and
//! greater than every key in `kids[j]`; `counts[j]` is `kids[j]`'s size. A
//! separator is the first key of the right node when a node is split;
//! deletions never invalidate a bound, so separators are never rewritten.

use std::cmp::Ordering;

use super::leaf::{cmp_key, Leaf};

/// A leaf is split past this many bytes (about 45 members of 12 bytes).
const LEAF_MAX: usize = 1024;
/// Leaves below this try to merge with a neighbour.
const LEAF_MIN: usize = LEAF_MAX / 4;
/// Inner nodes hold at most this many children...
const FANOUT_MAX: usize = 64;
/// ...and merge with a neighbour below this.
const FANOUT_MIN: usize = FANOUT_MAX / 4;

/// A separator key: the first (score, member) of a node's right sibling.
type Sep = (f64, Box<[u8]>);

#[derive(Clone, Debug)]
struct Inner {
    kids: Vec<Node>,
    counts: Vec<u32>,
    seps: Vec<Sep>,
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(Leaf),
    Inner(Box<Inner>),
}

#[derive(Clone, Debug)]
pub struct Tree {
    root: Node,
    len: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            root: Node::Leaf(Leaf::new()),
            len: 0,
        }
    }
}

/// Whether a node is below its merge threshold.
fn underfull(n: &Node) -> bool {
    match n {
        Node::Leaf(l) => l.bytes() < LEAF_MIN,
        Node::Inner(i) => i.kids.len() < FANOUT_MIN,
    }
}

impl Node {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(l) => l.len(),
            Node::Inner(i) => i.counts.iter().map(|&c| c as usize).sum(),
        }
    }

    /// Inserts; returns the new right sibling and its separator on a split.
    fn insert(&mut self, score: f64, member: &[u8]) -> Option<(Sep, Node)> {
        match self {
            Node::Leaf(l) => {
                let i = l.insert(score, member);
                if l.bytes() <= LEAF_MAX || l.len() < 2 {
                    return None;
                }
                // Appends (rising scores: the common load pattern) split at
                // the end so leaves stay full; inserts at the front split at
                // the front; anything else in the middle.
                let n = l.len();
                let at = if i == n - 1 {
                    n - 1
                } else if i == 0 {
                    1
                } else {
                    n / 2
                };
                let mut right = l.split_off(at);
                if at == n - 1 {
                    // The next appends land here: one allocation of the
                    // allocator's 1 KiB class instead of a chain of regrowths.
                    right.reserve_exact(LEAF_MAX.saturating_sub(right.bytes()));
                }
                let (s, m) = right.first().expect("non-empty");
                Some(((s, m.into()), Node::Leaf(right)))
            }
            Node::Inner(inner) => {
                let i = inner
                    .seps
                    .partition_point(|(s, m)| cmp_key(*s, m, score, member) != Ordering::Greater);
                inner.counts[i] += 1;
                let (sep, right) = inner.kids[i].insert(score, member)?;
                inner.counts[i] = inner.kids[i].len() as u32;
                inner.counts.insert(i + 1, right.len() as u32);
                inner.kids.insert(i + 1, right);
                inner.seps.insert(i, sep);
                if inner.kids.len() <= FANOUT_MAX {
                    return None;
                }
                let n = inner.kids.len();
                let at = if i + 1 == n - 1 {
                    n - 1
                } else if i == 0 {
                    1
                } else {
                    n / 2
                };
                let kids = inner.kids.split_off(at);
                let counts = inner.counts.split_off(at);
                let mut seps = inner.seps.split_off(at - 1);
                let sep = seps.remove(0);
                inner.kids.shrink_to_fit();
                inner.counts.shrink_to_fit();
                inner.seps.shrink_to_fit();
                Some((sep, Node::Inner(Box::new(Inner { kids, counts, seps }))))
            }
        }
    }

    /// Removes the entry of rank `r` (which exists).
    fn remove_at(&mut self, mut r: usize) {
        match self {
            Node::Leaf(l) => {
                let off = l.offset_of(r);
                l.remove_at(off);
            }
            Node::Inner(inner) => {
                let mut i = 0;
                while r >= inner.counts[i] as usize {
                    r -= inner.counts[i] as usize;
                    i += 1;
                }
                inner.kids[i].remove_at(r);
                inner.counts[i] -= 1;
                if underfull(&inner.kids[i]) {
                    inner.rebalance(i);
                }
            }
        }
    }

    /// Number of entries for which `less` holds (a prefix of the order).
    fn count_less(&self, less: &mut dyn FnMut(f64, &[u8]) -> bool) -> usize {
        match self {
            Node::Leaf(l) => l.count_less(less).0,
            Node::Inner(inner) => {
                let c = inner.seps.partition_point(|(s, m)| less(*s, m));
                let before: usize = inner.counts[..c].iter().map(|&x| x as usize).sum();
                before + inner.kids[c].count_less(less)
            }
        }
    }

    /// Rank of an exact key, in one descent (the key can only be in the
    /// child whose separators bracket it).
    fn find(&self, score: f64, member: &[u8]) -> Option<usize> {
        match self {
            Node::Leaf(l) => l.find(score, member).map(|(i, _)| i),
            Node::Inner(inner) => {
                let i = inner
                    .seps
                    .partition_point(|(s, m)| cmp_key(*s, m, score, member) != Ordering::Greater);
                let before: usize = inner.counts[..i].iter().map(|&x| x as usize).sum();
                inner.kids[i].find(score, member).map(|r| before + r)
            }
        }
    }

    fn get(&self, mut r: usize) -> (f64, &[u8]) {
        match self {
            Node::Leaf(l) => l.get(r),
            Node::Inner(inner) => {
                let mut i = 0;
                while r >= inner.counts[i] as usize {
                    r -= inner.counts[i] as usize;
                    i += 1;
                }
                inner.kids[i].get(r)
            }
        }
    }

    fn for_each(&self, from: usize, to: usize, rev: bool, f: &mut dyn FnMut(f64, &[u8])) {
        match self {
            Node::Leaf(l) => l.for_each(from, to, rev, f),
            Node::Inner(inner) => {
                // The children overlapping [from, to), with their local spans.
                let mut spans = [(0usize, 0usize, 0usize); FANOUT_MAX + 1];
                let mut k = 0;
                let mut base = 0;
                for (i, &c) in inner.counts.iter().enumerate() {
                    let c = c as usize;
                    let (lo, hi) = (from.max(base), to.min(base + c));
                    if lo < hi {
                        spans[k] = (i, lo - base, hi - base);
                        k += 1;
                    }
                    base += c;
                    if base >= to {
                        break;
                    }
                }
                let spans = &spans[..k];
                if rev {
                    for &(i, lo, hi) in spans.iter().rev() {
                        inner.kids[i].for_each(lo, hi, rev, f);
                    }
                } else {
                    for &(i, lo, hi) in spans {
                        inner.kids[i].for_each(lo, hi, rev, f);
                    }
                }
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Node::Leaf(l) => l.capacity(),
            Node::Inner(i) => {
                std::mem::size_of::<Inner>()
                    + i.kids.capacity() * std::mem::size_of::<Node>()
                    + i.counts.capacity() * 4
                    + i.seps.iter().map(|(_, m)| 24 + m.len()).sum::<usize>()
                    + i.kids.iter().map(|k| k.heap_bytes()).sum::<usize>()
            }
        }
    }

    /// Frees up to about `budget` leaves; true when nothing is left.
    fn free_some(&mut self, budget: &mut usize) -> bool {
        match self {
            Node::Leaf(_) => true,
            Node::Inner(inner) => {
                while *budget > 0 {
                    let Some(k) = inner.kids.last_mut() else {
                        return true;
                    };
                    if k.free_some(budget) {
                        inner.kids.pop();
                        *budget = budget.saturating_sub(1);
                    }
                }
                inner.kids.is_empty()
            }
        }
    }
}

impl Inner {
    /// Merges the underfull child `i` into a neighbour when both fit in one
    /// node; drops it when empty.
    fn rebalance(&mut self, i: usize) {
        if self.kids.len() < 2 {
            return;
        }
        if self.counts[i] == 0 {
            self.kids.remove(i);
            self.counts.remove(i);
            self.seps.remove(i.saturating_sub(1));
            return;
        }
        let (l, r) = if i + 1 < self.kids.len() {
            (i, i + 1)
        } else {
            (i - 1, i)
        };
        let fits = match (&self.kids[l], &self.kids[r]) {
            (Node::Leaf(a), Node::Leaf(b)) => a.bytes() + b.bytes() <= LEAF_MAX,
            (Node::Inner(a), Node::Inner(b)) => a.kids.len() + b.kids.len() <= FANOUT_MAX,
            _ => false,
        };
        if !fits {
            return;
        }
        let right = self.kids.remove(r);
        let rc = self.counts.remove(r);
        let sep = self.seps.remove(l);
        self.counts[l] += rc;
        match (&mut self.kids[l], right) {
            (Node::Leaf(a), Node::Leaf(b)) => a.append(&b),
            (Node::Inner(a), Node::Inner(b)) => {
                let b = *b;
                a.seps.push(sep);
                a.seps.extend(b.seps);
                a.kids.extend(b.kids);
                a.counts.extend(b.counts);
            }
            _ => unreachable!("siblings have the same height"),
        }
    }
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts an entry (the caller guarantees the member is absent).
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        self.len += 1;
        if let Some((sep, right)) = self.root.insert(score, member) {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Leaf::new()));
            let counts = vec![left.len() as u32, right.len() as u32];
            self.root = Node::Inner(Box::new(Inner {
                kids: vec![left, right],
                counts,
                seps: vec![sep],
            }));
        }
    }

    /// Removes the entry of rank `r` (< len).
    pub fn remove_at(&mut self, r: usize) {
        debug_assert!(r < self.len);
        self.root.remove_at(r);
        self.len -= 1;
        // A root with one child gives way to it.
        while let Node::Inner(inner) = &mut self.root {
            if inner.kids.len() != 1 {
                break;
            }
            let only = inner.kids.pop().expect("one child");
            self.root = only;
        }
    }

    /// Number of entries for which `less` holds.
    pub fn count_less(&self, mut less: impl FnMut(f64, &[u8]) -> bool) -> usize {
        self.root.count_less(&mut less)
    }

    /// Rank of an exact (score, member), if present.
    pub fn find(&self, score: f64, member: &[u8]) -> Option<usize> {
        self.root.find(score, member)
    }

    /// The entry of rank `r` (< len).
    pub fn get(&self, r: usize) -> (f64, &[u8]) {
        self.root.get(r)
    }

    /// Calls `f` on ranks `from..to`, ascending or descending.
    pub fn for_each(&self, from: usize, to: usize, rev: bool, f: &mut dyn FnMut(f64, &[u8])) {
        let to = to.min(self.len);
        if from < to {
            self.root.for_each(from, to, rev, f);
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.root.heap_bytes()
    }

    /// Frees about `budget` leaves (lazy free); true when all is gone.
    pub fn free_some(&mut self, budget: usize) -> bool {
        let mut b = budget;
        let done = self.root.free_some(&mut b);
        if done {
            self.root = Node::Leaf(Leaf::new());
            self.len = 0;
        }
        done
    }

    /// Leaves in the tree (free effort).
    pub fn leaf_count(&self) -> usize {
        // Roughly: entries per leaf are ~LEAF_MAX / 24.
        self.len / 32 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_and_ranked() {
        let mut t = Tree::new();
        let mut model = Vec::new();
        for i in 0..5000u32 {
            let s = ((i * 7919) % 1000) as f64;
            let m = format!("m{}", i);
            t.insert(s, m.as_bytes());
            model.push((s, m.into_bytes()));
        }
        model.sort_by(|a, b| cmp_key(a.0, &a.1, b.0, &b.1));
        assert_eq!(t.len(), model.len());
        for (r, (s, m)) in model.iter().enumerate().step_by(37) {
            assert_eq!(t.get(r), (*s, &m[..]));
            assert_eq!(t.find(*s, m), Some(r));
        }
        let mut got = Vec::new();
        t.for_each(100, 4000, true, &mut |s, m| got.push((s, m.to_vec())));
        let want: Vec<_> = model[100..4000].iter().rev().cloned().collect();
        assert_eq!(got, want);
        // Remove most, in a scattered order.
        let mut k = 0;
        while model.len() > 10 {
            k = (k + 7) % model.len();
            let (s, m) = model.remove(k);
            let r = t.find(s, &m).unwrap();
            t.remove_at(r);
            assert_eq!(t.len(), model.len());
        }
        let mut all = Vec::new();
        t.for_each(0, usize::MAX, false, &mut |s, m| all.push((s, m.to_vec())));
        assert_eq!(all, model);
    }
}
