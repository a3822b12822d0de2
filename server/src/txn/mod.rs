//! The coordinator: how a connection's requests are routed, split and
//! gathered across shards (`route`, `gather`), and how commands and
//! transactions that touch several shards are made atomic (`locks`,
//! `multi`, `watch`). docs/transactions.md explains the design.
//!
//! The connection (conn.rs) owns the socket, the parser and the order of
//! replies; everything here decides where a request runs and under which
//! locks.

pub mod block;
pub mod gather;
pub mod locks;
pub mod multi;
pub mod route;
pub mod watch;

use std::collections::BTreeMap;
use std::rc::Rc;

use tessera_protocol::Args;
use tessera_shard::changes::Watcher;
use tessera_shard::command::{flags, CommandSpec, KeyPos, Route};
use tessera_shard::slot::key_slot;

pub use locks::{LockSet, LockTable, Mode, TxId};

use crate::mesh::{Answer, Request};
use crate::runtime::ShardRuntime;

/// The watched keys of one shard that an EXEC checks once it holds them.
#[derive(Clone)]
pub struct WatchCheck {
    pub who: Watcher,
    pub keys: Vec<(usize, Vec<u8>)>,
}

/// The locks one command needs on one shard, for its keys there (None: it
/// touches no key, so no transaction can be in its way). MOVE and COPY
/// can write a key of another database: they lock the shard whole. A read
/// fan-out's part (DBSIZE, KEYS) reads the whole shard, shared: it waits
/// for the transactions holding keys there, so it never sees one half
/// done on its shard.
pub fn command_locks(
    spec: &CommandSpec,
    args: &Args,
    db: usize,
    keypos: &mut Vec<KeyPos>,
) -> Option<LockSet> {
    let mut set = LockSet::default();
    match spec.route {
        Route::Keyed(..) if matches!(spec.name, "move" | "copy") => set.add_whole(Mode::Exclusive),
        Route::Keyed(..) => {
            if spec.key_positions(args, keypos).is_err() || keypos.is_empty() {
                return None;
            }
            for k in keypos.iter() {
                set.add(db, args.get(k.index), Mode::of(k.write));
            }
        }
        Route::Fanout(..) => set.add_whole(Mode::of(spec.has(flags::WRITE))),
        Route::Local(_) | Route::Conn => return None,
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

/// Takes every lock of `plan`.
///
/// First, when the plan spans several shards, optimistically: every shard
/// is asked at once and grants now or refuses, leaving nothing queued, so
/// a transaction that meets no conflict pays one round trip in all. If any
/// shard refused, what was granted is given back and the locks are taken
/// in order, shard after shard in ascending id: each shard grants all of
/// its part in one step or queues it whole, so a transaction waits holding
/// only locks of lower shards, and no cycle of waits can form (a refused
/// try never waits, so it is in no cycle either). `watch` (per shard) is
/// checked by each shard as it grants. Err: a shard did not answer
/// (shutdown).
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
    if plan.len() > 1 && try_all(rt, &plan, &watch, &mut guard).await? {
        return Ok(guard);
    }
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
                    try_only: false,
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

/// The optimistic first try: true when every shard granted. Otherwise
/// the shards that granted are released (the ordered path follows, with
/// the same id: its requests arrive after the releases on each ring).
async fn try_all(
    rt: &Rc<ShardRuntime>,
    plan: &Plan,
    watch: &BTreeMap<usize, WatchCheck>,
    guard: &mut TxGuard,
) -> Result<bool, ()> {
    let tx = guard.tx;
    let mut all = true;
    let mut waits = Vec::with_capacity(plan.len());
    for (&shard, set) in plan {
        // Every shard asked is in the guard, granted or not: releasing one
        // that refused is harmless, and one answered late is still freed.
        guard.shards.push(shard);
        if shard == rt.id {
            all &= rt.try_lock_here(tx, set.clone(), watch.get(&shard));
            continue;
        }
        let ticket = rt.tickets.open();
        rt.send_now(
            shard,
            Request::Lock {
                ticket,
                tx,
                set: set.clone(),
                watch: watch.get(&shard).cloned(),
                try_only: true,
            },
        );
        waits.push(ticket);
    }
    for ticket in waits {
        match rt.tickets.wait(ticket).await {
            Answer::Call(v) => all &= v.downcast::<bool>().is_ok_and(|granted| *granted),
            // The guard releases what was granted.
            _ => return Err(()),
        }
    }
    if !all {
        for s in guard.shards.drain(..) {
            rt.release_on(s, tx);
        }
    }
    Ok(all)
}
