//! Streams in RDB files and DUMP payloads: written as Redis 7.0 writes
//! them (`RDB_TYPE_STREAM_LISTPACKS_2`), read in that form and in Redis
//! 5-6's (`_LISTPACKS`) and 7.4's (`_LISTPACKS_3`, with consumers'
//! active time).
//!
//! Each node becomes Redis's listpack: the master entry
//! `count deleted nfields field... 0`, then per entry
//! `flags ms-diff seq-diff [nfields field value... | value...] lp-count`,
//! under a key of the master ID as 16 big-endian bytes. Then the stream's
//! counters, and per group its last ID, read counter, PEL and consumers.

use std::io::Read;

use super::blobs::{listpack_each, Elem, LpWriter};
use super::{err, write_len, write_string, Limits, RdbError, Reader, Value};
use super::{TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_3};
use crate::store::Object;
use crate::types::stream::{Consumer, Group, Nack, Stream, StreamId};

const FLAG_DELETED: i64 = 1;
const FLAG_SAME_FIELDS: i64 = 2;

fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn key_id(k: &[u8]) -> Option<StreamId> {
    if k.len() != 16 {
        return None;
    }
    Some(StreamId::new(
        u64::from_be_bytes(k[..8].try_into().ok()?),
        u64::from_be_bytes(k[8..].try_into().ok()?),
    ))
}

/// Appends a stream's body.
pub fn write(out: &mut Vec<u8>, s: &Stream, compress: bool) {
    write_len(out, s.node_count() as u64);
    for (master, node) in s.nodes() {
        let mut w = LpWriter::new();
        w.push_int(node.live as i64);
        w.push_int(node.deleted as i64);
        let first = node.iter(master).next();
        let master_fields: Vec<Vec<u8>> = match first {
            Some(e) => {
                let mut v = Vec::new();
                e.for_each(|f, _| v.push(f.to_vec()));
                v
            }
            None => Vec::new(),
        };
        w.push_int(master_fields.len() as i64);
        for f in &master_fields {
            w.push(f);
        }
        w.push_int(0);
        for e in node.iter(master) {
            let mut fields = Vec::with_capacity(e.field_count());
            let mut values = Vec::with_capacity(e.field_count());
            e.for_each(|f, v| {
                fields.push(f.to_vec());
                values.push(v.to_vec());
            });
            let same = fields == master_fields;
            let mut flags = if e.deleted { FLAG_DELETED } else { 0 };
            if same {
                flags |= FLAG_SAME_FIELDS;
            }
            w.push_int(flags);
            w.push_int(e.id.ms.wrapping_sub(master.ms) as i64);
            w.push_int(e.id.seq.wrapping_sub(master.seq) as i64);
            if !same {
                w.push_int(fields.len() as i64);
            }
            for (f, v) in fields.iter().zip(&values) {
                if !same {
                    w.push(f);
                }
                w.push(v);
            }
            let mut lp_count = fields.len() as i64 + 3;
            if !same {
                lp_count += fields.len() as i64 + 1;
            }
            w.push_int(lp_count);
        }
        write_string(out, &id_key(master), compress);
        write_string(out, &w.finish(), compress);
    }
    write_len(out, s.len());
    write_len(out, s.last_id.ms);
    write_len(out, s.last_id.seq);
    write_len(out, s.first_id.ms);
    write_len(out, s.first_id.seq);
    write_len(out, s.max_deleted.ms);
    write_len(out, s.max_deleted.seq);
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_string(out, name, compress);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id_key(*id));
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            write_len(out, n.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (name, c) in &g.consumers {
            write_string(out, name, compress);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id_key(*id));
            }
        }
    }
}

fn int(e: &Elem) -> Result<i64, RdbError> {
    match e {
        Elem::Int(n) => Ok(*n),
        Elem::Str(s) => crate::util::parse_i64_strict(s)
            .ok_or_else(|| RdbError("Stream listpack with a non-integer header".into())),
    }
}

