//! Redis's RDB format (version 10, what Redis 7.0 writes): the encoder for
//! snapshots and DUMP payloads, and a decoder that also reads what older
//! versions (ziplist, zipmap, linked lists, intsets, RDB 1-9) and Redis
//! 7.2 / Valkey (version 11: listpack sets) wrote. Streams and module
//! values are not supported by Tessera yet: loading one is an error that
//! says so. Our own implementation of the published layout.
//!
//! A file is `REDIS0010`, AUX fields, then per database `SELECTDB n`,
//! `RESIZEDB keys expires` and the keys (each: optional `EXPIRETIME_MS`,
//! `IDLE`/`FREQ`, the value type, the key, the value), then `EOF` and the
//! CRC-64 of everything before it (0 when checksums are off).

pub mod blobs;
pub mod crc64;
pub mod lzf;
pub mod stream;

use std::collections::HashSet;
use std::io::Read;

use crate::command::ShardConfig;
use crate::store::{Entry, Object, ValueRef};
use crate::types::hash::{Hash, HashLimits};
use crate::types::list::{List, NodeLimit};
use crate::types::set::{Set, SetLimits};
use crate::types::zset::leaf::cmp_key;
use crate::types::zset::{Zset, ZsetLimits};
use crate::util::parse_i64_strict;
use blobs::{
    intset_decode, intset_encode, listpack_each, ziplist_each, zipmap_each, Elem, LpWriter,
};

/// The version this encoder writes (Redis 7.0).
pub const RDB_VERSION: u16 = 10;
/// The newest version the decoder reads (Redis 7.2, Valkey 7.2-8.x).
pub const RDB_MAX_LOAD_VERSION: u16 = 11;

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_MODULE_PRE_GA: u8 = 6;
pub const TYPE_MODULE_2: u8 = 7;
pub const TYPE_HASH_ZIPMAP: u8 = 9;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_SET_LISTPACK: u8 = 20;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

pub const OP_FUNCTION2: u8 = 245;
pub const OP_FUNCTION_PRE_GA: u8 = 246;
pub const OP_MODULE_AUX: u8 = 247;
pub const OP_IDLE: u8 = 248;
pub const OP_FREQ: u8 = 249;
pub const OP_AUX: u8 = 250;
pub const OP_RESIZEDB: u8 = 251;
pub const OP_EXPIRETIME_MS: u8 = 252;
pub const OP_EXPIRETIME: u8 = 253;
pub const OP_SELECTDB: u8 = 254;
pub const OP_EOF: u8 = 255;

const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;

/// What went wrong reading an RDB file or payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbError(pub String);

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for RdbError {
    fn from(s: String) -> Self {
        RdbError(s)
    }
}

impl From<std::io::Error> for RdbError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            RdbError("Unexpected EOF reading RDB file".into())
        } else {
            RdbError(format!("Error reading RDB file: {e}"))
        }
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, RdbError> {
    Err(RdbError(s.into()))
}

/// The encoding thresholds a decoded value is shaped by (as Redis converts
/// on load to what its configuration says).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub list: NodeLimit,
    pub hash: HashLimits,
    pub set: SetLimits,
    pub zset: ZsetLimits,
    pub stream: crate::types::stream::NodeLimits,
}

impl Limits {
    pub fn from_config(c: &ShardConfig) -> Limits {
        Limits {
            list: NodeLimit(c.list_max_listpack_size),
            hash: HashLimits {
                max_entries: c.hash_max_listpack_entries,
                max_value: c.hash_max_listpack_value,
            },
            set: SetLimits {
                max_intset_entries: c.set_max_intset_entries,
            },
            zset: ZsetLimits {
                max_entries: c.zset_max_listpack_entries,
                max_value: c.zset_max_listpack_value,
            },
            stream: c.stream_limits(),
        }
    }
}

// ---------------------------------------------------------------- writing

