"""systemd readiness (issue 14): sd_notify(3) messages on $NOTIFY_SOCKET, as a Type=notify
unit (debian/wsrelay.service) receives them.

Each test plays systemd's part: it binds a unix datagram socket (in the abstract namespace,
"@name", which sd_notify() accepts as systemd's own does), starts the server with
NOTIFY_SOCKET naming it, and reads the datagrams. What they must say, and when:
  - READY=1 once a client can connect: whoever gets it may connect at once, and succeeds;
    with --redis too, even while Redis cannot be reached (ready means this node serves; the
    cluster joins when Redis is there, src/server.c says why);
  - SIGHUP: RELOADING=1 with MONOTONIC_USEC (systemd 253's notify-reload asks for it), then
    READY=1 with a STATUS= saying what the reload did (TLS pair reloaded, or kept);
  - SIGTERM: STOPPING=1 as the drain begins (while /healthz says 503), again when the stop
    after it begins, then the process exits 0;
  - a NOTIFY_SOCKET nobody listens on: one warning in the log, and the server serves.
"""

import os
import re
import signal
import socket
import time

import pytest

from conftest import HOST, TIMEOUT, get, join_room, run, tls_pki
from test_cluster import redis  # noqa: F401 - redis is a fixture


class NotifySocket:
    """The service manager's end: a SOCK_DGRAM socket; messages() parses "KEY=VALUE" lines."""

    def __init__(self):
        self.name = "wsrelay-test-" + os.urandom(8).hex()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)

    @property
    def env(self):
        return "@" + self.name

    def recv(self, timeout=TIMEOUT):
        """The next datagram as a dict of its fields; fails the test after timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            pytest.fail(f"no sd_notify message within {timeout}s")
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        return fields

    def nothing_within(self, seconds):
        self.sock.settimeout(seconds)
        try:
            return self.sock.recv(4096) is None
        except socket.timeout:
            return True

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(monkeypatch):
    """A NotifySocket, named in $NOTIFY_SOCKET for the servers this test starts."""
    n = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", n.env)
    yield n
    n.close()


def port_of(status):
    """The port in "listening on port N (...)"."""
    words = status.split()
    assert words[:3] == ["listening", "on", "port"], status
    return int(words[3])


def test_ready_only_once_a_client_can_connect(start_server, notify):
    srv = start_server()
    m = notify.recv()
    assert m.get("READY") == "1", m
    assert port_of(m["STATUS"]) == srv.port
    assert "TLS off" in m["STATUS"]
    # Whoever hears READY=1 may connect at once: the listener was open before it was sent.
    with socket.create_connection((HOST, srv.port), timeout=TIMEOUT):
        pass
    assert get(srv.port, "/healthz").status == 200
    # Nothing more while nothing happens (STATUS= counts change at most every 5 s, and
    # only when they change).
    assert notify.nothing_within(0.5)


def test_sighup_is_reloading_then_ready(start_server, notify):
    srv = start_server()
    assert notify.recv().get("READY") == "1"
    before_us = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    srv.proc.send_signal(signal.SIGHUP)
    m = notify.recv()
    assert m.get("RELOADING") == "1", m
    assert before_us <= int(m["MONOTONIC_USEC"]) <= before_us + 60_000_000
    m = notify.recv()
    assert m.get("READY") == "1", m
    assert "nothing to reload" in m["STATUS"]


def test_sigterm_is_stopping_when_the_drain_begins(start_server, notify):
    srv = start_server("--drain-time", "2s")
    assert notify.recv().get("READY") == "1"

    async def go():
        # Four WebSockets over 2 s: closed at 0, 0.5, 1 and 1.5 s, so the drain outlasts
        # the checks below (the first is closed at once).
        clients = [await join_room(srv.port, "/ws/notify") for _ in range(4)]
        srv.stopped = True
        srv.proc.send_signal(signal.SIGTERM)
        m = notify.recv()
        assert m.get("STOPPING") == "1", m
        assert m["STATUS"] == "draining: closing 4 WebSockets over 2000 ms", m
        # systemd hears STOPPING=1 while the node is still draining: /healthz says so.
        assert get(srv.port, "/healthz").status == 503
        m = notify.recv(timeout=TIMEOUT + 2)
        assert m.get("STOPPING") == "1", m
        assert m["STATUS"].startswith("stopping: closing "), m
        for ws, _, _ in clients:
            await ws.close()

    run(go())
    assert srv.proc.wait(TIMEOUT) == 0


def test_tls_ready_after_the_pair_loaded_and_reload_says_so(start_server, notify):
    p = tls_pki()
    srv = start_server("--tls-cert", p["cert"], "--tls-key", p["key"])
    srv.ssl = p["ctx"]
    m = notify.recv()
    assert m.get("READY") == "1" and "TLS on" in m["STATUS"], m
    with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as raw:
        with p["ctx"].wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    srv.proc.send_signal(signal.SIGHUP)
    assert notify.recv().get("RELOADING") == "1"
    m = notify.recv()
    assert m.get("READY") == "1" and m["STATUS"] == "TLS certificate and key reloaded", m


def test_ready_with_redis_down_the_node_serves_its_own_rooms(start_server, notify):
    with socket.socket() as s:  # a port nobody listens on: Redis "down"
        s.bind((HOST, 0))
        dead = s.getsockname()[1]
    srv = start_server("--redis", f"redis://{HOST}:{dead}")
    m = notify.recv()
    assert m.get("READY") == "1" and "cluster over Redis" in m["STATUS"], m
    assert port_of(m["STATUS"]) == srv.port

    async def go():  # the local relay works without Redis
        a, _, _ = await join_room(srv.port, "/ws/alone")
        b, _, _ = await join_room(srv.port, "/ws/alone")
        await a.close()
        await b.close()

    run(go())


def test_ready_with_redis_up(start_server, notify, redis):
    r = redis()
    srv = start_server("--redis", r.url)
    m = notify.recv()
    assert m.get("READY") == "1" and port_of(m["STATUS"]) == srv.port, m


def test_notify_socket_nobody_reads_warns_once_and_serves(start_server, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "@wsrelay-test-nobody-" + os.urandom(8).hex())
    srv = start_server()
    srv.proc.send_signal(signal.SIGHUP)  # two more messages, no more warnings
    srv.wait_log(re.compile(r'"SIGHUP: nothing to reload'))
    assert get(srv.port, "/healthz").status == 200
    warnings = [line for line in srv.lines if "cannot notify the service manager" in line]
    assert len(warnings) == 1, srv.stderr
    assert " warn " in warnings[0]
