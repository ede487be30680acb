"""Latest position wins (issue 12), judged from the outside against docs/protocol.md:
"Latest position wins", "count — how many are in the room", "Big rooms: --roster-max" and
"The wsrelay.batch subprotocol".

  - Negotiation (RFC 6455 §4.1, §4.2.2 step 5.4): a /ws handshake offering `wsrelay.batch`
    (alone, in a comma-separated list, or in a second Sec-WebSocket-Protocol field) gets it
    echoed in exactly one field of the 101; the offered values are compared exactly
    (case-sensitive). Offering only other values gets a 101 with no Sec-WebSocket-Protocol
    and the seed protocol. /echo picks no subprotocol.
  - A wsrelay.batch client gets, for each write, one text frame holding a non-empty JSON
    array of the seed protocol's objects, byte for byte, plus `count` messages and a
    welcome carrying "count". A seed client gets exactly the original demo's bytes.
  - "Between two writes to a client, at most one message per sender is waiting for it, and
    it is that sender's latest": observers see a subsequence of a sender's messages that
    ends with its last one, never an older after a newer. Server messages are never dropped
    or reordered, whoever falls behind.
  - --roster-max, --send-interval: see their chapters.

Chapters: helpers (a raw client that speaks both protocols; a bracket-aware array splitter)
- negotiation - batch frames - seed bytes - final state - coalescing - a stalled reader -
--roster-max - the join storm - --send-interval - hostile input.

Bounds: every wait is bounded (conftest's TIMEOUT unless said otherwise); no test asserts
speed. The one loose count (--send-interval: 10 moves over ~100 ms reach an observer as
fewer than 10 messages) holds for any interval of 50 ms however slow the machine: at most
one write per interval means at most 3 writes in 100 ms plus the one after the last move.
The join storm (2,000 clients) is marked `storm` (deselect with `-m "not storm"`); it runs
in `make test`.
"""

import asyncio
import json
import os
import resource
import selectors
import socket
import struct
import threading
import time

import pytest

from conftest import (
    HOST,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    SANITIZED,
    TIMEOUT,
    HttpConn,
    RawWS,
    accept_for,
    build_frame,
    check_close_frame,
    get,
    handshake_request,
    join_text,
    leave_text,
    new_key,
    relayed,
    run,
    run_cli,
    scrape,
    scrape_until,
)

BATCH = "wsrelay.batch"

# Many messages from one address: the per-client and per-address limits would drop or refuse
# some, and they are not the subject here (test_rate.py, test_connect_rate.py are).
UNLIMITED = ("--max-connect-rate", "0", "--max-rate", "0", "--max-byte-rate", "0")

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def split_array(text):
    """The raw texts of the objects in a JSON array as the server writes it: '[' then objects
    separated by single commas, then ']' (no whitespace). Bracket-aware: commas and brackets
    inside strings and nested values do not split. Also checks json.loads agrees, element by
    element. Fails the test on an empty array or a non-object element."""
    assert text.startswith("[") and text.endswith("]"), f"batch frame is not an array: {text!r}"
    out, depth, start, in_str, esc = [], 0, None, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            assert depth >= 2, f"a bare string in a batch array at {i}: {text!r}"
            in_str = True
        elif ch in "[{":
            if depth == 1:
                assert ch == "{", f"element at {i} is not an object: {text!r}"
                assert text[i - 1] in "[,", f"no comma before the element at {i}: {text!r}"
                start = i
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 1:
                out.append(text[start:i + 1])
            if depth == 0:
                assert i == len(text) - 1, f"bytes after the array: {text!r}"
        elif depth == 1:
            assert ch == ",", f"unexpected {ch!r} between elements at {i}: {text!r}"
            assert text[i - 1] == "}", f"empty element at {i}: {text!r}"
    parsed = json.loads(text)
    assert isinstance(parsed, list) and parsed, f"batch frame must be a non-empty array: {text!r}"
    assert len(parsed) == len(out), f"splitter found {len(out)} objects, json {len(parsed)}"
    for raw, obj in zip(out, parsed):
        assert isinstance(obj, dict) and json.loads(raw) == obj, (raw, obj)
    return out


def offer_fields(*values):
    """Sec-WebSocket-Protocol fields, one per value (each value may itself be a list)."""
    return [("Sec-WebSocket-Protocol", v) for v in values]