/// Appends an RDB length.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a string: as an integer when it is one that fits 32 bits (as
/// Redis does), LZF-compressed when `compress` and it pays, else raw.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64_strict(s) {
            if let Ok(b) = i8::try_from(v) {
                out.push(0xC0);
                out.push(b as u8);
                return;
            } else if let Ok(h) = i16::try_from(v) {
                out.push(0xC1);
                out.extend_from_slice(&h.to_le_bytes());
                return;
            } else if let Ok(w) = i32::try_from(v) {
                out.push(0xC2);
                out.extend_from_slice(&w.to_le_bytes());
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf::compress(s, s.len() - 4) {
            out.push(0xC3);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A score as text for a listpack: an integer when it is one (stored as an
/// integer entry then), else the shortest text that reads back the same
/// double, short enough for Redis's 128-byte parse buffer.
fn score_text(s: f64, buf: &mut String) -> &[u8] {
    use std::fmt::Write;
    buf.clear();
    if s.is_infinite() {
        buf.push_str(if s > 0.0 { "inf" } else { "-inf" });
    } else if s == s.trunc() && s.abs() < 1e17 {
        let _ = write!(buf, "{}", s as i64);
    } else {
        let _ = write!(buf, "{s}");
        if buf.len() > 24 {
            buf.clear();
            let _ = write!(buf, "{s:e}");
        }
    }
    buf.as_bytes()
}

/// The RDB type byte a value is written with.
pub fn value_type(v: &ValueRef) -> u8 {
    match v {
        ValueRef::Str(_) => TYPE_STRING,
        ValueRef::Obj(o) => match o {
            Object::Str(_) => TYPE_STRING,
            Object::List(_) => TYPE_LIST_QUICKLIST_2,
            Object::Hash(Hash::Small(_)) => TYPE_HASH_LISTPACK,
            Object::Hash(Hash::Big(_)) => TYPE_HASH,
            Object::Zset(Zset::Small(_)) => TYPE_ZSET_LISTPACK,
            Object::Zset(Zset::Big(_)) => TYPE_ZSET_2,
            Object::Set(Set::Int(_)) => TYPE_SET_INTSET,
            Object::Set(_) => TYPE_SET,
            Object::Stream(_) => TYPE_STREAM_LISTPACKS_2,
        },
    }
}

/// Appends a value's body (what follows the type byte and the key).
pub fn write_value(out: &mut Vec<u8>, v: &ValueRef, compress: bool) {
    let o = match v {
        ValueRef::Str(s) => return write_string(out, s, compress),
        ValueRef::Obj(o) => o,
    };
    match o {
        Object::Str(s) => write_string(out, s, compress),
        Object::List(l) => {
            let nodes = l.nodes().filter(|n| !n.is_empty()).count();
            write_len(out, nodes as u64);
            for n in l.nodes().filter(|n| !n.is_empty()) {
                let mut w = LpWriter::new();
                for e in n.iter() {
                    w.push(e);
                }
                write_len(out, QUICKLIST_NODE_PACKED);
                write_string(out, &w.finish(), compress);
            }
        }
        Object::Hash(Hash::Small(lp)) => {
            let mut w = LpWriter::new();
            for e in lp.iter() {
                w.push(e);
            }
            write_string(out, &w.finish(), compress);
        }
        Object::Hash(h) => {
            write_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                write_string(out, f, compress);
                write_string(out, v, compress);
            }
        }
        Object::Zset(z @ Zset::Small(_)) => {
            let mut w = LpWriter::new();
            let mut buf = String::new();
            z.for_each(0, z.len(), false, |s, m| {
                w.push(m);
                w.push(score_text(s, &mut buf));
            });
            write_string(out, &w.finish(), compress);
        }
        Object::Zset(z) => {
            write_len(out, z.len() as u64);
            // Greatest first, as Redis writes a skiplist (its loader then
            // inserts each at the head).
            z.for_each(0, z.len(), true, |s, m| {
                write_string(out, m, compress);
                out.extend_from_slice(&s.to_le_bytes());
            });
        }
        Object::Set(Set::Int(is)) => {
            let vals: Vec<i64> = is.iter().collect();
            write_string(out, &intset_encode(&vals), compress);
        }
        Object::Set(s) => {
            write_len(out, s.len() as u64);
            let mut b = itoa::Buffer::new();
            for m in s.iter() {
                write_string(out, m.bytes(&mut b), compress);
            }
        }
        Object::Stream(s) => stream::write(out, s, compress),
    }
}

/// Appends one key-value record: its expiry (ms), its idle time when
/// given (LRU policies), type, key and value.
pub fn write_entry(out: &mut Vec<u8>, e: &Entry, compress: bool, idle: Option<u64>) {
    if let Some(t) = e.expire_at() {
        out.push(OP_EXPIRETIME_MS);
        out.extend_from_slice(&t.to_le_bytes());
    }
    if let Some(i) = idle {
        out.push(OP_IDLE);
        write_len(out, i);
    }
    let v = e.value();
    out.push(value_type(&v));
    write_string(out, e.key(), compress);
    write_value(out, &v, compress);
}

/// Appends an AUX field.
pub fn write_aux(out: &mut Vec<u8>, key: &str, val: &[u8]) {
    out.push(OP_AUX);
    write_string(out, key.as_bytes(), false);
    write_string(out, val, false);
}

/// A DUMP payload: the value, the RDB version (2 bytes LE) and the CRC-64
/// of both (8 bytes LE).
pub fn dump_payload(v: &ValueRef, compress: bool) -> Vec<u8> {
    let mut out = vec![value_type(v)];
    write_value(&mut out, v, compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

// ---------------------------------------------------------------- reading

/// A decoded value.
#[derive(Debug)]
pub enum Value {
    Str(Vec<u8>),
    Obj(Object),
}

impl Value {
    /// The entry holding this value.
    pub fn into_entry(self, key: &[u8], expire: Option<i64>, lru: u32) -> Entry {
        match self {
            Value::Str(s) if s.len() <= crate::store::entry::INLINE_MAX => {
                Entry::new_string(key, &s, expire, lru)
            }
            Value::Str(s) => Entry::new_object(key, Object::Str(s), expire, lru),
            Value::Obj(o) => Entry::new_object(key, o, expire, lru),
        }
    }
}

/// Reads an RDB stream, keeping the CRC-64 of what it read.
pub struct Reader<R: Read> {
    r: R,
    pub crc: u64,
    pub pos: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(r: R) -> Self {
        Reader { r, crc: 0, pos: 0 }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RdbError> {
        self.r.read_exact(buf)?;
        self.crc = crc64::update(self.crc, buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    pub fn u8(&mut self) -> Result<u8, RdbError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// `n` bytes; memory grows only as bytes actually arrive, whatever `n`
    /// a corrupt length claims.
    pub fn bytes(&mut self, n: u64) -> Result<Vec<u8>, RdbError> {
        let mut v = Vec::with_capacity(n.min(1 << 20) as usize);
        let got = (&mut self.r).take(n).read_to_end(&mut v)?;
        if got as u64 != n {
            return err("Unexpected EOF reading RDB file");
        }
        self.crc = crc64::update(self.crc, &v);
        self.pos += n;
        Ok(v)
    }

    /// A length, or (with `true`) the code of a special string encoding.
    pub fn len_enc(&mut self) -> Result<(u64, bool), RdbError> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => ((b & 0x3f) as u64, false),
            1 => ((((b & 0x3f) as u64) << 8) | self.u8()? as u64, false),
            2 => match b {
                0x80 => (u32::from_be_bytes(self.array()?) as u64, false),
                0x81 => (u64::from_be_bytes(self.array()?), false),
                _ => return err(format!("Unknown length encoding {b} in rdbLoadLen()")),
            },
            _ => ((b & 0x3f) as u64, true),
        })
    }

    pub fn length(&mut self) -> Result<u64, RdbError> {
        match self.len_enc()? {
            (n, false) => Ok(n),
            _ => err("Unexpected string encoding where a length was expected"),
        }
    }

    pub fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        let (n, enc) = self.len_enc()?;
        if !enc {
            return self.bytes(n);
        }
        let v: i64 = match n {
            0 => self.u8()? as i8 as i64,
            1 => i16::from_le_bytes(self.array()?) as i64,
            2 => i32::from_le_bytes(self.array()?) as i64,
            3 => {
                let clen = self.length()?;
                let ulen = self.length()?;
                let c = self.bytes(clen)?;
                return lzf::decompress(&c, ulen as usize)
                    .ok_or_else(|| RdbError("Invalid LZF compressed string".into()));
            }
            _ => return err(format!("Unknown RDB string encoding type {n}")),
        };
        Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
    }

    fn binary_double(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// The text double of the old ZSET type (253 nan, 254 +inf, 255 -inf).
    fn text_double(&mut self) -> Result<f64, RdbError> {
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let b = self.bytes(n as u64)?;
                parse_score(&b)
            }
        }
    }
}

fn parse_score(b: &[u8]) -> Result<f64, RdbError> {
    let s = std::str::from_utf8(b).map_err(|_| RdbError("Invalid zset score".into()))?;
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        "nan" | "-nan" => Ok(f64::NAN),
        t => t
            .parse::<f64>()
            .map_err(|_| RdbError(format!("Invalid zset score '{s}'"))),
    }
}

fn elem_score(e: &Elem) -> Result<f64, RdbError> {
    match e {
        Elem::Int(i) => Ok(*i as f64),
        Elem::Str(s) => parse_score(s),
    }
}

fn build_zset(mut v: Vec<(f64, Vec<u8>)>, lim: ZsetLimits) -> Result<Zset, RdbError> {
    {
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(v.len());
        for (s, m) in &v {
            if s.is_nan() {
                return err("Zset with NAN score detected");
            }
            if !seen.insert(m) {
                return err("Duplicate zset fields detected");
            }
        }
    }
    v.sort_by(|a, b| cmp_key(a.0, &a.1, b.0, &b.1));
    Ok(Zset::from_sorted(v.iter().map(|(s, m)| (*s, &m[..])), lim))
}

struct HashBuild {
    h: Hash,
    lim: HashLimits,
}

impl HashBuild {
    fn add(&mut self, f: &[u8], v: &[u8]) -> Result<(), String> {
        if self.h.set(f, v, self.lim) {
            Ok(())
        } else {
            Err("Duplicate hash fields detected".into())
        }
    }
}

struct SetBuild {
    s: Option<Set>,
    lim: SetLimits,
}

impl SetBuild {
    fn add(&mut self, m: &[u8]) -> Result<(), String> {
        let s = self.s.get_or_insert_with(|| Set::new_for(m));
        if s.add(m, self.lim) {
            Ok(())
        } else {
            Err("Duplicate set members detected".into())
        }
    }
}

fn obj_or_empty(o: Object, len: usize) -> Option<Value> {
    (len > 0).then_some(Value::Obj(o))
}

/// Reads the body of a value of RDB type `t`. None: an empty collection
/// (Redis skips those at load and refuses them in RESTORE).
pub fn read_value<R: Read>(
    r: &mut Reader<R>,
    t: u8,
    lim: &Limits,
) -> Result<Option<Value>, RdbError> {
    Ok(match t {
        TYPE_STRING => Some(Value::Str(r.string()?)),
        TYPE_LIST => {
            let n = r.length()?;
            let mut l = List::new();
            for _ in 0..n {
                l.push_back(&r.string()?, lim.list);
            }
            let len = l.len();
            obj_or_empty(Object::List(l), len)
        }
        TYPE_SET => {
            let n = r.length()?;
            let mut b = SetBuild {
                s: None,
                lim: lim.set,
            };
            for _ in 0..n {
                b.add(&r.string()?)?;
            }
            b.s.map(Object::Set).map(Value::Obj)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.length()?;
            let mut v = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                v.push((s, m));
            }
            let z = build_zset(v, lim.zset)?;
            let len = z.len();
            obj_or_empty(Object::Zset(z), len)
        }
        TYPE_HASH => {
            let n = r.length()?;
            let mut b = HashBuild {
                h: Hash::new(),
                lim: lim.hash,
            };
            for _ in 0..n {
                let f = r.string()?;
                let v = r.string()?;
                b.add(&f, &v)?;
            }
            let len = b.h.len();
            obj_or_empty(Object::Hash(b.h), len)
        }
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
            let n = r.length()?;
            let mut l = List::new();
            for _ in 0..n {
                let container = if t == TYPE_LIST_QUICKLIST_2 {
                    r.length()?
                } else {
                    QUICKLIST_NODE_PACKED
                };
                let blob = r.string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => l.push_back(&blob, lim.list),
                    QUICKLIST_NODE_PACKED => {
                        let each = |e: Elem| {
                            l.push_back(&e.to_vec(), lim.list);
                            Ok(())
                        };
                        if t == TYPE_LIST_QUICKLIST_2 {
                            listpack_each(&blob, each)?;
                        } else {
                            ziplist_each(&blob, each)?;
                        }
                    }
                    c => return err(format!("Unknown quicklist node container {c}")),
                }
            }
            let len = l.len();
            obj_or_empty(Object::List(l), len)
        }
        TYPE_LIST_ZIPLIST => {
            let blob = r.string()?;
            let mut l = List::new();
            ziplist_each(&blob, |e| {
                l.push_back(&e.to_vec(), lim.list);
                Ok(())
            })?;
            let len = l.len();
            obj_or_empty(Object::List(l), len)
        }
        TYPE_SET_INTSET => {
            let blob = r.string()?;
            let vals = intset_decode(&blob)?;
            let mut s = Set::new_int();
            let mut b = itoa::Buffer::new();
            for v in &vals {
                s.add(b.format(*v).as_bytes(), lim.set);
            }
            obj_or_empty(Object::Set(s), vals.len())
        }
        TYPE_SET_LISTPACK => {
            let blob = r.string()?;
            let mut b = SetBuild {
                s: None,
                lim: lim.set,
            };
            listpack_each(&blob, |e| b.add(&e.to_vec()))?;
            b.s.map(Object::Set).map(Value::Obj)
        }
        TYPE_ZSET_ZIPLIST | TYPE_ZSET_LISTPACK => {
            let blob = r.string()?;
            let mut v = Vec::new();
            let mut member: Option<Vec<u8>> = None;
            let mut each = |e: Elem| -> Result<(), String> {
                match member.take() {
                    None => member = Some(e.to_vec()),
                    Some(m) => v.push((elem_score(&e).map_err(|e| e.0)?, m)),
                }
                Ok(())
            };
            if t == TYPE_ZSET_LISTPACK {
                listpack_each(&blob, &mut each)?;
            } else {
                ziplist_each(&blob, &mut each)?;
            }
            if member.is_some() {
                return err("Zset listpack with an odd number of entries");
            }
            let z = build_zset(v, lim.zset)?;
            let len = z.len();
            obj_or_empty(Object::Zset(z), len)
        }
        TYPE_HASH_ZIPLIST | TYPE_HASH_LISTPACK | TYPE_HASH_ZIPMAP => {
            let blob = r.string()?;
            let mut b = HashBuild {
                h: Hash::new(),
                lim: lim.hash,
            };
            if t == TYPE_HASH_ZIPMAP {
                zipmap_each(&blob, |f, v| b.add(f, v))?;
            } else {
                let mut field: Option<Vec<u8>> = None;
                let mut each = |e: Elem| -> Result<(), String> {
                    match field.take() {
                        None => field = Some(e.to_vec()),
                        Some(f) => b.add(&f, &e.to_vec())?,
                    }
                    Ok(())
                };
                if t == TYPE_HASH_LISTPACK {
                    listpack_each(&blob, &mut each)?;
                } else {
                    ziplist_each(&blob, &mut each)?;
                }
                if field.is_some() {
                    return err("Hash listpack with an odd number of entries");
                }
            }
            let len = b.h.len();
            obj_or_empty(Object::Hash(b.h), len)
        }
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => {
            return stream::read(r, t, lim)
        }
        TYPE_MODULE_PRE_GA | TYPE_MODULE_2 => {
            return err("Module values are not supported by Tessera")
        }
        _ => return err(format!("Unknown RDB encoding type {t}")),
    })
}

