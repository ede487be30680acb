"""/ws, the shared-cursors room, per docs/protocol.md: welcome, join, relay, spoofing, leave,
and how refused messages are answered. Server messages are compared byte-for-byte: the
protocol document says its examples are exactly what goes on the wire, member order included.
"""

import json

import pytest

from conftest import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    UUID4_RE,
    RawWS,
    build_frame,
    closed,
    expect,
    join_room,
    join_text,
    leave_text,
    recv,
    relayed,
    run,
    ws_connect,
)


def check_identity(welcome):
    assert UUID4_RE.match(welcome["id"]), f"id is not a lower-case UUIDv4: {welcome['id']!r}"
    color = welcome["color"]
    assert type(color) is int and 0 <= color <= 359, f"color {color!r}"


# ---------------------------------------------------------------------------------------------
# welcome and identity
# ---------------------------------------------------------------------------------------------


def test_welcome_is_first_and_exact_for_the_first_client(server):
    async def go():
        ws, welcome, text = await join_room(server.port)
        check_identity(welcome)
        expected = f'{{"type":"welcome","id":"{welcome["id"]}","color":{welcome["color"]},"room":"","peers":[]}}'
        assert text == expected
        await ws.close()

    run(go())


def test_each_client_gets_a_distinct_uuid_and_a_hue(server):
    async def go():
        clients = [await join_room(server.port) for _ in range(6)]
        ids = [w["id"] for _, w, _ in clients]
        for _, w, _ in clients:
            check_identity(w)
        assert len(set(ids)) == len(ids), ids
        for ws, _, _ in clients:
            await ws.close()

    run(go())


