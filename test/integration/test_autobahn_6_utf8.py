"""Autobahn|Testsuite group 6, UTF-8 handling: a text message (and only a text message) must be
valid UTF-8 (RFC 6455 §5.6, §8.1; RFC 3629); otherwise the connection fails with 1007. The
6.5.x-6.23.x tables are Autobahn's, built from Markus Kuhn's UTF-8 decoder stress test; each row
is sent as one frame and again in 1-byte fragments.

Graded strictly (see conftest, "Conformance helpers"). Fail fast (6.4.x): the close 1007 must
arrive as soon as the invalid byte is in, while the message is unfinished: the tests read the
close before sending the rest (and never send it), where Autobahn's NON-STRICT would also accept
a server that waits for the end of the message."""

import pytest

from conftest import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    build_frame,
    expect_echo,
    expect_fail,
    expect_pong,
    ping_barrier,
    text_of,
)

SERVER_FLAGS = ("--max-message", "16M", "--max-buffer", "40M")

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε", Kuhn's sample


def fragments(opcode, parts):
    last = len(parts) - 1
    return b"".join(build_frame(opcode if i == 0 else OP_CONT, p, fin=(i == last))
                    for i, p in enumerate(parts))


def octets(data):
    return [data[i:i + 1] for i in range(len(data))] or [b""]


# -- 6.1: empty text ---------------------------------------------------------------------------


def test_6_1_1_empty_text_message(raw_echo):
    raw_echo.send_frame(OP_TEXT, b"")
    expect_echo(raw_echo, OP_TEXT, b"")


def test_6_1_2_three_empty_fragments(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, [b"", b"", b""]))
    expect_echo(raw_echo, OP_TEXT, b"")


def test_6_1_3_empty_then_non_empty_then_empty_fragment(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, [b"", b"middle frame payload", b""]))
    expect_echo(raw_echo, OP_TEXT, b"middle frame payload")


# -- 6.2, 6.3: valid and invalid text, whole and in fragments -------------------------------------

HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode()


def test_6_2_1_valid_utf8_in_one_fragment(raw_echo):
    raw_echo.send_frame(OP_TEXT, HELLO_UTF8)
    expect_echo(raw_echo, OP_TEXT, HELLO_UTF8)


def test_6_2_2_valid_utf8_in_two_fragments_split_at_a_code_point(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, [HELLO_UTF8[:11], HELLO_UTF8[11:]]))
    expect_echo(raw_echo, OP_TEXT, HELLO_UTF8)


def test_6_2_3_valid_utf8_in_one_octet_fragments(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, octets(HELLO_UTF8)))
    expect_echo(raw_echo, OP_TEXT, HELLO_UTF8)


def test_6_2_4_kosme_in_one_octet_fragments(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, octets(KOSME)))
    expect_echo(raw_echo, OP_TEXT, KOSME)


INVALID_6_3 = KOSME + b"\xed\xa0\x80" + b"edited"  # a UTF-16 surrogate inside


def test_6_3_1_invalid_utf8_in_one_fragment_fails_1007(raw_echo):
    raw_echo.send_frame(OP_TEXT, INVALID_6_3)
    expect_fail(raw_echo, 1007)


def test_6_3_2_invalid_utf8_in_one_octet_fragments_fails_1007(raw_echo):
    raw_echo.send_raw(fragments(OP_TEXT, octets(INVALID_6_3)))
    expect_fail(raw_echo, 1007)


# -- 6.4: fail fast ---------------------------------------------------------------------------

FF_1, FF_2, FF_3 = KOSME, b"\xf4\x90\x80\x80", b"edited"  # \x90 makes 0x110000: out of range
FF = FF_1 + FF_2 + FF_3  # byte 12 (\x90) is the first that cannot be valid


def test_6_4_1_fail_fast_invalid_utf8_in_fragment(raw_echo):
    raw_echo.send_frame(OP_TEXT, FF_1, fin=False)
    ping_barrier(raw_echo)  # the valid first fragment is accepted
    raw_echo.send_frame(OP_CONT, FF_2, fin=False)
    expect_fail(raw_echo, 1007)  # before the third fragment, which we never send


