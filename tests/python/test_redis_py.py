"""redis-py against a running Tessera (TESSERA_PORT), RESP2 and RESP3."""
import os
import socket

import pytest
import redis

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def r(request):
    c = redis.Redis(host="127.0.0.1", port=PORT, protocol=request.param, decode_responses=True)
    c.flushall()
    yield c
    c.close()


def test_handshake_and_basic_strings(r):
    assert r.ping() is True
    assert r.set("name", "tessera") is True
    assert r.get("name") == "tessera"
    assert r.get("absent") is None
    assert r.set("name", "x", nx=True) is None
    assert r.set("name", "y", xx=True, get=True) == "tessera"
    assert r.incr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decr("n") == 10


def test_multi_key_commands_across_shards(r):
    mapping = {f"user:{i}": str(i) for i in range(300)}
    assert r.mset(mapping) is True
    assert r.mget(list(mapping)) == list(mapping.values())
    assert r.exists(*list(mapping)[:10]) == 10
    assert r.delete(*list(mapping)[:100]) == 100
    assert r.dbsize() == 200
    assert sorted(r.keys("user:2*")) == sorted(k for k in mapping if k.startswith("user:2") and int(k[5:]) >= 100)
    assert set(r.scan_iter(count=25)) == set(list(mapping)[100:])


def test_pipeline(r):
    with r.pipeline(transaction=False) as p:
        for i in range(1000):
            p.set(f"p{i}", i)
            p.get(f"p{i}")
        out = p.execute()
    assert out[1::2] == [str(i) for i in range(1000)]


def test_expiry(r):
    r.set("t", "v", px=1000)
    assert 0 < r.pttl("t") <= 1000


def test_client_info_and_setinfo(r):
    r.client_setname("py")
    assert r.client_getname() == "py"
    info = r.info()
    assert info["loading"] == 0
    assert "used_memory" in info
    assert r.client_id() > 0


def test_errors_are_redis_errors(r):
    r.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("s")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'get' command"):
        r.execute_command("GET")


def test_inline_command_over_raw_socket():
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(b"PING\r\n")
    assert s.recv(100) == b"+PONG\r\n"
    s.close()


def test_sets_across_shards(r):
    members = {f"m{i}" for i in range(300)}
    assert r.sadd("set:a", *members) == 300
    assert r.sadd("set:b", "m1", "m2", "x") == 3
    assert r.type("set:a") == "set"
    assert r.smembers("set:b") == {"m1", "m2", "x"}
    assert r.sinter("set:a", "set:b") == {"m1", "m2"}
    assert r.sunion("set:b", "nosuch") == {"m1", "m2", "x"}
    assert r.sdiffstore("set:c", "set:b", "set:a") == 1
    assert r.smembers("set:c") == {"x"}
    assert [bool(v) for v in r.smismember("set:b", ["m1", "zz"])] == [True, False]
    assert set(r.sscan_iter("set:a", count=7)) == members
    popped = r.spop("set:a", 100)
    assert len(set(popped)) == 100 and r.scard("set:a") == 200
    assert r.smove("set:b", "set:d", "x")
    assert r.smembers("set:d") == {"x"}
    assert set(r.scan_iter(_type="set")) == {"set:a", "set:b", "set:c", "set:d"}
    r.rpush("{u}ids", 2, 1, 3)
    r.mset({"{u}w_1": 3, "{u}w_2": 2, "{u}w_3": 1, "{u}n_1": "one"})
    assert r.sort("{u}ids", by="{u}w_*", get="{u}n_*") == [None, None, "one"]
    assert r.sort("{u}ids", desc=True, store="{u}out") == 3
    assert r.lrange("{u}out", 0, -1) == ["3", "2", "1"]
    # patterns over keys on other shards: gathered first
    r.rpush("xids", 2, 1, 3)
    r.mset({"xw_1": 3, "xw_2": 2, "xw_3": 1, "xn_1": "one"})
    r.hset("xo_2", "name", "two")
    got = r.sort("xids", by="xw_*", get=["#", "xn_*", "xo_*->name"])
    assert got == ["3", None, None, "2", None, "two", "1", "one", None]
    assert r.sort("xids", by="xw_*", get="xn_*", store="xout") == 3
    assert r.lrange("xout", 0, -1) == ["", "", "one"]


def test_big_integer_set_scan_and_pop(r):
    assert r.sadd("ints", *range(-500, 1500)) == 2000
    assert r.object("encoding", "ints") == "hashtable"
    assert set(int(m) for m in r.sscan_iter("ints", count=13)) == set(range(-500, 1500))
    assert r.sismember("ints", 1499) and not r.sismember("ints", "01499")
    assert len(set(r.srandmember("ints", 50))) == 50
    popped = r.spop("ints", 700)
    assert len(set(popped)) == 700 and r.scard("ints") == 1300
    assert r.sadd("ints", "x") == 1
    assert r.scard("ints") == 1301
