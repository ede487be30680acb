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
import threading
import time

import pytest

from conftest import (
    HOST,
    HttpConn,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWS,
    SANITIZED,
    TIMEOUT,
    accept_for,
    build_frame,
    check_close_frame,
    expect_refused_and_closed,
    get,
    handshake_request,
    join_text,
    leave_text,
    new_key,
    proc_status_kib,
    read_frame_async,
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
    for rnd in range(5):
        for i, m in enumerate(movers):
            m.ws.send_raw(burst(f"m{i}", rnd * 20, 20))
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


# ---------------------------------------------------------------------------------------------
# Final state: a batch client and a seed client end with every sender's last position
# ---------------------------------------------------------------------------------------------


class Tracker:
    """Each sender's newest cursor message as seen by one client, by its "seq"; fails on an
    older one after a newer one. Server messages are kept, in order, in `server`."""

    def __init__(self, client):
        self.c = client
        self.last = {}  # sender id -> (seq, exact text)
        self.server = []
        self.cursors = []  # (sender, seq) in arrival order

    def feed(self, text):
        o = json.loads(text)
        if o.get("type") is not None:
            self.server.append(text)
            return
        seq = o.get("seq")
        if seq is None:
            return
        prev = self.last.get(o["sender"], (-1, None))[0]
        assert seq > prev, f"older after newer from {o['sender']}: {seq} after {prev}"
        self.last[o["sender"]] = (seq, text)
        npresence = sum(1 for x in self.server if not is_count(json.loads(x)))
        self.cursors.append((o["sender"], seq, npresence))

    def until(self, done, timeout=TIMEOUT * 2, what="final state"):
        deadline = time.monotonic() + timeout
        while not done(self):
            left = deadline - time.monotonic()
            assert left > 0, f"{what} not reached: {self.last}"
            for text in self.c.next_frame(left):
                self.feed(text)


def has_final(finals):
    """done() for Tracker.until: every sender in finals (id -> seq) is at its seq."""
    return lambda t: all(t.last.get(s, (-1,))[0] == q for s, q in finals.items())


def test_batch_and_seed_clients_end_with_the_same_final_state(start_server):
    srv = start_server(*UNLIMITED)
    seed = Tracker(Client.join(srv.port, "/ws/final"))
    batch = Tracker(Client.join(srv.port, "/ws/final", offers=[BATCH], expect_batch=True))
    # Senders of both kinds; they never read (their backlog is small: ~30 KB each).
    senders = [Client.join(srv.port, "/ws/final", offers=[BATCH] if i % 2 else [])
               for i in range(6)]
    finals = {s.id: 99 for s in senders}
    for rnd in range(4):
        for i, s in enumerate(senders):
            s.ws.send_raw(burst(f"s{i}", rnd * 25, 25))
        time.sleep(0.01)
    seed.until(has_final(finals))
    batch.until(has_final(finals))
    want = {s.id: relayed(f'"s":"s{i}","seq":99', s.welcome) for i, s in enumerate(senders)}
    assert {k: v[1] for k, v in seed.last.items()} == want
    assert {k: v[1] for k, v in batch.last.items()} == want
    # The same server messages, in the same order: the six joins (and counts for batch).
    joins = [join_text(s.welcome) for s in senders]
    assert seed.server == [join_text(batch.c.welcome)] + joins, seed.server
    assert [t for t in batch.server if not is_count(json.loads(t))] == joins, batch.server
    for c in [seed.c, batch.c, *senders]:
        c.ws.close()


# ---------------------------------------------------------------------------------------------
# Coalescing on input: 50 messages in one send()
# ---------------------------------------------------------------------------------------------


def test_fifty_messages_in_one_send_reach_observers_as_a_subsequence_ending_with_the_last(
        start_server):
    """protocol.md: "Several messages from one sender that arrive in the same loop pass ...
    are each checked as above, but only the last is relayed ... Messages from one sender are
    never delivered out of order." 50 small frames in one send() are one TCP segment on
    loopback, read by one read() (64 KiB), so the observers must also get fewer than 50."""
    srv = start_server(*UNLIMITED)
    seed = Tracker(Client.join(srv.port))
    batch = Tracker(Client.join(srv.port, offers=[BATCH], expect_batch=True))
    sender = Client.join(srv.port)
    seed.until(lambda t: len(t.server) == 1)
    batch.until(lambda t: join_text(sender.welcome) in t.server)
    before = scrape(srv.port).value("wsrelay_messages_in_total")

    sender.ws.send_raw(burst("one", 0, 50))
    done = has_final({sender.id: 49})
    for t in (seed, batch, Tracker(sender)):
        t.until(done)
        seqs = [q for s, q, _ in t.cursors if s == sender.id]
        assert seqs == sorted(set(seqs)) and seqs[-1] == 49, seqs
        assert len(seqs) < 50, f"50 messages of one read() were all relayed: {seqs}"
        assert t.last[sender.id][1] == relayed('"s":"one","seq":49', sender.welcome)

    m = scrape_until(srv.port, lambda m: m.value("wsrelay_messages_in_total") >= before + 50)
    assert m.value("wsrelay_messages_in_total") == before + 50, \
        "every message of the burst is read and checked, hence counted"
    for c in (seed.c, batch.c, sender):
        c.close()


# ---------------------------------------------------------------------------------------------
# A stalled reader among 20 movers
# ---------------------------------------------------------------------------------------------

MOVERS = 20
PAD = "p" * 400  # ~450-byte messages: 20 movers put ~9 KB in each flush


class Watcher(threading.Thread):
    """A Tracker read in a background thread (a fast observer the test waits on)."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.t = Tracker(client)
        self.lock = threading.Condition()
        self.stop = threading.Event()
        self.error = None
        self.start()

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    texts = self.t.c.next_frame(0.2)
                except AssertionError as e:
                    if "no frame within" in str(e):
                        continue
                    raise
                with self.lock:
                    for text in texts:
                        self.t.feed(text)
                    self.lock.notify_all()
        except BaseException as e:  # noqa: BLE001 - reported by wait()
            self.error = e
            with self.lock:
                self.lock.notify_all()

    def wait(self, cond, timeout=TIMEOUT * 2, what="the observer"):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not cond(self.t):
                assert self.error is None, f"observer failed: {self.error!r}"
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}: {self.t.last}"
                self.lock.wait(min(left, 0.2))

    def finish(self):
        self.stop.set()
        self.join(TIMEOUT)
        assert self.error is None, f"observer failed: {self.error!r}"


@pytest.mark.parametrize("offers", [(), (BATCH,)], ids=["seed", "batch"])
def test_stalled_reader_gets_every_final_position_and_every_server_message_in_order(
        start_server, offers):
    """The stalled reader reads nothing while 20 movers move many times and four more
    clients come and go (e1..e4: join, move, leave in a known order). Then it reads: it must
    end with every mover's final position, never an older one after a newer, every join and
    leave it was owed in the order they happened, no cursor of e_i before its join or after
    its leave, and still be connected (docs/protocol.md: "A reader that falls behind")."""
    srv = start_server(*UNLIMITED)
    room = "/ws/stall"
    # Small receive buffer, but not under one loopback segment (see test_conflation.py).
    stalled = Client.join(srv.port, room, offers, rcvbuf=64 * 1024)
    watch = Watcher(Client.join(srv.port, room, offers=[BATCH]))
    movers = [Client.join(srv.port, room) for _ in range(MOVERS)]
    drain = Drain([m.sock for m in movers])
    joins = [join_text(m.welcome) for m in movers]
    watch.wait(lambda t: sum(x in t.server for x in joins) == MOVERS, what="the movers' joins")
    seq = 0

    def move_round(n=3):
        nonlocal seq
        for i, m in enumerate(movers):
            send_all_blocking(m.sock, burst(f"m{i}", seq, n, PAD))
        seq += n

    # Phase 1: the stalled reader's socket and queue fill up to the "behind" mark
    # (--max-buffer/16 = 64 KiB pending after a write).
    deadline = time.monotonic() + 30
    while scrape(srv.port).value("wsrelay_wbuf_high_water_bytes") < 64 * 1024:
        assert time.monotonic() < deadline, "the stalled reader never fell behind"
        for _ in range(10):
            move_round()
            time.sleep(0.005)

    # Phase 2: presence changes while it is behind, each seen by the watcher before the next.
    server_events = [join_text(watch.t.c.welcome)] + joins
    extras = []
    for k in range(4):
        e = Client.join(srv.port, room)
        extras.append(e)
        server_events.append(join_text(e.welcome))
        watch.wait(lambda t: server_events[-1] in t.server, what=f"e{k}'s join")
        move_round()
    drain2 = Drain([e.sock for e in extras])  # their own backlog is not the subject

    def extra_moves(e, k):
        send_all_blocking(e.sock, burst(f"e{k}", 0, 3))

    def extra_leaves(e):
        e.sock.setblocking(True)
        e.ws.send_close(1000)
        server_events.append(leave_text(e.welcome))
        watch.wait(lambda t: server_events[-1] in t.server, what="a leave")

    extra_moves(extras[0], 0)
    move_round()
    extra_leaves(extras[1])
    move_round()
    extra_leaves(extras[0])
    extra_moves(extras[2], 2)
    move_round()
    extra_moves(extras[3], 3)
    extra_leaves(extras[3])
    for _ in range(20):
        move_round()
        time.sleep(0.005)

    # Phase 3: one last burst each; the watcher (fast) sees every final position.
    move_round(5)
    finals = {m.id: seq - 1 for m in movers}
    finals[extras[2].id] = 2
    watch.wait(has_final(finals), what="the final positions at the watcher")

    # Phase 4: the stalled reader wakes up.
    t = Tracker(stalled)
    t.until(has_final(finals), timeout=TIMEOUT * 6, what="the stalled reader's final state")
    def presence(t):
        return [x for x in t.server if not is_count(json.loads(x))]

    t.until(lambda t: len(presence(t)) >= len(server_events), what="every server message")
    want = {m.id: relayed(f'"s":"m{i}","seq":{seq - 1},"pad":"{PAD}"', m.welcome)
            for i, m in enumerate(movers)}
    assert {k: t.last[k][1] for k in want} == want
    assert presence(t) == server_events, "server messages dropped or reordered:\n" + \
        "\n".join(f"  got {g}\n want {w}" for g, w in zip(presence(t), server_events) if g != w)
    # A cursor of e_k only between e_k's join and its leave.
    for k, e in enumerate(extras):
        j = server_events.index(join_text(e.welcome))
        lv = leave_text(e.welcome)
        end = server_events.index(lv) if lv in server_events else len(server_events)
        for sender, q, pos in t.cursors:
            if sender == e.id:
                assert j < pos <= end, \
                    f"e{k}'s cursor {q} after {pos} server messages: its join is #{j + 1}, " \
                    f"its leave #{end + 1}"
    # It was behind: it skipped positions the watcher (always reading) was given.
    assert len(t.cursors) < len(watch.t.cursors), (len(t.cursors), len(watch.t.cursors))
    print(f"stalled reader: {len(t.cursors)} cursor messages, watcher {len(watch.t.cursors)}, "
          f"{seq} moves per mover")
    # Still connected, never dropped.
    left = stalled.barrier()
    for text in left:
        t.feed(text)
    assert presence(t) == server_events
    if stalled.is_batch:  # its last count is the room's size: 20 movers, e2, watcher, itself
        assert [x for x in t.server if is_count(json.loads(x))][-1] == count_text(MOVERS + 3)
    assert scrape(srv.port).value("wsrelay_disconnects_total", reason="slow_reader") == 0
    watch.finish()
    drain.close()
    drain2.close()
    stalled.close()


# ---------------------------------------------------------------------------------------------
# --roster-max: big rooms
# ---------------------------------------------------------------------------------------------


def test_roster_max_5_in_a_room_of_8_follows_the_documented_rule(start_server):
    """docs/protocol.md, "Big rooms: --roster-max":

      "A member is announced to its room when it joins a room that then has at most
      --roster-max members (everyone gets its join, as below the limit), or, in a bigger
      room, when it first sends a message ... A member that joined a big room and never moved
      is known to nobody. A leave is sent only for announced members. A welcome lists at most
      --roster-max peers: while every member of the room is announced and there are at most
      --roster-max of them, all of them, exactly as before; otherwise the --roster-max
      announced members that were most recently active (sent a message or were announced),
      newest first. A welcome that does not list the whole room carries the room's size as
      "count":N after peers (so does every wsrelay.batch welcome, complete or not)."

    With --roster-max 5: c1 (batch) .. c5 join and are announced; c6 joins a room of 6 and
    is not, but its welcome lists all 5 others (all announced, at most 5: the whole room, no
    count); c7 and c8 get the 5 most recently announced, newest first, and "count". c7 leaves
    silently (no leave); c8 moves (everyone gets its cursor); c9's welcome then lists c8
    first; c9 leaves silently; c8 leaves (its leave is sent)."""
    srv = start_server("--roster-max", "5", *UNLIMITED)
    room = "/ws/big"
    c = {1: Client.join(srv.port, room, offers=[BATCH], expect_batch=True)}
    assert welcome_peers(c[1], "big") == ([], 1)
    for k in range(2, 6):
        c[k] = Client.join(srv.port, room)
        peers, count = welcome_peers(c[k], "big")
        assert sorted(peers) == sorted(silent(c[i].welcome) for i in range(1, k)), peers
        assert count is None, c[k].welcome_text
        for i in range(2, k):
            assert c[i].next_obj() == join_text(c[k].welcome)
        got = c[1].take_until(lambda t, o: is_count(o, k), what=f"count {k}")
        assert [x for x in got if not is_count(json.loads(x))] == [join_text(c[k].welcome)]

    c[6] = Client.join(srv.port, room)
    peers, count = welcome_peers(c[6], "big")
    assert sorted(peers) == sorted(silent(c[i].welcome) for i in range(1, 6)) and count is None, \
        c[6].welcome_text
    newest_first = [silent(c[i].welcome) for i in (5, 4, 3, 2, 1)]
    for k in (7, 8):
        c[k] = Client.join(srv.port, room)
        peers, count = welcome_peers(c[k], "big")
        assert peers == newest_first and count == k, c[k].welcome_text
    # The batch member hears the sizes, never a join of c6..c8.
    got = c[1].take_until(lambda t, o: is_count(o, 8), what="count 8")
    assert all(is_count(json.loads(x)) for x in got), got

    c[7].close()  # never moved: nobody hears it go
    got = c[1].take_until(lambda t, o: is_count(o, 7), what="count 7")
    assert all(is_count(json.loads(x)) for x in got), got

    c[8].send('{"x":8}')
    cursor8 = relayed('"x":8', c[8].welcome)
    for k in (1, 2, 3, 4, 5, 6, 8):
        assert c[k].next_obj() == cursor8, f"c{k}: the next message must be c8's first move"

    c[9] = Client.join(srv.port, room)
    peers, count = welcome_peers(c[9], "big")
    assert peers == [cursor8] + newest_first[:4] and count == 8, c[9].welcome_text
    c[9].close()
    assert c[1].take_until(lambda t, o: is_count(o), what="count")[-1] == count_text(8)
    got = c[1].take_until(lambda t, o: is_count(o, 7), what="count 7 after c9")
    assert all(is_count(json.loads(x)) for x in got), got

    c[8].close()  # announced by its move: its leave is sent
    for k in (2, 3, 4, 5, 6):
        assert c[k].next_obj() == leave_text(c[8].welcome), f"c{k}"
    got = c[1].take_until(lambda t, o: is_count(o, 6), what="count 6")
    assert [x for x in got if not is_count(json.loads(x))] == [leave_text(c[8].welcome)], got

    # Nothing else was sent: c6's move is everyone's next message.
    c[6].send('{"x":6}')
    for k in (1, 2, 3, 4, 5, 6):
        assert c[k].next_obj() == relayed('"x":6', c[6].welcome), f"c{k}"
    for k in (1, 2, 3, 4, 5, 6):
        c[k].close()


# ---------------------------------------------------------------------------------------------
# The join storm, small: 2,000 clients into one room at once
# ---------------------------------------------------------------------------------------------

STORM = 2000
STORM_ROSTER = 100
STORM_CONCURRENCY = 256  # handshakes in flight: under the listen backlog (511), no SYN retries
# Peak RSS bound. The goal is 64 MiB for 10,000 clients; 2,000 in one room need
# their 2,100 slots (buffers grow on demand), one presence entry each and at most 100 peers
# per welcome (~9 KB): a few MiB. 64 MiB is generous and still far below what the O(N^2)
# seed behaviour cost (247 MiB for 10,000; 2,000 welcomes listing everyone is ~150 MB of
# frames queued at once).
STORM_RSS_KIB = 64 * 1024


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


async def storm_client(port, is_batch, sem):
    """Handshakes (at most STORM_CONCURRENCY at a time) and reads the welcome frame; returns
    (writer, welcome object text). The client then reads nothing more."""
    key = new_key()
    async with sem:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(handshake_request("/ws/storm", key=key,
                                       extra=offer_fields(BATCH) if is_batch else []))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert accept_for(key).encode() in head, head
        assert (b"Sec-WebSocket-Protocol: wsrelay.batch\r\n" in head) == is_batch, head
        b0, payload = await read_frame_async(reader)
    assert b0 == 0x81, (b0, payload[:80])
    text = payload.decode()
    if is_batch:
        text = split_array(text)[0]
    return writer, text


@pytest.mark.storm
def test_join_storm_of_2000_into_one_room_with_roster_max_100(start_server):
    """2,000 clients (every tenth a wsrelay.batch one) connect to one room at once with
    --roster-max 100. Each gets a welcome listing at most 100 peers (all silent: nobody
    moved), with "count" whenever it does not list the whole room; since everyone stays,
    the sizes the welcomes report (count, or peers + 1 for a complete one) are exactly
    1..2000, one each. Peak RSS stays under STORM_RSS_KIB (not judged under ASan). Then all
    leave and the server is as new: no room open, /healthz ok, a newcomer alone."""
    raise_fd_limit(STORM + 600)
    srv = start_server("--max-clients", STORM + 100, "--max-room-clients", STORM + 100,
                       "--roster-max", STORM_ROSTER, *UNLIMITED)

    async def go():
        sem = asyncio.Semaphore(STORM_CONCURRENCY)
        results = await asyncio.gather(*(storm_client(srv.port, i % 10 == 9, sem)
                                         for i in range(STORM)))
        try:
            sizes = []
            ids = set()
            for i, (_, text) in enumerate(results):
                w = json.loads(text)
                assert w["type"] == "welcome" and w["room"] == "storm", text
                ids.add(w["id"])
                peers = w["peers"]
                assert len(peers) <= STORM_ROSTER, f"welcome lists {len(peers)} peers"
                assert all(list(p) == ["sender", "color"] for p in peers), text[:300]
                assert len({p["sender"] for p in peers}) == len(peers), "a peer listed twice"
                if i % 10 == 9:
                    assert "count" in w, f"a wsrelay.batch welcome always has count: {text}"
                if "count" in w:
                    sizes.append(w["count"])
                else:
                    sizes.append(len(peers) + 1)
                if sizes[-1] > STORM_ROSTER + 1:
                    assert "count" in w and len(peers) == STORM_ROSTER, text[:300]
            assert len(ids) == STORM
            assert sorted(sizes) == list(range(1, STORM + 1)), \
                "welcomes disagree with the room's size at their join"
            hwm = proc_status_kib(srv.proc.pid, "VmHWM")
            # One more: 100 peers and the full count.
            c = await asyncio.to_thread(Client.join, srv.port, "/ws/storm")
            peers, count = welcome_peers(c, "storm")
            assert len(peers) == STORM_ROSTER and count == STORM + 1, c.welcome_text[:300]
            c.ws.close()
            return hwm
        finally:
            for writer, _ in results:
                writer.close()

    hwm = run(go(), timeout=120)
    print(f"join storm: server peak RSS {hwm} KiB")
    if not SANITIZED:  # ASan's shadow memory and quarantine make RSS meaningless
        assert hwm < STORM_RSS_KIB, f"server peak RSS {hwm} KiB over {STORM_RSS_KIB} KiB"
    m = scrape_until(srv.port, lambda m: m.value("wsrelay_rooms_open") == 0, timeout=30)
    assert m.value("wsrelay_rooms_open") == 0 and m.value("wsrelay_websockets_open",
                                                          route="ws") == 0, m.text
    resp = get(srv.port, "/healthz")
    assert resp.status == 200 and resp.body.startswith(b"ok"), resp
    c = Client.join(srv.port, "/ws/storm")
    assert welcome_peers(c, "storm") == ([], None), c.welcome_text
    c.close()


# ---------------------------------------------------------------------------------------------
# --send-interval
# ---------------------------------------------------------------------------------------------


def test_send_interval_50ms_delivers_every_final_position_and_presence(start_server):
    """With --send-interval 50ms cursor messages for a room are written at most once per
    50 ms: 10 moves sent 10 ms apart reach an observer as fewer than 10 messages (at most 3
    intervals fit in 100 ms, plus one for the last move), ending with the last. Joins and
    leaves still arrive, and in the end every sender's last position does."""
    srv = start_server("--send-interval", "50ms", *UNLIMITED)
    room = "/ws/paced"
    seed = Tracker(Client.join(srv.port, room))
    batch = Tracker(Client.join(srv.port, room, offers=[BATCH], expect_batch=True))
    mover = Client.join(srv.port, room)
    for t in (seed, batch):
        t.until(lambda t: join_text(mover.welcome) in t.server, what="the mover's join")
    for k in range(10):
        mover.ws.send_raw(burst("mv", k, 1))
        time.sleep(0.01)
    for t in (seed, batch):
        t.until(has_final({mover.id: 9}))
        seqs = [q for s, q, _ in t.cursors if s == mover.id]
        assert seqs[-1] == 9 and len(seqs) < 10, f"paced to 50 ms, got every move: {seqs}"

    senders = [Client.join(srv.port, room) for _ in range(4)]
    for s in senders:
        for t in (seed, batch):
            t.until(lambda t: join_text(s.welcome) in t.server, what="a join")
    for rnd in range(3):
        for i, s in enumerate(senders):
            s.ws.send_raw(burst(f"s{i}", rnd * 10, 10))
        time.sleep(0.02)
    finals = {s.id: 29 for s in senders}
    for t in (seed, batch):
        t.until(has_final(finals))
        assert {s.id: t.last[s.id][1] for s in senders} == {
            s.id: relayed(f'"s":"s{i}","seq":29', s.welcome) for i, s in enumerate(senders)}
    mover.close()
    for t in (seed, batch):
        t.until(lambda t: leave_text(mover.welcome) in t.server, what="the mover's leave")
    for c in (seed.c, batch.c, *senders):
        c.ws.close()


def test_send_interval_of_1s_is_accepted(start_server):
    srv = start_server("--send-interval", "1s")
    c = Client.join(srv.port)
    c.close()


@pytest.mark.parametrize("value", ["2s", "1001ms", "abc", "-1", "", "10x", "50 ms"])
def test_bad_send_interval_exits_2_naming_the_option(value):
    r = run_cli("--send-interval", value)
    assert r.returncode == 2, r
    assert b"--send-interval" in r.stderr, r.stderr[:300]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1000001"])
def test_bad_roster_max_exits_2_naming_the_option(value):
    r = run_cli("--roster-max", value)
    assert r.returncode == 2, r
    assert b"--roster-max" in r.stderr, r.stderr[:300]


# ---------------------------------------------------------------------------------------------
# Hostile input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_batch", [True, False])
def test_200_subprotocols_in_one_field_still_work(server, with_batch):
    """A 200-value list (~1.8 KB, under the 8 KiB head limit) is walked like any other."""
    values = [f"proto-{i}.example" for i in range(200)]
    if with_batch:
        values.insert(150, BATCH)
    c = Client.join(server.port, "/ws", [", ".join(values)], expect_batch=with_batch)
    assert ("count" in c.welcome) == with_batch
    c.close()


def test_subprotocol_field_over_8k_is_431(server):
    """protocol.md: "431 request head over 8 KiB": 200 values of 40 bytes are ~8.6 KB."""
    values = [f"{i:03d}-" + "x" * 36 for i in range(200)] + [BATCH]
    raw = handshake_request("/ws", extra=offer_fields(", ".join(values)))
    assert len(raw) > 8192
    expect_refused_and_closed(server.port, raw, 431)


def test_200_subprotocol_fields_are_431(server):
    """200 separate Sec-WebSocket-Protocol fields (~6 KB, under 8 KiB) pass the server's
    64-field cap (include/http.h HTTP_MAX_HEADERS); it answers as for an oversized head,
    431 (RFC 6585 §5: "Request Header Fields Too Large"), and closes."""
    raw = handshake_request("/ws", extra=offer_fields(*[f"p{i}" for i in range(199)], BATCH))
    assert len(raw) < 8192
    expect_refused_and_closed(server.port, raw, 431)


def test_50_subprotocol_fields_with_batch_last_pick_it(server):
    c = Client.join(server.port, "/ws", [f"p{i}" for i in range(49)] + [BATCH],
                    expect_batch=True)
    c.close()


@pytest.mark.parametrize("offers", [(BATCH,), ()], ids=["batch", "seed"])
@pytest.mark.parametrize("message,code,reason", [
    ('[{"x":1}]', 1007, "JSON is not an object"),
    ("[]", 1007, "JSON is not an object"),
    ('[{"x":1}', 1007, "invalid JSON"),
    # protocol.md: 'The top-level type values "welcome", "join", "leave", "count" and "error"
    # are reserved for the server; a client message carrying one is refused'.
    ('{"type":"count","count":1}', 1008, "reserved message type"),
    ('{"x":1,"type":"count"}', 1008, "reserved message type"),
], ids=["array", "empty-array", "bad-json", "count", "count-last"])
def test_a_client_sends_objects_only_and_no_count(start_server, offers, message, code, reason):
    """protocol.md: what a wsrelay.batch client sends is unchanged (one object per message):
    an array is refused like any non-object (close 1007), and "count" is a reserved type
    (close 1008), from a batch client as from a seed one. Nothing is relayed; the others see
    its leave."""
    srv = start_server(*UNLIMITED)
    other = Client.join(srv.port)
    b = Client.join(srv.port, offers=offers)
    assert other.next_obj() == join_text(b.welcome)
    b.send(message)
    f = b.ws.recv_frame()
    while f.opcode != OP_CLOSE:  # the server's own count may come first, nothing else
        objs = split_array(f.payload.decode()) if b.is_batch else [f.payload.decode()]
        assert f.opcode == OP_TEXT and all(
            is_count(json.loads(x)) and "sender" not in json.loads(x) for x in objs), \
            f"expected close {code} {reason!r}, got {objs} (the message was relayed)"
        f = b.ws.recv_frame()
    assert check_close_frame(f) == (code, reason.encode()), f
    b.ws.close()
    assert other.next_obj() == leave_text(b.welcome)  # nothing relayed, then its leave
    other.close()
