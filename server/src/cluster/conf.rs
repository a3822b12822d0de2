//! nodes.conf: read at startup, written atomically (a temporary file,
//! fsynced, renamed over the old one, the directory fsynced) after every
//! change, in Redis 7.0's format so that redis-server reads ours too.

use std::io::Write;
use std::path::Path;

use super::node::{flag, parse_flags, valid_id, Node};
use super::state::State;

/// Writes the file so that a crash leaves either the old or the new one.
pub fn save(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "nodes.conf".into());
    let tmp = dir.join(format!("{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Parses a nodes.conf text. Err names what is wrong.
pub fn parse(text: &str) -> Result<State, String> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut moves: Vec<(u16, bool, String)> = Vec::new();
    let (mut current, mut last_vote) = (0u64, 0u64);
    for line in text.lines() {
        let argv: Vec<&str> = line.split_whitespace().collect();
        if argv.is_empty() {
            continue;
        }
        if argv[0] == "vars" {
            let mut it = argv[1..].chunks(2);
            for kv in it.by_ref() {
                let [k, v] = kv else {
                    return Err("a vars line without a value".into());
                };
                let v: u64 = v.parse().map_err(|_| format!("bad value of {k}"))?;
                match *k {
                    "currentEpoch" => current = v,
                    "lastVoteEpoch" => last_vote = v,
                    _ => log::warn!("Skipping unknown cluster config variable '{k}'"),
                }
            }
            continue;
        }
        if argv.len() < 8 {
            return Err(format!("a node line with {} fields", argv.len()));
        }
        if !valid_id(argv[0].as_bytes()) {
            return Err(format!("bad node id {}", argv[0]));
        }
        let mut n = Node::new(argv[0].to_string(), parse_flags(argv[2]));
        let mut addr = argv[1].splitn(2, ',');
        let hostport = addr.next().unwrap_or("");
        n.hostname = addr.next().unwrap_or("").to_string();
        let (hp, cport) = match hostport.rsplit_once('@') {
            Some((hp, c)) => (hp, Some(c)),
            None => (hostport, None),
        };
        let (ip, port) = hp
            .rsplit_once(':')
            .ok_or_else(|| format!("bad address {}", argv[1]))?;
        n.ip = ip.to_string();
        n.port = port
            .parse()
            .map_err(|_| format!("bad port in {}", argv[1]))?;
        n.cport = match cport {
            Some(c) => c
                .parse()
                .map_err(|_| format!("bad bus port in {}", argv[1]))?,
            None => n.port.wrapping_add(10000),
        };
        if argv[3] != "-" {
            n.master = Some(argv[3].to_string());
        }
        n.ping_sent = argv[4].parse().unwrap_or(0);
        n.pong_received = argv[5].parse().unwrap_or(0);
        n.config_epoch = argv[6]
            .parse()
            .map_err(|_| format!("bad config epoch {}", argv[6]))?;
        for s in &argv[8..] {
            if let Some(m) = s.strip_prefix('[').and_then(|m| m.strip_suffix(']')) {
                let (slot, importing, id) = if let Some((a, b)) = m.split_once("->-") {
                    (a, false, b)
                } else if let Some((a, b)) = m.split_once("-<-") {
                    (a, true, b)
                } else {
                    return Err(format!("bad slot move {s}"));
                };
                let slot: u16 = slot_num(slot)?;
                moves.push((slot, importing, id.to_string()));
                continue;
            }
            let (a, b) = match s.split_once('-') {
                Some((a, b)) => (slot_num(a)?, slot_num(b)?),
                None => (slot_num(s)?, slot_num(s)?),
            };
            for slot in a..=b {
                n.slots.set(slot as usize);
            }
        }
        if nodes.iter().any(|x| x.id == n.id) {
            return Err(format!("node {} listed twice", n.id));
        }
        if n.has(flag::MYSELF) {
            if nodes.first().is_some_and(|x| x.has(flag::MYSELF)) {
                return Err("two nodes flagged myself".into());
            }
            nodes.insert(0, n);
        } else {
            nodes.push(n);
        }
    }
    if !nodes.first().is_some_and(|n| n.has(flag::MYSELF)) {
        return Err("no node flagged myself".into());
    }
    // A slot listed by two nodes goes to the last, as Redis loads it.
    let mut st = State::with_nodes(nodes);
    for (slot, importing, id) in moves {
        if importing {
            st.importing_from.insert(slot, id);
        } else {
            st.migrating_to.insert(slot, id);
        }
    }
    st.current_epoch = current.max(st.max_epoch());
    st.last_vote_epoch = last_vote;
    Ok(st)
}

fn slot_num(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if (n as usize) < tessera_shard::slot::SLOTS => Ok(n),
        _ => Err(format!("bad slot {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::describe::conf_text;
    use super::super::node::random_id;
    use super::*;

    #[test]
    fn round_trip() {
        let mut st = State::new_alone();
        st.myself_mut().port = 7000;
        st.myself_mut().cport = 17000;
        st.myself_mut().ip = "127.0.0.1".into();
        let mut other = Node::new(random_id(), flag::MASTER);
        other.ip = "10.0.0.2".into();
        other.port = 7001;
        other.cport = 17001;
        other.hostname = "b.example".into();
        other.config_epoch = 3;
        let oid = other.id.clone();
        st.nodes.push(other);
        for s in 0..100 {
            st.add_slot(0, s);
        }
        st.add_slot(0, 200);
        st.add_slot(1, 300);
        st.migrating_to.insert(5, oid.clone());
        st.importing_from.insert(300, oid.clone());
        st.current_epoch = 4;
        st.last_vote_epoch = 2;
        let text = conf_text(&st);
        assert!(text.contains(" 0-99 200 [5->-"));
        assert!(text.ends_with("vars currentEpoch 4 lastVoteEpoch 2\n"));
        let back = parse(&text).unwrap();
        assert_eq!(conf_text(&back), text);
        assert_eq!(back.owner(300), Some(1));
        assert_eq!(back.nodes[1].hostname, "b.example");
    }

    #[test]
    fn refuses_broken_files() {
        assert!(parse("").is_err());
        assert!(parse("abc 1.2.3.4:1@2 myself,master - 0 0 0 connected\n").is_err());
        let id = random_id();
        let ok = format!("{id} :7000@17000 myself,master - 0 0 0 connected 0-5\nvars currentEpoch 0 lastVoteEpoch 0\n");
        assert!(parse(&ok).is_ok());
        let bad_slot = format!("{id} :7000@17000 myself,master - 0 0 0 connected 0-16384\n");
        assert!(parse(&bad_slot).is_err());
    }
}
