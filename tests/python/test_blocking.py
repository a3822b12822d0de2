"""Blocking commands (BLPOP & co.) against a running Tessera (TESSERA_PORT;
the test command starts it with 4 shards), with concurrent redis-py
clients: exactly-once consumption across shards, first-come first-served
wake-ups, atomic wake-ups, timeouts, CLIENT UNBLOCK, clients that go away.
"""
import os
import socket
import threading
import time

import pytest
import redis
from keyslots import quarter

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


def keys_on_each_shard(prefix, per_shard):
    """`per_shard` keys owned by each of the 4 shards, interleaved."""
    by = {0: [], 1: [], 2: [], 3: []}
    i = 0
    while min(len(v) for v in by.values()) < per_shard:
        k = f"{prefix}{i}"
        if len(by[quarter(k)]) < per_shard:
            by[quarter(k)].append(k)
        i += 1
    return [by[s][j] for j in range(per_shard) for s in range(4)]


def wait_blocked(r, n, timeout=5.0):
    """Waits until INFO says `n` clients are blocked."""
    end = time.time() + timeout
    while time.time() < end:
        if r.info("clients")["blocked_clients"] >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} clients never blocked")


@pytest.fixture(autouse=True)
def clean():
    client().flushall()
    yield
    client().flushall()


def test_exactly_once_across_shards():
    """4 producers push 20,000 unique items onto 8 lists on different
    shards; 8 consumers block on all 8 lists. Every item is consumed once."""
    lists = keys_on_each_shard("bq:", 2)
    total, producers, consumers = 20000, 4, 8
    got = [[] for _ in range(consumers)]
    done = threading.Event()

    def consume(i):
        r = client()
        while not done.is_set():
            item = r.blpop(lists, 0.2)
            if item is not None:
                got[i].append(item[1])

    def produce(p):
        r = client()
        per = total // producers
        pipe = r.pipeline(transaction=False)
        for j in range(per):
            pipe.rpush(lists[j % len(lists)], f"{p}:{j}")
            if j % 50 == 49:
                pipe.execute()
        pipe.execute()

    cs = [threading.Thread(target=consume, args=(i,)) for i in range(consumers)]
    for t in cs:
        t.start()
    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in ps:
        t.start()
    for t in ps:
        t.join()
    r = client()
    end = time.time() + 30
    while time.time() < end and sum(len(g) for g in got) < total:
        time.sleep(0.05)
    done.set()
    for t in cs:
        t.join()
    items = [x for g in got for x in g]
    assert len(items) == total
    assert len(set(items)) == total
    assert all(r.llen(k) == 0 for k in lists)
    # Every consumer took part (they were all blocked on every list).
    assert sum(1 for g in got if g) >= 2


def test_first_come_first_served():
    r = client()
    order = []

    def waiter(name):
        order.append((name, client().blpop(["fifo"], 5)[1]))

    ts = []
    for i in range(4):
        t = threading.Thread(target=waiter, args=(f"c{i}",))
        t.start()
        ts.append(t)
        wait_blocked(r, i + 1)
    for i in range(4):
        r.rpush("fifo", f"e{i}")
    for t in ts:
        t.join()
    assert sorted(order) == [("c0", b"e0"), ("c1", b"e1"), ("c2", b"e2"), ("c3", b"e3")]


def test_wake_up_is_atomic():
    """A pushed element a client waits for is taken before any later command
    sees the key: in the same pipeline, LLEN after the push sees it gone;
    inside MULTI/EXEC the push is served only after EXEC."""
    r = client()
    for k in keys_on_each_shard("atom:", 1):
        res = []
        t = threading.Thread(target=lambda: res.append(client().blpop([k], 5)))
        t.start()
        wait_blocked(r, 1)
        p = r.pipeline(transaction=False)
        p.rpush(k, "x")
        p.llen(k)
        assert p.execute() == [1, 0]
        t.join()
        assert res == [(k.encode(), b"x")]

        t = threading.Thread(target=lambda: res.append(client().blpop([k], 5)))
        t.start()
        wait_blocked(r, 1)
        p = r.pipeline(transaction=True)
        p.rpush(k, "y")
        p.llen(k)
        p.lrange(k, 0, -1)
        assert p.execute() == [1, 1, [b"y"]]
        t.join()
        assert res[-1] == (k.encode(), b"y")
        assert r.llen(k) == 0