def handshake(port, path="/ws", offers=(), rcvbuf=None, extra=()):
    """Sends a handshake with the given protocol fields; returns (HttpConn, response)."""
    conn = HttpConn(port, rcvbuf=rcvbuf)
    key = new_key()
    conn.send(handshake_request(path, key=key, extra=offer_fields(*offers) + list(extra)))
    resp = conn.read_response()
    if resp.status == 101:
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp
    return conn, resp


class Client:
    """A raw /ws client in either protocol. Every text frame is checked as the protocol says
    (batch: a non-empty array of objects; seed: one object) and turned into a list of exact
    object texts. The server's keep-alive pings are answered; a close frame fails the test
    unless the caller expects it."""

    def __init__(self, port, path="/ws", offers=(), rcvbuf=None, expect_batch=None):
        conn, resp = handshake(port, path, offers, rcvbuf)
        assert resp.status == 101, f"handshake on {path} offering {offers} refused: {resp!r}"
        self.response = resp
        picked = resp.header_all("Sec-WebSocket-Protocol")
        assert picked in ([], [BATCH]), f"server picked {picked} from {offers}: {resp!r}"
        self.is_batch = picked == [BATCH]
        if expect_batch is not None:
            assert self.is_batch == expect_batch, f"offers {offers}: picked {picked}"
        self.ws = RawWS(conn.sock, resp, conn.buf)
        self.sock = conn.sock
        self.pending = []  # objects of the last frame not yet taken by next_obj()
        self.welcome_text = None
        self.welcome = None

    @classmethod
    def join(cls, port, path="/ws", offers=(), **kw):
        """Connects and reads the welcome (the first object of the first frame)."""
        c = cls(port, path, offers, **kw)
        c.read_welcome()
        return c

    @property
    def id(self):
        return self.welcome["id"]

    def read_welcome(self):
        text = self.next_obj()
        w = json.loads(text)
        assert w.get("type") == "welcome", f"first message is not a welcome: {text}"
        self.welcome_text, self.welcome = text, w
        return w

    def next_frame(self, timeout=TIMEOUT):
        """The objects of the next text frame (pings answered, pongs skipped)."""
        assert not self.pending, f"objects left unread: {self.pending}"
        while True:
            f = self.ws.recv_frame(timeout)
            if f.opcode == OP_PING:
                self.ws.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            assert f.opcode != OP_CLOSE, f"unexpected close {f.close_code()}"
            assert f.opcode == OP_TEXT and f.fin and f.rsv == 0, f"not one text frame: {f!r}"
            text = f.payload.decode("utf-8")
            if self.is_batch:
                return split_array(text)
            obj = json.loads(text)
            assert isinstance(obj, dict), f"seed frame is not one object: {text!r}"
            return [text]

    def next_obj(self, timeout=TIMEOUT):
        if not self.pending:
            self.pending = self.next_frame(timeout)
        return self.pending.pop(0)

    def take_until(self, pred, timeout=TIMEOUT, what="a message"):
        """Reads objects until pred(text, obj) holds; returns every text read, that one last."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {what} within {timeout}s; read {got[-20:]}"
            try:
                text = self.next_obj(left)
            except AssertionError as e:
                raise AssertionError(f"waiting for {what}: {e}; read {got[-20:]}") from None
            got.append(text)
            if pred(text, json.loads(text)):
                return got

    def send(self, text):
        self.ws.send_text(text)

    def barrier(self, timeout=TIMEOUT):
        """A ping with a fresh payload answered by its pong: the connection is alive and read.
        Data frames before the pong are returned as objects."""
        token = b"barrier-" + os.urandom(4).hex().encode()
        self.ws.send_frame(OP_PING, token)
        got = list(self.pending)
        self.pending = []
        while True:
            f = self.ws.recv_frame(timeout)
            if f.opcode == OP_PONG and f.payload == token:
                return got
            if f.opcode == OP_PING:
                self.ws.send_frame(OP_PONG, f.payload)
            elif f.opcode == OP_TEXT:
                self.pending = []
                self.ws.buf = build_frame(OP_TEXT, f.payload, mask=False) + self.ws.buf
                got += self.next_frame(timeout)
            else:
                assert f.opcode == OP_PONG, f"unexpected frame {f!r}"

    def close(self):
        """Our close 1000, the server's answer, its FIN."""
        self.ws.send_close(1000)
        code, _ = self.ws.expect_close()
        assert code == 1000
        self.ws.close()


def is_count(obj, n=None):
    return obj.get("type") == "count" and (n is None or obj.get("count") == n)


