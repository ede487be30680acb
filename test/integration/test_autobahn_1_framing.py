"""Autobahn|Testsuite group 1, framing: text (1.1.x) and binary (1.2.x) messages whose lengths sit
on each boundary of RFC 6455 §5.2's length prefix code (7-bit up to 125, 16-bit 126..65535,
64-bit from 65536), sent whole or in chops of 997 bytes.

Graded strictly (see conftest, "Conformance helpers"): each echo is one frame, byte for byte,
with the shortest length form. Payloads are not Autobahn's "*" / 0xfe fill but text_of (multi-
byte UTF-8, so chops cut characters) and binary_of (every byte value, so a wrong unmasking
offset shows).
"""

import pytest

from conftest import (
    OP_BINARY,
    OP_TEXT,
    binary_of,
    build_frame,
    expect_close_echo,
    expect_echo,
    send_chopped,
    text_of,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")

LENGTHS = [("1", 0), ("2", 125), ("3", 126), ("4", 127), ("5", 128), ("6", 65535), ("7", 65536)]


@pytest.mark.parametrize("case,length", LENGTHS, ids=[f"1.1.{c}-{n}" for c, n in LENGTHS])
def test_1_1_text_message_of_boundary_length(raw_echo, case, length):
    payload = text_of(length)
    raw_echo.send_frame(OP_TEXT, payload)
    expect_echo(raw_echo, OP_TEXT, payload)
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


@pytest.mark.parametrize("case,length", LENGTHS, ids=[f"1.2.{c}-{n}" for c, n in LENGTHS])
def test_1_2_binary_message_of_boundary_length(raw_echo, case, length):
    payload = binary_of(length)
    raw_echo.send_frame(OP_BINARY, payload)
    expect_echo(raw_echo, OP_BINARY, payload)
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


def test_1_1_8_text_65536_in_chops_of_997(raw_echo):
    payload = text_of(65536)
    send_chopped(raw_echo, build_frame(OP_TEXT, payload), chop=997)
    expect_echo(raw_echo, OP_TEXT, payload)
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


def test_1_2_8_binary_65536_in_chops_of_997(raw_echo):
    payload = binary_of(65536)
    send_chopped(raw_echo, build_frame(OP_BINARY, payload), chop=997)
    expect_echo(raw_echo, OP_BINARY, payload)
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_1_x_every_length_from_0_to_300_on_one_connection(raw_echo, opcode):
    # Beyond Autobahn: every length across the 125/126 boundary, the header fed one byte at a
    # time for the lengths around it, all on one connection.
    make = text_of if opcode == OP_TEXT else binary_of
    for n in range(301):
        wire = build_frame(opcode, make(n))
        if 120 <= n <= 130:
            send_chopped(raw_echo, wire[:14], chop=1)
            raw_echo.send_raw(wire[14:])
        else:
            raw_echo.send_raw(wire)
        expect_echo(raw_echo, opcode, make(n))
