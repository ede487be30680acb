"""A second, independent client: python3-websockets 10.4 (asyncio API), an implementation nobody
here wrote and strict about framing (it fails the connection on a masked server frame, a bad
length form, RSV bits, invalid UTF-8 or a bad close frame), exchanges every frame type with
/echo and /ws.

test_echo.py and test_relay.py already use it for small messages, one ping, close 1000 and the
room's welcome/join/relay/leave; this file covers what they leave out: boundary and large
sizes, fragmented sends (websockets sends an iterable or an async iterable as one fragmented
message), pings with chosen payloads (also in the middle of a fragmented send), close codes
and reasons in both directions, and the room driven by fragmented sends."""

import asyncio

import pytest
import websockets

from conftest import (
    TIMEOUT,
    closed,
    expect,
    join_room,
    join_text,
    leave_text,
    recv,
    relayed,
    run,
    ws_connect,
)

KIB, MIB = 1024, 1024 * 1024


@pytest.fixture
def big(start_server):
    """A server that accepts messages up to 2 MiB."""
    return start_server("--max-message", "2M", "--max-buffer", "8M")


def text_of(n):
    """A str of exactly n UTF-8 bytes mixing 1-, 2- and 3-byte characters."""
    unit = "κόσμε-*€"
    s = unit * (n // len(unit.encode()))
    return s + "*" * (n - len(s.encode()))


SIZES = [0, 1, 125, 126, 127, 65535, 65536, MIB, 2 * MIB]


# ---------------------------------------------------------------------------------------------
# /echo: sizes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_text_of_boundary_and_large_sizes_is_echoed(big, size):
    msg = text_of(size)
    assert len(msg.encode()) == size

    async def go():
        async with ws_connect(big.port, "/echo") as ws:
            await ws.send(msg)
            got = await recv(ws, timeout=TIMEOUT * 6)
            assert isinstance(got, str) and got == msg

    run(go(), timeout=60)


@pytest.mark.parametrize("size", SIZES)
def test_binary_of_boundary_and_large_sizes_is_echoed(big, size):
    msg = (bytes(range(256)) * (size // 256 + 1))[:size]

    async def go():
        async with ws_connect(big.port, "/echo") as ws:
            await ws.send(msg)
            got = await recv(ws, timeout=TIMEOUT * 6)
            assert isinstance(got, bytes) and got == msg

    run(go(), timeout=60)


def test_message_over_max_message_is_refused_with_1009_seen_by_websockets(big):
    async def go():
        ws = await ws_connect(big.port, "/echo")
        await ws.send(b"x" * (2 * MIB + 1))
        with pytest.raises(websockets.ConnectionClosedError):
            await recv(ws)
        code, reason = await closed(ws)
        assert code == 1009, (code, reason)
        assert isinstance(reason, str)

    run(go())


# ---------------------------------------------------------------------------------------------
# /echo: fragmented sends
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("parts", [
    ["Hel", "lo"],
    ["", "κόσμε", "", " ", "€😀"],
    [text_of(500)] * 20,
    ["x"] * 500,
], ids=["two", "empty-and-multibyte", "20x500", "500x1"])
def test_text_sent_as_an_iterable_of_fragments_comes_back_whole(server, parts):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            await ws.send(parts)
            assert await recv(ws) == "".join(parts)

    run(go())


def test_binary_sent_as_a_generator_of_fragments_comes_back_whole(server):
    chunks = [bytes([i]) * i for i in range(60)]

    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            await ws.send(c for c in chunks)
            assert await recv(ws) == b"".join(chunks)
            await ws.send("after")  # the connection goes on normally
            assert await recv(ws) == "after"

    run(go())


def test_async_iterable_with_a_ping_answered_in_the_middle_of_the_message(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            async def parts():
                yield "first "
                # §5.4: control frames may come between fragments; the pong must come back
                # before the message is complete.
                waiter = await ws.ping(b"mid-message")
                await asyncio.wait_for(waiter, TIMEOUT)
                yield "second "
                await asyncio.sleep(0.01)
                yield "third"

            await ws.send(parts())
            assert await recv(ws) == "first second third"

    run(go())


def test_async_iterable_of_large_binary_fragments(big):
    chunk = bytes(range(256)) * 256  # 64 KiB

    async def go():
        async with ws_connect(big.port, "/echo") as ws:
            async def parts():
                for i in range(16):
                    yield bytes([i]) + chunk[1:]

            await ws.send(parts())
            got = await recv(ws, timeout=TIMEOUT * 6)
            assert got == b"".join(bytes([i]) + chunk[1:] for i in range(16))

    run(go(), timeout=60)


def test_fragments_adding_up_past_max_message_get_1009(start_server):
    srv = start_server("--max-message", "1K")

    async def go():
        ws = await ws_connect(srv.port, "/echo")
        await ws.send(["y" * 300] * 4)  # 1200 bytes in four fragments
        with pytest.raises(websockets.ConnectionClosedError):
            await recv(ws)
        code, _ = await closed(ws)
        assert code == 1009

    run(go())


# ---------------------------------------------------------------------------------------------
# /echo: pings and pongs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\xff\xfe\x00", "κόσμε", b"p" * 125],
                         ids=["empty", "nul", "binary", "text", "125-bytes"])
def test_ping_with_chosen_payload_gets_its_pong(server, payload):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            # websockets resolves the waiter only for a pong carrying this very payload.
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, TIMEOUT)

    run(go())


def test_pings_one_after_another_each_get_their_pong(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            for i in range(20):
                waiter = await ws.ping(f"ping {i}")
                await asyncio.wait_for(waiter, TIMEOUT)
                await ws.send(f"msg {i}")
                assert await recv(ws) == f"msg {i}"

    run(go())


def test_many_outstanding_pings_are_all_answered(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            waiters = [await ws.ping(f"outstanding {i}") for i in range(10)]
            await asyncio.wait_for(asyncio.gather(*waiters), TIMEOUT)

    run(go())


def test_unsolicited_pong_is_ignored(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            await ws.pong(b"nobody asked")
            await ws.send(b"still echoing")
            assert await recv(ws) == b"still echoing"

    run(go())


# ---------------------------------------------------------------------------------------------
# /echo: close codes and reasons
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code,reason", [
    (1000, ""),
    (1000, "bye"),
    (1001, "going away"),
    (3000, "app-defined"),
    (4999, "κόσμε ✓"),
    (4000, "r" * 123),
])
def test_close_with_code_and_reason_is_echoed_and_the_connection_ends(server, code, reason):
    async def go():
        ws = await ws_connect(server.port, "/echo")
        await ws.send("before close")
        assert await recv(ws) == "before close"
        await ws.close(code, reason)
        # close_code/close_reason are what the server's close frame said: it read our code.
        assert ws.close_code == code, (ws.close_code, ws.close_reason)
        assert isinstance(ws.close_reason, str)
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.send("after close")

    run(go())


def test_websockets_iterator_ends_cleanly_when_the_client_closes(server):
    async def go():
        ws = await ws_connect(server.port, "/echo")
        for i in range(5):
            await ws.send(f"m{i}")
        got = []
        async for msg in ws:
            got.append(msg)
            if len(got) == 5:
                await ws.close(1000, "done")
        assert got == [f"m{i}" for i in range(5)]
        assert ws.close_code == 1000

    run(go())


# ---------------------------------------------------------------------------------------------
# /ws: the room with two websockets clients
# ---------------------------------------------------------------------------------------------


def test_room_with_fragmented_sends_pings_and_close_with_reason(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))

        # A fragmented JSON message (an iterable) is relayed once, whole, to both.
        await a.send(['{"x":', "1", ',"y":', '2.50,"name":"κόσμε"}'])
        want = relayed('"x":1,"y":2.50,"name":"κόσμε"', wa)
        await expect(a, want)
        await expect(b, want)

        # An async iterable with a ping answered between its fragments.
        async def parts():
            yield '{"x":'
            await asyncio.wait_for(await b.ping(b"room ping"), TIMEOUT)
            yield "3}"

        await b.send(parts())
        want = relayed('"x":3', wb)
        await expect(a, want)
        await expect(b, want)

        # B closes with a code and reason: B gets its code back, A sees B leave.
        await b.close(4000, "see you")
        assert b.close_code == 4000, (b.close_code, b.close_reason)
        await expect(a, leave_text(wb))

        # A newcomer's welcome lists A with A's last relayed message.
        c, wc, text = await join_room(server.port)
        first = '{"x":1,"y":2.50,"name":"κόσμε",'
        assert text == (f'{{"type":"welcome","id":"{wc["id"]}","color":{wc["color"]},'
                        f'"room":"","peers":[{relayed(first[1:-1], wa)}]}}')
        await expect(a, join_text(wc))
        await c.close()
        await expect(a, leave_text(wc))
        await a.close(1000)
        assert a.close_code == 1000

    run(go())


def test_room_fragmented_binary_is_refused_with_1003_and_the_other_sees_leave(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await b.send([b'{"x":', b"1}"])
        with pytest.raises(websockets.ConnectionClosedError):
            await recv(b)
        code, _ = await closed(b)
        assert code == 1003
        await expect(a, leave_text(wb))
        await a.send('{"x":2}')
        await expect(a, relayed('"x":2', wa))  # the room goes on, without b's message
        await a.close()

    run(go())


def test_room_fragmented_invalid_json_is_refused_with_1007_reason(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await b.send(['{"x":', "1,", "}"])  # a trailing comma: not JSON
        with pytest.raises(websockets.ConnectionClosedError):
            await recv(b)
        code, reason = await closed(b)
        assert (code, reason) == (1007, "invalid JSON")
        await expect(a, leave_text(wb))
        await a.close()

    run(go())
