//! One glommio executor per shard, pinned to its CPU, and the driver that
//! is its heartbeat.
//!
//! glommio runs the shard's tasks (connections, control-path calls). The
//! driver task is the shard's only blocking point: each turn it hands the
//! network ring its submissions and reaps completions (net.rs), takes
//! messages off the rings between shards without blocking, runs forwarded work,
//! flushes what could not be sent yet, and runs the periodic work (active
//! expiry, lazy free, idle clients) when due. With nothing to do it parks
//! in the network ring, woken by a packet, a peer's eventfd, or its next
//! periodic deadline. glommio's own reactor is not needed on this path
//! (it would only be polled on glommio's 100 ms preemption tick while the
//! driver keeps the executor busy).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use slab::Slab;
use tessera_protocol::Args;
use tessera_shard::command::ShardState;
use tessera_shard::slot::SLOTS;

use crate::clients::ClientMeta;
use crate::config::Config;
use crate::exec::execute;
use crate::mesh::{Answer, BatchReply, CallFn, ForwardBatch, Request, Response, Tickets};
use crate::net::NetRing;
use crate::rings::Mesh;
use crate::txn::{LockSet, LockTable, TxId, WatchCheck};

/// Control-plane state shared by all shards (never touched per request).
pub struct Shared {
    pub config: Mutex<Config>,
    /// Slot -> owning shard. Fixed at startup.
    pub slot_owner: Vec<u16>,
    /// Each shard's CPU.
    pub shard_cpus: Vec<usize>,
    pub next_client_id: AtomicU64,
    pub connected: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Clients blocked now (BLPOP...), for INFO.
    pub blocked_clients: AtomicUsize,
    /// Clients with CLIENT TRACKING on, for INFO.
    pub tracking_clients: AtomicUsize,
    pub stop: AtomicBool,
    pub started: Instant,
    pub run_id: String,
    /// The listening port (the actual one, when 0 was asked for).
    pub port: AtomicUsize,
    /// How to wake each shard when it is parked in its network ring.
    pub wakes: Vec<crate::net::Wake>,
    /// Bumped by CONFIG SET: connections re-read the limits they cache.
    pub config_gen: AtomicU64,
    /// Per shard: whether its pub/sub registry holds any subscription
    /// (PUBLISH and SPUBLISH skip the shards where it does not).
    pub pubsub_live: Vec<AtomicBool>,
    /// CLIENT PAUSE, and how many MONITOR connections there are: while
    /// either is set, connections take the slow path (gate.rs).
    pub pause: crate::pause::Pause,
    pub monitors: AtomicUsize,
    /// Monitors per shard (where their lines go).
    pub monitor_shards: Vec<AtomicUsize>,
    /// RDB snapshots, save points, what startup loaded (persist/).
    pub persist: crate::persist::State,
    /// Cluster mode's state (`cluster-enabled`; cluster/).
    pub cluster: crate::cluster::Cluster,
    /// Each shard's memory usage, for the node-wide `maxmemory` budget.
    pub memory: Arc<tessera_shard::evict::NodeMemory>,
}

impl Shared {
    pub fn nshards(&self) -> usize {
        self.shard_cpus.len()
    }
    #[inline]
    pub fn owner(&self, slot: u16) -> usize {
        self.slot_owner[slot as usize] as usize
    }
}

/// Slots are split into contiguous ranges, one per shard: a slot range is
/// what moves between shards or nodes, and SCAN walks it in order.
pub fn slot_ranges(nshards: usize) -> Vec<std::ops::Range<usize>> {
    (0..nshards)
        .map(|i| (i * SLOTS / nshards)..((i + 1) * SLOTS / nshards))
        .collect()
}

/// Messages that did not fit in a peer's ring yet, in order.
#[derive(Default)]
struct Outbox {
    requests: VecDeque<Request>,
    responses: VecDeque<Response>,
}

