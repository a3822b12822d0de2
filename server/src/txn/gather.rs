//! The cross-shard step: a command whose keys live on several shards and
//! that cannot be split (RENAME, COPY, MSETNX, LCS, SMOVE, SUNIONSTORE...)
//! runs here, on the connection's shard, after borrowing the other shards'
//! keys:
//!
//! 1. every foreign key's entries (in every database) are copied here;
//! 2. they are put into this shard's tables, the command runs exactly as it
//!    would with all keys local, and they are taken out again at once, with
//!    no await in between, so no other client ever sees them here;
//! 3. each key the command may write goes back to its owner: the new entry,
//!    or a delete if the command removed it. Keys only read go nowhere.
//!
//! A command may also read keys that are not among its arguments: SORT's
//! BY/GET patterns name keys computed from the sorted key's elements.
//! `sort_pattern_keys` asks the sorted key's shard which keys those are,
//! and `run` borrows them (read-only) with the command's own keys. The
//! running shard is told which foreign keys were borrowed
//! (`ShardState::borrowed_keys`), so that SORT reads a borrowed key that
//! does not exist as missing, and still refuses one that was not borrowed.
//!
//! The coordinator runs all three steps holding the intent locks of every
//! key involved on every owner (`super::acquire`), so no other client sees
//! or changes a key between the steps: the command is atomic, as in Redis.

use std::collections::BTreeMap;

use tessera_protocol::{Args, Reply};
use tessera_shard::changes::write_changed;
use tessera_shard::command::sort::PatternReads;
use tessera_shard::command::{CommandSpec, KeyPos};
use tessera_shard::slot::key_slot;
use tessera_shard::store::Entry;

use crate::conn::Conn;
use crate::exec::execute;
use crate::runtime::ShardRuntime;

/// Entries of one key in each database where it exists.
type Borrowed = Vec<(usize, Vec<u8>, Entry)>;
/// What goes back to one owner: per database and key, the new entry, or
/// None for a delete.
type Written = Vec<(usize, Vec<u8>, Option<Entry>)>;

