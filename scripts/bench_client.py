#!/usr/bin/env python3
"""Client CPU time per request: tessera-bench against redis-benchmark.

Starts one redis-server pinned to --server-cpu (persistence off), then runs
both load generators pinned to --client-cpu with the same workload,
interleaved (T R T R ...), and reads each run's CPU time (user + system)
from getrusage(RUSAGE_CHILDREN). Prints the medians and the ratio.

  scripts/bench_client.py --requests 1000000 --reps 3
"""
import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchutil import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_cpu(cmd):
    """Runs cmd; returns (seconds of CPU it used, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pipelines", default="16,1")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--test", default="set")
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--client-cpu", default="0")
    ap.add_argument("--io", default="epoll,uring", help="tessera-bench back ends to measure")
    ap.add_argument("--bench", default=os.path.join(ROOT, "target/release/tessera-bench"))
    args = ap.parse_args()
    for tool in ("redis-server", "redis-benchmark", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"{args.bench} not found: cargo build --release -p tessera-bench")

    port = free_port()
    tmp = tempfile.mkdtemp()
    server = subprocess.Popen(
        ["taskset", "-c", args.server_cpu, "redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", tmp, "--loglevel", "warning"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        common = ["-p", str(port), "-c", str(args.clients), "-n", str(args.requests), "-t", args.test,
                  "-r", "100000", "-d", "64", "-q"]
        rows = []
        for p in [int(x) for x in args.pipelines.split(",")]:
            tools = {f"tessera-bench --io {io}": ["taskset", "-c", args.client_cpu, args.bench, *common, "-P", str(p),
                                                  "--io", io] for io in args.io.split(",")}
            tools["redis-benchmark"] = ["taskset", "-c", args.client_cpu, "redis-benchmark", *common, "-P", str(p)]
            cpu = {name: [] for name in tools}
            for _ in range(args.reps):
                for name, cmd in tools.items():
                    seconds, out = child_cpu(cmd)
                    cpu[name].append(seconds / args.requests * 1e6)
                    print(f"  -P {p} {name}: {seconds / args.requests * 1e6:.3f} us/req  {out.strip().splitlines()[-1]}",
                          file=sys.stderr)
            r = statistics.median(cpu["redis-benchmark"])
            for name, runs in cpu.items():
                if name != "redis-benchmark":
                    t = statistics.median(runs)
                    # The ratio of medians, and each repetition's own ratio
                    # (same moment, same noise) to show the spread.
                    per_rep = [a / b for a, b in zip(runs, cpu["redis-benchmark"])]
                    rows.append((p, name, t, r, per_rep))
        print(f"client CPU per request, {args.test} -c {args.clients} -n {args.requests} -r 100000 -d 64, "
              f"medians of {args.reps} (client on CPU {args.client_cpu}, redis-server on CPU {args.server_cpu})")
        print("| pipeline | generator | its CPU/req | redis-benchmark CPU/req | ratio | ratio per repetition |")
        print("| --- | --- | --- | --- | --- | --- |")
        for p, name, t, r, per_rep in rows:
            reps = " ".join(f"{x:.2f}" for x in per_rep)
            print(f"| -P {p} | {name} | {t:.3f} us | {r:.3f} us | {t / r:.2f} | {reps} |")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
