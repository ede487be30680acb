"""/echo: every message back unchanged; RFC 6455 framing, control frames and close handshake.

Polite clients (python3-websockets) check ordinary use; raw frames check the bytes on the wire
(RFC 6455 §5.7's samples) and every protocol error the server must answer with a close code.
"""

import asyncio
import struct

import pytest

from conftest import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    RawWS,
    build_frame,
    recv,
    run,
    ws_connect,
)

# ---------------------------------------------------------------------------------------------
# Polite clients
# ---------------------------------------------------------------------------------------------


def test_text_and_binary_messages_come_back_unchanged(server):
    msgs = ["hello", "", "héllo wörld ✓ 😀", "x" * 1000, b"\x00\x01\xfe\xff",
            bytes(range(256)), b"", '{"not":"parsed on echo"}', "not json at all"]

    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            for m in msgs:
                await ws.send(m)
                got = await recv(ws)
                assert type(got) is type(m), (m, got)
                assert got == m

    run(go())


def test_many_messages_come_back_in_order(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            for i in range(200):
                await ws.send(f"message {i}")
            for i in range(200):
                assert await recv(ws) == f"message {i}"

    run(go())


def test_message_of_exactly_max_message_is_echoed(server):
    payload = bytes(range(256)) * 64  # 16384 bytes, the default --max-message

    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            await ws.send(payload)
            assert await recv(ws) == payload

    run(go())


def test_ping_gets_pong_from_polite_client(server):
    async def go():
        async with ws_connect(server.port, "/echo") as ws:
            waiter = await ws.ping(b"are you there")
            await asyncio.wait_for(waiter, TIMEOUT)

    run(go())


def test_normal_close_is_echoed_with_1000(server):
    async def go():
        ws = await ws_connect(server.port, "/echo")
        await ws.close(1000, "bye")
        return ws.close_code

    assert run(go()) == 1000


# ---------------------------------------------------------------------------------------------
# Bytes on the wire (RFC 6455 §5.7 samples)
# ---------------------------------------------------------------------------------------------

RFC_MASKED_HELLO = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
RFC_UNMASKED_HELLO = bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])


@pytest.fixture
def echo(server):
    ws = RawWS.connect(server.port, "/echo")
    yield ws
    ws.close()


def test_rfc_masked_hello_is_echoed_as_rfc_unmasked_hello(echo):
    echo.send_raw(RFC_MASKED_HELLO)
    assert echo.recv_frame().raw == RFC_UNMASKED_HELLO


def test_frame_fed_one_byte_at_a_time_is_echoed(echo):
    for b in RFC_MASKED_HELLO:
        echo.send_raw(bytes([b]))
    assert echo.recv_frame().raw == RFC_UNMASKED_HELLO


def test_two_frames_in_one_send_are_both_echoed(echo):
    echo.send_raw(build_frame(OP_TEXT, b"one") + build_frame(OP_BINARY, b"two"))
    assert echo.recv_message() == (OP_TEXT, b"one")
    assert echo.recv_message() == (OP_BINARY, b"two")


def test_empty_text_is_echoed_as_two_byte_frame(echo):
    echo.send_frame(OP_TEXT, b"")
    assert echo.recv_frame().raw == b"\x81\x00"


def test_echo_uses_16_bit_length_for_200_bytes(echo):
    payload = b"a" * 200
    echo.send_frame(OP_TEXT, payload)
    assert echo.recv_frame().raw == b"\x81\x7e\x00\xc8" + payload


def test_echo_uses_64_bit_length_past_65535_bytes(start_server):
    srv = start_server("--max-message", 100000)
    ws = RawWS.connect(srv.port, "/echo")
    try:
        payload = bytes(range(256)) * 280  # 71680 bytes
        ws.send_frame(OP_BINARY, payload)
        f = ws.recv_frame()
        assert f.raw[:10] == b"\x82\x7f" + struct.pack("!Q", len(payload))
        assert f.payload == payload
    finally:
        ws.close()


