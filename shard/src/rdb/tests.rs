//! Round trips of every type and encoding through the encoder and the
//! decoder, whole files, and corrupt input.

use super::*;
use crate::types::stream::StreamId as StreamIdT;
use proptest::prelude::*;

fn lim() -> Limits {
    Limits {
        list: NodeLimit(-2),
        hash: HashLimits {
            max_entries: 128,
            max_value: 64,
        },
        set: SetLimits {
            max_intset_entries: 512,
        },
        zset: ZsetLimits {
            max_entries: 128,
            max_value: 64,
        },
        stream: Default::default(),
    }
}

/// A value's content in a comparable form, and its encoding name.
fn content(v: &ValueRef) -> (String, Vec<Vec<u8>>) {
    match v {
        ValueRef::Str(s) => ("string".into(), vec![s.to_vec()]),
        ValueRef::Obj(Object::Str(s)) => ("string".into(), vec![s.to_vec()]),
        ValueRef::Obj(o) => {
            let mut items: Vec<Vec<u8>> = match o {
                Object::Str(_) => unreachable!(),
                Object::List(l) => l.iter().map(|e| e.to_vec()).collect(),
                Object::Hash(h) => h.iter().map(|(f, v)| [f, b"=", v].concat()).collect(),
                Object::Set(s) => s.iter().map(|m| m.to_vec()).collect(),
                Object::Zset(z) => {
                    let mut v = Vec::new();
                    z.for_each(0, z.len(), false, |s, m| {
                        v.push([m, b"=", s.to_bits().to_string().as_bytes()].concat())
                    });
                    v
                }
                Object::Stream(st) => {
                    let mut v = Vec::new();
                    st.range(StreamIdT::MIN, StreamIdT::MAX, false, |e| {
                        let mut item = e.id.to_string().into_bytes();
                        e.for_each(|f, x| {
                            item.extend_from_slice(b" ");
                            item.extend_from_slice(&f.to_vec());
                            item.extend_from_slice(b"=");
                            item.extend_from_slice(&x.to_vec());
                        });
                        v.push(item);
                        true
                    });
                    v
                }
            };
            if !matches!(o, Object::List(_) | Object::Stream(_)) {
                items.sort();
            }
            (format!("{}/{}", o.type_name(), o.encoding()), items)
        }
    }
}

fn value_ref(v: &Value) -> ValueRef<'_> {
    match v {
        Value::Str(s) => ValueRef::Str(s),
        Value::Obj(o) => ValueRef::Obj(o),
    }
}

fn round_trip(v: ValueRef, compress: bool) {
    let p = dump_payload(&v, compress);
    let back = restore_payload(&p, &lim()).expect("payload decodes");
    assert_eq!(content(&v), content(&value_ref(&back)));
    // Any single flipped byte is caught by the checksum.
    let mut bad = p.clone();
    let i = p.len() / 2;
    bad[i] ^= 0x20;
    assert!(restore_payload(&bad, &lim()).is_err());
    // Truncations fail cleanly.
    for k in [0, 1, p.len() / 3, p.len() - 1] {
        assert!(restore_payload(&p[..k], &lim()).is_err());
    }
}

fn list_of(items: &[Vec<u8>]) -> Object {
    let mut l = List::new();
    for i in items {
        l.push_back(i, NodeLimit(-2));
    }
    Object::List(l)
}

fn hash_of(items: &[(Vec<u8>, Vec<u8>)]) -> Object {
    let mut h = Hash::new();
    for (f, v) in items {
        h.set(f, v, lim().hash);
    }
    Object::Hash(h)
}

fn set_of(items: &[Vec<u8>]) -> Object {
    let mut s = Set::new_for(&items[0]);
    for i in items {
        s.add(i, lim().set);
    }
    Object::Set(s)
}

fn zset_of(items: &[(f64, Vec<u8>)]) -> Object {
    let mut z = Zset::new_for(items[0].1.len(), lim().zset);
    for (s, m) in items {
        if z.score(m).is_none() {
            z.insert(*s, m, lim().zset);
        }
    }
    Object::Zset(z)
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        (0i64..300).prop_map(|i| i.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(prop_oneof![Just(b'x'), Just(b'y')], 0..300),
        Just(b"012".to_vec()),
    ]
}

#[test]
fn strings_of_every_encoding() {
    for s in [
        &b""[..],
        b"0",
        b"-1",
        b"127",
        b"-128",
        b"128",
        b"32767",
        b"-32769",
        b"2147483647",
        b"2147483648",
        b"-2147483648",
        b"9223372036854775807",
        b"007",
        b"+1",
        b"hello",
    ] {
        round_trip(ValueRef::Str(s), true);
    }
    let long = b"abcdefghij".repeat(1000);
    round_trip(ValueRef::Obj(&Object::Str(long.clone())), true);
    round_trip(ValueRef::Obj(&Object::Str(long.clone())), false);
    let mut out = Vec::new();
    write_string(&mut out, &long, true);
    assert_eq!(out[0], 0xC3, "long repetitive strings are LZF-compressed");
    assert!(out.len() < 200);
    out.clear();
    write_string(&mut out, b"12345", true);
    assert_eq!(out, [0xC1, 0x39, 0x30]);
}

