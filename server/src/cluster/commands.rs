//! The CLUSTER subcommands run by the connection (the two that read keys
//! run on the shards: `tessera_shard::command::cluster`), and READONLY,
//! READWRITE, ASKING. Replies and errors are Redis 7.0's.

use std::future::Future;
use std::pin::Pin;

use tessera_protocol::{Args, Reply};
use tessera_shard::command::cluster::DISABLED;
use tessera_shard::slot::{key_slot, SLOTS};
use tessera_shard::util::{eq_ic, parse_i64_strict};

use super::describe;
use super::node::{flag, random_id, Node};
use super::state::{Settings, State};
use crate::commands::ConnFn;
use crate::conn::Conn;
use crate::runtime::ShardRuntime;

type Pending<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

fn done<'a>() -> Pending<'a> {
    Box::pin(std::future::ready(()))
}

/// Handlers by table name (joined to the connection commands' list).
pub static HANDLERS: &[(&str, ConnFn)] = &[
    ("readonly", |c, _| {
        sync(c, |c| {
            c.cluster.readonly = true;
            ok(c)
        })
    }),
    ("readwrite", |c, _| {
        sync(c, |c| {
            c.cluster.readonly = false;
            ok(c)
        })
    }),
    ("asking", |c, _| {
        sync(c, |c| {
            c.cluster.asking = true;
            ok(c)
        })
    }),
    ("cluster|info", |c, _| sync(c, info)),
    ("cluster|myid", |c, _| {
        sync(c, |c| {
            let id = read(c, |st| st.myself().id.clone());
            reply(c).bulk(id.as_bytes())
        })
    }),
    ("cluster|myshardid", |c, _| {
        sync(c, |c| {
            let id = read(c, |st| st.myself().shard_id.clone());
            reply(c).bulk(id.as_bytes())
        })
    }),
    ("cluster|nodes", |c, _| {
        sync(c, |c| {
            let text = read(c, describe::nodes_text);
            reply(c).verbatim("txt", text.as_bytes())
        })
    }),
    ("cluster|slots", |c, _| {
        sync(c, |c| {
            let s = settings(c);
            let st = c.rt.shared.cluster.lock();
            let mut r = Reply::new(&mut c.wbuf, c.proto);
            describe::slots_reply(&st, &s, &mut r);
        })
    }),
    ("cluster|shards", |c, _| {
        sync(c, |c| {
            let s = settings(c);
            let st = c.rt.shared.cluster.lock();
            let mut r = Reply::new(&mut c.wbuf, c.proto);
            describe::shards_reply(&st, &s, &mut r);
        })
    }),
    ("cluster|links", |c, _| sync(c, |c| reply(c).array(0))),
    ("cluster|keyslot", |c, a| {
        let slot = key_slot(a.get(2));
        sync(c, move |c| reply(c).int(slot as i64))
    }),
    ("cluster|addslots", |c, a| {
        sync(c, move |c| slots_cmd(c, a, false, false))
    }),
    ("cluster|delslots", |c, a| {
        sync(c, move |c| slots_cmd(c, a, true, false))
    }),
    ("cluster|addslotsrange", |c, a| {
        sync(c, move |c| slots_cmd(c, a, false, true))
    }),
    ("cluster|delslotsrange", |c, a| {
        sync(c, move |c| slots_cmd(c, a, true, true))
    }),
    ("cluster|flushslots", |c, _| {
        if !enabled(c) {
            return done();
        }
        Box::pin(flushslots(c))
    }),
    ("cluster|setslot", |c, a| {
        if !enabled(c) {
            return done();
        }
        Box::pin(setslot(c, a))
    }),
    ("cluster|set-config-epoch", |c, a| {
        sync(c, move |c| set_config_epoch(c, a))
    }),
    ("cluster|bumpepoch", |c, _| {
        sync(c, |c| {
            let s = settings(c);
            let (bumped, epoch) = c.rt.shared.cluster.change(&s, |st| {
                let b = st.bump_epoch();
                (b, st.myself().config_epoch)
            });
            let word = if bumped { "BUMPED" } else { "STILL" };
            reply(c).simple(&format!("{word} {epoch}"))
        })
    }),
    ("cluster|saveconfig", |c, _| {
        sync(c, |c| {
            let res = {
                let cl = &c.rt.shared.cluster;
                let mut st = cl.lock();
                st.dirty = true;
                cl.save(&mut st)
            };
            match res {
                Ok(()) => ok(c),
                Err(e) => err(c, &format!("ERR error saving the cluster node config: {e}")),
            }
        })
    }),
    ("cluster|reset", |c, a| {
        if !enabled(c) {
            return done();
        }
        Box::pin(reset(c, a))
    }),
    ("cluster|count-failure-reports", |c, a| {
        sync(c, move |c| {
            let id = a.get(2);
            let n = read(c, |st| st.find(id).map(|i| st.nodes[i].fail_reports.len()));
            match n {
                Some(n) => reply(c).int(n as i64),
                None => unknown_node(c, id),
            }
        })
    }),
    ("cluster|replicas", |c, a| {
        sync(c, move |c| {
            let id = a.get(2);
            let cl = &c.rt.shared.cluster;
            let st = cl.lock();
            let Some(i) = st.find(id) else {
                drop(st);
                return unknown_node(c, id);
            };
            if !st.nodes[i].is_master() {
                drop(st);
                return err(c, "ERR The specified node is not a master");
            }
            let mut r = Reply::new(&mut c.wbuf, c.proto);
            describe::replicas_reply(&st, &st.nodes[i], &mut r);
        })
    }),
    ("cluster|forget", |c, a| sync(c, move |c| forget(c, a))),
    ("cluster|meet", |c, a| sync(c, move |c| meet(c, a))),
    ("cluster|help", |c, _| sync(c, help)),
];

