"""Autobahn|Testsuite group 10, miscellaneous: 10.1.1 sends a 64 KiB text message auto-fragmented
into 1300-byte frames, as a client library with an autoFragmentSize would. Autobahn checks the
frame count it sent; here the server's side is what is judged: the message comes back as ONE
frame, byte for byte (the server re-frames whole messages; see conftest, "Conformance
helpers")."""

from conftest import (
    OP_CONT,
    OP_PING,
    OP_TEXT,
    build_frame,
    expect_close_echo,
    expect_echo,
    expect_pong,
    text_of,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")


def auto_fragmented(payload, size):
    parts = [payload[i:i + size] for i in range(0, len(payload), size)]
    last = len(parts) - 1
    return [build_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == last))
            for i, p in enumerate(parts)]


def test_10_1_1_text_65536_auto_fragmented_into_1300_byte_frames(raw_echo):
    payload = text_of(65536)
    frames = auto_fragmented(payload, 1300)
    assert len(frames) == 65536 // 1300 + 1  # 50 full frames and one of 536 bytes
    raw_echo.send_raw(b"".join(frames))
    expect_echo(raw_echo, OP_TEXT, payload)
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


def test_10_1_x_auto_fragmented_message_with_pings_every_ten_frames(raw_echo):
    # Beyond Autobahn: a client that keeps pinging while it streams a long message.
    payload = text_of(65536)
    wire = b""
    for i, f in enumerate(auto_fragmented(payload, 1300)):
        wire += f
        if i % 10 == 9:
            wire += build_frame(OP_PING, f"keepalive {i}".encode())
    raw_echo.send_raw(wire)
    for i in range(9, 51, 10):
        expect_pong(raw_echo, f"keepalive {i}".encode())
    expect_echo(raw_echo, OP_TEXT, payload)
