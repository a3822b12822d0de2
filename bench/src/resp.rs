//! RESP reply handling. The hot path only finds where each reply ends and
//! what kind it is (OK, error, null, value): nothing is decoded or
//! allocated. A small full decoder serves the rare control replies
//! (CLUSTER SLOTS, handshakes).

/// What a reply means to the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A simple string (+OK, +PONG) or other non-null value.
    Value,
    /// A non-null bulk string: a hit for reads.
    Hit,
    /// A null ($-1, *-1, RESP3 _): a miss for reads.
    Miss,
    /// An error; the range is the error text without the leading '-'.
    Error { start: usize, end: usize },
    /// A RESP3 push frame: out of band, answers no request.
    Push,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError;

/// Nesting deeper than this is treated as a protocol error, not recursed.
const MAX_DEPTH: usize = 64;

/// Finds one complete reply at the start of `buf`: `Ok(Some((len, kind)))`,
/// `Ok(None)` when more bytes are needed.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(usize, Kind)>, ProtocolError> {
    // What nearly every reply of a SET load is: no scan needed.
    if buf.starts_with(b"+OK\r\n") {
        return Ok(Some((5, Kind::Value)));
    }
    let Some(&t) = buf.first() else {
        return Ok(None);
    };
    let Some((n, line_end)) = header(buf, 0)? else {
        return Ok(None);
    };
    let kind = match t {
        b'-' | b'!' => {
            if t == b'!' {
                // Bulk error: "!<len>\r\n<text>\r\n".
                let end = line_end + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                return Ok(Some((
                    end + 2,
                    Kind::Error {
                        start: line_end,
                        end,
                    },
                )));
            }
            Kind::Error {
                start: 1,
                end: line_end - 2,
            }
        }
        b'$' | b'*' if n < 0 => Kind::Miss,
        b'_' => Kind::Miss,
        b'$' | b'=' => Kind::Hit,
        b'>' => Kind::Push,
        _ => Kind::Value,
    };
    // Only aggregates need walking: the header line already gives the end
    // of everything else (reading it again in `skip` was a second scan).
    let end = match t {
        b'$' | b'=' if n >= 0 => {
            let end = line_end + n as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            end
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => return Ok(skip(buf, 0, 0)?.map(|end| (end, kind))),
        _ => line_end,
    };
    Ok(Some((end, kind)))
}

/// Reads the header line at `pos`: the number after the type byte (0 for
/// types without one) and the position after its CRLF.
fn header(buf: &[u8], pos: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
        return Ok(None);
    };
    let nl = pos + nl;
    if nl < pos + 2 || buf[nl - 1] != b'\r' {
        return Err(ProtocolError);
    }
    let line = &buf[pos + 1..nl - 1];
    let n = match buf[pos] {
        b'$' | b'*' | b'=' | b'!' | b'%' | b'~' | b'>' | b'|' => parse_int(line)?,
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => 0,
        _ => return Err(ProtocolError),
    };
    Ok(Some((n, nl + 1)))
}

fn parse_int(s: &[u8]) -> Result<i64, ProtocolError> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(ProtocolError);
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ProtocolError);
        }
        v = v * 10 + (d - b'0') as i64;
    }
    Ok(if neg { -v } else { v })
}

/// Returns the end of the frame starting at `pos`, or None if incomplete.
fn skip(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError);
    }
    if pos >= buf.len() {
        return Ok(None);
    }
    let Some((n, mut p)) = header(buf, pos)? else {
        return Ok(None);
    };
    let children = match buf[pos] {
        b'$' | b'=' | b'!' => {
            if n < 0 {
                return Ok(Some(p));
            }
            let end = p + n as usize + 2;
            return Ok((buf.len() >= end).then_some(end));
        }
        b'*' | b'~' | b'>' => n.max(0),
        b'%' | b'|' => n.max(0) * 2,
        _ => return Ok(Some(p)),
    };
    for _ in 0..children {
        match skip(buf, p, depth + 1)? {
            Some(e) => p = e,
            None => return Ok(None),
        }
    }
    if buf[pos] == b'|' {
        // An attribute precedes the value it describes.
        return skip(buf, p, depth + 1);
    }
    Ok(Some(p))
}

/// A decoded reply, for control-plane replies only.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
    Int(i64),
    Err(String),
    Nil,
    Array(Vec<Value>),
}

/// Decodes one complete reply (as found by `parse_reply`).
pub fn decode(buf: &[u8]) -> Result<Option<(usize, Value)>, ProtocolError> {
    decode_at(buf, 0, 0)
}

