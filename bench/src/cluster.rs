//! Cluster topology: CLUSTER SLOTS parsing, the slot map, and -MOVED /
//! -ASK redirects.

use crate::resp::Value;
use std::net::{SocketAddr, ToSocketAddrs};

// One definition of CRC16 and hash tags for the whole project: the
// server's own (shard/src/slot.rs).
pub use tessera_shard::slot::{key_slot, SLOTS};

/// Who owns which slot: node addresses and a slot -> node index table.
#[derive(Debug, Clone)]
pub struct Topology {
    pub nodes: Vec<SocketAddr>,
    pub slots: Vec<u16>,
}

impl Topology {
    /// Every slot on one node: the start of a map learnt from redirects.
    pub fn single(node: SocketAddr) -> Topology {
        Topology {
            nodes: vec![node],
            slots: vec![0; SLOTS],
        }
    }

    /// Reads a CLUSTER SLOTS reply; an empty host means the seed's host.
    pub fn from_cluster_slots(v: &Value, seed: SocketAddr) -> Result<Topology, String> {
        let Value::Array(ranges) = v else {
            return Err(format!("CLUSTER SLOTS: unexpected reply {v:?}"));
        };
        let mut t = Topology {
            nodes: Vec::new(),
            slots: vec![u16::MAX; SLOTS],
        };
        for r in ranges {
            let Value::Array(f) = r else {
                return Err("CLUSTER SLOTS: bad range".into());
            };
            let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(m))) =
                (f.first(), f.get(1), f.get(2))
            else {
                return Err("CLUSTER SLOTS: bad range".into());
            };
            let (Some(Value::Str(host)), Some(Value::Int(port))) = (m.first(), m.get(1)) else {
                return Err("CLUSTER SLOTS: bad master".into());
            };
            let host = String::from_utf8_lossy(host);
            let addr = if host.is_empty() || host == "?" {
                SocketAddr::new(seed.ip(), *port as u16)
            } else {
                resolve(&host, *port as u16)?
            };
            let node = t.node_index(addr);
            if *a < 0 || *b >= SLOTS as i64 || a > b {
                return Err(format!("CLUSTER SLOTS: bad range {a}-{b}"));
            }
            for s in *a as usize..=*b as usize {
                t.slots[s] = node;
            }
        }
        if t.slots.contains(&u16::MAX) {
            return Err("CLUSTER SLOTS: not every slot is served (is the cluster up?)".into());
        }
        Ok(t)
    }

    /// The index of a node, added if new.
    pub fn node_index(&mut self, addr: SocketAddr) -> u16 {
        match self.nodes.iter().position(|n| *n == addr) {
            Some(i) => i as u16,
            None => {
                self.nodes.push(addr);
                (self.nodes.len() - 1) as u16
            }
        }
    }
}

pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve {host}:{port}"))
}

/// A redirect read from an error reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    Moved(u16, SocketAddr),
    Ask(u16, SocketAddr),
}

/// Parses `MOVED 3999 127.0.0.1:6381` or `ASK ...` (error text without '-').
pub fn parse_redirect(err: &[u8], seed: SocketAddr) -> Option<Redirect> {
    let s = std::str::from_utf8(err).ok()?;
    let mut it = s.split(' ');
    let kind = it.next()?;
    let slot: u16 = it.next()?.parse().ok().filter(|s| (*s as usize) < SLOTS)?;
    let (host, port) = it.next()?.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let addr = if host.is_empty() {
        SocketAddr::new(seed.ip(), port)
    } else {
        resolve(host, port).ok()?
    };
    match kind {
        "MOVED" => Some(Redirect::Moved(slot, addr)),
        "ASK" => Some(Redirect::Ask(slot, addr)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topology_and_redirects() {
        let seed: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let node = |port| Value::Array(vec![Value::Str(b"127.0.0.1".to_vec()), Value::Int(port)]);
        let v = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(8000), node(7001)]),
            Value::Array(vec![
                Value::Int(8001),
                Value::Int(16383),
                Value::Array(vec![Value::Str(vec![]), Value::Int(7002)]),
            ]),
        ]);
        let t = Topology::from_cluster_slots(&v, seed).unwrap();
        assert_eq!(t.nodes.len(), 2);
        assert_eq!(
            (t.slots[0], t.slots[8000], t.slots[8001], t.slots[16383]),
            (0, 0, 1, 1)
        );
        assert_eq!(t.nodes[1], "127.0.0.1:7002".parse().unwrap());
        let partial = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(10),
            node(7001),
        ])]);
        assert!(Topology::from_cluster_slots(&partial, seed).is_err());
        assert_eq!(
            parse_redirect(b"MOVED 3999 127.0.0.1:6381", seed),
            Some(Redirect::Moved(3999, "127.0.0.1:6381".parse().unwrap()))
        );
        assert_eq!(
            parse_redirect(b"ASK 1 :7005", seed),
            Some(Redirect::Ask(1, "127.0.0.1:7005".parse().unwrap()))
        );
        assert_eq!(parse_redirect(b"ERR nope", seed), None);
    }
}
