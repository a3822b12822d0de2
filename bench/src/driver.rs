//! One load thread: an epoll loop over many non-blocking connections.
//! Each connection owns a write buffer that a whole pipeline batch is
//! encoded into (one write per batch) and a read buffer whose replies are
//! only delimited and classified. Nothing is allocated per request.

use crate::cluster::{key_slot, parse_redirect, Redirect, Topology};
use crate::conn::{connect_load, Handshake};
use crate::keys::{Distribution, KeyGen};
use crate::resp::{parse_reply, Kind};
use crate::schedule::Schedule;
use crate::stats::{new_histogram, Stats};
use crate::uring::{Ring, OP_RECV};
use crate::workload::Test;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

/// Everything the threads of one test share, read-only.
pub struct RunConfig {
    pub test: Test,
    pub pipeline: usize,
    pub handshake: Handshake,
    /// Node list and slot map; one node and no routing when not a cluster.
    pub topology: Topology,
    pub cluster: bool,
    pub dist: Distribution,
    pub keyspace: u64,
    pub seed: u64,
    /// Open loop: requests per second in total.
    pub rate: Option<f64>,
    pub total_clients: usize,
    pub warmup_ns: u64,
    pub duration_ns: Option<u64>,
    /// io_uring instead of epoll for the sockets.
    pub uring: bool,
}

/// One thread's share of the run.
pub struct ThreadPlan {
    pub index: usize,
    pub cpu: Option<usize>,
    pub first_client: usize,
    pub clients: usize,
    /// Measured requests this thread sends (u64::MAX with --duration).
    pub requests: u64,
    /// Index of this thread's first request over all threads.
    pub seq_start: u64,
}

/// Live figures for the once-a-second progress line.
#[derive(Default)]
pub struct Progress {
    pub replies: AtomicU64,
    pub errors: AtomicU64,
    pub interval: Mutex<Option<Histogram<u64>>>,
}

/// What a thread hands back.
pub struct ThreadResult {
    pub stats: Stats,
    /// When measuring started and when the last measured reply came.
    pub start_ns: u64,
    pub end_ns: u64,
    pub fatal: Option<String>,
}

pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

const MEASURED: u8 = 1;
/// The reply to an ASKING we sent ourselves: skipped.
const INTERNAL: u8 = 2;
/// A request bounced more often than this counts as an error.
const MAX_HOPS: u8 = 5;
/// Open loop: beyond this many outstanding requests a connection waits
/// (the requests stay due, and their latency keeps counting).
const MAX_OUTSTANDING: usize = 4096;
const READ_CHUNK: usize = 64 * 1024;
const TIMER_TOKEN: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Pending {
    start: u64,
    key: u64,
    tpl: u16,
    flags: u8,
    hops: u8,
}

struct Conn {
    /// Index in Worker::conns (kept in the graveyard).
    id: usize,
    stream: TcpStream,
    client: usize,
    rbuf: Vec<u8>,
    rlen: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    pending: VecDeque<Pending>,
    out_armed: bool,
    // io_uring only: the kernel owns `sending` (from `spos`) while
    // `send_busy`, and `rbuf[rlen..]` while `recv_busy`; new requests
    // accumulate in `wbuf` meanwhile, so neither buffer moves under it.
    sending: Vec<u8>,
    spos: usize,
    send_busy: bool,
    recv_busy: bool,
}

struct Client {
    /// Connection index per node (cluster nodes are connected lazily).
    conns: Vec<Option<usize>>,
    outstanding: usize,
    sched: Option<Schedule>,
    dead: bool,
}

struct Worker<'a> {
    cfg: &'a RunConfig,
    plan: &'a ThreadPlan,
    epfd: i32,
    conns: Vec<Option<Conn>>,
    clients: Vec<Client>,
    topo: Topology,
    keys: KeyGen,
    /// Measured requests still to send.
    remaining: u64,
    /// Requests picked so far (drives the --ratio mix).
    picked: u64,
    stats: Stats,
    /// Latencies since the last progress flush.
    interval: Histogram<u64>,
    warm_until: u64,
    end_at: u64,
    last_reply: u64,
    now: u64,
    scratch: Vec<u8>,
    redirects: Vec<(usize, Pending, Redirect)>,
    batch_due: Vec<usize>,
    ring: Option<Ring>,
    /// Failed connections whose buffers io_uring may still be using.
    graveyard: Vec<Conn>,
}