/// Checks a DUMP payload's footer (version and CRC) and decodes its value.
/// The error is Redis's text for each case.
pub fn restore_payload(p: &[u8], lim: &Limits) -> Result<Value, &'static str> {
    const BAD_VERSION: &str = "ERR DUMP payload version or checksum are wrong";
    if p.len() < 10 {
        return Err(BAD_VERSION);
    }
    let (body, footer) = p.split_at(p.len() - 10);
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_MAX_LOAD_VERSION {
        return Err(BAD_VERSION);
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().unwrap_or([0; 8]));
    if crc64::update(0, &p[..p.len() - 8]) != crc {
        return Err(BAD_VERSION);
    }
    let mut r = Reader::new(body);
    let t = r.u8().map_err(|_| "ERR Bad data format")?;
    match read_value(&mut r, t, lim) {
        Ok(Some(v)) => Ok(v),
        _ => Err("ERR Bad data format"),
    }
}

/// One key read from a file.
pub struct LoadedKey {
    pub db: usize,
    pub key: Vec<u8>,
    pub value: Value,
    pub expire: Option<i64>,
    /// Seconds idle (IDLE opcode), if the file had it.
    pub idle: Option<u64>,
    pub freq: Option<u8>,
}

/// What a whole file held besides keys.
#[derive(Debug, Default)]
pub struct LoadSummary {
    pub version: u16,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    pub keys: u64,
    pub empty_skipped: u64,
    pub functions_skipped: u64,
}

