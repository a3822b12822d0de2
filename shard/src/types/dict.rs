//! The large hash: a chained hash table whose buckets are thin pointers to
//! one exactly-sized block per field:
//!
//! ```text
//! [next: 6 bytes][field len: LEB128][field][value len: LEB128][value]
//! ```
//!
//! `next` is a 48-bit pointer: user-space addresses on x86-64 and AArch64
//! Linux fit in 47-48 bits (the kernel only maps higher when asked to with
//! an mmap hint, which the allocator never does; a node allocated above is
//! refused loudly rather than corrupted). The two bytes saved move a
//! typical node (short field and value) into the next smaller allocator
//! size class: 8 bytes a field at 1M fields.
//!
//! Why chaining rather than a swiss table: HSCAN needs Redis's guarantee
//! (every field present for the whole scan is returned at least once, even
//! across resizes) and the reverse-binary cursor gives it only when a
//! field's position is its home bucket, which chaining keeps. The cost is
//! the 6-byte `next` in the block; with 8-byte buckets at load 0.5..1 a
//! field costs 6 + 2 + field + value bytes (rounded up by the allocator) plus
//! 8..16 bytes of bucket array, against ~80 in Redis (24-byte dictEntry,
//! two sds headers and their allocator rounding, buckets).
//!
//! All unsafe code of the hash lives in this file.

use crate::types::varint::{len as varint_len, read_ptr as read_varint, write_ptr as write_varint};
use std::alloc::{alloc, dealloc, Layout};
use std::hash::BuildHasher;
use std::ptr;

type Hasher = foldhash::fast::FixedState;

const NEXT: usize = 6;
const PTR_MASK: u64 = (1 << 48) - 1;

#[inline]
fn node_size(klen: usize, vlen: usize) -> usize {
    NEXT + varint_len(klen) + klen + varint_len(vlen) + vlen
}

#[inline]
fn layout(size: usize) -> Layout {
    // SAFETY of unchecked: align 8 is a power of two and sizes are tiny
    // compared with isize::MAX (bounded by proto-max-bulk-len).
    Layout::from_size_align(size, 8).expect("node layout")
}

/// Allocates a node; `next` is its chain successor.
fn node_new(key: &[u8], val: &[u8], next: *mut u8) -> *mut u8 {
    let size = node_size(key.len(), val.len());
    let l = layout(size);
    // SAFETY: size > 0; every write below stays within `size` by
    // construction of node_size.
    unsafe {
        let p = alloc(l);
        if p.is_null() {
            std::alloc::handle_alloc_error(l);
        }
        assert!(
            (p as u64) & !PTR_MASK == 0,
            "allocation above 2^48: 48-bit node links cannot hold it"
        );
        write_next(p, next);
        let mut o = NEXT;
        o += write_varint(p.add(o), key.len());
        ptr::copy_nonoverlapping(key.as_ptr(), p.add(o), key.len());
        o += key.len();
        o += write_varint(p.add(o), val.len());
        ptr::copy_nonoverlapping(val.as_ptr(), p.add(o), val.len());
        p
    }
}

/// SAFETY (all node_* readers): `p` is a live node made by node_new.
#[inline]
unsafe fn node_next(p: *mut u8) -> *mut u8 {
    let mut b = [0u8; 8];
    ptr::copy_nonoverlapping(p, b.as_mut_ptr(), NEXT);
    u64::from_le_bytes(b) as usize as *mut u8
}
#[inline]
unsafe fn write_next(p: *mut u8, next: *mut u8) {
    let b = (next as u64).to_le_bytes();
    ptr::copy_nonoverlapping(b.as_ptr(), p, NEXT);
}
#[inline]
unsafe fn node_set_next(p: *mut u8, next: *mut u8) {
    write_next(p, next)
}
#[inline]
unsafe fn node_key<'a>(p: *mut u8) -> &'a [u8] {
    let (kl, n) = read_varint(p.add(NEXT));
    std::slice::from_raw_parts(p.add(NEXT + n), kl)
}
/// (value offset, value len)
#[inline]
unsafe fn node_val_pos(p: *mut u8) -> (usize, usize) {
    let (kl, n) = read_varint(p.add(NEXT));
    let vo = NEXT + n + kl;
    let (vl, m) = read_varint(p.add(vo));
    (vo + m, vl)
}
#[inline]
unsafe fn node_val<'a>(p: *mut u8) -> &'a [u8] {
    let (o, l) = node_val_pos(p);
    std::slice::from_raw_parts(p.add(o), l)
}
#[inline]
unsafe fn node_free(p: *mut u8) {
    let (o, l) = node_val_pos(p);
    dealloc(p, layout(o + l));
}

