"""Drain instead of a storm (issue 14): SIGTERM with --drain-time.

On SIGTERM a node with --drain-time T answers /healthz with 503 (a load balancer takes it out
of rotation), refuses new WebSockets with 503, answers every HTTP request with
`Connection: close`, and closes its open WebSockets with 1001 one by one, spread evenly over
T (the i-th of N at i*T/N), each leave told to its room as usual; then it exits 0. A second
SIGTERM or SIGINT closes the rest at once. --drain-time 0 is the old behaviour (all at once;
test_cli.py). In a cluster the node says its "bye" only after the drain: until a client is
closed, it is still here.

Timing: the spread is the behaviour under test, so the checks compare when closes arrive,
with bounds loose enough for a loaded machine and the sanitizer build (a close may come late,
never early: the first half of the clients must not all be gone in the first tenth of the
drain, and the drain must not end before most of its time has passed).
"""

import asyncio
import re
import signal
import time

import pytest
import websockets

from conftest import (
    TIMEOUT, HttpConn, closed, get, http_request, handshake_request, join_room, leave_text,
    recv, run, run_cli, ws_connect,
)
from test_cluster import redis, wait_cluster  # noqa: F401 - redis is a fixture

N = 8
DRAIN_S = 2.0
DRAINING = re.compile(r'"draining"')
SECOND = re.compile(r'"second signal: closing the rest at once"')


def healthz(port):
    return get(port, "/healthz")


async def close_times(clients, t0):
    """Waits for each client's close; returns [(seconds after t0, code, reason)] by client."""
    async def one(ws):
        code, reason = await closed(ws, timeout=DRAIN_S + 3 * TIMEOUT)
        return time.monotonic() - t0, code, reason

    return await asyncio.gather(*(one(ws) for ws, _, _ in clients))


def test_sigterm_drains_websockets_spread_over_the_drain_time(start_server):
    srv = start_server("--drain-time", f"{int(DRAIN_S * 1000)}ms")
    assert healthz(srv.port).status == 200

    async def go():
        clients = [await join_room(srv.port, "/ws/drained") for _ in range(N)]
        # everyone has heard everyone's join before the drain starts
        for i, (ws, _, _) in enumerate(clients):
            for _ in range(N - 1 - i):
                await recv(ws)
        srv.stopped = True
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(DRAINING)

        # While draining: /healthz says 503, a new WebSocket is refused, files still come.
        h = healthz(srv.port)
        assert h.status == 503, h
        assert h.body == b"draining\n"
        assert h.header("Connection") == "close"
        page = get(srv.port, "/")
        assert page.status == 200 and page.header("Connection") == "close", page
        with HttpConn(srv.port) as c:
            c.send(handshake_request("/ws/drained"))
            r = c.read_response()
        assert r.status == 503, r
        assert r.header("Retry-After") == "1"

        times = await close_times(clients, t0)
        last = max(range(N), key=lambda i: times[i][0])
        return clients, times, last, await drain_messages(clients[last][0])

    clients, times, last, heard = run(go(), timeout=60)
    assert srv.proc.wait(TIMEOUT) == 0, srv.stderr
    assert all(code == 1001 and reason == "server draining" for _, code, reason in times), times
    arrivals = sorted(t for t, _, _ in times)
    # Spread, not all at once: half of them are still open a tenth into the drain (closes
    # are due at 0, T/8, 2T/8, ...), and the last one leaves after most of the drain.
    assert sum(t < DRAIN_S / 10 for t in arrivals) <= N // 2, arrivals
    assert arrivals[-1] >= DRAIN_S * (N - 1) / N * 0.8, arrivals
    # Each drained client's leave reached the ones still there: presence goes on. The last
    # one closed heard a leave for each of the others before its own close.
    want = {leave_text(w) for i, (_, w, _) in enumerate(clients) if i != last}
    assert want <= set(heard), heard


async def drain_messages(ws):
    """What a closed client had received and not yet read."""
    out = []
    try:
        while True:
            out.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
    except websockets.ConnectionClosed:
        return out


