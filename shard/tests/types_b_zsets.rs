//! Sorted sets: both encodings (and the conversion between them) against a
//! model of a BTreeSet of (score, member) plus a member -> score map, for
//! random sequences of adds, increments, removals, rank and score ranges;
//! replies through the command table in RESP2 and RESP3; lazy free.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use tessera_protocol::reply::Proto;
use tessera_shard::command::ShardState;
use tessera_shard::types::zset::{Zset, ZsetLimits};

mod common;
use common::*;

/// Total order on scores for the model (scores are never NaN).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ord64(f64);
impl Eq for Ord64 {}
impl PartialOrd for Ord64 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ord64 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.partial_cmp(&o.0).expect("no NaN")
    }
}

#[derive(Default)]
struct Model {
    order: BTreeSet<(Ord64, Vec<u8>)>,
    score: HashMap<Vec<u8>, f64>,
}

impl Model {
    fn set(&mut self, m: &[u8], s: f64) {
        if let Some(old) = self.score.insert(m.to_vec(), s) {
            self.order.remove(&(Ord64(old), m.to_vec()));
        }
        self.order.insert((Ord64(s), m.to_vec()));
    }
    fn remove(&mut self, m: &[u8]) -> Option<f64> {
        let s = self.score.remove(m)?;
        self.order.remove(&(Ord64(s), m.to_vec()));
        Some(s)
    }
    fn ranked(&self) -> Vec<(f64, Vec<u8>)> {
        self.order.iter().map(|(s, m)| (s.0, m.clone())).collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(u16, i16),
    Incr(u16, i16),
    Remove(u16),
    Rank(u16),
    RankRange(u16, u16, bool),
    ScoreRange(i16, i16),
    RemoveRange(u16, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u16>(), -50i16..50).prop_map(|(m, s)| Op::Add(m, s)),
        2 => (any::<u16>(), -5i16..5).prop_map(|(m, s)| Op::Incr(m, s)),
        2 => any::<u16>().prop_map(Op::Remove),
        1 => any::<u16>().prop_map(Op::Rank),
        1 => (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(a, b, r)| Op::RankRange(a, b, r)),
        1 => (-60i16..60, -60i16..60).prop_map(|(a, b)| Op::ScoreRange(a, b)),
        1 => (any::<u16>(), 0u8..20).prop_map(|(a, n)| Op::RemoveRange(a, n)),
    ]
}

/// Members of mixed lengths (some past a small max-value), from a small
/// pool so that updates and removals hit existing members.
fn member(i: u16, pool: u16) -> Vec<u8> {
    let i = i % pool;
    let mut m = format!("m{}", i).into_bytes();
    if i.is_multiple_of(7) {
        m.extend(std::iter::repeat_n(b'x', (i % 50) as usize));
    }
    m
}

fn check(z: &Zset, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(z.len(), model.score.len());
    let mut got = Vec::new();
    z.for_each(0, z.len(), false, |s, m| got.push((s, m.to_vec())));
    prop_assert_eq!(&got, &model.ranked());
    Ok(())
}

fn run_ops(ops: Vec<Op>, lim: ZsetLimits, pool: u16) -> Result<(), TestCaseError> {
    let mut z = Zset::new_for(0, lim);
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Add(m, s) => {
                let m = member(m, pool);
                let s = s as f64 / 4.0;
                match z.score(&m) {
                    Some(old) => z.set_score(&m, old, s),
                    None => z.insert(s, &m, lim),
                }
                model.set(&m, s);
            }
            Op::Incr(m, d) => {
                let m = member(m, pool);
                let cur = model.score.get(&m).copied();
                prop_assert_eq!(z.score(&m), cur);
                if let Some(c) = cur {
                    let n = c + d as f64;
                    if n != c {
                        z.set_score(&m, c, n);
                    }
                    model.set(&m, n);
                }
            }
            Op::Remove(m) => {
                let m = member(m, pool);
                prop_assert_eq!(z.remove(&m), model.remove(&m));
            }
            Op::Rank(m) => {
                let m = member(m, pool);
                let want = model
                    .ranked()
                    .iter()
                    .position(|(_, x)| *x == m)
                    .map(|r| (r, model.score[&m]));
                prop_assert_eq!(z.rank(&m), want);
            }
            Op::RankRange(a, b, rev) => {
                let n = z.len().max(1);
                let (a, b) = ((a as usize) % (n + 2), (b as usize) % (n + 2));
                let (lo, hi) = (a.min(b), a.max(b));
                let mut got = Vec::new();
                z.for_each(lo, hi, rev, |s, m| got.push((s, m.to_vec())));
                let r = model.ranked();
                let mut want: Vec<_> = r[lo.min(r.len())..hi.min(r.len())].to_vec();
                if rev {
                    want.reverse();
                }
                prop_assert_eq!(got, want);
                if lo < z.len() {
                    let (s, m) = z.get(lo);
                    prop_assert_eq!((s, m.to_vec()), r[lo].clone());
                }
            }
            Op::ScoreRange(a, b) => {
                let (min, max) = (a as f64 / 4.0, b as f64 / 4.0);
                let lo = z.count_below(min, false);
                let hi = z.count_below(max, true).max(lo);
                let want = model
                    .score
                    .values()
                    .filter(|&&s| s >= min && s <= max)
                    .count();
                prop_assert_eq!(hi - lo, want);
            }
            Op::RemoveRange(a, k) => {
                let n = z.len();
                if n > 0 {
                    let lo = a as usize % n;
                    let hi = (lo + k as usize).min(n);
                    let r = model.ranked();
                    z.remove_range(lo, hi);
                    for (_, m) in &r[lo..hi] {
                        model.remove(m);
                    }
                }
            }
        }
        check(&z, &model)?;
        // Small stays small only within the limits (conversion is one way).
        if let Zset::Small(_) = z {
            prop_assert!(z.len() <= lim.max_entries);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    /// Small limits: most cases cross from the packed leaf to the tree.
    #[test]
    fn zset_small_limits_match_model(
        entries in 0usize..10,
        value in prop_oneof![Just(0usize), Just(5), Just(64)],
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        run_ops(ops, ZsetLimits { max_entries: entries, max_value: value }, 40)?;
    }

    /// Default limits and a large pool: the tree splits and merges leaves
    /// and inner nodes.
    #[test]
    fn zset_tree_matches_model(ops in proptest::collection::vec(op(), 500..2500)) {
        run_ops(ops, ZsetLimits { max_entries: 0, max_value: 64 }, 3000)?;
    }
}

