//! Routing a connection's requests: each runs on the shard that owns its
//! keys (inline when that is the connection's own shard, else in the one
//! batch per shard that a read batch sends); commands whose keys span
//! shards are split per shard (MGET, MSET, DEL...) or gathered (RENAME,
//! COPY...: `gather`), under the locks of an atomic step (`super::acquire`)
//! so that no other client sees them half done; fan-outs run on every
//! shard. Replies are assembled back in request order.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tessera_protocol::{ArgSpan, Args, Proto, Reply};
use tessera_shard::command::{self, flags, sort, table, CommandSpec, KeyPos, Merge, Route, Split};
use tessera_shard::slot::key_slot;

use crate::conn::Conn;
use crate::exec::execute;
use crate::mesh::{Answer, BatchReply, ForwardBatch, Item, Request};
use crate::resp_skip::{parse_int_reply, split_array};

use super::{LockSet, Mode};

/// A lock on a whole shard.
fn whole(mode: Mode) -> LockSet {
    let mut s = LockSet::default();
    s.add_whole(mode);
    s
}

/// Where one request's reply comes from, in request order.
pub(crate) enum Seg {
    /// Made here: `local_out[start..end]`.
    Local { start: usize, end: usize },
    /// Item `item` of the batch sent to `shard`.
    Remote { shard: usize, item: usize },
    /// A command split across shards: `parts[parts.0..parts.1]`.
    Split {
        how: Split,
        parts: (usize, usize),
        order: (usize, usize),
        nkeys: usize,
    },
    /// A fan-out to every shard.
    Merge { how: Merge, parts: (usize, usize) },
}

/// One shard's share of a split or fan-out command.
#[derive(Clone, Copy)]
pub(crate) enum Part {
    Local { start: usize, end: usize },
    Remote { shard: usize, item: usize },
}

#[derive(Default)]
pub(crate) struct TargetBatch {
    spans: Vec<ArgSpan>,
    items: Vec<Item>,
}

/// The coordinator's state for one connection: the batch being routed,
/// and the transaction it is in.
pub struct Coordinator {
    targets: Vec<TargetBatch>,
    segs: Vec<Seg>,
    parts: Vec<Part>,
    /// For split commands: per key in request order, (part, index in part).
    key_order: Vec<(u32, u32)>,
    local_out: Vec<u8>,
    keypos: Vec<KeyPos>,
    /// Set while the connection runs commands under locks it holds (an
    /// atomic multi-shard command, an EXEC): nothing asks for locks again,
    /// and forwarded items run without looking at the lock table.
    pub in_tx: bool,
    /// MULTI's queue, while the connection is in a transaction.
    pub multi: Option<super::multi::Queue>,
    /// WATCHed keys, until EXEC, DISCARD, UNWATCH or the connection ends.
    pub watching: Option<super::watch::WatchSet>,
    /// The last EXEC's queue, emptied, for the next MULTI's commands.
    pub spare_queue: Option<super::multi::Queue>,
    /// A shard stopped at the client's output budget: it must be closed.
    pub over_limit: bool,
    /// AOF records of the transaction running (`in_tx`), from every shard,
    /// logged as one unit when it is done (`commit_aof`).
    pub aof_tx: tessera_shard::aof::Log,
}

impl Coordinator {
    /// Bytes of replies made here and waiting for earlier ones.
    pub fn pending_len(&self) -> usize {
        self.local_out.len()
    }

    pub fn new(nshards: usize) -> Coordinator {
        Coordinator {
            targets: (0..nshards).map(|_| TargetBatch::default()).collect(),
            segs: Vec::new(),
            parts: Vec::new(),
            key_order: Vec::new(),
            local_out: Vec::new(),
            keypos: Vec::new(),
            in_tx: false,
            multi: None,
            watching: None,
            spare_queue: None,
            over_limit: false,
            aof_tx: Default::default(),
        }
    }

    /// Inside MULTI, a request refused while queueing makes EXEC fail.
    pub fn flag_multi_error(&mut self) {
        if let Some(q) = self.multi.as_mut() {
            q.aborted = true;
        }
    }
}

impl Conn {
    /// The output buffer for a reply made here, right now: straight into
    /// the write buffer when nothing is pending before it.
    pub(crate) fn local_reply<F: FnOnce(&mut Vec<u8>)>(&mut self, f: F) {
        if self.co.segs.is_empty() {
            f(&mut self.wbuf);
        } else {
            let start = self.co.local_out.len();
            f(&mut self.co.local_out);
            let end = self.co.local_out.len();
            self.co.segs.push(Seg::Local { start, end });
        }
    }

