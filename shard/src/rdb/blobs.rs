//! The packed blobs an RDB file embeds as strings: Redis's listpack (written
//! and read), ziplist and zipmap (read only: older versions wrote them) and
//! intset (written and read). Every reader checks bounds and says what is
//! wrong instead of panicking.

use crate::util::parse_i64_strict;

/// An element of a packed blob: integers are kept as integers.
#[derive(Clone, Debug, PartialEq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(i) => itoa::Buffer::new().format(*i).as_bytes().to_vec(),
        }
    }
}

/// Builds a listpack the way Redis's lpAppend does: strings that read as
/// integers are stored as integers.
pub struct LpWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for LpWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl LpWriter {
    pub fn new() -> LpWriter {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0; 6]);
        LpWriter { buf, count: 0 }
    }

    fn backlen(&mut self, l: usize) {
        let b = &mut self.buf;
        if l <= 127 {
            b.push(l as u8);
        } else if l < 16383 {
            b.push((l >> 7) as u8);
            b.push((l & 127) as u8 | 128);
        } else if l < 2_097_151 {
            b.push((l >> 14) as u8);
            b.push(((l >> 7) & 127) as u8 | 128);
            b.push((l & 127) as u8 | 128);
        } else if l < 268_435_455 {
            b.push((l >> 21) as u8);
            b.push(((l >> 14) & 127) as u8 | 128);
            b.push(((l >> 7) & 127) as u8 | 128);
            b.push((l & 127) as u8 | 128);
        } else {
            b.push((l >> 28) as u8);
            b.push(((l >> 21) & 127) as u8 | 128);
            b.push(((l >> 14) & 127) as u8 | 128);
            b.push(((l >> 7) & 127) as u8 | 128);
            b.push((l & 127) as u8 | 128);
        }
    }

    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            b.push(0xC0 | (u >> 8) as u8);
            b.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            b.push(0xF1);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            b.push(0xF2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            b.push(0xF3);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(0xF4);
            b.extend_from_slice(&v.to_le_bytes());
        }
        let l = self.buf.len() - start;
        self.backlen(l);
        self.count += 1;
    }

    pub fn push(&mut self, s: &[u8]) {
        if s.len() <= 20 {
            if let Some(v) = parse_i64_strict(s) {
                return self.push_int(v);
            }
        }
        let start = self.buf.len();
        let n = s.len();
        let b = &mut self.buf;
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.push(0xE0 | (n >> 8) as u8);
            b.push(n as u8);
        } else {
            b.push(0xF0);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        let l = self.buf.len() - start;
        self.backlen(l);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = if self.count < 65535 {
            self.count as u16
        } else {
            65535
        };
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64)
}

/// Sign-extends the low `bits` bits of `v`.
fn sext(v: u64, bits: u32) -> i64 {
    let s = 64 - bits;
    ((v << s) as i64) >> s
}

