//! Starts the real tessera-server binary on a free port for a test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub port: u16,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub fn start(shards: usize) -> Server {
        Self::start_with(shards, &[])
    }

    pub fn start_with(shards: usize, extra: &[&str]) -> Server {
        // A port found free can be taken by another test (or another
        // program) before the server binds it: then the server exits at
        // once, and we try again on a fresh port.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera-server"));
            cmd.args([
                "--port",
                &port.to_string(),
                "--shards",
                &shards.to_string(),
                "--loglevel",
                "warning",
            ]);
            cmd.args(extra);
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
            let child = cmd.spawn().expect("start tessera-server");
            let mut s = Server { child, port };
            match s.wait_ready() {
                Ok(()) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("tessera-server did not start: {last_err}");
    }

    /// Waits until the server answers PING; Err with its stderr if it exited.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("exited with {status}: {}", err.trim()));
            }
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                if c.write_all(b"PING\r\n").is_ok() {
                    let mut b = [0u8; 64];
                    if let Ok(n) = c.read(&mut b) {
                        // +PONG, or -NOAUTH when a password is required.
                        if n > 0 {
                            return Ok(());
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("no answer on port {} within 60 s", self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn client_resp3(&self) -> redis::Connection {
        redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw socket, for protocol-level tests.
    pub fn raw(&self) -> TcpStream {
        let c = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    }
}

/// Sends bytes and reads until `expect_len` bytes arrived or the peer closed.
pub fn roundtrip(c: &mut TcpStream, send: &[u8], expect_len: usize) -> Vec<u8> {
    c.write_all(send).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < expect_len {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// True when the peer closed the connection.
pub fn closed(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    matches!(c.read(&mut b), Ok(0))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