    pub(crate) fn local_error(&mut self, msg: &str) {
        self.rt.state.borrow_mut().note_error(msg.as_bytes());
        let proto = self.proto;
        self.local_reply(|out| Reply::new(out, proto).error(msg));
    }

    /// Resolves a request to its command (or subcommand) and its id.
    fn resolve(&mut self, args: &Args) -> Option<(&'static CommandSpec, u16)> {
        let Some(id) = table::lookup_id(args.get(0)) else {
            let msg = command::unknown_command_error(args);
            let proto = self.proto;
            self.local_reply(|out| Reply::new(out, proto).error_bytes(&msg));
            return None;
        };
        let mut spec = table::by_id(id);
        let mut id = id;
        if !spec.subcommands.is_empty() && args.len() >= 2 {
            match command::lookup_sub(spec, args.get(1)) {
                Some(sub) => {
                    spec = sub;
                    id = table::id_of(sub);
                }
                None => {
                    let msg = command::unknown_subcommand_error(spec.name, args.get(1));
                    let proto = self.proto;
                    self.local_reply(|out| Reply::new(out, proto).error_bytes(&msg));
                    return None;
                }
            }
        }
        if !spec.arity_ok(args.len()) {
            let msg = command::arity_error(spec.name);
            self.local_error(&msg);
            return None;
        }
        Some((spec, id))
    }

    /// Runs one request of a batch: resolved against the command table,
    /// queued when the connection is inside MULTI, else routed.
    pub(crate) async fn dispatch_one(&mut self, args: Args<'_>, frozen: &Bytes) {
        if self.co.multi.is_some() && super::multi::exec_arity_abort(self, &args) {
            return;
        }
        let Some((spec, id)) = self.resolve(&args) else {
            self.co.flag_multi_error();
            return;
        };
        if !self.authed && !spec.has(flags::NO_AUTH) {
            self.local_error("NOAUTH Authentication required.");
            self.co.flag_multi_error();
            return;
        }
        self.meta.borrow_mut().last_cmd = spec.name;
        // Cluster mode: keys served elsewhere are redirected (cluster/redirect.rs).
        if self.rt.shared.cluster.enabled && self.cluster_check(spec, &args).await {
            return;
        }
        // RESP2 subscribed mode (pubsub.rs): one branch otherwise.
        if self.subs.is_some()
            && self.proto == Proto::Resp2
            && crate::pubsub::gate(self, spec, &args)
        {
            return;
        }
        if self.co.multi.is_some() && super::multi::queue(self, spec, id, &args) {
            return;
        }
        if !self.route_now(spec, id, &args) {
            // Boxed: the slow paths (locks, gathering, connection commands)
            // hold large futures that the per-request path must not carry.
            Box::pin(self.route(spec, id, args, frozen)).await
        }
        // CLIENT CACHING YES/NO holds for the one command after it.
        if let Some(t) = self.tracking.as_mut() {
            if !std::mem::take(&mut self.caching_set) {
                t.caching = None;
            }
        }
    }

    /// The per-request path, with no await: a keyless command, or one whose
    /// keys all live on one shard (run here when no transaction is in the
    /// way, else forwarded). False: it needs `route`.
    fn route_now(&mut self, spec: &'static CommandSpec, id: u16, args: &Args) -> bool {
        let split = match spec.route {
            Route::Local(_) => {
                self.run_here(id, *args);
                return true;
            }
            // A blocking command may block: `route` runs it (inside an
            // EXEC it runs as any other, and cannot block).
            Route::Keyed(..) if spec.flags & flags::BLOCKING != 0 && !self.co.in_tx => {
                return false
            }
            Route::Keyed(_, split) => split,
            _ => return false,
        };
        let mut keypos = std::mem::take(&mut self.co.keypos);
        let done = match spec.key_positions(args, &mut keypos) {
            Err(_) => false,
            Ok(()) if keypos.is_empty() => false,
            Ok(()) => {
                let shared = &self.rt.shared;
                let owner = shared.owner(key_slot(args.get(keypos[0].index)));
                let same = keypos[1..]
                    .iter()
                    .all(|k| shared.owner(key_slot(args.get(k.index))) == owner);
                if !same
                    || (split == Split::Gather && sort::pattern_reads(spec.name, args).is_some())
                {
                    false
                } else if owner != self.rt.id {
                    self.forward(owner, id, args.spans(), true);
                    true
                } else if self.co.in_tx || self.rt.locks_idle() {
                    self.run_here(id, *args);
                    true
                } else {
                    false
                }
            }
        };
        keypos.clear();
        self.co.keypos = keypos;
        done
    }

