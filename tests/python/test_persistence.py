"""RDB persistence against Debian's redis-server 7.0: files written by one
load in the other with every key, type, encoding and expiry; DUMP/RESTORE
payloads cross both ways; BGSAVE under a write load is one point in time;
restart, SIGTERM, SHUTDOWN SAVE|NOSAVE, save points, FLUSHALL, MISCONF and
corrupt files. Each test starts its own servers on free ports in a
temporary directory and stops them (the suite's shared server is left
alone)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tessera_bin():
    if os.environ.get("TESSERA_BIN"):
        return os.environ["TESSERA_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "tessera-server")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """A server process on a free port, in `dir`; killed on close."""

    def __init__(self, argv, port, dir):
        self.port = port
        self.dir = dir
        self.log = open(os.path.join(dir, f"server-{port}.log"), "w+")
        self.proc = subprocess.Popen(argv, cwd=dir, stdout=self.log, stderr=subprocess.STDOUT)
        self.r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
        deadline = time.time() + 20
        while True:
            try:
                if self.r.ping():
                    break
            except redis.exceptions.ConnectionError:
                pass
            except redis.exceptions.BusyLoadingError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            if time.time() > deadline:
                raise RuntimeError(f"server did not start: {self.output()}")
            time.sleep(0.05)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def tessera(dir, *args, shards=4):
    port = free_port()
    argv = [tessera_bin(), "--port", str(port), "--shards", str(shards), "--dir", dir, *args]
    return Server(argv, port, dir)


def redis_server(dir, *args):
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", dir, *args]
    return Server(argv, port, dir)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="tessera-persist-")
    servers = []
    yield d, servers
    for s in servers:
        s.close()
    shutil.rmtree(d, ignore_errors=True)


def fill(r):
    """Keys of every type and encoding, in three databases, some volatile."""
    far = int(time.time() * 1000) + 3_600_000
    for db in (0, 1, 5):
        c = redis.Redis(host="127.0.0.1", port=r.connection_pool.connection_kwargs["port"], db=db)
        p = c.pipeline(transaction=False)
        p.set(f"int:{db}", 12345)
        p.set(f"neg:{db}", -7)
        p.set(f"bigint:{db}", 2**40)
        p.set(f"str:{db}", "hello")
        p.set(f"bin:{db}", bytes(range(256)))
        p.set(f"lzf:{db}", "abcdefgh" * 2000)
        p.set(f"empty:{db}", "")
        p.set(f"ttl:{db}", "v", px=3_600_000)
        p.rpush(f"list:small:{db}", "a", "b", "1", "-300", "70000", "x" * 100)
        p.rpush(f"list:big:{db}", *[f"item:{i}" for i in range(20000)])
        p.hset(f"hash:small:{db}", mapping={"f1": "v1", "n": "42", "neg": "-1"})
        p.hset(f"hash:big:{db}", mapping={f"f{i}": f"v{i}" * 3 for i in range(2000)})
        p.hset(f"hash:longval:{db}", mapping={"f": "y" * 300})
        p.sadd(f"set:int:{db}", *range(-50, 50))
        p.sadd(f"set:bigint:{db}", *range(0, 3000, 3))
        p.sadd(f"set:small:{db}", "a", "b", "c")
        p.sadd(f"set:big:{db}", *[f"m{i}" for i in range(1000)])
        p.zadd(f"zset:small:{db}", {"a": 1, "b": 2.5, "c": -3, "inf": float("inf"), "ninf": float("-inf")})
        p.zadd(f"zset:big:{db}", {f"m{i}": i * 0.25 - 100 for i in range(1000)})
        p.zadd(f"zset:longmember:{db}", {"z" * 100: 1e300})
        p.pexpireat(f"list:small:{db}", far)
        p.pexpireat(f"zset:big:{db}", far)
        p.execute()


def value(c, k):
    t = c.type(k).decode()
    if t == "string":
        v = c.get(k)
    elif t == "list":
        v = c.lrange(k, 0, -1)
    elif t == "hash":
        v = sorted(c.hgetall(k).items())
    elif t == "set":
        v = sorted(c.smembers(k))
    elif t == "zset":
        v = c.zrange(k, 0, -1, withscores=True)
    else:
        raise AssertionError(f"type {t}")
    return t, v


def contents(r, dbs=(0, 1, 5)):
    out = {}
    port = r.connection_pool.connection_kwargs["port"]
    for db in dbs:
        c = redis.Redis(host="127.0.0.1", port=port, db=db)
        for k in c.scan_iter(count=1000):
            pttl = c.pttl(k)
            out[(db, k)] = (value(c, k), -1 if pttl < 0 else round(pttl / 10000))
    return out


def encodings(r, dbs=(0, 1, 5)):
    port = r.connection_pool.connection_kwargs["port"]
    out = {}
    for db in dbs:
        c = redis.Redis(host="127.0.0.1", port=port, db=db)
        for k in c.scan_iter(count=1000):
            out[(db, k)] = c.object("encoding", k)
    return out


def check_rdb(path):
    out = subprocess.run(["redis-check-rdb", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "RDB looks OK" in out.stdout, out.stdout
    return out.stdout


def test_tessera_file_loads_in_redis(tmp):
    d, servers = tmp
    t = tessera(d)
    servers.append(t)
    fill(t.r)
    want = contents(t.r)
    want_enc = encodings(t.r)
    assert t.r.save()
    report = check_rdb(os.path.join(d, "dump.rdb"))
    assert f"{len(want)} keys read" in report
    t.close()
    rd = redis_server(d)
    servers.append(rd)
    assert contents(rd.r) == want
    assert encodings(rd.r) == want_enc


def test_redis_file_loads_in_tessera(tmp):
    d, servers = tmp
    rd = redis_server(d)
    servers.append(rd)
    fill(rd.r)
    want = contents(rd.r)
    want_enc = encodings(rd.r)
    assert rd.r.save()
    rd.close()
    t = tessera(d)
    servers.append(t)
    assert contents(t.r) == want
    assert encodings(t.r) == want_enc
    info = t.r.info("persistence")
    assert info["rdb_last_load_keys_loaded"] == len(want)
    assert "keys loaded" in t.output()


def test_dump_restore_both_ways(tmp):
    d, servers = tmp
    t = tessera(d)
    rd = redis_server(d)
    servers += [t, rd]
    fill(rd.r)
    for k in rd.r.keys():
        payload = rd.r.dump(k)
        assert t.r.restore(k, 0, payload, replace=True)
        assert value(t.r, k) == value(rd.r, k), k
        assert t.r.object("encoding", k) == rd.r.object("encoding", k), k
        back = t.r.dump(k)
        assert rd.r.restore(k + b"@back", 0, back)
        assert value(rd.r, k + b"@back") == value(rd.r, k), k
        assert rd.r.object("encoding", k + b"@back") == rd.r.object("encoding", k), k
    # Redis 7.0's errors, in its order of checks.
    p = rd.r.dump("str:0")
    for c in (t.r, rd.r):
        with pytest.raises(redis.ResponseError, match="^BUSYKEY Target key name already exists.$"):
            c.restore("str:0", 0, p)
        with pytest.raises(redis.ResponseError, match="^Invalid TTL value, must be >= 0$"):
            c.restore("new", -1, p)
        with pytest.raises(redis.ResponseError, match="^DUMP payload version or checksum are wrong$"):
            c.restore("new", 0, p[:-1] + bytes([p[-1] ^ 1]))
        with pytest.raises(redis.ResponseError, match="^DUMP payload version or checksum are wrong$"):
            c.restore("new", 0, b"short")
        with pytest.raises(redis.ResponseError, match="^syntax error$"):
            c.execute_command("RESTORE", "new", 0, p, "BOGUS")
        with pytest.raises(redis.ResponseError, match="^Invalid IDLETIME value, must be >= 0$"):
            c.execute_command("RESTORE", "new", 0, p, "IDLETIME", -1)
        with pytest.raises(redis.ResponseError, match="^Invalid FREQ value, must be >= 0 and <= 255$"):
            c.execute_command("RESTORE", "new", 0, p, "FREQ", 256)
        # ABSTTL in the past: nothing is created, OK is answered.
        assert c.execute_command("RESTORE", "past", 1000, p, "ABSTTL") == b"OK"
        assert c.exists("past") == 0
        assert c.execute_command("RESTORE", "fut", 100000, p) == b"OK"
        assert 90000 < c.pttl("fut") <= 100000
        assert c.dump("missing") is None


def sequential_writer(port, keys, stop, rounds):
    c = redis.Redis(host="127.0.0.1", port=port)
    r = 0
    while not stop.is_set():
        r += 1
        for k in keys:
            c.set(k, r)
        rounds[0] = r


def noise_writer(port, stop):
    c = redis.Redis(host="127.0.0.1", port=port)
    i = 0
    while not stop.is_set():
        p = c.pipeline(transaction=False)
        for j in range(50):
            p.set(f"noise:{(i * 50 + j) % 5000}", i)
            p.lpush("noise:list", i)
            p.ltrim("noise:list", 0, 99)
            p.delete(f"noise:{(i * 7 + j) % 5000}")
        p.execute()
        i += 1


def test_bgsave_under_writes_is_one_point_in_time(tmp):
    d, servers = tmp
    t = tessera(d)
    servers.append(t)
    n = 3000
    keys = [f"seq:{i}" for i in range(n)]
    p = t.r.pipeline(transaction=False)
    for k in keys:
        p.set(k, 0)
    for i in range(100000):
        p.set(f"filler:{i}", "x" * 20)
    p.execute()
    stop = threading.Event()
    rounds = [0]
    threads = [
        threading.Thread(target=sequential_writer, args=(t.port, keys, stop, rounds)),
        threading.Thread(target=noise_writer, args=(t.port, stop)),
    ]
    for th in threads:
        th.start()
    try:
        while rounds[0] < 1:
            time.sleep(0.05)
        time.sleep(0.3)
        assert t.r.bgsave() in (True, b"Background saving started")
        deadline = time.time() + 60
        while t.r.info("persistence")["rdb_bgsave_in_progress"]:
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert t.r.info("persistence")["rdb_last_bgsave_status"] == "ok"
    check_rdb(os.path.join(d, "dump.rdb"))
    t.close()
    rd = redis_server(d)
    servers.append(rd)
    vals = [int(v) for v in rd.r.mget(keys)]
    # The sequential writer sets seq:0..seq:n-1 to round R, then to R+1...
    # One instant sees R on a prefix and R-1 after it: exactly one step.
    top = vals[0]
    boundary = next((i for i, v in enumerate(vals) if v != top), n)
    assert all(v == top for v in vals[:boundary])
    assert all(v == top - 1 for v in vals[boundary:]), vals
    assert rd.r.dbsize() >= 100000 + n


def test_restart_sigterm_and_save_points(tmp):
    d, servers = tmp
    t = tessera(d, "--save", "1", "1")
    servers.append(t)
    assert t.r.config_get("save") == {"save": "1 1"}
    t.r.set("a", "1")
    t.r.rpush("l", *range(10))
    last = t.r.lastsave()
    deadline = time.time() + 10
    # The save point (1 change in 1 second) saves by itself.
    while t.r.lastsave() == last or t.r.info("persistence")["rdb_changes_since_last_save"]:
        assert time.time() < deadline
        time.sleep(0.1)
    assert os.path.exists(os.path.join(d, "dump.rdb"))
    t.r.set("b", "2")
    t.proc.send_signal(signal.SIGTERM)
    assert t.wait() == 0
    assert "Saving the final RDB snapshot" in t.output()
    t2 = tessera(d)
    servers.append(t2)
    assert t2.r.get("a") == b"1" and t2.r.get("b") == b"2"
    assert t2.r.lrange("l", 0, -1) == [str(i).encode() for i in range(10)]


def test_shutdown_save_and_nosave(tmp):
    d, servers = tmp
    path = os.path.join(d, "dump.rdb")
    t = tessera(d, "--save", "3600", "1")
    servers.append(t)
    t.r.set("k", "v")
    try:
        t.r.execute_command("SHUTDOWN", "NOSAVE")
    except redis.exceptions.ConnectionError:
        pass
    assert t.wait() == 0
    assert not os.path.exists(path)
    t = tessera(d)
    servers.append(t)
    t.r.set("k", "v2")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        t.r.execute_command("SHUTDOWN", "SAVE", "NOSAVE")
    try:
        t.r.execute_command("SHUTDOWN", "SAVE")
    except redis.exceptions.ConnectionError:
        pass
    assert t.wait() == 0
    assert os.path.exists(path)
    t = tessera(d)
    servers.append(t)
    assert t.r.get("k") == b"v2"


def test_commands_and_info(tmp):
    d, servers = tmp
    t = tessera(d, "--dbfilename", "other.rdb", "--rdbcompression", "no", "--rdbchecksum", "no")
    servers.append(t)
    t.r.set("x", "y" * 1000)
    info = t.r.info("persistence")
    assert info["rdb_changes_since_last_save"] == 1
    assert info["rdb_bgsave_in_progress"] == 0
    assert info["rdb_last_bgsave_status"] == "ok"
    assert isinstance(t.r.lastsave(), type(t.r.lastsave()))
    assert t.r.save()
    assert t.r.info("persistence")["rdb_changes_since_last_save"] == 0
    assert t.r.info("persistence")["rdb_saves"] == 1
    data = open(os.path.join(d, "other.rdb"), "rb").read()
    assert data.startswith(b"REDIS0010")
    assert data[-8:] == b"\0" * 8, "rdbchecksum no writes a zero checksum"
    assert b"y" * 1000 in data, "rdbcompression no stores strings raw"
    check_rdb(os.path.join(d, "other.rdb"))
    with pytest.raises(redis.ResponseError, match="syntax error"):
        t.r.execute_command("BGSAVE", "NOW")
    t.r.execute_command("BGSAVE")
    r2 = t.r.execute_command("BGSAVE", "SCHEDULE")
    assert r2 in (True, b"Background saving scheduled", b"Background saving started")
    deadline = time.time() + 20
    while t.r.info("persistence")["rdb_bgsave_in_progress"] or t.r.info("persistence")["rdb_saves"] < 3:
        assert time.time() < deadline
        time.sleep(0.05)
    # FLUSHALL: the keys removed plus one, as Redis counts.
    for i in range(10):
        t.r.set(f"f{i}", i)
    before = t.r.info("persistence")["rdb_changes_since_last_save"]
    t.r.flushall()
    assert t.r.info("persistence")["rdb_changes_since_last_save"] == before + 11 + 1


def test_failed_save_blocks_writes_when_configured(tmp):
    d, servers = tmp
    sub = os.path.join(d, "gone")
    os.mkdir(sub)
    t = tessera(sub, "--save", "3600", "1", "--enable-protected-configs", "yes")
    servers.append(t)
    t.r.set("a", 1)
    shutil.rmtree(sub)
    with pytest.raises(redis.ResponseError):
        t.r.save()
    time.sleep(0.5)
    assert t.r.info("persistence")["rdb_last_bgsave_status"] == "err"
    with pytest.raises(redis.ResponseError, match="^MISCONF "):
        t.r.set("b", 2)
    assert t.r.get("a") == b"1"
    t.r.config_set("stop-writes-on-bgsave-error", "no")
    time.sleep(0.5)
    assert t.r.set("b", 2)
    # The working directory was removed: point `dir` at a new one.
    new = os.path.join(d, "new")
    os.mkdir(new)
    t.r.config_set("dir", new)
    t.r.config_set("stop-writes-on-bgsave-error", "yes")
    assert t.r.save()
    assert t.r.info("persistence")["rdb_last_bgsave_status"] == "ok"


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "version"])
def test_corrupt_file_stops_startup_cleanly(tmp, damage):
    d, servers = tmp
    rd = redis_server(d)
    servers.append(rd)
    fill(rd.r)
    rd.r.save()
    rd.close()
    path = os.path.join(d, "dump.rdb")
    data = bytearray(open(path, "rb").read())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"this is not an rdb file at all")
    else:
        data[5:9] = b"0099"
    open(path, "wb").write(bytes(data))
    port = free_port()
    log = os.path.join(d, "t.log")
    with open(log, "w") as f:
        p = subprocess.run(
            [tessera_bin(), "--port", str(port), "--shards", "2", "--dir", d],
            stdout=f, stderr=subprocess.STDOUT, timeout=60,
        )
    out = open(log).read()
    assert p.returncode == 1, out
    assert "loading the DB" in out, out
    assert "panicked" not in out


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu"])
def test_idle_and_freq_opcodes_load(tmp, policy):
    """Under an LRU policy redis-server writes IDLE before each key, under
    LFU a FREQ byte; Tessera reads both (IDLE sets the LRU clock)."""
    d, servers = tmp
    rd = redis_server(d, "--maxmemory-policy", policy)
    servers.append(rd)
    rd.r.set("src", "v")
    p = rd.r.dump("src")
    if policy == "allkeys-lru":
        rd.r.execute_command("RESTORE", "k", 0, p, "IDLETIME", 5000)
    else:
        rd.r.execute_command("RESTORE", "k", 0, p, "FREQ", 100)
    rd.r.save()
    rd.close()
    with open(os.path.join(d, "dump.rdb"), "rb") as f:
        data = f.read()
    assert bytes([0xF8 if policy == "allkeys-lru" else 0xF9]) in data
    t = tessera(d)
    servers.append(t)
    if policy == "allkeys-lru":
        # Before any read: a read refreshes the clock.
        assert 4990 <= t.r.object("idletime", "k") <= 5100
    assert t.r.get("k") == b"v"
