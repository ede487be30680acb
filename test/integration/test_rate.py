"""--max-rate N: a token bucket per /ws connection (capacity N, refilled at N per second).
Every text or binary message and every ping on /ws costs a token; one that finds none is
dropped (not relayed, no pong) and counted in wsrelay_rate_limited_total; the sender stays
connected. /echo is not rate limited.

Bounds: before each burst the flooder waits over a second, so its bucket is full; then a
burst of 100 lets through at least N (a full bucket) and far fewer than 100 (what refills
while the server reads the burst is a handful). Exact counts are asserted only where the
spec makes them exact: every message dropped is counted in wsrelay_rate_limited_total, and
every message let through in wsrelay_messages_in_total, and nothing else is.

What is let through is not what is relayed: a burst read in one pass is relayed as its last
message only (latest position wins, docs/protocol.md). So the relayed ones are checked to be
an increasing subsequence of those sent, and counts come from the metrics."""

import asyncio
import json
import time

import pytest

from conftest import (
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TIMEOUT,
    Bystanders,
    RawWS,
    build_frame,
    expect,
    join_room,
    join_text,
    recv,
    relayed,
    run,
    run_cli,
    scrape,
)

FULL_BUCKET_WAIT = 1.2  # s: any bucket of capacity N refilled at N/s is full again after this


def burst(n, start=0):
    return b"".join(build_frame(OP_TEXT, f'{{"n":{i}}}') for i in range(start, start + n))


async def collect_until_marker(ws, who, marker_body, timeout=TIMEOUT * 2):
    """Reads ws until the relay of who's `marker_body` message; returns the list of n values
    of who's {"n":i} messages seen on the way, each checked to be relayed exactly."""
    marker = relayed(marker_body, who)
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"marker never relayed (saw n={seen})"
        text = await asyncio.wait_for(ws.recv(), left)
        if text == marker:
            return seen
        msg = json.loads(text)
        if msg.get("sender") != who["id"] or "n" not in msg:
            continue  # bystanders, joins, leaves
        assert text == relayed(f'"n":{msg["n"]}', who), text
        seen.append(msg["n"])


