//! LEB128 lengths, the one encoding of every length prefix in the store:
//! entry blocks (store/entry.rs), hash-table nodes (dict.rs), listpacks and
//! sorted-set leaves. Slice versions for buffers, pointer versions for the
//! raw blocks of entry.rs and dict.rs.

/// Bytes `v` takes.
#[inline]
pub fn len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads the value at `b[at..]`; returns (value, offset after it).
#[inline]
pub fn read(b: &[u8], at: usize) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = at;
    loop {
        let c = b[i];
        v |= ((c & 0x7f) as usize) << shift;
        i += 1;
        if c < 0x80 {
            return (v, i);
        }
        shift += 7;
    }
}

/// Writes `v` at `b[at..]`; returns the offset after it.
#[inline]
pub fn write(b: &mut [u8], at: usize, mut v: usize) -> usize {
    let mut i = at;
    while v >= 0x80 {
        b[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    b[i] = v as u8;
    i + 1
}

/// Reads the value at `p`; returns (value, bytes read).
///
/// # Safety
/// `p` points into a live allocation holding a whole varint.
#[inline]
pub unsafe fn read_ptr(p: *const u8) -> (usize, usize) {
    let mut v = 0usize;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let c = *p.add(i);
        v |= ((c & 0x7f) as usize) << shift;
        i += 1;
        if c < 0x80 {
            return (v, i);
        }
        shift += 7;
    }
}

/// Writes `v` at `p`; returns bytes written.
///
/// # Safety
/// `p` points into a live allocation with `len(v)` writable bytes.
#[inline]
pub unsafe fn write_ptr(p: *mut u8, mut v: usize) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        *p.add(i) = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    *p.add(i) = v as u8;
    i + 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let mut b = [0u8; 10];
        for v in [0, 1, 127, 128, 16383, 16384, 1 << 40, usize::MAX] {
            let end = super::write(&mut b, 0, v);
            assert_eq!(end, super::len(v));
            assert_eq!(super::read(&b, 0), (v, end));
            // SAFETY: b holds the varint just written.
            assert_eq!(unsafe { super::read_ptr(b.as_ptr()) }, (v, end));
        }
    }
}
