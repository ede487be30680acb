#!/usr/bin/python3
"""Writes the committed seed corpora: test/fuzz/corpus/{http,ws,json,cluster,config,target,token,cond}/.

Seeds are where the fuzzer starts: a few dozen small, meaningful inputs per target, each one
reaching a different part of the code, so that the first minutes of fuzzing are not spent
rediscovering what a request or a masked frame looks like. They are generated, not
hand-edited binaries, so each one is readable here with the reason it exists.

Run it from anywhere: test/fuzz/seeds.py. It rewrites the eight directories from scratch
(files the fuzzer found and we kept on purpose live in test/fuzz/regressions/, not here).
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- HTTP: request heads, as a client sends them --------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample key


def req(*lines, end="\r\n\r\n"):
    return ("\r\n".join(lines) + end).encode("latin-1")


HTTP = {
    # What browsers and tools really send.
    "get_root": req("GET / HTTP/1.1", "Host: localhost:7071"),
    "get_browser": req(
        "GET /index.js?v=3 HTTP/1.1",
        "Host: localhost:7071",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Accept: */*",
        "Accept-Language: en-US,en;q=0.5",
        "Accept-Encoding: gzip, deflate, br",
        "Connection: keep-alive",
        "Referer: http://localhost:7071/",
        "Sec-Fetch-Dest: script",
    ),
    "head_style": req("HEAD /style.css HTTP/1.1", "Host: a", "Connection: close"),
    "get_http10": req("GET /favicon.svg HTTP/1.0"),
    "get_http10_keepalive": req("GET / HTTP/1.0", "Connection: keep-alive", "Host: a"),
    "curl": req("GET /index.html HTTP/1.1", "Host: 127.0.0.1:7071", "User-Agent: curl/7.88.1",
                "Accept: */*"),
    # WebSocket handshakes: RFC 6455 §1.2, Chrome's, Firefox's list form, and broken ones.
    "upgrade_rfc": req("GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket",
                       "Connection: Upgrade", "Sec-WebSocket-Key: " + KEY,
                       "Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
                       "Sec-WebSocket-Version: 13"),
    "upgrade_chrome": req("GET /ws HTTP/1.1", "Host: localhost:7071", "Connection: Upgrade",
                          "Pragma: no-cache", "Cache-Control: no-cache",
                          "User-Agent: Mozilla/5.0 Chrome/126.0.0.0 Safari/537.36",
                          "Upgrade: websocket", "Origin: http://localhost:7071",
                          "Sec-WebSocket-Version: 13",
                          "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
                          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
    "upgrade_firefox": req("GET /echo HTTP/1.1", "Host: localhost:7071",
                           "Connection: keep-alive, Upgrade", "Upgrade: WebSocket",
                           "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + KEY),
    "upgrade_version8": req("GET /ws HTTP/1.1", "Host: a", "Upgrade: websocket",
                            "Connection: Upgrade", "Sec-WebSocket-Version: 8",
                            "Sec-WebSocket-Key: " + KEY),
    "upgrade_two_keys": req("GET /ws HTTP/1.1", "Host: a", "Upgrade: websocket",
                            "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                            "Sec-WebSocket-Key: " + KEY, "Sec-WebSocket-Key: " + KEY),
    "upgrade_short_key": req("GET /ws HTTP/1.1", "Host: a", "Upgrade: websocket",
                             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                             "Sec-WebSocket-Key: c2hvcnQ="),
    "upgrade_post_body": req("POST /ws HTTP/1.1", "Host: a", "Upgrade: websocket",
                             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                             "Sec-WebSocket-Key: " + KEY, "Content-Length: 5") + b"hello",
    # Origin (RFC 6455 §10.2, upgrade_origin_allowed()): same host, another site, two of them.
    "origin_same_host": req("GET /ws HTTP/1.1", "Host: localhost:7071", "Upgrade: websocket",
                            "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                            "Sec-WebSocket-Key: " + KEY, "Origin: http://LOCALHOST:7071"),
    "origin_other_site": req("GET /ws HTTP/1.1", "Host: localhost:7071", "Upgrade: websocket",
                             "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                             "Sec-WebSocket-Key: " + KEY, "Origin: https://evil.example"),
    "origin_twice": req("GET /ws HTTP/1.1", "Host: a", "Origin: http://a", "Origin: http://b"),
    "origin_null": req("GET /ws HTTP/1.1", "Host: a", "Origin: null"),
    # RFC 6454 §4: only http and https origins are ours, the scheme in any case.
    "origin_foreign_scheme": req("GET /ws HTTP/1.1", "Host: localhost:7071",
                                 "Origin: evil://localhost:7071"),
    "origin_upper_scheme": req("GET /ws HTTP/1.1", "Host: localhost:7071",
                               "Origin: HTTPS://localhost:7071"),
    # Pipelining, and the one leading CRLF RFC 9112 §2.2 lets us skip.
    "pipelined": req("GET / HTTP/1.1", "Host: a") + req("GET /index.js HTTP/1.1", "Host: a")
    + req("HEAD /style.css HTTP/1.1", "Host: a", "Connection: close"),
    "leading_crlf": b"\r\n" + req("GET / HTTP/1.1", "Host: a"),
    "upgrade_then_frame": req("GET /echo HTTP/1.1", "Host: a", "Upgrade: websocket",
                              "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                              "Sec-WebSocket-Key: " + KEY)
    + bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]),
    # Framing: the request-smuggling shapes RFC 9112 §6 and §11.2 warn about.
    "te_and_cl": req("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked",
                     "Content-Length: 4") + b"0\r\n\r\n",
    "cl_list": req("POST / HTTP/1.1", "Host: a", "Content-Length: 42, 42"),
    "cl_conflict": req("POST / HTTP/1.1", "Host: a", "Content-Length: 1", "Content-Length: 2"),
    "cl_huge": req("POST / HTTP/1.1", "Host: a", "Content-Length: 18446744073709551616"),
    "te_http10": req("GET / HTTP/1.0", "Transfer-Encoding: chunked"),
    "obs_fold": req("GET / HTTP/1.1", "Host: a", "X-Folded: one", " two"),
    "space_before_colon": req("GET / HTTP/1.1", "Host : a"),
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare_cr": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    "no_host": req("GET / HTTP/1.1"),
    "two_hosts": req("GET / HTTP/1.1", "Host: a", "Host: b"),
    "http2_version": req("GET / HTTP/2.0", "Host: a"),
    "lowercase_version": req("GET / http/1.1", "Host: a"),
    "ctl_in_value": req("GET / HTTP/1.1", "Host: a", "X-Bad: a\x01b"),
    "obs_text_value": req("GET / HTTP/1.1", "Host: a", "X-Latin: caf\xe9"),
    "incomplete": b"GET / HTTP/1.1\r\nHost: a\r\n",
    "too_many_headers": req("GET / HTTP/1.1", "Host: a", *["X-H%d: %d" % (i, i) for i in range(64)]),
    "big_header": req("GET / HTTP/1.1", "Host: a", "Cookie: " + "c" * 8150),
    # Targets www_resolve() must refuse or normalise.
    "target_dotdot": req("GET /../../etc/passwd HTTP/1.1", "Host: a"),
    "target_encoded_dotdot": req("GET /%2e%2e/%2E%2e/etc/passwd HTTP/1.1", "Host: a"),
    "target_encoded_slash": req("GET /a%2fb HTTP/1.1", "Host: a"),
    "target_dotfile": req("GET /.git/config HTTP/1.1", "Host: a"),
    "target_normalise": req("GET //a/./b//c/?q=1#frag HTTP/1.1", "Host: a"),
    "target_absolute": req("GET http://a/index.html HTTP/1.1", "Host: a"),
    "target_asterisk": req("OPTIONS * HTTP/1.1", "Host: a"),
    "target_utf8": req("GET /caf%C3%A9/na%c3%afve.txt HTTP/1.1", "Host: a"),
    # Bare targets (fuzz_http.c resolves any input that starts with '/').
    "raw_target_nul": b"/a%00b",
    "raw_target_backslash": b"/a/..%5c..%5cwindows",
    "raw_target_dir": b"/img/",
    "raw_target_dots": b"/a..b/c.d./...",
}

# ---- WebSocket: client byte streams after the 101 ------------------------------------------

MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 §5.7's key


def frame(op, payload=b"", fin=True, mask=MASK, rsv=0, length=None, form=None):
    """One client frame: FIN/RSV/opcode, MASK, the length in its shortest form (or `form`:
    126/127 to force a longer one), the key, the masked payload."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    m = 0x80 if mask is not None else 0
    if form is None:
        form = n if n <= 125 else 126 if n <= 0xFFFF else 127
    if form <= 125:
        hdr = bytes([b0, m | n])
    elif form == 126:
        hdr = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return hdr + payload
    return hdr + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