def test_6_4_2_fail_fast_on_the_very_octet_that_makes_it_invalid(raw_echo):
    raw_echo.send_frame(OP_TEXT, FF[:12], fin=False)  # ends in \xf4: still a valid prefix
    ping_barrier(raw_echo)
    raw_echo.send_frame(OP_CONT, FF[12:13], fin=False)  # \x90
    expect_fail(raw_echo, 1007)


def chopped_frame(payload):
    """A single masked text frame announcing all of payload; returns (header + key, masked
    payload) so a test can send the payload in chops."""
    wire = build_frame(OP_TEXT, payload)
    hdr = len(wire) - len(payload)
    return wire[:hdr], wire[hdr:]


def test_6_4_3_fail_fast_in_chops_of_one_frame(raw_echo):
    hdr, body = chopped_frame(FF)
    raw_echo.send_raw(hdr + body[:len(FF_1)])
    raw_echo.send_raw(body[len(FF_1):len(FF_1) + len(FF_2)])
    expect_fail(raw_echo, 1007)  # before the rest of the frame, which we never send


def test_6_4_4_fail_fast_on_the_very_octet_in_chops_of_one_frame(raw_echo):
    hdr, body = chopped_frame(FF)
    raw_echo.send_raw(hdr + body[:12])
    raw_echo.send_raw(body[12:13])
    expect_fail(raw_echo, 1007)


@pytest.mark.parametrize("pos", range(len(KOSME) + 1))
def test_6_4_x_fail_fast_with_invalid_byte_at_every_position(raw_echo, pos):
    # Beyond Autobahn: \xff (never valid) after each prefix of "κόσμε", also inside a
    # character, in a first fragment whose message never ends.
    raw_echo.send_frame(OP_TEXT, KOSME[:pos] + b"\xff", fin=False)
    expect_fail(raw_echo, 1007)


SPLIT_INVALID = {
    "surrogate-ed|a080": (b"ok \xed", b"\xa0\x80 rest"),
    "above-10ffff-f4|90": (b"ok \xf4", b"\x90\x80\x80"),
    "overlong-e0|80": (b"ok \xe0", b"\x80\x80"),
    "overlong-f0|8f": (b"ok \xf0", b"\x8f\xbf\xbf"),
    "missing-continuation-e2 82|41": (b"ok \xe2\x82", b"A"),
}


@pytest.mark.parametrize("parts", SPLIT_INVALID.values(), ids=SPLIT_INVALID.keys())
def test_6_4_x_fail_fast_on_invalid_sequence_split_across_fragments(raw_echo, parts):
    # The first fragment ends in a valid prefix; the second fragment's first byte breaks it.
    raw_echo.send_frame(OP_TEXT, parts[0], fin=False)
    ping_barrier(raw_echo)
    raw_echo.send_frame(OP_CONT, parts[1], fin=False)
    expect_fail(raw_echo, 1007)


# -- 6.5 to 6.23: Autobahn's tables (Markus Kuhn's UTF-8 decoder stress test) -------------------


