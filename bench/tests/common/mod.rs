//! Helpers for the integration tests: real redis-server processes on free
//! loopback ports in temporary directories, redis-cli for inspection, and
//! the tessera-bench binary.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// True when redis-server and redis-cli are installed; else says why the
/// test is skipped.
pub fn have_redis() -> bool {
    for tool in ["redis-server", "redis-cli"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            eprintln!("SKIPPED: {tool} is not installed (scripts/test.sh installs it)");
            return false;
        }
    }
    true
}

/// A port that is free, and whose cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20000 + (std::process::id() % 500) * 40;
    loop {
        let p = (base + NEXT.fetch_add(1, Ordering::Relaxed) % 20000) as u16;
        if TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok()
        {
            return p;
        }
    }
}

pub struct Redis {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Redis {
    /// Starts redis-server with persistence off; `extra` adds options.
    pub fn start(extra: &[&str]) -> Redis {
        let port = free_port();
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tessera-bench-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--dir".to_string(), dir.display().to_string()]);
        args.extend(
            extra
                .iter()
                .map(|s| s.replace("{dir}", &dir.display().to_string())),
        );
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let r = Redis { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        // With requirepass, NOAUTH also proves the server is up.
        while !matches!(
            r.cli(&["PING"]).as_str(),
            "PONG" | "NOAUTH Authentication required."
        ) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// Runs redis-cli against this server; returns trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `calls=` of one command in INFO commandstats (0 if never called).
    pub fn calls(&self, cmd: &str) -> u64 {
        let info = self.cli(&["INFO", "commandstats"]);
        let prefix = format!("cmdstat_{cmd}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
            .unwrap_or(0)
    }

    /// Kills the server (SIGKILL) while clients are connected.
    pub fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    pub fn dbsize(&self) -> u64 {
        self.cli(&["DBSIZE"]).parse().unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Runs tessera-bench; panics with its output if it fails.
pub fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(args)
        .output()
        .expect("run tessera-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "tessera-bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A fresh path for a JSON result.
pub fn json_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tessera-bench-{}-{tag}.json", std::process::id()))
}

pub fn read_json(path: &PathBuf) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read JSON result");
    std::fs::remove_file(path).ok();
    serde_json::from_str(&text).expect("valid JSON")
}

/// Runs tessera-bench with a whitespace-separated argument line.
pub fn bench_line(line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    bench(&args)
}
