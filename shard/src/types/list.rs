//! Lists: a deque of listpack nodes (Redis's quicklist), each node at most
//! `node_max` bytes (list-max-listpack-size -2 = 8 KiB). A short list is one
//! node, i.e. one contiguous buffer; a long one is a chain of them, so a push
//! or pop at either end touches one small buffer, and an index costs a walk
//! over node counts plus one node.
//!
//! Redis 7.0 reports "quicklist" for every list, however short (the
//! "listpack" encoding of small lists came with 7.2), and so do we.

use std::collections::VecDeque;

use super::listpack::{entry_size, Listpack};

/// Node size limit in bytes for `list-max-listpack-size` (negative: -1..-5
/// = 4..64 KiB; positive: a count of entries, with the 8 KiB safety limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimit(pub i64);

impl NodeLimit {
    #[inline]
    fn allows(self, node: &Listpack, add: usize) -> bool {
        if node.is_empty() {
            return true;
        }
        match self.0 {
            f if f < 0 => {
                let max = match f {
                    -1 => 4096,
                    -2 => 8192,
                    -3 => 16384,
                    -4 => 32768,
                    _ => 65536,
                };
                node.bytes() + add <= max
            }
            f => node.len() < f.max(1) as usize && node.bytes() + add <= 8192,
        }
    }
}

impl Default for NodeLimit {
    fn default() -> Self {
        NodeLimit(-2)
    }
}

