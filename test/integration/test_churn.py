"""Connection churn: many short WebSocket lives must leave nothing behind. After 10,000
connect/handshake/close cycles and 5,000 connections dropped without a close frame, the
server holds as many descriptors as before, its gauges read empty, and (release build) its
memory is what it was after a warm-up.

Raw asyncio streams, not python3-websockets: the library's per-connection cost would make
this test minutes long. Each cycle still checks every byte that matters: the 101 and its
accept, the welcome first, our close answered with 1000 and then the TCP close.

Counts: 10,000 + 5,000 after a 1,000-cycle warm-up, on both builds (the Python clients, not
the server, set the pace: about 10 s here either way). Under WSRELAY_SANITIZED=1 (ASan+UBSan)
the RSS comparison is skipped, because ASan's quarantine keeps freed memory on purpose."""

import asyncio
import os
import struct
import time

from conftest import (
    HOST,
    SANITIZED,
    TIMEOUT,
    Bystanders,
    HttpConn,
    accept_for,
    build_frame,
    http_request,
    proc_fd_count,
    proc_rss_kib,
    run,
    scrape,
    wait_until_accepting,
    free_port,
)

CYCLES = 10_000
DROPS = 5_000
WARMUP = 1_000
CONCURRENCY = 50
RSS_SLACK_KIB = 4 * 1024

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample: any valid key will do
ACCEPT_LINE = f"Sec-WebSocket-Accept: {accept_for(KEY)}".encode()
CLOSE_1000 = build_frame(0x8, struct.pack("!H", 1000))


def handshake(port):
    return (f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


def walk_frames(buf):
    """[(opcode, payload_start, payload_len)] of the unmasked frames in buf; asserts buf holds
    whole frames only."""
    out, pos, n = [], 0, len(buf)
    while pos < n:
        assert n - pos >= 2, f"truncated frame header at {pos}"
        b0, b1 = buf[pos], buf[pos + 1]
        assert not b1 & 0x80, "server frame is masked"
        length, pos = b1 & 0x7F, pos + 2
        if length == 126:
            length, pos = struct.unpack_from("!H", buf, pos)[0], pos + 2
        elif length == 127:
            length, pos = struct.unpack_from("!Q", buf, pos)[0], pos + 8
        assert pos + length <= n, "truncated frame payload"
        out.append((b0, pos, length))
        pos += length
    return out


async def read_101(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert ACCEPT_LINE in head, head


async def graceful_cycle(port, request):
    """Handshake, our close, the server's close 1000, EOF."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        await read_101(reader)
        writer.write(CLOSE_1000)
        rest = await reader.read()  # until the server closes TCP
    finally:
        writer.close()
    frames = walk_frames(rest)
    assert frames, "no frames before EOF"
    b0, start, _ = frames[0]
    assert b0 == 0x81 and rest[start:start + 16] == b'{"type":"welcome', "welcome not first"
    b0, start, length = frames[-1]
    assert b0 == 0x88, f"last frame is not a close: {b0:#x}"
    assert length >= 2 and struct.unpack_from("!H", rest, start)[0] == 1000, \
        rest[start:start + length]
    assert sum(1 for f in frames if f[0] == 0x88) == 1, "more than one close frame"


async def drop_cycle(port, request):
    """Handshake, the welcome, then the socket closed without a close frame."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        await read_101(reader)
        hdr = await reader.readexactly(2)
        assert hdr[0] == 0x81, f"first frame is not text: {hdr!r}"
        length = hdr[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        welcome = await reader.readexactly(length)
        assert welcome.startswith(b'{"type":"welcome"'), welcome[:80]
    finally:
        writer.close()


async def churn(port, n, cycle):
    request = handshake(port)
    todo = iter(range(n))
    done = 0

    async def worker():
        nonlocal done
        for _ in todo:
            await asyncio.wait_for(cycle(port, request), TIMEOUT * 2)
            done += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    assert done == n


def settled_fd_count(pid, still=0.5, timeout=TIMEOUT):
    """The descriptor count once it has not changed for `still` seconds."""
    deadline = time.monotonic() + timeout
    last, since = proc_fd_count(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = proc_fd_count(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= still:
            break
    return last


def wait_fds(pid, want, timeout=TIMEOUT * 2):
    deadline = time.monotonic() + timeout
    while True:
        got = proc_fd_count(pid)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_churn_leaves_no_descriptors_connections_or_memory_behind(start_server, site):
    # --quiet: 16,000 connections would otherwise log ~100,000 lines for the fixture's drain
    # thread to hold and compete with the clients for the interpreter. --max-connect-rate 0:
    # all of them come from one address, which is what that limit exists to stop
    # (test_connect_rate.py); here the subject is what each cycle leaves behind.
    port = free_port()
    srv = start_server("--host", HOST, "--port", port, "--www", site.root, "--quiet",
                       "--max-connect-rate", "0", listen=False)
    wait_until_accepting(port, srv.proc)
    srv.port = port  # the fixture's survival check needs it
    pid = srv.proc.pid
    # The baseline, once the server is provably serving (accept() may succeed before it has
    # made its epoll, signal and timer descriptors) and has let go of that first request's
    # connection (it may linger after its FIN until ours): the count holds still for 0.5 s.
    with HttpConn(port) as c:
        c.send(http_request("GET", "/healthz", headers=[("Connection", "close")]))
        assert c.read_response().status == 200
        assert c.closed_by_peer()
    fds_before = settled_fd_count(pid)

    t0 = time.monotonic()
    run(churn(srv.port, WARMUP, graceful_cycle), timeout=120)
    assert wait_fds(pid, fds_before) == fds_before, "descriptors left after the warm-up"
    rss_warm = proc_rss_kib(pid)

    with Bystanders(srv.port, pause=0.05):
        run(churn(srv.port, CYCLES, graceful_cycle), timeout=300)
        run(churn(srv.port, DROPS, drop_cycle), timeout=300)
    elapsed = time.monotonic() - t0

    fds_after = wait_fds(pid, fds_before)
    assert fds_after == fds_before, \
        f"{fds_after} descriptors open after the churn, {fds_before} before: " \
        f"{sorted(os.listdir(f'/proc/{pid}/fd'), key=int)}"
    deadline = time.monotonic() + TIMEOUT
    while True:
        m = scrape(srv.port)
        settled = (m.value("wsrelay_connections_open") == 1
                   and m.value("wsrelay_websockets_open", route="ws") == 0)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert m.value("wsrelay_connections_open") == 1, m.text  # the scrape's own connection
    assert m.value("wsrelay_websockets_open", route="ws") == 0, m.text
    assert m.value("wsrelay_websockets_open", route="echo") == 0, m.text
    total = m.value("wsrelay_connections_total")
    assert total >= WARMUP + CYCLES + DROPS, f"connections_total {total}"

    print(f"\nchurn: {WARMUP}+{CYCLES}+{DROPS} cycles in {elapsed:.1f} s"
          f"{' (sanitized build)' if SANITIZED else ''}")
    if not SANITIZED:
        rss_after = proc_rss_kib(pid)
        assert rss_after - rss_warm <= RSS_SLACK_KIB, \
            f"RSS {rss_warm} KiB after the warm-up, {rss_after} KiB after the churn"
