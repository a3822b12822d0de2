//! A resumable, zero-copy request parser: multibulk (`*N\r\n$len\r\n...`)
//! and inline (`PING\r\n`) requests, with Redis's limits and error texts.
//!
//! Arguments are reported as spans into the caller's buffer. When a request
//! is incomplete, the parser keeps what it has already parsed, so a huge
//! array or bulk arriving over many reads is scanned once, not once per read.

use crate::args::ArgSpan;

/// Limits on what a client may send (Redis's defaults in `Default`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest bulk string (`proto-max-bulk-len`, 512mb).
    pub proto_max_bulk_len: usize,
    /// Longest inline request or length line (PROTO_INLINE_MAX_SIZE, 64kb).
    pub inline_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            inline_max: 64 * 1024,
        }
    }
}

/// Largest array a client may announce (Redis: INT_MAX).
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Before authentication, Redis refuses longer arrays and bulks than these.
const UNAUTH_MULTIBULK: i64 = 10;
const UNAUTH_BULK: i64 = 16384;
/// Never reserve more spans than this from a client-announced count.
const SPAN_PREALLOC_CAP: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed; `need` is the total buffer length the current
    /// request needs when known (a big bulk), else 0.
    Incomplete { need: usize },
    /// A request; the next one starts at `end`.
    Request { end: usize },
    /// Nothing to run (an empty line, `*0`, `*-1`); continue at `end`.
    Skip { end: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar(u8),
    TooBigMbulkCount,
    TooBigBulkCount,
    TooBigInline,
    UnbalancedQuotes,
    UnauthenticatedMultibulk,
    UnauthenticatedBulk,
}

