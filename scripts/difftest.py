#!/usr/bin/env python3
"""Differential tester: runs command scripts against two Redis-protocol
servers and compares their raw replies byte for byte.

Usage:
    scripts/difftest.py --a 127.0.0.1:6379 --b 127.0.0.1:7000 tests/diff/*.redis

Script format (see tests/diff/README.md):
    FLUSHALL                     every script must start with it
    SET k "a value" EX 10        one command per line, inline syntax:
                                 "..." with \\n \\r \\t \\" \\\\ \\xHH escapes,
                                 '...' with \\' only
    # a comment                  ignored
    # resp3 / # resp2            directive: HELLO 3 / HELLO 2 on both sides
    # sleep 120                  directive: pause 120 ms
    !sort KEYS *                 compare an array reply order-insensitively
    !skip-reply TIME             only require that neither side errors
    !approx 50 PTTL k            integer replies may differ by up to 50
    EXPIREAT k {now_s+100}       {now_s[+-N]} / {now_ms[+-N]}: the current
                                 Unix time, computed once, same on both sides

Plain Python 3, standard library only. Exit status: 0 when every reply
matched, 1 on any mismatch, 2 on a usage, script or connection error.
"""

import argparse
import re
import socket
import sys
import time


class ScriptError(Exception):
    pass


# ---------------------------------------------------------------- parsing

def split_args(line):
    """redis-cli's sdssplitargs: whitespace-separated, quoted strings."""
    out = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        if line[i] == '"':
            i += 1
            while True:
                if i >= n:
                    raise ScriptError("unterminated double quote")
                c = line[i]
                if c == "\\" and i + 1 < n:
                    e = line[i + 1]
                    if e == "x" and i + 3 < n and re.fullmatch(r"[0-9a-fA-F]{2}", line[i + 2:i + 4]):
                        cur.append(int(line[i + 2:i + 4], 16))
                        i += 4
                        continue
                    cur += {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b",
                            "a": b"\a"}.get(e, e.encode())
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    if i < n and not line[i].isspace():
                        raise ScriptError("closing quote must be followed by a space")
                    break
                cur += c.encode()
                i += 1
        elif line[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ScriptError("unterminated single quote")
                c = line[i]
                if c == "\\" and i + 1 < n and line[i + 1] == "'":
                    cur += b"'"
                    i += 2
                    continue
                if c == "'":
                    i += 1
                    if i < n and not line[i].isspace():
                        raise ScriptError("closing quote must be followed by a space")
                    break
                cur += c.encode()
                i += 1
        else:
            while i < n and not line[i].isspace():
                cur += line[i].encode()
                i += 1
        out.append(bytes(cur))


TIME_RE = re.compile(r"\{now_(s|ms)([+-]\d+)?\}")


def substitute_time(line):
    now_ms = int(time.time() * 1000)

    def rep(m):
        base = now_ms // 1000 if m.group(1) == "s" else now_ms
        return str(base + int(m.group(2) or 0))

    return TIME_RE.sub(rep, line)


def parse_script(path):
    """Returns a list of steps: (lineno, kind, payload, modifiers)."""
    steps = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            words = line[1:].split()
            if words[:1] == ["resp3"] and len(words) == 1:
                steps.append((no, "proto", 3, {}))
            elif words[:1] == ["resp2"] and len(words) == 1:
                steps.append((no, "proto", 2, {}))
            elif words[:1] == ["sleep"] and len(words) == 2 and words[1].isdigit():
                steps.append((no, "sleep", int(words[1]), {}))
            continue
        mods = {}
        while line.startswith("!"):
            word, _, rest = line.partition(" ")
            if word == "!sort":
                mods["sort"] = True
            elif word == "!skip-reply":
                mods["skip"] = True
            elif word == "!approx":
                tol, _, rest = rest.strip().partition(" ")
                if not tol.isdigit():
                    raise ScriptError("%s:%d: !approx needs a number" % (path, no))
                mods["approx"] = int(tol)
            else:
                raise ScriptError("%s:%d: unknown modifier %s" % (path, no, word))
            line = rest.strip()
        if not line:
            raise ScriptError("%s:%d: modifier without a command" % (path, no))
        steps.append((no, "cmd", line, mods))
    cmds = [s for s in steps if s[1] == "cmd"]
    if not cmds or cmds[0][2].split()[0].upper() != "FLUSHALL":
        raise ScriptError("%s: the first command must be FLUSHALL" % path)
    return steps


# ---------------------------------------------------------------- RESP

def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, addr, timeout):
        host, _, port = addr.rpartition(":")
        self.addr = addr
        self.sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def call(self, args):
        self.sock.sendall(encode(args))
        return read_reply(self.f)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


