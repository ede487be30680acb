#!/usr/bin/python3
"""static_files.py: the page's files from wsrelay and from nginx, side by side (issue 14).

wrk (`-t1 -c50`, keep-alive, no Accept-Encoding: the identity files) against wsrelay and
against Debian's nginx with one worker (`worker_processes 1`, `access_log off`, `sendfile
on`, nothing else tuned), both pinned to CPU 0 and wrk to CPU 1, serving the same directory:
www/index.html, www/index.js, www/cursors.js and a 1 MiB file of random bytes made here. The two servers take
turns, file by file, --repeat times, so a busy neighbour lands on both; medians of
requests per second are reported, with wsrelay ÷ nginx.

Everything on 127.0.0.1, on ports the kernel says are free; every process started is
stopped by its PID (nginx by its master's, from its own pid file). Writes --out (JSON) and
prints a Markdown table for docs/benchmarks.md. Usage:

    bench/static_files.py [--repeat 3] [--duration 5] [--connections 50] [--out FILE]
"""
import argparse
import json
import os
import re
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
WSRELAY = os.path.join(ROOT, "wsrelay")
HOST = "127.0.0.1"
FILES = ["index.html", "index.js", "cursors.js", "big.bin"]

NGINX_CONF = """worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    include /etc/nginx/mime.types;
    server {{
        listen {host}:{port};
        root {www};
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"static_files.py: {what} exited (status {proc.returncode})")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"static_files.py: {what} is not listening on {port}")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wrk(port, path, a):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{a.connections}",
                          f"-d{a.duration}s", f"http://{HOST}:{port}/{path}"],
                         capture_output=True, text=True, timeout=a.duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if m is None or errors is not None:
        sys.exit(f"static_files.py: wrk on {path} failed:\n{out}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench-static.json"))
    a = ap.parse_args()
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"static_files.py: {tool} is missing (scripts/bench-deps.sh)")
    work = tempfile.mkdtemp(prefix="wsrelay-static-")
    os.chmod(work, 0o755)  # nginx's worker runs as nobody when started by root
    www = os.path.join(work, "www")
    os.mkdir(www, 0o755)
    for f in FILES[:3]:
        shutil.copy2(os.path.join(ROOT, "www", f), www)
    with open(os.path.join(www, "big.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    for f in FILES:
        os.chmod(os.path.join(www, f), 0o644)
    sizes = {f: os.path.getsize(os.path.join(www, f)) for f in FILES}

    nport, wport = free_port(), free_port()
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(work=work, host=HOST, port=nport, www=www))
    procs = []
    try:
        nginx = subprocess.Popen(["taskset", "-c", "0", "nginx", "-p", work, "-c",
                                  os.path.join(work, "nginx.conf")],
                                 stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nginx)
        wait_listening(nport, nginx, "nginx")
        ws = subprocess.Popen(["taskset", "-c", "0", WSRELAY, "--host", HOST, "--port",
                               str(wport), "--www", www, "--quiet", "--drain-time", "0",
                               "--max-clients", "4096"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ws)
        wait_listening(wport, ws, "wsrelay")
        runs = []
        for rep in range(a.repeat):
            for f in FILES:
                for server, port in (("wsrelay", wport), ("nginx", nport)):
                    rps = wrk(port, f, a)
                    runs.append({"server": server, "file": f, "repeat": rep, "rps": rps})
                    print(f"{server:8} {f:10} {rps:10.0f} req/s", flush=True)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)

    summary = {}
    for f in FILES:
        med = {s: statistics.median(r["rps"] for r in runs if r["server"] == s and r["file"] == f)
               for s in ("wsrelay", "nginx")}
        summary[f] = {**med, "ratio": med["wsrelay"] / med["nginx"], "bytes": sizes[f]}
    out = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
           "wrk": f"-t1 -c{a.connections} -d{a.duration}s", "repeat": a.repeat,
           "summary": summary, "runs": runs}
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print("\n| file | size | wsrelay req/s | nginx req/s | wsrelay ÷ nginx |\n|---|---:|---:|---:|---:|")
    for f, s in summary.items():
        name = "1 MiB of random bytes" if f == "big.bin" else f"`{f}`"
        print(f"| {name} | {s['bytes'] / 1024:.1f} KiB | {s['wsrelay']:.0f} | {s['nginx']:.0f} | "
              f"{s['ratio']:.2f} |")
    print(f"\n(medians of {a.repeat}; {a.out})")


if __name__ == "__main__":
    main()
