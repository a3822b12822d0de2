//! Exactly -n requests reach the server, whatever the pipeline depth,
//! number of connections and threads, the loop (closed or open) or the
//! socket back end.

mod common;
use common::*;

#[test]
fn the_server_sees_exactly_n_calls() {
    if !have_redis() {
        return;
    }
    let r = Redis::start(&[]);
    let port = r.port;
    // Totals that do not divide evenly by -c, -P or --threads.
    let runs = [
        (1001, 7, 1, 1),
        (10007, 50, 16, 1),
        (5003, 10, 16, 2),
        (3, 50, 16, 1),
    ];
    for io in ["epoll", "uring"] {
        for (n, c, p, threads) in runs {
            r.cli(&["CONFIG", "RESETSTAT"]);
            bench_line(&format!(
                "-p {port} --io {io} -t set -n {n} -c {c} -P {p} --threads {threads} -r 1000 -q"
            ));
            assert_eq!(
                r.calls("set"),
                n,
                "--io {io} -n {n} -c {c} -P {p} --threads {threads}"
            );
        }
    }
}

#[test]
fn mixes_and_json_counts_agree_with_the_server() {
    if !have_redis() {
        return;
    }
    let r = Redis::start(&[]);
    r.cli(&["CONFIG", "RESETSTAT"]);
    let path = json_path("ratio");
    bench_line(&format!(
        "-p {} --ratio 1:3 -n 4000 -c 8 -P 8 -r 100 --json {}",
        r.port,
        path.display()
    ));
    assert_eq!((r.calls("set"), r.calls("get")), (1000, 3000));
    let j = read_json(&path);
    assert_eq!(j["requests"], 4000);
    assert_eq!(j["error_count"], 0);
    assert_eq!(
        j["hits"].as_u64().unwrap() + j["misses"].as_u64().unwrap(),
        3000
    );
    for q in ["p50", "p99", "p999"] {
        assert!(j["latency_us"][q].as_f64().unwrap() > 0.0, "{q}");
    }
    let buckets: u64 = j["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(buckets, 4000);
}

#[test]
fn open_loop_sends_exactly_n_on_its_schedule() {
    if !have_redis() {
        return;
    }
    let r = Redis::start(&[]);
    let path = json_path("rate");
    for io in ["epoll", "uring"] {
        r.cli(&["CONFIG", "RESETSTAT"]);
        bench_line(&format!(
            "-p {} --io {io} -t get --rate 2000 -n 500 -c 5 --json {}",
            r.port,
            path.display()
        ));
        assert_eq!(r.calls("get"), 500, "--io {io}");
        let j = read_json(&path);
        assert_eq!(j["requests"], 500);
        // 500 requests at 2000/s are spread over 0.25 s: the schedule, not
        // the server, sets the pace (a lower bound only; no speed asserted).
        assert!(
            j["elapsed_s"].as_f64().unwrap() >= 0.2,
            "{}",
            j["elapsed_s"]
        );
    }
}

#[test]
fn every_builtin_test_and_a_template_run_without_errors() {
    if !have_redis() {
        return;
    }
    let r = Redis::start(&[]);
    let port = r.port;
    let tests =
        "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset,mget";
    let out = bench_line(&format!(
        "-p {port} -t {tests} -n 200 -c 4 -P 4 -r 50 --csv"
    ));
    assert_eq!(out.lines().count(), 17, "{out}");
    assert!(out.starts_with("\"test\",\"rps\""));
    let path = json_path("all");
    bench_line(&format!(
        "-p {port} -t {tests} -n 200 -c 4 --resp3 -q --json {}",
        path.display()
    ));
    let j = read_json(&path);
    assert_eq!(j["error_count"], 0, "{}", j["errors"]);
    assert_eq!(j["requests"], 200 * 16);
    r.cli(&["CONFIG", "RESETSTAT"]);
    let out = bench_line(&format!(
        "-p {port} -n 100 -q -- HSET h:__rand_int__ f __data__"
    ));
    assert!(out.starts_with("HSET h:__rand_int__ f __data__: "), "{out}");
    assert_eq!(r.calls("hset"), 100);
}

#[test]
fn errors_are_counted_by_kind_and_auth_is_sent() {
    if !have_redis() {
        return;
    }
    let r = Redis::start(&["--requirepass", "s3cret"]);
    let port = r.port;
    let path = json_path("auth");
    bench_line(&format!(
        "-p {port} -a s3cret -n 100 -q --json {} -- INCR counter",
        path.display()
    ));
    assert_eq!(read_json(&path)["error_count"], 0);
    r.cli(&["-a", "s3cret", "SET", "str", "x"]);
    let path = json_path("wrongtype");
    bench_line(&format!(
        "-p {port} --user default --pass s3cret -n 50 -q --json {} -- LPUSH str x",
        path.display()
    ));
    assert_eq!(read_json(&path)["errors"]["WRONGTYPE"], 50);
    // A bad password is a clear failure, not a hang or a panic.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(["-p", &port.to_string(), "-a", "wrong", "-n", "10", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUTH failed"));
}

#[test]
fn duration_and_warmup_measure_only_the_timed_part() {
    if !have_redis() {
        return;
    }
    let r = Redis::start(&[]);
    r.cli(&["CONFIG", "RESETSTAT"]);
    let path = json_path("duration");
    bench_line(&format!(
        "-p {} -t set --duration 0.5 --warmup 0.3 -c 4 -P 4 --distribution zipf:0.99 -r 1000 --json {}",
        r.port,
        path.display()
    ));
    let j = read_json(&path);
    let measured = j["requests"].as_u64().unwrap();
    assert!(measured > 0);
    // Warm-up requests reach the server but are not in the result.
    assert!(
        r.calls("set") > measured,
        "{} vs {measured}",
        r.calls("set")
    );
    let elapsed = j["elapsed_s"].as_f64().unwrap();
    assert!((0.4..5.0).contains(&elapsed), "{elapsed}");
}
