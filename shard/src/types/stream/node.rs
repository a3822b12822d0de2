//! One node of a stream: a packed run of entries, as Redis keeps them in a
//! listpack under a radix-tree key.
//!
//! Layout of `buf`:
//! `[master field count][master fields...]` then entries, each
//! `[flags][ms delta][seq][field count, fields and values | values]`.
//! The master fields are the first entry's field names: an entry with the
//! same names (flag `SAME_FIELDS`, the common case of a stream of
//! same-shaped events) stores only its values. IDs are stored against the
//! node's master ID (its key in the tree): the milliseconds as a delta,
//! the sequence as a delta when the milliseconds are equal, else whole.
//! Every number is a LEB128 varint; a field or value is one varint `h`
//! (`h & 1 == 0`: `h >> 1` bytes follow; else `h >> 1` is a zigzag
//! integer, so decimal values such as counters take a byte or two).
//! Deletion sets the `DELETED` flag in place (Redis's tombstones); a node
//! whose entries are all deleted is removed from the tree.

use super::id::StreamId;
use crate::types::varint;

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

/// Integers this small (in absolute value) are stored as integers.
const INT_LIMIT: i64 = 1 << 61;

/// A field or value as stored: bytes, or a canonical decimal integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Field<'_> {
    /// The value's bytes, formatted into `buf` when an integer.
    pub fn bytes<'b>(&'b self, buf: &'b mut itoa::Buffer) -> &'b [u8] {
        match self {
            Field::Bytes(b) => b,
            Field::Int(n) => buf.format(*n).as_bytes(),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }
}

/// The integer `s` spells canonically, if it is one small enough to pack.
fn as_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let n = crate::util::parse_i64_strict(s)?;
    (n.unsigned_abs() < INT_LIMIT as u64).then_some(n)
}

fn zigzag(n: i64) -> usize {
    ((n << 1) ^ (n >> 63)) as u64 as usize
}

fn unzigzag(z: usize) -> i64 {
    let z = z as u64;
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn push_varint(buf: &mut Vec<u8>, v: usize) {
    let at = buf.len();
    buf.resize(at + varint::len(v), 0);
    varint::write(buf, at, v);
}

fn push_field(buf: &mut Vec<u8>, s: &[u8]) {
    match as_int(s) {
        Some(n) => push_varint(buf, zigzag(n) << 1 | 1),
        None => {
            push_varint(buf, s.len() << 1);
            buf.extend_from_slice(s);
        }
    }
}

#[inline]
fn read_field(buf: &[u8], at: usize) -> (Field<'_>, usize) {
    let (h, at) = varint::read(buf, at);
    if h & 1 == 1 {
        (Field::Int(unzigzag(h >> 1)), at)
    } else {
        let n = h >> 1;
        (Field::Bytes(&buf[at..at + n]), at + n)
    }
}

#[inline]
fn skip_field(buf: &[u8], at: usize) -> usize {
    let (h, at) = varint::read(buf, at);
    if h & 1 == 1 {
        at
    } else {
        at + (h >> 1)
    }
}

/// A node: its packed bytes and how many entries it holds.
#[derive(Clone, Debug)]
pub struct Node {
    buf: Vec<u8>,
    /// Offset of the first entry (after the master fields).
    entries_at: u32,
    /// Master field count.
    nmaster: u32,
    /// Entries not deleted.
    pub live: u32,
    /// Entries deleted (still in `buf`).
    pub deleted: u32,
    /// The last entry's ID (deleted or not).
    pub last: StreamId,
}

/// A field source: `n` pairs, `get(2i)` the i-th field, `get(2i+1)` its value.
pub trait Pairs {
    fn pairs(&self) -> usize;
    fn get(&self, i: usize) -> &[u8];
}

impl<T: AsRef<[u8]>> Pairs for [T] {
    fn pairs(&self) -> usize {
        self.len() / 2
    }
    fn get(&self, i: usize) -> &[u8] {
        self[i].as_ref()
    }
}

/// One entry as found in a node.
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    /// Where the entry starts (its flags byte) in the node.
    pub at: usize,
    pub deleted: bool,
    node: &'a Node,
    /// Offset of the entry's fields (own: pairs; same: values only).
    body: usize,
    same: bool,
    nfields: usize,
    /// Offset just past the entry.
    pub end: usize,
}

