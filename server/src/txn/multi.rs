//! MULTI, EXEC and DISCARD. Commands after MULTI are checked (name, arity,
//! authentication, commands refused in a transaction) and copied into the
//! connection's queue; EXEC takes, in one step, the locks of every key the
//! queued commands and the watched keys touch, on every shard involved
//! (`super::acquire`), checks WATCH, runs the commands in order through the
//! ordinary routes, then releases. No other client sees any state in
//! between. An EXEC whose keys all live on the connection's own shard, and
//! whose commands never wait, runs inline with no lock and no message.

use bytes::Bytes;
use tessera_protocol::{ArgSpan, Args, Reply};
use tessera_shard::command::{flags, sort, table, CommandSpec, KeyPos, Route, Split};
use tessera_shard::slot::key_slot;
use tessera_shard::util::{eq_ic, parse_i64_strict};

use super::{Mode, Plan};
use crate::conn::Conn;

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// The commands queued since MULTI, copied out of the read buffers.
#[derive(Default)]
pub struct Queue {
    buf: Vec<u8>,
    spans: Vec<ArgSpan>,
    /// (first span, argc, command id) per queued command.
    cmds: Vec<(u32, u32, u16)>,
    /// A command was refused while queueing: EXEC fails.
    pub aborted: bool,
}

impl Queue {
    /// The queued commands' arguments (MONITOR shows them at EXEC).
    pub fn queued(&self) -> impl Iterator<Item = Args<'_>> {
        (0..self.cmds.len()).map(|i| self.args(&self.buf, i))
    }

    /// Whether a queued command writes or may replicate (CLIENT PAUSE
    /// WRITE holds such an EXEC).
    pub fn may_write(&self) -> bool {
        self.cmds.iter().any(|&(_, _, id)| {
            let c = table::by_id(id);
            c.has(flags::WRITE) || c.has(flags::MAY_REPLICATE)
        })
    }

    fn args<'a>(&'a self, buf: &'a [u8], i: usize) -> Args<'a> {
        let (first, argc, _) = self.cmds[i];
        Args::new(buf, &self.spans[first as usize..(first + argc) as usize])
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
        self.cmds.clear();
        self.aborted = false;
    }

    /// Calls `f` with every key of every queued command, in order, and
    /// whether that command writes (cluster mode checks EXEC's keys).
    pub fn each_key(&self, mut f: impl FnMut(&[u8], bool)) {
        let mut keypos = Vec::new();
        for i in 0..self.cmds.len() {
            let spec = table::by_id(self.cmds[i].2);
            let args = self.args(&self.buf, i);
            if spec.key_positions(&args, &mut keypos).is_ok() {
                for k in &keypos {
                    f(args.get(k.index), spec.has(flags::WRITE));
                }
            }
        }
    }

    /// Bytes held by the queue (for the client's memory).
    pub fn size(&self) -> usize {
        self.buf.len() + self.spans.len() * std::mem::size_of::<ArgSpan>()
    }
}

/// Shows the transaction's state in CLIENT LIST (`multi=` and the `x`
/// flag): the queued commands, or -1 outside MULTI.
pub fn show(conn: &Conn) {
    conn.meta.borrow_mut().multi = conn.co.multi.as_ref().map_or(-1, |q| q.cmds.len() as i64);
}

/// Clears `multi=` in CLIENT LIST when EXEC returns, whichever way.
struct Shown(std::rc::Rc<std::cell::RefCell<crate::clients::ClientMeta>>);

impl Drop for Shown {
    fn drop(&mut self) {
        self.0.borrow_mut().multi = -1;
    }
}

/// EXEC with arguments inside MULTI discards the transaction with its own
/// error, as Redis does.
pub fn exec_arity_abort(conn: &mut Conn, args: &Args) -> bool {
    if !eq_ic(args.get(0), b"exec") || args.len() == 1 {
        return false;
    }
    conn.co.multi = None;
    conn.co.watching = None;
    show(conn);
    conn.local_error(
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command",
    );
    true
}

