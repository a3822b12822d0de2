//! WATCH and UNWATCH: a connection's watched keys are registered with the
//! change hook of the shards that own them (`tessera_shard::changes`);
//! any write reported there marks the connection's shared `WatchState`
//! dirty, and EXEC then fails. Registrations go when the set is dropped
//! (EXEC, DISCARD, UNWATCH, RESET, or the connection closing).

use std::collections::BTreeMap;
use std::rc::Rc;

use tessera_protocol::{Args, Reply};
use tessera_shard::changes::Watcher;
use tessera_shard::slot::key_slot;

use crate::conn::Conn;
use crate::mesh::Request;
use crate::runtime::ShardRuntime;

/// The keys one connection watches: (owner shard, database, key).
pub struct WatchSet {
    rt: Rc<ShardRuntime>,
    pub who: Watcher,
    pub keys: Vec<(usize, usize, Vec<u8>)>,
}

impl WatchSet {
    /// The watched keys of each shard, as that shard's EXEC check wants them.
    pub fn checks(&self) -> BTreeMap<usize, super::WatchCheck> {
        let mut out: BTreeMap<usize, super::WatchCheck> = BTreeMap::new();
        for (shard, db, key) in &self.keys {
            out.entry(*shard)
                .or_insert_with(|| super::WatchCheck {
                    who: self.who.clone(),
                    keys: Vec::new(),
                })
                .keys
                .push((*db, key.clone()));
        }
        out
    }
}

impl Drop for WatchSet {
    fn drop(&mut self) {
        let mut by_shard: BTreeMap<usize, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
        for (shard, db, key) in self.keys.drain(..) {
            by_shard.entry(shard).or_default().push((db, key));
        }
        for (shard, keys) in by_shard {
            let who = self.who.clone();
            let forget = move |rt: &ShardRuntime| {
                let mut st = rt.state.borrow_mut();
                for (db, key) in &keys {
                    st.changes.unwatch(*db, key, &who);
                }
            };
            if shard == self.rt.id {
                forget(&self.rt);
            } else {
                self.rt.send_now(shard, Request::Do(Box::new(forget)));
            }
        }
    }
}

/// WATCH key [key ...]
pub async fn watch(conn: &mut Conn, args: Args<'_>) {
    if conn.co.multi.is_some() {
        return conn.local_error("ERR WATCH inside MULTI is not allowed");
    }
    let rt = conn.rt.clone();
    let db = conn.db;
    let set = conn.co.watching.get_or_insert_with(|| WatchSet {
        rt: rt.clone(),
        who: Watcher::default(),
        keys: Vec::new(),
    });
    let who = set.who.clone();
    let mut by_shard: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
    for key in args.iter().skip(1) {
        let shard = rt.shared.owner(key_slot(key));
        if set
            .keys
            .iter()
            .any(|(s, d, k)| *s == shard && *d == db && k.as_slice() == key)
        {
            continue;
        }
        set.keys.push((shard, db, key.to_vec()));
        by_shard.entry(shard).or_default().push(key.to_vec());
    }
    // Registered on every owner before +OK: a write that another client
    // makes after our reply is seen.
    for (shard, keys) in by_shard {
        let who = who.clone();
        let register = move |rt: &ShardRuntime| -> Box<dyn std::any::Any + Send> {
            let mut st = rt.state.borrow_mut();
            let now = tessera_shard::util::now_ms();
            for key in &keys {
                let existed = st.keyspace.exists(db, key, now);
                st.changes.watch(db, key, &who, existed);
            }
            Box::new(())
        };
        if rt.call(shard, Box::new(register)).await.is_none() {
            return conn.local_error("ERR shard unavailable");
        }
    }
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// UNWATCH
pub fn unwatch(conn: &mut Conn) {
    conn.co.watching = None;
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}