/// A shard's runtime: everything its executor's tasks share.
pub struct ShardRuntime {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub state: RefCell<ShardState>,
    pub tickets: Rc<Tickets>,
    /// This shard's network ring.
    pub net: Rc<NetRing>,
    requests: Arc<Mesh<Request>>,
    responses: Arc<Mesh<Response>>,
    outbox: RefCell<Vec<Outbox>>,
    /// This shard's connections, for CLIENT LIST/KILL and INFO clients.
    pub clients: RefCell<Slab<Rc<RefCell<ClientMeta>>>>,
    /// Intent locks of the transactions touching this shard's keys.
    pub locks: RefCell<LockTable<Waiter>>,
    /// The next transaction id this shard hands out (its id in the top bits).
    next_tx: Cell<u64>,
    /// Parked batches whose locks were granted, resumed by the driver.
    resumable: RefCell<Vec<Parked>>,
}

/// Who waits for a queued lock request.
pub enum Waiter {
    /// A coordinator, on ticket `ticket` of shard `shard` (maybe this one);
    /// `watch` is checked once the locks are granted.
    Ticket {
        shard: usize,
        ticket: u32,
        watch: Option<WatchCheck>,
    },
    /// A forwarded batch stopped at an item whose keys were locked.
    Batch(Parked),
}

/// A forwarded batch, part-run: items before `next` have their replies in
/// `out`; `holding` is the lock its next item was granted.
pub struct Parked {
    peer: usize,
    batch: ForwardBatch,
    next: usize,
    out: Vec<u8>,
    ends: Vec<u32>,
    holding: Option<TxId>,
}

/// Puts `msg` on the ring from `from` to `to`, or behind what that peer's
/// outbox queue still holds (a full ring, or earlier messages waiting:
/// order is kept either way).
fn post<T>(mesh: &Mesh<T>, queue: &mut VecDeque<T>, from: usize, to: usize, msg: T) {
    if !queue.is_empty() {
        return queue.push_back(msg);
    }
    if let Err(msg) = mesh.try_send(from, to, msg) {
        queue.push_back(msg);
    }
}

impl ShardRuntime {
    pub fn nshards(&self) -> usize {
        self.shared.nshards()
    }

    /// Sends a request to another shard; the answer arrives on `tickets`.
    /// Never blocks: a full ring leaves the message in the outbox, which
    /// the driver flushes in order.
    pub async fn send(&self, shard: usize, req: Request) -> Result<(), ()> {
        self.send_now(shard, req);
        Ok(())
    }

    pub(crate) fn respond(&self, shard: usize, resp: Response) {
        post(
            &self.responses,
            &mut self.outbox.borrow_mut()[shard].responses,
            self.id,
            shard,
            resp,
        );
        self.shared.wakes[shard].notify();
    }

    /// Retries what the outboxes hold. Returns messages sent.
    fn flush_outboxes(&self) -> usize {
        let mut n = 0;
        let mut ob = self.outbox.borrow_mut();
        for (peer, o) in ob.iter_mut().enumerate() {
            let before = n;
            while let Some(m) = o.responses.pop_front() {
                match self.responses.try_send(self.id, peer, m) {
                    Ok(()) => n += 1,
                    Err(m) => {
                        o.responses.push_front(m);
                        break;
                    }
                }
            }
            while let Some(m) = o.requests.pop_front() {
                match self.requests.try_send(self.id, peer, m) {
                    Ok(()) => n += 1,
                    Err(m) => {
                        o.requests.push_front(m);
                        break;
                    }
                }
            }
            if n > before {
                self.shared.wakes[peer].notify();
            }
        }
        n
    }

    fn outbox_pending(&self) -> bool {
        self.outbox
            .borrow()
            .iter()
            .any(|o| !o.requests.is_empty() || !o.responses.is_empty())
    }

    /// Runs `f` on shard `shard` (directly when it is this one) and returns
    /// its result.
    pub async fn call(&self, shard: usize, f: CallFn) -> Option<Box<dyn std::any::Any + Send>> {
        if shard == self.id {
            return Some(f(self));
        }
        let ticket = self.tickets.open();
        if self.send(shard, Request::Call { ticket, f }).await.is_err() {
            self.tickets.cancel(ticket);
            return None;
        }
        match self.tickets.wait(ticket).await {
            Answer::Call(v) => Some(v),
            _ => None,
        }
    }