TEXT, BIN, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def close(code=None, reason=b""):
    return frame(CLOSE, b"" if code is None else struct.pack(">H", code) + reason)


CURSOR = b'{"x":120,"y":48}'

WS = {
    # RFC 6455 §5.7, masked as a client must send them.
    "rfc_hello": frame(TEXT, b"Hello"),
    "rfc_fragmented": frame(TEXT, b"Hel", fin=False) + frame(CONT, b"lo"),
    "rfc_ping": frame(PING, b"Hello"),
    "rfc_pong": frame(PONG, b"Hello"),
    "rfc_binary_256": frame(BIN, bytes(range(256))),
    "rfc_binary_64k_header": frame(BIN, b"\x00" * 8, length=65536),  # 1009 at the header
    "rfc_unmasked_hello": frame(TEXT, b"Hello", mask=None),  # §5.1: 1002
    # The relay's traffic.
    "cursor": frame(TEXT, CURSOR),
    "cursors_pipelined": b"".join(frame(TEXT, b'{"x":%d,"y":%d}' % (i, 2 * i)) for i in range(8)),
    "cursor_then_close": frame(TEXT, CURSOR) + close(1000, b"bye"),
    "fragmented_with_pings": frame(TEXT, b'{"x":', fin=False) + frame(PING, b"1")
    + frame(CONT, b"1,", fin=False) + frame(PONG) + frame(CONT, b'"y":2}'),
    "fragmented_empty": frame(BIN, b"", fin=False) + frame(CONT, b"", fin=False) + frame(CONT),
    "utf8_split_across_fragments": frame(TEXT, "€".encode()[:1], fin=False)
    + frame(CONT, "€".encode()[1:2], fin=False) + frame(CONT, "€".encode()[2:] + "😀".encode()),
    "utf8_truncated_at_fin": frame(TEXT, b"ok\xe2\x82", fin=False) + frame(CONT, b""),
    "utf8_overlong": frame(TEXT, b"\xc0\xaf"),
    "utf8_surrogate": frame(TEXT, b"\xed\xa0\x80"),
    "utf8_past_10ffff": frame(TEXT, b"\xf4\x90\x80\x80"),
    "text_126_form": frame(TEXT, b"a" * 200),
    "binary_4096": frame(BIN, b"\xab" * 4096),
    "binary_4097": frame(BIN, b"\xab" * 4097),  # one past the 4 KiB max_message
    "fragments_over_limit": frame(BIN, b"x" * 3000, fin=False) + frame(CONT, b"y" * 1200),
    # Close frames (§5.5.1, §7.4).
    "close_empty": close(),
    "close_1000_reason": close(1000, "au revoir, à bientôt".encode()),
    "close_one_byte": frame(CLOSE, b"\x03"),
    "close_code_999": close(999),
    "close_code_1005": close(1005),
    "close_code_3000": close(3000, b"app"),
    "close_bad_reason": close(1001, b"\xff"),
    "data_after_close": close(1000) + frame(TEXT, b"ignored"),
    # Header errors (§5.2, §5.4, §5.5).
    "rsv1_set": frame(TEXT, b"x", rsv=4),
    "reserved_opcode": frame(0x3, b"x"),
    "reserved_control_opcode": frame(0xB),
    "continuation_first": frame(CONT, b"x"),
    "interleaved": frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),
    "ping_fragmented": frame(PING, b"x", fin=False),
    "ping_126": frame(PING, b"p" * 126),
    "length_not_minimal_16": frame(TEXT, b"short", form=126),
    "length_not_minimal_64": frame(TEXT, b"a" * 200, form=127),
    "length_top_bit": bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 63) + MASK,
}

