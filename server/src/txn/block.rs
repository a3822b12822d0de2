//! A blocking command (BLPOP, BZPOPMIN, BLMOVE...) at its coordinator.
//!
//! 1. It is tried where its keys are. Keys all on one shard: in one step
//!    there, which serves it or registers it on its keys (so no push can
//!    slip between the try and the registration); a transaction holding
//!    the keys is waited for first. Keys on several shards: under the
//!    locks of all of them, each key is tried in argument order (Redis
//!    serves the first non-empty one), then, if none could serve, the
//!    client is registered on every shard before the locks go.
//! 2. Blocked, the connection waits, costing no CPU, for whichever comes
//!    first: a shard serving it (the reply arrives on its ticket), its
//!    timeout (a timer in the shard's ring), CLIENT UNBLOCK or CLIENT KILL
//!    (its inbox), or its peer closing the socket. Each of them must first
//!    claim the client (`BlockState::claim`), so it is served exactly once:
//!    a timeout that loses the claim waits for the reply on its way.
//! 3. Then its registrations are removed from every shard.
//!
//! Inside MULTI (and EXEC) these commands never come here: they run as
//! ordinary commands and reply as if their timeout had passed.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tessera_protocol::{Args, OwnedArgs, Reply};
use tessera_shard::blocking::Waiter;
use tessera_shard::command::blocking::{move_ends, parse_timeout_ms, waits_for};
use tessera_shard::command::{CommandSpec, KeyPos};
use tessera_shard::slot::key_slot;

use crate::blocked::Tried;
use crate::clients::Event;
use crate::conn::Conn;
use crate::mesh::Answer;
use crate::runtime::ShardRuntime;

use super::Mode;

/// What trying a blocking command where its keys are did.
enum Outcome {
    /// Its reply, made on a shard.
    Reply(Vec<u8>),
    /// Nothing could serve it: it is registered and waits.
    Blocked,
    /// Its reply is written already (gathered, or an error).
    Written,
}

/// How a blocked wait ended.
enum Woken {
    /// A shard served it: the reply.
    Served(Vec<u8>),
    TimedOut,
    Unblocked {
        error: bool,
    },
    /// The client went away (closed, killed).
    Gone,
    /// The serving shard is gone (shutdown).
    Lost,
}

/// Whether the command moves an element (its second key is a destination,
/// not a key it waits for).
fn is_move(spec: &CommandSpec) -> bool {
    matches!(spec.name, "blmove" | "brpoplpush")
}

/// A blocking command's timeout error, which Redis gives before any error
/// in the keys' arguments (BLMPOP's numkeys...).
pub fn timeout_error(spec: &CommandSpec, args: &Args) -> Option<&'static str> {
    parse_timeout_ms(args.get(timeout_arg(spec, args))).err()
}

/// The argument holding the timeout.
fn timeout_arg(spec: &CommandSpec, args: &Args) -> usize {
    match spec.name {
        "blmpop" | "bzmpop" => 1,
        _ => args.len() - 1,
    }
}

