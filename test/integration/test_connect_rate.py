"""--max-connect-rate: one client's connect/close loop on /ws is bounded (issue 10 §2.9).

Every handshake on /ws costs each member of the room a join and then a leave, and the
newcomer a welcome listing everyone: bench/churn_cost.py measured one client in a loop (16 at
a time, from one address) making every member of a room of 200 receive about 800 frames a
second. A token bucket per client address (IPv6: per /64; default 20 a second, a burst of
5 s' worth) bounds that: past it the handshake gets 429 with Retry-After, before the upgrade,
so nobody in the room hears of it. Other addresses, /echo and plain HTTP are not limited.

Loopback has a whole /8: a client socket bound to 127.0.0.2 is another address.
"""

import json
import socket
import time

from conftest import (
    HOST,
    TIMEOUT,
    RawWS,
    handshake_request,
    http_request,
    parse_head,
    run_cli,
    scrape,
)


def handshake(port, path="/ws", source=HOST):
    """One opening handshake from `source`; returns (status, headers, socket)."""
    s = socket.socket()
    s.settimeout(TIMEOUT)
    s.bind((source, 0))
    s.connect((HOST, port))
    s.sendall(handshake_request(path))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, f"closed before a response: {head!r}"
        head += chunk
    _, status, _, headers = parse_head(head.split(b"\r\n\r\n", 1)[0])
    return status, dict((k.lower(), v) for k, v in headers), s


def test_a_connect_loop_from_one_address_is_refused_past_its_burst(start_server):
    srv = start_server("--max-connect-rate", "4")  # a burst of 20
    member = RawWS.connect(srv.port, "/ws")  # takes one token
    json.loads(member.recv_text())
    statuses = []
    t0 = time.monotonic()
    for _ in range(40):
        status, headers, s = handshake(srv.port)
        statuses.append(status)
        if status == 429:
            assert headers.get("retry-after") == "1", headers
        s.close()
    elapsed = time.monotonic() - t0
    ok = statuses.count(101)
    # 19 tokens were left, plus what refilled at 4 a second while the loop ran.
    assert 19 <= ok <= 19 + int(4 * elapsed) + 1, (ok, elapsed, statuses)
    assert statuses.count(429) == 40 - ok
    assert statuses[:19] == [101] * 19
    # The member heard of the accepted ones only: a join and a leave each, nothing else.
    seen = []
    deadline = time.monotonic() + TIMEOUT
    while len(seen) < 2 * ok and time.monotonic() < deadline:
        seen.append(json.loads(member.recv_text()))
    assert [m["type"] for m in seen] == ["join", "leave"] * ok, seen
    assert scrape(srv.port).value("wsrelay_connect_rate_limited_total") == 40 - ok
    # Refilled a second later: the same address gets in again.
    time.sleep(1.0)
    status, _, s = handshake(srv.port)
    assert status == 101
    s.close()
    member.close()


def test_other_addresses_echo_and_plain_http_are_not_limited(start_server):
    srv = start_server("--max-connect-rate", "1")  # a burst of 5
    for _ in range(5):
        status, _, s = handshake(srv.port)
        assert status == 101
        s.close()
    status, _, s = handshake(srv.port)
    assert status == 429
    s.close()
    # Another address has its own bucket.
    status, _, s = handshake(srv.port, source="127.0.0.2")
    assert status == 101, "127.0.0.2 was refused for 127.0.0.1's handshakes"
    s.close()
    # /echo has no room to disturb, and a page load is not a handshake.
    for _ in range(10):
        status, _, s = handshake(srv.port, "/echo")
        assert status == 101
        s.close()
        c = socket.create_connection((HOST, srv.port), timeout=TIMEOUT)
        c.sendall(http_request("GET", "/healthz", headers=[("Connection", "close")]))
        assert c.recv(64).startswith(b"HTTP/1.1 200 "), "GET /healthz was limited"
        c.close()


def test_zero_turns_the_limit_off(start_server):
    srv = start_server("--max-connect-rate", "0")
    for _ in range(150):  # past the default burst of 100
        status, _, s = handshake(srv.port)
        assert status == 101
        s.close()


def test_the_default_lets_a_burst_of_100_through(start_server):
    srv = start_server()
    statuses = []
    for _ in range(101):
        status, _, s = handshake(srv.port)
        statuses.append(status)
        s.close()
    assert statuses[:100] == [101] * 100
    # The 101st: refused, unless the loop took long enough to refill a token (20 a second).
    assert statuses[100] in (101, 429)


def test_bad_values_exit_2():
    for value in ("-1", "x", "1000001", ""):
        r = run_cli("--max-connect-rate", value)
        assert r.returncode == 2, (value, r)


def test_a_refused_handshake_disturbs_nobody(start_server):
    # 20 handshakes against a bucket of 5 (a and b took two): the room hears a join and a
    # leave for each accepted one, nothing for the refused, and goes on as before.
    srv = start_server("--max-connect-rate", "1")
    a = RawWS.connect(srv.port, "/ws")
    json.loads(a.recv_text())
    b = RawWS.connect(srv.port, "/ws")
    json.loads(b.recv_text())
    statuses = []
    t0 = time.monotonic()
    for _ in range(20):
        status, _, s = handshake(srv.port)
        statuses.append(status)
        s.close()
    elapsed = time.monotonic() - t0
    accepted = statuses.count(101)
    # 3 tokens left, plus one a second refilled while the loop ran.
    assert 3 <= accepted <= 3 + int(elapsed) + 1, (statuses, elapsed)
    assert statuses.count(429) == 20 - accepted, statuses
    a.send_text('{"x":1}')
    before = []
    while True:
        m = json.loads(b.recv_text())
        if m.get("x") == 1:
            break
        before.append(m["type"])
    assert before == ["join", "leave"] * accepted, before
    a.close()
    b.close()