/// Adds the live entries of one node's listpack.
fn load_node(s: &mut Stream, master: StreamId, lp: &[u8], lim: &Limits) -> Result<(), RdbError> {
    let mut elems: Vec<Elem> = Vec::new();
    listpack_each(lp, |e| {
        elems.push(e);
        Ok(())
    })?;
    let bad = || err("Bad stream listpack");
    let get = |i: usize| elems.get(i).ok_or(());
    let Ok(nmaster) = get(2).map(int) else {
        return bad();
    };
    let nmaster = nmaster? as usize;
    if nmaster > elems.len() {
        return bad();
    }
    let master_fields: Vec<Vec<u8>> = (0..nmaster).map(|i| elems[3 + i].to_vec()).collect();
    let mut at = 3 + nmaster + 1;
    let mut pairs: Vec<Vec<u8>> = Vec::new();
    while at < elems.len() {
        let head = |i: usize| -> Result<i64, RdbError> {
            elems
                .get(i)
                .ok_or_else(|| RdbError("Bad stream listpack".into()))
                .and_then(int)
        };
        let flags = head(at)?;
        let ms = master.ms.wrapping_add(head(at + 1)? as u64);
        let seq = master.seq.wrapping_add(head(at + 2)? as u64);
        at += 3;
        pairs.clear();
        if flags & FLAG_SAME_FIELDS != 0 {
            for f in &master_fields {
                let Some(v) = elems.get(at) else {
                    return bad();
                };
                pairs.push(f.clone());
                pairs.push(v.to_vec());
                at += 1;
            }
        } else {
            let n = head(at)? as usize;
            at += 1;
            for _ in 0..n {
                let (Some(f), Some(v)) = (elems.get(at), elems.get(at + 1)) else {
                    return bad();
                };
                pairs.push(f.to_vec());
                pairs.push(v.to_vec());
                at += 2;
            }
        }
        at += 1; // lp-count
        if at > elems.len() {
            return bad();
        }
        let id = StreamId::new(ms, seq);
        if flags & FLAG_DELETED == 0 {
            if !s.is_empty() && id <= s.last_id {
                return bad();
            }
            s.add(id, &pairs[..], lim.stream);
        }
    }
    Ok(())
}

fn raw_id<R: Read>(r: &mut Reader<R>) -> Result<StreamId, RdbError> {
    let k: [u8; 16] = r.array()?;
    key_id(&k).ok_or_else(|| RdbError("bad stream ID".into()))
}

fn ms_time<R: Read>(r: &mut Reader<R>) -> Result<i64, RdbError> {
    Ok(i64::from_le_bytes(r.array()?))
}

fn read_id<R: Read>(r: &mut Reader<R>) -> Result<StreamId, RdbError> {
    Ok(StreamId::new(r.length()?, r.length()?))
}

