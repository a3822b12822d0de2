//! Finding element boundaries in encoded RESP replies without decoding
//! them: used to merge the per-shard parts of split commands.

/// The end of the RESP value starting at `pos`, or None if malformed.
pub fn skip(buf: &[u8], pos: usize) -> Option<usize> {
    let kind = *buf.get(pos)?;
    let line_end = pos + memchr::memchr(b'\r', &buf[pos..])?;
    let after = line_end + 2;
    if after > buf.len() {
        return None;
    }
    let head = std::str::from_utf8(&buf[pos + 1..line_end]).ok()?;
    match kind {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                Some(after)
            } else {
                let end = after.checked_add(n as usize)?.checked_add(2)?;
                (end <= buf.len()).then_some(end)
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = head.parse().ok()?;
            let count = if kind == b'%' || kind == b'|' {
                n * 2
            } else {
                n
            };
            let mut p = after;
            for _ in 0..count.max(0) {
                p = skip(buf, p)?;
            }
            Some(p)
        }
        _ => None,
    }
}

/// The (start, end) of each element of an array reply.
pub fn split_array(buf: &[u8]) -> Option<Vec<(usize, usize)>> {
    if buf.first() != Some(&b'*') {
        return None;
    }
    let line_end = memchr::memchr(b'\r', buf)?;
    let n: i64 = std::str::from_utf8(&buf[1..line_end]).ok()?.parse().ok()?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    let mut p = line_end + 2;
    for _ in 0..n.max(0) {
        let e = skip(buf, p)?;
        out.push((p, e));
        p = e;
    }
    Some(out)
}

/// The value of an integer reply `:n\r\n`.
pub fn parse_int_reply(buf: &[u8]) -> Option<i64> {
    if buf.first() != Some(&b':') {
        return None;
    }
    let end = memchr::memchr(b'\r', buf)?;
    std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()
}

/// The body of a bulk string reply (`$n\r\n...\r\n`); None for anything
/// else (a null, an error).
pub fn bulk_body(buf: &[u8]) -> Option<&[u8]> {
    let rest = buf.strip_prefix(b"$")?;
    let nl = memchr::memchr(b'\r', rest)?;
    let n: usize = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    rest.get(nl + 2..nl + 2 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_arrays_of_mixed_values() {
        let b = b"*4\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n_\r\n%1\r\n+k\r\n,1.5\r\n";
        let parts = split_array(b).unwrap();
        let got: Vec<&[u8]> = parts.iter().map(|&(s, e)| &b[s..e]).collect();
        assert_eq!(
            got,
            vec![
                &b"$1\r\na\r\n"[..],
                b"$-1\r\n",
                b"*2\r\n:1\r\n_\r\n",
                b"%1\r\n+k\r\n,1.5\r\n"
            ]
        );
        assert_eq!(parse_int_reply(b":42\r\n"), Some(42));
        assert_eq!(parse_int_reply(b"-ERR\r\n"), None);
        assert_eq!(split_array(b"*1\r\n$5\r\nab"), None);
    }
}
