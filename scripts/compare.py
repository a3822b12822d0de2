#!/usr/bin/env python3
"""Side by side: Tessera, redis-server and (when found) valkey-server.

Starts each server pinned to the same CPUs with persistence off, fills the
same keys into each (RSS per key), then runs the same workload list with
tessera-bench against each in interleaved repetitions (A B C A B C ...).
Reports medians of throughput and p99, ratios to Redis, the server's own CPU
time per request (utime + stime from /proc/PID/stat) and RSS per key, and
draws an SVG chart: throughput bars and latency percentile curves, one
colour per server. Python standard library only.

  cargo build --release -p tessera-server -p tessera-bench
  scripts/compare.py --reps 3 --requests 300000 --keys 200000
  scripts/compare.py --valkey /opt/valkey/bin/valkey-server --workloads "set -P 16,get -P 16"
"""
import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchutil import free_port, proc_cpu_seconds, proc_rss_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERCENTILES = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9), ("p9999", 99.99)]
COLOURS = {"tessera": "#d9480f", "redis": "#1c7ed6", "valkey": "#2f9e44"}


class Server:
    def __init__(self, name, cmd, port, tmp):
        self.name, self.port = name, port
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp)
        deadline = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"{name} exited at startup; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"{name} did not answer PING on port {port}")
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def start_servers(args, tmp):
    cpus = args.server_cpus
    shards = str(len(expand_cpus(cpus)))
    servers = []
    port = free_port()
    servers.append(Server("tessera", ["taskset", "-c", cpus, args.tessera, "--port", str(port), "--shards", shards,
                                      "--shard-cpus", cpus, "--irq-cores", "none", "--loglevel", "warning"], port, tmp))
    port = free_port()
    servers.append(Server("redis", ["taskset", "-c", cpus, args.redis, "--port", str(port), "--save", "",
                                    "--appendonly", "no", "--dir", tmp, "--loglevel", "warning"], port, tmp))
    valkey = args.valkey or shutil.which("valkey-server")
    if valkey:
        port = free_port()
        servers.append(Server("valkey", ["taskset", "-c", cpus, valkey, "--port", str(port), "--save", "",
                                         "--appendonly", "no", "--dir", tmp, "--loglevel", "warning"], port, tmp))
    else:
        print("valkey-server not found (PATH or --valkey): comparing Tessera and Redis only", file=sys.stderr)
    return servers


