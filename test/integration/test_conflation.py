"""Conflation (issue 4): a reader that stops reading among 100 clients gets the latest
positions in bounded memory, and nobody else waits for it.

While a /ws client is behind (after a write, more than --max-buffer/16 bytes are still pending
because its socket will not take them), the server stops queueing relayed cursor updates for
it and only remembers which senders moved; once it catches up it gets each such sender's
latest message. Welcome, join and leave are never conflated.

The 97 movers are bench/wsbench's (C, so the test measures the server, not a Python client's
backlog). The stalled reader and an observer (who also moves, then stops) are raw sockets.
"""

import json
import os
import subprocess
import threading
import time

from conftest import REPO, RawWS, scrape

WSBENCH = os.environ.get("WSBENCH_BIN") or str(REPO / "bench" / "wsbench")
MOVERS = 97  # plus the stalled reader and the observer: 100 clients
RATE = 20  # Hz each: ~2000 updates a second, ~180 KB/s for the stalled reader to refuse
SECONDS = 10
BURST = 50  # updates the observer sends while the stalled reader is behind, then stops


def track(ws, last, stop, errors):
    """Reads relayed updates until stop is set, keeping each sender's newest one: wsbench's
    by t (its scheduled send time), the observer's by x (a counter). Fails on an older update
    arriving after a newer one from the same sender."""
    try:
        while not stop.is_set():
            msg = json.loads(ws.recv_text(timeout=10))
            if msg.get("type") is not None or "sender" not in msg:
                continue
            key = msg["t"] if "t" in msg else msg["x"]
            if key <= last.get(msg["sender"], -1):
                errors.append(f"older update after a newer one: {msg}")
            last[msg["sender"]] = key
    except (AssertionError, OSError) as e:  # a timeout, or the test closing the socket
        if not stop.is_set():
            errors.append(str(e))


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_stalled_reader_among_100_is_conflated_bounded_and_harmless(start_server):
    # Conflation starts 16 KiB behind; 99 clients from one address come close to the default
    # --max-connect-rate burst (100), which is not what this test is about.
    srv = start_server("--max-buffer", "256K", "--max-connect-rate", "0")
    # The stalled reader reads nothing for now. Its receive buffer is small but not tiny:
    # under one segment (64 KiB on loopback) TCP's silly-window avoidance would pace its
    # catch-up on zero-window probes, which back off to seconds: that would time TCP.
    slow = RawWS.connect(srv.port, "/ws", rcvbuf=64 * 1024)
    json.loads(slow.recv_text())
    observer = RawWS.connect(srv.port, "/ws")
    me = json.loads(observer.recv_text())["id"]
    seen, slow_seen, errors, stop = {}, {}, [], threading.Event()
    threading.Thread(target=track, args=(observer, seen, stop, errors), daemon=True).start()

    bench = subprocess.Popen(
        [WSBENCH, "cursor", "--port", str(srv.port), "--clients", str(MOVERS),
         "--rate", str(RATE), "--duration", str(SECONDS), "--warmup", "1", "--drain", "3",
         "--progress", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The stalled reader's socket fills (~400 KB), then its queue reaches the mark.
        wait_for(lambda: scrape(srv.port).value("wsrelay_conflated_total") > 0, 20,
                 "the stalled reader to be conflated")

        # The observer moves BURST times, then stops for good. Its updates reach the stalled
        # reader only as a debt: the one way it can learn the final position.
        for k in range(BURST):
            observer.send_text(json.dumps({"x": k}))
        wait_for(lambda: seen.get(me) == BURST - 1, 10, "the observer's own last update")
        time.sleep(0.5)

        # Bounded: its queue stayed near the 16 KiB mark, far from the 256 KiB cap.
        assert scrape(srv.port).value("wsrelay_wbuf_high_water_bytes") < 128 * 1024

        # It wakes up while wsbench's movers still move, and catches up with the present.
        woke = dict(seen)
        threading.Thread(target=track, args=(slow, slow_seen, stop, errors), daemon=True).start()
        wait_for(lambda: slow_seen.get(me) == BURST - 1, 10,
                 "the stalled reader to get the observer's final position")
        period_us = 1_000_000 // RATE
        wait_for(lambda: all(slow_seen.get(s, -1) >= t - 2 * period_us
                             for s, t in woke.items() if s != me), 10,
                 "the stalled reader to catch up with every mover")
        assert len(woke) == MOVERS + 1
    finally:
        out, err = bench.communicate(timeout=120)
        stop.set()
    assert bench.returncode == 0, err.decode()[-2000:]
    res = json.loads(out.decode().strip().splitlines()[-1])

    # Nobody else waited for it: the wsbench clients got their updates with a p99 far below
    # what queueing behind a stalled socket would cost (a generous behaviour bound;
    # docs/benchmarks.md measures latency properly). Not every update: two from one sender
    # read in one pass are relayed as the later one (latest position wins), which happens
    # whenever wsbench, sharing two cores with the server, sends a little late.
    assert res["bad_frames"] == 0 and res["connect_failures"] == 0
    assert 0 < res["received"] <= res["expected"], res
    assert res["received"] > 0.5 * res["expected"], res
    # What coalescing must never cost: an older position after a newer one, or a pair of
    # clients that never heard of each other.
    assert res["reordered"] == 0 and res["fresh_never_pairs"] == 0, res
    assert res["p99_ms"] < 1000, res
    assert not errors, errors
    assert scrape(srv.port).value("wsrelay_disconnects_total", reason="slow_reader") == 0
    slow.close()
    observer.close()
