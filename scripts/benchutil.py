"""Helpers shared by the benchmark scripts: free ports, pinned servers,
and a process's CPU time and RSS from /proc."""
import os
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def key_slot(key):
    """Redis Cluster's slot of a key without a hash tag: CRC16 (XMODEM)
    mod 16384."""
    crc = 0
    for b in key.encode():
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % 16384


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu_split(pid):
    """(utime, stime) of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    return sum(proc_cpu_split(pid))


def proc_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def wait_ready(port, timeout=20):
    """Waits until a server answers PING on `port`."""
    end = time.time() + timeout
    while time.time() < end:
        r = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


class Server:
    """A server process pinned with taskset to `cpus` (a CPU list)."""

    def __init__(self, name, argv, port, cpus):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(["taskset", "-c", str(cpus)] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(port)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