def test_leaves_are_told_to_the_room_during_a_drain(start_server):
    srv = start_server("--drain-time", "1s")

    async def go():
        a = await join_room(srv.port, "/ws/room")
        b = await join_room(srv.port, "/ws/room")
        await recv(a[0])  # b's join
        srv.stopped = True
        srv.proc.send_signal(signal.SIGTERM)
        # a is closed first (table order), at once; b hears a's leave before its own close.
        assert await closed(a[0]) == (1001, "server draining")
        assert await recv(b[0]) == leave_text(a[1])
        assert await closed(b[0]) == (1001, "server draining")

    run(go(), timeout=30)
    assert srv.proc.wait(TIMEOUT) == 0, srv.stderr


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_closes_the_rest_at_once(start_server, second):
    srv = start_server("--drain-time", "60s")

    async def go():
        clients = [await join_room(srv.port) for _ in range(4)]
        srv.stopped = True
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(DRAINING)
        # the first is closed at once; the next is due 15 s later
        assert await closed(clients[0][0]) == (1001, "server draining")
        assert healthz(srv.port).status == 503
        t0 = time.monotonic()
        srv.proc.send_signal(second)
        srv.wait_log(SECOND)
        for ws, _, _ in clients[1:]:
            code, _ = await closed(ws)
            assert code == 1001
        return time.monotonic() - t0

    took = run(go(), timeout=30)
    assert srv.proc.wait(TIMEOUT) == 0, srv.stderr
    assert took < 15, f"the second signal did not end the drain ({took:.1f} s)"


def test_a_drain_with_no_websocket_ends_at_once(start_server):
    srv = start_server("--drain-time", "60s")
    with HttpConn(srv.port) as idle:  # an idle keep-alive connection does not hold it up
        idle.send(http_request("GET", "/healthz"))
        assert idle.read_response().status == 200
        srv.stopped = True
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(TIMEOUT) == 0, srv.stderr
    assert '"drained"' in srv.stderr


def test_keep_alive_connections_are_closed_after_their_next_response(start_server):
    srv = start_server("--drain-time", "60s")

    async def go():
        ws, _, _ = await join_room(srv.port)  # keeps the drain going
        ws2, _, _ = await join_room(srv.port)
        with HttpConn(srv.port) as c:
            c.send(http_request("GET", "/healthz"))
            r = c.read_response()
            assert r.status == 200 and r.header("Connection") != "close", r
            srv.stopped = True
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_log(DRAINING)
            c.send(http_request("GET", "/healthz"))
            r = c.read_response()
            assert r.status == 503 and r.header("Connection") == "close", r
            assert c.closed_by_peer()
        srv.proc.send_signal(signal.SIGINT)
        await closed(ws)
        await closed(ws2)

    run(go(), timeout=30)
    assert srv.proc.wait(TIMEOUT) == 0, srv.stderr


def test_echo_clients_are_drained_too(start_server):
    srv = start_server("--drain-time", "1s")

    async def go():
        async with ws_connect(srv.port, "/echo") as e:
            await e.send("x")
            assert await recv(e) == "x"
            srv.stopped = True
            srv.proc.send_signal(signal.SIGTERM)
            assert await closed(e) == (1001, "server draining")

    run(go(), timeout=30)
    assert srv.proc.wait(TIMEOUT) == 0, srv.stderr


@pytest.mark.parametrize("value", ["-1", "abc", "2h", "5 s", ""])
def test_bad_drain_time_is_refused(value):
    r = run_cli("--drain-time", value)
    assert r.returncode == 2, r
    assert b"--drain-time" in r.stderr


def test_in_a_cluster_the_bye_waits_for_the_drain(redis, start_server):
    """A draining node stays in the cluster: the other node hears its clients leave one by
    one as they are closed, not all at once from an early bye; then the bye, and it exits."""
    r = redis()
    na = start_server("--redis", r.url)
    nb = start_server("--redis", r.url, "--drain-time", "2s")
    wait_cluster([na, nb])

    async def go():
        a, _, _ = await join_room(na.port, "/ws/x")
        b1, w1, _ = await join_room(nb.port, "/ws/x")
        b2, w2, _ = await join_room(nb.port, "/ws/x")
        for _ in range(2):  # b1's and b2's joins reach a through Redis
            await recv(a, TIMEOUT)
        nb.stopped = True
        nb.proc.send_signal(signal.SIGTERM)
        assert await recv(a) == leave_text(w1)  # b1 is closed first, at once
        t1 = time.monotonic()
        assert await recv(a, DRAIN_S + TIMEOUT) == leave_text(w2)  # b2 half-way, 1 s later
        gap = time.monotonic() - t1
        await closed(b1)
        await closed(b2)
        await a.close()
        return gap

    gap = run(go(), timeout=60)
    assert nb.proc.wait(TIMEOUT) == 0, nb.stderr
    assert gap >= DRAIN_S / 2 * 0.5, f"the second leave came {gap:.2f} s after the first"
