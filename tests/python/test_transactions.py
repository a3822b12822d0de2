"""Atomicity across shards, proved with concurrent redis-py clients against
a running Tessera (TESSERA_PORT; the test command starts it with 4 shards).

The keys are chosen so that every shard holds some: a command or a
transaction on them crosses shards."""
import os
import threading
import time

import redis
from keyslots import quarter

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)




def exec_fails_on_watch(p):
    """Runs a watched redis-py transaction: True when EXEC failed because
    a watched key changed."""
    try:
        p.execute()
        return False
    except redis.WatchError:
        return True


def spread_keys(prefix, n):
    quarters = {0: [], 1: [], 2: [], 3: []}
    i = 0
    while min(len(v) for v in quarters.values()) < (n + 3) // 4:
        k = f"{prefix}{i}"
        quarters[quarter(k)].append(k)
        i += 1
    return [quarters[j % 4][j // 4] for j in range(n)]


def test_keys_really_spread():
    ks = spread_keys("acct:", 8)
    assert len({quarter(k) for k in ks}) == 4


def test_mset_mget_pairs_are_never_torn():
    c = client()
    a, b = spread_keys("pair:", 2)
    assert quarter(a) != quarter(b)
    c.mset({a: "0", b: "0"})
    stop = threading.Event()
    errors = []

    def writer(w):
        cw = client()
        n = 0
        while not stop.is_set():
            n += 1
            v = f"{w}-{n}"
            cw.mset({a: v, b: v})

    torn = []
    reads = [0]

    def reader():
        cr = client()
        for _ in range(12500):
            x, y = cr.mget(a, b)
            reads[0] += 1
            if x != y:
                torn.append((x, y))

    ws = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    rs = [threading.Thread(target=reader) for _ in range(4)]
    for t in ws + rs:
        t.start()
    for t in rs:
        t.join()
    stop.set()
    for t in ws:
        t.join()
    assert not errors
    assert reads[0] == 50000
    assert torn == [], f"{len(torn)} torn pairs, e.g. {torn[:3]}"


def test_bank_transfers_keep_the_sum():
    accounts = spread_keys("bank:", 64)
    c = client()
    c.delete(*accounts)
    c.mset({k: 100 for k in accounts})
    total = 100 * len(accounts)
    committed = [0] * 8
    stop = threading.Event()
    bad_sums = []

    def transfer(w):
        import random
        rnd = random.Random(w)
        cw = client()
        for _ in range(300):
            src, dst = rnd.sample(accounts, 2)
            amount = rnd.randint(1, 10)
            with cw.pipeline(transaction=True) as p:
                try:
                    p.watch(src, dst)
                    bal = int(p.get(src))
                    if bal < amount:
                        p.unwatch()
                        continue
                    p.multi()
                    p.decrby(src, amount)
                    p.incrby(dst, amount)
                    p.execute()
                    committed[w] += 1
                except redis.WatchError:
                    pass

    def auditor():
        ca = client()
        while not stop.is_set():
            p = ca.pipeline(transaction=True)
            for k in accounts:
                p.get(k)
            s = sum(int(v) for v in p.execute())
            if s != total:
                bad_sums.append(s)

    ts = [threading.Thread(target=transfer, args=(i,)) for i in range(8)]
    aud = threading.Thread(target=auditor)
    aud.start()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    aud.join()
    assert bad_sums == [], f"sums seen inside MULTI/EXEC: {bad_sums[:5]}"
    assert sum(int(v) for v in c.mget(accounts)) == total
    # Every committed transfer moved money: replaying the count is not
    # possible, but the number of successful EXECs must be positive and
    # each one must have applied both of its commands (the sum proves it).
    assert sum(committed) > 0


def test_watch_sees_another_clients_write_on_another_shard():
    a, b = spread_keys("watched:", 2)
    c1, c2 = client(), client()
    c1.set(a, "1")
    p = c1.pipeline(transaction=True)
    p.watch(a)
    c2.set(a, "2")  # another client, maybe another shard
    p.multi()
    p.set(b, "x")
    assert exec_fails_on_watch(p)
    assert c1.get(b) is None


def test_watch_sees_expiry():
    c1 = client()
    c1.set("wexp", "1", px=50)
    p = c1.pipeline(transaction=True)
    p.watch("wexp")
    time.sleep(0.1)
    p.multi()
    p.set("wexp-out", "x")
    assert exec_fails_on_watch(p)


def test_rename_across_shards_is_atomic_for_readers():
    a, b = spread_keys("ren:", 2)
    c = client()
    c.delete(a, b)
    c.set(a, "v")
    stop = threading.Event()
    bad = []

    def mover():
        cm = client()
        for _ in range(3000):
            cm.rename(a, b)
            cm.rename(b, a)
        stop.set()

    def reader():
        cr = client()
        while not stop.is_set():
            n = cr.exists(a, b)
            if n != 1:
                bad.append(n)

    t1, t2 = threading.Thread(target=mover), threading.Thread(target=reader)
    t2.start()
    t1.start()
    t1.join()
    t2.join()
    assert bad == [], f"EXISTS a b saw {bad[:5]}"


def test_disconnect_inside_multi_and_watch_releases_everything():
    a, b = spread_keys("gone:", 2)
    for _ in range(50):
        c = client()
        c.execute_command("WATCH", a, b)
        c.execute_command("MULTI")
        c.execute_command("SET", a, "1")
        c.close()
    c = client()
    assert c.mset({a: "ok", b: "ok"})
    assert c.mget(a, b) == [b"ok", b"ok"]
