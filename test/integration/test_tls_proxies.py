"""TLS in a proxy (issue 13): docs/deploy.md's nginx and haproxy configurations, run as the doc
writes them, in front of a plain wsrelay.

The configurations (and haproxy's certbot deploy hook) are read out of docs/deploy.md, where
each is marked by a `<!-- tested: NAME ... -->` comment on the line before its block, so these
tests prove what the doc tells operators to run. Only what ties them to this machine is
replaced, and each replacement is checked to have happened: the Let's Encrypt paths become
copies of a pair from test_tls.py's test CA, the ports free loopback ports, the backend our
server's port; nginx's IPv6 `listen` lines are dropped; haproxy logs to stdout and keeps the
test's user (no chroot, user or group) and a smaller maxconn. nginx gets a main nginx.conf of
our own around the doc's file (as Debian's includes conf.d/ inside `http { }`), with its pid,
logs and temporary files in the test's directory. Each proxy is Debian's binary, started in
the foreground by the test and stopped by its PID: a system nginx or haproxy is never used,
reloaded or stopped.

Through each proxy, over https/wss with clients that trust the test CA only, from 127.0.0.2
(so the proxy's access log and wsrelay's log can tell the client from the proxy):
  - the page is served (200), and the plain-HTTP port redirects to https (301);
  - two WebSockets on /ws relay a cursor with sender and color (the doc's Upgrade/Connection
    and Host handling: a browser's Origin must pass wsrelay's same-host check);
  - /metrics is refused by the proxy (the doc says it stays private), though wsrelay itself
    serves it to the proxy's address;
  - the doc's claim about addresses: wsrelay sees the proxy's (127.0.0.1), never a client's
    X-Forwarded-For, and the client's address (127.0.0.2) is in the proxy's access log;
  - reload after renewal: the new certificate files, then the doc's reload (nginx: SIGHUP to
    its master, what `systemctl reload nginx` sends; haproxy: the doc's deploy hook, with
    `systemctl reload haproxy` as SIGUSR2 to the master): new handshakes see the new
    certificate, and a WebSocket opened before still relays.
"""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (
    HOST,
    REPO,
    TIMEOUT,
    free_port,
    join_text,
    read_to_eof,
    recv,
    relayed,
    run,
    stop_process,
    ws_connect,
)
from test_cluster import eventually
from test_tls import cert_der, client_ctx, pki  # noqa: F401 (pki: the fixture)

CLIENT = "127.0.0.2"  # the visitors' address: not the proxy's (127.0.0.1)
FAKE_XFF = "203.0.113.9"  # what a client claims to be in X-Forwarded-For (RFC 5737)
DOC_LE = "/etc/letsencrypt/live/cursors.example.org/"


def doc_block(name):
    """The code block of docs/deploy.md marked `<!-- tested: NAME ... -->`."""
    text = (REPO / "docs" / "deploy.md").read_text()
    m = re.search(rf"<!-- tested: {re.escape(name)}\b[^>]*-->\n```[a-z]*\n(.*?)```", text, re.S)
    assert m, f"docs/deploy.md has no block marked <!-- tested: {name} -->"
    return m.group(1)


def replace(text, old, new, what):
    """text with every `old` (a regex) replaced; fails if the doc no longer has it."""
    out, n = re.subn(old, new, text, flags=re.M)
    assert n, f"docs/deploy.md's {what} lost {old!r}"
    return out


def install_pair(pki, which, live):  # noqa: F811 (pki: the fixture's value)
    """Writes test_tls.py's `which` pair where Let's Encrypt's live/<name>/ would have it."""
    live.mkdir(parents=True, exist_ok=True)
    cert, key = pki[which]
    (live / "fullchain.pem").write_bytes(cert.read_bytes())
    (live / "privkey.pem").write_bytes(key.read_bytes())


