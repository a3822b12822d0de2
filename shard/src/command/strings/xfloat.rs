//! INCRBYFLOAT's arithmetic: a software model of the x87 80-bit `long double`
//! that Redis computes with on x86-64 (`strtold`, one `+`, `printf("%.17Lf")`).
//!
//! Why not f64: Redis's replies come from a 64-bit-mantissa sum printed with
//! 17 decimals, e.g. `10.5 + 0.1` prints `10.6` where an f64 sum prints
//! `10.59999999999999964`. Every step here is exact big-integer arithmetic
//! followed by one correctly rounded step, exactly as the hardware and glibc
//! do it:
//!
//! * parsing rounds the exact decimal (or hex) value to nearest-even on a
//!   64-bit mantissa with the 80-bit format's exponent range (denormals
//!   included), like glibc's `strtold`;
//! * addition rounds the exact sum the same way (x87 default precision
//!   control is 64 bits, rounding to nearest-even);
//! * formatting prints the exact binary value rounded half-to-even to 17
//!   fractional digits, like glibc's `printf("%.17Lf")`.

use std::cmp::Ordering;

/// Smallest exponent (value = mantissa * 2^e): the denormal exponent.
const EMIN: i64 = -16445;
/// Largest exponent of a finite value (mantissa < 2^64).
const EMAX: i64 = 16320;

/// An 80-bit extended-precision value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XFloat {
    Zero {
        neg: bool,
    },
    /// `m * 2^e`, `m != 0`; `m >= 2^63` unless `e == EMIN` (denormal).
    Finite {
        neg: bool,
        m: u64,
        e: i32,
    },
    Inf {
        neg: bool,
    },
    Nan,
}

/// A minimal unsigned big integer: little-endian 32-bit limbs, no high zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn zero() -> Big {
        Big(Vec::new())
    }
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }
    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => (self.0.len() as u64 - 1) * 32 + (32 - top.leading_zeros() as u64),
        }
    }
    fn bit(&self, i: u64) -> bool {
        let limb = (i / 32) as usize;
        limb < self.0.len() && (self.0[limb] >> (i % 32)) & 1 == 1
    }
    /// True when any bit below `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let full = (i / 32) as usize;
        if self.0[..full.min(self.0.len())].iter().any(|&l| l != 0) {
            return true;
        }
        let rem = i % 32;
        rem != 0 && full < self.0.len() && self.0[full] & ((1u32 << rem) - 1) != 0
    }
    fn mul_small_add(&mut self, mul: u32, add: u32) {
        let mut carry = add as u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * mul as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }
    fn mul_pow10(&mut self, mut n: u64) {
        while n >= 9 {
            self.mul_small_add(1_000_000_000, 0);
            n -= 9;
        }
        if n > 0 {
            self.mul_small_add(10u32.pow(n as u32), 0);
        }
    }
    fn shl(&self, bits: u64) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let limbs = (bits / 32) as usize;
        let rem = (bits % 32) as u32;
        let mut out = vec![0u32; limbs];
        out.reserve(self.0.len() + 1);
        if rem == 0 {
            out.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for &l in &self.0 {
                out.push((l << rem) | carry);
                carry = l >> (32 - rem);
            }
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }
    /// `self >> bits`, truncated.
    fn shr(&self, bits: u64) -> Big {
        let limbs = (bits / 32) as usize;
        if limbs >= self.0.len() {
            return Big::zero();
        }
        let rem = (bits % 32) as u32;
        let src = &self.0[limbs..];
        let mut out = Vec::with_capacity(src.len());
        for i in 0..src.len() {
            let lo = src[i] as u64;
            let hi = *src.get(i + 1).unwrap_or(&0) as u64;
            out.push((((hi << 32) | lo) >> rem) as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }
    fn low_u128(&self) -> u128 {
        let mut v = 0u128;
        for (i, &l) in self.0.iter().take(4).enumerate() {
            v |= (l as u128) << (32 * i);
        }
        v
    }
    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
    fn add(&self, o: &Big) -> Big {
        let (a, b) = if self.0.len() >= o.0.len() {
            (self, o)
        } else {
            (o, self)
        };
        let mut out = Vec::with_capacity(a.0.len() + 1);
        let mut carry = 0u64;
        for i in 0..a.0.len() {
            let v = a.0[i] as u64 + *b.0.get(i).unwrap_or(&0) as u64 + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        Big(out)
    }
    /// `self - o`; requires `self >= o`.
    fn sub(&self, o: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut v = self.0[i] as i64 - *o.0.get(i).unwrap_or(&0) as i64 - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        let mut b = Big(out);
        b.trim();
        b
    }
    /// Divides by a small number in place, returning the remainder.
    fn divrem_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let cur = (rem << 32) | *l as u64;
            *l = (cur / d as u64) as u32;
            rem = cur % d as u64;
        }
        self.trim();
        rem as u32
    }
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.divrem_small(1_000_000_000));
        }
        let mut s = chunks.pop().unwrap_or(0).to_string();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }
}