/// Runs one thread's share; `barrier` lines all threads up after connecting.
pub fn run_thread(
    cfg: &RunConfig,
    plan: &ThreadPlan,
    progress: &Progress,
    barrier: &Barrier,
) -> ThreadResult {
    let mut fatal = None;
    if let Some(cpu) = plan.cpu {
        if let Err(e) = crate::cpu::pin_current_thread(cpu) {
            fatal = Some(e);
        }
    }
    // SAFETY: plain syscall; the fd is closed on drop of the worker.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut w = Worker {
        cfg,
        plan,
        epfd,
        conns: Vec::new(),
        clients: Vec::new(),
        topo: cfg.topology.clone(),
        keys: KeyGen::new(
            cfg.dist,
            cfg.keyspace,
            cfg.seed ^ (plan.index as u64).wrapping_mul(0x9e37_79b9),
            plan.seq_start,
        ),
        remaining: plan.requests,
        picked: plan.seq_start,
        stats: Stats::default(),
        interval: new_histogram(),
        warm_until: 0,
        end_at: u64::MAX,
        last_reply: 0,
        now: 0,
        scratch: Vec::with_capacity(4096),
        redirects: Vec::new(),
        batch_due: Vec::new(),
        ring: None,
        graveyard: Vec::new(),
    };
    if cfg.uring && fatal.is_none() {
        match Ring::new((plan.clients * 4) as u32) {
            Ok(r) => w.ring = Some(r),
            Err(e) => fatal = Some(e),
        }
    }
    if fatal.is_none() {
        fatal = w.connect_all().err();
    }
    barrier.wait();
    if fatal.is_some() {
        return ThreadResult {
            stats: w.stats,
            start_ns: 0,
            end_ns: 0,
            fatal,
        };
    }
    let t0 = now_ns();
    w.warm_until = t0 + cfg.warmup_ns;
    if let Some(d) = cfg.duration_ns {
        w.end_at = w.warm_until + d;
    }
    w.last_reply = w.warm_until;
    let fatal = w.run(t0, progress).err();
    w.flush_progress(progress);
    w.quiesce_ring();
    // SAFETY: closing the epoll fd we created.
    unsafe { libc::close(epfd) };
    ThreadResult {
        start_ns: w.warm_until,
        end_ns: w.last_reply.max(w.warm_until),
        stats: w.stats,
        fatal,
    }
}

