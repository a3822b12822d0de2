//! One glommio executor per shard, pinned to its CPU, and the driver that
//! is its heartbeat.
//!
//! glommio runs the shard's tasks (connections, control-path calls). The
//! driver task is the shard's only blocking point: each turn it hands the
//! network ring its submissions and reaps completions (net.rs), takes
//! messages off the channel meshes without blocking, runs forwarded work,
//! flushes what could not be sent yet, and runs the periodic work (active
//! expiry, lazy free, idle clients) when due. With nothing to do it parks
//! in the network ring, woken by a packet, a peer's eventfd, or its next
//! periodic deadline. glommio's own reactor is not needed on this path
//! (it would only be polled on glommio's 100 ms preemption tick while the
//! driver keeps the executor busy).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::Stream;
use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::channels::shared_channel::ConnectedReceiver;
use glommio::{GlommioError, LocalExecutorBuilder, Placement, ResourceType};
use slab::Slab;
use tessera_protocol::Args;
use tessera_shard::command::ShardState;
use tessera_shard::slot::SLOTS;

use crate::clients::ClientMeta;
use crate::config::Config;
use crate::exec::execute;
use crate::mesh::{Answer, BatchReply, CallFn, Request, Response, Tickets};
use crate::net::NetRing;

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
    pub stop: AtomicBool,
    pub started: Instant,
    pub run_id: String,
    /// The listening port (the actual one, when 0 was asked for).
    pub port: AtomicUsize,
    /// How to wake each shard when it is parked in its network ring.
    pub wakes: Vec<crate::net::Wake>,
    /// Bumped by CONFIG SET: connections re-read the limits they cache.
    pub config_gen: AtomicU64,
    /// Messages put on each mesh ring so far (see `MeshCounts`).
    pub mesh_sent: MeshCounts,
}

/// How many messages each sender has put on each mesh ring, so a receiver
/// polls only the rings that hold something. Polling an empty glommio
/// shared channel registers the waker in glommio's reactor, where it stays
/// until glommio's own reactor runs (rarely, on this driver): one waker
/// per empty poll per ring, every driver turn, was memory kept for good
/// (about 1.7 KB per connection served, issue 10).
pub struct MeshCounts {
    n: usize,
    counts: Vec<PaddedCount>,
}

#[repr(align(64))]
#[derive(Default)]
struct PaddedCount(AtomicU64);

/// The two meshes, as indexes into `MeshCounts`.
const REQUESTS: usize = 0;
const RESPONSES: usize = 1;

impl MeshCounts {
    pub fn new(n: usize) -> MeshCounts {
        MeshCounts {
            n,
            counts: (0..2 * n * n).map(|_| PaddedCount::default()).collect(),
        }
    }
    fn at(&self, mesh: usize, from: usize, to: usize) -> &AtomicU64 {
        &self.counts[(mesh * self.n + from) * self.n + to].0
    }
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
    req_tx: Senders<Request>,
    resp_tx: Senders<Response>,
    req_rx: RefCell<Vec<(usize, ConnectedReceiver<Request>)>>,
    resp_rx: RefCell<Vec<(usize, ConnectedReceiver<Response>)>>,
    outbox: RefCell<Vec<Outbox>>,
    /// Per mesh and peer: messages taken off its ring to this shard.
    taken: RefCell<[Vec<u64>; 2]>,
    /// This shard's connections, for CLIENT LIST/KILL and INFO clients.
    pub clients: RefCell<Slab<Rc<RefCell<ClientMeta>>>>,
}

/// Takes one message off a channel without blocking (a poll with a no-op
/// waker: the driver looks again every turn, so it needs no wake-up).
fn try_recv<T: Send>(rx: &mut ConnectedReceiver<T>) -> Option<T> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(rx).poll_next(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => None,
    }
}

/// What a non-blocking send did with its message.
enum Sent<T> {
    Done,
    /// The ring is full: try again later.
    Full(T),
    /// The peer is gone (shutdown): drop it.
    Gone,
}

fn sent<T>(r: Result<(), GlommioError<T>>) -> Sent<T> {
    match r {
        Ok(()) => Sent::Done,
        Err(GlommioError::WouldBlock(ResourceType::Channel(m))) => Sent::Full(m),
        Err(_) => Sent::Gone,
    }
}

