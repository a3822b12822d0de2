#!/usr/bin/env python3
"""Records INCRBYFLOAT cases from a real Redis for the shard's xfloat test.

Usage: scripts/xfloat_cases.py --port 6379 --n 20000 > cases.tsv
Each line: a<TAB>b<TAB>reply ("ERR" for an error reply). Random decimal
and hex inputs of many magnitudes and shapes, plus fixed edge cases.
"""
import argparse
import random
import socket


def enc(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    t = line[:1]
    if t == b"$":
        n = int(line[1:-2])
        return f.read(n + 2)[:-2].decode()
    if t == b"-":
        return "ERR"
    return line[1:-2].decode()


def rand_num(r):
    kind = r.random()
    sign = r.choice(["", "", "-", "+"])
    if kind < 0.3:
        ip = str(r.randint(0, 10 ** r.randint(0, 20)))
        fp = "".join(r.choice("0123456789") for _ in range(r.randint(0, 22)))
        return sign + ip + ("." + fp if fp or r.random() < 0.2 else "")
    if kind < 0.5:
        m = "%d.%d" % (r.randint(0, 999), r.randint(0, 10 ** 6))
        return sign + m + "e" + str(r.randint(-30, 30))
    if kind < 0.6:
        return sign + "%de%d" % (r.randint(1, 99), r.randint(-4960, 4940))
    if kind < 0.7:
        return sign + "0x%x.%xp%d" % (r.randint(0, 2 ** 70), r.randint(0, 255), r.randint(-80, 80))
    if kind < 0.8:
        return sign + repr(r.uniform(-1e6, 1e6))
    if kind < 0.9:
        return sign + str(r.randint(0, 2 ** 64))
    return sign + "0." + "0" * r.randint(0, 20) + str(r.randint(1, 10 ** 18))


FIXED = [
    ("10.5", "0.1"), ("0", "0.000003814697265625"), ("1e400", "1"),
    ("1", "1e-400"), ("inf", "1"), ("1", "-inf"), ("1e4932", "1e4932"),
    ("-0", "0"), ("0", "-0"), ("1.18973149535723176502e+4932", "1"),
    ("3e-4951", "0"), ("1e-4951", "0"), ("0x1p-16445", "0"), ("0x1p16383", "0x1p16383"),
    ("5.", ".5"), ("1.e5", "1"), ("0x10", "0x.8"), ("1e", "1"), (" 1", "1"),
    ("nan", "1"), ("0x", "1"), ("9223372036854775807", "1"), ("-9223372036854775808", "-1"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    o = ap.parse_args()
    r = random.Random(o.seed)
    s = socket.create_connection((o.host, o.port))
    f = s.makefile("rb")
    cases = FIXED + [(rand_num(r), rand_num(r)) for _ in range(o.n)]
    for i in range(0, len(cases), 500):
        batch = cases[i:i + 500]
        s.sendall(b"".join(enc(["SET", "xf:k", a]) + enc(["INCRBYFLOAT", "xf:k", b]) for a, b in batch))
        for a, b in batch:
            read_reply(f)
            print("%s\t%s\t%s" % (a, b, read_reply(f)))
    s.sendall(enc(["DEL", "xf:k"]))
    read_reply(f)


if __name__ == "__main__":
    main()
