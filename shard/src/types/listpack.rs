//! A compact sequence of byte strings in one contiguous buffer: the small
//! encoding of hashes and the node of a quicklist.
//!
//! Layout of one entry (our own design, not Redis's listpack bytes):
//!
//! ```text
//! [len: LEB128][bytes][back: reversed LEB128 of (size of len + bytes)]
//! ```
//!
//! `len` lets us walk forward, `back` lets us walk backward from the end of
//! any entry, so both ends are O(1) and any position is O(distance). Small
//! buffers grow exactly (every byte counts in a hash of three fields); past
//! 256 bytes they grow geometrically so pushes stay amortised O(1).

use crate::types::varint;

#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
    count: u32,
}

/// Bytes one entry of `len` data bytes takes.
#[inline]
pub fn entry_size(len: usize) -> usize {
    let fwd = varint::len(len) + len;
    fwd + varint::len(fwd)
}

fn write_entry(out: &mut [u8], data: &[u8]) {
    let mut i = varint::write(out, 0, data.len());
    out[i..i + data.len()].copy_from_slice(data);
    i += data.len();
    let fwd = i;
    // Reversed LEB128: the lowest group sits last; every byte but the
    // first one carries 0x80, so a backward reader knows when to stop.
    let n = varint::len(fwd);
    let mut v = fwd;
    for k in 0..n {
        let mut b = (v & 0x7f) as u8;
        if k + 1 < n {
            b |= 0x80;
        }
        out[i + n - 1 - k] = b;
        v >>= 7;
    }
}

impl Listpack {
    pub fn new() -> Listpack {
        Listpack::default()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Bytes of the entries (the buffer's used length).
    #[inline]
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
    /// Bytes allocated.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// (data offset, data len, offset of the next entry) of the entry at `off`.
    #[inline]
    fn decode(&self, off: usize) -> (usize, usize, usize) {
        let (v, i) = varint::read(&self.buf, off);
        let fwd = i - off + v;
        (i, v, off + fwd + varint::len(fwd))
    }

    /// The entry at byte offset `off`.
    #[inline]
    pub fn get(&self, off: usize) -> &[u8] {
        let (d, l, _) = self.decode(off);
        &self.buf[d..d + l]
    }

    #[inline]
    pub fn first(&self) -> Option<usize> {
        if self.count == 0 {
            None
        } else {
            Some(0)
        }
    }

    /// Offset of the entry that ends at `end`.
    #[inline]
    fn start_before(&self, end: usize) -> usize {
        let b = &self.buf;
        let mut v = 0usize;
        let mut shift = 0;
        let mut i = end;
        loop {
            i -= 1;
            let c = b[i];
            v |= ((c & 0x7f) as usize) << shift;
            if c < 0x80 {
                break;
            }
            shift += 7;
        }
        i - v
    }

    #[inline]
    pub fn last(&self) -> Option<usize> {
        if self.count == 0 {
            None
        } else {
            Some(self.start_before(self.buf.len()))
        }
    }

    #[inline]
    pub fn next(&self, off: usize) -> Option<usize> {
        let (_, _, n) = self.decode(off);
        if n < self.buf.len() {
            Some(n)
        } else {
            None
        }
    }

    #[inline]
    pub fn prev(&self, off: usize) -> Option<usize> {
        if off == 0 {
            None
        } else {
            Some(self.start_before(off))
        }
    }

    /// Offset of the entry at `index` (negative: from the end).
    pub fn seek(&self, index: isize) -> Option<usize> {
        let n = self.count as isize;
        let i = if index < 0 { n + index } else { index };
        if i < 0 || i >= n {
            return None;
        }
        if i <= n / 2 {
            let mut off = 0;
            for _ in 0..i {
                off = self.decode(off).2;
            }
            Some(off)
        } else {
            let mut off = self.buf.len();
            for _ in 0..(n - i) {
                off = self.start_before(off);
            }
            Some(off)
        }
    }

    fn grow(&mut self, extra: usize) {
        if self.buf.len() + extra <= 256 {
            self.buf.reserve_exact(extra);
        } else {
            self.buf.reserve(extra);
        }
    }

    /// Inserts `data` before the entry at `off` (`off == bytes()` appends).
    pub fn insert_at(&mut self, off: usize, data: &[u8]) {
        let sz = entry_size(data.len());
        self.grow(sz);
        let old = self.buf.len();
        self.buf.resize(old + sz, 0);
        self.buf.copy_within(off..old, off + sz);
        write_entry(&mut self.buf[off..off + sz], data);
        self.count += 1;
    }

    #[inline]
    pub fn push_back(&mut self, data: &[u8]) {
        let sz = entry_size(data.len());
        self.grow(sz);
        let old = self.buf.len();
        self.buf.resize(old + sz, 0);
        write_entry(&mut self.buf[old..], data);
        self.count += 1;
    }

    #[inline]
    pub fn push_front(&mut self, data: &[u8]) {
        self.insert_at(0, data)
    }

    /// Removes the entry at `off`; the following entry (if any) is now at `off`.
    pub fn delete_at(&mut self, off: usize) {
        let (_, _, n) = self.decode(off);
        self.buf.drain(off..n);
        self.count -= 1;
        self.maybe_shrink();
    }

    /// Removes `k` consecutive entries starting at `off`.
    pub fn delete_range(&mut self, off: usize, k: usize) {
        let mut end = off;
        for _ in 0..k {
            end = self.decode(end).2;
        }
        self.buf.drain(off..end);
        self.count -= k as u32;
        self.maybe_shrink();
    }

    fn maybe_shrink(&mut self) {
        if self.buf.capacity() > 64 && self.buf.len() < self.buf.capacity() / 2 {
            self.buf.shrink_to(self.buf.len() + self.buf.len() / 4);
        }
    }

    /// Replaces the entry at `off` with `data`.
    pub fn replace_at(&mut self, off: usize, data: &[u8]) {
        let (d, l, n) = self.decode(off);
        let new_sz = entry_size(data.len());
        if new_sz == n - off {
            if l == data.len() {
                self.buf[d..d + l].copy_from_slice(data);
            } else {
                write_entry(&mut self.buf[off..n], data);
            }
            return;
        }
        let old_sz = n - off;
        if new_sz > old_sz {
            let extra = new_sz - old_sz;
            self.grow(extra);
            let old = self.buf.len();
            self.buf.resize(old + extra, 0);
            self.buf.copy_within(n..old, n + extra);
        } else {
            let less = old_sz - new_sz;
            self.buf.copy_within(n.., n - less);
            let nl = self.buf.len() - less;
            self.buf.truncate(nl);
        }
        write_entry(&mut self.buf[off..off + new_sz], data);
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let off = self.first()?;
        let v = self.get(off).to_vec();
        self.delete_at(off);
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let off = self.last()?;
        let v = self.get(off).to_vec();
        self.buf.truncate(off);
        self.count -= 1;
        self.maybe_shrink();
        Some(v)
    }

    /// Forward iterator over the entries.
    pub fn iter(&self) -> Iter<'_> {
        Iter { lp: self, off: 0 }
    }

    /// Entries from the end.
    pub fn iter_rev(&self) -> RevIter<'_> {
        RevIter {
            lp: self,
            end: self.buf.len(),
        }
    }

