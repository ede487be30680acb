"""Origin checks on WebSocket handshakes: the defence against cross-site WebSocket hijacking
(a page on another site opening a socket to us with the visitor's browser; RFC 6455 §10.2).

Without --allow-origin: a handshake with an Origin is accepted only if the origin's scheme is
http or https (RFC 6454 §4, case-insensitive) and its authority (after "scheme://") equals the
Host header, case-insensitively; one without Origin (not a browser) is accepted.
--allow-origin LIST: only the listed origins (exact, case-insensitive; the flag takes http://
and https:// origins only), or "*" for any. A refusal is 403 Forbidden, then the connection
is closed."""

import asyncio

import pytest
import websockets

from conftest import (
    HOST,
    OP_TEXT,
    Bystanders,
    HttpConn,
    RawWS,
    accept_for,
    build_frame,
    expect,
    expect_refused_and_closed,
    get,
    handshake_request,
    join_room,
    new_key,
    recv,
    relayed,
    run,
    run_cli,
    ws_connect,
)


def handshake(port, path="/ws", origin=None, host=None, key=None):
    """A browser-shaped handshake with Host (default 127.0.0.1:port) and, if given, Origin."""
    host = f"{HOST}:{port}" if host is None else host
    extra = [("Host", host)]
    if origin is not None:
        extra.append(("Origin", origin))
    return handshake_request(path, key=key, omit=["Host"], extra=extra)


def accepted(port, path="/ws", origin=None, host=None):
    """The handshake gets a correct 101, and the socket then speaks WebSocket."""
    key = new_key()
    c = HttpConn(port)
    try:
        c.send(handshake(port, path, origin, host, key=key))
        resp = c.read_response()
        assert resp.status == 101, f"origin {origin!r} with Host {host!r} refused: {resp!r}"
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp
        ws = RawWS(c.sock, resp, c.buf)
        if path == "/ws":
            ws.recv_text()  # welcome
        else:
            ws.send_text("hello")
            assert ws.recv_text() == "hello"
    finally:
        c.close()


def refused(port, path="/ws", origin=None, host=None):
    """403, Connection: close, and nothing more on that connection: not even the frame sent
    right behind the handshake, nor a pipelined request."""
    raw = handshake(port, path, origin, host) + build_frame(OP_TEXT, b'{"x":1}')
    expect_refused_and_closed(port, raw, 403, probe=False)
    expect_refused_and_closed(port, handshake(port, path, origin, host), 403)


# ---------------------------------------------------------------------------------------------
# Default: same host only (or no Origin at all)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/echo"])
def test_same_host_origin_is_accepted(server, path):
    accepted(server.port, path, origin=f"http://{HOST}:{server.port}")


@pytest.mark.parametrize("origin_fmt, host_fmt", [
    ("https://127.0.0.1:{port}", "127.0.0.1:{port}"),  # http or https: TLS may end at a proxy
    ("HTTPS://127.0.0.1:{port}", "127.0.0.1:{port}"),  # schemes are case-insensitive
    ("Http://127.0.0.1:{port}", "127.0.0.1:{port}"),
    ("http://LOCALHOST:{port}", "localhost:{port}"),  # case-insensitive
    ("http://localhost:{port}", "LocalHost:{port}"),
    ("http://wsrelay.example", "wsrelay.example"),  # behind a proxy on port 80
])
def test_origin_whose_authority_equals_host_is_accepted(server, origin_fmt, host_fmt):
    p = server.port
    accepted(p, "/ws", origin=origin_fmt.format(port=p), host=host_fmt.format(port=p))


def test_handshake_without_origin_is_accepted(server):
    accepted(server.port, "/ws")
    accepted(server.port, "/echo")


@pytest.mark.parametrize("origin_fmt", [
    "http://evil.example",
    "https://evil.example:{port}",
    "http://127.0.0.1",  # no port: a different authority
    "http://127.0.0.1:{other}",  # another port on the same host is another site
    "http://127.0.0.1:{port}.evil.example",
    "http://evil.example/127.0.0.1:{port}",
    "http://user@127.0.0.1:{port}",
    "null",  # sandboxed iframes, file:// pages
    "127.0.0.1:{port}",  # no scheme
    "",
    # RFC 6454 §4: our page is served over http(s); another scheme is not our page, even
    # when its authority matches Host.
    "evil://127.0.0.1:{port}",
    "ws://127.0.0.1:{port}",
    "file://127.0.0.1:{port}",
    "chrome-extension://127.0.0.1:{port}",
    "httpx://127.0.0.1:{port}",
    "://127.0.0.1:{port}",
    "http:/127.0.0.1:{port}",
])
@pytest.mark.parametrize("path", ["/ws", "/echo"])
def test_cross_site_origin_gets_403_and_close(server, origin_fmt, path):
    p = server.port
    refused(p, path, origin=origin_fmt.format(port=p, other=p + 1 if p < 65535 else p - 1))