impl ShardRuntime {
    pub fn nshards(&self) -> usize {
        self.shared.nshards()
    }

    /// Counts a message put on `mesh`'s ring to `to` (after it is there).
    #[inline]
    fn count_sent(&self, mesh: usize, to: usize) {
        self.shared
            .mesh_sent
            .at(mesh, self.id, to)
            .fetch_add(1, Ordering::Release);
    }

    /// Messages on `mesh`'s ring from `from` not taken yet.
    #[inline]
    fn waiting(&self, mesh: usize, from: usize) -> u64 {
        let sent = self
            .shared
            .mesh_sent
            .at(mesh, from, self.id)
            .load(Ordering::Acquire);
        sent - self.taken.borrow()[mesh][from]
    }

    /// Sends a request to another shard; the answer arrives on `tickets`.
    /// Never blocks: a full ring leaves the message in the outbox, which
    /// the driver flushes in order.
    pub async fn send(&self, shard: usize, req: Request) -> Result<(), ()> {
        let mut ob = self.outbox.borrow_mut();
        let q = &mut ob[shard].requests;
        if q.is_empty() {
            match sent(self.req_tx.try_send_to(shard, req)) {
                Sent::Done => self.count_sent(REQUESTS, shard),
                Sent::Full(req) => q.push_back(req),
                Sent::Gone => return Err(()),
            }
        } else {
            q.push_back(req);
        }
        drop(ob);
        self.shared.wakes[shard].notify();
        Ok(())
    }

    fn respond(&self, shard: usize, resp: Response) {
        let mut ob = self.outbox.borrow_mut();
        let q = &mut ob[shard].responses;
        if q.is_empty() {
            match sent(self.resp_tx.try_send_to(shard, resp)) {
                Sent::Done => self.count_sent(RESPONSES, shard),
                Sent::Full(resp) => q.push_back(resp),
                Sent::Gone => {}
            }
        } else {
            q.push_back(resp);
        }
        drop(ob);
        self.shared.wakes[shard].notify();
    }

