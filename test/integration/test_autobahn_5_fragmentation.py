"""Autobahn|Testsuite group 5, fragmentation (RFC 6455 §5.4): control frames are never fragmented;
a message is a start frame (text/binary, FIN clear) then continuations, the last with FIN; only
control frames may come in between; a continuation with nothing to continue, or a new start
inside a message, fails the connection with 1002.

Graded strictly (see conftest, "Conformance helpers"): a fragmented message comes back as ONE
frame (the server re-frames whole messages), and where Autobahn accepts losing the echo of a
message completed before the protocol error (5.15, NON-STRICT), we require it. "Frame-wise"
cases send each frame on its own and wait for what it should produce (or a ping barrier)
before the next, in place of Autobahn's one-second pauses."""

import pytest

from conftest import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    binary_of,
    build_frame,
    expect_echo,
    expect_fail,
    expect_pong,
    ping_barrier,
    send_chopped,
    send_lenient,
    text_of,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")


def fragments(opcode, parts):
    """Wire bytes of one message in len(parts) fragments."""
    last = len(parts) - 1
    return b"".join(build_frame(opcode if i == 0 else OP_CONT, p, fin=(i == last))
                    for i, p in enumerate(parts))


# -- 5.1, 5.2: fragmented control frames -------------------------------------------------------


def test_5_1_ping_in_two_fragments_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_PING, b"fragment1", fin=False)
                      + build_frame(OP_CONT, b"fragment2"))
    expect_fail(raw_echo, 1002)  # no pong


def test_5_2_pong_in_two_fragments_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_PONG, b"fragment1", fin=False)
                      + build_frame(OP_CONT, b"fragment2"))
    expect_fail(raw_echo, 1002)


# -- 5.3 to 5.8: valid fragmented messages ------------------------------------------------------

PARTS = [b"fragment1", b"fragment2"]


def test_5_3_text_in_two_fragments_comes_back_as_one_frame(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, PARTS))
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")


def test_5_4_text_in_two_fragments_octet_wise(raw_echo):
    send_chopped(raw_echo, fragments(OP_TEXT, PARTS), chop=1)
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")


def test_5_5_text_in_two_fragments_frame_wise(raw_echo):
    raw_echo.send_frame(OP_TEXT, PARTS[0], fin=False)
    ping_barrier(raw_echo)  # the first fragment alone produces nothing
    raw_echo.send_frame(OP_CONT, PARTS[1], fin=True)
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")


def ping_between(parts, ping):
    return (build_frame(OP_TEXT, parts[0], fin=False) + build_frame(OP_PING, ping)
            + build_frame(OP_CONT, parts[1]))


def test_5_6_ping_between_two_text_fragments(raw_echo):
    raw_echo.send_raw(ping_between(PARTS, b"ping payload"))
    expect_pong(raw_echo, b"ping payload")
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")


def test_5_7_ping_between_two_text_fragments_octet_wise(raw_echo):
    send_chopped(raw_echo, ping_between(PARTS, b"ping payload"), chop=1)
    expect_pong(raw_echo, b"ping payload")
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")


def test_5_8_ping_between_two_text_fragments_frame_wise(raw_echo):
    raw_echo.send_frame(OP_TEXT, PARTS[0], fin=False)
    raw_echo.send_frame(OP_PING, b"ping payload")
    expect_pong(raw_echo, b"ping payload")  # answered before the message is complete
    raw_echo.send_frame(OP_CONT, PARTS[1])
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")


# -- 5.9 to 5.17: continuation with nothing to continue --------------------------------------

NOTHING_TO_CONTINUE = {
    # 5.9-5.11: a final continuation first, then a text message
    "fin": build_frame(OP_CONT, b"non-continuation payload", fin=True)
    + build_frame(OP_TEXT, b"Hello, world!"),
    # 5.12-5.14: a non-final continuation first, then a text message
    "no-fin": build_frame(OP_CONT, b"non-continuation payload", fin=False)
    + build_frame(OP_TEXT, b"Hello, world!"),
}


@pytest.mark.parametrize("case,fin", [("5.9", "fin"), ("5.12", "no-fin")], ids=["5.9", "5.12"])
def test_5_9_and_5_12_continuation_first_in_one_chop_fails_1002(raw_echo, case, fin):
    raw_echo.send_raw(NOTHING_TO_CONTINUE[fin])
    expect_fail(raw_echo, 1002)  # and the text message is not echoed


@pytest.mark.parametrize("case,fin", [("5.10", "fin"), ("5.13", "no-fin")], ids=["5.10", "5.13"])
def test_5_10_and_5_13_continuation_first_frame_wise_fails_1002(raw_echo, case, fin):
    raw_echo.send_frame(OP_CONT, b"non-continuation payload", fin=(fin == "fin"))
    send_lenient(raw_echo, build_frame(OP_TEXT, b"Hello, world!"))
    expect_fail(raw_echo, 1002)


@pytest.mark.parametrize("case,fin", [("5.11", "fin"), ("5.14", "no-fin")], ids=["5.11", "5.14"])
def test_5_11_and_5_14_continuation_first_octet_wise_fails_1002(raw_echo, case, fin):
    try:
        send_chopped(raw_echo, NOTHING_TO_CONTINUE[fin], chop=1)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may fail the connection before our last bytes
    expect_fail(raw_echo, 1002)


def test_5_15_continuation_after_a_complete_fragmented_message_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, b"fragment1", fin=False)
                      + build_frame(OP_CONT, b"fragment2", fin=True)
                      + build_frame(OP_CONT, b"fragment3", fin=False)
                      + build_frame(OP_TEXT, b"fragment4", fin=True))
    expect_echo(raw_echo, OP_TEXT, b"fragment1fragment2")  # Autobahn's OK; we require it
    expect_fail(raw_echo, 1002)


