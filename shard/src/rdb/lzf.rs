//! LZF, the compression Redis applies to strings in RDB files: a byte
//! stream of literal runs (control byte < 32: that many + 1 bytes follow)
//! and back references (3 high bits: length - 2, 7 meaning a length byte
//! follows; 13 bits of offset - 1). Our own implementation of the format.

const HLOG: usize = 14;
const MAX_LIT: usize = 32;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

#[inline]
fn hash3(p: &[u8]) -> usize {
    let v = (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32;
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG as u32)) as usize
}

/// Compresses `input`; None when the result would not be shorter than
/// `max_out` bytes (the caller then stores the string as it is).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let n = input.len();
    if n < 4 {
        return None;
    }
    let mut table = vec![u32::MAX; 1 << HLOG];
    let mut out: Vec<u8> = Vec::with_capacity(max_out.min(n));
    let mut lit_start = 0usize; // start of the pending literal run
    let mut i = 0usize;
    let flush_lits = |out: &mut Vec<u8>, from: usize, to: usize| {
        let mut s = from;
        while s < to {
            let k = (to - s).min(MAX_LIT);
            out.push((k - 1) as u8);
            out.extend_from_slice(&input[s..s + k]);
            s += k;
        }
    };
    while i + 2 < n {
        let h = hash3(&input[i..]);
        let cand = table[h];
        table[h] = i as u32;
        if cand != u32::MAX {
            let r = cand as usize;
            let off = i - r - 1;
            if off < MAX_OFF && input[r..r + 3] == input[i..i + 3] {
                let maxlen = (n - i).min(MAX_REF);
                let mut len = 3;
                while len < maxlen && input[r + len] == input[i + len] {
                    len += 1;
                }
                flush_lits(&mut out, lit_start, i);
                let l = len - 2;
                if l < 7 {
                    out.push(((l as u8) << 5) | (off >> 8) as u8);
                } else {
                    out.push((7u8 << 5) | (off >> 8) as u8);
                    out.push((l - 7) as u8);
                }
                out.push(off as u8);
                if out.len() >= max_out {
                    return None;
                }
                // Index the positions inside the match (cheaply: a few).
                let end = i + len;
                let mut j = i + 1;
                while j < end && j + 2 < n {
                    table[hash3(&input[j..])] = j as u32;
                    j += 1;
                }
                i = end;
                lit_start = i;
                continue;
            }
        }
        i += 1;
        if i - lit_start >= MAX_LIT {
            flush_lits(&mut out, lit_start, i);
            lit_start = i;
            if out.len() >= max_out {
                return None;
            }
        }
    }
    flush_lits(&mut out, lit_start, n);
    if out.len() >= max_out || out.is_empty() {
        return None;
    }
    Some(out)
}

/// Decompresses into exactly `out_len` bytes; None on malformed input.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(input.len().saturating_mul(300)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let k = ctrl + 1;
            if i + k > input.len() || out.len() + k > out_len {
                return None;
            }
            out.extend_from_slice(&input[i..i + k]);
            i += k;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i)? as usize;
                i += 1;
            }
            let off = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            len += 2;
            if off > out.len() || out.len() + len > out_len {
                return None;
            }
            let start = out.len() - off;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compresses_repetitive_text() {
        let s = b"hello hello hello hello hello hello hello hello world".repeat(20);
        let c = compress(&s, s.len() - 4).expect("compressible");
        assert!(c.len() < s.len() / 4);
        assert_eq!(decompress(&c, s.len()).unwrap(), s);
        assert!(compress(b"abcdefgh", 4).is_none());
        assert!(decompress(&[0xff, 0x00], 10).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..5000)) {
            if let Some(c) = compress(&data, data.len()) {
                prop_assert!(c.len() < data.len());
                prop_assert_eq!(decompress(&c, data.len()).unwrap(), data);
            }
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..1000) {
            let _ = decompress(&data, n);
        }
    }
}
