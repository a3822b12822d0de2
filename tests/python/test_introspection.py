"""Introspection operators use: SLOWLOG and LATENCY merged over every
shard, INFO sections. Runs against a server with --shards 4 at
TESSERA_PORT; every test puts back the parameters it changes."""
import os
from contextlib import contextmanager

import pytest
import redis

from keyslots import quarter

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def conn(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


@contextmanager
def config(r, **params):
    old = {k: r.config_get(k.replace("_", "-"))[k.replace("_", "-")] for k in params}
    try:
        for k, v in params.items():
            r.config_set(k.replace("_", "-"), v)
        yield
    finally:
        for k, v in old.items():
            r.config_set(k.replace("_", "-"), v)


def key_on_each_shard(prefix):
    """One key per shard of a 4-shard server."""
    found = {}
    i = 0
    while len(found) < 4:
        k = f"{prefix}{i}"
        found.setdefault(quarter(k), k)
        i += 1
    return [found[q] for q in range(4)]


def test_slowlog_merges_every_shards_entries_newest_first():
    r = conn()
    r.client_setname("slowpoke")
    keys = key_on_each_shard("slow:")
    with config(r, slowlog_log_slower_than=0):
        r.slowlog_reset()
        for k in keys:
            r.set(k, "v")
        entries = r.execute_command("SLOWLOG", "GET", "-1")
    # Newest first; ids strictly decreasing across shards.
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    sets = [e for e in entries if e[3][0] == b"SET"]
    assert [e[3][1].decode() for e in sets] == list(reversed(keys))
    for e in sets:
        assert len(e) == 6
        assert isinstance(e[1], int) and e[1] > 1_600_000_000
        assert e[2] >= 0
        assert e[4].startswith(b"127.0.0.1:")
        assert e[5] == b"slowpoke"
    r.delete(*keys)


def test_slowlog_len_get_count_reset_and_max_len():
    r = conn()
    with config(r, slowlog_log_slower_than=0, slowlog_max_len=5):
        r.slowlog_reset()
        for k in key_on_each_shard("len:") * 3:
            r.get(k)
        assert r.slowlog_len() == 5
        assert len(r.slowlog_get(2)) == 2
        assert len(r.slowlog_get()) == 5
        assert r.slowlog_get(0) == []
        r.config_set("slowlog-log-slower-than", -1)
        assert r.slowlog_reset()
        assert r.slowlog_len() == 0
        r.get("x")
        assert r.slowlog_len() == 0


def test_slowlog_cuts_arguments_and_hides_passwords_as_redis():
    r = conn()
    with config(r, slowlog_log_slower_than=0):
        r.slowlog_reset()
        r.rpush("slow:list", *range(40))
        r.set("slow:big", "x" * 200)
        try:
            conn().execute_command("AUTH", "nobody", "secret")
        except redis.RedisError:
            pass
        entries = r.execute_command("SLOWLOG", "GET", "-1")
    first = {e[3][0]: e for e in entries}
    auth, big, push = first[b"AUTH"], first[b"SET"], first[b"RPUSH"]
    assert auth[3] == [b"AUTH", b"(redacted)", b"(redacted)"]
    assert big[3][2] == b"x" * 128 + b"... (72 more bytes)"
    assert len(push[3]) == 32
    assert push[3][31] == b"... (11 more arguments)"
    r.delete("slow:list", "slow:big")


def test_slowlog_errors_and_help():
    r = conn()
    with pytest.raises(redis.ResponseError, match="count should be greater than or equal to -1"):
        r.execute_command("SLOWLOG", "GET", "-2")
    with pytest.raises(redis.ResponseError, match="unknown subcommand 'foo'. Try SLOWLOG HELP."):
        r.execute_command("SLOWLOG", "foo")
    assert r.execute_command("SLOWLOG", "HELP")[0].startswith(b"SLOWLOG <subcommand>")


def test_latency_monitor_records_slow_commands_on_every_shard():
    r = conn()
    keys = key_on_each_shard("lat:")
    with config(r, latency_monitor_threshold=1):
        r.execute_command("LATENCY", "RESET")
        # A big sorted set makes a slow command on each key's shard.
        for k in keys:
            r.zadd(k, {f"m{i}": i for i in range(20000)})
        for k in keys:
            r.execute_command("ZUNIONSTORE", k + ":out", 1, k)
        latest = r.execute_command("LATENCY", "LATEST")
        names = [e[0] for e in latest]
        assert b"command" in names
        ev = latest[names.index(b"command")]
        assert ev[2] >= 1 and ev[3] >= ev[2]
        hist = r.execute_command("LATENCY", "HISTORY", "command")
        assert hist and all(len(s) == 2 and s[1] >= 1 for s in hist)
        graph = r.execute_command("LATENCY", "GRAPH", "command")
        assert graph.startswith(b"command - high ")
        assert b"Latency spikes" in r.execute_command("LATENCY", "DOCTOR")
        # Off again, so that nothing is recorded after the reset.
        r.config_set("latency-monitor-threshold", 0)
        assert r.execute_command("LATENCY", "RESET", "command", "nosuch") == 1
        assert b"command" not in [e[0] for e in r.execute_command("LATENCY", "LATEST")]
    with pytest.raises(redis.ResponseError, match="No samples available for event 'command'"):
        r.execute_command("LATENCY", "GRAPH", "command")
    r.delete(*keys, *[k + ":out" for k in keys])


def test_latency_histogram_counts_calls_of_every_shard():
    r = conn(protocol=3)
    r.config_resetstat()
    keys = key_on_each_shard("hist:")
    for k in keys:
        r.set(k, 1)
    h = r.execute_command("LATENCY", "HISTOGRAM", "set", "config", "nosuch")
    assert set(h) == {b"set"} or set(h) == {b"set", b"config|resetstat"}
    assert h[b"set"][b"calls"] == 4
    buckets = h[b"set"][b"histogram_usec"]
    counts = list(buckets.values())
    assert counts == sorted(counts) and counts[-1] == 4
    r.delete(*keys)


def test_info_latencystats_and_commandstats():
    r = conn()
    r.config_resetstat()
    for k in key_on_each_shard("info:"):
        r.append(k, "x")
    info = r.info("latencystats")
    p = info["latency_percentiles_usec_append"]
    assert set(p) == {"p50", "p99", "p99.9"}
    assert 0 < p["p50"] <= p["p99"] <= p["p99.9"]
    stats = r.info("commandstats")
    assert stats["cmdstat_append"]["calls"] == 4
    with config(r, latency_tracking_info_percentiles="90"):
        assert set(r.info("latencystats")["latency_percentiles_usec_append"]) == {"p90"}
    r.delete(*key_on_each_shard("info:"))


def raw_conn():
    import socket

    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(5)
    return s


def read_until(s, marker, limit=1 << 20):
    buf = b""
    while marker not in buf and len(buf) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def test_client_reply_off_skip_on():
    s = raw_conn()
    s.sendall(
        b"CLIENT REPLY OFF\r\nSET reply:k 3\r\nGET reply:k\r\nCLIENT REPLY ON\r\n"
        b"GET reply:k\r\nCLIENT REPLY SKIP\r\nGET reply:k\r\nPING\r\n"
    )
    assert read_until(s, b"+PONG\r\n") == b"+OK\r\n$1\r\n3\r\n+PONG\r\n"
    s.close()
    conn().delete("reply:k")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        conn().execute_command("CLIENT", "REPLY", "maybe")


def test_client_pause_write_holds_writes_not_reads_on_every_shard():
    import threading
    import time

    r = conn()
    keys = key_on_each_shard("pause:")
    r.client_pause(60000, all=False)
    try:
        # Reads pass at once.
        assert conn().get(keys[0]) is None
        done = []

        def writer(k):
            conn().set(k, "v")
            done.append(k)

        threads = [threading.Thread(target=writer, args=(k,)) for k in keys]
        for t in threads:
            t.start()
        time.sleep(0.3)
        assert done == []  # held, not refused
    finally:
        r.client_unpause()
    for t in threads:
        t.join(5)
    assert sorted(done) == sorted(keys)
    assert r.mget(keys) == [b"v"] * 4
    r.delete(*keys)


def test_client_pause_all_holds_everything_until_timeout():
    import time

    r = conn()
    other = conn()
    other.ping()
    r.client_pause(400)
    t0 = time.time()
    assert other.ping()
    assert time.time() - t0 >= 0.2


def test_client_pause_errors():
    r = conn()
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.execute_command("CLIENT", "PAUSE", "-1")
    with pytest.raises(redis.ResponseError, match="timeout is not an integer or out of range"):
        r.execute_command("CLIENT", "PAUSE", "x")
    with pytest.raises(redis.ResponseError, match="CLIENT PAUSE mode must be WRITE or ALL"):
        r.execute_command("CLIENT", "PAUSE", "10", "READ")


def test_client_kill_filters():
    victims = [conn() for _ in range(8)]
    for v in victims:
        v.ping()
    ids = [v.client_id() for v in victims]
    me = conn()
    with pytest.raises(redis.ResponseError, match="No such user 'bob'"):
        me.execute_command("CLIENT", "KILL", "USER", "bob")
    with pytest.raises(redis.ResponseError, match="Unknown client type 'foo'"):
        me.execute_command("CLIENT", "KILL", "TYPE", "foo")
    with pytest.raises(redis.ResponseError, match="client-id should be greater than 0"):
        me.execute_command("CLIENT", "KILL", "ID", "0")
    # MAXAGE far in the future kills nobody; TYPE master nobody either.
    assert me.execute_command("CLIENT", "KILL", "MAXAGE", "100000") == 0
    assert me.execute_command("CLIENT", "KILL", "TYPE", "master") == 0
    # By ID with USER default, then by ADDR, then the old form.
    assert me.execute_command("CLIENT", "KILL", "ID", ids[0], "USER", "default") == 1
    addr = victims[1].client_info()["addr"]
    assert me.execute_command("CLIENT", "KILL", "ADDR", addr, "SKIPME", "yes") == 1
    addr = victims[2].client_info()["addr"]
    assert me.execute_command("CLIENT", "KILL", addr) == b"OK"
    with pytest.raises(redis.ResponseError, match="No such client"):
        me.execute_command("CLIENT", "KILL", "1.2.3.4:5")
    listed = {c["id"] for c in me.client_list()}
    assert not listed & {str(i) for i in ids[:3]}
    assert {str(i) for i in ids[3:]} <= listed
    # LADDR of every connection here, but not me (SKIPME yes by default).
    laddr = me.client_info()["laddr"]
    assert me.execute_command("CLIENT", "KILL", "LADDR", laddr) >= 5
    assert me.ping()


def test_monitor_sees_commands_from_every_shard_in_redis_format():
    import re

    s = raw_conn()
    s.sendall(b"MONITOR\r\n")
    assert read_until(s, b"\r\n") == b"+OK\r\n"
    r = conn()
    keys = key_on_each_shard("mon:")
    for k in keys:
        r.set(k, 'a "b"\n')
    r.config_get("maxclients")  # admin: not shown
    r.get(keys[0])
    data = read_until(s, b'"GET"').decode()
    s.close()
    lines = [l for l in data.split("\r\n") if l]
    pat = re.compile(r'^\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] (".*")$')
    sets = [l for l in lines if '"SET"' in l]
    assert len(sets) == 4
    for l, k in zip(sets, keys):
        assert pat.match(l), l
        assert l.endswith(f'"SET" "{k}" "a \\"b\\"\\n"')
    assert not any("CONFIG" in l for l in lines)
    r.delete(*keys)


def test_scan_small_keyspace_in_one_call_and_type_on_every_shard():
    r = conn()
    r.select(3)
    try:
        r.flushdb()
        keys = key_on_each_shard("scan:")
        for k in keys:
            r.set(k, 1)
        r.rpush("scan:list", 1)
        cursor, got = r.scan(0)
        assert cursor == 0
        assert sorted(got) == sorted(k.encode() for k in keys + ["scan:list"])
        cursor, got = r.scan(0, _type="list")
        assert (cursor, got) == (0, [b"scan:list"])
        # A COUNT smaller than the keyspace pages through every shard.
        seen, cursor = [], None
        while cursor != 0:
            cursor, page = r.scan(cursor or 0, count=2)
            seen += page
        assert sorted(seen) == sorted(k.encode() for k in keys + ["scan:list"])
    finally:
        r.flushdb()


def test_debug_follows_enable_debug_command_and_protocol_types():
    import shutil
    import subprocess
    import tempfile
    import time

    from test_persistence import tessera

    d = tempfile.mkdtemp(prefix="tessera-debug-")
    srv = tessera(d, "--enable-debug-command", "yes")
    try:
        r2 = redis.Redis(host="127.0.0.1", port=srv.port, protocol=2)
        r3 = redis.Redis(host="127.0.0.1", port=srv.port, protocol=3)
        assert r2.execute_command("DEBUG", "SLEEP", "0") == b"OK"
        t0 = time.time()
        assert r2.execute_command("DEBUG", "SLEEP", "0.2") == b"OK"
        assert time.time() - t0 >= 0.15
        big = r2.execute_command("DEBUG", "PROTOCOL", "bignum")
        assert str(int(big)) == "1234567999999999999999999999999999999"
        assert r2.execute_command("DEBUG", "PROTOCOL", "true") == 1
        assert r3.execute_command("DEBUG", "PROTOCOL", "true") is True
        assert r3.execute_command("DEBUG", "PROTOCOL", "double") == 3.141
        assert r3.execute_command("DEBUG", "PROTOCOL", "map") == {0: False, 1: True, 2: False}
        assert set(r3.execute_command("DEBUG", "PROTOCOL", "set")) == {0, 1, 2}
        assert r3.execute_command("DEBUG", "PROTOCOL", "null") is None
        with pytest.raises(redis.ResponseError, match="RESP2 is not supported"):
            r2.execute_command("DEBUG", "PROTOCOL", "push")
        with pytest.raises(redis.ResponseError, match="Wrong protocol type name"):
            r2.execute_command("DEBUG", "PROTOCOL", "nosuch")
        with pytest.raises(redis.ResponseError, match="^MYERR text$"):
            r2.execute_command("DEBUG", "ERROR", "MYERR text")
        for sub in (["SET-ACTIVE-EXPIRE", "0"], ["CHANGE-REPL-ID"], ["STRINGMATCH-LEN"]):
            assert r2.execute_command("DEBUG", *sub) == b"OK"
    finally:
        srv.close()
        shutil.rmtree(d, ignore_errors=True)
    # The shared test server keeps Redis's default: no.
    with pytest.raises(redis.ResponseError, match="DEBUG command not allowed"):
        conn().execute_command("DEBUG", "SLEEP", "0")


def test_info_sections_parse_with_redis_py():
    r = conn()
    with pytest.raises(redis.ResponseError):
        r.execute_command("NOSUCHCOMMAND")
    everything = r.info("everything")
    assert everything["cluster_enabled"] == 0
    assert everything["role"] == "master"
    assert everything["redis_version"] == "7.0.15"
    assert everything["errorstat_ERR"]["count"] >= 1
    assert everything["total_error_replies"] >= 1
    assert "tessera_shard3" in everything
    default = r.info()
    assert "cluster_enabled" in default and "cmdstat_info" not in default
    both = r.info("server", "cluster")
    assert "redis_version" in both and "cluster_enabled" in both
    assert "connected_clients" not in both
    assert conn().info("nosuchsection") == {}
