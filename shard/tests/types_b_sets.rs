//! Sets: the intset, compact and table forms against a BTreeSet model
//! (property tests across conversions), the set algebra of the commands
//! against the model, random members, RESP3 shapes and lazy freeing.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tessera_protocol::args::OwnedArgs;
use tessera_protocol::reply::Proto;
use tessera_shard::command::{lookup, sort, ShardConfig, ShardState};
use tessera_shard::types::set::{Set, SetLimits, SMALL_MAX_ENTRIES, SMALL_MAX_VALUE};
use tessera_shard::util::parse_i64_strict;

mod common;
use common::*;

/// The bulk strings of an array/set reply, sorted.
fn members_of(reply: &str) -> BTreeSet<Vec<u8>> {
    reply
        .split("\r\n")
        .skip(1)
        .collect::<Vec<_>>()
        .chunks(2)
        .filter(|c| c.len() == 2 && c[0].starts_with('$'))
        .map(|c| c[1].as_bytes().to_vec())
        .collect()
}

fn model_set(s: &Set) -> BTreeSet<Vec<u8>> {
    s.iter().map(|m| m.to_vec()).collect()
}

// ------------------------------------------------------ the data structure

#[derive(Debug, Clone)]
enum SetOp {
    Add(Vec<u8>),
    Remove(Vec<u8>),
    Contains(Vec<u8>),
    Pop(usize),
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => (-300i64..300).prop_map(|i| i.to_string().into_bytes()),
        1 => prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(70_000), Just(-5_000_000_000)]
            .prop_map(|i| i.to_string().into_bytes()),
        // integer-looking but not strict integers
        1 => prop_oneof![Just("01"), Just("-0"), Just("+1"), Just("9223372036854775808"), Just(" 1")]
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => (0u16..200).prop_map(|i| format!("m{i}").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..80),
    ]
}

fn set_op() -> impl Strategy<Value = SetOp> {
    prop_oneof![
        8 => member().prop_map(SetOp::Add),
        2 => member().prop_map(SetOp::Remove),
        2 => member().prop_map(SetOp::Contains),
        1 => (0usize..6).prop_map(SetOp::Pop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn set_matches_model_across_conversions(
        max_intset_entries in 0usize..40,
        ints_only in any::<bool>(),
        seed in any::<u64>(),
        ops in proptest::collection::vec(set_op(), 0..400),
    ) {
        let lim = SetLimits { max_intset_entries };
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut model: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut set: Option<Set> = None;
        // Redis's rule: an intset until a non-integer member or more than
        // the limit; never back.
        let mut converted = false;
        let mut saw_string = false;
        for op in ops {
            match op {
                SetOp::Add(m) => {
                    let m = if ints_only { parse_i64_strict(&m).map(|_| m).unwrap_or_else(|| b"7".to_vec()) } else { m };
                    let s = set.get_or_insert_with(|| {
                        converted = parse_i64_strict(&m).is_none();
                        Set::new_for(&m)
                    });
                    let new = s.add(&m, lim);
                    prop_assert_eq!(new, model.insert(m.clone()));
                    if parse_i64_strict(&m).is_none() {
                        saw_string = true;
                    }
                    if saw_string || model.len() > max_intset_entries {
                        converted = true;
                    }
                }
                SetOp::Remove(m) => {
                    if let Some(s) = set.as_mut() {
                        prop_assert_eq!(s.remove(&m), model.remove(&m));
                    }
                }
                SetOp::Contains(m) => {
                    let has = set.as_ref().is_some_and(|s| s.contains(&m));
                    prop_assert_eq!(has, model.contains(&m));
                }
                SetOp::Pop(n) => {
                    if let Some(s) = set.as_mut() {
                        let mut popped = Vec::new();
                        s.pop_many(n, &mut rng, |m| popped.push(m.to_vec()));
                        prop_assert_eq!(popped.len(), n.min(model.len()));
                        for p in popped {
                            prop_assert!(model.remove(&p), "popped a non-member");
                        }
                    }
                }
            }
            if let Some(s) = &set {
                prop_assert_eq!(s.len(), model.len());
                let want = if converted { "hashtable" } else { "intset" };
                prop_assert_eq!(s.encoding(), want);
                // Integers only, past the intset: the chunked integers.
                if converted && !saw_string {
                    prop_assert!(matches!(s, Set::Ints(_)), "{:?}", s.encoding());
                }
                if let Set::Small(_) = s {
                    prop_assert!(model.len() <= SMALL_MAX_ENTRIES);
                    prop_assert!(model.iter().all(|m| m.len() <= SMALL_MAX_VALUE));
                }
            }
        }
        let Some(s) = set else { return Ok(()) };
        // Iteration yields every member once; an intset in ascending order.
        let got: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
        prop_assert_eq!(got.len(), model.len());
        prop_assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), model.clone());
        if let Set::Int(_) = s {
            let ints: Vec<i64> = s.iter().map(|m| m.as_int().unwrap()).collect();
            prop_assert!(ints.windows(2).all(|w| w[0] < w[1]));
        }
        // A full SSCAN returns every member.
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = s.scan(cursor, 3, |m| { seen.insert(m.to_vec()); });
            if cursor == 0 { break; }
        }
        prop_assert_eq!(&seen, &model);
        // Distinct samples are distinct members.
        let k = model.len() / 2 + 1;
        let sample = s.sample_distinct(k, &mut rng);
        let distinct: BTreeSet<Vec<u8>> = sample.iter().map(|m| m.to_vec()).collect();
        prop_assert_eq!(distinct.len(), k.min(model.len()));
        prop_assert!(distinct.is_subset(&model));
        // A clone is equal.
        prop_assert_eq!(model_set(&s.clone()), model);
    }
}