/// Walks a listpack's elements, checking its structure.
pub fn listpack_each<'a>(
    lp: &'a [u8],
    mut f: impl FnMut(Elem<'a>) -> Result<(), String>,
) -> Result<usize, String> {
    let bad = |w: &str| Err(format!("invalid listpack: {w}"));
    if lp.len() < 7 {
        return bad("too short");
    }
    if le(&lp[..4]) as usize != lp.len() {
        return bad("header size mismatch");
    }
    let declared = le(&lp[4..6]) as usize;
    let mut p = 6;
    let mut n = 0;
    loop {
        let Some(&c) = lp.get(p) else {
            return bad("no terminator");
        };
        if c == 0xFF {
            if p + 1 != lp.len() {
                return bad("data after terminator");
            }
            break;
        }
        let need = |k: usize| -> Result<&'a [u8], String> {
            lp.get(p..p + k)
                .ok_or_else(|| "invalid listpack: entry out of range".to_string())
        };
        let (elem, enc_len) = if c & 0x80 == 0 {
            (Elem::Int((c & 0x7f) as i64), 1)
        } else if c & 0xC0 == 0x80 {
            let l = (c & 0x3f) as usize;
            let e = need(1 + l)?;
            (Elem::Str(&e[1..]), 1 + l)
        } else if c & 0xE0 == 0xC0 {
            let e = need(2)?;
            let v = (((c & 0x1f) as u64) << 8) | e[1] as u64;
            (Elem::Int(sext(v, 13)), 2)
        } else if c & 0xF0 == 0xE0 {
            let e = need(2)?;
            let l = (((c & 0x0f) as usize) << 8) | e[1] as usize;
            let e = need(2 + l)?;
            (Elem::Str(&e[2..]), 2 + l)
        } else {
            match c {
                0xF0 => {
                    let e = need(5)?;
                    let l = le(&e[1..5]) as usize;
                    let e = need(5usize.saturating_add(l))?;
                    (Elem::Str(&e[5..]), 5 + l)
                }
                0xF1 => (Elem::Int(sext(le(&need(3)?[1..]), 16)), 3),
                0xF2 => (Elem::Int(sext(le(&need(4)?[1..]), 24)), 4),
                0xF3 => (Elem::Int(sext(le(&need(5)?[1..]), 32)), 5),
                0xF4 => (Elem::Int(le(&need(9)?[1..]) as i64), 9),
                _ => return bad("unknown entry encoding"),
            }
        };
        let bl = if enc_len <= 127 {
            1
        } else if enc_len < 16383 {
            2
        } else if enc_len < 2_097_151 {
            3
        } else if enc_len < 268_435_455 {
            4
        } else {
            5
        };
        p += enc_len + bl;
        if p >= lp.len() {
            return bad("entry out of range");
        }
        n += 1;
        f(elem)?;
    }
    if declared != 65535 && declared != n {
        return bad("element count mismatch");
    }
    Ok(n)
}

/// Walks a ziplist's elements (Redis before 7.0 packed small lists, hashes
/// and sorted sets this way).
pub fn ziplist_each<'a>(
    zl: &'a [u8],
    mut f: impl FnMut(Elem<'a>) -> Result<(), String>,
) -> Result<usize, String> {
    let bad = |w: &str| Err(format!("invalid ziplist: {w}"));
    if zl.len() < 11 {
        return bad("too short");
    }
    if le(&zl[..4]) as usize != zl.len() {
        return bad("header size mismatch");
    }
    let mut p = 10;
    let mut n = 0;
    loop {
        let Some(&c) = zl.get(p) else {
            return bad("no terminator");
        };
        if c == 0xFF {
            break;
        }
        // prevlen
        p += if c == 0xFE { 5 } else { 1 };
        let Some(&e) = zl.get(p) else {
            return bad("entry out of range");
        };
        let need = |from: usize, k: usize| -> Result<&'a [u8], String> {
            zl.get(from..from.saturating_add(k))
                .ok_or_else(|| "invalid ziplist: entry out of range".to_string())
        };
        let (elem, len) = match e >> 6 {
            0 => {
                let l = (e & 0x3f) as usize;
                (Elem::Str(need(p + 1, l)?), 1 + l)
            }
            1 => {
                let b = need(p, 2)?;
                let l = (((b[0] & 0x3f) as usize) << 8) | b[1] as usize;
                (Elem::Str(need(p + 2, l)?), 2 + l)
            }
            2 => {
                let b = need(p + 1, 4)?;
                let l = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                (Elem::Str(need(p + 5, l)?), 5 + l)
            }
            _ => match e {
                0xC0 => (Elem::Int(sext(le(need(p + 1, 2)?), 16)), 3),
                0xD0 => (Elem::Int(sext(le(need(p + 1, 4)?), 32)), 5),
                0xE0 => (Elem::Int(le(need(p + 1, 8)?) as i64), 9),
                0xF0 => (Elem::Int(sext(le(need(p + 1, 3)?), 24)), 4),
                0xFE => (Elem::Int(sext(le(need(p + 1, 1)?), 8)), 2),
                0xF1..=0xFD => (Elem::Int((e & 0x0f) as i64 - 1), 1),
                _ => return bad("unknown entry encoding"),
            },
        };
        p += len;
        n += 1;
        f(elem)?;
    }
    if p + 1 != zl.len() {
        return bad("data after terminator");
    }
    Ok(n)
}