    /// Runs `make()` on every shard and collects the results in shard order.
    pub async fn call_all<T: Send + 'static>(
        &self,
        make: impl Fn() -> Box<dyn FnOnce(&ShardRuntime) -> T + Send>,
    ) -> Vec<Option<T>> {
        // Send every request first, then wait: the shards work in parallel.
        let mut waits = Vec::with_capacity(self.nshards());
        for s in 0..self.nshards() {
            if s == self.id {
                waits.push(None);
                continue;
            }
            let f = make();
            let ticket = self.tickets.open();
            let call: CallFn = Box::new(move |rt| Box::new(f(rt)));
            if self
                .send(s, Request::Call { ticket, f: call })
                .await
                .is_err()
            {
                self.tickets.cancel(ticket);
                waits.push(Some(None));
            } else {
                waits.push(Some(Some(ticket)));
            }
        }
        let mut out = Vec::with_capacity(self.nshards());
        for (s, w) in waits.into_iter().enumerate() {
            match w {
                None => out.push(Some(make()(self))),
                Some(None) => out.push(None),
                Some(Some(ticket)) => match self.tickets.wait(ticket).await {
                    Answer::Call(v) => out.push(v.downcast::<T>().ok().map(|b| *b)),
                    _ => {
                        log::warn!("shard {s} did not answer");
                        out.push(None)
                    }
                },
            }
        }
        out
    }

    /// `send` for callers that cannot await (drops, releases): it never
    /// waits anyway.
    pub fn send_now(&self, shard: usize, req: Request) {
        post(
            &self.requests,
            &mut self.outbox.borrow_mut()[shard].requests,
            self.id,
            shard,
            req,
        );
        self.shared.wakes[shard].notify();
    }

    /// A fresh transaction id, unique across shards.
    pub fn next_tx(&self) -> TxId {
        let n = self.next_tx.get() + 1;
        self.next_tx.set(n);
        ((self.id as u64) << 48) | (n & ((1 << 48) - 1))
    }

    /// Whether no lock is held or asked for here (the single-key path
    /// looks no further).
    #[inline]
    pub fn locks_idle(&self) -> bool {
        self.locks.borrow().is_idle()
    }

    /// Takes `set` for `tx` on this shard if nothing is in the way (and
    /// checks `watch`); false, with nothing queued, otherwise.
    pub fn try_lock_here(&self, tx: TxId, set: LockSet, watch: Option<&WatchCheck>) -> bool {
        if !self.locks.borrow_mut().try_acquire(tx, set) {
            return false;
        }
        if let Some(w) = watch {
            self.check_watch(w);
        }
        // The AOF: what this shard logged before the transaction goes
        // to the stream before the transaction's records.
        crate::persist::aof::flush_shard(self);
        true
    }

    /// Asks for `set` on this shard for `tx`; Some(watch) when granted at
    /// once, None when queued (the ticket is completed on grant).
    pub fn lock_here(
        &self,
        tx: TxId,
        set: LockSet,
        ticket: u32,
        watch: Option<WatchCheck>,
    ) -> Option<Option<WatchCheck>> {
        let w = Waiter::Ticket {
            shard: self.id,
            ticket,
            watch,
        };
        let got = self.locks.borrow_mut().acquire(tx, set, w);
        match got {
            Some(Waiter::Ticket { watch, .. }) => {
                crate::persist::aof::flush_shard(self);
                Some(watch)
            }
            _ => None,
        }
    }

    /// Releases `tx`'s locks (or queued request) on this shard and hands
    /// the freed keys to whoever waits for them.
    pub fn release_here(&self, tx: TxId) {
        let granted = self.locks.borrow_mut().release(tx);
        // Clients blocked on keys the transaction wrote are served before
        // anyone it made wait runs.
        self.after_writes();
        for (_, w) in granted {
            self.granted(w);
        }
    }

    /// Releases `tx` on `shard`, here or by message.
    pub fn release_on(&self, shard: usize, tx: TxId) {
        if shard == self.id {
            self.release_here(tx);
        } else {
            self.send_now(shard, Request::Release { tx });
        }
    }

    /// A queued lock request was granted: tell its coordinator, or let the
    /// driver resume the parked batch.
    fn granted(&self, w: Waiter) {
        match w {
            Waiter::Ticket {
                shard,
                ticket,
                watch,
            } => {
                if let Some(w) = watch {
                    self.check_watch(&w);
                }
                crate::persist::aof::flush_shard(self);
                if shard == self.id {
                    self.tickets.complete(ticket, Answer::Call(Box::new(true)));
                } else {
                    self.respond(
                        shard,
                        Response::Call {
                            ticket,
                            value: Box::new(true),
                        },
                    );
                }
            }
            Waiter::Batch(p) => self.resumable.borrow_mut().push(p),
        }
    }

    /// At EXEC, with the watched keys locked: a watched key whose existence
    /// changed since WATCH without a reported write has expired, which
    /// fails the transaction as in Redis.
    pub fn check_watch(&self, w: &WatchCheck) {
        let st = self.state.borrow();
        let now = tessera_shard::util::now_ms();
        for (db, key) in &w.keys {
            let exists = st.keyspace.exists(*db, key, now);
            st.changes.check_expired(*db, key, &w.who, exists);
        }
    }

    /// Runs a forwarded batch from item `p.next` on, stopping (parked in
    /// the lock table) at an item whose keys a transaction holds; sends the
    /// replies when it is done.
    fn run_batch(&self, mut p: Parked) {
        let now = tessera_shard::util::now_ms();
        let mut keypos = Vec::new();
        while p.next < p.batch.items.len() {
            let it = p.batch.items[p.next];
            let spans = &p.batch.spans[it.first as usize..(it.first + it.argc) as usize];
            let args = Args::new(&p.batch.buf, spans);
            if p.holding.is_none() && !it.locked && !self.locks_idle() {
                let spec = tessera_shard::command::table::by_id(it.cmd);
                if let Some(set) =
                    crate::txn::command_locks(spec, &args, it.db as usize, &mut keypos)
                {
                    let mut locks = self.locks.borrow_mut();
                    if !locks.grantable(&set) {
                        let tx = self.next_tx();
                        p.holding = Some(tx);
                        // Queued: granted later (never at once, as it is
                        // not grantable now), then resumed by the driver.
                        let _ = locks.acquire(tx, set, Waiter::Batch(p));
                        return;
                    }
                }
            }
            let ready = {
                let mut st = self.state.borrow_mut();
                if let Some((t, noloop)) = p.batch.tracker {
                    st.changes.tracking.reader = it.track.then_some(t);
                    st.changes.tracking.noloop_writer = noloop;
                }
                // A transaction's part: its AOF records go back with the
                // replies, for the coordinator to log as one unit.
                st.aof.capture = it.locked && st.aof.on;
                execute(
                    &mut st,
                    it.cmd,
                    args,
                    it.db as usize,
                    it.proto,
                    now,
                    it.count,
                    &mut p.out,
                );
                if p.batch.tracker.is_some() {
                    st.changes.tracking.reader = None;
                    st.changes.tracking.noloop_writer = None;
                }
                if st.slowlog.unresolved {
                    st.slowlog.claim(p.batch.client, None);
                    drop(st);
                    crate::commands::slowlog::ask_identity(self, p.peer, p.batch.client);
                    st = self.state.borrow_mut();
                }
                st.changes.pending()
            };
            if ready {
                self.after_writes();
            }
            p.ends.push(p.out.len() as u32);
            p.next += 1;
            if let Some(tx) = p.holding.take() {
                self.release_here(tx);
            }
            if p.batch.budget > 0 && p.out.len() > p.batch.budget {
                // The client is over its output limit: no more replies.
                break;
            }
        }
        let ticket = p.batch.ticket;
        // Writes are in the AOF stream before their replies leave.
        crate::persist::aof::flush_shard(self);
        let aof = crate::persist::aof::take_captured(self);
        self.respond(
            p.peer,
            Response::Batch {
                ticket,
                reply: BatchReply {
                    out: p.out,
                    ends: p.ends,
                    aof,
                },
            },
        );
    }

    /// Runs one forwarded request and sends its response.
    fn serve_request(&self, peer: usize, req: Request) {
        let resp = match req {
            Request::Batch(b) => {
                self.state.borrow_mut().stats.forwarded_in += b.items.len() as u64;
                let n = b.items.len();
                return self.run_batch(Parked {
                    peer,
                    batch: b,
                    next: 0,
                    out: Vec::with_capacity(64 * n),
                    ends: Vec::with_capacity(n),
                    holding: None,
                });
            }
            Request::Call { ticket, f } => Response::Call {
                ticket,
                value: f(self),
            },
            Request::Lock {
                ticket,
                tx,
                set,
                watch,
                try_only: true,
            } => Response::Call {
                ticket,
                value: Box::new(self.try_lock_here(tx, set, watch.as_ref())),
            },
            Request::Lock {
                ticket,
                tx,
                set,
                watch,
                try_only: false,
            } => {
                let w = Waiter::Ticket {
                    shard: peer,
                    ticket,
                    watch,
                };
                let got = self.locks.borrow_mut().acquire(tx, set, w);
                match got {
                    Some(w) => return self.granted(w),
                    None => return,
                }
            }
            Request::Release { tx } => return self.release_here(tx),
            Request::Do(f) => return f(self),
        };
        self.respond(peer, resp);
    }

    /// Takes everything waiting on the meshes. Returns messages handled.
    fn poll_mesh(&self) -> usize {
        let mut n = 0;
        let peers = (0..self.nshards()).filter(|&p| p != self.id);
        for peer in peers.clone() {
            while let Some(resp) = self.responses.try_recv(peer, self.id) {
                n += 1;
                match resp {
                    Response::Batch { ticket, reply } => {
                        self.tickets.complete(ticket, Answer::Batch(reply))
                    }
                    Response::Call { ticket, value } => {
                        self.tickets.complete(ticket, Answer::Call(value))
                    }
                }
            }
        }
        for peer in peers {
            // A bounded number per turn, so connections are served too.
            for _ in 0..64 {
                let Some(req) = self.requests.try_recv(peer, self.id) else {
                    break;
                };
                n += 1;
                self.serve_request(peer, req);
            }
        }
        // Batches whose locks were granted since (by a release above or by
        // a local transaction) go on where they stopped.
        loop {
            let ready = std::mem::take(&mut *self.resumable.borrow_mut());
            if ready.is_empty() {
                break;
            }
            for p in ready {
                n += 1;
                self.run_batch(p);
            }
        }
        n
    }
}