# ---- JSON: /ws message texts ---------------------------------------------------------------

JSON = {
    "cursor": b'{"x":120,"y":48}',
    "cursor_floats": b'{"x":0.5,"y":-12.25e-1,"buttons":1}',
    "spoofed_sender_color": b'{"x":1,"sender":"someone-else","color":"red","y":2}',
    "escaped_sender_key": b'{"send\\u0065r":"x","col\\u006Fr":7,"x":1}',
    "duplicate_keys": b'{"x":1,"x":2,"color":1,"color":2}',
    "type_welcome": b'{"type":"welcome","peers":[]}',
    "type_join_escaped": b'{"typ\\u0065":"j\\u006fin"}',
    "type_leave_later": b'{"x":1,"type":"leave"}',
    "type_error": b'{"type":"error"}',
    "type_number": b'{"type":1}',
    "type_other": b'{"type":"chat","text":"hi"}',
    "nested": b'{"a":{"b":[1,2,{"c":null}],"d":{}},"e":[[],[[]]],"sender":{"nested":true}}',
    "whitespace": b' \t\r\n{ "x" : 1 ,\n "y" :\t[ 1 , 2 ] } \n',
    "empty_object": b"{}",
    "escapes": b'{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00"}',
    "lone_surrogate": b'{"s":"\\uD800","t":"\\uDC00x"}',
    "utf8_raw": '{"name":"Zoë 😀","x":1}'.encode(),
    "numbers": b'{"a":0,"b":-0,"c":1e10,"d":1E+2,"e":-1.5e-3,"f":12345678901234567890}',
    "literals": b'{"t":true,"f":false,"n":null}',
    "long_string": b'{"s":"' + b"x" * 1000 + b'"}',
    "many_tokens": b'{"a":[' + b",".join(b"1" for _ in range(600)) + b"]}",
    "tokens_at_limit": b'{"a":[' + b",".join(b"1" for _ in range(509)) + b"]}",
    "deep": b'{"a":' + b"[" * 300 + b"]" * 300 + b"}",
    # Valid JSON that is not an object.
    "array": b"[1,2,3]",
    "string": b'"hello"',
    "number": b" 42 ",
    "true": b"true",
    "null": b"null",
    # Not JSON (json.c's list of what strict jsmn lets through, and more).
    "bad_literal": b'{"a":tru}',
    "leading_zero": b'{"a":01}',
    "two_dots": b'{"a":1.2.3}',
    "minus_only": b'{"a":-}',
    "raw_tab": b'{"a":"\t"}',
    "trailing_comma": b'{"a":1,}',
    "missing_value": b'{"a"}',
    "double_colon": b'{"a"::1}',
    "missing_comma": b'{"a":1 "b":2}',
    "two_objects": b"{} {}",
    "nul_then_garbage": b"{}\x00garbage",
    "bad_escape": b'{"a":"\\x"}',
    "short_unicode": b'{"a":"\\u12"}',
    "unquoted_key": b"{a:1}",
    "unclosed": b'{"a":[1,2}',
    "empty": b"",
    "whitespace_only": b" \n",
}


