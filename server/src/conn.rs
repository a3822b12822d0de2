//! One client connection: read, parse a batch of pipelined requests, run
//! each on the shard that owns its keys, write the replies in order.
//!
//! The data path of a batch:
//! 1. every complete request in the read buffer is parsed into spans (no
//!    copy), then the parsed bytes are frozen into a shared `Bytes`;
//! 2. each request runs inline when this shard owns its slot, or joins the
//!    batch for its owner shard (one message per shard per read batch);
//! 3. commands whose keys span shards are split per shard (MGET, MSET, DEL,
//!    EXISTS...) or gathered to this shard (RENAME, COPY...: see `gather`);
//! 4. replies are assembled in request order and written with one write;
//!    while a send is in flight, new replies wait in the write buffer and
//!    the connection goes on reading (a client that writes a long pipeline
//!    before reading any reply must not find us stopped), bounded by the
//!    output and query buffer limits.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tessera_protocol::parse::{Limits, Parsed, ProtocolError, RequestParser};
use tessera_protocol::{ArgSpan, Args, Proto};

use crate::clients::ClientMeta;
use crate::runtime::ShardRuntime;
use crate::txn::route::Coordinator;

/// At most this many requests are dispatched per batch, so one client's
/// huge pipeline cannot hold replies for all of it in memory at once.
const MAX_BATCH: usize = 1024;
/// Read granularity while a client keeps the socket full.
const READ_CHUNK: usize = 16 * 1024;
/// The read buffer of a connection whose socket was emptied and whose
/// requests were all served: what an idle connection holds (the recv
/// posted for its next request). Big enough for a pipeline of small
/// requests in one recv; a fuller socket is read with READ_CHUNK next.
const IDLE_READ: usize = 2 * 1024;
/// The write buffer taken when a batch of requests arrives.
const WRITE_CHUNK: usize = 16 * 1024;
/// A read or write buffer grown past this by one large request or reply
/// is given back once it is empty, not kept for the next one.
const KEEP_MAX: usize = 64 * 1024;
/// Replies are written out once they exceed this, before more are made.
const OUT_FLUSH: usize = 8 * 1024 * 1024;

pub struct Conn {
    pub rt: Rc<ShardRuntime>,
    /// The socket; its I/O goes through the shard's ring (net.rs).
    pub(crate) fd: std::os::fd::RawFd,
    pub meta: Rc<RefCell<ClientMeta>>,
    rbuf: BytesMut,
    pub wbuf: Vec<u8>,
    parser: RequestParser,
    limits: Limits,
    /// Spans of all requests of the current batch, and each request's
    /// (first span, argc).
    spans: Vec<ArgSpan>,
    req_spans: Vec<ArgSpan>,
    cmds: Vec<(u32, u32)>,
    pub db: usize,
    pub proto: Proto,
    pub authed: bool,
    pub close_after_write: bool,
    /// Routing, splitting, gathering and transactions (txn/).
    pub co: Coordinator,
    /// The last recv left the socket empty (see `NetRing::recv`).
    drained: bool,
    /// The recv in flight, which owns `rbuf` until it completes, and the
    /// room it was offered.
    receiving: Option<(crate::net::OpFuture, usize)>,
    /// Scratch for `prefetch_keys`: each request's (key hash, slot).
    prefetched: Vec<(u64, u16)>,
    pub(crate) now: i64,
    /// Bytes the parser says the next request needs (big bulks), and where
    /// the parsed requests of this batch end.
    need: usize,
    parsed_end_pos: usize,
    /// Limits read from the config, refreshed when `config_gen` moves.
    qlimit: usize,
    out_hard: usize,
    /// The soft output limit, its seconds, and since when it is exceeded.
    out_soft: (usize, u64),
    soft_since: Option<Instant>,
    config_gen: u64,
    /// The last reply buffer's send, still in flight: the next recv is
    /// posted without waiting for it (one wake-up per request, not two).
    pub(crate) sending: Option<(crate::net::OpFuture, usize)>,
    /// A spare write buffer, swapped in while the other is being sent.
    spare: Vec<u8>,
    /// Bytes of the send in flight (for the output limit).
    in_flight: usize,
    /// CLIENT TRACKING settings, while on.
    pub tracking: Option<crate::tracking::TrackState>,
    /// CLIENT CACHING just ran: its setting holds for the next command.
    pub caching_set: bool,
    /// Pub/sub subscriptions, while the connection has any (pubsub.rs).
    pub subs: Option<Box<crate::pubsub::ConnSubs>>,
    /// The `pubsub` class's output limits (hard, soft, seconds), which
    /// apply while the connection is subscribed.
    pub(crate) pubsub_limits: (usize, usize, u64),
    /// Cluster mode's per-connection flags (READONLY, ASKING).
    pub cluster: crate::cluster::ConnState,
    /// CLIENT REPLY OFF, and CLIENT REPLY SKIP's next command (gate.rs).
    pub reply_off: bool,
    pub reply_skip_next: bool,
}

