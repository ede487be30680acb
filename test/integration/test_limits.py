"""Limits: --max-clients (503), --max-buffer (slow readers dropped), --max-message (1009)."""

import asyncio
import json
import socket
import time

import pytest
import websockets

from conftest import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    HOST,
    TIMEOUT,
    HttpConn,
    RawWS,
    build_frame,
    expect,
    http_request,
    join_room,
    join_text,
    leave_text,
    parse_frame,
    recv,
    relayed,
    run,
    scrape,
    ws_connect,
)

# ---------------------------------------------------------------------------------------------
# --max-clients: every TCP connection counts; one too many gets 503 and is closed
# ---------------------------------------------------------------------------------------------


def expect_503_and_close(port):
    with HttpConn(port) as c:
        c.send(http_request("GET", "/"))
        resp = c.read_response()
        assert resp.status == 503, resp
        assert resp.reason == "Service Unavailable", resp
        assert c.closed_by_peer(), "the connection over the limit was not closed"


def eventually_served(port):
    """A new connection is served within TIMEOUT (freed slots are reaped asynchronously)."""
    deadline = time.monotonic() + TIMEOUT
    last = None
    while time.monotonic() < deadline:
        with HttpConn(port) as c:
            c.send(http_request("GET", "/", headers=[("Connection", "close")]))
            last = c.read_response()
            if last.status == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"slot never freed: last answer {last!r}")


def test_connection_over_max_clients_gets_503_then_a_freed_slot_serves(start_server):
    srv = start_server("--max-clients", 3)
    held = []
    try:
        for _ in range(2):  # two keep-alive HTTP connections, each proven accepted
            c = HttpConn(srv.port)
            c.send(http_request("GET", "/"))
            assert c.read_response().status == 200
            held.append(c)
        ws = RawWS.connect(srv.port, "/echo")  # and a WebSocket
        held.append(ws)
        expect_503_and_close(srv.port)
        expect_503_and_close(srv.port)  # still full: the 503'd ones did not leak slots...
        held.pop(0).close()
        eventually_served(srv.port)  # ...and a closed one gives its slot back
    finally:
        for h in held:
            h.close()


def test_idle_tcp_connections_count_toward_max_clients(start_server):
    srv = start_server("--max-clients", 2)
    idle = [socket.create_connection((HOST, srv.port)) for _ in range(2)]
    try:
        expect_503_and_close(srv.port)
    finally:
        for s in idle:
            s.close()
    eventually_served(srv.port)


def test_slots_are_reused_after_every_kind_of_ending(start_server):
    # Four times more connections than slots, one after another, each ending differently:
    # if any ending leaked its slot, a later one would get 503.
    srv = start_server("--max-clients", 3)
    endings = 0
    for _ in range(4):
        with HttpConn(srv.port) as c:  # served, then client closes
            c.send(http_request("GET", "/"))
            assert c.read_response().status == 200
        with HttpConn(srv.port) as c:  # 400, server closes
            c.send(b"GARBAGE\r\n\r\n")
            assert c.read_response().status == 400
        ws = RawWS.connect(srv.port, "/ws")  # protocol error
        ws.recv_text()
        ws.send_frame(OP_TEXT, b"{}", mask=False)
        assert ws.expect_close()[0] == 1002
        ws.close()
        ws = RawWS.connect(srv.port, "/echo")  # close handshake
        ws.send_close(1000)
        assert ws.expect_close()[0] == 1000
        ws.close()
        ws = RawWS.connect(srv.port, "/ws")  # reset
        ws.abort()
        endings += 5
    assert endings == 20
    eventually_served(srv.port)
    # All three slots free again (reaping is asynchronous: retry until a deadline).
    deadline = time.monotonic() + TIMEOUT
    while True:
        conns = [HttpConn(srv.port) for _ in range(3)]
        try:
            for c in conns:
                c.send(http_request("GET", "/"))
            statuses = [c.read_response().status for c in conns]
        finally:
            for c in conns:
                c.close()
        if statuses == [200, 200, 200] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert statuses == [200, 200, 200], f"a slot leaked: {statuses}"


