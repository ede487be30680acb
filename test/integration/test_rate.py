"""--max-rate N: a token bucket per /ws connection (capacity N, refilled at N per second).
Every text or binary message and every ping on /ws costs a token; one that finds none is
dropped (not relayed, no pong) and counted in wsrelay_rate_limited_total; the sender stays
connected. /echo is not rate limited.

Bounds: before each burst the flooder waits over a second, so its bucket is full; then a
burst of 100 lets through at least N (a full bucket) and far fewer than 100 (what refills
while the server reads the burst is a handful). Exact counts are asserted only where the
spec makes them exact: every message not relayed is counted, and nothing else is."""

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


def flood_and_count(port, n_msgs, observer_kw=None):
    """Observer o and flooder f (raw) on /ws; f sends n_msgs messages in one send() after its
    bucket is full, then a marker once the bucket has refilled. Returns (relayed n values seen
    by o, the same seen by f itself, rate_limited_total before, after)."""

    async def go():
        o, wo, _ = await join_room(port, max_queue=None, **(observer_kw or {}))
        f = RawWS.connect(port, "/ws")
        wf = json.loads(f.recv_text())
        await until(o, join_text(wf))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        before = scrape(port).value("wsrelay_rate_limited_total")
        f.send_raw(burst(n_msgs))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        f.send_text('{"marker":1}')
        seen_o = await collect_until_marker(o, wf, '"marker":1')
        # The flooder is still connected and got the same relays (sender included).
        seen_f = []
        while True:
            text = await asyncio.get_running_loop().run_in_executor(None, f.recv_text)
            if text == relayed('"marker":1', wf):
                break
            msg = json.loads(text)
            if msg.get("sender") == wf["id"]:
                seen_f.append(msg["n"])
        after = scrape(port).value("wsrelay_rate_limited_total")
        f.send_text('{"still":"connected"}')
        await until(o, relayed('"still":"connected"', wf))
        f.close()
        await o.close()
        return seen_o, seen_f, before, after

    return run(go(), timeout=60)


def test_burst_over_max_rate_is_cut_counted_and_flooder_stays(start_server):
    srv = start_server("--max-rate", 10)
    with Bystanders(srv.port, pause=0.25):
        seen, seen_f, before, after = flood_and_count(srv.port, 100)
    assert 10 <= len(seen) <= 50, f"{len(seen)} of 100 relayed with --max-rate 10: {seen}"
    assert seen == sorted(seen) and set(seen) <= set(range(100)), seen
    assert seen_f == seen, "the flooder's own copies differ from what the others got"
    assert before == 0, f"rate_limited_total was {before} before any flood"
    assert after - before == 100 - len(seen), \
        f"{100 - len(seen)} dropped but rate_limited_total rose by {after - before}"


def test_bucket_refills_and_paced_messages_all_pass(start_server):
    srv = start_server("--max-rate", 10)

    async def go():
        o, wo, _ = await join_room(srv.port, max_queue=None)
        f, wf, _ = await join_room(srv.port, max_queue=None)
        await expect(o, join_text(wf))
        await asyncio.sleep(FULL_BUCKET_WAIT)
        # Empty the bucket...
        await asyncio.gather(*[f.send(f'{{"n":{i}}}') for i in range(60)])
        await asyncio.sleep(FULL_BUCKET_WAIT)
        await f.send('{"marker":1}')
        first = await collect_until_marker(o, wf, '"marker":1')
        assert len(first) < 60, f"all 60 passed a bucket of 10: {first}"
        # ...let it refill: 5 at once all pass...
        await asyncio.sleep(FULL_BUCKET_WAIT)
        await asyncio.gather(*[f.send(f'{{"n":{i}}}') for i in range(100, 105)])
        await f.send('{"marker":2}')
        second = await collect_until_marker(o, wf, '"marker":2')
        assert second == list(range(100, 105)), f"a refilled bucket dropped some: {second}"
        # ...and 15 paced at 4 per second (below the rate) all pass.
        for i in range(200, 215):
            await f.send(f'{{"n":{i}}}')
            await asyncio.sleep(0.25)
        await f.send('{"marker":3}')
        third = await collect_until_marker(o, wf, '"marker":3')
        assert third == list(range(200, 215)), f"paced messages were dropped: {third}"
        await o.close()
        await f.close()

    run(go(), timeout=60)


def test_max_rate_0_relays_every_message_of_a_burst(start_server):
    srv = start_server("--max-rate", 0)
    seen, seen_f, before, after = flood_and_count(srv.port, 100)
    assert seen == list(range(100)), f"--max-rate 0 dropped messages: {len(seen)} of 100"
    assert seen_f == seen
    assert before == after == 0


def test_default_max_rate_is_200(start_server):
    srv = start_server()
    # 100 at once from a full bucket of 200: every one passes.
    seen, _, before, after = flood_and_count(srv.port, 100)
    assert seen == list(range(100)), f"default rate dropped {100 - len(seen)} of 100"
    assert after == before == 0
    # 1000 at once: 200 pass (and what refills meanwhile), the rest are dropped and counted.
    seen, _, before, after = flood_and_count(srv.port, 1000)
    assert 200 <= len(seen) <= 700, f"{len(seen)} of 1000 relayed with the default rate"
    assert after - before == 1000 - len(seen)


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
        # Right after the flood, o sends 8 at once: its own bucket is full.
        await asyncio.gather(*[o.send(f'{{"o":{i}}}') for i in range(8)])
        got = []
        deadline = time.monotonic() + TIMEOUT * 2
        while len(got) < 8 and time.monotonic() < deadline:
            msg = json.loads(await recv(o))
            if msg.get("sender") == wo["id"]:
                got.append(msg["o"])
        assert got == list(range(8)), f"o's messages were limited by f's flood: {got}"
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
