#!/usr/bin/env python3
"""Two tessera-server binaries A/B, alternated on one pinned CPU: server CPU
per request (utime+stime from /proc) for redis-benchmark tests at -P 16.
For before/after figures of a change to the hot path.

    scripts/bench_ab.py --new target/release/tessera-server --old /path/to/old/tessera-server \
        --tests set,get,lpush,sadd,incr,hset --reps 4

Standard library only; needs redis-benchmark and taskset.
"""
import argparse
import statistics
import subprocess

from benchutil import Server, free_port, proc_cpu_seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", default="target/release/tessera-server")
    ap.add_argument("--old", required=True)
    ap.add_argument("--tests", default="set,get,lpush,sadd,incr,hset")
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--requests", type=int, default=400000)
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--client-cpu", default="0")
    args = ap.parse_args()
    tests = args.tests.split(",")
    bins = {"new": args.new, "old": args.old}
    res = {(n, t): [] for n in bins for t in tests}
    for _ in range(args.reps):
        for name, b in bins.items():
            p = free_port()
            s = Server(name, [b, "--port", str(p), "--shards", "1", "--loglevel", "warning"], p, args.server_cpu)
            try:
                for t in tests:
                    c0 = proc_cpu_seconds(s.proc.pid)
                    subprocess.run(["taskset", "-c", args.client_cpu, "redis-benchmark", "-p", str(p), "-t", t,
                                    "-P", "16", "-n", str(args.requests), "-c", "50", "-r", "100000", "-q"],
                                   capture_output=True, check=True)
                    res[(name, t)].append((proc_cpu_seconds(s.proc.pid) - c0) / args.requests * 1e6)
            finally:
                s.stop()
    print(f"# server CPU us/request, median of {args.reps}, -P 16 -n {args.requests} -c 50, CPU {args.server_cpu}")
    for t in tests:
        new, old = statistics.median(res[("new", t)]), statistics.median(res[("old", t)])
        print(f"{t:<8} new {new:.3f}  old {old:.3f}  new/old {new / old:.2f}")


if __name__ == "__main__":
    main()