impl Worker<'_> {
    fn connect_all(&mut self) -> Result<(), String> {
        let nodes = self.topo.nodes.len();
        for c in 0..self.plan.clients {
            self.clients.push(Client {
                conns: vec![None; nodes],
                outstanding: 0,
                sched: None,
                dead: false,
            });
            // A cluster client connects to every known node up front.
            for n in 0..nodes {
                self.open_conn(c, n)?;
            }
        }
        Ok(())
    }

    fn open_conn(&mut self, client: usize, node: usize) -> Result<usize, String> {
        let stream = connect_load(self.topo.nodes[node], &self.cfg.handshake)?;
        let ci = self.conns.len();
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: ci as u64,
        };
        // SAFETY: registering a valid fd with our epoll instance.
        if self.ring.is_none()
            && unsafe {
                libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut ev)
            } != 0
        {
            return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
        }
        self.conns.push(Some(Conn {
            id: ci,
            stream,
            client,
            rbuf: vec![0; READ_CHUNK],
            rlen: 0,
            wbuf: Vec::with_capacity(16 * 1024),
            wpos: 0,
            pending: VecDeque::with_capacity(self.cfg.pipeline.max(16)),
            out_armed: false,
            sending: Vec::with_capacity(16 * 1024),
            spos: 0,
            send_busy: false,
            recv_busy: false,
        }));
        let cl = &mut self.clients[client];
        if cl.conns.len() <= node {
            cl.conns.resize(node + 1, None);
        }
        cl.conns[node] = Some(ci);
        self.post_recv(ci);
        Ok(ci)
    }

    fn run(&mut self, t0: u64, progress: &Progress) -> Result<(), String> {
        let open_loop = self.cfg.rate.is_some();
        if let Some(rate) = self.cfg.rate {
            let per_conn = rate / self.cfg.total_clients as f64;
            for (i, c) in self.clients.iter_mut().enumerate() {
                // Stagger connections evenly across one interval.
                let offset = ((self.plan.first_client + i) as f64 * 1e9 / rate) as u64;
                c.sched = Some(Schedule::new(t0 + offset, per_conn));
            }
        }
        // epoll's own timeout is in milliseconds: the open loop adds a timerfd.
        let timer = if open_loop && self.ring.is_none() {
            Some(Timer::new(self.epfd)?)
        } else {
            None
        };
        self.now = t0;
        if !open_loop {
            for c in 0..self.clients.len() {
                self.issue_batch(c);
            }
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut next_progress = t0 + 1_000_000_000;
        loop {
            if open_loop {
                self.send_due();
                if let (Some(at), Some(t)) = (self.next_due(), &timer) {
                    t.arm(at);
                }
            }
            if self.finished() {
                return Ok(());
            }
            if self.ring.is_some() {
                let wait = match self.next_due() {
                    Some(at) if open_loop => at.saturating_sub(now_ns()).clamp(1_000, 100_000_000),
                    _ => 10_000_000,
                };
                self.ring_wait(wait)?;
                self.after_events(open_loop, progress, &mut next_progress);
                continue;
            }
            let wait_ms = if open_loop { 100 } else { 10 };
            // SAFETY: events has room for its length.
            let n = unsafe {
                libc::epoll_wait(self.epfd, events.as_mut_ptr(), events.len() as i32, wait_ms)
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("epoll_wait: {e}"));
            }
            self.now = now_ns();
            for ev in &events[..n as usize] {
                let (token, flags) = (ev.u64, ev.events);
                if token == TIMER_TOKEN {
                    if let Some(t) = &timer {
                        t.drain();
                    }
                    continue;
                }
                let ci = token as usize;
                if flags & libc::EPOLLOUT as u32 != 0 {
                    self.flush(ci);
                }
                if flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                    self.read(ci);
                }
            }
            self.after_events(open_loop, progress, &mut next_progress);
        }
    }

    /// After a round of events: redirects, next batches, progress.
    fn after_events(&mut self, open_loop: bool, progress: &Progress, next_progress: &mut u64) {
        self.follow_redirects();
        if !open_loop {
            while let Some(c) = self.batch_due.pop() {
                self.issue_batch(c);
            }
        }
        if self.now >= *next_progress {
            self.flush_progress(progress);
            *next_progress = self.now + 1_000_000_000;
        }
    }

    /// io_uring: submits, waits, and handles the completions.
    fn ring_wait(&mut self, timeout_ns: u64) -> Result<(), String> {
        let ring = self.ring.as_mut().expect("io_uring mode");
        // Wake for the first completion: waiting for more would hold back
        // replies already in and add to the latencies recorded.
        ring.wait(1, timeout_ns)?;
        let done = std::mem::take(&mut ring.done);
        self.now = now_ns();
        for &(user, res) in &done {
            let ci = (user >> 1) as usize;
            let Some(conn) = self.conns.get_mut(ci).and_then(Option::as_mut) else {
                // A failed connection's last operations.
                self.reap_graveyard(user);
                continue;
            };
            let again = res == -libc::EAGAIN || res == -libc::EINTR;
            if user & 1 == OP_RECV {
                conn.recv_busy = false;
                if res > 0 {
                    conn.rlen += res as usize;
                    self.consume(ci);
                    self.post_recv(ci);
                } else if again {
                    self.post_recv(ci);
                } else {
                    self.fail(ci, if res == 0 { b"closed" } else { b"read" });
                }
            } else {
                conn.send_busy = false;
                if res < 0 && !again {
                    self.fail(ci, b"write");
                    continue;
                }
                conn.spos += res.max(0) as usize;
                if conn.spos >= conn.sending.len() {
                    conn.sending.clear();
                    conn.spos = 0;
                }
                self.ring_flush(ci);
            }
        }
        if let Some(r) = self.ring.as_mut() {
            r.done = done;
        }
        Ok(())
    }

    /// Marks an operation of a failed connection finished.
    fn reap_graveyard(&mut self, user: u64) {
        let ci = (user >> 1) as usize;
        if let Some(g) = self.graveyard.iter_mut().find(|g| g.id == ci) {
            if user & 1 == OP_RECV {
                g.recv_busy = false;
            } else {
                g.send_busy = false;
            }
        }
        self.graveyard.retain(|g| g.recv_busy || g.send_busy);
    }

    /// io_uring: queues a recv into the free end of the read buffer.
    fn post_recv(&mut self, ci: usize) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let Some(conn) = self.conns[ci].as_mut() else {
            return;
        };
        if conn.recv_busy {
            return;
        }
        if conn.rlen == conn.rbuf.len() {
            // A reply larger than the buffer: grow (rare, not per request).
            let len = conn.rbuf.len() * 2;
            conn.rbuf.resize(len, 0);
        }
        let free = &mut conn.rbuf[conn.rlen..];
        ring.recv(
            conn.stream.as_raw_fd(),
            free.as_mut_ptr(),
            free.len(),
            ci as u64,
        );
        conn.recv_busy = true;
    }

    /// io_uring: queues a send of what is buffered, unless one is running
    /// (its completion sends the rest).
    fn ring_flush(&mut self, ci: usize) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let Some(conn) = self.conns[ci].as_mut() else {
            return;
        };
        if conn.send_busy {
            return;
        }
        if conn.spos >= conn.sending.len() {
            if conn.wbuf.is_empty() {
                return;
            }
            conn.sending.clear();
            std::mem::swap(&mut conn.sending, &mut conn.wbuf);
            conn.spos = 0;
        }
        let rest = &conn.sending[conn.spos..];
        ring.send(
            conn.stream.as_raw_fd(),
            rest.as_ptr(),
            rest.len(),
            ci as u64,
        );
        conn.send_busy = true;
    }

    /// io_uring: before the buffers are freed, shuts every socket down and
    /// reaps the operations still running on them.
    fn quiesce_ring(&mut self) {
        if self.ring.is_none() {
            return;
        }
        for c in self.conns.iter().flatten() {
            c.stream.shutdown(std::net::Shutdown::Both).ok();
        }
        let busy = |c: &Conn| c.recv_busy || c.send_busy;
        let deadline = now_ns() + 2_000_000_000;
        while (self.conns.iter().flatten().any(busy) || !self.graveyard.is_empty())
            && now_ns() < deadline
        {
            let ring = self.ring.as_mut().expect("io_uring mode");
            if ring.wait(1, 10_000_000).is_err() {
                break;
            }
            let done = std::mem::take(&mut ring.done);
            for &(user, _) in &done {
                match self
                    .conns
                    .get_mut((user >> 1) as usize)
                    .and_then(Option::as_mut)
                {
                    Some(c) if user & 1 == OP_RECV => c.recv_busy = false,
                    Some(c) => c.send_busy = false,
                    None => self.reap_graveyard(user),
                }
            }
        }
        if self.conns.iter().flatten().any(busy) || !self.graveyard.is_empty() {
            // Never free memory the kernel may still write into: leak it.
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(std::mem::take(&mut self.graveyard));
        }
    }

    /// Done when nothing more is to be sent and nothing is outstanding.
    fn finished(&self) -> bool {
        let sending = self.remaining > 0 && self.now < self.end_at;
        let live = self.clients.iter().any(|c| !c.dead);
        let outstanding = self.clients.iter().any(|c| c.outstanding > 0);
        // A server that stops answering cannot hold a timed run forever.
        let overdue = self.now > self.end_at.saturating_add(2_000_000_000);
        !live || overdue || (!sending && !outstanding)
    }

    /// Folds the last interval into the run's histogram and publishes it.
    fn flush_progress(&mut self, p: &Progress) {
        self.stats
            .hist
            .add(&self.interval)
            .expect("histograms share bounds");
        p.replies.store(self.stats.replies, Ordering::Relaxed);
        p.errors.store(self.stats.error_count(), Ordering::Relaxed);
        let mut slot = p.interval.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = slot.as_mut() {
            h.add(&self.interval).ok();
        } else {
            *slot = Some(self.interval.clone());
        }
        self.interval.reset();
    }

    /// Closed loop: the next pipeline batch of a client whose replies are all in.
    fn issue_batch(&mut self, c: usize) {
        if self.clients[c].dead || self.clients[c].outstanding > 0 || self.now >= self.end_at {
            return;
        }
        let warming = self.now < self.warm_until;
        let n = if warming {
            self.cfg.pipeline as u64
        } else {
            self.remaining.min(self.cfg.pipeline as u64)
        };
        for _ in 0..n {
            self.enqueue_new(c, self.now, !warming);
        }
        self.flush_client(c);
    }

    /// Open loop: sends every request whose time has come.
    fn send_due(&mut self) {
        self.now = now_ns();
        for c in 0..self.clients.len() {
            if self.clients[c].dead {
                continue;
            }
            let Some(s) = &self.clients[c].sched else {
                continue;
            };
            let mut due = s.due(self.now);
            let room = MAX_OUTSTANDING.saturating_sub(self.clients[c].outstanding) as u64;
            due = due.min(room);
            let mut sent = false;
            for _ in 0..due {
                let s = self.clients[c].sched.as_ref().expect("open loop");
                let at = s.next_due();
                if at >= self.end_at {
                    break;
                }
                let measured = at >= self.warm_until;
                if measured && self.remaining == 0 {
                    break;
                }
                self.clients[c].sched.as_mut().expect("open loop").take();
                self.enqueue_new(c, at, measured);
                sent = true;
            }
            if sent {
                self.flush_client(c);
            }
        }
    }

    fn next_due(&self) -> Option<u64> {
        self.clients
            .iter()
            .filter(|c| !c.dead)
            .filter_map(|c| c.sched.as_ref().map(Schedule::next_due))
            .min()
    }

    /// Picks the command and key of a new request and queues it.
    #[inline]
    fn enqueue_new(&mut self, c: usize, start: u64, measured: bool) {
        let tpl = self.cfg.test.pick(self.picked) as u16;
        self.picked += 1;
        let key = self.keys.next();
        if measured {
            self.remaining -= 1;
            self.stats.sent += 1;
        }
        let p = Pending {
            start,
            key,
            tpl,
            flags: if measured { MEASURED } else { 0 },
            hops: 0,
        };
        self.clients[c].outstanding += 1;
        self.enqueue(c, p, None);
    }

    /// Encodes a request into the write buffer of the connection that
    /// serves its key (or of `node`, for redirects).
    #[inline]
    fn enqueue(&mut self, c: usize, p: Pending, node: Option<usize>) {
        let cfg = self.cfg;
        let t = &cfg.test.templates[p.tpl as usize];
        if !self.cfg.cluster {
            let Some(Some(ci)) = self.clients[c].conns.first().copied() else {
                return;
            };
            let conn = self.conns[ci].as_mut().expect("open connection");
            let keys = &mut self.keys;
            t.append(&mut conn.wbuf, p.key, || keys.next(), false);
            conn.pending.push_back(p);
            return;
        }
        // Cluster: encode aside, find the key's slot, then move it over.
        self.scratch.clear();
        t.append(&mut self.scratch, p.key, || 0, true);
        let node = node.unwrap_or_else(|| match t.key {
            Some((a, b)) => self.topo.slots[key_slot(&self.scratch[a..b]) as usize] as usize,
            None => 0,
        });
        let ci = match self.clients[c].conns.get(node).copied().flatten() {
            Some(ci) => ci,
            None => match self.open_conn(c, node) {
                Ok(ci) => ci,
                Err(_) => {
                    // A node this client needs is unreachable: it stops
                    // (the others carry on with the remaining budget).
                    self.lost(p, b"connect");
                    self.clients[c].outstanding = self.clients[c].outstanding.saturating_sub(1);
                    self.clients[c].dead = true;
                    return;
                }
            },
        };
        let conn = self.conns[ci].as_mut().expect("open connection");
        if p.flags & INTERNAL != 0 {
            crate::resp::encode_command(&[b"ASKING"], &mut conn.wbuf);
        } else {
            conn.wbuf.extend_from_slice(&self.scratch);
        }
        conn.pending.push_back(p);
    }

    /// A request that will never get its reply.
    fn lost(&mut self, p: Pending, why: &[u8]) {
        if p.flags & MEASURED != 0 {
            self.stats.error(why, 1);
        }
    }

    fn flush_client(&mut self, c: usize) {
        for i in 0..self.clients[c].conns.len() {
            if let Some(ci) = self.clients[c].conns[i] {
                if self.conns[ci]
                    .as_ref()
                    .is_some_and(|k| k.wbuf.len() > k.wpos)
                {
                    self.flush(ci);
                }
            }
        }
    }

    /// Writes what is buffered; waits for EPOLLOUT only if the socket is full.
    fn flush(&mut self, ci: usize) {
        if self.ring.is_some() {
            return self.ring_flush(ci);
        }
        let Some(conn) = self.conns[ci].as_mut() else {
            return;
        };
        while conn.wpos < conn.wbuf.len() {
            match conn.stream.write(&conn.wbuf[conn.wpos..]) {
                Ok(0) => return self.fail(ci, b"closed"),
                Ok(n) => conn.wpos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !conn.out_armed {
                        conn.out_armed = true;
                        self.set_interest(ci, true);
                    }
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.fail(ci, b"write"),
            }
        }
        conn.wbuf.clear();
        conn.wpos = 0;
        if conn.out_armed {
            conn.out_armed = false;
            self.set_interest(ci, false);
        }
    }

    fn set_interest(&self, ci: usize, out: bool) {
        let Some(conn) = self.conns[ci].as_ref() else {
            return;
        };
        let events = libc::EPOLLIN as u32 | if out { libc::EPOLLOUT as u32 } else { 0 };
        let mut ev = libc::epoll_event {
            events,
            u64: ci as u64,
        };
        // SAFETY: modifying a registered fd.
        unsafe {
            libc::epoll_ctl(
                self.epfd,
                libc::EPOLL_CTL_MOD,
                conn.stream.as_raw_fd(),
                &mut ev,
            )
        };
    }

    /// Reads once and handles every complete reply.
    fn read(&mut self, ci: usize) {
        let Some(conn) = self.conns[ci].as_mut() else {
            return;
        };
        if conn.rlen == conn.rbuf.len() {
            // A reply larger than the buffer: grow (rare, not per request).
            let len = conn.rbuf.len() * 2;
            conn.rbuf.resize(len, 0);
        }
        match conn.stream.read(&mut conn.rbuf[conn.rlen..]) {
            Ok(0) => return self.fail(ci, b"closed"),
            Ok(n) => conn.rlen += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return
            }
            Err(_) => return self.fail(ci, b"read"),
        }
        self.consume(ci);
    }

    /// Handles every complete reply in the read buffer.
    fn consume(&mut self, ci: usize) {
        let Some(conn) = self.conns[ci].as_mut() else {
            return;
        };
        let now = self.now;
        let mut pos = 0;
        let client = conn.client;
        let mut answered = false;
        loop {
            let conn = self.conns[ci].as_mut().expect("open connection");
            let (len, kind) = match parse_reply(&conn.rbuf[pos..conn.rlen]) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => return self.fail(ci, b"protocol"),
            };
            let frame = pos;
            pos += len;
            if kind == Kind::Push {
                continue;
            }
            let Some(p) = conn.pending.pop_front() else {
                return self.fail(ci, b"unexpected reply");
            };
            if p.flags & INTERNAL != 0 {
                continue;
            }
            if let Kind::Error { start, end } = kind {
                let text = &conn.rbuf[frame + start..frame + end];
                if self.cfg.cluster {
                    if let Some(r) = parse_redirect(text, self.topo.nodes[0]) {
                        self.redirects.push((client, p, r));
                        continue;
                    }
                }
            }
            answered = true;
            let conn = self.conns[ci].as_ref().expect("open connection");
            self.clients[client].outstanding -= 1;
            if p.flags & MEASURED == 0 {
                continue;
            }
            self.stats.replies += 1;
            // Recorded once, into the interval histogram; it is folded into
            // the run's histogram each second (flush_progress).
            self.interval
                .saturating_record(now.saturating_sub(p.start).max(1));
            self.last_reply = now;
            match kind {
                Kind::Hit => self.stats.hits += 1,
                Kind::Miss => self.stats.misses += 1,
                Kind::Error { start, end } => {
                    let text = &conn.rbuf[frame + start..frame + end];
                    let word = text.split(|&b| b == b' ').next().unwrap_or(b"");
                    self.stats.error(word, 1);
                }
                _ => {}
            }
        }
        let conn = self.conns[ci].as_mut().expect("open connection");
        conn.rbuf.copy_within(pos..conn.rlen, 0);
        conn.rlen -= pos;
        if answered && self.clients[client].outstanding == 0 {
            self.batch_due.push(client);
        }
    }

    /// Re-sends redirected requests to their slot's owner.
    fn follow_redirects(&mut self) {
        while let Some((c, mut p, r)) = self.redirects.pop() {
            p.hops += 1;
            if p.hops > MAX_HOPS {
                self.lost(p, b"too many redirects");
                self.clients[c].outstanding = self.clients[c].outstanding.saturating_sub(1);
                self.batch_due.push(c);
                continue;
            }
            match r {
                Redirect::Moved(slot, addr) => {
                    self.stats.moved += 1;
                    let node = self.topo.node_index(addr) as usize;
                    self.topo.slots[slot as usize] = node as u16;
                    self.enqueue(c, p, Some(node));
                }
                Redirect::Ask(_, addr) => {
                    self.stats.ask += 1;
                    let node = self.topo.node_index(addr) as usize;
                    let asking = Pending {
                        flags: INTERNAL,
                        ..p
                    };
                    self.enqueue(c, asking, Some(node));
                    self.enqueue(c, p, Some(node));
                }
            }
            self.flush_client(c);
        }
    }

    /// A connection broke: its outstanding requests are errors; try once to
    /// reconnect, else the client stops.
    fn fail(&mut self, ci: usize, why: &[u8]) {
        let Some(conn) = self.conns[ci].take() else {
            return;
        };
        let c = conn.client;
        // SAFETY: removing a registered fd before it is closed.
        unsafe {
            libc::epoll_ctl(
                self.epfd,
                libc::EPOLL_CTL_DEL,
                conn.stream.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        conn.stream.shutdown(std::net::Shutdown::Both).ok();
        for p in &conn.pending {
            if p.flags & INTERNAL == 0 {
                self.lost(*p, why);
                self.clients[c].outstanding = self.clients[c].outstanding.saturating_sub(1);
            }
        }
        let node = self.clients[c]
            .conns
            .iter()
            .position(|x| *x == Some(ci))
            .unwrap_or(0);
        self.clients[c].conns[node] = None;
        if self.ring.is_some() && (conn.recv_busy || conn.send_busy) {
            self.graveyard.push(conn);
        } else {
            drop(conn);
        }
        if self.open_conn(c, node).is_err() {
            self.clients[c].dead = true;
        } else if self.clients[c].outstanding == 0 {
            self.batch_due.push(c);
        }
    }
}

/// A timerfd in the epoll set wakes the open loop at the next due time
/// with nanosecond precision (epoll_wait's own timeout is milliseconds).
struct Timer {
    fd: i32,
}

impl Timer {
    fn new(epfd: i32) -> Result<Timer, String> {
        // SAFETY: plain syscalls on fds we own.
        unsafe {
            let fd = libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            );
            if fd < 0 {
                return Err(format!(
                    "timerfd_create: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: TIMER_TOKEN,
            };
            libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev);
            Ok(Timer { fd })
        }
    }

    fn arm(&self, at_ns: u64) {
        let at_ns = at_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at_ns / 1_000_000_000) as i64,
                tv_nsec: (at_ns % 1_000_000_000) as i64,
            },
        };
        // SAFETY: arming our own timerfd.
        unsafe {
            libc::timerfd_settime(
                self.fd,
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
    }

    fn drain(&self) {
        let mut b = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer.
        unsafe { libc::read(self.fd, b.as_mut_ptr().cast(), 8) };
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: closing our own fd.
        unsafe { libc::close(self.fd) };
    }
}

/// Spawns the threads of one test and waits for them.
pub fn run_test(
    cfg: Arc<RunConfig>,
    plans: Vec<ThreadPlan>,
    on_second: impl Fn(&[Arc<Progress>], f64),
) -> Vec<ThreadResult> {
    let barrier = Arc::new(Barrier::new(plans.len() + 1));
    let progress: Vec<Arc<Progress>> = plans
        .iter()
        .map(|_| Arc::new(Progress::default()))
        .collect();
    let handles: Vec<_> = plans
        .into_iter()
        .zip(&progress)
        .map(|(plan, prog)| {
            let (cfg, prog, barrier) = (cfg.clone(), prog.clone(), barrier.clone());
            std::thread::spawn(move || run_thread(&cfg, &plan, &prog, &barrier))
        })
        .collect();
    barrier.wait();
    let start = std::time::Instant::now();
    let mut next = 1.0;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t = start.elapsed().as_secs_f64();
        if t >= next {
            on_second(&progress, t);
            next += 1.0;
        }
    }
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| ThreadResult {
                stats: Stats::default(),
                start_ns: 0,
                end_ns: 0,
                fatal: Some("load thread panicked".into()),
            })
        })
        .collect()
}
