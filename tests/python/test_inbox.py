"""Events that reach a connection besides its own replies (its inbox):
CLIENT KILL from another connection (on any shard) and the idle timeout
close it at once, while it waits for its socket."""
import os
import socket
import time

import redis

PORT = int(os.environ.get("TESSERA_PORT", "6379"))


def raw():
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(5)
    return s


def client_id(s):
    s.sendall(b"CLIENT ID\r\n")
    return int(s.recv(100)[1:].strip())


def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(100) == b""
    except (socket.timeout, ConnectionResetError):
        return False


def test_client_kill_closes_other_connections_on_every_shard():
    # Enough connections that SO_REUSEPORT puts some on every shard.
    victims = [raw() for _ in range(16)]
    ids = [client_id(v) for v in victims]
    killer = redis.Redis(host="127.0.0.1", port=PORT)
    for i in ids:
        assert killer.client_kill_filter(_id=i) == 1
    for v in victims:
        assert closed_within(v, 2)
    assert killer.ping()


def test_idle_timeout_closes_idle_connections():
    r = redis.Redis(host="127.0.0.1", port=PORT)
    r.config_set("timeout", 1)
    try:
        idle = raw()
        client_id(idle)
        t0 = time.time()
        assert closed_within(idle, 5)
        assert time.time() - t0 < 4
    finally:
        r.config_set("timeout", 0)
