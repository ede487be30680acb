"""Autobahn|Testsuite group 3, reserved bits: RSV1..3 must be 0 unless an extension defines them
(RFC 6455 §5.2); wsrelay negotiates none, so any set bit fails the connection with 1002, and
nothing sent after the offending frame is echoed or answered.

Graded strictly (see conftest, "Conformance helpers"): where Autobahn accepts losing the echo
of the valid message before the bad frame (NON-STRICT), we require it."""

import pytest

from conftest import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    build_frame,
    expect_echo,
    expect_fail,
    send_chopped,
    send_lenient,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")

HELLO = b"Hello, world!"


def test_3_1_text_with_rsv1_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, HELLO, rsv=1))
    expect_fail(raw_echo, 1002)


def test_3_2_text_then_text_with_rsv2_then_ping(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, HELLO) + build_frame(OP_TEXT, HELLO, rsv=2)
                      + build_frame(OP_PING, b""))
    expect_echo(raw_echo, OP_TEXT, HELLO)
    expect_fail(raw_echo, 1002)  # and no pong


def test_3_3_text_then_text_with_rsv3_then_ping_frame_wise(raw_echo):
    raw_echo.send_frame(OP_TEXT, HELLO)
    expect_echo(raw_echo, OP_TEXT, HELLO)
    raw_echo.send_frame(OP_TEXT, HELLO, rsv=3)
    send_lenient(raw_echo, build_frame(OP_PING, b""))
    expect_fail(raw_echo, 1002)


def test_3_4_text_then_text_with_rsv4_then_ping_octet_wise(raw_echo):
    send_chopped(raw_echo, build_frame(OP_TEXT, HELLO), chop=1)
    send_chopped(raw_echo, build_frame(OP_TEXT, HELLO, rsv=4), chop=1)
    try:
        send_chopped(raw_echo, build_frame(OP_PING, b""), chop=1)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may have failed the connection already
    expect_echo(raw_echo, OP_TEXT, HELLO)
    expect_fail(raw_echo, 1002)


def test_3_5_binary_with_rsv5_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_BINARY, bytes(range(256)), rsv=5))
    expect_fail(raw_echo, 1002)


def test_3_6_ping_with_rsv6_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_PING, HELLO, rsv=6))
    expect_fail(raw_echo, 1002)  # no pong first


def test_3_7_close_with_rsv7_fails_1002(raw_echo):
    raw_echo.send_raw(build_frame(OP_CLOSE, b"\x03\xe8", rsv=7))
    expect_fail(raw_echo, 1002)  # not a 1000 echo


KINDS = {
    "text": lambda rsv: build_frame(OP_TEXT, HELLO, rsv=rsv),
    "binary": lambda rsv: build_frame(OP_BINARY, b"\xfe\xff", rsv=rsv),
    "ping": lambda rsv: build_frame(OP_PING, b"ping", rsv=rsv),
    "pong": lambda rsv: build_frame(OP_PONG, b"pong", rsv=rsv),
    "close": lambda rsv: build_frame(OP_CLOSE, b"\x03\xe8", rsv=rsv),
    # RSV on a continuation frame: the first fragment is fine, its continuation is not.
    "continuation": lambda rsv: build_frame(OP_TEXT, b"first ", fin=False)
    + build_frame(OP_CONT, b"last", rsv=rsv),
}


@pytest.mark.parametrize("rsv", range(1, 8), ids=[f"rsv{r:03b}" for r in range(1, 8)])
@pytest.mark.parametrize("kind", KINDS)
def test_3_x_every_rsv_combination_on_every_frame_kind(raw_echo, kind, rsv):
    # Beyond Autobahn's seven cases: each of the seven RSV patterns on each kind of frame, after
    # a valid message (which must still be echoed) and before a ping and a text (which must not
    # be answered).
    raw_echo.send_raw(build_frame(OP_TEXT, b"before") + KINDS[kind](rsv)
                      + build_frame(OP_PING, b"after") + build_frame(OP_TEXT, b"after"))
    expect_echo(raw_echo, OP_TEXT, b"before")
    expect_fail(raw_echo, 1002)