@pytest.mark.parametrize("case,fin", [("5.16", False), ("5.17", True)], ids=["5.16", "5.17"])
def test_5_16_and_5_17_repeated_continuation_then_fragmented_text_fails_1002(raw_echo, case, fin):
    one = (build_frame(OP_CONT, b"fragment1", fin=fin)
           + build_frame(OP_TEXT, b"fragment2", fin=False)
           + build_frame(OP_CONT, b"fragment3", fin=True))
    raw_echo.send_raw(one + one)
    expect_fail(raw_echo, 1002)  # nothing echoed at all


def test_5_18_text_fragments_both_with_text_opcode_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, b"fragment1", fin=False)
                      + build_frame(OP_TEXT, b"fragment2", fin=True))
    expect_fail(raw_echo, 1002)


# -- 5.19, 5.20: pings between many fragments ----------------------------------------------

FRAGS = [b"fragment1", b"fragment2", b"fragment3", b"fragment4", b"fragment5"]
PINGS = [b"pongme 1!", b"pongme 2!"]


def test_5_19_pings_between_five_fragments_one_chop_each_half(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, FRAGS[0], fin=False)
                      + build_frame(OP_CONT, FRAGS[1], fin=False) + build_frame(OP_PING, PINGS[0]))
    expect_pong(raw_echo, PINGS[0])  # before the message is complete
    raw_echo.send_raw(build_frame(OP_CONT, FRAGS[2], fin=False)
                      + build_frame(OP_CONT, FRAGS[3], fin=False) + build_frame(OP_PING, PINGS[1])
                      + build_frame(OP_CONT, FRAGS[4], fin=True))
    expect_pong(raw_echo, PINGS[1])
    expect_echo(raw_echo, OP_TEXT, b"".join(FRAGS))


def test_5_20_pings_between_five_fragments_frame_wise(raw_echo):
    raw_echo.send_frame(OP_TEXT, FRAGS[0], fin=False)
    raw_echo.send_frame(OP_CONT, FRAGS[1], fin=False)
    raw_echo.send_frame(OP_PING, PINGS[0])
    expect_pong(raw_echo, PINGS[0])
    raw_echo.send_frame(OP_CONT, FRAGS[2], fin=False)
    raw_echo.send_frame(OP_CONT, FRAGS[3], fin=False)
    raw_echo.send_frame(OP_PING, PINGS[1])
    expect_pong(raw_echo, PINGS[1])
    raw_echo.send_frame(OP_CONT, FRAGS[4], fin=True)
    expect_echo(raw_echo, OP_TEXT, b"".join(FRAGS))


# -- Beyond Autobahn: more fragment counts and sizes -----------------------------------------


def split(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("count", [2, 3, 7, 64, 300])
def test_5_x_message_in_n_fragments_comes_back_as_one_frame(raw_echo, opcode, count):
    data = (text_of if opcode == OP_TEXT else binary_of)(300)
    parts = [data[i * 300 // count:(i + 1) * 300 // count] for i in range(count)]
    raw_echo.send_raw(fragments(opcode, parts))
    expect_echo(raw_echo, opcode, data)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_5_x_one_byte_fragments_sent_slowly(raw_echo, opcode):
    data = (text_of if opcode == OP_TEXT else binary_of)(40)
    send_chopped(raw_echo, fragments(opcode, split(data, 1)), chop=3, pause=0.001)
    expect_echo(raw_echo, opcode, data)


def test_5_x_ping_between_every_one_byte_fragment(raw_echo):
    data = text_of(32)
    wire = b""
    for i, b in enumerate(data):
        wire += build_frame(OP_TEXT if i == 0 else OP_CONT, bytes([b]), fin=(i == len(data) - 1))
        if i < len(data) - 1:
            wire += build_frame(OP_PING, f"p{i}".encode())
    raw_echo.send_raw(wire)
    for i in range(len(data) - 1):
        expect_pong(raw_echo, f"p{i}".encode())
    expect_echo(raw_echo, OP_TEXT, data)


def test_5_x_unsolicited_pongs_between_fragments_are_ignored(raw_echo):
    raw_echo.send_raw(build_frame(OP_BINARY, b"ab", fin=False) + build_frame(OP_PONG, b"x")
                      + build_frame(OP_CONT, b"cd", fin=False) + build_frame(OP_PONG, b"")
                      + build_frame(OP_CONT, b"ef"))
    expect_echo(raw_echo, OP_BINARY, b"abcdef")
    ping_barrier(raw_echo)


def test_5_x_messages_after_a_fragmented_one_are_echoed_in_order(raw_echo):
    raw_echo.send_raw(fragments(OP_BINARY, [b"a", b"b", b"c"]) + build_frame(OP_TEXT, b"next")
                      + fragments(OP_TEXT, [b"x", b"y"]))
    expect_echo(raw_echo, OP_BINARY, b"abc")
    expect_echo(raw_echo, OP_TEXT, b"next")
    expect_echo(raw_echo, OP_TEXT, b"xy")


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("first", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_5_x_new_start_inside_a_fragmented_message_fails_1002(raw_echo, first, second):
    raw_echo.send_raw(build_frame(first, b"start", fin=False)
                      + build_frame(second, b"again", fin=(second == OP_TEXT))
                      + build_frame(OP_CONT, b"end"))
    expect_fail(raw_echo, 1002)


def test_5_x_close_frame_fragmented_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(0x8, b"\x03\xe8", fin=False) + build_frame(OP_CONT, b""))
    expect_fail(raw_echo, 1002)