def test_lmove_wakes_a_blocked_client():
    r = client()
    src, dst = keys_on_each_shard("mv:", 1)[:2]
    res = []
    t = threading.Thread(target=lambda: res.append(client().brpop([dst], 5)))
    t.start()
    wait_blocked(r, 1)
    r.rpush(src, "a")
    assert r.lmove(src, dst, "LEFT", "RIGHT") == b"a"
    t.join()
    assert res == [(dst.encode(), b"a")]
    assert r.exists(src, dst) == 0


def test_first_non_empty_key_in_order_across_shards():
    r = client()
    k = keys_on_each_shard("ord:", 1)
    r.rpush(k[2], "two")
    r.rpush(k[3], "three")
    assert r.blpop(k, 1) == (k[2].encode(), b"two")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.bzpopmin(k, 0.01)
    r.set(k[0], "string")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.blpop(k, 1)


def test_timeouts_with_decimals_and_inside_multi():
    r = client()
    t = time.time()
    assert r.blpop(["none"], 0.15) is None
    took = time.time() - t
    assert 0.14 <= took < 1.0
    assert r.execute_command("BRPOPLPUSH", "none", "d", "0.05") is None
    p = r.pipeline(transaction=True)
    p.blpop(["none"], 0)
    p.brpoplpush("none", "d", 0)
    p.bzpopmax(["none"], 0)
    t = time.time()
    assert p.execute() == [None, None, None]
    assert time.time() - t < 1.0
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.blpop(["none"], -1)
    with pytest.raises(redis.ResponseError, match="timeout is not a float"):
        r.execute_command("BLPOP", "none", "soon")


def test_sorted_sets_and_mpop():
    r = client()
    z = keys_on_each_shard("z:", 1)
    res = []
    t = threading.Thread(target=lambda: res.append(client().bzpopmax(z, 5)))
    t.start()
    wait_blocked(r, 1)
    r.zadd(z[3], {"b": 2})
    t.join()
    assert res == [(z[3].encode(), b"b", 2.0)]
    t = threading.Thread(
        target=lambda: res.append(client().bzmpop(5, 4, z, min=True, count=5))
    )
    t.start()
    wait_blocked(r, 1)
    r.zadd(z[1], {"m": 3})
    t.join()
    key, popped = res[-1]
    assert key == z[1].encode()
    assert [(m, float(sc)) for m, sc in popped] == [(b"m", 3.0)]
    r.rpush(z[0], "l1", "l2", "l3")
    assert r.blmpop(1, 4, *z, direction="RIGHT", count=2) == [z[0].encode(), [b"l3", b"l2"]]


def test_blmove_across_shards_while_blocked():
    r = client()
    src, _, dst, _ = keys_on_each_shard("bm:", 1)
    res = []
    t = threading.Thread(
        target=lambda: res.append(client().blmove(src, dst, 5, "RIGHT", "LEFT"))
    )
    t.start()
    wait_blocked(r, 1)
    r.rpush(src, "a", "b")
    t.join()
    assert res == [b"b"]
    assert r.lrange(src, 0, -1) == [b"a"]
    assert r.lrange(dst, 0, -1) == [b"b"]
    # Not blocked: moves at once, atomically.
    assert r.brpoplpush(src, dst, 1) == b"a"
    assert r.lrange(dst, 0, -1) == [b"a", b"b"]


def test_client_unblock_and_flags():
    r = client()
    for how, want in (("TIMEOUT", None), ("ERROR", "UNBLOCKED")):
        b = client()
        bid = b.client_id()
        res = []

        def run():
            try:
                res.append(b.blpop(["ub"], 0))
            except redis.ResponseError as e:
                res.append(str(e))

        t = threading.Thread(target=run)
        t.start()
        wait_blocked(r, 1)
        line = [c for c in r.client_list() if int(c["id"]) == bid][0]
        assert "b" in line["flags"]
        assert r.client_unblock(bid, error=(how == "ERROR")) == 1
        t.join()
        if want is None:
            assert res == [None]
        else:
            assert want in res[0]
        assert r.client_unblock(bid) == 0
        assert r.info("clients")["blocked_clients"] == 0


