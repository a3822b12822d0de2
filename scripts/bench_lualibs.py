#!/usr/bin/env python3
"""Cost of the Lua libraries (cjson, cmsgpack, struct, bit), side by side:
for each operation one EVAL runs it N times in a Lua loop, timed by the
client (wall clock; Redis 7.0 scripts have no os.clock), minus the same loop
calling an empty function, divided by N. Large N makes the round trip and
the script's compilation negligible.

    redis-server --port 6390 --save '' --appendonly no --daemonize yes
    target/release/tessera-server --port 7000 --shards 4 &
    python3 scripts/bench_lualibs.py --a 127.0.0.1:6390 --b 127.0.0.1:7000

--b is optional (redis-server alone). Each figure is the best of --rounds
runs, in microseconds per call; the last column is B/A. Pin both servers to
one CPU (taskset) on a quiet machine for figures worth quoting.
"""

import argparse
import time

import redis

SETUP = r"""
local t = {}
for i = 1, 100 do t[i] = {id = i, name = 'item' .. i, score = i * 1.5, tags = {'a', 'b'}} end
local js = cjson.encode(t)
local mp = cmsgpack.pack(t)
local bin = '\0\0\0\1\0\0\0\2\0\0\0\0\0\0\0\0'
"""

# (name, iterations, call)
OPS = [
    ("cjson.encode (100 objects)", 2000, "cjson.encode(t)"),
    ("cjson.decode (100 objects)", 2000, "cjson.decode(js)"),
    ("cmsgpack.pack (100 objects)", 2000, "cmsgpack.pack(t)"),
    ("cmsgpack.unpack (100 objects)", 2000, "cmsgpack.unpack(mp)"),
    ("struct.pack '>iId'", 200000, "struct.pack('>iId', 1, 2, 3.5)"),
    ("struct.unpack '>iId'", 200000, "struct.unpack('>iId', bin)"),
    ("bit.band (3 args)", 500000, "bit.band(0xff, 0x0f, 7)"),
]


def script(n, call):
    return SETUP + "local f = function() %s end\nfor _ = 1, %d do f() end\nreturn 1" % (call, n)


def timed(r, src):
    t0 = time.perf_counter()
    r.eval(src, 0)
    return time.perf_counter() - t0


def measure(addr, rounds):
    host, port = addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    out = []
    for _, n, call in OPS:
        best = min(timed(r, script(n, call)) for _ in range(rounds))
        empty = min(timed(r, script(n, "")) for _ in range(rounds))
        out.append(max(best - empty, 0.0) / n * 1e6)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="reference server host:port (redis-server)")
    ap.add_argument("--b", help="server under test host:port")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    a = measure(args.a, args.rounds)
    b = measure(args.b, args.rounds) if args.b else None
    print(f"{'us per call':32} {'A':>10} {'B':>10} {'B/A':>6}")
    for i, (name, _, _) in enumerate(OPS):
        if b:
            print(f"{name:32} {a[i]:10.3f} {b[i]:10.3f} {b[i] / a[i]:6.2f}")
        else:
            print(f"{name:32} {a[i]:10.3f}")


if __name__ == "__main__":
    main()
