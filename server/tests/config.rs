//! Config files: Debian's stock redis.conf, CONFIG REWRITE, daemonize and
//! the pid file, against the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use redis::cmd;

/// These tests run one at a time: each picks a free port and starts a
/// server on it (the daemonized one binds after its parent has exited), so
/// two of them at once can be handed the same port and talk to each
/// other's server (seen in CI).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn client(port: u16) -> Option<redis::Connection> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut c = c.get_connection().ok()?;
    let pong: Result<String, _> = cmd("PING").query(&mut c);
    pong.ok().map(|_| c)
}

/// Waits until the server on `port` answers PING.
fn wait_ready(port: u16, child: &mut Option<&mut Child>) -> redis::Connection {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(ch) = child.as_mut() {
            if let Ok(Some(status)) = ch.try_wait() {
                let out = ch.wait_with_output_lossy();
                panic!("tessera-server exited with {status}: {out}");
            }
        }
        if let Some(c) = client(port) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no answer on port {port}");
}

trait Lossy {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl Lossy for Child {
    fn wait_with_output_lossy(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// A started server, killed when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_tessera-server"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tessera-server"),
    )
}

fn get(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = cmd("CONFIG").arg("GET").arg(name).query(c).unwrap();
    assert_eq!(v.len(), 2, "CONFIG GET {name}: {v:?}");
    v[1].clone()
}

fn stop(child: Running) {
    drop(child);
}

/// Debian's /etc/redis/redis.conf, copied unmodified, loads; the options a
/// user overrides on the command line (as Debian's systemd unit does for
/// daemonize) win; the file's other settings are in effect.
#[test]
fn stock_debian_redis_conf_loads() {
    let _serial = serial();
    let stock = Path::new("/etc/redis/redis.conf");
    if !stock.exists() {
        eprintln!("skipped: /etc/redis/redis.conf is not installed (apt-get install redis-server)");
        return;
    }
    let dir = temp_dir("stockconf");
    let conf = dir.join("redis.conf");
    std::fs::copy(stock, &conf).unwrap();
    let pidfile = dir.join("tessera.pid");
    let logfile = dir.join("tessera.log");
    let port = free_port();
    let mut child = start(&[
        conf.to_str().unwrap(),
        "--port",
        &port.to_string(),
        "--shards",
        "2",
        "--daemonize",
        "no",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--logfile",
        logfile.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let mut c = wait_ready(port, &mut Some(&mut child.0));
    let _: () = cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    assert_eq!(cmd("GET").arg("k").query::<String>(&mut c).unwrap(), "v");
    // From the file.
    assert_eq!(get(&mut c, "bind"), "127.0.0.1 -::1");
    assert_eq!(get(&mut c, "tcp-keepalive"), "300");
    assert_eq!(get(&mut c, "hash-max-listpack-entries"), "512");
    assert_eq!(get(&mut c, "hash-max-ziplist-entries"), "512");
    assert_eq!(
        get(&mut c, "proc-title-template"),
        "{title} {listen-addr} {server-mode}"
    );
    assert_eq!(get(&mut c, "oom-score-adj-values"), "0 200 800");
    assert_eq!(get(&mut c, "auto-aof-rewrite-min-size"), "67108864");
    assert_eq!(
        get(&mut c, "client-output-buffer-limit"),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    assert_eq!(get(&mut c, "notify-keyspace-events"), "");
    assert_eq!(get(&mut c, "appendfilename"), "appendonly.aof");
    // From the command line.
    assert_eq!(get(&mut c, "daemonize"), "no");
    assert_eq!(get(&mut c, "port"), port.to_string());
    let canon = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(get(&mut c, "dir"), canon.to_str().unwrap());
    // The pid file and the log file are honoured.
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, child.0.id());
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains("Configuration loaded from"), "{log}");
    // CONFIG REWRITE keeps the stock file's comments and updates in place.
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("100mb")
        .arg("tcp-keepalive")
        .arg("60")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let before = std::fs::read_to_string(stock).unwrap();
    let after = std::fs::read_to_string(&conf).unwrap();
    assert!(after.contains("\ntcp-keepalive 60\n"), "{after}");
    assert!(!after.contains("\ntcp-keepalive 300\n"));
    let comments = |t: &str| t.lines().filter(|l| l.trim().starts_with('#')).count();
    // Every comment stays; the rewrite adds its signature line.
    assert_eq!(comments(&after), comments(&before) + 1);
    let tail = after
        .split("# Generated by CONFIG REWRITE\n")
        .nth(1)
        .unwrap();
    assert!(tail.contains("maxmemory 100mb\n"), "{tail}");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CONFIG REWRITE as Redis does it, and the rewritten file loads back.
#[test]
fn config_rewrite_updates_the_file() {
    let _serial = serial();
    let dir = temp_dir("rewrite");
    let conf = dir.join("t.conf");
    std::fs::write(
        &conf,
        "# my settings\nslave-read-only yes\n\n# snapshots\nsave 900 1\nsave 300 10\nhash-max-ziplist-entries 100\ntimeout 0\nloglevel warning\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = start(&[
        conf.to_str().unwrap(),
        "--port",
        &port.to_string(),
        "--shards",
        "1",
    ]);
    let mut c = wait_ready(port, &mut Some(&mut child.0));
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("slave-read-only")
        .arg("no")
        .arg("save")
        .arg("")
        .arg("timeout")
        .arg("10")
        .arg("notify-keyspace-events")
        .arg("KEA")
        .arg("maxmemory")
        .arg("1gb")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    let dir_line = format!("dir \"{}\"\n", std::env::current_dir().unwrap().display());
    let want = format!(
        "# my settings\nreplica-read-only no\n\n# snapshots\nsave \"\"\n\nhash-max-listpack-entries 100\ntimeout 10\nloglevel warning\n\n# Generated by CONFIG REWRITE\nport {port}\nmaxmemory 1gb\n{dir_line}notify-keyspace-events \"AKE\"\nlatency-tracking-info-percentiles 50 99 99.9\nshards 1\n"
    );
    assert_eq!(text, want);
    stop(child);
    // The rewritten file brings the same settings back.
    let mut child = start(&[conf.to_str().unwrap()]);
    let mut c = wait_ready(port, &mut Some(&mut child.0));
    assert_eq!(get(&mut c, "replica-read-only"), "no");
    assert_eq!(get(&mut c, "timeout"), "10");
    assert_eq!(get(&mut c, "maxmemory"), "1073741824");
    assert_eq!(get(&mut c, "notify-keyspace-events"), "AKE");
    assert_eq!(get(&mut c, "hash-max-listpack-entries"), "100");
    assert_eq!(get(&mut c, "save"), "");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);

    // Without a config file.
    let port = free_port();
    let mut child = start(&["--port", &port.to_string(), "--shards", "1"]);
    let mut c = wait_ready(port, &mut Some(&mut child.0));
    let e = cmd("CONFIG")
        .arg("REWRITE")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with(": The server is running without a config file"),
        "{e}"
    );
    stop(child);
}

/// `daemonize yes`: the command returns at once, the server runs on in
/// the background with its pid in the pid file, and removes it at exit.
#[test]
fn daemonize_and_pidfile() {
    let _serial = serial();
    let dir = temp_dir("daemon");
    let pidfile = dir.join("d.pid");
    let port = free_port();
    let status = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .args([
            "--port",
            &port.to_string(),
            "--shards",
            "1",
            "--daemonize",
            "yes",
            "--pidfile",
            pidfile.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut c = wait_ready(port, &mut None);
    assert_eq!(get(&mut c, "daemonize"), "yes");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signals the server this test started.
    assert_eq!(unsafe { kill(pid, 15) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while pidfile.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pidfile.exists(), "the pid file is removed at exit");
    let _ = std::fs::remove_dir_all(&dir);
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