impl Conn {
    /// Runs a blocking command outside MULTI (see the module comment).
    pub(crate) async fn run_blocking(
        &mut self,
        spec: &'static CommandSpec,
        id: u16,
        args: Args<'_>,
        keypos: &[KeyPos],
        frozen: &Bytes,
    ) {
        self.flush_pending(frozen).await;
        if is_move(spec) && move_ends(&args).is_none() {
            return self.local_error("ERR syntax error");
        }
        let ms = match parse_timeout_ms(args.get(timeout_arg(spec, &args))) {
            Ok(ms) => ms,
            Err(e) => return self.local_error(e),
        };
        let deadline = (ms > 0).then(|| Instant::now() + Duration::from_millis(ms as u64));
        let waited: Vec<Vec<u8>> = if is_move(spec) {
            vec![args.get(keypos[0].index).to_vec()]
        } else {
            keypos.iter().map(|k| args.get(k.index).to_vec()).collect()
        };
        let ticket = self.rt.tickets.open();
        let w = Arc::new(Waiter {
            state: Arc::default(),
            conn_shard: self.rt.id,
            ticket,
            db: self.db,
            proto: self.proto,
            cmd: id,
            args: OwnedArgs::from_parts(args.iter()),
            waits_for: waits_for(spec.name),
            keys: waited,
        });
        let shared = &self.rt.shared;
        let owner0 = shared.owner(key_slot(args.get(keypos[0].index)));
        let one_shard = keypos
            .iter()
            .all(|k| shared.owner(key_slot(args.get(k.index))) == owner0);
        let tried = if one_shard {
            self.try_on_one(owner0, &w, &args, keypos).await
        } else {
            self.try_across(spec, id, &w, args, keypos).await
        };
        match tried {
            Outcome::Reply(out) => {
                self.rt.tickets.cancel(ticket);
                self.wbuf.extend_from_slice(&out);
            }
            Outcome::Blocked => self.wait_blocked(&w, deadline).await,
            Outcome::Written => self.rt.tickets.cancel(ticket),
        }
    }

    /// Tries on the one shard that owns every key: served, or registered
    /// there in the same step.
    async fn try_on_one(
        &mut self,
        shard: usize,
        w: &Arc<Waiter>,
        args: &Args<'_>,
        keypos: &[KeyPos],
    ) -> Outcome {
        let first = call_try(&self.rt, shard, w, w.args.clone(), false, true).await;
        if !matches!(first, Some(Tried::Busy)) {
            return self.outcome(first);
        }
        // A transaction holds these keys: queue for them like it.
        let Some(guard) = self.lock(self.exclusive_plan(args, keypos)).await else {
            return Outcome::Written;
        };
        let r = call_try(&self.rt, shard, w, w.args.clone(), true, true).await;
        drop(guard);
        self.outcome(r)
    }

    /// Exclusive locks on every key of the command, on their owners.
    fn exclusive_plan(&self, args: &Args, keypos: &[KeyPos]) -> super::Plan {
        let mut plan = super::Plan::new();
        for k in keypos {
            let key = args.get(k.index);
            super::plan_key(&self.rt, &mut plan, self.db, key, Mode::Exclusive);
        }
        plan
    }

    /// A shard's answer as an outcome (None: the shard is gone).
    fn outcome(&mut self, r: Option<Tried>) -> Outcome {
        match r {
            Some(Tried::Replied(out)) => Outcome::Reply(out),
            Some(Tried::Blocked) => Outcome::Blocked,
            Some(Tried::Busy) | None => {
                self.local_error("ERR shard unavailable");
                Outcome::Written
            }
        }
    }

    /// Keys on several shards: under all their locks, each key is tried in
    /// order; none serving, the client is registered on every shard.
    async fn try_across(
        &mut self,
        spec: &'static CommandSpec,
        id: u16,
        w: &Arc<Waiter>,
        args: Args<'_>,
        keypos: &[KeyPos],
    ) -> Outcome {
        let Some(guard) = self.lock(self.exclusive_plan(&args, keypos)).await else {
            return Outcome::Written;
        };
        self.count_call(id);
        let was = std::mem::replace(&mut self.co.in_tx, true);
        let outcome = if is_move(spec) {
            self.try_move_across(spec, id, w, args, keypos).await
        } else {
            let mut outcome = Outcome::Blocked;
            for key in &w.keys {
                let shard = self.rt.shared.owner(key_slot(key));
                let r = call_try(&self.rt, shard, w, w.rerun_for(key), true, false).await;
                if !matches!(r, Some(Tried::Blocked)) {
                    outcome = self.outcome(r);
                    break;
                }
            }
            outcome
        };
        if let Outcome::Blocked = outcome {
            self.register_everywhere(w).await;
        }
        self.co.in_tx = was;
        if !was {
            self.commit_aof(false);
        }
        drop(guard);
        outcome
    }