/// The periodic work, `hz` times a second: active expiry within a time
/// budget (rescheduled sooner while more than 10% of what it examined had
/// expired), lazy freeing, and closing idle clients once a second.
struct Periodic {
    next: Instant,
    /// `next` on the CPU's counter: the check on every driver turn (idle
    /// spins included) costs no clock_gettime.
    next_tick: u64,
    turns: u32,
}

impl Periodic {
    fn run(&mut self, rt: &Rc<ShardRuntime>) {
        if crate::cycles::ticks() < self.next_tick {
            return;
        }
        let now_i = Instant::now();
        if now_i < self.next {
            self.next_tick = crate::cycles::ticks_after(self.next - now_i);
            return;
        }
        let (hz, effort) = {
            let st = rt.state.borrow();
            (
                st.config.hz.max(1),
                st.config.active_expire_effort.clamp(1, 10),
            )
        };
        let period = Duration::from_millis(1000 / hz as u64);
        let budget = Duration::from_micros(1000 * effort as u64);
        let over;
        let (checked, reclaimed) = {
            let mut st = rt.state.borrow_mut();
            let now = tessera_shard::util::now_ms();
            let (mut checked, mut reclaimed) = (0, 0);
            let ndb = st.keyspace.databases();
            for db in 0..ndb {
                let cursor = st.expire_cursor[db];
                let Some(d) = st.keyspace.db_if_exists(db) else {
                    continue;
                };
                if d.volatile_len() == 0 {
                    continue;
                }
                let mut c = cursor;
                while now_i.elapsed() < budget {
                    let (next, ch, r) = d.expire_step(c, now, 2000 * effort as usize);
                    c = next;
                    checked += ch;
                    reclaimed += r;
                    if ch == 0 || r * 10 <= ch {
                        break;
                    }
                }
                st.expire_cursor[db] = c;
            }
            st.stats.expired_keys_active += reclaimed as u64;
            tessera_shard::aof::log_expired(&mut st);
            st.stats.expire_cycles += 1;
            // The latency monitor's `expire-cycle` event, as Redis has it.
            let ms = now_i.elapsed().as_millis() as u64;
            st.latency.add_if_needed("expire-cycle", ms, now);
            let deadline = now_i + budget;
            while Instant::now() < deadline && !st.lazy_free_step(10_000) {}
            // Over maxmemory (lowered at run time, or another shard grew):
            // this shard's share, in a bounded step.
            over = st.evict_tick(now, EVICT_STEP);
            (checked, reclaimed)
        };
        if reclaimed > 0 {
            rt.notify_expired();
        }
        if rt.state.borrow().changes.pending() {
            rt.after_writes();
        }
        // Many keys still expiring: come back soon rather than in a period.
        let now_end = Instant::now();
        self.next = if over {
            // Still over maxmemory: the next step soon, requests between.
            now_end + EVICT_STEP
        } else if checked > 0 && reclaimed * 10 > checked {
            now_end + period / 10
        } else {
            now_i + period
        };
        self.next_tick = crate::cycles::ticks_after(self.next.saturating_duration_since(now_end));
        crate::persist::periodic(rt);
        self.turns = self.turns.wrapping_add(1);
        if self.turns.is_multiple_of(hz) {
            crate::alloc::give_back();
            let idle = rt
                .shared
                .config
                .lock()
                .map(|c| c.timeout_secs())
                .unwrap_or(0);
            if idle > 0 {
                let cutoff = tessera_shard::util::now_ms() - idle as i64 * 1000;
                for (_, m) in rt.clients.borrow().iter() {
                    let mut m = m.borrow_mut();
                    // Subscribers wait for messages and blocked clients for
                    // their keys: never idle (Redis).
                    if m.last_active_ms < cutoff
                        && !m.killed
                        && !m.is_pubsub()
                        && m.blocked.is_none()
                    {
                        m.deliver(crate::clients::Event::Kill);
                    }
                }
            }
        }
    }
}