    /// Runs a resolved request where its keys are.
    pub(crate) async fn route(
        &mut self,
        spec: &'static CommandSpec,
        id: u16,
        args: Args<'_>,
        frozen: &Bytes,
    ) {
        match spec.route {
            Route::Local(_) => self.run_here(id, args),
            Route::Keyed(_, split) => {
                let mut keypos = std::mem::take(&mut self.co.keypos);
                match spec.key_positions(&args, &mut keypos) {
                    Err(msg) if spec.has(flags::BLOCKING) => {
                        let msg = super::block::timeout_error(spec, &args).unwrap_or(msg);
                        self.local_error(msg)
                    }
                    Err(msg) => self.local_error(msg),
                    Ok(()) if keypos.is_empty() => self.run_here(id, args),
                    Ok(()) if spec.has(flags::BLOCKING) && !self.co.in_tx => {
                        self.run_blocking(spec, id, args, &keypos, frozen).await
                    }
                    Ok(()) => {
                        self.route_keyed(spec, id, split, args, &keypos, frozen)
                            .await
                    }
                }
                keypos.clear();
                self.co.keypos = keypos;
            }
            Route::Fanout(_, merge) if spec.has(flags::WRITE) && !self.co.in_tx => {
                // FLUSHALL, FLUSHDB, SWAPDB: every shard at one instant,
                // under a lock on each whole shard.
                self.flush_pending(frozen).await;
                let plan = (0..self.rt.nshards())
                    .map(|s| (s, whole(Mode::Exclusive)))
                    .collect();
                let Some(guard) = self.lock(plan).await else {
                    return;
                };
                self.co.in_tx = true;
                let at = self.wbuf.len();
                self.fanout(id, merge, args);
                self.flush_pending(frozen).await;
                self.co.in_tx = false;
                // Every shard ran its part: the AOF logs the command once.
                let parts = std::mem::take(&mut self.co.aof_tx);
                if !parts.is_empty() && self.wbuf.get(at) != Some(&b'-') {
                    self.co.aof_tx.record(self.db, args.iter());
                }
                self.commit_aof(false);
                drop(guard);
            }
            Route::Fanout(_, merge) => {
                // A read fan-out's part here waits, like a forwarded one,
                // for the transactions holding keys of this shard.
                let _guard = if !self.co.in_tx && !self.rt.locks_idle() {
                    self.wait_for_keys(spec, &args).await
                } else {
                    None
                };
                self.fanout(id, merge, args)
            }
            Route::Conn => {
                self.flush_pending(frozen).await;
                let (t, at) = (crate::cycles::ticks(), self.wbuf.len());
                crate::commands::run(self, spec, id, args).await;
                let ns = crate::cycles::ns_between(t, crate::cycles::ticks());
                let err = (self.wbuf.get(at) == Some(&b'-')).then(|| {
                    let e = &self.wbuf[at..];
                    e[..e.len().min(64)].to_vec()
                });
                crate::commands::slowlog::count_conn_command(self, spec, id, &args, ns, err);
            }
        }
    }

    /// Takes a transaction's locks; None (after replying with an error)
    /// when a shard is gone.
    pub(crate) async fn lock(&mut self, plan: super::Plan) -> Option<super::TxGuard> {
        match super::acquire(&self.rt, plan, BTreeMap::new()).await {
            Ok(g) => Some(g),
            Err(()) => {
                self.local_error("ERR shard unavailable");
                None
            }
        }
    }