fn decode_at(
    buf: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(usize, Value)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError);
    }
    if pos >= buf.len() {
        return Ok(None);
    }
    let Some((n, p)) = header(buf, pos)? else {
        return Ok(None);
    };
    let line = &buf[pos + 1..p - 2];
    let v = match buf[pos] {
        b'+' | b',' | b'(' | b'#' => Value::Str(line.to_vec()),
        b'-' => Value::Err(String::from_utf8_lossy(line).into_owned()),
        b':' => Value::Int(parse_int(line)?),
        b'_' => Value::Nil,
        b'$' | b'=' | b'!' if n < 0 => Value::Nil,
        b'$' | b'=' | b'!' => {
            let end = p + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            let s = buf[p..end].to_vec();
            return Ok(Some((
                end + 2,
                if buf[pos] == b'!' {
                    Value::Err(String::from_utf8_lossy(&s).into_owned())
                } else {
                    Value::Str(s)
                },
            )));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' if n < 0 => Value::Nil,
        t => {
            let count = if t == b'%' || t == b'|' { n * 2 } else { n };
            let mut items = Vec::new();
            let mut q = p;
            for _ in 0..count {
                match decode_at(buf, q, depth + 1)? {
                    Some((e, v)) => {
                        items.push(v);
                        q = e;
                    }
                    None => return Ok(None),
                }
            }
            if t == b'|' {
                return decode_at(buf, q, depth + 1);
            }
            return Ok(Some((q, Value::Array(items))));
        }
    };
    Ok(Some((p, v)))
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(buf: &[u8]) -> (usize, Kind) {
        let r = parse_reply(buf).unwrap().unwrap();
        // Every strict prefix must be reported incomplete, never misparsed.
        for cut in 0..r.0 {
            assert_eq!(
                parse_reply(&buf[..cut]),
                Ok(None),
                "prefix {cut} of {buf:?}"
            );
        }
        r
    }

    #[test]
    fn classifies_replies() {
        assert_eq!(whole(b"+OK\r\n"), (5, Kind::Value));
        assert_eq!(whole(b"$-1\r\n+OK\r\n"), (5, Kind::Miss));
        assert_eq!(whole(b"*-1\r\n"), (5, Kind::Miss));
        assert_eq!(whole(b"_\r\n"), (3, Kind::Miss));
        assert_eq!(whole(b"$3\r\nabc\r\n"), (9, Kind::Hit));
        assert_eq!(whole(b"$0\r\n\r\n"), (6, Kind::Hit));
        assert_eq!(whole(b":42\r\n"), (5, Kind::Value));
        let e = b"-MOVED 3999 127.0.0.1:6381\r\n";
        assert_eq!(
            whole(e),
            (
                e.len(),
                Kind::Error {
                    start: 1,
                    end: e.len() - 2
                }
            )
        );
        assert_eq!(
            whole(b"!5\r\nERR x\r\n"),
            (11, Kind::Error { start: 4, end: 9 })
        );
    }

    #[test]
    fn an_incomplete_reply_asks_for_more() {
        for part in [
            &b"+OK\r"[..],
            b"$3\r\nab",
            b"$3\r\nabc\r",
            b"$10",
            b":4",
            b"*2\r\n:1\r\n",
        ] {
            assert_eq!(
                parse_reply(part),
                Ok(None),
                "{:?}",
                String::from_utf8_lossy(part)
            );
        }
    }

    #[test]
    fn skips_nested_and_resp3_aggregates() {
        let a = b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n%1\r\n+k\r\n,1.5\r\n";
        assert_eq!(whole(a), (a.len(), Kind::Value));
        let attr = b"|1\r\n+key\r\n+v\r\n$2\r\nhi\r\n";
        assert_eq!(whole(attr).0, attr.len());
        let push = b">2\r\n+message\r\n+x\r\n";
        assert_eq!(whole(push), (push.len(), Kind::Push));
        assert_eq!(whole(b"~0\r\n"), (4, Kind::Value));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(parse_reply(b"?x\r\n"), Err(ProtocolError));
        assert_eq!(parse_reply(b"$abc\r\n"), Err(ProtocolError));
        assert_eq!(parse_reply(b"+OK\n"), Err(ProtocolError));
        let deep = "*1\r\n".repeat(100);
        assert!(parse_reply(deep.as_bytes()).is_err());
    }

    #[test]
    fn decodes_cluster_slots() {
        let r = b"*1\r\n*3\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nid\r\n";
        let (n, v) = decode(r).unwrap().unwrap();
        assert_eq!(n, r.len());
        let Value::Array(ranges) = v else { panic!() };
        let Value::Array(r0) = &ranges[0] else {
            panic!()
        };
        assert_eq!(r0[1], Value::Int(5460));
        let mut out = Vec::new();
        encode_command(&[b"GET", b"k"], &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}