/// Longest one periodic eviction step runs (and the pause before the next
/// while the node is still over maxmemory): half the shard's time at most.
const EVICT_STEP: Duration = Duration::from_millis(2);

/// Idle turns (no syscall when nothing is pending) before parking.
const SPIN_TURNS: u32 = 16;
/// Longest the driver parks.
const PARK_MAX: Duration = Duration::from_millis(10);

/// The shard's heartbeat (see the module comment). Returns at shutdown.
async fn drive(rt: Rc<ShardRuntime>) {
    let mut periodic = Periodic {
        next: Instant::now(),
        next_tick: 0,
        turns: 0,
    };
    let wake = &rt.shared.wakes[rt.id];
    let mut idle = 0u32;
    while !rt.shared.stop.load(Ordering::Relaxed) {
        let mut work = rt.net.turn(None);
        work += rt.poll_mesh();
        if rt.outbox_pending() {
            work += rt.flush_outboxes();
        }
        periodic.run(&rt);
        work += crate::persist::tick(&rt, work > 0);
        if work > 0 {
            idle = 0;
            glommio::executor().yield_now().await;
            continue;
        }
        idle += 1;
        if idle < SPIN_TURNS {
            glommio::executor().yield_now().await;
            continue;
        }
        // Park. Say so first, then look once more: a peer that sent before
        // seeing `parked` is seen here; one that sent after writes the
        // eventfd, which completes a read armed in the network ring.
        wake.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let more = rt.poll_mesh();
        if more == 0 && !rt.net.has_work() && !rt.outbox_pending() {
            let until = periodic
                .next
                .saturating_duration_since(Instant::now())
                .min(PARK_MAX);
            rt.net.turn(Some(until.max(Duration::from_micros(50))));
        }
        wake.parked.store(false, Ordering::SeqCst);
        idle = 0;
        glommio::executor().yield_now().await;
    }
}

