//! CLIENT TRACKING on the connection's side, and the delivery of
//! invalidations (the table itself is `tessera_shard::tracking`, on each
//! shard that owns keys).
//!
//! A tracking connection tells the shard that runs each of its commands
//! who reads (`Tracking::reader`, set around the command: inline, or from
//! the forwarded batch's `tracker`) and, with NOLOOP, who writes. The
//! invalidations a write causes are sent, right after it, to the shard of
//! the client that must get them: a RESP3 push `invalidate [key]` (`_` for
//! FLUSHALL), or, for a RESP2 client that others redirect to and that is
//! subscribed, a `__redis__:invalidate` message, as Redis sends them.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tessera_protocol::{Args, Proto, Reply};
use tessera_shard::tracking::{Invalidation, Tracker};
use tessera_shard::util::{eq_ic, parse_i64_strict};

use crate::clients::Event;
use crate::conn::Conn;
use crate::mesh::Request;
use crate::runtime::ShardRuntime;

/// A connection's CLIENT TRACKING settings.
#[derive(Clone, Debug, Default)]
pub struct TrackState {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES/NO, for the next command only.
    pub caching: Option<bool>,
    /// The client invalidations go to instead (id, its shard).
    pub redirect: Option<(u64, usize)>,
    pub prefixes: Vec<Vec<u8>>,
}

impl TrackState {
    /// Where this client's invalidations go.
    pub fn tracker(&self, conn_shard: usize, id: u64) -> Tracker {
        match self.redirect {
            Some((to, shard)) => Tracker {
                shard: shard as u16,
                id: to,
                owner: id,
                redirected: true,
            },
            None => Tracker {
                shard: conn_shard as u16,
                id,
                owner: id,
                redirected: false,
            },
        }
    }

    /// Whether the command about to run has its reads tracked.
    pub fn tracks_next(&self) -> bool {
        !self.bcast
            && (!self.optin || self.caching == Some(true))
            && (!self.optout || self.caching != Some(false))
    }
}

impl Conn {
    /// Who reads and who writes, for the command about to run here (only
    /// called for tracking connections).
    pub(crate) fn tracking_roles(&self) -> (Option<Tracker>, Option<u64>) {
        let Some(t) = &self.tracking else {
            return (None, None);
        };
        let id = self.meta.borrow().id;
        let reader = t.tracks_next().then(|| t.tracker(self.rt.id, id));
        (reader, t.noloop.then_some(id))
    }
}

impl ShardRuntime {
    /// Sends the invalidations the writes just run caused.
    pub(crate) fn deliver_invalidations(&self) {
        let (mut out, flushed) = {
            let mut st = self.state.borrow_mut();
            let t = &mut st.changes.tracking;
            (std::mem::take(&mut t.out), std::mem::take(&mut t.flushed))
        };
        if flushed {
            for (_, m) in self.clients.borrow().iter() {
                if let Some(t) = m.borrow().tracker {
                    out.push((t, None));
                }
            }
        }
        let mut by_shard: BTreeMap<usize, Vec<Invalidation>> = BTreeMap::new();
        for (t, key) in out {
            by_shard.entry(t.shard as usize).or_default().push((t, key));
        }
        for (shard, list) in by_shard {
            if shard == self.id {
                invalidate_here(self, list);
            } else {
                self.send_now(
                    shard,
                    Request::Do(Box::new(move |rt| invalidate_here(rt, list))),
                );
            }
        }
    }
}

/// Delivers invalidations to clients of this shard.
fn invalidate_here(rt: &ShardRuntime, list: Vec<Invalidation>) {
    let clients = rt.clients.borrow();
    for (t, key) in list {
        let Some((_, m)) = clients.iter().find(|(_, m)| m.borrow().id == t.id) else {
            continue;
        };
        let mut m = m.borrow_mut();
        let mut msg = Vec::new();
        if m.proto == Proto::Resp3 {
            let mut r = Reply::new(&mut msg, Proto::Resp3);
            r.push(2);
            r.bulk(b"invalidate");
        } else if t.redirected && m.is_pubsub() {
            let mut r = Reply::new(&mut msg, Proto::Resp2);
            r.array(3);
            r.bulk(b"message");
            r.bulk(b"__redis__:invalidate");
        } else {
            // RESP2 on its own connection: nothing can carry it (Redis).
            continue;
        }
        let mut r = Reply::new(&mut msg, m.proto);
        match key {
            Some(k) => {
                r.array(1);
                r.bulk(&k);
            }
            None => r.null(),
        }
        m.deliver(Event::Message(Bytes::from(msg)));
    }
}

/// Finds which shard client `id` lives on.
async fn shard_of(conn: &Conn, id: u64) -> Option<usize> {
    let found = conn
        .rt
        .call_all(|| {
            Box::new(move |rt: &ShardRuntime| {
                rt.clients.borrow().iter().any(|(_, m)| m.borrow().id == id)
            })
        })
        .await;
    found.iter().position(|f| *f == Some(true))
}