/// Inside MULTI: queues a command (true), or says it runs now (false:
/// EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
pub fn queue(conn: &mut Conn, spec: &'static CommandSpec, id: u16, args: &Args) -> bool {
    if matches!(
        spec.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    ) {
        return false;
    }
    if spec.has(flags::NO_MULTI) {
        conn.local_error("ERR Command not allowed inside a transaction");
        conn.co.flag_multi_error();
        return true;
    }
    let limit = conn.query_limit();
    let Some(q) = conn.co.multi.as_mut() else {
        return false;
    };
    let first = q.spans.len() as u32;
    for a in args.iter() {
        q.spans.push(ArgSpan::new(q.buf.len(), a.len()));
        q.buf.extend_from_slice(a);
    }
    q.cmds.push((first, args.len() as u32, id));
    conn.meta.borrow_mut().multi += 1;
    // Queued commands count against the query buffer limit: a client
    // cannot grow the server without bound by never calling EXEC.
    if limit > 0 && q.size() > limit {
        log::warn!(
            "closing client {} whose MULTI queue reached the query buffer limit ({} bytes)",
            conn.meta.borrow().id,
            limit
        );
        conn.co.multi = None;
        conn.meta.borrow_mut().killed = true;
        return true;
    }
    let proto = conn.proto;
    conn.local_reply(|out| Reply::new(out, proto).simple("QUEUED"));
    true
}