def count_text(n):
    return f'{{"type":"count","count":{n}}}'


def welcome_prefix(w, room=""):
    return f'{{"type":"welcome","id":"{w["id"]}","color":{w["color"]},"room":"{room}","peers":['


def silent(w):
    """A peer that has sent nothing yet, as a welcome lists it."""
    return f'{{"sender":"{w["id"]}","color":{w["color"]}}}'


def welcome_peers(c, room=""):
    """(raw peer entries in order, count or None) of client c's welcome, checking its exact
    shape: type,id,color,room,peers and, only where allowed, count."""
    text = c.welcome_text
    prefix = welcome_prefix(c.welcome, room)
    assert text.startswith(prefix), f"welcome does not start {prefix!r}: {text}"
    keys = list(c.welcome)
    assert keys in (["type", "id", "color", "room", "peers"],
                    ["type", "id", "color", "room", "peers", "count"]), text
    count = c.welcome.get("count")
    tail = "]}" if count is None else f'],"count":{count}}}'
    assert text.endswith(tail), f"welcome does not end {tail!r}: {text}"
    inner = text[len(prefix) - 1:len(text) - len(tail) + 1]  # "[...]"
    peers = split_array(inner) if inner != "[]" else []
    return peers, count


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def burst(sender_tag, start, n, pad=""):
    """n cursor messages {"s":tag,"seq":k[,"pad":...]} as raw masked frames, one bytes."""
    padm = f',"pad":"{pad}"' if pad else ""
    return b"".join(build_frame(OP_TEXT, f'{{"s":"{sender_tag}","seq":{k}{padm}}}')
                    for k in range(start, start + n))


class Drain:
    """A background thread that reads and discards whatever the server sends to some raw
    sockets (answering nothing: pings at 30 s are longer than these tests), so that only the
    client a test means to stall is ever behind."""

    def __init__(self, socks):
        self.sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            for key, _ in self.sel.select(0.1):
                try:
                    if not key.fileobj.recv(1 << 16):
                        self.sel.unregister(key.fileobj)
                except BlockingIOError:
                    pass
                except OSError:
                    self.sel.unregister(key.fileobj)

    def close(self):
        self.stop.set()
        self.t.join(TIMEOUT)


def send_all_blocking(sock, data):
    """sendall on a socket a Drain made non-blocking."""
    view = memoryview(data)
    deadline = time.monotonic() + TIMEOUT * 4
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except BlockingIOError:
            assert time.monotonic() < deadline, "server stopped reading a sender"
            time.sleep(0.005)


# ---------------------------------------------------------------------------------------------
# Negotiation: RFC 6455 §4.1, §4.2.2 step 5.4
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offers", [
    ("wsrelay.batch",),
    ("a, wsrelay.batch",),
    ("wsrelay.batch, a",),
    ("a", "wsrelay.batch"),  # a second Sec-WebSocket-Protocol field (RFC 9110 §5.3)
    ("chat,  wsrelay.batch ,superchat",),  # optional whitespace around elements
    (" , ,wsrelay.batch",),  # empty list elements are ignored (RFC 9110 §5.6.1)
    ("wsrelay.batch, wsrelay.batch",),  # offered twice: still echoed once
], ids=["alone", "last-in-list", "first-in-list", "second-field", "ows", "empty-elements",
        "twice"])
@pytest.mark.parametrize("path", ["/ws", "/ws/room-1"])
def test_offering_wsrelay_batch_gets_it_echoed_exactly_once(server, offers, path):
    c = Client(server.port, path, offers)
    assert c.response.header_all("Sec-WebSocket-Protocol") == [BATCH], \
        f"offered {offers}: the 101 must carry exactly one field naming {BATCH}: {c.response!r}"
    assert c.response.head.count(b"Sec-WebSocket-Protocol") == 1, c.response.head
    w = c.read_welcome()
    assert w["count"] == 1, c.welcome_text
    c.close()


@pytest.mark.parametrize("offers", [
    ("chat",),
    ("chat, superchat",),
    ("chat", "superchat"),
    ("WSRELAY.BATCH",),  # values are compared exactly: case matters
    ("Wsrelay.Batch, chat",),
    ("wsrelay.batch2",),
    ("wsrelay",),
    ("xwsrelay.batch",),
    ('"wsrelay.batch"',),  # quoted: not the token
    ("wsrelay.batch;q=1",),
    ("",),  # an empty field
], ids=["one", "list", "two-fields", "upper", "mixed-case", "longer", "prefix", "suffix",
        "quoted", "params", "empty"])
