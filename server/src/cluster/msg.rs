//! Redis Cluster bus messages (version 1, as redis-server 7.0 sends them):
//! a fixed 2256-byte header ("RCmb", total length, type, epochs, sender id,
//! its 16384-bit slot bitmap, master, address, flags, cluster state) and a
//! body by type: gossip sections and ping extensions (PING, PONG, MEET),
//! a node id (FAIL), a channel and message (PUBLISH), or an epoch, a node
//! id and a slot bitmap (UPDATE). Integers are big-endian; strings are
//! NUL-padded fixed fields. Only the encoding lives here: the bus that
//! sends and receives these is not written yet.

use super::node::NAMELEN;

pub const SIG: &[u8; 4] = b"RCmb";
pub const VERSION: u16 = 1;
/// Bytes of the header, before the body.
pub const HEADER_LEN: usize = 2256;
/// Bytes of one gossip section.
pub const GOSSIP_LEN: usize = 104;
/// Bytes of the slot bitmap.
pub const SLOT_BYTES: usize = 16384 / 8;
/// Bytes of an IP field (INET6_ADDRSTRLEN).
const IP_LEN: usize = 46;

/// Message types.
pub mod kind {
    pub const PING: u16 = 0;
    pub const PONG: u16 = 1;
    pub const MEET: u16 = 2;
    pub const FAIL: u16 = 3;
    pub const PUBLISH: u16 = 4;
    pub const UPDATE: u16 = 7;
}

/// `mflags[0]`: the sender understands ping extensions.
pub const MFLAG_EXT_DATA: u8 = 1 << 2;

/// Ping extension types.
mod ext_type {
    pub const HOSTNAME: u16 = 0;
    pub const HUMAN_NODENAME: u16 = 1;
    pub const FORGOTTEN_NODE: u16 = 2;
    pub const SHARDID: u16 = 3;
}

pub type Id = [u8; NAMELEN];

