#!/usr/bin/env python3
"""PUBLISH fan-out, Tessera beside redis-server.

One channel, --subscribers subscribers (on Tessera spread evenly over its
shards: each connection asks DEBUG SHARD where it landed and is kept only
while its shard has room), one publisher sending --messages PUBLISHes in
pipelines of --pipeline. Tessera (--shards shards) and redis-server are
pinned to --server-cpus (redis-server to the first CPU of the list, as it
runs commands on one thread) and run interleaved (T R T R...) for --reps
repetitions; medians are reported.

Reported per server: deliveries per second (messages x subscribers, from
the first PUBLISH to the last byte every subscriber expects), and the
server's CPU (utime+stime from /proc/PID/stat, all threads) per delivered
message. The clients (subscribers in one process, the publisher in
another) are pinned to --client-cpu; they count bytes of known length and
parse nothing, but on a small machine they still bound the throughput, so
CPU per delivery is the figure to compare.

    scripts/bench_pubsub.py --server-cpus 0-1 --client-cpu 1 --shards 4

Standard library only; needs redis-server, redis-cli, taskset.
"""
import argparse
import multiprocessing
import os
import selectors
import socket
import statistics
import time

from benchutil import Server, free_port
from benchutil import proc_cpu_seconds as cpu_seconds

CHANNEL = b"bench"


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def message_len(payload):
    return len(b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(CHANNEL), CHANNEL, len(payload), payload))


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise ConnectionError("closed")
        buf += d
    return buf


def read_line(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        d = s.recv(1)
        if not d:
            raise ConnectionError("closed")
        buf += d
    return buf


def connect_spread(port, n, shards):
    """n connections; with shards > 1, as many on each shard (DEBUG SHARD)."""
    if shards <= 1:
        return [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    quota = [n // shards + (1 if i < n % shards else 0) for i in range(shards)]
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n:
            raise SystemExit("could not spread connections over the shards")
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(resp("DEBUG", "SHARD"))
        shard = int(read_line(s)[1:])
        if quota[shard] > 0:
            quota[shard] -= 1
            out.append(s)
        else:
            s.close()
    return out


def subscribers(port, n, shards, messages, payload, ready, done):
    socks = connect_spread(port, n, shards)
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)
    for s in socks:
        s.sendall(resp("SUBSCRIBE", CHANNEL))
    for s in socks:
        assert read_exact(s, len(confirm)) == confirm
        s.setblocking(False)
    ready.put(True)
    want = messages * message_len(payload)
    left = {s.fileno(): want for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while left:
        for key, _ in sel.select(10):
            s = key.fileobj
            try:
                d = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not d:
                raise SystemExit("a subscriber was disconnected")
            left[s.fileno()] -= len(d)
            if left[s.fileno()] <= 0:
                del left[s.fileno()]
                sel.unregister(s)
    done.put(time.time())
    for s in socks:
        s.close()


def publisher(port, subs, messages, payload, pipeline):
    s = socket.create_connection(("127.0.0.1", port))
    one = resp("PUBLISH", CHANNEL, payload)
    reply = b":%d\r\n" % subs
    sent = 0
    while sent < messages:
        k = min(pipeline, messages - sent)
        s.sendall(one * k)
        got = read_exact(s, len(reply) * k)
        if got != reply * k:
            raise SystemExit("unexpected PUBLISH replies: %r" % got[:64])
        sent += k
    s.close()


def run_once(server, args, shards, payload):
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Queue(), ctx.Queue()
    sub = ctx.Process(target=subscribers, args=(
        server.port, args.subscribers, shards, args.messages, payload, ready, done))
    sub.start()
    os.sched_setaffinity(sub.pid, cpu_list(args.client_cpu))
    ready.get(timeout=60)
    pub = ctx.Process(target=publisher, args=(
        server.port, args.subscribers, args.messages, payload, args.pipeline))
    c0, t0 = cpu_seconds(server.proc.pid), time.time()
    pub.start()
    os.sched_setaffinity(pub.pid, cpu_list(args.client_cpu))
    t1 = done.get(timeout=600)
    c1 = cpu_seconds(server.proc.pid)
    pub.join()
    sub.join()
    deliveries = args.messages * args.subscribers
    return deliveries / (t1 - t0), (c1 - c0) / deliveries * 1e6


def cpu_list(spec):
    out = set()
    for part in str(spec).split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", default="target/release/tessera-server")
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--server-cpus", default="0-1")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--payload", type=int, default=64)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    payload = b"p" * args.payload
    first_cpu = args.server_cpus.split(",")[0].split("-")[0]
    results = {"tessera": [], "redis": []}
    for rep in range(args.reps):
        for name in ("tessera", "redis"):
            port = free_port()
            if name == "tessera":
                argv = [args.tessera, "--port", str(port), "--shards", str(args.shards)]
                srv = Server(name, argv, port, args.server_cpus)
                shards = args.shards
            else:
                argv = [args.redis, "--port", str(port), "--save", "", "--appendonly", "no"]
                srv = Server(name, argv, port, first_cpu)
                shards = 1
            try:
                rate, cpu = run_once(srv, args, shards, payload)
            finally:
                srv.stop()
            results[name].append((rate, cpu))
            print(f"rep {rep + 1} {name:8s} {rate:12,.0f} deliveries/s  {cpu:.3f} us CPU/delivery", flush=True)
    print()
    print(f"{args.messages} PUBLISH x {args.subscribers} subscribers, {args.payload}-byte payload, "
          f"pipeline {args.pipeline}; Tessera {args.shards} shards on CPUs {args.server_cpus}, "
          f"redis-server on CPU {first_cpu}, clients on CPU {args.client_cpu}")
    med = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for k, v in results.items()}
    for k in ("tessera", "redis"):
        print(f"{k:8s} median {med[k][0]:12,.0f} deliveries/s  {med[k][1]:.3f} us CPU/delivery")
    print(f"ratio (Tessera/redis): throughput {med['tessera'][0] / med['redis'][0]:.2f}, "
          f"CPU per delivery {med['tessera'][1] / med['redis'][1]:.2f}")


if __name__ == "__main__":
    main()
