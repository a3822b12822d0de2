//! Pub/sub on the connection's side (docs/pubsub.md).
//!
//! A connection's subscriptions are registered in the registry of its own
//! shard (`tessera_shard::pubsub::PubSub`): subscribing never sends a
//! message to another shard. PUBLISH and SPUBLISH are fan-outs: every
//! shard delivers to its own subscribers and answers its count, summed by
//! the publisher's coordinator. A delivered message goes to the
//! subscriber's inbox (`ClientMeta::deliver`), and from there to its write
//! buffer between replies (`Conn::take_inbox`).
//!
//! Here: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBSUB, the RESP2 subscribed
//! mode gate, and INFO's counts.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tessera_protocol::{Args, Proto, Reply};
use tessera_shard::command::CommandSpec;
use tessera_shard::pubsub::{Kind, Subscriber};

use crate::clients::{ClientMeta, Event};
use crate::conn::Conn;
use crate::runtime::ShardRuntime;

/// A connection as its shard's registry sees it.
struct Handle {
    id: u64,
    meta: Rc<RefCell<ClientMeta>>,
}

impl Subscriber for Handle {
    fn id(&self) -> u64 {
        self.id
    }
    fn resp3(&self) -> bool {
        self.meta.borrow().proto == Proto::Resp3
    }
    fn deliver(&self, msg: &Bytes) {
        self.meta.borrow_mut().deliver(Event::Message(msg.clone()));
    }
}

/// A connection's subscriptions, while it has any. Dropping it (the last
/// unsubscribe, RESET, the connection closing) takes every one out of the
/// shard's registry.
pub struct ConnSubs {
    rt: Rc<ShardRuntime>,
    handle: Rc<Handle>,
    /// Channels, patterns, shard channels.
    names: [HashSet<Box<[u8]>>; 3],
}

/// Tells publishers on other shards whether this shard has subscribers.
fn mark_live(rt: &ShardRuntime, st: &tessera_shard::command::ShardState) {
    rt.shared.pubsub_live[rt.id].store(!st.pubsub.is_empty(), Ordering::Release);
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Channel => 0,
        Kind::Pattern => 1,
        Kind::Shard => 2,
    }
}

const KINDS: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

impl ConnSubs {
    /// What a (un)subscribe reply counts: channels and patterns together,
    /// shard channels on their own (as Redis 7.0 does).
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.names[2].len(),
            _ => self.names[0].len() + self.names[1].len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.names.iter().all(HashSet::is_empty)
    }

    fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        if !self.names[slot(kind)].remove(name) {
            return false;
        }
        let mut st = self.rt.state.borrow_mut();
        st.pubsub.unsubscribe(kind, name, self.handle.id);
        mark_live(&self.rt, &st);
        true
    }
}

impl Drop for ConnSubs {
    fn drop(&mut self) {
        // Never borrowed here in practice; a shutdown tearing tasks down
        // mid-borrow leaves the registry to go with the shard.
        let Ok(mut st) = self.rt.state.try_borrow_mut() else {
            return;
        };
        for kind in KINDS {
            for name in self.names[slot(kind)].drain() {
                st.pubsub.unsubscribe(kind, &name, self.handle.id);
            }
        }
        mark_live(&self.rt, &st);
        if let Ok(mut m) = self.handle.meta.try_borrow_mut() {
            m.subs = [0; 3];
        }
    }
}

/// Keeps CLIENT LIST's counts and the inbox bound in step; leaves
/// subscribed mode when nothing is left.
fn settle(conn: &mut Conn) {
    let Some(s) = conn.subs.as_ref() else {
        return;
    };
    let counts = [s.names[0].len(), s.names[1].len(), s.names[2].len()];
    let empty = s.is_empty();
    {
        let mut m = conn.meta.borrow_mut();
        m.subs = counts;
        m.inbox_cap = if empty { 0 } else { conn.pubsub_limits.0 };
    }
    if empty {
        conn.subs = None;
    }
}