/// MULTI
pub fn multi(conn: &mut Conn) {
    if conn.co.multi.is_some() {
        return conn.local_error("ERR MULTI calls can not be nested");
    }
    conn.co.multi = Some(conn.co.spare_queue.take().unwrap_or_default());
    show(conn);
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// DISCARD
pub fn discard(conn: &mut Conn) {
    if conn.co.multi.take().is_none() {
        return conn.local_error("ERR DISCARD without MULTI");
    }
    show(conn);
    conn.co.watching = None;
    Reply::new(&mut conn.wbuf, conn.proto).ok();
}

/// What one queued command needs, as `visit` reports it.
enum Need<'a> {
    /// A key, on its owner shard, in the database selected at that point.
    Key(usize, usize, &'a [u8], Mode),
    /// Every shard whole: fan-outs, SORT with patterns, COPY ... DB.
    AllShards(Mode),
    /// The command may wait (a connection command: INFO, CLIENT...).
    Awaits,
}

/// Reports what each queued command, then each watched key, needs: keys
/// on their owners (in the database selected at that point of the
/// transaction), whole shards for commands that read or write keys not
/// among their arguments, and the watched keys (shared).
fn visit<'a>(conn: &'a Conn, q: &'a Queue, buf: &'a [u8], mut f: impl FnMut(Need<'a>)) {
    let rt = &conn.rt;
    let mut db = conn.db;
    let mut keypos: Vec<KeyPos> = Vec::new();
    for i in 0..q.cmds.len() {
        let args = q.args(buf, i);
        let spec = table::by_id(q.cmds[i].2);
        match spec.route {
            Route::Keyed(_, split) => {
                let wide = spec.name == "copy"
                    || (split == Split::Gather && sort::pattern_reads(spec.name, &args).is_some());
                if wide {
                    f(Need::AllShards(Mode::of(spec.has(flags::WRITE))));
                } else if spec.key_positions(&args, &mut keypos).is_ok() {
                    for k in &keypos {
                        let key = args.get(k.index);
                        let owner = rt.shared.owner(key_slot(key));
                        f(Need::Key(owner, db, key, Mode::of(k.write)));
                    }
                }
            }
            Route::Fanout(..) => f(Need::AllShards(Mode::of(spec.has(flags::WRITE)))),
            Route::Local(_) => {}
            Route::Conn => {
                // A script may touch any key of any shard (declared or
                // not): it holds every shard whole (script/eval.rs).
                if spec.acl & tessera_shard::command::acl::SCRIPTING != 0
                    && spec.name.starts_with("eval")
                {
                    f(Need::AllShards(Mode::Exclusive));
                }
                f(Need::Awaits);
                if spec.name == "select" {
                    let n = parse_i64_strict(args.get(1)).unwrap_or(-1);
                    if n >= 0 && (n as usize) < rt.state.borrow().config.databases {
                        db = n as usize;
                    }
                }
            }
        }
    }
    if let Some(w) = &conn.co.watching {
        for (shard, wdb, key) in &w.keys {
            f(Need::Key(*shard, *wdb, key, Mode::Shared));
        }
    }
}

/// Whether every key lives on this shard and no command waits: then EXEC
/// can run inline, with no lock, when no transaction holds or waits for
/// locks here (it never yields, so nothing runs between its WATCH check
/// and its commands).
fn runs_inline(conn: &Conn, q: &Queue, buf: &[u8]) -> bool {
    let me = conn.rt.id;
    let mut inline = true;
    visit(conn, q, buf, |n| {
        inline &= matches!(n, Need::Key(owner, ..) if owner == me);
    });
    inline
}

/// The locks EXEC takes, per shard.
fn plan(conn: &Conn, q: &Queue, buf: &[u8]) -> Plan {
    let mut plan = Plan::new();
    let nshards = conn.rt.nshards();
    visit(conn, q, buf, |n| match n {
        Need::Key(owner, db, key, mode) => plan.entry(owner).or_default().add(db, key, mode),
        Need::AllShards(mode) => {
            for s in 0..nshards {
                plan.entry(s).or_default().add_whole(mode);
            }
        }
        Need::Awaits => {}
    });
    plan
}

/// EXEC
pub async fn exec(conn: &mut Conn) {
    let Some(q) = conn.co.multi.take() else {
        return conn.local_error("ERR EXEC without MULTI");
    };
    // CLIENT LIST shows the queue (and the x flag) until EXEC is done.
    let _shown = Shown(conn.meta.clone());
    if q.aborted {
        conn.co.watching = None;
        return conn.local_error(EXECABORT);
    }
    let mut q = q;
    let buf = Bytes::from(std::mem::take(&mut q.buf));
    let rt = conn.rt.clone();
    // Held until the commands ran (None: the inline path).
    let mut guard = None;
    if rt.locks_idle() && runs_inline(conn, &q, &buf) {
        if let Some(w) = &conn.co.watching {
            for (_, check) in w.checks() {
                rt.check_watch(&check);
            }
        }
    } else {
        let checks = conn
            .co
            .watching
            .as_ref()
            .map(|w| w.checks())
            .unwrap_or_default();
        match super::acquire(&rt, plan(conn, &q, &buf), checks).await {
            Ok(g) => guard = Some(g),
            Err(()) => {
                conn.co.watching = None;
                return conn.local_error("ERR shard unavailable");
            }
        }
    }
    let watching = conn.co.watching.take();
    if watching.as_ref().is_some_and(|w| w.who.is_dirty()) {
        drop(guard);
        drop(watching);
        return Reply::new(&mut conn.wbuf, conn.proto).null_array();
    }
    conn.co.in_tx = true;
    Reply::new(&mut conn.wbuf, conn.proto).array(q.cmds.len());
    for i in 0..q.cmds.len() {
        let args = q.args(&buf, i);
        let id = q.cmds[i].2;
        let spec = table::by_id(id);
        conn.meta.borrow_mut().last_cmd = spec.name;
        conn.route(spec, id, args, &buf).await;
    }
    conn.flush_pending(&buf).await;
    conn.co.in_tx = false;
    // The AOF logs the transaction between MULTI and EXEC, as Redis does.
    conn.commit_aof(true);
    // Clients blocked on keys it pushed to are served now that it is
    // done (by the releases, when it held locks).
    rt.after_writes();
    drop(guard);
    drop(watching);
    // The queue's buffers serve the next MULTI of this connection, unless
    // one big transaction grew them (an idle connection stays small).
    q.buf = Vec::from(buf);
    if q.buf.capacity() <= 16 * 1024 {
        q.clear();
        conn.co.spare_queue = Some(q);
    }
}
