#!/usr/bin/env python3
"""What transactions and cross-shard commands cost, beside redis-server.

Workloads (each against Tessera and redis-server started side by side,
interleaved repetitions, medians; CPU is the server's own utime+stime from
/proc/PID/stat divided by the operations):

  multi    MULTI; SET {t}a v; SET {t}b v; EXEC, 4 transactions (16 commands)
           in flight per connection: Tessera with 1 shard and redis-server,
           both pinned to --server-cpus. CPU per transaction.
  mset2    MSET a v b v with a and b on different shards of a 2-shard
           Tessera (--server-cpus should name 2 CPUs), 16 in flight per
           connection, against redis-server's single-threaded MSET on the
           first of those CPUs. CPU per command, summed over every shard.
  mix      90% SET of one random key, 10% MSET of two random keys (nearly
           always on different shards), 16 in flight per connection, at
           --shards shards: throughput, and CPU per command.

    scripts/bench_txn.py --workloads multi --server-cpus 1 --client-cpu 0
    scripts/bench_txn.py --workloads mset2 --server-cpus 0-1 --client-cpu 1
    scripts/bench_txn.py --workloads mix --shards 4 --server-cpus 0-3 --client-cpus 8-15 --clients 8

The load is pre-encoded pipelines sent by one Python process per client CPU
(several connections each); replies are counted by their known length, not
parsed. Standard library only; needs redis-server, redis-cli, taskset.
"""
import argparse
import multiprocessing
import os
import random
import socket
import statistics
import tempfile
import time

from benchutil import Server, free_port
from benchutil import proc_cpu_seconds as cpu_seconds


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def chunks_for(workload, seed):
    """A list of (pipelined request bytes, expected reply bytes, operations)."""
    rnd = random.Random(seed)
    out = []
    v = b"x" * 64
    for _ in range(64):
        if workload == "multi":
            req, n = b"", 4
            for _ in range(n):
                i = rnd.randrange(100000)
                req += resp("MULTI") + resp("SET", f"{{t{i}}}a", v) + resp("SET", f"{{t{i}}}b", v) + resp("EXEC")
            out.append((req, n * len(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n+OK\r\n"), n))
        elif workload == "mset2":
            req = b""
            for _ in range(16):
                i = rnd.randrange(100000)
                req += resp("MSET", f"a:{i}", v, f"b:{i}", v)
            out.append((req, 16 * 5, 16))
        else:  # mix
            req = b""
            for _ in range(16):
                if rnd.random() < 0.1:
                    req += resp("MSET", f"key:{rnd.randrange(1000000)}", v, f"key:{rnd.randrange(1000000)}", v)
                else:
                    req += resp("SET", f"key:{rnd.randrange(1000000)}", v)
            out.append((req, 16 * 5, 16))
    return out


def drive(port, workload, ops, conns, seed, q):
    """One client process: `conns` connections, round-robin, until `ops`
    operations were acknowledged."""
    chunks = chunks_for(workload, seed)
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    done, k = 0, 0
    while done < ops:
        sent = []
        for s in socks:
            req, want, n = chunks[k % len(chunks)]
            k += 1
            s.sendall(req)
            sent.append((s, want, n))
        for s, want, n in sent:
            got = 0
            while got < want:
                b = s.recv(max(65536, want - got))
                if not b:
                    raise SystemExit("server closed the connection")
                if b[:1] == b"-" or b"\r\n-" in b:
                    raise SystemExit(f"error reply: {b[:200]!r}")
                got += len(b)
            done += n
    for s in socks:
        s.close()
    q.put(done)


def run_load(srv, args, workload):
    """Returns (operations per second, server CPU us per operation)."""
    cpus = expand(args.client_cpus) if args.client_cpus else [args.client_cpu]
    q = multiprocessing.Queue()
    per = args.requests // len(cpus)
    before = cpu_seconds(srv.proc.pid)
    t0 = time.time()
    procs = []
    for i, cpu in enumerate(cpus):
        p = multiprocessing.Process(target=drive, args=(srv.port, workload, per, args.clients, i, q))
        p.start()
        os.sched_setaffinity(p.pid, {cpu})
        procs.append(p)
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    wall = time.time() - t0
    cpu = cpu_seconds(srv.proc.pid) - before
    return total / wall, cpu / total * 1e6


def expand(spec):
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default="target/release/tessera-server")
    ap.add_argument("--workloads", default="multi,mset2")
    ap.add_argument("--server-cpus", default="1")
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--client-cpus", default="", help="several client processes, one per CPU")
    ap.add_argument("--clients", type=int, default=8, help="connections per client process")
    ap.add_argument("--shards", type=int, default=0, help="Tessera's shards (default: 1 for multi, 2 for mset2, 4 for mix)")
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    first_cpu = str(expand(args.server_cpus)[0])
    print(f"# server CPUs {args.server_cpus} (redis-server on {first_cpu}), client CPU(s) {args.client_cpus or args.client_cpu}, "
          f"{args.clients} connections per client process, {args.requests} operations, median of {args.reps}")
    print(f"{'workload':<10}{'shards':>7}{'tessera ops/s':>15}{'redis ops/s':>13}{'tessera us/op':>15}{'redis us/op':>13}{'cpu ratio':>11}")
    for w in args.workloads.split(","):
        shards = args.shards or {"multi": 1, "mset2": 2, "mix": 4}[w]
        pt, pr = free_port(), free_port()
        servers = [
            Server("tessera", [args.tessera, "--port", str(pt), "--shards", str(shards), "--loglevel", "warning"], pt, args.server_cpus),
            Server("redis", ["redis-server", "--port", str(pr), "--save", "", "--appendonly", "no", "--dir", tmp], pr, first_cpu),
        ]
        res = {s.name: ([], []) for s in servers}
        try:
            for _ in range(args.reps):
                for s in servers:
                    rps, us = run_load(s, args, w)
                    res[s.name][0].append(rps)
                    res[s.name][1].append(us)
        finally:
            for s in servers:
                s.stop()
        m = {n: (statistics.median(a), statistics.median(b)) for n, (a, b) in res.items()}
        print(f"{w:<10}{shards:>7}{m['tessera'][0]:>15.0f}{m['redis'][0]:>13.0f}{m['tessera'][1]:>15.3f}{m['redis'][1]:>13.3f}"
              f"{m['tessera'][1] / m['redis'][1]:>11.2f}")


if __name__ == "__main__":
    main()