    /// A command with keys: run or forwarded where they live; when they
    /// live on several shards, split or gathered as one atomic step.
    async fn route_keyed(
        &mut self,
        spec: &'static CommandSpec,
        id: u16,
        split: Split,
        args: Args<'_>,
        keypos: &[KeyPos],
        frozen: &Bytes,
    ) {
        let shared = &self.rt.shared;
        let owner0 = shared.owner(key_slot(args.get(keypos[0].index)));
        let same = keypos[1..]
            .iter()
            .all(|k| shared.owner(key_slot(args.get(k.index))) == owner0);
        // SORT whose BY/GET patterns read keys: those keys are known only
        // from the sorted key's elements. When the sorted key's shard owns
        // them all, SORT runs there as usual (atomic on one shard);
        // otherwise every shard is locked whole, then they are learnt again
        // and gathered with SORT's own keys.
        let mut patterns = if split == Split::Gather {
            sort::pattern_reads(spec.name, &args)
        } else {
            None
        };
        if let Some(reads) = &patterns {
            if same && !self.co.in_tx {
                self.flush_pending(frozen).await;
                let probe = super::gather::sort_pattern_keys(self, reads.clone()).await;
                if probe.is_some_and(|extra| extra.is_empty()) {
                    patterns = None;
                }
            }
        }
        if same && patterns.is_none() {
            if owner0 != self.rt.id {
                self.forward(owner0, id, args.spans(), true);
                return;
            }
            // A transaction holding these keys runs first; it is waited
            // for (no lock is taken when none is held or asked for).
            let _guard = if !self.co.in_tx && !self.rt.locks_idle() {
                self.wait_for_keys(spec, &args).await
            } else {
                None
            };
            self.run_here(id, args);
            return;
        }
        self.flush_pending(frozen).await;
        let guard = if self.co.in_tx {
            None
        } else {
            let mut plan = super::Plan::new();
            if patterns.is_some() || spec.name == "copy" {
                // COPY ... DB n writes a key of another database.
                let mode = Mode::of(spec.has(flags::WRITE));
                for s in 0..self.rt.nshards() {
                    plan.insert(s, whole(mode));
                }
            } else {
                for k in keypos {
                    super::plan_key(
                        &self.rt,
                        &mut plan,
                        self.db,
                        args.get(k.index),
                        Mode::of(k.write),
                    );
                }
            }
            match self.lock(plan).await {
                Some(g) => Some(g),
                None => return,
            }
        };
        let was = std::mem::replace(&mut self.co.in_tx, true);
        if let Some(reads) = patterns {
            let extra = super::gather::sort_pattern_keys(self, reads)
                .await
                .unwrap_or_default();
            if extra.is_empty() && same {
                // Inside an EXEC: the sorted key's shard owns them all.
                if owner0 == self.rt.id {
                    self.run_here(id, args);
                } else {
                    self.forward(owner0, id, args.spans(), true);
                    self.flush_pending(frozen).await;
                }
            } else {
                super::gather::run(self, spec, id, args, keypos, &extra).await;
            }
        } else if split == Split::Gather {
            super::gather::run(self, spec, id, args, keypos, &[]).await;
        } else {
            self.split(spec, id, split, args, keypos);
            self.flush_pending(frozen).await;
        }
        self.co.in_tx = was;
        if !was {
            self.commit_aof(false);
        }
        drop(guard);
    }

    /// Waits until no transaction holds or waits for these keys of this
    /// shard, then holds them (the guard) while the command runs.
    async fn wait_for_keys(
        &mut self,
        spec: &'static CommandSpec,
        args: &Args<'_>,
    ) -> Option<super::TxGuard> {
        let mut keypos = Vec::new();
        let set = super::command_locks(spec, args, self.db, &mut keypos)?;
        if self.rt.locks.borrow().grantable(&set) {
            return None;
        }
        let mut plan = super::Plan::new();
        plan.insert(self.rt.id, set);
        self.lock(plan).await
    }

    /// Runs a request on this shard now.
    fn run_here(&mut self, id: u16, args: Args) {
        let (db, proto, now) = (self.db, self.proto, self.now);
        let rt = self.rt.clone();
        let (mut ready, mut slow) = (false, false);
        let roles = self.tracking.is_some().then(|| self.tracking_roles());
        let in_tx = self.co.in_tx;
        self.local_reply(|out| {
            let mut st = rt.state.borrow_mut();
            if let Some((reader, writer)) = roles {
                st.changes.tracking.reader = reader;
                st.changes.tracking.noloop_writer = writer;
            }
            st.aof.capture = in_tx && st.aof.on;
            execute(&mut st, id, args, db, proto, now, true, out);
            if roles.is_some() {
                st.changes.tracking.reader = None;
                st.changes.tracking.noloop_writer = None;
            }
            slow = st.slowlog.unresolved;
            ready = st.changes.pending();
        });
        if slow {
            crate::commands::slowlog::claim_for(&mut rt.state.borrow_mut(), &self.meta.borrow());
        }
        if in_tx {
            self.take_aof();
        }
        // Inside an EXEC or an atomic command, blocked clients are served
        // once it is done (at EXEC's end, or as its locks go).
        if ready && !self.co.in_tx {
            self.rt.after_writes();
        }
    }