#[test]
fn collections_of_every_encoding() {
    let small: Vec<Vec<u8>> = (0..10).map(|i| format!("m{i}").into_bytes()).collect();
    let big: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("member:{i}").into_bytes())
        .collect();
    let ints: Vec<Vec<u8>> = (0..100)
        .map(|i| (i * 1000 - 7).to_string().into_bytes())
        .collect();
    let many_ints: Vec<Vec<u8>> = (0..2000)
        .map(|i| (i * 3).to_string().into_bytes())
        .collect();
    for l in [&small, &big, &ints] {
        round_trip(ValueRef::Obj(&list_of(l)), true);
    }
    let o = set_of(&ints);
    assert_eq!(o.encoding(), "intset");
    round_trip(ValueRef::Obj(&o), true);
    let o = set_of(&many_ints);
    assert_eq!(o.encoding(), "hashtable");
    round_trip(ValueRef::Obj(&o), true);
    round_trip(ValueRef::Obj(&set_of(&small)), true);
    round_trip(ValueRef::Obj(&set_of(&big)), true);
    let pairs = |v: &Vec<Vec<u8>>| {
        v.iter()
            .map(|m| (m.clone(), m.repeat(2)))
            .collect::<Vec<_>>()
    };
    let o = hash_of(&pairs(&small));
    assert_eq!(o.encoding(), "listpack");
    round_trip(ValueRef::Obj(&o), true);
    let o = hash_of(&pairs(&big));
    assert_eq!(o.encoding(), "hashtable");
    round_trip(ValueRef::Obj(&o), true);
    let scored = |v: &Vec<Vec<u8>>| {
        v.iter()
            .enumerate()
            .map(|(i, m)| (i as f64 * 1.5 - 3.0, m.clone()))
            .collect::<Vec<_>>()
    };
    let o = zset_of(&scored(&small));
    assert_eq!(o.encoding(), "listpack");
    round_trip(ValueRef::Obj(&o), true);
    let o = zset_of(&scored(&big));
    assert_eq!(o.encoding(), "skiplist");
    round_trip(ValueRef::Obj(&o), true);
    let odd = vec![
        (f64::INFINITY, b"a".to_vec()),
        (f64::NEG_INFINITY, b"b".to_vec()),
        (1e300, b"c".to_vec()),
        (-1.5e-300, b"d".to_vec()),
        (0.1, b"e".to_vec()),
        (123456789012345678.0, b"f".to_vec()),
    ];
    round_trip(ValueRef::Obj(&zset_of(&odd)), true);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_list(items in proptest::collection::vec(bytes_strategy(), 1..400), c in any::<bool>()) {
        round_trip(ValueRef::Obj(&list_of(&items)), c);
    }

    #[test]
    fn any_set(items in proptest::collection::vec(bytes_strategy(), 1..700), c in any::<bool>()) {
        round_trip(ValueRef::Obj(&set_of(&items)), c);
    }

    #[test]
    fn any_hash(items in proptest::collection::vec((bytes_strategy(), bytes_strategy()), 1..300), c in any::<bool>()) {
        round_trip(ValueRef::Obj(&hash_of(&items)), c);
    }

    #[test]
    fn any_zset(items in proptest::collection::vec((any::<f64>().prop_filter("no nan", |f| !f.is_nan()), bytes_strategy()), 1..300), c in any::<bool>()) {
        round_trip(ValueRef::Obj(&zset_of(&items)), c);
    }

    #[test]
    fn any_string(s in bytes_strategy(), c in any::<bool>()) {
        round_trip(ValueRef::Str(&s), c);
    }

    #[test]
    fn garbage_payloads_never_panic(mut body in proptest::collection::vec(any::<u8>(), 0..300), t in 0u8..25) {
        body.insert(0, t);
        body.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64::update(0, &body);
        body.extend_from_slice(&crc.to_le_bytes());
        let _ = restore_payload(&body, &lim());
    }
}

