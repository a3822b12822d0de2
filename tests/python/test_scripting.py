"""Lua scripting against a running Tessera (TESSERA_PORT, 4 shards in the
test command): scripts reach every shard, atomically, undeclared keys
included; errors release locks; SCRIPT KILL stops a runaway script; a
script that allocates without bound gets an error; random scripts never
crash or wedge the server. Replies and error texts are compared with
redis-server byte for byte in tests/diff/scripting*.redis."""
import os
import random
import threading

import pytest
import redis
from keyslots import quarter

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, **kw)


def keys_on_distinct_shards(prefix, n=2):
    found = {}
    i = 0
    while len(found) < n:
        k = f"{prefix}{i}"
        found.setdefault(quarter(k), k)
        i += 1
    return list(found.values())[:n]


def test_evalsha_works_from_every_connection():
    c = client()
    sha = c.script_load("return ARGV[1] .. '!'")
    # New connections land on different shards: each compiles it there.
    for i in range(16):
        assert client().evalsha(sha, 0, str(i)) == f"{i}!".encode()
    assert c.script_exists(sha, "0" * 40) == [True, False]


def test_script_flush_reaches_every_shard():
    sha = client().script_load("return 7")
    conns = [client() for _ in range(12)]
    for c in conns:
        assert c.evalsha(sha, 0) == 7
    assert conns[0].script_flush() is True
    for c in conns:
        with pytest.raises(redis.exceptions.NoScriptError):
            c.evalsha(sha, 0)


def test_script_touches_keys_of_every_shard_it_did_not_declare():
    c = client()
    ks = keys_on_distinct_shards("undeclared:", 4)
    assert len({quarter(k) for k in ks}) == 4
    n = c.eval(
        "for i, k in ipairs(ARGV) do redis.call('set', k, i) end "
        "local s = 0 for _, k in ipairs(ARGV) do s = s + redis.call('get', k) end return s",
        0,
        *ks,
    )
    assert n == 10
    assert c.mget(ks) == [b"1", b"2", b"3", b"4"]
    # A cross-shard command inside a script (split MGET, gathered RENAME).
    assert c.eval("return redis.call('mget', unpack(ARGV))", 0, *ks) == [b"1", b"2", b"3", b"4"]
    c.eval("redis.call('rename', ARGV[1], ARGV[2])", 0, ks[0], "renamed:" + ks[0])
    assert c.get("renamed:" + ks[0]) == b"1"


MOVE = """
local a = tonumber(redis.call('get', ARGV[1]) or '0')
local b = tonumber(redis.call('get', ARGV[2]) or '0')
local amount = tonumber(ARGV[3])
redis.call('set', ARGV[1], a - amount)
redis.call('set', ARGV[2], b + amount)
return a - amount
"""

SUM = "return tonumber(redis.call('get', ARGV[1])) + tonumber(redis.call('get', ARGV[2]))"


def test_concurrent_scripts_on_undeclared_keys_are_atomic():
    a, b = keys_on_distinct_shards("bank:")
    c = client()
    c.mset({a: 1000, b: 1000})
    sha = c.script_load(MOVE)
    stop = threading.Event()
    errors = []

    def mover(seed):
        r = random.Random(seed)
        cc = client()
        for _ in range(150):
            x, y = (a, b) if r.random() < 0.5 else (b, a)
            cc.evalsha(sha, 0, x, y, r.randint(1, 9))

    def reader():
        cc = client()
        while not stop.is_set():
            s = cc.eval(SUM, 0, a, b)
            if s != 2000:
                errors.append(("script", s))
            va, vb = cc.mget(a, b)
            if int(va) + int(vb) != 2000:
                errors.append(("mget", va, vb))

    movers = [threading.Thread(target=mover, args=(i,)) for i in range(6)]
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in movers + readers:
        t.start()
    for t in movers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert int(c.get(a)) + int(c.get(b)) == 2000


def test_script_error_keeps_its_writes_and_releases_every_lock():
    c = client()
    ks = keys_on_distinct_shards("err:", 4)
    with pytest.raises(redis.exceptions.ResponseError, match="boom"):
        c.eval("redis.call('set', ARGV[1], 'written'); error('boom')", 0, ks[0])
    # As in Redis, writes before the error stay.
    assert c.get(ks[0]) == b"written"
    # Nothing is left locked: other clients write every shard.
    other = client(socket_timeout=10)
    for k in ks:
        assert other.set(k, "after") is True
    assert other.eval("return redis.call('get', ARGV[1])", 0, ks[3]) == b"after"


