"""maxmemory and eviction: each policy evicts the right kind of keys, the
OOM reply under noeviction (denyoom commands refused, reads and DEL
served), lowering maxmemory at run time evicts, evicted_keys, the
`evicted` keyspace event, OBJECT FREQ/IDLETIME and MEMORY USAGE. Each test
starts its own server (the shared one keeps no limit)."""
import socket
import tempfile
import time

import pytest
import redis

from test_persistence import tessera

OOM = "command not allowed when used memory > 'maxmemory'."
VALUE = b"v" * 1000


@pytest.fixture
def srv():
    d = tempfile.mkdtemp(prefix="tessera-evict-")
    s = tessera(d, "--save", "")
    yield s
    s.close()


# Each shard republishes its usage when it moved by 16 KiB: the node's
# figure as a shard sees it may be that much off per shard.
SLACK = 4 * 16 * 1024 + 16 * 1024


def counted(r):
    """The memory counted against maxmemory (what the server holds beyond
    its startup allocations)."""
    m = r.info("memory")
    return m["used_memory"] - m["used_memory_startup"]


def fill(r, prefix, n, ttl=None, value=VALUE):
    p = r.pipeline(transaction=False)
    for i in range(n):
        if ttl is None:
            p.set(f"{prefix}:{i}", value)
        else:
            p.set(f"{prefix}:{i}", value, ex=ttl + i)
        if i % 500 == 499:
            p.execute(raise_on_error=False)
    p.execute(raise_on_error=False)


def alive(r, prefix, n):
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.exists(f"{prefix}:{i}")
    return sum(p.execute())


def limit(r, mb, policy):
    r.config_set("maxmemory-policy", policy)
    r.config_set("maxmemory", f"{mb}mb")


def test_config_is_live_and_shown_in_info(srv):
    r = srv.r
    for name, val in [
        ("maxmemory", "12582912"),
        ("maxmemory-policy", "allkeys-lfu"),
        ("maxmemory-samples", "10"),
        ("maxmemory-eviction-tenacity", "20"),
        ("lfu-log-factor", "5"),
        ("lfu-decay-time", "3"),
    ]:
        assert r.config_set(name, val)
        assert r.config_get(name) == {name: val}
    m = r.info("memory")
    assert m["maxmemory"] == 12582912
    assert m["maxmemory_human"] == "12.00M"
    assert m["maxmemory_policy"] == "allkeys-lfu"
    assert r.info("stats")["evicted_keys"] == 0


def test_noeviction_refuses_denyoom_and_serves_reads_and_del(srv):
    r = srv.r
    fill(r, "k", 2000)
    limit(r, 1, "noeviction")
    assert counted(r) > 1 << 20
    for cmd in (
        ("set", "new", "x"),
        ("lpush", "l", "x"),
        ("sadd", "s", "x"),
        ("hset", "h", "f", "v"),
        ("zadd", "z", "1", "m"),
        ("incr", "k:1"),
        ("append", "k:1", "x"),
        ("setrange", "k:1", "0", "x"),
        ("pfadd", "hll", "a"),
        ("restore", "rk", "0", r.dump("k:1")),
    ):
        with pytest.raises(redis.exceptions.ResponseError) as e:
            r.execute_command(*cmd)
        assert str(e.value) == OOM, cmd
    # The exact bytes on the wire.
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\nx\r\n")
        raw = sock.recv(200)
    assert raw == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    # Reads, DEL and writes that free memory are still served.
    assert r.get("k:1") == VALUE
    assert r.exists("k:2") == 1
    assert r.delete("k:3") == 1
    assert r.expire("k:4", 100)
    assert r.dbsize() == 1999
    assert r.info("stats")["evicted_keys"] == 0
    # Back under the limit, writes pass again.
    r.config_set("maxmemory", "0")
    assert r.set("new", "x")


def test_allkeys_random_evicts_and_counts(srv):
    r = srv.r
    limit(r, 8, "allkeys-random")
    fill(r, "k", 20000)
    n = r.dbsize()
    assert 2000 < n < 20000
    assert counted(r) <= (8 << 20) + SLACK
    assert r.info("stats")["evicted_keys"] == 20000 - n


def test_allkeys_lru_keeps_recently_used_keys(srv):
    r = srv.r
    r.config_set("maxmemory-samples", "10")
    fill(r, "old", 3000)
    time.sleep(2.1)  # the LRU clock has a resolution of one second
    fill(r, "hot", 1000)
    limit(r, 8, "allkeys-lru")
    fill(r, "new", 3000)
    old, hot = alive(r, "old", 3000), alive(r, "hot", 1000)
    assert r.info("stats")["evicted_keys"] > 0
    # The idle keys go first: nearly all recent ones stay.
    assert hot >= 950, (old, hot)
    assert old < 3000 * 0.6, (old, hot)


