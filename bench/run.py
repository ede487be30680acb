#!/usr/bin/python3
"""make bench: wsrelay against the original Node `ws` demo and uWebSockets.js.

For every server and scenario this starts the server afresh, pinned to one core, runs the
load generator bench/wsbench pinned to the other, and keeps every JSON line it prints.
"wsrelay-2node" is wsrelay as a cluster (issue 5): a fresh redis-server and two wsrelay
nodes joined through it, all three pinned to the server's one core (the same hardware
budget as the single node), the clients split evenly over the two nodes. From
those results it writes docs/benchmarks.md, docs/bench-p99.png, docs/bench-deliveries.png
and docs/bench-results.json (the raw runs, from which `run.py --report-only` regenerates the
rest). Every figure in the report comes from a run: nothing is typed in by hand except the
issue's reference rows, which are labelled as such.

Scenarios (wsbench modes):
  cursor  N clients on /ws, each sending {"x","y","t"} at 30 Hz and receiving everyone's
          (30*N^2 deliveries per second); N steps up until two consecutive points fail.
          A point passes when the median p99 < 100 ms and the median loss < 1 %, with no
          connect failure and no bad frame.
  fanout  1 sender as fast as its window allows, 100 receivers: frames delivered per second.
  idle    10,000 connections held (wsrelay on /echo, where nothing is sent on connect; also
          /ws at 1,000, where each newcomer gets a welcome and everyone a join): server RSS.
  churn   connect + handshake + close, 100 at a time, as many per second as the server
          takes (wsrelay on /echo and on /ws, where each one also causes a join and a leave).
  rooms   many small rooms (issue 11): BENCH_ROOMS_N clients [5000] in rooms of
          BENCH_ROOM_SIZE [10] (wsbench cursor --rooms N/size: connection i on /ws/r<i mod
          rooms>), every client at 30 Hz, so 30*N messages/s in and 30*N*size deliveries/s
          out. wsrelay and uWebSockets.js (one topic per room) take turns run by run, so a
          busy neighbour hurts both alike; the Node demo has no rooms and is not run.
  overload  issue 12: one room of BENCH_OVERLOAD_N clients [600,900] at 30 Hz, seed
          protocol, past what the relay can deliver: p99 latency of what arrives, per-pair
          freshness (fresh_p99: age of the newest position each receiver holds of each
          sender, sampled every 50 ms), the server's RSS (the most sampled during the run),
          clients dropped, positions reordered. Goals: p99 < 100 ms, fresh_p99 < 100 ms,
          RSS <= 64 MiB, no client dropped, 0 reordered. All servers.
  storm   issue 12's join storm: BENCH_STORM_N [10000] clients into one room at once
          (goal: all welcomed within 5 s, peak RSS <= 64 MiB), and BENCH_STORM_ROOMS
          [5000/500] (5,000 clients in 500 rooms; goal: every roster complete within 1 s);
          wsbench storm with --inflight BENCH_STORM_INFLIGHT [500] and --roster-max
          BENCH_ROSTER_MAX [1000]; BENCH_STORM_TIMEOUT [60] s at most per run. The peers send
          no welcome: their figure is the time to connect all (wsbench --no-welcome).
  pacing  wsrelay only: BENCH_PACING_N [300] clients at 30 Hz with --send-interval 0, 16ms,
          33ms (BENCH_PACING_INTERVALS): server CPU, p99, fresh_p99. Without the flag in this
          wsrelay (before issue 12) only the 0 point runs.
  batch   wsrelay only: BENCH_BATCH_N [300] clients at 30 Hz, seed and --batch
          (wsrelay.batch): server CPU, frames/s and messages/s in, p99, fresh_p99.
  tls     issue 13, wsrelay only, plain and TLS (wss://) side by side, run by run in turn
          (plain, TLS, plain, TLS, ...), so a busy neighbour hurts both alike: cursor
          capacity at 30 Hz (BENCH_TLS_STEPS, judged as cursor's; a variant that failed twice
          in a row stops stepping), fan-out (1 -> BENCH_FANOUT_N), idle RSS per connection
          (BENCH_IDLE_N on /echo); and full TLS 1.3 handshakes per second (wsbench handshake,
          BENCH_CHURN_N in flight, X25519, the same ECDSA P-256 certificate, no resumption,
          then close_notify both ways and no HTTP) against Debian's nginx with one worker,
          started here on a free loopback port with its own config, pid file and logs in
          build/bench/nginx, pinned to the server's core and stopped by PID (never the
          system's nginx service). Certificate and key are made here with `openssl`
          (build/bench/tls). Goals: TLS capacity >= 70 % of plain, handshakes/s >= nginx's.
The issue-12 scenarios give wsrelay --max-room-clients 10000 --max-clients 20000
--max-connect-rate 0; every wsrelay run gets --max-room-clients above its client count.
wsrelay-2node runs cursor and fanout only; its cursor runs also report cross-node latency
(sender and receiver on different nodes: through Redis) and Redis's CPU. Rooms across
nodes (subscribe/unsubscribe round trips, the share of deliveries that cross nodes with and
without haproxy's room hashing) are bench/rooms_cluster.py's, and what a room costs in
memory is bench/room_cost.py's: the report shows their saved output (docs/bench-rooms-*.json,
docs/bench-room-cost.txt) when it is there. So it does for the page in a busy room
(bench/page_bench.mjs, `make bench-page`: docs/bench-page.json).

Environment (defaults in brackets; BENCH_QUICK=1 picks a small, ~3-minute smoke set):
  BENCH_REPEAT [3]          runs per point; the median is reported
  BENCH_DURATION [10]       seconds measured per cursor/fanout/churn run
  BENCH_WARMUP [2]          seconds of load before measuring (cursor, fanout)
  BENCH_DRAIN [2]           seconds to wait for late messages after the last send
  BENCH_STEPS [20,40,...]   client counts for the cursor scenario
  BENCH_SERVERS             comma list out of wsrelay,wsrelay-2node,node-ws-demo,uws-demo
  BENCH_SCENARIOS           comma list out of cursor,fanout,idle,churn,rooms
  BENCH_IDLE_N [10000]      idle connections (wsrelay /echo and the peers)
  BENCH_IDLE_WS_N [1000]    idle connections on wsrelay's /ws
  BENCH_IDLE_HOLD [3]       seconds the idle connections are held before RSS is read
  BENCH_FANOUT_N [100]      fan-out receivers
  BENCH_CHURN_N [100]       churn cycles in flight at once
  BENCH_ROOMS_N [500,1000,2000,5000]  rooms: clients in all, one point each (5,000 is the
                            issue's; the smaller ones show where the load generator, one
                            thread on one core, still keeps up)
  BENCH_ROOMS_DURATION [5]  rooms: seconds measured per run
  BENCH_ROOM_SIZE [10]      rooms: clients per room
  BENCH_ROOMS_QUIET_WAIT [20], BENCH_ROOMS_ATTEMPTS [2]   rooms: the quiet wait before each
                            run and the attempts per run (shorter than the others', to keep
                            the scenario within a few minutes on a shared machine)
  BENCH_TLS_STEPS [200,300,400,500,600,700,800]  tls: client counts of the cursor points
  BENCH_MAX_BUFFER [8M]     wsrelay --max-buffer, and uWS maxBackpressure (bytes)
  BENCH_MAX_OTHER_CPU [0.15]  a run during which other processes used more CPU than this
                            (in cores, from /proc) is discarded and done again (3 times at
                            most; then the least disturbed attempt is kept and marked)
  BENCH_QUIET_WAIT [120]    before each run, wait up to this long for other processes to
                            use at most BENCH_MAX_OTHER_CPU
  BENCH_OUT [docs]          where the report, plots and results go (relative to the repo;
                            BENCH_QUICK's default is build/bench-quick, never docs/)
  BENCH_UPDATE=1            keep the runs already in OUT/bench-results.json of servers or
                            scenarios not run this time (e.g. re-run only wsrelay after a
                            change: BENCH_UPDATE=1 BENCH_SERVERS=wsrelay make bench)

Only 127.0.0.1 and ports the kernel says are free are used. Every process started here is
stopped by its PID when its run ends, and on Ctrl-C or SIGTERM.
"""

import argparse
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "bench", "peers")
WSBENCH = os.path.join(ROOT, "bench", "wsbench")
WSRELAY = os.path.join(ROOT, "wsrelay")
WORK = os.path.join(ROOT, "build", "bench")  # logs and the in-progress results (ignored)

SERVERS = ["wsrelay", "wsrelay-2node", "node-ws-demo", "uws-demo"]
SCENARIOS = ["cursor", "fanout", "idle", "churn", "rooms", "overload", "storm", "pacing",
             "batch", "tls"]
ISSUE12 = ("overload", "storm", "pacing", "batch")
WSRELAY_ONLY = ("pacing", "batch")  # flags of wsrelay's own: nothing to compare
ROOMS_SERVERS = ("wsrelay", "uws-demo")  # the Node demo has no rooms
LABEL = {
    "wsrelay": "wsrelay",
    "wsrelay-2node": "wsrelay, 2 nodes + Redis",
    "node-ws-demo": "Node ws demo",
    "uws-demo": "uWebSockets.js",
    "nginx": "nginx (Debian, 1 worker)",  # the tls scenario's handshake peer, nothing else
}
# Servers that are wsrelay nodes joined over a fresh Redis (issue 5): how many nodes, and the
# scenarios they run (idle memory and churn are per node: the single node measures those).
CLUSTER_NODES = {"wsrelay-2node": 2}
CLUSTER_SCENARIOS = ("cursor", "fanout")
CLUSTER_TIMEOUT = 15.0  # seconds for the nodes to connect to Redis and hear each other

P99_LIMIT_MS = 100.0
LOSS_LIMIT = 0.01          # a fraction: 1 %
CLIENT_CPU_FLAG = 0.9      # the load generator near one full core: its own limit may show
MAX_ATTEMPTS = 4           # a run disturbed by other processes is done again, at most 3 times
BUSY_N = 200               # "RSS at 200 busy clients"
# Issue 12's goals
FRESH_LIMIT_MS = 100.0     # overload: fresh_p99
QUIET_OTHER = 0.15         # issue 12's tables mark (†) points where others used more CPU
RSS_LIMIT_KB = 64 * 1024   # overload and storm: server RSS
STORM_WELCOME_S = 5.0      # 10,000 into one room: all welcomed within
STORM_ROSTER_S = 1.0       # 5,000 in 500 rooms: every roster complete within
RATE_HZ = 30
TLS_RATIO_GOAL = 0.70      # issue 13: TLS cursor capacity >= 70 % of plain

# The issue's figures for servers we do not run here (issue 4): quoted, never measured.
REFERENCE = [
    ("libwebsockets 4.1 (Debian)", "70", "—", "—", "0.19 M", "5.5 KB", "—"),
    ("uWebSockets C++", "200", "1.2 M", "2.3 ms", "3.1 M", "0.5 KB", "8.4 MiB"),
]
# The issue's figures for the two peers we do run, shown beside our measurements.
ISSUE_PEERS = {
    "node-ws-demo": "60 clients (108k deliveries/s); fan-out 0.15 M frames/s; 6.6 KB idle",
    "uws-demo": "200 clients (1.2 M deliveries/s, p99 2.9 ms); fan-out 0.78 M frames/s; "
                "1.6 KB idle",
}


# ---- configuration ----------------------------------------------------------------------

def env_num(name, default, kind=float):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return kind(v)
    except ValueError:
        sys.exit(f"run.py: {name}={v!r} is not a number")