/// Runs a handler that never waits, after the cluster-mode check.
fn sync<'a>(c: &'a mut Conn, f: impl FnOnce(&mut Conn)) -> Pending<'a> {
    if enabled(c) {
        f(c);
    }
    done()
}

/// False (after replying Redis's error) when cluster mode is off.
fn enabled(c: &mut Conn) -> bool {
    if c.rt.shared.cluster.enabled {
        return true;
    }
    err(c, DISABLED);
    false
}

fn reply(c: &mut Conn) -> Reply<'_> {
    Reply::new(&mut c.wbuf, c.proto)
}
fn ok(c: &mut Conn) {
    reply(c).ok()
}
fn err(c: &mut Conn, msg: &str) {
    reply(c).error(msg)
}
fn unknown_node(c: &mut Conn, id: &[u8]) {
    let mut msg = b"ERR Unknown node ".to_vec();
    msg.extend_from_slice(id);
    reply(c).error_bytes(&msg)
}

fn settings(c: &Conn) -> Settings {
    super::current_settings(&c.rt.shared)
}

fn read<R>(c: &Conn, f: impl FnOnce(&State) -> R) -> R {
    f(&c.rt.shared.cluster.lock())
}

fn info(c: &mut Conn) {
    let s = settings(c);
    // The state as of now (the cron may not have run since a change).
    let text = c.rt.shared.cluster.change(&s, |st| describe::info_text(st));
    reply(c).verbatim("txt", text.as_bytes())
}

/// Redis's getSlotOrReply.
fn slot_arg(raw: &[u8]) -> Result<usize, &'static str> {
    match parse_i64_strict(raw) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Ok(s as usize),
        _ => Err("ERR Invalid or out of range slot"),
    }
}