def test_eval_inside_multi_sees_and_writes_every_shard():
    a, b = keys_on_distinct_shards("txscript:")
    c = client()
    p = c.pipeline(transaction=True)
    p.set(a, "1")
    p.eval("redis.call('set', ARGV[2], redis.call('get', ARGV[1]) + 1) return 1", 0, a, b)
    p.get(b)
    assert p.execute() == [True, 1, b"2"]


def test_blocking_commands_are_refused_in_scripts():
    c = client()
    with pytest.raises(redis.exceptions.ResponseError, match="not allowed from script"):
        c.eval("return redis.call('blpop', 'nolist', 0)", 0)


def test_resp3_conversions():
    c = client(protocol=3)
    c.delete("h3")
    c.hset("h3", mapping={"f": "v"})
    assert c.eval("redis.setresp(3) return redis.call('hgetall', KEYS[1])['map']['f']", 1, "h3") == b"v"
    assert c.eval("return {double=3.5}", 0) == 3.5
    assert c.eval("redis.setresp(3) return true", 0) is True
    assert c.eval("return redis.call('get', 'no:such:key')", 0) is None


def test_runaway_script_is_killed_by_script_kill():
    runner = client()
    result = {}

    def run():
        try:
            runner.eval("local i = 0 while true do i = i + 1 end", 0)
        except redis.exceptions.ResponseError as e:
            result["err"] = str(e)

    t = threading.Thread(target=run)
    t.start()
    # Connections on the shard running the script wait for it; the first
    # one on another shard stops it.
    killed = False
    attempts = 0
    while not killed and attempts < 400:
        attempts += 1
        k = client(socket_timeout=0.5)
        try:
            k.script_kill()
            killed = True
        except redis.exceptions.ResponseError as e:
            assert "NOTBUSY" in str(e)
        except redis.exceptions.TimeoutError:
            pass
        finally:
            k.close()
    t.join(timeout=30)
    assert killed and not t.is_alive()
    assert "Script killed by user with SCRIPT KILL" in result["err"]
    assert client().ping() is True


def test_script_that_allocates_without_bound_gets_an_error():
    c = client()
    with pytest.raises(redis.exceptions.ResponseError):
        c.eval(
            # Strings of distinct lengths (Lua 5.1 hashes long strings
            # by sampling: same-length strings would collide).
            "local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('x', 65536 + i) end",
            0,
        )
    assert c.ping() is True
    assert c.eval("return 1", 0) == 1


FRAGMENTS = [
    "redis.call('set', KEYS[1], ARGV[1])",
    "redis.call('incr', KEYS[2])",
    "redis.pcall('incr', KEYS[1])",
    "redis.call('lpush', KEYS[3], ARGV[1], ARGV[2])",
    "redis.call('get', ARGV[3])",
    "redis.call('set', ARGV[3], 'u')",
    "redis.call('del', KEYS[1], ARGV[3])",
    "redis.call('hset', KEYS[2], 'f', 1)",
    "redis.call('mget', KEYS[1], KEYS[2], ARGV[3])",
    "redis.call('nosuchcmd')",
    "redis.call('zadd', KEYS[1], 1, 'm')",
    "error('e')",
    "error({err='E x'})",
    "pcall(error, 'x')",
    "local t = {} for i = 1, 50 do t[i] = i end",
    "local s = string.rep('a', 100)",
    "x = 1",
    "local y = nonexistent",
    "return {1, 'a', {err='x'}}",
    "return {ok='y'}",
    "return 1.5",
    "return nil",
    "redis.setresp(3)",
    "redis.call('ping')",
    "redis.call('expire', KEYS[1], 100)",
    "redis.call('rename', KEYS[1], ARGV[3])",
    "local v = redis.call('lrange', KEYS[3], 0, -1)",
    "tostring(nil)",
    "return redis.call('hgetall', KEYS[2])",
    "if redis.call('exists', KEYS[1]) == 1 then redis.call('del', KEYS[1]) end",
    "local a = 1 +",
    "return (",
]


def test_random_scripts_never_crash_or_wedge_the_server():
    r = random.Random(15)
    c = client(socket_timeout=20)
    ks = keys_on_distinct_shards("fuzz:", 4)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        body = "\n".join(r.choice(FRAGMENTS) for _ in range(r.randint(1, 6)))
        try:
            c.eval(body, 3, ks[0], ks[1], ks[2], "v1", "v2", ks[3])
            outcomes["ok"] += 1
        except redis.exceptions.ResponseError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0
    assert c.ping() is True
    assert client().set("fuzz:after", "1") is True
