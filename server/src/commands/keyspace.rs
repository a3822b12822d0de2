//! SCAN, RANDOMKEY and DEBUG: commands that walk every shard's keys.

use rand::{Rng, SeedableRng};
use tessera_protocol::{Args, Reply};
use tessera_shard::slot::{key_slot, SLOTS};
use tessera_shard::util::{eq_ic, parse_i64_strict};

use crate::conn::Conn;
use crate::runtime::{slot_ranges, ShardRuntime};

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
///
/// The cursor is the next slot to visit. A call scans whole slots of one
/// shard, in slot order, until COUNT keys were examined: every key that
/// exists for the whole iteration is returned (exactly once, as slots never
/// split between calls), whatever else happens meanwhile.
pub async fn scan(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    let Some(cursor) = std::str::from_utf8(args.get(1))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return Reply::new(&mut conn.wbuf, proto).error("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<Vec<u8>> = None;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error");
        }
        let (opt, val) = (args.get(i), args.get(i + 1));
        if eq_ic(opt, b"COUNT") {
            match parse_i64_strict(val) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error"),
                None => {
                    return Reply::new(&mut conn.wbuf, proto)
                        .error("ERR value is not an integer or out of range")
                }
            }
        } else if eq_ic(opt, b"MATCH") {
            pattern = Some(val.to_vec());
        } else if eq_ic(opt, b"TYPE") {
            type_filter = Some(val.to_vec());
        } else {
            return Reply::new(&mut conn.wbuf, proto).error("ERR syntax error");
        }
        i += 2;
    }
    if cursor >= SLOTS as u64 {
        let mut r = Reply::new(&mut conn.wbuf, proto);
        r.array(2);
        r.bulk(b"0");
        r.array(0);
        return;
    }
    // One call walks on to the next shards while COUNT is not used up,
    // so a small keyspace is scanned in one call ending with cursor 0, as
    // Redis's is, and SCAN TYPE / MATCH see every shard in the first pages.
    let db = conn.db;
    let ranges = slot_ranges(conn.rt.nshards());
    let mut slot = cursor as u16;
    let mut budget = count;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let next = loop {
        let owner = conn.rt.shared.owner(slot);
        let end = ranges[owner].end as u16;
        let (pattern, type_filter) = (pattern.clone(), type_filter.clone());
        let got = conn
            .rt
            .call(
                owner,
                Box::new(move |rt: &ShardRuntime| {
                    let mut st = rt.state.borrow_mut();
                    let now = tessera_shard::util::now_ms();
                    let (next, keys) = tessera_shard::command::keys::scan_slots(
                        &mut st,
                        db,
                        slot,
                        end,
                        budget,
                        pattern.as_deref(),
                        type_filter.as_deref(),
                        now,
                    );
                    // The keys this call went over, matching or not.
                    let st = &mut *st;
                    let owned = &st.owned_slots;
                    let examined: usize = st.keyspace.db_if_exists(db).map_or(0, |d| {
                        owned
                            .iter()
                            .filter(|&&s| s >= slot && s < next)
                            .map(|&s| d.slot(s).len())
                            .sum()
                    });
                    Box::new((next, keys, examined))
                }),
            )
            .await
            .and_then(|b| b.downcast::<(u16, Vec<Vec<u8>>, usize)>().ok());
        let Some(got) = got else {
            return Reply::new(&mut conn.wbuf, proto).error("ERR shard unavailable");
        };
        let (next, got, examined) = *got;
        keys.extend(got);
        if next < end {
            break next as u64;
        }
        if end as usize >= SLOTS {
            break 0;
        }
        budget = budget.saturating_sub(examined);
        if budget == 0 {
            break end as u64;
        }
        slot = end;
    };
    let mut r = Reply::new(&mut conn.wbuf, proto);
    r.array(2);
    r.bulk(next.to_string().as_bytes());
    r.array(keys.len());
    for k in keys {
        r.bulk(&k);
    }
}

