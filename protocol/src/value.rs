//! An owned RESP2/RESP3 value, with an encoder and a decoder.
//!
//! This is for tests and clients (the benchmark, replication, cluster
//! links), not for the server's hot path: the decoder builds owned values
//! and starts over from the beginning when called again on an incomplete
//! reply. It never panics on arbitrary input, bounds nesting depth, and
//! never allocates from an announced length or count more than the bytes
//! at hand could fill.
//!
//! Streamed RESP3 aggregates and strings (`$?`, `*?`, `;`, `.`) are not
//! supported (Redis does not send them); they decode as an error.

use crate::reply::format_double;
use memchr::memchr;

/// Deepest nesting `decode` accepts (an attribute counts as a level).
pub const MAX_DEPTH: usize = 128;

/// One RESP value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `+text` (must not contain CR or LF; `encode` turns them into spaces).
    Simple(Vec<u8>),
    /// `-ERR text` (same rule as `Simple`).
    Error(Vec<u8>),
    /// `:n`
    Integer(i64),
    /// `$len` + bytes.
    Bulk(Vec<u8>),
    /// RESP2's null bulk string, `$-1`.
    NullBulk,
    /// RESP2's null array, `*-1`.
    NullArray,
    /// RESP3's null, `_`.
    Null,
    /// `*n` + n values.
    Array(Vec<Value>),
    /// RESP3 `%n` + n key/value pairs (order kept).
    Map(Vec<(Value, Value)>),
    /// RESP3 `~n` + n values.
    Set(Vec<Value>),
    /// RESP3 `,` double (`inf`, `-inf`, `nan` included).
    Double(f64),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `=len` + `fmt:` + text (format is 3 bytes, e.g. `txt`).
    Verbatim { format: [u8; 3], text: Vec<u8> },
    /// RESP3 `(` big number, as its decimal digits with an optional `-`.
    BigNumber(Vec<u8>),
    /// RESP3 `!len` + bytes: an error as a bulk string.
    BulkError(Vec<u8>),
    /// RESP3 `>n` + n values: an out-of-band push message.
    Push(Vec<Value>),
    /// RESP3 `|n` + n key/value pairs, then the value they describe.
    Attribute {
        attrs: Vec<(Value, Value)>,
        value: Box<Value>,
    },
}