/// A chained hash table of byte-string fields and values.
pub struct Dict {
    buckets: Box<[*mut u8]>,
    len: usize,
    hasher: Hasher,
    /// Buckets not yet freed by `free_some` (starts at the bucket count).
    free_pos: usize,
}

// SAFETY: a Dict uniquely owns its nodes (like a Vec<Box<[u8]>>); it moves
// between threads only whole.
unsafe impl Send for Dict {}

impl Default for Dict {
    fn default() -> Self {
        Self::new()
    }
}

impl Dict {
    pub fn new() -> Dict {
        Dict::with_capacity(4)
    }

    pub fn with_capacity(n: usize) -> Dict {
        let size = n.max(4).next_power_of_two();
        Dict {
            buckets: vec![ptr::null_mut(); size].into_boxed_slice(),
            len: 0,
            hasher: Hasher::with_seed(rand::random()),
            free_pos: size,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// The node holding `key`, or null.
    #[inline]
    fn find(&self, key: &[u8]) -> *mut u8 {
        let b = self.hash(key) as usize & self.mask();
        let mut p = self.buckets[b];
        while !p.is_null() {
            // SAFETY: chains hold only live nodes.
            unsafe {
                if node_key(p) == key {
                    return p;
                }
                p = node_next(p);
            }
        }
        ptr::null_mut()
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let p = self.find(key);
        if p.is_null() {
            None
        } else {
            // SAFETY: live node, borrowed for as long as &self.
            Some(unsafe { node_val(p) })
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        !self.find(key).is_null()
    }

    /// Sets `key` to `val`; true when the field is new.
    pub fn insert(&mut self, key: &[u8], val: &[u8]) -> bool {
        let b = self.hash(key) as usize & self.mask();
        let mut prev: *mut u8 = ptr::null_mut();
        let mut p = self.buckets[b];
        // SAFETY: chains hold only live nodes; `prev` is the node before `p`
        // (null: `p` is the bucket's head).
        unsafe {
            while !p.is_null() {
                if node_key(p) == key {
                    let (vo, vl) = node_val_pos(p);
                    if vl == val.len() {
                        ptr::copy_nonoverlapping(val.as_ptr(), p.add(vo), vl);
                    } else {
                        let n = node_new(key, val, node_next(p));
                        if prev.is_null() {
                            self.buckets[b] = n;
                        } else {
                            node_set_next(prev, n);
                        }
                        node_free(p);
                    }
                    return false;
                }
                prev = p;
                p = node_next(p);
            }
            let n = node_new(key, val, self.buckets[b]);
            self.buckets[b] = n;
        }
        self.len += 1;
        if self.len > self.buckets.len() {
            self.resize(self.len.next_power_of_two());
        }
        true
    }

    /// Removes `key`; true when it was there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let b = self.hash(key) as usize & self.mask();
        let mut prev: *mut u8 = ptr::null_mut();
        let mut p = self.buckets[b];
        // SAFETY: as in insert.
        unsafe {
            while !p.is_null() {
                if node_key(p) == key {
                    if prev.is_null() {
                        self.buckets[b] = node_next(p);
                    } else {
                        node_set_next(prev, node_next(p));
                    }
                    node_free(p);
                    self.len -= 1;
                    if self.buckets.len() > 4 && self.len * 8 < self.buckets.len() {
                        self.resize(self.len.max(4).next_power_of_two());
                    }
                    return true;
                }
                prev = p;
                p = node_next(p);
            }
        }
        false
    }

    fn resize(&mut self, size: usize) {
        let mut nb = vec![ptr::null_mut::<u8>(); size].into_boxed_slice();
        let mask = size - 1;
        for b in self.buckets.iter_mut() {
            let mut p = std::mem::replace(b, ptr::null_mut());
            while !p.is_null() {
                // SAFETY: live nodes moved from the old chains to the new.
                unsafe {
                    let next = node_next(p);
                    let h = self.hasher.hash_one(node_key(p)) as usize & mask;
                    node_set_next(p, nb[h]);
                    nb[h] = p;
                    p = next;
                }
            }
        }
        self.buckets = nb;
        self.free_pos = size;
    }

    pub fn iter(&self) -> DictIter<'_> {
        DictIter {
            dict: self,
            bucket: 0,
            node: ptr::null_mut(),
        }
    }

    /// Visits bucket `cursor`'s fields and returns the next cursor (0 when
    /// done), with Redis's reverse-binary increment: fields present for the
    /// whole scan are visited at least once even if the table is resized
    /// between calls.
    pub fn scan_bucket<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8], &'a [u8])) -> u64 {
        let mask = self.mask() as u64;
        let mut p = self.buckets[(cursor & mask) as usize];
        while !p.is_null() {
            // SAFETY: live nodes.
            unsafe {
                f(node_key(p), node_val(p));
                p = node_next(p);
            }
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// One HSCAN/SSCAN step: visits buckets from `cursor` until about
    /// `count` fields were seen (and at most 10x `count` buckets, Redis's
    /// bound on empty ones); returns the next cursor, 0 when done.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a [u8]),
    ) -> u64 {
        let mut c = cursor;
        let mut budget = count.max(1) * 10;
        let mut found = 0;
        loop {
            c = self.scan_bucket(c, |k, v| {
                found += 1;
                f(k, v)
            });
            budget = budget.saturating_sub(1);
            if c == 0 || found >= count || budget == 0 {
                return c;
            }
        }
    }