class Proxy:
    """A proxy process in the foreground; its output goes to a log file. Stopped by PID."""

    def __init__(self, name, argv, log, port, plain_port, access_log, ready=None):
        """ready: a line the process writes once it is ready for signals (haproxy's master
        handles SIGUSR2 only once it says so; its worker listens before that)."""
        self.name, self.port, self.plain_port = name, port, plain_port
        self.log, self.access_log, self.ready = log, access_log, ready
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)

        def listening():
            try:
                socket.create_connection((HOST, port), timeout=TIMEOUT).close()
                return True
            except OSError:
                return False

        self.wait(listening, f"listening on {port}")
        if ready is not None:
            self.wait(lambda: self.count(ready) >= 1, f"{ready!r} in its output")

    def wait(self, check, what, timeout=TIMEOUT * 2):
        """Polls check() until true; fails (and stops the process) if it exits or the
        timeout passes first."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.name}: not {what} within {timeout:.0f}s (exit status "
                            f"{self.proc.returncode}): {self.output()}")
            time.sleep(0.05)

    def count(self, line):
        return self.log.read_text(errors="replace").count(line)

    def output(self):
        """The process's own messages (not haproxy's access log lines), the last 4000 bytes."""
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(ln for ln in lines if not re.match(r"[\d.]+:\d+ \[", ln))[-4000:]

    def accessed(self):
        return self.access_log.read_text(errors="replace") if self.access_log.exists() else ""

    def stop(self):
        stop_process(self.proc)


def start_nginx(d, backend_port):
    conf = doc_block("nginx")
    port, plain = free_port(), free_port()
    what = "nginx configuration"
    conf = replace(conf, r"^\s*listen \[::\]:\d+.*\n", "", what)
    conf = replace(conf, r"listen 443 ", f"listen {HOST}:{port} ", what)
    conf = replace(conf, r"listen 80;", f"listen {HOST}:{plain};", what)
    conf = replace(conf, re.escape(DOC_LE), f"{d}/live/", what)
    conf = replace(conf, r"/var/www/letsencrypt", f"{d}/acme", what)
    conf = replace(conf, r"127\.0\.0\.1:7071", f"{HOST}:{backend_port}", what)
    temp = "".join(f"    {k}_temp_path {d}/{k};\n"
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (
        # Workers as nobody could not enter the test's directories (mode 700): as root, run
        # them as root. Not root: nginx ignores `user` anyway.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"error_log {d}/error.log info;\n"
        + "events { worker_connections 256; }\n"
        + "http {\n"
        + f"    access_log {d}/access.log;\n"
        + temp
        + "    include " + str(d / "cursors.conf") + ";\n"
        + "}\n"
    )
    (d / "cursors.conf").write_text(conf)
    (d / "nginx.conf").write_text(main)
    argv = ["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log"),
            "-g", f"daemon off; master_process on; worker_processes 1; pid {d}/nginx.pid;"]
    return Proxy("nginx", argv, d / "nginx.out", port, plain, d / "access.log")


def start_haproxy(d, backend_port):
    conf = doc_block("haproxy")
    port, plain = free_port(), free_port()
    what = "haproxy configuration"
    conf = replace(conf, r"^\s*(chroot|user|group) .*\n", "", what)
    conf = replace(conf, r"log /dev/log local0", "log stdout format raw local0", what)
    conf = replace(conf, r"^(\s*maxconn) \d+.*$", r"\1 1000", what)
    conf = replace(conf, r"bind :443 ", f"bind {HOST}:{port} ", what)
    conf = replace(conf, r"bind :80$", f"bind {HOST}:{plain}", what)
    conf = replace(conf, r"/etc/haproxy/certs/", f"{d}/certs/", what)
    conf = replace(conf, r"127\.0\.0\.1:7071", f"{HOST}:{backend_port}", what)
    (d / "haproxy.cfg").write_text(conf)
    # -W: master-worker, as Debian's unit runs it (-Ws), so that SIGUSR2 reloads; -db: in
    # the foreground. haproxy logs (option httplog) to its stdout: the access log here.
    argv = ["haproxy", "-W", "-db", "-f", str(d / "haproxy.cfg")]
    return Proxy("haproxy", argv, d / "haproxy.out", port, plain, d / "haproxy.out",
                 ready="Loading success.")


def run_deploy_hook(d, reload_command):
    """docs/deploy.md's haproxy deploy hook, with certbot's $RENEWED_LINEAGE set to the test's
    live/ directory and `systemctl reload haproxy` replaced by reload_command."""
    hook = doc_block("haproxy-deploy-hook")
    what = "haproxy deploy hook"
    hook = replace(hook, r"/etc/haproxy/certs", f"{d}/certs", what)
    hook = replace(hook, r"systemctl reload haproxy", reload_command, what)
    (d / "deploy-hook.sh").write_text(hook)
    r = subprocess.run(["sh", str(d / "deploy-hook.sh")], capture_output=True, timeout=30,
                       env=dict(os.environ, RENEWED_LINEAGE=str(d / "live")))
    assert r.returncode == 0, r


def reload_nginx(d, nginx):
    nginx.proc.send_signal(signal.SIGHUP)  # what `systemctl reload nginx` sends the master


def reload_haproxy(d, hap):
    # What `systemctl reload haproxy` does to Debian's master (-Ws): SIGUSR2.
    loaded = hap.count(hap.ready)
    run_deploy_hook(d, f"kill -USR2 {hap.proc.pid}")
    hap.wait(lambda: hap.count(hap.ready) > loaded, "reloaded")


PROXIES = {
    "nginx": (start_nginx, reload_nginx),
    "haproxy": (start_haproxy, reload_haproxy),
}


@pytest.fixture(params=sorted(PROXIES))
def proxied(request, start_server, pki, tmp_path):  # noqa: F811 (pki: the fixture)
    """(proxy, wsrelay, reload): wsrelay as docs/deploy.md runs it behind a proxy (plain, on
    loopback, --max-connect-rate 0), and that proxy with the doc's configuration and the
    "first" pair in place of Let's Encrypt's files. reload() installs the "second" pair and
    reloads as the doc says."""
    name = request.param
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (scripts/deps.sh installs it)")
    srv = start_server("--max-connect-rate", "0")
    start, reload_proxy = PROXIES[name]
    d = tmp_path / name
    (d / "acme").mkdir(parents=True)
    install_pair(pki, "first", d / "live")
    if name == "haproxy":
        run_deploy_hook(d, "true")  # the first certificate: haproxy is not running yet
    proxy = start(d, srv.port)

    def reload():
        install_pair(pki, "second", d / "live")  # what a renewal leaves in live/<name>/
        reload_proxy(d, proxy)

    try:
        yield proxy, srv, reload
    finally:
        proxy.stop()


def https_get(port, ctx, target):
    """GET over TLS from CLIENT; (status, head text, body, the certificate the proxy sent)."""
    raw = socket.create_connection((HOST, port), timeout=TIMEOUT, source_address=(CLIENT, 0))
    with ctx.wrap_socket(raw, server_hostname=HOST) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n"
                  .encode())
        data = read_to_eof(s)
        der = s.getpeercert(binary_form=True)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head.decode("latin-1"), body, der


def wss(proxy, ctx, path="/ws", **kw):
    """A browser-like WebSocket through the proxy, from CLIENT: its Origin is the page's."""
    kw.setdefault("origin", f"https://{HOST}:{proxy.port}")
    return ws_connect(proxy.port, path, ssl=ctx, local_addr=(CLIENT, 0), **kw)