# ---- Cluster: what nodes publish on the Redis channel (include/cluster.h) -------------------

NODE = b"0123456789abcdef"
UUID_A = b"123e4567-e89b-42d3-a456-426614174000"
UUID_B = b"9f1c2d3e-4b5a-4c6d-8e7f-001122334455"
RELAYED = b'{"x":0.5,"y":0.25,"sender":"' + UUID_A + b'","color":210}'
ROOM_64 = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"[:64]


def env(kind, rest=b""):
    return b"wsr2 " + NODE + b" " + kind + rest


def client(kind, room, uuid, color, json):
    """JOIN, MSG or LEAVE: "<kind> <room> <sender> <color> <json>" (room as on the wire)."""
    return env(kind, b" " + room + b" " + uuid + b" " + color + b" " + json)


def record(uuid, color, json):
    return b"\n" + uuid + b" " + color + b" " + str(len(json)).encode() + b":" + json


JOIN_A = b'{"type":"join","sender":"' + UUID_A + b'","color":210}'
LEAVE_A = b'{"type":"leave","sender":"' + UUID_A + b'"}'

CLUSTER = {
    # Every kind, as a node publishes it, in the default room and in named ones.
    "hb": env(b"hb"),
    "hello": env(b"hello"),
    "bye": env(b"bye"),
    "join": client(b"join", b"/", UUID_A, b"210", JOIN_A),
    "join_room": client(b"join", b"/lobby", UUID_A, b"210", JOIN_A),
    "msg": client(b"msg", b"/", UUID_A, b"210", RELAYED),
    "msg_room": client(b"msg", b"/Team-3.b_c~", UUID_A, b"210", RELAYED),
    "msg_room_64": client(b"msg", b"/" + ROOM_64, UUID_A, b"210", RELAYED),
    "msg_room_dots": client(b"msg", b"/...", UUID_A, b"210", RELAYED),  # a name: not . or ..
    "leave": client(b"leave", b"/", UUID_A, b"210", LEAVE_A),
    "leave_room": client(b"leave", b"/a", UUID_A, b"210", LEAVE_A),
    "state_empty": env(b"state", b" / 0"),
    "state_empty_room": env(b"state", b" /lobby 0"),
    "state_two": env(b"state", b" / 2" + record(UUID_A, b"210", RELAYED) + record(UUID_B, b"0", b"")),
    "state_room_two": env(b"state", b" /lobby 2" + record(UUID_A, b"210", RELAYED) +
                          record(UUID_B, b"0", b"")),
    "state_room_three": env(b"state", b" /" + ROOM_64 + b" 3" + record(UUID_A, b"210", RELAYED) +
                            record(UUID_B, b"7", b'{"type":"x","n":[1,2,3]}') +
                            record(b"00000000-0000-4000-8000-000000000001", b"359", b"")),
    "state_same_twice": env(b"state", b" /x 2" + record(UUID_A, b"1", b"") + record(UUID_A, b"2", b"")),
    "msg_utf8": client(b"msg", b"/", UUID_B, b"359", '{"name":"Zoë ✓"}'.encode()),
    # Refused: each breaks one rule.
    "foreign_text": b"hello from some other program",
    "old_magic_hb": b"wsr1 " + NODE + b" hb",  # issue 5's envelope: an old node, ignored
    "old_magic_msg": b"wsr1 " + NODE + b" msg " + UUID_A + b" 210 " + RELAYED,
    "bad_magic": b"wsr3 " + NODE + b" hb",
    "upper_node": b"wsr2 0123456789ABCDEF hb",
    "short_node": b"wsr2 0123 hb",
    "unknown_kind": env(b"hug"),
    "hb_trailing": env(b"hb", b" "),
    "hb_room": env(b"hb", b" /"),
    "room_missing": env(b"msg", b" " + UUID_A + b" 210 " + RELAYED),
    "room_no_slash": client(b"msg", b"lobby", UUID_A, b"210", RELAYED),
    "room_65": client(b"msg", b"/" + ROOM_64 + b"x", UUID_A, b"210", RELAYED),
    "room_dot": client(b"join", b"/.", UUID_A, b"210", JOIN_A),
    "room_dotdot": client(b"leave", b"/..", UUID_A, b"210", LEAVE_A),
    "room_two_slashes": client(b"msg", b"//x", UUID_A, b"210", RELAYED),
    "room_percent": client(b"msg", b"/%41", UUID_A, b"210", RELAYED),
    "room_space": client(b"msg", b"/a b", UUID_A, b"210", RELAYED),
    "room_nul": client(b"msg", b"/a\x00b", UUID_A, b"210", RELAYED),
    "room_utf8": client(b"msg", "/é".encode(), UUID_A, b"210", RELAYED),
    "state_room_missing": env(b"state", b" 1" + record(UUID_A, b"210", RELAYED)),
    "state_room_bad": env(b"state", b" /.. 0"),
    "color_360": client(b"msg", b"/", UUID_A, b"360", RELAYED),
    "color_leading_zero": client(b"msg", b"/", UUID_A, b"07", RELAYED),
    "upper_uuid": client(b"msg", b"/", UUID_A.upper(), b"210", RELAYED),
    "json_array": client(b"msg", b"/", UUID_A, b"210", b"[1,2]"),
    "json_bad_utf8": client(b"msg", b"/", UUID_A, b"210", b'{"a":"\xc3\x28"}'),
    "state_count_too_big": env(b"state", b" / 3" + record(UUID_A, b"210", RELAYED)),
    "state_length_past_end": env(b"state", b" / 1\n" + UUID_A + b" 210 999:{}"),
    "state_trailing": env(b"state", b" /a 1" + record(UUID_A, b"210", b"{}") + b"x"),
}


