//! Zero-copy views of a parsed request's arguments.
//!
//! The parser never copies argument bytes: it records where each argument
//! sits in the read buffer (`ArgSpan`), and `Args` pairs those spans with the
//! buffer. A connection reuses one `Vec<ArgSpan>` for all its requests, so a
//! request costs no allocation. Offsets are `u32`: the query buffer is capped
//! well below 4 GiB (`client-query-buffer-limit`, max 4gb-1).

/// Where one argument's bytes sit in the request buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgSpan {
    pub start: u32,
    pub len: u32,
}

impl ArgSpan {
    #[inline]
    pub fn new(start: usize, len: usize) -> Self {
        ArgSpan {
            start: start as u32,
            len: len as u32,
        }
    }
    #[inline]
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// A request's arguments: argument 0 is the command name.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [ArgSpan],
}

impl<'a> Args<'a> {
    #[inline]
    pub fn new(buf: &'a [u8], spans: &'a [ArgSpan]) -> Self {
        Args { buf, spans }
    }
    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// Argument `i`; panics when out of range (arity is checked before any
    /// handler runs, so handlers index freely within their declared arity).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.buf[self.spans[i].range()]
    }
    #[inline]
    pub fn try_get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|s| &self.buf[s.range()])
    }
    /// The spans themselves, for code that forwards a request elsewhere.
    #[inline]
    pub fn spans(&self) -> &'a [ArgSpan] {
        self.spans
    }
    #[inline]
    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }
    /// Arguments `from..` (a sub-view sharing the buffer).
    #[inline]
    pub fn skip(&self, from: usize) -> Args<'a> {
        Args {
            buf: self.buf,
            spans: &self.spans[from.min(self.spans.len())..],
        }
    }
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.spans.iter().map(move |s| &buf[s.range()])
    }
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Owned arguments, for building requests in code (tests, internal commands).
#[derive(Default, Clone, Debug)]
pub struct OwnedArgs {
    pub buf: Vec<u8>,
    pub spans: Vec<ArgSpan>,
}

impl OwnedArgs {
    pub fn from_parts<I, T>(parts: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut o = OwnedArgs::default();
        for p in parts {
            o.push(p.as_ref());
        }
        o
    }
    pub fn push(&mut self, arg: &[u8]) {
        self.spans.push(ArgSpan::new(self.buf.len(), arg.len()));
        self.buf.extend_from_slice(arg);
    }
    pub fn args(&self) -> Args<'_> {
        Args::new(&self.buf, &self.spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_share_the_buffer() {
        let o = OwnedArgs::from_parts(["SET", "k", "value"]);
        let a = o.args();
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(2), b"value");
        assert_eq!(a.skip(1).get(0), b"k");
        assert_eq!(a.try_get(3), None);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![&b"SET"[..], b"k", b"value"]
        );
    }
}
