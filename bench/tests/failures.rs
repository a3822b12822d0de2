//! A server that goes away mid-run: the requests it never answered are
//! counted as errors, the run ends on its own, and nothing panics.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn a_dead_server_ends_the_run_with_errors_not_a_panic() {
    if !have_redis() {
        return;
    }
    for io in ["epoll", "uring"] {
        let mut r = Redis::start(&[]);
        let path = json_path(&format!("killed-{io}"));
        let args = format!(
            "-p {} --io {io} -t set --duration 20 -c 4 -P 4 -r 1000 -q --json {}",
            r.port,
            path.display()
        );
        let child = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
            .args(args.split_whitespace())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        r.kill();
        // Every client fails to reconnect, so the run stops long before
        // its 20 s (wait() returning at all is the check; no timing).
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "--io {io}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let j = read_json(&path);
        assert!(j["requests"].as_u64().unwrap() > 0);
        assert!(j["error_count"].as_u64().unwrap() > 0, "{}", j["errors"]);
    }
}