# ---- Config: --metrics-allow values, and NUL-separated command lines (test/fuzz/fuzz_config.c)


def argv(*args):
    """A command line for fuzz_config: its arguments separated by NUL bytes."""
    return b"\0".join(a.encode() for a in args)


CONFIG = {
    # --metrics-allow values that parse: the default, "any", each form of entry.
    "default": b"127.0.0.0/8,::1",
    "any": b"any",
    "v4_prefixes": b"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16",
    "v4_bare": b"192.0.2.7",
    "v4_all": b"0.0.0.0/0",
    "v6_prefixes": b"fd00::/8,fe80::/10,2001:db8::/32",
    "v6_upper": b"2001:DB8:0:0:0:0:0:1",
    "v6_all": b"::/0",
    "v6_mapped": b"::ffff:10.0.0.0/104,::ffff:127.0.0.1",
    "odd_bits": b"10.128.0.0/9,192.168.0.0/23,fe80::/10",
    "mixed": b"127.0.0.1,::1,10.0.0.0/8,fd12:3456::/32",
    "at_the_cap": ",".join(f"10.{i}.0.0/16" for i in range(32)).encode(),
    # Refused: each breaks one rule.
    "over_the_cap": ",".join(f"10.{i}.0.0/16" for i in range(33)).encode(),
    "bits_33": b"10.0.0.0/33",
    "bits_129": b"::/129",
    "bits_missing": b"10.0.0.0/",
    "bits_leading_zero": b"10.0.0.0/08",
    "host_bits_v4": b"10.0.0.1/8",
    "host_bits_v6": b"fe80::1/10",
    "space_after_comma": b"10.0.0.0/8, ::1",
    "empty_entry": b"10.0.0.0/8,,::1",
    "trailing_comma": b"10.0.0.0/8,",
    "any_in_list": b"any,::1",
    "name": b"localhost",
    "short_v4": b"10.0.0/8",
    "zone_id": b"fe80::1%eth0",
    "garbage": b"\xff\x00/\x7f",
    # Whole command lines: each flag once, in both forms.
    "argv_every_flag": argv("--host", "::", "--port", "0", "--www", "/tmp/www", "--max-clients",
                            "16", "--max-message", "1K", "--max-buffer", "64K", "--max-rate", "0",
                            "--handshake-timeout", "500ms", "--ping-interval", "2s",
                            "--allow-origin", "https://a.example, http://b.example:8080",
                            "--metrics-allow", "10.0.0.0/8,::1", "--redis-channel", "room"),
    "argv_equals": argv("--metrics-allow=any", "--allow-origin=*", "--port=7071", "--quiet"),
    "argv_redis": argv("--redis", "redis://user:p%40ss@[::1]:6380/2"),
    "argv_bad_origin": argv("--allow-origin", "evil://a.example"),
    "argv_buffer_too_small": argv("--max-message", "64K", "--max-buffer", "16K"),
    "argv_help": argv("--help"),
    # Whole --config files (step 6 reads every input as one): good, then one per refusal.
    "file_every_kind": b"# wsrelay.conf\n\nhost = 127.0.0.1\nport=8080\r\n\twww\t=\t/srv/w #1 \n"
                       b"max-message = 1K\nhandshake-timeout = 500ms\nmetrics-allow = any\n"
                       b"allow-origin = https://a.example\nlog-format = json\nquiet = true\n"
                       b"token-secret-file = /etc/wsrelay/secret",
    "file_bom": b"\xef\xbb\xbfport = 1\n",
    "file_unknown": b"prot = 1\n",
    "file_repeated": b"port = 1\nport = 2\n",
    "file_no_equals": b"port 1\n",
    "file_config": b"config = x\n",
    "file_bool_yes": b"verbose = yes\n",
    "file_nul": b"host = a\x00b\n",
    "file_not_utf8": b"host = caf\xe9\n",
    "file_control": b"host = a\x1b[31m\n",
    "file_long_line": b"host = " + b"x" * 4100 + b"\n",
    "file_levels": b"quiet = true\nverbose = true\n",
}