def test_fragmented_message_with_ping_between_fragments(echo):
    # §5.7: "Hel" + "lo" as two fragments; §5.4: a control frame may come between them.
    echo.send_frame(OP_TEXT, b"Hel", fin=False)
    echo.send_frame(OP_PING, b"Hello")
    echo.send_frame(OP_CONT, b"lo", fin=True)
    pong = echo.recv_frame()
    assert pong.raw == bytes([0x8A, 0x05]) + b"Hello", pong
    assert echo.recv_message() == (OP_TEXT, b"Hello")


def test_utf8_character_split_across_fragments_is_accepted(echo):
    text = "caf\u00e9 \U0001F600".encode()
    echo.send_frame(OP_TEXT, text[:4], fin=False)  # cuts "é" in half
    echo.send_frame(OP_CONT, text[4:-2], fin=False)  # cuts the emoji
    echo.send_frame(OP_CONT, text[-2:], fin=True)
    assert echo.recv_message() == (OP_TEXT, text)


def test_binary_in_many_fragments_is_echoed_whole(echo):
    parts = [bytes([i]) * (i + 1) for i in range(20)]
    echo.send_frame(OP_BINARY, parts[0], fin=False)
    for p in parts[1:-1]:
        echo.send_frame(OP_CONT, p, fin=False)
    echo.send_frame(OP_CONT, parts[-1], fin=True)
    assert echo.recv_message() == (OP_BINARY, b"".join(parts))


def test_ping_of_125_bytes_gets_identical_pong(echo):
    payload = bytes(range(125))
    echo.send_frame(OP_PING, payload)
    f = echo.recv_frame()
    assert f.opcode == OP_PONG and f.fin
    assert f.payload == payload


def test_all_zero_mask_key_is_valid(echo):
    echo.send_frame(OP_TEXT, b"zero mask", mask_key=b"\0\0\0\0")
    assert echo.recv_message() == (OP_TEXT, b"zero mask")


def test_empty_fragments_are_allowed(echo):
    echo.send_frame(OP_TEXT, b"", fin=False)
    echo.send_frame(OP_CONT, b"body", fin=False)
    echo.send_frame(OP_CONT, b"", fin=True)
    assert echo.recv_message() == (OP_TEXT, b"body")


def test_empty_ping_gets_empty_pong(echo):
    echo.send_frame(OP_PING, b"")
    f = echo.recv_frame()
    assert (f.opcode, f.payload, f.fin) == (OP_PONG, b"", True)


def test_close_in_the_middle_of_a_fragmented_message_is_answered(echo):
    echo.send_frame(OP_TEXT, b"half", fin=False)
    echo.send_close(1000)
    code, _ = echo.expect_close()
    assert code == 1000


def test_unsolicited_pong_is_ignored(echo):
    echo.send_frame(OP_PONG, b"nobody asked")
    echo.send_frame(OP_TEXT, b"after pong")
    assert echo.recv_message() == (OP_TEXT, b"after pong")


def test_close_with_1000_is_echoed_and_tcp_closed(echo):
    echo.send_close(1000, "done")
    code, _ = echo.expect_close()
    assert code == 1000


def test_close_without_body_is_answered_and_tcp_closed(echo):
    echo.send_close(None)
    code, _ = echo.expect_close()
    assert code in (None, 1000), code


@pytest.mark.parametrize("code", [1001, 1003, 1007, 1008, 1011, 3000, 4999])
def test_close_with_valid_code_is_answered_without_error(echo, code):
    echo.send_close(code, "reason")
    got, _ = echo.expect_close()
    assert got in (code, 1000), f"answered close {code} with {got}"


# ---------------------------------------------------------------------------------------------
# Protocol errors: close 1002 (or 1007 for bad UTF-8), then TCP closed
# ---------------------------------------------------------------------------------------------

