"""Keyspace notifications against redis-server's: every command of
data/notify_commands.txt runs on Tessera (TESSERA_PORT, 4 shards) and on a
redis-server 7.0 this test starts, each with notify-keyspace-events set; the
messages a pattern subscriber receives for each command must be the same
(compared as a set per command: keys of one command on several shards are
published by each owner, in no fixed order between them)."""
import os
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

PORT = int(os.environ.get("TESSERA_PORT", "6379"))
HERE = os.path.dirname(__file__)


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.fixture(scope="module")
def reference():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port = free_port()
    tmp = tempfile.mkdtemp()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
        stdout=subprocess.DEVNULL,
    )
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(5)


def commands():
    out = []
    for line in open(os.path.join(HERE, "data", "notify_commands.txt")):
        line = line.strip()
        if line == "# sleep":
            out.append(None)
        elif line and not line.startswith("#"):
            out.append(shlex.split(line))
    return out


def record(port, flags, cmds):
    r = redis.Redis(port=port)
    r.flushall()
    r.config_set("notify-keyspace-events", flags)
    p = r.pubsub()
    p.psubscribe("__key*__:*")
    p.get_message(timeout=1)
    seen = []
    try:
        for c in cmds:
            if c is None:
                time.sleep(0.05)
                continue
            try:
                r.execute_command(*c)
            except redis.ResponseError:
                pass
            got = []
            end = time.time() + 0.05
            while time.time() < end:
                m = p.get_message(timeout=0.01)
                if m and m["type"] == "pmessage":
                    got.append((m["channel"], m["data"]))
                    end = time.time() + 0.03
            seen.append((" ".join(c), sorted(got)))
    finally:
        r.config_set("notify-keyspace-events", "")
        p.close()
        r.flushall()
    return seen


@pytest.mark.parametrize("flags", ["KEA", "Kgn", "Exl$", "KEm"])
def test_notifications_match_redis(reference, flags):
    cmds = commands()
    if flags == "KEm":
        cmds = [["GET", "missing"], ["SET", "here", "1"], ["GET", "here"], ["MGET", "here", "nope"]]
    want = record(reference, flags, cmds)
    got = record(PORT, flags, cmds)
    diffs = [(c, w, g) for (c, w), (_, g) in zip(want, got) if w != g]
    assert not diffs, "\n".join(f"{c}\n  redis:   {w}\n  tessera: {g}" for c, w, g in diffs[:10])


def test_active_expiry_publishes_expired():
    r = redis.Redis(port=PORT)
    r.config_set("notify-keyspace-events", "Ex")
    p = r.pubsub()
    p.subscribe("__keyevent@0__:expired")
    p.get_message(timeout=1)
    try:
        for i in range(20):
            r.set(f"exp{i}", "v", px=20)
        got = set()
        end = time.time() + 5
        while len(got) < 20 and time.time() < end:
            m = p.get_message(timeout=0.1)
            if m and m["type"] == "message":
                got.add(m["data"])
        assert got == {f"exp{i}".encode() for i in range(20)}
    finally:
        r.config_set("notify-keyspace-events", "")
        p.close()