    /// Retries what the outboxes hold. Returns messages sent.
    fn flush_outboxes(&self) -> usize {
        let mut n = 0;
        let mut ob = self.outbox.borrow_mut();
        for (peer, o) in ob.iter_mut().enumerate() {
            let before = n;
            while let Some(m) = o.responses.pop_front() {
                match sent(self.resp_tx.try_send_to(peer, m)) {
                    Sent::Done => {
                        self.count_sent(RESPONSES, peer);
                        n += 1
                    }
                    Sent::Full(m) => {
                        o.responses.push_front(m);
                        break;
                    }
                    Sent::Gone => {}
                }
            }
            while let Some(m) = o.requests.pop_front() {
                match sent(self.req_tx.try_send_to(peer, m)) {
                    Sent::Done => {
                        self.count_sent(REQUESTS, peer);
                        n += 1
                    }
                    Sent::Full(m) => {
                        o.requests.push_front(m);
                        break;
                    }
                    Sent::Gone => {}
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

    /// Runs one forwarded request and sends its response.
    fn serve_request(&self, peer: usize, req: Request) {
        let resp = match req {
            Request::Batch(b) => {
                let mut out = Vec::with_capacity(64 * b.items.len());
                let mut ends = Vec::with_capacity(b.items.len());
                {
                    let mut st = self.state.borrow_mut();
                    let now = tessera_shard::util::now_ms();
                    st.stats.forwarded_in += b.items.len() as u64;
                    for it in &b.items {
                        let spans = &b.spans[it.first as usize..(it.first + it.argc) as usize];
                        execute(
                            &mut st,
                            it.cmd,
                            Args::new(&b.buf, spans),
                            it.db as usize,
                            it.proto,
                            now,
                            it.count,
                            &mut out,
                        );
                        ends.push(out.len() as u32);
                    }
                }
                Response::Batch {
                    ticket: b.ticket,
                    reply: BatchReply { out, ends },
                }
            }
            Request::Call { ticket, f } => Response::Call {
                ticket,
                value: f(self),
            },
        };
        self.respond(peer, resp);
    }

    /// Takes everything waiting on the meshes. Returns messages handled.
    /// A ring is polled only when its sender's count says a message is
    /// there (see `MeshCounts`), so no poll ever finds it empty.
    fn poll_mesh(&self) -> usize {
        let mut n = 0;
        for (peer, rx) in self.resp_rx.borrow_mut().iter_mut() {
            let peer = *peer;
            for _ in 0..self.waiting(RESPONSES, peer) {
                let Some(resp) = try_recv(rx) else { break };
                self.taken.borrow_mut()[RESPONSES][peer] += 1;
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
        let mut rxs = self.req_rx.borrow_mut();
        for (peer, rx) in rxs.iter_mut() {
            let peer = *peer;
            // A bounded number per turn, so connections are served too.
            for _ in 0..self.waiting(REQUESTS, peer).min(64) {
                let Some(req) = try_recv(rx) else { break };
                self.taken.borrow_mut()[REQUESTS][peer] += 1;
                n += 1;
                self.serve_request(peer, req);
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
    fn run(&mut self, rt: &ShardRuntime) {
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
            st.stats.expire_cycles += 1;
            let deadline = now_i + budget;
            while Instant::now() < deadline && !st.lazy_free_step(10_000) {}
            (checked, reclaimed)
        };
        // Many keys still expiring: come back soon rather than in a period.
        let now_end = Instant::now();
        self.next = if checked > 0 && reclaimed * 10 > checked {
            now_end + period / 10
        } else {
            now_i + period
        };
        self.next_tick = crate::cycles::ticks_after(self.next.saturating_duration_since(now_end));
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
                    if m.last_active_ms < cutoff && !m.killed {
                        m.killed = true;
                        // SAFETY: shutdown of the client's own socket wakes its recv.
                        unsafe { libc::shutdown(m.fd, libc::SHUT_RDWR) };
                    }
                }
            }
        }
    }
}

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
/// other shards wait in the mesh join for it forever. The guard travels
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

/// Starts every shard's executor and returns their join handles.
pub fn start(
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    ready: std::sync::mpsc::Sender<Result<(usize, SocketAddr), String>>,
) -> Result<Vec<glommio::ExecutorJoinHandle<()>>, String> {
    let n = shared.nshards();
    let req_mesh: MeshBuilder<Request, _> = MeshBuilder::full(n, 1024);
    let resp_mesh: MeshBuilder<Response, _> = MeshBuilder::full(n, 1024);
    let ranges = slot_ranges(n);
    let mut handles = Vec::with_capacity(n);
    for (id, range) in ranges.iter().enumerate() {
        let cpu = shared.shard_cpus[id];
        let shared = shared.clone();
        let req_mesh = req_mesh.clone();
        let resp_mesh = resp_mesh.clone();
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
                let (req_tx, mut req_rx) = match req_mesh.join().await {
                    Ok(x) => x,
                    Err(_) => {
                        let _ =
                            ready.send(Err(format!("shard {id} could not join the request mesh")));
                        return;
                    }
                };
                let (resp_tx, mut resp_rx) = match resp_mesh.join().await {
                    Ok(x) => x,
                    Err(_) => {
                        let _ =
                            ready.send(Err(format!("shard {id} could not join the response mesh")));
                        return;
                    }
                };
                // Mesh peer ids follow executor creation order, which is shard order.
                if req_tx.peer_id() != id || resp_tx.peer_id() != id {
                    let _ = ready.send(Err(format!("shard {id} got mesh id {}", req_tx.peer_id())));
                    return;
                }
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
                    req_tx,
                    resp_tx,
                    req_rx: RefCell::new(req_rx.streams()),
                    resp_rx: RefCell::new(resp_rx.streams()),
                    outbox: RefCell::new((0..n).map(|_| Outbox::default()).collect()),
                    taken: RefCell::new([vec![0; n], vec![0; n]]),
                    clients: RefCell::new(Slab::new()),
                });
                for (l, local) in listeners {
                    glommio::spawn_local(accept_loop(rt.clone(), l)).detach();
                    let _ = ready.send(Ok((id, local)));
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
