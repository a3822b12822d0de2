#!/usr/bin/env python3
"""EVALSHA cost, Tessera beside redis-server: server CPU per call.

Workloads (each run with redis-benchmark, --clients connections,
pipelines of --pipeline):
  one-key   EVALSHA of a 3-command script on one declared key
            (INCR, GET, EXPIRE): the issue's figure;
  two-shard EVALSHA of a script that writes two keys owned by different
            shards of a 4-shard Tessera (a and b below), one undeclared.
Tessera runs with --shards 1 (one-key) and with --shards N (both
workloads, where every script holds every shard: the "global"
transaction of docs/scripting.md); redis-server runs both workloads.
Servers are pinned to --server-cpus (redis-server to its first CPU),
redis-benchmark to --client-cpu; runs alternate (T R T R...) --reps times
and medians are printed: calls/s and server CPU us per call
(utime+stime from /proc, all threads).

    scripts/bench_scripting.py --requests 200000 --reps 3 --server-cpus 1 --client-cpu 0

Standard library only; needs redis-server, redis-cli, redis-benchmark, taskset.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import Server, free_port, key_slot, proc_cpu_seconds  # noqa: E402

ONE_KEY = "redis.call('incr', KEYS[1]) redis.call('get', KEYS[1]) return redis.call('expire', KEYS[1], 1000)"
TWO_SHARD = "redis.call('incr', KEYS[1]) return redis.call('incr', ARGV[1])"


def keys_on_two_shards(nshards):
    """Two keys whose slots fall in different shards' ranges."""
    first = "bench:a"
    owner = key_slot(first) * nshards // 16384
    i = 0
    while True:
        k = f"bench:b{i}"
        if key_slot(k) * nshards // 16384 != owner:
            return first, k
        i += 1


def run(port, pid, sha, args, extra, client_cpu, requests, clients, pipeline):
    cmd = ["taskset", "-c", str(client_cpu), "redis-benchmark", "-p", str(port), "-n", str(requests),
           "-c", str(clients), "-P", str(pipeline), "-q", "--csv", "evalsha", sha] + args + extra
    before = proc_cpu_seconds(pid)
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.time() - t0
    cpu = proc_cpu_seconds(pid) - before
    if "ERR" in out or "NOSCRIPT" in out:
        raise SystemExit(f"benchmark failed: {out}")
    return requests / wall, cpu * 1e6 / requests


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.environ.get("TESSERA_BIN", "target/release/tessera-server"))
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--server-cpus", default="1")
    ap.add_argument("--client-cpu", default="0")
    a = ap.parse_args()
    first_cpu = a.server_cpus.split(",")[0].split("-")[0]
    ka, kb = keys_on_two_shards(a.shards)
    setups = [
        ("tessera 1 shard", "t1", ["one-key"]),
        (f"tessera {a.shards} shards", "tn", ["one-key", "two-shard"]),
        ("redis-server", "r", ["one-key", "two-shard"]),
    ]
    results = {}
    for _ in range(a.reps):
        for name, kind, loads in setups:
            port = free_port()
            if kind == "r":
                srv = Server(name, ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                             port, first_cpu)
            else:
                n = 1 if kind == "t1" else a.shards
                srv = Server(name, [a.binary, "--port", str(port), "--shards", str(n)], port, a.server_cpus)
            try:
                for load in loads:
                    body = ONE_KEY if load == "one-key" else TWO_SHARD
                    sha = subprocess.run(["redis-cli", "-p", str(port), "script", "load", body],
                                         capture_output=True, text=True, check=True).stdout.strip()
                    args = ["1", ka] if load == "one-key" else ["1", ka, kb]
                    r = run(port, srv.proc.pid, sha, args, [], a.client_cpu, a.requests, a.clients, a.pipeline)
                    results.setdefault((name, load), []).append(r)
            finally:
                srv.stop()
    print(f"EVALSHA, -P {a.pipeline}, {a.clients} clients, {a.requests} calls, median of {a.reps}")
    print(f"{'server':<22} {'workload':<10} {'calls/s':>10} {'CPU us/call':>12}")
    for (name, load), rs in results.items():
        print(f"{name:<22} {load:<10} {statistics.median(r[0] for r in rs):>10.0f} "
              f"{statistics.median(r[1] for r in rs):>12.2f}")


if __name__ == "__main__":
    main()
