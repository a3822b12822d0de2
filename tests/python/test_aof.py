"""The append-only file against Debian's redis-server 7.0: Tessera's
multi-part AOF passes redis-check-aof and loads in redis-server, and
redis-server's loads in Tessera; kill -9 under a write load loses no
acknowledged write with `appendfsync always` and only the last moments'
with `everysec`; a transaction spanning shards replays whole (or not at
all when the file was cut inside it); truncated and corrupt files give a
clear error, or load truncated with aof-load-truncated; BGREWRITEAOF
rewrites the base without fork. Each test starts its own servers in a
temporary directory (the suite's shared server is left alone)."""
import os
import subprocess
import threading
import time

import pytest
import redis

from test_persistence import (
    fill,
    free_port,
    redis_server,
    tessera,
    tessera_bin,
    tmp,  # noqa: F401 (the fixture)
    value,
)

AOF_DIR = "appendonlydir"


def contents(r, dbs=(0, 1, 5)):
    """Every key's type, value and absolute expiry (exact: the AOF logs
    absolute times)."""
    out = {}
    port = r.connection_pool.connection_kwargs["port"]
    for db in dbs:
        c = redis.Redis(host="127.0.0.1", port=port, db=db)
        for k in c.scan_iter(count=1000):
            out[(db, k)] = (value(c, k), c.execute_command("PEXPIRETIME", k))
    return out