#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub kind: u16,
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    /// Replication offset.
    pub offset: u64,
    pub sender: Id,
    pub slots: Box<[u8; SLOT_BYTES]>,
    /// The sender's master, for a replica (all zeroes on the wire: none).
    pub master: Option<Id>,
    pub ip: String,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    /// 0: the sender sees the cluster up; 1: down.
    pub state: u8,
    pub mflags: [u8; 3],
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gossip {
    pub id: Id,
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ext {
    Hostname(String),
    HumanNodename(String),
    ForgottenNode { id: Id, ttl: u64 },
    ShardId(Id),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// PING, PONG and MEET.
    Ping {
        gossip: Vec<Gossip>,
        exts: Vec<Ext>,
    },
    Fail {
        id: Id,
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    Update {
        config_epoch: u64,
        id: Id,
        slots: Box<[u8; SLOT_BYTES]>,
    },
    /// A type this node does not handle (failover votes...), kept raw.
    Other(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Msg {
    pub header: Header,
    pub body: Body,
}

/// The total length announced by a message's first 8 bytes, once they are
/// there and carry the signature (Err: not a bus message).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, &'static str> {
    if buf.len() < 8 {
        return Ok(None);
    }
    if &buf[..4] != SIG {
        return Err("bad signature");
    }
    Ok(Some(
        u32::from_be_bytes(buf[4..8].try_into().unwrap()) as usize
    ))
}

fn put_str(out: &mut Vec<u8>, s: &[u8], len: usize) {
    let n = s.len().min(len - 1);
    out.extend_from_slice(&s[..n]);
    out.resize(out.len() + len - n, 0);
}

fn get_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Extension bodies are padded to a multiple of 8 bytes.
fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn encode_ext(out: &mut Vec<u8>, e: &Ext) {
    let (t, data): (u16, Vec<u8>) = match e {
        Ext::Hostname(s) | Ext::HumanNodename(s) => {
            let mut d = s.as_bytes().to_vec();
            d.resize(padded(s.len() + 1), 0);
            let t = if matches!(e, Ext::Hostname(_)) {
                ext_type::HOSTNAME
            } else {
                ext_type::HUMAN_NODENAME
            };
            (t, d)
        }
        Ext::ForgottenNode { id, ttl } => {
            let mut d = id.to_vec();
            d.extend_from_slice(&ttl.to_be_bytes());
            (ext_type::FORGOTTEN_NODE, d)
        }
        Ext::ShardId(id) => (ext_type::SHARDID, id.to_vec()),
    };
    out.extend_from_slice(&((8 + data.len()) as u32).to_be_bytes());
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&data);
}

/// Encodes a message; `count`, `extensions` and `totlen` are derived.
pub fn encode(m: &Msg) -> Vec<u8> {
    let h = &m.header;
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    out.extend_from_slice(SIG);
    out.extend_from_slice(&[0; 4]); // totlen, set at the end
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&h.port.to_be_bytes());
    out.extend_from_slice(&h.kind.to_be_bytes());
    let (count, nexts) = match &m.body {
        Body::Ping { gossip, exts } => (gossip.len() as u16, exts.len() as u16),
        _ => (0, 0),
    };
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&h.current_epoch.to_be_bytes());
    out.extend_from_slice(&h.config_epoch.to_be_bytes());
    out.extend_from_slice(&h.offset.to_be_bytes());
    out.extend_from_slice(&h.sender);
    out.extend_from_slice(&h.slots[..]);
    out.extend_from_slice(&h.master.unwrap_or([0; NAMELEN]));
    put_str(&mut out, h.ip.as_bytes(), IP_LEN);
    out.extend_from_slice(&nexts.to_be_bytes());
    out.extend_from_slice(&[0; 30]);
    out.extend_from_slice(&h.pport.to_be_bytes());
    out.extend_from_slice(&h.cport.to_be_bytes());
    out.extend_from_slice(&h.flags.to_be_bytes());
    out.push(h.state);
    out.extend_from_slice(&h.mflags);
    debug_assert_eq!(out.len(), HEADER_LEN);
    match &m.body {
        Body::Ping { gossip, exts } => {
            for g in gossip {
                out.extend_from_slice(&g.id);
                out.extend_from_slice(&g.ping_sent.to_be_bytes());
                out.extend_from_slice(&g.pong_received.to_be_bytes());
                put_str(&mut out, g.ip.as_bytes(), IP_LEN);
                out.extend_from_slice(&g.port.to_be_bytes());
                out.extend_from_slice(&g.cport.to_be_bytes());
                out.extend_from_slice(&g.flags.to_be_bytes());
                out.extend_from_slice(&g.pport.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            for e in exts {
                encode_ext(&mut out, e);
            }
        }
        Body::Fail { id } => out.extend_from_slice(id),
        Body::Publish { channel, message } => {
            out.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
            // The C struct's 8-byte bulk_data field is the minimum body.
            let min = HEADER_LEN + 16;
            if out.len() < min {
                out.resize(min, 0);
            }
        }
        Body::Update {
            config_epoch,
            id,
            slots,
        } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(id);
            out.extend_from_slice(&slots[..]);
        }
        Body::Other(raw) => out.extend_from_slice(raw),
    }
    let total = out.len() as u32;
    out[4..8].copy_from_slice(&total.to_be_bytes());
    out
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or("message shorter than its contents")?;
        self.at += n;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn id(&mut self) -> Result<Id, &'static str> {
        Ok(self.take(NAMELEN)?.try_into().unwrap())
    }
    fn slots(&mut self) -> Result<Box<[u8; SLOT_BYTES]>, &'static str> {
        let s: [u8; SLOT_BYTES] = self.take(SLOT_BYTES)?.try_into().unwrap();
        Ok(Box::new(s))
    }
}

