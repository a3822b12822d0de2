//! Just enough of the x87 80-bit `long double` (64-bit significand) to
//! reproduce Redis's HINCRBYFLOAT: `strtold` parsing, one correctly rounded
//! addition, and `printf("%.17Lf")` with trailing zeros trimmed. With plain
//! f64 the replies differ (10.5 + 0.1 gives "10.59999999999999964" through
//! %.17f instead of Redis's "10.6"), so the arithmetic is done exactly on
//! small big integers and rounded to 64 bits, half to even, as the FPU does.

use std::cmp::Ordering;

/// Exponent bounds of normal 80-bit values, for value = mant * 2^exp with
/// mant in [2^63, 2^64).
const EXP_MIN: i64 = -16382 - 63;
const EXP_MAX: i64 = 16383 - 63;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LDouble {
    Zero { neg: bool },
    Finite { neg: bool, mant: u64, exp: i64 },
    Inf { neg: bool },
}

/// Unsigned big integer, little-endian 32-bit limbs.
#[derive(Clone, Debug, Default)]
struct Big(Vec<u32>);

impl Big {
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
    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * m as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    fn add_small(&mut self, a: u32) {
        let mut carry = a as u64;
        for l in self.0.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    fn mul_pow10(&mut self, mut n: u64) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        if n > 0 {
            self.mul_small(10u32.pow(n as u32));
        }
    }
    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&t) => (self.0.len() as u64 - 1) * 32 + (32 - t.leading_zeros() as u64),
        }
    }
    fn bit(&self, i: u64) -> bool {
        let l = (i / 32) as usize;
        l < self.0.len() && (self.0[l] >> (i % 32)) & 1 == 1
    }
    /// True when any bit below `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let l = (i / 32) as usize;
        for k in 0..l.min(self.0.len()) {
            if self.0[k] != 0 {
                return true;
            }
        }
        l < self.0.len() && self.0[l] & ((1u32 << (i % 32)) - 1) != 0
    }
    /// Bits [from, from+n) as an integer (n <= 128).
    fn bits(&self, from: u64, n: u64) -> u128 {
        let mut v = 0u128;
        for i in (0..n).rev() {
            v = (v << 1) | self.bit(from + i) as u128;
        }
        v
    }
    fn shl(&self, s: u64) -> Big {
        let limbs = (s / 32) as usize;
        let bits = (s % 32) as u32;
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &l in &self.0 {
            if bits == 0 {
                out.push(l);
            } else {
                out.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }
    fn cmp(&self, o: &Big) -> Ordering {
        if self.0.len() != o.0.len() {
            return self.0.len().cmp(&o.0.len());
        }
        for i in (0..self.0.len()).rev() {
            match self.0[i].cmp(&o.0[i]) {
                Ordering::Equal => continue,
                x => return x,
            }
        }
        Ordering::Equal
    }
    /// self -= o (self >= o).
    fn sub(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = self.0[i] as i64 - borrow - *o.0.get(i).unwrap_or(&0) as i64;
            if v < 0 {
                self.0[i] = (v + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                self.0[i] = v as u32;
                borrow = 0;
            }
        }
        self.trim();
    }
    fn add(&mut self, o: &Big) {
        let mut carry = 0u64;
        let n = self.0.len().max(o.0.len());
        self.0.resize(n, 0);
        for i in 0..n {
            let v = self.0[i] as u64 + *o.0.get(i).unwrap_or(&0) as u64 + carry;
            self.0[i] = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    /// Decimal digits.
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut parts = Vec::new();
        let mut cur = self.clone();
        while !cur.is_zero() {
            let mut rem = 0u64;
            for l in cur.0.iter_mut().rev() {
                let v = (rem << 32) | *l as u64;
                *l = (v / 1_000_000_000) as u32;
                rem = v % 1_000_000_000;
            }
            cur.trim();
            parts.push(rem as u32);
        }
        let mut s = parts.last().map(|p| p.to_string()).unwrap_or_default();
        for p in parts.iter().rev().skip(1) {
            s.push_str(&format!("{:09}", p));
        }
        s
    }
}

/// Rounds the integer `n` (times 2^exp) to a 64-bit significand, half to
/// even; `sticky` says that nonzero bits below `n` were already dropped.
fn round(neg: bool, n: &Big, exp: i64, sticky: bool) -> LDouble {
    let bl = n.bit_len();
    if bl == 0 {
        return LDouble::Zero { neg };
    }
    let (mant, exp) = if bl <= 64 {
        (n.bits(0, 64) as u64, exp)
    } else {
        let shift = bl - 64;
        let mut q = n.bits(shift, 64);
        let half = n.bit(shift - 1);
        let rest = sticky || n.any_below(shift - 1);
        if half && (rest || q & 1 == 1) {
            q += 1;
        }
        let mut e = exp + shift as i64;
        if q >> 64 != 0 {
            q >>= 1;
            e += 1;
        }
        (q as u64, e)
    };
    // Normalise: top bit set.
    let lz = mant.leading_zeros() as i64;
    let mant = mant << lz;
    let exp = exp - lz;
    if exp > EXP_MAX {
        return LDouble::Inf { neg };
    }
    LDouble::Finite { neg, mant, exp }
}

impl LDouble {
    pub fn zero() -> LDouble {
        LDouble::Zero { neg: false }
    }

    pub fn is_finite(&self) -> bool {
        !matches!(self, LDouble::Inf { .. })
    }

    /// Redis's string2ld: the whole string must be a strtold number, no
    /// leading space, not NaN, no overflow or underflow, under 5 KiB.
    pub fn parse(s: &[u8]) -> Option<LDouble> {
        if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LDouble::Inf { neg });
        }
        if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            return Self::parse_hex(neg, &body[2..]);
        }
        let mut d = Big::default();
        let mut exp10: i64 = 0;
        let mut i = 0;
        let mut digits = 0;
        while i < body.len() && body[i].is_ascii_digit() {
            d.mul_small(10);
            d.add_small((body[i] - b'0') as u32);
            i += 1;
            digits += 1;
        }
        if i < body.len() && body[i] == b'.' {
            i += 1;
            while i < body.len() && body[i].is_ascii_digit() {
                d.mul_small(10);
                d.add_small((body[i] - b'0') as u32);
                exp10 -= 1;
                i += 1;
                digits += 1;
            }
        }
        if digits == 0 {
            return None;
        }
        if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
            i += 1;
            let eneg = match body.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            let mut e: i64 = 0;
            while i < body.len() && body[i].is_ascii_digit() {
                e = (e * 10 + (body[i] - b'0') as i64).min(1_000_000_000);
                i += 1;
            }
            if i == start {
                return None;
            }
            exp10 += if eneg { -e } else { e };
        }
        if i != body.len() {
            return None;
        }
        d.trim();
        if d.is_zero() {
            return Some(LDouble::Zero { neg });
        }
        // Rough magnitude check before big arithmetic (ERANGE in strtold).
        let mag = exp10 + digits as i64;
        if mag > 4933 + 1 {
            return None;
        }
        if mag < -4951 - 2 {
            return None;
        }
        let v = if exp10 >= 0 {
            let mut n = d;
            n.mul_pow10(exp10 as u64);
            round(neg, &n, 0, false)
        } else {
            let mut p = Big::from_u64(1);
            p.mul_pow10((-exp10) as u64);
            let k = 66 + p.bit_len() as i64 - d.bit_len() as i64;
            let mut a = d.shl(k.max(0) as u64);
            let b = p.shl((-k).max(0) as u64);
            // Long division: q = a / b, ~67 quotient bits.
            let mut q = Big::default();
            let top = a.bit_len() as i64 - b.bit_len() as i64;
            let mut j = top;
            while j >= 0 {
                let t = b.shl(j as u64);
                if a.cmp(&t) != Ordering::Less {
                    a.sub(&t);
                    q.add(&Big::from_u64(1).shl(j as u64));
                }
                j -= 1;
            }
            round(neg, &q, -k, !a.is_zero())
        };
        Self::in_range(v)
    }

    /// strtold's ERANGE: overflow, or underflow below the smallest
    /// subnormal (subnormals themselves are accepted).
    fn in_range(v: LDouble) -> Option<LDouble> {
        match v {
            LDouble::Inf { .. } => None,
            LDouble::Finite { exp, .. } if exp < EXP_MIN - 63 => None,
            v => Some(v),
        }
    }

    /// The part after "0x": hex digits, optional '.', optional p-exponent.
    fn parse_hex(neg: bool, b: &[u8]) -> Option<LDouble> {
        let mut h = Big::default();
        let mut exp2: i64 = 0;
        let mut i = 0;
        let mut digits = 0;
        let mut frac = false;
        while i < b.len() {
            let c = b[i];
            if c == b'.' && !frac {
                frac = true;
                i += 1;
                continue;
            }
            let Some(d) = (c as char).to_digit(16) else {
                break;
            };
            h.mul_small(16);
            h.add_small(d);
            if frac {
                exp2 -= 4;
            }
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        if i < b.len() && (b[i] | 0x20) == b'p' {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            let mut e: i64 = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                e = (e * 10 + (b[i] - b'0') as i64).min(1_000_000_000);
                i += 1;
            }
            if i == start {
                return None;
            }
            exp2 += if eneg { -e } else { e };
        }
        if i != b.len() {
            return None;
        }
        h.trim();
        if h.is_zero() {
            return Some(LDouble::Zero { neg });
        }
        if exp2 + h.bit_len() as i64 > EXP_MAX + 64 || exp2 + (h.bit_len() as i64) < EXP_MIN - 64 {
            return None;
        }
        Self::in_range(round(neg, &h, exp2, false))
    }

    /// The exact sum, rounded to 64 significant bits.
    pub fn add(&self, o: &LDouble) -> LDouble {
        use LDouble::*;
        match (*self, *o) {
            (Inf { neg: a }, Inf { neg: b }) if a != b => Inf { neg: false }, // NaN: refused anyway
            (Inf { neg }, _) | (_, Inf { neg }) => Inf { neg },
            (Zero { neg: a }, Zero { neg: b }) => Zero { neg: a && b },
            (Zero { .. }, x) | (x, Zero { .. }) => x,
            (
                Finite {
                    neg: na,
                    mant: ma,
                    exp: ea,
                },
                Finite {
                    neg: nb,
                    mant: mb,
                    exp: eb,
                },
            ) => {
                // Far apart: the smaller cannot change the rounded result.
                if ea - eb > 140 {
                    return *self;
                }
                if eb - ea > 140 {
                    return *o;
                }
                let emin = ea.min(eb);
                let a = Big::from_u64(ma).shl((ea - emin) as u64);
                let b = Big::from_u64(mb).shl((eb - emin) as u64);
                if na == nb {
                    let mut s = a;
                    s.add(&b);
                    round(na, &s, emin, false)
                } else {
                    match a.cmp(&b) {
                        Ordering::Equal => Zero { neg: false },
                        Ordering::Greater => {
                            let mut s = a;
                            s.sub(&b);
                            round(na, &s, emin, false)
                        }
                        Ordering::Less => {
                            let mut s = b;
                            s.sub(&a);
                            round(nb, &s, emin, false)
                        }
                    }
                }
            }
        }
    }

    /// `printf("%.17Lf")`, trailing zeros (and a bare '.') removed, "-0"
    /// shown as "0" (Redis's ld2string in LD_STR_HUMAN mode).
    pub fn to_human_string(&self) -> String {
        let (neg, mant, exp) = match *self {
            LDouble::Zero { .. } => return "0".into(),
            LDouble::Inf { neg } => return if neg { "-inf".into() } else { "inf".into() },
            LDouble::Finite { neg, mant, exp } => (neg, mant, exp),
        };
        let mut n = Big::from_u64(mant);
        n.mul_pow10(17);
        let x = if exp >= 0 {
            n.shl(exp as u64)
        } else {
            let sh = (-exp) as u64;
            let mut q = Big::default();
            let bl = n.bit_len();
            if sh <= bl + 1 {
                let len = bl.saturating_sub(sh);
                // q = n >> sh, built limb by limb through bits().
                let mut k = 0;
                while k < len {
                    let take = (len - k).min(64);
                    let part = n.bits(sh + k, take) as u64;
                    q.add(&Big::from_u64(part).shl(k));
                    k += take;
                }
            }
            let half = sh >= 1 && n.bit(sh - 1);
            let rest = sh >= 2 && n.any_below(sh - 1);
            if half && (rest || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let mut digits = x.to_decimal();
        while digits.len() < 18 {
            digits.insert(0, '0');
        }
        let point = digits.len() - 17;
        let mut s = String::with_capacity(digits.len() + 2);
        if neg {
            s.push('-');
        }
        s.push_str(&digits[..point]);
        let frac = digits[point..].trim_end_matches('0');
        if !frac.is_empty() {
            s.push('.');
            s.push_str(frac);
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let x = LDouble::parse(a.as_bytes()).unwrap();
        let y = LDouble::parse(b.as_bytes()).unwrap();
        x.add(&y).to_human_string()
    }

    #[test]
    fn matches_redis_hincrbyfloat() {
        // Replies of Redis 7.0 (x86-64, 80-bit long double).
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("0", "3.0e3"), "3000");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("1", "-1"), "0");
        assert_eq!(sum("0", "-1.5"), "-1.5");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("1e30", "0"), "1000000000000000000024696061952");
        assert_eq!(
            sum("123456789.123456789", "0"),
            "123456789.12345678899873747"
        );
        assert_eq!(
            sum("123456789.12345678899873747", "-0.0000001"),
            "123456789.12345668899797602"
        );
        assert_eq!(sum("0x1p3", "0"), "8");
        assert_eq!(sum("1e-4940", "0"), "0");
        assert_eq!(LDouble::parse(b"1e-5000"), None);
        assert_eq!(LDouble::parse(b"abc"), None);
        assert_eq!(LDouble::parse(b" 1"), None);
        assert_eq!(LDouble::parse(b"1e"), None);
        assert_eq!(LDouble::parse(b"nan"), None);
        assert_eq!(LDouble::parse(b"1e5000"), None);
        assert!(LDouble::parse(b".5").is_some());
        assert!(LDouble::parse(b"5.").is_some());
    }
}
