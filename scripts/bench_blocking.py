#!/usr/bin/env python3
"""What blocking commands cost, beside redis-server.

  pingpong  Two sides, each with a connection blocked in BLPOP on its own
            list and one that pushes on the other side's list: LPUSH a,
            the other side wakes, LPUSH b, this side wakes. Reports the
            round trip (two pushes, two wake-ups), p50 and p99, over
            --rounds round trips. With --shards 2 or more the two lists
            live on different shards, so wake-ups cross shards.
  idle      --idle clients block in BLPOP with no timeout; the server's CPU
            time over --idle-seconds must be (nearly) nothing.

Servers are started side by side and pinned (taskset) to --server-cpus;
the load runs pinned to --client-cpu. Standard library only.

    scripts/bench_blocking.py --shards 2 --server-cpus 0-1 --client-cpu 1
"""
import argparse
import os
import socket
import statistics
import tempfile
import threading
import time

from benchutil import Server, free_port, key_slot
from benchutil import proc_cpu_seconds as cpu_seconds

TESSERA = os.path.join(os.path.dirname(__file__), "..", "target", "release", "tessera-server")


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def lists_on_two_shards(shards):
    """Two list names owned by different shards (when there are several)."""
    a = "pp:a"
    if shards < 2:
        return a, "pp:b"
    owner = lambda k: key_slot(k) * shards // 16384
    i = 0
    while owner(f"pp:b{i}") == owner(a):
        i += 1
    return a, f"pp:b{i}"


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def pingpong(port, shards, rounds):
    a, b = lists_on_two_shards(shards)
    # Each side has a connection that blocks and one that pushes (a
    # blocked connection runs nothing else until it is served).
    wait_b, push_a, wait_a, push_b = (Conn(port) for _ in range(4))
    push_a.send(resp("DEL", a, b))
    push_a.read_exact(4)
    # The reply a BLPOP gets for element "x" on list `k`.
    got = lambda k: b"*2\r\n$%d\r\n%s\r\n$1\r\nx\r\n" % (len(k), k.encode())
    trips = []
    stop = threading.Event()

    def echo():
        # Waits on `a`; each element is pushed back on `b`.
        while not stop.is_set():
            wait_a.send(resp("BLPOP", a, "1"))
            head = wait_a.read_exact(2)
            if head == b"*-":
                wait_a.read_exact(3)
                continue
            wait_a.read_exact(len(got(a)) - 2)
            push_b.send(resp("LPUSH", b, "x"))
            push_b.read_exact(4)

    t = threading.Thread(target=echo)
    t.start()
    time.sleep(0.2)
    for _ in range(rounds):
        wait_b.send(resp("BLPOP", b, "5"))
        t0 = time.perf_counter()
        push_a.send(resp("LPUSH", a, "x"))
        push_a.read_exact(4)
        wait_b.read_exact(len(got(b)))
        trips.append(time.perf_counter() - t0)
    stop.set()
    t.join()
    trips.sort()
    us = lambda q: trips[int(q * (len(trips) - 1))] * 1e6
    return us(0.5), us(0.99)


def idle(port, pid, n, seconds):
    conns = []
    for i in range(n):
        c = Conn(port)
        c.send(resp("BLPOP", f"idle:{i}", "0"))
        conns.append(c)
    time.sleep(1.0)
    before = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    for c in conns:
        c.s.close()
    return used


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--server-cpus", default="0-1")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    args = ap.parse_args()
    os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    tmp = tempfile.mkdtemp()
    first_cpu = args.server_cpus.split("-")[0].split(",")[0]
    pt, pr = free_port(), free_port()
    tessera = Server("tessera", [TESSERA, "--port", str(pt), "--shards", str(args.shards), "--loglevel", "warning"], pt, args.server_cpus)
    redis = Server("redis", ["redis-server", "--port", str(pr), "--save", "", "--appendonly", "no", "--dir", tmp], pr, first_cpu)
    try:
        print(f"pingpong: LPUSH -> BLPOP -> LPUSH -> BLPOP round trip, {args.rounds} rounds")
        res = {}
        for s, port in (("tessera", pt), ("redis", pr)):
            p50, p99 = pingpong(port, args.shards if s == "tessera" else 1, args.rounds)
            res[s] = (p50, p99)
            print(f"  {s:8} p50 {p50:7.1f} us   p99 {p99:7.1f} us")
        print(f"  ratio    p50 {res['tessera'][0] / res['redis'][0]:.2f}x   p99 {res['tessera'][1] / res['redis'][1]:.2f}x")
        print(f"idle: {args.idle} clients blocked in BLPOP 0 for {args.idle_seconds:.0f} s")
        for s, srv in (("tessera", tessera), ("redis", redis)):
            used = idle(srv.port, srv.proc.pid, args.idle, args.idle_seconds)
            print(f"  {s:8} server CPU {used * 1000:7.1f} ms ({used / args.idle_seconds * 100:.2f}% of a core)")
    finally:
        tessera.stop()
        redis.stop()


if __name__ == "__main__":
    main()
