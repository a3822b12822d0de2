"""redis-py's Lock (EVALSHA of its Lua scripts, SCRIPT LOAD) against a
running Tessera (TESSERA_PORT): acquire, extend, release, and blocking
acquire across clients. The same file passes against redis-server."""
import os
import threading

import redis
from redis.exceptions import LockError, LockNotOwnedError

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def client():
    return redis.Redis(host="127.0.0.1", port=PORT)


def test_acquire_extend_release():
    c = client()
    c.delete("pylock:a")
    lock = c.lock("pylock:a", timeout=10)
    assert lock.acquire(blocking=False)
    assert lock.owned()
    assert 0 < c.pttl("pylock:a") <= 10000
    assert lock.extend(20)
    assert 10000 < c.pttl("pylock:a") <= 30000
    assert lock.reacquire()
    assert 0 < c.pttl("pylock:a") <= 10000
    lock.release()
    assert not lock.owned()
    assert c.exists("pylock:a") == 0


def test_a_second_client_cannot_take_or_release_a_held_lock():
    c1, c2 = client(), client()
    c1.delete("pylock:b")
    l1 = c1.lock("pylock:b", timeout=10)
    l2 = c2.lock("pylock:b", timeout=10)
    assert l1.acquire(blocking=False)
    assert not l2.acquire(blocking=False)
    l2.local.token = b"not-the-owner"
    try:
        l2.release()
        raise AssertionError("release by a non-owner must fail")
    except LockNotOwnedError:
        pass
    try:
        l2.extend(5)
        raise AssertionError("extend by a non-owner must fail")
    except LockError:
        pass
    l1.release()


def test_blocking_acquire_across_clients():
    c = client()
    c.delete("pylock:c", "pylock:counter")
    errors = []

    def worker():
        cc = client()
        try:
            for _ in range(10):
                with cc.lock("pylock:c", timeout=10, blocking_timeout=30, sleep=0.001):
                    v = int(cc.get("pylock:counter") or 0)
                    cc.set("pylock:counter", v + 1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert int(c.get("pylock:counter")) == 50