/// What a connection waiting for input can be woken by.
enum Event {
    Received(crate::net::Completed),
    Sent(crate::net::Completed),
    /// Its inbox (`ClientMeta::deliver`) holds something.
    Inbox,
}

/// Writes a whole buffer to a socket through the shard's ring (only for
/// the refusal of a connection over maxclients, before it has a `Conn`).
async fn send_all(
    rt: &ShardRuntime,
    fd: std::os::fd::RawFd,
    mut buf: Vec<u8>,
) -> std::io::Result<()> {
    let mut from = 0;
    while from < buf.len() {
        let (n, back) = rt.net.send(fd, buf, from).await.into_sent();
        from += n?;
        buf = back;
    }
    Ok(())
}

/// Serves one accepted connection until it closes, then closes the socket.
pub async fn serve(rt: Rc<ShardRuntime>, fd: std::os::fd::RawFd, addr: String, laddr: String) {
    serve_as(rt, fd, addr, laddr, false).await
}

/// A connection of the server's own (the AOF's replay at startup, as
/// Redis's fake client): authenticated from the start.
pub async fn serve_trusted(
    rt: Rc<ShardRuntime>,
    fd: std::os::fd::RawFd,
    addr: String,
    laddr: String,
) {
    serve_as(rt, fd, addr, laddr, true).await
}