/// ADDSLOTS, DELSLOTS and their RANGE forms: every slot checked (free to
/// add, assigned to delete, named once) before any changes.
fn slots_cmd(c: &mut Conn, a: Args, del: bool, range: bool) {
    if range && a.len() % 2 == 1 {
        let name = if del {
            "cluster|delslotsrange"
        } else {
            "cluster|addslotsrange"
        };
        return err(c, &tessera_shard::command::arity_error(name));
    }
    let mut seen = vec![false; SLOTS];
    let mut wanted: Vec<(usize, usize)> = Vec::new();
    let step = if range { 2 } else { 1 };
    let cl = &c.rt.shared.cluster;
    let problem = {
        let st = cl.lock();
        let mut problem = None;
        let mut j = 2;
        while j < a.len() {
            let (from, to) = match (slot_arg(a.get(j)), range.then(|| slot_arg(a.get(j + 1)))) {
                (Err(e), _) | (_, Some(Err(e))) => {
                    problem = Some(e.to_string());
                    break;
                }
                (Ok(f), None) => (f, f),
                (Ok(f), Some(Ok(t))) => (f, t),
            };
            if from > to {
                problem = Some(format!(
                    "ERR start slot number {from} is greater than end slot number {to}"
                ));
                break;
            }
            for (s, seen) in seen.iter_mut().enumerate().take(to + 1).skip(from) {
                if del && st.owner(s).is_none() {
                    problem = Some(format!("ERR Slot {s} is already unassigned"));
                } else if !del && st.owner(s).is_some() {
                    problem = Some(format!("ERR Slot {s} is already busy"));
                } else if std::mem::replace(seen, true) {
                    problem = Some(format!("ERR Slot {s} specified multiple times"));
                }
                if problem.is_some() {
                    break;
                }
            }
            if problem.is_some() {
                break;
            }
            wanted.push((from, to));
            j += step;
        }
        problem
    };
    if let Some(p) = problem {
        return err(c, &p);
    }
    let s = settings(c);
    cl.change(&s, |st| {
        for &(from, to) in &wanted {
            for slot in from..=to {
                if del {
                    st.del_slot(slot);
                } else {
                    st.importing_from.remove(&(slot as u16));
                    st.add_slot(0, slot);
                }
            }
        }
        st.dirty = true;
    });
    ok(c)
}

/// Keys in database 0 on every shard together.
async fn db0_keys(rt: &ShardRuntime) -> usize {
    rt.call_all(|| {
        Box::new(|rt: &ShardRuntime| rt.state.borrow().keyspace.get(0).map_or(0, |d| d.len()))
    })
    .await
    .into_iter()
    .map(|n| n.unwrap_or(0))
    .sum()
}

/// Keys of one slot on this node (on the shard that owns the slot).
async fn slot_keys(rt: &ShardRuntime, slot: usize) -> usize {
    let shard = rt.shared.owner(slot as u16);
    rt.call(
        shard,
        Box::new(move |rt| {
            let n = rt
                .state
                .borrow()
                .keyspace
                .get(0)
                .map_or(0, |d| d.slot_len(slot as u16));
            Box::new(n)
        }),
    )
    .await
    .and_then(|v| v.downcast::<usize>().ok())
    .map_or(0, |n| *n)
}

async fn flushslots(c: &mut Conn) {
    let rt = c.rt.clone();
    if db0_keys(&rt).await != 0 {
        return err(c, "ERR DB must be empty to perform CLUSTER FLUSHSLOTS.");
    }
    let s = settings(c);
    c.rt.shared.cluster.change(&s, |st| {
        for slot in 0..SLOTS {
            if st.owner(slot) == Some(0) {
                st.del_slot(slot);
            }
        }
        st.dirty = true;
    });
    ok(c)
}

