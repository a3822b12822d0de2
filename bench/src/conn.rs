//! Opening connections: connect, authenticate / HELLO, then hand over a
//! non-blocking socket. Also a blocking request helper for control
//! commands (CLUSTER SLOTS, setup, INFO).

use crate::resp::{decode, encode_command, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What every new connection sends before the load: HELLO 3 and/or AUTH.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    pub commands: Vec<Vec<Vec<u8>>>,
}

impl Handshake {
    pub fn new(resp3: bool, user: Option<&str>, pass: Option<&str>) -> Handshake {
        let mut cmd: Vec<Vec<u8>> = Vec::new();
        if resp3 {
            cmd.extend([b"HELLO".to_vec(), b"3".to_vec()]);
            if let Some(p) = pass {
                cmd.extend([
                    b"AUTH".to_vec(),
                    user.unwrap_or("default").as_bytes().to_vec(),
                    p.as_bytes().to_vec(),
                ]);
            }
        } else if let Some(p) = pass {
            cmd.push(b"AUTH".to_vec());
            if let Some(u) = user {
                cmd.push(u.as_bytes().to_vec());
            }
            cmd.push(p.as_bytes().to_vec());
        }
        Handshake {
            commands: if cmd.is_empty() { vec![] } else { vec![cmd] },
        }
    }
}

/// Sends one command on a blocking stream and reads its reply.
pub fn call(stream: &mut TcpStream, args: &[&[u8]]) -> Result<Value, String> {
    let mut out = Vec::new();
    encode_command(args, &mut out);
    stream.write_all(&out).map_err(|e| format!("write: {e}"))?;
    read_value(stream)
}

/// Reads one reply from a blocking stream.
pub fn read_value(stream: &mut TcpStream) -> Result<Value, String> {
    Ok(read_values(stream, 1)?.pop().expect("one reply"))
}

/// Reads `n` pipelined replies from a blocking stream.
pub fn read_values(stream: &mut TcpStream, n: usize) -> Result<Vec<Value>, String> {
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut out = Vec::with_capacity(n);
    let mut chunk = [0u8; 16384];
    while out.len() < n {
        if let Some((len, v)) =
            decode(&buf[pos..]).map_err(|_| "protocol error in reply".to_string())?
        {
            pos += len;
            out.push(v);
            continue;
        }
        let got = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if got == 0 {
            return Err("connection closed by server".into());
        }
        buf.extend_from_slice(&chunk[..got]);
    }
    Ok(out)
}

/// Connects and runs the handshake; the stream is blocking, with timeouts.
pub fn connect_blocking(addr: SocketAddr, hs: &Handshake) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    for cmd in &hs.commands {
        let refs: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        if let Value::Err(e) = call(&mut s, &refs)? {
            return Err(format!(
                "{addr}: {} failed: {e}",
                String::from_utf8_lossy(&cmd[0])
            ));
        }
    }
    Ok(s)
}

/// Connects for load: handshake done, then non-blocking.
pub fn connect_load(addr: SocketAddr, hs: &Handshake) -> Result<TcpStream, String> {
    let s = connect_blocking(addr, hs)?;
    s.set_read_timeout(None).ok();
    s.set_nonblocking(true)
        .map_err(|e| format!("set_nonblocking: {e}"))?;
    Ok(s)
}