def test_websocket_upgrade_over_max_clients_gets_503(start_server):
    srv = start_server("--max-clients", 2)

    async def go():
        a, wa, _ = await join_room(srv.port)
        b, wb, _ = await join_room(srv.port)
        await expect(a, join_text(wb))
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            await ws_connect(srv.port, "/ws")
        assert info.value.status_code == 503
        # The refused client was never in the room: nobody hears about it.
        await a.send('{"x":1}')
        await expect(a, relayed('"x":1', wa))
        await expect(b, relayed('"x":1', wa))
        await a.close()
        await b.close()

    run(go())


# ---------------------------------------------------------------------------------------------
# --max-buffer: a client that stops reading is dropped; the others carry on
# ---------------------------------------------------------------------------------------------


def test_client_that_stops_reading_is_bounded_then_dropped_and_others_keep_receiving(
        start_server):
    # A /ws client that stops reading is behind after a write: relayed updates are owed to it
    # (conflated, whatever their size: issue 10 §2.1), so its output stays near
    # --max-buffer/16 however much the room says, instead of growing to --max-buffer. It
    # still answers no ping, so it is dropped at the ping timeout, with no close frame; the
    # others get every message meanwhile and see its leave. --max-byte-rate 0: a's 15 KB
    # messages in lockstep are well past the default byte budget, which is not the subject.
    srv = start_server("--max-buffer", 262144, "--ping-interval", "1s", "--max-byte-rate", "0")
    pad = "z" * 15000
    big = f'{{"pad":"{pad}"}}'
    slow = None

    async def go():
        nonlocal slow
        a, wa, _ = await join_room(srv.port, max_queue=None)
        b, wb, _ = await join_room(srv.port, max_queue=None)
        await expect(a, join_text(wb))
        slow = RawWS.connect(srv.port, "/ws", rcvbuf=4096)
        w_slow = json.loads(slow.recv_text())
        await expect(a, join_text(w_slow))
        await expect(b, join_text(w_slow))
        # From here on `slow` never reads.

        big_relayed = relayed(f'"pad":"{pad}"', wa)
        after = relayed('"after":"drop"', wa)
        left = asyncio.Event()

        async def watch_b():
            while True:
                m = await b.recv()
                if m == leave_text(w_slow):
                    left.set()
                elif m == after:
                    return
                else:
                    assert m == big_relayed, f"b got {m[:100]!r}"

        tb = asyncio.create_task(watch_b())
        a_saw_leave = False
        for _ in range(100):  # 1.5 MB: six times --max-buffer
            # Lockstep: a reads its own copy before sending the next, so a and b never fall
            # behind themselves; only `slow` piles up output.
            await a.send(big)
            m = await recv(a)
            if m == leave_text(w_slow):
                a_saw_leave = True
                m = await recv(a)
            assert m == big_relayed, f"a got {m[:100]!r}"
            if tb.done():
                tb.result()  # re-raise b's failure
        assert scrape(srv.port).value("wsrelay_wbuf_high_water_bytes") < 262144 // 2
        await asyncio.wait_for(left.wait(), TIMEOUT)  # the ping timeout: about 2 s
        await a.send('{"after":"drop"}')
        await asyncio.wait_for(tb, TIMEOUT)  # b still receives after the drop
        while not a_saw_leave:
            m = await recv(a)
            if m == leave_text(w_slow):
                a_saw_leave = True
            else:
                assert m in (big_relayed, after), f"a got {m[:100]!r}"
        await a.close()
        await b.close()

    try:
        run(go(), timeout=60)
        m = scrape(srv.port)
        assert m.value("wsrelay_disconnects_total", reason="ping_timeout") == 1
        assert m.value("wsrelay_disconnects_total", reason="slow_reader") == 0
        assert m.value("wsrelay_conflated_total") > 0
        # The dropped client gets whatever the kernel already held, then EOF: no close frame.
        assert slow.wait_eof(TIMEOUT), "the dropped client's TCP connection was never closed"
        pos, opcodes = 0, []
        while True:
            parsed = parse_frame(slow.buf, pos)
            if not parsed:
                break
            opcodes.append(parsed[0].opcode)
            pos += parsed[1]
        assert OP_CLOSE not in opcodes, "the dropped client got a close frame"
    finally:
        if slow is not None:
            slow.close()