def test_offering_only_other_protocols_gets_no_protocol_and_the_seed_protocol(server, offers):
    c = Client(server.port, "/ws", offers)
    assert c.response.header_all("Sec-WebSocket-Protocol") == [], \
        f"offered {offers}: RFC 6455 §4.2.2 forbids echoing a protocol we did not pick: " \
        f"{c.response!r}"
    assert not c.is_batch
    c.read_welcome()
    assert list(c.welcome) == ["type", "id", "color", "room", "peers"], c.welcome_text
    assert c.welcome_text == welcome_prefix(c.welcome) + "]}", c.welcome_text
    c.close()


@pytest.mark.parametrize("offers", [("wsrelay.batch",), ("chat, wsrelay.batch",)])
def test_echo_never_picks_wsrelay_batch(server, offers):
    conn, resp = handshake(server.port, "/echo", offers)
    with conn:
        assert resp.status == 101, resp
        assert resp.header_all("Sec-WebSocket-Protocol") == [], resp
        ws = RawWS(conn.sock, resp, conn.buf)
        ws.send_text('{"x":1}')
        f = ws.recv_frame()
        assert f.raw == build_frame(OP_TEXT, b'{"x":1}', mask=False), f  # unchanged, unbatched


def test_no_offer_gets_no_protocol_field(server):
    c = Client(server.port, "/ws")
    assert c.response.header_all("Sec-WebSocket-Protocol") == [] and not c.is_batch
    c.read_welcome()
    c.close()


# ---------------------------------------------------------------------------------------------
# Batch frames: arrays of the seed protocol's objects, byte for byte
# ---------------------------------------------------------------------------------------------


def test_batch_frames_carry_exactly_the_seed_objects_plus_counts(start_server):
    srv = start_server(*UNLIMITED)
    b = Client.join(srv.port, offers=[BATCH], expect_batch=True)
    peers, count = welcome_peers(b)
    assert peers == [] and count == 1, b.welcome_text

    s = Client.join(srv.port, expect_batch=False)
    peers, count = welcome_peers(s)
    assert peers == [silent(b.welcome)] and count is None, s.welcome_text
    # The batch client hears s's join and the new size, both in one frame or two.
    got = b.take_until(lambda t, o: is_count(o, 2), what="count 2")
    assert join_text(s.welcome) in got, got

    # Both move, one message at a time (each waits for its own echo at both observers): then
    # nothing coalesces and both must receive the very same sequence of objects.
    seed_seen, batch_seen = [], []
    for k in range(12):
        who = (s, b)[k % 2]
        body = f'"x":{k},"y":{k / 4},"s":"wei\\"rd,[{{}}]"'
        who.send("{" + body + "}")
        want = relayed(body, who.welcome)
        seed_seen += s.take_until(lambda t, o: t == want, what=f"move {k} at s")
        batch_seen += b.take_until(lambda t, o: t == want, what=f"move {k} at b")
    assert not any(is_count(json.loads(t)) for t in batch_seen), batch_seen
    assert batch_seen == seed_seen, f"\nbatch {batch_seen}\n seed {seed_seen}"

    # A third client (batch) comes and goes: s gets join and leave, nothing else (no count);
    # b gets the same join and leave plus a count after each.
    t = Client.join(srv.port, offers=[BATCH], expect_batch=True)
    peers, count = welcome_peers(t)
    assert count == 3 and sorted(peers) == sorted(
        [relayed('"x":10,"y":2.5,"s":"wei\\"rd,[{}]"', s.welcome),
         relayed('"x":11,"y":2.75,"s":"wei\\"rd,[{}]"', b.welcome)]), t.welcome_text
    assert s.next_obj() == join_text(t.welcome)
    got = b.take_until(lambda tx, o: is_count(o, 3), what="count 3")
    assert [x for x in got if not is_count(json.loads(x))] == [join_text(t.welcome)], got
    t.close()
    assert s.next_obj() == leave_text(t.welcome)
    got = b.take_until(lambda tx, o: is_count(o, 2), what="count 2 after t left")
    assert [x for x in got if not is_count(json.loads(x))] == [leave_text(t.welcome)], got
    # s got nothing else: its own next message is its own echo.
    s.send('{"end":1}')
    assert s.next_obj() == relayed('"end":1', s.welcome)
    assert b.take_until(lambda tx, o: "end" in o)[-1] == relayed('"end":1', s.welcome)
    s.close()
    got = b.take_until(lambda tx, o: is_count(o, 1), what="count 1 after s left")
    assert [x for x in got if not is_count(json.loads(x))] == [leave_text(s.welcome)], got
    b.close()