    /// BLMOVE/BRPOPLPUSH from one shard to another: a source holding a
    /// list moves as LMOVE does (gathered); a missing one blocks.
    async fn try_move_across(
        &mut self,
        spec: &'static CommandSpec,
        id: u16,
        w: &Arc<Waiter>,
        args: Args<'_>,
        keypos: &[KeyPos],
    ) -> Outcome {
        let src = w.keys[0].clone();
        let shard = self.rt.shared.owner(key_slot(&src));
        let db = self.db;
        let probe = self
            .rt
            .call(
                shard,
                Box::new(move |rt: &ShardRuntime| {
                    let mut out = Vec::new();
                    rt.run_internal(&[b"llen", &src], db, &mut out);
                    Box::new(out)
                }),
            )
            .await
            .and_then(|v| v.downcast::<Vec<u8>>().ok());
        let Some(probe) = probe else {
            self.local_error("ERR shard unavailable");
            return Outcome::Written;
        };
        match crate::resp_skip::parse_int_reply(&probe) {
            Some(0) => Outcome::Blocked,
            Some(_) => {
                super::gather::run(self, spec, id, args, keypos, &[]).await;
                Outcome::Written
            }
            // WRONGTYPE, as BLMOVE words it.
            None => Outcome::Reply(*probe),
        }
    }

    /// Registers a client blocked on keys of several shards on each (its
    /// coordinator holds their locks, so no write comes in between).
    async fn register_everywhere(&mut self, w: &Arc<Waiter>) {
        let mut shards: BTreeMap<usize, ()> = BTreeMap::new();
        for k in &w.keys {
            shards.insert(self.rt.shared.owner(key_slot(k)), ());
        }
        for &s in shards.keys() {
            let w = w.clone();
            let _ = self
                .rt
                .call(
                    s,
                    Box::new(move |rt: &ShardRuntime| {
                        rt.register_blocked(&w);
                        Box::new(())
                    }),
                )
                .await;
        }
    }

    /// Waits, blocked, until served, timed out, unblocked or gone; then
    /// replies and removes the client's registrations.
    async fn wait_blocked(&mut self, w: &Arc<Waiter>, deadline: Option<Instant>) {
        self.meta.borrow_mut().blocked = Some(w.state.clone());
        let shared = self.rt.shared.clone();
        shared.blocked_clients.fetch_add(1, Ordering::Relaxed);
        // The replies before this command go out now.
        let _ = self.write_out();
        let woken = self.wait_woken(w, deadline).await;
        shared.blocked_clients.fetch_sub(1, Ordering::Relaxed);
        self.meta.borrow_mut().blocked = None;
        // Forget it everywhere it was registered (the shard that served
        // it did already).
        let mut shards: Vec<usize> = w
            .keys
            .iter()
            .map(|k| self.rt.shared.owner(key_slot(k)))
            .collect();
        shards.sort_unstable();
        shards.dedup();
        for s in shards {
            let w = w.clone();
            let f = move |rt: &ShardRuntime| rt.unregister_blocked(&w);
            if s == self.rt.id {
                f(&self.rt);
            } else {
                self.rt.send_now(s, crate::mesh::Request::Do(Box::new(f)));
            }
        }
        let proto = self.proto;
        match woken {
            Woken::Served(out) => self.wbuf.extend_from_slice(&out),
            Woken::TimedOut | Woken::Unblocked { error: false } => {
                Reply::new(&mut self.wbuf, proto).null_array()
            }
            Woken::Unblocked { error: true } => Reply::new(&mut self.wbuf, proto)
                .error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            Woken::Gone => self.close_after_write = true,
            Woken::Lost => Reply::new(&mut self.wbuf, proto).error("ERR shard unavailable"),
        }
    }