// ------------------------------------------------------- the set algebra

#[derive(Debug, Clone)]
enum CmdOp {
    Add(usize, String),
    Rem(usize, String),
}

fn cmd_op() -> impl Strategy<Value = CmdOp> {
    let m = prop_oneof![
        3 => (0i64..30).prop_map(|i| i.to_string()),
        1 => (0u8..10).prop_map(|i| format!("s{i}")),
    ];
    prop_oneof![
        4 => (0usize..3, m.clone()).prop_map(|(k, m)| CmdOp::Add(k, m)),
        1 => (0usize..3, m).prop_map(|(k, m)| CmdOp::Rem(k, m)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]
    #[test]
    fn set_algebra_matches_model(ops in proptest::collection::vec(cmd_op(), 0..120)) {
        let mut st = shard();
        st.config.set_max_intset_entries = 8;
        let keys = ["k0", "k1", "k2"];
        let mut model: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new(); 3];
        for op in ops {
            match op {
                CmdOp::Add(k, m) => {
                    let r = run(&mut st, &["SADD", keys[k], &m]);
                    let new = model[k].insert(m.into_bytes());
                    prop_assert_eq!(r, format!(":{}\r\n", new as i32));
                }
                CmdOp::Rem(k, m) => {
                    let r = run(&mut st, &["SREM", keys[k], &m]);
                    let had = model[k].remove(m.as_bytes());
                    prop_assert_eq!(r, format!(":{}\r\n", had as i32));
                }
            }
        }
        for (k, m) in keys.iter().zip(&model) {
            prop_assert_eq!(run(&mut st, &["EXISTS", k]), format!(":{}\r\n", !m.is_empty() as i32));
            prop_assert_eq!(members_of(&run(&mut st, &["SMEMBERS", k])), m.clone());
        }
        let inter: BTreeSet<Vec<u8>> = model[0].iter().filter(|m| model[1].contains(*m) && model[2].contains(*m)).cloned().collect();
        let union: BTreeSet<Vec<u8>> = model.iter().flatten().cloned().collect();
        let diff: BTreeSet<Vec<u8>> = model[0].iter().filter(|m| !model[1].contains(*m) && !model[2].contains(*m)).cloned().collect();
        prop_assert_eq!(members_of(&run(&mut st, &["SINTER", "k0", "k1", "k2"])), inter.clone());
        prop_assert_eq!(members_of(&run(&mut st, &["SUNION", "k0", "k1", "k2"])), union.clone());
        prop_assert_eq!(members_of(&run(&mut st, &["SDIFF", "k0", "k1", "k2"])), diff.clone());
        prop_assert_eq!(run(&mut st, &["SINTERCARD", "3", "k0", "k1", "k2"]), format!(":{}\r\n", inter.len()));
        prop_assert_eq!(run(&mut st, &["SINTERCARD", "3", "k0", "k1", "k2", "LIMIT", "1"]), format!(":{}\r\n", inter.len().min(1)));
        for (cmd, want) in [("SINTERSTORE", &inter), ("SUNIONSTORE", &union), ("SDIFFSTORE", &diff)] {
            prop_assert_eq!(run(&mut st, &[cmd, "dst", "k0", "k1", "k2"]), format!(":{}\r\n", want.len()));
            prop_assert_eq!(members_of(&run(&mut st, &["SMEMBERS", "dst"])), want.clone());
            // Redis builds the result as an intset that converts as needed.
            if !want.is_empty() {
                let ints = want.iter().all(|m| parse_i64_strict(m).is_some()) && want.len() <= 8;
                let e = st.keyspace.db(0).get(b"dst", 0).unwrap().encoding();
                prop_assert_eq!(e, if ints { "intset" } else { "hashtable" });
            }
        }
    }
}