/// Why `decode` rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A type byte RESP does not know (the byte).
    UnknownType(u8),
    /// A length or count that is not an integer, or negative (other than
    /// the -1 of RESP2 nulls).
    InvalidLength,
    /// An integer reply that is not an integer within `i64`.
    InvalidInteger,
    /// A double that does not parse.
    InvalidDouble,
    /// A boolean other than `t` / `f`.
    InvalidBoolean,
    /// A big number that is not an optional sign followed by digits.
    InvalidBigNumber,
    /// A verbatim string without its `xxx:` format prefix.
    InvalidVerbatim,
    /// A `\r` not followed by `\n`, or bulk data not followed by CRLF.
    BadTerminator,
    /// Nesting deeper than `MAX_DEPTH`.
    TooDeep,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            DecodeError::InvalidLength => f.write_str("invalid RESP length"),
            DecodeError::InvalidInteger => f.write_str("invalid RESP integer"),
            DecodeError::InvalidDouble => f.write_str("invalid RESP double"),
            DecodeError::InvalidBoolean => f.write_str("invalid RESP boolean"),
            DecodeError::InvalidBigNumber => f.write_str("invalid RESP big number"),
            DecodeError::InvalidVerbatim => f.write_str("invalid RESP verbatim string"),
            DecodeError::BadTerminator => f.write_str("missing CRLF in RESP"),
            DecodeError::TooDeep => f.write_str("RESP nesting too deep"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Appends `args` as a request: a RESP array of bulk strings.
pub fn encode_request(args: &[&[u8]], out: &mut Vec<u8>) {
    header(out, b'*', args.len());
    for a in args {
        header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, kind: u8, s: &[u8]) {
    out.push(kind);
    out.extend(
        s.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.extend_from_slice(b"\r\n");
}

fn blob(out: &mut Vec<u8>, kind: u8, s: &[u8]) {
    header(out, kind, s.len());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

impl Value {
    /// A bulk string.
    pub fn bulk(b: impl AsRef<[u8]>) -> Value {
        Value::Bulk(b.as_ref().to_vec())
    }

    /// A simple string.
    pub fn simple(s: impl AsRef<[u8]>) -> Value {
        Value::Simple(s.as_ref().to_vec())
    }

    /// Appends the RESP encoding of `self`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => line(out, b'+', s),
            Value::Error(s) => line(out, b'-', s),
            Value::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Value::Bulk(b) => blob(out, b'$', b),
            Value::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Value::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Value::Null => out.extend_from_slice(b"_\r\n"),
            Value::Array(v) | Value::Set(v) | Value::Push(v) => {
                let kind = match self {
                    Value::Array(_) => b'*',
                    Value::Set(_) => b'~',
                    _ => b'>',
                };
                header(out, kind, v.len());
                for e in v {
                    e.encode(out);
                }
            }
            Value::Map(m) => {
                header(out, b'%', m.len());
                encode_pairs(m, out);
            }
            Value::Attribute { attrs, value } => {
                header(out, b'|', attrs.len());
                encode_pairs(attrs, out);
                value.encode(out);
            }
            Value::Double(d) => {
                let mut tmp = [0u8; 40];
                out.push(b',');
                out.extend_from_slice(format_double(*d, &mut tmp));
                out.extend_from_slice(b"\r\n");
            }
            Value::Boolean(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Value::Verbatim { format, text } => {
                header(out, b'=', text.len() + 4);
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Value::BigNumber(n) => line(out, b'(', n),
            Value::BulkError(b) => blob(out, b'!', b),
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes one value from the front of `buf`: `Ok(Some((value, used)))`,
    /// `Ok(None)` when `buf` holds only part of a value, or an error.
    pub fn decode(buf: &[u8]) -> Result<Option<(Value, usize)>, DecodeError> {
        let mut pos = 0;
        match decode_at(buf, &mut pos, 0)? {
            Some(v) => Ok(Some((v, pos))),
            None => Ok(None),
        }
    }
}

fn encode_pairs(m: &[(Value, Value)], out: &mut Vec<u8>) {
    for (k, v) in m {
        k.encode(out);
        v.encode(out);
    }
}

/// `?` for "incomplete": returns `Ok(None)` from the enclosing function.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// The line starting at `*pos` (up to, not including, its CRLF); moves
/// `*pos` past the CRLF. A line may not hold a bare CR or LF.
fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, DecodeError> {
    let rest = &buf[*pos..];
    let cr = need!(memchr(b'\r', rest));
    let lf = need!(rest.get(cr + 1));
    if *lf != b'\n' || memchr(b'\n', &rest[..cr]).is_some() {
        return Err(DecodeError::BadTerminator);
    }
    *pos += cr + 2;
    Ok(Some(&rest[..cr]))
}

/// A lenient integer: optional `+` or `-`, then digits, within `i64`.
fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// A length or count line: `Ok(Some(Some(n)))`, `Ok(Some(None))` for -1
/// (RESP2 null) when `allow_null`, `Ok(None)` when incomplete.
fn read_len(
    buf: &[u8],
    pos: &mut usize,
    allow_null: bool,
) -> Result<Option<Option<usize>>, DecodeError> {
    let l = need!(read_line(buf, pos)?);
    match parse_int(l) {
        Some(-1) if allow_null => Ok(Some(None)),
        Some(n) if n >= 0 => usize::try_from(n)
            .map(|n| Some(Some(n)))
            .map_err(|_| DecodeError::InvalidLength),
        _ => Err(DecodeError::InvalidLength),
    }
}

/// `len` bytes of data then CRLF.
fn read_blob(buf: &[u8], pos: &mut usize, len: usize) -> Result<Option<Vec<u8>>, DecodeError> {
    let rest = &buf[*pos..];
    let end = len.checked_add(2).ok_or(DecodeError::InvalidLength)?;
    if rest.len() < end {
        return Ok(None);
    }
    if &rest[len..end] != b"\r\n" {
        return Err(DecodeError::BadTerminator);
    }
    *pos += end;
    Ok(Some(rest[..len].to_vec()))
}

/// Smallest encoding of any value (`_\r\n`): a count of `n` elements needs
/// at least `3n` more bytes, so a larger count is incomplete for sure and
/// no vector is sized beyond what the input could fill.
const MIN_VALUE_LEN: usize = 3;

fn fits(buf: &[u8], pos: usize, n: usize) -> bool {
    n <= (buf.len() - pos) / MIN_VALUE_LEN
}

fn decode_values(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    depth: usize,
) -> Result<Option<Vec<Value>>, DecodeError> {
    if !fits(buf, *pos, n) {
        return Ok(None);
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(need!(decode_at(buf, pos, depth + 1)?));
    }
    Ok(Some(v))
}

fn decode_pairs(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    depth: usize,
) -> Result<Option<Vec<(Value, Value)>>, DecodeError> {
    if n > usize::MAX / 2 || !fits(buf, *pos, n * 2) {
        return Ok(None);
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let k = need!(decode_at(buf, pos, depth + 1)?);
        let val = need!(decode_at(buf, pos, depth + 1)?);
        v.push((k, val));
    }
    Ok(Some(v))
}

fn decode_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let kind = *need!(buf.get(*pos));
    *pos += 1;
    let v = match kind {
        b'+' => Value::Simple(need!(read_line(buf, pos)?).to_vec()),
        b'-' => Value::Error(need!(read_line(buf, pos)?).to_vec()),
        b':' => Value::Integer(
            parse_int(need!(read_line(buf, pos)?)).ok_or(DecodeError::InvalidInteger)?,
        ),
        b'$' => match need!(read_len(buf, pos, true)?) {
            None => Value::NullBulk,
            Some(n) => Value::Bulk(need!(read_blob(buf, pos, n)?)),
        },
        b'!' => match need!(read_len(buf, pos, false)?) {
            None => return Err(DecodeError::InvalidLength),
            Some(n) => Value::BulkError(need!(read_blob(buf, pos, n)?)),
        },
        b'=' => {
            let n = need!(read_len(buf, pos, false)?).ok_or(DecodeError::InvalidLength)?;
            let b = need!(read_blob(buf, pos, n)?);
            if b.len() < 4 || b[3] != b':' {
                return Err(DecodeError::InvalidVerbatim);
            }
            Value::Verbatim {
                format: [b[0], b[1], b[2]],
                text: b[4..].to_vec(),
            }
        }
        b'*' => match need!(read_len(buf, pos, true)?) {
            None => Value::NullArray,
            Some(n) => Value::Array(need!(decode_values(buf, pos, n, depth)?)),
        },
        b'~' | b'>' => {
            let n = need!(read_len(buf, pos, false)?).ok_or(DecodeError::InvalidLength)?;
            let v = need!(decode_values(buf, pos, n, depth)?);
            if kind == b'~' {
                Value::Set(v)
            } else {
                Value::Push(v)
            }
        }
        b'%' | b'|' => {
            let n = need!(read_len(buf, pos, false)?).ok_or(DecodeError::InvalidLength)?;
            let pairs = need!(decode_pairs(buf, pos, n, depth)?);
            if kind == b'%' {
                Value::Map(pairs)
            } else {
                let value = need!(decode_at(buf, pos, depth + 1)?);
                Value::Attribute {
                    attrs: pairs,
                    value: Box::new(value),
                }
            }
        }
        b'_' => {
            let l = need!(read_line(buf, pos)?);
            if !l.is_empty() {
                return Err(DecodeError::InvalidLength);
            }
            Value::Null
        }
        b'#' => match need!(read_line(buf, pos)?) {
            b"t" => Value::Boolean(true),
            b"f" => Value::Boolean(false),
            _ => return Err(DecodeError::InvalidBoolean),
        },
        b',' => {
            let l = need!(read_line(buf, pos)?);
            let d = std::str::from_utf8(l)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or(DecodeError::InvalidDouble)?;
            Value::Double(d)
        }
        b'(' => {
            let l = need!(read_line(buf, pos)?);
            let digits = match l.first() {
                Some(b'-') | Some(b'+') => &l[1..],
                _ => l,
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(DecodeError::InvalidBigNumber);
            }
            Value::BigNumber(l.to_vec())
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &[u8]) -> Result<Option<(Value, usize)>, DecodeError> {
        Value::decode(s)
    }

    #[test]
    fn decodes_each_type() {
        let cases: Vec<(&[u8], Value)> = vec![
            (b"+OK\r\n", Value::simple("OK")),
            (b"-ERR x\r\n", Value::Error(b"ERR x".to_vec())),
            (b":-12\r\n", Value::Integer(-12)),
            (b"$3\r\na\r\n\r\n", Value::bulk("a\r\n")),
            (b"$-1\r\n", Value::NullBulk),
            (b"*-1\r\n", Value::NullArray),
            (b"_\r\n", Value::Null),
            (
                b"*2\r\n:1\r\n$1\r\nx\r\n",
                Value::Array(vec![Value::Integer(1), Value::bulk("x")]),
            ),
            (
                b"%1\r\n+k\r\n#t\r\n",
                Value::Map(vec![(Value::simple("k"), Value::Boolean(true))]),
            ),
            (b"~1\r\n,1.5\r\n", Value::Set(vec![Value::Double(1.5)])),
            (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
            (
                b"=6\r\ntxt:hi\r\n",
                Value::Verbatim {
                    format: *b"txt",
                    text: b"hi".to_vec(),
                },
            ),
            (b"(-123\r\n", Value::BigNumber(b"-123".to_vec())),
            (b"!3\r\nERR\r\n", Value::BulkError(b"ERR".to_vec())),
            (b">1\r\n+m\r\n", Value::Push(vec![Value::simple("m")])),
            (
                b"|1\r\n+a\r\n:1\r\n#f\r\n",
                Value::Attribute {
                    attrs: vec![(Value::simple("a"), Value::Integer(1))],
                    value: Box::new(Value::Boolean(false)),
                },
            ),
        ];
        for (bytes, v) in cases {
            assert_eq!(dec(bytes), Ok(Some((v.clone(), bytes.len()))), "{bytes:?}");
            assert_eq!(v.to_bytes(), bytes);
            // Every strict prefix is incomplete.
            for cut in 0..bytes.len() {
                assert_eq!(dec(&bytes[..cut]), Ok(None), "{:?}", &bytes[..cut]);
            }
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(dec(b"?x\r\n"), Err(DecodeError::UnknownType(b'?')));
        assert_eq!(dec(b"+OK\rx"), Err(DecodeError::BadTerminator));
        assert_eq!(dec(b"+O\nK\r\n"), Err(DecodeError::BadTerminator));
        assert_eq!(dec(b"$1\r\nab\r\n"), Err(DecodeError::BadTerminator));
        assert_eq!(dec(b"$-2\r\n"), Err(DecodeError::InvalidLength));
        assert_eq!(dec(b"%-1\r\n"), Err(DecodeError::InvalidLength));
        assert_eq!(dec(b":1x\r\n"), Err(DecodeError::InvalidInteger));
        assert_eq!(dec(b"#x\r\n"), Err(DecodeError::InvalidBoolean));
        assert_eq!(dec(b",abc\r\n"), Err(DecodeError::InvalidDouble));
        assert_eq!(dec(b"(1a\r\n"), Err(DecodeError::InvalidBigNumber));
        assert_eq!(dec(b"=2\r\nab\r\n"), Err(DecodeError::InvalidVerbatim));
        assert_eq!(dec(b"$?\r\n"), Err(DecodeError::InvalidLength));
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(dec(&deep), Err(DecodeError::TooDeep));
    }

    #[test]
    fn huge_counts_are_incomplete_without_allocating() {
        assert_eq!(dec(b"*9223372036854775807\r\n:1\r\n"), Ok(None));
        assert_eq!(dec(b"%4611686018427387904\r\n"), Ok(None));
        assert_eq!(dec(b"$9223372036854775807\r\n"), Ok(None));
    }

    #[test]
    fn encode_request_is_an_array_of_bulks() {
        let mut out = Vec::new();
        encode_request(&[b"SET", b"k", b""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }
}
