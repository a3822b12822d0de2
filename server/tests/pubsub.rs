//! Pub/sub through the real server with 4 shards: subscribers placed on
//! every shard (DEBUG SHARD), PUBLISH counts and delivery order, and the
//! registries emptied when subscribers go.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{roundtrip, Server};

fn shard_of(c: &mut TcpStream) -> u8 {
    let r = roundtrip(c, b"DEBUG SHARD\r\n", 4);
    assert_eq!(r.len(), 4, "{r:?}");
    r[1] - b'0'
}

/// One raw connection on each of the server's 4 shards.
fn one_per_shard(s: &Server) -> Vec<TcpStream> {
    let mut slots: Vec<Option<TcpStream>> = (0..4).map(|_| None).collect();
    for _ in 0..400 {
        let mut c = s.raw();
        let sh = shard_of(&mut c) as usize;
        if slots[sh].is_none() {
            slots[sh] = Some(c);
        }
        if slots.iter().all(Option::is_some) {
            return slots.into_iter().flatten().collect();
        }
    }
    panic!("connections did not reach every shard");
}

fn read_exact(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    c.read_exact(&mut out).unwrap();
    out
}

fn message(ch: &str, m: &str) -> Vec<u8> {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{ch}\r\n${}\r\n{m}\r\n",
        ch.len(),
        m.len()
    )
    .into_bytes()
}

#[test]
fn publish_reaches_every_shard_in_order_and_counts() {
    let s = Server::start(4);
    let mut subs = one_per_shard(&s);
    let confirm = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfeed\r\n:1\r\n";
    for c in &mut subs {
        assert_eq!(
            roundtrip(c, b"SUBSCRIBE feed\r\n", confirm.len()),
            confirm.to_vec()
        );
    }
    let mut pubr = s.raw();
    let mut req = Vec::new();
    for i in 0..500 {
        req.extend_from_slice(format!("PUBLISH feed m{i}\r\n").as_bytes());
    }
    let replies = roundtrip(&mut pubr, &req, 500 * 4);
    assert_eq!(replies, b":4\r\n".repeat(500));
    for c in &mut subs {
        for i in 0..500 {
            let want = message("feed", &format!("m{i}"));
            assert_eq!(read_exact(c, want.len()), want);
        }
    }
    // Subscribed mode refuses other commands (RESP2).
    let err = b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
    assert_eq!(
        roundtrip(&mut subs[2], b"GET x\r\n", err.len()),
        err.to_vec()
    );
    // The subscribers go: nothing stays registered on any shard.
    drop(subs);
    let gone = b":0\r\n";
    let mut ok = false;
    for _ in 0..100 {
        if roundtrip(&mut pubr, b"PUBLISH feed x\r\n", 4) == gone.to_vec() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(ok, "subscribers still registered after they closed");
    let numsub = b"*2\r\n$4\r\nfeed\r\n:0\r\n";
    assert_eq!(
        roundtrip(&mut pubr, b"PUBSUB NUMSUB feed\r\n", numsub.len()),
        numsub.to_vec()
    );
    pubr.write_all(b"QUIT\r\n").unwrap();
}
