#!/usr/bin/python3
"""room_cost.py: what a room costs in server memory (issue 11), measured, not computed.

Starts wsrelay, opens N WebSocket clients all in one room and reads the server's RSS, then
N clients in N rooms of one, and again in N/2 rooms of two. The difference, divided by the
rooms, is what a room costs beyond its members. Median of --runs runs. Usage:

    bench/room_cost.py [--clients 5000] [--runs 3] [--bin ./wsrelay]
"""
import argparse
import base64
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_clients(port, rooms):
    """One client per entry of rooms (a room name, "" for /ws); returns the sockets once every
    one has read its welcome."""
    socks, pending = [], {}
    sel = selectors.DefaultSelector()
    for room in rooms:
        s = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        path = "/ws/" + room if room else "/ws"
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        pending[s] = b""
        socks.append(s)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("server closed a client")
            pending[s] += data
            if b'"type":"welcome"' in pending[s]:
                del pending[s]
                sel.unregister(s)
    if pending:
        raise RuntimeError(f"{len(pending)} clients got no welcome")
    return socks


def measure(binary, n, layout):
    port = free_port()
    srv = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--quiet",
                            "--max-clients", str(n + 64), "--max-rooms", str(n + 64),
                            "--max-room-clients", str(n + 64), "--max-connect-rate", "0"])
    try:
        time.sleep(0.3)
        base = rss_kib(srv.pid)
        if layout == "one room":
            rooms = ["all"] * n
        elif layout == "rooms of one":
            rooms = [f"r{i}" for i in range(n)]
        else:
            rooms = [f"r{i // 2}" for i in range(n)]
        socks = open_clients(port, rooms)
        time.sleep(1.5)  # a tick or two: idle buffers are released
        used = rss_kib(srv.pid) - base
        for s in socks:
            s.close()
        return used
    finally:
        srv.terminate()
        srv.wait(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="./wsrelay")
    a = ap.parse_args()
    results = {}
    for layout in ("one room", "rooms of one", "rooms of two"):
        results[layout] = statistics.median(measure(a.bin, a.clients, layout)
                                            for _ in range(a.runs))
        print(f"{a.clients} clients, {layout}: RSS +{results[layout]} KiB (median of {a.runs})")
    n = a.clients
    per1 = (results["rooms of one"] - results["one room"]) * 1024 / (n - 1)
    per2 = (results["rooms of two"] - results["one room"]) * 1024 / (n // 2 - 1)
    print(f"a room costs about {per1:.0f} bytes (rooms of one), {per2:.0f} bytes (rooms of two)")
    print(f"a client costs about {results['one room'] * 1024 / n:.0f} bytes (all in one room)")


if __name__ == "__main__":
    sys.exit(main())
