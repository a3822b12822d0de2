#!/usr/bin/env python3
"""How Tessera's throughput scales with shards, beside redis-server.

Starts Tessera with 1, 2, 4, ... shards pinned to CPUs 0..N-1 (no IRQ cores
reserved: `--irq-cores none`), and redis-server pinned to CPU 0, and drives
each with the same multi-threaded redis-benchmark pinned to separate CPUs.
Keys are random, so with N shards about (N-1)/N of the requests are
forwarded between shards, as in real use.

    scripts/bench_scaling.py --shards 1,2,4,8 --client-cpus 8-15 --threads 8

Standard library only; needs redis-server, redis-benchmark, redis-cli, taskset.
"""
import argparse
import subprocess
import sys
import tempfile
import time

from benchutil import free_port
from benchutil import proc_cpu_seconds as cpu_seconds


def wait_ready(cli, port):
    for _ in range(400):
        r = subprocess.run([cli, "-p", str(port), "ping"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def bench(args, port, test):
    cmd = ["taskset", "-c", args.client_cpus, args.redis_benchmark, "-p", str(port), "-t", test,
           "-n", str(args.requests), "-c", str(args.clients), "-P", str(args.pipeline), "-d", str(args.data),
           "-r", "1000000", "--threads", str(args.threads), "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith('"') and not l.startswith('"test"')][-1]
    return float(line.split('","')[1])


def run_server(argv, cpus, cli, port, args, tests):
    p = subprocess.Popen(["taskset", "-c", cpus] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(cli, port)
        res = {}
        for t in tests:
            c0 = cpu_seconds(p.pid)
            rps = bench(args, port, t)
            res[t] = (rps, (cpu_seconds(p.pid) - c0) / args.requests * 1e6)
        return res
    finally:
        p.terminate()
        p.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default="target/release/tessera-server")
    ap.add_argument("--redis-server", default="redis-server")
    ap.add_argument("--redis-benchmark", default="redis-benchmark")
    ap.add_argument("--redis-cli", default="redis-cli")
    ap.add_argument("--shards", default="1,2,4,8")
    ap.add_argument("--client-cpus", default="8-15")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--data", type=int, default=64)
    ap.add_argument("--requests", type=int, default=4000000)
    ap.add_argument("--tests", default="set,get")
    args = ap.parse_args()
    tests = args.tests.split(",")
    tmp = tempfile.mkdtemp()
    rows = []
    port = free_port()
    r = run_server([args.redis_server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp], "0", args.redis_cli, port, args, tests)
    rows.append(("redis-server (1 thread)", r))
    for n in [int(x) for x in args.shards.split(",")]:
        port = free_port()
        argv = [args.tessera, "--port", str(port), "--shards", str(n), "--irq-cores", "none", "--loglevel", "warning"]
        r = run_server(argv, f"0-{n - 1}", args.redis_cli, port, args, tests)
        rows.append((f"tessera {n} shard(s)", r))
    print(f"# -c {args.clients} -P {args.pipeline} -d {args.data} -r 1000000 -n {args.requests}, redis-benchmark --threads {args.threads} on CPUs {args.client_cpus}")
    print(f"{'server':<26}" + "".join(f"{t.upper() + ' rps':>14}{t.upper() + ' us/req':>14}" for t in tests) + f"{'vs redis (' + tests[0].upper() + ')':>18}")
    base = rows[0][1][tests[0]][0]
    for name, r in rows:
        print(f"{name:<26}" + "".join(f"{r[t][0]:>14.0f}{r[t][1]:>14.3f}" for t in tests) + f"{r[tests[0]][0] / base:>18.2f}")


if __name__ == "__main__":
    sys.exit(main())