PROTOCOL_ERRORS = {
    "unmasked-text": build_frame(OP_TEXT, b"hi", mask=False),
    "unmasked-rfc-hello": RFC_UNMASKED_HELLO,
    "unmasked-ping": build_frame(OP_PING, b"x", mask=False),
    "rsv1": build_frame(OP_TEXT, b"hi", rsv=4),
    "rsv2": build_frame(OP_TEXT, b"hi", rsv=2),
    "rsv3": build_frame(OP_TEXT, b"hi", rsv=1),
    "rsv-on-ping": build_frame(OP_PING, b"hi", rsv=4),
    "opcode-3": build_frame(0x3, b"hi"),
    "opcode-7": build_frame(0x7, b"hi"),
    "opcode-b": build_frame(0xB, b"hi"),
    "opcode-f": build_frame(0xF, b""),
    "fragmented-ping": build_frame(OP_PING, b"x", fin=False),
    "fragmented-close": build_frame(OP_CLOSE, b"\x03\xe8", fin=False),
    "ping-126-bytes": build_frame(OP_PING, b"p" * 126),
    "close-126-bytes": build_frame(OP_CLOSE, b"\x03\xe8" + b"r" * 124),
    "continuation-first": build_frame(OP_CONT, b"x"),
    "final-continuation-first": build_frame(OP_CONT, b"x", fin=True),
    "text-inside-fragmented": build_frame(OP_TEXT, b"a", fin=False) + build_frame(OP_TEXT, b"b"),
    "binary-inside-fragmented": build_frame(OP_TEXT, b"a", fin=False)
    + build_frame(OP_BINARY, b"b"),
    "close-1-byte-body": build_frame(OP_CLOSE, b"\x03"),
    "non-minimal-16-bit-length": build_frame(OP_TEXT, b"hi", length_form="16"),
    "non-minimal-64-bit-length": build_frame(OP_TEXT, b"a" * 200, length_form="64"),
    "64-bit-length-top-bit": build_frame(OP_BINARY, b"", length=1 << 63),
}


@pytest.mark.parametrize("wire", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
def test_protocol_error_closes_with_1002(echo, wire):
    echo.send_raw(wire)
    code, _ = echo.expect_close()
    assert code == 1002


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535])
def test_close_with_forbidden_code_gets_1002(echo, code):
    echo.send_close(code, "x")
    got, _ = echo.expect_close()
    assert got == 1002, f"close {code} answered with {got}"


def test_protocol_error_after_handshake_on_ws_closes_with_1002(server):
    ws = RawWS.connect(server.port, "/ws")
    try:
        ws.recv_text()  # welcome
        ws.send_frame(OP_TEXT, b'{"x":1}', mask=False)
        code, _ = ws.expect_close()
        assert code == 1002
    finally:
        ws.close()


INVALID_UTF8 = {
    "lone-continuation": b"\x80",
    "overlong-slash": b"\xc0\xaf",
    "overlong-nul": b"\xc0\x80",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "truncated-at-end": b"ok \xe2\x82",
    "ff-byte": b"\xff",
}


@pytest.mark.parametrize("payload", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_text_that_is_not_utf8_closes_with_1007(echo, payload):
    echo.send_frame(OP_TEXT, payload)
    code, _ = echo.expect_close()
    assert code == 1007


def test_invalid_utf8_in_a_middle_fragment_closes_with_1007(echo):
    echo.send_frame(OP_TEXT, b"fine ", fin=False)
    echo.send_frame(OP_CONT, b"\xed\xa0\x80", fin=False)
    echo.send_frame(OP_CONT, b" end", fin=True)
    code, _ = echo.expect_close()
    assert code == 1007


def test_binary_message_may_hold_any_bytes(echo):
    echo.send_frame(OP_BINARY, b"\xff\xc0\xaf\xed\xa0\x80")
    assert echo.recv_message() == (OP_BINARY, b"\xff\xc0\xaf\xed\xa0\x80")


def test_close_reason_that_is_not_utf8_closes_with_1007(echo):
    echo.send_close(1000, b"\xff\xfe")
    code, _ = echo.expect_close()
    assert code == 1007