/// Accepts connections on one listener through the network ring.
async fn accept_loop(rt: Rc<ShardRuntime>, listener: socket2::Socket) {
    crate::persist::aof::wait_loaded(&rt).await;
    let lfd = listener.as_raw_fd();
    while !rt.shared.stop.load(Ordering::Relaxed) {
        let done = rt.net.accept(lfd).await;
        let fd = match done.result {
            Ok(fd) => fd as RawFd,
            Err(e) => {
                if rt.shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                log::warn!("accept failed on shard {}: {e}", rt.id);
                continue;
            }
        };
        // SAFETY: the kernel just gave us this socket; the std wrapper is
        // only borrowed to read addresses and set TCP_NODELAY.
        let s = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        let _ = s.set_nodelay(true);
        let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let fd = s.into_raw_fd();
        let rt2 = rt.clone();
        glommio::spawn_local(async move { crate::conn::serve(rt2, fd, peer, local).await })
            .detach();
    }
    drop(listener);
}

/// A listening socket of one shard: every shard binds the same address
/// with SO_REUSEPORT and the kernel spreads connections across them.
fn listen(addr: &SocketAddr, backlog: i32) -> std::io::Result<socket2::Socket> {
    let s = tcp_socket(addr)?;
    s.set_reuse_port(true)?;
    s.bind(&(*addr).into())?;
    s.listen(backlog)?;
    Ok(s)
}

