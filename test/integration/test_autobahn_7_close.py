"""Autobahn|Testsuite group 7, the closing handshake (RFC 6455 §5.5.1, §7): after a close frame
the server sends and answers nothing more; a valid close is echoed with the same code (an empty
body when the client sent none) and the server closes TCP; a close body of 1 byte or over 125
bytes, a code that may not be sent (§7.4.1, §7.4.2), is a protocol error (1002); a reason
that is not UTF-8 is 1007 (§8.1).

Graded strictly (see conftest, "Conformance helpers"): Autobahn's 7.7.x also accepts 1000 as
the answer to any valid code; we require the client's own code back. 7.1.6 and 7.13.x are
"informational" in Autobahn; here they have the outcome RFC 6455 implies."""

import struct

import pytest

from conftest import (
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    build_frame,
    expect_close_echo,
    expect_echo,
    expect_fail,
    send_lenient,
    text_of,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")

HELLO = b"Hello World!"


def close_frame(code=1000, reason=b""):
    body = b"" if code is None else struct.pack("!H", code) + reason
    return build_frame(OP_CLOSE, body)


# -- 7.1: frames after a close are ignored ------------------------------------------------------


def test_7_1_1_text_then_close(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, HELLO) + close_frame(1000))
    expect_echo(raw_echo, OP_TEXT, HELLO)
    expect_close_echo(raw_echo, 1000)


def test_7_1_2_second_close_is_ignored(raw_echo):
    raw_echo.send_raw(close_frame(1000) + close_frame(1000))
    expect_close_echo(raw_echo, 1000)  # exactly one close, then EOF


def test_7_1_3_ping_after_close_is_not_answered(raw_echo):
    raw_echo.send_raw(close_frame(1000) + build_frame(OP_PING, b"late ping"))
    expect_close_echo(raw_echo, 1000)  # no pong before or after it


def test_7_1_4_text_after_close_is_not_echoed(raw_echo):
    raw_echo.send_raw(close_frame(1000) + build_frame(OP_TEXT, HELLO))
    expect_close_echo(raw_echo, 1000)


def test_7_1_5_close_inside_a_fragmented_message(raw_echo):
    raw_echo.send_raw(build_frame(OP_TEXT, b"fragment1", fin=False) + close_frame(1000)
                      + build_frame(OP_CONT, b"fragment2"))
    expect_close_echo(raw_echo, 1000)  # the message is never echoed


