"""GET /metrics (Prometheus text exposition format 0.0.4) and GET /healthz.

The scrape's own connection is open while it is being answered: connections_open counts it,
and connections_total includes it."""

import asyncio
import socket
import time

import pytest

from conftest import (
    scrape_until,
    OP_TEXT,
    TIMEOUT,
    HttpConn,
    RawWS,
    build_frame,
    expect,
    get,
    http_request,
    join_room,
    join_text,
    leave_text,
    read_to_eof,
    recv,
    relayed,
    run,
    run_cli,
    scrape,
    ws_connect,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUIRED = {
    "wsrelay_connections_open": "gauge",
    "wsrelay_connections_total": "counter",
    "wsrelay_websockets_open": "gauge",
    "wsrelay_messages_in_total": "counter",
    "wsrelay_messages_out_total": "counter",
    "wsrelay_bytes_in_total": "counter",
    "wsrelay_bytes_out_total": "counter",
    "wsrelay_disconnects_total": "counter",
    "wsrelay_rate_limited_total": "counter",
}




def test_metrics_is_200_with_prometheus_content_type(server):
    resp = get(server.port, "/metrics")
    assert resp.status == 200, resp
    assert resp.header("Content-Type") == CONTENT_TYPE, resp


def test_every_required_metric_is_present_with_help_and_type(server):
    m = scrape(server.port)
    for name, kind in REQUIRED.items():
        assert m.types.get(name) == kind, f"{name}: TYPE {m.types.get(name)!r}, want {kind}"
        assert name in m.helps, f"{name} has no # HELP line"
    # Every sample belongs to a family with HELP and TYPE.
    for (name, _labels) in m.samples:
        assert name in m.types and name in m.helps, f"sample {name} without HELP/TYPE"
    # HELP and TYPE come before the family's samples.
    lines = m.text.split("\n")
    for name in REQUIRED:
        first_sample = next((i for i, ln in enumerate(lines)
                             if ln.startswith(name + " ") or ln.startswith(name + "{")), None)
        if first_sample is None:
            continue
        assert lines.index(f"# TYPE {name} {REQUIRED[name]}") < first_sample, name
        assert any(ln.startswith(f"# HELP {name} ") for ln in lines[:first_sample]), name


def test_initial_values(server):
    m = scrape(server.port)
    assert m.value("wsrelay_connections_open") == 1, "the scrape's own connection is open"
    assert m.value("wsrelay_connections_total") >= 1
    assert m.value("wsrelay_websockets_open", route="ws") == 0
    assert m.value("wsrelay_websockets_open", route="echo") == 0
    assert m.value("wsrelay_rate_limited_total") == 0
    assert m.value("wsrelay_messages_in_total") == 0
    assert m.value("wsrelay_messages_out_total") == 0


def test_gauges_follow_connections_and_websockets(server):
    p = server.port

    async def go():
        a, wa, _ = await join_room(p)
        b, wb, _ = await join_room(p)
        await expect(a, join_text(wb))
        e = await ws_connect(p, "/echo")
        idle = HttpConn(p)  # an HTTP connection that has sent nothing yet
        try:
            m = scrape_until(p, lambda m: m.value("wsrelay_connections_open") == 5)
            assert m.value("wsrelay_connections_open") == 5, m.text  # a, b, e, idle, scrape
            assert m.value("wsrelay_websockets_open", route="ws") == 2, m.text
            assert m.value("wsrelay_websockets_open", route="echo") == 1, m.text
        finally:
            idle.close()
        await b.close()
        await expect(a, leave_text(wb))
        await e.close()
        m = scrape_until(p, lambda m: m.value("wsrelay_connections_open") == 2)
        assert m.value("wsrelay_connections_open") == 2, m.text  # a and the scrape
        assert m.value("wsrelay_websockets_open", route="ws") == 1, m.text
        assert m.value("wsrelay_websockets_open", route="echo") == 0, m.text
        await a.close()
        m = scrape_until(p, lambda m: m.value("wsrelay_connections_open") == 1)
        assert m.value("wsrelay_connections_open") == 1, m.text
        assert m.value("wsrelay_websockets_open", route="ws") == 0, m.text

    run(go())


def test_connections_total_counts_every_tcp_connection(server):
    first = scrape(server.port).value("wsrelay_connections_total")
    for _ in range(3):
        with HttpConn(server.port) as c:
            c.send(http_request("GET", "/style.css"))
            assert c.read_response().status == 200
    second = scrape(server.port).value("wsrelay_connections_total")
    assert second - first == 4, f"3 connections and a scrape, but +{second - first}"


def test_message_counters_move_with_one_relay_to_two_clients(server):
    p = server.port
    msg = '{"x":1,"y":2}'

    async def go():
        a, wa, _ = await join_room(p)
        b, wb, _ = await join_room(p)
        await expect(a, join_text(wb))
        m1 = scrape(p)
        await a.send(msg)
        out = relayed('"x":1,"y":2', wa)
        await expect(a, out)
        await expect(b, out)
        m2 = scrape(p)
        d_in = m2.value("wsrelay_messages_in_total") - m1.value("wsrelay_messages_in_total")
        d_out = m2.value("wsrelay_messages_out_total") - m1.value("wsrelay_messages_out_total")
        assert d_in == 1, f"one message in, messages_in_total +{d_in}"
        assert d_out >= 2, f"relayed to two clients, messages_out_total +{d_out}"
        b_in = m2.value("wsrelay_bytes_in_total") - m1.value("wsrelay_bytes_in_total")
        b_out = m2.value("wsrelay_bytes_out_total") - m1.value("wsrelay_bytes_out_total")
        assert b_in >= len(msg), f"bytes_in_total +{b_in} for a {len(msg)}-byte message"
        assert b_out >= 2 * len(out), f"bytes_out_total +{b_out} for 2 x {len(out)} bytes"
        await a.close()
        await b.close()

    run(go())


def test_echo_messages_are_counted(server):
    p = server.port

    async def go():
        async with ws_connect(p, "/echo") as e:
            m1 = scrape(p)
            for i in range(3):
                await e.send(f"m{i}")
                assert await recv(e) == f"m{i}"
            m2 = scrape(p)
        d_in = m2.value("wsrelay_messages_in_total") - m1.value("wsrelay_messages_in_total")
        d_out = m2.value("wsrelay_messages_out_total") - m1.value("wsrelay_messages_out_total")
        assert d_in == 3 and d_out >= 3, (d_in, d_out)

    run(go())


def test_counters_never_decrease(server):
    p = server.port
    names = [n for n, kind in REQUIRED.items() if kind == "counter"]

    async def go():
        before = scrape(p)
        for _ in range(3):
            ws, _w, _t = await join_room(p)
            await ws.send('{"a":1}')
            await recv(ws)
            await ws.close()
        return before, scrape(p)

    before, after = run(go())
    for name in names:
        assert after.total(name) >= before.total(name), name


def test_disconnects_are_counted_with_a_reason_label(server):
    p = server.port
    before = scrape(p).total("wsrelay_disconnects_total")

    async def go():
        a, wa, _ = await join_room(p)
        await a.send("not json")
        await asyncio.wait_for(a.wait_closed(), TIMEOUT)
        assert a.close_code == 1007
        ws = RawWS.connect(p, "/echo")
        ws.abort()

    run(go())
    m = scrape_until(p, lambda m: m.total("wsrelay_disconnects_total") >= before + 2)
    assert m.total("wsrelay_disconnects_total") >= before + 2, m.text
    for (name, labels), _v in m.samples.items():
        if name == "wsrelay_disconnects_total":
            keys = [k for k, _ in labels]
            assert keys == ["reason"], f"disconnects_total labels {labels}"


def test_rate_limited_total_counts_dropped_messages(start_server):
    srv = start_server("--max-rate", 5)
    f = RawWS.connect(srv.port, "/ws")
    try:
        f.recv_text()
        time.sleep(1.2)
        f.send_raw(b"".join(build_frame(OP_TEXT, f'{{"n":{i}}}') for i in range(30)))
        m = scrape_until(srv.port, lambda m: (m.value("wsrelay_rate_limited_total") or 0) >= 15)
        assert (m.value("wsrelay_rate_limited_total") or 0) >= 15, m.text
    finally:
        f.close()


def test_healthz_is_200_ok(server):
    resp = get(server.port, "/healthz")
    assert resp.status == 200, resp
    assert resp.body == b"ok\n", resp


def test_metrics_and_healthz_work_on_a_keep_alive_connection(server, site):
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/healthz") + http_request("GET", "/metrics")
               + http_request("GET", "/style.css"))
        assert c.read_response().body == b"ok\n"
        r = c.read_response()
        assert r.status == 200 and b"wsrelay_connections_open" in r.body
        assert c.read_response().body == site.files["style.css"]