#[test]
fn large_tree_sequential_and_random() {
    let lim = ZsetLimits::default();
    let mut z = Zset::new_for(0, lim);
    let mut model = Model::default();
    let mut x: u64 = 7;
    for i in 0..20_000u32 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        let s = if i < 10_000 {
            i as f64
        } else {
            (x >> 50) as f64
        };
        let m = format!("member:{}", i);
        z.insert(s, m.as_bytes(), lim);
        model.set(m.as_bytes(), s);
    }
    assert_eq!(z.encoding(), "skiplist");
    check(&z, &model).unwrap();
    for i in (0..20_000u32).step_by(3) {
        let m = format!("member:{}", i);
        assert_eq!(z.remove(m.as_bytes()), model.remove(m.as_bytes()));
    }
    check(&z, &model).unwrap();
    z.remove_range(100, 5000);
    let r = model.ranked();
    for (_, m) in &r[100..5000] {
        model.remove(m);
    }
    check(&z, &model).unwrap();
}

#[test]
fn replies_in_both_protocols() {
    let mut st = shard();
    let r2 = |st: &mut ShardState, p: &[&str]| run_proto(st, Proto::Resp2, p);
    let r3 = |st: &mut ShardState, p: &[&str]| run_proto(st, Proto::Resp3, p);
    assert_eq!(
        r2(&mut st, &["ZADD", "z", "1", "a", "2.5", "b", "+inf", "c"]),
        ":3\r\n"
    );
    assert_eq!(r2(&mut st, &["ZSCORE", "z", "b"]), "$3\r\n2.5\r\n");
    assert_eq!(r3(&mut st, &["ZSCORE", "z", "c"]), ",inf\r\n");
    assert_eq!(
        r2(&mut st, &["ZRANGE", "z", "0", "1", "WITHSCORES"]),
        "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
    );
    assert_eq!(
        r3(&mut st, &["ZRANGE", "z", "0", "1", "WITHSCORES"]),
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"
    );
    assert_eq!(r3(&mut st, &["ZPOPMIN", "z"]), "*2\r\n$1\r\na\r\n,1\r\n");
    assert_eq!(
        r3(&mut st, &["ZPOPMAX", "z", "1"]),
        "*1\r\n*2\r\n$1\r\nc\r\n,inf\r\n"
    );
    assert_eq!(
        r2(&mut st, &["ZADD", "z", "INCR", "-inf", "c"]),
        "$4\r\n-inf\r\n"
    );
    assert_eq!(
        r2(&mut st, &["ZADD", "z", "INCR", "+inf", "c"]),
        "-ERR resulting score is not a number (NaN)\r\n"
    );
}

#[test]
fn huge_zset_is_freed_lazily() {
    let mut st = shard();
    let lim = ZsetLimits::default();
    let mut z = Zset::new_for(0, lim);
    for i in 0..100_000u32 {
        z.insert(i as f64, format!("member:{}", i).as_bytes(), lim);
    }
    let e = tessera_shard::store::Entry::new_object(
        b"big",
        tessera_shard::store::Object::Zset(z),
        None,
        0,
    );
    st.free_entry(e);
    assert_eq!(st.lazy_free_objects.len(), 1);
    let mut steps = 0;
    while !st.lazy_free_step(64) {
        steps += 1;
        assert!(steps < 1_000_000);
    }
    assert!(steps > 10, "freed in slices, not at once ({steps})");
}

/// ZSCAN of a large set returns every member present throughout, even when
/// members are removed between calls, and always terminates (runs of equal
/// scores longer than COUNT included).
#[test]
fn zscan_of_a_large_set_is_complete() {
    let mut st = shard();
    let mut parts = vec!["ZADD".to_string(), "z".to_string()];
    for i in 0..600 {
        // Scores repeat in runs of 50 (longer than COUNT 10).
        parts.push(((i / 50) as f64).to_string());
        parts.push(format!("m{i:03}"));
    }
    let p: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    run_proto(&mut st, Proto::Resp2, &p);
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    let mut calls = 0;
    loop {
        let out = run_proto(
            &mut st,
            Proto::Resp2,
            &["ZSCAN", "z", &cursor, "COUNT", "10"],
        );
        let lines: Vec<&str> = out.split("\r\n").collect();
        cursor = lines[2].to_string();
        for (i, l) in lines.iter().enumerate().skip(4) {
            if l.starts_with('m') && i % 4 == 1 {
                seen.insert(l.to_string());
            }
        }
        // Remove members already returned: nothing not yet seen may be lost.
        if calls % 3 == 0 {
            let first: Vec<String> = seen.iter().take(5).cloned().collect();
            for m in first {
                run_proto(&mut st, Proto::Resp2, &["ZREM", "z", &m]);
            }
        }
        calls += 1;
        assert!(calls < 1000, "ZSCAN does not terminate");
        if cursor == "0" {
            break;
        }
    }
    for i in 0..600 {
        assert!(seen.contains(&format!("m{i:03}")), "m{i:03} never returned");
    }
}