/// Walks a zipmap's (field, value) pairs (hashes of Redis before 2.6).
pub fn zipmap_each<'a>(
    zm: &'a [u8],
    mut f: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), String>,
) -> Result<usize, String> {
    let bad = |w: &str| Err(format!("invalid zipmap: {w}"));
    let mut p = 1;
    let mut n = 0;
    let read_len = |p: &mut usize| -> Result<Option<usize>, String> {
        match zm.get(*p) {
            None => Err("invalid zipmap: out of range".into()),
            Some(0xFF) => Ok(None),
            Some(254) => {
                let b = zm
                    .get(*p + 1..*p + 5)
                    .ok_or_else(|| "invalid zipmap: out of range".to_string())?;
                *p += 5;
                Ok(Some(le(b) as usize))
            }
            Some(&l) => {
                *p += 1;
                Ok(Some(l as usize))
            }
        }
    };
    while let Some(kl) = read_len(&mut p)? {
        let Some(k) = zm.get(p..p.saturating_add(kl)) else {
            return bad("key out of range");
        };
        p += kl;
        let Some(vl) = read_len(&mut p)? else {
            return bad("field without value");
        };
        let Some(&free) = zm.get(p) else {
            return bad("out of range");
        };
        p += 1;
        let Some(v) = zm.get(p..p.saturating_add(vl)) else {
            return bad("value out of range");
        };
        p = p + vl + free as usize;
        n += 1;
        f(k, v)?;
    }
    if p + 1 != zm.len() {
        return bad("data after terminator");
    }
    Ok(n)
}

/// Encodes sorted distinct integers as an intset blob.
pub fn intset_encode(values: &[i64]) -> Vec<u8> {
    let w: usize = values.iter().fold(2, |w, &v| {
        w.max(if i16::try_from(v).is_ok() {
            2
        } else if i32::try_from(v).is_ok() {
            4
        } else {
            8
        })
    });
    let mut out = Vec::with_capacity(8 + w * values.len());
    out.extend_from_slice(&(w as u32).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for &v in values {
        out.extend_from_slice(&v.to_le_bytes()[..w]);
    }
    out
}

/// Decodes an intset blob, checking it is sorted without duplicates.
pub fn intset_decode(b: &[u8]) -> Result<Vec<i64>, String> {
    if b.len() < 8 {
        return Err("invalid intset: too short".into());
    }
    let w = le(&b[..4]) as usize;
    let n = le(&b[4..8]) as usize;
    if !matches!(w, 2 | 4 | 8) {
        return Err("invalid intset: bad encoding".into());
    }
    if n.checked_mul(w).and_then(|x| x.checked_add(8)) != Some(b.len()) {
        return Err("invalid intset: size mismatch".into());
    }
    let mut out = Vec::with_capacity(n);
    for c in b[8..].chunks_exact(w) {
        let v = sext(le(c), (w * 8) as u32);
        if out.last().is_some_and(|&l| l >= v) {
            return Err("invalid intset: not sorted".into());
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trip_of_every_entry_kind() {
        let vals: Vec<Vec<u8>> = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "40000",
            "-8388608",
            "8388607",
            "2147483647",
            "-2147483648",
            "9223372036854775807",
            "-9223372036854775808",
            "01",
            "",
            "a",
            "x",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([
            vec![b'q'; 63],
            vec![b'r'; 64],
            vec![b's'; 4095],
            vec![b't'; 4096],
            vec![b'u'; 20000],
        ])
        .collect();
        let mut w = LpWriter::new();
        for v in &vals {
            w.push(v);
        }
        let lp = w.finish();
        let mut got = Vec::new();
        let n = listpack_each(&lp, |e| {
            got.push(e.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(n, vals.len());
        assert_eq!(got, vals);
        // Every truncation is an error, never a panic.
        for k in 0..lp.len() {
            assert!(listpack_each(&lp[..k], |_| Ok(())).is_err());
        }
    }

    #[test]
    fn intset_round_trip() {
        for vals in [
            vec![1i64, 2, 3],
            vec![-70000, 5],
            vec![i64::MIN, 0, i64::MAX],
            vec![],
        ] {
            assert_eq!(intset_decode(&intset_encode(&vals)).unwrap(), vals);
        }
        assert!(intset_decode(&intset_encode(&[3, 1])).is_err());
    }
}
