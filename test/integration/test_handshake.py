"""The WebSocket opening handshake (RFC 6455 §4.2) on /ws and /echo, over raw sockets."""

import pytest

from conftest import (
    OP_TEXT,
    HttpConn,
    RawWS,
    accept_for,
    build_frame,
    fetch,
    handshake_request,
    http_request,
    new_key,
    run,
    ws_connect,
)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def has_token(value, token):
    return value is not None and token.lower() in [t.strip().lower() for t in value.split(",")]


@pytest.mark.parametrize("path", ["/ws", "/echo"])
def test_handshake_answers_101_with_rfc_sample_accept(server, path):
    with HttpConn(server.port) as c:
        c.send(handshake_request(path, key=RFC_KEY))
        resp = c.read_response()
    assert resp.status == 101, resp
    assert resp.version == "HTTP/1.1"
    assert resp.header("Sec-WebSocket-Accept") == RFC_ACCEPT
    assert (resp.header("Upgrade") or "").lower() == "websocket", resp
    assert has_token(resp.header("Connection"), "upgrade"), resp


def test_accept_is_computed_from_each_key(server):
    for _ in range(5):
        key = new_key()
        with HttpConn(server.port) as c:
            c.send(handshake_request("/echo", key=key))
            resp = c.read_response()
        assert resp.status == 101
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key)


def test_handshake_declines_compression_and_subprotocols(server):
    # websockets offers permessage-deflate; we offer a subprotocol too. The server supports
    # neither, so it must answer without either header (RFC 6455 §4.2.2, §9.1).
    async def go():
        async with ws_connect(server.port, "/echo", subprotocols=["chat"]) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            return ws.response_headers

    headers = run(go())
    assert headers.get("Sec-WebSocket-Extensions") is None, headers
    assert headers.get("Sec-WebSocket-Protocol") is None, headers


def test_connection_header_token_list_and_header_case_are_accepted(server):
    # Firefox sends "Connection: keep-alive, Upgrade"; names and the Upgrade value are
    # case-insensitive (RFC 9110 §5.1, RFC 6455 §4.2.1).
    key = new_key()
    raw = (
        "GET /echo HTTP/1.1\r\n"
        "host: 127.0.0.1\r\n"
        "upgrade: WebSocket\r\n"
        "connection: keep-alive, Upgrade\r\n"
        f"sec-websocket-key: {key}\r\n"
        "sec-websocket-version: 13\r\n"
        "\r\n"
    ).encode()
    with HttpConn(server.port) as c:
        c.send(raw)
        resp = c.read_response()
    assert resp.status == 101, resp
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key)


def test_frames_sent_with_the_handshake_are_not_lost(server):
    # The first frame rides in the same send() as the request: after the 101 those leftover
    # bytes belong to the WebSocket.
    ws = RawWS.connect(server.port, "/echo", first_bytes=build_frame(OP_TEXT, b"early bird"))
    try:
        assert ws.recv_text() == "early bird"
    finally:
        ws.close()


@pytest.mark.parametrize("version", ["8", "12", "14", "", "13, 8", "abc"])
def test_wrong_websocket_version_gets_426_naming_13(server, version):
    resp = fetch(server.port, handshake_request("/ws", version=version))
    assert resp.status == 426, resp
    assert resp.header("Sec-WebSocket-Version") == "13", resp


def test_missing_websocket_version_gets_426_naming_13(server):
    resp = fetch(server.port, handshake_request("/echo", omit=["Sec-WebSocket-Version"]))
    assert resp.status == 426, resp
    assert resp.header("Sec-WebSocket-Version") == "13", resp


BAD_KEYS = {
    "fifteen-bytes": "AAAAAAAAAAAAAAAAAAAA",  # 15 bytes
    "seventeen-bytes": "AAAAAAAAAAAAAAAAAAAAAAA=",  # 17 bytes
    "not-base64": "!!!!!!!!!!!!!!!!!!!!!!==",
    "empty": "",
    "short": "abc",
    "sixteen-raw-chars": "0123456789abcdef",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_websocket_key_gets_400(server, key):
    resp = fetch(server.port, handshake_request("/ws", key=None,
                                                omit=["Sec-WebSocket-Key"],
                                                extra=[("Sec-WebSocket-Key", key)]))
    assert resp.status == 400, resp


def test_missing_websocket_key_gets_400(server):
    resp = fetch(server.port, handshake_request("/ws", omit=["Sec-WebSocket-Key"]))
    assert resp.status == 400, resp


def test_two_websocket_keys_get_400(server):
    resp = fetch(server.port, handshake_request("/ws", extra=[("Sec-WebSocket-Key", new_key())]))
    assert resp.status == 400, resp


@pytest.mark.parametrize("omit", ["Upgrade", "Connection"])
def test_missing_upgrade_or_connection_header_gets_400(server, omit):
    resp = fetch(server.port, handshake_request("/ws", omit=[omit]))
    assert resp.status == 400, resp


def test_upgrade_to_something_else_gets_400(server):
    resp = fetch(server.port, handshake_request("/ws", omit=["Upgrade"],
                                                extra=[("Upgrade", "h2c")]))
    assert resp.status == 400, resp


def test_connection_without_upgrade_token_gets_400(server):
    resp = fetch(server.port, handshake_request("/ws", omit=["Connection"],
                                                extra=[("Connection", "keep-alive")]))
    assert resp.status == 400, resp


# /ws/x is a room (test_rooms.py); /wss and /r/x are not WebSocket endpoints.
@pytest.mark.parametrize("path", ["/chat", "/wss", "/index.html", "/", "/r/x", "/echo/x"])
def test_upgrade_on_other_paths_gets_404(server, path):
    resp = fetch(server.port, handshake_request(path))
    assert resp.status == 404, resp


def test_upgrade_with_post_gets_405(server):
    resp = fetch(server.port, handshake_request("/ws", method="POST",
                                                extra=[("Content-Length", "0")]))
    assert resp.status == 405, resp


def test_plain_get_on_ws_is_refused_without_upgrading(server):
    resp = fetch(server.port, http_request("GET", "/ws"))
    assert resp.status in (400, 426), resp


def test_keep_alive_connection_upgrades_after_serving_a_file(server, site):
    # A file, then a handshake, then a frame, all in one send(): each byte goes to the
    # right protocol.
    key = new_key()
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/style.css") + handshake_request("/echo", key=key)
               + build_frame(OP_TEXT, b"after upgrade"))
        first = c.read_response()
        assert first.status == 200 and first.body == site.files["style.css"]
        second = c.read_response()
        assert second.status == 101, second
        assert second.header("Sec-WebSocket-Accept") == accept_for(key)
        ws = RawWS(c.sock, second, c.buf)
        assert ws.recv_text() == "after upgrade"