async fn setslot(c: &mut Conn, a: Args<'_>) {
    let slot = match slot_arg(a.get(2)) {
        Ok(s) => s,
        Err(e) => return err(c, e),
    };
    let action = a.get(3);
    let id = if a.len() == 5 { a.get(4) } else { b"" };
    let s = settings(c);
    let cl = &c.rt.shared.cluster;
    let named = |st: &State| st.find(id);
    let dont_know = || {
        let mut m = b"ERR I don't know about node ".to_vec();
        m.extend_from_slice(id);
        m
    };
    if eq_ic(action, b"migrating") && a.len() == 5 {
        let res: Result<(), Vec<u8>> = cl.change(&s, |st| {
            if st.owner(slot) != Some(0) {
                return Err(format!("ERR I'm not the owner of hash slot {slot}").into_bytes());
            }
            let Some(n) = named(st) else {
                return Err(dont_know());
            };
            if !st.nodes[n].is_master() {
                return Err(b"ERR Target node is not a master".to_vec());
            }
            st.migrating_to.insert(slot as u16, st.nodes[n].id.clone());
            st.dirty = true;
            Ok(())
        });
        finish(c, res)
    } else if eq_ic(action, b"importing") && a.len() == 5 {
        let res = cl.change(&s, |st| {
            if st.owner(slot) == Some(0) {
                return Err(format!("ERR I'm already the owner of hash slot {slot}").into_bytes());
            }
            let Some(n) = named(st) else {
                return Err(dont_know());
            };
            if !st.nodes[n].is_master() {
                return Err(b"ERR Target node is not a master".to_vec());
            }
            st.importing_from
                .insert(slot as u16, st.nodes[n].id.clone());
            st.dirty = true;
            Ok(())
        });
        finish(c, res)
    } else if eq_ic(action, b"stable") && a.len() == 4 {
        cl.change(&s, |st| {
            st.migrating_to.remove(&(slot as u16));
            st.importing_from.remove(&(slot as u16));
            st.dirty = true;
        });
        ok(c)
    } else if eq_ic(action, b"node") && a.len() == 5 {
        // The keys still held decide; counted before taking the state.
        let rt = c.rt.clone();
        let keys = slot_keys(&rt, slot).await;
        let res = c.rt.shared.cluster.change(&s, |st| {
            let Some(n) = named(st) else {
                let mut m = b"ERR Unknown node ".to_vec();
                m.extend_from_slice(id);
                return Err(m);
            };
            if !st.nodes[n].is_master() {
                return Err(b"ERR Target node is not a master".to_vec());
            }
            if st.owner(slot) == Some(0) && n != 0 && keys != 0 {
                return Err(format!("ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot.").into_bytes());
            }
            if keys == 0 {
                st.migrating_to.remove(&(slot as u16));
            }
            st.add_slot(n, slot);
            if n == 0 && st.importing_from.remove(&(slot as u16)).is_some() {
                // A slot taken over by hand: a new epoch makes this
                // node's claim win over the old owner's.
                if st.bump_epoch() {
                    log::info!(
                        "configEpoch updated after importing slot {slot}"
                    );
                }
            }
            st.dirty = true;
            Ok(())
        });
        finish(c, res)
    } else {
        err(
            c,
            "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP",
        )
    }
}

fn finish(c: &mut Conn, res: Result<(), Vec<u8>>) {
    match res {
        Ok(()) => ok(c),
        Err(m) => reply(c).error_bytes(&m),
    }
}

fn set_config_epoch(c: &mut Conn, a: Args) {
    let Some(epoch) = parse_i64_strict(a.get(2)) else {
        return err(c, "ERR value is not an integer or out of range");
    };
    if epoch < 0 {
        return err(c, &format!("ERR Invalid config epoch specified: {epoch}"));
    }
    let s = settings(c);
    let res: Result<(), &str> = c.rt.shared.cluster.change(&s, |st| {
        if st.nodes.len() > 1 {
            return Err("ERR The user can assign a config epoch only when the node does not know any other node.");
        }
        if st.myself().config_epoch != 0 {
            return Err("ERR Node config epoch is already non-zero");
        }
        st.myself_mut().config_epoch = epoch as u64;
        log::info!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH");
        st.current_epoch = st.current_epoch.max(epoch as u64);
        st.dirty = true;
        Ok(())
    });
    match res {
        Ok(()) => ok(c),
        Err(e) => err(c, e),
    }
}

async fn reset(c: &mut Conn, a: Args<'_>) {
    let hard = match a.len() {
        2 => false,
        3 if eq_ic(a.get(2), b"hard") => true,
        3 if eq_ic(a.get(2), b"soft") => false,
        3 => return err(c, "ERR syntax error"),
        _ => {
            let msg = tessera_shard::command::subcommand_syntax_error("cluster", a.get(1));
            return reply(c).error_bytes(&msg);
        }
    };
    let rt = c.rt.clone();
    if db0_keys(&rt).await != 0 {
        return err(
            c,
            "ERR CLUSTER RESET can't be called with master nodes containing keys",
        );
    }
    let s = settings(c);
    c.rt.shared.cluster.change(&s, |st| st.reset(hard));
    ok(c)
}

