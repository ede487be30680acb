"""One lawful sender must not evict readers that keep up with the room (issue 10 §2.1).

The review's attack: a client within --max-rate (190 messages a second, under 200) and within
--max-message (messages of about 16 KB) made the server queue ~3 MB/s for every member.
Updates over 512 bytes were never conflated, so readers on a 4 Mbit/s link (~530 KB/s)
passed --max-buffer and were all dropped within 2 s.

Two defences, each tested alone:
  - --max-byte-rate (default 64 KiB/s): a sender's bytes are bounded, not only its message
    count; the excess is dropped and counted (wsrelay_byte_rate_limited_total);
  - a reader that is behind is owed a sender's latest message whatever its size, so even with
    the byte budget off it is conflated, never dropped, and ends with the sender's last word.

The readers are raw sockets with a small receive buffer, read at ~530 KB/s by a thread.
"""

import json
import threading
import time

from conftest import TIMEOUT, RawWS, parse_frame, scrape

RATE = 190  # messages a second: under the default --max-rate of 200
SECONDS = 3
PAD = 16 * 1024 - 200  # a message just under the default --max-message of 16 KiB
READ_BPS = 530_000  # a 4 Mbit/s link
READERS = 3


class PacedReader:
    """Reads a /ws socket at `bps` (default READ_BPS) and keeps every sender's newest sequence number; fails
    on an older one after a newer one. `closed` is set if the server closed the connection."""

    def __init__(self, ws, bps=READ_BPS):
        self.ws = ws
        self.bps = bps  # None: as fast as the socket gives
        self.last = {}
        self.errors = []
        self.closed = threading.Event()
        self.stop = threading.Event()
        self.frames = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sock, buf, start, got = self.ws.sock, self.ws.buf, time.monotonic(), 0
        sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                chunk = sock.recv(16384)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed.set()
                return
            got += len(chunk)
            buf += chunk
            while True:
                parsed = parse_frame(buf)
                if parsed is None:
                    break
                frame, size = parsed
                buf = buf[size:]
                if frame.opcode == 0x8:
                    self.closed.set()
                    return
                if frame.opcode != 0x1:
                    continue
                self.frames += 1
                msg = json.loads(frame.payload)
                if "seq" in msg:
                    if msg["seq"] <= self.last.get(msg["sender"], -1):
                        self.errors.append(f"seq {msg['seq']} after {self.last[msg['sender']]}")
                    self.last[msg["sender"]] = msg["seq"]
            # Pace: never ahead of READ_BPS since the start.
            ahead = got / self.bps - (time.monotonic() - start) if self.bps else 0
            if ahead > 0:
                time.sleep(ahead)


def assert_no_reader_dropped(port, readers):
    assert not any(r.closed.is_set() for r in readers), "a reader was dropped"
    assert scrape(port).value("wsrelay_disconnects_total", reason="slow_reader") == 0
    for r in readers:
        assert not r.errors, r.errors


def big_message(seq):
    return json.dumps({"x": 0.5, "y": 0.5, "seq": seq, "pad": "p" * PAD})


def flood(sender, seconds=SECONDS, rate=RATE):
    """Sends big messages at `rate` for `seconds`, paced; returns how many were sent."""
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        sender.send_text(big_message(n))
        n += 1
        ahead = n / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    return n


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def join(port, **kw):
    ws = RawWS.connect(port, "/ws", **kw)
    welcome = json.loads(ws.recv_text())
    return ws, welcome["id"]


def test_big_messages_at_a_lawful_rate_conflate_for_slow_readers_instead_of_dropping_them(
        start_server):
    # The byte budget off: conflation alone must save the readers.
    srv = start_server("--max-byte-rate", "0")
    readers = [PacedReader(join(srv.port, rcvbuf=64 * 1024)[0]) for _ in range(READERS)]
    sender, me = join(srv.port)
    # The sender reads its own relays in a thread, unpaced: a fast reader itself.
    own = PacedReader(sender, bps=None)
    try:
        sent = flood(sender)
        # The last word: a small message after the flood, which every reader must get.
        sender.send_text(json.dumps({"x": 0.1, "y": 0.1, "seq": sent}))
        for r in readers:
            wait_for(lambda r=r: r.last.get(me) == sent or r.closed.is_set(), 30,
                     "a reader to get the sender's last message")
        assert_no_reader_dropped(srv.port, readers)
        m = scrape(srv.port)
        assert m.value("wsrelay_conflated_total") > 0, "the readers were never behind"
        assert m.value("wsrelay_rate_limited_total") == 0, "the sender passed --max-rate"
    finally:
        for r in readers + [own]:
            r.stop.set()


def test_byte_budget_drops_a_big_senders_excess_and_no_reader_is_dropped(start_server):
    srv = start_server()  # defaults: --max-byte-rate 64K
    readers = [PacedReader(join(srv.port, rcvbuf=64 * 1024)[0]) for _ in range(READERS)]
    sender, me = join(srv.port)
    own = PacedReader(sender, bps=None)
    try:
        sent = flood(sender)
        m = scrape(srv.port)
        limited = m.value("wsrelay_byte_rate_limited_total")
        # 64 KiB/s plus one second of burst over 3 s: about 16 of ~570 messages pass.
        assert limited > sent * 0.8, (limited, sent)
        assert m.value("wsrelay_rate_limited_total") == 0
        # A small message once the budget has refilled passes and reaches every reader.
        time.sleep(1.0)
        sender.send_text(json.dumps({"x": 0.1, "y": 0.1, "seq": sent}))
        for r in readers + [own]:
            wait_for(lambda r=r: r.last.get(me) == sent or r.closed.is_set(), TIMEOUT * 2,
                     "a reader to get the sender's last message")
        assert_no_reader_dropped(srv.port, readers)
    finally:
        for r in readers + [own]:
            r.stop.set()


def test_byte_budget_never_touches_a_cursor_page(start_server):
    # A page sends ~30 small updates a second; even 200/s of cursor-sized messages (the
    # --max-rate ceiling) stay far under 64 KiB/s.
    srv = start_server()
    sender, me = join(srv.port)
    own = PacedReader(sender, bps=None)
    try:
        for seq in range(400):
            sender.send_text(json.dumps({"x": seq / 400, "y": 0.5, "seq": seq, "name": "cursor"}))
            time.sleep(1 / 190)
        wait_for(lambda: own.last.get(me) == 399, TIMEOUT, "every message relayed")
        m = scrape(srv.port)
        assert m.value("wsrelay_byte_rate_limited_total") == 0
        assert m.value("wsrelay_rate_limited_total") == 0
    finally:
        own.stop.set()
