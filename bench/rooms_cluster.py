#!/usr/bin/python3
"""rooms_cluster.py: rooms across two wsrelay nodes over Redis (issue 11), measured.

Starts a fresh Debian redis-server and two wsrelay nodes joined through it (`--redis`),
everything on 127.0.0.1 and ports the kernel says are free, then measures two things:

  roundtrip  The cost of a room's first and last member on a node. Node A already serves a
             room (one client there, its subscription confirmed: PUBSUB NUMSUB is 1). A
             client then enters the room on node B: the time from its upgrade request to
             the `join` of A's member (B subscribes to wsrelay/<room>, publishes its state
             and `hello /<room>`, A answers with its state, B tells its client), and to its
             welcome on the way. Then that client leaves: the time from its close frame until
             PUBSUB NUMSUB wsrelay/<room> is back to 1 (B's UNSUBSCRIBE), polled over one
             Redis connection (a poll is a loopback round trip, tens of microseconds).
             --repeat times, each in a fresh room; median and p99.
  share      What share of deliveries crosses nodes: bench/wsbench cursor --rooms through
             Debian's haproxy in front of both nodes, once with docs/scaling.md's room hashing
             (`balance hash path,field(3,/)` + `hash-type consistent` for /ws and /r/) and
             once with `balance leastconn` for everything. Share = the growth during the run
             of sum(wsrelay_relayed_remote_total) / sum(wsrelay_relayed_total) over both
             nodes; each node's wsrelay_rooms_open and websockets_open are read mid-run.

Writes one JSON object (--out, default docs/bench-rooms-cluster.json), which bench/run.py's
report shows under "Rooms across nodes". Standard library only. Every process it starts is
stopped by its PID. Usage:

    bench/rooms_cluster.py [--repeat 50] [--clients 1000] [--room-size 10] [--duration 5]
"""
import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSRELAY = os.path.join(ROOT, "wsrelay")
WSBENCH = os.path.join(ROOT, "bench", "wsbench")
HOST = "127.0.0.1"
TIMEOUT = 10.0

LIVE = []


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def spawn(argv, log):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    LIVE.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---- Redis: just enough RESP for PING and PUBSUB NUMSUB ----------------------------------

class Resp:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.buf = b""

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        while True:
            v = self._parse()
            if v is not None:
                return v[0]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk

    def _parse(self):
        def one(pos):
            end = self.buf.find(b"\r\n", pos)
            if end < 0:
                raise IndexError
            kind, line, pos = self.buf[pos:pos + 1], self.buf[pos + 1:end], end + 2
            if kind in (b"+", b"-"):
                return line.decode(), pos
            if kind == b":":
                return int(line), pos
            if kind == b"$":
                n = int(line)
                if n < 0:
                    return None, pos
                if len(self.buf) < pos + n + 2:
                    raise IndexError
                return self.buf[pos:pos + n].decode(), pos + n + 2
            if kind == b"*":
                items = []
                for _ in range(int(line)):
                    item, pos = one(pos)
                    items.append(item)
                return items, pos
            raise ValueError(f"not RESP: {self.buf[pos - 1:pos + 20]!r}")
        try:
            v, pos = one(0)
        except IndexError:
            return None
        self.buf = self.buf[pos:]
        return (v,)

    def numsub(self, channel):
        return self.call("PUBSUB", "NUMSUB", channel)[1]


# ---- a minimal WebSocket client (RFC 6455): blocking socket, what the timing needs -------

