//! Serving clients blocked on this shard's keys (BLPOP, BZPOPMIN,
//! BLMOVE...), on the shard's own thread.
//!
//! A write that touches a key someone waits for marks it ready through the
//! change hook (`tessera_shard::blocking`). Whoever ran the write calls
//! `serve_ready` right after it, before anything else runs on this shard,
//! so a pushed element a client waits for is taken by that client before
//! any other command sees the key (Redis's guarantee). A key that a
//! transaction holds is served when the transaction releases it (its
//! writes, MULTI/EXEC's included, are then all done, as Redis serves after
//! EXEC). Waiters are served in arrival order, each by re-running its
//! command on the ready key alone; the reply goes to the ticket its
//! connection waits on, on whatever shard it lives.

use std::sync::Arc;

use tessera_protocol::{OwnedArgs, Proto, Reply};
use tessera_shard::blocking::{Waiter, WaitsFor};
use tessera_shard::command::blocking::{can_serve, move_ends};
use tessera_shard::command::{table, Ctx};
use tessera_shard::slot::key_slot;

use crate::exec::{execute, execute_may_block};
use crate::mesh::{Answer, Request, Response};
use crate::runtime::ShardRuntime;
use crate::txn::{LockSet, Mode};

/// What trying a blocking command on a shard did.
pub enum Tried {
    /// It was served (or failed): its reply.
    Replied(Vec<u8>),
    /// Nothing could serve it (and it is registered, when asked to be).
    Blocked,
    /// A transaction holds its keys here: take the locks, then try again.
    Busy,
}

impl ShardRuntime {
    /// What follows the writes just run, before anything else runs on
    /// this shard: serving the clients they made ready, then publishing
    /// their keyspace notifications (`crate::notices`). One branch while
    /// neither is pending.
    #[inline]
    pub fn after_writes(&self) {
        if self.state.borrow().changes.pending() {
            self.serve_ready_keys();
            self.publish_notices();
            self.deliver_invalidations();
        }
    }

    #[cold]
    fn serve_ready_keys(&self) {
        // Serving is itself a write (a pop, BLMOVE's push) that can make
        // keys ready again: go on until none is, keeping aside those a
        // transaction holds (served at its release).
        let mut held = Vec::new();
        loop {
            let ready = self.state.borrow_mut().changes.blocked.take_ready();
            if ready.is_empty() {
                break;
            }
            for (db, key) in ready {
                if self.key_held(db, &key) {
                    held.push((db, key));
                } else {
                    self.serve_key(db, &key);
                }
            }
        }
        let mut st = self.state.borrow_mut();
        for (db, key) in held {
            st.changes.blocked.defer(db, &key);
        }
    }

    /// Whether a transaction holds (or waits for) `key` here.
    fn key_held(&self, db: usize, key: &[u8]) -> bool {
        if self.locks_idle() {
            return false;
        }
        let mut set = LockSet::default();
        set.add(db, key, Mode::Exclusive);
        !self.locks.borrow().grantable(&set)
    }

    /// Serves the waiters of one key, first come first served, while the
    /// key holds what they wait for.
    fn serve_key(&self, db: usize, key: &[u8]) {
        loop {
            let now = tessera_shard::util::now_ms();
            let w = {
                let mut st = self.state.borrow_mut();
                let mut ctx = Ctx::new(&mut st, db, now);
                let t = if can_serve(&mut ctx, key, WaitsFor::List) {
                    WaitsFor::List
                } else if can_serve(&mut ctx, key, WaitsFor::Zset) {
                    WaitsFor::Zset
                } else {
                    return;
                };
                match st.changes.blocked.first_for(db, key, t) {
                    Some(w) => w,
                    None => return,
                }
            };
            if !w.state.claim() {
                // Served by another shard, timed out or unblocked since.
                self.state
                    .borrow_mut()
                    .changes
                    .blocked
                    .unregister(&w, &w.keys);
                continue;
            }
            self.state
                .borrow_mut()
                .changes
                .blocked
                .unregister(&w, &w.keys);
            self.serve(&w, key, now);
        }
    }

    /// Runs a claimed waiter's command on `key` and sends it the reply.
    fn serve(&self, w: &Arc<Waiter>, key: &[u8], now: i64) {
        if let Some(dst) = self.moved_elsewhere(w) {
            return self.serve_move_across(w, key, dst, now);
        }
        let rerun = w.rerun_for(key);
        let mut out = Vec::new();
        {
            let mut st = self.state.borrow_mut();
            execute(
                &mut st,
                w.cmd,
                rerun.args(),
                w.db,
                w.proto,
                now,
                false,
                &mut out,
            );
            // A waiter does not know its client's id: its entry names none.
            st.slowlog.claim(0, None);
        }
        self.answer(w.conn_shard, w.ticket, out);
    }

    /// BLMOVE/BRPOPLPUSH whose destination another shard owns: that key.
    fn moved_elsewhere(&self, w: &Waiter) -> Option<Vec<u8>> {
        let a = w.args();
        let name = a.get(0);
        let moves =
            name.eq_ignore_ascii_case(b"blmove") || name.eq_ignore_ascii_case(b"brpoplpush");
        (moves && self.shared.owner(key_slot(a.get(2))) != self.id).then(|| a.get(2).to_vec())
    }

