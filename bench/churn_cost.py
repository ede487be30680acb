#!/usr/bin/python3
"""What one client's connect/close loop on /ws costs everyone else (issue 10 §2.9).

Every /ws handshake sends the newcomer a welcome listing everyone, and every member a join;
every close sends every member a leave. This starts a wsrelay (the binary given, on a free
loopback port, stopped by PID), puts MEMBERS quiet clients in the room that read and count
everything they receive (each from an address of its own: 127.0.x.y), then lets bench/wsbench
churn with one connection at a time (one
client in a loop, as fast as the server answers) for SECONDS, and reports:

  cycles/s            handshake + close cycles the churner completed
  member frames/s     frames each member received per second (joins and leaves)
  member bytes/s      bytes each member received per second
  refused/s           handshakes the server refused (429 past --max-connect-rate)
  server CPU %        the server's user+system time over the run

Standard library only (Debian's /usr/bin/python3). Usage:

  bench/churn_cost.py [--members N] [--seconds S] [--repeat R] [--concurrency C]
                      BINARY [SERVER FLAGS...]

e.g. bench/churn_cost.py ./wsrelay                       (the defaults)
     bench/churn_cost.py ./wsrelay --max-connect-rate 0  (no per-address limit)
Each figure is the median of --repeat runs (3).
"""

import argparse
import json
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSBENCH = os.path.join(REPO, "bench", "wsbench")
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime


def handshake(port, source):
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    s.setblocking(False)
    return s, len(head.split(b"\r\n\r\n", 1)[1])


class Members:
    """MEMBERS sockets read by one thread; counts bytes and (roughly) frames: every server
    frame here is small and unfragmented, so a frame is a 2-byte header plus its length."""

    def __init__(self, port, n):
        self.socks = []
        self.bytes = 0
        self.frames = 0
        self.pending = {}
        self.sel = selectors.DefaultSelector()
        for i in range(n):
            # Members come from addresses of their own (loopback is a /8), as real visitors
            # do; the churner is wsbench, from 127.0.0.1.
            s, _ = handshake(port, f"127.0.{1 + i // 250}.{1 + i % 250}")
            self.socks.append(s)
            self.pending[s] = b""
            self.sel.register(s, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.1):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fileobj)
                    continue
                self.bytes += len(data)
                buf = self.pending[key.fileobj] + data
                while len(buf) >= 2:
                    n = buf[1] & 0x7F
                    hdr = 2 if n < 126 else 4 if n == 126 else 10
                    if len(buf) < hdr:
                        break
                    if n == 126:
                        n = int.from_bytes(buf[2:4], "big")
                    elif n == 127:
                        n = int.from_bytes(buf[2:10], "big")
                    if len(buf) < hdr + n:
                        break
                    buf = buf[hdr + n:]
                    self.frames += 1
                self.pending[key.fileobj] = buf

    def snapshot(self):
        return self.frames, self.bytes

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def one_run(binary, flags, members, seconds, conc):
    srv = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", "--max-clients",
                            str(members + 64), *flags], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in srv.stderr:
            m = re.search(r'\bport=(\d+)\b.*"listening"', line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise RuntimeError("the server did not start")
        threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
        room = Members(port, members)
        time.sleep(1.0)  # the members' own joins and welcomes have arrived
        f0, b0 = room.snapshot()
        c0 = cpu_seconds(srv.pid)
        t0 = time.monotonic()
        out = subprocess.run([WSBENCH, "churn", "--port", str(port), "--clients", str(conc),
                              "--duration", str(seconds), "--progress", "0"],
                             capture_output=True, text=True, timeout=seconds + 60)
        time.sleep(0.5)  # the last leaves arrive
        t1 = time.monotonic()
        f1, b1 = room.snapshot()
        c1 = cpu_seconds(srv.pid)
        room.close()
        res = json.loads(out.stdout.strip().splitlines()[-1])
        wall = t1 - t0
        return {
            "cycles_per_s": res.get("cycles", 0) / seconds,
            "failures_per_s": res.get("failures", 0) / seconds,
            "member_frames_per_s": (f1 - f0) / members / wall,
            "member_bytes_per_s": (b1 - b0) / members / wall,
            "server_cpu_pct": 100 * (c1 - c0) / wall,
        }
    finally:
        srv.terminate()
        srv.wait(10)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=1,
                    help="the churner's cycles at a time, all from 127.0.0.1 (1)")
    ap.add_argument("binary")
    ap.add_argument("flags", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    runs = [one_run(a.binary, a.flags, a.members, a.seconds, a.concurrency)
            for _ in range(a.repeat)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{a.binary} {' '.join(a.flags)}: {a.members} members, one churner "
          f"({a.concurrency} at a time), "
          f"{a.seconds:g} s, median of {a.repeat}")
    print(f"  cycles/s {med['cycles_per_s']:.0f}  refused/s {med['failures_per_s']:.0f}  "
          f"member frames/s {med['member_frames_per_s']:.0f}  "
          f"member bytes/s {med['member_bytes_per_s']:.0f}  "
          f"server CPU {med['server_cpu_pct']:.0f} %")
    print(json.dumps(med))


if __name__ == "__main__":
    sys.exit(main())
