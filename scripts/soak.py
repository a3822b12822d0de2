#!/usr/bin/env python3
"""Soak: Tessera and redis-server side by side under a mix of abuse.

For --duration seconds, against each server at once, threads run:
  load     pipelined SET/GET of small values on 10,000 keys
  churn    connect, PING, close, over and over
  slow     a reader that pipelines GET of a 1 MB value without reading
           (the output limit should close it; it reconnects)
  garbage  random bytes, then a close
  big      SET/GET/DEL of an 8 MB value
and once a second each server's RSS (/proc/PID/status), used_memory (INFO)
and a bystander connection's PING latency are sampled. At the end it prints,
per server, the first and last third's medians and max PING latency, and
GREW when RSS or used_memory in the last third is more than 20% + 8 MB above
the first third's (something growing without bound), else steady.

    cargo build --release -p tessera-server
    scripts/soak.py --duration 600 [--shards 2] [--tessera target/release/tessera-server]

Standard library only; needs redis-server.
"""
import argparse
import os
import random
import socket
import statistics
import subprocess
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("closed")
    t, rest = line[:1], line[1:-2]
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    return rest


class Conn:
    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        self.s.sendall(enc(*args))
        return read_reply(self.f)

    def close(self):
        self.f.close()
        self.s.close()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def used_mb(c):
    info = c.call("INFO", "memory").decode()
    for line in info.split("\r\n"):
        if line.startswith("used_memory:"):
            return int(line.split(":")[1]) / 1e6
    return 0.0


def worker(kind, port, stop, errors):
    rnd = random.Random(kind)
    while not stop.is_set():
        try:
            if kind == "load":
                c = Conn(port)
                while not stop.is_set():
                    req = b"".join(enc("SET", f"k:{rnd.randrange(10000)}", "v" * 32) for _ in range(16))
                    req += b"".join(enc("GET", f"k:{rnd.randrange(10000)}") for _ in range(16))
                    c.s.sendall(req)
                    for _ in range(32):
                        read_reply(c.f)
            elif kind == "churn":
                c = Conn(port)
                c.call("PING")
                c.close()
            elif kind == "slow":
                c = Conn(port, timeout=5)
                c.call("SET", "soak:big1m", b"x" * (1 << 20))
                req = enc("GET", "soak:big1m") * 64
                try:
                    for _ in range(200):  # up to 200 * 64 MB asked, never read
                        c.s.sendall(req)
                        if stop.is_set():
                            break
                except OSError:
                    pass  # closed by the output limit, as expected
                c.s.close()
            elif kind == "garbage":
                c = Conn(port, timeout=2)
                try:
                    c.s.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4096))))
                    c.s.recv(4096)
                except OSError:
                    pass
                c.s.close()
                time.sleep(0.01)
            elif kind == "big":
                c = Conn(port, timeout=30)
                c.call("SET", "soak:big8m", os.urandom(8 << 20))
                c.call("GET", "soak:big8m")
                c.call("DEL", "soak:big8m")
                c.close()
                time.sleep(0.2)
        except (OSError, ConnectionError, ValueError) as e:
            errors[kind] = errors.get(kind, 0) + 1
            if errors[kind] < 3:
                print(f"  [{port}] {kind}: {e}")
            time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--tessera", default="target/release/tessera-server")
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--tessera-log", default="", help="file for Tessera's log (verbose); default: discarded")
    args = ap.parse_args()
    limit = ["--client-output-buffer-limit", "normal 64mb 32mb 10"]
    servers = {}
    pt, pr = free_port(), free_port()
    servers["tessera"] = (pt, subprocess.Popen(
        [args.tessera, "--port", str(pt), "--shards", str(args.shards),
         "--loglevel", "verbose" if args.tessera_log else "warning"] + limit,
        stdout=open(args.tessera_log, "w") if args.tessera_log else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if args.tessera_log else subprocess.DEVNULL))
    servers["redis"] = (pr, subprocess.Popen(
        [args.redis, "--port", str(pr), "--save", "", "--appendonly", "no", "--loglevel", "warning"] + limit,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.5)
    stop = threading.Event()
    threads, errors, samples = [], {}, {n: [] for n in servers}
    try:
        for name, (port, _) in servers.items():
            errors[name] = {}
            for kind in ("load", "churn", "slow", "garbage", "big"):
                t = threading.Thread(target=worker, args=(kind, port, stop, errors[name]), daemon=True)
                t.start()
                threads.append(t)
        bystanders = {n: Conn(p) for n, (p, _) in servers.items()}
        end = time.time() + args.duration
        while time.time() < end:
            time.sleep(1)
            for name, (port, proc) in servers.items():
                t0 = time.perf_counter()
                try:
                    c = bystanders[name]
                    c.call("PING")
                    lat = (time.perf_counter() - t0) * 1000
                    used = used_mb(c)
                except (OSError, ConnectionError, ValueError) as e:
                    # A PING that timed out counts as its wait; reconnect.
                    lat = (time.perf_counter() - t0) * 1000
                    errors[name]["bystander"] = errors[name].get("bystander", 0) + 1
                    print(f"  [{port}] bystander: {e}")
                    try:
                        bystanders[name] = Conn(port)
                        used = used_mb(bystanders[name])
                    except (OSError, ConnectionError, ValueError):
                        used = float("nan")
                if proc.poll() is not None:
                    print(f"  {name} exited with {proc.returncode}")
                    end = 0
                    break
                samples[name].append((rss_mb(proc.pid), used, lat))
        stop.set()
    finally:
        stop.set()
        # Workers finish their step before the servers go, so a reply cut
        # by the shutdown is not counted as the server's error.
        for t in threads:
            t.join(timeout=40)
        for _, proc in servers.values():
            proc.terminate()
            proc.wait()
    grew_any = False
    for name, s in samples.items():
        third = max(1, len(s) // 3)
        first, last = s[:third], s[-third:]
        line = [f"{name:8}"]
        grew = []
        for i, what in ((0, "rss"), (1, "used_memory")):
            a = statistics.median(x[i] for x in first)
            b = statistics.median(x[i] for x in last)
            line.append(f"{what} {a:.1f} -> {b:.1f} MB")
            if b > a * 1.2 + 8:
                grew.append(what)
        line.append(f"PING max {max(x[2] for x in s):.1f} ms, p50 {statistics.median(x[2] for x in s):.2f} ms")
        line.append(f"errors {errors.get(name, {})}")
        line.append("GREW: " + ", ".join(grew) if grew else "steady")
        grew_any |= bool(grew)
        print("  ".join(line))
    raise SystemExit(1 if grew_any else 0)


if __name__ == "__main__":
    main()
