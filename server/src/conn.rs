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
use tessera_protocol::{ArgSpan, Args, Proto, Reply};
use tessera_shard::command::{self, flags, sort, table, CommandSpec, KeyPos, Merge, Route, Split};
use tessera_shard::slot::key_slot;

use crate::clients::ClientMeta;
use crate::exec::execute;
use crate::mesh::{Answer, BatchReply, ForwardBatch, Item, Request};
use crate::resp_skip::{parse_int_reply, split_array};
use crate::runtime::ShardRuntime;

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

/// Where one request's reply comes from, in request order.
enum Seg {
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
enum Part {
    Local { start: usize, end: usize },
    Remote { shard: usize, item: usize },
}

#[derive(Default)]
struct TargetBatch {
    spans: Vec<ArgSpan>,
    items: Vec<Item>,
}

pub struct Conn {
    pub rt: Rc<ShardRuntime>,
    /// The socket; its I/O goes through the shard's ring (net.rs).
    fd: std::os::fd::RawFd,
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
    targets: Vec<TargetBatch>,
    segs: Vec<Seg>,
    parts: Vec<Part>,
    /// For split commands: per key in request order, (part, index in part).
    key_order: Vec<(u32, u32)>,
    local_out: Vec<u8>,
    keypos: Vec<KeyPos>,
    /// The last recv left the socket empty (see `NetRing::recv`).
    drained: bool,
    /// The recv in flight, which owns `rbuf` until it completes, and the
    /// room it was offered.
    receiving: Option<(crate::net::OpFuture, usize)>,
    /// Scratch for `prefetch_keys`: each request's (key hash, slot).
    prefetched: Vec<(u64, u16)>,
    now: i64,
    /// Bytes the parser says the next request needs (big bulks), and where
    /// the parsed requests of this batch end.
    need: usize,
    parsed_end_pos: usize,
    /// Limits read from the config, refreshed when `config_gen` moves.
    qlimit: usize,
    out_hard: usize,
    config_gen: u64,
    /// The last reply buffer's send, still in flight: the next recv is
    /// posted without waiting for it (one wake-up per request, not two).
    sending: Option<(crate::net::OpFuture, usize)>,
    /// A spare write buffer, swapped in while the other is being sent.
    spare: Vec<u8>,
    /// Bytes of the send in flight (for the output limit).
    in_flight: usize,
}

/// What a connection waiting for input can be woken by.
enum Event {
    Received(crate::net::Completed),
    Sent(crate::net::Completed),
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
        authed: !requirepass,
        close_after_write: false,
        targets: (0..nshards).map(|_| TargetBatch::default()).collect(),
        segs: Vec::new(),
        parts: Vec::new(),
        key_order: Vec::new(),
        local_out: Vec::new(),
        keypos: Vec::new(),
        prefetched: Vec::new(),
        drained: true,
        receiving: None,
        now: 0,
        need: 0,
        parsed_end_pos: 0,
        qlimit: 0,
        out_hard: 0,
        config_gen: u64::MAX,
        sending: None,
        spare: Vec::new(),
        in_flight: 0,
    };
    if let Err(e) = conn.run().await {
        log::debug!("client {id} closed: {e}");
    }
    // A recv or send still in flight is cancelled as its future drops
    // (net.rs keeps the buffer until the kernel is done with it); the
    // close goes through the ring after them.
    drop(conn);
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
                self.limits.proto_max_bulk_len = c.proto_max_bulk_len();
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
    fn send_done(&mut self, done: crate::net::Completed) -> std::io::Result<()> {
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
    fn write_out(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        self.refresh_limits();
        let pending = self.wbuf.len() + self.in_flight;
        if self.out_hard > 0 && pending > self.out_hard {
            log::info!(
                "closing client {}: output buffer {} over the hard limit {}",
                self.meta.borrow().id,
                pending,
                self.out_hard
            );
            self.close_after_write = true;
            self.wbuf.clear();
            return Err(std::io::Error::other("output buffer limit"));
        }
        if self.sending.is_none() {
            let buf = std::mem::replace(&mut self.wbuf, std::mem::take(&mut self.spare));
            self.in_flight = buf.len();
            let op = self.rt.net.send(self.fd, buf, 0);
            self.sending = Some((op, 0));
        }
        Ok(())
    }

    /// Sends everything pending and waits until it is sent.
    async fn flush_all(&mut self) -> std::io::Result<()> {
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
            }
        }
        let mut m = self.meta.borrow_mut();
        m.qbuf = self.rbuf.len();
        Ok(())
    }

    /// Waits for the recv in flight or, meanwhile, for the send in flight
    /// to complete (both stay in flight when the other completes first).
    async fn next_event(&mut self) -> Event {
        let (receiving, sending) = (&mut self.receiving, &mut self.sending);
        std::future::poll_fn(|cx| {
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
        for &(first, argc) in &cmds {
            let args = Args::new(frozen, &spans[first as usize..(first + argc) as usize]);
            self.dispatch_one(args, frozen).await;
            if self.close_after_write {
                break;
            }
            if self.wbuf.len() + self.local_out.len() > OUT_FLUSH {
                self.flush_pending(frozen).await;
                self.write_out()?;
            }
        }
        self.flush_pending(frozen).await;
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

    /// The output buffer for a reply made here, right now: straight into
    /// the write buffer when nothing is pending before it.
    fn local_reply<F: FnOnce(&mut Vec<u8>)>(&mut self, f: F) {
        if self.segs.is_empty() {
            f(&mut self.wbuf);
        } else {
            let start = self.local_out.len();
            f(&mut self.local_out);
            let end = self.local_out.len();
            self.segs.push(Seg::Local { start, end });
        }
    }

    fn local_error(&mut self, msg: &str) {
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

    async fn dispatch_one(&mut self, args: Args<'_>, frozen: &Bytes) {
        let Some((spec, id)) = self.resolve(&args) else {
            return;
        };
        if !self.authed && !spec.has(flags::NO_AUTH) {
            self.local_error("NOAUTH Authentication required.");
            return;
        }
        self.meta.borrow_mut().last_cmd = spec.name;
        match spec.route {
            Route::Local(_) => self.run_here(id, args),
            Route::Keyed(_, split) => {
                let mut keypos = std::mem::take(&mut self.keypos);
                match spec.key_positions(&args, &mut keypos) {
                    Err(msg) => self.local_error(msg),
                    Ok(()) if keypos.is_empty() => self.run_here(id, args),
                    Ok(()) => {
                        let shared = &self.rt.shared;
                        let owner0 = shared.owner(key_slot(args.get(keypos[0].index)));
                        let same = keypos[1..]
                            .iter()
                            .all(|k| shared.owner(key_slot(args.get(k.index))) == owner0);
                        // SORT whose BY/GET patterns read keys: when its
                        // sorted key's shard does not own them all, they
                        // are gathered here with SORT's own keys. All owned
                        // there (or too many to gather): routed as usual.
                        let mut extra = Vec::new();
                        if split == Split::Gather {
                            if let Some(reads) = sort::pattern_reads(spec.name, &args) {
                                self.flush_pending(frozen).await;
                                extra = crate::gather::sort_pattern_keys(self, reads)
                                    .await
                                    .unwrap_or_default();
                            }
                        }
                        if !extra.is_empty() {
                            crate::gather::run(self, spec, id, args, &keypos, &extra).await;
                        } else if same {
                            if owner0 == self.rt.id {
                                self.run_here(id, args);
                            } else {
                                self.forward(owner0, id, args.spans(), true);
                            }
                        } else if split == Split::Gather {
                            self.flush_pending(frozen).await;
                            crate::gather::run(self, spec, id, args, &keypos, &[]).await;
                        } else {
                            self.split(spec, id, split, args, &keypos);
                        }
                    }
                }
                self.keypos = keypos;
            }
            Route::Fanout(_, merge) => self.fanout(id, merge, args),
            Route::Conn => {
                self.flush_pending(frozen).await;
                crate::commands::run(self, spec, id, args).await;
            }
        }
    }

    /// Runs a request on this shard now.
    fn run_here(&mut self, id: u16, args: Args) {
        let (db, proto, now) = (self.db, self.proto, self.now);
        let rt = self.rt.clone();
        self.local_reply(|out| {
            let mut st = rt.state.borrow_mut();
            execute(&mut st, id, args, db, proto, now, true, out);
        });
    }

    /// Adds a request to the batch for `shard`; returns its item index.
    fn forward(&mut self, shard: usize, id: u16, spans: &[ArgSpan], count: bool) -> usize {
        let t = &mut self.targets[shard];
        t.items.push(Item {
            first: t.spans.len() as u32,
            argc: spans.len() as u32,
            cmd: id,
            db: self.db as u16,
            proto: self.proto,
            count,
        });
        t.spans.extend_from_slice(spans);
        let item = t.items.len() - 1;
        if count {
            self.segs.push(Seg::Remote { shard, item });
        }
        item
    }

    /// Runs a part of a split or fan-out command: here, or forwarded.
    fn part(&mut self, shard: usize, id: u16, spans: &[ArgSpan], buf: &[u8]) -> Part {
        if shard == self.rt.id {
            let start = self.local_out.len();
            let mut st = self.rt.state.borrow_mut();
            execute(
                &mut st,
                id,
                Args::new(buf, spans),
                self.db,
                self.proto,
                self.now,
                false,
                &mut self.local_out,
            );
            Part::Local {
                start,
                end: self.local_out.len(),
            }
        } else {
            Part::Remote {
                shard,
                item: self.forward(shard, id, spans, false),
            }
        }
    }

    /// Counts a split or fan-out command once, at the coordinator.
    fn count_call(&self, id: u16) {
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
        let order_start = self.key_order.len();
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
        let parts_start = self.parts.len();
        let mut part_of_shard = vec![u32::MAX; nshards];
        for (s, (sp, n)) in per.iter().enumerate() {
            if *n > 0 {
                part_of_shard[s] = (self.parts.len() - parts_start) as u32;
                let p = self.part(s, id, sp, args.buf());
                self.parts.push(p);
            }
        }
        for (s, idx) in key_shard {
            self.key_order.push((part_of_shard[s], idx));
        }
        self.count_call(id);
        self.segs.push(Seg::Split {
            how,
            parts: (parts_start, self.parts.len()),
            order: (order_start, self.key_order.len()),
            nkeys: keypos.len(),
        });
    }

    /// DBSIZE, KEYS, FLUSHDB...: every shard runs it; replies are merged.
    fn fanout(&mut self, id: u16, how: Merge, args: Args) {
        let parts_start = self.parts.len();
        for s in 0..self.rt.nshards() {
            let p = self.part(s, id, args.spans(), args.buf());
            self.parts.push(p);
        }
        self.count_call(id);
        self.segs.push(Seg::Merge {
            how,
            parts: (parts_start, self.parts.len()),
        });
    }

    /// Sends every shard its batch, waits for all replies, and appends all
    /// pending replies to the write buffer in request order.
    pub async fn flush_pending(&mut self, frozen: &Bytes) {
        if self.segs.is_empty() {
            return;
        }
        let n = self.rt.nshards();
        let mut waits: Vec<(usize, u32)> = Vec::new();
        for s in 0..n {
            if self.targets[s].items.is_empty() {
                continue;
            }
            let t = &mut self.targets[s];
            let ticket = self.rt.tickets.open();
            let batch = ForwardBatch {
                ticket,
                buf: frozen.clone(),
                spans: std::mem::take(&mut t.spans),
                items: std::mem::take(&mut t.items),
            };
            if self.rt.send(s, Request::Batch(batch)).await.is_ok() {
                waits.push((s, ticket));
            } else {
                self.rt.tickets.cancel(ticket);
            }
        }
        let mut replies: Vec<Option<BatchReply>> = (0..n).map(|_| None).collect();
        for (s, ticket) in waits {
            if let Answer::Batch(r) = self.rt.tickets.wait(ticket).await {
                replies[s] = Some(r);
            }
        }
        let segs = std::mem::take(&mut self.segs);
        for seg in &segs {
            match *seg {
                Seg::Local { start, end } => {
                    self.wbuf.extend_from_slice(&self.local_out[start..end])
                }
                Seg::Remote { shard, item } => match &replies[shard] {
                    Some(r) => self.wbuf.extend_from_slice(r.item(item)),
                    None => Reply::new(&mut self.wbuf, self.proto).error("ERR shard unavailable"),
                },
                Seg::Split {
                    how,
                    parts,
                    order,
                    nkeys,
                } => {
                    let bodies: Vec<Option<&[u8]>> = self.parts[parts.0..parts.1]
                        .iter()
                        .map(|p| part_bytes(p, &self.local_out, &replies))
                        .collect();
                    assemble_split(
                        &mut self.wbuf,
                        self.proto,
                        how,
                        &bodies,
                        &self.key_order[order.0..order.1],
                        nkeys,
                    );
                }
                Seg::Merge { how, parts } => {
                    let bodies: Vec<Option<&[u8]>> = self.parts[parts.0..parts.1]
                        .iter()
                        .map(|p| part_bytes(p, &self.local_out, &replies))
                        .collect();
                    assemble_merge(&mut self.wbuf, self.proto, how, &bodies);
                }
            }
        }
        self.segs = segs;
        self.segs.clear();
        self.local_out.clear();
        self.parts.clear();
        self.key_order.clear();
    }
}

fn part_bytes<'a>(
    p: &Part,
    local: &'a [u8],
    replies: &'a [Option<BatchReply>],
) -> Option<&'a [u8]> {
    match *p {
        Part::Local { start, end } => Some(&local[start..end]),
        Part::Remote { shard, item } => replies[shard].as_ref().map(|r| r.item(item)),
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