    /// A random field (not perfectly uniform: a random non-empty bucket,
    /// then a random node of its chain, as Redis's dictGetRandomKey).
    pub fn random(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        if self.len == 0 {
            return None;
        }
        loop {
            let b = rng.random_range(0..self.buckets.len());
            let mut p = self.buckets[b];
            if p.is_null() {
                continue;
            }
            let mut n = 0;
            let mut q = p;
            while !q.is_null() {
                n += 1;
                // SAFETY: live nodes.
                q = unsafe { node_next(q) };
            }
            let k = rng.random_range(0..n);
            for _ in 0..k {
                // SAFETY: k < chain length.
                p = unsafe { node_next(p) };
            }
            // SAFETY: live node.
            return Some(unsafe { (node_key(p), node_val(p)) });
        }
    }

    /// A uniformly random field, for SPOP and SRANDMEMBER: a random
    /// (bucket, chain position) pair, drawn again until that position
    /// exists. Positions are drawn from 0..max(4, chain length), so every
    /// field of a chain up to 4 long is exactly as likely as any other
    /// (`random`'s bucket-then-chain pick favours fields alone in their
    /// bucket by up to 2x at load 1). The load stays above 1/8 (remove
    /// shrinks), so at most ~32 draws are expected, 4-8 at usual loads.
    pub fn random_fair(&self, rng: &mut impl rand::Rng) -> Option<(&[u8], &[u8])> {
        if self.len == 0 {
            return None;
        }
        loop {
            let b = rng.random_range(0..self.buckets.len());
            let head = self.buckets[b];
            if head.is_null() {
                continue;
            }
            let mut n = 0;
            let mut q = head;
            while !q.is_null() {
                n += 1;
                // SAFETY: live nodes.
                q = unsafe { node_next(q) };
            }
            let k = rng.random_range(0..n.max(4));
            if k >= n {
                continue;
            }
            let mut p = head;
            for _ in 0..k {
                // SAFETY: k < chain length.
                p = unsafe { node_next(p) };
            }
            // SAFETY: live node.
            return Some(unsafe { (node_key(p), node_val(p)) });
        }
    }

