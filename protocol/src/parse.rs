//! The request parser: the server's hot path.
//!
//! `RequestParser` turns the bytes a client sent into argument spans
//! (`ArgSpan`) that point into the connection's read buffer, so a request
//! costs no allocation beyond the caller's reused `Vec<ArgSpan>`.
//!
//! It accepts the two request forms Redis accepts:
//!
//! * multibulk: `*<count>\r\n` then `count` times `$<len>\r\n<len bytes>\r\n`;
//! * inline ("telnet") commands: one line ending in `\n` (an optional `\r`
//!   before it is dropped), split into arguments with the quoting rules of
//!   Redis's `sdssplitargs`. Escapes are decoded in place in the buffer, which
//!   is why `parse` takes `&mut [u8]`.
//!
//! Parsing is resumable: when a request is not complete yet, the parser keeps
//! what it has (the arguments parsed so far, where it stopped, how far it has
//! already searched for a line end) and the next call, after more bytes
//! arrived, carries on from there. A request of `n` arguments arriving in any
//! number of reads costs O(n + bytes) in total.
//!
//! Errors carry Redis's exact text (`ProtocolError::message`). After one,
//! Redis replies `-ERR <text>` and closes the connection; the caller does that.
//!
//! Where this parser deliberately differs from Redis 7.0:
//!
//! * Redis looks for line ends with `strchr`, which stops at a NUL byte, so a
//!   header line or inline command holding a NUL never completes (the client
//!   hangs until 64KB arrive, then gets a "too big" error). Here NUL is an
//!   ordinary byte: a NUL in a count is an invalid count, and in an inline
//!   command it is part of an argument.
//! * Redis applies the 64KB line limit only when a read leaves more than 64KB
//!   without a line end, so whether a longer line is accepted depends on how
//!   the bytes were split into reads. Here a line longer than `inline_max`
//!   is always an error, whatever the split, so the outcome is deterministic.
//! * Redis skips `proto_max_bulk_len` for its own master link; the caller can
//!   pass a larger `Limits::proto_max_bulk_len` for such a connection.

use crate::args::ArgSpan;
use memchr::memchr;

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest line without a line end.
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Redis's `PROTO_MBULK_BIG_ARG`: from this bulk length on, Redis reads the
/// argument straight into a buffer of its own; `Parsed::Incomplete::need`
/// lets the caller do the same.
pub const PROTO_MBULK_BIG_ARG: usize = 32 * 1024;
/// Default `proto-max-bulk-len` (512MB).
pub const DEFAULT_PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Largest multibulk count a client that has not authenticated may send.
pub const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;
/// Largest bulk length a client that has not authenticated may send.
pub const UNAUTH_MAX_BULK_LEN: usize = 16384;
/// Never reserve more argument slots than this up front, whatever count the
/// client announced (Redis caps its argv preallocation at 1024 too).
const MAX_PREALLOC_ARGS: usize = 1024;
/// Above this many saved spans, the parser's own buffer is released once the
/// request completes, so one huge request does not pin memory forever.
const KEEP_PARTIAL_CAPACITY: usize = 4096;

/// Configurable limits (`proto-max-bulk-len` and the inline line limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub proto_max_bulk_len: usize,
    pub inline_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            inline_max: PROTO_INLINE_MAX_SIZE,
        }
    }
}

/// The outcome of one `RequestParser::parse` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed. `need` is the total buffer length (counted
    /// from the start of the buffer, like all offsets) that completes the
    /// argument being read, when that is known (a bulk whose length has been
    /// read), else 0. The parser remembers its progress; call again with the
    /// same `start` once more bytes have been appended.
    Incomplete { need: usize },
    /// A whole request; its arguments are in `args`. The next request starts
    /// at `end`.
    Request { end: usize },
    /// Something that is not a command (an empty inline line, `*0`, `*-1`):
    /// nothing to run; carry on at `end`.
    Skip { end: usize },
}

/// A malformed request. `message()` is Redis's text; the server replies
/// `-ERR <message>` (see `write_reply`) and closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*` count not a strict integer, or above `i32::MAX`.
    InvalidMultibulkLength,
    /// A multibulk element that does not start with `$`; the byte found.
    ExpectedDollar(u8),
    /// `$` length not a strict integer, negative, or above
    /// `proto_max_bulk_len`.
    InvalidBulkLength,
    /// No line end for the `*` count within the line limit.
    TooBigMbulkCount,
    /// No line end for a `$` length within the line limit.
    TooBigBulkCount,
    /// No line end for an inline command within the line limit.
    TooBigInline,
    /// An inline command with an unclosed quote, or a closing quote followed
    /// by something other than a space.
    UnbalancedQuotes,
    /// A count above 10 from a client that has not authenticated.
    UnauthenticatedMultibulkLength,
    /// A bulk length above 16384 from a client that has not authenticated.
    UnauthenticatedBulkLength,
}

