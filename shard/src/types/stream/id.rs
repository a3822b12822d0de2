//! Stream entry IDs (`<ms>-<seq>`): their order, their text form, and
//! the parsing rules of Redis 7.0's commands (`-`/`+`, incomplete IDs
//! that stand for a range of sequence numbers).

use std::fmt;

/// An entry ID: milliseconds, then a sequence number within them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID up, None at the maximum.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The next ID down, None at 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    /// `<ms>-<seq>` into `buf`, returning the bytes (no allocation).
    pub fn format<'b>(&self, buf: &'b mut [u8; 41]) -> &'b [u8] {
        let mut a = itoa::Buffer::new();
        let ms = a.format(self.ms).as_bytes();
        let n = ms.len();
        buf[..n].copy_from_slice(ms);
        buf[n] = b'-';
        let mut b = itoa::Buffer::new();
        let seq = b.format(self.seq).as_bytes();
        buf[n + 1..n + 1 + seq.len()].copy_from_slice(seq);
        &buf[..n + 1 + seq.len()]
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis's `string2ull`: a canonical i64 that is not negative, else what
/// C's `strtoull` reads of the whole string (leading spaces, a sign,
/// leading zeros; a minus negates modulo 2^64).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::parse_i64_strict(s) {
        return (v >= 0).then_some(v as u64);
    }
    let t = s.trim_ascii_start();
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// What an ID argument said: a full ID, or only the milliseconds (the
/// sequence is then the smallest or largest, as the caller needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    /// The sequence was given (or implied by `-`/`+`).
    pub seq_given: bool,
}

/// Parses `<ms>[-<seq>]`, `-` and `+`, as Redis's streamGenericParseIDOrReply:
/// a missing sequence takes `missing_seq`. `strict` refuses `-` and `+`
/// (XADD, XSETID...). None for an invalid ID.
pub fn parse_id(s: &[u8], missing_seq: u64, strict: bool) -> Option<ParsedId> {
    if s.len() > 127 {
        return None;
    }
    if !strict && s == b"-" {
        return Some(ParsedId {
            id: StreamId::MIN,
            seq_given: true,
        });
    }
    if !strict && s == b"+" {
        return Some(ParsedId {
            id: StreamId::MAX,
            seq_given: true,
        });
    }
    match memchr::memchr(b'-', s) {
        None => Some(ParsedId {
            id: StreamId::new(parse_u64(s)?, missing_seq),
            seq_given: false,
        }),
        Some(dash) => Some(ParsedId {
            id: StreamId::new(parse_u64(&s[..dash])?, parse_u64(&s[dash + 1..])?),
            seq_given: true,
        }),
    }
}

/// XADD's ID argument: `*`, `<ms>-*`, or an explicit ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddId {
    Auto,
    AutoSeq(u64),
    Explicit(StreamId),
}

/// Parses XADD's ID; None when invalid.
pub fn parse_add_id(s: &[u8]) -> Option<AddId> {
    if s == b"*" {
        return Some(AddId::Auto);
    }
    if let Some(ms) = s.strip_suffix(b"-*") {
        return parse_u64(ms).map(AddId::AutoSeq);
    }
    parse_id(s, 0, true).map(|p| AddId::Explicit(p.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_redis() {
        assert_eq!(parse_id(b"5", 0, false).unwrap().id, StreamId::new(5, 0));
        assert_eq!(
            parse_id(b"5", u64::MAX, false).unwrap().id,
            StreamId::new(5, u64::MAX)
        );
        assert_eq!(parse_id(b"1-2", 0, false).unwrap().id, StreamId::new(1, 2));
        assert!(parse_id(b"-", 0, true).is_none());
        assert_eq!(parse_id(b"+", 0, false).unwrap().id, StreamId::MAX);
        assert!(parse_id(b"1-", 0, false).is_none());
        assert!(parse_id(b"-1", 0, false).is_none());
        assert!(parse_id(b"1-2-3", 0, false).is_none());
        assert!(parse_id(b"18446744073709551616", 0, false).is_none());
        assert_eq!(parse_add_id(b"7-*"), Some(AddId::AutoSeq(7)));
        assert_eq!(parse_add_id(b"*"), Some(AddId::Auto));
        let mut b = [0u8; 41];
        assert_eq!(StreamId::MAX.format(&mut b).len(), 41);
        assert_eq!(StreamId::new(1, 2).format(&mut b), b"1-2");
    }
}