fn sample_file(checksum: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, "7.0.15", 1_700_000_000, 1 << 20);
    write_select(&mut out, 0, 3, 1);
    let e = Entry::new_string(b"s", b"v", Some(4_000_000_000_000), 0);
    write_entry(&mut out, &e, true, None);
    let e = Entry::new_object(b"l", list_of(&[b"a".to_vec(), b"1".to_vec()]), None, 0);
    write_entry(&mut out, &e, true, Some(42));
    let e = Entry::new_object(b"h", hash_of(&[(b"f".to_vec(), b"v".to_vec())]), None, 0);
    write_entry(&mut out, &e, true, None);
    write_select(&mut out, 3, 1, 0);
    let e = Entry::new_object(b"z", zset_of(&[(2.5, b"m".to_vec())]), None, 0);
    write_entry(&mut out, &e, true, None);
    out.push(OP_EOF);
    let crc = if checksum { crc64::update(0, &out) } else { 0 };
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn whole_file_round_trip() {
    for checksum in [true, false] {
        let f = sample_file(checksum);
        let mut keys = Vec::new();
        let sum = load(&f[..], 16, &lim(), |k| {
            keys.push((k.db, k.key.clone(), k.expire, k.idle));
            Ok(())
        })
        .unwrap();
        assert_eq!(sum.version, 10);
        assert_eq!(sum.keys, 4);
        assert!(sum
            .aux
            .iter()
            .any(|(k, v)| k == b"redis-ver" && v == b"7.0.15"));
        assert_eq!(
            keys,
            vec![
                (0, b"s".to_vec(), Some(4_000_000_000_000), None),
                (0, b"l".to_vec(), None, Some(42)),
                (0, b"h".to_vec(), None, None),
                (3, b"z".to_vec(), None, None),
            ]
        );
    }
}

#[test]
fn corrupt_files_are_errors() {
    let f = sample_file(true);
    for k in 0..f.len() {
        assert!(
            load(&f[..k], 16, &lim(), |_| Ok(())).is_err(),
            "truncated at {k}"
        );
    }
    let mut bad = f.clone();
    let n = bad.len();
    bad[n - 12] ^= 1;
    let e = load(&bad[..], 16, &lim(), |_| Ok(())).unwrap_err();
    assert!(e.0.contains("checksum") || !e.0.is_empty());
    assert!(load(&f[..], 2, &lim(), |_| Ok(()))
        .unwrap_err()
        .0
        .contains("databases"));
    assert!(load(&b"REDIS0012"[..], 16, &lim(), |_| Ok(()))
        .unwrap_err()
        .0
        .contains("version 12"));
    assert!(load(&b"NOTREDIS0"[..], 16, &lim(), |_| Ok(())).is_err());
}

#[test]
fn old_encodings_load() {
    // A ziplist of ["a", 5, -300] built by hand (prevlen, encoding, data).
    let mut zl = vec![0u8; 10];
    let entries: Vec<Vec<u8>> = vec![
        vec![0, 0x01, b'a'],
        vec![3, 0xF6],
        vec![2, 0xC0, 0xD4, 0xFE],
    ];
    for e in &entries {
        zl.extend_from_slice(e);
    }
    zl.push(0xFF);
    let n = zl.len() as u32;
    zl[..4].copy_from_slice(&n.to_le_bytes());
    zl[8..10].copy_from_slice(&3u16.to_le_bytes());
    let mut body = vec![TYPE_LIST_ZIPLIST];
    write_string(&mut body, &zl, false);
    let mut r = Reader::new(&body[1..]);
    let v = read_value(&mut r, TYPE_LIST_ZIPLIST, &lim())
        .unwrap()
        .unwrap();
    let Value::Obj(Object::List(l)) = v else {
        panic!("a list")
    };
    let items: Vec<&[u8]> = l.iter().collect();
    assert_eq!(items, vec![&b"a"[..], b"5", b"-300"]);
    // A zipmap {"f": "vv"}.
    let zm = vec![1u8, 1, b'f', 2, 0, b'v', b'v', 0xFF];
    let mut body = Vec::new();
    write_string(&mut body, &zm, false);
    let mut r = Reader::new(&body[..]);
    let v = read_value(&mut r, TYPE_HASH_ZIPMAP, &lim())
        .unwrap()
        .unwrap();
    let Value::Obj(Object::Hash(h)) = v else {
        panic!("a hash")
    };
    assert_eq!(h.get(b"f"), Some(&b"vv"[..]));
    // The old text-double zset and the plain linked list.
    let mut body = Vec::new();
    write_len(&mut body, 2);
    write_string(&mut body, b"a", false);
    body.extend_from_slice(&[3, b'1', b'.', b'5']);
    write_string(&mut body, b"b", false);
    body.push(254);
    let mut r = Reader::new(&body[..]);
    let v = read_value(&mut r, TYPE_ZSET, &lim()).unwrap().unwrap();
    let Value::Obj(Object::Zset(z)) = v else {
        panic!("a zset")
    };
    assert_eq!(z.score(b"a"), Some(1.5));
    assert_eq!(z.score(b"b"), Some(f64::INFINITY));
    let mut r = Reader::new(&[TYPE_STREAM_LISTPACKS_2][..]);
    let t = r.u8().unwrap();
    // A stream cut off after its type byte is an error, not a panic.
    assert!(read_value(&mut r, t, &lim()).is_err());
}
