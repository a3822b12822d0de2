//! The stream against a plain ordered map: random appends, deletions,
//! trims and range reads must agree.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

type Model = BTreeMap<StreamId, Vec<Vec<u8>>>;

#[derive(Clone, Debug)]
enum Op {
    /// Gap in ms (0: same ms, next sequence), fields shape, value.
    Add(u8, u8, i32),
    Del(u16),
    MaxLen(u16, bool),
    MinId(u16, bool),
    Range(u16, u16, bool, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..4, 0u8..3, any::<i32>()).prop_map(|(g, s, v)| Op::Add(g, s, v)),
        2 => any::<u16>().prop_map(Op::Del),
        1 => (0u16..40, any::<bool>()).prop_map(|(n, a)| Op::MaxLen(n, a)),
        1 => (any::<u16>(), any::<bool>()).prop_map(|(n, a)| Op::MinId(n, a)),
        2 => (any::<u16>(), any::<u16>(), any::<bool>(), 0u8..8)
            .prop_map(|(a, b, r, c)| Op::Range(a, b, r, c)),
    ]
}

fn pairs(shape: u8, v: i32) -> Vec<Vec<u8>> {
    let v = v.to_string().into_bytes();
    match shape {
        0 => vec![b"name".to_vec(), v, b"k".to_vec(), b"x".repeat(3)],
        1 => vec![b"name".to_vec(), b"-".to_vec(), b"k".to_vec(), v],
        _ => vec![b"other".to_vec(), v],
    }
}

fn entry_pairs(e: &EntryRef) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    e.for_each(|f, x| {
        v.push(f.to_vec());
        v.push(x.to_vec());
    });
    v
}

/// The model's ID at position `pick` (mod len), if any.
fn pick_id(m: &Model, pick: u16) -> Option<StreamId> {
    if m.is_empty() {
        None
    } else {
        m.keys().nth(pick as usize % m.len()).copied()
    }
}

fn check(s: &Stream, m: &Model) {
    assert_eq!(s.len(), m.len() as u64);
    let mut got = Vec::new();
    s.range(StreamId::MIN, StreamId::MAX, false, |e| {
        got.push((e.id, entry_pairs(&e)));
        true
    });
    let want: Vec<_> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(got, want);
    assert_eq!(s.first_id, m.keys().next().copied().unwrap_or_default());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn stream_matches_model(
        ops in proptest::collection::vec(op(), 1..200),
        max_entries in 0usize..6,
        max_bytes in prop_oneof![Just(0usize), 20usize..200],
    ) {
        let lim = NodeLimits { max_bytes, max_entries };
        let mut s = Stream::new();
        let mut m = Model::new();
        let mut ms = 1u64;
        for op in ops {
            match op {
                Op::Add(gap, shape, v) => {
                    ms += gap as u64;
                    let id = s.next_id(AddId::AutoSeq(ms), 0).unwrap();
                    let p = pairs(shape, v);
                    s.add(id, &p[..], lim);
                    m.insert(id, p);
                }
                Op::Del(pick) => {
                    let id = pick_id(&m, pick).unwrap_or(StreamId::new(pick as u64, 0));
                    prop_assert_eq!(s.delete(id), m.remove(&id).is_some());
                    prop_assert!(!s.delete(id));
                }
                Op::MaxLen(n, approx) => {
                    let before = m.len() as u64;
                    let removed = s.trim(Trim::MaxLen(n as u64), approx, 0);
                    if approx {
                        prop_assert!(before - removed >= (n as u64).min(before));
                    } else {
                        prop_assert_eq!(removed, before.saturating_sub(n as u64));
                    }
                    for _ in 0..removed {
                        m.pop_first();
                    }
                }
                Op::MinId(pick, approx) => {
                    let min = pick_id(&m, pick).unwrap_or(StreamId::new(pick as u64, 0));
                    let below = m.range(..min).count() as u64;
                    let removed = s.trim(Trim::MinId(min), approx, 0);
                    if approx {
                        prop_assert!(removed <= below);
                    } else {
                        prop_assert_eq!(removed, below);
                    }
                    for _ in 0..removed {
                        m.pop_first();
                    }
                }
                Op::Range(a, b, rev, count) => {
                    let a = pick_id(&m, a).unwrap_or_default();
                    let b = pick_id(&m, b).unwrap_or_default();
                    let mut got = Vec::new();
                    s.range(a, b, rev, |e| {
                        got.push(e.id);
                        count == 0 || got.len() < count as usize
                    });
                    let mut want: Vec<StreamId> = if a <= b {
                        m.range(a..=b).map(|(k, _)| *k).collect()
                    } else {
                        Vec::new()
                    };
                    if rev {
                        want.reverse();
                    }
                    if count > 0 {
                        want.truncate(count as usize);
                    }
                    prop_assert_eq!(got, want);
                    if let Some(id) = pick_id(&m, a.seq as u16) {
                        prop_assert_eq!(s.get(id).map(|e| entry_pairs(&e)), m.get(&id).cloned());
                    }
                }
            }
            check(&s, &m);
        }
    }
}

#[test]
fn node_limits_split_nodes() {
    let mut s = Stream::new();
    let lim = NodeLimits {
        max_bytes: 0,
        max_entries: 3,
    };
    for i in 1..=10 {
        s.add(
            StreamId::new(i, 0),
            &[b"f".to_vec(), b"v".to_vec()][..],
            lim,
        );
    }
    assert_eq!(s.node_count(), 4);
    let lim = NodeLimits {
        max_bytes: 20,
        max_entries: 0,
    };
    let mut s = Stream::new();
    for i in 1..=10 {
        s.add(
            StreamId::new(i, 0),
            &[b"f".to_vec(), b"vvvvvvvvv".to_vec()][..],
            lim,
        );
    }
    assert_eq!(s.node_count(), 10);
}

#[test]
fn ids_follow_redis_rules() {
    let mut s = Stream::new();
    assert_eq!(
        s.next_id(AddId::Explicit(StreamId::MIN), 5),
        Err(IdError::Zero)
    );
    assert_eq!(s.next_id(AddId::Auto, 5), Ok(StreamId::new(5, 0)));
    s.add(
        StreamId::new(5, 0),
        &[b"a", b"b"][..],
        NodeLimits::default(),
    );
    assert_eq!(s.next_id(AddId::Auto, 3), Ok(StreamId::new(5, 1)));
    assert_eq!(s.next_id(AddId::AutoSeq(5), 3), Ok(StreamId::new(5, 1)));
    assert_eq!(s.next_id(AddId::AutoSeq(4), 3), Err(IdError::TooSmall));
    assert_eq!(
        s.next_id(AddId::Explicit(StreamId::new(5, 0)), 3),
        Err(IdError::TooSmall)
    );
}