def read_line(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    if not line.endswith(b"\r\n"):
        raise ConnectionError("bad line %r" % line)
    return line


def read_reply(f):
    """Reads one reply; returns (raw bytes, tree). Tree: (type, value)."""
    line = read_line(f)
    t, body = line[:1], line[1:-2]
    if t in b"+-:,#(_":
        return line, (t, body)
    if t in b"$!=":
        n = int(body)
        if n < 0:
            return line, (t, None)
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("short read")
        return line + data, (t, data[:-2])
    if t in b"*~>%|":
        n = int(body)
        if n < 0:
            return line, (t, None)
        count = n * 2 if t in b"%|" else n
        raws, items = [line], []
        for _ in range(count):
            r, tree = read_reply(f)
            raws.append(r)
            items.append((r, tree))
        raw = b"".join(raws)
        if t == b"|":  # an attribute precedes the real reply
            r2, tree2 = read_reply(f)
            return raw + r2, tree2
        return raw, (t, items)
    raise ConnectionError("unknown reply type %r" % line)


def is_error(tree):
    return tree[0] in (b"-", b"!")


def sorted_raw(raw, tree):
    """An array reply with its elements' raw encodings sorted."""
    t, items = tree
    if t not in (b"*", b"~") or items is None:
        return raw
    return b"%s%d\r\n" % (t, len(items)) + b"".join(sorted(r for r, _ in items))


def show(raw, limit=300):
    s = repr(raw)[2:-1]
    return s if len(s) <= limit else s[:limit] + "...(%d bytes)" % len(raw)


# ---------------------------------------------------------------- running

def compare(mods, ra, ta, rb, tb):
    """None when the replies agree, else a reason."""
    if mods.get("skip"):
        if is_error(ta) or is_error(tb):
            return "an error reply where success was required"
        return None
    if "approx" in mods:
        if ta[0] == tb[0] == b":":
            if abs(int(ta[1]) - int(tb[1])) <= mods["approx"]:
                return None
            return "integers differ by more than %d" % mods["approx"]
    if mods.get("sort"):
        ra, rb = sorted_raw(ra, ta), sorted_raw(rb, tb)
    return None if ra == rb else "replies differ"


def run_script(path, a_addr, b_addr, timeout, verbose):
    steps = parse_script(path)
    a, b = Conn(a_addr, timeout), Conn(b_addr, timeout)
    ran, failures = 0, []
    try:
        for no, kind, payload, mods in steps:
            if kind == "sleep":
                time.sleep(payload / 1000.0)
                continue
            if kind == "proto":
                args = [b"HELLO", str(payload).encode()]
                ra, ta = a.call(args)
                rb, tb = b.call(args)
                if is_error(ta) or is_error(tb):
                    failures.append((no, "HELLO %d" % payload, "HELLO failed", ra, rb))
                continue
            line = substitute_time(payload)
            try:
                args = split_args(line)
            except ScriptError as e:
                raise ScriptError("%s:%d: %s" % (path, no, e))
            ra, ta = a.call(args)
            rb, tb = b.call(args)
            ran += 1
            why = compare(mods, ra, ta, rb, tb)
            if why:
                failures.append((no, line, why, ra, rb))
            elif verbose:
                print("  ok   %s:%d  %s" % (path, no, line))
    finally:
        a.close()
        b.close()
    return ran, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="HOST:PORT of the reference server")
    ap.add_argument("--b", required=True, help="HOST:PORT of the server under test")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("scripts", nargs="+")
    o = ap.parse_args()

    total_cmds, total_fail, bad_files = 0, 0, 0
    print("difftest: A=%s B=%s" % (o.a, o.b))
    for path in o.scripts:
        try:
            ran, failures = run_script(path, o.a, o.b, o.timeout, o.verbose)
        except ScriptError as e:
            print("ERROR %s" % e)
            return 2
        except (OSError, ConnectionError) as e:
            print("ERROR %s: connection: %s" % (path, e))
            return 2
        total_cmds += ran
        total_fail += len(failures)
        status = "ok" if not failures else "FAIL (%d mismatches)" % len(failures)
        print("%-40s %4d commands  %s" % (path, ran, status))
        if failures:
            bad_files += 1
        for no, line, why, ra, rb in failures:
            print("  --- %s:%d: %s" % (path, no, why))
            print("      command: %s" % line)
            print("      A: %s" % show(ra))
            print("      B: %s" % show(rb))
    print("total: %d commands in %d scripts, %d mismatches in %d scripts"
          % (total_cmds, len(o.scripts), total_fail, bad_files))
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