/// Forgets a client's registrations on every shard (tracking off, or the
/// connection closing).
pub fn forget_everywhere(rt: &ShardRuntime, id: u64) {
    for s in 0..rt.nshards() {
        let f = move |rt: &ShardRuntime| rt.state.borrow_mut().changes.tracking.forget(id);
        if s == rt.id {
            f(rt);
        } else {
            rt.send_now(s, Request::Do(Box::new(f)));
        }
    }
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub async fn tracking(conn: &mut Conn, args: Args<'_>) {
    let on = if eq_ic(args.get(2), b"on") {
        true
    } else if eq_ic(args.get(2), b"off") {
        false
    } else {
        return conn.local_error("ERR syntax error");
    };
    let mut want = TrackState::default();
    let mut redirect: Option<u64> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args.get(i);
        let more = i + 1 < args.len();
        if eq_ic(a, b"redirect") && more {
            i += 1;
            match parse_i64_strict(args.get(i)) {
                Some(n) => redirect = Some(n as u64),
                None => return conn.local_error("ERR value is not an integer or out of range"),
            }
        } else if eq_ic(a, b"bcast") {
            want.bcast = true;
        } else if eq_ic(a, b"optin") {
            want.optin = true;
        } else if eq_ic(a, b"optout") {
            want.optout = true;
        } else if eq_ic(a, b"noloop") {
            want.noloop = true;
        } else if eq_ic(a, b"prefix") && more {
            i += 1;
            want.prefixes.push(args.get(i).to_vec());
        } else {
            return conn.local_error("ERR syntax error");
        }
        i += 1;
    }
    let id = conn.meta.borrow().id;
    if !on {
        if conn.tracking.take().is_some() {
            forget_everywhere(&conn.rt, id);
            conn.rt
                .shared
                .tracking_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
        conn.meta.borrow_mut().tracker = None;
        return Reply::new(&mut conn.wbuf, conn.proto).ok();
    }
    if let Some(cur) = &conn.tracking {
        if cur.bcast != want.bcast {
            return conn.local_error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
    }
    if want.optin && want.optout {
        return conn.local_error("ERR You can't specify both OPTIN mode and OPTOUT mode");
    }
    if !want.prefixes.is_empty() && !want.bcast {
        return conn.local_error("ERR PREFIX option requires BCAST mode to be enabled");
    }
    if want.bcast && (want.optin || want.optout) {
        return conn.local_error("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if let Some(to) = redirect {
        if to != id {
            match shard_of(conn, to).await {
                Some(s) => want.redirect = Some((to, s)),
                None => {
                    return conn
                        .local_error("ERR The client ID you want redirect to does not exist")
                }
            }
        }
    }
    // Turning on again replaces the registrations.
    if conn.tracking.is_some() {
        forget_everywhere(&conn.rt, id);
    } else {
        conn.rt
            .shared
            .tracking_clients
            .fetch_add(1, Ordering::Relaxed);
    }
    if want.bcast {
        let t = want.tracker(conn.rt.id, id);
        let prefixes = if want.prefixes.is_empty() {
            vec![Vec::new()]
        } else {
            want.prefixes.clone()
        };
        let noloop = want.noloop;
        let _ = conn
            .rt
            .call_all(|| {
                let prefixes = prefixes.clone();
                Box::new(move |rt: &ShardRuntime| {
                    let mut st = rt.state.borrow_mut();
                    for p in &prefixes {
                        st.changes.tracking.add_bcast(p, t, noloop);
                    }
                })
            })
            .await;
    }
    conn.meta.borrow_mut().tracker = Some(want.tracker(conn.rt.id, id));
    conn.tracking = Some(want);
    Reply::new(&mut conn.wbuf, conn.proto).ok()
}

/// CLIENT CACHING YES|NO
pub fn caching(conn: &mut Conn, args: Args<'_>) {
    let Some(t) = conn.tracking.as_mut().filter(|t| t.optin || t.optout) else {
        return conn.local_error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    let a = args.get(2);
    if eq_ic(a, b"yes") {
        if !t.optin {
            return conn.local_error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
        t.caching = Some(true);
    } else if eq_ic(a, b"no") {
        if !t.optout {
            return conn.local_error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
        t.caching = Some(false);
    } else {
        return conn.local_error("ERR syntax error");
    }
    // It applies to the next command: not reset by this one.
    conn.caching_set = true;
    Reply::new(&mut conn.wbuf, conn.proto).ok()
}

/// CLIENT GETREDIR: -1 without tracking, 0 without redirection.
pub fn getredir(conn: &mut Conn, _args: Args<'_>) {
    let v = match &conn.tracking {
        None => -1,
        Some(t) => t.redirect.map_or(0, |(to, _)| to as i64),
    };
    Reply::new(&mut conn.wbuf, conn.proto).int(v)
}

/// CLIENT TRACKINGINFO
pub fn trackinginfo(conn: &mut Conn, _args: Args<'_>) {
    let proto = conn.proto;
    let t = conn.tracking.clone();
    let mut r = Reply::new(&mut conn.wbuf, proto);
    r.map(3);
    r.bulk(b"flags");
    match &t {
        None => {
            r.set(1);
            r.bulk(b"off");
        }
        Some(t) => {
            let mut flags: Vec<&[u8]> = vec![b"on"];
            if t.bcast {
                flags.push(b"bcast");
            }
            if t.optin {
                flags.push(b"optin");
                if t.caching == Some(true) {
                    flags.push(b"caching-yes");
                }
            }
            if t.optout {
                flags.push(b"optout");
                if t.caching == Some(false) {
                    flags.push(b"caching-no");
                }
            }
            if t.noloop {
                flags.push(b"noloop");
            }
            r.set(flags.len());
            for f in flags {
                r.bulk(f);
            }
        }
    }
    r.bulk(b"redirect");
    r.int(match &t {
        None => -1,
        Some(t) => t.redirect.map_or(0, |(to, _)| to as i64),
    });
    r.bulk(b"prefixes");
    let prefixes = t.map(|t| t.prefixes).unwrap_or_default();
    r.array(prefixes.len());
    for p in prefixes {
        r.bulk(&p);
    }
}