# ---- Logjson: log lines' bodies as log_at() formats them (test/fuzz/fuzz_logjson.c) ---------

LOGJSON = {
    "listening": b'host=127.0.0.1 port=7071 tls=off www="/srv/my www" max_clients=1024 "listening"',
    "closed": b'conn=17 peer=127.0.0.1:50412 route=ws close=1002 "unmasked frame"',
    "escaped_file": b'conn=9 status=200 file="a b\\x22 status\\x3d200 x" "file served"',
    "utf8_escaped": b'conn=1 file=caf\\xc3\\xa9 "file served"',
    "bad_utf8_escaped": b'conn=1 file=\\xff\\xfe\\xc0\\xaf "file served"',
    "controls_escaped": b'conn=1 file=\\x1b[31m\\x00\\x7f "x"',
    "phrase_only": b'"out of file descriptors: shedding connections"',
    "numbers": b"a=0 b=007 c=123456789012345 d=1234567890123456 e=-1 \"n\"",
    "cut": b'conn=1 file="aaaaaaaa',
    "no_phrase": b"conn=1 peer=x",
    "raw_hostile": b'conn=1 x="\x00\x01\xff" "a\\"b\n\r"',
    "empty": b"",
}


# ---- Target: request targets as http.c hands them to target_parse() (test/fuzz/fuzz_target.c)
# fuzz_target also parses "/ws/" + input and "/r/" + input, so a bare name is a seed too.

