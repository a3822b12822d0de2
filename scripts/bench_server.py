#!/usr/bin/env python3
"""Tessera vs redis-server, side by side on the same pinned CPU.

Measures, for each server, the server's own CPU time per request (utime +
stime from /proc/PID/stat around each redis-benchmark run) and the RSS added
per key when loading keys with `redis-cli --pipe`. Runs are interleaved
(T R T R ...) and medians reported, with ratios Tessera / Redis.

    scripts/bench_server.py [--server-cpu 1] [--client-cpu 0] [--requests 200000]   # SET/GET -P 16 and -P 1, the MIXED data-type load, RSS per key
                            [--reps 3] [--keys 1000000] [--valkey PATH]
    scripts/bench_server.py --zset-members 1000000   # one big sorted set only

`--zset-members N` measures instead RSS per member of one sorted set loaded
with `ZADD z N member:N` through `redis-cli --pipe`, the server CPU time per
ZADD of that load, and CPU per ZRANK of random members (redis-benchmark).

    scripts/bench_server.py --set-members 1000000    # only: RSS per member of one big set
    scripts/bench_server.py --hash-fields 1000000    # only: RSS per field of one big hash

With --set-members N it only measures the RSS added per member when one set
is loaded with N members (SADD of 1000 members at a time through
`redis-cli --pipe`), once with integers (0..N-1: past the intset limit, so a
hash table in both servers) and once with strings `member:N`, each on fresh
servers warmed up by the same load of a 10k-member set, deleted before
measuring (the first bulk load's connection buffers are not the set's).

Standard library only; needs redis-server, redis-cli, redis-benchmark, taskset.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchutil import Server, free_port
from benchutil import proc_cpu_seconds as cpu_seconds
from benchutil import proc_cpu_split as cpu_split
from benchutil import proc_rss_bytes as rss_bytes


def start_servers(args, tmp):
    servers = []
    p = free_port()
    servers.append(Server("tessera", [args.tessera, "--port", str(p), "--shards", "1", "--loglevel", "warning"], p, args.server_cpu))
    p = free_port()
    servers.append(Server("redis", ["redis-server", "--port", str(p), "--save", "", "--appendonly", "no", "--dir", tmp], p, args.server_cpu))
    if args.valkey:
        p = free_port()
        servers.append(Server("valkey", [args.valkey, "--port", str(p), "--save", "", "--appendonly", "no", "--dir", tmp], p, args.server_cpu))
    return servers


# The server core's workloads, then the data types' mixed load (issue 5:
# redis-benchmark -t incr,lpush,sadd,hset,zadd -P 16).
MIXED = "incr,lpush,sadd,hset,zadd"
WORKLOADS = [("set", 16), ("get", 16), ("set", 1), ("get", 1), (MIXED, 16)]
LABELS = {MIXED: "MIXED"}


def bench_once(srv, test, pipeline, args):
    """One redis-benchmark run of `test` (one test, or a comma list run one
    after another: -n requests each). Returns (server CPU us per request,
    requests per second over the whole run, (user, system) us per request)."""
    total = args.requests * len(test.split(","))
    before = cpu_split(srv.proc.pid)
    cmd = ["taskset", "-c", str(args.client_cpu), "redis-benchmark", "-p", str(srv.port), "-t", test,
           "-n", str(args.requests), "-c", "50", "-P", str(pipeline), "-d", "64", "-r", "100000", "--csv"]
    t0 = time.time()
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.time() - t0
    after = cpu_split(srv.proc.pid)
    user, system = ((a - b) / total * 1e6 for a, b in zip(after, before))
    return user + system, total / wall, (user, system)


def cli(s, *argv):
    return subprocess.run(["redis-cli", "-p", str(s.port), *argv], capture_output=True, text=True).stdout.strip()


def load_rss_per_item(s, payload, count_argv):
    """Loads `payload` with redis-cli --pipe; RSS added per item, the items
    counted by the command `count_argv` (DBSIZE, SCARD...)."""
    time.sleep(0.5)
    before = rss_bytes(s.proc.pid)
    subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], input=payload, capture_output=True, check=True)
    n = int(cli(s, *count_argv))
    time.sleep(0.5)
    return (rss_bytes(s.proc.pid) - before) / max(n, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default="target/release/tessera-server")
    ap.add_argument("--valkey", default=shutil.which("valkey-server"))
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--zset-members", type=int, default=0, help="only measure one sorted set of N members")
    ap.add_argument("--set-members", type=int, default=0, help="only measure RSS per member of one set of N members")
    ap.add_argument("--hash-fields", type=int, default=0, help="only measure RSS per field of one hash of N fields")
    args = ap.parse_args()
    if not os.path.exists(args.tessera):
        raise SystemExit(f"{args.tessera} not found: cargo build --release first")
    if args.zset_members:
        return zset_memory(args)
    if args.set_members:
        return set_memory(args)
    if args.hash_fields:
        return hash_memory(args)

    tmp = tempfile.mkdtemp()
    servers = start_servers(args, tmp)
    rows = []
    try:
        for test, pipeline in WORKLOADS:
            per = {s.name: ([], [], [], []) for s in servers}
            for _ in range(args.reps):
                for s in servers:  # interleaved: T R [V] T R [V] ...
                    us, rps, (user, system) = bench_once(s, test, pipeline, args)
                    for v, x in zip(per[s.name], (us, rps, user, system)):
                        v.append(x)
            rows.append((f"{LABELS.get(test, test.upper())} -P {pipeline}", {n: tuple(statistics.median(x) for x in v) for n, v in per.items()}))
    finally:
        for s in servers:
            s.stop()

    # Memory: fresh servers, RSS before and after loading the keys.
    servers = start_servers(args, tmp)
    mem = {}
    try:
        payload = "".join(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$8\r\nvalue:{i % 100:02d}\r\n" for i, k in ((i, f"key:{i}") for i in range(args.keys))).encode()
        for s in servers:
            mem[s.name] = load_rss_per_item(s, payload, ["dbsize"])
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    names = [s.name for s in servers]
    print(f"# server CPU {args.server_cpu}, redis-benchmark CPU {args.client_cpu}, -c 50 -d 64 -r 100000 -n {args.requests}, median of {args.reps}")
    print(f"{'workload':<14}" + "".join(f"{n + ' us/req':>16}{n + ' rps':>14}" for n in names) + f"{'tessera/redis cpu':>20}")
    for label, r in rows:
        line = f"{label:<14}" + "".join(f"{r[n][0]:>16.3f}{r[n][1]:>14.0f}" for n in names)
        line += f"{r['tessera'][0] / r['redis'][0]:>20.2f}"
        print(line)
    print(f"{'RSS/key':<14}" + "".join(f"{mem[n]:>16.1f}{'':>14}" for n in names) + f"{mem['tessera'] / mem['redis']:>20.2f}")
    # Where the CPU goes: at -P 1 it is mostly the kernel's TCP work (README).
    print(f"# user / system us per request (medians of {args.reps})")
    for label, r in rows:
        print(f"{label:<14}" + "".join(f"{n + ' ' + format(r[n][2], '.2f') + ' / ' + format(r[n][3], '.2f'):>30}" for n in names))
    print(f"# MIXED: redis-benchmark -t {MIXED}, -n {args.requests} each; rps over the whole run")
    print(f"# RSS/key: bytes of RSS added per key after loading {args.keys} keys 'SET key:N <8-byte value>' with redis-cli --pipe")


def zset_memory(args):
    """RSS per member of one sorted set, and CPU per ZADD / ZRANK."""
    tmp = tempfile.mkdtemp()
    servers = start_servers(args, tmp)
    n = args.zset_members
    res = {}
    try:
        payload = "".join(f"*4\r\n$4\r\nZADD\r\n$1\r\nz\r\n${len(str(i))}\r\n{i}\r\n${len(m)}\r\n{m}\r\n"
                          for i, m in ((i, f"member:{i}") for i in range(n))).encode()
        for s in servers:
            time.sleep(0.5)
            before, cpu0 = rss_bytes(s.proc.pid), cpu_seconds(s.proc.pid)
            subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], input=payload, capture_output=True, check=True)
            cpu1 = cpu_seconds(s.proc.pid)
            card = int(subprocess.run(["redis-cli", "-p", str(s.port), "zcard", "z"], capture_output=True, text=True).stdout)
            time.sleep(0.5)
            rss = (rss_bytes(s.proc.pid) - before) / max(card, 1)
            c0 = cpu_seconds(s.proc.pid)
            subprocess.run(["taskset", "-c", str(args.client_cpu), "redis-benchmark", "-p", str(s.port), "-n", str(args.requests),
                            "-c", "50", "-P", "16", "-r", str(n), "ZRANK", "z", "member:__rand_int__"], capture_output=True, check=True)
            zrank = (cpu_seconds(s.proc.pid) - c0) / args.requests * 1e6
            res[s.name] = (rss, (cpu1 - cpu0) / max(card, 1) * 1e6, zrank, card)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# one sorted set, {n} members 'ZADD z N member:N' via redis-cli --pipe; ZRANK -P 16 -c 50 random members")
    print(f"{'server':<10}{'members':>10}{'RSS/member':>12}{'ZADD us':>10}{'ZRANK us':>10}")
    for name, (rss, zadd, zrank, card) in res.items():
        print(f"{name:<10}{card:>10}{rss:>12.1f}{zadd:>10.3f}{zrank:>10.3f}")
    t, r = res["tessera"], res["redis"]
    print(f"{'ratio':<10}{'':>10}{t[0] / r[0]:>12.2f}{t[1] / r[1]:>10.2f}{t[2] / r[2]:>10.2f}")


def bulk_payload(cmd, key, items, batch=1000):
    """`cmd key item... ` commands of `batch` items each, as RESP; an item is
    a tuple of arguments (a member, or a field and its value)."""
    out = []
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        argv = [a for item in chunk for a in item]
        out.append(f"*{len(argv) + 2}\r\n${len(cmd)}\r\n{cmd}\r\n${len(key)}\r\n{key}\r\n")
        out.extend(f"${len(a)}\r\n{a}\r\n" for a in argv)
    return "".join(out).encode()


def set_memory(args):
    n = args.set_members
    kinds = [("integers", [(str(i),) for i in range(n)]), ("member:N", [(f"member:{i}",) for i in range(n)])]
    collection_memory(args, "set", "SADD", "scard", kinds)


def hash_memory(args):
    n = args.hash_fields
    kinds = [("field:N", [(f"field:{i}", f"value:{i % 100:02d}") for i in range(n)])]
    collection_memory(args, "hash", "HSET", "hlen", kinds)


def collection_memory(args, what, cmd, count, kinds):
    """RSS added per item of one collection `c`, loaded with `cmd` of 1000
    items at a time through redis-cli --pipe, for each kind of items."""
    tmp = tempfile.mkdtemp()
    result = {}
    try:
        for kind, items in kinds:
            payload = bulk_payload(cmd, "c", items)
            warm = bulk_payload(cmd, "w", items[:10000])
            servers = start_servers(args, tmp)
            try:
                for s in servers:
                    # Warm-up: the first bulk load's connection buffers
                    # (megabytes in Tessera, kept by the allocator) are
                    # not the collection's; allocate them before measuring.
                    subprocess.run(["redis-cli", "-p", str(s.port), "--pipe"], input=warm, capture_output=True, check=True)
                    cli(s, "del", "w")
                    per = load_rss_per_item(s, payload, [count, "c"])
                    result[(kind, s.name)] = (per, cli(s, count, "c"), cli(s, "object", "encoding", "c"))
            finally:
                for s in servers:
                    s.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = [s.name for s in servers]
    print(f"# RSS added per item, one {what} of {len(kinds[0][1])} items loaded with {cmd} x1000 through redis-cli --pipe")
    print(f"{'items':<12}" + "".join(f"{nm + ' B/item':>20}" for nm in names) + f"{'tessera/redis':>16}")
    for kind, _ in kinds:
        line = f"{kind:<12}" + "".join(f"{result[(kind, nm)][0]:>20.1f}" for nm in names)
        line += f"{result[(kind, 'tessera')][0] / result[(kind, 'redis')][0]:>16.2f}"
        print(line + "   " + ", ".join(f"{nm}: {result[(kind, nm)][1]} {result[(kind, nm)][2]}" for nm in names))


if __name__ == "__main__":
    sys.exit(main())
