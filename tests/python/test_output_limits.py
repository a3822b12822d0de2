"""client-output-buffer-limit holds whatever shard owns the keys: a client
that pipelines GETs of a big value without reading is closed near the
limit, and the server's memory never holds much more than the limit for
it, also when the replies come from another shard."""
import os
import socket
import threading
import time

import redis
from keyslots import quarter, slot

PORT = int(os.environ.get("TESSERA_PORT", "6379"))
MB = 1024 * 1024


def keys_on_every_quarter():
    out, i = {}, 0
    while len(out) < 4:
        k = f"big:{i}"
        out.setdefault(quarter(k), k)
        i += 1
    return list(out.values())


def test_output_limit_holds_for_replies_from_any_shard():
    r = redis.Redis(host="127.0.0.1", port=PORT)
    old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    r.config_set("client-output-buffer-limit", "normal 16mb 8mb 10")
    keys = keys_on_every_quarter()
    try:
        for k in keys:
            r.set(k, b"x" * MB)
        base = int(r.info("memory")["used_memory"])
        peak = [base]
        stop = threading.Event()

        def sample():
            b = redis.Redis(host="127.0.0.1", port=PORT)
            while not stop.is_set():
                peak[0] = max(peak[0], int(b.info("memory")["used_memory"]))
                time.sleep(0.01)

        t = threading.Thread(target=sample)
        t.start()
        received = []
        try:
            for k in keys:
                # Several connections each, so some sit on shards that do
                # not own the key.
                for _ in range(3):
                    s = socket.create_connection(("127.0.0.1", PORT))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                    req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k.encode())
                    s.settimeout(10)
                    try:
                        s.sendall(req * 200)  # 200 MB of replies, unread
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    time.sleep(0.3)
                    n = 0
                    try:
                        while True:
                            b = s.recv(1 << 20)
                            if not b:
                                break
                            n += len(b)
                    except (ConnectionResetError, socket.timeout):
                        pass
                    received.append(n)
                    s.close()
        finally:
            stop.set()
            t.join()
        # Every such client was closed near the limit (what reached it is
        # what was written before, plus kernel buffers).
        assert all(n < 16 * MB + 8 * MB for n in received), received
        # The server never held much more than the limit for it: before
        # replies from other shards were counted, a batch of 200 replies
        # (200 MB) was built whole first.
        assert peak[0] - base < 100 * MB, (peak[0] - base) / MB
        assert r.ping()
    finally:
        r.config_set("client-output-buffer-limit", old)
        r.delete(*keys)