TARGET = {
    # Each route, as the page and tools ask for it.
    "ws": b"/ws",
    "ws_slash": b"/ws/",
    "ws_room": b"/ws/lobby",
    "ws_room_query": b"/ws/team-2.a_b~c?v=1",
    "ws_query": b"/ws?x",
    "page": b"/r/lobby",
    "page_query": b"/r/lobby?name=Zo%C3%AB",
    "echo": b"/echo",
    "healthz": b"/healthz",
    "metrics_query": b"/metrics?x",
    "root": b"/",
    "file": b"/index.js?v=3",
    "room_64": b"/ws/" + b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
    "three_dots": b"/r/...",
    "name_only": b"Room-1",
    # Near misses that are files.
    "wsx": b"/wsx",
    "r_alone": b"/r",
    "echo_slash": b"/echo/",
    "upper_ws": b"/WS/x",
    "ws_fragment": b"/ws#x",
    # Refused: not origin-form.
    "empty": b"",
    "asterisk": b"*",
    "absolute": b"http://a/ws",
    # Refused: each breaks one rule of the room name.
    "room_empty": b"/r/",
    "room_65": b"/ws/" + b"a" * 65,
    "room_dot": b"/ws/.",
    "room_dotdot": b"/r/..",
    "room_two_segments": b"/ws/a/b",
    "room_trailing_slash": b"/ws/a/",
    "room_empty_segment": b"/ws//x",
    "room_percent": b"/ws/%41",
    "room_fragment": b"/ws/a#b",
    "room_nul": b"/ws/a\x00b",
    "room_utf8": "/r/café".encode(),
    "room_space": b"/r/a b",
}


# ---- Token: room tokens (test/fuzz/fuzz_token.c) ---------------------------------------------
# fuzz_token signs "header NUL claims NUL room" itself, so most seeds are JSON in that shape;
# a few are whole tokens, base64url text and queries, for its other two readings.

H = b'{"alg":"HS256","typ":"JWT"}'


def tok(header, claims, room=b""):
    return header + b"\x00" + claims + b"\x00" + room