/// Rounds `mag * 2^exp2` (plus a nonzero amount below its lowest bit when
/// `sticky`) to the 80-bit format, nearest-even.
fn round(neg: bool, mag: &Big, exp2: i64, sticky: bool) -> XFloat {
    if mag.is_zero() {
        return XFloat::Zero { neg };
    }
    let n = mag.bit_len() as i64;
    let mut e = (exp2 + n - 64).max(EMIN);
    let shift = e - exp2;
    let mut m: u128 = if shift <= 0 {
        // Exact: fewer than 64 significant bits (callers pass at least 66
        // bits whenever `sticky` is set, so nothing is lost here).
        mag.low_u128() << (-shift) as u32
    } else {
        let s = shift as u64;
        let mut m = mag.shr(s).low_u128();
        let half = mag.bit(s - 1);
        let rest = sticky || mag.any_below(s - 1);
        if half && (rest || m & 1 == 1) {
            m += 1;
        }
        m
    };
    if m == 0 {
        return XFloat::Zero { neg };
    }
    if m >> 64 != 0 {
        m >>= 1;
        e += 1;
    }
    if e > EMAX {
        return XFloat::Inf { neg };
    }
    XFloat::Finite {
        neg,
        m: m as u64,
        e: e as i32,
    }
}

/// `floor(num / den)` as a big integer plus whether a remainder was left;
/// the quotient must be small (a few hundred bits at most).
fn div_big(num: &Big, den: &Big) -> (Big, bool) {
    let mut rem = num.clone();
    let mut q = Big::zero();
    let (nb, db) = (num.bit_len(), den.bit_len());
    if nb >= db {
        let mut i = nb - db + 1;
        while i > 0 {
            i -= 1;
            let t = den.shl(i);
            if rem.cmp(&t) != Ordering::Less {
                rem = rem.sub(&t);
                q = q.add(&Big::from_u64(1).shl(i));
            }
        }
    }
    let r = !rem.is_zero();
    (q, r)
}

/// Redis's `string2ld`: the whole string must be a number `strtold` reads
/// (decimal or hex, "inf"/"infinity"), not NaN, no leading space, no
/// overflow to infinity or underflow to zero, shorter than 5120 bytes.
pub fn parse(s: &[u8]) -> Option<XFloat> {
    if s.is_empty() || s.len() >= 5 * 1024 {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(XFloat::Inf { neg });
    }
    let v = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex(neg, &body[2..])?
    } else {
        parse_dec(neg, body)?
    };
    match v {
        XFloat::Inf { .. } | XFloat::Nan => None, // ERANGE overflow
        _ => Some(v),
    }
}

/// Digits with an optional point; returns (digits without the point,
/// number of digits after the point, rest of the input).
fn split_mantissa(s: &[u8], is_digit: fn(u8) -> bool) -> Option<(Vec<u8>, i64, &[u8])> {
    let mut i = 0;
    let mut digits = Vec::new();
    let mut frac = 0i64;
    let mut seen_point = false;
    while i < s.len() {
        let c = s[i];
        if is_digit(c) {
            digits.push(c);
            if seen_point {
                frac += 1;
            }
        } else if c == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        i += 1;
    }
    if digits.is_empty() {
        return None;
    }
    Some((digits, frac, &s[i..]))
}

/// An exponent: optional sign then digits, the whole rest. Saturates.
fn parse_exp(s: &[u8]) -> Option<i64> {
    let (neg, d) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        v = v.saturating_mul(10).saturating_add((c - b'0') as i64);
    }
    Some(if neg { -v } else { v })
}