def expand_cpus(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def bench(args, server, extra, tmp):
    """Runs tessera-bench pinned to the client CPUs; returns its JSON."""
    out = os.path.join(tmp, "result.json")
    cmd = ["taskset", "-c", args.client_cpus, args.bench, "-p", str(server.port), "-c", str(args.clients),
           "-d", str(args.data_size), "--threads", str(len(expand_cpus(args.client_cpus))), "-q",
           "--json", out] + extra
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def fill(args, server, tmp):
    """Writes --keys keys once each; returns RSS per key in bytes."""
    before = proc_rss_bytes(server.proc.pid)
    bench(args, server, ["-t", "set", "-n", str(args.keys), "-r", str(args.keys), "--distribution", "sequential",
                         "-P", "64"], tmp)
    time.sleep(0.5)
    return (proc_rss_bytes(server.proc.pid) - before) / args.keys


def run_all(args, servers, tmp):
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    results = {s.name: {"rss_per_key": None, "workloads": {w: [] for w in workloads}} for s in servers}
    for s in servers:
        results[s.name]["rss_per_key"] = fill(args, s, tmp)
        print(f"{s.name}: {results[s.name]['rss_per_key']:.1f} B RSS per key", file=sys.stderr)
    for rep in range(args.reps):
        for w in workloads:
            for s in servers:  # interleaved: A B C A B C ...
                words = w.split()
                # "set -P 16" means -t set -P 16; a workload may also be any tessera-bench flags.
                if words and not words[0].startswith("-"):
                    words = ["-t"] + words
                extra = words + ["-n", str(args.requests), "-r", str(args.keys)]
                cpu0 = proc_cpu_seconds(s.proc.pid)
                j = bench(args, s, extra, tmp)
                cpu = proc_cpu_seconds(s.proc.pid) - cpu0
                run = {"rps": j["rps"], "cpu_us_per_req": cpu / max(j["requests"], 1) * 1e6,
                       "errors": j["error_count"], **{k: j["latency_us"][k] for k, _ in PERCENTILES}}
                results[s.name]["workloads"][w].append(run)
                print(f"rep {rep + 1} {w:>12} {s.name:>8}: {run['rps']:>11.0f} req/s  p99 {run['p99']:.0f} us  "
                      f"server CPU {run['cpu_us_per_req']:.2f} us/req", file=sys.stderr)
    return workloads, results


def medians(runs):
    keys = ["rps", "cpu_us_per_req", "errors"] + [k for k, _ in PERCENTILES]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def table(workloads, results):
    names = list(results)
    lines = ["| workload | server | req/s | vs redis | p99 (us) | server CPU/req (us) | CPU vs redis |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for w in workloads:
        base = medians(results["redis"]["workloads"][w])
        for n in names:
            m = medians(results[n]["workloads"][w])
            lines.append(f"| {w} | {n} | {m['rps']:,.0f} | {m['rps'] / base['rps']:.2f} | {m['p99']:.0f} | "
                         f"{m['cpu_us_per_req']:.2f} | {m['cpu_us_per_req'] / max(base['cpu_us_per_req'], 1e-9):.2f} |")
    base_rss = results["redis"]["rss_per_key"]
    for n in names:
        rss = results[n]["rss_per_key"]
        lines.append(f"| RSS per key | {n} | {rss:.1f} B | {rss / base_rss:.2f} | | | |")
    return "\n".join(lines)


# ---- the chart (hand-written SVG: no plotting library needed) ----

def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_max(v):
    if v <= 0:
        return 1
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * mag >= v:
            return step * mag
    return 10 * mag


def chart(workloads, results, title, subtitle):
    names = list(results)
    W, pad = 1100, 70
    bar_h = 360
    cols = min(len(workloads), 4)
    rows = (len(workloads) + cols - 1) // cols
    lat_w, lat_h = (W - pad) // cols, 260
    H = 80 + bar_h + 70 + rows * (lat_h + 40) + 20
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">{esc(title)}</text>',
         f'<text x="{W / 2}" y="42" text-anchor="middle" font-size="12" fill="#444">{esc(subtitle)}</text>']
    # Legend.
    lx = W - pad - 110 * len(names)
    for i, n in enumerate(names):
        o.append(f'<rect x="{lx + i * 110}" y="58" width="14" height="14" fill="{COLOURS.get(n, "#777")}"/>')
        o.append(f'<text x="{lx + i * 110 + 20}" y="70">{esc(n)}</text>')
    # Throughput bars.
    top, left, right = 90, pad, W - 30
    plot_h = bar_h - 40
    vmax = nice_max(max(medians(results[n]["workloads"][w])["rps"] for n in names for w in workloads))
    o.append(f'<text x="{left}" y="{top - 8}" font-weight="bold">Throughput (requests per second, median)</text>')
    for k in range(6):
        v = vmax * k / 5
        y = top + plot_h - plot_h * k / 5
        o.append(f'<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#ddd"/>')
        o.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{v / 1000:,.0f}k</text>')
    group = (right - left) / len(workloads)
    bw = group * 0.8 / len(names)
    for gi, w in enumerate(workloads):
        gx = left + gi * group + group * 0.1
        for ni, n in enumerate(names):
            v = medians(results[n]["workloads"][w])["rps"]
            h = plot_h * v / vmax
            x = gx + ni * bw
            o.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bw - 3:.1f}" height="{h:.1f}" '
                     f'fill="{COLOURS.get(n, "#777")}"><title>{esc(n)} {esc(w)}: {v:,.0f} req/s</title></rect>')
            o.append(f'<text x="{x + (bw - 3) / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" '
                     f'font-size="10">{v / 1000:,.0f}k</text>')
        o.append(f'<text x="{left + gi * group + group / 2}" y="{top + plot_h + 18}" text-anchor="middle">{esc(w)}</text>')
    o.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{right}" y2="{top + plot_h}" stroke="black"/>')
    # Latency percentile curves, one small plot per workload, log scale.
    y0 = top + bar_h + 40
    o.append(f'<text x="{left}" y="{y0 - 10}" font-weight="bold">Latency by percentile (microseconds, log scale, '
             f'median of repetitions)</text>')
    for gi, w in enumerate(workloads):
        cx = left + (gi % cols) * lat_w
        cy = y0 + (gi // cols) * (lat_h + 40)
        pw, ph = lat_w - 80, lat_h - 50
        vals = {n: [medians(results[n]["workloads"][w])[k] for k, _ in PERCENTILES] for n in names}
        lo = max(1.0, min(min(v) for v in vals.values()))
        hi = max(max(v) for v in vals.values())
        llo, lhi = math.floor(math.log10(lo)), math.ceil(math.log10(max(hi, lo * 10)))
        o.append(f'<text x="{cx + pw / 2}" y="{cy + 12}" text-anchor="middle" font-weight="bold">{esc(w)}</text>')
        py = cy + 20
        o.append(f'<rect x="{cx}" y="{py}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for e in range(llo, lhi + 1):
            y = py + ph - ph * (e - llo) / (lhi - llo)
            o.append(f'<line x1="{cx}" y1="{y}" x2="{cx + pw}" y2="{y}" stroke="#eee"/>')
            o.append(f'<text x="{cx - 4}" y="{y + 4}" text-anchor="end" font-size="10">{10 ** e:,}</text>')
        xs = [cx + pw * i / (len(PERCENTILES) - 1) for i in range(len(PERCENTILES))]
        for (label, _), x in zip(PERCENTILES, xs):
            nice = {"p50": "p50", "p90": "p90", "p99": "p99", "p999": "p99.9", "p9999": "p99.99"}[label]
            o.append(f'<text x="{x}" y="{py + ph + 14}" text-anchor="middle" font-size="10">{nice}</text>')
        for n in names:
            pts = []
            for x, v in zip(xs, vals[n]):
                y = py + ph - ph * (math.log10(max(v, lo)) - llo) / (lhi - llo)
                pts.append(f"{x:.1f},{y:.1f}")
            c = COLOURS.get(n, "#777")
            o.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{c}" stroke-width="2.5"/>')
            for p in pts:
                x, y = p.split(",")
                o.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>')
        o.append(f'<text x="{cx + pw / 2}" y="{py + ph + 28}" text-anchor="middle" font-size="10">percentile</text>')
    o.append("</svg>")
    return "\n".join(o)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="set -P 16,get -P 16,set -P 1,get -P 1",
                    help="comma-separated workloads: a test name and tessera-bench flags each")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--data-size", type=int, default=64)
    ap.add_argument("--server-cpus", default="1")
    ap.add_argument("--client-cpus", default="0")
    ap.add_argument("--tessera", default=os.path.join(ROOT, "target/release/tessera-server"))
    ap.add_argument("--redis", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--valkey", help="path to valkey-server (default: from PATH, skipped if absent)")
    ap.add_argument("--bench", default=os.path.join(ROOT, "target/release/tessera-bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    args = ap.parse_args()
    for path in (args.tessera, args.bench):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} not found: cargo build --release -p tessera-server -p tessera-bench")
    if not shutil.which("taskset"):
        sys.exit("taskset not found (util-linux)")
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp()
    servers = []
    try:
        servers = start_servers(args, tmp)
        workloads, results = run_all(args, servers, tmp)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    md = table(workloads, results)
    title = (f"servers on CPU {args.server_cpus}, tessera-bench on CPU {args.client_cpus}: -c {args.clients} "
             f"-d {args.data_size} -r {args.keys}, medians of {args.reps}")
    print(title)
    print(md)
    with open(os.path.join(args.out, "compare.md"), "w") as f:
        f.write(title + "\n\n" + md + "\n")
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    with open(os.path.join(args.out, "compare.svg"), "w") as f:
        f.write(chart(workloads, results, "Tessera vs Redis" + (" vs Valkey" if "valkey" in results else ""), title))
    print(f"wrote {args.out}/compare.svg, compare.md, compare.json", file=sys.stderr)


if __name__ == "__main__":
    main()
