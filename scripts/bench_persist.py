#!/usr/bin/env python3
"""BGSAVE side by side: Tessera (fork-less snapshot) vs redis-server (fork).

For each server: load N small keys (`SET key:<i> <16-byte value>` through
`redis-cli --pipe`), then
  * BGSAVE alone: wall time until the file is on disk, file size, MB/s, and
    the peak memory of the server and any child it forked (sum of PSS from
    /proc/PID/smaps_rollup, so pages a fork shares are counted once; RSS of
    the parent alone is printed too);
  * p99 (and p50, max) latency of a concurrent SET load (redis-benchmark,
    -c 10, random keys among the N) without a BGSAVE, then while BGSAVE
    runs (the load is sized to last about as long as the save);
  * the time to load the same file at startup (spawn to PING answered with
    every key loaded).
Then, with the append-only file on (`appendonly yes`), for `appendfsync
always` and `everysec`: SET throughput and p99 at -P 16 (redis-benchmark
-c 50, random keys among --aof-keys), each server in a fresh directory.

    scripts/bench_persist.py [--keys 1000000] [--shards 2] [--value-size 16]
                             [--tessera target/release/tessera-server] [--json out.json]
                             [--skip-bgsave] [--skip-aof] [--aof-requests 1000000]

Standard library only; needs redis-server, redis-cli, redis-benchmark.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import free_port, proc_rss_bytes  # noqa: E402


def cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True, text=True)
    return r.stdout.strip()


def info(port, section="persistence"):
    out = {}
    for line in cli(port, "info", section).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def pss_bytes(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss(pid):
    return pss_bytes(pid) + sum(pss_bytes(c) for c in children(pid))


class Sampler:
    """Peak PSS of a process and its children, and peak RSS of the parent."""

    def __init__(self, pid):
        self.pid, self.peak_pss, self.peak_rss = pid, 0, 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            self.peak_pss = max(self.peak_pss, tree_pss(self.pid))
            self.peak_rss = max(self.peak_rss, proc_rss_bytes(self.pid))
            time.sleep(0.01)

    def done(self):
        self.stop.set()
        self.t.join()
        return self.peak_pss, self.peak_rss


def wait_ping(port, timeout=600):
    end = time.time() + timeout
    while time.time() < end:
        if cli(port, "ping") == "PONG":
            return
        time.sleep(0.01)
    raise SystemExit(f"server on {port} did not answer")


def start(kind, args, d, port):
    if kind == "tessera":
        argv = [args.tessera, "--port", str(port), "--shards", str(args.shards), "--dir", d,
                "--loglevel", "warning"]
    else:
        argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", d,
                "--loglevel", "warning"]
    return subprocess.Popen(argv, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load_keys(port, n, size):
    val = b"v" * size
    def gen():
        buf = []
        for i in range(n):
            k = b"key:%d" % i
            buf.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, val))
            if len(buf) == 10000:
                yield b"".join(buf)
                buf = []
        if buf:
            yield b"".join(buf)
    p = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL)
    for chunk in gen():
        p.stdin.write(chunk)
    p.stdin.close()
    p.wait()


def bench_load(port, n, requests):
    """p50/p99/max (ms) and rps of a SET load over the N keys."""
    r = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(requests), "-c", "10",
                        "-r", str(n), "-d", "16", "--csv"], capture_output=True, text=True)
    lines = [x for x in r.stdout.splitlines() if x.startswith('"SET"')]
    if not lines:
        return None
    f = [x.strip('"') for x in lines[-1].split(",")]
    return {"rps": float(f[1]), "p50_ms": float(f[4]), "p99_ms": float(f[6]), "max_ms": float(f[7])}


def bgsave_and_wait(port):
    t0 = time.time()
    cli(port, "bgsave")
    time.sleep(0.002)
    while info(port).get("rdb_bgsave_in_progress") == "1":
        time.sleep(0.005)
    dt = time.time() - t0
    ok = info(port).get("rdb_last_bgsave_status") == "ok"
    return dt, ok


def run(kind, args):
    d = tempfile.mkdtemp(prefix=f"bench-persist-{kind}-")
    port = free_port()
    p = start(kind, args, d, port)
    out = {"server": kind}
    try:
        wait_ping(port)
        t0 = time.time()
        load_keys(port, args.keys, args.value_size)
        out["fill_s"] = round(time.time() - t0, 2)
        out["keys"] = int(cli(port, "dbsize"))
        out["rss_before_mb"] = round(proc_rss_bytes(p.pid) / 2**20, 1)
        # BGSAVE alone.
        s = Sampler(p.pid)
        dt, ok = bgsave_and_wait(port)
        pss, rss = s.done()
        size = os.path.getsize(os.path.join(d, "dump.rdb"))
        out.update({
            "bgsave_s": round(dt, 3), "ok": ok, "file_mb": round(size / 2**20, 1),
            "mb_per_s": round(size / 2**20 / dt, 1),
            "peak_pss_mb": round(pss / 2**20, 1), "peak_parent_rss_mb": round(rss / 2**20, 1),
        })
        # The write load without, then with a BGSAVE.
        base = bench_load(port, args.keys, args.requests)
        out["load_alone"] = base
        reqs = max(20000, int(base["rps"] * dt * 1.2)) if base else args.requests
        res = {}
        th = threading.Thread(target=lambda: res.update(r=bench_load(port, args.keys, reqs)))
        s = Sampler(p.pid)
        th.start()
        time.sleep(0.05)
        dt2, ok2 = bgsave_and_wait(port)
        th.join()
        pss2, _ = s.done()
        out["load_during_bgsave"] = res.get("r")
        out["bgsave_under_load_s"] = round(dt2, 3)
        out["peak_pss_under_load_mb"] = round(pss2 / 2**20, 1)
        # Load time at startup.
        cli(port, "save")
        p.terminate()
        p.wait()
        t0 = time.time()
        p = start(kind, args, d, port)
        wait_ping(port)
        while int(cli(port, "dbsize") or 0) < out["keys"]:
            time.sleep(0.005)
        out["startup_load_s"] = round(time.time() - t0, 3)
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        shutil.rmtree(d, ignore_errors=True)
    return out


def run_aof(kind, policy, args):
    """SET throughput with the AOF on under `policy`, at -P 16."""
    d = tempfile.mkdtemp(prefix=f"bench-aof-{kind}-")
    port = free_port()
    if kind == "tessera":
        argv = [args.tessera, "--port", str(port), "--shards", str(args.shards), "--dir", d,
                "--loglevel", "warning"]
    else:
        argv = ["redis-server", "--port", str(port), "--save", "", "--dir", d, "--loglevel", "warning"]
    argv += ["--appendonly", "yes", "--appendfsync", policy]
    p = subprocess.Popen(argv, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ping(port)
        r = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(args.aof_requests),
                            "-c", "50", "-P", "16", "-r", str(args.aof_keys), "-d", str(args.value_size),
                            "--csv"], capture_output=True, text=True)
        lines = [x for x in r.stdout.splitlines() if x.startswith('"SET"')]
        f = [x.strip('"') for x in lines[-1].split(",")] if lines else None
        aof_mb = sum(os.path.getsize(os.path.join(dp, fn))
                     for dp, _, fns in os.walk(d) for fn in fns) / 2**20
        return {"server": kind, "policy": policy,
                "rps": float(f[1]) if f else None, "p99_ms": float(f[6]) if f else None,
                "aof_mb": round(aof_mb, 1)}
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-size", type=int, default=16)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--requests", type=int, default=200_000)
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--tessera", default=os.path.join(target, "release", "tessera-server"))
    ap.add_argument("--json")
    ap.add_argument("--skip-bgsave", action="store_true")
    ap.add_argument("--skip-aof", action="store_true")
    ap.add_argument("--aof-requests", type=int, default=1_000_000)
    ap.add_argument("--aof-keys", type=int, default=100_000)
    args = ap.parse_args()
    aof = []
    if not args.skip_aof:
        for policy in ("always", "everysec"):
            for kind in ("tessera", "redis"):
                aof.append(run_aof(kind, policy, args))
        print(f"SET -P 16 -c 50, {args.aof_requests} requests, appendonly yes; tessera --shards {args.shards}")
        print(f"{'':28}{'tessera':>12}{'redis':>12}")
        for policy in ("always", "everysec"):
            t, r = [x for x in aof if x["policy"] == policy]
            print(f"{'SET/s ' + policy:28}{str(t['rps']):>12}{str(r['rps']):>12}")
            print(f"{'SET p99 ms ' + policy:28}{str(t['p99_ms']):>12}{str(r['p99_ms']):>12}")
    if args.skip_bgsave:
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"aof": aof}, fh, indent=2)
        return
    results = [run("tessera", args), run("redis", args)]
    cols = [
        ("BGSAVE s", lambda r: r["bgsave_s"]),
        ("file MB", lambda r: r["file_mb"]),
        ("MB/s", lambda r: r["mb_per_s"]),
        ("RSS before MB", lambda r: r["rss_before_mb"]),
        ("peak PSS MB", lambda r: r["peak_pss_mb"]),
        ("peak PSS under load MB", lambda r: r["peak_pss_under_load_mb"]),
        ("SET p99 ms alone", lambda r: (r["load_alone"] or {}).get("p99_ms")),
        ("SET p99 ms during BGSAVE", lambda r: (r["load_during_bgsave"] or {}).get("p99_ms")),
        ("SET max ms during BGSAVE", lambda r: (r["load_during_bgsave"] or {}).get("max_ms")),
        ("SET rps during BGSAVE", lambda r: (r["load_during_bgsave"] or {}).get("rps")),
        ("BGSAVE s under load", lambda r: r["bgsave_under_load_s"]),
        ("load at startup s", lambda r: r["startup_load_s"]),
    ]
    print(f"{args.keys} keys, {args.value_size}-byte values; tessera --shards {args.shards}")
    print(f"{'':28}{'tessera':>12}{'redis':>12}")
    for name, f in cols:
        print(f"{name:28}{str(f(results[0])):>12}{str(f(results[1])):>12}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"bgsave": results, "aof": aof}, fh, indent=2)


if __name__ == "__main__":
    main()
