"""HTTP/1.1 static files: content, types, lengths, HEAD, keep-alive, pipelining, errors."""

import socket
import struct

import pytest

from conftest import REPO, HttpConn, fetch, get, http_request

MIME = [
    ("/index.html", "text/html; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/logo.svg", "image/svg+xml"),
    ("/pixel.png", "image/png"),
    ("/favicon.ico", "image/x-icon"),
    ("/data.json", "application/json"),
]


def norm_type(value):
    """Content-Type compared case-insensitively around its parameters' spacing."""
    return ";".join(part.strip().lower() for part in value.split(";"))


def test_root_serves_index_html(server, site):
    resp = get(server.port, "/")
    assert resp.status == 200, resp
    assert resp.body == site.files["index.html"]
    assert norm_type(resp.header("Content-Type")) == norm_type("text/html; charset=utf-8")
    assert resp.header("Content-Length") == str(len(site.files["index.html"]))


@pytest.mark.parametrize("target,ctype", MIME)
def test_file_is_served_with_content_type_by_extension(server, site, target, ctype):
    resp = get(server.port, target)
    assert resp.status == 200, resp
    assert resp.body == site.files[target[1:]]
    assert int(resp.header("Content-Length")) == len(site.files[target[1:]])
    assert norm_type(resp.header("Content-Type")) == norm_type(ctype)


def test_directory_with_trailing_slash_serves_its_index_html(server, site):
    resp = get(server.port, "/sub/")
    assert resp.status == 200, resp
    assert resp.body == site.files["sub/index.html"]


def test_file_in_subdirectory_is_served(server, site):
    resp = get(server.port, "/sub/page.html")
    assert resp.status == 200, resp
    assert resp.body == site.files["sub/page.html"]


def test_query_string_is_ignored_for_the_file_lookup(server, site):
    resp = get(server.port, "/style.css?v=123&x=y")
    assert resp.status == 200, resp
    assert resp.body == site.files["style.css"]


def test_percent_encoded_path_is_decoded(server, site):
    resp = get(server.port, "/st%79le.css")
    assert resp.status == 200, resp
    assert resp.body == site.files["style.css"]


def test_large_file_arrives_complete(server, site):
    # 300 KiB: more than one write() can take, so partial writes must resume correctly.
    with HttpConn(server.port, rcvbuf=8192) as c:
        c.send(http_request("GET", "/big.png"))
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == site.files["big.png"]


def test_head_sends_same_content_length_and_no_body(server, site):
    with HttpConn(server.port) as c:
        # HEAD then GET pipelined: if HEAD carried a body, the second status line would not
        # start right after the first head.
        c.send(http_request("HEAD", "/style.css") + http_request("GET", "/app.js"))
        head = c.read_response(head_only=True)
        assert head.status == 200, head
        assert head.header("Content-Length") == str(len(site.files["style.css"]))
        assert norm_type(head.header("Content-Type")) == norm_type("text/css; charset=utf-8")
        nxt = c.read_response()
        assert nxt.status == 200, f"HEAD response carried a body? next: {nxt!r}"
        assert nxt.body == site.files["app.js"]


def test_keep_alive_serves_several_requests_on_one_connection(server, site):
    with HttpConn(server.port) as c:
        for target in ("/", "/style.css", "/no-such-file", "/pixel.png", "/"):
            c.send(http_request("GET", target))
            resp = c.read_response()
            if target == "/no-such-file":
                assert resp.status == 404, resp
            else:
                assert resp.status == 200, resp
                assert resp.body == site.files.get(target[1:] or "index.html")


def test_pipelined_requests_in_one_send_are_answered_in_order(server, site):
    targets = ["/style.css", "/app.js", "/data.json", "/logo.svg"]
    with HttpConn(server.port) as c:
        c.send(b"".join(http_request("GET", t) for t in targets))
        for t in targets:
            resp = c.read_response()
            assert resp.status == 200, (t, resp)
            assert resp.body == site.files[t[1:]], t


def test_request_split_into_single_bytes_is_parsed(server, site):
    with HttpConn(server.port) as c:
        for b in http_request("GET", "/style.css"):
            c.send(bytes([b]))
        resp = c.read_response()
    assert resp.status == 200
    assert resp.body == site.files["style.css"]


def test_connection_close_request_is_answered_then_closed(server, site):
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/style.css", headers=[("Connection", "close")]))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == site.files["style.css"]
        assert c.closed_by_peer(), "server kept the connection after Connection: close"
        assert c.buf == b"", f"bytes after the response: {c.buf[:80]!r}"


def test_http_1_0_request_is_answered_then_closed(server, site):
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/style.css", version="HTTP/1.0"))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == site.files["style.css"]
        assert c.closed_by_peer(), "HTTP/1.0 without keep-alive must not be kept open"


def test_missing_file_is_404_with_content_length(server):
    resp = get(server.port, "/definitely-not-here.html")
    assert resp.status == 404, resp
    assert resp.header("Content-Length") is not None