/// RANDOMKEY: each shard offers a random key and its key count; one is
/// picked with probability proportional to the counts.
pub async fn randomkey(conn: &mut Conn) {
    let db = conn.db;
    let offers = conn
        .rt
        .call_all(|| {
            Box::new(move |rt: &ShardRuntime| {
                let mut st = rt.state.borrow_mut();
                let now = tessera_shard::util::now_ms();
                let owned = st.owned_slots.clone();
                let mut rng = rand::rngs::SmallRng::from_rng(&mut st.rng);
                let Some(d) = st.keyspace.db_if_exists(db) else {
                    return (0usize, None);
                };
                let n = d.len();
                (n, d.random_key(&owned, now, &mut rng))
            })
        })
        .await;
    let offers: Vec<(usize, Vec<u8>)> = offers
        .into_iter()
        .flatten()
        .filter_map(|(n, k)| k.map(|k| (n, k)))
        .collect();
    let total: usize = offers.iter().map(|(n, _)| n).sum();
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    if total == 0 {
        return r.null();
    }
    let mut pick = conn.rt.state.borrow_mut().rng.random_range(0..total);
    for (n, k) in &offers {
        if pick < *n {
            return r.bulk(k);
        }
        pick -= n;
    }
    r.null()
}

const DEBUG_HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "SHARD",
    "    Return the id of the shard this connection lives on (Tessera only).",
    "HELP",
    "    Print this help.",
];

/// DEBUG POPULATE count [prefix] [size], DEBUG SHARD and DEBUG HELP.
pub async fn debug(conn: &mut Conn, args: Args<'_>) {
    let proto = conn.proto;
    if eq_ic(args.get(1), b"SHARD") && args.len() == 2 {
        // Tests place connections on chosen shards with it.
        return Reply::new(&mut conn.wbuf, proto).int(conn.rt.id as i64);
    }
    // DEBUG SHARD above is Tessera's own placement probe (tests use it):
    // the rest follows `enable-debug-command` as Redis does.
    if !super::debug::allowed(conn) {
        return;
    }
    if super::debug::run(conn, &args).await {
        return;
    }
    if eq_ic(args.get(1), b"RELOAD") {
        return crate::persist::debug_reload(conn, args).await;
    }
    if eq_ic(args.get(1), b"HELP") {
        let mut r = Reply::new(&mut conn.wbuf, proto);
        r.array(DEBUG_HELP.len());
        for l in DEBUG_HELP {
            r.simple(l);
        }
        return;
    }
    if !eq_ic(args.get(1), b"POPULATE") || !(3..=5).contains(&args.len()) {
        let msg = tessera_shard::command::subcommand_syntax_error("debug", args.get(1));
        return Reply::new(&mut conn.wbuf, proto).error_bytes(&msg);
    }
    let count = match parse_i64_strict(args.get(2)) {
        Some(n) if n >= 0 => n as u64,
        _ => {
            return Reply::new(&mut conn.wbuf, proto)
                .error("ERR value is out of range, must be positive")
        }
    };
    let prefix = if args.len() >= 4 {
        args.get(3).to_vec()
    } else {
        b"key".to_vec()
    };
    let size = if args.len() == 5 {
        match parse_i64_strict(args.get(4)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => {
                return Reply::new(&mut conn.wbuf, proto)
                    .error("ERR value is out of range, must be positive")
            }
        }
    } else {
        None
    };
    let db = conn.db;
    let _ = conn
        .rt
        .call_all(|| {
            let prefix = prefix.clone();
            Box::new(move |rt: &ShardRuntime| populate(rt, db, count, &prefix, size))
        })
        .await;
    Reply::new(&mut conn.wbuf, proto).ok();
}

/// This shard's share of DEBUG POPULATE: the keys whose slots it owns.
fn populate(rt: &ShardRuntime, db: usize, count: u64, prefix: &[u8], size: Option<usize>) {
    let mut st = rt.state.borrow_mut();
    let now = tessera_shard::util::now_ms();
    let me = rt.id;
    let d = st.keyspace.db(db);
    let mut key = Vec::with_capacity(prefix.len() + 24);
    let mut val = Vec::new();
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        if rt.shared.owner(key_slot(&key)) != me || d.contains(&key, now) {
            continue;
        }
        val.clear();
        val.extend_from_slice(b"value:");
        val.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        if let Some(sz) = size {
            val.resize(sz, 0);
        }
        d.set_string(&key, &val, None, false, now);
    }
}