def test_7_1_6_big_message_then_text_then_close_then_ping(raw_echo):
    # Informational in Autobahn (a server may let the close overtake the echoes). Processing
    # frames in order, as §5.4 and §7.1.2 describe, gives both echoes, then the close.
    big = (b"BAsd7&jh23" * (256 * 1024 // 10 + 1))[:256 * 1024]
    raw_echo.send_raw(build_frame(OP_TEXT, big) + build_frame(OP_TEXT, HELLO) + close_frame(1000)
                      + build_frame(OP_PING, b""))
    expect_echo(raw_echo, OP_TEXT, big)
    expect_echo(raw_echo, OP_TEXT, HELLO)
    expect_close_echo(raw_echo, 1000)


def test_7_1_x_garbage_after_close_is_never_parsed(raw_echo):
    # Beyond Autobahn: after the close, not even a protocol error is reported.
    raw_echo.send_raw(close_frame(1000) + build_frame(OP_TEXT, b"x", mask=False) + b"\xff" * 20)
    expect_close_echo(raw_echo, 1000)


# -- 7.3: close frame payload lengths ---------------------------------------------------------


def test_7_3_1_close_with_empty_body_is_answered_with_empty_body(raw_echo):
    raw_echo.send_frame(OP_CLOSE, b"")
    expect_close_echo(raw_echo, None)


def test_7_3_2_close_with_1_byte_body_fails_1002(raw_echo):
    raw_echo.send_frame(OP_CLOSE, b"a")
    expect_fail(raw_echo, 1002)


def test_7_3_3_close_with_code_only(raw_echo):
    raw_echo.send_raw(close_frame(1000))
    expect_close_echo(raw_echo, 1000)


def test_7_3_4_close_with_code_and_short_reason(raw_echo):
    raw_echo.send_raw(close_frame(1000, b"Hello World!"))
    expect_close_echo(raw_echo, 1000)


def test_7_3_5_close_with_code_and_123_byte_reason(raw_echo):
    raw_echo.send_raw(close_frame(1000, b"*" * 123))  # 125 bytes: the largest control frame
    expect_close_echo(raw_echo, 1000)


def test_7_3_6_close_with_code_and_124_byte_reason_fails_1002(raw_echo):
    raw_echo.send_raw(close_frame(1000, b"*" * 124))  # 126 bytes: over §5.5's 125
    expect_fail(raw_echo, 1002)


def test_7_3_x_close_with_123_byte_multibyte_utf8_reason(raw_echo):
    reason = text_of(123)
    assert reason.decode("utf-8")
    raw_echo.send_raw(close_frame(1000, reason))
    expect_close_echo(raw_echo, 1000)


# -- 7.5: close reason must be UTF-8 ----------------------------------------------------------

INVALID_REASON = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"


def test_7_5_1_close_with_invalid_utf8_reason_fails_1007(raw_echo):
    raw_echo.send_raw(close_frame(1000, INVALID_REASON))
    expect_fail(raw_echo, 1007)


@pytest.mark.parametrize("reason", [b"\xe2\x82", b"\xc0\x80", b"\xff", b"ok\x80"],
                         ids=["truncated", "overlong-nul", "ff", "lone-continuation"])
def test_7_5_x_more_invalid_reasons_fail_1007(raw_echo, reason):
    raw_echo.send_raw(close_frame(1000, reason))
    expect_fail(raw_echo, 1007)


# -- 7.7: valid codes are echoed; 7.9, 7.13: codes that may not be sent --------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]


@pytest.mark.parametrize("code", VALID_CODES,
                         ids=[f"7.7.{i}-{c}" for i, c in enumerate(VALID_CODES, start=1)])
def test_7_7_valid_close_code_is_echoed(raw_echo, code):
    raw_echo.send_raw(close_frame(code))
    expect_close_echo(raw_echo, code)


@pytest.mark.parametrize("code", VALID_CODES,
                         ids=[f"7.7.{i}-{c}" for i, c in enumerate(VALID_CODES, start=1)])
def test_7_7_x_valid_close_code_with_reason_is_echoed(raw_echo, code):
    raw_echo.send_raw(close_frame(code, "done: κόσμε".encode()))
    expect_close_echo(raw_echo, code)


INVALID_CODES = [("7.9.1", 0), ("7.9.2", 999), ("7.9.3", 1004), ("7.9.4", 1005),
                 ("7.9.5", 1006), ("7.9.6", 1016), ("7.9.7", 1100), ("7.9.8", 2000),
                 ("7.9.9", 2999), ("7.13.1", 5000), ("7.13.2", 65535)]


@pytest.mark.parametrize("case,code", INVALID_CODES, ids=[f"{c}-{n}" for c, n in INVALID_CODES])
def test_7_9_and_7_13_invalid_close_code_fails_1002(raw_echo, case, code):
    raw_echo.send_raw(close_frame(code))
    expect_fail(raw_echo, 1002)


def test_7_x_close_after_protocol_error_is_not_answered_twice(raw_echo):
    # Beyond Autobahn: the server fails the connection for the RSV bit; our close, already
    # on the wire behind it, must not get a second close frame.
    raw_echo.send_raw(build_frame(OP_TEXT, b"x", rsv=4) + close_frame(1000))
    expect_fail(raw_echo, 1002)


def test_7_x_close_split_in_octet_chops(raw_echo):
    wire = close_frame(4000, b"chopped")
    for b in wire:
        send_lenient(raw_echo, bytes([b]))
    expect_close_echo(raw_echo, 4000)