def test_a_client_gone_while_blocked_takes_nothing():
    r = client()
    for k in keys_on_each_shard("gone:", 1):
        s = socket.create_connection(("127.0.0.1", PORT))
        s.sendall(f"*3\r\n$5\r\nBLPOP\r\n${len(k)}\r\n{k}\r\n$1\r\n0\r\n".encode())
        wait_blocked(r, 1)
        s.close()
        end = time.time() + 5
        while r.info("clients")["blocked_clients"] and time.time() < end:
            time.sleep(0.01)
        assert r.info("clients")["blocked_clients"] == 0
        r.rpush(k, "kept")
        assert r.lrange(k, 0, -1) == [b"kept"]


def test_killed_while_blocked():
    r = client()
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n")
    bid = int(s.recv(100)[1:].strip())
    s.sendall(b"*3\r\n$5\r\nBLPOP\r\n$6\r\nkillme\r\n$1\r\n0\r\n")
    wait_blocked(r, 1)
    assert r.client_kill_filter(_id=bid) == 1
    s.settimeout(5)
    assert s.recv(100) == b""
    assert r.info("clients")["blocked_clients"] == 0
    r.rpush("killme", "x")
    assert r.llen("killme") == 1


def test_resp3_timeout_is_null():
    r = client(protocol=3)
    assert r.blpop(["none3"], 0.01) is None
    r.rpush("l3", "v")
    assert r.blpop(["l3"], 0.01) == [b"l3", b"v"]


def test_idle_timeout_spares_blocked_clients():
    r = client()
    r.config_set("timeout", 1)
    try:
        t0 = time.time()
        assert client().blpop(["idle-blocked"], 2.5) is None
        assert time.time() - t0 >= 2.4
    finally:
        r.config_set("timeout", 0)


def test_resp3_subscriber_gets_pushes_while_blocked():
    r = client()
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(5)
    s.sendall(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
    time.sleep(0.2)
    s.recv(65536)
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
    time.sleep(0.2)
    s.recv(65536)
    s.sendall(b"*3\r\n$5\r\nBLPOP\r\n$2\r\nbk\r\n$1\r\n5\r\n")
    wait_blocked(r, 1)
    assert r.publish("ch", "hi") == 1
    got = b""
    while b"hi" not in got:
        got += s.recv(65536)
    assert got.startswith(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n")
    assert r.info("clients")["blocked_clients"] == 1
    r.rpush("bk", "v")
    while b"$1\r\nv\r\n" not in got:
        got += s.recv(65536)
    s.close()


def test_churn_of_timeouts_kills_and_pushes():
    """Clients block on random key sets across shards with short timeouts
    while producers push and a killer closes some of them: the server keeps
    serving, nothing is left registered, and every pushed item is either
    consumed or still in its list (a client killed at the instant it is
    served may take one with it)."""
    r = client()
    lists = keys_on_each_shard("churn:", 2)
    stop = threading.Event()
    consumed, pushed, kills = [], [], [0]
    ids = []

    def consumer(i):
        import random

        rnd = random.Random(i)
        while not stop.is_set():
            c = client()
            try:
                ids.append(c.client_id())
                for _ in range(20):
                    ks = rnd.sample(lists, rnd.randint(1, 4))
                    got = c.blpop(ks, rnd.choice([0.01, 0.05, 0.2]))
                    if got:
                        consumed.append(got[1])
            except redis.ConnectionError:
                pass
            finally:
                c.close()

    def producer(p):
        r = client()
        j = 0
        while not stop.is_set():
            item = f"{p}:{j}"
            r.rpush(lists[j % len(lists)], item)
            pushed.append(item.encode())
            j += 1
            time.sleep(0.001)

    def killer():
        import random

        rnd = random.Random(7)
        while not stop.is_set():
            time.sleep(0.05)
            if ids:
                kills[0] += r.client_kill_filter(_id=rnd.choice(ids))

    ts = [threading.Thread(target=consumer, args=(i,)) for i in range(6)]
    ts += [threading.Thread(target=producer, args=(p,)) for p in range(2)]
    ts.append(threading.Thread(target=killer))
    for t in ts:
        t.start()
    time.sleep(5)
    stop.set()
    for t in ts:
        t.join()
    left = [x for k in lists for x in r.lrange(k, 0, -1)]
    assert len(set(consumed)) == len(consumed)
    assert not set(consumed) & set(left)
    lost = len(pushed) - len(consumed) - len(left)
    assert 0 <= lost <= kills[0]
    end = time.time() + 5
    while r.info("clients")["blocked_clients"] and time.time() < end:
        time.sleep(0.01)
    assert r.info("clients")["blocked_clients"] == 0
    assert r.ping()