    /// Moves what this shard captured for the transaction into its log.
    pub(crate) fn take_aof(&mut self) {
        if let Some(l) = crate::persist::aof::take_captured(&self.rt) {
            self.co.aof_tx.append(*l);
        }
    }

    /// The transaction is done, its locks still held: its AOF records go
    /// to the stream as one unit (`exec`: between MULTI and EXEC).
    pub(crate) fn commit_aof(&mut self, exec: bool) {
        let log = std::mem::take(&mut self.co.aof_tx);
        crate::persist::aof::commit_tx(&self.rt, log, exec);
    }

    /// Adds a request to the batch for `shard`; returns its item index.
    fn forward(&mut self, shard: usize, id: u16, spans: &[ArgSpan], count: bool) -> usize {
        let t = &mut self.co.targets[shard];
        t.items.push(Item {
            first: t.spans.len() as u32,
            argc: spans.len() as u32,
            cmd: id,
            db: self.db as u16,
            proto: self.proto,
            count,
            locked: self.co.in_tx,
            track: self.tracking.as_ref().is_some_and(|t| t.tracks_next()),
        });
        t.spans.extend_from_slice(spans);
        let item = t.items.len() - 1;
        if count {
            self.co.segs.push(Seg::Remote { shard, item });
        }
        item
    }

    /// Runs a part of a split or fan-out command: here, or forwarded.
    fn part(&mut self, shard: usize, id: u16, spans: &[ArgSpan], buf: &[u8]) -> Part {
        if shard == self.rt.id {
            let start = self.co.local_out.len();
            let roles = self.tracking.is_some().then(|| self.tracking_roles());
            let ready = {
                let mut st = self.rt.state.borrow_mut();
                if let Some((reader, writer)) = roles {
                    st.changes.tracking.reader = reader;
                    st.changes.tracking.noloop_writer = writer;
                }
                st.aof.capture = self.co.in_tx && st.aof.on;
                execute(
                    &mut st,
                    id,
                    Args::new(buf, spans),
                    self.db,
                    self.proto,
                    self.now,
                    false,
                    &mut self.co.local_out,
                );
                if roles.is_some() {
                    st.changes.tracking.reader = None;
                    st.changes.tracking.noloop_writer = None;
                }
                if st.slowlog.unresolved {
                    crate::commands::slowlog::claim_for(&mut st, &self.meta.borrow());
                }
                st.changes.pending()
            };
            if self.co.in_tx {
                self.take_aof();
            }
            if ready && !self.co.in_tx {
                self.rt.after_writes();
            }
            Part::Local {
                start,
                end: self.co.local_out.len(),
            }
        } else {
            Part::Remote {
                shard,
                item: self.forward(shard, id, spans, false),
            }
        }
    }

    /// Counts a split or fan-out command once, at the coordinator.
    pub(crate) fn count_call(&self, id: u16) {
        let mut st = self.rt.state.borrow_mut();
        st.stats.cmd(id).calls += 1;
        st.stats.total_commands += 1;
    }

