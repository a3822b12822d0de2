//! What the cluster state looks like from outside: node lines (CLUSTER
//! NODES, nodes.conf, CLUSTER REPLICAS), CLUSTER INFO's text, CLUSTER
//! SLOTS and CLUSTER SHARDS, in Redis 7.0's shapes.

use tessera_protocol::Reply;

use super::node::{flag, flags_text, Node};
use super::state::{Settings, State};

/// One node's line, without its newline. Myself's line also lists the
/// slots being moved (`[slot->-id]`, `[slot-<-id]`).
pub fn node_line(st: &State, n: &Node) -> String {
    let master = n.master.as_deref().unwrap_or("-");
    let link = if n.linked || n.has(flag::MYSELF) {
        "connected"
    } else {
        "disconnected"
    };
    let mut s = format!(
        "{} {} {} {} {} {} {} {}",
        n.id,
        n.address(),
        flags_text(n.flags),
        master,
        n.ping_sent,
        n.pong_received,
        n.config_epoch,
        link
    );
    for (a, b) in n.slots.ranges() {
        if a == b {
            s.push_str(&format!(" {a}"));
        } else {
            s.push_str(&format!(" {a}-{b}"));
        }
    }
    if n.has(flag::MYSELF) {
        // Ascending slot order, migrating before importing for one slot.
        let mut moves: Vec<(u16, String)> = st
            .migrating_to
            .iter()
            .map(|(s, id)| (*s, format!(" [{s}->-{id}]")))
            .collect();
        for (s, id) in &st.importing_from {
            if !st.migrating_to.contains_key(s) {
                moves.push((*s, format!(" [{s}-<-{id}]")));
            }
        }
        moves.sort_by_key(|m| m.0);
        for (_, m) in moves {
            s.push_str(&m);
        }
    }
    s
}

/// CLUSTER NODES: every node's line, each ending in a newline.
pub fn nodes_text(st: &State) -> String {
    st.nodes.iter().map(|n| node_line(st, n) + "\n").collect()
}

/// nodes.conf: the node lines (handshakes left out) and the epochs.
pub fn conf_text(st: &State) -> String {
    let mut s: String = st
        .nodes
        .iter()
        .filter(|n| !n.has(flag::HANDSHAKE))
        .map(|n| node_line(st, n) + "\n")
        .collect();
    s.push_str(&format!(
        "vars currentEpoch {} lastVoteEpoch {}\n",
        st.current_epoch, st.last_vote_epoch
    ));
    s
}

/// CLUSTER INFO's text.
pub fn info_text(st: &State) -> String {
    let me = st.myself();
    let my_epoch = match &me.master {
        Some(m) => st
            .find(m.as_bytes())
            .map_or(0, |i| st.nodes[i].config_epoch),
        None => me.config_epoch,
    };
    let lines = [
        format!("cluster_state:{}", if st.ok { "ok" } else { "fail" }),
        format!("cluster_slots_assigned:{}", st.slots_assigned()),
        format!("cluster_slots_ok:{}", st.slots_with(0)),
        format!("cluster_slots_pfail:{}", st.slots_with(flag::PFAIL)),
        format!("cluster_slots_fail:{}", st.slots_with(flag::FAIL)),
        format!("cluster_known_nodes:{}", st.nodes.len()),
        format!("cluster_size:{}", st.size),
        format!("cluster_current_epoch:{}", st.current_epoch),
        format!("cluster_my_epoch:{my_epoch}"),
        "cluster_stats_messages_sent:0".to_string(),
        "cluster_stats_messages_received:0".to_string(),
        "total_cluster_links_buffer_limit_exceeded:0".to_string(),
    ];
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// The endpoint clients are told to use for a node, by
/// `cluster-preferred-endpoint-type` (None: unknown, a null in SLOTS).
pub fn endpoint<'a>(n: &'a Node, s: &Settings) -> Option<&'a str> {
    match s.endpoint_type.as_str() {
        "hostname" if n.hostname.is_empty() => Some("?"),
        "hostname" => Some(&n.hostname),
        "unknown-endpoint" => None,
        _ => Some(&n.ip),
    }
}