/// Decodes one whole message (`buf` is exactly its `totlen` bytes).
pub fn decode(buf: &[u8]) -> Result<Msg, &'static str> {
    if buf.len() < HEADER_LEN {
        return Err("message shorter than the header");
    }
    let mut c = Cursor { b: buf, at: 0 };
    if c.take(4)? != SIG {
        return Err("bad signature");
    }
    if c.u32()? as usize != buf.len() {
        return Err("length does not match");
    }
    if c.u16()? != VERSION {
        return Err("unsupported version");
    }
    let port = c.u16()?;
    let kind = c.u16()?;
    let count = c.u16()?;
    let current_epoch = c.u64()?;
    let config_epoch = c.u64()?;
    let offset = c.u64()?;
    let sender = c.id()?;
    let slots = c.slots()?;
    let master = c.id()?;
    let master = (master != [0; NAMELEN]).then_some(master);
    let ip = get_str(c.take(IP_LEN)?);
    let nexts = c.u16()?;
    c.take(30)?;
    let pport = c.u16()?;
    let cport = c.u16()?;
    let flags = c.u16()?;
    let state = c.take(1)?[0];
    let mflags: [u8; 3] = c.take(3)?.try_into().unwrap();
    let header = Header {
        kind,
        port,
        current_epoch,
        config_epoch,
        offset,
        sender,
        slots,
        master,
        ip,
        pport,
        cport,
        flags,
        state,
        mflags,
    };
    let body = match kind {
        kind::PING | kind::PONG | kind::MEET => {
            let mut gossip = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let id = c.id()?;
                let ping_sent = c.u32()?;
                let pong_received = c.u32()?;
                let ip = get_str(c.take(IP_LEN)?);
                let port = c.u16()?;
                let cport = c.u16()?;
                let flags = c.u16()?;
                let pport = c.u16()?;
                c.take(2)?;
                gossip.push(Gossip {
                    id,
                    ping_sent,
                    pong_received,
                    ip,
                    port,
                    cport,
                    flags,
                    pport,
                });
            }
            let mut exts = Vec::new();
            for _ in 0..nexts {
                let len = c.u32()? as usize;
                let t = c.u16()?;
                c.take(2)?;
                if len < 8 {
                    return Err("bad extension length");
                }
                let data = c.take(len - 8)?;
                let mut d = Cursor { b: data, at: 0 };
                match t {
                    ext_type::HOSTNAME => exts.push(Ext::Hostname(get_str(data))),
                    ext_type::HUMAN_NODENAME => exts.push(Ext::HumanNodename(get_str(data))),
                    ext_type::FORGOTTEN_NODE => {
                        let id = d.id()?;
                        let ttl = d.u64()?;
                        exts.push(Ext::ForgottenNode { id, ttl })
                    }
                    ext_type::SHARDID => exts.push(Ext::ShardId(d.id()?)),
                    // Unknown extensions are skipped, as Redis skips them.
                    _ => {}
                }
            }
            if c.at != buf.len() {
                return Err("length does not match");
            }
            Body::Ping { gossip, exts }
        }
        kind::FAIL => Body::Fail { id: c.id()? },
        kind::PUBLISH => {
            let clen = c.u32()? as usize;
            let mlen = c.u32()? as usize;
            let channel = c.take(clen)?.to_vec();
            let message = c.take(mlen)?.to_vec();
            Body::Publish { channel, message }
        }
        kind::UPDATE => Body::Update {
            config_epoch: c.u64()?,
            id: c.id()?,
            slots: c.slots()?,
        },
        _ => Body::Other(buf[HEADER_LEN..].to_vec()),
    };
    Ok(Msg { header, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: u8) -> Id {
        [c; NAMELEN]
    }

    fn header(kind: u16) -> Header {
        let mut slots = Box::new([0u8; SLOT_BYTES]);
        // Slots 0, 9 and 16383: bit (slot % 8) of byte slot / 8.
        slots[0] = 1;
        slots[1] = 2;
        slots[SLOT_BYTES - 1] = 0x80;
        Header {
            kind,
            port: 7000,
            current_epoch: 5,
            config_epoch: 3,
            offset: 42,
            sender: id(b'a'),
            slots,
            master: None,
            ip: "127.0.0.1".into(),
            pport: 0,
            cport: 17000,
            flags: 1,
            state: 0,
            mflags: [MFLAG_EXT_DATA, 0, 0],
        }
    }

    fn round_trip(m: Msg) -> Vec<u8> {
        let bytes = encode(&m);
        assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
        assert_eq!(decode(&bytes).unwrap(), m);
        bytes
    }

    #[test]
    fn header_layout() {
        let b = round_trip(Msg {
            header: header(kind::PING),
            body: Body::Ping {
                gossip: vec![],
                exts: vec![],
            },
        });
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(&b[0..4], b"RCmb");
        assert_eq!(&b[8..10], &[0, 1]); // version
        assert_eq!(&b[10..12], &7000u16.to_be_bytes());
        assert_eq!(&b[40..80], &[b'a'; 40]); // sender
        assert_eq!(b[80], 1); // slot 0
        assert_eq!(b[81], 2); // slot 9
        assert_eq!(b[80 + SLOT_BYTES - 1], 0x80); // slot 16383
        assert_eq!(&b[2168..2177], b"127.0.0.1"); // myip
        assert_eq!(&b[2248..2250], &17000u16.to_be_bytes()); // cport
        assert_eq!(b[2253], MFLAG_EXT_DATA);
    }

    #[test]
    fn ping_pong_meet_with_gossip_and_extensions() {
        for k in [kind::PING, kind::PONG, kind::MEET] {
            let mut h = header(k);
            h.master = Some(id(b'm'));
            let b = round_trip(Msg {
                header: h,
                body: Body::Ping {
                    gossip: vec![
                        Gossip {
                            id: id(b'b'),
                            ping_sent: 1,
                            pong_received: 2,
                            ip: "10.0.0.2".into(),
                            port: 7001,
                            cport: 17001,
                            flags: 1 | 4,
                            pport: 0,
                        },
                        Gossip {
                            id: id(b'c'),
                            ping_sent: 0,
                            pong_received: 0,
                            ip: "::1".into(),
                            port: 7002,
                            cport: 17002,
                            flags: 2,
                            pport: 0,
                        },
                    ],
                    exts: vec![
                        Ext::Hostname("node-a.example".into()),
                        Ext::HumanNodename("a".into()),
                        Ext::ForgottenNode {
                            id: id(b'd'),
                            ttl: 60,
                        },
                        Ext::ShardId(id(b's')),
                    ],
                },
            });
            // Header, two gossip sections, then extensions of 8-byte
            // multiples: hostname 8+16, human name 8+8, forgotten 8+48,
            // shard id 8+40.
            assert_eq!(b.len(), HEADER_LEN + 2 * GOSSIP_LEN + 24 + 16 + 56 + 48);
            assert_eq!(&b[14..16], &2u16.to_be_bytes()); // count
            assert_eq!(&b[2214..2216], &4u16.to_be_bytes()); // extensions
        }
    }

    #[test]
    fn fail_publish_update() {
        let b = round_trip(Msg {
            header: header(kind::FAIL),
            body: Body::Fail { id: id(b'z') },
        });
        assert_eq!(b.len(), HEADER_LEN + NAMELEN);
        round_trip(Msg {
            header: header(kind::PUBLISH),
            body: Body::Publish {
                channel: b"news".to_vec(),
                message: b"hello world".to_vec(),
            },
        });
        let mut slots = Box::new([0u8; SLOT_BYTES]);
        slots[100] = 0xff;
        let b = round_trip(Msg {
            header: header(kind::UPDATE),
            body: Body::Update {
                config_epoch: 9,
                id: id(b'q'),
                slots,
            },
        });
        assert_eq!(b.len(), HEADER_LEN + 8 + NAMELEN + SLOT_BYTES);
    }

    #[test]
    fn refuses_bad_input() {
        let good = encode(&Msg {
            header: header(kind::FAIL),
            body: Body::Fail { id: id(b'z') },
        });
        assert!(decode(&good[..good.len() - 1]).is_err());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(decode(&bad).is_err());
        assert!(frame_len(&bad).is_err());
        assert_eq!(frame_len(&good[..7]).unwrap(), None);
        // A gossip count larger than the message.
        let mut ping = encode(&Msg {
            header: header(kind::PING),
            body: Body::Ping {
                gossip: vec![],
                exts: vec![],
            },
        });
        ping[14..16].copy_from_slice(&3u16.to_be_bytes());
        assert!(decode(&ping).is_err());
    }

    /// Byte compatibility with redis-server 7.0 itself (when installed): a
    /// MEET encoded here is answered by a PONG that decodes here, carrying
    /// the server's id, port and slot bitmap.
    #[test]
    fn redis_server_answers_our_meet() {
        use std::io::{Read, Write};
        let Ok(out) = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
        else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("tessera-msg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = loop {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = l.local_addr().unwrap().port();
            if p <= 55535 {
                break p;
            }
        };
        let mut child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--cluster-enabled", "yes"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let result = std::panic::catch_unwind(|| {
            let mut conn = None;
            for _ in 0..100 {
                if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", port + 10000)) {
                    conn = Some(c);
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let mut conn = conn.expect("redis-server's bus port");
            conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut h = header(kind::MEET);
            h.slots = Box::new([0; SLOT_BYTES]);
            h.port = 1;
            h.cport = 10001;
            conn.write_all(&encode(&Msg {
                header: h,
                body: Body::Ping {
                    gossip: vec![],
                    exts: vec![Ext::Hostname("tessera-test".into())],
                },
            }))
            .unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let len = loop {
                if let Some(n) = frame_len(&buf).unwrap() {
                    if buf.len() >= n {
                        break n;
                    }
                }
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "redis-server closed the bus link");
                buf.extend_from_slice(&chunk[..n]);
            };
            let m = decode(&buf[..len]).unwrap();
            assert_eq!(m.header.kind, kind::PONG);
            assert_eq!(m.header.port, port);
            assert_eq!(m.header.cport, port + 10000);
            assert!(m.header.slots.iter().all(|&b| b == 0));
            assert!(m.header.sender.iter().all(|c| c.is_ascii_hexdigit()));
        });
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}
