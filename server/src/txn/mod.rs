//! The coordinator: how a connection's requests are routed, split and
//! gathered across shards (`route`, `gather`), and how commands and
//! transactions that touch several shards are made atomic (`locks`,
//! `multi`, `watch`). docs/transactions.md explains the design.
//!
//! The connection (conn.rs) owns the socket, the parser and the order of
//! replies; everything here decides where a request runs and under which
//! locks.

pub mod gather;
pub mod locks;
pub mod multi;
pub mod route;
pub mod watch;

use std::collections::BTreeMap;
use std::rc::Rc;

use tessera_protocol::Args;
use tessera_shard::changes::Watcher;
use tessera_shard::command::{table, KeyPos, Route};
use tessera_shard::slot::key_slot;

pub use locks::{LockSet, LockTable, Mode, TxId};

use crate::mesh::{Answer, Request};
use crate::runtime::ShardRuntime;

/// The watched keys of one shard that an EXEC checks once it holds them.
pub struct WatchCheck {
    pub who: Watcher,
    pub keys: Vec<(usize, Vec<u8>)>,
}

/// The locks a single forwarded or local command needs on its shard
/// (None: it touches no key, so no transaction can be in its way).
pub fn item_locks(cmd: u16, args: &Args, db: usize, keypos: &mut Vec<KeyPos>) -> Option<LockSet> {
    let spec = table::by_id(cmd);
    let mut set = LockSet::default();
    match spec.route {
        Route::Keyed(..) => {
            if spec.key_positions(args, keypos).is_err() || keypos.is_empty() {
                return None;
            }
            for k in keypos.iter() {
                set.add(db, args.get(k.index), Mode::of(k.write));
            }
        }
        // The parts of fan-outs that write (FLUSHALL...) run locked by
        // their coordinator; read fan-outs (DBSIZE, KEYS) and keyless
        // commands take no lock.
        _ => return None,
    }
    Some(set)
}

/// Locks held by one transaction on the shards it asked; dropping it
/// releases them all (also when the connection goes away mid-way, or a
/// command panics), and withdraws requests still queued.
pub struct TxGuard {
    rt: Rc<ShardRuntime>,
    pub tx: TxId,
    shards: Vec<usize>,
}

impl Drop for TxGuard {
    fn drop(&mut self) {
        for &s in &self.shards {
            self.rt.release_on(s, self.tx);
        }
    }
}

/// Per shard, what a transaction locks there; ordered by shard id, the
/// order in which every transaction asks (so none can deadlock).
pub type Plan = BTreeMap<usize, LockSet>;

/// Adds a key to a plan, on the shard that owns it.
pub fn plan_key(rt: &ShardRuntime, plan: &mut Plan, db: usize, key: &[u8], mode: Mode) {
    let owner = rt.shared.owner(key_slot(key));
    plan.entry(owner).or_default().add(db, key, mode);
}

/// Takes every lock of `plan`, shard after shard in ascending order: each
/// shard grants all of its part in one step or queues it whole, so a
/// transaction waits holding only locks of lower shards, and no cycle of
/// waits can form. `watch` (per shard) is checked by each shard as it
/// grants. Err: a shard did not answer (shutdown).
pub async fn acquire(
    rt: &Rc<ShardRuntime>,
    plan: Plan,
    mut watch: BTreeMap<usize, WatchCheck>,
) -> Result<TxGuard, ()> {
    let tx = rt.next_tx();
    let mut guard = TxGuard {
        rt: rt.clone(),
        tx,
        shards: Vec::with_capacity(plan.len()),
    };
    for (shard, set) in plan {
        let check = watch.remove(&shard);
        let ticket = rt.tickets.open();
        guard.shards.push(shard);
        if shard == rt.id {
            if let Some(granted) = rt.lock_here(tx, set, ticket, check) {
                rt.tickets.cancel(ticket);
                if let Some(w) = granted {
                    rt.check_watch(&w);
                }
                continue;
            }
        } else {
            rt.send_now(
                shard,
                Request::Lock {
                    ticket,
                    tx,
                    set,
                    watch: check,
                },
            );
        }
        match rt.tickets.wait(ticket).await {
            Answer::Call(_) => {}
            _ => return Err(()),
        }
    }
    Ok(guard)
}