def test_every_batch_frame_is_a_non_empty_array_under_load(start_server):
    """Several movers and arrivals at once: every frame to a batch client, whatever it holds,
    is one non-empty array of objects (Client.next_frame checks each)."""
    srv = start_server(*UNLIMITED)
    b = Client.join(srv.port, offers=[BATCH])
    movers = [Client.join(srv.port) for _ in range(4)]
    for m in movers:
        m.send_raw = m.ws.send_raw
    for rnd in range(5):
        for i, m in enumerate(movers):
            m.send_raw(burst(f"m{i}", rnd * 20, 20))
    frames = 0
    last = {}
    deadline = time.monotonic() + TIMEOUT * 2
    while any(last.get(f"m{i}") != 99 for i in range(4)):
        assert time.monotonic() < deadline, f"final positions missing: {last}"
        for text in b.next_frame():
            o = json.loads(text)
            if "seq" in o:
                assert o["seq"] > last.get(o["s"], -1), f"older after newer: {text}"
                last[o["s"]] = o["seq"]
        frames += 1
    assert frames > 0
    b.close()


# ---------------------------------------------------------------------------------------------
# The seed protocol: exactly the original demo's bytes, one object per frame
# ---------------------------------------------------------------------------------------------


def expect_seed_frame(c, text):
    """The next frame is exactly one unfragmented text frame holding exactly `text`."""
    f = c.ws.recv_frame()
    while f.opcode == OP_PING:
        c.ws.send_frame(OP_PONG, f.payload)
        f = c.ws.recv_frame()
    want = build_frame(OP_TEXT, text.encode(), mask=False)
    assert f.raw == want, f"\nexpected {want!r}\n     got {f.raw!r}"


def test_seed_bytes_are_exactly_the_original_protocol(start_server):
    srv = start_server(*UNLIMITED)
    a = Client(srv.port, "/ws/seed")
    f = a.ws.recv_frame()
    wa = json.loads(f.payload)
    assert f.raw == build_frame(
        OP_TEXT, f'{{"type":"welcome","id":"{wa["id"]}","color":{wa["color"]},'
                 f'"room":"seed","peers":[]}}'.encode(), mask=False), f.raw

    b = Client(srv.port, "/ws/seed")
    f = b.ws.recv_frame()
    wb = json.loads(f.payload)
    assert f.payload.decode() == (f'{{"type":"welcome","id":"{wb["id"]}","color":{wb["color"]},'
                                  f'"room":"seed","peers":[{silent(wa)}]}}'), f.payload
    expect_seed_frame(a, join_text(wb))

    # A batch member in the room changes nothing for the seed clients: no count, ever.
    c = Client.join(srv.port, "/ws/seed", offers=[BATCH], expect_batch=True)
    expect_seed_frame(a, join_text(c.welcome))
    expect_seed_frame(b, join_text(c.welcome))

    # docs/protocol.md's cursor example, relayed to everyone, the sender included.
    a.send('{"x":120,"y":48.5}')
    cursor = f'{{"x":120,"y":48.5,"sender":"{wa["id"]}","color":{wa["color"]}}}'
    expect_seed_frame(a, cursor)
    expect_seed_frame(b, cursor)
    assert c.take_until(lambda t, o: "x" in o)[-1] == cursor

    # A newcomer's welcome lists a's last message exactly as relayed, the others silent.
    d = Client(srv.port, "/ws/seed")
    f = d.ws.recv_frame()
    wd = json.loads(f.payload)
    text = f.payload.decode()
    assert "count" not in wd, text
    prefix = welcome_prefix(wd, "seed")
    assert text.startswith(prefix) and text.endswith("]}"), text
    assert sorted(split_array(text[len(prefix) - 1:-1])) == sorted(
        [cursor, silent(wb), silent(c.welcome)]), text
    for x in (a, b):
        expect_seed_frame(x, join_text(wd))

    c.close()
    d.close()
    for x in (a, b):
        expect_seed_frame(x, leave_text(c.welcome))
        expect_seed_frame(x, leave_text(wd))
    b.close()
    expect_seed_frame(a, leave_text(wb))
    assert a.barrier() == []  # nothing else was sent to a
    a.close()