    /// Moves the second half of the entries (from `index` on) into a new listpack.
    pub fn split_off(&mut self, index: usize) -> Listpack {
        let off = self.seek(index as isize).unwrap_or(self.buf.len());
        let tail = self.buf.split_off(off);
        let moved = self.count - index as u32;
        self.count = index as u32;
        self.buf.shrink_to_fit();
        Listpack {
            buf: tail,
            count: moved,
        }
    }

    /// Appends all of `other`'s entries.
    pub fn append(&mut self, other: &Listpack) {
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
    }
}

pub struct Iter<'a> {
    lp: &'a Listpack,
    off: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.off >= self.lp.buf.len() {
            return None;
        }
        let (d, l, n) = self.lp.decode(self.off);
        self.off = n;
        Some(&self.lp.buf[d..d + l])
    }
}

pub struct RevIter<'a> {
    lp: &'a Listpack,
    end: usize,
}

impl<'a> Iterator for RevIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.end == 0 {
            return None;
        }
        let s = self.lp.start_before(self.end);
        self.end = s;
        Some(self.lp.get(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_walk_both_ways() {
        let mut lp = Listpack::new();
        let vals: Vec<Vec<u8>> = [0usize, 1, 5, 126, 127, 128, 200, 16383, 16384, 70000]
            .iter()
            .map(|&n| vec![b'a' + (n % 26) as u8; n])
            .collect();
        for v in &vals {
            lp.push_back(v);
        }
        assert_eq!(lp.len(), vals.len());
        let f: Vec<&[u8]> = lp.iter().collect();
        assert_eq!(f, vals.iter().map(|v| &v[..]).collect::<Vec<_>>());
        let r: Vec<&[u8]> = lp.iter_rev().collect();
        assert_eq!(r, vals.iter().rev().map(|v| &v[..]).collect::<Vec<_>>());
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(lp.get(lp.seek(i as isize).unwrap()), &v[..]);
            let neg = i as isize - vals.len() as isize;
            assert_eq!(lp.get(lp.seek(neg).unwrap()), &v[..]);
        }
        let off = lp.seek(3).unwrap();
        lp.replace_at(off, &[b'z'; 300]);
        assert_eq!(lp.get(lp.seek(3).unwrap()), &[b'z'; 300][..]);
        assert_eq!(lp.get(lp.seek(4).unwrap()), &vals[4][..]);
        let off = lp.seek(3).unwrap();
        lp.replace_at(off, b"q");
        assert_eq!(lp.get(lp.seek(3).unwrap()), b"q");
        assert_eq!(lp.pop_back().unwrap(), vals[9]);
        assert_eq!(lp.pop_front().unwrap(), vals[0]);
        assert_eq!(lp.len(), 8);
    }
}
