//! One glommio executor per shard, pinned to its CPU: the shard's state,
//! its ends of the two channel meshes, its listeners and its timers.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{MeshBuilder, Senders};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use slab::Slab;
use tessera_protocol::Args;
use tessera_shard::command::ShardState;
use tessera_shard::slot::SLOTS;

use crate::clients::ClientMeta;
use crate::config::Config;
use crate::exec::execute;
use crate::mesh::{Answer, BatchReply, CallFn, Request, Response, Tickets};

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

/// A shard's runtime: everything its executor's tasks share.
pub struct ShardRuntime {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub state: RefCell<ShardState>,
    pub tickets: Rc<Tickets>,
    req_tx: Senders<Request>,
    resp_tx: Senders<Response>,
    /// This shard's connections, for CLIENT LIST/KILL and INFO clients.
    pub clients: RefCell<Slab<Rc<RefCell<ClientMeta>>>>,
}

impl ShardRuntime {
    pub fn nshards(&self) -> usize {
        self.shared.nshards()
    }

    /// Sends a request; the answer arrives on `tickets`.
    pub async fn send(&self, shard: usize, req: Request) -> Result<(), ()> {
        self.req_tx.send_to(shard, req).await.map_err(|_| ())
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
}

/// Serves requests arriving from shard `peer`.
async fn serve_peer_requests(
    rt: Rc<ShardRuntime>,
    peer: usize,
    rx: glommio::channels::shared_channel::ConnectedReceiver<Request>,
) {
    while let Some(req) = rx.recv().await {
        let resp = match req {
            Request::Batch(b) => {
                let mut out = Vec::with_capacity(64 * b.items.len());
                let mut ends = Vec::with_capacity(b.items.len());
                {
                    let mut st = rt.state.borrow_mut();
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
                value: f(&rt),
            },
        };
        if rt.resp_tx.send_to(peer, resp).await.is_err() {
            break;
        }
    }
}

/// Delivers responses arriving from shard `peer` to the waiting connections.
async fn deliver_peer_responses(
    rt: Rc<ShardRuntime>,
    rx: glommio::channels::shared_channel::ConnectedReceiver<Response>,
) {
    while let Some(resp) = rx.recv().await {
        match resp {
            Response::Batch { ticket, reply } => rt.tickets.complete(ticket, Answer::Batch(reply)),
            Response::Call { ticket, value } => rt.tickets.complete(ticket, Answer::Call(value)),
        }
    }
}

/// The active expiry cycle and the lazy-free queue, `hz` times a second.
/// Each turn reclaims expired keys of volatile slots within a small budget
/// of work, and keeps going (yielding between steps) while more than 10%
/// of what it examined had expired, up to a quarter of the period.
async fn background(rt: Rc<ShardRuntime>) {
    let mut slow_turn = 0u32;
    loop {
        let (hz, effort) = {
            let st = rt.state.borrow();
            (
                st.config.hz.max(1),
                st.config.active_expire_effort.clamp(1, 10),
            )
        };
        let period = Duration::from_millis(1000 / hz as u64);
        glommio::timer::sleep(period).await;
        if rt.shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let deadline = Instant::now() + period / 4;
        let per_step = 2000 * effort as usize;
        loop {
            let (checked, reclaimed) = {
                let mut st = rt.state.borrow_mut();
                let now = tessera_shard::util::now_ms();
                let mut checked = 0;
                let mut reclaimed = 0;
                let ndb = st.keyspace.databases();
                for db in 0..ndb {
                    let cursor = st.expire_cursor[db];
                    let Some(d) = st.keyspace.db_if_exists(db) else {
                        continue;
                    };
                    if d.volatile_len() == 0 {
                        continue;
                    }
                    let (next, c, r) = d.expire_step(cursor, now, per_step);
                    st.expire_cursor[db] = next;
                    checked += c;
                    reclaimed += r;
                }
                st.stats.expired_keys_active += reclaimed as u64;
                st.stats.expire_cycles += 1;
                (checked, reclaimed)
            };
            if checked == 0 || reclaimed * 10 <= checked || Instant::now() >= deadline {
                break;
            }
            glommio::executor().yield_now().await;
        }
        // Free what FLUSHALL ASYNC handed over, in slices.
        loop {
            let done = rt.state.borrow_mut().lazy_free_step(10_000);
            if done || Instant::now() >= deadline {
                break;
            }
            glommio::executor().yield_now().await;
        }
        slow_turn = slow_turn.wrapping_add(1);
    }
}

async fn accept_loop(rt: Rc<ShardRuntime>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                if rt.shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                log::warn!("accept failed on shard {}: {e}", rt.id);
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let rt2 = rt.clone();
        glommio::spawn_local(async move { crate::conn::serve(rt2, stream).await }).detach();
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
    for id in 0..n {
        let cpu = shared.shard_cpus[id];
        let shared = shared.clone();
        let req_mesh = req_mesh.clone();
        let resp_mesh = resp_mesh.clone();
        let owned: Vec<u16> = ranges[id].clone().map(|s| s as u16).collect();
        let addrs = addrs.clone();
        let ready = ready.clone();
        let shard_config = shared
            .config
            .lock()
            .map(|c| c.shard_config())
            .unwrap_or_default();
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
                let rt = Rc::new(ShardRuntime {
                    id,
                    shared: shared.clone(),
                    state: RefCell::new(ShardState::new(id, shard_config, owned)),
                    tickets: Rc::new(Tickets::default()),
                    req_tx,
                    resp_tx,
                    clients: RefCell::new(Slab::new()),
                });
                for (peer, rx) in req_rx.streams() {
                    glommio::spawn_local(serve_peer_requests(rt.clone(), peer, rx)).detach();
                }
                for (_peer, rx) in resp_rx.streams() {
                    glommio::spawn_local(deliver_peer_responses(rt.clone(), rx)).detach();
                }
                let mut listeners = Vec::new();
                for addr in &addrs {
                    match TcpListener::bind(addr) {
                        Ok(l) => {
                            let local = l.local_addr().unwrap_or(*addr);
                            let _ = ready.send(Ok((id, local)));
                            listeners.push(l);
                        }
                        Err(e) => {
                            let _ = ready.send(Err(format!("could not bind {addr}: {e}")));
                            return;
                        }
                    }
                }
                for l in listeners {
                    glommio::spawn_local(accept_loop(rt.clone(), l)).detach();
                }
                glommio::spawn_local(background(rt.clone())).detach();
                // The executor lives until shutdown is asked for.
                while !shared.stop.load(Ordering::Relaxed) {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            })
            .map_err(|e| describe_executor_error(&e.to_string()))?;
        handles.push(h);
    }
    Ok(handles)
}

/// Turns an executor start failure into one line naming cause and fix.
fn describe_executor_error(e: &str) -> String {
    if e.contains("Operation not permitted")
        || e.contains("ENOSYS")
        || e.contains("Function not implemented")
    {
        format!("io_uring is unavailable ({e}): Tessera needs Linux 5.8+ with io_uring allowed; in a container, allow the io_uring syscalls in its seccomp profile (docker: --security-opt seccomp=unconfined or a profile permitting io_uring_setup, io_uring_enter, io_uring_register)")
    } else if e.contains("Cannot allocate memory") || e.contains("ENOMEM") {
        format!("could not set up io_uring ({e}): RLIMIT_MEMLOCK is too low; raise it (ulimit -l unlimited, systemd LimitMEMLOCK=infinity, docker --ulimit memlock=-1)")
    } else {
        format!("could not start a shard executor: {e}")
    }
}
