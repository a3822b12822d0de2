//! One node of the cluster as this node knows it: its 40-hex-character
//! id, address, flags, epochs and the slots it serves.

use tessera_shard::slot::SLOTS;

/// Length of a node id (and of a shard id): 40 characters.
pub const NAMELEN: usize = 40;

/// Node flags, with Redis's bit meanings.
pub mod flag {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const NOFAILOVER: u16 = 512;
}

/// Flag names as CLUSTER NODES and nodes.conf print them, in Redis's order.
const FLAG_NAMES: &[(u16, &str)] = &[
    (flag::MYSELF, "myself"),
    (flag::MASTER, "master"),
    (flag::SLAVE, "slave"),
    (flag::PFAIL, "fail?"),
    (flag::FAIL, "fail"),
    (flag::HANDSHAKE, "handshake"),
    (flag::NOADDR, "noaddr"),
    (flag::NOFAILOVER, "nofailover"),
];

/// The flags field of a node line ("noflags" when none is set).
pub fn flags_text(flags: u16) -> String {
    let names: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(f, _)| flags & f != 0)
        .map(|&(_, n)| n)
        .collect();
    if names.is_empty() {
        "noflags".into()
    } else {
        names.join(",")
    }
}

/// Parses a flags field of nodes.conf; unknown names are ignored, as Redis
/// ignores them.
pub fn parse_flags(text: &str) -> u16 {
    text.split(',')
        .filter_map(|n| {
            FLAG_NAMES
                .iter()
                .find(|(_, name)| *name == n)
                .map(|(f, _)| *f)
        })
        .fold(0, |a, f| a | f)
}

/// A fresh random id (node or shard): 40 lowercase hex characters.
pub fn random_id() -> String {
    let bytes: [u8; 20] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A node id as Redis accepts one: 40 characters, lowercase letters or digits.
pub fn valid_id(id: &[u8]) -> bool {
    id.len() == NAMELEN
        && id
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// 16384 bits, one per slot.
#[derive(Clone)]
pub struct SlotBits(Box<[u64; SLOTS / 64]>);

impl Default for SlotBits {
    fn default() -> Self {
        SlotBits(Box::new([0; SLOTS / 64]))
    }
}

impl SlotBits {
    pub fn get(&self, slot: usize) -> bool {
        self.0[slot / 64] & (1 << (slot % 64)) != 0
    }
    pub fn set(&mut self, slot: usize) {
        self.0[slot / 64] |= 1 << (slot % 64);
    }
    pub fn clear(&mut self, slot: usize) {
        self.0[slot / 64] &= !(1 << (slot % 64));
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// The set slots as inclusive (start, end) ranges, ascending.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for s in 0..=SLOTS {
            let on = s < SLOTS && self.get(s);
            match (on, start) {
                (true, None) => start = Some(s),
                (false, Some(b)) => {
                    out.push((b, s - 1));
                    start = None;
                }
                _ => {}
            }
        }
        out
    }
}

#[derive(Clone)]
pub struct Node {
    pub id: String,
    pub shard_id: String,
    /// Empty until known (Redis learns its own address from its peers).
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub hostname: String,
    pub flags: u16,
    /// The master's id, for a replica.
    pub master: Option<String>,
    pub ping_sent: i64,
    pub pong_received: i64,
    pub config_epoch: u64,
    /// Whether the bus link to it is up (always true for myself).
    pub linked: bool,
    pub slots: SlotBits,
    /// When a handshake (MEET) started, for its timeout.
    pub created: std::time::Instant,
    /// Masters that reported it failing.
    pub fail_reports: Vec<String>,
}

impl Node {
    pub fn new(id: String, flags: u16) -> Node {
        Node {
            id,
            shard_id: random_id(),
            ip: String::new(),
            port: 0,
            cport: 0,
            hostname: String::new(),
            flags,
            master: None,
            ping_sent: 0,
            pong_received: 0,
            config_epoch: 0,
            linked: false,
            slots: SlotBits::default(),
            created: std::time::Instant::now(),
            fail_reports: Vec::new(),
        }
    }
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    pub fn is_master(&self) -> bool {
        self.has(flag::MASTER)
    }
    pub fn numslots(&self) -> usize {
        self.slots.count()
    }
    /// `ip:port@cport[,hostname]`, the address field of a node line.
    pub fn address(&self) -> String {
        let mut s = format!("{}:{}@{}", self.ip, self.port, self.cport);
        if !self.hostname.is_empty() {
            s.push(',');
            s.push_str(&self.hostname);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        let f = flag::MYSELF | flag::MASTER;
        assert_eq!(flags_text(f), "myself,master");
        assert_eq!(parse_flags("myself,master"), f);
        assert_eq!(flags_text(0), "noflags");
        assert_eq!(parse_flags("noflags"), 0);
        assert_eq!(flags_text(flag::PFAIL | flag::SLAVE), "slave,fail?");
    }

    #[test]
    fn ids() {
        let id = random_id();
        assert!(valid_id(id.as_bytes()));
        assert!(!valid_id(b"abc"));
        assert!(!valid_id(&[b'G'; 40]));
    }

    #[test]
    fn slot_ranges() {
        let mut b = SlotBits::default();
        for s in [0, 1, 2, 5, 16383] {
            b.set(s);
        }
        assert_eq!(b.ranges(), vec![(0, 2), (5, 5), (16383, 16383)]);
        assert_eq!(b.count(), 5);
        b.clear(1);
        assert_eq!(b.ranges(), vec![(0, 0), (2, 2), (5, 5), (16383, 16383)]);
    }
}
