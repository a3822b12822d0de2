#!/usr/bin/env python3
"""Eviction quality, Tessera side by side with redis-server: a cache
workload (GET; on a miss, SET) over 1M keys with 200-byte values, keys
drawn from a zipf(0.99) distribution, at `maxmemory 28mb`, for each
`maxmemory-policy`. Reports the hit ratio (measured after a warm-up) and
the RSS at the end against `1.15 x maxmemory + the empty server's RSS`.

Both servers get the same request sequence (same seed), sent in pipelined
batches over one connection: a batch of GETs, then the SETs of its misses.
Under the volatile-* policies every SET carries a TTL (1 to 2 hours,
random) so that every key may be evicted.

    python3 scripts/bench_eviction.py                 # all 8 policies
    python3 scripts/bench_eviction.py --quick         # fewer requests
    python3 scripts/bench_eviction.py --policies allkeys-lru,allkeys-lfu
"""
import argparse
import bisect
import itertools
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import free_port, proc_rss_bytes, wait_ready  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICIES = [
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "noeviction",
]


def zipf_sampler(n, s, rng):
    """Ranks 0..n-1 with P(k) ~ 1/(k+1)^s, by inverse CDF."""
    acc = 0.0
    cdf = []
    for k in range(1, n + 1):
        acc += 1.0 / k**s
        cdf.append(acc)
    total = acc
    return lambda: min(bisect.bisect_left(cdf, rng.random() * total), n - 1)


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    """A minimal pipelining RESP client (GET/SET replies only)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line
            self.buf += self.s.recv(1 << 20)

    def _take(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(1 << 20)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def replies(self, n):
        """Reads n replies: a bulk string's bytes, None for nil, or the
        line of a status/error/integer reply."""
        out = []
        for _ in range(n):
            line = self._line()
            if line[:1] == b"$":
                ln = int(line[1:])
                out.append(None if ln < 0 else self._take(ln + 2)[:-2])
            else:
                out.append(line)
        return out

    def call(self, *args):
        self.s.sendall(resp(*args))
        return self.replies(1)[0]


def run_workload(port, policy, requests, warmup, batch, seed, keys, value):
    c = Client(port)
    rng = random.Random(seed)
    draw = zipf_sampler(keys, 0.99, rng)
    perm = list(range(keys))
    random.Random(seed + 1).shuffle(perm)
    volatile = policy.startswith("volatile")
    ttl_rng = random.Random(seed + 2)
    hits = misses = oom = 0
    done = 0
    while done < requests:
        n = min(batch, requests - done)
        names = [b"key:%d" % perm[draw()] for _ in range(n)]
        c.s.sendall(b"".join(resp(b"GET", k) for k in names))
        got = c.replies(n)
        missed = [k for k, v in zip(names, got) if v is None]
        if done >= warmup:
            misses += len(missed)
            hits += n - len(missed)
        if missed:
            if volatile:
                cmds = [resp(b"SET", k, value, b"EX", b"%d" % ttl_rng.randint(3600, 7200)) for k in missed]
            else:
                cmds = [resp(b"SET", k, value) for k in missed]
            c.s.sendall(b"".join(cmds))
            for r in c.replies(len(missed)):
                if r.startswith(b"-OOM"):
                    oom += 1
        done += n
    return hits / max(1, hits + misses), oom


def info(port, field):
    c = Client(port)
    txt = c.call(b"INFO", b"all").decode()
    for line in txt.split("\r\n"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return ""


def start(kind, port, dir, args):
    if kind == "redis":
        argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", dir]
    else:
        argv = [args.tessera, "--port", str(port), "--shards", str(args.shards), "--save", "", "--dir", dir]
    if args.cpus:
        argv = ["taskset", "-c", args.cpus] + argv
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port)
    return p


def bench_one(kind, policy, args):
    d = tempfile.mkdtemp(prefix="bench-evict-")
    port = free_port()
    p = start(kind, port, d, args)
    try:
        time.sleep(0.3)
        empty_rss = proc_rss_bytes(p.pid)
        c = Client(port)
        assert c.call(b"CONFIG", b"SET", b"maxmemory-policy", policy.encode()) == b"+OK"
        assert c.call(b"CONFIG", b"SET", b"maxmemory", args.maxmemory.encode()) == b"+OK"
        t = time.time()
        ratio, oom = run_workload(
            port, policy, args.requests, args.requests // 4, args.batch, args.seed, args.keys, b"x" * args.value
        )
        secs = time.time() - t
        time.sleep(1.2)  # one periodic cycle: memory given back
        rss = proc_rss_bytes(p.pid)
        return {
            "hit": ratio,
            "oom": oom,
            "rss": rss,
            "empty_rss": empty_rss,
            "keys": int(info(port, "db0").split(",")[0].split("=")[1] or 0) if info(port, "db0") else 0,
            "evicted": int(info(port, "evicted_keys") or 0),
            "secs": secs,
        }
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


def parse_mem(s):
    s = s.lower()
    for suf, mul in (("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10)):
        if s.endswith(suf):
            return int(float(s[: -len(suf)]) * mul)
    return int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--tessera", default=os.path.join(target, "release", "tessera-server"))
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--cpus", default="", help="taskset CPU list for the servers (e.g. 1)")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--requests", type=int, default=1_500_000)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value", type=int, default=200)
    ap.add_argument("--maxmemory", default="28mb")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="400K requests per run")
    args = ap.parse_args()
    if args.quick:
        args.requests = 400_000
    maxmem = parse_mem(args.maxmemory)
    print(
        f"zipf(0.99) over {args.keys} keys, {args.value}-byte values, maxmemory {args.maxmemory}, "
        f"{args.requests} requests per run (hit ratio after the first quarter), tessera --shards {args.shards}"
    )
    print(f"{'policy':<16} {'redis hit':>9} {'tessera hit':>11} {'diff':>7}  {'redis RSS':>9} {'tessera RSS':>11} {'RSS limit':>9}  verdict")
    failed = False
    for policy in args.policies.split(","):
        r = bench_one("redis", policy, args)
        t = bench_one("tessera", policy, args)
        rss_limit = 1.15 * maxmem + t["empty_rss"]
        goal = r["hit"] - (0.01 if policy in ("allkeys-lru", "allkeys-lfu") else 0.0)
        ok = t["hit"] >= goal - 1e-9 and t["rss"] <= rss_limit
        failed |= not ok
        print(
            f"{policy:<16} {r['hit']:>9.4f} {t['hit']:>11.4f} {t['hit'] - r['hit']:>+7.4f}  "
            f"{r['rss'] / 2**20:>8.1f}M {t['rss'] / 2**20:>10.1f}M {rss_limit / 2**20:>8.1f}M  "
            f"{'ok' if ok else 'MISSED'}  (keys {r['keys']}/{t['keys']}, evicted {r['evicted']}/{t['evicted']}, "
            f"OOM replies {r['oom']}/{t['oom']}, {r['secs']:.0f}s/{t['secs']:.0f}s)",
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