/// One confirmation: [word, name or null, count], a push in RESP3.
fn confirm(out: &mut Vec<u8>, proto: Proto, word: &str, name: Option<&[u8]>, count: usize) {
    let mut r = Reply::new(out, proto);
    r.push(3);
    r.bulk(word.as_bytes());
    match name {
        Some(n) => r.bulk(n),
        None => r.null(),
    }
    r.int(count as i64);
}

/// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE.
pub fn subscribe(conn: &mut Conn, args: Args, kind: Kind) {
    if kind == Kind::Shard && conn.co.in_tx {
        // Inside EXEC, as Redis 7.0 (SUBSCRIBE and PSUBSCRIBE are let
        // through there for compatibility; SSUBSCRIBE is not).
        return Reply::new(&mut conn.wbuf, conn.proto)
            .error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    // Messages already delivered go before this reply.
    if conn.subs.is_some() && conn.take_inbox().is_err() {
        conn.close_after_write = true;
        return;
    }
    conn.query_limit(); // refreshes the cached output limits
    let rt = conn.rt.clone();
    let subs = conn.subs.get_or_insert_with(|| {
        let meta = conn.meta.clone();
        let id = meta.borrow().id;
        Box::new(ConnSubs {
            rt: rt.clone(),
            handle: Rc::new(Handle { id, meta }),
            names: Default::default(),
        })
    });
    let word = kind.words().0;
    for name in args.iter().skip(1) {
        if subs.names[slot(kind)].insert(name.into()) {
            let sub: Rc<dyn Subscriber> = subs.handle.clone();
            let mut st = rt.state.borrow_mut();
            st.pubsub.subscribe(kind, name, sub);
            mark_live(&rt, &st);
        }
        confirm(
            &mut conn.wbuf,
            conn.proto,
            word,
            Some(name),
            subs.count(kind),
        );
    }
    settle(conn);
}

/// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: the names given, or all of
/// that kind.
pub fn unsubscribe(conn: &mut Conn, args: Args, kind: Kind) {
    if conn.subs.is_some() && conn.take_inbox().is_err() {
        conn.close_after_write = true;
        return;
    }
    let word = kind.words().1;
    let proto = conn.proto;
    let Some(subs) = conn.subs.as_mut() else {
        if args.len() == 1 {
            confirm(&mut conn.wbuf, proto, word, None, 0);
        } else {
            for name in args.iter().skip(1) {
                confirm(&mut conn.wbuf, proto, word, Some(name), 0);
            }
        }
        return;
    };
    if args.len() == 1 {
        let all: Vec<Box<[u8]>> = subs.names[slot(kind)].iter().cloned().collect();
        if all.is_empty() {
            confirm(&mut conn.wbuf, proto, word, None, subs.count(kind));
        }
        for name in all {
            subs.remove(kind, &name);
            confirm(&mut conn.wbuf, proto, word, Some(&name), subs.count(kind));
        }
    } else {
        for name in args.iter().skip(1) {
            subs.remove(kind, name);
            confirm(&mut conn.wbuf, proto, word, Some(name), subs.count(kind));
        }
    }
    settle(conn);
}

/// A subscribed connection's PUBLISH delivered to itself (on its own
/// shard, the only one that can): the message goes before the reply, as
/// in Redis. A killed connection keeps its flag and closes after the batch.
pub fn own_messages(conn: &mut Conn) {
    let mut msgs = Vec::new();
    if conn.meta.borrow_mut().drain_messages(&mut msgs) && !msgs.is_empty() {
        conn.local_reply(|out| out.extend_from_slice(&msgs));
    }
}

/// RESET: every subscription goes, without confirmations (messages
/// already delivered go out before its reply).
pub fn reset(conn: &mut Conn) {
    if conn.subs.is_some() && conn.take_inbox().is_err() {
        conn.close_after_write = true;
    }
    conn.subs = None;
    conn.meta.borrow_mut().inbox_cap = 0;
}

/// In RESP2 subscribed mode only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING,
/// QUIT and RESET run; PING answers ["pong", message]. True when the
/// request was answered here.
pub fn gate(conn: &mut Conn, spec: &'static CommandSpec, args: &Args) -> bool {
    match spec.name {
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe"
        | "sunsubscribe" | "quit" | "reset" => false,
        "ping" if args.len() <= 2 => {
            let proto = conn.proto;
            let msg = if args.len() == 2 { args.get(1) } else { b"" };
            conn.local_reply(|out| {
                let mut r = Reply::new(out, proto);
                r.array(2);
                r.bulk(b"pong");
                r.bulk(msg);
            });
            true
        }
        "ping" => false,
        name => {
            let why = format!(
                "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            );
            if name == "exec" {
                conn.co.multi = None;
                conn.co.watching = None;
                crate::txn::multi::show(conn);
                conn.local_error(&format!(
                    "EXECABORT Transaction discarded because of: {why}"
                ));
            } else {
                conn.local_error(&format!("ERR {why}"));
                conn.co.flag_multi_error();
            }
            true
        }
    }
}

/// Collects something from every shard's registry.
async fn gather<T: Send + 'static>(
    rt: &ShardRuntime,
    f: Arc<dyn Fn(&tessera_shard::pubsub::PubSub) -> T + Send + Sync>,
) -> Vec<T> {
    rt.call_all(|| {
        let f = f.clone();
        Box::new(move |rt: &ShardRuntime| f(&rt.state.borrow().pubsub))
    })
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// Distinct names of one kind with subscribers on any shard.
async fn distinct(rt: &ShardRuntime, kind: Kind, pattern: Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let parts = gather(rt, Arc::new(move |ps| ps.names(kind, pattern.as_deref()))).await;
    let mut seen = HashSet::new();
    parts
        .into_iter()
        .flatten()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// PUBSUB CHANNELS / SHARDCHANNELS [pattern].
pub async fn channels(conn: &mut Conn, args: Args<'_>, kind: Kind) {
    if args.len() > 3 {
        return subcommand_syntax(conn, args.get(1));
    }
    let pattern = (args.len() == 3).then(|| args.get(2).to_vec());
    let names = distinct(&conn.rt, kind, pattern).await;
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.array(names.len());
    for n in &names {
        r.bulk(n);
    }
}

/// PUBSUB NUMSUB / SHARDNUMSUB [name ...]: subscribers on all shards.
pub async fn numsub(conn: &mut Conn, args: Args<'_>, kind: Kind) {
    let names: Arc<Vec<Vec<u8>>> = Arc::new(args.iter().skip(2).map(<[u8]>::to_vec).collect());
    let n2 = names.clone();
    let parts = gather(
        &conn.rt,
        Arc::new(move |ps| n2.iter().map(|n| ps.count(kind, n)).collect::<Vec<_>>()),
    )
    .await;
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    // An array in RESP3 too, as Redis 7.0 replies.
    r.array(names.len() * 2);
    for (i, n) in names.iter().enumerate() {
        r.bulk(n);
        r.int(parts.iter().map(|p| p[i]).sum::<usize>() as i64);
    }
}

/// PUBSUB NUMPAT: distinct patterns subscribed on any shard.
pub async fn numpat(conn: &mut Conn) {
    let n = distinct(&conn.rt, Kind::Pattern, None).await.len();
    Reply::new(&mut conn.wbuf, conn.proto).int(n as i64);
}

/// INFO stats: distinct channels, patterns and shard channels.
pub async fn totals(rt: &ShardRuntime) -> [usize; 3] {
    let mut out = [0; 3];
    for kind in KINDS {
        out[slot(kind)] = distinct(rt, kind, None).await.len();
    }
    out
}

fn subcommand_syntax(conn: &mut Conn, sub: &[u8]) {
    let msg = tessera_shard::command::subcommand_syntax_error("PUBSUB", sub);
    Reply::new(&mut conn.wbuf, conn.proto).error_bytes(&msg);
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB HELP
pub fn help(conn: &mut Conn) {
    let mut r = Reply::new(&mut conn.wbuf, conn.proto);
    r.array(HELP.len());
    for l in HELP {
        r.simple(l);
    }
}