// ------------------------------------------------------ random members

#[test]
fn random_members_are_roughly_uniform_in_every_form() {
    let lim = SetLimits {
        max_intset_entries: 16,
    };
    let forms: [(&str, Vec<String>); 4] = [
        ("intset", (0..10).map(|i| i.to_string()).collect()),
        (
            "ints",
            (0..1000).map(|i| (i * 7 - 3000).to_string()).collect(),
        ),
        ("small", (0..10).map(|i| format!("m{i}")).collect()),
        ("big", (0..1000).map(|i| format!("m{i}")).collect()),
    ];
    let mut rng = SmallRng::seed_from_u64(7);
    for (name, members) in forms {
        let mut s = Set::new_for(members[0].as_bytes());
        for m in &members {
            s.add(m.as_bytes(), lim);
        }
        if name == "ints" {
            assert!(matches!(s, Set::Ints(_)));
        }
        let n = members.len();
        let draws = n * 200;
        let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
        for _ in 0..draws {
            *counts
                .entry(s.random(&mut rng).unwrap().to_vec())
                .or_default() += 1;
        }
        assert_eq!(counts.len(), n, "{name}: every member drawn");
        // Pearson's chi-square against uniform: n-1 degrees of freedom, so
        // about n +- sqrt(2n) when uniform; a 2x bias on a share of the
        // members (the bucket-then-chain pick scores ~44n here) lands far
        // above the bound. Members of the few chains longer than 4 are
        // drawn 4/len as often (see Dict::random_fair): ~1.1n-1.5n seen.
        let e = draws as f64 / n as f64;
        let chi2: f64 = counts.values().map(|&c| (c as f64 - e).powi(2) / e).sum();
        assert!(
            chi2 < 2.0 * n as f64 + 30.0,
            "{name}: chi-square {chi2} for {n} members"
        );
        assert!(
            counts.values().all(|&c| c as f64 > e * 0.3),
            "{name}: a member starved"
        );
    }
}

#[test]
fn srandmember_and_spop_counts() {
    let mut st = shard();
    let members: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let mut args = vec!["SADD", "s"];
    args.extend(members.iter().map(|s| s.as_str()));
    run(&mut st, &args);
    let all: BTreeSet<Vec<u8>> = members.iter().map(|m| m.as_bytes().to_vec()).collect();
    for count in [1usize, 5, 99, 100, 150, 299] {
        let r = run(&mut st, &["SRANDMEMBER", "s", &count.to_string()]);
        assert!(r.starts_with(&format!("*{count}\r\n")), "{r:.20}");
        let got = members_of(&r);
        assert_eq!(got.len(), count, "distinct");
        assert!(got.is_subset(&all));
    }
    let r = run(&mut st, &["SRANDMEMBER", "s", "-1000"]);
    assert!(r.starts_with("*1000\r\n"));
    assert!(members_of(&r).is_subset(&all));
    // SPOP with a count: distinct members, gone afterwards.
    let r = run(&mut st, &["SPOP", "s", "120"]);
    let popped = members_of(&r);
    assert_eq!(popped.len(), 120);
    for m in &popped {
        let m = String::from_utf8_lossy(m);
        assert_eq!(run(&mut st, &["SISMEMBER", "s", &m]), ":0\r\n");
    }
    assert_eq!(run(&mut st, &["SCARD", "s"]), ":180\r\n");
    let r = run(&mut st, &["SPOP", "s", "1000"]);
    assert_eq!(members_of(&r).len(), 180);
    assert_eq!(run(&mut st, &["EXISTS", "s"]), ":0\r\n");
}

