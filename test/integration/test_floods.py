"""Floods: a client that sends without end must cost the server bounded memory and must not
slow the room down. Pings from a client that never reads its pongs (each ping obliges an
answer, so a naive server buffers pongs without bound), and fragments that never end (a
naive server reassembles without bound)."""

import select
import socket
import time

import pytest

from conftest import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    TIMEOUT,
    Bystanders,
    RawWS,
    build_frame,
    proc_rss_kib,
    scrape,
)

RSS_BOUND_KIB = 50 * 1024
# --max-buffer 64K needs a small --max-clients: the server refuses to start with a buffer
# that could not hold a welcome listing every possible client (513 bytes each).


def flood(sock, chunk, max_bytes, max_seconds):
    """Sends chunk again and again until max_bytes or max_seconds, or the server stops
    reading (a send blocks for 2 s) or drops us. Returns (bytes sent, why it stopped)."""
    sock.settimeout(2)
    sent = 0
    start = time.monotonic()
    try:
        while sent < max_bytes and time.monotonic() - start < max_seconds:
            sock.sendall(chunk)
            sent += len(chunk)
    except socket.timeout:
        return sent, "blocked"
    except (BrokenPipeError, ConnectionResetError):
        return sent, "dropped"
    return sent, "done"


def wait_dropped(sock, timeout):
    """True if the server has closed the connection (EOF or reset), reading and discarding
    whatever arrives meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(1 << 20):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


@pytest.mark.parametrize("rate", ["default", "0"])
def test_ping_flood_from_a_client_that_never_reads_is_bounded(start_server, rate):
    # --max-rate 0 takes the rate limit out of the picture: then only --max-buffer (or the
    # server no longer reading from a peer that does not read) can keep the pongs bounded.
    flags = ["--max-buffer", "64K", "--max-clients", "64"]
    flags += [] if rate == "default" else ["--max-rate", "0"]
    srv = start_server(*flags)
    flooder = RawWS.connect(srv.port, "/ws", rcvbuf=4096)
    try:
        flooder.recv_text()  # the welcome; from here on it never reads
        time.sleep(0.2)
        rss_before = proc_rss_kib(srv.proc.pid)
        with Bystanders(srv.port):
            chunk = build_frame(OP_PING, b"p" * 125) * 200  # 200 pings, ~26 KiB
            sent, why = flood(flooder.sock, chunk, 64 << 20, 10.0)
            rss_after = proc_rss_kib(srv.proc.pid)
            metrics = scrape(srv.port)
        grew = rss_after - rss_before
        assert grew < RSS_BOUND_KIB, \
            f"RSS grew by {grew} KiB during a {sent}-byte ping flood ({why})"
        limited = metrics.value("wsrelay_rate_limited_total") or 0
        dropped = why == "dropped" or wait_dropped(flooder.sock, 2.0)
        if rate == "default":
            assert dropped or limited > 0, \
                f"{sent} bytes of pings: neither dropped nor rate limited ({why})"
        else:
            assert limited == 0, "--max-rate 0 still rate limited"
            assert dropped or why == "blocked", \
                f"{sent} bytes of pings with no limit: the server neither dropped the " \
                f"flooder nor stopped reading from it ({why})"
    finally:
        flooder.abort()


def test_pong_backlog_of_a_non_reader_never_passes_max_buffer(start_server):
    # With the rate limit off and the flooder never reading, the server must not keep more
    # than --max-buffer of pongs for it: once the kernel buffers are full, either it is
    # dropped or the server stops reading its pings. Measured from the other side: the flooder
    # can have sent at most (kernel buffers + max-buffer + one read) worth of answerable pings
    # before one of those happens, far below what we try to send.
    srv = start_server("--max-buffer", "64K", "--max-clients", "64", "--max-rate", "0")
    flooder = RawWS.connect(srv.port, "/echo", rcvbuf=4096)
    try:
        chunk = build_frame(OP_PING, b"q" * 125) * 200
        sent, why = flood(flooder.sock, chunk, 256 << 20, 20.0)
        assert why in ("dropped", "blocked") or wait_dropped(flooder.sock, 2.0), \
            f"sent {sent} bytes of pings to a server that kept answering into the void"
    finally:
        flooder.abort()


@pytest.mark.parametrize("path", ["/ws", "/echo"])
@pytest.mark.parametrize("frame_size", [1, 100, 1000])
def test_endless_fragments_close_1009_past_max_message(start_server, path, frame_size):
    srv = start_server("--max-message", "4K")
    ws = RawWS.connect(srv.port, path)
    try:
        if path == "/ws":
            ws.recv_text()
        ws.send_frame(OP_TEXT, b"[", fin=False)
        per_send = max(1, 512 // frame_size)
        batch = build_frame(OP_CONT, b"1" * frame_size, fin=False) * per_send
        sent = 1
        ws.sock.settimeout(2)
        # Never FIN. Stop once the server answers (its close frame), stops taking bytes, or
        # lets us send 64 MiB: far more than the kernel buffers could absorb for a server
        # that had stopped reading, so by then it must have been reassembling without bound.
        while sent < 64 << 20:
            try:
                ws.sock.sendall(batch)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            sent += frame_size * per_send
            r, _, _ = select.select([ws.sock], [], [], 0.001)
            if r:
                break
        assert sent < 64 << 20, "the server took 64 MiB of fragments without closing"
        code, _ = ws.expect_close(timeout=TIMEOUT)
        assert code == 1009, f"endless fragments closed with {code}"
        assert sent > 4096, f"closed after only {sent} bytes of a 4 KiB limit"
    finally:
        ws.close()


def test_fragment_flood_while_room_goes_on(start_server):
    srv = start_server("--max-message", "16K")
    with Bystanders(srv.port):
        for _ in range(20):
            ws = RawWS.connect(srv.port, "/ws")
            try:
                ws.recv_text()
                ws.send_frame(OP_TEXT, b"[", fin=False)
                try:
                    for _ in range(200):
                        ws.send_frame(OP_CONT, b"1" * 100, fin=False)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                code, _ = ws.expect_close()
                assert code == 1009
            finally:
                ws.close()


def test_binary_flood_on_echo_from_a_non_reader_keeps_rss_bounded(start_server):
    # /echo is not rate limited: every byte sent comes back, so a non-reader's echoes must be
    # bounded by --max-buffer alone.
    srv = start_server("--max-buffer", "64K", "--max-clients", "64")
    flooder = RawWS.connect(srv.port, "/echo", rcvbuf=4096)
    try:
        time.sleep(0.2)
        rss_before = proc_rss_kib(srv.proc.pid)
        with Bystanders(srv.port):
            sent, why = flood(flooder.sock, build_frame(OP_BINARY, b"b" * 16000) * 4,
                              128 << 20, 10.0)
            rss_after = proc_rss_kib(srv.proc.pid)
        assert rss_after - rss_before < RSS_BOUND_KIB, \
            f"RSS grew by {rss_after - rss_before} KiB after {sent} bytes ({why})"
    finally:
        flooder.abort()
