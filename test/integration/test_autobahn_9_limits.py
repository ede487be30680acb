"""Autobahn|Testsuite group 9, limits and performance: big messages whole (9.1 text, 9.2 binary,
64 KiB to 16 MiB), big messages in many fragments (9.3, 9.4), big frames trickled in small
chops (9.5, 9.6), and many small messages (9.7, 9.8, plus a burst).

The server runs with --max-message 16M --max-buffer 40M, so every case is within its limits and
must be echoed: one frame, byte for byte (see conftest, "Conformance helpers"). Waits are long
(BIG_TIMEOUT) because the sanitizer build is slow; no case asserts speed.

Autobahn's sizes are kept in full (9.3/9.4: 4 MiB in fragments of 64 B .. 4 MiB; 9.5/9.6: 1 MiB
in chops of 64 B .. 2 KiB; 9.7/9.8: 1000 messages of 0 B .. 4 KiB): the module runs in about 5 s
on either build when written. Payloads are text_of / binary_of, not Autobahn's repeated ASCII.
"""

import pytest

from conftest import (
    BIG_TIMEOUT,
    OP_BINARY,
    OP_CONT,
    OP_TEXT,
    binary_of,
    build_frame,
    expect_close_echo,
    expect_echo,
    expect_fail,
    send_chopped,
    send_lenient,
    text_of,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")

KIB, MIB = 1024, 1024 * 1024
MASK = b"\x5a\xa5\x3c\xc3"  # one fixed key: building 16 MiB frames with fresh keys is slow


def payload_for(opcode, n):
    return text_of(n) if opcode == OP_TEXT else binary_of(n)


# -- 9.1, 9.2: one big message ------------------------------------------------------------------

SIZES = [(1, 64 * KIB), (2, 256 * KIB), (3, MIB), (4, 4 * MIB), (5, 8 * MIB), (6, 16 * MIB)]


@pytest.mark.parametrize("opcode,group", [(OP_TEXT, 1), (OP_BINARY, 2)], ids=["text", "binary"])
@pytest.mark.parametrize("case,size", SIZES, ids=[f"x.{c}-{n // KIB}K" for c, n in SIZES])
def test_9_1_and_9_2_big_message(raw_echo, opcode, group, case, size):
    payload = payload_for(opcode, size)
    raw_echo.send_raw(build_frame(opcode, payload, mask_key=MASK))
    expect_echo(raw_echo, opcode, payload, timeout=BIG_TIMEOUT)
    raw_echo.send_close(1000)
    expect_close_echo(raw_echo, 1000)


def test_9_x_message_one_byte_over_16_mib_closes_1009(raw_echo):
    # The limit itself, from the other side: 16 MiB + 1 is refused with 1009 (§7.4.1).
    # Announced only: the server must refuse on the header, without waiting for the payload.
    send_lenient(raw_echo, build_frame(OP_BINARY, b"", length=16 * MIB + 1, mask_key=MASK))
    expect_fail(raw_echo, 1009)


# -- 9.3, 9.4: one big message in many fragments ----------------------------------------------

FRAG_TOTAL = 4 * MIB
FRAG_SIZES = [(1, 64), (2, 256), (3, KIB), (4, 4 * KIB), (5, 16 * KIB), (6, 64 * KIB),
              (7, 256 * KIB), (8, MIB), (9, 4 * MIB)]


def fragmented(opcode, payload, size):
    parts = [payload[i:i + size] for i in range(0, len(payload), size)]
    last = len(parts) - 1
    return b"".join(build_frame(opcode if i == 0 else OP_CONT, p, fin=(i == last), mask_key=MASK)
                    for i, p in enumerate(parts))


@pytest.mark.parametrize("opcode,group", [(OP_TEXT, 3), (OP_BINARY, 4)], ids=["text", "binary"])
@pytest.mark.parametrize("case,size", FRAG_SIZES, ids=[f"x.{c}-{n}" for c, n in FRAG_SIZES])
def test_9_3_and_9_4_big_message_in_fragments(raw_echo, opcode, group, case, size):
    payload = payload_for(opcode, FRAG_TOTAL)
    raw_echo.send_raw(fragmented(opcode, payload, size))
    expect_echo(raw_echo, opcode, payload, timeout=BIG_TIMEOUT)  # as one frame


# -- 9.5, 9.6: one big frame in small chops ---------------------------------------------------

CHOP_TOTAL = MIB
CHOPS = [(1, 64), (2, 128), (3, 256), (4, 512), (5, KIB), (6, 2 * KIB)]


@pytest.mark.parametrize("opcode,group", [(OP_TEXT, 5), (OP_BINARY, 6)], ids=["text", "binary"])
@pytest.mark.parametrize("case,chop", CHOPS, ids=[f"x.{c}-{n}" for c, n in CHOPS])
def test_9_5_and_9_6_big_frame_in_chops(raw_echo, opcode, group, case, chop):
    payload = payload_for(opcode, CHOP_TOTAL)
    send_chopped(raw_echo, build_frame(opcode, payload, mask_key=MASK), chop=chop)
    expect_echo(raw_echo, opcode, payload, timeout=BIG_TIMEOUT)


# -- 9.7, 9.8: many small messages --------------------------------------------------------------

RTT_SIZES = [(1, 0), (2, 16), (3, 64), (4, 256), (5, KIB), (6, 4 * KIB)]


@pytest.mark.parametrize("opcode,group", [(OP_TEXT, 7), (OP_BINARY, 8)], ids=["text", "binary"])
@pytest.mark.parametrize("case,size", RTT_SIZES, ids=[f"x.{c}-{n}" for c, n in RTT_SIZES])
def test_9_7_and_9_8_thousand_round_trips(raw_echo, opcode, group, case, size):
    # As Autobahn: each message is sent when the previous echo is in.
    payload = payload_for(opcode, size)
    wire = build_frame(opcode, payload, mask_key=MASK)
    for _ in range(1000):
        raw_echo.send_raw(wire)
        expect_echo(raw_echo, opcode, payload)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_9_7_x_thousand_tiny_messages_in_a_burst_come_back_in_order(raw_echo, opcode):
    # All 1000 in one send; each of 0..4 bytes and numbered by its content, so a lost,
    # duplicated or reordered echo shows.
    if opcode == OP_TEXT:
        msgs = [f"{i:04d}"[4 - i % 5:].encode() for i in range(1000)]  # "", "1", "02", ...
    else:
        msgs = [(i.to_bytes(2, "big") * 2)[: i % 5] for i in range(1000)]
    raw_echo.send_raw(b"".join(build_frame(opcode, m, mask_key=MASK) for m in msgs))
    for m in msgs:
        expect_echo(raw_echo, opcode, m)
