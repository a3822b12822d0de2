"""Streams and consumer groups against a running Tessera (TESSERA_PORT; the
test command starts it with 4 shards), with several redis-py clients:
consumers of one group on connections of every shard get each entry once,
PEL and XACK stay consistent, XAUTOCLAIM hands idle entries over, XREAD
reads streams of several shards, and a stream survives DUMP/RESTORE.
"""
import os
import threading

import pytest
import redis
from keyslots import quarter

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


def on_each_shard(prefix):
    """One key per shard (of 4)."""
    by = {}
    i = 0
    while len(by) < 4:
        k = f"{prefix}{i}"
        by.setdefault(quarter(k), k)
        i += 1
    return [by[s] for s in range(4)]


@pytest.fixture(autouse=True)
def clean():
    client().flushall()
    yield
    client().flushall()


def test_group_delivers_each_entry_once_to_consumers_on_every_shard():
    r = client()
    n = 400
    for i in range(1, n + 1):
        r.xadd("jobs", {"n": i}, id=f"{i}-0")
    r.xgroup_create("jobs", "workers", id="0")
    seen = []
    lock = threading.Lock()

    def work(name):
        # A connection of its own: connections spread over the shards.
        c = client()
        while True:
            got = c.xreadgroup("workers", name, {"jobs": ">"}, count=7)
            if not got:
                return
            ids = [eid for eid, _ in got[0][1]]
            with lock:
                seen.extend((name, eid) for eid in ids)
            # Acknowledge every other batch; the rest stays pending.
            if int(ids[0].split(b"-")[0]) % 2:
                assert c.xack("jobs", "workers", *ids) == len(ids)

    threads = [threading.Thread(target=work, args=(f"c{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [eid for _, eid in seen]
    assert len(ids) == n and len(set(ids)) == n
    pending = r.xpending("jobs", "workers")
    per_consumer = {c["name"]: c["pending"] for c in pending["consumers"]}
    assert pending["pending"] == sum(per_consumer.values())
    assert pending["pending"] == len(r.xpending_range("jobs", "workers", "-", "+", n))
    for name, count in per_consumer.items():
        mine = r.xpending_range("jobs", "workers", "-", "+", n, consumername=name)
        assert len(mine) == count
        assert all(p["consumer"] == name.encode() if isinstance(name, str) else name for p in mine)
    info = r.xinfo_groups("jobs")[0]
    assert info["last-delivered-id"] == f"{n}-0".encode()
    assert info["entries-read"] == n and info["lag"] == 0


def test_xautoclaim_hands_idle_entries_over():
    r = client()
    for i in range(1, 11):
        r.xadd("q", {"i": i}, id=f"{i}-0")
    r.xgroup_create("q", "g", id="0")
    got = r.xreadgroup("g", "dead", {"q": ">"})
    assert len(got[0][1]) == 10
    r.xack("q", "g", "1-0", "2-0")
    r.xdel("q", "3-0")
    # Make the rest idle for an hour without waiting one.
    r.xclaim("q", "g", "dead", 0, [f"{i}-0" for i in range(4, 11)], idle=3_600_000, justid=True)
    cursor, claimed, deleted = r.xautoclaim("q", "g", "alive", 60_000, "0-0", count=4)
    assert [e[0] for e in claimed] == [b"4-0", b"5-0", b"6-0"]
    assert deleted == [b"3-0"]
    assert cursor == b"7-0"
    raw = client()
    raw.response_callbacks.pop("XAUTOCLAIM", None)
    cursor, claimed, deleted = raw.execute_command("XAUTOCLAIM", "q", "g", "alive", 60_000, cursor, "JUSTID")
    assert claimed == [b"7-0", b"8-0", b"9-0", b"10-0"] and cursor == b"0-0" and deleted == []
    # Nothing is idle any more.
    assert r.xautoclaim("q", "g", "other", 60_000, "0-0")[1] == []
    p = r.xpending("q", "g")
    assert p["pending"] == 7
    assert {c["name"]: c["pending"] for c in p["consumers"]} == {b"alive": 7}
    assert r.execute_command("XGROUP", "DELCONSUMER", "q", "g", "alive") == 7
    assert r.xpending("q", "g")["pending"] == 0


def test_xread_reads_streams_of_every_shard():
    r = client()
    keys = on_each_shard("feed")
    for j, k in enumerate(keys):
        r.xadd(k, {"k": k}, id=f"{j + 1}-0")
        r.xadd(k, {"k": k}, id=f"{j + 1}-1")
    got = r.xread({k: "0" for k in keys})
    assert [name.decode() for name, _ in got] == keys
    assert all(len(entries) == 2 for _, entries in got)
    got = r.xread({k: f"{j + 1}-0" for j, k in enumerate(keys)}, count=5)
    assert [[e[0] for e in entries] for _, entries in got] == [[f"{j + 1}-1".encode()] for j in range(4)]
    assert r.xread({k: "$" for k in keys}) == []


def test_xreadgroup_on_streams_of_several_shards():
    r = client()
    keys = on_each_shard("multi")
    for k in keys:
        r.xadd(k, {"a": 1}, id="1-1")
        r.xgroup_create(k, "g", id="0")
    got = r.xreadgroup("g", "c", {k: ">" for k in keys})
    assert [name.decode() for name, _ in got] == keys
    for k in keys:
        assert r.xpending(k, "g")["pending"] == 1
    assert r.xreadgroup("g", "c", {k: ">" for k in keys}) == []


def test_dump_restore_and_type():
    r = client()
    r.xadd("s", {"a": "1", "b": "x" * 100}, id="1-1")
    r.xadd("s", {"c": "-7"}, id="2-2")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=1)
    assert r.type("s") == b"stream"
    assert r.object("encoding", "s") == b"stream"
    assert list(r.scan_iter(_type="stream")) == [b"s"]
    payload = r.dump("s")
    r.restore("s2", 0, payload)
    assert r.xrange("s2") == r.xrange("s")
    assert r.xinfo_groups("s2") == r.xinfo_groups("s")
    assert r.xpending("s2", "g")["pending"] == 1


def test_block_with_nothing_to_read_is_refused_not_faked():
    r = client()
    r.xadd("b", {"a": 1}, id="1-1")
    # Data there: served as Redis serves it.
    assert r.xread({"b": "0"}, block=100)[0][1][0][0] == b"1-1"
    with pytest.raises(redis.ResponseError, match="BLOCK"):
        r.xread({"b": "$"}, block=100)
