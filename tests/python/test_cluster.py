"""Cluster mode on one node, against Debian's redis-server 7.0 started with
`--cluster-enabled yes`: every CLUSTER subcommand's reply and error, the
redirect errors (-CLUSTERDOWN, -CROSSSLOT, -MOVED), SELECT, nodes.conf
(written by one server, read by the other, kept across a restart), and
cluster clients (redis-py's RedisCluster, `redis-cli --cluster check`)
against a Tessera node serving all slots from its 4 shards.

Replies are compared byte for byte after each server's own node id is
replaced by `<MYID>`. Each test starts its own servers on free ports in a
temporary directory and stops them."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import redis

from test_persistence import Server, tessera_bin
from test_persistence import free_port as any_free_port

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed")


def free_port():
    """A free port whose bus port (+10000) is valid, as cluster mode needs."""
    while True:
        p = any_free_port()
        if p <= 55535:
            return p


def start_tessera(dir, *args, port=None):
    port = port or free_port()
    argv = [tessera_bin(), "--port", str(port), "--shards", "4", "--dir", dir,
            "--cluster-enabled", "yes", *args]
    return Server(argv, port, dir)


def start_redis(dir, *args, port=None):
    port = port or free_port()
    argv = [REDIS, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", dir,
            "--cluster-enabled", "yes", *args]
    return Server(argv, port, dir)


class Raw:
    """One connection that sends commands and returns raw reply bytes."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _reply(self):
        line = self._line()
        t = line[:1]
        if t in b"$=!":
            n = int(line[1:-2])
            return line if n < 0 else line + self._exact(n + 2)
        if t in b"*~>":
            n = int(line[1:-2])
            return line + b"".join(self._reply() for _ in range(max(n, 0)))
        if t == b"%":
            n = int(line[1:-2])
            return line + b"".join(self._reply() for _ in range(2 * n))
        return line

    def cmd(self, *args):
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        msg = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self.s.sendall(msg)
        return self._reply()

    def close(self):
        self.s.close()


def myid(port):
    return redis.Redis(port=port).execute_command("CLUSTER", "MYID").decode()


def wait_state(port, want="ok", timeout=30):
    r = redis.Redis(port=port)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if f"cluster_state:{want}" in r.execute_command("CLUSTER", "INFO").decode():
            return
        time.sleep(0.05)
    raise AssertionError(f"cluster_state never became {want} on port {port}")


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="tessera-cluster-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def pair(tmp):
    """A fresh redis-server and a fresh Tessera, both in cluster mode."""
    a_dir, b_dir = os.path.join(tmp, "redis"), os.path.join(tmp, "tessera")
    os.makedirs(a_dir)
    os.makedirs(b_dir)
    a = start_redis(a_dir, "--cluster-node-timeout", "1000")
    try:
        b = start_tessera(b_dir, "--cluster-node-timeout", "1000")
    except Exception:
        a.close()
        raise
    yield a, b
    a.close()
    b.close()


def compare(a, b, script, resp3=False):
    """Runs `script` (lists of arguments; "{MYID}" stands for each server's
    own id) on both and returns the mismatches."""
    ids = {a.port: myid(a.port), b.port: myid(b.port)}
    conns = {a.port: Raw(a.port), b.port: Raw(b.port)}
    bad = []
    try:
        if resp3:
            for c in conns.values():
                c.cmd("HELLO", "3")
        for line in script:
            if line[0] == "#sleep":
                # Redis applies some changes at its next cron tick (100 ms).
                time.sleep(int(line[1]) / 1000)
                continue
            got = []
            for port, c in conns.items():
                args = [x.replace("{MYID}", ids[port]) for x in line]
                raw = c.cmd(*args)
                raw = raw.replace(ids[port].encode(), b"<MYID>")
                raw = raw.replace(b":%d@%d" % (port, port + 10000), b":<PORT>@<CPORT>")
                raw = raw.replace(b":%d\r\n" % port, b":<PORT>\r\n")
                got.append(raw)
            if got[0] != got[1]:
                bad.append((line, got[0], got[1]))
    finally:
        for c in conns.values():
            c.close()
    return bad


