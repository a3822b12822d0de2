"""Pub/sub across shards against a running Tessera (TESSERA_PORT; the test
command starts it with 4 shards). Subscribers are placed on chosen shards
(DEBUG SHARD says which shard a connection lives on), so every test that
says "every shard" really crosses them."""
import os
import socket
import threading
import time

import pytest
import redis

PORT = int(os.environ.get("TESSERA_PORT", "6379"))
SHARDS = 4

ONLY = ("only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        "are allowed in this context")


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Raw:
    """A raw RESP connection with a small parser (push frames included),
    so the tests see exactly what the server sends, in order."""

    def __init__(self, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", PORT))
        self.s.settimeout(10)
        self.buf = b""
        self.pos = 0

    def send(self, *args):
        self.s.sendall(enc(*args))

    def call(self, *args):
        self.send(*args)
        return self.read()

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def _fill(self):
        if self.pos > 1 << 20:
            self.buf = self.buf[self.pos:]
            self.pos = 0
        d = self.s.recv(1 << 16)
        if not d:
            raise ConnectionError("closed")
        self.buf += d

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+",):
            return rest.decode()
        if t == b"-":
            return Err(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"_":
            return None
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            v = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return v
        if t in (b"*", b">", b"~"):
            n = int(rest)
            items = None if n < 0 else [self.read() for _ in range(n)]
            return Push(items) if t == b">" else items
        if t == b"%":
            n = int(rest)
            return {self.read(): self.read() for _ in range(n)}
        raise AssertionError("unexpected reply %r" % line)

    def close(self):
        self.s.close()


class Err(str):
    pass


class Push(list):
    pass


def on_shard(shard, **kw):
    """A raw connection living on `shard` (SO_REUSEPORT spreads new
    connections; the others are closed)."""
    for _ in range(400):
        c = Raw(**kw)
        if c.call("DEBUG", "SHARD") == shard:
            return c
        c.close()
    raise AssertionError("no connection landed on shard %d" % shard)


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


def wait_until(f, seconds=5):
    t0 = time.time()
    while time.time() - t0 < seconds:
        if f():
            return True
        time.sleep(0.02)
    return f()


def test_debug_shard_finds_every_shard():
    conns = [on_shard(s) for s in range(SHARDS)]
    assert [c.call("DEBUG", "SHARD") for c in conns] == list(range(SHARDS))
    for c in conns:
        c.close()


def test_every_shard_receives_every_message_in_order():
    n = 10000
    subs = [on_shard(s) for s in range(SHARDS)]
    for c in subs:
        assert c.call("SUBSCRIBE", "feed") == [b"subscribe", b"feed", 1]
    # Two publishers on different shards, pipelining: each one's messages
    # must arrive in its own order at every subscriber.
    pubs = [on_shard(0), on_shard(3)]
    counts = [[], []]

    def publish(k):
        p = pubs[k]
        for start in range(0, n, 200):
            p.s.sendall(b"".join(enc("PUBLISH", "feed", "%d:%d" % (k, i))
                                 for i in range(start, start + 200)))
            counts[k].extend(p.read() for _ in range(200))

    threads = [threading.Thread(target=publish, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    got = [[] for _ in subs]

    def drain(i):
        for _ in range(2 * n):
            m = subs[i].read()
            assert m[0] == b"message" and m[1] == b"feed", m
            got[i].append(m[2])

    readers = [threading.Thread(target=drain, args=(i,)) for i in range(SHARDS)]
    for t in readers:
        t.start()
    for t in threads + readers:
        t.join(60)
    # Every PUBLISH reached the 4 subscribers, on 4 shards.
    assert counts[0] == [SHARDS] * n and counts[1] == [SHARDS] * n
    for g in got:
        assert len(g) == 2 * n
        for k in range(2):
            mine = [int(m.split(b":")[1]) for m in g if m.startswith(b"%d:" % k)]
            assert mine == list(range(n))
    for c in subs + pubs:
        c.close()


def test_publish_counts_channels_and_patterns_on_every_shard():
    r = client()
    a, b, c, d = (on_shard(s) for s in range(SHARDS))
    a.call("SUBSCRIBE", "news")
    b.call("PSUBSCRIBE", "n*")
    c.call("SUBSCRIBE", "news")
    assert c.call("PSUBSCRIBE", "n*") == [b"psubscribe", b"n*", 2]
    d.call("SSUBSCRIBE", "orders")
    assert r.publish("news", "hello") == 4  # c gets it twice, as in Redis
    assert a.read() == [b"message", b"news", b"hello"]
    assert b.read() == [b"pmessage", b"n*", b"news", b"hello"]
    got = sorted(map(tuple, [c.read(), c.read()]))
    assert got == [(b"message", b"news", b"hello"),
                   (b"pmessage", b"n*", b"news", b"hello")]
    # Only the pattern matches: b and c.
    assert r.publish("nx", "y") == 2
    assert b.read() == [b"pmessage", b"n*", b"nx", b"y"]
    assert c.read() == [b"pmessage", b"n*", b"nx", b"y"]
    assert r.publish("other", "z") == 0
    assert r.execute_command("SPUBLISH", "orders", "o1") == 1
    assert d.read() == [b"smessage", b"orders", b"o1"]
    for x in (a, b, c, d):
        x.close()


def test_pubsub_introspection_across_shards():
    r = client()
    conns = [on_shard(s) for s in range(SHARDS)]
    for i, c in enumerate(conns):
        assert c.call("SUBSCRIBE", "intro:all", "intro:%d" % i)[2] == 1
        assert c.read() == [b"subscribe", b"intro:%d" % i, 2]
        c.call("PSUBSCRIBE", "intro:*")
        c.call("SSUBSCRIBE", "intro:shard")
    assert r.pubsub_numsub("intro:all", "intro:2", "intro:none") == [
        (b"intro:all", 4), (b"intro:2", 1), (b"intro:none", 0)]
    assert sorted(r.pubsub_channels("intro:*")) == sorted(
        [b"intro:all"] + [b"intro:%d" % i for i in range(SHARDS)])
    assert r.pubsub_numpat() >= 1
    assert r.execute_command("PUBSUB", "SHARDNUMSUB", "intro:shard") == [b"intro:shard", 4]
    assert r.execute_command("PUBSUB", "SHARDCHANNELS", "intro:*") == [b"intro:shard"]
    stats = r.info("stats")
    assert stats["pubsub_channels"] >= SHARDS + 1
    assert stats["pubsubshard_channels"] >= 1
    assert r.execute_command("SPUBLISH", "intro:shard", "m") == 4
    for c in conns:
        assert c.read() == [b"smessage", b"intro:shard", b"m"]
    lines = [l for l in r.client_list() if l["sub"] == "2" and l["psub"] == "1"]
    assert len(lines) == SHARDS
    assert all(l["psub"] == "1" and l["ssub"] == "1" and "P" in l["flags"] for l in lines)
    ids = sorted(int(l["id"]) for l in lines)
    assert sorted(int(l["id"]) for l in r.client_list(_type="pubsub")) == ids
    assert not set(ids) & {int(l["id"]) for l in r.client_list(_type="normal")}
    # Memory comes back when the clients go: nothing stays registered.
    for c in conns:
        c.close()
    assert wait_until(lambda: r.pubsub_numsub("intro:all") == [(b"intro:all", 0)])
    assert wait_until(lambda: r.pubsub_channels("intro:*") == [])
    assert r.execute_command("PUBSUB", "SHARDCHANNELS", "intro:*") == []
    assert r.publish("intro:all", "x") == 0


def test_client_kill_type_pubsub_closes_subscribers_on_every_shard():
    r = client()
    conns = [on_shard(s) for s in range(SHARDS)]
    for c in conns:
        c.call("SUBSCRIBE", "killme")
    other = on_shard(0)
    assert r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == SHARDS
    for c in conns:
        with pytest.raises((ConnectionError, OSError)):
            c.read()
    assert other.call("PING") == "PONG"
    assert wait_until(lambda: r.pubsub_numsub("killme") == [(b"killme", 0)])
    with pytest.raises(redis.ResponseError, match="Unknown client type 'foo'"):
        r.execute_command("CLIENT", "KILL", "TYPE", "foo")
    other.close()


def test_idle_timeout_spares_subscribers():
    r = client()
    r.config_set("timeout", 1)
    try:
        sub = on_shard(3)
        sub.call("SUBSCRIBE", "quiet")
        idle = on_shard(3)
        time.sleep(2.5)
        # As in Redis, a subscriber is never closed for being idle.
        assert r.publish("quiet", "still here") == 1
        assert sub.read() == [b"message", b"quiet", b"still here"]
        with pytest.raises((ConnectionError, OSError)):
            idle.call("PING")
    finally:
        r.config_set("timeout", 0)
    sub.close()


def test_resp2_subscribed_mode_allows_only_subscription_commands():
    c = on_shard(1)
    assert c.call("SUBSCRIBE", "m2") == [b"subscribe", b"m2", 1]
    assert c.call("GET", "k") == "ERR Can't execute 'get': " + ONLY
    assert c.call("CLIENT", "LIST") == "ERR Can't execute 'client|list': " + ONLY
    assert c.call("PING") == [b"pong", b""]
    assert c.call("PING", "hi") == [b"pong", b"hi"]
    assert c.call("SSUBSCRIBE", "s") == [b"ssubscribe", b"s", 1]
    assert c.call("PSUBSCRIBE", "p*") == [b"psubscribe", b"p*", 2]
    assert c.call("PUNSUBSCRIBE") == [b"punsubscribe", b"p*", 1]
    assert c.call("UNSUBSCRIBE") == [b"unsubscribe", b"m2", 0]
    # Still subscribed to a shard channel: still in subscribed mode.
    assert c.call("SET", "k", "v").startswith("ERR Can't execute 'set'")
    assert c.call("SUNSUBSCRIBE") == [b"sunsubscribe", b"s", 0]
    assert c.call("UNSUBSCRIBE") == [b"unsubscribe", None, 0]
    assert c.call("SET", "k", "v") == "OK"
    c.call("SUBSCRIBE", "m2")
    assert c.call("RESET") == "RESET"
    assert c.call("GET", "k") == b"v"
    assert client().publish("m2", "after reset") == 0
    c.close()


def test_resp3_push_messages_while_running_commands():
    sub = on_shard(2)
    assert sub.call("HELLO", "3")[b"proto"] == 3
    assert sub.call("SUBSCRIBE", "r3") == Push([b"subscribe", b"r3", 1])
    pub = on_shard(0)
    n = 2000
    stop = threading.Event()

    def publisher():
        for start in range(0, n, 100):
            pub.s.sendall(b"".join(enc("PUBLISH", "r3", i) for i in range(start, start + 100)))
            for _ in range(100):
                assert pub.read() == 1
        stop.set()

    t = threading.Thread(target=publisher)
    t.start()
    msgs, replies, i = [], [], 0
    while not stop.is_set() or len(msgs) < n:
        sub.send("INCR", "r3:counter")
        # The reply comes whole, in order; pushes may come before it.
        while True:
            v = sub.read()
            if isinstance(v, Push):
                assert v[:2] == [b"message", b"r3"]
                msgs.append(int(v[2]))
            else:
                replies.append(v)
                break
        i += 1
        if i > 100000:
            break
    t.join(30)
    assert msgs == list(range(n))
    assert replies == list(range(replies[0], replies[0] + len(replies)))
    assert sub.call("PING") == "PONG"
    sub.close()
    pub.close()


def test_resp3_publish_to_own_channel_pushes_before_the_reply():
    c = on_shard(1)
    c.call("HELLO", "3")
    c.call("SUBSCRIBE", "me")
    c.call("PSUBSCRIBE", "m*")
    c.send("PUBLISH", "me", "hi")
    # As Redis: both pushes, then the count.
    assert c.read() == Push([b"message", b"me", b"hi"])
    assert c.read() == Push([b"pmessage", b"m*", b"me", b"hi"])
    assert c.read() == 2
    c.close()


def test_redis_py_resp3_pubsub():
    r = client(protocol=3)
    p = r.pubsub()
    p.subscribe("py3")
    assert p.get_message(timeout=2)["type"] == "subscribe"
    assert client().publish("py3", "hello") == 1
    m = p.get_message(timeout=2)
    assert m["type"] == "message" and m["data"] == b"hello"
    p.close()


def test_slow_subscriber_is_disconnected_others_keep_receiving():
    r = client()
    old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    r.config_set("client-output-buffer-limit",
                 "pubsub 1048576 262144 60")
    try:
        slow = on_shard(1, rcvbuf=4096)
        assert slow.call("CLIENT", "SETNAME", "slowsub") == "OK"
        slow.call("SUBSCRIBE", "flood")
        fast = on_shard(2)
        fast.call("SUBSCRIBE", "flood")
        pub = on_shard(3)
        payload = b"x" * 4096
        n = 2000  # 8 MB: far past the slow one's 1 MB hard limit
        got = []

        def drain():
            for _ in range(n):
                m = fast.read()
                got.append(m[2] == payload)

        t = threading.Thread(target=drain)
        t.start()
        for start in range(0, n, 50):
            pub.s.sendall(b"".join(enc("PUBLISH", "flood", payload) for _ in range(50)))
            for _ in range(50):
                assert pub.read() in (1, 2)
        t.join(30)
        assert len(got) == n and all(got)
        assert wait_until(lambda: not any(
            c.get("name") == "slowsub" for c in r.client_list()))
        assert r.pubsub_numsub("flood") == [(b"flood", 1)]
        # The slow one's socket is closed after what it was sent.
        with pytest.raises((ConnectionError, OSError)):
            while True:
                slow.read()
    finally:
        r.config_set("client-output-buffer-limit", old)