/// Reads a stream's body of RDB type `t`.
pub fn read<R: Read>(r: &mut Reader<R>, t: u8, lim: &Limits) -> Result<Option<Value>, RdbError> {
    let mut s = Stream::new();
    let nodes = r.length()?;
    for _ in 0..nodes {
        let key = r.string()?;
        let Some(master) = key_id(&key) else {
            return err("Stream node key entry is not the size of a stream ID");
        };
        let lp = r.string()?;
        load_node(&mut s, master, &lp, lim)?;
    }
    let len = r.length()?;
    if len != s.len() {
        return err("Stream length does not match its entries");
    }
    s.last_id = read_id(r)?;
    if t != TYPE_STREAM_LISTPACKS {
        s.first_id = read_id(r)?;
        s.max_deleted = read_id(r)?;
        s.entries_added = r.length()?;
    } else {
        s.entries_added = s.len();
    }
    let ngroups = r.length()?;
    for _ in 0..ngroups {
        let name = r.string()?;
        let last = read_id(r)?;
        let read_counter = if t != TYPE_STREAM_LISTPACKS {
            r.length()? as i64
        } else {
            s.estimate_entries_read(last)
        };
        let mut g = Group::new(last, read_counter);
        let npel = r.length()?;
        for _ in 0..npel {
            let id = raw_id(r)?;
            let delivery_time = ms_time(r)?;
            let delivery_count = r.length()?;
            g.pel.insert(
                id,
                Nack {
                    delivery_time,
                    delivery_count,
                    consumer: Box::default(),
                },
            );
        }
        let ncons = r.length()?;
        for _ in 0..ncons {
            let cname = r.string()?;
            let seen_time = ms_time(r)?;
            if t == TYPE_STREAM_LISTPACKS_3 {
                ms_time(r)?; // active time (7.4)
            }
            let mut c = Consumer {
                seen_time,
                pel: Default::default(),
            };
            let n = r.length()?;
            for _ in 0..n {
                let id = raw_id(r)?;
                let Some(nack) = g.pel.get_mut(&id) else {
                    return err("Consumer PEL entry not found in the group's PEL");
                };
                nack.consumer = cname.clone().into();
                c.pel.insert(id);
            }
            g.consumers.insert(cname.into(), c);
        }
        if g.pel.values().any(|n| n.consumer.is_empty()) {
            return err("Group PEL entry without a consumer");
        }
        if s.groups.insert(name.into(), g).is_some() {
            return err("Duplicated consumer group name");
        }
    }
    Ok(Some(Value::Obj(Object::Stream(Box::new(s)))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ValueRef;
    use crate::types::stream::NodeLimits;

    fn sample() -> Stream {
        let mut s = Stream::new();
        let lim = NodeLimits {
            max_bytes: 0,
            max_entries: 3,
        };
        let a: [&[u8]; 4] = [b"name", b"x", b"n", b"17"];
        let b: [&[u8]; 2] = [b"other", b"-5"];
        for i in 1..=8u64 {
            if i % 3 == 0 {
                s.add(StreamId::new(i * 10, i), &b[..], lim);
            } else {
                s.add(StreamId::new(i * 10, i), &a[..], lim);
            }
        }
        s.delete(StreamId::new(20, 2));
        s.delete(StreamId::new(30, 3));
        s.delete(StreamId::new(10, 1));
        let mut g = Group::new(StreamId::new(50, 5), 4);
        g.consumer(b"alice", 1000);
        g.consumer(b"bob", 2000);
        g.deliver_new(StreamId::new(40, 4), b"alice", 1500);
        g.deliver_new(StreamId::new(50, 5), b"bob", 2500);
        s.groups.insert(b"grp"[..].into(), g);
        s.groups
            .insert(b"empty"[..].into(), Group::new(StreamId::MIN, -1));
        s
    }

    #[test]
    fn streams_round_trip_through_rdb() {
        let s = sample();
        let o = Object::Stream(Box::new(s.clone()));
        let payload = super::super::dump_payload(&ValueRef::Obj(&o), false);
        let back = super::super::restore_payload(&payload, &Limits::default()).unwrap();
        let Value::Obj(Object::Stream(t)) = back else {
            panic!("not a stream");
        };
        let ids = |s: &Stream| {
            let mut v = Vec::new();
            s.range(StreamId::MIN, StreamId::MAX, false, |e| {
                let mut f = Vec::new();
                e.for_each(|k, x| {
                    f.push(k.to_vec());
                    f.push(x.to_vec());
                });
                v.push((e.id, f));
                true
            });
            v
        };
        assert_eq!(ids(&s), ids(&t));
        assert_eq!(
            (
                s.len(),
                s.last_id,
                s.first_id,
                s.max_deleted,
                s.entries_added
            ),
            (
                t.len(),
                t.last_id,
                t.first_id,
                t.max_deleted,
                t.entries_added
            )
        );
        assert_eq!(s.groups, t.groups);
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let o = Object::Stream(Box::new(sample()));
        let payload = super::super::dump_payload(&ValueRef::Obj(&o), false);
        let body = &payload[..payload.len() - 10];
        for cut in 0..body.len() {
            let mut r = Reader::new(&body[1..cut.max(1)]);
            let _ = read(
                &mut r,
                super::super::TYPE_STREAM_LISTPACKS_2,
                &Limits::default(),
            );
        }
        for at in 1..body.len() {
            let mut b = body.to_vec();
            b[at] ^= 0x5a;
            let mut r = Reader::new(&b[1..]);
            let _ = read(
                &mut r,
                super::super::TYPE_STREAM_LISTPACKS_2,
                &Limits::default(),
            );
        }
    }
}