    /// MGET/MSET/DEL/EXISTS... whose keys live on several shards: each
    /// shard gets the command with its own keys.
    fn split(
        &mut self,
        spec: &'static CommandSpec,
        id: u16,
        how: Split,
        args: Args,
        keypos: &[KeyPos],
    ) {
        let (first, step) = match spec.keys {
            command::KeySpec::Range { first, step, .. } => (first as usize, step.max(1) as usize),
            _ => (keypos[0].index, 1),
        };
        let nshards = self.rt.nshards();
        // Per shard: the sub-request's spans, and how many keys it has.
        let mut per: Vec<(Vec<ArgSpan>, u32)> = (0..nshards).map(|_| (Vec::new(), 0)).collect();
        let all = args.spans();
        let order_start = self.co.key_order.len();
        let mut key_shard = Vec::with_capacity(keypos.len());
        for k in keypos {
            let s = self.rt.shared.owner(key_slot(args.get(k.index)));
            let (sp, n) = &mut per[s];
            if sp.is_empty() {
                sp.extend_from_slice(&all[..first]);
            }
            sp.extend_from_slice(&all[k.index..(k.index + step).min(all.len())]);
            key_shard.push((s, *n));
            *n += 1;
        }
        let parts_start = self.co.parts.len();
        let mut part_of_shard = vec![u32::MAX; nshards];
        for (s, (sp, n)) in per.iter().enumerate() {
            if *n > 0 {
                part_of_shard[s] = (self.co.parts.len() - parts_start) as u32;
                let p = self.part(s, id, sp, args.buf());
                self.co.parts.push(p);
            }
        }
        for (s, idx) in key_shard {
            self.co.key_order.push((part_of_shard[s], idx));
        }
        self.count_call(id);
        self.co.segs.push(Seg::Split {
            how,
            parts: (parts_start, self.co.parts.len()),
            order: (order_start, self.co.key_order.len()),
            nkeys: keypos.len(),
        });
    }

    /// DBSIZE, KEYS, FLUSHDB...: every shard runs it; replies are merged.
    fn fanout(&mut self, id: u16, how: Merge, args: Args) {
        let parts_start = self.co.parts.len();
        // PUBLISH, SPUBLISH: only shards with subscribers (and this one).
        let shared = table::by_id(id)
            .has(flags::PUBSUB)
            .then(|| self.rt.shared.clone());
        for s in 0..self.rt.nshards() {
            if shared
                .as_ref()
                .is_some_and(|sh| s != self.rt.id && !sh.pubsub_live[s].load(Ordering::Acquire))
            {
                continue;
            }
            let p = self.part(s, id, args.spans(), args.buf());
            self.co.parts.push(p);
        }
        if shared.is_some() && self.subs.is_some() {
            // Its own channel's message comes before PUBLISH's reply.
            crate::pubsub::own_messages(self);
        }
        self.count_call(id);
        self.co.segs.push(Seg::Merge {
            how,
            parts: (parts_start, self.co.parts.len()),
        });
    }

    /// Sends every shard its batch, waits for all replies, and appends all
    /// pending replies to the write buffer in request order.
    pub async fn flush_pending(&mut self, frozen: &Bytes) {
        if self.co.segs.is_empty() {
            return;
        }
        let n = self.rt.nshards();
        let budget = self.output_budget();
        // (shard, ticket, items sent)
        let mut waits: Vec<(usize, u32, usize)> = Vec::new();
        let tracker = self.tracking.as_ref().map(|t| {
            let id = self.meta.borrow().id;
            (t.tracker(self.rt.id, id), t.noloop.then_some(id))
        });
        for s in 0..n {
            if self.co.targets[s].items.is_empty() {
                continue;
            }
            let t = &mut self.co.targets[s];
            let ticket = self.rt.tickets.open();
            let batch = ForwardBatch {
                ticket,
                buf: frozen.clone(),
                spans: std::mem::take(&mut t.spans),
                items: std::mem::take(&mut t.items),
                budget,
                tracker,
                client: self.meta.borrow().id,
            };
            let sent = batch.items.len();
            if self.rt.send(s, Request::Batch(batch)).await.is_ok() {
                waits.push((s, ticket, sent));
            } else {
                self.rt.tickets.cancel(ticket);
            }
        }
        let mut replies: Vec<Option<BatchReply>> = (0..n).map(|_| None).collect();
        for (s, ticket, sent) in waits {
            if let Answer::Batch(mut r) = self.rt.tickets.wait(ticket).await {
                if let Some(l) = r.aof.take() {
                    self.co.aof_tx.append(*l);
                }
                // Fewer replies than items: that shard stopped at the
                // client's output budget. The client is closed unanswered.
                self.co.over_limit |= r.ends.len() < sent;
                replies[s] = Some(r);
            }
        }
        let segs = std::mem::take(&mut self.co.segs);
        for seg in segs
            .iter()
            .take(if self.co.over_limit { 0 } else { segs.len() })
        {
            match *seg {
                Seg::Local { start, end } => {
                    self.wbuf.extend_from_slice(&self.co.local_out[start..end])
                }
                Seg::Remote { shard, item } => match replies[shard]
                    .as_ref()
                    .and_then(|r| r.item(item))
                {
                    Some(r) => self.wbuf.extend_from_slice(r),
                    None => Reply::new(&mut self.wbuf, self.proto).error("ERR shard unavailable"),
                },
                Seg::Split {
                    how,
                    parts,
                    order,
                    nkeys,
                } => {
                    let bodies: Vec<Option<&[u8]>> = self.co.parts[parts.0..parts.1]
                        .iter()
                        .map(|p| part_bytes(p, &self.co.local_out, &replies))
                        .collect();
                    assemble_split(
                        &mut self.wbuf,
                        self.proto,
                        how,
                        &bodies,
                        &self.co.key_order[order.0..order.1],
                        nkeys,
                    );
                }
                Seg::Merge { how, parts } => {
                    let bodies: Vec<Option<&[u8]>> = self.co.parts[parts.0..parts.1]
                        .iter()
                        .map(|p| part_bytes(p, &self.co.local_out, &replies))
                        .collect();
                    assemble_merge(&mut self.wbuf, self.proto, how, &bodies);
                }
            }
        }
        self.co.segs = segs;
        self.co.segs.clear();
        self.co.local_out.clear();
        self.co.parts.clear();
        self.co.key_order.clear();
    }
}