impl ProtocolError {
    /// Redis's text (the reply is `-ERR <text>`, then the connection closes).
    pub fn message(&self) -> String {
        match self {
            ProtocolError::InvalidMultibulkLength => {
                "Protocol error: invalid multibulk length".into()
            }
            ProtocolError::InvalidBulkLength => "Protocol error: invalid bulk length".into(),
            ProtocolError::ExpectedDollar(c) => {
                format!("Protocol error: expected '$', got '{}'", *c as char)
            }
            ProtocolError::TooBigMbulkCount => "Protocol error: too big mbulk count string".into(),
            ProtocolError::TooBigBulkCount => "Protocol error: too big bulk count string".into(),
            ProtocolError::TooBigInline => "Protocol error: too big inline request".into(),
            ProtocolError::UnbalancedQuotes => {
                "Protocol error: unbalanced quotes in request".into()
            }
            ProtocolError::UnauthenticatedMultibulk => {
                "Protocol error: unauthenticated multibulk length".into()
            }
            ProtocolError::UnauthenticatedBulk => {
                "Protocol error: unauthenticated bulk length".into()
            }
        }
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Progress through one multibulk request.
#[derive(Debug, Default, Clone)]
struct Progress {
    /// Where the request starts.
    start: usize,
    /// Where parsing resumes.
    pos: usize,
    /// Arguments still expected (after the header was read).
    remaining: usize,
    /// The length of the bulk whose header was read, if its body is missing.
    bulk: Option<usize>,
    /// Arguments parsed so far.
    spans: Vec<ArgSpan>,
}

#[derive(Debug, Default)]
pub struct RequestParser {
    progress: Option<Progress>,
}

/// Redis's `string2ll` over a length field.
fn parse_len(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, d) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if d.is_empty() || (d[0] == b'0' && (d.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

impl RequestParser {
    pub fn new() -> Self {
        RequestParser::default()
    }

    /// Forgets any partial request.
    pub fn reset(&mut self) {
        self.progress = None;
    }

    /// The caller dropped `delta` bytes from the front of its buffer.
    pub fn shift_back(&mut self, delta: usize) {
        if let Some(p) = &mut self.progress {
            p.start -= delta;
            p.pos -= delta;
            for s in &mut p.spans {
                s.start -= delta as u32;
            }
        }
    }

    /// Parses one request starting at `start`. On `Request`, `args` holds
    /// its arguments as absolute spans into `buf`.
    pub fn parse(
        &mut self,
        buf: &mut [u8],
        start: usize,
        limits: &Limits,
        authenticated: bool,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        args.clear();
        if start >= buf.len() {
            return Ok(Parsed::Incomplete { need: 0 });
        }
        if self.progress.as_ref().is_some_and(|p| p.start != start) {
            self.progress = None;
        }
        if buf[start] == b'*' || self.progress.is_some() {
            let r = self.multibulk(buf, start, limits, authenticated, args);
            if !matches!(r, Ok(Parsed::Incomplete { .. })) {
                self.progress = None;
            }
            r
        } else {
            inline(buf, start, limits, args)
        }
    }

    fn multibulk(
        &mut self,
        buf: &[u8],
        start: usize,
        limits: &Limits,
        authenticated: bool,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        if self.progress.is_none() {
            let Some(nl) = memchr::memchr(b'\r', &buf[start..]).map(|i| start + i) else {
                if buf.len() - start > limits.inline_max {
                    return Err(ProtocolError::TooBigMbulkCount);
                }
                return Ok(Parsed::Incomplete { need: 0 });
            };
            if nl + 1 >= buf.len() {
                return Ok(Parsed::Incomplete { need: 0 });
            }
            let n = parse_len(&buf[start + 1..nl]).ok_or(ProtocolError::InvalidMultibulkLength)?;
            if n > MAX_MULTIBULK {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            if n > UNAUTH_MULTIBULK && !authenticated {
                return Err(ProtocolError::UnauthenticatedMultibulk);
            }
            if n <= 0 {
                return Ok(Parsed::Skip { end: nl + 2 });
            }
            self.progress = Some(Progress {
                start,
                pos: nl + 2,
                remaining: n as usize,
                bulk: None,
                spans: Vec::with_capacity((n as usize).min(SPAN_PREALLOC_CAP)),
            });
        }
        let p = self.progress.as_mut().expect("progress");
        while p.remaining > 0 {
            let len = match p.bulk {
                Some(l) => l,
                None => {
                    let Some(nl) = memchr::memchr(b'\r', &buf[p.pos..]).map(|i| p.pos + i) else {
                        if buf.len() - p.pos > limits.inline_max {
                            return Err(ProtocolError::TooBigBulkCount);
                        }
                        return Ok(Parsed::Incomplete { need: 0 });
                    };
                    if nl + 1 >= buf.len() {
                        return Ok(Parsed::Incomplete { need: 0 });
                    }
                    if buf[p.pos] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[p.pos]));
                    }
                    let l =
                        parse_len(&buf[p.pos + 1..nl]).ok_or(ProtocolError::InvalidBulkLength)?;
                    if l < 0 || l as u64 > limits.proto_max_bulk_len as u64 {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    if l > UNAUTH_BULK && !authenticated {
                        return Err(ProtocolError::UnauthenticatedBulk);
                    }
                    p.pos = nl + 2;
                    p.bulk = Some(l as usize);
                    l as usize
                }
            };
            let end = p.pos + len + 2;
            if buf.len() < end {
                return Ok(Parsed::Incomplete {
                    need: end - p.start,
                });
            }
            p.spans.push(ArgSpan::new(p.pos, len));
            // Like Redis, the two bytes after a bulk are skipped unchecked.
            p.pos = end;
            p.bulk = None;
            p.remaining -= 1;
        }
        args.extend_from_slice(&p.spans);
        Ok(Parsed::Request { end: p.pos })
    }
}

/// An inline request: one line, split like Redis's `sdssplitargs`, with
/// quoted arguments unescaped in place.
fn inline(
    buf: &mut [u8],
    start: usize,
    limits: &Limits,
    args: &mut Vec<ArgSpan>,
) -> Result<Parsed, ProtocolError> {
    let Some(nl) = memchr::memchr(b'\n', &buf[start..]).map(|i| start + i) else {
        if buf.len() - start > limits.inline_max {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Parsed::Incomplete { need: 0 });
    };
    let mut line_end = nl;
    if line_end > start && buf[line_end - 1] == b'\r' {
        line_end -= 1;
    }
    split_args(buf, start, line_end, args)?;
    if args.is_empty() {
        return Ok(Parsed::Skip { end: nl + 1 });
    }
    Ok(Parsed::Request { end: nl + 1 })
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits `buf[from..to]` into arguments; unescaped bytes are written back
/// into the same region (the write cursor never passes the read cursor).
fn split_args(
    buf: &mut [u8],
    from: usize,
    to: usize,
    args: &mut Vec<ArgSpan>,
) -> Result<(), ProtocolError> {
    let mut r = from;
    let mut w = from;
    let at = |buf: &[u8], i: usize| if i < to { buf[i] } else { 0 };
    loop {
        while r < to && is_space(buf[r]) {
            r += 1;
        }
        if r >= to {
            return Ok(());
        }
        let arg_start = w;
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = at(buf, r);
            if inq {
                if c == b'\\'
                    && at(buf, r + 1) == b'x'
                    && hex(at(buf, r + 2)).is_some()
                    && hex(at(buf, r + 3)).is_some()
                {
                    buf[w] =
                        hex(at(buf, r + 2)).unwrap_or(0) * 16 + hex(at(buf, r + 3)).unwrap_or(0);
                    w += 1;
                    r += 4;
                    continue;
                } else if c == b'\\' && r + 1 < to {
                    let e = buf[r + 1];
                    buf[w] = match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    w += 1;
                    r += 2;
                    continue;
                } else if c == b'"' {
                    if r + 1 < to && !is_space(buf[r + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    r += 1;
                    break;
                } else if r >= to {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    buf[w] = c;
                    w += 1;
                    r += 1;
                }
            } else if insq {
                if c == b'\\' && at(buf, r + 1) == b'\'' {
                    buf[w] = b'\'';
                    w += 1;
                    r += 2;
                    continue;
                } else if c == b'\'' {
                    if r + 1 < to && !is_space(buf[r + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    r += 1;
                    break;
                } else if r >= to {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    buf[w] = c;
                    w += 1;
                    r += 1;
                }
            } else {
                if r >= to || matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0) {
                    break;
                }
                match c {
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => {
                        buf[w] = c;
                        w += 1;
                    }
                }
                r += 1;
            }
        }
        args.push(ArgSpan::new(arg_start, w - arg_start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = input.to_vec();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            match p.parse(&mut buf, pos, &Limits::default(), true, &mut args)? {
                Parsed::Request { end } => {
                    out.push(args.iter().map(|s| buf[s.range()].to_vec()).collect());
                    pos = end;
                }
                Parsed::Skip { end } => pos = end,
                Parsed::Incomplete { .. } => return Ok(out),
            }
        }
    }

    fn strs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn pipeline_of_sixteen_sets() {
        let mut input = Vec::new();
        for i in 0..16 {
            let k = format!("key:{i}");
            input.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$5\r\nvalue\r\n", k.len()).as_bytes(),
            );
        }
        let reqs = parse_all(&input).unwrap();
        assert_eq!(reqs.len(), 16);
        assert_eq!(reqs[9], strs(&["SET", "key:9", "value"]));
    }

    #[test]
    fn inline_commands_and_quotes() {
        assert_eq!(parse_all(b"PING\r\n").unwrap(), vec![strs(&["PING"])]);
        assert_eq!(parse_all(b"PING\n").unwrap(), vec![strs(&["PING"])]);
        assert_eq!(
            parse_all(b"  set  a   b \r\n").unwrap(),
            vec![strs(&["set", "a", "b"])]
        );
        assert_eq!(
            parse_all(b"set \"a b\" 'c d'\r\n").unwrap(),
            vec![strs(&["set", "a b", "c d"])]
        );
        assert_eq!(
            parse_all(b"set \"\\x41\\n\" 'it\\'s'\r\n").unwrap(),
            vec![strs(&["set", "A\n", "it's"])]
        );
        assert_eq!(
            parse_all(b"\r\n\r\nPING\r\n").unwrap(),
            vec![strs(&["PING"])]
        );
        assert_eq!(
            parse_all(b"set \"a\"b\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(b"set \"ab\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(b"set 'ab\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
    }

    #[test]
    fn errors_have_redis_texts() {
        assert_eq!(
            parse_all(b"*x\r\n").unwrap_err().message(),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            parse_all(b"*3000000000\r\n").unwrap_err(),
            ProtocolError::InvalidMultibulkLength
        );
        assert_eq!(
            parse_all(b"*1\r\nfoo\r\n").unwrap_err().message(),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            parse_all(b"*1\r\n$-2\r\n").unwrap_err(),
            ProtocolError::InvalidBulkLength
        );
        assert_eq!(
            parse_all(b"*1\r\n$600000000\r\n").unwrap_err(),
            ProtocolError::InvalidBulkLength
        );
        let long = vec![b'a'; 70 * 1024];
        assert_eq!(
            parse_all(&long).unwrap_err().message(),
            "Protocol error: too big inline request"
        );
        let mut mb = b"*".to_vec();
        mb.extend_from_slice(&long);
        assert_eq!(parse_all(&mb).unwrap_err(), ProtocolError::TooBigMbulkCount);
        let mut b = b"*1\r\n$".to_vec();
        b.extend_from_slice(&long);
        assert_eq!(parse_all(&b).unwrap_err(), ProtocolError::TooBigBulkCount);
    }

    #[test]
    fn empty_arrays_are_skipped() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").unwrap(),
            vec![strs(&["PING"])]
        );
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let mut b = b"*11\r\n".to_vec();
        assert_eq!(
            p.parse(&mut b, 0, &Limits::default(), false, &mut args),
            Err(ProtocolError::UnauthenticatedMultibulk)
        );
        let mut b = b"*1\r\n$20000\r\n".to_vec();
        assert_eq!(
            p.parse(&mut b, 0, &Limits::default(), false, &mut args),
            Err(ProtocolError::UnauthenticatedBulk)
        );
    }

    #[test]
    fn resumes_without_rescanning() {
        let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\n".to_vec();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        for cut in 1..full.len() {
            let mut part = full[..cut].to_vec();
            let r = p
                .parse(&mut part, 0, &Limits::default(), true, &mut args)
                .unwrap();
            assert!(matches!(r, Parsed::Incomplete { .. }), "cut {cut}: {r:?}");
        }
        let mut all = full.clone();
        assert_eq!(
            p.parse(&mut all, 0, &Limits::default(), true, &mut args)
                .unwrap(),
            Parsed::Request { end: full.len() }
        );
        assert_eq!(args.len(), 3);
        assert_eq!(&all[args[2].range()], b"0123456789");
    }

    #[test]
    fn big_bulk_reports_what_it_needs() {
        let mut b = b"*2\r\n$3\r\nSET\r\n$100000\r\nabc".to_vec();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let r = p
            .parse(&mut b, 0, &Limits::default(), true, &mut args)
            .unwrap();
        assert_eq!(
            r,
            Parsed::Incomplete {
                need: 13 + 9 + 100000 + 2
            }
        );
    }

    #[test]
    fn shift_back_keeps_progress() {
        let mut b = b"XXXX*2\r\n$3\r\nGET\r\n$1\r\n".to_vec();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        assert!(matches!(
            p.parse(&mut b, 4, &Limits::default(), true, &mut args)
                .unwrap(),
            Parsed::Incomplete { .. }
        ));
        let mut rest = b[4..].to_vec();
        p.shift_back(4);
        rest.extend_from_slice(b"k\r\n");
        assert_eq!(
            p.parse(&mut rest, 0, &Limits::default(), true, &mut args)
                .unwrap(),
            Parsed::Request { end: rest.len() }
        );
        assert_eq!(&rest[args[0].range()], b"GET");
        assert_eq!(&rest[args[1].range()], b"k");
    }
}
