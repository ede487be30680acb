"""Autobahn|Testsuite group 4, reserved opcodes: 0x3-0x7 (non-control, 4.1.x) and 0xB-0xF
(control, 4.2.x) are reserved (RFC 6455 §5.2); receiving one fails the connection with 1002,
also right after a valid message, and nothing after it is echoed or answered.

Graded strictly (see conftest, "Conformance helpers")."""

import pytest

from conftest import (
    OP_CONT,
    OP_PING,
    OP_TEXT,
    build_frame,
    expect_echo,
    expect_fail,
    send_chopped,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")

HELLO = b"Hello, world!"
PAYLOAD = b"reserved opcode payload"

# (case, opcode, payload of the reserved frame, valid text before it and ping after, chop size)
CASES = [
    ("4.1.1", 0x3, b"", False, None),
    ("4.1.2", 0x4, PAYLOAD, False, None),
    ("4.1.3", 0x5, b"", True, None),
    ("4.1.4", 0x6, PAYLOAD, True, None),
    ("4.1.5", 0x7, PAYLOAD, True, 1),
    ("4.2.1", 0xB, b"", False, None),
    ("4.2.2", 0xC, PAYLOAD, False, None),
    ("4.2.3", 0xD, b"", True, None),
    ("4.2.4", 0xE, PAYLOAD, True, None),
    ("4.2.5", 0xF, PAYLOAD, True, 1),
]


@pytest.mark.parametrize("case,opcode,payload,framed,chop", CASES, ids=[c[0] for c in CASES])
def test_4_reserved_opcode_fails_1002(raw_echo, case, opcode, payload, framed, chop):
    wire = build_frame(opcode, payload)
    if framed:
        wire = build_frame(OP_TEXT, HELLO) + wire + build_frame(OP_PING, b"")
    if chop:
        try:
            send_chopped(raw_echo, wire, chop=chop)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may fail the connection before the ping's last bytes
    else:
        raw_echo.send_raw(wire)
    if framed:
        expect_echo(raw_echo, OP_TEXT, HELLO)
    expect_fail(raw_echo, 1002)


RESERVED = [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]


@pytest.mark.parametrize("opcode", RESERVED, ids=[f"{o:#x}" for o in RESERVED])
def test_4_x_reserved_opcode_inside_a_fragmented_message_fails_1002(raw_echo, opcode):
    # Beyond Autobahn: between two fragments of a text message; the message must not be
    # echoed, even though its final fragment follows.
    raw_echo.send_raw(build_frame(OP_TEXT, b"frag1", fin=False) + build_frame(opcode, b"x")
                      + build_frame(OP_CONT, b"frag2"))
    expect_fail(raw_echo, 1002)


@pytest.mark.parametrize("opcode", RESERVED, ids=[f"{o:#x}" for o in RESERVED])
def test_4_x_reserved_opcode_without_fin_fails_1002(raw_echo, opcode):
    raw_echo.send_raw(build_frame(opcode, b"x", fin=False))
    expect_fail(raw_echo, 1002)