async def until(ws, text, timeout=TIMEOUT):
    """Reads ws until exactly `text` arrives, skipping everything else (bystanders)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"never got {text!r}"
        if await asyncio.wait_for(ws.recv(), left) == text:
            return


def counters(port):
    m = scrape(port)
    return m.value("wsrelay_messages_in_total"), m.value("wsrelay_rate_limited_total")


def assert_relayed_subsequence(seen, sent):
    """Relayed n values: strictly increasing (never an older after a newer), all sent."""
    assert seen == sorted(set(seen)), f"out of order or repeated: {seen}"
    assert set(seen) <= set(sent), seen


def flood_and_count(port, n_msgs, observer_kw=None):
    """Observer o and flooder f (raw) on /ws; f sends n_msgs messages in one send() after its
    bucket is full, then a marker once the bucket has refilled. Returns (relayed n values seen
    by o, the same seen by f itself, how many of the burst were let through, and how many
    were counted as rate limited)."""

    async def go():
        o, wo, _ = await join_room(port, max_queue=None, **(observer_kw or {}))
        f = RawWS.connect(port, "/ws")
        wf = json.loads(f.recv_text())
        await until(o, join_text(wf))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        in_before, limited_before = counters(port)
        f.send_raw(burst(n_msgs))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        in_after, limited_after = counters(port)
        f.send_text('{"marker":1}')
        seen_o = await collect_until_marker(o, wf, '"marker":1')
        # The flooder is still connected and got relays too (sender included).
        seen_f = []
        while True:
            text = await asyncio.get_running_loop().run_in_executor(None, f.recv_text)
            if text == relayed('"marker":1', wf):
                break
            msg = json.loads(text)
            if msg.get("sender") == wf["id"]:
                seen_f.append(msg["n"])
        f.send_text('{"still":"connected"}')
        await until(o, relayed('"still":"connected"', wf))
        f.close()
        await o.close()
        return seen_o, seen_f, in_after - in_before, limited_after - limited_before

    return run(go(), timeout=60)


def check_burst(seen, seen_f, passed, limited, n_msgs, bystanders=False):
    # Bystanders' own messages are let through too (never limited at their pace).
    if bystanders:
        assert passed >= n_msgs - limited, f"{passed} let through, {limited} limited"
        passed = n_msgs - limited
    assert passed + limited == n_msgs, f"{passed} passed + {limited} limited != {n_msgs} sent"
    assert_relayed_subsequence(seen, range(n_msgs))
    assert_relayed_subsequence(seen_f, range(n_msgs))
    assert seen, "nothing of the burst was relayed"
    assert len(seen) <= passed, f"{len(seen)} relayed but only {passed} let through"


def test_burst_over_max_rate_is_cut_counted_and_flooder_stays(start_server):
    srv = start_server("--max-rate", 10)
    with Bystanders(srv.port, pause=0.25):
        seen, seen_f, passed, limited = flood_and_count(srv.port, 100)
    assert 50 <= limited <= 90, f"{limited} of 100 limited with --max-rate 10"
    check_burst(seen, seen_f, passed, limited, 100, bystanders=True)


def test_bucket_refills_and_paced_messages_all_pass(start_server):
    srv = start_server("--max-rate", 10)

    async def go():
        o, wo, _ = await join_room(srv.port, max_queue=None)
        f, wf, _ = await join_room(srv.port, max_queue=None)
        await expect(o, join_text(wf))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        # Empty the bucket...
        in0, limited0 = counters(srv.port)
        await asyncio.gather(*[f.send(f'{{"n":{i}}}') for i in range(60)])
        await asyncio.sleep(FULL_BUCKET_WAIT)
        in1, limited1 = counters(srv.port)
        assert limited1 - limited0 > 0 and in1 - in0 < 60, "all 60 passed a bucket of 10"
        await f.send('{"marker":1}')
        first = await collect_until_marker(o, wf, '"marker":1')
        assert_relayed_subsequence(first, range(60))
        # ...let it refill: 5 at once all pass (the last one at least is relayed)...
        await asyncio.sleep(FULL_BUCKET_WAIT)
        in2, limited2 = counters(srv.port)
        await asyncio.gather(*[f.send(f'{{"n":{i}}}') for i in range(100, 105)])
        await f.send('{"marker":2}')
        second = await collect_until_marker(o, wf, '"marker":2')
        in3, limited3 = counters(srv.port)
        assert limited3 == limited2, f"a refilled bucket dropped {limited3 - limited2}"
        assert in3 - in2 == 6, f"{in3 - in2} let through of 5 and a marker"
        assert_relayed_subsequence(second, range(100, 105))
        # ...and 15 paced at 4 per second (below the rate) all pass, each relayed: one
        # message per loop pass is never coalesced with another.
        for i in range(200, 215):
            await f.send(f'{{"n":{i}}}')
            await asyncio.sleep(0.25)
        await f.send('{"marker":3}')
        third = await collect_until_marker(o, wf, '"marker":3')
        assert third == list(range(200, 215)), f"paced messages were dropped: {third}"
        await o.close()
        await f.close()

    run(go(), timeout=60)


def test_max_rate_0_lets_every_message_of_a_burst_through(start_server):
    srv = start_server("--max-rate", 0)
    seen, seen_f, passed, limited = flood_and_count(srv.port, 100)
    assert (passed, limited) == (100, 0), f"--max-rate 0 dropped {limited} of 100"
    check_burst(seen, seen_f, passed, limited, 100)
    assert seen[-1] == 99, f"the burst's last message was not relayed: {seen}"


def test_default_max_rate_is_200(start_server):
    srv = start_server()
    # 100 at once from a full bucket of 200: every one passes.
    seen, seen_f, passed, limited = flood_and_count(srv.port, 100)
    assert (passed, limited) == (100, 0), f"default rate dropped {limited} of 100"
    check_burst(seen, seen_f, passed, limited, 100)
    assert seen[-1] == 99, f"the burst's last message was not relayed: {seen}"
    # 1000 at once: 200 pass (and what refills meanwhile), the rest are dropped and counted.
    seen, seen_f, passed, limited = flood_and_count(srv.port, 1000)
    assert 200 <= passed <= 700, f"{passed} of 1000 let through with the default rate"
    check_burst(seen, seen_f, passed, limited, 1000)


def test_pings_cost_tokens_and_limited_pings_get_no_pong(start_server):
    srv = start_server("--max-rate", 10)
    f = RawWS.connect(srv.port, "/ws")
    try:
        wf = json.loads(f.recv_text())
        time.sleep(FULL_BUCKET_WAIT)
        before = scrape(srv.port).value("wsrelay_rate_limited_total")
        f.send_raw(b"".join(build_frame(OP_PING, f"p{i}".encode()) for i in range(50)))
        time.sleep(FULL_BUCKET_WAIT)
        f.send_text('{"marker":1}')
        pongs = []
        marker = relayed('"marker":1', wf)
        while True:
            fr = f.recv_frame(timeout=TIMEOUT * 2)
            if fr.opcode == OP_PONG:
                pongs.append(int(fr.payload[1:]))
                continue
            if fr.opcode == OP_PING:  # a server ping (--ping-interval): answer it
                f.send_frame(OP_PONG, fr.payload)
                continue
            assert fr.opcode == OP_TEXT, fr
            if fr.payload.decode() == marker:
                break
        after = scrape(srv.port).value("wsrelay_rate_limited_total")
        assert 10 <= len(pongs) <= 40, f"{len(pongs)} pongs for 50 pings with --max-rate 10"
        assert pongs == sorted(pongs) and len(set(pongs)) == len(pongs), pongs
        assert after - before == 50 - len(pongs), (before, after, len(pongs))
    finally:
        f.close()


def test_echo_is_not_rate_limited(start_server):
    srv = start_server("--max-rate", 10)
    ws = RawWS.connect(srv.port, "/echo")
    try:
        ws.send_raw(b"".join(build_frame(OP_TEXT, f"m{i}") for i in range(100)))
        for i in range(100):
            assert ws.recv_text() == f"m{i}"
        ws.send_raw(b"".join(build_frame(OP_PING, f"p{i}".encode()) for i in range(100)))
        for i in range(100):
            fr = ws.recv_frame()
            assert fr.opcode == OP_PONG and fr.payload == f"p{i}".encode(), (i, fr)
    finally:
        ws.close()
    assert scrape(srv.port).value("wsrelay_rate_limited_total") == 0


def test_rate_limit_is_per_connection(start_server):
    # One flooder exhausting its own bucket takes nothing from another client's.
    srv = start_server("--max-rate", 10)

    async def go():
        o, wo, _ = await join_room(srv.port, max_queue=None)
        f = RawWS.connect(srv.port, "/ws")
        wf = json.loads(f.recv_text())
        await expect(o, join_text(wf))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        f.send_raw(burst(100))
        # Until the flood has been read and judged: its drops stop growing.
        deadline, last = time.monotonic() + TIMEOUT, -1
        while True:
            _, limited = counters(srv.port)
            if limited == last and limited > 0:
                break
            assert time.monotonic() < deadline, "the flood was never limited"
            last = limited
            await asyncio.sleep(0.2)
        # Right after the flood, o sends 8 at once: its own bucket is full, so none is
        # limited, and the last is relayed.
        in_before, limited_before = counters(srv.port)
        await asyncio.gather(*[o.send(f'{{"o":{i}}}') for i in range(8)])
        got = []
        deadline = time.monotonic() + TIMEOUT * 2
        while 7 not in got and time.monotonic() < deadline:
            msg = json.loads(await recv(o))
            if msg.get("sender") == wo["id"]:
                got.append(msg["o"])
        assert got and got[-1] == 7, f"o's last message never came back: {got}"
        assert_relayed_subsequence(got, range(8))
        in_after, limited_after = counters(srv.port)
        assert limited_after == limited_before, "o's messages were limited by f's flood"
        assert in_after - in_before == 8
        f.close()
        await o.close()

    run(go(), timeout=60)


def test_pongs_cost_nothing_so_a_slow_sender_survives_frequent_pings(start_server):
    # --max-rate 1 with a ping every 300 ms: if pongs cost tokens, most would be dropped and
    # the client dropped for never answering.
    srv = start_server("--max-rate", 1, "--ping-interval", "300ms")

    async def go():
        a, wa, _ = await join_room(srv.port, max_queue=None)  # answers pings by itself
        b, wb, _ = await join_room(srv.port, max_queue=None)
        await expect(a, join_text(wb))
        for i in range(3):
            await asyncio.sleep(1.2)
            await a.send(f'{{"i":{i}}}')
            await expect(a, relayed(f'"i":{i}', wa))
            await expect(b, relayed(f'"i":{i}', wa))
        await a.close()
        await b.close()

    run(go(), timeout=60)


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "10x"])
def test_bad_max_rate_exits_2(value):
    r = run_cli("--max-rate", value)
    assert r.returncode == 2, r