# ---------------------------------------------------------------------------------------------
# --max-message: 1009 past the limit, in one frame or many, decided from the header
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def small(start_server):
    srv = start_server("--max-message", 1024)
    ws = RawWS.connect(srv.port, "/echo")
    yield ws
    ws.close()


def test_message_of_exactly_max_message_is_echoed(small):
    small.send_frame(OP_BINARY, b"m" * 1024)
    assert small.recv_message() == (OP_BINARY, b"m" * 1024)


def test_message_one_byte_over_max_message_closes_1009(small):
    small.send_frame(OP_TEXT, b"m" * 1025)
    code, _ = small.expect_close()
    assert code == 1009


def test_fragments_adding_up_to_exactly_max_message_are_echoed(small):
    small.send_frame(OP_TEXT, b"a" * 500, fin=False)
    small.send_frame(OP_CONT, b"b" * 500, fin=False)
    small.send_frame(OP_CONT, b"c" * 24, fin=True)
    assert small.recv_message() == (OP_TEXT, b"a" * 500 + b"b" * 500 + b"c" * 24)


def test_fragments_adding_up_past_max_message_close_1009(small):
    small.send_frame(OP_TEXT, b"a" * 400, fin=False)
    small.send_frame(OP_CONT, b"b" * 400, fin=False)
    small.send_frame(OP_CONT, b"c" * 400, fin=True)
    code, _ = small.expect_close()
    assert code == 1009


def test_huge_announced_length_closes_1009_without_waiting_for_payload(small):
    # Only the header of a 1 TiB frame: the server must refuse it from the header alone
    # instead of waiting for (or allocating) the payload.
    small.send_raw(build_frame(OP_BINARY, b"", length=1 << 40))
    code, _ = small.expect_close()
    assert code == 1009


def test_default_max_message_is_16384(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            await ws.send("a" * 16384)
            assert await recv(ws) == "a" * 16384
            await ws.send("a" * 16385)
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
            return ws.close_code

    assert run(go()) == 1009


@pytest.mark.parametrize("kind", ["pings", "messages"])
def test_echo_client_that_never_reads_cannot_hurt_others(start_server, kind):
    # It floods /echo and never reads the answers. The server may drop it (its output passed
    # --max-buffer) or stop reading from it, but the room must carry on undisturbed.
    srv = start_server("--max-buffer", 65536)
    flooder = RawWS.connect(srv.port, "/echo", rcvbuf=4096)
    if kind == "pings":
        chunk = build_frame(0x9, b"p" * 125) * 100
    else:
        chunk = build_frame(OP_BINARY, b"x" * 16000) * 4
    flooder.sock.settimeout(2)
    sent = 0
    try:
        while sent < 32 * 1024 * 1024:
            flooder.sock.sendall(chunk)
            sent += len(chunk)
    except (ConnectionError, socket.timeout):
        pass  # dropped, or the server stopped reading: both are fine
    try:
        async def room():
            a, wa, _ = await join_room(srv.port)
            b, wb, _ = await join_room(srv.port)
            await expect(a, join_text(wb))
            for i in range(20):
                await a.send(f'{{"i":{i}}}')
                await expect(a, relayed(f'"i":{i}', wa))
                await expect(b, relayed(f'"i":{i}', wa))
            await a.close()
            await b.close()

        run(room())
    finally:
        flooder.abort()