# Everything that does not need the cluster to be up, in order.
ADMIN_SCRIPT = [
    ["CLUSTER", "MYID"],
    ["CLUSTER", "NODES"],
    ["CLUSTER", "SLOTS"],
    ["CLUSTER", "SHARDS"],
    ["CLUSTER", "LINKS"],
    ["GET", "foo"],
    ["MGET", "foo", "bar"],
    ["PING"],
    ["CLUSTER", "ADDSLOTS", "16384"],
    ["CLUSTER", "ADDSLOTS", "-1"],
    ["CLUSTER", "ADDSLOTS", "x"],
    ["CLUSTER", "ADDSLOTS", "1", "1"],
    ["CLUSTER", "ADDSLOTS", "2", "3", "x"],
    ["CLUSTER", "ADDSLOTSRANGE", "5", "3"],
    ["CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"],
    ["CLUSTER", "ADDSLOTSRANGE", "1", "16384"],
    ["CLUSTER", "ADDSLOTSRANGE", "1", "5", "4", "8"],
    ["CLUSTER", "DELSLOTS", "7"],
    ["CLUSTER", "DELSLOTSRANGE", "7", "9"],
    ["CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "300"],
    ["CLUSTER", "ADDSLOTS", "150", "151", "16383"],
    ["CLUSTER", "ADDSLOTS", "100"],
    ["CLUSTER", "ADDSLOTS", "101", "102", "101"],
    ["CLUSTER", "NODES"],
    ["CLUSTER", "SLOTS"],
    ["CLUSTER", "SHARDS"],
    ["CLUSTER", "DELSLOTSRANGE", "0", "10", "20", "30"],
    ["CLUSTER", "DELSLOTS", "40", "40"],
    ["CLUSTER", "DELSLOTS", "150"],
    ["CLUSTER", "DELSLOTSRANGE", "90", "110"],
    ["CLUSTER", "NODES"],
    ["CLUSTER", "SLOTS"],
    ["CLUSTER", "KEYSLOT", "foo"],
    ["CLUSTER", "KEYSLOT", "{user1}.name"],
    ["CLUSTER", "KEYSLOT", ""],
    ["CLUSTER", "KEYSLOT", "{}x"],
    ["CLUSTER", "KEYSLOT", "a{b"],
    ["CLUSTER", "KEYSLOT"],
    ["CLUSTER", "COUNTKEYSINSLOT", "20000"],
    ["CLUSTER", "COUNTKEYSINSLOT", "-1"],
    ["CLUSTER", "COUNTKEYSINSLOT", "x"],
    ["CLUSTER", "COUNTKEYSINSLOT", "5"],
    ["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
    ["CLUSTER", "GETKEYSINSLOT", "x", "1"],
    ["CLUSTER", "GETKEYSINSLOT", "1", "x"],
    ["CLUSTER", "GETKEYSINSLOT", "16384", "1"],
    ["CLUSTER", "GETKEYSINSLOT", "5", "10"],
    ["CLUSTER", "SETSLOT", "1", "FOO"],
    ["CLUSTER", "SETSLOT", "1", "node"],
    ["CLUSTER", "SETSLOT", "x", "node", "a"],
    ["CLUSTER", "SETSLOT", "1", "NODE", "abc"],
    ["CLUSTER", "SETSLOT", "1", "MIGRATING", "abc"],
    ["CLUSTER", "SETSLOT", "5000", "MIGRATING", "{MYID}"],
    ["CLUSTER", "SETSLOT", "1", "IMPORTING", "abc"],
    ["CLUSTER", "SETSLOT", "5000", "IMPORTING", "abc"],
    ["CLUSTER", "SETSLOT", "1", "IMPORTING", "{MYID}"],
    ["CLUSTER", "SETSLOT", "1", "STABLE"],
    ["CLUSTER", "SETSLOT", "1", "STABLE", "x"],
    ["CLUSTER", "SETSLOT", "5000", "NODE", "{MYID}"],
    ["CLUSTER", "SETSLOT", "5000", "NODE", "{MYID}"],
    ["CLUSTER", "NODES"],
    ["CLUSTER", "SET-CONFIG-EPOCH", "-1"],
    ["CLUSTER", "SET-CONFIG-EPOCH", "x"],
    ["CLUSTER", "SET-CONFIG-EPOCH", "5"],
    ["CLUSTER", "SET-CONFIG-EPOCH", "6"],
    ["CLUSTER", "BUMPEPOCH"],
    ["CLUSTER", "NODES"],
    ["CLUSTER", "COUNT-FAILURE-REPORTS", "{MYID}"],
    ["CLUSTER", "COUNT-FAILURE-REPORTS", "x"],
    ["CLUSTER", "REPLICAS", "{MYID}"],
    ["CLUSTER", "REPLICAS", "x"],
    ["CLUSTER", "FORGET", "{MYID}"],
    ["CLUSTER", "FORGET", "x"],
    ["CLUSTER", "MEET", "1.2.3.4", "x"],
    ["CLUSTER", "MEET", "x", "5"],
    ["CLUSTER", "MEET", "1.2.3.4", "99999"],
    ["CLUSTER", "MEET", "1.2.3.4", "5", "x"],
    ["CLUSTER", "MEET", "1.2.3.4"],
    ["CLUSTER", "RESET", "foo"],
    ["CLUSTER", "RESET", "soft", "x"],
    ["CLUSTER", "SAVECONFIG"],
    ["CLUSTER", "FOO"],
    ["CLUSTER"],
    ["CLUSTER", "MYID", "x"],
    ["SELECT", "1"],
    ["SELECT", "x"],
    ["SELECT", "0"],
    ["READONLY"],
    ["READWRITE"],
    ["ASKING"],
    ["READONLY", "x"],
]


def test_admin_replies_match_redis(pair):
    a, b = pair
    bad = compare(a, b, ADMIN_SCRIPT)
    assert not bad, "\n".join(f"{l}: redis {x!r} tessera {y!r}" for l, x, y in bad)


def test_resp3_shapes_match_redis(pair):
    a, b = pair
    script = [
        ["CLUSTER", "ADDSLOTSRANGE", "0", "99", "1000", "1000"],
        ["CLUSTER", "NODES"],
        ["CLUSTER", "SLOTS"],
        ["CLUSTER", "SHARDS"],
        ["CLUSTER", "MYID"],
        ["CLUSTER", "LINKS"],
    ]
    bad = compare(a, b, script, resp3=True)
    assert not bad, "\n".join(f"{l}: redis {x!r} tessera {y!r}" for l, x, y in bad)


def test_redirects_and_cluster_down_match_redis(pair):
    a, b = pair
    for s in (a, b):
        s.r.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    for s in (a, b):
        wait_state(s.port, "ok")
    script = [
        ["CLUSTER", "INFO"],
        ["SET", "foo", "bar"],
        ["GET", "foo"],
        ["MSET", "a", "1", "b", "2"],
        ["MSET", "{t}a", "1", "{t}b", "2"],
        ["MGET", "{t}a", "{t}b", "{t}c"],
        ["DEL", "{t}a", "{t}b", "foo", "foo"],
        ["SET", "foo", "bar"],
        ["EXISTS", "foo", "foo"],
        ["MOVE", "foo", "1"],
        ["MOVE", "foo", "x"],
        ["SWAPDB", "0", "1"],
        ["SWAPDB", "x", "1"],
        ["COPY", "{t}a", "{t}b", "DB", "1"],
        ["COPY", "{t}a", "{t}b", "DB", "0"],
        ["COPY", "{t}a", "{t}b", "DB", "99"],
        ["COPY", "{t}a", "{t}b", "FOO"],
        ["COPY", "foo", "{t}b"],
        ["CLUSTER", "COUNTKEYSINSLOT", "12182"],
        ["CLUSTER", "GETKEYSINSLOT", "12182", "10"],
        ["CLUSTER", "GETKEYSINSLOT", "12182", "0"],
        ["CLUSTER", "FLUSHSLOTS"],
        ["CLUSTER", "RESET"],
        ["CLUSTER", "SETSLOT", "12182", "NODE", "{MYID}"],
        ["MULTI"],
        ["SET", "x", "1"],
        ["SET", "y", "1"],
        ["EXEC"],
        ["CLUSTER", "DELSLOTS", "12182"],
        ["GET", "foo"],
        ["GET", "a"],
        ["SET", "a", "1"],
        ["CLUSTER", "INFO"],
        ["CONFIG", "SET", "cluster-allow-reads-when-down", "yes"],
        ["GET", "a"],
        ["SET", "a", "1"],
        ["SPUBLISH", "a", "m"],
        ["CONFIG", "SET", "cluster-allow-pubsubshard-when-down", "no"],
        ["SPUBLISH", "a", "m"],
        ["CONFIG", "SET", "cluster-require-full-coverage", "no"],
        ["#sleep", "500"],
        ["CLUSTER", "INFO"],
        ["SET", "a", "1"],
        ["GET", "foo"],
        ["CLUSTER", "ADDSLOTS", "12182"],
        ["GET", "foo"],
        ["CLUSTER", "COUNTKEYSINSLOT", "12182"],
    ]
    bad = compare(a, b, script)
    assert not bad, "\n".join(f"{l}: redis {x!r} tessera {y!r}" for l, x, y in bad)


def two_node_conf(me, other, my_slots, other_slots, my_port, other_port=1):
    return (
        f"{other} 127.0.0.1:{other_port}@{other_port + 10000} master - 0 0 2 disconnected {other_slots}\n"
        f"{me} :{my_port}@{my_port + 10000} myself,master - 0 0 1 connected {my_slots}\n"
        "vars currentEpoch 2 lastVoteEpoch 0\n"
    )


def test_moved_to_a_node_loaded_from_nodes_conf(tmp):
    """A nodes.conf naming another node: both servers send clients there
    with the same -MOVED, and describe it alike."""
    me, other = "a" * 40, "b" * 40
    servers = []
    try:
        for name, start in (("redis", start_redis), ("tessera", start_tessera)):
            d = os.path.join(tmp, name)
            os.makedirs(d)
            port = free_port()
            with open(os.path.join(d, "nodes.conf"), "w") as f:
                f.write(two_node_conf(me, other, "0-8000", "8001-16383", port))
            servers.append(start(d, "--cluster-node-timeout", "600000", port=port))
        a, b = servers
        for s in servers:
            wait_state(s.port, "ok")
        script = [
            ["GET", "foo"],
            ["SET", "foo", "x"],
            ["GET", "a"],
            ["MGET", "{a}1", "{a}2"],
            ["SET", "bar", "1"],
            ["GET", "bar"],
            ["CLUSTER", "SLOTS"],
            ["CLUSTER", "REPLICAS", "b" * 40],
            ["CLUSTER", "SETSLOT", "100", "MIGRATING", "b" * 40],
            ["CLUSTER", "SETSLOT", "9000", "IMPORTING", "b" * 40],
            ["CLUSTER", "SETSLOT", "9000", "MIGRATING", "b" * 40],
            ["CLUSTER", "SET-CONFIG-EPOCH", "9"],
            ["CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname"],
            ["GET", "foo"],
            ["CLUSTER", "SLOTS"],
            ["CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint"],
            ["GET", "foo"],
            ["CLUSTER", "SLOTS"],
            ["CONFIG", "SET", "cluster-preferred-endpoint-type", "ip"],
            ["CLUSTER", "SETSLOT", "100", "STABLE"],
            ["CLUSTER", "SETSLOT", "9000", "STABLE"],
            ["CLUSTER", "FORGET", "b" * 40],
            ["GET", "foo"],
        ]
        bad = compare(a, b, script)
        assert not bad, "\n".join(f"{l}: redis {x!r} tessera {y!r}" for l, x, y in bad)
    finally:
        for s in servers:
            s.close()


def test_ask_tryagain_and_asking_match_redis(tmp):
    """Slots being moved (SETSLOT MIGRATING / IMPORTING, nodes from a
    nodes.conf): -ASK for keys already gone, -TRYAGAIN for split multi-key
    requests, ASKING for one command only, -MOVED otherwise."""
    me, other = "a" * 40, "b" * 40
    servers = []
    try:
        for name, start in (("redis", start_redis), ("tessera", start_tessera)):
            d = os.path.join(tmp, name)
            os.makedirs(d)
            port = free_port()
            with open(os.path.join(d, "nodes.conf"), "w") as f:
                f.write(two_node_conf(me, other, "0-8000", "8001-16383", port))
            servers.append(start(d, "--cluster-node-timeout", "600000", port=port))
        a, b = servers
        for s in servers:
            wait_state(s.port, "ok")
        # {a} hashes to slot 15495 (the other node's), {b} to 3300 (ours).
        script = [
            ["SET", "{b}1", "x"],
            ["CLUSTER", "SETSLOT", "3300", "MIGRATING", "b" * 40],
            ["GET", "{b}1"],
            ["GET", "{b}2"],
            ["MGET", "{b}1", "{b}2"],
            ["MGET", "{b}2", "{b}3"],
            ["MGET", "{b}1", "{b}1"],
            ["SET", "{b}2", "y"],
            ["DEL", "{b}1"],
            ["GET", "{b}1"],
            ["CLUSTER", "SETSLOT", "3300", "STABLE"],
            ["GET", "{b}1"],
            ["CLUSTER", "SETSLOT", "15495", "IMPORTING", "b" * 40],
            ["GET", "{a}1"],
            ["ASKING"],
            ["GET", "{a}1"],
            ["ASKING"],
            ["SET", "{a}1", "v"],
            ["ASKING"],
            ["PING"],
            ["GET", "{a}1"],
            ["ASKING"],
            ["MGET", "{a}1", "{a}2"],
            ["ASKING"],
            ["MGET", "{a}1", "{a}1"],
            ["CLUSTER", "COUNTKEYSINSLOT", "15495"],
            ["CLUSTER", "SETSLOT", "15495", "NODE", "{MYID}"],
            ["GET", "{a}1"],
            ["CLUSTER", "SLOTS"],
        ]
        bad = compare(a, b, script)
        assert not bad, "\n".join(f"{l}: redis {x!r} tessera {y!r}" for l, x, y in bad)
    finally:
        for s in servers:
            s.close()


def node_lines(text):
    """CLUSTER NODES lines without the ping/pong times (they differ)."""
    out = []
    for line in text.strip().splitlines():
        f = line.split()
        out.append(" ".join(f[:4] + f[6:]))
    return sorted(out)


def test_nodes_conf_survives_restart_and_is_read_by_redis(tmp):
    d = os.path.join(tmp, "t")
    os.makedirs(d)
    port = free_port()
    t = start_tessera(d, port=port)
    try:
        t.r.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "5460", "6000", "6000")
        t.r.execute_command("CLUSTER", "SET-CONFIG-EPOCH", "7")
        t.r.execute_command("CLUSTER", "SETSLOT", "10", "MIGRATING", myid(port))
        before_id = myid(port)
        before = t.r.execute_command("CLUSTER", "NODES").decode()
    finally:
        t.close()
    conf = open(os.path.join(d, "nodes.conf")).read()
    assert conf.startswith(before_id)
    assert conf.endswith("vars currentEpoch 7 lastVoteEpoch 0\n")
    assert not [f for f in os.listdir(d) if ".tmp-" in f]
    t = start_tessera(d, port=port)
    try:
        assert myid(port) == before_id
        assert node_lines(t.r.execute_command("CLUSTER", "NODES").decode()) == node_lines(before)
    finally:
        t.close()
    # redis-server reads the file Tessera wrote, as its own.
    rd = os.path.join(tmp, "r")
    os.makedirs(rd)
    shutil.copy(os.path.join(d, "nodes.conf"), os.path.join(rd, "nodes.conf"))
    r = start_redis(rd, port=port)
    try:
        assert myid(port) == before_id
        assert node_lines(r.r.execute_command("CLUSTER", "NODES").decode()) == node_lines(before)
    finally:
        r.close()


def test_corrupt_nodes_conf_stops_startup(tmp):
    with open(os.path.join(tmp, "nodes.conf"), "w") as f:
        f.write("not a node line\n")
    port = free_port()
    argv = [tessera_bin(), "--port", str(port), "--shards", "1", "--dir", tmp,
            "--cluster-enabled", "yes"]
    p = subprocess.run(argv, capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"corrupted cluster config file" in p.stdout + p.stderr


def test_select_and_info_in_cluster_mode(tmp):
    t = start_tessera(tmp)
    try:
        info = t.r.info()
        assert info["redis_mode"] == "cluster"
        assert info["cluster_enabled"] == 1
        assert t.r.execute_command("HELLO", "3")[b"mode"] == b"cluster"
    finally:
        t.close()


def test_cluster_commands_refused_when_cluster_mode_off(tmp):
    port = free_port()
    s = Server([tessera_bin(), "--port", str(port), "--shards", "2", "--dir", tmp], port, tmp)
    try:
        for cmd in (["CLUSTER", "INFO"], ["CLUSTER", "COUNTKEYSINSLOT", "1"], ["READONLY"],
                    ["ASKING"], ["CLUSTER", "GETKEYSINSLOT", "1", "1"]):
            with pytest.raises(redis.ResponseError, match="cluster support disabled"):
                s.r.execute_command(*cmd)
        assert s.r.info()["cluster_enabled"] == 0
        s.r.execute_command("SELECT", "1")
    finally:
        s.close()


def test_redis_py_cluster_client_and_redis_cli_check(tmp):
    """redis-py's RedisCluster against one node holding every slot across
    its 4 shards, and `redis-cli --cluster check`."""
    t = start_tessera(tmp)
    try:
        t.r.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        wait_state(t.port, "ok")
        rc = redis.RedisCluster(host="127.0.0.1", port=t.port, socket_timeout=20)
        try:
            for i in range(300):
                rc.set(f"key:{i}", i)
            assert [int(rc.get(f"key:{i}")) for i in range(300)] == list(range(300))
            assert rc.mget([f"{{tag}}{i}" for i in range(3)]) == [None, None, None]
            rc.mset({f"{{tag}}{i}": i for i in range(3)})
            assert rc.mget([f"{{tag}}{i}" for i in range(3)]) == [b"0", b"1", b"2"]
            assert rc.cluster_keyslot("key:1") == t.r.execute_command("CLUSTER", "KEYSLOT", "key:1")
            p = rc.pipeline()
            for i in range(50):
                p.incr(f"ctr:{i}")
            assert p.execute() == [1] * 50
            assert sum(rc.cluster_countkeysinslot(rc.keyslot(f"key:{i}")) for i in range(300)) >= 300
        finally:
            rc.close()
        out = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{t.port}"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "[OK] All 16384 slots covered." in out.stdout
        assert "[ERR]" not in out.stdout and "[WARNING]" not in out.stdout
    finally:
        t.close()