def check_aof(d):
    manifest = os.path.join(d, AOF_DIR, "appendonly.aof.manifest")
    out = subprocess.run(["redis-check-aof", manifest], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All AOF files and manifest are valid" in out.stdout, out.stdout
    return out.stdout


def manifest(d):
    return open(os.path.join(d, AOF_DIR, "appendonly.aof.manifest")).read()


def incr_file(d):
    lines = [l.split() for l in manifest(d).splitlines()]
    name = [l[1] for l in lines if l[-1] == "i"][-1]
    return os.path.join(d, AOF_DIR, name)


def rewrite_ops(r):
    """Commands Redis logs in another form (absolute times, results)."""
    r.set("ex", "v", ex=3600)
    r.execute_command("SETEX", "setex", 3600, "v")
    r.set("pexp", "v")
    r.pexpire("pexp", 3_600_000)
    r.set("gone", "v")
    r.expireat("gone", 1)
    r.incrbyfloat("float", "1.25")
    r.incrbyfloat("float", "0.5")
    r.hincrbyfloat("hfloat", "f", "2.5")
    r.sadd("spop", *range(20))
    r.spop("spop", 5)
    r.rpush("bl", "a", "b", "c")
    r.blpop(["nothing", "bl"], 1)
    r.rpush("mp", *range(10))
    r.lmpop(1, "mp", direction="RIGHT", count=3)
    r.zadd("zp", {"a": 1, "b": 2, "c": 3})
    r.bzpopmin("zp", 1)
    r.set("getex", "v")
    r.getex("getex", px=3_600_000)
    r.set("getdel", "v")
    r.getdel("getdel")


def test_tessera_aof_is_valid_and_loads_in_redis_and_back(tmp):
    d, servers = tmp
    t = tessera(d, "--appendonly", "yes", "--appendfsync", "always")
    servers.append(t)
    fill(t.r)
    rewrite_ops(t.r)
    want = contents(t.r)
    assert t.r.info("persistence")["aof_enabled"] == 1
    t.close()  # kill -9: with always, everything acknowledged is on disk
    out = check_aof(d)
    assert "appendonly.aof.1.base.rdb" in out
    rd = redis_server(d, "--appendonly", "yes")
    servers.append(rd)
    assert contents(rd.r) == want
    rd.r.shutdown(nosave=True)
    rd.close()
    t2 = tessera(d, "--appendonly", "yes")
    servers.append(t2)
    assert contents(t2.r) == want


def test_redis_aof_loads_in_tessera(tmp):
    d, servers = tmp
    rd = redis_server(d, "--appendonly", "yes", "--appendfsync", "always")
    servers.append(rd)
    fill(rd.r)
    # A rewrite makes an RDB base; later writes go to the incr file.
    rd.r.bgrewriteaof()
    deadline = time.time() + 30
    while rd.r.info("persistence")["aof_rewrite_in_progress"] or rd.r.info("persistence")["aof_rewrite_scheduled"]:
        assert time.time() < deadline
        time.sleep(0.05)
    rewrite_ops(rd.r)
    rd.r.rpush("list:small:0", "tail")
    with rd.r.pipeline(transaction=True) as p:
        p.set("tx:a", 1)
        p.incr("tx:b")
        p.execute()
    want = contents(rd.r)
    rd.close()
    t = tessera(d, "--appendonly", "yes")
    servers.append(t)
    assert contents(t.r) == want
    t.r.set("after", "1")
    t.close()
    check_aof(d)


def key_slot(k):
    """Redis's hash slot: CRC16 (XMODEM) of the key, modulo 16384."""
    crc = 0
    for b in k.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % 16384


def keys_on_different_shards(r, n):
    """Keys whose slots fall in the ranges of four different shards (each
    shard owns a quarter of the slots)."""
    out, seen = [], set()
    i = 0
    while len(out) < n:
        k = f"k{i}"
        q = key_slot(k) * 4 // 16384
        if q not in seen:
            seen.add(q)
            out.append(k)
        i += 1
    return out


def test_cross_shard_transactions_replay_whole(tmp):
    d, servers = tmp
    t = tessera(d, "--appendonly", "yes", "--appendfsync", "always")
    servers.append(t)
    a, b, c, e = keys_on_different_shards(t.r, 4)
    for i in range(50):
        with t.r.pipeline(transaction=True) as p:
            p.incr(a)
            p.rpush(b, i)
            p.set(c, i)
            p.incrby(e, 2)
            p.execute()
        t.r.mset({a + "m": i, b + "m": i, c + "m": i})
    t.r.set("src", "moved")
    t.r.rename("src", e + "dst")
    t.r.sunionstore(a + "u", [b + "s1", c + "s2"])
    want = contents(t.r, dbs=(0,))
    t.close()
    data = open(incr_file(d), "rb").read()
    assert data.count(b"MULTI") >= 100, "cross-shard units are logged as MULTI/EXEC"
    check_aof(d)
    t2 = tessera(d, "--appendonly", "yes")
    servers.append(t2)
    assert contents(t2.r, dbs=(0,)) == want
    # A file cut inside the last transaction replays none of it.
    before = t2.r.get(a)
    with t2.r.pipeline(transaction=True) as p:
        p.incr(a)
        p.set(c, "last")
        p.execute()
    t2.close()
    path = incr_file(d)
    data = open(path, "rb").read()
    last_multi = data.rindex(b"*1\r\n$5\r\nMULTI\r\n")
    cut = last_multi + (len(data) - last_multi) // 2
    open(path, "wb").write(data[:cut])
    t3 = tessera(d, "--appendonly", "yes", "--aof-load-truncated", "yes")
    servers.append(t3)
    assert t3.r.get(a) == before
    assert t3.r.get(c) == b"49"
    assert os.path.getsize(path) == last_multi


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_aof_is_a_clear_error(tmp, damage):
    d, servers = tmp
    t = tessera(d, "--appendonly", "yes", "--appendfsync", "always")
    servers.append(t)
    for i in range(100):
        t.r.set(f"k{i}", i)
    t.close()
    path = incr_file(d)
    data = open(path, "rb").read()
    if damage == "truncate":
        data = data[:-7]
    else:
        data = data[:40] + b"garbage that is not RESP\r\n" + data[40:]
    open(path, "wb").write(data)
    port = free_port()
    log = os.path.join(d, "t.log")
    with open(log, "w") as f:
        p = subprocess.run(
            [tessera_bin(), "--port", str(port), "--shards", "2", "--dir", d,
             "--appendonly", "yes", "--aof-load-truncated", "no"],
            stdout=f, stderr=subprocess.STDOUT, timeout=60,
        )
    out = open(log).read()
    assert p.returncode == 1, out
    assert "panicked" not in out
    if damage == "truncate":
        assert "Unexpected end of file reading the append only file" in out, out
        t2 = tessera(d, "--appendonly", "yes", "--aof-load-truncated", "yes")
        servers.append(t2)
        assert t2.r.dbsize() == 99
        assert "short read while loading the AOF" in t2.output()
        check_aof(d)
    else:
        assert "Bad file format reading the append only file" in out, out


def write_load(r, stop, acked, name):
    """SETs of increasing numbers; records each acknowledged one with the
    time of its acknowledgement."""
    i = 0
    while not stop.is_set():
        try:
            r.set(f"{name}:{i}", i)
        except redis.exceptions.ConnectionError:
            return
        acked.append((i, time.time()))
        i += 1


def kill_under_load(d, servers, policy):
    t = tessera(d, "--appendonly", "yes", "--appendfsync", policy)
    servers.append(t)
    stop = threading.Event()
    acked = {n: [] for n in ("w0", "w1", "w2", "w3")}
    threads = [
        threading.Thread(
            target=write_load,
            args=(redis.Redis(host="127.0.0.1", port=t.port, socket_timeout=10), stop, acked[n], n),
        )
        for n in acked
    ]
    for th in threads:
        th.start()
    time.sleep(2)
    t.proc.kill()  # kill -9 mid-load
    killed_at = time.time()
    stop.set()
    for th in threads:
        th.join()
    t.proc.wait()
    t2 = tessera(d, "--appendonly", "yes")
    servers.append(t2)
    return t2, acked, killed_at


def test_kill9_with_always_loses_no_acknowledged_write(tmp):
    d, servers = tmp
    t2, acked, _ = kill_under_load(d, servers, "always")
    total = 0
    for name, done in acked.items():
        assert done, "the load ran"
        for i, _ in done:
            assert t2.r.get(f"{name}:{i}") == str(i).encode(), (name, i)
        total += len(done)
    assert total > 100
    check_aof(d)


def test_kill9_with_everysec_loses_at_most_the_last_moments(tmp):
    d, servers = tmp
    t2, acked, killed_at = kill_under_load(d, servers, "everysec")
    for name, done in acked.items():
        assert done
        lost = [(i, at) for i, at in done if t2.r.get(f"{name}:{i}") is None]
        # About a second; 3 s of slack on a loaded 2-vCPU machine.
        assert all(at > killed_at - 3 for _, at in lost), (name, lost[:3], killed_at)
        # A write is kept only with every write before it (one stream).
        if lost:
            first = lost[0][0]
            assert all(t2.r.get(f"{name}:{i}") is None for i, _ in done[first:])


def test_bgrewriteaof_and_info(tmp):
    d, servers = tmp
    t = tessera(d, "--appendonly", "yes", "--auto-aof-rewrite-percentage", "0")
    servers.append(t)
    fill(t.r)
    for i in range(100):
        t.r.incr("counter")
    info = t.r.info("persistence")
    assert info["aof_enabled"] == 1
    assert info["aof_current_size"] > info["aof_base_size"]
    assert t.r.bgrewriteaof() is True
    deadline = time.time() + 30
    while t.r.info("persistence")["aof_rewrite_in_progress"]:
        assert time.time() < deadline
        time.sleep(0.05)
    info = t.r.info("persistence")
    assert info["aof_rewrites"] == 1
    assert info["aof_last_bgrewrite_status"] == "ok"
    m = manifest(d)
    assert "appendonly.aof.2.base.rdb seq 2 type b" in m, m
    assert "appendonly.aof.1.incr.aof" not in m
    assert not os.path.exists(os.path.join(d, AOF_DIR, "appendonly.aof.1.base.rdb"))
    t.r.incr("counter")
    t.r.set("after", "rewrite")
    want = contents(t.r)
    t.r.shutdown(nosave=True)
    t.wait()
    check_aof(d)
    for srv in (lambda: tessera(d, "--appendonly", "yes"), lambda: redis_server(d, "--appendonly", "yes")):
        s = srv()
        servers.append(s)
        assert contents(s.r) == want
        assert s.r.get("counter") == b"101"
        s.close()


def test_config_set_appendonly_at_run_time(tmp):
    """As Redis: turning the AOF on rewrites the dataset into a base and
    logs from that instant; turning it off stops logging."""
    d, servers = tmp
    t = tessera(d)
    servers.append(t)
    fill(t.r)
    assert t.r.info("persistence")["aof_enabled"] == 0
    assert t.r.config_set("appendonly", "yes")
    deadline = time.time() + 30
    while not (t.r.info("persistence")["aof_enabled"] == 1 and t.r.info("persistence")["aof_rewrites"] == 1):
        assert time.time() < deadline
        time.sleep(0.05)
    t.r.set("logged", "yes")
    assert t.r.config_set("appendonly", "no")
    deadline = time.time() + 30
    while t.r.info("persistence")["aof_enabled"] != 0:
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    t.r.set("not-logged", "1")
    want = contents(t.r)
    del want[(0, b"not-logged")]
    t.close()
    check_aof(d)
    t2 = tessera(d, "--appendonly", "yes")
    servers.append(t2)
    assert contents(t2.r) == want


def test_expired_keys_are_logged_as_del(tmp):
    """redis-server does not expire keys while loading an AOF: a key that
    expired and was written again must not meet its old value there."""
    d, servers = tmp
    t = tessera(d, "--appendonly", "yes", "--appendfsync", "always", "--hz", "100")
    servers.append(t)
    t.r.set("lazy", "old", px=50)
    t.r.set("active", "old", px=50)
    for i in range(20):
        t.r.set(f"bulk:{i}", "old", px=50)
    time.sleep(0.6)  # the active cycle reclaims some; `lazy` is read first
    assert t.r.append("lazy", "new") == 3
    assert t.r.append("active", "new") == 3
    want = contents(t.r, dbs=(0,))
    assert want[(0, b"lazy")][0] == ("string", b"new")
    t.close()
    data = open(incr_file(d), "rb").read()
    assert b"*2\r\n$3\r\nDEL\r\n$4\r\nlazy\r\n" in data
    check_aof(d)
    rd = redis_server(d, "--appendonly", "yes")
    servers.append(rd)
    assert contents(rd.r, dbs=(0,)) == want


def test_debug_reload(tmp):
    """DEBUG RELOAD saves, empties and loads the dataset again; NOSAVE
    loads the file as it is; MERGE keeps keys the file lacks."""
    d, servers = tmp
    # DEBUG answers only with enable-debug-command, as in Redis 7.0.
    t = tessera(d, "--enable-debug-command", "yes")
    servers.append(t)
    fill(t.r)
    want = contents(t.r)
    assert t.r.execute_command("DEBUG", "RELOAD") == b"OK"
    assert contents(t.r) == want
    t.r.set("unsaved", "1")
    assert t.r.execute_command("DEBUG", "RELOAD", "NOSAVE") == b"OK"
    assert t.r.get("unsaved") is None
    assert contents(t.r) == want
    t.r.set("kept", "1")
    assert t.r.execute_command("DEBUG", "RELOAD", "NOSAVE", "MERGE") == b"OK"
    assert t.r.get("kept") == b"1"
    with pytest.raises(redis.exceptions.ResponseError, match="only supports the MERGE, NOFLUSH and NOSAVE"):
        t.r.execute_command("DEBUG", "RELOAD", "BOGUS")
    os.remove(os.path.join(d, "dump.rdb"))
    with pytest.raises(redis.exceptions.ResponseError, match="Error trying to load the RDB dump"):
        t.r.execute_command("DEBUG", "RELOAD", "NOSAVE")