/// One node of a CLUSTER SLOTS range: endpoint, port, id, and a map of
/// the other addresses known.
fn slots_node(r: &mut Reply, n: &Node, s: &Settings) {
    r.array(4);
    match endpoint(n, s) {
        Some(e) => r.bulk(e.as_bytes()),
        None => r.null(),
    }
    r.int(n.port as i64);
    r.bulk(n.id.as_bytes());
    let ip = s.endpoint_type != "ip";
    let host = s.endpoint_type != "hostname" && !n.hostname.is_empty();
    r.map(ip as usize + host as usize);
    if ip {
        r.bulk(b"ip");
        r.bulk(n.ip.as_bytes());
    }
    if host {
        r.bulk(b"hostname");
        r.bulk(n.hostname.as_bytes());
    }
}

/// The replicas of a master that are not failed (what SLOTS lists).
fn replicas<'a>(st: &'a State, master: &'a Node) -> impl Iterator<Item = &'a Node> {
    st.nodes
        .iter()
        .filter(move |n| n.master.as_deref() == Some(master.id.as_str()))
}

/// CLUSTER SLOTS: contiguous ranges of one owner, ascending.
pub fn slots_reply(st: &State, s: &Settings, r: &mut Reply) {
    let mut ranges: Vec<(usize, usize, usize)> = Vec::new();
    for slot in 0..tessera_shard::slot::SLOTS {
        let Some(o) = st.owner(slot) else { continue };
        match ranges.last_mut() {
            Some((_, end, owner)) if *owner == o && *end + 1 == slot => *end = slot,
            _ => ranges.push((slot, slot, o)),
        }
    }
    r.array(ranges.len());
    for (a, b, o) in ranges {
        let n = &st.nodes[o];
        let reps: Vec<&Node> = replicas(st, n).filter(|x| !x.has(flag::FAIL)).collect();
        r.array(3 + reps.len());
        r.int(a as i64);
        r.int(b as i64);
        slots_node(r, n, s);
        for x in reps {
            slots_node(r, x, s);
        }
    }
}

/// One node's map in CLUSTER SHARDS.
fn shard_node(r: &mut Reply, n: &Node, s: &Settings) {
    let host = !n.hostname.is_empty();
    r.map(7 + host as usize);
    r.bulk(b"id");
    r.bulk(n.id.as_bytes());
    r.bulk(b"port");
    r.int(n.port as i64);
    r.bulk(b"ip");
    r.bulk(n.ip.as_bytes());
    r.bulk(b"endpoint");
    r.bulk(endpoint(n, s).unwrap_or("").as_bytes());
    if host {
        r.bulk(b"hostname");
        r.bulk(n.hostname.as_bytes());
    }
    r.bulk(b"role");
    r.bulk(if n.is_master() { b"master" } else { b"replica" });
    r.bulk(b"replication-offset");
    r.int(0);
    r.bulk(b"health");
    r.bulk(if n.has(flag::FAIL) {
        b"failed"
    } else {
        b"online"
    });
}

/// CLUSTER SHARDS: one entry per master, with its slots and nodes.
pub fn shards_reply(st: &State, s: &Settings, r: &mut Reply) {
    let masters: Vec<&Node> = st.nodes.iter().filter(|n| n.is_master()).collect();
    r.array(masters.len());
    for m in masters {
        r.map(2);
        r.bulk(b"slots");
        let ranges = m.slots.ranges();
        r.array(ranges.len() * 2);
        for (a, b) in ranges {
            r.int(a as i64);
            r.int(b as i64);
        }
        r.bulk(b"nodes");
        let reps: Vec<&Node> = replicas(st, m).collect();
        r.array(1 + reps.len());
        shard_node(r, m, s);
        for x in reps {
            shard_node(r, x, s);
        }
    }
}

/// CLUSTER REPLICAS: the lines of a master's replicas.
pub fn replicas_reply(st: &State, master: &Node, r: &mut Reply) {
    let lines: Vec<String> = replicas(st, master).map(|n| node_line(st, n)).collect();
    r.array(lines.len());
    for l in lines {
        r.bulk(l.as_bytes());
    }
}