class WS:
    def __init__(self, port, path):
        """Sends the upgrade request; self.t_sent is when. connect() reads the 101."""
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.buf = b""
        self.t_sent = time.perf_counter()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head[:80]!r}")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def message(self):
        """The next text message (str); control frames other than close are skipped."""
        while True:
            while len(self.buf) < 2:
                self._fill()
            b1 = self.buf[1] & 0x7F
            off = 2
            if b1 == 126:
                while len(self.buf) < 4:
                    self._fill()
                b1, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif b1 == 127:
                while len(self.buf) < 10:
                    self._fill()
                b1, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            while len(self.buf) < off + b1:
                self._fill()
            op, payload = self.buf[0] & 0x0F, self.buf[off:off + b1]
            self.buf = self.buf[off + b1:]
            if op == 0x1:
                return payload.decode()
            if op == 0x8:
                raise ConnectionError("close frame from the server")

    def send_close(self):
        key = os.urandom(4)
        body = struct.pack("!H", 1000)
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(body))
        self.sock.sendall(bytes([0x88, 0x80 | len(body)]) + key + masked)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- the cluster -------------------------------------------------------------------------

def metrics(port):
    """{sample name with labels: value} of GET /metrics (http.client: no proxy)."""
    c = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def wait_for(check, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def start_cluster(work, clients):
    rport = free_port()
    redis = spawn(["redis-server", "--port", str(rport), "--bind", HOST, "--save", "",
                   "--appendonly", "no", "--dir", work], open(os.path.join(work, "redis.log"), "wb"))

    def redis_up():
        try:
            return Resp(rport).call("PING") == "PONG"
        except OSError:
            return False
    wait_for(redis_up, "redis-server")
    nodes, ports = [], []
    for i in range(2):
        port = free_port()
        nodes.append(spawn([WSRELAY, "--host", HOST, "--port", str(port), "--quiet",
                            "--ping-interval", "0", "--max-connect-rate", "0",
                            "--max-clients", str(clients + 256), "--max-buffer", "8M",
                            "--redis", f"redis://{HOST}:{rport}"],
                           open(os.path.join(work, f"node{i + 1}.log"), "wb")))
        ports.append(port)

    def up():
        for p, port in zip(nodes, ports):
            if p.poll() is not None:
                raise RuntimeError(f"a node exited with status {p.returncode}")
            try:
                m = metrics(port)
            except OSError:
                return False
            if m.get("wsrelay_redis_up") != 1 or m.get("wsrelay_cluster_nodes") != 1:
                return False
        return True
    wait_for(up, "both nodes up and hearing each other", 20)
    return redis, rport, nodes, ports


def pctl(vals, p):
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def stats(vals):
    return {"n": len(vals), "median_ms": round(statistics.median(vals), 3),
            "p99_ms": round(pctl(vals, 99), 3), "min_ms": round(min(vals), 3),
            "max_ms": round(max(vals), 3)}


def roundtrip(rport, ports, repeat):
    r = Resp(rport)
    first, welcome, last = [], [], []
    tag = os.urandom(3).hex()
    for i in range(repeat):
        room = f"rt{tag}-{i}"
        chan = f"wsrelay/{room}"
        a = WS(ports[0], f"/ws/{room}")
        wa = json.loads(a.message())
        assert wa["type"] == "welcome" and wa["room"] == room, wa
        wait_for(lambda: r.numsub(chan) == 1, f"node A subscribed to {chan}")
        b = WS(ports[1], f"/ws/{room}")
        wb = json.loads(b.message())
        t_welcome = time.perf_counter()
        assert wb["type"] == "welcome" and wb["room"] == room, wb
        if any(p.get("sender") == wa["id"] or p.get("id") == wa["id"]
               for p in wb.get("peers", [])):
            raise RuntimeError("B's welcome already listed A's member: B served the room")
        while True:
            m = json.loads(b.message())
            if m.get("type") == "join" and wa["id"] in (m.get("id"), m.get("sender")):
                t_join = time.perf_counter()
                break
        first.append((t_join - b.t_sent) * 1e3)
        welcome.append((t_welcome - b.t_sent) * 1e3)
        wait_for(lambda: r.numsub(chan) == 2, f"node B subscribed to {chan}")
        t0 = time.perf_counter()
        b.send_close()
        while r.numsub(chan) != 1:
            if time.perf_counter() - t0 > TIMEOUT:
                raise RuntimeError(f"{chan} still has {r.numsub(chan)} subscribers")
        last.append((time.perf_counter() - t0) * 1e3)
        b.close()
        a.send_close()
        a.close()
        wait_for(lambda: r.numsub(chan) == 0, f"{chan} unsubscribed")
    return {"repetitions": repeat, "first_member": stats(first),
            "first_member_welcome": stats(welcome), "last_member": stats(last),
            "method": "Measured with a blocking Python client (bench/rooms_cluster.py) on "
                      "loopback: the join time includes B's welcome, the SUBSCRIBE "
                      "confirmation, B's state + `hello /<room>` through Redis, A's loop "
                      "pass and state back through Redis, and B's join to its client. The "
                      "leave time is polled with `PUBSUB NUMSUB` over one Redis connection, "
                      "so it includes up to one poll's round trip (~0.1 ms)."}


# ---- through haproxy ---------------------------------------------------------------------

HAPROXY_HEAD = """\
global
    # docs/scaling.md says 50000; haproxy then wants 100k descriptors, more than this
    # machine's hard limit (20000) allows, and refuses to start
    maxconn 8000

defaults
    mode http
    timeout connect 5s
    timeout client  30s
    timeout server  30s
    timeout tunnel  1h
    timeout http-request 10s
    option http-server-close

listen stats
    bind {host}:{sport}
    stats enable
    stats uri /stats
"""

# The routing part of docs/scaling.md's configuration. test_haproxy_rooms.py reads the
# whole of it out of the doc; keep this copy the same when the doc changes.
HAPROXY_HASH = """
frontend cursors
    bind {host}:{port}
    acl is_room path_beg /ws /r/
    use_backend rooms if is_room
    default_backend files

backend rooms
    balance hash path,field(3,/)
    hash-type consistent
    option httpchk GET /healthz
    http-check expect status 200
    server a {host}:{p1} check inter 1s fall 2 rise 2
    server b {host}:{p2} check inter 1s fall 2 rise 2

backend files
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    server a {host}:{p1} check inter 1s fall 2 rise 2
    server b {host}:{p2} check inter 1s fall 2 rise 2
"""

HAPROXY_LEASTCONN = """
frontend cursors
    bind {host}:{port}
    default_backend files

backend files
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    server a {host}:{p1} check inter 1s fall 2 rise 2
    server b {host}:{p2} check inter 1s fall 2 rise 2
"""


def haproxy_up(sport):
    c = http.client.HTTPConnection(HOST, sport, timeout=TIMEOUT)
    try:
        c.request("GET", "/stats;csv")
        lines = c.getresponse().read().decode().splitlines()
    except OSError:
        return False
    finally:
        c.close()
    cols = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(cols, ln.split(","))) for ln in lines[1:]]
    st = [r["status"] for r in rows if r.get("svname") in ("a", "b")]
    return st and all(s == "UP" for s in st)