async fn serve_as(
    rt: Rc<ShardRuntime>,
    fd: std::os::fd::RawFd,
    addr: String,
    laddr: String,
    trusted: bool,
) {
    use std::sync::atomic::Ordering;
    let shared = rt.shared.clone();
    let (maxclients, requirepass) = {
        let c = shared.config.lock().expect("config lock");
        (c.maxclients(), c.requirepass().is_some())
    };
    shared.total_connections.fetch_add(1, Ordering::Relaxed);
    let n = shared.connected.fetch_add(1, Ordering::Relaxed) + 1;
    if n > maxclients {
        shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
        shared.connected.fetch_sub(1, Ordering::Relaxed);
        let _ = send_all(&rt, fd, b"-ERR max number of clients reached\r\n".to_vec()).await;
        // SAFETY: we own fd.
        unsafe { libc::close(fd) };
        return;
    }
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed) + 1;
    let meta = Rc::new(RefCell::new(ClientMeta {
        id,
        addr,
        laddr,
        fd,
        name: String::new(),
        lib_name: String::new(),
        lib_ver: String::new(),
        db: 0,
        created: Instant::now(),
        last_active_ms: tessera_shard::util::now_ms(),
        last_cmd: "NULL",
        proto: Proto::Resp2,
        qbuf: 0,
        obuf: 0,
        killed: false,
        inbox: Default::default(),
        blocked: None,
        multi: -1,
        tracker: None,
        waker: None,
        subs: [0; 3],
        inbox_bytes: 0,
        inbox_cap: 0,
        monitor: false,
    }));
    let key = rt.clients.borrow_mut().insert(meta.clone());
    let limits = {
        let c = shared.config.lock().expect("config lock");
        Limits {
            proto_max_bulk_len: c.proto_max_bulk_len(),
            inline_max: 64 * 1024,
        }
    };
    let nshards = rt.nshards();
    let mut conn = Conn {
        rt: rt.clone(),
        fd,
        meta,
        // No buffer until there is data: an idle connection holds only
        // its small recv buffer (`IDLE_READ`).
        rbuf: BytesMut::new(),
        wbuf: Vec::new(),
        parser: RequestParser::new(),
        limits,
        spans: Vec::new(),
        req_spans: Vec::new(),
        cmds: Vec::new(),
        db: 0,
        proto: Proto::Resp2,
        authed: !requirepass || trusted,
        close_after_write: false,
        co: Coordinator::new(nshards),
        prefetched: Vec::new(),
        drained: true,
        receiving: None,
        now: 0,
        need: 0,
        parsed_end_pos: 0,
        qlimit: 0,
        out_hard: 0,
        out_soft: (0, 0),
        soft_since: None,
        config_gen: u64::MAX,
        sending: None,
        spare: Vec::new(),
        in_flight: 0,
        tracking: None,
        caching_set: false,
        subs: None,
        pubsub_limits: (0, 0, 0),
        cluster: Default::default(),
        reply_off: false,
        reply_skip_next: false,
    };
    if let Err(e) = conn.run().await {
        log::debug!("client {id} closed: {e}");
    }
    if conn.tracking.is_some() {
        crate::tracking::forget_everywhere(&rt, id);
        shared.tracking_clients.fetch_sub(1, Ordering::Relaxed);
    }
    // A recv or send still in flight is cancelled as its future drops
    // (net.rs keeps the buffer until the kernel is done with it); the
    // close goes through the ring after them.
    let was_monitor = conn.meta.borrow().monitor;
    drop(conn);
    crate::monitor::stop(&rt, was_monitor);
    rt.clients.borrow_mut().remove(key);
    shared.connected.fetch_sub(1, Ordering::Relaxed);
    rt.net.close(fd);
}

impl Conn {
    async fn run(&mut self) -> std::io::Result<()> {
        loop {
            let (more, perr) = self.parse_batch();
            if !self.cmds.is_empty() {
                let end = self.parsed_end();
                let frozen = self.rbuf.split_to(end).freeze();
                self.parser.shift_back(end);
                self.dispatch_batch(&frozen).await?;
            } else {
                let end = self.parsed_end();
                if end > 0 {
                    let _ = self.rbuf.split_to(end);
                    self.parser.shift_back(end);
                }
            }
            if let Some(e) = perr {
                // Redis replies with the protocol error and closes.
                // Byte-exact, as Redis writes it (a non-ASCII byte stays raw).
                e.write_reply(&mut self.wbuf);
                return self.flush_all().await;
            }
            if self.meta.borrow().killed {
                return Ok(());
            }
            if self.close_after_write {
                return self.flush_all().await;
            }
            if self.subs.is_some() {
                // Messages that came during the batch go after its replies.
                self.take_inbox()?;
            }
            // appendfsync always: the batch's writes are on disk first.
            crate::persist::aof::before_reply(&self.rt).await;
            self.write_out()?;
            if more {
                continue;
            }
            self.read_more().await?;
        }
    }

    fn parsed_end(&self) -> usize {
        self.parsed_end_pos
    }

    /// The query buffer limit (`client-query-buffer-limit`), current.
    pub(crate) fn query_limit(&mut self) -> usize {
        self.refresh_limits();
        self.qlimit
    }

