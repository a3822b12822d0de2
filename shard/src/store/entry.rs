//! One key and its value in a single allocation, reached through a thin pointer.
//!
//! Why: the per-key overhead target (under ~24 B beyond key and value) rules
//! out a table of fat entries (key struct + value enum + TTL would be 48-64 B
//! per bucket before the key and value bytes themselves). A table slot here
//! is one 8-byte pointer; everything else lives in one exactly-sized block:
//!
//! ```text
//! [flags u8][lru u24][expire i64, only if FLAG_EXPIRE][key len varint][key]
//! payload, by kind:
//!   KIND_INLINE: [value len varint][value bytes]        short strings
//!   KIND_OBJECT: [Box<Object> as 8 unaligned bytes]     everything else
//! ```
//!
//! The block's size is always derivable from its own header, so it is freed
//! with the same layout it was allocated with. All unsafe code of the store
//! is in this file (plus the pointer varint helpers of types/varint.rs); the
//! rest of the crate sees a safe API.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;

use super::object::Object;
use crate::types::varint::{len as varint_len, read_ptr as read_varint, write_ptr as write_varint};

const KIND_MASK: u8 = 0b0000_0011;
const KIND_INLINE: u8 = 0;
const KIND_OBJECT: u8 = 1;
/// The entry carries an absolute expiry time.
const FLAG_EXPIRE: u8 = 0b0000_0100;
/// A string that Redis would report as "raw" even though it is short
/// (it was built by APPEND or SETRANGE).
const FLAG_RAW: u8 = 0b0000_1000;

/// Strings longer than this are kept as `Object::Str` (a growable buffer),
/// so APPEND on them is amortised O(1) instead of reallocating the block.
pub const INLINE_MAX: usize = 64;

const HEADER: usize = 4;

/// The value of an entry, borrowed.
pub enum ValueRef<'a> {
    /// A string (inline or boxed); `raw` is the Redis encoding hint.
    Str(&'a [u8]),
    Obj(&'a Object),
}

/// An owned key/value block. Dropping it frees the block and its object.
pub struct Entry {
    ptr: NonNull<u8>,
}

// SAFETY: an Entry uniquely owns its block (like a Box<[u8]>) and the boxed
// Object inside it, which is Send. Entries move between shard threads only
// whole (cross-shard RENAME/COPY), never shared.
unsafe impl Send for Entry {}

/// Hints the CPU to start loading the cache line at `p`; never faults.
#[inline(always)]
pub fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever `p` is.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: PRFM is only a hint; it never faults, whatever `p` is.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
    }
}

enum Payload<'a> {
    Inline(&'a [u8]),
    Object(Box<Object>),
}

impl Entry {
    /// A string entry; short strings are stored inline, long ones boxed.
    pub fn new_string(key: &[u8], value: &[u8], expire: Option<i64>, lru: u32) -> Entry {
        if value.len() <= INLINE_MAX {
            Self::build(key, expire, lru, 0, Payload::Inline(value))
        } else {
            Self::build(
                key,
                expire,
                lru,
                0,
                Payload::Object(Box::new(Object::Str(value.to_vec()))),
            )
        }
    }

    /// An entry holding an object (collections, or strings being grown).
    pub fn new_object(key: &[u8], obj: Object, expire: Option<i64>, lru: u32) -> Entry {
        Self::build(key, expire, lru, 0, Payload::Object(Box::new(obj)))
    }