fn part_bytes<'a>(
    p: &Part,
    local: &'a [u8],
    replies: &'a [Option<BatchReply>],
) -> Option<&'a [u8]> {
    match *p {
        Part::Local { start, end } => Some(&local[start..end]),
        Part::Remote { shard, item } => replies[shard].as_ref().and_then(|r| r.item(item)),
    }
}

fn first_error<'a>(bodies: &[Option<&'a [u8]>]) -> Option<&'a [u8]> {
    bodies.iter().find_map(|b| match b {
        Some(b) if b.first() == Some(&b'-') => Some(*b),
        _ => None,
    })
}

/// Combines the per-shard replies of a split command.
fn assemble_split(
    out: &mut Vec<u8>,
    proto: Proto,
    how: Split,
    bodies: &[Option<&[u8]>],
    order: &[(u32, u32)],
    nkeys: usize,
) {
    if bodies.iter().any(|b| b.is_none()) {
        return Reply::new(out, proto).error("ERR shard unavailable");
    }
    if let Some(e) = first_error(bodies) {
        return out.extend_from_slice(e);
    }
    match how {
        Split::SumInt => {
            let total: i64 = bodies
                .iter()
                .map(|b| parse_int_reply(b.unwrap_or_default()).unwrap_or(0))
                .sum();
            Reply::new(out, proto).int(total);
        }
        Split::AllOk | Split::Gather => Reply::new(out, proto).ok(),
        Split::ConcatByKey => {
            let elems: Vec<Vec<(usize, usize)>> = bodies
                .iter()
                .map(|b| split_array(b.unwrap_or_default()).unwrap_or_default())
                .collect();
            Reply::new(out, proto).array(nkeys);
            for &(p, i) in order {
                let body = bodies[p as usize].unwrap_or_default();
                match elems[p as usize].get(i as usize) {
                    Some(&(s, e)) => out.extend_from_slice(&body[s..e]),
                    None => Reply::new(out, proto).null(),
                }
            }
        }
    }
}

/// Combines the replies of a fan-out.
fn assemble_merge(out: &mut Vec<u8>, proto: Proto, how: Merge, bodies: &[Option<&[u8]>]) {
    if bodies.iter().any(|b| b.is_none()) {
        return Reply::new(out, proto).error("ERR shard unavailable");
    }
    if let Some(e) = first_error(bodies) {
        return out.extend_from_slice(e);
    }
    match how {
        Merge::SumInt => {
            let total: i64 = bodies
                .iter()
                .map(|b| parse_int_reply(b.unwrap_or_default()).unwrap_or(0))
                .sum();
            Reply::new(out, proto).int(total);
        }
        Merge::AllOk => Reply::new(out, proto).ok(),
        Merge::ConcatArray => {
            let elems: Vec<Vec<(usize, usize)>> = bodies
                .iter()
                .map(|b| split_array(b.unwrap_or_default()).unwrap_or_default())
                .collect();
            let total = elems.iter().map(Vec::len).sum();
            Reply::new(out, proto).array(total);
            for (b, es) in bodies.iter().zip(&elems) {
                let b = b.unwrap_or_default();
                for &(s, e) in es {
                    out.extend_from_slice(&b[s..e]);
                }
            }
        }
    }
}
