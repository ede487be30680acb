"""Autobahn|Testsuite group 2, pings and pongs (RFC 6455 §5.5.2, §5.5.3): a pong carries exactly
its ping's payload; a control frame's payload is at most 125 bytes; unsolicited pongs are
ignored; pings are answered in order, also when they trickle in one byte at a time.

Graded strictly (see conftest, "Conformance helpers")."""

import pytest

from conftest import (
    OP_PING,
    OP_PONG,
    OP_TEXT,
    build_frame,
    expect_close_echo,
    expect_echo,
    expect_fail,
    expect_pong,
    ping_barrier,
    send_chopped,
    send_lenient,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")


def test_2_1_ping_without_payload(raw_echo):
    raw_echo.send_frame(OP_PING, b"")
    expect_pong(raw_echo, b"")
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


def test_2_2_ping_with_small_text_payload(raw_echo):
    raw_echo.send_frame(OP_PING, b"Hello, world!")
    expect_pong(raw_echo, b"Hello, world!")


def test_2_3_ping_with_small_binary_payload(raw_echo):
    payload = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    raw_echo.send_frame(OP_PING, payload)
    expect_pong(raw_echo, payload)


def test_2_4_ping_with_125_byte_binary_payload(raw_echo):
    raw_echo.send_frame(OP_PING, b"\xfe" * 125)
    expect_pong(raw_echo, b"\xfe" * 125)


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 63, 64, 124, 125])
def test_2_4_ping_payload_lengths_up_to_125(raw_echo, length):
    # Beyond Autobahn: every mask offset, and invalid UTF-8 (a ping payload is not text).
    payload = bytes((0xFF - i) & 0xFF for i in range(length))
    raw_echo.send_frame(OP_PING, payload)
    expect_pong(raw_echo, payload)


def test_2_5_ping_with_126_byte_payload_fails_1002(raw_echo):
    # §5.5: control frames have payloads of at most 125 bytes. The text behind it must not
    # be echoed either.
    raw_echo.send_raw(build_frame(OP_PING, b"\xfe" * 126) + build_frame(OP_TEXT, b"after"))
    expect_fail(raw_echo, 1002)


def test_2_5_ping_announcing_126_bytes_in_16_bit_form_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_PING, b"p" * 126, length_form="16"))
    expect_fail(raw_echo, 1002)


def test_2_5_ping_with_short_payload_in_16_bit_length_form_fails_1002(raw_echo):
    # 125 bytes announced with the 16-bit form: §5.2 demands the minimal form.
    send_lenient(raw_echo, build_frame(OP_PING, b"p" * 125, length_form="16"))
    expect_fail(raw_echo, 1002)


def test_2_6_ping_125_bytes_sent_slowly_byte_by_byte(raw_echo):
    payload = bytes(range(125))
    send_chopped(raw_echo, build_frame(OP_PING, payload), chop=1, pause=0.001)
    expect_pong(raw_echo, payload)


def test_2_7_unsolicited_pong_without_payload_is_ignored(raw_echo):
    raw_echo.send_frame(OP_PONG, b"")
    ping_barrier(raw_echo)  # nothing came back for the pong


def test_2_8_unsolicited_pong_with_payload_is_ignored(raw_echo):
    raw_echo.send_frame(OP_PONG, b"unsolicited pong payload")
    ping_barrier(raw_echo)


def test_2_9_unsolicited_pong_then_ping_gets_only_its_pong(raw_echo):
    raw_echo.send_raw(build_frame(OP_PONG, b"unsolicited pong payload")
                      + build_frame(OP_PING, b"ping payload"))
    expect_pong(raw_echo, b"ping payload")
    ping_barrier(raw_echo)


def test_2_10_ten_pings_are_answered_in_order(raw_echo):
    pings = [f"payload-{i}".encode() for i in range(10)]
    raw_echo.send_raw(b"".join(build_frame(OP_PING, p) for p in pings))
    for p in pings:
        expect_pong(raw_echo, p)


def test_2_11_ten_pings_in_octet_wise_chops_are_answered_in_order(raw_echo):
    pings = [f"payload-{i}".encode() for i in range(10)]
    send_chopped(raw_echo, b"".join(build_frame(OP_PING, p) for p in pings), chop=1)
    for p in pings:
        expect_pong(raw_echo, p)


def test_2_x_ping_between_data_messages_keeps_order(raw_echo):
    # Beyond Autobahn: the pong is queued between the echoes, in the order the frames came.
    raw_echo.send_raw(build_frame(OP_TEXT, b"one") + build_frame(OP_PING, b"p")
                      + build_frame(OP_TEXT, b"two"))
    expect_echo(raw_echo, OP_TEXT, b"one")
    expect_pong(raw_echo, b"p")
    expect_echo(raw_echo, OP_TEXT, b"two")