    fn build(
        key: &[u8],
        expire: Option<i64>,
        lru: u32,
        extra_flags: u8,
        payload: Payload,
    ) -> Entry {
        let kl = key.len();
        let mut size = HEADER + varint_len(kl) + kl;
        if expire.is_some() {
            size += 8;
        }
        let (kind, psize) = match &payload {
            Payload::Inline(v) => (KIND_INLINE, varint_len(v.len()) + v.len()),
            Payload::Object(_) => (KIND_OBJECT, std::mem::size_of::<usize>()),
        };
        size += psize;
        let layout = Layout::from_size_align(size, 1).expect("entry size");
        // SAFETY: size > 0 (header); every byte written below lies within
        // `size` by construction of the sum above.
        unsafe {
            let p = alloc(layout);
            let Some(ptr) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            let mut flags = kind | extra_flags;
            if expire.is_some() {
                flags |= FLAG_EXPIRE;
            }
            *p = flags;
            let lru = lru & 0xFF_FFFF;
            *p.add(1) = lru as u8;
            *p.add(2) = (lru >> 8) as u8;
            *p.add(3) = (lru >> 16) as u8;
            let mut off = HEADER;
            if let Some(t) = expire {
                std::ptr::write_unaligned(p.add(off) as *mut i64, t);
                off += 8;
            }
            off += write_varint(p.add(off), kl);
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(off), kl);
            off += kl;
            match payload {
                Payload::Inline(v) => {
                    off += write_varint(p.add(off), v.len());
                    std::ptr::copy_nonoverlapping(v.as_ptr(), p.add(off), v.len());
                }
                Payload::Object(b) => {
                    std::ptr::write_unaligned(p.add(off) as *mut usize, Box::into_raw(b) as usize);
                }
            }
            Entry { ptr }
        }
    }

    /// Hints the CPU to load the block's first cache line (header and
    /// usually the whole key and a short value).
    #[inline]
    pub fn prefetch(&self) {
        prefetch_line(self.ptr.as_ptr());
    }

    #[inline]
    fn flags(&self) -> u8 {
        // SAFETY: the block always holds at least the header.
        unsafe { *self.ptr.as_ptr() }
    }

    /// Offset of the key-length varint.
    #[inline]
    fn key_len_off(&self) -> usize {
        if self.flags() & FLAG_EXPIRE != 0 {
            HEADER + 8
        } else {
            HEADER
        }
    }

    /// (offset of key bytes, key length)
    #[inline]
    fn key_pos(&self) -> (usize, usize) {
        let o = self.key_len_off();
        // SAFETY: the key-length varint is written at this offset by build().
        let (kl, n) = unsafe { read_varint(self.ptr.as_ptr().add(o)) };
        (o + n, kl)
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        let (o, kl) = self.key_pos();
        // SAFETY: key bytes lie at [o, o+kl) inside the block.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(o), kl) }
    }

    #[inline]
    fn payload_off(&self) -> usize {
        let (o, kl) = self.key_pos();
        o + kl
    }

    /// Absolute expiry in Unix milliseconds, if the key is volatile.
    #[inline]
    pub fn expire_at(&self) -> Option<i64> {
        if self.flags() & FLAG_EXPIRE != 0 {
            // SAFETY: FLAG_EXPIRE means 8 bytes of expiry follow the header.
            Some(unsafe { std::ptr::read_unaligned(self.ptr.as_ptr().add(HEADER) as *const i64) })
        } else {
            None
        }
    }

    /// True when the entry has an expiry at or before `now` (ms).
    #[inline]
    pub fn is_expired(&self, now: i64) -> bool {
        matches!(self.expire_at(), Some(t) if t <= now)
    }

    #[inline]
    fn object_ptr(&self) -> Option<*mut Object> {
        if self.flags() & KIND_MASK == KIND_OBJECT {
            // SAFETY: KIND_OBJECT payloads are a Box<Object> pointer.
            let raw = unsafe {
                std::ptr::read_unaligned(self.ptr.as_ptr().add(self.payload_off()) as *const usize)
            };
            Some(raw as *mut Object)
        } else {
            None
        }
    }

    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        match self.object_ptr() {
            // SAFETY: the Box is owned by this entry and lives as long as it.
            #[allow(unreachable_patterns)] // until collections join Object
            Some(o) => match unsafe { &*o } {
                Object::Str(s) => ValueRef::Str(s),
                obj => ValueRef::Obj(obj),
            },
            None => {
                let o = self.payload_off();
                // SAFETY: inline payload = varint length + that many bytes.
                unsafe {
                    let (vl, n) = read_varint(self.ptr.as_ptr().add(o));
                    ValueRef::Str(std::slice::from_raw_parts(self.ptr.as_ptr().add(o + n), vl))
                }
            }
        }
    }

    /// The string value, if this is a string.
    #[inline]
    pub fn as_str(&self) -> Option<&[u8]> {
        match self.value() {
            ValueRef::Str(s) => Some(s),
            ValueRef::Obj(_) => None,
        }
    }

    /// The boxed object, mutably (collections, and strings kept boxed).
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        // SAFETY: uniquely owned through &mut self.
        self.object_ptr().map(|o| unsafe { &mut *o })
    }

    pub fn object(&self) -> Option<&Object> {
        // SAFETY: owned by this entry.
        self.object_ptr().map(|o| unsafe { &*o })
    }

    /// Redis's TYPE name.
    pub fn type_name(&self) -> &'static str {
        match self.value() {
            ValueRef::Str(_) => "string",
            ValueRef::Obj(o) => o.type_name(),
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self.value(), ValueRef::Str(_))
    }

    /// Redis's OBJECT ENCODING name. Strings follow Redis 7.0's rules: a
    /// canonical integer is "int", up to 44 bytes "embstr", else "raw";
    /// strings built by APPEND/SETRANGE are "raw" whatever their length.
    pub fn encoding(&self) -> &'static str {
        match self.value() {
            ValueRef::Str(s) => {
                if self.flags() & FLAG_RAW != 0 {
                    "raw"
                } else if s.len() <= 20 && crate::util::parse_i64_strict(s).is_some() {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            ValueRef::Obj(o) => o.encoding(),
        }
    }

    /// The 24-bit LRU clock value of the last access (seconds).
    #[inline]
    pub fn lru(&self) -> u32 {
        // SAFETY: header bytes 1..4.
        unsafe {
            let p = self.ptr.as_ptr();
            *p.add(1) as u32 | (*p.add(2) as u32) << 8 | (*p.add(3) as u32) << 16
        }
    }

    #[inline]
    pub fn set_lru(&mut self, lru: u32) {
        // SAFETY: header bytes 1..4, uniquely owned.
        unsafe {
            let p = self.ptr.as_ptr();
            *p.add(1) = lru as u8;
            *p.add(2) = (lru >> 8) as u8;
            *p.add(3) = (lru >> 16) as u8;
        }
    }

    /// Takes the payload out, leaving the entry to be freed without it.
    fn take_payload(self) -> (Vec<u8>, Option<i64>, Option<Box<Object>>, u8, u32) {
        let key = self.key().to_vec();
        let exp = self.expire_at();
        let flags = self.flags();
        let lru = self.lru();
        let obj = self.object_ptr().map(|o| {
            // SAFETY: ownership of the Box moves out; the block is freed
            // below without dropping it again (payload kind reset).
            unsafe { Box::from_raw(o) }
        });
        // Mark inline so Drop does not free the object we just took.
        // SAFETY: header byte, uniquely owned.
        unsafe { *self.ptr.as_ptr() = flags & !KIND_MASK };
        // The inline "value" now reads the pointer bytes as a varint length;
        // Drop only needs the size, so recompute it from what we recorded.
        let size = self.block_size_with(flags);
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: same size as allocated (computed from the original flags).
        unsafe { dealloc(ptr.as_ptr(), Layout::from_size_align_unchecked(size, 1)) };
        (key, exp, obj, flags, lru)
    }

    /// The block's size, computed as if its flags were `flags`.
    fn block_size_with(&self, flags: u8) -> usize {
        let (ko, kl) = self.key_pos();
        let po = ko + kl;
        if flags & KIND_MASK == KIND_OBJECT {
            po + std::mem::size_of::<usize>()
        } else {
            // SAFETY: inline payload header at po.
            let (vl, n) = unsafe { read_varint(self.ptr.as_ptr().add(po)) };
            po + n + vl
        }
    }

    /// Sets or clears the expiry (rebuilds the block when its shape changes).
    pub fn set_expire(&mut self, expire: Option<i64>) {
        match (self.expire_at(), expire) {
            (Some(_), Some(t)) => {
                // SAFETY: FLAG_EXPIRE: 8 bytes after the header.
                unsafe { std::ptr::write_unaligned(self.ptr.as_ptr().add(HEADER) as *mut i64, t) }
            }
            (None, None) => {}
            _ => self.rebuild(|key, _old_exp, flags, lru, payload| {
                Entry::build(key, expire, lru, flags & FLAG_RAW, payload)
            }),
        }
    }

    /// Replaces a string value in place (keeping key and TTL). `raw` marks
    /// strings produced by APPEND/SETRANGE (Redis's "raw" encoding).
    pub fn set_string(&mut self, value: &[u8], raw: bool) {
        if let Some(Object::Str(s)) = self.object_mut() {
            if value.len() > INLINE_MAX || raw {
                s.clear();
                s.extend_from_slice(value);
                self.set_raw_flag(raw);
                return;
            }
        }
        if !raw && self.flags() & KIND_MASK == KIND_INLINE {
            let o = self.payload_off();
            // SAFETY: inline payload = varint length + that many bytes; a
            // value of the same length fits the block exactly as it is.
            unsafe {
                let p = self.ptr.as_ptr().add(o);
                let (vl, n) = read_varint(p);
                if vl == value.len() {
                    std::ptr::copy_nonoverlapping(value.as_ptr(), p.add(n), vl);
                    self.set_raw_flag(false);
                    return;
                }
            }
        }
        let exp = self.expire_at();
        let lru = self.lru();
        let new = if raw && value.len() > INLINE_MAX {
            Entry::new_object(self.key(), Object::Str(value.to_vec()), exp, lru)
        } else {
            Entry::new_string(self.key(), value, exp, lru)
        };
        *self = new;
        self.set_raw_flag(raw);
    }

    /// Replaces the value with an object (keeping key and TTL).
    pub fn set_object(&mut self, obj: Object) {
        let new = Entry::new_object(self.key(), obj, self.expire_at(), self.lru());
        *self = new;
    }

    /// The string as a growable buffer (converting an inline string), for
    /// APPEND and SETRANGE. Marks the value "raw", as Redis does.
    pub fn string_buf_mut(&mut self) -> Option<&mut Vec<u8>> {
        self.as_str()?;
        if self.object_ptr().is_none() {
            let v = self.as_str().unwrap_or_default().to_vec();
            let new = Entry::new_object(self.key(), Object::Str(v), self.expire_at(), self.lru());
            *self = new;
        }
        self.set_raw_flag(true);
        match self.object_mut() {
            Some(Object::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn set_raw_flag(&mut self, raw: bool) {
        // SAFETY: header byte, uniquely owned.
        unsafe {
            let p = self.ptr.as_ptr();
            if raw {
                *p |= FLAG_RAW;
            } else {
                *p &= !FLAG_RAW;
            }
        }
    }

    /// The same value and TTL under another key (RENAME, COPY across shards).
    pub fn with_key(self, key: &[u8]) -> Entry {
        let (_, exp, obj, flags, lru) = match self.object_ptr() {
            Some(_) => self.take_payload(),
            None => {
                let v = self.as_str().unwrap_or_default().to_vec();
                let e = Entry::build(
                    key,
                    self.expire_at(),
                    self.lru(),
                    self.flags() & FLAG_RAW,
                    Payload::Inline(&v),
                );
                return e;
            }
        };
        let obj = obj.expect("object payload");
        Entry::build(key, exp, lru, flags & FLAG_RAW, Payload::Object(obj))
    }

    fn rebuild(&mut self, f: impl FnOnce(&[u8], Option<i64>, u8, u32, Payload) -> Entry) {
        let placeholder = Entry::new_string(b"", b"", None, 0);
        let old = std::mem::replace(self, placeholder);
        let new = match old.object_ptr() {
            Some(_) => {
                let (key, exp, obj, flags, lru) = old.take_payload();
                f(
                    &key,
                    exp,
                    flags,
                    lru,
                    Payload::Object(obj.expect("object payload")),
                )
            }
            None => {
                let v = old.as_str().unwrap_or_default().to_vec();
                f(
                    old.key(),
                    old.expire_at(),
                    old.flags(),
                    old.lru(),
                    Payload::Inline(&v),
                )
            }
        };
        *self = new;
    }

    /// Bytes this entry occupies (block + object estimate), for MEMORY USAGE
    /// style accounting and tests.
    pub fn block_size(&self) -> usize {
        self.block_size_with(self.flags())
    }
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        let flags = self.flags();
        match self.object() {
            Some(o) => Entry::build(
                self.key(),
                self.expire_at(),
                self.lru(),
                flags & FLAG_RAW,
                Payload::Object(Box::new(o.clone())),
            ),
            None => Entry::build(
                self.key(),
                self.expire_at(),
                self.lru(),
                flags & FLAG_RAW,
                Payload::Inline(self.as_str().unwrap_or_default()),
            ),
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let size = self.block_size();
        if let Some(o) = self.object_ptr() {
            // SAFETY: the Box was created by build() and is owned here.
            drop(unsafe { Box::from_raw(o) });
        }
        // SAFETY: `size` is the size the block was allocated with.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(size, 1),
            )
        };
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("type", &self.type_name())
            .field("expire_at", &self.expire_at())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_string_round_trip() {
        let e = Entry::new_string(b"key:1", b"value", None, 7);
        assert_eq!(e.key(), b"key:1");
        assert_eq!(e.as_str(), Some(&b"value"[..]));
        assert_eq!(e.expire_at(), None);
        assert_eq!(e.lru(), 7);
        // header 4 + keylen 1 + key 5 + vlen 1 + value 5
        assert_eq!(e.block_size(), 16);
        assert_eq!(e.encoding(), "embstr");
    }

    #[test]
    fn expiry_added_changed_and_removed() {
        let mut e = Entry::new_string(b"k", b"v", None, 0);
        e.set_expire(Some(1234));
        assert_eq!(e.expire_at(), Some(1234));
        assert_eq!(e.key(), b"k");
        assert_eq!(e.as_str(), Some(&b"v"[..]));
        e.set_expire(Some(99));
        assert_eq!(e.expire_at(), Some(99));
        assert!(e.is_expired(99));
        assert!(!e.is_expired(98));
        e.set_expire(None);
        assert_eq!(e.expire_at(), None);
        assert_eq!(e.as_str(), Some(&b"v"[..]));
    }

    #[test]
    fn long_keys_and_values() {
        let key = vec![b'k'; 300];
        let val = vec![b'v'; 1000];
        let mut e = Entry::new_string(&key, &val, Some(5), 1);
        assert_eq!(e.key(), &key[..]);
        assert_eq!(e.as_str(), Some(&val[..]));
        assert_eq!(e.encoding(), "raw");
        e.set_string(b"12345", false);
        assert_eq!(e.as_str(), Some(&b"12345"[..]));
        assert_eq!(e.encoding(), "int");
        assert_eq!(e.expire_at(), Some(5));
        assert_eq!(e.key(), &key[..]);
    }

    #[test]
    fn append_makes_raw_and_keeps_growing() {
        let mut e = Entry::new_string(b"k", b"ab", Some(10), 0);
        e.string_buf_mut().unwrap().extend_from_slice(b"cd");
        assert_eq!(e.as_str(), Some(&b"abcd"[..]));
        assert_eq!(e.encoding(), "raw");
        for _ in 0..100 {
            e.string_buf_mut().unwrap().extend_from_slice(b"x");
        }
        assert_eq!(e.as_str().unwrap().len(), 104);
        assert_eq!(e.expire_at(), Some(10));
        e.set_expire(None);
        assert_eq!(e.as_str().unwrap().len(), 104);
        let c = e.clone();
        assert_eq!(c.as_str(), e.as_str());
        assert_eq!(c.encoding(), "raw");
    }

    #[test]
    fn rename_keeps_value_and_ttl() {
        let e = Entry::new_string(b"a", b"1", Some(77), 3);
        let r = e.with_key(b"bbbb");
        assert_eq!(r.key(), b"bbbb");
        assert_eq!(r.as_str(), Some(&b"1"[..]));
        assert_eq!(r.expire_at(), Some(77));
        let big = Entry::new_string(b"a", &[b'z'; 200], None, 3);
        let r = big.with_key(b"c");
        assert_eq!(r.as_str().unwrap().len(), 200);
    }
}