def env_list(name, default):
    v = os.environ.get(name)
    if not v:
        return list(default)
    return [x.strip() for x in v.split(",") if x.strip()]


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KkMm]?)", text)
    if not m:
        sys.exit(f"run.py: bad size {text!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]


def load_config():
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    steps_default = [50, 100, 200] if quick else \
        [20, 40, 60, 80, 100, 125, 150, 175, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800,
         1000]
    cfg = {
        "quick": quick,
        "repeat": env_num("BENCH_REPEAT", 1 if quick else 3, int),
        "duration": env_num("BENCH_DURATION", 3 if quick else 10),
        "warmup": env_num("BENCH_WARMUP", 1 if quick else 2),
        "drain": env_num("BENCH_DRAIN", 1 if quick else 2),
        "steps": [int(x) for x in env_list("BENCH_STEPS", [str(s) for s in steps_default])],
        "servers": env_list("BENCH_SERVERS", SERVERS),
        "scenarios": env_list("BENCH_SCENARIOS", SCENARIOS),
        "idle_n": env_num("BENCH_IDLE_N", 2000 if quick else 10000, int),
        "idle_ws_n": env_num("BENCH_IDLE_WS_N", 500 if quick else 1000, int),
        "idle_hold": env_num("BENCH_IDLE_HOLD", 2 if quick else 3),
        "fanout_n": env_num("BENCH_FANOUT_N", 100, int),
        "churn_n": env_num("BENCH_CHURN_N", 100, int),
        "rooms_n": [int(x) for x in env_list("BENCH_ROOMS_N", ["1000"] if quick else
                                                ["500", "1000", "2000", "5000"])],
        "rooms_duration": env_num("BENCH_ROOMS_DURATION", 3 if quick else 5),
        "room_size": env_num("BENCH_ROOM_SIZE", 10, int),
        "rooms_quiet_wait": env_num("BENCH_ROOMS_QUIET_WAIT", 20),
        "rooms_attempts": env_num("BENCH_ROOMS_ATTEMPTS", 2, int),
        "max_buffer": parse_size(os.environ.get("BENCH_MAX_BUFFER") or "8M"),
        "max_other": env_num("BENCH_MAX_OTHER_CPU", 0.15),
        "quiet_wait": env_num("BENCH_QUIET_WAIT", 30 if quick else 120),
        "overload_n": [int(x) for x in env_list("BENCH_OVERLOAD_N", ["600", "900"])],
        "storm_n": env_num("BENCH_STORM_N", 2000 if quick else 10000, int),
        "storm_rooms": env_list("BENCH_STORM_ROOMS", ["1000/100"] if quick else ["5000/500"]),
        "storm_inflight": env_num("BENCH_STORM_INFLIGHT", 500, int),
        "storm_timeout": env_num("BENCH_STORM_TIMEOUT", 60),
        "roster_max": env_num("BENCH_ROSTER_MAX", 1000, int),
        "pacing_n": env_num("BENCH_PACING_N", 300, int),
        "pacing_intervals": env_list("BENCH_PACING_INTERVALS", ["0", "16ms", "33ms"]),
        "batch_n": env_num("BENCH_BATCH_N", 300, int),
        "tls_steps": [int(x) for x in env_list("BENCH_TLS_STEPS", ["300", "600"] if quick else
                                                 ["200", "300", "400", "500", "600", "700",
                                                  "800"])],
        "rate": RATE_HZ,
        "server_cpu": "0",
        "client_cpu": "1",
    }
    for s in cfg["servers"]:
        if s not in SERVERS:
            sys.exit(f"run.py: unknown server {s!r} (known: {', '.join(SERVERS)})")
    for s in cfg["scenarios"]:
        if s not in SCENARIOS:
            sys.exit(f"run.py: unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
    for spec in cfg["storm_rooms"]:
        if not re.fullmatch(r"\d+/\d+", spec):
            sys.exit(f"run.py: BENCH_STORM_ROOMS item {spec!r} is not CLIENTS/ROOMS")
    if (os.cpu_count() or 1) < 2:
        cfg["server_cpu"] = cfg["client_cpu"] = None  # nothing to pin apart: say so
    cfg["wsrelay_flags"] = wsrelay_flags()
    return cfg


def wsrelay_flags():
    """Which of issue 12's flags this ./wsrelay has (its --help lists its flags), so the
    scenarios run, in part, against a wsrelay from before issue 12."""
    try:
        out = subprocess.run([WSRELAY, "--help"], capture_output=True, text=True, timeout=10)
        text = out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    return {f: f in text for f in ("--send-interval", "--roster-max")}


# ---- processes: started here, stopped here by PID ----------------------------------------

LIVE = {}  # pid -> Popen


def spawn(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
    LIVE[p.pid] = p
    return p


def stop(p, grace=3.0):
    """SIGTERM, then SIGKILL after grace seconds; reap. Safe to call twice."""
    if p is None:
        return
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    LIVE.pop(p.pid, None)


def stop_all():
    for p in list(LIVE.values()):
        stop(p, grace=1.0)


def on_signal(signum, frame):
    raise KeyboardInterrupt


CLK_TCK = os.sysconf("SC_CLK_TCK")


def task_times():
    """{pid: (cpu_s, reaped_children_cpu_s, comm)} for every process now, from /proc/PID/stat
    (utime+stime and cutime+cstime: fields 14 to 17; a process's threads are included)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                st = f.read()
        except OSError:
            continue  # ended meanwhile
        i = st.rindex(")")  # comm may hold spaces and parentheses
        fl = st[i + 2:].split()
        out[int(name)] = ((int(fl[11]) + int(fl[12])) / CLK_TCK,
                          (int(fl[13]) + int(fl[14])) / CLK_TCK, st[st.index("(") + 1:i])
    return out


def foreign_cpu_s(before, after, ours):
    """CPU seconds that processes other than ours used between two task_times() snapshots.
    ksoftirqd counts as ours: it carries loopback traffic, which here is ours. Softirq work
    the kernel does with no process current (on an idle core) is in no process and so in
    neither side: /proc/stat's totals would count it as somebody else's."""
    total = 0.0
    for pid, (cpu, kids, comm) in after.items():
        if pid in ours or comm.startswith("ksoftirqd"):
            continue
        b = before.get(pid)
        total += cpu + kids if b is None else (cpu - b[0]) + (kids - b[1])
    # A process that ended in between was reaped by its parent, whose children's time then
    # grew by its whole life: take back what it had used before the first snapshot.
    for pid, (cpu, kids, comm) in before.items():
        if pid not in after and pid not in ours:
            total -= cpu + kids
    return max(0.0, total)


def wait_quiet(cfg):
    """Before a run, with none of ours running: wait (up to BENCH_QUIET_WAIT seconds) until
    other processes use at most BENCH_MAX_OTHER_CPU. Returns the load last seen, in cores."""
    deadline = time.monotonic() + cfg["quiet_wait"]
    said = False
    while True:
        b0, t0 = task_times(), time.monotonic()
        time.sleep(1.0)
        load = foreign_cpu_s(b0, task_times(), {os.getpid()}) / (time.monotonic() - t0)
        if load <= cfg["max_other"] or time.monotonic() >= deadline:
            if said:
                print(f"    machine {'quiet' if load <= cfg['max_other'] else 'still busy'}: "
                      f"{load:.2f} cores in use", flush=True)
            return load
        if not said:
            print(f"    other processes use {load:.2f} cores: waiting up to "
                  f"{cfg['quiet_wait']:.0f} s for a quiet machine", flush=True)
            said = True


def pinned(cpu, argv):
    return argv if cpu is None else ["taskset", "-c", cpu] + argv


def free_port():
    """A port the kernel has just handed out on 127.0.0.1 (then released for the server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc, port, log_path, timeout=15.0):
    """Until a TCP connect to the port succeeds; an error if the server exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening: "
                               + tail(log_path))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on port {port} after {timeout:.0f} s")


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().strip().splitlines()
        return " | ".join(lines[-n:]) or "(no output)"
    except OSError:
        return "(no log)"


TLS_DIR = os.path.join(WORK, "tls")
NGINX_DIR = os.path.join(WORK, "nginx")


def tls_files():
    """The tls scenario's certificate and key (made once per run.py, in build/bench/tls): an
    ECDSA P-256 key and a self-signed certificate for 127.0.0.1, as issue 13 asks. Both
    servers use this same pair, so both sign with the same algorithm."""
    os.makedirs(TLS_DIR, exist_ok=True)
    key, cert = os.path.join(TLS_DIR, "key.pem"), os.path.join(TLS_DIR, "cert.pem")
    if not (os.path.exists(key) and os.path.exists(cert)):
        for argv in (["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                      "-out", key],
                     ["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=127.0.0.1",
                      "-addext", "subjectAltName=IP:127.0.0.1", "-days", "30", "-out", cert]):
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return cert, key


def nginx_conf(port):
    """nginx's whole configuration for one run, written to build/bench/nginx: one worker,
    TLS 1.3 with X25519 only, the bench's certificate, no access log, `return 200` for any
    request (the handshake run sends none), its pid file and temp folders here. The master
    stays in the foreground (daemon off), so stop() ends it by PID; the system's nginx, if
    any, is never touched."""
    cert, key = tls_files()
    os.makedirs(NGINX_DIR, exist_ok=True)
    d = NGINX_DIR
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""# written by bench/run.py for one run of the tls scenario
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_ecdh_curve X25519;
        location / {{ return 200 "ok\n"; }}
    }}
}}
""")
    return conf


def server_argv(cfg, server, scenario, port, n, redis_port=None, variant=None):
    variant = variant or {}
    if server == "nginx":
        return ["nginx", "-p", NGINX_DIR, "-e", os.path.join(NGINX_DIR, "error.log"),
                "-c", nginx_conf(port)]
    if scenario == "tls":  # wsrelay as in the mode's own scenario, with or without TLS
        argv = server_argv(cfg, server, variant["mode"], port, n, redis_port)
        if variant.get("tls"):
            cert, key = tls_files()
            argv += ["--tls-cert", cert, "--tls-key", key]
        return argv
    if server == "wsrelay" or server in CLUSTER_NODES:
        big = scenario in ISSUE12
        argv = [WSRELAY, "--host", "127.0.0.1", "--port", str(port), "--quiet",
                "--ping-interval", "0",
                "--max-clients", "20000" if big else str(max(1024, n + 256)),
                # one room of N: the default 400 would refuse the rest (4001)
                "--max-room-clients", "10000" if big else str(max(400, n + 256)),
                "--max-buffer", str(cfg["max_buffer"]),
                "--max-connect-rate", "0"]  # thousands of clients from one address
        if scenario == "storm" and cfg["wsrelay_flags"].get("--roster-max"):
            argv += ["--roster-max", str(cfg["roster_max"])]
        if variant.get("send_interval") is not None:
            argv += ["--send-interval", variant["send_interval"]]
        if scenario == "fanout":
            # one sender as fast as it can: no per-client cap on messages or bytes
            argv += ["--max-rate", "0", "--max-byte-rate", "0"]
        if redis_port is not None:
            argv += ["--redis", f"redis://127.0.0.1:{redis_port}"]
        return argv
    if server == "node-ws-demo":
        return ["node", os.path.join(PEERS, "node-ws-demo.js"), str(port)]
    return ["node", os.path.join(PEERS, "uws-demo.js"), str(port), str(cfg["max_buffer"])]


def wsbench_argv(cfg, scenario, ports, n, path, variant=None, server="wsrelay"):
    """ports: one per node; wsbench spreads the clients over them (connection i: i mod k)."""
    variant = variant or {}
    port_list = ",".join(map(str, ports))
    if scenario == "tls":  # the mode's own command line, over TLS or not
        mode = variant["mode"]
        if mode == "handshake":
            argv = [WSBENCH, "handshake", "--host", "127.0.0.1", "--port", port_list,
                    "--clients", str(n), "--duration", str(cfg["duration"]), "--progress", "0"]
        else:
            argv = wsbench_argv(cfg, mode, ports, n, path, None, server)
        return argv + (["--tls"] if variant.get("tls") else [])
    if scenario == "storm":  # everyone at once; the peers send no welcome
        argv = [WSBENCH, "storm", "--host", "127.0.0.1", "--port", port_list, "--path", "/ws",
                "--clients", str(n), "--duration", str(cfg["storm_timeout"]),
                "--inflight", str(cfg["storm_inflight"]), "--roster-max", str(cfg["roster_max"]),
                "--progress", "0"]
        if variant.get("rooms"):
            argv += ["--rooms", str(variant["rooms"])]
        if server not in ("wsrelay",) and server not in CLUSTER_NODES:
            argv += ["--no-welcome"]
        return argv
    if scenario in ("overload", "pacing", "batch"):  # cursor mode, one room
        argv = [WSBENCH, "cursor", "--host", "127.0.0.1", "--port", port_list, "--path", "/ws",
                "--clients", str(n), "--rate", str(cfg["rate"]),
                "--duration", str(cfg["duration"]), "--warmup", str(cfg["warmup"]),
                "--drain", str(cfg["drain"]), "--progress", "0"]
        if variant.get("batch"):
            argv += ["--batch"]
        return argv
    if scenario == "rooms":  # cursor mode, N clients in rooms of room_size: /ws/r<i mod rooms>
        rooms = max(1, n // cfg["room_size"])
        return [WSBENCH, "cursor", "--host", "127.0.0.1", "--port", ",".join(map(str, ports)),
                "--path", "/ws", "--rooms", str(rooms), "--clients", str(n),
                "--rate", str(cfg["rate"]), "--duration", str(cfg["rooms_duration"]),
                "--warmup", str(cfg["warmup"]), "--drain", str(cfg["drain"]), "--progress", "0"]
    argv = [WSBENCH, scenario, "--host", "127.0.0.1", "--port", ",".join(map(str, ports)),
            "--path", path, "--clients", str(n)]
    if scenario == "cursor":
        argv += ["--rate", str(cfg["rate"]), "--duration", str(cfg["duration"]),
                 "--warmup", str(cfg["warmup"]), "--drain", str(cfg["drain"])]
    elif scenario == "fanout":
        argv += ["--senders", "1", "--duration", str(cfg["duration"]),
                 "--warmup", str(cfg["warmup"]), "--drain", str(cfg["drain"])]
    elif scenario == "idle":
        argv += ["--duration", str(cfg["idle_hold"])]
    else:  # churn: --clients is how many cycles run at once
        argv += ["--duration", str(cfg["duration"])]
    return argv + ["--progress", "0"]


def metrics_gauges(port):
    """The unlabelled samples of GET /metrics on 127.0.0.1:port, {name: value}; {} if the
    node does not answer (yet). http.client, not urllib: no proxy from the environment."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace") if r.status == 200 else ""
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def wait_cluster(nodes, ports, log_paths, timeout=CLUSTER_TIMEOUT):
    """Until every node has both Redis links up (wsrelay_redis_up 1) and has heard from every
    other node (wsrelay_cluster_nodes; nodes say hello, then beat once a second)."""
    deadline = time.monotonic() + timeout
    for node, port, log_path in zip(nodes, ports, log_paths):
        while True:
            if node.poll() is not None:
                raise RuntimeError(f"node on port {port} exited with status {node.returncode} "
                                   "before the cluster was up: " + tail(log_path))
            g = metrics_gauges(port)
            if g.get("wsrelay_redis_up") == 1 and g.get("wsrelay_cluster_nodes") == len(nodes) - 1:
                break
            if time.monotonic() >= deadline:
                raise RuntimeError(f"cluster not up after {timeout:.0f} s: node on port {port} "
                                   f"has wsrelay_redis_up={g.get('wsrelay_redis_up')}, "
                                   f"wsrelay_cluster_nodes={g.get('wsrelay_cluster_nodes')}: "
                                   + tail(log_path))
            time.sleep(0.1)


def start_redis(cpu, port, log_path):
    """Starts Debian's redis-server on 127.0.0.1:port, pinned like the servers, with no
    persistence (no RDB snapshots, no append-only file; --dir is a scratch folder anyway)."""
    rdir = os.path.join(WORK, "redis")
    os.makedirs(rdir, exist_ok=True)
    with open(log_path, "wb") as log:
        return spawn(pinned(cpu, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", rdir]),
                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def free_ports(k):
    """k distinct free ports."""
    ports = []
    while len(ports) < k:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def variant_name(variant):
    """A point's variant as text: "" for none, e.g. "send-interval=16ms", "batch", "rooms=500"."""
    if not variant:
        return ""
    bits = []
    if variant.get("send_interval") is not None:
        bits.append(f"send-interval={variant['send_interval']}")
    if variant.get("batch"):
        bits.append("batch")
    if variant.get("batch") is False:
        bits.append("seed")
    if variant.get("rooms"):
        bits.append(f"rooms={variant['rooms']}")
    if variant.get("mode"):  # tls: the wsbench mode, then plain or TLS
        bits += [variant["mode"], "tls" if variant.get("tls") else "plain"]
    return ",".join(bits)


def nginx_worker(master, timeout=10.0):
    """The PID of the nginx master's one worker (its child: /proc/PID/task/PID/children)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{master.pid}/task/{master.pid}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        if kids:
            return kids[0]
        if master.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("nginx started no worker")


def run_once(cfg, server, scenario, n, path, rep, tag, variant=None):
    """One server start (for a cluster: Redis, then its nodes), one wsbench run, all stopped.
    Returns the run record."""
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    vtag = re.sub(r"[^A-Za-z0-9=.-]", "_", variant_name(variant))
    log_path = os.path.join(WORK, "logs", f"{server}-{scenario}-{tag}{'-' + vtag if vtag else ''}"
                            f"-{n}-{rep}.log")
    bench_log = log_path[:-4] + "-wsbench.log"  # its human summary and any errors
    rec = {"server": server, "scenario": scenario, "n": n, "path": path, "repeat": rep,
           "variant": variant_name(variant),
           "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "result": None, "lines": [], "error": None}
    nodes, node_logs, redis, bench = [], [], None, None
    is_idle = scenario == "idle" or (variant or {}).get("mode") == "idle"
    if not is_idle:  # memory does not depend on what else runs: no need to wait
        rec["load_before"] = round(wait_quiet(cfg), 3)
    try:
        # Every server-side process (the server, or Redis and each node) on the server core.
        k = CLUSTER_NODES.get(server, 1)
        *ports, redis_port = free_ports(k + 1)
        redis_log = log_path[:-4] + "-redis.log"
        if server in CLUSTER_NODES:
            redis = start_redis(cfg["server_cpu"], redis_port, redis_log)
            wait_listening(redis, redis_port, redis_log)
        else:
            redis_port = None
        for i, port in enumerate(ports):
            node_log = log_path if k == 1 else log_path[:-4] + f"-node{i + 1}.log"
            with open(node_log, "wb") as log:
                nodes.append(spawn(pinned(cfg["server_cpu"],
                                          server_argv(cfg, server, scenario, port, n, redis_port,
                                                      variant)),
                                   stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
            node_logs.append(node_log)
        for node, port, node_log in zip(nodes, ports, node_logs):
            wait_listening(node, port, node_log)
        if redis is not None:
            wait_cluster(nodes, ports, node_logs)
        measured = [p.pid for p in nodes]
        if server == "nginx":  # the worker does the handshakes: its CPU and RSS are nginx's
            measured = [nginx_worker(nodes[0])]
        argv = wsbench_argv(cfg, scenario, ports, n, path, variant, server) + \
            ["--server-pid", ",".join(str(p) for p in measured)]
        rec["server_argv"] = server_argv(cfg, server, scenario, ports[0], n, redis_port, variant)
        if redis is not None:
            argv += ["--redis-pid", str(redis.pid)]
        rec["argv"] = argv
        connect_s = n / 1000.0 + 5  # generous: connections are made at thousands per second
        timeout = cfg["warmup"] + cfg["duration"] + cfg["drain"] + cfg["idle_hold"] \
            + connect_s + 60 + (cfg["storm_timeout"] if scenario == "storm" else 0)
        # What else ran meanwhile: every process's CPU time but the server's (or the nodes'
        # and Redis's), wsbench's and ours (this machine may be shared; a busy neighbour
        # shows, and the run is done again).
        t0, tasks0 = time.monotonic(), task_times()
        with open(bench_log, "w") as blog:
            bench = spawn(pinned(cfg["client_cpu"], argv), stdout=subprocess.PIPE,
                          stderr=blog, text=True, cwd=ROOT)
        try:
            out, _ = bench.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(bench)
            out, _ = bench.communicate()
            rec["error"] = f"wsbench still running after {timeout:.0f} s: stopped"
        wall = time.monotonic() - t0
        ours = {os.getpid(), bench.pid} | {p.pid for p in nodes + [redis] if p is not None} \
            | set(measured)
        other = foreign_cpu_s(tasks0, task_times(), ours)
        rec["other_cpu"] = round(other / wall, 3)
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    rec["lines"].append(json.loads(line))
                except ValueError:
                    pass
        if rec["lines"]:
            rec["result"] = rec["lines"][-1]
        if bench.returncode != 0 and rec["error"] is None:
            rec["error"] = f"wsbench exited with status {bench.returncode}: " + \
                tail(bench_log, 3)
        if rec["result"] is None and rec["error"] is None:
            rec["error"] = "wsbench printed no JSON result"
        watched = [(p, plog, "server" if k == 1 else f"node {i + 1}")
                   for i, (p, plog) in enumerate(zip(nodes, node_logs))]
        if redis is not None:
            watched.append((redis, redis_log, "redis-server"))
        for p, plog, what in watched:
            if p.poll() is not None:
                rec["error"] = (rec["error"] + "; " if rec["error"] else "") + \
                    f"{what} exited with status {p.returncode} during the run: " + tail(plog)
    except RuntimeError as e:
        rec["error"] = str(e)
    finally:
        stop(bench)
        for p in nodes:
            stop(p)
        stop(redis)  # after the nodes, which would otherwise only log its loss
    return rec


# ---- judging results ---------------------------------------------------------------------

def num(r, key, default=None):
    if not r:
        return default
    v = r.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def run_passes(rec):
    r = rec.get("result")
    if rec.get("error") or not r:
        return False
    return (num(r, "p99_ms", math.inf) < P99_LIMIT_MS and num(r, "loss", 1.0) < LOSS_LIMIT
            and num(r, "connect_failures", 0) == 0 and num(r, "bad_frames", 0) == 0
            and num(r, "foreign", 0) == 0)


def median_of(recs, key, failed=None):
    """Median over the repeats; a run without a result counts as `failed` (or is skipped)."""
    vals = []
    for rec in recs:
        v = num(rec.get("result"), key)
        if v is None or rec.get("error"):
            if failed is not None:
                vals.append(failed)
            elif v is not None:
                vals.append(v)
            continue
        vals.append(v)
    return statistics.median(vals) if vals else None


def point_summary(recs):
    """The reported figures of one point (server, scenario, n, path): medians of repeats."""
    keys = ["p50_ms", "p99_ms", "p999_ms", "max_ms", "deliveries_per_s", "server_cpu",
            "client_cpu", "server_rss_kb", "rss_per_conn_bytes", "cycles_per_s", "sent",
            "expected", "received", "connect_failures", "bad_frames", "failures", "disconnects",
            "connected",
            # several nodes (wsbench with a list of ports) and Redis
            "local_p50_ms", "local_p99_ms", "cross_p50_ms", "cross_p99_ms", "cross_p999_ms",
            "cross_max_ms", "local_received", "cross_received", "cross_expected", "redis_cpu",
            "redis_rss_kb",
            # rooms (wsbench --rooms)
            "rooms", "rooms_joined", "rooms_with_loss", "room_loss_max", "room_p99_ms_median",
            "room_p99_ms_max", "foreign", "send_lag_p99_ms", "measured_wall_s",
            "loop_busy_max_ms",
            # issue 12: freshness, reordering, memory, our own CPU, frames vs messages
            "fresh_p50_ms", "fresh_p99_ms", "fresh_max_ms", "fresh_samples",
            "fresh_never_pairs", "reordered", "duplicates", "server_rss_max_kb", "server_hwm_kb",
            "loadgen_cpu_pct", "frames_per_s_in", "messages_per_s_in", "messages_per_frame",
            "batch_clients",
            # storm
            "connect_all_s", "open_at_p50_ms", "open_at_p99_ms", "open_at_max_ms", "welcomed",
            "welcome_all_s", "welcome_at_p50_ms", "welcome_at_p99_ms", "welcome_at_max_ms",
            "connect_to_welcome_p99_ms", "rosters_complete", "roster_all_s", "roster_at_p99_ms",
            "view_violations", "welcome_peers_max", "welcomes_with_count", "server_cpu_s"]
    s = {k: median_of(recs, k) for k in keys}
    others = [r["other_cpu"] for r in recs if r.get("other_cpu") is not None]
    s["other_cpu"] = statistics.median(others) if others else None
    # Several nodes: each node's CPU, the median over the repeats node by node.
    each = [r["result"]["server_cpu_each"] for r in recs
            if r.get("result") and not r.get("error")
            and isinstance(r["result"].get("server_cpu_each"), list)]
    s["server_cpu_each"] = [statistics.median(v) if None not in v else None
                            for v in zip(*each)] if each else None
    s["p99_judged"] = median_of(recs, "p99_ms", failed=math.inf)
    s["loss"] = median_of(recs, "loss", failed=1.0)
    s["runs"] = len(recs)
    s["runs_ok"] = sum(1 for r in recs if r.get("result") and not r.get("error"))
    s["runs_pass"] = sum(1 for r in recs if run_passes(r))
    s["errors"] = [r["error"] for r in recs if r.get("error")]
    s["passes"] = (s["runs_ok"] > 0 and s["p99_judged"] < P99_LIMIT_MS and s["loss"] < LOSS_LIMIT
                   and (s["connect_failures"] or 0) == 0 and (s["bad_frames"] or 0) == 0
                   and (s["foreign"] or 0) == 0)
    s["load_before"] = [r.get("load_before") for r in recs]
    # wsbench's own verdict on itself: runs where it used 90 % of its core or more
    s["saturated"] = sum(1 for r in recs if (r.get("result") or {}).get("loadgen_saturated"))
    s["roster_tracked"] = any((r.get("result") or {}).get("roster_tracked") for r in recs)
    # Goals that allow no exception are judged on the worst run, not the median.
    for key in ("disconnects", "connect_failures", "reordered", "view_violations"):
        vals = [num(r.get("result"), key) for r in recs if r.get("result")]
        vals = [v for v in vals if v is not None]
        s[key + "_max"] = max(vals) if vals else None
    s["welcome_all_judged"] = median_of(recs, "welcome_all_s", failed=math.inf)
    s["roster_all_judged"] = median_of(recs, "roster_all_s", failed=math.inf)
    s["connect_all_judged"] = median_of(recs, "connect_all_s", failed=math.inf)
    peaks = [max(num(r.get("result"), "server_rss_max_kb", 0), num(r.get("result"),
                                                                 "server_hwm_kb", 0))
             for r in recs if r.get("result") and not r.get("error")]
    s["server_peak_kb"] = statistics.median(peaks) if peaks and max(peaks) > 0 else None
    return s


# ---- issue 12's goals --------------------------------------------------------------------

def below(v, limit):
    return None if v is None else v < limit


def overload_goals(p):
    """Issue 12's overload goals for one point: {goal: True, False or None (not known)}.
    Latency and freshness are medians over the runs (a run without a result counts as ∞);
    drops and reordering must hold in every run."""
    ok = p["runs_ok"] > 0
    return {
        "p99 < 100 ms": below(p["p99_judged"], P99_LIMIT_MS),
        "fresh p99 < 100 ms": below(p["fresh_p99_ms"], FRESH_LIMIT_MS) if ok else False,
        "RSS ≤ 64 MiB": None if p["server_rss_max_kb"] is None else
        p["server_rss_max_kb"] <= RSS_LIMIT_KB,
        "no client dropped": (p["disconnects_max"] or 0) == 0 and
        (p["connect_failures_max"] or 0) == 0 if ok else False,
        "0 reordered": None if p["reordered_max"] is None else p["reordered_max"] == 0,
    }


def storm_goals(p, rooms):
    """Issue 12's storm goals: one room (all welcomed within 5 s, peak RSS ≤ 64 MiB, every
    view by the rule) or many rooms (every roster complete within 1 s)."""
    views = None if p["view_violations_max"] is None else p["view_violations_max"] == 0
    if rooms:
        return {"rosters complete < 1 s": below(p["roster_all_judged"], STORM_ROSTER_S),
                "views by the rule": views}
    return {"all welcomed < 5 s": below(p["welcome_all_judged"], STORM_WELCOME_S),
            "peak RSS ≤ 64 MiB": None if p["server_peak_kb"] is None else
            p["server_peak_kb"] <= RSS_LIMIT_KB,
            "views by the rule": views}


def fmt_goal(v):
    return "—" if v is None else ("yes" if v else "**no**")


def issue12_verdict(scenario, p, variant):
    sat = f" (wsbench saturated in {p['saturated']}/{p['runs']})" if p["saturated"] else ""
    if scenario == "overload":
        g = overload_goals(p)
        return ", ".join(f"{k}: {fmt_goal(v).strip('*')}" for k, v in g.items()) + sat
    if scenario == "storm":
        return (f"connected all in {fmt_s(p['connect_all_judged'])}, welcomed all in "
                f"{fmt_s(p['welcome_all_judged'])}, rosters in "
                f"{fmt_s(p['roster_all_judged']) if p['roster_tracked'] else 'not tracked'}, "
                f"peak RSS {fmt_kib(p['server_peak_kb'])}{sat}")
    return (f"p99 {fmt_ms(p['p99_judged'])}, fresh p99 {fmt_ms(p['fresh_p99_ms'])}, server CPU "
            f"{fmt_cpu(p['server_cpu'])}{sat}")


def fmt_s(v):
    if v is None:
        return "—"
    if math.isinf(v):
        return "never"
    return f"{v:.2f} s" if v < 100 else f"{v:.0f} s"


def group(runs):
    pts = {}
    for rec in runs:
        if rec.get("discarded"):
            continue
        pts.setdefault((rec["server"], rec["scenario"], rec["path"], rec["n"],
                        rec.get("variant") or ""), []).append(rec)
    return pts


# ---- the run -----------------------------------------------------------------------------

def describe(rec):
    r = rec.get("result") or {}
    bits = []
    for k, fmt in [("p50_ms", "p50={:.2f}ms"), ("p99_ms", "p99={:.2f}ms"),
                   ("cross_p50_ms", "cross_p50={:.2f}ms"), ("cross_p99_ms", "cross_p99={:.2f}ms"),
                   ("loss", "loss={:.4f}"), ("deliveries_per_s", "deliv/s={:,.0f}"),
                   ("cycles_per_s", "cycles/s={:,.0f}"), ("rss_per_conn_bytes", "B/conn={:,.0f}"),
                   ("room_p99_ms_max", "worst_room_p99={:.2f}ms"), ("foreign", "foreign={:.0f}"),
                   ("fresh_p99_ms", "fresh_p99={:.2f}ms"), ("reordered", "reordered={:.0f}"),
                   ("welcome_all_s", "welcomed_all={:.2f}s"), ("roster_all_s", "rosters={:.2f}s"),
                   ("connect_all_s", "connected_all={:.2f}s"),
                   ("view_violations", "violations={:.0f}"),
                   ("server_rss_max_kb", "rss_max={:,.0f}KB"),
                   ("server_rss_kb", "rss={:,.0f}KB"), ("server_cpu", "srv_cpu={:.2f}"),
                   ("redis_cpu", "redis_cpu={:.2f}"), ("client_cpu", "cli_cpu={:.2f}")]:
        v = num(r, k)
        if v is not None:
            bits.append(fmt.format(v))
    if rec.get("other_cpu") is not None:
        bits.append(f"other_cpu={rec['other_cpu']:.2f}")
    if r.get("loadgen_saturated"):
        bits.append("LOADGEN SATURATED")
    if rec["scenario"] in ("cursor", "rooms"):
        verdict = "PASS" if run_passes(rec) else "FAIL"
    else:
        verdict = "ok" if rec.get("result") and not rec.get("error") else "FAILED"
    if rec.get("error"):
        bits.append("ERROR: " + rec["error"])
    return verdict + " " + " ".join(bits)


def save_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def run_all(cfg, meta, kept):
    runs = []
    partial = os.path.join(WORK, "results-partial.json")
    t0 = time.monotonic()

    def one(server, scenario, n, path, tag, rep, run_cfg=cfg, max_attempts=MAX_ATTEMPTS,
            variant=None):
        """One run of a point, done again (up to max_attempts) while others disturb it."""
        if True:
            el = time.monotonic() - t0
            vn = variant_name(variant)
            print(f"[{el/60:5.1f} min] {server:13s} {scenario:6s} {path:5s} N={n:<5d} "
                  f"{vn + ' ' if vn else ''}run {rep}/{cfg['repeat']} ...", flush=True)
            attempts = []
            for attempt in range(1, max_attempts + 1):
                rec = run_once(run_cfg, server, scenario, n, path, rep, tag, variant)
                rec["invocation"] = meta["started"]
                runs.append(rec)
                attempts.append(rec)
                print(f"    {describe(rec)}", flush=True)
                if rec.get("result"):
                    print(f"    {json.dumps(rec['result'], separators=(',', ':'))}", flush=True)
                other = rec.get("other_cpu") or 0.0
                if other <= cfg["max_other"] or scenario == "idle" or \
                        (variant or {}).get("mode") == "idle":
                    break
                rec["discarded"] = f"other processes used {other:.2f} cores during the run"
                if attempt < max_attempts:
                    print(f"    discarded: {rec['discarded']}; again", flush=True)
            else:
                # Disturbed every time: keep the least disturbed attempt (it shows a †).
                rec = min(attempts, key=lambda r: r.get("other_cpu") or 0.0)
                del rec["discarded"]
                print(f"    every attempt disturbed: keeping the least disturbed "
                      f"(other processes {rec.get('other_cpu') or 0.0:.2f} cores)", flush=True)
            save_json(partial, {"meta": meta, "runs": kept + runs})
            return rec

    def point(server, scenario, n, path, tag):
        recs = [one(server, scenario, n, path, tag, rep) for rep in range(1, cfg["repeat"] + 1)]
        return point_summary(recs)

    def issue12_points(scenario):
        """(server, n, variant) of each point of an issue-12 scenario, in the order run."""
        flags = cfg["wsrelay_flags"]
        servers = [s for s in cfg["servers"] if s not in CLUSTER_NODES]
        if scenario in WSRELAY_ONLY:
            servers = [s for s in servers if s == "wsrelay"]
        pts_ = []
        if scenario == "overload":
            pts_ = [(s, n, None) for n in cfg["overload_n"] for s in servers]
        elif scenario == "storm":
            pts_ = [(s, cfg["storm_n"], None) for s in servers]
            for spec in cfg["storm_rooms"]:
                n, rooms = (int(x) for x in spec.split("/"))
                pts_ += [(s, n, {"rooms": rooms}) for s in servers]
        elif scenario == "pacing":
            for iv in cfg["pacing_intervals"]:
                if iv not in ("0", "0ms", "0s") and not flags.get("--send-interval"):
                    print(f"  => pacing --send-interval {iv}: not run (this wsrelay has no "
                          "--send-interval yet)", flush=True)
                    continue
                v = {"send_interval": iv} if flags.get("--send-interval") else \
                    {"send_interval": None}
                pts_ += [(s, cfg["pacing_n"], v if v["send_interval"] else None)
                         for s in servers]
        elif scenario == "batch":
            pts_ = [(s, cfg["batch_n"], {"batch": b}) for b in (False, True) for s in servers]
        return pts_

    def tls_points():
        """Issue 13: wsrelay plain and TLS side by side, run by run in turn; the handshake
        runs against nginx. Cursor steps up as the cursor scenario does, each variant
        until it has failed twice in a row."""
        if "wsrelay" not in cfg["servers"]:
            print("  => tls: not run (it measures wsrelay: BENCH_SERVERS has no wsrelay)",
                  flush=True)
            return
        both = [False, True]
        fails = {False: 0, True: 0}
        for n in cfg["tls_steps"]:
            live = [t for t in both if fails[t] < 2]
            if not live:
                break
            recs = {t: [] for t in live}
            for rep_ in range(1, cfg["repeat"] + 1):
                for t in live:
                    recs[t].append(one("wsrelay", "tls", n, "/ws", "tls", rep_,
                                       variant={"mode": "cursor", "tls": t}))
            for t in live:
                p = point_summary(recs[t])
                fails[t] = 0 if p["passes"] else fails[t] + 1
                print(f"  => wsrelay {'TLS' if t else 'plain'} cursor N={n}: "
                      f"{'pass' if p['passes'] else 'FAIL'} (median p99 "
                      f"{fmt_ms(p['p99_judged'])}, loss {fmt_pct(p['loss'])})", flush=True)
        for mode, n, path in (("fanout", cfg["fanout_n"], "/ws"),
                              ("idle", cfg["idle_n"], "/echo")):
            for rep_ in range(1, cfg["repeat"] + 1):
                for t in both:
                    one("wsrelay", "tls", n, path, "tls", rep_, variant={"mode": mode, "tls": t})
        if not shutil.which("nginx"):
            print("  => tls handshake vs nginx: nginx is missing (scripts/bench-deps.sh "
                  "installs Debian's): wsrelay alone", flush=True)
        for rep_ in range(1, cfg["repeat"] + 1):
            for server in ("wsrelay", "nginx"):
                if server == "nginx" and not shutil.which("nginx"):
                    continue
                one(server, "tls", cfg["churn_n"], "/", "tls", rep_,
                    variant={"mode": "handshake", "tls": True})

    for scenario in cfg["scenarios"]:
        if scenario == "tls":
            tls_points()
            continue
        if scenario in ISSUE12:
            for s in cfg["servers"]:
                if s in CLUSTER_NODES or (scenario in WSRELAY_ONLY and s != "wsrelay"):
                    print(f"  => {s} {scenario}: not run ("
                          + ("wsrelay's own flag" if scenario in WSRELAY_ONLY else
                             "issue 12 measures the single node") + ")", flush=True)
            # Servers take turns run by run, as for rooms: a neighbour's burst lands on all.
            plist = issue12_points(scenario)
            for key in dict.fromkeys((n, variant_name(v)) for _, n, v in plist):
                group_ = [(s, n, v) for s, n, v in plist if (n, variant_name(v)) == key]
                recs = {s: [] for s, _, _ in group_}
                for rep in range(1, cfg["repeat"] + 1):
                    for s, n, v in group_:
                        recs[s].append(one(s, scenario, n, "/ws", scenario, rep, variant=v))
                for s, n, v in group_:
                    p = point_summary(recs[s])
                    print(f"  => {s} {scenario} N={n} {variant_name(v)}: " +
                          issue12_verdict(scenario, p, v), flush=True)
            continue
        if scenario == "rooms":
            # wsrelay and uWS take turns, run by run: a neighbour's burst of load lands on
            # both, not on one server's three runs.
            rs = [s for s in cfg["servers"] if s in ROOMS_SERVERS]
            for s in cfg["servers"]:
                if s not in ROOMS_SERVERS:
                    print(f"  => {s} rooms: not run (" + ("the Node demo has no rooms"
                          if s == "node-ws-demo" else "rooms across nodes: "
                          "bench/rooms_cluster.py") + ")", flush=True)
            rcfg = dict(cfg, quiet_wait=cfg["rooms_quiet_wait"])
            for n in cfg["rooms_n"]:
                recs = {s: [] for s in rs}
                for rep in range(1, cfg["repeat"] + 1):
                    for s in rs:
                        recs[s].append(one(s, "rooms", n, "/ws/r*", "rooms", rep, rcfg,
                                           cfg["rooms_attempts"]))
                for s in rs:
                    p = point_summary(recs[s])
                    print(f"  => {s} rooms N={n}: {'pass' if p['passes'] else 'FAIL'} (median "
                          f"p99 {fmt_ms(p['p99_judged'])}, loss {fmt_pct(p['loss'])})",
                          flush=True)
            continue
        for server in cfg["servers"]:
            if server in CLUSTER_NODES and scenario not in CLUSTER_SCENARIOS:
                print(f"  => {server} {scenario}: not run (a cluster runs "
                      f"{' and '.join(CLUSTER_SCENARIOS)}; a node's {scenario} figures are the "
                      "single node's)", flush=True)
                continue
            if scenario == "cursor":
                fails_in_row = 0
                for n in cfg["steps"]:
                    s = point(server, "cursor", n, "/ws", "ws")
                    print(f"  => {server} cursor N={n}: {'pass' if s['passes'] else 'FAIL'} "
                          f"(median p99 {fmt_ms(s['p99_judged'])}, loss {fmt_pct(s['loss'])})",
                          flush=True)
                    fails_in_row = 0 if s["passes"] else fails_in_row + 1
                    if fails_in_row >= 2:
                        print(f"  => {server}: two consecutive failures, stop stepping",
                              flush=True)
                        break
            elif scenario == "fanout":
                point(server, "fanout", cfg["fanout_n"], "/ws", "ws")
            elif scenario == "idle":
                if server == "wsrelay":
                    point(server, "idle", cfg["idle_n"], "/echo", "echo")
                    point(server, "idle", cfg["idle_ws_n"], "/ws", "ws")
                else:
                    point(server, "idle", cfg["idle_n"], "/ws", "ws")
            else:  # churn: like idle, wsrelay also on /echo, where no join/leave is sent
                if server == "wsrelay":
                    point(server, "churn", cfg["churn_n"], "/echo", "echo")
                point(server, "churn", cfg["churn_n"], "/ws", "ws")
    meta["elapsed_s"] = round(time.monotonic() - t0, 1)
    meta["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return runs


# ---- machine and versions ----------------------------------------------------------------

def sh(argv, cwd=ROOT):
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def pkg_version(name):
    try:
        with open(os.path.join(PEERS, "node_modules", name, "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return "not installed"


def invocation_summary(meta):
    """What the report says about each `make bench` whose runs it shows."""
    cfg = meta["config"]
    return {"commit": meta["commit"], "wsrelay_version": meta.get("wsrelay_version"),
            "wsbench_commit": meta.get("wsbench_commit"), "servers": cfg["servers"],
            "scenarios": cfg["scenarios"], "elapsed_s": meta.get("elapsed_s")}


def machine_meta(cfg):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    commit = sh(["git", "rev-parse", "--short=12", "HEAD"]) or "unknown"
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "include",
                "bench/wsbench.c"])
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "node": sh(["node", "--version"]),
        "ws": pkg_version("ws"),
        "uws": pkg_version("@trufflesuite/uws-js-unofficial"),
        "wsrelay_version": sh([WSRELAY, "--version"]),
        "commit": commit + (" (with uncommitted changes to src/, include/ or wsbench.c)"
                            if dirty else ""),
        "wsbench_commit": sh(["git", "log", "-1", "--format=%h", "--", "bench/wsbench.c"])
        or "uncommitted",
        "gnuplot": sh(["gnuplot", "--version"]),
        "redis": sh(["redis-server", "--version"]) if any(s in CLUSTER_NODES
                                                          for s in cfg["servers"]) else "",
        "config": cfg,
    }


# ---- the report --------------------------------------------------------------------------

def fmt_ms(v):
    if v is None:
        return "—"
    if math.isinf(v):
        return "no result"
    if v >= 1000:
        return f"{v/1000:.2f} s"
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def fmt_pct(v):
    if v is None:
        return "—"
    return f"{v*100:.2f} %" if v < 0.1 else f"{v*100:.0f} %"


def fmt_rate(v):
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v/1e6:.2f} M"
    if v >= 1e3:
        return f"{v/1e3:.0f} k" if v >= 1e4 else f"{v/1e3:.1f} k"
    return f"{v:.0f}"


def fmt_kib(kb):
    if kb is None:
        return "—"
    return f"{kb/1024:.1f} MiB"


def fmt_bytes(b):
    if b is None:
        return "—"
    return f"{b/1024:.1f} KB" if b >= 1024 else f"{b:.0f} B"


def fmt_cpu(v, flag=False):
    if v is None:
        return "—"
    s = f"{v*100:.0f} %"
    return s + " ⚠" if flag and v > CLIENT_CPU_FLAG else s


def fmt_other(v, limit):
    if v is None:
        return "—"
    s = f"{v*100:.0f} %"
    return s + " †" if v > limit else s


def cursor_points(pts, server):
    rows = [(k[3], point_summary(v)) for k, v in pts.items()
            if k[0] == server and k[1] == "cursor"]
    return sorted(rows)


def best_cursor(pts, server):
    best = None
    for n, s in cursor_points(pts, server):
        if s["passes"]:
            best = (n, s)
    return best


def single(pts, server, scenario, path=None):
    for k, v in pts.items():
        if k[0] == server and k[1] == scenario and (path is None or k[2] == path):
            return k[3], point_summary(v)
    return None, None


def write_plots(data, out_dir):
    pts = group(data["runs"])
    servers = [s for s in SERVERS if any(k[0] == s and k[1] == "cursor" for k in pts)]
    if not servers:
        return []
    gp = shutil.which("gnuplot")
    if not gp:
        print("run.py: gnuplot not found (scripts/bench-deps.sh installs gnuplot-nox): "
              "no plots", file=sys.stderr)
        return []
    colors = {"wsrelay": "#1f77b4", "wsrelay-2node": "#9467bd", "node-ws-demo": "#d62728",
              "uws-demo": "#2ca02c"}
    made = []
    with tempfile.TemporaryDirectory(prefix="wsrelay-bench-") as tmp:
        ymax_deliv, xmax, p99s = 0.0, 0, []
        files = {}
        for s in servers:
            path = os.path.join(tmp, s + ".dat")
            with open(path, "w") as f:
                f.write("# clients p99_ms deliveries_per_s passes cross_p99_ms\n")
                for n, p in cursor_points(pts, s):
                    p99 = p["p99_ms"] if p["p99_ms"] is not None else "NaN"
                    d = p["deliveries_per_s"] if p["deliveries_per_s"] is not None else "NaN"
                    x99 = p["cross_p99_ms"] if p["cross_p99_ms"] is not None else "NaN"
                    f.write(f"{n} {p99} {d} {1 if p['passes'] else 0} {x99}\n")
                    p99s += [v for v in (p["p99_ms"], p["cross_p99_ms"]) if v]
                    if p["deliveries_per_s"]:
                        ymax_deliv = max(ymax_deliv, p["deliveries_per_s"])
                    xmax = max(xmax, n)
            files[s] = path

        def series(col):
            parts = []
            for s in servers:
                c, f, t = colors[s], files[s], LABEL[s]
                parts.append(f"'{f}' using 1:{col} with lines lw 2 lc rgb '{c}' title '{t}'")
                parts.append(f"'{f}' using 1:($4==1?${col}:1/0) with points pt 7 ps 1.2 "
                             f"lc rgb '{c}' notitle")
                parts.append(f"'{f}' using 1:($4==0?${col}:1/0) with points pt 6 ps 1.4 "
                             f"lc rgb '{c}' notitle")
            return parts

        # A cluster's cross-node p99 (through Redis), dashed in its colour beside its p99.
        cross = [f"'{files[s]}' using 1:5 with lines dt 2 lw 1.5 lc rgb '{colors[s]}' "
                 f"title '{LABEL[s]}: cross-node p99'" for s in servers if s in CLUSTER_NODES]

        common = ("set terminal pngcairo size 960,600 enhanced font 'sans,11'\n"
                  "set grid\nset key top left box opaque\n"
                  f"set xrange [0:{xmax * 1.05:.0f}]\n"
                  "set xlabel 'clients (each sends 30 updates/s and receives every update)'\n")
        p99_png = os.path.join(out_dir, "bench-p99.png")
        deliv_png = os.path.join(out_dir, "bench-deliveries.png")
        script = common + (
            f"set output '{p99_png}'\n"
            "set title 'Cursor relay: p99 latency (receive − scheduled send), "
            "filled = point passes, open = fails'\n"
            "set ylabel 'p99 latency (ms, log scale)'\nset logscale y\nset format y '%g'\n"
            "set key bottom right box opaque\n"
            f"set yrange [{min(p99s or [1]) / 2:g}:{max(max(p99s or [1]) * 2, 3 * P99_LIMIT_MS):g}]\n"
            f"set arrow 1 from graph 0, first {P99_LIMIT_MS} to graph 1, first {P99_LIMIT_MS} "
            "nohead dt 2 lw 1.5 lc rgb '#555555'\n"
            f"set label 1 '{P99_LIMIT_MS:.0f} ms limit' at graph 0.99, first "
            f"{P99_LIMIT_MS * 1.25} right tc rgb '#555555'\n"
            "plot " + ", \\\n     ".join(series(2) + cross) + "\n"
            "unset logscale y\nunset arrow 1\nunset label 1\nset autoscale y\n"
            "set key top left box opaque\n"
            f"set output '{deliv_png}'\n"
            "set title 'Cursor relay: deliveries per second (30·N² demanded), "
            "filled = point passes, open = fails'\n"
            "set ylabel 'deliveries per second (millions)'\nset format y '%.1f'\n"
            f"set yrange [0:{max(ymax_deliv, 1) * 1.15 / 1e6:.3f}]\n"
            "plot 30*x*x/1e6 with lines dt 2 lw 1.5 lc rgb '#888888' title 'demanded: 30·N²', "
            "\\\n     " + ", \\\n     ".join(
                s.replace("using 1:3", "using 1:($3/1e6)")
                 .replace("?$3:1/0", "?$3/1e6:1/0") for s in series(3)) + "\n")
        r = subprocess.run([gp], input=script, text=True, capture_output=True)
        if r.returncode != 0:
            print("run.py: gnuplot failed:\n" + r.stderr, file=sys.stderr)
            return []
        made = [p99_png, deliv_png]
    return made


def fmt_cpus(vals):
    """Several nodes' CPU: "41 % + 40 %"."""
    return " + ".join(fmt_cpu(v) for v in vals) if vals else "—"


def cluster_section(pts, cfg, w):
    """Issue 5's figures: wsrelay as a cluster beside the single node, same cursor load."""
    clusters = [s for s in CLUSTER_NODES if any(k[0] == s for k in pts)]
    if not clusters:
        return
    w("## Two nodes over Redis")
    w("")
    w("Issue 5's benchmark: the same cursor load as the single node, the clients split evenly "
      "over two wsrelay nodes (`--redis`) joined through one Redis channel, to show what the "
      "backplane costs. A message reaches the clients on its sender's node directly and those "
      "on the other node through Redis (PUBLISH, then the other node's subscription): "
      "**cross-node** latency is that path, measured like every latency here (receive time − "
      "scheduled send time), and **same-node** is the direct one. About half the receivers "
      "sit on the other node, so about half of all deliveries are cross-node.")
    w("")
    pin = "unpinned" if cfg["server_cpu"] is None else \
        f"both nodes **and** Redis pinned to core {cfg['server_cpu']}, the single node's one " \
        f"core, and wsbench to core {cfg['client_cpu']}"
    w(f"Same hardware budget as the single node: {pin}. The nodes' CPU and Redis's therefore "
      "add up to at most 100 % of one core: beside the single node, this measures what the "
      "backplane costs on the same hardware (each message is published once, delivered by "
      "Redis to both nodes, checked and fanned out again by the other node), not what a "
      "cluster of separate machines can carry. Server CPU is the sum over both nodes, Redis "
      "CPU is redis-server's own; server RSS is the sum over both nodes.")
    w("")
    # The best passing point of each, as in the summary.
    with_cursor = [c for c in clusters if cursor_points(pts, c)]
    if with_cursor:
        w(f"| setup | max clients at {RATE_HZ} Hz with p99 < {P99_LIMIT_MS:.0f} ms and loss "
          "< 1 % | deliveries/s there | p99 there (all deliveries) | cross-node p50 | "
          "cross-node p99 | server CPU (both nodes) | Redis CPU | wsbench CPU |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for s in ["wsrelay"] + with_cursor:
            tried = cursor_points(pts, s)
            if not tried:
                continue
            best = best_cursor(pts, s)
            lab = "wsrelay, 1 node" if s == "wsrelay" else LABEL[s]
            if not best:
                w(f"| {lab} | none of the N tried | — | — | — | — | — | — | — |")
                continue
            n, p = best
            mc = f"**{n}**" + (" (the largest N tried)" if n == tried[-1][0] else "")
            if s in CLUSTER_NODES:
                each = f" ({fmt_cpus(p['server_cpu_each'])})" if p["server_cpu_each"] else ""
                cl = (f"{fmt_ms(p['cross_p50_ms'])} | {fmt_ms(p['cross_p99_ms'])} | "
                      f"{fmt_cpu(p['server_cpu'])}{each} | {fmt_cpu(p['redis_cpu'])}")
            else:
                cl = f"— | — | {fmt_cpu(p['server_cpu'])} | —"
            w(f"| {lab} | {mc} | {fmt_rate(p['deliveries_per_s'])} | {fmt_ms(p['p99_ms'])} | "
              f"{cl} | {fmt_cpu(p['client_cpu'], True)} |")
        w("")
    for c in clusters:
        rows = cursor_points(pts, c)
        one = dict(cursor_points(pts, "wsrelay"))
        if rows:
            w(f"At each client count {LABEL[c]} ran, beside the single node (medians; the full "
              "rows are under *Cursor scenario, every point*):")
            w("")
            w("| clients | 1 node: deliveries/s | 1 node: p99 | 1 node: server CPU | 2 nodes: "
              "deliveries/s | 2 nodes: p99 | same-node p99 | cross-node p50 | cross-node p99 | "
              "nodes' CPU | Redis CPU | wsbench CPU | 2 nodes: result |")
            w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n, p in rows:
            o = one.get(n)
            ocols = (f"{fmt_rate(o['deliveries_per_s'])} | {fmt_ms(o['p99_ms'])} | "
                     f"{fmt_cpu(o['server_cpu'])}") if o else "not run | — | —"
            w(f"| {n} | {ocols} | {fmt_rate(p['deliveries_per_s'])} | {fmt_ms(p['p99_ms'])} | "
              f"{fmt_ms(p['local_p99_ms'])} | {fmt_ms(p['cross_p50_ms'])} | "
              f"{fmt_ms(p['cross_p99_ms'])} | {fmt_cpus(p['server_cpu_each'])} | "
              f"{fmt_cpu(p['redis_cpu'])} | {fmt_cpu(p['client_cpu'], True)} | "
              f"{'pass' if p['passes'] else '**fail**'} |")
        if rows:
            w("")
        _, fo = single(pts, c, "fanout")
        _, fo1 = single(pts, "wsrelay", "fanout")
        if fo and fo["deliveries_per_s"] is not None:
            w(f"Fan-out, 1 sender (on the first node) → {cfg['fanout_n']} receivers split over "
              f"both nodes: {fmt_rate(fo['deliveries_per_s'])} frames/s (single node: "
              f"{fmt_rate(fo1['deliveries_per_s']) if fo1 else 'not run'}); nodes' CPU "
              f"{fmt_cpus(fo['server_cpu_each'])}, Redis CPU {fmt_cpu(fo['redis_cpu'])}, "
              f"cross-node p99 {fmt_ms(fo['cross_p99_ms'])} (mostly the sender's window "
              "queue, as for the single node).")
            w("")


ROOMS_GOAL_MS = 50.0  # issue 11: p99 under 50 ms with the server on one core


def load_side_file(out_dir, name, is_json=True):
    """A saved output of bench/rooms_cluster.py or bench/room_cost.py, or None."""
    try:
        with open(os.path.join(out_dir, name)) as f:
            return json.load(f) if is_json else f.read()
    except (OSError, ValueError):
        return None


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


GENERATOR_STALL_MS = 100.0  # wsbench's loop busy this long at once: it delayed its reading


def generator_behind(rec, duration):
    """True if wsbench could not keep up: its loop went more than GENERATOR_STALL_MS without
    looking at its sockets (then its latencies include its own lateness in reading), or it
    overran the measured period (its CPU marks, which bracket the period, are more than 10 %
    off its length: then its CPU shares are over the wrong span too)."""
    r = rec.get("result")
    wall, busy = num(r, "measured_wall_s"), num(r, "loop_busy_max_ms")
    return (wall is not None and abs(wall - duration) > 0.1 * duration) or \
        (busy is not None and busy > GENERATOR_STALL_MS)


def rooms_section(pts, cfg, w, out_dir, runs):
    """Issue 11's figures: many small rooms on one core, beside uWS.js with a topic per room;
    then what bench/room_cost.py and bench/rooms_cluster.py saved."""
    keys = sorted([k for k in pts if k[1] == "rooms"], key=lambda k: (SERVERS.index(k[0]), k[3]))
    cost = load_side_file(out_dir, "bench-room-cost.txt", is_json=False)
    cl = load_side_file(out_dir, "bench-rooms-cluster.json")
    if not keys and cost is None and cl is None:
        return
    w("## Rooms")
    w("")
    if keys:
        size = cfg.get("room_size", 10)
        sizes = sorted({k[3] for k in keys})
        n = max(sizes)
        nrooms = max(1, n // size)
        pin = "unpinned" if cfg["server_cpu"] is None else \
            f"the server on core {cfg['server_cpu']} (`taskset -c {cfg['server_cpu']}`) and " \
            f"wsbench on core {cfg['client_cpu']}"
        w(f"Issue 11's many-rooms scenario: {n:,} clients in {nrooms:,} rooms of {size}, every "
          f"client moving at {RATE_HZ} Hz ({RATE_HZ * n:,} messages/s in, "
          f"{RATE_HZ * n * size:,} deliveries/s out), " + (f"{pin}; and the same with "
          f"{' and '.join(f'{x:,}' for x in sizes if x != n)} clients in rooms of {size}. "
          if len(sizes) > 1 else f"{pin}. ") +
          "Each client "
          "is on `/ws/r<i mod rooms>` and is owed exactly its own room's messages (its own "
          "included): loss is counted room by room, and a delivery from another room would be "
          "an error (`foreign`). uWebSockets.js runs bench/peers/uws-demo.js with one topic per "
          "room (the client on `/ws/<room>` subscribes to `<room>` and publishes there). The "
          "Node ws demo has no rooms and is not run. The two servers take turns, run by run, "
          f"{cfg['repeat']} runs each per point, {cfg.get('rooms_duration', cfg['duration'])} s "
          f"measured after {cfg['warmup']} s of warm-up; the medians are shown.")
        w("")
        w("```sh")
        w("BENCH_UPDATE=1 BENCH_SERVERS=wsrelay,uws-demo BENCH_SCENARIOS=rooms make bench")
        w(f"# each run: taskset -c {cfg['client_cpu']} bench/wsbench cursor --rooms N/{size} "
          f"--clients N --rate {RATE_HZ} --warmup {cfg['warmup']} --duration "
          f"{cfg.get('rooms_duration', cfg['duration'])} --drain {cfg['drain']} --port P "
          "--server-pid PID")
        w("```")
        w("")
        w("| clients (rooms) | server | deliveries/s | demanded | p50 | p99 | p99.9 | max "
          "| worst room's p99 | loss | rooms with loss | foreign | server CPU | server RSS "
          "| wsbench CPU | wsbench send lag p99 | other CPU | runs passing |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
          "|---|")
        summ = {}
        mo = min(cfg.get("max_other", 0.15), QUIET_OTHER)
        dur = cfg.get("rooms_duration", cfg["duration"])
        keys.sort(key=lambda k: (k[3], SERVERS.index(k[0])))
        for i, k in enumerate(keys):
            p = point_summary(pts[k])
            p["behind"] = sum(1 for r in pts[k] if generator_behind(r, dur))
            summ[(k[0], k[3])] = p
            behind_note = f" (wsbench behind in {p['behind']}) ‡" if p["behind"] else ""
            w(f"| {k[3]:,} ({k[3] // size:,}) | {LABEL[k[0]]} | {fmt_rate(p['deliveries_per_s'])} | "
              f"{fmt_rate(RATE_HZ * k[3] * size)} | {fmt_ms(p['p50_ms'])} | "
              f"{fmt_ms(p['p99_ms'])} | {fmt_ms(p['p999_ms'])} | {fmt_ms(p['max_ms'])} | "
              f"{fmt_ms(p['room_p99_ms_max'])} | {fmt_pct(p['loss'])} | "
              f"{p['rooms_with_loss'] if p['rooms_with_loss'] is not None else '—':} | "
              f"{p['foreign'] if p['foreign'] is not None else '—'} | "
              f"{fmt_cpu(p['server_cpu'])} | {fmt_kib(p['server_rss_kb'])} | "
              f"{fmt_cpu(p['client_cpu'], True)} | {fmt_ms(p['send_lag_p99_ms'])} | "
              f"{fmt_other(p['other_cpu'], mo)} | {p['runs_pass']}/{p['runs']}"
              f"{behind_note} |")
            if i + 1 < len(keys) and keys[i + 1][3] == k[3]:
                continue
            wr, uw = summ.get(("wsrelay", k[3])), summ.get(("uws-demo", k[3]))
            if not (wr and uw):
                continue
            w(f"| {k[3]:,} | *wsrelay ÷ uWebSockets.js* | "
              f"{ratio(wr['deliveries_per_s'], uw['deliveries_per_s'])} "
              f"| | {ratio(wr['p50_ms'], uw['p50_ms'])} | {ratio(wr['p99_ms'], uw['p99_ms'])} | "
              f"{ratio(wr['p999_ms'], uw['p999_ms'])} | {ratio(wr['max_ms'], uw['max_ms'])} | "
              f"{ratio(wr['room_p99_ms_max'], uw['room_p99_ms_max'])} | | | | "
              f"{ratio(wr['server_cpu'], uw['server_cpu'])} | "
              f"{ratio(wr['server_rss_kb'], uw['server_rss_kb'])} | "
              f"{ratio(wr['client_cpu'], uw['client_cpu'])} | | | |")
        w("")
        if any(p["behind"] for p in summ.values()):
            w("‡ In these runs the load generator could not keep up: its loop went more than "
              f"{GENERATOR_STALL_MS:.0f} ms at once without reading its sockets (*wsbench's "
              "longest busy stretch* below), or overran the measured period (the wall time "
              f"between the CPU readings that bracket the period, {dur} s, is far off). Its "
              "latencies then include its own backlog of unread messages; where the period was "
              "overrun, the deliveries/s are the period's messages received in a burst and "
              "the CPU shares are over the wrong span (0 % where the span was nil). Those "
              "figures do not measure the server.")
            w("")
        # every run, since the machine is shared: the spread is part of the result
        w("Every run, in the order they ran (other CPU: what other processes used meanwhile, "
          "in cores; the machine was shared):")
        w("")
        w("| run | clients | server | p99 | worst room's p99 | loss | deliveries/s | server CPU "
          "| wsbench CPU | wsbench send lag p99 | wsbench's longest busy stretch "
          "| measured period's wall time | other CPU | kept |")
        w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        rr = [r for r in runs if r["scenario"] == "rooms"]
        rr.sort(key=lambda r: r.get("started") or "")
        for i, r in enumerate(rr, 1):
            x = r.get("result") or {}
            kept = "discarded (disturbed)" if r.get("discarded") else \
                ("error: " + r["error"][:60] if r.get("error") else "yes")
            w(f"| {i} | {r['n']:,} | {LABEL[r['server']]} | {fmt_ms(num(x, 'p99_ms'))} | "
              f"{fmt_ms(num(x, 'room_p99_ms_max'))} | {fmt_pct(num(x, 'loss'))} | "
              f"{fmt_rate(num(x, 'deliveries_per_s'))} | {fmt_cpu(num(x, 'server_cpu'))} | "
              f"{fmt_cpu(num(x, 'client_cpu'))} | {fmt_ms(num(x, 'send_lag_p99_ms'))} | "
              f"{fmt_ms(num(x, 'loop_busy_max_ms'))} | "
              f"{(str(num(x, 'measured_wall_s')) + ' s') if num(x, 'measured_wall_s') is not None else '—'}"
              f"{' ‡' if generator_behind(r, dur) else ''} | "
              f"{r['other_cpu'] if r.get('other_cpu') is not None else '—'} | {kept} |")
        w("")
        w(f"**Goal: p99 under {ROOMS_GOAL_MS:.0f} ms with the server on one core** (medians):")
        w("")
        for x in sizes:
            wr, uw = summ.get(("wsrelay", x)), summ.get(("uws-demo", x))
            if not wr or wr["p99_ms"] is None:
                continue
            met = wr["p99_ms"] < ROOMS_GOAL_MS and wr["loss"] < LOSS_LIMIT
            vs = ""
            if uw and uw["p99_ms"] is not None:
                umet = uw["p99_ms"] < ROOMS_GOAL_MS and uw["loss"] < LOSS_LIMIT
                vs = (f"; uWebSockets.js on the same core: p99 {fmt_ms(uw['p99_ms'])}, server "
                      f"CPU {fmt_cpu(uw['server_cpu'])}, loss {fmt_pct(uw['loss'])} (goal "
                      f"{'met' if umet else 'not met'})")
            if wr["behind"] == wr["runs"]:
                w(f"- {x:,} clients{' (the issue’s point)' if x == 5000 else ''}: **not "
                  "measurable here**: the load generator could not produce this load in any "
                  f"run (‡); p99 as measured {fmt_ms(wr['p99_ms'])} for wsrelay"
                  + (f", {fmt_ms(uw['p99_ms'])} for uWebSockets.js" if uw else "") + ".")
                continue
            w(f"- {x:,} clients{' (the issue’s point)' if x == 5000 else ''}: wsrelay "
              f"{fmt_ms(wr['p99_ms'])} (loss {fmt_pct(wr['loss'])}, server CPU "
              f"{fmt_cpu(wr['server_cpu'])}): **{'met' if met else 'not met'}**{vs}.")
        w("")
    if cost:
        w("### Memory per room")
        w("")
        w("`bench/room_cost.py` (one wsrelay, N clients in one room, then in N rooms of one, "
          "then in N/2 rooms of two; RSS growth, median of its runs; saved in "
          "[bench-room-cost.txt](bench-room-cost.txt)):")
        w("")
        w("```")
        w(cost.strip())
        w("```")
        w("")
        w("`bench/room_cost.py > docs/bench-room-cost.txt` rewrites it (then `bench/run.py "
          "--report-only`).")
        w("")
    if cl:
        rooms_cluster_section(cl, w)
    w("<!-- rooms: analysis -->")
    w("*Analysis of the rooms figures: to be written from the numbers above.*")
    w("<!-- /rooms: analysis -->")
    w("")

def tls_section(pts, cfg, w, mo):
    """Issue 13's measurements: wsrelay plain against TLS, and full handshakes against
    nginx; every figure a median of the runs (plain and TLS ran by turns)."""
    keys = [k for k in pts if k[1] == "tls"]
    if not keys:
        return

    def pt(server, variant, n=None):
        ks = [k for k in keys if k[0] == server and k[4] == variant and (n is None or k[3] == n)]
        return (ks[0], pts[ks[0]]) if ks else (None, None)

    def cap(t):
        rows = sorted((k[3], point_summary(v)) for k, v in pts.items()
                      if k[1] == "tls" and k[4] == f"cursor,{t}")
        best = None
        for n, p in rows:
            if p["passes"]:
                best = n
        return best, rows

    def ratio_(a, b):
        return f"{a / b * 100:.0f} %" if a is not None and b else "—"

    w("## TLS (issue 13)")
    w("")
    w("wsrelay with `--tls-cert/--tls-key` (TLS 1.3, X25519, an ECDSA P-256 certificate made "
      "by run.py with `openssl`) beside plain wsrelay, the two run by run in turn on the same "
      "invocation, so a busy neighbour lands on both; wsbench `--tls` offers TLS 1.3 and X25519 "
      "only and never resumes a session. Full handshakes per second are measured against "
      "Debian's nginx with one worker, pinned to the server's core like wsrelay, with the same "
      "certificate, `ssl_protocols TLSv1.3` and `ssl_ecdh_curve X25519`: wsbench's handshake "
      f"mode, {cfg.get('churn_n', 100)} in flight, each cycle a fresh connection, a full "
      "handshake, our close_notify and the server's close (no HTTP request; counted only once "
      "the server has closed, so it has done all its part).")
    w("")
    cp, cp_rows = cap("plain")
    ct, ct_rows = cap("tls")
    _, fo_p = pt("wsrelay", "fanout,plain")
    _, fo_t = pt("wsrelay", "fanout,tls")
    ik, id_p = pt("wsrelay", "idle,plain")
    _, id_t = pt("wsrelay", "idle,tls")
    fp = point_summary(fo_p) if fo_p else None
    ft = point_summary(fo_t) if fo_t else None
    ip = point_summary(id_p) if id_p else None
    it = point_summary(id_t) if id_t else None
    _, hw = pt("wsrelay", "handshake,tls")
    _, hn = pt("nginx", "handshake,tls")

    def hs(recs, key):
        return median_of(recs, key) if recs else None

    hw_s, hn_s = hs(hw, "handshakes_per_s"), hs(hn, "handshakes_per_s")
    hw_c, hn_c = hs(hw, "handshakes_per_server_cpu_s"), hs(hn, "handshakes_per_server_cpu_s")
    goal_cap = None if cp is None or ct is None else ct >= TLS_RATIO_GOAL * cp
    w("| measure | plain | TLS | TLS ÷ plain | goal | met |")
    w("|---|---:|---:|---:|---|---|")
    w(f"| cursor capacity at {RATE_HZ} Hz (p99 < {P99_LIMIT_MS:.0f} ms, loss < 1 %; steps "
      f"{', '.join(str(n) for n in cfg.get('tls_steps', []))}) | {cp or '—'} | {ct or '—'} | "
      f"{ratio_(ct, cp)} | ≥ {TLS_RATIO_GOAL * 100:.0f} % | {fmt_goal(goal_cap)} |")
    w(f"| fan-out, 1 → {cfg['fanout_n']} (frames/s) | "
      f"{fmt_rate(fp['deliveries_per_s'] if fp else None)} | "
      f"{fmt_rate(ft['deliveries_per_s'] if ft else None)} | "
      f"{ratio_(ft and ft['deliveries_per_s'], fp and fp['deliveries_per_s'])} | — | |")
    w(f"| RSS per idle connection (`/echo`, {ik[3] if ik else cfg['idle_n']:,}) | "
      f"{fmt_bytes(ip['rss_per_conn_bytes'] if ip else None)} | "
      f"{fmt_bytes(it['rss_per_conn_bytes'] if it else None)} | "
      f"{ratio_(it and it['rss_per_conn_bytes'], ip and ip['rss_per_conn_bytes'])} | — | |")
    w("")
    goal_hs = None if hw_s is None or hn_s is None else hw_s >= hn_s
    w("| full TLS 1.3 handshakes | wsrelay | nginx | wsrelay ÷ nginx | goal | met |")
    w("|---|---:|---:|---:|---|---|")
    w(f"| per second | {fmt_rate(hw_s)} | {fmt_rate(hn_s)} | {ratio_(hw_s, hn_s)} | "
      f"≥ nginx | {fmt_goal(goal_hs)} |")
    w(f"| per second of server CPU | {fmt_rate(hw_c)} | {fmt_rate(hn_c)} | "
      f"{ratio_(hw_c, hn_c)} | | |")
    for label, key in (("server CPU", "server_cpu"), ("wsbench CPU", "client_cpu")):
        a, b = hs(hw, key), hs(hn, key)
        w(f"| {label} | {fmt_cpu(a)} | {fmt_cpu(b)} | | | |")
    a, b = (statistics.median([r.get("other_cpu") or 0 for r in x]) if x else None
            for x in (hw, hn))
    w(f"| other processes' CPU | {fmt_other(a, mo)} | {fmt_other(b, mo)} | | | |")
    w("")
    w("Cursor points, plain and TLS (medians; † other processes used more than "
      f"{mo * 100:.0f} % of a core meanwhile):")
    w("")
    w("| clients | plain | p99 | loss | server CPU | wsbench CPU | TLS | p99 | loss | server CPU "
      "| wsbench CPU | other CPU |")
    w("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    tl = dict(ct_rows)
    for n, p in cp_rows:
        q = tl.get(n)

        def cells(x):
            if x is None:
                return "not run | | | | "
            return (f"{'pass' if x['passes'] else '**fail**'} | {fmt_ms(x['p99_judged'])} | "
                    f"{fmt_pct(x['loss'])} | {fmt_cpu(x['server_cpu'])} | "
                    f"{fmt_cpu(x['client_cpu'], True)} | ")
        oth = max(x["other_cpu"] or 0 for x in (p, q) if x)
        w(f"| {n} | {cells(p)}{cells(q)}{fmt_other(oth, mo)} |")
    w("")
    for label, a, b in (("Fan-out", fp, ft), ("Idle", ip, it)):
        if a and b:
            w(f"{label}: plain server CPU {fmt_cpu(a['server_cpu'])}, wsbench CPU "
              f"{fmt_cpu(a['client_cpu'], True)}, server RSS {fmt_kib(a['server_rss_kb'])}; TLS "
              f"server CPU {fmt_cpu(b['server_cpu'])}, wsbench CPU "
              f"{fmt_cpu(b['client_cpu'], True)}, server RSS {fmt_kib(b['server_rss_kb'])} "
              f"(runs ok: {a['runs_ok']}/{a['runs']} and {b['runs_ok']}/{b['runs']}).")
    w("")
    w("<!-- tls: analysis -->")
    w("*Analysis of the TLS figures: to be written from the numbers above.*")
    w("<!-- /tls: analysis -->")
    w("")


def issue12_points_of(pts, scenario):
    """[(key, summary)] of one issue-12 scenario, by client count, variant, then server."""
    keys = [k for k in pts if k[1] == scenario]
    keys.sort(key=lambda k: (k[3], k[4], SERVERS.index(k[0])))
    return [(k, point_summary(pts[k])) for k in keys]


def fmt_n(v, spec="{:,.0f}"):
    return "—" if v is None else spec.format(v)


def sat_mark(p):
    """⚠ with how many runs the load generator itself was saturated (≥ 90 % of its core)."""
    return f" ⚠ {p['saturated']}/{p['runs']}" if p.get("saturated") else ""


def issue12_section(pts, cfg, w):
    """Issue 12's figures: overload, join storm, pacing, batched frames."""
    if not any(k[1] in ISSUE12 for k in pts):
        return
    dur, wu, dr = cfg["duration"], cfg["warmup"], cfg["drain"]
    core = "" if cfg["server_cpu"] is None else \
        f" (server on core {cfg['server_cpu']}, wsbench on core {cfg['client_cpu']})"
    w("## Issue 12: latest position wins")
    w("")
    w("The scenarios of issue 12, each point the median of "
      f"{cfg['repeat']} runs{core}; servers take turns run by run. **Freshness** (`fresh_*`): "
      "every 50 ms of the measured period wsbench samples, for every (receiver, moving sender) "
      "pair of a room, the age of the newest position the receiver holds from that sender "
      "(now − that position's scheduled send time; a receiver's own echo is left out; a pair "
      "that holds nothing yet counts its age since the senders began, and is also counted "
      "apart). At 30 Hz the age includes the wait for the sender's next update, so even a "
      "perfect relay shows a median near 17 ms and a p99 near 33 ms. **Reordered**: a "
      "position older than one the receiver already held from that sender. **wsbench CPU** "
      "is the load generator's own share of its core over the measured period; ⚠ k/n marks "
      "points where it reached 90 % in k of n runs, where the figures may measure the "
      "generator, not the server. Server RSS here is the most sampled (every 100 ms, VmRSS) "
      "during the run; the storm also reads VmHWM. **Other CPU** is what processes other "
      "than ours used meanwhile (median over the runs, share of one core); † marks points "
      f"above {QUIET_OTHER * 100:.0f} %, whose figures are those of a shared machine (the "
      "run's BENCH_MAX_OTHER_CPU decides whether such a run was redone; it was "
      f"{cfg.get('max_other', 0.15):g} cores).")
    w("")
    fl = cfg.get("wsrelay_flags") or {}
    missing = [f for f, ok in fl.items() if not ok]
    if missing:
        w(f"> This wsrelay had no {' and no '.join('`' + f + '`' for f in missing)}: it is "
          "the relay from before issue 12, measured as it is (scenarios that need a missing "
          "flag ran without it, or not at all, as said below).")
        w("")

    rows = issue12_points_of(pts, "overload")
    if rows:
        w("### Overload: one room past capacity")
        w("")
        w(f"N clients in one room at {RATE_HZ} Hz, seed protocol ({wu} s warm-up, {dur} s "
          f"measured, {dr} s drain); wsrelay with `--max-room-clients 10000 --max-clients 20000 "
          f"--max-connect-rate 0` and, as everywhere here, `--max-buffer {cfg['max_buffer']}` "
          "(BENCH_MAX_BUFFER; uWS's maxBackpressure is the same): what a relay that queues "
          "may hold per client, hence its RSS. Loss is reported but not a goal: a relay that drops "
          "superseded positions loses them on purpose. Drops are clients the server "
          "disconnected (or that failed to connect); the goal columns are issue 12's.")
        w("")
        w("```sh")
        w("BENCH_UPDATE=1 BENCH_SCENARIOS=overload make bench")
        w(f"# each run: bench/wsbench cursor --clients N --rate {RATE_HZ} --warmup {wu} "
          f"--duration {dur} --drain {dr} --port P --server-pid PID")
        w("```")
        w("")
        w("| clients | server | p99 | fresh p50 | fresh p99 | fresh max | deliveries/s | loss "
          "| server RSS (max) | dropped | reordered | server CPU | wsbench CPU | other CPU "
          "| p99 < 100 ms | fresh p99 < 100 ms | RSS ≤ 64 MiB | no client dropped "
          "| 0 reordered |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---"
          "|---|")
        for k, p in rows:
            g = overload_goals(p)
            dropped = (p["disconnects_max"] or 0) + (p["connect_failures_max"] or 0)
            w(f"| {k[3]:,} | {LABEL[k[0]]} | {fmt_ms(p['p99_judged'])} | "
              f"{fmt_ms(p['fresh_p50_ms'])} | {fmt_ms(p['fresh_p99_ms'])} | "
              f"{fmt_ms(p['fresh_max_ms'])} | {fmt_rate(p['deliveries_per_s'])} | "
              f"{fmt_pct(p['loss'])} | {fmt_kib(p['server_rss_max_kb'])} | "
              f"{dropped if p['runs_ok'] else '—':} | "
              f"{fmt_n(p['reordered_max'])} | "
              f"{fmt_cpu(p['server_cpu'])} | {fmt_cpu(p['client_cpu'])}{sat_mark(p)} | "
              f"{fmt_other(p['other_cpu'], QUIET_OTHER)} | "
              + " | ".join(fmt_goal(v) for v in g.values()) + " |")
        w("")

    rows = issue12_points_of(pts, "storm")
    if rows:
        w("### Join storm")
        w("")
        w(f"N clients start connecting at once, at most {cfg['storm_inflight']} handshakes "
          "(connect to 101) in flight (wsrelay's listen backlog is 511: more would measure "
          "the kernel's SYN retries), to one room or spread over rooms (connection i in room "
          "i mod rooms, opened in random order). Times are from the first connect: *all "
          "connected* at the last 101, *all welcomed* at the last welcome, *rosters complete* "
          "when the last client knows every member of its room (welcome peers + joins + "
          "movers − leaves; tracked where the rooms are small enough). Every welcome is "
          f"checked against docs/protocol.md's rule with `--roster-max {cfg['roster_max']}` "
          "(at most that many peers; a `count` when the room is not listed whole; a count of "
          "at least peers + 1): *violations* counts welcomes that break it (worst run). The "
          "peers send no welcome and know no rooms' rosters: for them only the time to "
          "connect all is measured (`--no-welcome`). Server CPU is seconds over the storm; "
          "peak RSS the larger of the sampled VmRSS and VmHWM (the server starts fresh for "
          f"each run). A run stops after {cfg['storm_timeout']:.0f} s.")
        w("")
        w("```sh")
        w("BENCH_UPDATE=1 BENCH_SCENARIOS=storm make bench")
        w(f"# each run: bench/wsbench storm --clients N [--rooms R] --inflight "
          f"{cfg['storm_inflight']} --roster-max {cfg['roster_max']} --duration "
          f"{cfg['storm_timeout']:.0f} --port P --server-pid PID   (peers: --no-welcome)")
        w("```")
        w("")
        w("| clients | rooms | server | all connected | all welcomed | welcome p50 | welcome "
          "p99 | rosters complete | failed | violations | largest welcome (peers) | server "
          "CPU | server peak RSS | wsbench CPU | other CPU | goals |")
        w("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for k, p in rows:
            rooms = int(k[4].split("=")[1]) if k[4].startswith("rooms=") else 0
            is_peer = k[0] not in ("wsrelay",)
            g = storm_goals(p, rooms)
            goals = "no welcome: not judged" if is_peer else \
                "; ".join(f"{name}: {fmt_goal(v)}" for name, v in g.items())
            failed = (p["connect_failures_max"] or 0) + (p["disconnects_max"] or 0)
            w(f"| {k[3]:,} | {rooms or 1:,} | {LABEL[k[0]]} | {fmt_s(p['connect_all_judged'])} | "
              f"{'—' if is_peer else fmt_s(p['welcome_all_judged'])} | "
              f"{'—' if is_peer else fmt_ms(p['welcome_at_p50_ms'])} | "
              f"{'—' if is_peer else fmt_ms(p['welcome_at_p99_ms'])} | "
              f"{'—' if is_peer else fmt_s(p['roster_all_judged']) if p['roster_tracked'] else 'not tracked'} | "
              f"{failed if p['runs_ok'] else '—'} | "
              f"{'—' if is_peer else fmt_n(p['view_violations_max'])} | "
              f"{'—' if is_peer else fmt_n(p['welcome_peers_max'])} | "
              f"{fmt_n(p['server_cpu_s'], '{:.2f} s')} | "
              f"{fmt_kib(p['server_peak_kb'])} | {fmt_cpu(p['client_cpu'])}{sat_mark(p)} | "
              f"{fmt_other(p['other_cpu'], QUIET_OTHER)} | {goals} |")
        w("")

    rows = issue12_points_of(pts, "pacing")
    if rows:
        w("### Pacing: `--send-interval`")
        w("")
        w(f"wsrelay only, {cfg['pacing_n']} clients in one room at {RATE_HZ} Hz, seed protocol, "
          "at each `--send-interval` (0: write as soon as the loop can). What pacing saves is "
          "server CPU at the same load; what it costs shows in p99 and freshness.")
        w("")
        w("| --send-interval | server CPU | p99 | fresh p50 | fresh p99 | deliveries/s | frames/s "
          "in | wsbench CPU | other CPU | runs |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for k, p in rows:
            iv = k[4].split("=", 1)[1] if k[4].startswith("send-interval=") else \
                "0 (flag not given: this wsrelay has none)"
            w(f"| {iv} | {fmt_cpu(p['server_cpu'])} | {fmt_ms(p['p99_judged'])} | "
              f"{fmt_ms(p['fresh_p50_ms'])} | {fmt_ms(p['fresh_p99_ms'])} | "
              f"{fmt_rate(p['deliveries_per_s'])} | {fmt_rate(p['frames_per_s_in'])} | "
              f"{fmt_cpu(p['client_cpu'])}{sat_mark(p)} | "
              f"{fmt_other(p['other_cpu'], QUIET_OTHER)} | {p['runs_ok']}/{p['runs']} |")
        w("")

    rows = issue12_points_of(pts, "batch")
    if rows:
        w("### Batched frames: `wsrelay.batch`")
        w("")
        w(f"wsrelay only, {cfg['batch_n']} clients in one room at {RATE_HZ} Hz, without and with "
          "`--batch` (wsbench offers `Sec-WebSocket-Protocol: wsrelay.batch`, and splits each "
          "frame of a client whose 101 echoed it into its messages). *Batch clients* is how "
          "many got it: 0 means the server did not pick it and the run is seed protocol.")
        w("")
        w("| clients | mode | batch clients | server CPU | frames/s in | messages/s in | "
          "messages per frame | p99 | fresh p99 | wsbench CPU | other CPU | runs |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for k, p in rows:
            w(f"| {k[3]:,} | {k[4] or 'seed'} | {fmt_n(p['batch_clients'])} | "
              f"{fmt_cpu(p['server_cpu'])} | {fmt_rate(p['frames_per_s_in'])} | "
              f"{fmt_rate(p['messages_per_s_in'])} | "
              f"{fmt_n(p['messages_per_frame'], '{:.2f}')} | "
              f"{fmt_ms(p['p99_judged'])} | {fmt_ms(p['fresh_p99_ms'])} | "
              f"{fmt_cpu(p['client_cpu'])}{sat_mark(p)} | "
              f"{fmt_other(p['other_cpu'], QUIET_OTHER)} | {p['runs_ok']}/{p['runs']} |")
        w("")
    w("<!-- issue12: analysis -->")
    w("*Analysis of the issue 12 figures: to be written from the numbers above.*")
    w("<!-- /issue12: analysis -->")
    w("")


def rooms_cluster_section(cl, w):
    m = cl.get("meta", {})
    w("### Rooms across nodes")
    w("")
    w(f"`bench/rooms_cluster.py` ({m.get('started', '?')[:16].replace('T', ' ')} UTC, wsrelay "
      f"commit {m.get('commit', '?')}; saved in "
      "[bench-rooms-cluster.json](bench-rooms-cluster.json)): a fresh Debian redis-server and "
      "two wsrelay nodes (`--redis`), everything on 127.0.0.1 and free ports, unpinned"
      f"{(', ' + m['note']) if m.get('note') else ''}; "
      f"{m.get('redis', 'redis-server')}; {m.get('haproxy', 'haproxy')}.")
    w("")
    w("```sh")
    w(f"bench/rooms_cluster.py {' '.join(m.get('argv') or [])}   # writes "
      "docs/bench-rooms-cluster.json; then bench/run.py --report-only")
    w("```")
    w("")
    rt = cl.get("roundtrip")
    if rt:
        w(f"**A room's first and last member on a node** ({rt.get('repetitions', '?')} "
          "repetitions, each in a fresh room):")
        w("")
        w("| what | median | p99 | min | max |")
        w("|---|---:|---:|---:|---:|")
        for key, what in [("first_member", "first member on node B of a room node A serves: "
                           "B's upgrade sent → B's client has A's member's `join` (SUBSCRIBE, "
                           "state + hello, A's state back)"),
                          ("first_member_welcome", "… of which: upgrade sent → welcome"),
                          ("last_member", "last member on node B leaves: close sent → "
                           "`PUBSUB NUMSUB wsrelay/<room>` drops from 2 to 1 (UNSUBSCRIBE)")]:
            x = rt.get(key)
            if x:
                w(f"| {what} | {fmt_ms(x['median_ms'])} | {fmt_ms(x['p99_ms'])} | "
                  f"{fmt_ms(x['min_ms'])} | {fmt_ms(x['max_ms'])} |")
        w("")
        if rt.get("method"):
            w(rt["method"])
            w("")
    sh_ = cl.get("share")
    if sh_:
        w("**What share of deliveries crossed nodes**, the same rooms workload through Debian's "
          "haproxy in front of both nodes, with docs/scaling.md's room hashing and with "
          "`balance leastconn` for everything: share = Σ `wsrelay_relayed_remote_total` / Σ "
          "`wsrelay_relayed_total` over both nodes (their growth during the run), and where "
          "the rooms landed (a room is *split* when it has members on both nodes, from each "
          "node's `wsrelay_rooms_open`).")
        w("")
        w("| haproxy | clients | rooms | deliveries (both nodes) | of them from the other "
          "node | **share crossed** | rooms open on A + B | split rooms | clients A / B | p99 "
          "| loss | foreign |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in sh_:
            r = x.get("wsbench") or {}
            w(f"| {x['label']} | {x['clients']:,} | {x['rooms']:,} | {x['relayed']:,} | "
              f"{x['relayed_remote']:,} | **{x['share'] * 100:.1f} %** | "
              f"{x['rooms_open'][0]} + {x['rooms_open'][1]} | {x['split_rooms']} | "
              f"{x['clients_by_node'][0]} / {x['clients_by_node'][1]} | "
              f"{fmt_ms(num(r, 'p99_ms'))} | {fmt_pct(num(r, 'loss'))} | "
              f"{num(r, 'foreign', '—')} |")
        w("")
        if cl.get("share_method"):
            w(cl["share_method"])
            w("")


PAGE_MODES = [("batch", "batched frames (`wsrelay.batch`)"), ("seed", "seed protocol (`?batch=0`)")]


def page_section(w, out_dir):
    """Issue 12's page goal, from what bench/page_bench.mjs saved (make bench-page)."""
    pb = load_side_file(out_dir, "bench-page.json")
    if pb is None:
        return
    m, med = pb.get("meta", {}), pb.get("medians", {})
    w("## The page in a busy room")
    w("")
    w(f"`bench/page_bench.mjs` ({m.get('started', '?')[:16].replace('T', ' ')} UTC, wsrelay "
      f"commit {m.get('commit', '?')}; saved in [bench-page.json](bench-page.json)): headless "
      f"Chromium {m.get('chromium', '?')} on the page at `/r/pagebench` while "
      f"{m.get('clients', '?')} `bench/wsbench` clients in that room move at "
      f"{m.get('rate', '?')} Hz; wsrelay `{' '.join(m.get('server_args') or [])}`, nothing "
      f"pinned, {m.get('cores', '?')} cores ({m.get('cpu_model', '?')}). Each figure is the "
      f"median of {m.get('runs', '?')} runs, each with a fresh server and page: "
      f"{m.get('measure_s', '?')} s measured from inside the page, then "
      f"{m.get('trace_s', '?')} s traced.")
    w("")
    w("```sh")
    w(f"node bench/page_bench.mjs {' '.join(m.get('argv') or [])}   # make bench-page; then "
      "bench/run.py --report-only")
    w("```")
    w("")
    w("| frames | messages/s | WebSocket frames/s | listener ms/s | traced: WebSocket tasks ms/s "
      "| traced: main thread busy ms/s | rAF interval p95 | server CPU | wsbench CPU "
      "| chromium CPU | other processes' CPU |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, label in PAGE_MODES:
        if mode not in med:
            continue
        x = med[mode]
        if x is None:
            w(f"| {label} | pending server support (the server did not pick `wsrelay.batch`) "
              "| | | | | | | | | |")
            continue
        w(f"| {label} | {x['messages_per_s']:,} | {x['ws_frames_per_s']:,} | "
          f"{x['handler_ms_per_s']} | {x['trace_ws_task_ms_per_s']} | "
          f"{x['trace_busy_ms_per_s']} | {x['raf_p95_ms']} ms | {x['server_cpu']} | "
          f"{x['wsbench_cpu']} | {x.get('chromium_cpu', '—')} | {x.get('other_cpu', '—')} |")
    w("")
    runs = [r for r in pb.get("runs", []) if not r.get("skipped")]
    disturbed = [r for r in runs if r.get("disturbed")]
    if disturbed:
        which = ", ".join(f"{r['mode']} run {r['run']}: {r['other_cpu']} cores" for r in disturbed)
        w(f"**{len(disturbed)} of {len(runs)} runs were disturbed**: other processes on the "
          "machine used more than 0.15 cores during the measured window in each of their 3 "
          f"attempts, and the least disturbed attempt was kept ({which}).")
        w("")
    w("CPU columns are in cores, from /proc, over the untraced window; *chromium* is all its "
      "processes (browser, renderer, GPU, network service); *other processes* is the whole "
      "machine's busy time minus the benchmark's own process tree.")
    w("")
    w("- *listener ms/s*: main-thread milliseconds per second inside `cursors.js`'s `message` "
      "listener (`JSON.parse`, dispatch, state), from `performance.now()` around each call "
      "(the handle's `stats`). Drawing is not in it: it happens once per animation frame either "
      "way.")
    w("- *traced*: Chrome's trace (`devtools.timeline`, `toplevel`) of the renderer's main "
      "thread: the top-level tasks that delivered at least one WebSocket message (what the "
      "browser does before our listener, and the listener), and all top-level tasks. Tracing "
      "costs per event, so these overstate the seed protocol's cost more than the batch's.")
    w("- *rAF interval p95*: between the callbacks of a `requestAnimationFrame` loop the bench "
      "adds; 16.7 ms is every frame of a 60 Hz screen on time.")
    w("- wsbench's positions are pixels, not the fractions the page draws, so the page counts "
      "these clients but draws none: the figures are the cost of receiving and handling "
      "messages, which is what batching changes.")
    w("")
    w("<!-- page: analysis -->")
    w("*Analysis of the page figures: to be written from the numbers above.*")
    w("<!-- /page: analysis -->")
    w("")


def operators_section(w, out_dir):
    """Issue 14's two side measures, from what bench/static_files.py and
    bench/drain_reconnects.py saved (make bench-static, make bench-drain)."""
    st = load_side_file(out_dir, "bench-static.json")
    dr = load_side_file(out_dir, "bench-drain.json")
    if st is None and dr is None:
        return
    w("## For operators (issue 14): the page's files, and draining a node")
    w("")
    if st is not None:
        w(f"**Static files against nginx** (`bench/static_files.py`, {st['when'][:16].replace('T', ' ')}"
          f" UTC; saved in [bench-static.json](bench-static.json)): wrk `{st['wrk']}` (keep-alive,"
          f" no `Accept-Encoding`, so the identity files) against wsrelay and "
          f"{st['nginx'].replace('nginx version: ', '')} with "
          "one worker, `access_log off`, `sendfile on`, both pinned to one core and wrk to the "
          "other, the two by turns file by file; medians of "
          f"{st['repeat']} runs of requests per second.")
        w("")
        w("| file | size | wsrelay req/s | nginx req/s | wsrelay ÷ nginx |")
        w("|---|---:|---:|---:|---:|")
        for f, x in st["summary"].items():
            name = "1 MiB of random bytes" if f == "big.bin" else f"`{f}`"
            w(f"| {name} | {x['bytes'] / 1024:.1f} KiB | {x['wsrelay']:,.0f} | {x['nginx']:,.0f} "
              f"| {x['ratio']:.2f} |")
        w("")
    if dr is not None:
        w(f"**Reconnects a surviving node sees** (`bench/drain_reconnects.py`, "
          f"{dr['when'][:16].replace('T', ' ')} UTC; saved in [bench-drain.json](bench-drain.json)):"
          f" two wsrelay nodes behind {dr['haproxy'].split(' - ')[0]} (round robin, `option "
          "httpchk GET /healthz` every 200 ms, `fall 1`), "
          f"{dr['clients']} clients through it (half on each node) that reconnect as the page "
          "does (the first try a random part of a second after a drop, then backoff); node A "
          "gets SIGTERM and node B's `wsrelay_room_joins_total` is sampled every 100 ms. "
          f"Medians of {dr['repeat']} runs each, the two settings by turns.")
        w("")
        w("| `--drain-time` | clients on the stopped node | peak reconnects/s on the survivor "
          "(any 1 s window) | failed attempts (refused, then backoff) | all on the survivor after |")
        w("|---|---:|---:|---:|---:|")
        for d, x in dr["summary"].items():
            done = f"{x['all_on_b_s']:.1f} s" if x.get("all_on_b_s") is not None else "—"
            w(f"| `{d}` | {x['on_a']:.0f} | {x['peak_reconnects_per_s']:.0f} | "
              f"{x.get('failed_attempts', 0):.0f} | {done} |")
        w("")
    w("<!-- operators: analysis -->")
    w("*Analysis of the operators' figures: to be written from the numbers above.*")
    w("<!-- /operators: analysis -->")
    w("")


def write_report(data, out_dir):
    meta, runs = data["meta"], data["runs"]
    cfg = meta["config"]
    pts = group(runs)
    servers = [s for s in SERVERS if any(k[0] == s for k in pts)]
    # † marks use at most the default 15 %: an invocation that accepted busier runs
    # (BENCH_MAX_OTHER_CPU) must not unmark earlier runs kept with BENCH_UPDATE.
    mo = min(cfg.get("max_other", 0.15), QUIET_OTHER)
    discarded = [r for r in runs if r.get("discarded")]
    L = []
    w = L.append

    w("# Benchmarks")
    w("")
    w("<!-- Generated by `make bench` (bench/run.py) from docs/bench-results.json: do not edit "
      "by hand;")
    w("     regenerate with `bench/run.py --report-only`. Only the lead's analysis paragraph "
      "below is hand-written. -->")
    w("")
    if cfg.get("quick"):
        w("> **BENCH_QUICK=1 smoke run**: one short run per point and a small subset of points. "
          "These numbers only show that the pipeline works; run `make bench` for the benchmark.")
        w("")
    invs = data.get("invocations") or {}
    elapsed = sum((v.get("elapsed_s") or 0) for v in invs.values()) if invs else \
        meta.get("elapsed_s", 0)
    w(f"wsrelay against the original Node.js `ws` demo and uWebSockets.js, on one core each, "
      f"as issue 4 asks"
      f"{'; and wsrelay as two nodes over Redis on that same one core (issue 5)' if any(s in CLUSTER_NODES for s in servers) else ''}. "
      f"Measured {meta['started'][:10]}: {elapsed/60:.1f} minutes of runs"
      f"{f' in {len(invs)} invocations' if len(invs) > 1 else ''}.")
    w("")

    # -- headline table
    w("## Summary")
    w("")
    w(f"| server | max clients at {RATE_HZ} Hz with p99 < {P99_LIMIT_MS:.0f} ms and loss < 1 % "
      "| deliveries/s there | p99 there | fan-out, 1 sender → "
      f"{cfg['fanout_n']} clients (frames/s) | memory per idle connection | total RSS at "
      f"{cfg['idle_n']:,} idle | RSS at {BUSY_N} busy clients |")
    w("|---|---|---|---|---|---|---|---|")
    for s in servers:
        best = best_cursor(pts, s)
        tried = cursor_points(pts, s)
        if best:
            mc = f"**{best[0]}**"
            if tried and best[0] == tried[-1][0]:
                mc += " (the largest N tried)"
            dl, p99 = fmt_rate(best[1]["deliveries_per_s"]), fmt_ms(best[1]["p99_ms"])
        else:
            mc = "none of the N tried" if tried else "not run"
            dl = p99 = "—"
        _, fo = single(pts, s, "fanout")
        idle_path = "/echo" if s == "wsrelay" else "/ws"
        _, idle = single(pts, s, "idle", idle_path)
        busy = next((p for n, p in tried if n == BUSY_N), None)
        busy_txt = "not reached" if busy is None else fmt_kib(busy["server_rss_kb"]) + \
            ("" if busy["passes"] else " (point fails)")
        w(f"| {LABEL[s]} | {mc} | {dl} | {p99} | "
          f"{fmt_rate(fo['deliveries_per_s']) if fo else '—'} | "
          f"{fmt_bytes(idle['rss_per_conn_bytes']) if idle else '—'} | "
          f"{fmt_kib(idle['server_rss_kb']) if idle else '—'} | {busy_txt} |")
    for row in REFERENCE:
        w(f"| {row[0]} (*reference, not measured here*) | {row[1]} | {row[2]} | {row[3]} | "
          f"{row[4]} | {row[5]} | {row[6]} | — |")
    w("")
    w("Reference rows are the figures issue 4 quotes for servers this benchmark does not run "
      "(the issue gives them for this project's 2-core machines); they were not measured here "
      "and are not comparable run for run. The issue quotes, for the two peers measured here: " +
      "; ".join(f"{LABEL[k]}: {v}" for k, v in ISSUE_PEERS.items()) + ".")
    w("")
    if "wsrelay" in servers:
        w("wsrelay's idle figures are on `/echo`, where nothing is sent on connect, as for the "
          "peers (which send nothing on connect on any path). On `/ws` every newcomer gets a "
          "`welcome` listing everyone and every client a `join`, which is O(N²) at 10,000; "
          f"`/ws` idle is measured at {cfg['idle_ws_n']:,} connections instead (below).")
        w("")

    # -- goals
    if "wsrelay" in servers:
        w("## wsrelay against the issue's goals")
        w("")
        w("| goal | measured | met |")
        w("|---|---|---|")
        best = best_cursor(pts, "wsrelay")
        mc = best[0] if best else 0
        tried_max = max([n for n, _ in cursor_points(pts, "wsrelay")], default=0)
        w(f"| ≥ 300 clients at 30 Hz (p99 < 100 ms, loss < 1 %) | "
          f"{mc if best else 'none'}{' (largest tried: ' + str(tried_max) + ')' if tried_max < 300 else ''} "
          f"| {'yes' if mc >= 300 else 'no'} |")
        at200 = next((p for n, p in cursor_points(pts, "wsrelay") if n == BUSY_N), None)
        u200 = next((p for n, p in cursor_points(pts, "uws-demo") if n == BUSY_N), None)
        if at200 and at200["p99_ms"] is not None:
            if u200 and u200["p99_ms"] is not None:
                ref = f"uWebSockets.js here: {fmt_ms(u200['p99_ms'])}" + \
                    ("" if u200["passes"] else ", a failing point")
                ok = "yes" if at200["p99_ms"] <= u200["p99_ms"] else "no"
            else:
                ubest = best_cursor(pts, "uws-demo")
                ref = "uWebSockets.js not run at 200" + \
                    (f": it passes up to {ubest[0]} here" if ubest else "")
                ok = "not measured"
            okc = "yes" if at200["p99_ms"] <= 2.3 else "no"
            w(f"| at 200 clients, p99 no worse than uWebSockets' | {fmt_ms(at200['p99_ms'])} "
              f"({ref}; C++ reference 2.3 ms) | vs uWebSockets.js: {ok}; "
              f"vs C++ reference: {okc} |")
        else:
            w("| at 200 clients, p99 no worse than uWebSockets' | not measured | — |")
        _, fo = single(pts, "wsrelay", "fanout")
        if fo and fo["deliveries_per_s"] is not None:
            w(f"| ≥ 3.5 M frames/s fan-out, 1 → {cfg['fanout_n']} | "
              f"{fmt_rate(fo['deliveries_per_s'])} | "
              f"{'yes' if fo['deliveries_per_s'] >= 3.5e6 else 'no'} |")
        _, idle = single(pts, "wsrelay", "idle", "/echo")
        if idle and idle["rss_per_conn_bytes"] is not None:
            w(f"| ≤ 400 B RSS per idle connection | {fmt_bytes(idle['rss_per_conn_bytes'])} "
              f"| {'yes' if idle['rss_per_conn_bytes'] <= 400 else 'no'} |")
        if idle and idle["server_rss_kb"] is not None:
            lab = f"≤ 8 MiB RSS in all with {cfg['idle_n']:,} idle connections"
            if cfg["idle_n"] != 10000:
                lab += " (goal is for 10,000)"
            w(f"| {lab} | {fmt_kib(idle['server_rss_kb'])} | "
              f"{'yes' if idle['server_rss_kb'] <= 8 * 1024 else 'no'} |")
        if at200 and at200["server_rss_kb"] is not None:
            w(f"| a few MiB of RSS at 200 busy clients | {fmt_kib(at200['server_rss_kb'])} | "
              f"{'yes' if at200['server_rss_kb'] <= 8 * 1024 else 'no'} (≤ 8 MiB counted as a few) |")
        w("")

    cluster_section(pts, cfg, w)
    rooms_section(pts, cfg, w, out_dir, runs)
    issue12_section(pts, cfg, w)
    tls_section(pts, cfg, w, mo)
    page_section(w, out_dir)
    operators_section(w, out_dir)

    # -- analysis placeholder
    w("## Where we stand and why")
    w("")
    w("<!-- lead: analysis -->")
    w("*To be written by the lead from the numbers above: which goals are met, where the time "
      "goes (perf, strace -c), and what limits each server on one core.*")
    w("<!-- /lead: analysis -->")
    w("")

    # -- plots
    w("## Plots")
    w("")
    w("![p99 latency vs clients](bench-p99.png)")
    w("")
    w("![deliveries per second vs clients](bench-deliveries.png)")
    w("")
    w("Filled points pass the rule (median p99 < 100 ms and median loss < 1 %), open points fail. "
      "The dashed curve is what the clients demand, 30·N² deliveries per second: a server that "
      "keeps up stays on it.")
    w("")

    # -- method
    w("## Method")
    w("")
    w(f"- **Machine**: {meta['cpu_model']}, {meta['cores']} cores, {meta['mem_gib']} GiB, "
      f"{meta.get('os') or 'Linux'}, kernel {meta['kernel']}.")
    pin = "unpinned (fewer than 2 cores)" if cfg["server_cpu"] is None else \
        f"the server pinned to core {cfg['server_cpu']} (`taskset -c {cfg['server_cpu']}`), " \
        f"the load generator to core {cfg['client_cpu']} (`taskset -c {cfg['client_cpu']}`)"
    if cfg["server_cpu"] is not None and any(s in CLUSTER_NODES for s in servers):
        pin += f"; for {LABEL['wsrelay-2node']}, both nodes and redis-server all on core " \
            f"{cfg['server_cpu']}, the same one core"
    w(f"- **Pinning**: {pin}; everything over 127.0.0.1.")
    ver = re.sub(r"^wsrelay\s*", "", meta.get("wsrelay_version") or "?")
    # wsrelay's commit is the one of the invocation(s) that ran wsrelay.
    wcommits = sorted({v["commit"] for v in invs.values()
                       if any(s == "wsrelay" or s in CLUSTER_NODES for s in v["servers"])}) \
        or [meta["commit"]]
    w(f"- **Versions**: wsrelay {ver} at commit "
      f"{', '.join(wcommits)}; load generator bench/wsbench.c at "
      f"{', '.join(sorted({v.get('wsbench_commit') or '?' for v in invs.values()}) or [meta['wsbench_commit']])}; "
      f"Node {meta['node']}; `ws` {meta['ws']}; `@trufflesuite/uws-js-unofficial` "
      f"{meta['uws']}; {meta.get('gnuplot') or 'gnuplot'}"
      f"{'; ' + meta['redis'] if meta.get('redis') else ''}.")
    if len(invs) > 1:
        w("- **Runs kept from earlier invocations** (`BENCH_UPDATE=1`): " + "; ".join(
            f"{k[:16].replace('T', ' ')} UTC, wsrelay commit {v['commit']}: "
            f"{', '.join(LABEL.get(x, x) for x in v['servers'])} × {', '.join(v['scenarios'])}"
            for k, v in sorted(invs.items())) + ".")
    mb = cfg["max_buffer"]
    mb_txt = f"{mb // (1 << 20)}M" if mb % (1 << 20) == 0 else str(mb)
    w("- **Servers**: `./wsrelay` as `make` builds it (`-O2 -g`), with `--ping-interval 0`, "
      f"`--max-buffer {mb_txt}`, `--max-clients` above the load, `--max-connect-rate 0` "
      "(every client comes from 127.0.0.1), the default `--max-rate 200` and "
      "`--max-byte-rate 64K` except in fan-out (both `0`); bench/peers/node-ws-demo.js, the "
      "original demo's server unchanged per message (`ws`, JSON.parse, set sender and color, "
      "JSON.stringify, send to every client including the sender); bench/peers/uws-demo.js, "
      "the same protocol on uWebSockets.js with one pub/sub topic (`app.publish`, which "
      "reaches the sender too), its native binary required (the package's silent fallback to "
      "a `ws` emulation is refused), `idleTimeout 0` and `maxBackpressure` = wsrelay's "
      "`--max-buffer`.")
    if any(s in CLUSTER_NODES for s in servers):
        w(f"- **{LABEL['wsrelay-2node']}** (cursor and fan-out only): per run, a fresh Debian "
          "`redis-server --port FREE --bind 127.0.0.1 --save '' --appendonly no`, then two "
          "`./wsrelay` nodes with the flags above and `--redis redis://127.0.0.1:PORT`; the run "
          "starts once each node's `/metrics` shows `wsrelay_redis_up 1` and "
          "`wsrelay_cluster_nodes 1`. wsbench gets both ports (`--port A,B`: connection i goes "
          "to node i mod 2, so the clients are split evenly), both nodes' PIDs (`--server-pid "
          "A,B`: CPU and RSS summed, each also kept) and Redis's (`--redis-pid`). Each "
          "message then carries its sender's node as `\"n\"`, and every delivery is filed as "
          "same-node or cross-node by it. Redis is stopped by PID after the nodes.")
    w(f"- **Each run** starts the server afresh on a free port, waits until it accepts a TCP "
      f"connection, runs `bench/wsbench` with `--server-pid` (server CPU time from "
      f"/proc/PID/stat, RSS from /proc/PID/status), then stops both. Each point is run "
      f"{cfg['repeat']}× and the **median** of each figure is reported.")
    w(f"- **cursor**: N clients on `/ws`, each sending `{{\"x\",\"y\",\"t\"}}` at {RATE_HZ} Hz, "
      f"sends scheduled evenly (open loop); {cfg['warmup']} s warm-up, {cfg['duration']} s "
      f"measured, {cfg['drain']} s drain. **Latency = receive time − the scheduled send time** "
      "carried in the message, so a server (or a generator) that falls behind cannot hide its "
      "delay. Loss = 1 − received/expected after the drain. N steps through "
      f"{', '.join(str(s) for s in cfg['steps'])}, stopping a server after two consecutive "
      "failing points.")
    w(f"- **Success rule**: a point passes when its median p99 < {P99_LIMIT_MS:.0f} ms and its "
      "median loss < 1 %, with no connect failure and no bad frame (a run that crashed or "
      "printed no result counts as p99 = ∞, loss = 100 %). The maximum client count is the "
      "largest N that passes.")
    w(f"- **fanout**: 1 sender sends as fast as wsbench's window of unanswered messages "
      f"allows, to {cfg['fanout_n']} receivers on `/ws` (and itself); frames delivered per "
      f"second over {cfg['duration']} s. Its latency figures mostly measure the window's "
      "queue, not the server.")
    w(f"- **idle**: {cfg['idle_n']:,} connections opened and held {cfg['idle_hold']} s; RSS per "
      "connection = (server RSS with them − RSS before) / N, and the server's total RSS.")
    w(f"- **churn**: connect + WebSocket handshake + closing handshake, {cfg['churn_n']} "
      f"cycles in flight at once, for {cfg['duration']} s; cycles per second. wsrelay runs it "
      "on `/echo` and on `/ws` (where each cycle also brings a welcome, a join and a leave "
      "for the others); the peers send nothing on connect.")
    w(f"- **Load generator CPU** is shown beside the server's for every point (share of one "
      f"core); ⚠ marks points where it was above {CLIENT_CPU_FLAG*100:.0f} %, where the "
      "generator itself may be the bottleneck. wsbench reports it itself as "
      "`loadgen_cpu_pct` (getrusage over the measured period) with `loadgen_saturated` "
      "(≥ 90 %); issue 12's tables show ⚠ k/n where k of n runs were saturated.")
    w("- **Freshness** (issue 12; every cursor-mode run): each cursor message carries its "
      "sender's connection index as `\"i\"` beside `\"t\"`; every receiver keeps, per member "
      "of its room, the scheduled send time of the newest position it holds (4 bytes a "
      "pair, N² for a room of N, up to 16 Mi pairs: rooms of up to 4,096; past that wsbench "
      "says so and reports none). Every 50 ms of the measured period every (receiver, moving "
      "sender) pair is sampled: age = now − that time, the receiver's own echo left out; a "
      "pair that holds nothing yet counts its age since the senders began and is counted "
      "apart (`fresh_never_samples`, and `fresh_never_pairs` at the end). `fresh_p50_ms`, "
      "`fresh_p99_ms`, `fresh_max_ms` summarise the samples (`fresh_samples` of them). The "
      "age includes the wait for the sender's next update: at 30 Hz a perfect relay shows "
      "about 17 ms median and 33 ms p99. A position older than one already held from that "
      "sender counts as `reordered` (one with the same time as `duplicates`).")
    w("- **Frames and messages** (issue 12): wsbench counts text frames and messages apart "
      "(`frames_per_s_in`, `messages_per_s_in`, `messages_per_frame`); with `--batch` it "
      "offers `Sec-WebSocket-Protocol: wsrelay.batch`, and for a client whose 101 echoes it "
      "splits every frame (a JSON array) into its messages with a small depth- and "
      "string-aware scanner; `batch_clients` says how many clients got it.")
    w("- **overload**, **storm**, **pacing**, **batch** (issue 12): see *Issue 12: latest "
      "position wins* above for each one's load, flags and goals.")
    w(f"- **Other CPU** is what other processes used during a run (the CPU time of every "
      f"process in /proc but the server, wsbench and run.py; ksoftirqd, which carries our "
      f"loopback traffic, counts as ours), in share of one core. Each run waits (up to "
      f"{cfg.get('quiet_wait', 120):.0f} s) for the others to use less than {mo*100:.0f} % before it starts, and a run where they used more was "
      f"discarded and done again, at most {MAX_ATTEMPTS - 1} times (idle runs excepted: "
      f"memory does not depend on it), keeping the least disturbed attempt when all were; "
      f"† marks points where it stayed above that. "
      f"{len(discarded)} run{'' if len(discarded) == 1 else 's'} "
      f"{'was' if len(discarded) == 1 else 'were'} discarded this way (kept in the raw "
      "results, marked `discarded`).")
    w("")

    # -- per-point tables
    w("## Cursor scenario, every point")
    w("")
    for s in servers:
        rows = cursor_points(pts, s)
        if not rows:
            continue
        w(f"### {LABEL[s]}")
        w("")
        is_cl = s in CLUSTER_NODES
        if is_cl:
            w("Latency columns p50 to max are over all deliveries; cross-node ones only over "
              "those from a sender on the other node. CPU and RSS: both nodes together.")
            w("")
            w("| clients | result | deliveries/s | demanded | p50 | p99 | p99.9 | max "
              "| cross-node p50 | cross-node p99 | cross-node p99.9 | loss | nodes' CPU "
              "| Redis CPU | wsbench CPU | other CPU | nodes' RSS | runs passing |")
            w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
              "|---:|---|")
        else:
            w("| clients | result | deliveries/s | demanded | p50 | p99 | p99.9 | max | loss "
              "| server CPU | wsbench CPU | other CPU | server RSS | runs passing |")
            w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for n, p in rows:
            res = "pass" if p["passes"] else "**fail**"
            if p["errors"]:
                res += f" ({len(p['errors'])} run error{'s' if len(p['errors']) > 1 else ''})"
            cross = (f"{fmt_ms(p['cross_p50_ms'])} | {fmt_ms(p['cross_p99_ms'])} | "
                     f"{fmt_ms(p['cross_p999_ms'])} | ") if is_cl else ""
            redis = f"{fmt_cpu(p['redis_cpu'])} | " if is_cl else ""
            w(f"| {n} | {res} | {fmt_rate(p['deliveries_per_s'])} | {fmt_rate(RATE_HZ * n * n)} "
              f"| {fmt_ms(p['p50_ms'])} | {fmt_ms(p['p99_ms'])} | {fmt_ms(p['p999_ms'])} | "
              f"{fmt_ms(p['max_ms'])} | {cross}{fmt_pct(p['loss'])} | "
              f"{fmt_cpu(p['server_cpu'])} | {redis}"
              f"{fmt_cpu(p['client_cpu'], True)} | {fmt_other(p['other_cpu'], mo)} | "
              f"{fmt_kib(p['server_rss_kb'])} | {p['runs_pass']}/{p['runs']} |")
        w("")

    for scen, title in [("fanout", f"Fan-out, 1 sender → {cfg['fanout_n']} receivers"),
                        ("idle", "Idle connections"), ("churn", "Connection churn")]:
        keys = sorted([k for k in pts if k[1] == scen], key=lambda k: (SERVERS.index(k[0]), k[2]))
        if not keys:
            continue
        w(f"## {title}")
        w("")
        if scen == "fanout":
            w("| server | frames/s | p50 | p99 | loss | server CPU | wsbench CPU | other CPU "
              "| server RSS | runs ok |")
            w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        elif scen == "idle":
            w("| server | path | connections | RSS per connection | server RSS | connect "
              "failures | server CPU | wsbench CPU | other CPU | runs ok |")
            w("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
        else:
            w("| server | path | cycles/s | failed cycles | server CPU | wsbench CPU | "
              "other CPU | server RSS | runs ok |")
            w("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for k in keys:
            p = point_summary(pts[k])
            ok = f"{p['runs_ok']}/{p['runs']}"
            if p["errors"]:
                ok += " (" + "; ".join(sorted(set(e[:80] for e in p["errors"]))) + ")"
            if scen == "fanout":
                w(f"| {LABEL[k[0]]} | {fmt_rate(p['deliveries_per_s'])} | {fmt_ms(p['p50_ms'])} "
                  f"| {fmt_ms(p['p99_ms'])} | {fmt_pct(p['loss'])} | {fmt_cpu(p['server_cpu'])} "
                  f"| {fmt_cpu(p['client_cpu'], True)} | {fmt_other(p['other_cpu'], mo)} | "
                  f"{fmt_kib(p['server_rss_kb'])} | {ok} |")
            elif scen == "idle":
                w(f"| {LABEL[k[0]]} | `{k[2]}` | {k[3]:,} | {fmt_bytes(p['rss_per_conn_bytes'])} "
                  f"| {fmt_kib(p['server_rss_kb'])} | {p['connect_failures'] or 0:.0f} | "
                  f"{fmt_cpu(p['server_cpu'])} | {fmt_cpu(p['client_cpu'])} | "
                  f"{fmt_other(p['other_cpu'], mo)} | {ok} |")
            else:
                w(f"| {LABEL[k[0]]} | `{k[2]}` | {fmt_rate(p['cycles_per_s'])} | "
                  f"{p['failures'] or 0:.0f} | {fmt_cpu(p['server_cpu'])} | "
                  f"{fmt_cpu(p['client_cpu'], True)} | {fmt_other(p['other_cpu'], mo)} | "
                  f"{fmt_kib(p['server_rss_kb'])} | {ok} |")
        w("")

    errs = [r for r in runs if r.get("error")]
    if errs:
        w("## Runs that failed")
        w("")
        w("A failed run (server crash, load generator error or timeout) is kept and counted as a "
          "failing run; the server was restarted for the next one.")
        w("")
        for r in errs:
            w(f"- {LABEL[r['server']]}, {r['scenario']} `{r['path']}` N={r['n']}, run "
              f"{r['repeat']}: {r['error'][:300]}")
        w("")

    w("## Reproducing")
    w("")
    w("```sh")
    w("make bench                      # about 20-40 minutes on a quiet machine")
    w("BENCH_QUICK=1 make bench        # a 3-minute smoke run, into build/bench-quick/")
    w("BENCH_REPEAT=5 BENCH_DURATION=20 make bench        # longer, steadier")
    w("BENCH_UPDATE=1 BENCH_SERVERS=wsrelay make bench   # re-run wsrelay, keep the peers' runs")
    w("BENCH_UPDATE=1 BENCH_SERVERS=wsrelay-2node BENCH_SCENARIOS=cursor make bench"
      "   # only the two-node cursor runs")
    w("BENCH_UPDATE=1 BENCH_SERVERS=wsrelay,uws-demo BENCH_SCENARIOS=rooms make bench"
      "   # the rooms points (BENCH_ROOMS_N=2000: one more size, the others kept)")
    w("bench/room_cost.py > docs/bench-room-cost.txt    # memory per room")
    w("bench/rooms_cluster.py          # rooms across two nodes: docs/bench-rooms-cluster.json")
    w("BENCH_UPDATE=1 BENCH_SCENARIOS=overload,storm,pacing,batch make bench"
      "   # issue 12's scenarios")
    w("make bench-page                 # the page in a busy room: docs/bench-page.json")
    w("make bench-static               # the page's files against nginx: docs/bench-static.json")
    w("make bench-drain                # reconnects with and without drain: docs/bench-drain.json")
    w("bench/run.py --report-only      # rewrite this page and the plots from bench-results.json")
    w("```")
    w("")
    w(f"Raw results, every run and every JSON line wsbench printed: "
      f"[bench-results.json](bench-results.json).")
    w("")

    text = "\n".join(L)
    # Keep the lead's analysis across regenerations.
    md_path = os.path.join(out_dir, "benchmarks.md")
    if os.path.exists(md_path):
        with open(md_path) as f:
            old = f.read()
        for tag in ("lead: analysis", "rooms: analysis", "issue12: analysis", "page: analysis",
                    "tls: analysis", "operators: analysis"):
            m = re.search(rf"<!-- {tag} -->\n(.*?)<!-- /{tag} -->", old, re.S)
            if m and not m.group(1).startswith("*To be written by the lead") and \
                    not m.group(1).startswith("*Analysis of the rooms figures: to be written") \
                    and not m.group(1).startswith("*Analysis of the issue 12 figures") \
                    and not m.group(1).startswith("*Analysis of the page figures: to be written") \
                    and not m.group(1).startswith("*Analysis of the TLS figures: to be written") \
                    and not m.group(1).startswith("*Analysis of the operators' figures"):
                text = re.sub(rf"(<!-- {tag} -->\n).*?(<!-- /{tag} -->)",
                              lambda mm, g=m.group(1): mm.group(1) + g + mm.group(2), text,
                              flags=re.S)
    with open(md_path + ".tmp", "w") as f:
        f.write(text)
    os.replace(md_path + ".tmp", md_path)
    return md_path


# ---- main --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report-only", action="store_true",
                    help="regenerate the report and plots from the results file, run nothing")
    ap.add_argument("--results", help="results JSON (default: OUT/bench-results.json)")
    args = ap.parse_args()

    # A smoke run must not overwrite the committed results: it writes under build/.
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    out_dir = os.path.join(ROOT, os.environ.get("BENCH_OUT") or
                           ("build/bench-quick" if quick and not args.report_only else "docs"))
    results = args.results or os.path.join(out_dir, "bench-results.json")

    if args.report_only:
        with open(results) as f:
            data = json.load(f)
        os.makedirs(out_dir, exist_ok=True)
        made = write_plots(data, out_dir)
        md = write_report(data, out_dir)
        for p in [md] + made:
            print(f"wrote {os.path.relpath(p, ROOT)}")
        return 0

    cfg = load_config()
    for exe in (WSRELAY, WSBENCH):
        if not os.access(exe, os.X_OK):
            sys.exit(f"run.py: {os.path.relpath(exe, ROOT)} is missing: run `make bench`")
    if any(s != "wsrelay" and s not in CLUSTER_NODES for s in cfg["servers"]) and \
            not os.path.isdir(os.path.join(PEERS, "node_modules")):
        sys.exit("run.py: bench/peers/node_modules is missing: run `make bench` "
                 "(it runs npm ci there)")
    if cfg["server_cpu"] is not None and not shutil.which("taskset"):
        sys.exit("run.py: taskset is missing (util-linux)")
    if any(s in CLUSTER_NODES for s in cfg["servers"]) and not shutil.which("redis-server"):
        sys.exit("run.py: redis-server is missing: run `make bench` (scripts/bench-deps.sh "
                 "installs Debian's redis-server)")

    # Up to 10,000 connections on each side (idle, storm): raise the soft descriptor limit
    # towards the hard one (20,000 here); the server and wsbench inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max([cfg["idle_n"], cfg["storm_n"]] + cfg["overload_n"] +
               [int(x.split("/")[0]) for x in cfg["storm_rooms"]]) + 1024
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft < need:
            print(f"run.py: warning: only {soft} file descriptors (hard limit); idle runs "
                  f"with {cfg['idle_n']} connections will fail", file=sys.stderr)

    # Ctrl-C, SIGTERM, a closed terminal: stop what we started (also when SIGINT came in
    # ignored, as it does for a job started in the background by a script).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    meta = machine_meta(cfg)
    print(f"bench: {meta['cpu_model']}, {meta['cores']} cores; servers "
          f"{', '.join(cfg['servers'])}; scenarios {', '.join(cfg['scenarios'])}; "
          f"{cfg['repeat']} run(s) per point, {cfg['duration']} s each"
          f"{' (BENCH_QUICK)' if cfg['quick'] else ''}", flush=True)
    kept, invocations = [], {}
    if os.environ.get("BENCH_UPDATE", "") not in ("", "0") and os.path.exists(results):
        with open(results) as f:
            old = json.load(f)
        old_started = old["meta"]["started"]
        invocations = old.get("invocations") or {old_started: invocation_summary(old["meta"])}
        # Rooms points are kept per size: BENCH_ROOMS_N=2000 adds a point, the others stay.
        kept = [r for r in old["runs"]
                if not ((r["server"] in cfg["servers"] or r["scenario"] == "tls")
                        and r["scenario"] in cfg["scenarios"]
                        and (r["scenario"] != "rooms" or r["n"] in cfg["rooms_n"]))]
        for r in kept:
            r.setdefault("invocation", old_started)
        invocations = {k: v for k, v in invocations.items()
                       if any(r["invocation"] == k for r in kept)}
        print(f"bench: BENCH_UPDATE: keeping {len(kept)} earlier runs from "
              f"{os.path.relpath(results, ROOT)}", flush=True)
    invocations[meta["started"]] = invocation_summary(meta)
    try:
        runs = kept + run_all(cfg, meta, kept)
        invocations[meta["started"]] = invocation_summary(meta)
    except KeyboardInterrupt:
        stop_all()
        print(f"\nbench: interrupted; every process started here is stopped. Results so far: "
              f"{os.path.relpath(os.path.join(WORK, 'results-partial.json'), ROOT)} "
              f"(`bench/run.py --report-only --results FILE` makes a report from them)",
              file=sys.stderr)
        return 130
    finally:
        stop_all()

    data = {"meta": meta, "invocations": invocations, "runs": runs}
    save_json(results, data)
    made = write_plots(data, out_dir)
    md = write_report(data, out_dir)
    print(f"bench: done in {meta['elapsed_s']/60:.1f} min")
    for p in [results, md] + made:
        print(f"wrote {os.path.relpath(p, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
