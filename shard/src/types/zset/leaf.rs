//! A sorted run of (score, member) entries packed in one buffer: the whole
//! of a small sorted set (Redis's "listpack" encoding) and one leaf of the
//! large one's tree.
//!
//! Entry layout: `[score: f64 LE, 8 bytes][len: LEB128][member bytes]`.
//! Scores are stored as raw bits (so `-0` stays `-0`), entries are ordered
//! by (score, member) with -0 == 0. Walking is forward only; the reverse
//! walks collect offsets first (leaves are small).

use std::cmp::Ordering;

use crate::types::varint;

#[derive(Clone, Default, Debug, PartialEq)]
pub struct Leaf {
    buf: Vec<u8>,
    n: u32,
}

/// Orders two entries: by score, then by member bytes.
#[inline]
pub fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

/// Bytes one entry with a member of `len` bytes takes.
#[inline]
pub fn entry_size(len: usize) -> usize {
    8 + varint::len(len) + len
}

impl Leaf {
    pub fn new() -> Leaf {
        Leaf::default()
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.n as usize
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// Bytes used by the entries.
    #[inline]
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// (score, member start, member len, next offset) of the entry at `off`.
    #[inline]
    fn decode(&self, off: usize) -> (f64, usize, usize, usize) {
        let mut sb = [0u8; 8];
        sb.copy_from_slice(&self.buf[off..off + 8]);
        let (v, i) = varint::read(&self.buf, off + 8);
        (f64::from_le_bytes(sb), i, v, i + v)
    }

    /// The entry at byte offset `off` and the next entry's offset.
    #[inline]
    pub fn at(&self, off: usize) -> (f64, &[u8], usize) {
        let (s, m, l, n) = self.decode(off);
        (s, &self.buf[m..m + l], n)
    }

    /// Byte offset of entry `i` (`bytes()` for i == len).
    pub fn offset_of(&self, i: usize) -> usize {
        let mut off = 0;
        for _ in 0..i {
            off = self.decode(off).3;
        }
        off
    }

    /// Entry `i` (0-based, must exist).
    pub fn get(&self, i: usize) -> (f64, &[u8]) {
        let (s, m, _) = self.at(self.offset_of(i));
        (s, m)
    }

    pub fn first(&self) -> Option<(f64, &[u8])> {
        (self.n > 0).then(|| {
            let (s, m, _) = self.at(0);
            (s, m)
        })
    }

    /// How many leading entries satisfy `less` (a predicate true on a prefix
    /// of the order), and the offset of the first one that does not.
    pub fn count_less(&self, mut less: impl FnMut(f64, &[u8]) -> bool) -> (usize, usize) {
        let mut off = 0;
        let mut i = 0;
        while off < self.buf.len() {
            let (s, m, next) = self.at(off);
            if !less(s, m) {
                break;
            }
            off = next;
            i += 1;
        }
        (i, off)
    }

    /// Position (index, offset) of an exact (score, member), if present.
    pub fn find(&self, score: f64, member: &[u8]) -> Option<(usize, usize)> {
        let (i, off) = self.count_less(|s, m| cmp_key(s, m, score, member) == Ordering::Less);
        if off < self.buf.len() {
            let (s, m, _) = self.at(off);
            if s == score && m == member {
                return Some((i, off));
            }
        }
        None
    }

    /// The score of `member` (linear: only used on small sets).
    pub fn score_of(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.iter()
            .enumerate()
            .find(|(_, (_, m))| *m == member)
            .map(|(i, (s, _))| (i, s))
    }

    /// Inserts at its place in the order; returns its index.
    pub fn insert(&mut self, score: f64, member: &[u8]) -> usize {
        let (i, off) = self.count_less(|s, m| cmp_key(s, m, score, member) == Ordering::Less);
        self.insert_at(off, score, member);
        i
    }

    /// Inserts an entry at byte offset `off` (the caller keeps the order).
    pub fn insert_at(&mut self, off: usize, score: f64, member: &[u8]) {
        let sz = entry_size(member.len());
        let old = self.buf.len();
        if old + sz > self.buf.capacity() {
            // Grow by an eighth at least: leaves stay nearly exact in size
            // (every byte counts at a million members) yet pushes amortise.
            let extra = sz.max(self.buf.capacity() / 8);
            self.buf.reserve_exact(extra);
        }
        self.buf.resize(old + sz, 0);
        self.buf.copy_within(off..old, off + sz);
        let mut i = off;
        self.buf[i..i + 8].copy_from_slice(&score.to_le_bytes());
        i += 8;
        i = varint::write(&mut self.buf, i, member.len());
        self.buf[i..i + member.len()].copy_from_slice(member);
        self.n += 1;
    }

    /// Reserves room for `extra` more bytes, exactly.
    pub fn reserve_exact(&mut self, extra: usize) {
        self.buf.reserve_exact(extra);
    }

    /// Appends an entry that sorts after every present one.
    #[inline]
    pub fn push(&mut self, score: f64, member: &[u8]) {
        self.insert_at(self.buf.len(), score, member);
    }

    /// Removes the entry at byte offset `off`.
    pub fn remove_at(&mut self, off: usize) {
        let next = self.decode(off).3;
        self.buf.drain(off..next);
        self.n -= 1;
        if self.buf.capacity() > 64 && self.buf.len() < self.buf.capacity() / 2 {
            self.buf.shrink_to(self.buf.len() + self.buf.len() / 8);
        }
    }

    /// Removes `k` entries starting at entry index `i`.
    pub fn remove_range(&mut self, i: usize, k: usize) {
        let start = self.offset_of(i);
        let mut end = start;
        for _ in 0..k {
            end = self.decode(end).3;
        }
        self.buf.drain(start..end);
        self.n -= k as u32;
        if self.buf.capacity() > 64 && self.buf.len() < self.buf.capacity() / 2 {
            self.buf.shrink_to(self.buf.len() + self.buf.len() / 8);
        }
    }

    /// Moves entries from index `i` on into a new leaf.
    pub fn split_off(&mut self, i: usize) -> Leaf {
        let off = self.offset_of(i);
        let mut tail = Vec::with_capacity(self.buf.len() - off + 16);
        tail.extend_from_slice(&self.buf[off..]);
        self.buf.truncate(off);
        self.buf.shrink_to_fit();
        let moved = self.n - i as u32;
        self.n = i as u32;
        Leaf {
            buf: tail,
            n: moved,
        }
    }

    /// Appends all of `other`'s entries (which sort after ours).
    pub fn append(&mut self, other: &Leaf) {
        self.buf.reserve_exact(other.buf.len());
        self.buf.extend_from_slice(&other.buf);
        self.n += other.n;
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { leaf: self, off: 0 }
    }

    /// Calls `f` on entries `from..to` (indexes), forward or backward.
    pub fn for_each(&self, from: usize, to: usize, rev: bool, f: &mut dyn FnMut(f64, &[u8])) {
        if from >= to {
            return;
        }
        if !rev {
            let mut off = self.offset_of(from);
            for _ in from..to {
                let (s, m, next) = self.at(off);
                f(s, m);
                off = next;
            }
            return;
        }
        // Backward: collect the offsets of the span, then walk them down.
        let mut small = [0u32; 128];
        let mut big = Vec::new();
        let k = to - from;
        let offs: &mut [u32] = if k <= small.len() {
            &mut small[..k]
        } else {
            big.resize(k, 0);
            &mut big
        };
        let mut off = self.offset_of(from);
        for o in offs.iter_mut() {
            *o = off as u32;
            off = self.decode(off).3;
        }
        for &o in offs.iter().rev() {
            let (s, m, _) = self.at(o as usize);
            f(s, m);
        }
    }
}

pub struct Iter<'a> {
    leaf: &'a Leaf,
    off: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.off >= self.leaf.buf.len() {
            return None;
        }
        let (s, m, next) = self.leaf.at(self.off);
        self.off = next;
        Some((s, m))
    }
}