fn parse_dec(neg: bool, s: &[u8]) -> Option<XFloat> {
    let (digits, frac, rest) = split_mantissa(s, |c| c.is_ascii_digit())?;
    let exp = match rest {
        [] => 0,
        [c, tail @ ..] if (c | 0x20) == b'e' => parse_exp(tail)?,
        _ => return None,
    };
    let first = digits.iter().position(|&c| c != b'0');
    let Some(first) = first else {
        return Some(XFloat::Zero { neg });
    };
    let digits = &digits[first..];
    let e10 = exp.saturating_sub(frac);
    let ndig = digits.len() as i64;
    // value lies in [10^(ndig+e10-1), 10^(ndig+e10)).
    if ndig.saturating_add(e10) - 1 > 4933 {
        return Some(XFloat::Inf { neg });
    }
    if ndig.saturating_add(e10) < -4960 {
        return None; // underflows to zero: ERANGE
    }
    let mut d = Big::zero();
    for &c in digits {
        d.mul_small_add(10, (c - b'0') as u32);
    }
    let v = if e10 >= 0 {
        d.mul_pow10(e10 as u64);
        round(neg, &d, 0, false)
    } else {
        let mut den = Big::from_u64(1);
        den.mul_pow10((-e10) as u64);
        let k = (den.bit_len() as i64 - d.bit_len() as i64 + 66).max(0) as u64;
        let (q, r) = div_big(&d.shl(k), &den);
        round(neg, &q, -(k as i64), r)
    };
    match v {
        XFloat::Zero { .. } => None, // nonzero input rounded to zero: ERANGE
        v => Some(v),
    }
}

fn parse_hex(neg: bool, s: &[u8]) -> Option<XFloat> {
    let (digits, frac, rest) = split_mantissa(s, |c| c.is_ascii_hexdigit())?;
    let exp = match rest {
        [] => 0,
        [c, tail @ ..] if (c | 0x20) == b'p' => parse_exp(tail)?,
        _ => return None,
    };
    let mut m = Big::zero();
    for &c in &digits {
        m.mul_small_add(16, (c as char).to_digit(16).unwrap_or(0));
    }
    if m.is_zero() {
        return Some(XFloat::Zero { neg });
    }
    let exp2 = exp.saturating_sub(frac.saturating_mul(4));
    let top = exp2.saturating_add(m.bit_len() as i64);
    if top > 16400 {
        return Some(XFloat::Inf { neg });
    }
    if top < EMIN - 2 {
        return None;
    }
    match round(neg, &m, exp2, false) {
        XFloat::Zero { .. } => None,
        v => Some(v),
    }
}

/// `a + b` rounded once, as the x87 FPU does.
pub fn add(a: XFloat, b: XFloat) -> XFloat {
    use XFloat::*;
    match (a, b) {
        (Nan, _) | (_, Nan) => Nan,
        (Inf { neg: x }, Inf { neg: y }) => {
            if x == y {
                a
            } else {
                Nan
            }
        }
        (Inf { .. }, _) => a,
        (_, Inf { .. }) => b,
        (Zero { neg: x }, Zero { neg: y }) => Zero { neg: x && y },
        (Zero { .. }, _) => b,
        (_, Zero { .. }) => a,
        (
            Finite {
                neg: na,
                m: ma,
                e: ea,
            },
            Finite {
                neg: nb,
                m: mb,
                e: eb,
            },
        ) => {
            let emin = ea.min(eb);
            let x = Big::from_u64(ma).shl((ea - emin) as u64);
            let y = Big::from_u64(mb).shl((eb - emin) as u64);
            if na == nb {
                round(na, &x.add(&y), emin as i64, false)
            } else {
                match x.cmp(&y) {
                    Ordering::Equal => Zero { neg: false },
                    Ordering::Greater => round(na, &x.sub(&y), emin as i64, false),
                    Ordering::Less => round(nb, &y.sub(&x), emin as i64, false),
                }
            }
        }
    }
}

/// Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf`, then trailing zeros
/// (and a trailing point) removed, and "-0" written "0".
pub fn format_human(v: XFloat) -> String {
    let (neg, digits) = match v {
        XFloat::Inf { neg } => return if neg { "-inf" } else { "inf" }.to_string(),
        XFloat::Nan => return "nan".to_string(),
        XFloat::Zero { .. } => return "0".to_string(),
        XFloat::Finite { neg, m, e } => {
            let mut n = Big::from_u64(m);
            n.mul_pow10(17);
            let q = if e >= 0 {
                n.shl(e as u64)
            } else {
                let s = (-e) as u64;
                let mut q = n.shr(s);
                if n.bit(s - 1) && (n.any_below(s - 1) || q.bit(0)) {
                    q = q.add(&Big::from_u64(1));
                }
                q
            };
            (neg, q.to_decimal())
        }
    };
    let mut digits = digits;
    if digits.len() < 18 {
        digits = format!("{}{}", "0".repeat(18 - digits.len()), digits);
    }
    let point = digits.len() - 17;
    let mut s = String::with_capacity(digits.len() + 2);
    if neg {
        s.push('-');
    }
    s.push_str(&digits[..point]);
    s.push('.');
    s.push_str(&digits[point..]);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

/// INCRBYFLOAT's core: `Ok(new value as Redis prints it)`, or `Err(())`
/// when the sum is NaN or infinite.
pub fn incr(current: XFloat, by: XFloat) -> Result<String, ()> {
    match add(current, by) {
        XFloat::Nan | XFloat::Inf { .. } => Err(()),
        v => Ok(format_human(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> XFloat {
        parse(s.as_bytes()).unwrap_or_else(|| panic!("parse {s}"))
    }
    fn sum(a: &str, b: &str) -> String {
        incr(p(a), p(b)).unwrap()
    }

    #[test]
    fn parses_like_strtold() {
        assert_eq!(
            p("1"),
            XFloat::Finite {
                neg: false,
                m: 1 << 63,
                e: -63
            }
        );
        // 0.1L = 0xC.CCCCCCCCCCCCCCDp-7
        assert_eq!(
            p("0.1"),
            XFloat::Finite {
                neg: false,
                m: 0xCCCC_CCCC_CCCC_CCCD,
                e: -67
            }
        );
        assert_eq!(p("0x10"), p("16"));
        assert_eq!(p("0x1.8p1"), p("3"));
        assert_eq!(p(".5"), p("0.5"));
        assert_eq!(p("5."), p("5"));
        assert_eq!(p("1.e5"), p("100000"));
        assert_eq!(p("-0"), XFloat::Zero { neg: true });
        assert_eq!(p("0e999999999"), XFloat::Zero { neg: false });
        assert_eq!(p("+inf"), XFloat::Inf { neg: false });
        assert_eq!(p("-Infinity"), XFloat::Inf { neg: true });
        assert!(matches!(p("1e400"), XFloat::Finite { .. }));
        assert!(matches!(p("1e-4940"), XFloat::Finite { .. })); // denormal
        for bad in [
            "", " 1", "1 ", "nan", "-nan", "1e", "1e+", ".", "e5", "0x", "abc", "1e5000",
            "1e-5000", "--1", "1.2.3", "0x1p",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse(&vec![b'1'; 5120]), None);
    }

    #[test]
    fn sums_print_like_redis() {
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("0", "0.000003814697265625"), "0.00000381469726562"); // tie: even
        assert_eq!(sum("10.6", "0.000003814697265625"), "10.60000381469726563");
        assert_eq!(sum("5", "1"), "6");
        assert_eq!(sum("0", "-0"), "0");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("0", "1e-400"), "0");
        assert_eq!(sum("-0.0000000000000000001", "0"), "0");
        assert_eq!(sum("3.0e3", "200"), "3200");
        assert_eq!(sum("5.0e3", "-5000"), "0");
        assert_eq!(sum("0", "1.5"), "1.5");
        assert_eq!(sum("1", "-1.5"), "-0.5");
        assert_eq!(
            sum("0", "1e400")[..40],
            *"1000000000000000000028188068394758651458"
        );
        assert_eq!(sum("0", "1e400").len(), 401);
        assert!(incr(p("inf"), p("1")).is_err());
        assert!(incr(p("inf"), p("-inf")).is_err());
        assert!(incr(p("1e4932"), p("1e4932")).is_err());
    }
}

/// Differential check against a file of cases recorded from a real Redis:
/// lines `a<TAB>b<TAB>reply`, where `reply` is Redis's INCRBYFLOAT reply
/// after `SET k a` (or `ERR` for an error). Run with
/// `XFLOAT_CASES=path cargo test -p tessera-shard xfloat_cases -- --ignored`
/// (`scripts/xfloat_cases.py` records such a file).
#[cfg(test)]
#[test]
#[ignore]
fn xfloat_cases_from_redis() {
    let path = std::env::var("XFLOAT_CASES").expect("XFLOAT_CASES");
    let text = std::fs::read_to_string(path).unwrap();
    let mut bad = 0;
    let mut n = 0;
    for line in text.lines() {
        let mut it = line.split('\t');
        let (a, b, want) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let got = match (parse(a.as_bytes()), parse(b.as_bytes())) {
            (Some(x), Some(y)) => incr(x, y).unwrap_or_else(|_| "ERR".into()),
            _ => "ERR".into(),
        };
        n += 1;
        if got != want {
            bad += 1;
            if bad < 20 {
                eprintln!("{a} + {b}: redis {want}, ours {got}");
            }
        }
    }
    assert_eq!(bad, 0, "{bad} of {n} cases differ");
}