impl ProtocolError {
    /// Redis's error text, without the `ERR ` code. A byte outside ASCII in
    /// `ExpectedDollar` shows as the character of that code point (Redis
    /// sends the raw byte: `message_bytes` and `write_reply` are exact).
    pub fn message(&self) -> String {
        match self {
            ProtocolError::ExpectedDollar(b) => format!(
                "Protocol error: expected '$', got '{}'",
                char::from(shown_byte(*b))
            ),
            _ => self.fixed_text().to_string(),
        }
    }

    /// The error text as the exact bytes Redis sends (CR and LF shown as
    /// spaces, as Redis does in error replies).
    pub fn message_bytes(&self) -> Vec<u8> {
        match self {
            ProtocolError::ExpectedDollar(b) => {
                let mut v = b"Protocol error: expected '$', got '".to_vec();
                v.push(shown_byte(*b));
                v.push(b'\'');
                v
            }
            _ => self.fixed_text().as_bytes().to_vec(),
        }
    }

    fn fixed_text(&self) -> &'static str {
        match self {
            ProtocolError::InvalidMultibulkLength => "Protocol error: invalid multibulk length",
            ProtocolError::ExpectedDollar(_) => "Protocol error: expected '$'",
            ProtocolError::InvalidBulkLength => "Protocol error: invalid bulk length",
            ProtocolError::TooBigMbulkCount => "Protocol error: too big mbulk count string",
            ProtocolError::TooBigBulkCount => "Protocol error: too big bulk count string",
            ProtocolError::TooBigInline => "Protocol error: too big inline request",
            ProtocolError::UnbalancedQuotes => "Protocol error: unbalanced quotes in request",
            ProtocolError::UnauthenticatedMultibulkLength => {
                "Protocol error: unauthenticated multibulk length"
            }
            ProtocolError::UnauthenticatedBulkLength => {
                "Protocol error: unauthenticated bulk length"
            }
        }
    }

    /// Appends the error reply Redis sends, `-ERR <message>\r\n`, byte-exact.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR ");
        out.extend_from_slice(&self.message_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Redis turns CR and LF in error replies into spaces.
fn shown_byte(b: u8) -> u8 {
    if b == b'\r' || b == b'\n' {
        b' '
    } else {
        b
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ProtocolError {}

/// Where a pending request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No request in progress.
    Idle,
    /// An inline line without its `\n` yet.
    Inline,
    /// A `*` line without its line end yet.
    Count,
    /// Reading the elements of a multibulk request.
    Elements,
}

/// Bulk length not read yet.
const NO_BULK: usize = usize::MAX;

/// The multibulk cursor, kept in locals while parsing and saved in the
/// parser between calls.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    /// Next unparsed byte (absolute).
    pos: usize,
    /// Where the search for the current line's end resumes (absolute).
    scan: usize,
    /// Elements still to read.
    remaining: usize,
    /// Length of the bulk being read, or `NO_BULK`.
    bulk: usize,
}

/// A resumable, zero-copy request parser; one per connection.
#[derive(Debug)]
pub struct RequestParser {
    phase: Phase,
    /// Where the pending request starts (absolute).
    req_start: usize,
    cur: Cursor,
    /// The pending request's arguments so far, with offsets relative to
    /// `req_start`, so `shift_back` costs O(1).
    partial: Vec<ArgSpan>,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    pub fn new() -> Self {
        RequestParser {
            phase: Phase::Idle,
            req_start: 0,
            cur: Cursor {
                pos: 0,
                scan: 0,
                remaining: 0,
                bulk: NO_BULK,
            },
            partial: Vec::new(),
        }
    }

    /// Whether a request is partly parsed (the last call was `Incomplete`
    /// after some progress).
    pub fn in_progress(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// Parse one request starting at `start` in `buf`. The spans pushed
    /// into `args` (cleared first) are absolute offsets in `buf`; `end` is
    /// where the next request starts.
    ///
    /// After `Incomplete`, call again with the same `start` (moved by
    /// `shift_back` if the caller dropped bytes in front) and the same bytes
    /// followed by more; the parser then resumes where it stopped. Called
    /// with another `start`, or a buffer shorter than what it had seen, it
    /// forgets its progress and starts over. Offsets must fit in `u32`.
    pub fn parse(
        &mut self,
        buf: &mut [u8],
        start: usize,
        limits: &Limits,
        authenticated: bool,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        let r = self.parse_inner(buf, start, limits, authenticated, args);
        if r.is_err() {
            self.reset();
        }
        r
    }

    #[inline]
    fn parse_inner(
        &mut self,
        buf: &mut [u8],
        start: usize,
        limits: &Limits,
        authenticated: bool,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        args.clear();
        if self.phase != Phase::Idle {
            if start == self.req_start && self.cur.pos <= buf.len() && self.cur.scan <= buf.len() {
                return self.resume(buf, limits, authenticated, args);
            }
            self.reset();
        }
        match buf.get(start) {
            None => Ok(Parsed::Incomplete { need: 0 }),
            Some(b'*') => self.multibulk(buf, start, start, limits, authenticated, args),
            Some(_) => self.inline(buf, start, start, limits, args),
        }
    }

    /// The caller dropped `delta` bytes from the front of its buffer: shift
    /// the saved offsets. (Saved argument spans are relative to the request
    /// start, so this is O(1).)
    pub fn shift_back(&mut self, delta: usize) {
        if self.phase == Phase::Idle {
            return;
        }
        if delta > self.req_start {
            // The caller dropped part of the pending request: start over.
            self.reset();
            return;
        }
        self.req_start -= delta;
        self.cur.pos -= delta;
        self.cur.scan -= delta;
    }

    /// Forget any pending request.
    pub fn reset(&mut self) {
        self.phase = Phase::Idle;
        self.cur = Cursor {
            pos: 0,
            scan: 0,
            remaining: 0,
            bulk: NO_BULK,
        };
        self.partial.clear();
        if self.partial.capacity() > KEEP_PARTIAL_CAPACITY {
            self.partial = Vec::new();
        }
    }

    fn resume(
        &mut self,
        buf: &mut [u8],
        limits: &Limits,
        authenticated: bool,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        let start = self.req_start;
        match self.phase {
            Phase::Inline => self.inline(buf, start, self.cur.scan, limits, args),
            Phase::Count => {
                let scan = self.cur.scan;
                self.multibulk(buf, start, scan, limits, authenticated, args)
            }
            Phase::Elements | Phase::Idle => {
                let mut cur = self.cur;
                let mut partial = std::mem::take(&mut self.partial);
                let r = read_elements(buf, &mut cur, limits, authenticated, &mut partial, start);
                self.partial = partial;
                match r? {
                    None => {
                        args.reserve(self.partial.len());
                        args.extend(
                            self.partial
                                .iter()
                                .map(|s| ArgSpan::new(s.start as usize + start, s.len as usize)),
                        );
                        self.reset();
                        Ok(Parsed::Request { end: cur.pos })
                    }
                    Some(need) => {
                        self.cur = cur;
                        Ok(Parsed::Incomplete { need })
                    }
                }
            }
        }
    }

    /// A multibulk request from its `*` line (fresh, or resuming a `*` line
    /// whose end was not there yet, searching from `scan`).
    #[inline]
    fn multibulk(
        &mut self,
        buf: &[u8],
        start: usize,
        scan: usize,
        limits: &Limits,
        authenticated: bool,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        let (count, pos) = match fast_int_line(buf, start, limits.inline_max) {
            Some((n, cr)) => (n, cr + 2),
            None => {
                let mut scan = scan;
                let Some(cr) = find_line(
                    buf,
                    start,
                    &mut scan,
                    limits.inline_max,
                    ProtocolError::TooBigMbulkCount,
                )?
                else {
                    self.phase = Phase::Count;
                    self.req_start = start;
                    self.cur = Cursor {
                        pos: start,
                        scan,
                        remaining: 0,
                        bulk: NO_BULK,
                    };
                    return Ok(Parsed::Incomplete { need: 0 });
                };
                match string2ll(&buf[start + 1..cr]) {
                    Some(n) => (n, cr + 2),
                    None => return Err(ProtocolError::InvalidMultibulkLength),
                }
            }
        };
        if count > i32::MAX as i64 {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        if count > UNAUTH_MAX_MULTIBULK_LEN && !authenticated {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        self.phase = Phase::Idle;
        if count <= 0 {
            return Ok(Parsed::Skip { end: pos });
        }
        let count = count as usize;
        args.reserve(count.min(MAX_PREALLOC_ARGS));
        let mut cur = Cursor {
            pos,
            scan: pos,
            remaining: count,
            bulk: NO_BULK,
        };
        match read_elements(buf, &mut cur, limits, authenticated, args, 0)? {
            None => Ok(Parsed::Request { end: cur.pos }),
            Some(need) => {
                // Keep what we have, relative to the request start.
                self.partial.clear();
                self.partial.reserve(args.len());
                self.partial.extend(
                    args.iter()
                        .map(|s| ArgSpan::new(s.start as usize - start, s.len as usize)),
                );
                args.clear();
                self.phase = Phase::Elements;
                self.req_start = start;
                self.cur = cur;
                Ok(Parsed::Incomplete { need })
            }
        }
    }

    /// An inline command: one line, split like `sdssplitargs`.
    fn inline(
        &mut self,
        buf: &mut [u8],
        start: usize,
        scan: usize,
        limits: &Limits,
        args: &mut Vec<ArgSpan>,
    ) -> Result<Parsed, ProtocolError> {
        let from = scan.max(start);
        let nl = match memchr(b'\n', &buf[from..]) {
            Some(i) => from + i,
            None => {
                if buf.len() - start > limits.inline_max {
                    return Err(ProtocolError::TooBigInline);
                }
                self.phase = Phase::Inline;
                self.req_start = start;
                self.cur = Cursor {
                    pos: start,
                    scan: buf.len(),
                    remaining: 0,
                    bulk: NO_BULK,
                };
                return Ok(Parsed::Incomplete { need: 0 });
            }
        };
        if nl - start > limits.inline_max {
            return Err(ProtocolError::TooBigInline);
        }
        self.phase = Phase::Idle;
        let line_end = if nl > start && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        split_inline(&mut buf[start..line_end], start, args)?;
        let end = nl + 1;
        if args.is_empty() {
            Ok(Parsed::Skip { end })
        } else {
            Ok(Parsed::Request { end })
        }
    }
}

/// Reads multibulk elements until `cur.remaining` is 0 (`Ok(None)`) or the
/// buffer runs out (`Ok(Some(need))`). Spans go to `out`, minus `base`.
#[inline]
fn read_elements(
    buf: &[u8],
    cur: &mut Cursor,
    limits: &Limits,
    authenticated: bool,
    out: &mut Vec<ArgSpan>,
    base: usize,
) -> Result<Option<usize>, ProtocolError> {
    while cur.remaining > 0 {
        if cur.bulk == NO_BULK {
            let p = cur.pos;
            let (len, cr) = match fast_int_line(buf, p, limits.inline_max) {
                Some((n, cr)) if buf[p] == b'$' => (n, cr),
                _ => {
                    let Some(cr) = find_line(
                        buf,
                        p,
                        &mut cur.scan,
                        limits.inline_max,
                        ProtocolError::TooBigBulkCount,
                    )?
                    else {
                        return Ok(Some(0));
                    };
                    if buf[p] != b'$' {
                        return Err(ProtocolError::ExpectedDollar(buf[p]));
                    }
                    match string2ll(&buf[p + 1..cr]) {
                        Some(n) => (n, cr),
                        None => return Err(ProtocolError::InvalidBulkLength),
                    }
                }
            };
            if len < 0 || len as u64 > limits.proto_max_bulk_len as u64 {
                return Err(ProtocolError::InvalidBulkLength);
            }
            let len = len as usize;
            if len > UNAUTH_MAX_BULK_LEN && !authenticated {
                return Err(ProtocolError::UnauthenticatedBulkLength);
            }
            cur.pos = cr + 2;
            cur.bulk = len;
        }
        // Redis does not check that the two bytes after the data are CRLF.
        let end = cur.pos.saturating_add(cur.bulk).saturating_add(2);
        if end > buf.len() {
            return Ok(Some(end));
        }
        out.push(ArgSpan::new(cur.pos - base, cur.bulk));
        cur.pos = end;
        cur.scan = end;
        cur.bulk = NO_BULK;
        cur.remaining -= 1;
    }
    Ok(None)
}

/// The common case of a header line, without a memchr call: the type byte
/// at `p`, then a non-negative integer in canonical form (what `string2ll`
/// accepts), then `\r` and at least one more byte. Returns the value and the
/// index of the `\r`. `None` means "take the general path", never an error.
#[inline(always)]
fn fast_int_line(buf: &[u8], p: usize, max: usize) -> Option<(i64, usize)> {
    let digits = buf.get(p + 1..)?;
    let first = *digits.first()?;
    if !first.is_ascii_digit() {
        return None;
    }
    let mut n = (first - b'0') as i64;
    let mut i = 1;
    // 18 digits cannot overflow an i64.
    while i < 18 {
        let c = *digits.get(i)?;
        if !c.is_ascii_digit() {
            break;
        }
        n = n * 10 + (c - b'0') as i64;
        i += 1;
    }
    // Canonical: no leading zero unless the number is "0" itself.
    if first == b'0' && i > 1 {
        return None;
    }
    let cr = p + 1 + i;
    // The byte after the '\r' must be there (Redis does not check it is '\n').
    if *buf.get(cr)? != b'\r' || cr + 1 >= buf.len() || cr - p > max {
        return None;
    }
    Some((n, cr))
}

/// Finds the end of the header line starting at `pos`: the first `\r`,
/// with one more byte after it (as Redis, that byte is skipped unchecked).
/// `scan` is where the search resumes and is updated when the line is not
/// complete. A line whose `\r` is more than `max` bytes from `pos` is `err`.
#[inline]
fn find_line(
    buf: &[u8],
    pos: usize,
    scan: &mut usize,
    max: usize,
    err: ProtocolError,
) -> Result<Option<usize>, ProtocolError> {
    let from = (*scan).max(pos);
    match memchr(b'\r', &buf[from..]) {
        Some(i) => {
            let cr = from + i;
            if cr - pos > max {
                return Err(err);
            }
            if cr + 1 >= buf.len() {
                *scan = cr;
                return Ok(None);
            }
            Ok(Some(cr))
        }
        None => {
            if buf.len() - pos > max {
                return Err(err);
            }
            *scan = buf.len();
            Ok(None)
        }
    }
}

/// Redis's `string2ll`: a strict decimal integer. No sign other than a
/// leading `-`, no leading zeros, no spaces, at most 20 characters, within
/// `i64`.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
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

/// `isspace` in the C locale.
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn hex_val(c: Option<&u8>) -> Option<u8> {
    match c? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line into arguments with `sdssplitargs`'s rules,
/// decoding escapes in place (an argument never grows when unescaped, so
/// its bytes are written over its own source). `offset` is the line's
/// position in the buffer, for the spans.
///
/// * Arguments are separated by whitespace (C `isspace`); inside an unquoted
///   argument only space, tab, CR and LF end it (a vertical tab or form feed
///   is part of it).
/// * `"..."` understands `\n \r \t \b \a`, `\xHH` and `\<any>` for `<any>`.
/// * `'...'` understands only `\'`.
/// * A quote may start in the middle of an argument (`a"b c"` is `ab c`),
///   but a closing quote must be followed by whitespace or the line end.
fn split_inline(
    line: &mut [u8],
    offset: usize,
    args: &mut Vec<ArgSpan>,
) -> Result<(), ProtocolError> {
    let n = line.len();
    let mut p = 0;
    loop {
        while p < n && is_space(line[p]) {
            p += 1;
        }
        if p >= n {
            return Ok(());
        }
        let tok = p;
        let mut w = p;
        // 0: unquoted, 1: in "double", 2: in 'single' quotes.
        let mut quote = 0u8;
        loop {
            if quote == 0 {
                if p >= n {
                    break;
                }
                let c = line[p];
                p += 1;
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => quote = 1,
                    b'\'' => quote = 2,
                    _ => {
                        line[w] = c;
                        w += 1;
                    }
                }
            } else if p >= n {
                return Err(ProtocolError::UnbalancedQuotes);
            } else if quote == 1 {
                let c = line[p];
                if c == b'\\' && p + 1 < n {
                    let e = line[p + 1];
                    if e == b'x' {
                        if let (Some(h), Some(l)) =
                            (hex_val(line.get(p + 2)), hex_val(line.get(p + 3)))
                        {
                            line[w] = h * 16 + l;
                            w += 1;
                            p += 4;
                            continue;
                        }
                    }
                    line[w] = match e {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    };
                    w += 1;
                    p += 2;
                } else if c == b'"' {
                    if p + 1 < n && !is_space(line[p + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else {
                    line[w] = c;
                    w += 1;
                    p += 1;
                }
            } else {
                let c = line[p];
                if c == b'\\' && line.get(p + 1) == Some(&b'\'') {
                    line[w] = b'\'';
                    w += 1;
                    p += 2;
                } else if c == b'\'' {
                    if p + 1 < n && !is_space(line[p + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else {
                    line[w] = c;
                    w += 1;
                    p += 1;
                }
            }
        }
        args.push(ArgSpan::new(offset + tok, w - tok));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        Req(Vec<Vec<u8>>),
        Skip,
    }

    /// Parses all of `input` at once: the events, then how it stopped.
    fn run(input: &[u8], auth: bool) -> (Vec<Ev>, Result<Parsed, ProtocolError>) {
        let mut buf = input.to_vec();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let mut evs = Vec::new();
        let mut start = 0;
        loop {
            match p.parse(&mut buf, start, &Limits::default(), auth, &mut args) {
                Ok(Parsed::Request { end }) => {
                    evs.push(Ev::Req(
                        args.iter().map(|s| buf[s.range()].to_vec()).collect(),
                    ));
                    start = end;
                }
                Ok(Parsed::Skip { end }) => {
                    evs.push(Ev::Skip);
                    start = end;
                }
                other => return (evs, other),
            }
        }
    }

    fn req(parts: &[&str]) -> Ev {
        Ev::Req(parts.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    fn err(input: &[u8], auth: bool) -> String {
        match run(input, auth).1 {
            Err(e) => e.message(),
            other => panic!("{input:?}: expected an error, got {other:?}"),
        }
    }

    fn incomplete(input: &[u8]) -> bool {
        matches!(run(input, true).1, Ok(Parsed::Incomplete { .. }))
    }

    #[test]
    fn error_texts_match_redis() {
        let inv_mb = "Protocol error: invalid multibulk length";
        for s in [
            &b"*+1\r\n"[..],
            b"*01\r\n",
            b"*-0\r\n",
            b"*\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
            b"*2147483648\r\n",
            b"*-9223372036854775809\r\n",
            b"*1\x00\r\n",
        ] {
            assert_eq!(err(s, true), inv_mb, "{s:?}");
        }
        let inv_bulk = "Protocol error: invalid bulk length";
        for s in [
            &b"*1\r\n$-1\r\n"[..],
            b"*1\r\n$01\r\n",
            b"*1\r\n$-0\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$ 4\r\n",
            b"*1\r\n$4 \r\n",
            b"*1\r\n$536870913\r\n",
            b"*1\r\n$99999999999999999999999\r\n",
        ] {
            assert_eq!(err(s, true), inv_bulk, "{s:?}");
        }
        assert_eq!(
            err(b"*1\r\nx4\r\n", true),
            "Protocol error: expected '$', got 'x'"
        );
        assert_eq!(
            err(b"*1\r\n\r\n", true),
            "Protocol error: expected '$', got ' '"
        );
        let e = run(b"*1\r\n\x80\r\n", true).1.unwrap_err();
        assert_eq!(e, ProtocolError::ExpectedDollar(0x80));
        let mut out = Vec::new();
        e.write_reply(&mut out);
        assert_eq!(out, b"-ERR Protocol error: expected '$', got '\x80'\r\n");
        assert_eq!(
            err(b"ECHO \"a\"b\r\n", true),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            err(b"*11\r\n", false),
            "Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            err(b"*1\r\n$16385\r\n", false),
            "Protocol error: unauthenticated bulk length"
        );
        // The limits themselves are fine, and negative counts skip.
        assert!(incomplete(b"*2147483647\r\n"));
        assert!(incomplete(b"*1\r\n$536870912\r\n"));
        assert!(matches!(
            run(b"*10\r\n", false).1,
            Ok(Parsed::Incomplete { .. })
        ));
        assert!(matches!(
            run(b"*1\r\n$16384\r\n", false).1,
            Ok(Parsed::Incomplete { .. })
        ));
        assert_eq!(run(b"*-100\r\n", false).0, vec![Ev::Skip]);
        // Validity is checked before authentication.
        assert_eq!(err(b"*1\r\n$-1\r\n", false), inv_bulk);
        assert_eq!(err(b"*2147483648\r\n", false), inv_mb);
    }

    #[test]
    fn too_big_lines() {
        let x = |n: usize| vec![b'x'; n];
        assert!(incomplete(&x(65536)));
        assert_eq!(
            err(&x(65537), true),
            "Protocol error: too big inline request"
        );
        // A line found but longer than the limit is refused too (Redis's
        // outcome there depends on read sizes; ours does not).
        let mut long = x(70000);
        long.extend_from_slice(b"\r\n");
        assert_eq!(err(&long, true), "Protocol error: too big inline request");
        let mut ok = x(65535);
        ok.extend_from_slice(b"\r\n");
        assert_eq!(run(&ok, true).0.len(), 1);

        let mut mb = b"*".to_vec();
        mb.extend(std::iter::repeat_n(b'1', 65536));
        assert_eq!(err(&mb, true), "Protocol error: too big mbulk count string");
        let mut bulk = b"*1\r\n".to_vec();
        bulk.extend(std::iter::repeat_n(b'$', 65536));
        assert!(incomplete(&bulk));
        bulk.push(b'$');
        assert_eq!(
            err(&bulk, true),
            "Protocol error: too big bulk count string"
        );
        // With a smaller configured limit.
        let lim = Limits {
            inline_max: 8,
            ..Limits::default()
        };
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let mut b = b"*000000001\r\n".to_vec();
        assert_eq!(
            p.parse(&mut b, 0, &lim, true, &mut args),
            Err(ProtocolError::TooBigMbulkCount)
        );
        let mut b = b"*1\r\n$000000001\r\n".to_vec();
        assert_eq!(
            p.parse(&mut b, 0, &lim, true, &mut args),
            Err(ProtocolError::TooBigBulkCount)
        );
        let lim = Limits {
            proto_max_bulk_len: 3,
            ..Limits::default()
        };
        let mut b = b"*1\r\n$4\r\n".to_vec();
        assert_eq!(
            p.parse(&mut b, 0, &lim, true, &mut args),
            Err(ProtocolError::InvalidBulkLength)
        );
    }

    #[test]
    fn multibulk_quirks_like_redis() {
        assert_eq!(run(b"*1\r\n$4\r\nPING\r\n", true).0, vec![req(&["PING"])]);
        // Any byte after the '\r' of a header line is skipped unchecked, and
        // so are the two bytes after bulk data.
        assert_eq!(run(b"*1\rX$4\rXPING\r\n", true).0, vec![req(&["PING"])]);
        assert_eq!(
            run(b"*1\r\n$4\r\nPINGxxPING\r\n", true).0,
            vec![req(&["PING"]), req(&["PING"])]
        );
        // "$4\r\r\n": the data starts after "\r\r".
        assert_eq!(
            run(b"*1\r\n$4\r\r\nPING\r\n", true).0,
            vec![req(&["\nPIN"]), Ev::Skip]
        );
        assert_eq!(
            run(b"*0\r\n*-1\r\n*-5\r\nPING\r\n", true).0,
            vec![Ev::Skip, Ev::Skip, Ev::Skip, req(&["PING"])]
        );
        assert_eq!(run(b"*-9223372036854775808\r\n", true).0, vec![Ev::Skip]);
        // Binary data, empty arguments.
        assert_eq!(
            run(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$3\r\n\r\n\x00\r\n", true).0,
            vec![Ev::Req(vec![b"SET".to_vec(), vec![], b"\r\n\x00".to_vec()])]
        );
        // A header line still waiting for the byte after its '\r'.
        assert!(incomplete(b"*1\r"));
        assert!(incomplete(b"*1\r\n$4\r"));
    }

    #[test]
    fn inline_quoting_like_sdssplitargs() {
        let one = |s: &[u8]| -> Ev {
            let (evs, end) = run(s, true);
            assert!(
                matches!(end, Ok(Parsed::Incomplete { .. })),
                "{s:?}: {end:?}"
            );
            assert_eq!(evs.len(), 1, "{s:?}");
            evs.into_iter().next().unwrap()
        };
        assert_eq!(one(b"PING\r\n"), req(&["PING"]));
        assert_eq!(one(b"PING\n"), req(&["PING"]));
        assert_eq!(one(b"PING\r\r\n"), req(&["PING"]));
        assert_eq!(one(b"PING\rPONG\r\n"), req(&["PING", "PONG"]));
        assert_eq!(one(b" \t PING \t \r\n"), req(&["PING"]));
        assert_eq!(one(b"SET  k   v\r\n"), req(&["SET", "k", "v"]));
        assert_eq!(
            one(b"ECHO \"a\\x41\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n"),
            req(&["ECHO", "aA\n\r\t\x08\x07\\\"q"])
        );
        assert_eq!(one(b"ECHO \"\\xZZ\"\r\n"), req(&["ECHO", "xZZ"]));
        assert_eq!(one(b"ECHO \"\\x4\"\r\n"), req(&["ECHO", "x4"]));
        assert_eq!(
            one(b"ECHO \"\\xff\"\n"),
            Ev::Req(vec![b"ECHO".to_vec(), vec![0xff]])
        );
        assert_eq!(one(b"ECHO 'a\\'b'\r\n"), req(&["ECHO", "a'b"]));
        assert_eq!(one(b"ECHO 'a\\nb'\r\n"), req(&["ECHO", "a\\nb"]));
        assert_eq!(one(b"ECHO \"\" ''\r\n"), req(&["ECHO", "", ""]));
        assert_eq!(one(b"ECHO \"a b\"\tc\r\n"), req(&["ECHO", "a b", "c"]));
        // A quote may open mid-argument.
        assert_eq!(one(b"ECHO a\"b c\"\r\n"), req(&["ECHO", "ab c"]));
        // Vertical tab: skipped between arguments, kept inside one, and
        // accepted after a closing quote.
        assert_eq!(one(b"ECHO \x0bx\x0by\r\n"), req(&["ECHO", "x\x0by"]));
        assert_eq!(one(b"ECHO \"a\"\x0bb\r\n"), req(&["ECHO", "a", "b"]));
        // NUL is an ordinary byte here (Redis never completes such a line).
        assert_eq!(one(b"PI\x00NG\r\n"), req(&["PI\x00NG"]));

        for bad in [
            &b"ECHO \"a\"b\r\n"[..],
            b"ECHO 'a'b\r\n",
            b"ECHO 'a'\"b\"\r\n",
            b"ECHO a\"b c\"d\r\n",
            b"ECHO \"ab\r\n",
            b"ECHO 'ab\r\n",
            b"ECHO \"ab\\\"\r\n",
            b"ECHO \"ab\\\r\n",
        ] {
            assert_eq!(
                run(bad, true).1,
                Err(ProtocolError::UnbalancedQuotes),
                "{bad:?}"
            );
        }
        // Empty lines are skipped.
        assert_eq!(
            run(b"\r\n\n  \r\nPING\n", true).0,
            vec![Ev::Skip, Ev::Skip, Ev::Skip, req(&["PING"])]
        );
    }

    #[test]
    fn inline_escapes_are_decoded_in_place() {
        let mut buf = b"SET \"k\\x41\" 'v'\r\n".to_vec();
        let mut args = Vec::new();
        let r = RequestParser::new().parse(&mut buf, 0, &Limits::default(), true, &mut args);
        assert_eq!(r, Ok(Parsed::Request { end: buf.len() }));
        assert_eq!(
            args,
            vec![ArgSpan::new(0, 3), ArgSpan::new(4, 2), ArgSpan::new(12, 1)]
        );
        // An argument's decoded bytes start where its source started (at
        // the opening quote here).
        assert_eq!(&buf[4..6], b"kA");
        assert_eq!(&buf[12..13], b"v");
    }

    #[test]
    fn pipeline_of_16_sets() {
        let mut buf = Vec::new();
        for i in 0..16 {
            let key = format!("key:{i}");
            crate::value::encode_request(&[b"SET", key.as_bytes(), b"value"], &mut buf);
        }
        let mut p = RequestParser::new();
        let mut args = Vec::with_capacity(3);
        let lim = Limits::default();
        let mut start = 0;
        for i in 0..16 {
            let klen = format!("key:{i}").len();
            let r = p.parse(&mut buf, start, &lim, false, &mut args).unwrap();
            // *3\r\n $3\r\nSET\r\n $<klen>\r\n<key>\r\n $5\r\nvalue\r\n
            let key_at = start + 4 + 9 + 2 + (klen >= 10) as usize + 2;
            let val_at = key_at + klen + 2 + 4;
            let end = val_at + 5 + 2;
            assert_eq!(r, Parsed::Request { end });
            assert_eq!(
                args,
                vec![
                    ArgSpan::new(start + 8, 3),
                    ArgSpan::new(key_at, klen),
                    ArgSpan::new(val_at, 5)
                ]
            );
            assert_eq!(&buf[args[1].range()], format!("key:{i}").as_bytes());
            start = end;
        }
        assert_eq!(start, buf.len());
        assert_eq!(
            p.parse(&mut buf, start, &lim, false, &mut args),
            Ok(Parsed::Incomplete { need: 0 })
        );
    }

    #[test]
    fn resumes_byte_by_byte_and_after_shift_back() {
        let mut whole = Vec::new();
        crate::value::encode_request(&[b"SET", b"key", b"a value\r\n"], &mut whole);
        whole.extend_from_slice(b"GET \"key\"\r\n");
        let lim = Limits::default();
        // Feed one byte at a time, dropping consumed bytes as we go, behind
        // 3 bytes of an earlier request to exercise shift_back.
        let mut buf = b"old".to_vec();
        let mut start = 3;
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let mut got = Vec::new();
        for &b in &whole {
            buf.push(b);
            loop {
                match p.parse(&mut buf, start, &lim, true, &mut args).unwrap() {
                    Parsed::Incomplete { need } => {
                        assert!(need == 0 || need > buf.len());
                        break;
                    }
                    Parsed::Request { end } | Parsed::Skip { end } => {
                        got.push(
                            args.iter()
                                .map(|s| buf[s.range()].to_vec())
                                .collect::<Vec<_>>(),
                        );
                        start = end;
                    }
                }
            }
            if start > 0 && buf.len() > 5 {
                let d = start.min(2);
                buf.drain(..d);
                start -= d;
                p.shift_back(d);
            }
        }
        assert_eq!(
            got,
            vec![
                vec![b"SET".to_vec(), b"key".to_vec(), b"a value\r\n".to_vec()],
                vec![b"GET".to_vec(), b"key".to_vec()]
            ]
        );
    }

    #[test]
    fn need_points_past_a_big_bulk() {
        let mut buf = b"*2\r\n$3\r\nSET\r\n$100000\r\nabc".to_vec();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let r = p.parse(&mut buf, 0, &Limits::default(), true, &mut args);
        let data_at = buf.len() - 3;
        assert_eq!(
            r,
            Ok(Parsed::Incomplete {
                need: data_at + 100002
            })
        );
        buf.resize(data_at + 100002, b'z');
        let r = p.parse(&mut buf, 0, &Limits::default(), true, &mut args);
        assert_eq!(r, Ok(Parsed::Request { end: buf.len() }));
        assert_eq!(args[1], ArgSpan::new(data_at, 100000));
    }

    #[test]
    fn a_million_arguments_in_a_thousand_reads() {
        const N: usize = 1_000_000;
        let mut whole = format!("*{N}\r\n").into_bytes();
        for _ in 0..N {
            whole.extend_from_slice(b"$1\r\na\r\n");
        }
        let chunk = whole.len() / 1000 + 1;
        let mut buf = Vec::with_capacity(whole.len());
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let t = std::time::Instant::now();
        let mut done = None;
        for c in whole.chunks(chunk) {
            buf.extend_from_slice(c);
            match p
                .parse(&mut buf, 0, &Limits::default(), true, &mut args)
                .unwrap()
            {
                Parsed::Incomplete { .. } => assert!(args.is_empty()),
                Parsed::Request { end } => done = Some(end),
                Parsed::Skip { .. } => unreachable!(),
            }
        }
        assert_eq!(done, Some(whole.len()));
        assert_eq!(args.len(), N);
        assert_eq!(args[N - 1], ArgSpan::new(whole.len() - 3, 1));
        // Quadratic rescanning would take minutes; linear takes milliseconds.
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn restarts_when_the_caller_changes_start_or_shrinks_the_buffer() {
        let lim = Limits::default();
        let mut p = RequestParser::new();
        let mut args = Vec::new();
        let mut buf = b"*2\r\n$3\r\nGET\r\n$1".to_vec();
        assert!(matches!(
            p.parse(&mut buf, 0, &lim, true, &mut args),
            Ok(Parsed::Incomplete { .. })
        ));
        assert!(p.in_progress());
        let mut other = b"PING\r\n".to_vec();
        assert_eq!(
            p.parse(&mut other, 0, &lim, true, &mut args),
            Ok(Parsed::Request { end: 6 })
        );
        assert!(!p.in_progress());
        assert_eq!(args, vec![ArgSpan::new(0, 4)]);
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"1x",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }
}
