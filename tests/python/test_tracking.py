"""Client-side caching (CLIENT TRACKING) against a running Tessera
(TESSERA_PORT, 4 shards): invalidations for keys on every shard, RESP3
pushes, REDIRECT to a RESP2 subscriber of __redis__:invalidate, BCAST with
prefixes, OPTIN/OPTOUT with CLIENT CACHING, NOLOOP, FLUSHALL, and the
errors and introspection replies Redis gives."""
import os
import socket
import time

import pytest
import redis
from keyslots import quarter

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


class Raw:
    """A raw connection: commands as inline text, replies as bytes."""

    def __init__(self, resp3=True):
        self.s = socket.create_connection(("127.0.0.1", PORT))
        self.s.settimeout(2)
        if resp3:
            self.cmd("HELLO 3")

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.read()

    def read(self, settle=0.15):
        time.sleep(settle)
        out = b""
        self.s.settimeout(0.2)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out

    def id(self):
        return int(self.cmd("CLIENT ID").strip()[1:])


def spread(prefix):
    """One key per shard."""
    by = {}
    i = 0
    while len(by) < 4:
        k = f"{prefix}{i}"
        by.setdefault(quarter(k), k)
        i += 1
    return [by[s] for s in range(4)]


def inval(key):
    return b">2\r\n$10\r\ninvalidate\r\n*1\r\n$%d\r\n%s\r\n" % (len(key), key.encode())


@pytest.fixture(autouse=True)
def clean():
    client().flushall()
    yield


def test_default_mode_invalidates_each_read_key_once_on_any_shard():
    w = client()
    t = Raw()
    assert t.cmd("CLIENT TRACKING ON") == b"+OK\r\n"
    keys = spread("tk:")
    for k in keys:
        w.set(k, "v")
        t.cmd(f"GET {k}")
    for k in keys:
        w.set(k, "v2")
        w.set(k, "v3")
    got = t.read(0.3)
    for k in keys:
        assert got.count(inval(k)) == 1
    # Not read again: no more invalidations.
    for k in keys:
        w.set(k, "v4")
    assert t.read() == b""


def test_redirect_to_a_resp2_subscriber():
    sub = Raw(resp3=False)
    sid = sub.id()
    sub.cmd("SUBSCRIBE __redis__:invalidate")
    c = Raw(resp3=False)
    assert c.cmd(f"CLIENT TRACKING ON REDIRECT {sid}") == b"+OK\r\n"
    assert c.cmd("CLIENT GETREDIR") == b":%d\r\n" % sid
    c.cmd("GET rk")
    client().set("rk", "1")
    assert sub.read(0.3) == (
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$2\r\nrk\r\n"
    )
    assert c.cmd("CLIENT TRACKING ON REDIRECT 999999") == (
        b"-ERR The client ID you want redirect to does not exist\r\n"
    )


def test_bcast_prefixes_and_noloop():
    t = Raw()
    assert t.cmd("CLIENT TRACKING ON BCAST PREFIX user: PREFIX s: NOLOOP") == b"+OK\r\n"
    w = client()
    keys = spread("user:")
    for k in keys:
        w.set(k, "v")
    w.set("other", "v")
    got = t.read(0.3)
    assert all(got.count(inval(k)) == 1 for k in keys)
    assert b"other" not in got
    # Its own writes are not sent back (NOLOOP).
    assert t.cmd("SET user:self 1") == b"+OK\r\n"
    info = t.cmd("CLIENT TRACKINGINFO")
    assert b"bcast" in info and b"noloop" in info and b"user:" in info


def test_optin_tracks_only_after_caching_yes():
    t = Raw()
    assert t.cmd("CLIENT TRACKING ON OPTIN") == b"+OK\r\n"
    w = client()
    w.set("oa", 1)
    w.set("ob", 1)
    t.cmd("GET oa")
    assert t.cmd("CLIENT CACHING YES") == b"+OK\r\n"
    t.cmd("GET ob")
    w.set("oa", 2)
    w.set("ob", 2)
    got = t.read(0.3)
    assert inval("ob") in got and inval("oa") not in got
    assert t.cmd("CLIENT CACHING NO") == (
        b"-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
    )


def test_flushall_invalidates_everything_once():
    t = Raw()
    t.cmd("CLIENT TRACKING ON")
    client().flushall()
    assert t.read(0.3) == b">2\r\n$10\r\ninvalidate\r\n_\r\n"


def test_errors_and_introspection_as_redis():
    t = Raw(resp3=False)
    assert t.cmd("CLIENT GETREDIR") == b":-1\r\n"
    assert t.cmd("CLIENT TRACKING ON OPTIN OPTOUT") == (
        b"-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"
    )
    assert t.cmd("CLIENT TRACKING ON PREFIX a") == (
        b"-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    )
    assert t.cmd("CLIENT CACHING YES") == (
        b"-ERR CLIENT CACHING can be called only when the client is in tracking mode"
        b" with OPTIN or OPTOUT mode enabled\r\n"
    )
    assert t.cmd("CLIENT TRACKING ON") == b"+OK\r\n"
    assert t.cmd("CLIENT GETREDIR") == b":0\r\n"
    assert t.cmd("CLIENT TRACKING ON BCAST").startswith(b"-ERR You can't switch BCAST mode")
    assert t.cmd("CLIENT TRACKINGINFO") == (
        b"*6\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n"
    )
    r = client()
    assert r.info("clients")["tracking_clients"] >= 1
    assert t.cmd("CLIENT TRACKING OFF") == b"+OK\r\n"
    assert t.cmd("CLIENT GETREDIR") == b":-1\r\n"