TOKEN = {
    "ok": tok(H, b'{"exp":1800000100,"room":"doc"}', b"doc"),
    "ok_default_room": tok(b'{"alg":"HS256"}', b'{"exp":1800000100,"room":""}'),
    "ok_any_named": tok(H, b'{"exp":1800000100,"nbf":1799999999,"room":"*","name":"Ann \\"A\\" '
                        b'\\u00e9","color":200,"iat":1}', b"x"),
    "claims_only": b'{"exp":1800000100,"room":"","name":"n"}',
    "alg_none": tok(b'{"alg":"none"}', b'{"exp":1800000100,"room":"a"}', b"a"),
    "crit": tok(b'{"alg":"HS256","crit":["b64"],"b64":false}', b'{"exp":1800000100,"room":"a"}',
                b"a"),
    "duplicate": tok(H, b'{"exp":1800000100,"room":"b","r\\u006fom":"a"}', b"a"),
    "expired": tok(H, b'{"exp":1800000000,"room":"a"}', b"a"),
    "not_yet": tok(H, b'{"exp":1800000100,"nbf":1800000001,"room":"a"}', b"a"),
    "fraction": tok(H, b'{"exp":1800000100.5,"room":"a"}', b"a"),
    "name_control": tok(H, b'{"exp":1800000100,"room":"a","name":"a\\u0007"}', b"a"),
    "name_surrogates": tok(H, b'{"exp":1800000100,"room":"a","name":"\\ud83d\\ude00\\ud800"}',
                           b"a"),
    "color_big": tok(H, b'{"exp":1800000100,"room":"a","color":360}', b"a"),
    "nested": tok(H, b'{"exp":1800000100,"room":{"a":["b",{"c":null}]}}', b"a"),
    # RFC 7515 §A.1's token, whole (its key is not the target's: a signature refusal).
    "rfc7515_a1": b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMD"
                  b"A4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92"
                  b"K27uhbUJU1p1r_wW1gFWFOEjXk",
    "b64_vectors": b"Zm9vYmFy",
    "b64_tail": b"Zm9vYg",
    "query": b"v=1&token=a.b.c&token=d",
}


# ---- Cond: header values for conditional requests and Accept-Encoding (test/fuzz/fuzz_cond.c)
# fuzz_cond reads the whole input as a date, a tag list and an Accept-Encoding value, and its
# NUL-separated pieces as the precondition fields of one request.

COND = {
    # RFC 9110 §5.6.7's three forms of one instant, and the edges of what they can spell.
    "date_imf": b"Sun, 06 Nov 1994 08:49:37 GMT",
    "date_rfc850": b"Sunday, 06-Nov-94 08:49:37 GMT",
    "date_asctime": b"Sun Nov  6 08:49:37 1994",
    "date_leap_day": b"Tue, 29 Feb 2000 00:00:00 GMT",
    "date_leap_second": b"Fri, 31 Dec 9999 23:59:60 GMT",
    "date_wrong_weekday": b"Mon, 06 Nov 1994 08:49:37 GMT",
    "date_huge_year": b"Sun, 06 Nov 99999999999 08:49:37 GMT",
    # Entity-tag lists: ours, weak, "*", a comma inside quotes, junk after a tag.
    "etag_ours": b'"2ebc98a1.75bcd15-2fbe"',
    "etag_weak_list": b'W/"x", "2ebc98a1.75bcd15-2fbe-gz" , W/"2ebc98a1.75bcd15-2fbe"',
    "etag_star": b"*",
    "etag_comma": b'"a,b", "c"',
    "etag_junk": b'"a" x, "b"',
    "etag_unquoted": b"2ebc98a1.75bcd15-2fbe",
    # Accept-Encoding as browsers send it, and with weights, stars and broken q values.
    "ae_chrome": b"gzip, deflate, br, zstd",
    "ae_weights": b"br;q=0.5, gzip;q=0.8, identity;q=0.1, *;q=0",
    "ae_identity_refused": b"gzip;q=1.000, identity;q=0",
    "ae_broken_q": b"gzip;q=1.5, br;q=.5, x-gzip;Q=0.0001, *;q=",
    "ae_star": b"*;q=0.3, gzip;q=0",
    # Several fields: If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since.
    "fields": b'"2ebc98a1.75bcd15-2fbe"\x00Sun, 06 Nov 1994 08:49:37 GMT\x00*\x00'
              b"Sunday, 06-Nov-94 08:49:37 GMT",
}


def write(name, files):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
    print("%s: %d seeds, %d bytes" % (d, len(files), sum(len(v) for v in files.values())))


if __name__ == "__main__":
    write("http", HTTP)
    write("ws", WS)
    write("json", JSON)
    write("cluster", CLUSTER)
    write("config", CONFIG)
    write("target", TARGET)
    write("logjson", LOGJSON)
    write("token", TOKEN)
    write("cond", COND)