@pytest.mark.parametrize("target", ["/metrics", "/healthz"])
def test_head_has_no_body(server, target):
    resp = get(server.port, target, method="HEAD")
    assert resp.status == 200, resp
    assert resp.body == b""


# ---------------------------------------------------------------------------------------------
# --metrics-allow: who may read the counters (default: this machine, 127.0.0.0/8 and ::1)
# ---------------------------------------------------------------------------------------------

REFUSAL = b"403 Forbidden: metrics are served to the allowed addresses only (see --metrics-allow)\n"


def get_via(host, port, target, method="GET"):
    """One request from a given local address family ("127.0.0.1" or "::1"), read to EOF:
    (status, head, body)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect((host, port))
        s.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = read_to_eof(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head, body


def assert_refused_without_leaking(resp):
    assert resp.status == 403, resp
    assert resp.body == REFUSAL, resp
    assert b"wsrelay_" not in resp.raw + resp.body, "a refusal leaked a counter"
    assert (resp.header("Connection") or "").lower() == "close", resp


def test_metrics_from_loopback_are_served_by_default(server):
    m = scrape(server.port)
    assert m.value("wsrelay_connections_open") == 1, m.text


def local_non_loopback_ipv4():
    """An IPv4 address of this machine outside 127.0.0.0/8, or None. (A UDP "connect" only
    picks the source address the routing table would use: no packet is sent.)"""
    candidates = []
    for probe in ("192.0.2.1", "10.255.255.255", "8.8.8.8"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                candidates.append(s.getsockname()[0])
        except OSError:
            pass
    try:
        candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        pass
    return next((a for a in candidates if not a.startswith("127.") and a != "0.0.0.0"), None)


def test_metrics_are_not_served_to_other_machines_by_default(start_server):
    # The point of the flag: a peer that is not this machine gets no counters unless listed.
    addr = local_non_loopback_ipv4()
    if addr is None:
        pytest.skip("this machine has no IPv4 address outside 127.0.0.0/8")
    srv = start_server("--host", "0.0.0.0")
    status, head, body = get_via(addr, srv.port, "/metrics")
    assert status == 403 and body == REFUSAL, (addr, status, body)
    assert b"wsrelay_" not in head + body
    assert get_via(addr, srv.port, "/healthz")[:3:2] == (200, b"ok\n")
    assert get_via("127.0.0.1", srv.port, "/metrics")[0] == 200  # this machine still is
    listed = start_server("--host", "0.0.0.0", "--metrics-allow", f"127.0.0.1,{addr}/32")
    status, _, body = get_via(addr, listed.port, "/metrics")
    assert status == 200 and b"wsrelay_connections_open" in body, (status, body[:200])


def test_metrics_outside_the_allowed_prefixes_get_403_and_healthz_stays_public(start_server):
    srv = start_server("--metrics-allow", "10.0.0.0/8")
    with HttpConn(srv.port) as c:
        c.send(http_request("GET", "/metrics"))
        assert_refused_without_leaking(c.read_response())
        assert c.closed_by_peer(), "the connection stayed open after the 403"
    resp = get(srv.port, "/metrics", method="HEAD")
    assert resp.status == 403 and resp.body == b"", resp
    resp = get(srv.port, "/healthz")
    assert resp.status == 200 and resp.body == b"ok\n", resp
    resp = get(srv.port, "/metrics?x=1")  # the query does not change the route
    assert resp.status == 403, resp


@pytest.mark.parametrize("allow", ["any", "127.0.0.1", "127.0.0.0/8,10.0.0.0/8", "0.0.0.0/0",
                                   "::ffff:127.0.0.0/104"])
def test_metrics_allow_lists_that_hold_loopback_serve_it(start_server, allow):
    srv = start_server("--metrics-allow", allow)
    m = scrape(srv.port)
    assert m.value("wsrelay_connections_open") == 1, m.text


def test_ipv4_mapped_peers_match_their_ipv4_form_when_listening_on_both_families(start_server):
    # --host ::: an IPv4 client arrives as ::ffff:127.0.0.1. It matches 127.0.0.0/8 (its IPv4
    # form), not ::1; an IPv6 client on ::1 matches ::1, not 127.0.0.0/8.
    default = start_server("--host", "::")
    assert get_via("127.0.0.1", default.port, "/metrics")[0] == 200
    assert get_via("::1", default.port, "/metrics")[0] == 200
    v4_only = start_server("--host", "::", "--metrics-allow", "127.0.0.0/8")
    assert get_via("127.0.0.1", v4_only.port, "/metrics")[0] == 200
    status, _, body = get_via("::1", v4_only.port, "/metrics")
    assert status == 403 and body == REFUSAL, (status, body)
    v6_only = start_server("--host", "::", "--metrics-allow", "::1")
    status, _, body = get_via("127.0.0.1", v6_only.port, "/metrics")
    assert status == 403 and body == REFUSAL, (status, body)
    assert get_via("::1", v6_only.port, "/metrics")[0] == 200
    assert get_via("::1", v6_only.port, "/healthz")[0] == 200


@pytest.mark.parametrize("value", [
    "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.1/8", "10.0.0.0/8,", ",::1", "10.0.0.0/8,,::1",
    "10.0.0.0/8, ::1", "localhost", "any,::1", "10.0.0/8", "garbage", "10.0.0.0/08",
    ",".join(f"10.{i}.0.0/16" for i in range(33)),
])
def test_bad_metrics_allow_exits_2_with_a_reason(value):
    r = run_cli("--port", "0", "--metrics-allow", value)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, (value, r)
    first = err.splitlines()[0]
    assert "--metrics-allow" in first and "unknown option" not in first, err
    assert "usage" in err.lower(), err