/// Reads a whole RDB file, handing each key to `on_key`. Fails on any
/// structural error, a wrong checksum or a type Tessera cannot hold.
pub fn load<R: Read>(
    src: R,
    databases: usize,
    lim: &Limits,
    mut on_key: impl FnMut(LoadedKey) -> Result<(), RdbError>,
) -> Result<LoadSummary, RdbError> {
    let mut r = Reader::new(src);
    let magic: [u8; 9] = r.array()?;
    if &magic[..5] != b"REDIS" {
        return err("Wrong signature trying to load DB from file");
    }
    let ver = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    if !(1..=RDB_MAX_LOAD_VERSION).contains(&ver) {
        return err(format!("Can't handle RDB format version {ver}"));
    }
    let mut sum = LoadSummary {
        version: ver,
        ..Default::default()
    };
    let mut db = 0usize;
    let mut expire: Option<i64> = None;
    let mut idle: Option<u64> = None;
    let mut freq: Option<u8> = None;
    loop {
        let t = r.u8()?;
        match t {
            OP_EXPIRETIME => {
                expire = Some(i32::from_le_bytes(r.array()?) as i64 * 1000);
                continue;
            }
            OP_EXPIRETIME_MS => {
                expire = Some(i64::from_le_bytes(r.array()?));
                continue;
            }
            OP_IDLE => {
                idle = Some(r.length()?);
                continue;
            }
            OP_FREQ => {
                freq = Some(r.u8()?);
                continue;
            }
            OP_EOF => break,
            OP_SELECTDB => {
                let n = r.length()?;
                if n >= databases as u64 {
                    return err(format!("FATAL: Data file was created with a Redis server configured to handle more than {databases} databases. Exiting"));
                }
                db = n as usize;
                continue;
            }
            OP_RESIZEDB => {
                r.length()?;
                r.length()?;
                continue;
            }
            OP_AUX => {
                let k = r.string()?;
                let v = r.string()?;
                sum.aux.push((k, v));
                continue;
            }
            OP_MODULE_AUX => return err("Module auxiliary data is not supported by Tessera"),
            OP_FUNCTION_PRE_GA => return err("Pre-release function format not supported"),
            OP_FUNCTION2 => {
                // Tessera has no functions yet: the library is skipped.
                r.string()?;
                sum.functions_skipped += 1;
                continue;
            }
            _ => {}
        }
        let key = r.string()?;
        let value = read_value(&mut r, t, lim)?;
        let (e, i, f) = (expire.take(), idle.take(), freq.take());
        match value {
            None => sum.empty_skipped += 1,
            Some(value) => {
                sum.keys += 1;
                on_key(LoadedKey {
                    db,
                    key,
                    value,
                    expire: e,
                    idle: i,
                    freq: f,
                })?;
            }
        }
    }
    if ver >= 5 {
        let computed = r.crc;
        let stored = u64::from_le_bytes(r.array()?);
        if stored != 0 && stored != computed {
            return err(format!(
                "Wrong RDB checksum expected: ({stored:x}) got: ({computed:x}). Aborting now."
            ));
        }
    }
    Ok(sum)
}

/// The start of a file: signature, version and Redis 7.0's AUX fields.
pub fn write_header(out: &mut Vec<u8>, redis_ver: &str, ctime: i64, used_mem: u64) {
    write_header_for(out, redis_ver, ctime, used_mem, false)
}

/// `write_header`, with `aof-base` 1 for an AOF's base file.
pub fn write_header_for(
    out: &mut Vec<u8>,
    redis_ver: &str,
    ctime: i64,
    used_mem: u64,
    aof_base: bool,
) {
    out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    write_aux(out, "redis-ver", redis_ver.as_bytes());
    write_aux(out, "redis-bits", b"64");
    write_aux(out, "ctime", ctime.to_string().as_bytes());
    write_aux(out, "used-mem", used_mem.to_string().as_bytes());
    write_aux(out, "aof-base", if aof_base { b"1" } else { b"0" });
}

/// A database's section header.
pub fn write_select(out: &mut Vec<u8>, db: usize, keys: u64, expires: u64) {
    out.push(OP_SELECTDB);
    write_len(out, db as u64);
    out.push(OP_RESIZEDB);
    write_len(out, keys);
    write_len(out, expires);
}

#[cfg(test)]
mod tests;