#[test]
fn resp3_shapes() {
    let mut st = shard();
    run(&mut st, &["SADD", "s", "1", "2"]);
    let r3 = |st: &mut ShardState, p: &[&str]| run_proto(st, Proto::Resp3, p);
    assert_eq!(
        r3(&mut st, &["SMEMBERS", "s"]),
        "~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(r3(&mut st, &["SMEMBERS", "nosuch"]), "~0\r\n");
    assert_eq!(
        r3(&mut st, &["SINTER", "s", "s"]),
        "~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        r3(&mut st, &["SUNION", "s"]),
        "~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(r3(&mut st, &["SDIFF", "s", "s"]), "~0\r\n");
    assert_eq!(
        r3(&mut st, &["SMISMEMBER", "s", "1", "3"]),
        "*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        r3(&mut st, &["SRANDMEMBER", "s", "5"]),
        "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(r3(&mut st, &["SRANDMEMBER", "nosuch"]), "_\r\n");
    assert_eq!(r3(&mut st, &["SPOP", "nosuch", "3"]), "~0\r\n");
    assert_eq!(
        r3(&mut st, &["SPOP", "s", "5"]),
        "~2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
}

// ------------------------------------------------------ memory, lazy free

#[test]
fn big_set_memory_per_member() {
    let mut s = Set::new_for(b"member:0");
    let lim = SetLimits::default();
    for i in 0..100_000 {
        s.add(format!("member:{i}").as_bytes(), lim);
    }
    // Node: 6-byte link + 2 length bytes + 12..13 member bytes; buckets.
    let per = s.heap_bytes() as f64 / 100_000.0;
    assert!(per < 40.0, "{per} bytes a member");
}

#[test]
fn deleting_big_sets_is_deferred() {
    let mut st = shard();
    for i in 0..5000 {
        run(&mut st, &["SADD", "big", &format!("m{i}")]);
    }
    // 30000 integers: ~120 chunks of the integer form.
    let ints: Vec<String> = (0..30000).map(|i| (i * 3).to_string()).collect();
    for chunk in ints.chunks(1000) {
        let mut a = vec!["SADD", "bigints"];
        a.extend(chunk.iter().map(|s| s.as_str()));
        run(&mut st, &a);
    }
    run(&mut st, &["SADD", "small", "1"]);
    assert_eq!(run(&mut st, &["DEL", "big", "small", "bigints"]), ":3\r\n");
    assert_eq!(st.lazy_free_objects.len(), 2);
    let mut steps = 0;
    while !st.lazy_free_step(100) {
        steps += 1;
    }
    assert!(steps > 10, "{steps}");
}

// ------------------------------------------------------ the command table

/// Redis 7.0.15's COMMAND INFO for the set family and SORT (name, arity,
/// flags, legacy key range, ACL categories), recorded from a live server.
/// `movablekeys` (SINTERCARD, SORT, SORT_RO) is left out: the table derives
/// it from a custom key spec, as for LMPOP.
const REDIS_7_0: &[InfoRow] = &[
    (
        "sadd",
        -3,
        "write denyoom fast",
        (1, 1, 1),
        "write set fast",
    ),
    ("srem", -3, "write fast", (1, 1, 1), "write set fast"),
    ("smembers", 2, "readonly", (1, 1, 1), "read set slow"),
    ("sismember", 3, "readonly fast", (1, 1, 1), "read set fast"),
    (
        "smismember",
        -3,
        "readonly fast",
        (1, 1, 1),
        "read set fast",
    ),
    ("scard", 2, "readonly fast", (1, 1, 1), "read set fast"),
    ("spop", -2, "write fast", (1, 1, 1), "write set fast"),
    ("srandmember", -2, "readonly", (1, 1, 1), "read set slow"),
    ("smove", 4, "write fast", (1, 2, 1), "write set fast"),
    ("sinter", -2, "readonly", (1, -1, 1), "read set slow"),
    ("sintercard", -3, "readonly", (0, 0, 0), "read set slow"),
    ("sunion", -2, "readonly", (1, -1, 1), "read set slow"),
    ("sdiff", -2, "readonly", (1, -1, 1), "read set slow"),
    (
        "sinterstore",
        -3,
        "write denyoom",
        (1, -1, 1),
        "write set slow",
    ),
    (
        "sunionstore",
        -3,
        "write denyoom",
        (1, -1, 1),
        "write set slow",
    ),
    (
        "sdiffstore",
        -3,
        "write denyoom",
        (1, -1, 1),
        "write set slow",
    ),
    ("sscan", -3, "readonly", (1, 1, 1), "read set slow"),
    (
        "sort",
        -2,
        "write denyoom",
        (1, 1, 1),
        "write set sortedset list slow dangerous",
    ),
    (
        "sort_ro",
        -2,
        "readonly",
        (1, 1, 1),
        "read set sortedset list slow dangerous",
    ),
];

#[test]
fn command_info_matches_redis() {
    check_command_info(REDIS_7_0);
}

#[test]
fn key_positions_of_store_and_sort() {
    let pos = |parts: &[&str]| {
        let a = OwnedArgs::from_parts(parts.iter().map(|p| p.as_bytes()));
        let mut out = Vec::new();
        let r = lookup(parts[0].as_bytes())
            .unwrap()
            .key_positions(&a.args(), &mut out);
        r.map(|()| out.iter().map(|k| (k.index, k.write)).collect::<Vec<_>>())
    };
    assert_eq!(
        pos(&["SUNIONSTORE", "d", "a", "b"]),
        Ok(vec![(1, true), (2, false), (3, false)])
    );
    assert_eq!(
        pos(&["SMOVE", "a", "b", "m"]),
        Ok(vec![(1, true), (2, true)])
    );
    assert_eq!(
        pos(&["SINTERCARD", "2", "a", "b", "LIMIT", "1"]),
        Ok(vec![(2, false), (3, false)])
    );
    assert_eq!(
        pos(&["SINTERCARD", "3", "a", "b"]),
        Err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        pos(&["SINTERCARD", "0", "a"]),
        Err("ERR numkeys should be greater than 0")
    );
    // The last STORE wins; BY/GET/LIMIT arguments are skipped.
    assert_eq!(
        pos(&[
            "SORT", "k", "BY", "store", "GET", "store", "LIMIT", "0", "1", "STORE", "x", "STORE",
            "d"
        ]),
        Ok(vec![(1, false), (12, true)])
    );
    assert_eq!(pos(&["SORT", "k", "STORE"]), Ok(vec![(1, false)]));
    assert_eq!(pos(&["SORT_RO", "k", "STORE", "d"]), Ok(vec![(1, false)]));
}

#[test]
fn sort_end_to_end() {
    let mut st = shard();
    run(&mut st, &["RPUSH", "l", "3", "1", "2"]);
    assert_eq!(
        run(&mut st, &["SORT", "l"]),
        "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    run(&mut st, &["SADD", "s", "b", "a"]);
    assert_eq!(
        run(&mut st, &["SORT", "s", "ALPHA", "DESC"]),
        "*2\r\n$1\r\nb\r\n$1\r\na\r\n"
    );
    run(&mut st, &["SET", "w_a", "2"]);
    run(&mut st, &["SET", "w_b", "1"]);
    run(&mut st, &["HSET", "h_a", "f", "x"]);
    assert_eq!(
        run(
            &mut st,
            &["SORT", "s", "BY", "w_*", "GET", "#", "GET", "h_*->f"]
        ),
        "*4\r\n$1\r\nb\r\n$-1\r\n$1\r\na\r\n$1\r\nx\r\n"
    );
    assert_eq!(
        run(&mut st, &["SORT", "s", "BY", "w_*", "STORE", "d"]),
        ":2\r\n"
    );
    assert_eq!(
        run(&mut st, &["LRANGE", "d", "0", "-1"]),
        "*2\r\n$1\r\nb\r\n$1\r\na\r\n"
    );
    assert_eq!(
        run(&mut st, &["SORT", "s"]),
        "-ERR One or more scores can't be converted into double\r\n"
    );
    // A pattern key on a slot this shard does not own is refused.
    let mut part = ShardState::new(
        0,
        ShardConfig::default(),
        vec![tessera_shard::slot::key_slot(b"s")],
    );
    run(&mut part, &["SADD", "s", "1"]);
    let r = run(&mut part, &["SORT", "s", "BY", "w_*"]);
    assert!(
        r.starts_with("-ERR SORT BY/GET pattern key is owned by another shard"),
        "{r}"
    );
    assert_eq!(
        run(&mut part, &["SORT", "s", "BY", "nosort"]),
        "*1\r\n$1\r\n1\r\n"
    );
    // Foreign keys the gather step borrowed are seen, present or missing;
    // one that was not borrowed is still refused.
    part.borrowed_keys.insert(b"w_1".to_vec());
    part.borrowed_keys.insert(b"h_1".to_vec());
    assert_eq!(
        run(&mut part, &["SORT", "s", "BY", "w_*", "GET", "h_*->f"]),
        "*1\r\n$-1\r\n"
    );
    run(&mut part, &["SADD", "s", "2"]);
    let r = run(&mut part, &["SORT", "s", "BY", "w_*"]);
    assert!(r.starts_with("-ERR SORT BY/GET pattern key"), "{r}");
    part.borrowed_keys.clear();
}

#[test]
fn sort_pattern_keys() {
    let keys = |st: &mut ShardState, parts: &[&str]| {
        let a = OwnedArgs::from_parts(parts.iter().map(|p| p.as_bytes()));
        let reads = sort::pattern_reads(&parts[0].to_ascii_lowercase(), &a.args())?;
        let mut k = reads.keys(st, 0, 1_000_000)?;
        k.sort();
        Some(k)
    };
    let s = |v: &[&str]| Some(v.iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>());
    // No pattern that reads keys: nothing to learn.
    let mut st = shard();
    run(&mut st, &["RPUSH", "l", "1", "2"]);
    assert_eq!(keys(&mut st, &["SORT", "l"]), None);
    assert_eq!(
        keys(&mut st, &["SORT", "l", "BY", "nosort", "GET", "#"]),
        None
    );
    assert_eq!(keys(&mut st, &["SORT", "l", "LIMIT", "x"]), None);
    // All owned by this shard: SORT runs here, nothing to gather.
    assert_eq!(keys(&mut st, &["SORT", "l", "BY", "w_*"]), s(&[]));
    // A shard owning only the sorted key: every pattern key, deduplicated.
    let mut part = ShardState::new(
        0,
        ShardConfig::default(),
        vec![tessera_shard::slot::key_slot(b"l")],
    );
    run(&mut part, &["RPUSH", "l", "1", "2", "1"]);
    assert_eq!(
        keys(
            &mut part,
            &["SORT", "l", "BY", "w_*", "GET", "#", "GET", "h_*->f", "GET", "nostar"]
        ),
        s(&["h_1", "h_2", "w_1", "w_2"])
    );
    assert_eq!(
        keys(&mut part, &["SORT_RO", "l", "BY", "nosort", "GET", "n_*"]),
        s(&["n_1", "n_2"])
    );
    assert_eq!(keys(&mut part, &["SORT", "nosuch", "GET", "n_*"]), s(&[]));
    run(&mut part, &["SET", "l2", "x"]);
    // A sorted key SORT refuses: nothing to learn (SORT replies WRONGTYPE).
    assert_eq!(keys(&mut part, &["SORT", "l2", "GET", "n_*"]), None);
    // Too many to gather: None, and SORT refuses a foreign key it reaches.
    let n = sort::MAX_PATTERN_KEYS + 1;
    let elems: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut push = vec!["RPUSH", "big"];
    push.extend(elems.iter().map(String::as_str));
    run(&mut st, &push);
    assert_eq!(keys(&mut st, &["SORT", "big", "GET", "n_*"]), s(&[]));
    let mut part = ShardState::new(
        0,
        ShardConfig::default(),
        vec![tessera_shard::slot::key_slot(b"big")],
    );
    run(&mut part, &push);
    assert_eq!(keys(&mut part, &["SORT", "big", "GET", "n_*"]), None);
    // BY reads no keys: the order is known, only LIMIT's range counts.
    assert_eq!(
        keys(&mut part, &["SORT", "big", "GET", "n_*", "LIMIT", "0", "2"]),
        s(&["n_0", "n_1"])
    );
    assert_eq!(
        keys(
            &mut part,
            &["SORT", "big", "BY", "nosort", "DESC", "LIMIT", "1", "1", "GET", "n_*"]
        ),
        s(&["n_4095"])
    );
    assert_eq!(
        keys(
            &mut part,
            &["SORT", "big", "BY", "w_*", "GET", "n_*", "LIMIT", "0", "2"]
        ),
        None
    );
}