def share_run(work, label, body, ports, clients, room_size, duration):
    port, sport = free_port(), free_port()
    cfg = os.path.join(work, f"haproxy-{label.split()[0]}.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_HEAD.format(host=HOST, sport=sport) +
                body.format(host=HOST, port=port, p1=ports[0], p2=ports[1]))
    hap = spawn(["haproxy", "-f", cfg, "-db"], open(cfg[:-4] + ".log", "wb"))
    try:
        wait_for(lambda: haproxy_up(sport), "haproxy with both servers UP", 15)
        before = [metrics(p) for p in ports]
        rooms = clients // room_size
        argv = [WSBENCH, "cursor", "--port", str(port), "--path", "/ws", "--rooms", str(rooms),
                "--clients", str(clients), "--duration", str(duration), "--warmup", "1",
                "--drain", "2", "--progress", "0"]
        bench = spawn(argv, subprocess.PIPE)
        # Mid-run: every client connected; where did they and their rooms land?
        mid = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and bench.poll() is None:
            ms = [metrics(p) for p in ports]
            if sum(m.get('wsrelay_websockets_open{route="ws"}', 0) for m in ms) >= clients:
                mid = ms
                break
            time.sleep(0.1)
        out, _ = bench.communicate(timeout=duration + 60)
        after = [metrics(p) for p in ports]
        result = json.loads(out.decode().strip().splitlines()[-1])
        rel = sum(a["wsrelay_relayed_total"] - b["wsrelay_relayed_total"]
                  for a, b in zip(after, before))
        rem = sum(a["wsrelay_relayed_remote_total"] - b["wsrelay_relayed_remote_total"]
                  for a, b in zip(after, before))
        ro = [int(m.get("wsrelay_rooms_open", 0)) for m in mid] if mid else [None, None]
        co = [int(m.get('wsrelay_websockets_open{route="ws"}', 0)) for m in mid] \
            if mid else [None, None]
        return {"label": label, "clients": clients, "rooms": rooms, "relayed": int(rel),
                "relayed_remote": int(rem), "share": rem / rel if rel else None,
                "rooms_open": ro, "split_rooms": (ro[0] + ro[1] - rooms) if mid else None,
                "clients_by_node": co, "wsbench_argv": argv, "wsbench": result}
    finally:
        stop(hap)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--room-size", type=int, default=10)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench-rooms-cluster.json"))
    ap.add_argument("--skip", choices=["roundtrip", "share"], action="append", default=[])
    a = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    res = {"meta": {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "commit": commit, "argv": sys.argv[1:],
                    "redis": subprocess.run(["redis-server", "--version"], capture_output=True,
                                            text=True).stdout.strip(),
                    "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True,
                                              text=True).stdout.splitlines()[0]}}
    work = tempfile.mkdtemp(prefix="wsrelay-rooms-cluster-")
    try:
        redis, rport, nodes, ports = start_cluster(work, a.clients)
        if "roundtrip" not in a.skip:
            res["roundtrip"] = roundtrip(rport, ports, a.repeat)
            print(json.dumps(res["roundtrip"], indent=1), flush=True)
        if "share" not in a.skip:
            res["share"] = []
            for label, body in [("room hashing (docs/scaling.md)", HAPROXY_HASH),
                                ("leastconn for everything", HAPROXY_LEASTCONN)]:
                x = share_run(work, label, body, ports, a.clients, a.room_size, a.duration)
                print(f"{label}: share {x['share']:.4f}, rooms open {x['rooms_open']}, "
                      f"split {x['split_rooms']}, clients {x['clients_by_node']}, "
                      f"p99 {x['wsbench'].get('p99_ms')} ms, loss {x['wsbench'].get('loss')}, "
                      f"foreign {x['wsbench'].get('foreign')}", flush=True)
                res["share"].append(x)
                time.sleep(1)  # the first run's clients are gone from both nodes
            res["share_method"] = (
                f"Each run: `bench/wsbench cursor --rooms {a.clients // a.room_size} --clients "
                f"{a.clients}` (30 Hz, {a.duration:g} s measured) to haproxy's port; wsbench "
                "opens its connections in a random order, so a balancer that assigns by arrival "
                "does not group rooms by accident. haproxy's configuration is docs/scaling.md's "
                "without the per-address handshake limit (every client here comes from "
                "127.0.0.1), with `maxconn 8000` instead of 50000 (haproxy wants 2 descriptors "
                "per connection and the hard limit here is 20000) and with the servers on "
                "loopback ports; the nodes run with "
                "`--max-connect-rate 0`, as the doc says behind a proxy.")
        res["meta"]["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    finally:
        for p in reversed(LIVE):
            stop(p)
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    os.replace(a.out + ".tmp", a.out)
    print(f"wrote {os.path.relpath(a.out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