    /// Re-reads the cached limits if CONFIG SET changed them.
    fn refresh_limits(&mut self) {
        let gen = self
            .rt
            .shared
            .config_gen
            .load(std::sync::atomic::Ordering::Relaxed);
        if gen != self.config_gen {
            if let Ok(c) = self.rt.shared.config.lock() {
                self.qlimit = c.query_buffer_limit();
                self.out_hard = c.output_hard_limit();
                self.out_soft = c.output_soft_limit();
                self.pubsub_limits = c.output_limits_of("pubsub");
                self.limits.proto_max_bulk_len = c.proto_max_bulk_len();
            }
            if self.subs.is_some() {
                self.meta.borrow_mut().inbox_cap = self.pubsub_limits.0;
            }
            self.config_gen = gen;
        }
    }

    /// Waits for the send in flight, finishing it if it was partial.
    async fn finish_send(&mut self) -> std::io::Result<()> {
        while let Some((op, _)) = self.sending.as_mut() {
            let done = op.await;
            self.send_done(done)?;
        }
        Ok(())
    }

    /// Handles the completion of the send in flight: a partial send goes on
    /// with the rest (the client may be waiting for exactly those bytes, so
    /// it must not wait for our next request); a finished one gives its
    /// buffer back as the spare when more replies wait to go out, and to
    /// the allocator otherwise (or when one large reply grew it).
    pub(crate) fn send_done(&mut self, done: crate::net::Completed) -> std::io::Result<()> {
        let Some((_, from)) = self.sending.take() else {
            return Ok(());
        };
        let (n, mut buf) = done.into_sent();
        let n = n?;
        if from + n < buf.len() {
            let op = self.rt.net.send(self.fd, buf, from + n);
            self.sending = Some((op, from + n));
            return Ok(());
        }
        buf.clear();
        if buf.capacity() <= KEEP_MAX && !self.wbuf.is_empty() {
            self.spare = buf;
        }
        self.in_flight = 0;
        // What was made meanwhile goes out now.
        self.write_out()
    }

    /// Hands the replies to the kernel when no send is in flight; otherwise
    /// they wait in `wbuf` and go out when that send completes (as Redis
    /// keeps a reply list), so reading is never held up by a client that
    /// writes without reading. The hard output limit bounds what waits.
    pub(crate) fn write_out(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.check_output_limits()?;
        if self.sending.is_none() {
            let buf = std::mem::replace(&mut self.wbuf, std::mem::take(&mut self.spare));
            self.in_flight = buf.len();
            let op = self.rt.net.send(self.fd, buf, 0);
            self.sending = Some((op, 0));
        }
        Ok(())
    }

    /// Bytes of output this connection holds: waiting to be written, in
    /// flight, and made here but waiting for earlier replies.
    fn output_held(&self) -> usize {
        self.wbuf.len() + self.in_flight + self.co.pending_len()
    }

    /// What replies forwarded now may add before the connection is over
    /// its hard output limit (0: no limit). The shards that run them stop
    /// once past it (`ForwardBatch::budget`), so replies gathered from
    /// other shards count as they are made, not once assembled.
    pub(crate) fn output_budget(&mut self) -> usize {
        self.refresh_limits();
        let hard = self.output_limits().0;
        if hard == 0 {
            return 0;
        }
        hard.saturating_sub(self.output_held()).max(1)
    }

    /// The output limits of the connection's class (hard, (soft, seconds)):
    /// `pubsub` while it is subscribed, as Redis classes it, else `normal`.
    fn output_limits(&self) -> (usize, (usize, u64)) {
        if self.subs.is_some() {
            let (h, s, secs) = self.pubsub_limits;
            (h, (s, secs))
        } else {
            (self.out_hard, self.out_soft)
        }
    }