def test_newcomer_welcome_lists_silent_peer_as_sender_and_color(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, text = await join_room(server.port)
        peer = f'{{"sender":"{wa["id"]}","color":{wa["color"]}}}'
        assert text == (f'{{"type":"welcome","id":"{wb["id"]}","color":{wb["color"]},'
                        f'"room":"","peers":[{peer}]}}')
        await a.close()
        await b.close()

    run(go())


def test_newcomer_welcome_lists_peer_last_relayed_message(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        await a.send('{"x":1,"y":2}')
        await expect(a, relayed('"x":1,"y":2', wa))
        await a.send('{"x":120, "y":48.5}')
        last = relayed('"x":120,"y":48.5', wa)
        await expect(a, last)
        b, wb, text = await join_room(server.port)
        assert text == (f'{{"type":"welcome","id":"{wb["id"]}","color":{wb["color"]},'
                        f'"room":"","peers":[{last}]}}')
        await a.close()
        await b.close()

    run(go())


def test_welcome_lists_every_other_peer_and_not_self(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await b.send('{"x":5}')
        b_last = relayed('"x":5', wb)
        await expect(b, b_last)
        await expect(a, b_last)
        c, wc, text = await join_room(server.port)
        prefix = f'{{"type":"welcome","id":"{wc["id"]}","color":{wc["color"]},"room":"","peers":['
        assert text.startswith(prefix) and text.endswith("]}"), text
        peers = json.loads(text)["peers"]
        expected = [json.loads(f'{{"sender":"{wa["id"]}","color":{wa["color"]}}}'),
                    json.loads(b_last)]
        assert sorted(peers, key=json.dumps) == sorted(expected, key=json.dumps)
        # Each entry byte-for-byte, whatever the order.
        inner = text[len(prefix):-2]
        assert sorted(s.strip("{}") for s in inner.split("},{")) == sorted(
            s.strip("{}") for s in (f'{{"sender":"{wa["id"]}","color":{wa["color"]}}}', b_last))
        for ws in (a, b, c):
            await ws.close()

    run(go())


def test_long_last_message_is_snapshotted_as_sender_and_color_only(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        await a.send('{"x":1}')
        await expect(a, relayed('"x":1', wa))
        pad = "p" * 600  # relayed message well over the 512-byte snapshot bound
        await a.send(f'{{"pad":"{pad}"}}')
        await expect(a, relayed(f'"pad":"{pad}"', wa))
        b, wb, text = await join_room(server.port)
        peer = f'{{"sender":"{wa["id"]}","color":{wa["color"]}}}'
        assert text == (f'{{"type":"welcome","id":"{wb["id"]}","color":{wb["color"]},'
                        f'"room":"","peers":[{peer}]}}'), "a stale position outlived a newer message"
        await a.close()
        await b.close()

    run(go())


def test_snapshot_bound_is_512_bytes_of_relayed_message(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        fill = 512 - len(relayed('"pad":""', wa))
        at_bound = relayed(f'"pad":"{"p" * fill}"', wa)
        assert len(at_bound) == 512
        await a.send(f'{{"pad":"{"p" * fill}"}}')
        await expect(a, at_bound)
        b, wb, text = await join_room(server.port)
        assert json.loads(text)["peers"] == [json.loads(at_bound)], "512-byte message not kept"
        assert text.endswith(f'"peers":[{at_bound}]}}')
        await expect(a, join_text(wb))
        over = relayed(f'"pad":"{"p" * (fill + 1)}"', wa)
        await a.send(f'{{"pad":"{"p" * (fill + 1)}"}}')
        await expect(a, over)
        await expect(b, over)
        c, wc, text = await join_room(server.port)
        assert f'{{"sender":"{wa["id"]}","color":{wa["color"]}}}' in text, \
            "513-byte message should be snapshotted as sender and color only"
        assert "pad" not in text
        for ws in (a, b, c):
            await ws.close()

    run(go())


def test_welcome_does_not_list_echo_clients_and_they_get_no_room_messages(server):
    async def go():
        e = await ws_connect(server.port, "/echo")
        a, wa, text = await join_room(server.port)
        assert json.loads(text)["peers"] == []
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))  # nothing about the echo client came first
        await a.send('{"x":1}')
        await expect(a, relayed('"x":1', wa))
        await e.send("echo only")
        assert await recv(e) == "echo only", "an /echo client received room traffic"
        for ws in (a, b, e):
            await ws.close()

    run(go())


# ---------------------------------------------------------------------------------------------
# join and relay
# ---------------------------------------------------------------------------------------------


def test_join_is_sent_to_others_not_to_the_newcomer(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        c, wc, _ = await join_room(server.port)
        await expect(a, join_text(wc))
        await expect(b, join_text(wc))
        # The newcomer's first message after its welcome is a relay, not its own join.
        await c.send('{"k":0}')
        await expect(c, relayed('"k":0', wc))
        for ws in (a, b, c):
            await ws.close()

    run(go())


def test_message_is_relayed_to_everyone_including_sender(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await a.send('{"x":120,"y":48.5}')
        want = relayed('"x":120,"y":48.5', wa)
        await expect(a, want)
        await expect(b, want)
        await b.send('{"x":1,"y":2}')
        want = relayed('"x":1,"y":2', wb)
        await expect(a, want)
        await expect(b, want)
        await a.close()
        await b.close()

    run(go())


REWRITES = [
    # client sends -> members the server keeps (then appends sender and color)
    ('{"x":120,"y":48.5}', '"x":120,"y":48.5'),
    ('{"x":10, "y":2.50,"color":"red","sender":7}', '"x":10,"y":2.50'),
    ('{"sender":"evil","x":1,"color":999}', '"x":1'),
    ('{"send\\u0065r":"evil","col\\u006fr":1,"x":1}', '"x":1'),
    ('{"\\u0073ender":"evil","\\u0063olor":2}', ""),
    ('{"Sender":"kept","COLOR":3}', '"Sender":"kept","COLOR":3'),
    ('{"senders":1,"colors":2,"sender ":3}', '"senders":1,"colors":2,"sender ":3'),
    ('{"a":2.50,"b":1e3,"c":-0.0,"d":1E+2,"e":12.3e-4,"f":-7}',
     '"a":2.50,"b":1e3,"c":-0.0,"d":1E+2,"e":12.3e-4,"f":-7'),
    ('{ "x" : 1 ,\n\t"y" :2\r\n}', '"x":1,"y":2'),
    ('  {"x":1}  \n', '"x":1'),
    ('{"s":"a\\u00e9\\n\\"q\\"\\\\/"}', '"s":"a\\u00e9\\n\\"q\\"\\\\/"'),
    ('{"s":"é😀 raw"}', '"s":"é😀 raw"'),
    ('{"n":{"a": 1, "sender": [1, 2], "color":{ }},"arr":[ 1 ,{"sender":2} ]}',
     '"n":{"a": 1, "sender": [1, 2], "color":{ }},"arr":[ 1 ,{"sender":2} ]'),
    ('{"t":true,"f":false,"z":null}', '"t":true,"f":false,"z":null'),
    ('{"type":"cursor","x":3}', '"type":"cursor","x":3'),
    ('{"type":1}', '"type":1'),
    ('{"a":{"type":"leave"}}', '"a":{"type":"leave"}'),
    ('{}', ""),
    ('{"sender":"only"}', ""),
    ('{"color":1,"color":2,"x":0,"sender":3,"sender":4}', '"x":0'),
    ('{"x":1e999,"y":1.5E-3,"z":-0,"w":0.0}', '"x":1e999,"y":1.5E-3,"z":-0,"w":0.0'),
    ('{"s":"\\ud83d\\ude00","k\\"ey":"v"}', '"s":"\\ud83d\\ude00","k\\"ey":"v"'),
    ('{"deep":' + "[" * 300 + "]" * 300 + "}", '"deep":' + "[" * 300 + "]" * 300),
]


@pytest.mark.parametrize("sent,kept", REWRITES, ids=[r[0][:40] for r in REWRITES])
def test_relayed_message_keeps_members_byte_for_byte_and_sets_sender_and_color(server, sent, kept):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await a.send(sent)
        want = relayed(kept, wa)
        await expect(a, want)
        await expect(b, want)
        json.loads(want)  # what we expect is itself valid JSON
        await a.close()
        await b.close()

    run(go())


def test_fragmented_text_message_is_relayed_as_one(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        raw = RawWS.connect(server.port, "/ws")
        wr = json.loads(raw.recv_text())
        await expect(a, join_text(wr))
        raw.send_frame(OP_TEXT, b'{"x":', fin=False)
        raw.send_frame(OP_CONT, b'12,"y"', fin=False)
        raw.send_frame(OP_CONT, b':3}', fin=True)
        want = relayed('"x":12,"y":3', wr)
        await expect(a, want)
        assert raw.recv_text() == want
        raw.close()
        await expect(a, leave_text(wr))
        await a.close()

    run(go())


def test_message_of_512_tokens_once_rewritten_is_relayed(server):
    # object + key + array + 505 values = 508 tokens, and the server's sender and color make
    # 512: the most a relayed message may have, since other nodes check it again.
    zeros = ",".join(["0"] * 505)

    async def go():
        a, wa, _ = await join_room(server.port)
        await a.send(f'{{"a":[{zeros}]}}')
        await expect(a, relayed(f'"a":[{zeros}]', wa))
        await a.close()

    run(go())


def test_message_of_513_tokens_once_rewritten_closes_1009(server):
    zeros = ",".join(["0"] * 506)  # 509 tokens, 513 with sender and color
    run(refused(server.port, f'{{"a":[{zeros}]}}', 1009))


# ---------------------------------------------------------------------------------------------
# leave
# ---------------------------------------------------------------------------------------------


def test_leave_is_sent_when_a_client_closes_normally(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await b.close()
        assert b.close_code == 1000, "the server did not echo close 1000"
        await expect(a, leave_text(wb))
        # The room goes on: a's messages still come back.
        await a.send('{"x":9}')
        await expect(a, relayed('"x":9', wa))
        await a.close()

    run(go())


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_leave_is_sent_when_a_client_drops_tcp(server, how):
    async def go():
        a, wa, _ = await join_room(server.port)
        raw = RawWS.connect(server.port, "/ws")
        wr = json.loads(raw.recv_text())
        await expect(a, join_text(wr))
        if how == "fin":
            raw.close()
        else:
            raw.abort()
        await expect(a, leave_text(wr))
        await a.close()

    run(go())


def test_leave_is_sent_after_a_protocol_error(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        raw = RawWS.connect(server.port, "/ws")
        wr = json.loads(raw.recv_text())
        await expect(a, join_text(wr))
        raw.send_frame(OP_TEXT, b'{"x":1}', mask=False)
        code, _ = raw.expect_close()
        assert code == 1002
        raw.close()
        await expect(a, leave_text(wr))
        await a.close()

    run(go())


def test_leaver_no_longer_appears_in_welcome(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        b, wb, _ = await join_room(server.port)
        await expect(a, join_text(wb))
        await b.close()
        await expect(a, leave_text(wb))
        c, wc, text = await join_room(server.port)
        assert json.loads(text)["peers"] == [
            {"sender": wa["id"], "color": wa["color"]}], text
        await a.close()
        await c.close()

    run(go())


# ---------------------------------------------------------------------------------------------
# Refused messages: close code, reason, nothing relayed, the others see a leave
# ---------------------------------------------------------------------------------------------


async def refused(port, send, code, reason=None):
    """Client a sends a bad message; returns after checking a's close code (and reason), that
    b never saw the message and saw a's leave instead."""
    a, wa, _ = await join_room(port)
    b, wb, _ = await join_room(port)
    await expect(a, join_text(wb))
    await a.send(send)
    got_code, got_reason = await closed(a)
    assert got_code == code, f"sent {send!r}: close {got_code} {got_reason!r}, want {code}"
    if reason is not None:
        assert got_reason == reason, f"sent {send!r}: reason {got_reason!r}, want {reason!r}"
    await expect(b, leave_text(wa))
    await b.send('{"still":"here"}')
    await expect(b, relayed('"still":"here"', wb))
    await b.close()


INVALID_JSON = [
    "",
    "not json",
    '{"x":1',
    '{"x":1,}',
    "{'x':1}",
    '{"x":01}',
    '{"x":.5}',
    '{"x":1.}',
    '{"x":+1}',
    '{"x":NaN}',
    '{"x":Infinity}',
    '{"x":tru}',
    '{"x":nul}',
    '{"x":"\\q"}',
    '{"x":"\\u12"}',
    '{"x":"tab\there"}',
    '{"x":"nl\nhere"}',
    '{"x" 1}',
    '{"x":1 "y":2}',
    '{x:1}',
    '{"x":1}{"y":2}',
    '{"x":1} x',
    '{"x":1}]',
    '{"x":[1,2}',
    '{"x":[1,,2]}',
    '{"x":{"y":1}',
    '{1:2}',
    '{"x":1,"y"}',
    '{"x":-}',
    '{"x":-01}',
    '{"x":1e}',
    '{"x":0.0e+}',
    '{"x":"unterminated}',
    '{"x":[}',
    '{"x":{]}',
    '{"x":[1,2,]}',
    '{"x":"\\ud83d\\ude0"}',
    '{"x":1}\u0000',
]


@pytest.mark.parametrize("msg", INVALID_JSON)
def test_invalid_json_closes_1007_invalid_json(server, msg):
    run(refused(server.port, msg, 1007, "invalid JSON"))


@pytest.mark.parametrize("msg", ["[1,2]", '"str"', "42", "null", "true", "[]", '[{"x":1}]'])
def test_json_that_is_not_an_object_closes_1007(server, msg):
    run(refused(server.port, msg, 1007, "JSON is not an object"))


@pytest.mark.parametrize("msg", [
    '{"type":"welcome"}',
    '{"type":"join","sender":"x","color":1}',
    '{"type":"leave"}',
    '{"type":"error"}',
    '{"x":1,"type":"leave"}',
    '{ "type" : "join" }',
])
def test_reserved_type_closes_1008(server, msg):
    run(refused(server.port, msg, 1008, "reserved message type"))


@pytest.mark.parametrize("msg", [
    '{"type":"le\\u0061ve"}',
    '{"typ\\u0065":"join"}',
    '{"type":"cursor","type":"leave"}',
])
def test_reserved_type_disguised_by_escapes_or_duplicates_closes_1008(server, msg):
    # A browser's JSON.parse would read each of these as a server message: forgery.
    run(refused(server.port, msg, 1008, "reserved message type"))


def test_deep_nesting_over_512_tokens_closes_1009(server):
    run(refused(server.port, '{"a":' + "[" * 600 + "]" * 600 + "}", 1009))


def test_binary_message_closes_1003(server):
    run(refused(server.port, b'{"x":1}', 1003))


def test_message_with_513_tokens_closes_1009(server):
    zeros = ",".join(["0"] * 510)  # 513 tokens
    run(refused(server.port, f'{{"a":[{zeros}]}}', 1009))


def test_message_over_max_message_closes_1009(start_server):
    srv = start_server("--max-message", 1024)
    msg = '{"pad":"' + "q" * 1100 + '"}'
    run(refused(srv.port, msg, 1009))


def test_message_of_exactly_max_message_is_relayed(start_server):
    srv = start_server("--max-message", 1024)
    pad = "q" * (1024 - len('{"pad":""}'))
    msg = f'{{"pad":"{pad}"}}'
    assert len(msg) == 1024

    async def go():
        a, wa, _ = await join_room(srv.port)
        await a.send(msg)
        await expect(a, relayed(f'"pad":"{pad}"', wa))
        await a.close()

    run(go())


def test_message_after_a_refused_one_in_the_same_segment_is_never_relayed(server):
    async def go():
        a, wa, _ = await join_room(server.port)
        raw = RawWS.connect(server.port, "/ws")
        wr = json.loads(raw.recv_text())
        await expect(a, join_text(wr))
        raw.send_raw(build_frame(OP_TEXT, b"{bad") + build_frame(OP_TEXT, b'{"x":1}'))
        assert raw.expect_close() == (1007, "invalid JSON")
        raw.close()
        await expect(a, leave_text(wr))  # not the {"x":1} that followed the bad message
        await a.send('{"y":2}')
        await expect(a, relayed('"y":2', wa))
        await a.close()

    run(go())


def test_binary_message_over_raw_socket_closes_1003_with_frame_on_wire(server):
    raw = RawWS.connect(server.port, "/ws")
    try:
        raw.recv_text()
        raw.send_frame(OP_BINARY, b"\x01\x02")
        code, _ = raw.expect_close()
        assert code == 1003
    finally:
        raw.close()


def test_invalid_utf8_on_ws_closes_1007(server):
    raw = RawWS.connect(server.port, "/ws")
    try:
        raw.recv_text()
        raw.send_frame(OP_TEXT, b'{"x":"\xff"}')
        code, _ = raw.expect_close()
        assert code == 1007
    finally:
        raw.close()


def test_ping_on_ws_gets_pong_and_room_goes_on(server):
    raw = RawWS.connect(server.port, "/ws")
    try:
        w = json.loads(raw.recv_text())
        raw.send_frame(OP_PING, b"cursor?")
        f = raw.recv_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"cursor?")
        raw.send_text('{"x":1}')
        assert raw.recv_text() == relayed('"x":1', w)
    finally:
        raw.close()


def test_every_client_receives_every_message_in_a_busy_room(server):
    n = 20

    async def go():
        clients = [await join_room(server.port) for _ in range(n)]
        # Drain the joins each client saw (one per later arrival).
        for i, (ws, _, _) in enumerate(clients):
            for _, w, _ in clients[i + 1:]:
                await expect(ws, join_text(w))
        for i, (ws, _, _) in enumerate(clients):
            await ws.send(f'{{"i":{i}}}')
        want = {relayed(f'"i":{i}', w) for i, (_, w, _) in enumerate(clients)}
        for ws, _, _ in clients:
            got = {await recv(ws) for _ in range(n)}
            assert got == want
        for ws, _, _ in clients:
            await ws.close()

    run(go())


VANISH = {
    "mid-header": build_frame(OP_TEXT, b'{"x":1}')[:3],
    "mid-payload": build_frame(OP_TEXT, b'{"x":' + b"1" * 500 + b"}")[:100],
    "mid-fragmented-message": build_frame(OP_TEXT, b'{"x":', fin=False),
    "after-close-frame": build_frame(OP_CLOSE, b"\x03\xe8"),
}


@pytest.mark.parametrize("how", ["fin", "reset"])
@pytest.mark.parametrize("wire", VANISH.values(), ids=VANISH.keys())
def test_client_vanishing_mid_message_is_announced_and_nothing_relayed(server, wire, how):
    async def go():
        a, wa, _ = await join_room(server.port)
        raw = RawWS.connect(server.port, "/ws")
        wr = json.loads(raw.recv_text())
        await expect(a, join_text(wr))
        raw.send_raw(wire)
        if how == "fin":
            raw.close()
        else:
            raw.abort()
        await expect(a, leave_text(wr))
        await a.send('{"x":2}')
        await expect(a, relayed('"x":2', wa))
        await a.close()

    run(go())
