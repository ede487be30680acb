"""Rooms behind Debian's haproxy with docs/scaling.md's room hashing (issue 11).

docs/scaling.md routes rooms, not connections: `/ws/<room>` and `/r/<room>` go to a node
chosen by a consistent hash of the room's name (`balance hash path,field(3,/)` +
`hash-type consistent`), everything else by `leastconn`. These tests start a redis-server,
two wsrelay nodes joined through it, and haproxy with that configuration (free loopback
ports; every process stopped by PID), and hold the setup to what the doc promises:

  - every client of a room lands on the same node; two rooms that hash to different nodes
    each fill their own node. Where a client landed is read from each node's own /metrics
    (wsrelay_rooms_open, wsrelay_websockets_open{route="ws"}, wsrelay_room_clients_max),
    scraped directly from the nodes, never through haproxy;
  - members still see each other (welcome, join, cursor messages), and nothing of one room
    reaches the other; with every room on one node, nothing crosses Redis
    (wsrelay_relayed_remote_total stays 0, no node keeps remote clients);
  - bench/wsbench --rooms through haproxy: no foreign delivery, no loss, and no room split
    over the two nodes (the sum of the nodes' wsrelay_rooms_open is the number of rooms).

The haproxy configuration is the doc's, less its per-address handshake limit (every client
here comes from 127.0.0.1) and with a stats listener, to wait until both servers are UP.
Bounds are generous (the ASan build is slower); nothing here asserts speed.
"""

import asyncio
import json
import os
import re
import subprocess

import pytest
import websockets

from conftest import HOST, REPO, TIMEOUT, relayed, run, scrape
from test_cluster import (  # noqa: F401 (redis: the fixture)
    READY_BOUND, Haproxy, eventually, redis, start_nodes)

WSBENCH = os.environ.get("WSBENCH_BIN") or str(REPO / "bench" / "wsbench")

def doc_haproxy_config():
    """docs/scaling.md's haproxy configuration (section "A load balancer: haproxy"), read out
    of the doc itself, so that these tests prove what the doc tells operators to run. Made to
    run here: on loopback with our nodes' ports, maxconn within this machine's descriptor
    limit (50000 makes haproxy want 100k descriptors), without the per-address handshake
    limit (every client here comes from 127.0.0.1), and with a stats listener to wait until
    both servers are UP. Placeholders for Haproxy: {host} {port} {sport} {p1} {p2}."""
    doc = (REPO / "docs" / "scaling.md").read_text()
    m = re.search(r"```haproxy\n(.*?)```", doc, re.S)
    assert m, "docs/scaling.md has no haproxy block"
    out = []
    for line in m.group(1).splitlines():
        line = line.split("#")[0].rstrip()  # the doc's comments
        if not line or re.match(r"\s*(stick-table|http-request)\b", line):
            continue  # the per-address limit
        line = re.sub(r"^(\s*maxconn) \d+.*$", r"\1 8000", line)
        line = line.replace("bind :80", "bind {host}:{port}")
        line = line.replace("10.0.0.11:7071", "{host}:{p1}").replace("10.0.0.12:7071", "{host}:{p2}")
        out.append(line)
    cfg = "\n".join(out)
    assert cfg.count("default_backend") == 1, "docs/scaling.md's frontend has two defaults"
    for part in ("balance hash path,field(3,/)", "hash-type consistent", "{host}:{p1}",
                 "{host}:{p2}", "bind {host}:{port}"):
        assert part in cfg, f"docs/scaling.md's haproxy configuration lost {part!r}"
    return cfg + "\nlisten stats\n    bind {host}:{sport}\n    stats enable\n    stats uri /stats\n"




def servers_up(hap):
    """True when every server of both backends is UP."""
    try:
        st = hap.statuses()
    except OSError:
        return False
    st = {k: v for k, v in st.items() if k[0] in ("rooms", "files")}
    return len(st) == 4 and all(v == "UP" for v in st.values())


@pytest.fixture
def cluster(redis, start_server, tmp_path):  # noqa: F811 (redis: the fixture)
    """(haproxy, [node a, node b]): two nodes over one Redis behind the room-hashing haproxy."""
    r = redis()
    nodes = start_nodes(start_server, r, 2, "--max-connect-rate", "0")
    hap = Haproxy(tmp_path, nodes[0].port, nodes[1].port, doc_haproxy_config(),
                  "haproxy-rooms")
    try:
        eventually(lambda: servers_up(hap), "haproxy: both servers UP in both backends",
                   READY_BOUND * 2)
        yield hap, nodes
    finally:
        hap.stop()


def where(nodes):
    """Each node's (rooms open, /ws connections open, largest room), from its own /metrics."""
    out = []
    for n in nodes:
        m = scrape(n.port)
        out.append((m.value("wsrelay_rooms_open"), m.value("wsrelay_websockets_open", route="ws"),
                    m.value("wsrelay_room_clients_max")))
    return out


class Member:
    """A client of /ws/<room> through haproxy, reading in the background."""

    def __init__(self, ws, welcome):
        self.ws, self.welcome, self.msgs = ws, welcome, []
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def join(cls, port, room):
        ws = await websockets.connect(f"ws://{HOST}:{port}/ws/{room}", max_queue=None,
                                      open_timeout=TIMEOUT, ping_interval=None)
        text = await asyncio.wait_for(ws.recv(), TIMEOUT)
        welcome = json.loads(text)
        assert welcome["type"] == "welcome" and welcome["room"] == room, text
        return cls(ws, welcome)

    async def _read(self):
        try:
            async for m in self.ws:
                self.msgs.append(m)
        except websockets.ConnectionClosed:
            pass

    async def close(self):
        await self.ws.close()
        await asyncio.wait_for(self.task, TIMEOUT)