async def join(proxy, ctx, **kw):
    ws = await wss(proxy, ctx, **kw)
    welcome = json.loads(await recv(ws))
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def relays(a, wa, b, wb, body):
    """b sends {body}: a and b both get it with b's sender and color."""
    await b.send("{" + body + "}")
    assert await recv(a) == relayed(body, wb)
    assert await recv(b) == relayed(body, wb)


def test_the_page_and_a_redirect_through_the_proxy(proxied, pki, site):  # noqa: F811
    proxy, _, _ = proxied
    status, head, body, der = https_get(proxy.port, client_ctx(pki), "/")
    assert status == 200, head
    assert body == site.files["index.html"], body[:200]
    assert der == cert_der(pki["first"][0])
    # The plain port: everything but an ACME challenge goes to https.
    with socket.create_connection((HOST, proxy.plain_port), timeout=TIMEOUT) as s:
        s.sendall(f"GET /r/doc?x=1 HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                  .encode())
        head = read_to_eof(s).split(b"\r\n\r\n")[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 301"), head
    assert re.search(rf"(?im)^location: https://{re.escape(HOST)}(:443)?/r/doc\?x=1\r?$", head), head


def test_a_cursor_relayed_through_the_proxy_over_wss(proxied, pki):  # noqa: F811
    proxy, _, _ = proxied
    ctx = client_ctx(pki)

    async def go():
        a, wa = await join(proxy, ctx)
        b, wb = await join(proxy, ctx)
        assert json.loads(await recv(a)) == json.loads(join_text(wb))
        await relays(a, wa, b, wb, '"x":1,"y":2')
        # A room of its own, and /echo, through the same location rules.
        c, wc = await join(proxy, ctx, path="/ws/doc")
        assert wc["room"] == "doc"
        async with wss(proxy, ctx, "/echo") as e:
            await e.send(b"\x00\xff" * 3000)
            assert await recv(e) == b"\x00\xff" * 3000
        for ws in (a, b, c):
            await ws.close()

    run(go())


def test_metrics_stay_private_behind_the_proxy(proxied, pki):  # noqa: F811
    proxy, srv, _ = proxied
    for target in ("/metrics", "/metrics?format=text"):
        status, head, body, _ = https_get(proxy.port, client_ctx(pki), target)
        assert status == 404, head
        assert b"wsrelay_" not in body, body[:200]
    # wsrelay itself serves them to loopback: that is what the proxy must not pass on.
    with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"wsrelay_connections_open" in read_to_eof(s)


def test_wsrelay_sees_the_proxy_and_the_proxy_logs_the_client(proxied, pki):  # noqa: F811
    """docs/deploy.md: no trusted-proxy setting, so wsrelay's peer is the proxy and a client's
    X-Forwarded-For changes nothing; the client's address is in the proxy's access log."""
    proxy, srv, _ = proxied

    async def go():
        ws, _ = await join(proxy, client_ctx(pki), extra_headers={"X-Forwarded-For": FAKE_XFF})
        await ws.close()

    run(go())
    # The log reaches srv.lines through a thread: wait for the line.
    peer = srv.wait_log(re.compile(r'\bpeer=(\S+) .*"websocket open"')).group(1)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", peer), peer
    assert FAKE_XFF not in srv.stderr
    assert CLIENT not in srv.stderr
    # The proxy writes its line when the WebSocket ends.
    # nginx: "127.0.0.2 - - [...] "GET /ws HTTP/1.1" 101 ..."; haproxy (option httplog):
    # "127.0.0.2:port [...] ... "GET /ws HTTP/1.1"".
    logged = re.compile(rf'^{re.escape(CLIENT)}[ :].*"GET /ws HTTP/1\.1"', re.M)
    eventually(lambda: logged.search(proxy.accessed()),
               lambda: f"{proxy.name}'s access log names the client:\n{proxy.accessed()}",
               TIMEOUT * 2)


def test_reload_after_renewal_new_certificate_open_websockets_stay(proxied, pki):  # noqa: F811
    proxy, _, reload = proxied
    ctx = client_ctx(pki)
    new = cert_der(pki["second"][0])

    async def go():
        a, wa = await join(proxy, ctx)
        b, wb = await join(proxy, ctx)
        assert json.loads(await recv(a)) == json.loads(join_text(wb))
        reload()
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + TIMEOUT * 2
        while (await loop.run_in_executor(None, https_get, proxy.port, ctx, "/healthz"))[3] != new:
            assert time.monotonic() < deadline, \
                f"{proxy.name}: no new certificate after the reload:\n{proxy.output()}"
            await asyncio.sleep(0.1)
        # Opened before the reload, served by the old worker: still relaying.
        await relays(a, wa, b, wb, '"x":3,"y":4')
        await relays(b, wb, a, wa, '"x":5,"y":6')
        # And a new visitor, on the new worker, joins the same room.
        c, wc = await join(proxy, ctx)
        assert json.loads(await recv(a)) == json.loads(join_text(wc))
        for ws in (a, b, c):
            await ws.close()

    run(go(), timeout=60)
