//! What the server knows about each connection (CLIENT LIST/INFO/KILL).

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use tessera_protocol::Proto;

pub struct ClientMeta {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub db: usize,
    pub created: Instant,
    /// Unix ms of the last request batch.
    pub last_active_ms: i64,
    pub last_cmd: &'static str,
    pub proto: Proto,
    pub qbuf: usize,
    pub obuf: usize,
    /// Set by CLIENT KILL; the connection closes at its next turn.
    pub killed: bool,
    /// The connection's inbox: events that are not replies to its own
    /// requests, delivered on its shard's thread (`deliver`).
    pub inbox: VecDeque<Event>,
    /// Wakes the connection when it waits for its socket.
    pub waker: Option<Waker>,
    /// Subscriptions: channels, patterns, shard channels (CLIENT LIST).
    pub subs: [usize; 3],
    /// Bytes of messages in the inbox, and the most it may hold (the
    /// pubsub class's hard output limit; 0: none): past it the client is
    /// closed, as its output buffer would be.
    pub inbox_bytes: usize,
    pub inbox_cap: usize,
    /// Set while the client is blocked (BLPOP...): its claim, which CLIENT
    /// UNBLOCK takes.
    pub blocked: Option<std::sync::Arc<tessera_shard::blocking::BlockState>>,
    /// Commands queued in MULTI; -1 outside a transaction.
    pub multi: i64,
    /// CLIENT TRACKING on: where its invalidations go.
    pub tracker: Option<tessera_shard::tracking::Tracker>,
    /// MONITOR: receives every command's line (monitor.rs).
    pub monitor: bool,
}

/// What can reach a connection besides its own replies. CLIENT KILL and
/// the idle timeout and CLIENT UNBLOCK use it; pub/sub messages are meant
/// to come the same way.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Close the connection (CLIENT KILL, `timeout`).
    Kill,
    /// CLIENT UNBLOCK took the blocked client's claim: it replies as on a
    /// timeout, or with an UNBLOCKED error.
    Unblock { error: bool },
    /// A pub/sub message, encoded for the connection's protocol, shared
    /// with the other subscribers of its shard.
    Message(Bytes),
}

impl ClientMeta {
    /// Puts an event in the inbox and wakes the connection. Must run on
    /// the connection's own shard (send it there with a call otherwise).
    pub fn deliver(&mut self, ev: Event) {
        match &ev {
            Event::Kill => self.killed = true,
            Event::Unblock { .. } => {}
            Event::Message(m) => {
                if self.killed {
                    return;
                }
                self.inbox_bytes += m.len();
                if self.inbox_cap > 0 && self.inbox_bytes > self.inbox_cap {
                    log::info!(
                        "closing client {}: pub/sub messages waiting for it passed its output limit",
                        self.id
                    );
                    self.killed = true;
                    self.inbox.clear();
                    self.inbox.push_back(Event::Kill);
                    if let Some(w) = self.waker.take() {
                        w.wake();
                    }
                    return;
                }
            }
        }
        self.inbox.push_back(ev);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// CLIENT LIST's flags, in Redis's order: P subscribed, x in MULTI,
    /// b blocked; N for none.
    fn flags(&self) -> String {
        let mut f = String::new();
        if self.monitor {
            f.push('O');
        }
        if self.is_pubsub() {
            f.push('P');
        }
        if self.multi >= 0 {
            f.push('x');
        }
        if self.blocked.is_some() {
            f.push('b');
        }
        if self.tracker.is_some() {
            f.push('t');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// Whether the client is subscribed to anything (Redis's pubsub class).
    pub fn is_pubsub(&self) -> bool {
        self.subs.iter().any(|&n| n > 0)
    }

    /// Empties the inbox, appending its messages to `out`; false when the
    /// connection must close (killed).
    pub fn drain_messages(&mut self, out: &mut Vec<u8>) -> bool {
        if self.killed {
            self.inbox.clear();
            return false;
        }
        self.inbox_bytes = 0;
        for ev in self.inbox.drain(..) {
            if let Event::Message(b) = ev {
                out.extend_from_slice(&b);
            }
        }
        true
    }

    /// One line of CLIENT LIST / CLIENT INFO, with Redis 7's fields.
    pub fn info_line(&self) -> String {
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name,
            now.duration_since(self.created).as_secs(),
            (tessera_shard::util::now_ms() - self.last_active_ms).max(0) / 1000,
            self.flags(),
            self.db,
            self.subs[0],
            self.subs[1],
            self.subs[2],
            self.multi,
            self.qbuf,
            self.qbuf.max(1024),
            self.obuf,
            self.qbuf + self.obuf,
            self.last_cmd,
            self.tracker.map_or(-1, |t| if t.redirected { t.id as i64 } else { 0 }),
            if self.proto == Proto::Resp3 { 3 } else { 2 },
            self.lib_name,
            self.lib_ver,
        )
    }
}