impl<'a> EntryRef<'a> {
    pub fn field_count(&self) -> usize {
        self.nfields
    }

    /// Calls `f(field, value)` for each pair, in order.
    pub fn for_each(&self, mut f: impl FnMut(Field<'a>, Field<'a>)) {
        let buf: &'a [u8] = &self.node.buf;
        let mut at = self.body;
        if self.same {
            let mut m = varint::len(self.node.nmaster as usize);
            for _ in 0..self.nfields {
                let (k, nm) = read_field(buf, m);
                let (v, na) = read_field(buf, at);
                m = nm;
                at = na;
                f(k, v);
            }
        } else {
            for _ in 0..self.nfields {
                let (k, na) = read_field(buf, at);
                let (v, na) = read_field(buf, na);
                at = na;
                f(k, v);
            }
        }
    }
}

impl Node {
    /// A node whose master entry takes the field names of its first entry.
    pub fn new<P: Pairs + ?Sized>(first: &P) -> Node {
        let n = first.pairs();
        let mut buf = Vec::with_capacity(64);
        push_varint(&mut buf, n);
        for i in 0..n {
            push_field(&mut buf, first.get(2 * i));
        }
        Node {
            entries_at: buf.len() as u32,
            buf,
            nmaster: n as u32,
            live: 0,
            deleted: 0,
            last: StreamId::MIN,
        }
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the master fields, before the first entry.
    pub fn header_bytes(&self) -> usize {
        self.entries_at as usize
    }

    /// Entries in the node, deleted ones included (what
    /// `stream-node-max-entries` counts).
    pub fn total(&self) -> usize {
        (self.live + self.deleted) as usize
    }

    fn same_fields<P: Pairs + ?Sized>(&self, p: &P) -> bool {
        if p.pairs() != self.nmaster as usize {
            return false;
        }
        let mut m = varint::len(self.nmaster as usize);
        for i in 0..p.pairs() {
            let (k, nm) = read_field(&self.buf, m);
            m = nm;
            let want = p.get(2 * i);
            let same = match k {
                Field::Bytes(b) => b == want,
                Field::Int(n) => as_int(want) == Some(n),
            };
            if !same {
                return false;
            }
        }
        true
    }

    /// Appends an entry (its ID above every ID in the node) unless that
    /// takes the node past `max_bytes` (0: no limit) while it already
    /// holds entries; false then, and the node is as it was. The entry is
    /// encoded once, in place, and taken back in the rare refused case.
    pub fn try_push<P: Pairs + ?Sized>(
        &mut self,
        master: StreamId,
        id: StreamId,
        p: &P,
        max_bytes: usize,
    ) -> bool {
        let before = self.buf.len();
        let same = self.same_fields(p);
        let (dms, seq) = deltas(master, id);
        self.buf.push(if same { SAME_FIELDS } else { 0 });
        push_varint(&mut self.buf, dms);
        push_varint(&mut self.buf, seq);
        if !same {
            push_varint(&mut self.buf, p.pairs());
        }
        for i in 0..p.pairs() {
            if !same {
                push_field(&mut self.buf, p.get(2 * i));
            }
            push_field(&mut self.buf, p.get(2 * i + 1));
        }
        if max_bytes > 0 && self.buf.len() > max_bytes && self.total() > 0 {
            self.buf.truncate(before);
            return false;
        }
        self.live += 1;
        self.last = id;
        true
    }

    /// Appends an entry whatever its size.
    pub fn push<P: Pairs + ?Sized>(&mut self, master: StreamId, id: StreamId, p: &P) {
        self.try_push(master, id, p, 0);
    }

    /// Reserves room for about `n` more bytes at once (a new node sized
    /// for its expected entries is allocated once, not regrown).
    pub fn reserve_exact(&mut self, n: usize) {
        self.buf.reserve_exact(n);
    }

    /// Gives back spare capacity once the node takes no more entries.
    pub fn seal(&mut self) {
        if self.buf.capacity() - self.buf.len() > self.buf.len() / 8 {
            self.buf.shrink_to_fit();
        }
    }

    /// The entry starting at `at` (an offset from `iter`).
    #[inline]
    pub fn entry_at(&self, master: StreamId, at: usize) -> EntryRef<'_> {
        let buf = &self.buf;
        let flags = buf[at];
        let (dms, p) = varint::read(buf, at + 1);
        let (seq, p) = varint::read(buf, p);
        let id = if dms == 0 {
            StreamId::new(master.ms, master.seq + seq as u64)
        } else {
            StreamId::new(master.ms + dms as u64, seq as u64)
        };
        let same = flags & SAME_FIELDS != 0;
        let (nfields, body) = if same {
            (self.nmaster as usize, p)
        } else {
            varint::read(buf, p)
        };
        let mut end = body;
        let per = if same { 1 } else { 2 };
        for _ in 0..nfields * per {
            end = skip_field(buf, end);
        }
        EntryRef {
            id,
            at,
            deleted: flags & DELETED != 0,
            node: self,
            body,
            same,
            nfields,
            end,
        }
    }

