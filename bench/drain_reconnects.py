#!/usr/bin/python3
"""drain_reconnects.py: what a stopping node does to the node that survives it (issue 14).

Two wsrelay nodes behind Debian's haproxy (round robin, `option httpchk GET /healthz` every
200 ms, `fall 1`), and --clients WebSocket clients connected through haproxy, so half on each
node. The clients behave as the page does (www/cursors.js, chapter 10): when their connection
closes they wait a random part of a second, then connect again through haproxy; a refused
handshake (haproxy's or wsrelay's 503) backs off as the page does (0.5-1 s, 1-2 s, ...).
Then node A gets SIGTERM, and node B's wsrelay_room_joins_total is sampled every 100 ms:
the reconnects B sees per second. Once with --drain-time 0 (every client of A closed at
once) and once with --drain-time 5s (closed spread over 5 s while /healthz says 503), each
--repeat times; medians are reported: the peak reconnects in any one-second window, and the
time from the signal until B holds every client.

Everything on 127.0.0.1, ports the kernel says are free; the nodes and haproxy pinned to CPU
0, the clients (this process) to CPU 1; every process started is stopped by its PID. The
clients are one asyncio loop in this process: standard library only, the minimum of RFC 6455
a client needs (a masked close in answer to the server's). Writes --out (JSON) and prints a
Markdown table for docs/benchmarks.md. Usage:

    bench/drain_reconnects.py [--clients 1000] [--repeat 3] [--drain 5s] [--out FILE]
"""
import argparse
import asyncio
import base64
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSRELAY = os.path.join(ROOT, "wsrelay")
HOST = "127.0.0.1"
WS_OPEN = 'wsrelay_websockets_open{route="ws"}'
LIVE = []


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def spawn(argv, log, cpu="0"):
    p = subprocess.Popen(["taskset", "-c", cpu, *argv], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
    LIVE.append(p)
    return p


def stop(p, sig=signal.SIGTERM, grace=15.0):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    if p in LIVE:
        LIVE.remove(p)


def metric(port, name):
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
        m = re.search(rf"^{re.escape(name)} (\d+)$", r.read().decode(), re.M)
    return int(m.group(1)) if m else 0


def wait_for(check, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"drain_reconnects.py: {what} not within {timeout:g} s")


HAPROXY = """global
    maxconn 8000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend cursors
    bind {host}:{port}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    server a {host}:{pa} check inter 200ms fall 1 rise 2
    server b {host}:{pb} check inter 200ms fall 1 rise 2
"""


# ---- the clients: the page's reconnect policy, over asyncio streams -----------------------

class Clients:
    def __init__(self, port, n):
        self.port, self.n = port, n
        self.welcomed = 0  # connections that got their first frame (the welcome)
        self.failed = 0    # attempts refused or broken before a welcome (then backoff)
        self.stopping = False
        self.tasks = []

    async def session(self):
        """One connection: upgrade, welcome, then read until the server closes it."""
        r, w = await asyncio.open_connection(HOST, self.port)
        first = True
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            w.write((f"GET /ws HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            head = await r.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                return False
            while True:
                b0, b1 = await r.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(await r.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await r.readexactly(8), "big")
                await r.readexactly(n)
                if first:
                    self.welcomed += 1
                    first = False
                if b0 & 0x0F == 8:  # close: answer with an empty masked close (RFC 6455 §5.5.1)
                    w.write(b"\x88\x80" + os.urandom(4))
                    await w.drain()
                    self.welcomed -= 1
                    return True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if not first:  # welcomed, then dropped without a close frame
                self.welcomed -= 1
            return not first
        finally:
            w.close()

    async def person(self):
        step = 0
        while not self.stopping:
            try:
                ok = await self.session()
            except OSError:
                ok = False
            if self.stopping:
                return
            if ok:  # a drop after a welcome: the first try within a second (cursors.js)
                step = 0
                await asyncio.sleep(random.random())
            else:  # refused or failed: equal jitter, doubling from 1 s, capped at 10 s
                self.failed += 1
                base = min(10.0, 1.0 * 2 ** step)
                step += 1
                await asyncio.sleep(base / 2 + random.random() * base / 2)

    def start(self):
        self.tasks = [asyncio.ensure_future(self.person()) for _ in range(self.n)]

    async def stop(self):
        self.stopping = True
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def one_run(a, drain, work, rep):
    pa, pb, port = free_port(), free_port(), free_port()
    logs = []

    def node(p, label):
        log = open(os.path.join(work, f"{label}-{drain}-{rep}.log"), "wb")
        logs.append(log)
        return spawn([WSRELAY, "--host", HOST, "--port", str(p), "--quiet",
                      "--max-clients", str(2 * a.clients + 100), "--max-room-clients",
                      str(2 * a.clients), "--max-connect-rate", "0", "--drain-time", drain], log)

    na, nb = node(pa, "a"), node(pb, "b")
    for p in (pa, pb):
        wait_for(lambda p=p: metric(p, WS_OPEN) == 0, f"node on {p}", 10)
    cfg = os.path.join(work, f"haproxy-{drain}-{rep}.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY.format(host=HOST, port=port, pa=pa, pb=pb))
    hlog = open(cfg[:-4] + ".log", "wb")
    logs.append(hlog)
    hap = spawn(["haproxy", "-f", cfg, "-db"], hlog)
    wait_for(lambda: socket.create_connection((HOST, port), timeout=1).close() is None,
             "haproxy listening", 10)
    time.sleep(0.5)  # a first health check of both

    clients = Clients(port, a.clients)
    clients.start()
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 60
    while metric(pa, WS_OPEN) + metric(pb, WS_OPEN) \
            < a.clients:
        if time.monotonic() > deadline:
            sys.exit("drain_reconnects.py: the clients did not all connect within 60 s")
        await asyncio.sleep(0.1)
    on_a = metric(pa, WS_OPEN)
    await asyncio.sleep(1.0)

    joins0 = metric(pb, "wsrelay_room_joins_total")
    failed0 = clients.failed
    t0 = time.monotonic()
    na.send_signal(signal.SIGTERM)
    samples = [(0.0, 0)]
    all_on_b = None
    while time.monotonic() - t0 < 30:
        await asyncio.sleep(0.1)
        t = time.monotonic() - t0
        j = await loop.run_in_executor(None, metric, pb, "wsrelay_room_joins_total")
        samples.append((t, j - joins0))
        if all_on_b is None and await loop.run_in_executor(
                None, metric, pb, WS_OPEN) >= a.clients:
            all_on_b = t
        if all_on_b is not None and na.poll() is not None:
            break
    a_exit = na.wait(30)
    failed = clients.failed - failed0
    await clients.stop()
    # the peak over any one-second window of samples (100 ms apart)
    peak = 0
    for i, (ti, ji) in enumerate(samples):
        for tj, jj in samples[i:]:
            if tj - ti > 1.0 + 1e-6:
                break
            peak = max(peak, jj - ji)
    stop(hap)
    stop(nb)
    stop(na)
    for log in logs:
        log.close()
    return {"drain": drain, "repeat": rep, "clients": a.clients, "on_a": on_a,
            "peak_reconnects_per_s": peak, "all_on_b_s": all_on_b,
            "reconnected": samples[-1][1], "failed_attempts": failed, "a_exit": a_exit,
            "samples": samples}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--drain", default="5s", help="the --drain-time compared with 0")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench-drain.json"))
    a = ap.parse_args()
    for tool in ("haproxy", "taskset"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            sys.exit(f"drain_reconnects.py: {tool} is missing (scripts/bench-deps.sh)")
    os.sched_setaffinity(0, {1})
    work = tempfile.mkdtemp(prefix="wsrelay-drain-")
    runs = []
    try:
        for rep in range(a.repeat):
            for drain in ("0", a.drain):  # by turns, so a busy moment hurts both alike
                r = asyncio.run(one_run(a, drain, work, rep))
                print(f"drain {drain:>4}: peak {r['peak_reconnects_per_s']} reconnects/s on B, "
                      f"all on B after {r['all_on_b_s']} s, {r['failed_attempts']} failed "
                      f"attempts, A exited {r['a_exit']}",
                      flush=True)
                runs.append(r)
    finally:
        for p in list(LIVE):
            stop(p, signal.SIGKILL)
    summary = {}
    for drain in ("0", a.drain):
        rs = [r for r in runs if r["drain"] == drain]
        done = [r["all_on_b_s"] for r in rs if r["all_on_b_s"] is not None]
        summary[drain] = {
            "peak_reconnects_per_s": statistics.median(r["peak_reconnects_per_s"] for r in rs),
            "all_on_b_s": statistics.median(done) if done else None,
            "on_a": statistics.median(r["on_a"] for r in rs),
            "failed_attempts": statistics.median(r["failed_attempts"] for r in rs),
        }
    out = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "clients": a.clients, "repeat": a.repeat,
           "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True,
                                     text=True).stdout.split("\n")[0],
           "summary": summary, "runs": runs}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("\n| `--drain-time` | clients on the stopped node | peak reconnects/s on the "
          "survivor | failed attempts | all on the survivor after |\n|---|---:|---:|---:|---:|")
    for drain, s in summary.items():
        done = f"{s['all_on_b_s']:.1f} s" if s["all_on_b_s"] is not None else "—"
        print(f"| `{drain}` | {s['on_a']:.0f} | {s['peak_reconnects_per_s']:.0f} | "
              f"{s['failed_attempts']:.0f} | {done} |")
    print(f"\n(medians of {a.repeat}; {a.out})")


if __name__ == "__main__":
    main()