def is_utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def utf8_table():
    """[(case id, valid, payload)] in Autobahn's order and numbering, from case6_x_x.py."""
    groups = []
    # 6.5 some valid UTF-8 text
    groups.append([(True, b"hello\x24world"), (True, b"hello\xc2\xa2world"),
                   (True, b"hello\xe2\x82\xacworld"), (True, b"hello\xf0\xa4\xad\xa2world"),
                   (True, KOSME)])
    # 6.6 every prefix of "κόσμε": valid only when it ends on a code point
    groups.append([(is_utf8(KOSME[:i]), KOSME[:i]) for i in range(1, len(KOSME) + 1)])
    # 6.7 first possible sequence of each length; 6.8 of length 5 and 6 (not UTF-8 any more)
    groups.append([(True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"),
                   (True, b"\xf0\x90\x80\x80")])
    groups.append([(False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")])
    # 6.9 last possible sequence of each length; 6.10 beyond U+10FFFF
    groups.append([(True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"),
                   (True, b"\xf4\x8f\xbf\xbf")])
    groups.append([(False, b"\xf7\xbf\xbf\xbf"), (False, b"\xfb\xbf\xbf\xbf\xbf"),
                   (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")])
    # 6.11 other boundary conditions
    groups.append([(True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"), (True, b"\xef\xbf\xbd"),
                   (True, b"\xf4\x8f\xbf\xbf"), (False, b"\xf4\x90\x80\x80")])
    # 6.12 unexpected continuation bytes
    groups.append([(False, b"\x80"), (False, b"\xbf"), (False, b"\x80\xbf"),
                   (False, b"\x80\xbf\x80"), (False, b"\x80\xbf\x80\xbf"),
                   (False, b"\x80\xbf\x80\xbf\x80"), (False, b"\x80\xbf\x80\xbf\x80\xbf"),
                   (False, bytes(range(0x80, 0xBF)))])
    # 6.13 lonely start characters, each followed by a space
    groups.append([(False, b"".join(bytes([c, 0x20]) for c in range(lo, hi)))
                   for lo, hi in [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB),
                                  (0xFC, 0xFD)]])
    # 6.14 sequences with the last continuation byte missing; 6.15 all of them concatenated
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
               b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
               b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    groups.append([(False, m) for m in missing])
    groups.append([(False, b"".join(missing))])
    # 6.16 impossible bytes
    groups.append([(False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")])
    # 6.17 overlong ASCII "/"; 6.18 maximum overlong sequences; 6.19 overlong NUL
    groups.append([(False, b"\xc0\xaf"), (False, b"\xe0\x80\xaf"), (False, b"\xf0\x80\x80\xaf"),
                   (False, b"\xf8\x80\x80\x80\xaf"), (False, b"\xfc\x80\x80\x80\x80\xaf")])
    groups.append([(False, b"\xc1\xbf"), (False, b"\xe0\x9f\xbf"), (False, b"\xf0\x8f\xbf\xbf"),
                   (False, b"\xf8\x87\xbf\xbf\xbf"), (False, b"\xfc\x83\xbf\xbf\xbf\xbf")])
    groups.append([(False, b"\xc0\x80"), (False, b"\xe0\x80\x80"), (False, b"\xf0\x80\x80\x80"),
                   (False, b"\xf8\x80\x80\x80\x80"), (False, b"\xfc\x80\x80\x80\x80\x80")])
    # 6.20 single UTF-16 surrogates; 6.21 paired ones
    groups.append([(False, s) for s in [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
                                        b"\xed\xaf\xbf", b"\xed\xb0\x80", b"\xed\xbe\x80",
                                        b"\xed\xbf\xbf"]])
    hi, lo = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"], \
        [b"\xed\xb0\x80", b"\xed\xbf\xbf"]
    groups.append([(False, h + low) for h in hi for low in lo])
    # 6.22 non-characters: valid UTF-8 by RFC 3629, so they must be echoed
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in [b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4"]:
        for z2 in [b"\x8f", b"\x9f", b"\xaf", b"\xbf"]:
            if z1 == b"\xf4" and z2 != b"\x8f":
                continue  # above U+10FFFF
            for z3 in [b"\xbe", b"\xbf"]:
                zz = z1 + z2 + b"\xbf" + z3
                if zz not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):  # overlong
                    nonchars.append(zz)
    groups.append([(True, z) for z in nonchars])
    # 6.23 Unicode specials, the replacement character among them
    groups.append([(True, b"\xef\xbf" + bytes([c])) for c in range(0xB9, 0xC0)])

    table = []
    for g, rows in enumerate(groups, start=5):
        for j, (valid, payload) in enumerate(rows, start=1):
            assert valid == is_utf8(payload), (g, j, payload)  # the table agrees with Python
            table.append((f"6.{g}.{j}", valid, payload))
    return table


UTF8_TABLE = utf8_table()


@pytest.mark.parametrize("mode", ["one-frame", "octet-fragments"])
@pytest.mark.parametrize("case,valid,payload", UTF8_TABLE, ids=[c for c, _, _ in UTF8_TABLE])
def test_6_5_to_6_23_kuhn_utf8_table(raw_echo, case, valid, payload, mode):
    if mode == "one-frame":
        raw_echo.send_frame(OP_TEXT, payload)
    else:
        raw_echo.send_raw(fragments(OP_TEXT, octets(payload)))
    if valid:
        expect_echo(raw_echo, OP_TEXT, payload)
        ping_barrier(raw_echo)
    else:
        expect_fail(raw_echo, 1007)


def test_6_x_table_has_autobahns_size():
    # 6.5 .. 6.23 hold 5+11+4+2+4+3+5+8+5+10+1+3+5+5+5+7+8+34+7 cases in Autobahn.
    assert len(UTF8_TABLE) == 132
    assert [c for c, _, _ in UTF8_TABLE][-1] == "6.23.7"


# -- Beyond Autobahn: positions, splits, and what is not text ----------------------------------

INVALID_SEQUENCES = {
    "ff": b"\xff",
    "lone-continuation": b"\x80",
    "overlong-slash": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "truncated-3-byte": b"\xe2\x82",
}


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("seq", INVALID_SEQUENCES.values(), ids=INVALID_SEQUENCES.keys())
def test_6_x_invalid_sequence_at_start_middle_and_end(raw_echo, seq, where):
    body = text_of(64)
    payload = {"start": seq + body, "middle": body[:32] + seq + body[32:], "end": body + seq}
    raw_echo.send_raw(build_frame(OP_TEXT, payload[where]) + build_frame(OP_PING, b"after"))
    expect_fail(raw_echo, 1007)  # no pong either


def test_6_x_valid_text_split_across_two_fragments_at_every_position(raw_echo):
    data = KOSME + "€ 😀 ok".encode()
    for k in range(len(data) + 1):
        raw_echo.send_raw(fragments(OP_TEXT, [data[:k], data[k:]]))
        expect_echo(raw_echo, OP_TEXT, data)


def test_6_x_truncated_character_at_message_end_fails_even_if_fragments_were_valid(raw_echo):
    # The last fragment ends halfway through "€": only the end of the message can tell.
    raw_echo.send_raw(fragments(OP_TEXT, [b"price: ", b"\xe2\x82"]))
    expect_fail(raw_echo, 1007)


def test_6_x_ping_between_fragments_does_not_feed_the_text_validator(raw_echo):
    # "€" is cut after its first byte; the ping between the fragments carries the other two.
    # Fed to the validator, the ping would make the message \xe2\x82\xac\x82\xac: invalid.
    raw_echo.send_raw(build_frame(OP_TEXT, b"ok \xe2", fin=False)
                      + build_frame(OP_PING, b"\x82\xac")
                      + build_frame(OP_CONT, b"\x82\xac"))
    expect_pong(raw_echo, b"\x82\xac")
    expect_echo(raw_echo, OP_TEXT, "ok €".encode())


def test_6_x_binary_messages_are_not_checked(raw_echo):
    for _, valid, payload in UTF8_TABLE:
        if not valid:
            raw_echo.send_frame(OP_BINARY, payload)
            expect_echo(raw_echo, OP_BINARY, payload)


def test_6_x_ping_payloads_are_not_checked(raw_echo):
    for _, valid, payload in UTF8_TABLE:
        if not valid and len(payload) <= 125:
            raw_echo.send_frame(OP_PING, payload)
            expect_pong(raw_echo, payload)


def test_6_x_text_after_binary_with_invalid_tail_is_checked_afresh(raw_echo):
    raw_echo.send_raw(build_frame(OP_BINARY, b"\xe2\x82") + build_frame(OP_TEXT, b"\xac"))
    expect_echo(raw_echo, OP_BINARY, b"\xe2\x82")
    expect_fail(raw_echo, 1007)