    async fn wait_woken(&mut self, w: &Arc<Waiter>, deadline: Option<Instant>) -> Woken {
        let mut answer = Some(self.rt.tickets.wait(w.ticket));
        let mut timer = deadline.map(|d| {
            self.rt
                .net
                .timeout(d.saturating_duration_since(Instant::now()))
        });
        let mut closed = Some(self.rt.net.peer_closed(self.fd));
        // Set once the client is gone (or killed) but a shard claimed it
        // first: its reply is on the way and is waited for.
        let mut gone = false;
        loop {
            let ev = {
                let (sending, meta) = (&mut self.sending, &self.meta);
                std::future::poll_fn(|cx| {
                    if let Some(a) = answer.as_mut() {
                        if let Poll::Ready(a) = Pin::new(a).poll(cx) {
                            return Poll::Ready(Ev::Answer(a));
                        }
                    }
                    {
                        let mut m = meta.borrow_mut();
                        if let Some(i) = m
                            .inbox
                            .iter()
                            .position(|e| matches!(e, Event::Kill | Event::Unblock { .. }))
                        {
                            let e = m.inbox.remove(i);
                            return Poll::Ready(Ev::Inbox(e));
                        }
                        if !m.inbox.is_empty() {
                            return Poll::Ready(Ev::Messages);
                        }
                        m.waker = Some(cx.waker().clone());
                    }
                    if let Some(t) = timer.as_mut() {
                        if Pin::new(t).poll(cx).is_ready() {
                            return Poll::Ready(Ev::Timer);
                        }
                    }
                    if let Some(c) = closed.as_mut() {
                        if Pin::new(c).poll(cx).is_ready() {
                            return Poll::Ready(Ev::Closed);
                        }
                    }
                    if let Some((op, _)) = sending.as_mut() {
                        if let Poll::Ready(done) = Pin::new(op).poll(cx) {
                            return Poll::Ready(Ev::Sent(done));
                        }
                    }
                    Poll::Pending
                })
                .await
            };
            match ev {
                Ev::Answer(Answer::Call(v)) => {
                    if gone {
                        return Woken::Gone;
                    }
                    return match v.downcast::<Vec<u8>>() {
                        Ok(out) => Woken::Served(*out),
                        Err(_) => Woken::Lost,
                    };
                }
                Ev::Answer(_) => return if gone { Woken::Gone } else { Woken::Lost },
                Ev::Timer => {
                    timer = None;
                    if w.state.claim() {
                        return Woken::TimedOut;
                    }
                }
                Ev::Inbox(Some(Event::Unblock { error })) => return Woken::Unblocked { error },
                // A RESP3 subscriber gets its pushes while it is blocked,
                // as Redis sends them.
                Ev::Messages => {
                    let delivered = self.meta.borrow_mut().drain_messages(&mut self.wbuf);
                    if !delivered || self.write_out().is_err() {
                        if w.state.claim() {
                            return Woken::Gone;
                        }
                        gone = true;
                    }
                }
                Ev::Inbox(_) | Ev::Closed => {
                    closed = None;
                    if w.state.claim() {
                        return Woken::Gone;
                    }
                    gone = true;
                }
                Ev::Sent(done) => {
                    if self.send_done(done).is_err() {
                        if w.state.claim() {
                            return Woken::Gone;
                        }
                        gone = true;
                    }
                }
            }
        }
    }
}

/// What a blocked connection's wait can be woken by.
enum Ev {
    Answer(Answer),
    Inbox(Option<Event>),
    /// Pub/sub messages in the inbox.
    Messages,
    Timer,
    Closed,
    Sent(crate::net::Completed),
}

/// Tries `args` for waiter `w` on `shard`. `locked`: the coordinator
/// holds the keys. `single`: the keys are all on that shard, so the try
/// registers the client there when nothing serves it, and counts the call
/// (a multi-shard try registers once every key was tried).
async fn call_try(
    rt: &std::rc::Rc<ShardRuntime>,
    shard: usize,
    w: &Arc<Waiter>,
    args: OwnedArgs,
    locked: bool,
    single: bool,
) -> Option<Tried> {
    let w = w.clone();
    let v = rt
        .call(
            shard,
            Box::new(move |rt: &ShardRuntime| {
                Box::new(rt.try_blocking(&w, &args, locked, single, single))
            }),
        )
        .await?;
    v.downcast::<Tried>().ok().map(|b| *b)
}