/// A TCP socket for `addr` as Redis makes its listeners: SO_REUSEADDR, and
/// IPv6 sockets for IPv6 only.
fn tcp_socket(addr: &SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

/// Fails if another process listens on `addr`. The shards' listeners share
/// their port with SO_REUSEPORT, which the kernel also grants to another
/// process of the same user: without this check a second server started
/// on a taken port would quietly take half its connections.
pub fn probe_port_free(addr: &SocketAddr) -> std::io::Result<()> {
    match tcp_socket(addr)?.bind(&(*addr).into()) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
        // Other failures (an address not on this host...) are reported by
        // the shards' own bind, as before.
        _ => Ok(()),
    }
}

/// Says, when dropped armed, that a shard never started. glommio builds a
/// shard's executor (its rings) on the shard's thread before it runs our
/// code; when that fails (io_uring set-up: ring memory, a locked-memory
/// limit, a kernel still releasing the rings of a process that just
/// exited) the thread ends with the error and nothing is said, while the
/// other shards' start-up waits for it. The guard travels
/// with the shard's start closure: dropped unrun, or before the shard
/// reported ready, it reports the failure, so startup exits with one line
/// instead of waiting.
struct StartGuard {
    id: usize,
    ready: Option<std::sync::mpsc::Sender<Result<(usize, SocketAddr), String>>>,
}

/// The prefix of a `StartGuard` report; the rest is the shard's id.
pub const SHARD_DID_NOT_START: &str = "shard executor did not start: ";

impl StartGuard {
    fn disarm(&mut self) {
        self.ready = None;
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        if let Some(r) = self.ready.take() {
            let _ = r.send(Err(format!("{SHARD_DID_NOT_START}{}", self.id)));
        }
    }
}

/// Messages each ring between two shards holds (a message is a whole
/// batch); more wait in the sender's outbox.
const RING_SLOTS: usize = 256;