    /// Frees the fields of up to `budget` buckets, from the end (lazy
    /// free of a deleted hash). The dict must not be used for anything but
    /// more `free_some` calls and dropping afterwards. True when empty.
    pub fn free_some(&mut self, budget: usize) -> bool {
        let mut done = 0;
        while done < budget && self.free_pos > 0 {
            self.free_pos -= 1;
            let mut p = std::mem::replace(&mut self.buckets[self.free_pos], ptr::null_mut());
            while !p.is_null() {
                // SAFETY: each node is freed once, after reading its next.
                unsafe {
                    let next = node_next(p);
                    node_free(p);
                    p = next;
                }
                self.len -= 1;
                done += 1;
            }
            done += 1;
        }
        self.free_pos == 0
    }

    /// Bytes allocated: bucket array plus nodes (before allocator rounding).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.len() * 8
            + self
                .iter()
                .map(|(k, v)| node_size(k.len(), v.len()))
                .sum::<usize>()
    }
}

impl Drop for Dict {
    fn drop(&mut self) {
        for b in self.buckets.iter_mut() {
            let mut p = std::mem::replace(b, ptr::null_mut());
            while !p.is_null() {
                // SAFETY: each node is freed once, after reading its next.
                unsafe {
                    let next = node_next(p);
                    node_free(p);
                    p = next;
                }
            }
        }
    }
}

impl Clone for Dict {
    fn clone(&self) -> Dict {
        let mut d = Dict::with_capacity(self.len);
        for (k, v) in self.iter() {
            d.insert(k, v);
        }
        d
    }
}

impl std::fmt::Debug for Dict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dict({} fields)", self.len)
    }
}

pub struct DictIter<'a> {
    dict: &'a Dict,
    bucket: usize,
    node: *mut u8,
}

impl<'a> Iterator for DictIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        while self.node.is_null() {
            if self.bucket >= self.dict.buckets.len() {
                return None;
            }
            self.node = self.dict.buckets[self.bucket];
            self.bucket += 1;
        }
        let p = self.node;
        // SAFETY: live node borrowed for 'a (the dict is borrowed).
        unsafe {
            self.node = node_next(p);
            Some((node_key(p), node_val(p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn insert_get_remove_resize() {
        let mut d = Dict::new();
        let mut m = HashMap::new();
        for i in 0..5000u32 {
            let k = format!("f{i}");
            let v = "x".repeat((i % 70) as usize);
            assert!(d.insert(k.as_bytes(), v.as_bytes()));
            m.insert(k, v);
        }
        assert_eq!(d.len(), 5000);
        assert!(!d.insert(b"f7", b"new"));
        m.insert("f7".into(), "new".into());
        for (k, v) in &m {
            assert_eq!(d.get(k.as_bytes()), Some(v.as_bytes()));
        }
        for i in (0..5000u32).step_by(2) {
            assert!(d.remove(format!("f{i}").as_bytes()));
        }
        assert!(!d.remove(b"f0"));
        assert_eq!(d.len(), 2500);
        assert_eq!(d.iter().count(), 2500);
        let c = d.clone();
        assert_eq!(c.len(), 2500);
    }

    #[test]
    fn scan_survives_resizes() {
        let mut d = Dict::new();
        for i in 0..1000u32 {
            d.insert(format!("a{i}").as_bytes(), b"v");
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0u64;
        let mut step = 0;
        loop {
            cursor = d.scan_bucket(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            step += 1;
            if step == 50 {
                for i in 0..3000u32 {
                    d.insert(format!("b{i}").as_bytes(), b"v");
                }
            }
            if step == 400 {
                for i in 0..3000u32 {
                    d.remove(format!("b{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000u32 {
            assert!(seen.contains(format!("a{i}").as_bytes()), "a{i} missed");
        }
    }
}