def test_missing_file_on_head_is_404_without_body(server):
    with HttpConn(server.port) as c:
        c.send(http_request("HEAD", "/nope.html") + http_request("GET", "/style.css"))
        head = c.read_response(head_only=True)
        assert head.status == 404
        assert c.read_response().status == 200, "HEAD 404 carried a body"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_get_405_with_allow_get_head(server, method):
    resp = fetch(server.port, http_request(method, "/", headers=[("Content-Length", "0")]))
    assert resp.status == 405, resp
    allow = resp.header("Allow")
    assert allow is not None, resp
    assert {m.strip() for m in allow.split(",")} == {"GET", "HEAD"}, allow


@pytest.mark.parametrize("method", ["get", "Get", "head"])
def test_method_names_are_case_sensitive(server, method):
    # RFC 9110 §9.1: "get" is not GET, so it is one of the "other methods".
    resp = fetch(server.port, http_request(method, "/style.css"), head_only=True)
    assert resp.status in (400, 405, 501), resp


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"\x00\x01\x02\x03\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / FOO/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=lambda r: repr(r[:30]))
def test_malformed_request_gets_400(server, raw):
    resp = fetch(server.port, raw)
    assert resp.status == 400, resp


def test_head_over_8_kib_gets_431(server):
    raw = http_request("GET", "/", headers=[("X-Filler", "a" * 9000)])
    resp = fetch(server.port, raw)
    assert resp.status == 431, resp


def test_endless_head_without_blank_line_gets_431(server):
    # The client never ends its head: the server must not wait (or buffer) forever.
    with HttpConn(server.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(12):
            c.send(b"X-Filler: " + b"b" * 1000 + b"\r\n")
        resp = c.read_response()
    assert resp.status == 431, resp


def test_head_just_under_8_kib_is_accepted(server, site):
    raw = http_request("GET", "/style.css", headers=[("X-Filler", "c" * 7000)])
    assert len(raw) < 8192
    resp = fetch(server.port, raw)
    assert resp.status == 200, resp
    assert resp.body == site.files["style.css"]


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/3.0"])
def test_unsupported_http_version_gets_505(server, version):
    resp = fetch(server.port, http_request("GET", "/", version=version))
    assert resp.status == 505, resp


def test_get_with_body_gets_400_and_connection_closed(server):
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/", headers=[("Content-Length", "5")], body=b"hello"))
        resp = c.read_response()
        assert resp.status == 400, resp
        assert c.closed_by_peer(), "connection not closed after a GET with a body"


def test_get_with_transfer_encoding_gets_400_and_connection_closed(server):
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/", headers=[("Transfer-Encoding", "chunked")],
                            body=b"5\r\nhello\r\n0\r\n\r\n"))
        resp = c.read_response()
        assert resp.status == 400, resp
        assert c.closed_by_peer(), "connection not closed after a GET with Transfer-Encoding"


def test_get_with_content_length_0_is_served(server, site):
    resp = fetch(server.port, http_request("GET", "/style.css", headers=[("Content-Length", "0")]))
    assert resp.status == 200, resp
    assert resp.body == site.files["style.css"]


def test_repo_www_index_is_served_when_present(start_server):
    index = REPO / "www" / "index.html"
    if not index.is_file():
        pytest.skip("www/index.html not written yet")
    srv = start_server(www=REPO / "www")
    resp = get(srv.port, "/")
    assert resp.status == 200
    assert resp.body == index.read_bytes()


def test_many_pipelined_large_responses_arrive_intact_and_in_order(server, site):
    # 50 x 300 KiB asked for at once: far more than --max-buffer (1 MiB). The server may pace
    # itself however it likes, but every byte must arrive, in order, uncorrupted.
    with HttpConn(server.port) as c:
        c.send(b"".join(http_request("GET", "/big.png") for _ in range(50)))
        for i in range(50):
            resp = c.read_response()
            assert resp.status == 200, (i, resp)
            assert resp.body == site.files["big.png"], f"response {i} corrupted"


@pytest.mark.parametrize("target", ["/%zz", "/%", "/%4", "/%g0.html", "/style.css%"])
def test_malformed_percent_escape_gets_400(server, target):
    resp = fetch(server.port, http_request("GET", target))
    assert resp.status == 400, resp


def test_very_long_path_is_refused(server):
    resp = fetch(server.port, http_request("GET", "/" + "a" * 6000 + ".html"))
    assert resp.status in (400, 404, 414), resp


def test_client_resetting_mid_download_does_not_disturb_the_server(server, site):
    # Ask for a lot, read a little, then reset: the server has output pending for a socket
    # that is gone. Then a fresh download must still be intact.
    c = HttpConn(server.port, rcvbuf=4096)
    c.send(b"".join(http_request("GET", "/big.png") for _ in range(10)))
    c.read_head()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    for raw in (b"GET /sty", b"GET / HTTP/1.1\r\nHost: x\r\n"):  # half a request, then gone
        with HttpConn(server.port) as half:
            half.send(raw)
    resp = get(server.port, "/big.png")
    assert resp.status == 200
    assert resp.body == site.files["big.png"]