def test_allkeys_lfu_keeps_frequently_used_keys(srv):
    r = srv.r
    limit(r, 0, "allkeys-lfu")
    r.config_set("maxmemory-samples", "10")
    fill(r, "cold", 3000)
    fill(r, "hot", 500)
    p = r.pipeline(transaction=False)
    for _ in range(30):
        for i in range(500):
            p.get(f"hot:{i}")
    p.execute()
    assert r.object("freq", "hot:1") > r.object("freq", "cold:1")
    limit(r, 8, "allkeys-lfu")
    fill(r, "new", 3000)
    hot, cold = alive(r, "hot", 500) / 500, alive(r, "cold", 3000) / 3000
    # Sampling is approximate and the shards share the budget, so not
    # every hot key survives (one CI run kept 75%): what LFU must show is
    # a clear preference, where a random policy keeps both alike.
    assert hot >= 0.6 and hot >= cold + 0.2, (hot, cold)
    assert cold < 0.6, (hot, cold)


def test_volatile_policies_evict_only_keys_with_a_ttl(srv):
    r = srv.r
    for policy in ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
        r.flushall()
        r.config_set("maxmemory", "0")
        fill(r, "keep", 2000)
        fill(r, "ttl", 4000, ttl=1000)
        limit(r, 8, policy)
        fill(r, "more", 2000, ttl=1000)
        assert alive(r, "keep", 2000) == 2000, policy
        assert alive(r, "ttl", 4000) + alive(r, "more", 2000) < 6000, policy
        # Nothing volatile left to evict: writes get OOM (once the
        # evictions in progress, each bounded in time, are done).
        r.config_set("maxmemory", "1mb")
        err = None
        for _ in range(500):
            try:
                r.set("y", VALUE)
            except redis.exceptions.ResponseError as e:
                err = e
                break
            time.sleep(0.01)
        assert err is not None and str(err) == OOM, policy
        assert alive(r, "keep", 2000) == 2000, policy


def test_volatile_ttl_evicts_the_nearest_expiry_first(srv):
    r = srv.r
    r.config_set("maxmemory-samples", "10")
    fill(r, "soon", 3000, ttl=1000)
    fill(r, "late", 3000, ttl=100000)
    limit(r, 8, "volatile-ttl")
    fill(r, "more", 1000, ttl=200000)
    soon, late = alive(r, "soon", 3000), alive(r, "late", 3000)
    assert soon < late, (soon, late)
    assert late >= 2700, (soon, late)


def test_lowering_maxmemory_at_run_time_evicts_down_to_it(srv):
    r = srv.r
    fill(r, "k", 20000)
    assert counted(r) > 16 << 20
    limit(r, 6, "allkeys-lru")
    # No command runs meanwhile: the shards' periodic work evicts.
    deadline = time.time() + 10
    while counted(r) > (6 << 20) + SLACK and time.time() < deadline:
        time.sleep(0.05)
    assert counted(r) <= (6 << 20) + SLACK
    n = r.dbsize()
    assert 0 < n < 20000
    assert r.info("stats")["evicted_keys"] == 20000 - n


def test_evictions_are_published_and_touch_watchers(srv):
    r = srv.r
    r.config_set("notify-keyspace-events", "Ee")
    fill(r, "k", 6000)
    p = r.pubsub()
    p.psubscribe("__keyevent@0__:evicted")
    assert p.get_message(timeout=5)["type"] == "psubscribe"
    w = redis.Redis(port=srv.port)
    pipe = w.pipeline()
    keys = [f"k:{i}" for i in range(6000)]
    pipe.watch(*keys)
    limit(r, 4, "allkeys-random")
    r.set("trigger", "x")
    msg = None
    deadline = time.time() + 10
    while msg is None and time.time() < deadline:
        msg = p.get_message(timeout=1)
    assert msg is not None and msg["channel"] == b"__keyevent@0__:evicted"
    assert msg["data"].startswith(b"k:")
    pipe.multi()
    pipe.set("k:0", "y")
    with pytest.raises(redis.exceptions.WatchError):
        pipe.execute()
    p.close()


def test_object_freq_and_idletime_follow_the_policy(srv):
    r = srv.r
    r.set("a", "hello")
    assert r.object("freq", "missing") is None
    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.object("freq", "a")
    assert str(e.value).startswith("An LFU maxmemory policy is not selected, access frequency not tracked.")
    assert r.object("idletime", "a") == 0
    r.config_set("maxmemory-policy", "allkeys-lfu")
    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.object("idletime", "a")
    assert str(e.value).startswith("An LFU maxmemory policy is selected, idle time not tracked.")
    r.set("b", "x")
    assert r.object("freq", "b") == 5
    r.config_set("lfu-log-factor", "0")
    for _ in range(10):
        r.get("b")
    # OBJECT FREQ itself does not count as an access.
    assert r.object("freq", "b") == 15
    assert r.object("freq", "b") == 15