pub async fn run(
    conn: &mut Conn,
    spec: &'static CommandSpec,
    id: u16,
    args: Args<'_>,
    keypos: &[KeyPos],
    extra_reads: &[Vec<u8>],
) {
    let rt = conn.rt.clone();
    let me = rt.id;
    // Foreign keys by owner shard (deduplicated), with "may be written":
    // the command's own keys, then the other keys it only reads.
    let mut by_shard: BTreeMap<usize, Vec<(Vec<u8>, bool)>> = BTreeMap::new();
    for k in keypos {
        let key = args.get(k.index);
        let owner = rt.shared.owner(key_slot(key));
        if owner == me {
            continue;
        }
        let keys = by_shard.entry(owner).or_default();
        match keys.iter_mut().find(|(kk, _)| kk.as_slice() == key) {
            Some(e) => e.1 |= k.write,
            None => keys.push((key.to_vec(), k.write)),
        }
    }
    // `extra_reads` are distinct (no quadratic search through them): only
    // the command's own keys can repeat one, and then the key is there.
    for key in extra_reads {
        let owner = rt.shared.owner(key_slot(key));
        if owner == me || keypos.iter().any(|k| args.get(k.index) == key.as_slice()) {
            continue;
        }
        by_shard
            .entry(owner)
            .or_default()
            .push((key.clone(), false));
    }

    // Step 1: borrow copies of the foreign keys.
    let mut borrowed: Borrowed = Vec::new();
    for (&shard, keys) in &by_shard {
        let names: Vec<Vec<u8>> = keys.iter().map(|(k, _)| k.clone()).collect();
        let got = rt
            .call(
                shard,
                Box::new(move |rt: &ShardRuntime| {
                    let mut st = rt.state.borrow_mut();
                    let now = tessera_shard::util::now_ms();
                    let mut out: Borrowed = Vec::new();
                    let ndb = st.keyspace.databases();
                    for db in 0..ndb {
                        let Some(d) = st.keyspace.db_if_exists(db) else {
                            continue;
                        };
                        for k in &names {
                            if let Some(e) = d.get_quiet(k, now) {
                                out.push((db, k.clone(), e.clone()));
                            }
                        }
                    }
                    // A borrowed key found expired: its DEL goes to the AOF
                    // now, before the command's record.
                    tessera_shard::aof::log_expired(&mut st);
                    drop(st);
                    crate::persist::aof::flush_shard(rt);
                    Box::new(out)
                }),
            )
            .await;
        match got.and_then(|b| b.downcast::<Borrowed>().ok()) {
            Some(b) => borrowed.extend(*b),
            None => {
                Reply::new(&mut conn.wbuf, conn.proto).error("ERR shard unavailable");
                return;
            }
        }
    }

    // Step 2: run here with the borrowed keys in place.
    let now = tessera_shard::util::now_ms();
    let mut results: BTreeMap<usize, Written> = BTreeMap::new();
    {
        let mut st = rt.state.borrow_mut();
        for (db, _k, e) in borrowed {
            st.keyspace.db(db).insert(e, now);
        }
        st.borrowed_keys
            .extend(by_shard.values().flatten().map(|(k, _)| k.clone()));
        let reply_at = conn.wbuf.len();
        // Under the transaction's locks: its AOF record is the
        // transaction's (`commit_aof`).
        st.aof.capture = st.aof.on;
        execute(
            &mut st,
            id,
            args,
            conn.db,
            conn.proto,
            now,
            true,
            &mut conn.wbuf,
        );
        if st.slowlog.unresolved {
            crate::commands::slowlog::claim_for(&mut st, &conn.meta.borrow());
        }
        st.borrowed_keys.clear();
        // A command that changed nothing (an error, RENAMENX refused...)
        // sends nothing back: the owners' keys are as they were, and
        // locked.
        let changed = write_changed(spec.name, &conn.wbuf[reply_at..]);
        let ndb = st.keyspace.databases();
        for (&shard, keys) in &by_shard {
            for (key, write) in keys {
                for db in 0..ndb {
                    let Some(d) = st.keyspace.db_if_exists(db) else {
                        continue;
                    };
                    let e = d.remove(key, now);
                    if *write && changed {
                        results.entry(shard).or_default().push((db, key.clone(), e));
                    }
                }
            }
        }
    }
    conn.take_aof();

    // Step 3: written keys go back to their owners, which
    // report them to their change hook (the command ran here, where their
    // watchers are not). COPY ... DB may have written another database.
    let name = spec.name;
    let report_db = if name == "copy" { None } else { Some(conn.db) };
    for (shard, writes) in results {
        let _ = rt
            .call(
                shard,
                Box::new(move |rt: &ShardRuntime| {
                    let mut st = rt.state.borrow_mut();
                    let now = tessera_shard::util::now_ms();
                    for (db, key, e) in writes {
                        if st.changes.active() && report_db.is_none_or(|d| d == db) {
                            st.changes.key(db, &key, name);
                        }
                        match e {
                            Some(e) => {
                                st.keyspace.db(db).insert(e, now);
                            }
                            None => {
                                if let Some(d) = st.keyspace.db_if_exists(db) {
                                    d.remove(&key, now);
                                }
                            }
                        }
                    }
                    // Replacing an old entry is not an expiry to log: the
                    // command's record already says what the key became.
                    if st.aof.on && st.changes.notify == 0 {
                        st.keyspace.take_expired();
                    }
                    drop(st);
                    rt.after_writes();
                    Box::new(())
                }),
            )
            .await;
    }
    rt.after_writes();
}

/// SORT/SORT_RO whose BY/GET patterns read keys: the distinct keys they
/// would read, computed on the sorted key's shard (`PatternReads::keys`).
/// Empty: that shard owns them all and can run SORT alone. None: too many
/// to gather, or the shard is unavailable; SORT then runs as without this
/// step (and refuses a foreign pattern key it reaches).
pub async fn sort_pattern_keys(conn: &Conn, reads: PatternReads) -> Option<Vec<Vec<u8>>> {
    let rt = conn.rt.clone();
    let owner = rt.shared.owner(key_slot(reads.key()));
    let db = conn.db;
    let got = rt
        .call(
            owner,
            Box::new(move |rt: &ShardRuntime| {
                let mut st = rt.state.borrow_mut();
                let now = tessera_shard::util::now_ms();
                Box::new(reads.keys(&mut st, db, now))
            }),
        )
        .await?;
    *got.downcast::<Option<Vec<Vec<u8>>>>().ok()?
}