/// Starts every shard's executor and returns their join handles.
pub fn start(
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    ready: std::sync::mpsc::Sender<Result<(usize, SocketAddr), String>>,
) -> Result<Vec<glommio::ExecutorJoinHandle<()>>, String> {
    let n = shared.nshards();
    let requests: Arc<Mesh<Request>> = Arc::new(Mesh::new(n, RING_SLOTS));
    let responses: Arc<Mesh<Response>> = Arc::new(Mesh::new(n, RING_SLOTS));
    let ranges = slot_ranges(n);
    let mut handles = Vec::with_capacity(n);
    for (id, range) in ranges.iter().enumerate() {
        let cpu = shared.shard_cpus[id];
        let shared = shared.clone();
        let requests = requests.clone();
        let responses = responses.clone();
        let owned: Vec<u16> = range.clone().map(|s| s as u16).collect();
        let addrs = addrs.clone();
        let ready = ready.clone();
        let (shard_config, backlog) = shared
            .config
            .lock()
            .map(|c| (c.shard_config(), c.tcp_backlog()))
            .unwrap_or_default();
        let mut guard = StartGuard {
            id,
            ready: Some(ready.clone()),
        };
        let h = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shard-{id}"))
            .spawn(move || async move {
                let net = match NetRing::new(4096, shared.wakes[id].efd) {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = ready.send(Err(describe_executor_error(&format!(
                            "shard {id}'s network ring: {e}"
                        ))));
                        return;
                    }
                };
                let mut listeners = Vec::new();
                for addr in &addrs {
                    match listen(addr, backlog) {
                        Ok(l) => {
                            let local = l
                                .local_addr()
                                .ok()
                                .and_then(|a| a.as_socket())
                                .unwrap_or(*addr);
                            listeners.push((l, local));
                        }
                        Err(e) => {
                            let _ = ready.send(Err(format!("could not bind {addr}: {e}")));
                            return;
                        }
                    }
                }
                let rt = Rc::new(ShardRuntime {
                    id,
                    shared: shared.clone(),
                    state: RefCell::new(ShardState::new(id, shard_config, owned)),
                    tickets: Rc::new(Tickets::default()),
                    net,
                    requests,
                    responses,
                    outbox: RefCell::new((0..n).map(|_| Outbox::default()).collect()),
                    clients: RefCell::new(Slab::new()),
                    locks: RefCell::new(LockTable::default()),
                    next_tx: Cell::new(0),
                    resumable: RefCell::new(Vec::new()),
                });
                {
                    // What the shard holds before any data (rings, buffers,
                    // tables) is not counted against maxmemory.
                    let mut st = rt.state.borrow_mut();
                    st.evict.node = Some(shared.memory.clone());
                    st.evict.usage = crate::alloc::thread_allocated;
                    st.evict.baseline = crate::alloc::thread_allocated();
                }
                for (l, local) in listeners {
                    glommio::spawn_local(accept_loop(rt.clone(), l)).detach();
                    let _ = ready.send(Ok((id, local)));
                }
                crate::persist::install_loaded(&rt);
                if id == 0 {
                    // With appendonly yes: the AOF's commands, replayed
                    // before any connection is accepted.
                    glommio::spawn_local(crate::persist::aof::replay(rt.clone())).detach();
                }
                guard.disarm();
                // The driver is the executor's main future: the shard lives
                // until it returns at shutdown.
                drive(rt).await;
            })
            .map_err(|e| describe_executor_error(&e.to_string()))?;
        handles.push(h);
    }
    Ok(handles)
}

/// Turns an executor start failure into one line naming cause and fix.
pub fn describe_executor_error(e: &str) -> String {
    if e.contains("Operation not permitted")
        || e.contains("ENOSYS")
        || e.contains("Function not implemented")
    {
        format!("io_uring is unavailable ({e}): Tessera needs Linux 6.0+ with io_uring allowed; in a container, allow the io_uring syscalls in its seccomp profile (docker: --security-opt seccomp=unconfined or a profile permitting io_uring_setup, io_uring_enter, io_uring_register)")
    } else if e.contains("Cannot allocate memory")
        || e.contains("ENOMEM")
        || e.contains("MemLockLimit")
    {
        format!("could not set up io_uring ({e}): RLIMIT_MEMLOCK is too low; raise it (ulimit -l unlimited, systemd LimitMEMLOCK=infinity, docker --ulimit memlock=-1)")
    } else if e.contains("Invalid argument") {
        format!("could not set up io_uring ({e}): the kernel is too old for the ring flags Tessera uses (COOP_TASKRUN, SINGLE_ISSUER: Linux 6.0+)")
    } else {
        format!("could not start a shard executor: {e}")
    }
}