async def wait_until(check, what, timeout=TIMEOUT * 2):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.05)


async def node_of(hap, nodes, room):
    """Which node a room hashes to: one probe client, seen in the nodes' /metrics."""
    m = await Member.join(hap.port, room)
    try:
        await wait_until(lambda: sum(w[1] or 0 for w in where(nodes)) == 1, "probe counted")
        return [w[1] for w in where(nodes)].index(1)
    finally:
        await m.close()
        await wait_until(lambda: all(w[1] == 0 for w in where(nodes)), "probe gone")


def test_two_rooms_each_land_whole_on_their_node_and_members_see_each_other(cluster):
    hap, nodes = cluster
    size = 5

    async def go():
        # Two room names that hash to different nodes (each candidate is a coin toss).
        room_a = "alpha"
        node_a = await node_of(hap, nodes, room_a)
        room_b = None
        for i in range(24):
            cand = f"beta-{i}"
            if await node_of(hap, nodes, cand) != node_a:
                room_b = cand
                break
        assert room_b is not None, "24 room names all hashed to one node: is hashing on?"

        a = [await Member.join(hap.port, room_a) for _ in range(size)]
        b = [await Member.join(hap.port, room_b) for _ in range(size)]
        try:
            # Node of A: exactly room A's members, in one room; likewise B's node.
            want = [None, None]
            want[node_a] = want[1 - node_a] = (1, size, size)
            await wait_until(lambda: where(nodes) == want,
                             f"each node holds one room of {size} ({where(nodes)})")
            for n in nodes:
                m = scrape(n.port)
                assert m.value("wsrelay_remote_clients") == 0, "a room straddles the nodes"

            # Members see each other: every member of A gets every A member's message, none
            # of B's; and the other way round.
            sent = {room_a: [], room_b: []}
            for room, members in ((room_a, a), (room_b, b)):
                for k, c in enumerate(members):
                    body = f'"x":{k},"y":{len(room)}'
                    await c.ws.send("{" + body + "}")
                    sent[room].append(relayed(body, c.welcome))
            for room, members, other in ((room_a, a, room_b), (room_b, b, room_a)):
                for c in members:
                    await wait_until(lambda c=c, room=room: all(t in c.msgs for t in sent[room]),
                                     f"a member of {room} has all its room's messages")
            # A fence: one more message in each room, after which nothing of the other room
            # can still be on its way (one node, one room, in order).
            for members in (a, b):
                await members[0].ws.send('{"fence":1}')
            for members in (a, b):
                fence = relayed('"fence":1', members[0].welcome)
                for c in members:
                    await wait_until(lambda c=c, f=fence: f in c.msgs, "fence")
            for room, members, other in ((room_a, a, room_b), (room_b, b, room_a)):
                for c in members:
                    leaked = [t for t in sent[other] if t in c.msgs]
                    assert not leaked, f"a member of {room} got {other}'s messages: {leaked}"
            for n in nodes:
                assert scrape(n.port).value("wsrelay_relayed_remote_total") == 0
        finally:
            for c in a + b:
                await c.close()

    run(go(), timeout=120)


def test_many_rooms_each_on_one_node_and_the_page_path_agrees(cluster):
    """Eight rooms of three: no room is split (the nodes' rooms_open add up to 8), and
    /r/<room>, the page of a room, is served by the node its /ws/<room> lands on."""
    hap, nodes = cluster
    rooms = [f"room-{i}" for i in range(8)]

    async def go():
        members = []
        try:
            for room in rooms:
                for _ in range(3):
                    members.append(await Member.join(hap.port, room))
            await wait_until(lambda: sum(w[1] or 0 for w in where(nodes)) == 24, "24 open")
            w = where(nodes)
            assert w[0][0] + w[1][0] == len(rooms), f"a room is split over the nodes: {w}"
            assert all(x[2] in (0, 3) for x in w), f"a room of 3 is split: {w}"
            assert all(x[1] == 3 * x[0] for x in w), w
        finally:
            for c in members:
                await c.close()

    run(go(), timeout=120)


@pytest.mark.skipif(not os.access(WSBENCH, os.X_OK), reason="bench/wsbench not built")
def test_wsbench_rooms_through_haproxy_no_room_split_nothing_foreign(cluster):
    hap, nodes = cluster
    before = [scrape(n.port).value("wsrelay_relayed_total") for n in nodes]
    out = subprocess.run([WSBENCH, "cursor", "--port", str(hap.port), "--rooms", "10",
                          "--clients", "40", "--rate", "10", "--duration", "1", "--warmup",
                          "0.5", "--drain", "2", "--progress", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["connected"] == 40 and r["rooms_joined"] == 10, r
    assert r["foreign"] == 0 and r["bad_frames"] == 0 and r["disconnects"] == 0, r
    assert r["received"] == r["expected"] > 0, r
    after = [scrape(n.port) for n in nodes]
    assert sum(m.value("wsrelay_relayed_total") for m in after) - sum(before) >= r["received"]
    assert sum(m.value("wsrelay_relayed_remote_total") for m in after) == 0, \
        "a room was split over the nodes: its deliveries crossed Redis"