#[derive(Clone, Default, Debug)]
pub struct List {
    nodes: VecDeque<Listpack>,
    len: usize,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The nodes, head first (the RDB writer stores one listpack per node).
    pub fn nodes(&self) -> impl Iterator<Item = &Listpack> + '_ {
        self.nodes.iter()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    /// Frees up to `budget` nodes (lazy free); true when empty.
    pub fn free_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            match self.nodes.pop_back() {
                Some(n) => self.len -= n.len(),
                None => break,
            }
        }
        self.nodes.is_empty()
    }

    /// Approximate heap bytes (for lazy-free thresholds and tests).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.capacity() + 32).sum::<usize>() + 32
    }

    pub fn push_back(&mut self, v: &[u8], lim: NodeLimit) {
        let sz = entry_size(v.len());
        match self.nodes.back_mut() {
            Some(n) if lim.allows(n, sz) => n.push_back(v),
            _ => {
                let mut n = Listpack::new();
                n.push_back(v);
                self.nodes.push_back(n);
            }
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, v: &[u8], lim: NodeLimit) {
        let sz = entry_size(v.len());
        match self.nodes.front_mut() {
            Some(n) if lim.allows(n, sz) => n.push_front(v),
            _ => {
                let mut n = Listpack::new();
                n.push_back(v);
                self.nodes.push_front(n);
            }
        }
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let n = self.nodes.front_mut()?;
        let v = n.pop_front();
        if n.is_empty() {
            self.nodes.pop_front();
        }
        self.len -= 1;
        v
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let n = self.nodes.back_mut()?;
        let v = n.pop_back();
        if n.is_empty() {
            self.nodes.pop_back();
        }
        self.len -= 1;
        v
    }

    /// Normalises a Redis index (negative from the end); None if outside.
    #[inline]
    pub fn norm(&self, index: i64) -> Option<usize> {
        let n = self.len as i64;
        let i = if index < 0 { n + index } else { index };
        if i < 0 || i >= n {
            None
        } else {
            Some(i as usize)
        }
    }

    /// (node, index within node) of element `i` (< len).
    fn locate(&self, i: usize) -> (usize, usize) {
        if i < self.len / 2 {
            let mut rem = i;
            for (k, n) in self.nodes.iter().enumerate() {
                if rem < n.len() {
                    return (k, rem);
                }
                rem -= n.len();
            }
        } else {
            let mut rem = self.len - 1 - i; // distance from the end
            for (k, n) in self.nodes.iter().enumerate().rev() {
                if rem < n.len() {
                    return (k, n.len() - 1 - rem);
                }
                rem -= n.len();
            }
        }
        unreachable!("index within length")
    }

    pub fn get(&self, index: i64) -> Option<&[u8]> {
        let i = self.norm(index)?;
        let (k, j) = self.locate(i);
        let n = &self.nodes[k];
        Some(n.get(n.seek(j as isize)?))
    }

    /// LSET: false when the index is out of range.
    pub fn set(&mut self, index: i64, v: &[u8], lim: NodeLimit) -> bool {
        let Some(i) = self.norm(index) else {
            return false;
        };
        let (k, j) = self.locate(i);
        let n = &mut self.nodes[k];
        let off = n.seek(j as isize).expect("located");
        n.replace_at(off, v);
        self.split_if_needed(k, lim);
        true
    }

    /// Splits node `k` in two when it outgrew the limit.
    fn split_if_needed(&mut self, k: usize, lim: NodeLimit) {
        let n = &self.nodes[k];
        if n.len() < 2 {
            return;
        }
        let max = match lim.0 {
            f if f < 0 => match f {
                -1 => 4096,
                -2 => 8192,
                -3 => 16384,
                -4 => 32768,
                _ => 65536,
            },
            _ => 8192,
        };
        let too_many = lim.0 > 0 && n.len() > lim.0 as usize;
        if n.bytes() > max || too_many {
            let half = n.len() / 2;
            let tail = self.nodes[k].split_off(half);
            self.nodes.insert(k + 1, tail);
            self.split_if_needed(k + 1, lim);
            self.split_if_needed(k, lim);
        }
    }

    /// LINSERT: inserts `v` before/after the first `pivot` from the head;
    /// false when the pivot is absent.
    pub fn insert(&mut self, pivot: &[u8], after: bool, v: &[u8], lim: NodeLimit) -> bool {
        for k in 0..self.nodes.len() {
            let n = &mut self.nodes[k];
            let mut off = n.first();
            while let Some(o) = off {
                if n.get(o) == pivot {
                    let at = if after {
                        n.next(o).unwrap_or(n.bytes())
                    } else {
                        o
                    };
                    n.insert_at(at, v);
                    self.len += 1;
                    self.split_if_needed(k, lim);
                    return true;
                }
                off = n.next(o);
            }
        }
        false
    }

    /// LREM: removes up to |count| occurrences of `v` (0: all), from the
    /// head when count >= 0, from the tail otherwise. Returns how many.
    pub fn remove(&mut self, count: i64, v: &[u8]) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let mut removed = 0;
        if count >= 0 {
            let mut k = 0;
            while k < self.nodes.len() && removed < limit {
                let n = &mut self.nodes[k];
                let mut off = n.first();
                while let Some(o) = off {
                    if removed >= limit {
                        break;
                    }
                    if n.get(o) == v {
                        n.delete_at(o);
                        removed += 1;
                        off = if o < n.bytes() { Some(o) } else { None };
                    } else {
                        off = n.next(o);
                    }
                }
                if n.is_empty() {
                    self.nodes.remove(k);
                } else {
                    k += 1;
                }
            }
        } else {
            let mut k = self.nodes.len();
            while k > 0 && removed < limit {
                k -= 1;
                let n = &mut self.nodes[k];
                let mut off = n.last();
                while let Some(o) = off {
                    if removed >= limit {
                        break;
                    }
                    let prev = n.prev(o);
                    if n.get(o) == v {
                        n.delete_at(o);
                        removed += 1;
                    }
                    off = prev;
                }
                if n.is_empty() {
                    self.nodes.remove(k);
                }
            }
        }
        self.len -= removed;
        removed
    }

    /// LTRIM with normalised bounds: keeps elements [start, end]; an empty
    /// range (start > end or start >= len) empties the list.
    pub fn trim(&mut self, start: usize, end: usize) {
        if start > end || start >= self.len {
            self.nodes.clear();
            self.len = 0;
            return;
        }
        let end = end.min(self.len - 1);
        let mut drop_front = start;
        let mut drop_back = self.len - 1 - end;
        while drop_front > 0 {
            let n = self.nodes.front_mut().expect("non-empty");
            if n.len() <= drop_front {
                drop_front -= n.len();
                self.len -= n.len();
                self.nodes.pop_front();
            } else {
                n.delete_range(0, drop_front);
                self.len -= drop_front;
                drop_front = 0;
            }
        }
        while drop_back > 0 {
            let n = self.nodes.back_mut().expect("non-empty");
            if n.len() <= drop_back {
                drop_back -= n.len();
                self.len -= n.len();
                self.nodes.pop_back();
            } else {
                let keep = n.len() - drop_back;
                let off = n.seek(keep as isize).expect("inside");
                n.delete_range(off, drop_back);
                self.len -= drop_back;
                drop_back = 0;
            }
        }
    }

    /// Elements from index `start` (normalised, < len) forward.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (k, j) = if start < self.len {
            self.locate(start)
        } else {
            (self.nodes.len(), 0)
        };
        self.nodes
            .range(k.min(self.nodes.len())..)
            .enumerate()
            .flat_map(move |(x, n)| n.iter().skip(if x == 0 { j } else { 0 }))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        ListIter {
            fwd: self.nodes.iter().flat_map(|n| n.iter()),
            rev: self.nodes.iter().rev().flat_map(|n| n.iter_rev()),
            remaining: self.len,
        }
    }
}

/// Both directions over the list; `remaining` keeps the two ends apart.
struct ListIter<F, R> {
    fwd: F,
    rev: R,
    remaining: usize,
}

impl<'a, F: Iterator<Item = &'a [u8]>, R: Iterator<Item = &'a [u8]>> Iterator for ListIter<F, R> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.fwd.next()
    }
}

impl<'a, F: Iterator<Item = &'a [u8]>, R: Iterator<Item = &'a [u8]>> DoubleEndedIterator
    for ListIter<F, R>
{
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.rev.next()
    }
}
