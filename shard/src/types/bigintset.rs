//! The large form of a set whose members are all integers: sorted chunks
//! of at most `CHUNK` integers, 8 bytes a member at ~70-100% fill, against
//! 24-32 bytes a member for a chained table node plus its bucket.
//!
//! Redis 7.0 converts an intset past `set-max-intset-entries` to a hash
//! table of strings; so does Tessera as far as OBJECT ENCODING can tell
//! ("hashtable"), but a set of integers keeps them as integers until a
//! non-integer member arrives (then it becomes a `Dict`, as Redis would
//! hold it).
//!
//! SSCAN: the cursor is the next value to visit, mapped to u64 in order
//! (`key`), so 0 is the start (i64::MIN) and every member present for the
//! whole scan is returned exactly once, whatever is added or removed in
//! between. (A conversion to the table in the middle of a scan, on a
//! non-integer SADD, loses that guarantee for that scan.)

/// Members per chunk at most: 2 KiB chunks, inserts move at most that.
pub const CHUNK: usize = 256;

/// Ascending members, by reference.
pub type Iter<'a> = std::iter::Flatten<std::slice::Iter<'a, Vec<i64>>>;

#[derive(Clone, Debug, Default)]
pub struct BigIntset {
    /// Non-empty sorted chunks, in order; every chunk's values are below
    /// the next chunk's.
    chunks: Vec<Vec<i64>>,
    len: usize,
    /// Chunk size limit (CHUNK; smaller in tests).
    cap: usize,
}

/// The order-preserving map of i64 to u64 used for cursors.
#[inline]
fn key(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}
#[inline]
fn unkey(k: u64) -> i64 {
    (k ^ (1 << 63)) as i64
}

impl BigIntset {
    pub fn new() -> BigIntset {
        BigIntset::with_chunk_cap(CHUNK)
    }

    /// A set with chunks of at most `cap` (>= 2) members (tests use small
    /// ones to exercise splits).
    pub fn with_chunk_cap(cap: usize) -> BigIntset {
        BigIntset {
            chunks: Vec::new(),
            len: 0,
            cap: cap.max(2),
        }
    }

    /// Builds from ascending, distinct values (an intset's members).
    pub fn from_sorted(values: impl Iterator<Item = i64>) -> BigIntset {
        let mut s = BigIntset::new();
        for v in values {
            s.push_max(v);
        }
        s
    }

    /// Appends a value above every member (bulk load: chunks fill up).
    fn push_max(&mut self, v: i64) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < self.cap => c.push(v),
            _ => {
                let mut c = Vec::with_capacity(self.cap);
                c.push(v);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk that holds or would hold `v`: the last one whose first
    /// value is <= v (the first chunk for values below everything).
    #[inline]
    fn chunk_for(&self, v: i64) -> usize {
        self.chunks.partition_point(|c| c[0] <= v).saturating_sub(1)
    }

    pub fn contains(&self, v: i64) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        self.chunks[self.chunk_for(v)].binary_search(&v).is_ok()
    }

    /// Adds `v`; true when it is new.
    pub fn insert(&mut self, v: i64) -> bool {
        if self.chunks.is_empty() {
            self.push_max(v);
            return true;
        }
        let ci = self.chunk_for(v);
        let last = ci + 1 == self.chunks.len();
        let c = &mut self.chunks[ci];
        let Err(pos) = c.binary_search(&v) else {
            return false;
        };
        if c.len() < self.cap {
            c.insert(pos, v);
        } else if last && pos == c.len() {
            // Appending past the end (ascending loads): a new chunk, so
            // full chunks stay full.
            let mut n = Vec::with_capacity(self.cap);
            n.push(v);
            self.chunks.push(n);
        } else {
            // Split in halves, then insert into the right one.
            let mut right = Vec::with_capacity(self.cap);
            right.extend_from_slice(&c[self.cap / 2..]);
            c.truncate(self.cap / 2);
            if pos <= c.len() {
                c.insert(pos, v);
            } else {
                right.insert(pos - c.len(), v);
            }
            self.chunks.insert(ci + 1, right);
        }
        self.len += 1;
        true
    }

