"""Regression tests for bugs found in review: each one reproduces its bug on the commit before
its fix (under the ASan build: a sanitizer report; under the release build: a crash or a hang).
"""

import socket

from conftest import HOST, TIMEOUT, http_request


def test_pipelined_gets_unblocked_by_a_flush_do_not_overflow_the_writers_list(start_server):
    """Review finding 1: flush_writers() cleared a connection's queued flag before flushing
    it; the flush unblocked pipelined requests, each of which queued the same connection
    again, past the end of the list (heap overflow with --max-clients 1 and 3 requests).
    Every pipelined request must be answered, in order, and the server must survive."""
    srv = start_server("--max-clients", "2")
    # big.png (300 KiB) blocks pipelining until it is sent; the rest queue up behind it.
    requests = [http_request("GET", "/big.png")] + [http_request("GET", "/")] * 50
    with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as s:
        s.sendall(b"".join(requests))
        got = b""
        while got.count(b"HTTP/1.1 200 OK") < len(requests):
            chunk = s.recv(1 << 16)
            assert chunk, f"connection closed after {got.count(b'HTTP/1.1 200 OK')} responses"
            got += chunk
    assert got.count(b"HTTP/1.1 200 OK") == len(requests)


def test_many_connections_each_pipelining_hundreds_of_requests(start_server):
    """The same bug at the default limits: several connections each sending one burst of
    hundreds of tiny requests."""
    srv = start_server()
    burst = http_request("GET", "/") * 300
    socks = [socket.create_connection((HOST, srv.port), timeout=TIMEOUT) for _ in range(8)]
    try:
        for s in socks:
            s.sendall(burst)
        for s in socks:
            got = b""
            while got.count(b"HTTP/1.1 200 OK") < 300:
                chunk = s.recv(1 << 16)
                assert chunk, "connection closed early"
                got += chunk
    finally:
        for s in socks:
            s.close()