def test_refused_cross_site_client_never_enters_the_room(server):
    p = server.port

    async def go():
        a, wa, _ = await join_room(p)
        refused(p, "/ws", origin="http://evil.example")
        # Nobody joined: the next thing a hears is its own message.
        await a.send('{"x":1}')
        await expect(a, relayed('"x":1', wa))
        await a.close()

    run(go())


def test_websockets_client_with_foreign_origin_is_refused_with_403(server):
    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            await ws_connect(server.port, "/ws", origin="http://evil.example")
        assert info.value.status_code == 403
        # The same client library, same origin as the page: accepted.
        async with ws_connect(server.port, "/ws", origin=f"http://{HOST}:{server.port}") as ws:
            assert '"type":"welcome"' in await recv(ws)

    run(go())


def test_two_origin_headers_are_refused(server):
    p = server.port
    raw = handshake_request("/ws", omit=["Host"], extra=[
        ("Host", f"{HOST}:{p}"), ("Origin", f"http://{HOST}:{p}"),
        ("Origin", "http://evil.example")])
    with HttpConn(p) as c:
        c.send(raw)
        resp = c.read_response()
    assert resp.status in (400, 403), f"two Origins, one foreign, were accepted: {resp!r}"


def test_static_files_are_served_whatever_the_origin(server, site):
    resp = get(server.port, "/style.css", headers=[("Origin", "http://evil.example")])
    assert resp.status == 200 and resp.body == site.files["style.css"], resp


# ---------------------------------------------------------------------------------------------
# --allow-origin LIST and *
# ---------------------------------------------------------------------------------------------


def test_allow_origin_list_accepts_each_listed_origin_and_nothing_else(start_server):
    srv = start_server("--allow-origin", "http://a.example,https://b.example:8443")
    p = srv.port
    accepted(p, "/ws", origin="http://a.example")
    accepted(p, "/ws", origin="https://b.example:8443")
    accepted(p, "/echo", origin="https://b.example:8443")
    accepted(p, "/ws", origin="HTTP://A.Example")  # compared case-insensitively
    for other in ("http://c.example", "https://a.example", "http://b.example:8443",
                  "https://b.example", "http://a.example:80", "http://a.example.evil",
                  "null"):
        refused(p, "/ws", origin=other)


def test_allow_origin_list_replaces_the_same_host_rule(start_server):
    # With a list, the list alone decides: the server's own host is not implicitly allowed.
    srv = start_server("--allow-origin", "http://a.example")
    refused(srv.port, "/ws", origin=f"http://{HOST}:{srv.port}")


def test_a_listed_origin_with_another_scheme_is_still_refused(start_server):
    # The list holds http(s) origins; a browser extension or a forged scheme naming the same
    # host is not one of them.
    srv = start_server("--allow-origin", "http://a.example")
    accepted(srv.port, "/ws", origin="http://a.example")
    for other in ("evil://a.example", "ws://a.example", "chrome-extension://a.example"):
        refused(srv.port, "/ws", origin=other)


def test_null_origin_is_refused_unless_star(start_server):
    # "null" is what every sandboxed iframe and file:// page sends: any site can produce it.
    srv = start_server("--allow-origin", "http://a.example")
    refused(srv.port, "/ws", origin="null")
    star = start_server("--allow-origin", "*")
    accepted(star.port, "/ws", origin="null")


@pytest.mark.parametrize("value", [
    "null",  # listing it would let any site in
    "null,http://a.example",
    "evil://a.example",
    "ws://a.example",
    "a.example",  # no scheme
    "http://",
    "http://a.example/",  # an origin has no path: this entry could never match
    "http://a.example/chat",
    "http://user@a.example",
    "http://a.example:x",
    "*,http://a.example",  # "*" stands alone
    "http://a.example,,http://b.example",
    "http://a.example,",
])
def test_allow_origin_takes_only_http_and_https_origins_or_star(value):
    r = run_cli("--port", "0", "--allow-origin", value)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, (value, r)
    assert "--allow-origin" in err and "usage" in err.lower(), err


@pytest.mark.parametrize("origin", ["http://evil.example", "https://anything.example:1234",
                                    "http://127.0.0.1:1"])
def test_allow_origin_star_accepts_any_origin(start_server, origin):
    srv = start_server("--allow-origin", "*")
    accepted(srv.port, "/ws", origin=origin)
    accepted(srv.port, "/echo", origin=origin)
    accepted(srv.port, "/ws")  # and no Origin


def test_allow_origin_star_with_a_polite_client(start_server):
    srv = start_server("--allow-origin", "*")

    async def go():
        async with ws_connect(srv.port, "/echo", origin="http://evil.example") as ws:
            await ws.send("hi")
            assert await recv(ws) == "hi"

    run(go())


def test_refusals_do_not_disturb_the_room(start_server):
    srv = start_server()
    with Bystanders(srv.port):
        for _ in range(50):
            refused(srv.port, "/ws", origin="http://evil.example")
        run(asyncio.sleep(0.5))