fn forget(c: &mut Conn, a: Args) {
    let id = a.get(2);
    let s = settings(c);
    let res = c.rt.shared.cluster.change(&s, |st| match st.find(id) {
        None => Err(None),
        Some(0) => Err(Some("ERR I tried hard but I can't forget myself...")),
        Some(i) if st.myself().master.as_deref() == Some(st.nodes[i].id.as_str()) => {
            Err(Some("ERR Can't forget my master!"))
        }
        Some(i) => {
            // Gossip must not bring it back for a minute (Redis's ban).
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            st.blacklist.push((st.nodes[i].id.clone(), until));
            st.remove(i);
            Ok(())
        }
    });
    match res {
        Ok(()) => ok(c),
        Err(None) => unknown_node(c, id),
        Err(Some(e)) => err(c, e),
    }
}

/// CLUSTER MEET ip port [cport]: a handshake node is added; the bus
/// (not written yet) is what would complete the handshake, so it times
/// out as a handshake with an unreachable node does in Redis.
fn meet(c: &mut Conn, a: Args) {
    let port = parse_i64_strict(a.get(3));
    let Some(port) = port else {
        let mut m = b"ERR Invalid TCP base port specified: ".to_vec();
        m.extend_from_slice(a.get(3));
        return reply(c).error_bytes(&m);
    };
    let cport = if a.len() >= 5 {
        match parse_i64_strict(a.get(4)) {
            Some(p) => p,
            None => {
                let mut m = b"ERR Invalid TCP bus port specified: ".to_vec();
                m.extend_from_slice(a.get(4));
                return reply(c).error_bytes(&m);
            }
        }
    } else {
        port + 10000
    };
    let ip = std::str::from_utf8(a.get(2))
        .ok()
        .and_then(|s| s.parse::<std::net::IpAddr>().ok());
    let valid = |p: i64| (1..=65535).contains(&p);
    let (Some(ip), true, true) = (ip, valid(port), valid(cport)) else {
        let mut m = b"ERR Invalid node address specified: ".to_vec();
        m.extend_from_slice(a.get(2));
        m.push(b':');
        m.extend_from_slice(a.get(3));
        return reply(c).error_bytes(&m);
    };
    let ip = ip.to_string();
    let s = settings(c);
    c.rt.shared.cluster.change(&s, |st| {
        let known = st
            .nodes
            .iter()
            .any(|n| n.has(flag::HANDSHAKE) && n.ip == ip && n.port as i64 == port);
        if !known {
            let mut n = Node::new(random_id(), flag::HANDSHAKE | flag::MEET);
            n.ip = ip.clone();
            n.port = port as u16;
            n.cport = cport as u16;
            st.nodes.push(n);
            log::warn!(
                "CLUSTER MEET {ip}:{port}: the cluster bus is not implemented yet, the handshake will time out"
            );
        }
    });
    ok(c)
}

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to this node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slot ranges to this node.",
    "BUMPEPOCH",
    "    Advance this node's config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Count the failure reports held for a node.",
    "COUNTKEYSINSLOT <slot>",
    "    Count the keys of a slot.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Unassign slots from this node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Unassign slot ranges from this node.",
    "FLUSHSLOTS",
    "    Unassign every slot of this node (its database must be empty).",
    "FORGET <node-id>",
    "    Remove a node from the node table.",
    "GETKEYSINSLOT <slot> <count>",
    "    List up to <count> keys of a slot.",
    "INFO",
    "    Show the state of the cluster as this node sees it.",
    "KEYSLOT <key>",
    "    Show the slot of a key.",
    "LINKS",
    "    List the bus links of this node.",
    "MEET <ip> <port> [<bus-port>]",
    "    Start a handshake with another node.",
    "MYID",
    "    Show this node's id.",
    "MYSHARDID",
    "    Show this node's shard id.",
    "NODES",
    "    Show the node table in the nodes.conf format.",
    "REPLICAS <node-id>",
    "    List the replicas of a master.",
    "RESET [HARD|SOFT]",
    "    Forget every other node and every slot (HARD: new id, epochs zeroed).",
    "SAVECONFIG",
    "    Write the cluster configuration file now.",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set the config epoch of a node that knows no other node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Change the state of a slot.",
    "SHARDS",
    "    Show the slots and nodes of every shard.",
    "SLOTS",
    "    Show the owner of every slot range.",
    "HELP",
    "    Print this help.",
];

fn help(c: &mut Conn) {
    let mut r = reply(c);
    r.array(HELP.len());
    for l in HELP {
        r.simple(l);
    }
}