    /// Every entry, deleted ones included, in ID order.
    pub fn iter(&self, master: StreamId) -> NodeIter<'_> {
        NodeIter {
            node: self,
            master,
            at: self.entries_at as usize,
        }
    }

    /// Marks the entry at `at` deleted; false if it already was.
    pub fn delete_at(&mut self, at: usize) -> bool {
        if self.buf[at] & DELETED != 0 {
            return false;
        }
        self.buf[at] |= DELETED;
        self.live -= 1;
        self.deleted += 1;
        true
    }

    /// Heap bytes held (for MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

fn deltas(master: StreamId, id: StreamId) -> (usize, usize) {
    let dms = (id.ms - master.ms) as usize;
    if dms == 0 {
        (0, (id.seq - master.seq) as usize)
    } else {
        (dms, id.seq as usize)
    }
}

pub struct NodeIter<'a> {
    node: &'a Node,
    master: StreamId,
    at: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = EntryRef<'a>;
    #[inline]
    fn next(&mut self) -> Option<EntryRef<'a>> {
        if self.at >= self.node.buf.len() {
            return None;
        }
        let e = self.node.entry_at(self.master, self.at);
        self.at = e.end;
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let m = StreamId::new(100, 5);
        let a: [&[u8]; 4] = [b"name", b"x", b"n", b"-42"];
        let b: [&[u8]; 2] = [b"other", b"0123"];
        let mut n = Node::new(&a[..]);
        let ids = [m, StreamId::new(100, 9), StreamId::new(250, 1)];
        n.push(m, ids[0], &a[..]);
        let before = n.bytes();
        n.push(m, ids[1], &b[..]);
        assert_eq!(n.bytes() - before, 1 + 1 + 1 + 1 + 6 + 5);
        assert!(!n.try_push(m, StreamId::new(300, 0), &b[..], n.bytes() + 5));
        assert_eq!(n.bytes() - before, 1 + 1 + 1 + 1 + 6 + 5);
        n.push(m, ids[2], &a[..]);
        let got: Vec<(StreamId, Vec<Vec<u8>>)> = n
            .iter(m)
            .map(|e| {
                let mut v = Vec::new();
                e.for_each(|k, x| {
                    v.push(k.to_vec());
                    v.push(x.to_vec());
                });
                (e.id, v)
            })
            .collect();
        assert_eq!(got[0].0, ids[0]);
        assert_eq!(got[1].0, ids[1]);
        assert_eq!(got[2].0, ids[2]);
        assert_eq!(got[0].1, a.iter().map(|x| x.to_vec()).collect::<Vec<_>>());
        assert_eq!(got[1].1, b.iter().map(|x| x.to_vec()).collect::<Vec<_>>());
        let at = n.iter(m).nth(1).unwrap().at;
        assert!(n.delete_at(at));
        assert!(!n.delete_at(at));
        assert!(n.iter(m).nth(1).unwrap().deleted);
        assert_eq!((n.live, n.deleted), (2, 1));
    }

    #[test]
    fn integers_pack_only_when_canonical() {
        for s in ["0", "-1", "123456", "-0", "01", "+1", "9223372036854775807"] {
            let p: [&[u8]; 2] = [b"f", s.as_bytes()];
            let mut n = Node::new(&p[..]);
            n.push(StreamId::MIN, StreamId::MIN, &p[..]);
            let e = n.iter(StreamId::MIN).next().unwrap();
            e.for_each(|_, v| assert_eq!(v.to_vec(), s.as_bytes()));
        }
    }
}
