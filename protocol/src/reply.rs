//! Reply encoding for RESP2 and RESP3.
//!
//! Handlers write replies straight into the connection's output buffer
//! through `Reply`, which knows the connection's protocol version and picks
//! the RESP2 or RESP3 shape of maps, sets, nulls, doubles and booleans the
//! way Redis does. Nothing here allocates beyond growing that buffer.

/// The protocol a connection speaks (chosen with HELLO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

/// A writer of replies into an output buffer.
pub struct Reply<'a> {
    pub buf: &'a mut Vec<u8>,
    pub proto: Proto,
}

impl<'a> Reply<'a> {
    #[inline]
    pub fn new(buf: &'a mut Vec<u8>, proto: Proto) -> Self {
        Reply { buf, proto }
    }
    #[inline]
    pub fn resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }
    /// A re-borrow, for passing the writer on.
    #[inline]
    pub fn reborrow(&mut self) -> Reply<'_> {
        Reply {
            buf: self.buf,
            proto: self.proto,
        }
    }

    #[inline]
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }
    #[inline]
    pub fn simple(&mut self, s: &str) {
        self.simple_bytes(s.as_bytes());
    }
    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        push_line_safe(self.buf, s);
        self.buf.extend_from_slice(b"\r\n");
    }
    /// An error reply. `msg` carries its code ("ERR ...", "WRONGTYPE ...");
    /// CR and LF are replaced by spaces, as Redis does, so a reply stays one line.
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }
    /// An error reply from raw bytes: client-given names are echoed as the
    /// client sent them (not valid UTF-8 included), as Redis does.
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.buf.push(b'-');
        push_line_safe(self.buf, msg);
        self.buf.extend_from_slice(b"\r\n");
    }
    #[inline]
    pub fn int(&mut self, n: i64) {
        self.buf.push(b':');
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
    #[inline]
    pub fn bulk(&mut self, b: &[u8]) {
        self.header(b'$', b.len());
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }
    /// A bulk string holding a decimal integer (e.g. GET of an int-encoded value).
    pub fn bulk_int(&mut self, n: i64) {
        let mut ib = itoa::Buffer::new();
        self.bulk(ib.format(n).as_bytes());
    }
    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null(&mut self) {
        if self.resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }
    /// The null array: `*-1` in RESP2, `_` in RESP3.
    #[inline]
    pub fn null_array(&mut self) {
        if self.resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.header(b'*', n);
    }
    /// A map of `n` pairs: `%n` in RESP3, an array of 2n in RESP2.
    #[inline]
    pub fn map(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'%', n);
        } else {
            self.header(b'*', n * 2);
        }
    }
    /// A set of `n` members: `~n` in RESP3, an array in RESP2.
    #[inline]
    pub fn set(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'~', n);
        } else {
            self.header(b'*', n);
        }
    }
    /// An out-of-band push message (RESP3 only; RESP2 sends an array).
    pub fn push(&mut self, n: usize) {
        if self.resp3() {
            self.header(b'>', n);
        } else {
            self.header(b'*', n);
        }
    }
    /// A double as Redis 7.0 sends it: `%.17g`, a bulk string in RESP2 and a
    /// `,` double in RESP3; infinities as `inf` / `-inf`.
    pub fn double(&mut self, d: f64) {
        let mut tmp = [0u8; 40];
        let s = format_double(d, &mut tmp);
        if self.resp3() {
            self.buf.push(b',');
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }
    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn bool(&mut self, b: bool) {
        if self.resp3() {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }
    /// A verbatim string (`=` with a 3-letter format in RESP3, bulk in RESP2).
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        if self.resp3() {
            self.header(b'=', text.len() + 4);
            self.buf.extend_from_slice(&format.as_bytes()[..3]);
            self.buf.push(b':');
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }
    /// Already-encoded RESP, copied as is.
    #[inline]
    pub fn raw(&mut self, resp: &[u8]) {
        self.buf.extend_from_slice(resp);
    }
    #[inline]
    fn header(&mut self, kind: u8, n: usize) {
        self.buf.push(kind);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
}

fn push_line_safe(buf: &mut Vec<u8>, s: &[u8]) {
    if memchr::memchr2(b'\r', b'\n', s).is_none() {
        buf.extend_from_slice(s);
    } else {
        buf.extend(
            s.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
    }
}

/// Formats `d` like C's `printf("%.17g", d)`, which is what Redis 7.0 uses
/// for doubles in replies (ZSCORE, ZINCRBY, GEODIST...). Infinities are
/// `inf` and `-inf`; NaN is `nan`. Returns the bytes written into `out`.
pub fn format_double(d: f64, out: &mut [u8; 40]) -> &[u8] {
    use std::io::Write;
    let mut w = std::io::Cursor::new(&mut out[..]);
    if d.is_nan() {
        let _ = w.write_all(b"nan");
    } else if d.is_infinite() {
        let _ = w.write_all(if d > 0.0 { b"inf" } else { b"-inf" });
    } else if d == 0.0 {
        let _ = w.write_all(if d.is_sign_negative() { b"-0" } else { b"0" });
    } else {
        // %g with precision P=17: exponent X of the value rounded to 17
        // significant digits decides between fixed and exponential notation.
        let e = format!("{:.16e}", d);
        let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let x: i32 = exp.parse().unwrap_or(0);
        if (-4..17).contains(&x) {
            let prec = (16 - x) as usize;
            let f = format!("{:.*}", prec, d);
            let _ = w.write_all(strip_fraction_zeros(&f).as_bytes());
        } else {
            let _ = w.write_all(strip_fraction_zeros(mant).as_bytes());
            let _ = write!(w, "e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs());
        }
    }
    let n = w.position() as usize;
    &out[..n]
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(proto: Proto, f: impl FnOnce(&mut Reply)) -> String {
        let mut v = Vec::new();
        f(&mut Reply::new(&mut v, proto));
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn shapes_differ_by_protocol() {
        assert_eq!(enc(Proto::Resp2, |r| r.null()), "$-1\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.null()), "_\r\n");
        assert_eq!(enc(Proto::Resp2, |r| r.null_array()), "*-1\r\n");
        assert_eq!(enc(Proto::Resp2, |r| r.map(2)), "*4\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.map(2)), "%2\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.set(3)), "~3\r\n");
        assert_eq!(enc(Proto::Resp2, |r| r.bool(true)), ":1\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.bool(false)), "#f\r\n");
        assert_eq!(enc(Proto::Resp2, |r| r.double(1.5)), "$3\r\n1.5\r\n");
        assert_eq!(enc(Proto::Resp3, |r| r.double(1.5)), ",1.5\r\n");
        assert_eq!(
            enc(Proto::Resp3, |r| r.verbatim("txt", b"hi")),
            "=6\r\ntxt:hi\r\n"
        );
        assert_eq!(
            enc(Proto::Resp2, |r| r.error("ERR a\r\nb")),
            "-ERR a  b\r\n"
        );
        assert_eq!(enc(Proto::Resp2, |r| r.bulk(b"ab")), "$2\r\nab\r\n");
        assert_eq!(enc(Proto::Resp2, |r| r.int(-7)), ":-7\r\n");
    }

    #[test]
    fn doubles_match_printf_g17() {
        let f = |d: f64| {
            let mut b = [0u8; 40];
            String::from_utf8(format_double(d, &mut b).to_vec()).unwrap()
        };
        assert_eq!(f(1.1), "1.1000000000000001");
        assert_eq!(f(3.0), "3");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(0.00001), "1.0000000000000001e-05");
        assert_eq!(f(1e17), "1e+17");
        assert_eq!(f(12345678901234567.0), "12345678901234568");
        assert_eq!(f(f64::INFINITY), "inf");
        assert_eq!(f(f64::NEG_INFINITY), "-inf");
        assert_eq!(f(1e300), "1.0000000000000001e+300");
        assert_eq!(f(0.1), "0.10000000000000001");
    }
}