    /// Closes the client (Err) when its output is over the hard limit, or
    /// over the soft one for longer than its seconds, as Redis does.
    fn check_output_limits(&mut self) -> std::io::Result<()> {
        self.refresh_limits();
        let held = self.output_held();
        let (hard, soft) = self.output_limits();
        let over = if hard > 0 && held > hard {
            Some("hard")
        } else if soft.0 > 0 && held > soft.0 {
            let since = *self.soft_since.get_or_insert_with(Instant::now);
            (since.elapsed().as_secs() >= soft.1).then_some("soft")
        } else {
            self.soft_since = None;
            None
        };
        let over = over.or(self.co.over_limit.then_some("hard"));
        if let Some(which) = over {
            if self.co.over_limit {
                log::info!(
                    "closing client {}: replies made on other shards passed its hard output limit",
                    self.meta.borrow().id,
                );
            } else {
                log::info!(
                    "closing client {}: output buffer {} over the {which} limit",
                    self.meta.borrow().id,
                    held,
                );
            }
            self.close_after_write = true;
            self.wbuf.clear();
            return Err(std::io::Error::other("output buffer limit"));
        }
        Ok(())
    }

    /// Sends everything pending and waits until it is sent.
    async fn flush_all(&mut self) -> std::io::Result<()> {
        crate::persist::aof::before_reply(&self.rt).await;
        self.write_out()?;
        self.finish_send().await
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        // The cached limit (refreshed only when CONFIG SET moved the config
        // generation): no lock per read.
        self.refresh_limits();
        let qlimit = self.qlimit;
        if self.rbuf.len() >= qlimit {
            log::warn!(
                "closing client {} that reached max query buffer length ({} bytes)",
                self.meta.borrow().id,
                self.rbuf.len()
            );
            return Err(std::io::Error::other("query buffer limit"));
        }
        // A big bulk on its way: make room once rather than growing the
        // buffer chunk by chunk.
        if self.receiving.is_none() {
            let idle = self.rbuf.is_empty() && self.drained;
            let want = if idle {
                IDLE_READ
            } else {
                READ_CHUNK.max(self.need.saturating_sub(self.rbuf.len()).min(qlimit))
            };
            // Everything read was served: give back what one large
            // request grew, and, when the socket was emptied, everything
            // but the small buffer the next request will be read into (as
            // Redis shrinks an idle client's query buffer).
            if self.rbuf.is_empty()
                && self.rbuf.capacity() > if idle { IDLE_READ } else { KEEP_MAX }
            {
                self.rbuf = BytesMut::new();
            }
            if idle && self.wbuf.is_empty() {
                self.wbuf = Vec::new();
                self.spare = Vec::new();
            }
            self.rbuf.reserve(want);
            let offered = self.rbuf.capacity() - self.rbuf.len();
            let op = self
                .rt
                .net
                .recv(self.fd, std::mem::take(&mut self.rbuf), self.drained);
            self.receiving = Some((op, offered));
        }
        loop {
            match self.next_event().await {
                Event::Received(done) => {
                    let offered = self.receiving.take().map_or(0, |(_, o)| o);
                    self.rbuf = done.recv.unwrap_or_default();
                    match done.result {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "peer closed",
                            ))
                        }
                        // A short read emptied the socket: the next recv
                        // will most likely find nothing until the peer has
                        // our reply.
                        Ok(n) => self.drained = n < offered,
                        Err(e) => return Err(e),
                    }
                    // Requests arrived: their replies get a write buffer.
                    if self.wbuf.capacity() == 0 {
                        self.wbuf.reserve(WRITE_CHUNK);
                    }
                    break;
                }
                Event::Sent(done) => self.send_done(done)?,
                Event::Inbox => {
                    self.take_inbox()?;
                    self.write_out()?;
                }
            }
        }
        let mut m = self.meta.borrow_mut();
        m.qbuf = self.rbuf.len();
        Ok(())
    }

    /// Handles what the inbox holds (the recv stays in flight): pub/sub
    /// messages join the write buffer, after every reply already there.
    pub(crate) fn take_inbox(&mut self) -> std::io::Result<()> {
        if self.meta.borrow_mut().drain_messages(&mut self.wbuf) {
            Ok(())
        } else {
            Err(std::io::Error::other("killed"))
        }
    }

    /// Waits for the recv in flight or, meanwhile, for the send in flight
    /// to complete (both stay in flight when the other completes first).
    async fn next_event(&mut self) -> Event {
        let (receiving, sending, meta) = (&mut self.receiving, &mut self.sending, &self.meta);
        std::future::poll_fn(|cx| {
            {
                let mut m = meta.borrow_mut();
                if !m.inbox.is_empty() {
                    return Poll::Ready(Event::Inbox);
                }
                m.waker = Some(cx.waker().clone());
            }
            if let Some((op, _)) = receiving.as_mut() {
                if let Poll::Ready(done) = Pin::new(op).poll(cx) {
                    return Poll::Ready(Event::Received(done));
                }
            }
            if let Some((op, _)) = sending.as_mut() {
                if let Poll::Ready(done) = Pin::new(op).poll(cx) {
                    return Poll::Ready(Event::Sent(done));
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Parses complete requests at the front of the read buffer. Returns
    /// (more complete requests may remain, protocol error).
    fn parse_batch(&mut self) -> (bool, Option<ProtocolError>) {
        self.spans.clear();
        self.cmds.clear();
        let mut pos = 0;
        let mut more = false;
        let mut err = None;
        loop {
            if self.cmds.len() >= MAX_BATCH {
                more = true;
                break;
            }
            match self.parser.parse(
                &mut self.rbuf[..],
                pos,
                &self.limits,
                self.authed,
                &mut self.req_spans,
            ) {
                Ok(Parsed::Request { end }) => {
                    self.cmds
                        .push((self.spans.len() as u32, self.req_spans.len() as u32));
                    self.spans.extend_from_slice(&self.req_spans);
                    pos = end;
                }
                Ok(Parsed::Skip { end }) => pos = end,
                Ok(Parsed::Incomplete { need }) => {
                    self.need = need;
                    break;
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        self.parsed_end_pos = pos;
        (more, err)
    }

    async fn dispatch_batch(&mut self, frozen: &Bytes) -> std::io::Result<()> {
        self.now = tessera_shard::util::now_ms();
        self.meta.borrow_mut().last_active_ms = self.now;
        let spans = std::mem::take(&mut self.spans);
        let cmds = std::mem::take(&mut self.cmds);
        if cmds.len() > 1 {
            self.prefetch_keys(frozen, &spans, &cmds);
        }
        // CLIENT PAUSE, MONITOR, CLIENT REPLY: the slow path (gate.rs).
        let gated = crate::gate::needed(self);
        for &(first, argc) in &cmds {
            let args = Args::new(frozen, &spans[first as usize..(first + argc) as usize]);
            if gated || self.reply_off || self.reply_skip_next {
                Box::pin(crate::gate::dispatch(self, args, frozen)).await;
            } else {
                self.dispatch_one(args, frozen).await;
            }
            if self.close_after_write {
                break;
            }
            let held = self.output_held();
            if held > OUT_FLUSH || (self.out_hard > 0 && held > self.out_hard) {
                self.flush_pending(frozen).await;
                crate::persist::aof::before_reply(&self.rt).await;
                self.write_out()?;
            }
        }
        self.flush_pending(frozen).await;
        // A shard stopped at this client's output budget: it is over its
        // limit, and closes before anything more is written.
        self.check_output_limits()?;
        self.spans = spans;
        self.cmds = cmds;
        self.cmds.clear();
        Ok(())
    }

    /// Prefetches the first argument of every request of a pipelined batch
    /// as a key (where it is one, which is most commands), so the batch's
    /// cache misses overlap. A slot this shard does not own has an empty
    /// table here, so keys owned elsewhere cost only their hash.
    fn prefetch_keys(&mut self, frozen: &Bytes, spans: &[ArgSpan], cmds: &[(u32, u32)]) {
        let mut st = self.rt.state.borrow_mut();
        let db = st.keyspace.db(self.db);
        let at = &mut self.prefetched;
        at.clear();
        for &(first, argc) in cmds {
            if argc >= 2 {
                at.push(db.prefetch_slot(&frozen[spans[first as usize + 1].range()]));
            }
        }
        for &p in at.iter() {
            db.prefetch_entry(p);
        }
    }
}