    /// Removes `v`; true when it was there.
    pub fn remove(&mut self, v: i64) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let ci = self.chunk_for(v);
        match self.chunks[ci].binary_search(&v) {
            Ok(pos) => {
                self.remove_at(ci, pos);
                true
            }
            Err(_) => false,
        }
    }

    fn remove_at(&mut self, ci: usize, pos: usize) -> i64 {
        let v = self.chunks[ci].remove(pos);
        if self.chunks[ci].is_empty() {
            self.chunks.remove(ci);
        }
        self.len -= 1;
        v
    }

    /// A uniformly random (chunk, position): a random chunk and a random
    /// slot of `cap`, drawn again when the slot is empty (chunks are at
    /// least half full except after removals, so ~2 draws).
    fn random_pos(&self, rng: &mut impl rand::Rng) -> Option<(usize, usize)> {
        if self.len == 0 {
            return None;
        }
        loop {
            let ci = rng.random_range(0..self.chunks.len());
            let pos = rng.random_range(0..self.cap);
            if pos < self.chunks[ci].len() {
                return Some((ci, pos));
            }
        }
    }

    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<i64> {
        self.random_pos(rng).map(|(ci, pos)| self.chunks[ci][pos])
    }

    pub fn pop_random(&mut self, rng: &mut impl rand::Rng) -> Option<i64> {
        let (ci, pos) = self.random_pos(rng)?;
        Some(self.remove_at(ci, pos))
    }

    /// Members in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.chunks.iter().flatten()
    }

    /// One SSCAN step from `cursor` (see the module comment): up to `count`
    /// members; returns the next cursor, 0 when done.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(i64)) -> u64 {
        let from = unkey(cursor);
        let mut ci = if self.chunks.is_empty() {
            return 0;
        } else {
            self.chunk_for(from)
        };
        let mut pos = self.chunks[ci].partition_point(|&x| x < from);
        let mut n = 0;
        while ci < self.chunks.len() {
            let c = &self.chunks[ci];
            while pos < c.len() {
                if n == count.max(1) {
                    return key(c[pos]);
                }
                f(c[pos]);
                n += 1;
                pos += 1;
            }
            ci += 1;
            pos = 0;
        }
        0
    }

    /// Frees up to `budget` chunks (lazy free); true when empty.
    pub fn free_some(&mut self, budget: usize) -> bool {
        for _ in 0..budget {
            match self.chunks.pop() {
                Some(c) => self.len -= c.len(),
                None => break,
            }
        }
        self.chunks.is_empty()
    }

    /// Allocations freeing it costs.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<i64>>()
            + self.chunks.iter().map(|c| c.capacity() * 8).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    #[test]
    fn matches_a_btreeset_with_small_chunks() {
        let mut rng = SmallRng::seed_from_u64(3);
        for cap in [2, 3, 8] {
            let mut s = BigIntset::with_chunk_cap(cap);
            let mut m = BTreeSet::new();
            for _ in 0..3000 {
                let v = rand::Rng::random_range(&mut rng, -200i64..200);
                match rand::Rng::random_range(&mut rng, 0..4) {
                    0 => assert_eq!(s.remove(v), m.remove(&v)),
                    1 => {
                        if let Some(p) = s.pop_random(&mut rng) {
                            assert!(m.remove(&p));
                        }
                    }
                    _ => assert_eq!(s.insert(v), m.insert(v)),
                }
                assert_eq!(s.len(), m.len());
                assert_eq!(s.contains(v), m.contains(&v));
            }
            assert_eq!(
                s.iter().copied().collect::<Vec<_>>(),
                m.iter().copied().collect::<Vec<_>>()
            );
            assert!(s.chunks.iter().all(|c| !c.is_empty() && c.len() <= cap));
            // A full scan in small steps sees everything once.
            let mut seen = Vec::new();
            let mut cur = 0;
            loop {
                cur = s.scan(cur, 7, |v| seen.push(v));
                if cur == 0 {
                    break;
                }
            }
            assert_eq!(seen, m.iter().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn extremes_and_cursors() {
        let mut s = BigIntset::with_chunk_cap(2);
        for v in [i64::MAX, i64::MIN, 0, -1, 1] {
            assert!(s.insert(v));
        }
        let mut seen = Vec::new();
        let mut cur = 0;
        loop {
            cur = s.scan(cur, 1, |v| seen.push(v));
            if cur == 0 {
                break;
            }
        }
        assert_eq!(seen, vec![i64::MIN, -1, 0, 1, i64::MAX]);
        // Any cursor is valid input.
        s.scan(u64::MAX, 10, |_| {});
        let b = BigIntset::from_sorted(0..1000);
        assert_eq!(b.chunks.len(), 1000usize.div_ceil(CHUNK));
        assert!(b.contains(999) && !b.contains(1000));
    }
}