    /// A blocking move across shards: the element is popped here, pushed
    /// on the destination's shard, and the client answered from there (so
    /// whoever sees its reply sees the element in the destination). A
    /// destination of the wrong type gets the element back at the source
    /// and the client WRONGTYPE.
    fn serve_move_across(&self, w: &Arc<Waiter>, src: &[u8], dst: Vec<u8>, now: i64) {
        let (from_left, to_left) = move_ends(&w.args()).unwrap_or((true, true));
        let pop = OwnedArgs::from_parts([if from_left { "lpop" } else { "rpop" }.as_bytes(), src]);
        let mut out = Vec::new();
        {
            let mut st = self.state.borrow_mut();
            let id = table::lookup_id(pop.args().get(0)).expect("lpop is in the table");
            execute(
                &mut st,
                id,
                pop.args(),
                w.db,
                Proto::Resp2,
                now,
                false,
                &mut out,
            );
            // A waiter does not know its client's id: its entry names none.
            st.slowlog.claim(0, None);
        }
        let Some(elem) = crate::resp_skip::bulk_body(&out).map(<[u8]>::to_vec) else {
            return self.answer(w.conn_shard, w.ticket, out);
        };
        let (w, src, me) = (w.clone(), src.to_vec(), self.id);
        let owner = self.shared.owner(key_slot(&dst));
        self.send_now(
            owner,
            Request::Do(Box::new(move |rt: &ShardRuntime| {
                let push = [
                    if to_left { "lpush" } else { "rpush" }.as_bytes(),
                    &dst,
                    &elem,
                ];
                let mut out = Vec::new();
                if rt.run_internal(&push, w.db, &mut out) {
                    let mut reply = Vec::new();
                    Reply::new(&mut reply, w.proto).bulk(&elem);
                    rt.answer(w.conn_shard, w.ticket, reply);
                } else {
                    // The destination refused it: the element goes back.
                    let mut err = Vec::new();
                    Reply::new(&mut err, w.proto).error(
                        std::str::from_utf8(&out[1..out.len().saturating_sub(2)])
                            .unwrap_or("ERR internal error"),
                    );
                    rt.answer(w.conn_shard, w.ticket, err);
                    rt.send_now(
                        me,
                        Request::Do(Box::new(move |rt: &ShardRuntime| {
                            let back = [
                                if from_left { "lpush" } else { "rpush" }.as_bytes(),
                                &src,
                                &elem,
                            ];
                            let mut out = Vec::new();
                            rt.run_internal(&back, w.db, &mut out);
                        })),
                    );
                }
            })),
        );
    }

    /// Runs an internal command (given by its words, RESP2 reply) here,
    /// serving whoever it makes ready. True unless it replied an error.
    pub fn run_internal(&self, words: &[&[u8]], db: usize, out: &mut Vec<u8>) -> bool {
        let args = OwnedArgs::from_parts(words);
        let Some(id) = table::lookup_id(words[0]) else {
            return false;
        };
        {
            let mut st = self.state.borrow_mut();
            let now = tessera_shard::util::now_ms();
            execute(&mut st, id, args.args(), db, Proto::Resp2, now, false, out);
            st.slowlog.claim(0, None);
        }
        self.after_writes();
        out.first() != Some(&b'-')
    }

    /// Delivers a blocked client's reply to the ticket its connection
    /// waits on.
    pub fn answer(&self, shard: usize, ticket: u32, reply: Vec<u8>) {
        if shard == self.id {
            self.tickets.complete(ticket, Answer::Call(Box::new(reply)));
        } else {
            self.respond(
                shard,
                Response::Call {
                    ticket,
                    value: Box::new(reply),
                },
            );
        }
    }

    /// Tries a blocking command here: served now, or (with `register`)
    /// registered on its keys of this shard. `locked`: its coordinator
    /// holds its keys; otherwise a transaction holding them makes it Busy.
    pub fn try_blocking(
        &self,
        w: &Arc<Waiter>,
        args: &OwnedArgs,
        locked: bool,
        register: bool,
        count: bool,
    ) -> Tried {
        if !locked && !self.locks_idle() {
            let spec = table::by_id(w.cmd);
            let mut keypos = Vec::new();
            if let Some(set) = crate::txn::command_locks(spec, &args.args(), w.db, &mut keypos) {
                if !self.locks.borrow().grantable(&set) {
                    return Tried::Busy;
                }
            }
        }
        let mut out = Vec::new();
        let blocked = {
            let mut st = self.state.borrow_mut();
            let now = tessera_shard::util::now_ms();
            let blocked = execute_may_block(
                &mut st,
                w.cmd,
                args.args(),
                w.db,
                w.proto,
                now,
                count,
                &mut out,
            );
            st.slowlog.claim(0, None);
            if blocked && register {
                let mine: Vec<Vec<u8>> = w
                    .keys
                    .iter()
                    .filter(|k| self.shared.owner(key_slot(k)) == self.id)
                    .cloned()
                    .collect();
                st.changes.blocked.register(w, &mine);
            }
            blocked
        };
        if blocked {
            return Tried::Blocked;
        }
        self.after_writes();
        Tried::Replied(out)
    }

    /// Registers a blocked client on its keys of this shard (a client
    /// blocked on keys of several shards, registered on each under its
    /// coordinator's locks).
    pub fn register_blocked(&self, w: &Arc<Waiter>) {
        let mine: Vec<Vec<u8>> = w
            .keys
            .iter()
            .filter(|k| self.shared.owner(key_slot(k)) == self.id)
            .cloned()
            .collect();
        self.state.borrow_mut().changes.blocked.register(w, &mine);
    }

    /// Forgets a blocked client here (it was served, timed out, was
    /// unblocked or went away).
    pub fn unregister_blocked(&self, w: &Arc<Waiter>) {
        self.state
            .borrow_mut()
            .changes
            .blocked
            .unregister(w, &w.keys);
    }
}
