"""Rooms across nodes (issue 11), judged from the outside: each room has its own Redis channel,
`<--redis-channel>/<name>` ("wsrelay/doc" for room doc, "wsrelay/" for the default room), that
a node subscribes to while it has a member there; the control channel ("wsrelay") carries hb,
bye and hello-to-every-room (spec/rooms.md, "Across nodes").

What the tests hold the nodes to:
  - the members of each room see each other across nodes, byte for byte and exactly once, and
    receive nothing caused by another room;
  - subscriptions follow membership: PUBSUB CHANNELS lists wsrelay/<room> exactly while some
    node has a member there, PUBSUB NUMSUB counts the nodes serving it, and each node's
    subscriber connection holds the control channel plus one channel per room it serves;
  - a node that serves no member of a room is not subscribed to it and receives none of its
    traffic (its received counter grows by the heartbeats of the control channel only);
  - a node killed with -9, a node stopped with SIGTERM (one bye) and a Redis restart, with
    several rooms: presence is cleaned up or restored in every room within the bounds
    test_cluster.py uses, and after the restart every current room is subscribed again;
  - a room freed and opened again on a node within a few ms (its last member leaves, a new
    one enters), several times: the node still hears the room (the UNSUBSCRIBE/SUBSCRIBE race
    with hiredis's per-channel callbacks that backplane.c handles).

Redis helpers, nodes and clients are test_cluster.py's. Bounds are generous and no test asserts
speed.
"""

import asyncio
import collections
import json
import math
import os
import re
import socket
import threading
import time

from conftest import HttpConn, RawWS, accept_for, handshake_request, new_key, run
from test_cluster import (  # noqa: F401 - redis is a fixture
    BYE_BOUND,
    CONTROL,
    GONE_BOUND,
    JOIN_BOUND,
    READY_BOUND,
    RESYNC_BOUND,
    TIMEOUT,
    Client,
    Spy,
    aeventually,
    bare,
    cluster_log,
    eventually,
    fence,
    first_on_its_node,
    join_text,
    kill_node,
    leave_text,
    metric,
    node_id,
    redis,
    relayed,
    scrape,
    start_nodes,
    wait_remote,
    welcome_peers,
)

# ---------------------------------------------------------------------------------------------
# Redis, seen from outside: channels, subscribers, and which connection is which node's
# ---------------------------------------------------------------------------------------------


def channel(room):
    return f"{CONTROL}/{room}"


def redis_call(r, *args):
    c = r.client()
    try:
        return c.call_ok(*args)
    finally:
        c.close()


def pubsub_channels(r):
    """PUBSUB CHANNELS wsrelay*: every channel of ours some connection subscribes to."""
    return {ch.decode() for ch in redis_call(r, "PUBSUB", "CHANNELS", f"{CONTROL}*")}


def numsub(r, *channels):
    reply = redis_call(r, "PUBSUB", "NUMSUB", *channels)
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


def _local_ports_to(pid, port):
    """The local ports of a process's TCP connections to 127.0.0.1:port (/proc/net/tcp, and
    the socket inodes in /proc/<pid>/fd)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.split(":")[1], 16) == port:
                ports.add(int(local.split(":")[1], 16))
    return ports


def node_subscriptions(r, srv):
    """How many channels the node's connections to Redis subscribe to (CLIENT LIST's sub=),
    and how many connections it has: the subscriber holds the control channel plus one per
    room the node serves; the publisher none."""
    ports = _local_ports_to(srv.proc.pid, r.port)
    listing = redis_call(r, "CLIENT", "LIST").decode()
    subs, conns = 0, 0
    for line in listing.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
        if int(fields["addr"].rsplit(":", 1)[1]) in ports:
            conns += 1
            subs += int(fields["sub"]) + int(fields["psub"])
    return subs, conns


def wait_channels(r, want, timeout, what):
    """PUBSUB CHANNELS wsrelay* is exactly {control} | {channel(room): room in want}, and
    NUMSUB of each is want[room] (the number of nodes serving it)."""
    expected = {CONTROL} | {channel(room) for room in want}

    def check():
        got = pubsub_channels(r)
        if got != expected:
            return False
        n = numsub(r, *sorted(channel(room) for room in want)) if want else {}
        return all(n[channel(room)] == k for room, k in want.items()) or (got, n)

    last = eventually(lambda: (v := check()) is True and v,
                      lambda: f"{what}: PUBSUB CHANNELS {sorted(pubsub_channels(r))}, "
                              f"want {sorted(expected)} with NUMSUB {want}", timeout)
    return last


def expect_subscriptions(r, nodes_and_rooms, timeout=READY_BOUND):
    """Each node's subscriber holds the control channel plus one channel per room it serves."""
    for srv, nrooms in nodes_and_rooms:
        eventually(lambda srv=srv, nrooms=nrooms: node_subscriptions(r, srv) == (1 + nrooms, 2),
                   lambda srv=srv, nrooms=nrooms: f"node on port {srv.port} subscribed to the "
                   f"control channel and {nrooms} rooms (has {node_subscriptions(r, srv)}: "
                   f"channels, connections)", timeout)


# ---------------------------------------------------------------------------------------------
# Rooms of clients
# ---------------------------------------------------------------------------------------------


def unlisted_joins(cl, members):
    """The joins cl must get: every other member of its room its welcome did not list."""
    listed = {json.loads(p)["sender"] for p in welcome_peers(cl.welcome_text)}
    return [join_text(o.welcome) for o in members if o is not cl and o.id not in listed]


def check_welcome_in_room(cl, members):
    """A welcome lists each peer once, and only members of cl's room."""
    listed = [json.loads(p)["sender"] for p in welcome_peers(cl.welcome_text)]
    assert len(set(listed)) == len(listed), cl.welcome_text
    assert set(listed) <= {o.id for o in members if o is not cl}, \
        f"{cl.label} in room {cl.room!r}: welcome lists others: {cl.welcome_text}"


def check_exactly(cl, want):
    """cl received exactly the texts in `want`, each as many times, byte for byte."""
    got, want = collections.Counter(cl.msgs), collections.Counter(want)
    assert got == want, (f"{cl.label} (room {cl.room!r}): extra {list((got - want).elements())}, "
                         f"missing {list((want - got).elements())}")


def check_streams(cl, extra, streams):
    """cl received the texts in `extra` exactly once each, and of each stream (one sender's
    messages, in sending order) a subsequence in order, without repeats, ending with its
    last: two messages of one sender read in one pass are relayed as the later one (latest
    position wins), so a stream may lose members, never its end, its order or its bytes."""
    rest = [t for t in cl.msgs if t not in extra]
    assert collections.Counter(extra) == collections.Counter(t for t in cl.msgs if t in extra)
    for s in streams:
        got = [t for t in rest if t in s]
        pos = [s.index(t) for t in got]
        assert pos == sorted(set(pos)), f"{cl.label}: out of order or repeated: {got}"
        assert got and got[-1] == s[-1], f"{cl.label}: a stream's last message is missing"
    assert all(any(t in s for s in streams) for t in rest), f"{cl.label}: foreign {rest}"


async def join_rooms(plan):
    """plan: [(node, label, room)], joined in that order; returns {label: Client}."""
    out = {}
    for srv, label, room in plan:
        out[label] = await Client.join(srv.port, label, room=room)
    return out


def by_room(clients):
    rooms = collections.defaultdict(list)
    for cl in clients.values():
        rooms[cl.room].append(cl)
    return rooms


# ---------------------------------------------------------------------------------------------
# Several rooms on three nodes
# ---------------------------------------------------------------------------------------------


def test_rooms_across_three_nodes_see_each_other_and_nothing_of_other_rooms(redis, start_server):
    """Five rooms over three nodes, the default one included, "Alpha" beside "alpha" (names are
    case-sensitive), a room with every unreserved character, and a room alone on one node.
    Each client gets exactly its room's joins, messages and leave, byte for byte and once;
    nothing with another room's client in it."""
    r = redis()
    na, nb, nc = start_nodes(start_server, r, 3)

    async def go():
        cl = await join_rooms([
            (na, "d-a", ""), (nc, "d-c", ""),
            (na, "al-a", "alpha"), (nb, "al-b1", "alpha"), (nc, "al-c", "alpha"),
            (nb, "al-b2", "alpha"),
            (nb, "Al-b", "Alpha"), (nc, "Al-c", "Alpha"),
            (nc, "u-c", "Az09-._~"), (na, "u-a", "Az09-._~"),
            (na, "solo", "solo"),
        ])
        rooms = by_room(cl)
        # The room's first client on each node is welcomed alone.
        for label in ("d-a", "d-c", "al-a", "al-b1", "al-c", "Al-b", "Al-c", "u-c", "u-a",
                      "solo"):
            assert welcome_peers(cl[label].welcome_text) == [], cl[label].welcome_text
        # B serves alpha by then: al-b2's welcome lists al-b1, and the others B has heard of.
        assert bare(cl["al-b1"]) in welcome_peers(cl["al-b2"].welcome_text), \
            cl["al-b2"].welcome_text
        for c in cl.values():
            check_welcome_in_room(c, rooms[c.room])
        joins = {c.label: unlisted_joins(c, rooms[c.room]) for c in cl.values()}
        for c in cl.values():
            await c.wait_for(joins[c.label], JOIN_BOUND, "its room's joins")
        # Remote members of the rooms each node serves, and only those: A serves "", alpha,
        # Az09-._~ and solo; B alpha and Alpha; C "", alpha, Alpha and Az09-._~.
        for srv, want in ((na, 1 + 3 + 1), (nb, 2 + 1), (nc, 1 + 3 + 1 + 1)):
            await wait_remote([(srv, want)])

        # Three rounds, each waited for everywhere: two messages of one sender read in one
        # pass would be relayed as the later one (latest position wins), and this test is
        # about where each one goes, exactly once.
        sent = {c.label: [] for c in cl.values()}
        for i in range(3):
            for c in cl.values():
                sent[c.label].append(await c.send(f'"x":{i},"room":{json.dumps(c.room)},'
                                                  f'"from":"{c.label}"'))
            for c in cl.values():
                await c.wait_for([t for o in rooms[c.room] for t in sent[o.label]], JOIN_BOUND,
                                 "its room's messages")
        everything = {room: [t for o in members for t in sent[o.label]]
                      for room, members in rooms.items()}
        marks = {room: await fence(members) for room, members in rooms.items()}
        for c in cl.values():
            check_exactly(c, joins[c.label] + everything[c.room] + marks[c.room])
            for o in rooms[c.room]:  # each sender's messages in order
                order = [t for t in c.msgs if t in sent[o.label]]
                assert order == sent[o.label], f"{c.label}: {o.label}'s out of order {order}"

        # A leave goes to its room only.
        gone = cl.pop("al-b2")
        await gone.close()
        rooms["alpha"].remove(gone)
        for o in rooms["alpha"]:
            await o.wait_for([leave_text(gone.welcome)], JOIN_BOUND, "al-b2's leave")
        marks2 = {room: await fence(members) for room, members in rooms.items()}
        for c in cl.values():
            extra = [leave_text(gone.welcome)] if c.room == "alpha" else []
            check_exactly(c, joins[c.label] + everything[c.room] + marks[c.room] + extra +
                          marks2[c.room])
        for c in cl.values():
            await c.close()

    run(go(), timeout=90)


# ---------------------------------------------------------------------------------------------
# Subscriptions follow membership
# ---------------------------------------------------------------------------------------------


def test_redis_subscriptions_follow_membership(redis, start_server):
    """PUBSUB CHANNELS lists wsrelay/<room> exactly while some node has a member there, and
    PUBSUB NUMSUB counts the nodes that serve it: after joins, after the last member on one
    node leaves (while another member is still there, and then when none is), and after the
    room empties everywhere. Each node's subscriber holds the control channel plus one channel
    per room it serves."""
    r = redis()
    na, nb = start_nodes(start_server, r, 2)

    async def go():
        wait_channels(r, {}, READY_BOUND, "no room yet")
        assert numsub(r, CONTROL) == {CONTROL: 2}
        expect_subscriptions(r, [(na, 0), (nb, 0)])

        a1 = await Client.join(na.port, "a1", room="x")
        wait_channels(r, {"x": 1}, JOIN_BOUND, "a1 in x on A")
        expect_subscriptions(r, [(na, 1), (nb, 0)])
        b1 = await Client.join(nb.port, "b1", room="x")
        await first_on_its_node(b1, [a1])
        wait_channels(r, {"x": 2}, JOIN_BOUND, "b1 in x on B")
        a2 = await Client.join(na.port, "a2", room="x")
        d = await Client.join(nb.port, "d")  # the default room: channel "wsrelay/"
        wait_channels(r, {"x": 2, "": 1}, JOIN_BOUND, "a2 in x, d in the default room")
        expect_subscriptions(r, [(na, 1), (nb, 2)])
        assert metric(na, "wsrelay_rooms_open") == 1 and metric(nb, "wsrelay_rooms_open") == 2

        # A member leaves, another stays on its node: nothing changes in Redis.
        await a1.close()
        await b1.wait_for([leave_text(a1.welcome)], JOIN_BOUND, "a1's leave")
        await a2.wait_for([leave_text(a1.welcome)], JOIN_BOUND, "a1's leave")
        wait_channels(r, {"x": 2, "": 1}, JOIN_BOUND, "a2 still in x on A")
        expect_subscriptions(r, [(na, 1), (nb, 2)])
        # The last member on A leaves: A unsubscribes, and forgets x's remote members.
        await a2.close()
        await b1.wait_for([leave_text(a2.welcome)], JOIN_BOUND, "a2's leave")
        wait_channels(r, {"x": 1, "": 1}, JOIN_BOUND, "nobody in x on A")
        expect_subscriptions(r, [(na, 0), (nb, 2)])
        await wait_remote([(na, 0), (nb, 0)])
        # x empties everywhere, then the default room.
        await b1.close()
        wait_channels(r, {"": 1}, JOIN_BOUND, "x empty everywhere")
        expect_subscriptions(r, [(na, 0), (nb, 1)])
        await d.close()
        wait_channels(r, {}, JOIN_BOUND, "every room empty")
        expect_subscriptions(r, [(na, 0), (nb, 0)])
        for n in (na, nb):
            assert metric(n, "wsrelay_rooms_open") == 0
        # And back: a room opened again is subscribed again, and works across nodes.
        a3 = await Client.join(na.port, "a3", room="x")
        b3 = await Client.join(nb.port, "b3", room="x")
        await first_on_its_node(b3, [a3])
        wait_channels(r, {"x": 2}, JOIN_BOUND, "x again on both")
        e = await a3.send('"again":1')
        await b3.wait_for([e])
        await a3.close()
        await b3.close()

    run(go(), timeout=90)


def test_a_node_that_serves_no_member_of_a_room_receives_nothing_of_it(redis, start_server):
    """A and B each have members of room "busy", streaming; C has a member in room "quiet"
    only. C is not subscribed to wsrelay/busy, and while busy streams, C's
    wsrelay_redis_received_total grows only by the heartbeats on the control channel: one a
    second from each of the three nodes (its own come back to it too), counted over the
    measured window plus a margin; A's grows by busy's traffic."""
    r = redis()
    na, nb, nc = start_nodes(start_server, r, 3)

    async def go():
        xa = await Client.join(na.port, "xa", room="busy")
        xb = await Client.join(nb.port, "xb", room="busy")
        q = await Client.join(nc.port, "q", room="quiet")
        await first_on_its_node(xb, [xa])
        wait_channels(r, {"busy": 2, "quiet": 1}, JOIN_BOUND, "busy on A and B, quiet on C")
        expect_subscriptions(r, [(na, 1), (nb, 1), (nc, 1)])

        stop = asyncio.Event()
        sent = {"xa": [], "xb": []}

        async def stream(cl):
            i = 0
            while not stop.is_set():
                sent[cl.label].append(await cl.send(f'"seq":{i},"from":"{cl.label}"'))
                i += 1
                await asyncio.sleep(0.05)

        streams = [asyncio.create_task(stream(xa)), asyncio.create_task(stream(xb))]
        await xa.wait_for([relayed('"seq":3,"from":"xb"', xb.welcome)], JOIN_BOUND)
        t0 = time.monotonic()
        c0, a0 = scrape(nc.port), scrape(na.port)
        k0 = len(sent["xb"])
        await asyncio.sleep(3.0)
        k1 = len(sent["xb"])
        c1, a1 = scrape(nc.port), scrape(na.port)
        elapsed = time.monotonic() - t0
        n_b = k1 - k0  # xb's messages sent in the window, each received by A's node
        stop.set()
        await asyncio.gather(*streams)
        await xa.wait_for(sent["xb"][-1:], JOIN_BOUND, "xb's stream")
        await xb.wait_for(sent["xa"][-1:], JOIN_BOUND, "xa's stream")

        got_c = c1.value("wsrelay_redis_received_total") - c0.value("wsrelay_redis_received_total")
        got_a = a1.value("wsrelay_redis_received_total") - a0.value("wsrelay_redis_received_total")
        heartbeats = 3 * (math.ceil(elapsed) + 2)  # three nodes, one a second, + edges
        assert got_c <= heartbeats, \
            f"C received {got_c} messages in {elapsed:.2f}s (heartbeats: at most {heartbeats})"
        # Had C been subscribed to busy, xb alone would have taken it past the bound.
        assert n_b > heartbeats, f"xb sent only {n_b} in the window: not busy enough"
        assert got_a >= n_b // 2, f"A received only {got_a} (xb sent {n_b}): no traffic?"
        assert c1.value("wsrelay_remote_clients") == 0
        assert c1.value("wsrelay_cluster_invalid_total") == c0.value(
            "wsrelay_cluster_invalid_total")
        assert q.msgs == [], q.msgs
        # Still not subscribed to busy, and busy's members saw each other only.
        wait_channels(r, {"busy": 2, "quiet": 1}, JOIN_BOUND, "after the stream")
        expect_subscriptions(r, [(na, 1), (nb, 1), (nc, 1)])
        await fence([xa, xb])
        for cl, other in ((xa, xb), (xb, xa)):
            marks = [t for t in cl.msgs if '"fence"' in t]
            check_streams(cl, [join_text(other.welcome)] + marks, [sent["xa"], sent["xb"]])
        print(f"C received {got_c} in {elapsed:.2f}s while A received {got_a} (xb sent {n_b})")
        for cl in (xa, xb, q):
            await cl.close()

    run(go(), timeout=90)


# ---------------------------------------------------------------------------------------------
# Failures with several rooms
# ---------------------------------------------------------------------------------------------


def test_kill_9_a_node_its_users_leave_every_room_and_only_their_rooms(redis, start_server):
    r = redis()
    na, nb, nc = start_nodes(start_server, r, 3)

    async def go():
        cl = await join_rooms([
            (na, "a1", "r1"), (nb, "b1", "r1"), (nc, "c1", "r1"),
            (na, "a2", "r2"), (nb, "b2", "r2"), (nb, "b2x", "r2"),
            (nb, "b3", "r3"), (nc, "c3", "r3"),
            (na, "a4", "r4"), (nc, "c4", "r4"),
        ])
        rooms = by_room(cl)
        joins = {c.label: unlisted_joins(c, rooms[c.room]) for c in cl.values()}
        for c in cl.values():
            check_welcome_in_room(c, rooms[c.room])
            await c.wait_for(joins[c.label], JOIN_BOUND, "its room's joins")
        eb = await cl["b2"].send('"x":1')
        await cl["a2"].wait_for([eb])
        wait_channels(r, {"r1": 3, "r2": 2, "r3": 2, "r4": 2}, JOIN_BOUND, "before the kill")

        kill_node(nb)
        dead = [c for c in cl.values() if c.label.startswith("b")]
        for c in cl.values():
            if c in dead:
                continue
            want = [leave_text(d.welcome) for d in dead if d.room == c.room]
            await c.wait_for(want, GONE_BOUND, "the dead node's users leave")
        alive = {label: c for label, c in cl.items() if c not in dead}
        rooms_alive = by_room(alive)
        marks = {room: await fence(members) for room, members in rooms_alive.items()}
        for c in alive.values():
            want = joins[c.label] + marks[c.room] + [leave_text(d.welcome) for d in dead
                                                     if d.room == c.room]
            if c.label == "a2":
                want.append(eb)
            check_exactly(c, want)
        for n in (na, nc):
            m = scrape(n.port)
            assert m.value("wsrelay_cluster_nodes") == 1, cluster_log(n)
            assert m.value("wsrelay_remote_clients") == 2, m.text  # r1 and r4's other member
        # Redis forgot the dead node's subscriptions; the survivors' are intact.
        wait_channels(r, {"r1": 2, "r2": 1, "r3": 1, "r4": 2}, JOIN_BOUND, "after the kill")
        # Newcomers on A: r1 and r2 are served (a full welcome: the survivors, each with its
        # last message, the fence's mark), r3 is not (the room's first on A).
        n1 = await Client.join(na.port, "n1", room="r1")
        assert sorted(welcome_peers(n1.welcome_text)) == sorted(marks["r1"]), n1.welcome_text
        n2 = await Client.join(na.port, "n2", room="r2")
        assert welcome_peers(n2.welcome_text) == marks["r2"], n2.welcome_text
        n3 = await Client.join(na.port, "n3", room="r3")
        await first_on_its_node(n3, [cl["c3"]], then=marks["r3"])
        e3 = await n3.send('"after":1')
        await cl["c3"].wait_for([e3])
        for c in list(alive.values()) + [n1, n2, n3]:
            await c.close()

    run(go(), timeout=90)


def test_sigterm_says_bye_once_and_its_users_leave_every_room_at_once(redis, start_server):
    """One bye, on the control channel, removes the stopping node's clients from every room
    at once (sooner than the heartbeat timeout could), each leave reaching its own room only.
    With --drain-time 0, the stop at once; a drain's bye comes after its closes (test_drain.py)."""
    r = redis()
    spy = Spy(r)
    na, nb = start_nodes(start_server, r, 2, "--drain-time", "0")
    b_id = node_id(nb)

    async def go():
        cl = await join_rooms([
            (na, "a0", ""), (nb, "b0", ""),
            (na, "a1", "r1"), (nb, "b1", "r1"), (nb, "b1x", "r1"),
            (na, "a2", "r2"), (nb, "b2", "r2"),
            (na, "a3", "r3"),
        ])
        rooms = by_room(cl)
        joins = {c.label: unlisted_joins(c, rooms[c.room]) for c in cl.values()}
        for c in cl.values():
            await c.wait_for(joins[c.label], JOIN_BOUND, "its room's joins")
        nb.stopped = True
        nb.proc.terminate()
        survivors = [c for c in cl.values() if c.label.startswith("a")]
        for c in survivors:
            await c.wait_for([leave_text(o.welcome) for o in rooms[c.room]
                              if o.label.startswith("b")], BYE_BOUND, "leaves after the bye")
        assert nb.proc.wait(TIMEOUT) == 0, nb.stderr
        await aeventually(lambda: spy.envelopes("bye") == [(b_id, b"")],
                          lambda: f"one bye: {spy.envelopes('bye')}", TIMEOUT)
        assert spy.channels_of("bye") == {CONTROL}
        marks = {room: await fence([c for c in members if c in survivors])
                 for room, members in rooms.items()}
        for c in survivors:
            check_exactly(c, joins[c.label] + marks[c.room] + [
                leave_text(o.welcome) for o in rooms[c.room] if o.label.startswith("b")])
        assert metric(na, "wsrelay_remote_clients") == 0
        wait_channels(r, {"": 1, "r1": 1, "r2": 1, "r3": 1}, JOIN_BOUND, "after the bye")
        for c in survivors:
            await c.close()

    try:
        run(go(), timeout=90)
    finally:
        spy.close()


def test_redis_restart_with_several_rooms_resubscribes_and_heals_each(redis, start_server):
    """Redis killed and restarted with rooms on both nodes, on one node only, and the default
    room: while it is down each node drops the other's members from every room; once it is
    back every room is subscribed again (PUBSUB CHANNELS and NUMSUB as before the outage, less
    a room that emptied meanwhile, plus one that opened meanwhile on both nodes), each room is
    whole again (its members rejoin, within the bound test_cluster uses), and the rooms stay
    apart."""
    r = redis()
    na, nb = start_nodes(start_server, r, 2)

    async def go():
        cl = await join_rooms([
            (na, "a0", ""), (nb, "b0", ""),
            (na, "a1", "r1"), (nb, "b1", "r1"),
            (na, "a2", "r2"), (nb, "b2", "r2"), (na, "a2x", "r2"),
            (na, "a3", "r3"),
            (nb, "b4", "r4"),
        ])
        rooms = by_room(cl)
        joins = {c.label: unlisted_joins(c, rooms[c.room]) for c in cl.values()}
        for c in cl.values():
            check_welcome_in_room(c, rooms[c.room])
            await c.wait_for(joins[c.label], JOIN_BOUND, "its room's joins")
        want_channels = {"": 2, "r1": 2, "r2": 2, "r3": 1, "r4": 1}
        wait_channels(r, want_channels, JOIN_BOUND, "before the outage")
        e1 = await cl["b1"].send('"before":1')
        await cl["a1"].wait_for([e1])

        def others(c):
            return [o for o in rooms[c.room] if o is not c and (o.label[0] != c.label[0])]

        r.kill()
        for c in cl.values():
            await c.wait_for([leave_text(o.welcome) for o in others(c)], GONE_BOUND,
                             "the other node's members leave while Redis is down")
        for n in (na, nb):
            await aeventually(lambda n=n: metric(n, "wsrelay_remote_clients") == 0,
                              "no remote clients while Redis is down", TIMEOUT)
        # While Redis is down, r3 (on A only) empties and room "fresh" opens on both nodes:
        # after the restart, fresh is subscribed on both and whole, r3 on neither.
        gone = cl.pop("a3")
        await gone.close()
        del rooms["r3"]
        for label, srv in (("af", na), ("bf", nb)):
            c = await Client.join(srv.port, label, room="fresh")
            assert welcome_peers(c.welcome_text) == [], c.welcome_text
            cl[label], joins[label] = c, []
            rooms["fresh"].append(c)
        want_channels = {"": 2, "r1": 2, "r2": 2, "r4": 1, "fresh": 2}
        r.start()  # same port
        wait_channels(r, want_channels, RESYNC_BOUND, "every room subscribed again")
        expect_subscriptions(r, [(na, 4), (nb, 5)], RESYNC_BOUND)
        for c in cl.values():
            # The other node's members join again (a second time for those that had come as
            # joins before), b1 with its last message.
            want = collections.Counter(joins[c.label] + [join_text(o.welcome) for o in others(c)]
                                       + ([e1, e1] if c.label == "a1" else []))
            await aeventually(lambda c=c, want=want: all(c.count(t) >= k for t, k in want.items()),
                              lambda c=c: f"{c.label}: the others rejoin: {c.msgs}",
                              RESYNC_BOUND)
        await wait_remote([(na, 4), (nb, 5)], timeout=RESYNC_BOUND)
        # Relay across nodes in each shared room, and nothing crosses rooms.
        marks = {room: await fence(members) for room, members in rooms.items()}
        for c in cl.values():
            ids = {o.id for o in rooms[c.room]}
            for t in c.msgs:
                assert json.loads(t)["sender"] in ids, f"{c.label} got another room's {t}"
            leaves = [leave_text(o.welcome) for o in others(c)] if c.room != "fresh" else []
            rejoins = [join_text(o.welcome) for o in others(c)]
            want = joins[c.label] + leaves + rejoins + marks[c.room]
            if c.label == "a1":
                want += [e1, e1]  # before the outage, then again from b1's node's state
            if c.label == "b1":
                want += [e1]  # its own, once
            check_exactly(c, want)
        n2 = await Client.join(nb.port, "n2", room="r2")
        assert sorted(welcome_peers(n2.welcome_text)) == sorted(marks["r2"]), n2.welcome_text
        for c in list(cl.values()) + [n2]:
            await c.close()

    try:
        run(go(), timeout=120)
    except BaseException:
        print("node A:\n" + cluster_log(na) + "\nnode B:\n" + cluster_log(nb))
        raise


# ---------------------------------------------------------------------------------------------
# A room freed and opened again at once
# ---------------------------------------------------------------------------------------------


class Monitor:
    """Redis's MONITOR in a thread: the (UN)SUBSCRIBE commands of every connection, in order,
    as (client address, command, channel)."""

    def __init__(self, r):
        self.conn = r.client()
        assert self.conn.call("MONITOR") == "OK"
        self.commands = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.conn.sock.settimeout(0.1)
        pattern = re.compile(r'^[\d.]+ \[\d+ ([^\]]+)\] "((?:UN)?SUBSCRIBE)" "([^"]*)"$', re.I)
        while not self._stop.is_set():
            try:
                line = self.conn.read()
            except socket.timeout:
                continue
            except OSError:
                return
            m = pattern.match(line) if isinstance(line, str) else None
            if m:
                self.commands.append((m.group(1), m.group(2).upper(), m.group(3)))

    def close(self):
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.conn.close()


def _raw_join_after(port, path, leave):
    """Connects a TCP socket first, then calls leave() (the room's last member goes) and at
    once sends the handshake, so that the node frees the room and opens it again within a
    few ms: its UNSUBSCRIBE and SUBSCRIBE meet Redis's answers in flight. Returns a RawWS."""
    conn = HttpConn(port)
    key = new_key()
    request = handshake_request(path, key=key)
    leave()
    conn.send(request)
    resp = conn.read_response()
    assert resp.status == 101, resp
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp
    return RawWS(conn.sock, resp, conn.buf)


def _welcome(ws):
    text = ws.recv_text()
    w = json.loads(text)
    assert w["type"] == "welcome" and w["room"] == "flip", text
    return text, w


def test_a_room_freed_and_opened_again_at_once_still_hears_the_other_node(redis, start_server):
    """On node A, room "flip" has one member; each round it leaves (a TCP reset, or a close
    frame) and a new one enters within microseconds of it, ten times. Each time the newcomer
    must get the other node's member (in its welcome, or as a join right after it when the
    room was freed), receive that member's next message, and be heard by it, and nothing
    twice. A node that lost its channel in the unsubscribe/subscribe race would hear nothing
    of the room from then on (backplane.c, backplane_subscribe). MONITOR shows the race
    happening (an unsubscribe answered after the room opened again, then A's extra
    SUBSCRIBE) and the count is printed. Debian's hiredis 0.14.1 happens to keep the channel's
    callback through that race, so on this machine the test passes without backplane.c's
    re-subscribe too; it checks the room works through the race, whichever hiredis."""
    r = redis()
    na, nb = start_nodes(start_server, r, 2)
    mon = Monitor(r)
    try:
        flip_rounds(r, na, nb, mon)
    finally:
        mon.close()


def flip_rounds(r, na, nb, mon):
    b = RawWS.connect(nb.port, "/ws/flip")
    b_text, bw = _welcome(b)
    assert welcome_peers(b_text) == []
    old = RawWS.connect(na.port, "/ws/flip")
    o_text, ow = _welcome(old)
    assert welcome_peers(o_text) == [], o_text  # the room's first on A: b follows as a join
    assert old.recv_text(JOIN_BOUND) == join_text(bw)
    assert b.recv_text(JOIN_BOUND) == join_text(ow)
    freed = 0
    b_last = None
    b_bare = f'{{"sender":"{bw["id"]}","color":{bw["color"]}}}'
    old_last = f'{{"sender":"{ow["id"]}","color":{ow["color"]}}}'
    politely_closed = []
    for i in range(10):
        polite = i % 3 == 2

        def leave(old=old, polite=polite):
            if polite:
                old.send_close(1000)
            else:
                old.abort()

        new = _raw_join_after(na.port, "/ws/flip", leave)
        text, nw = _welcome(new)
        peers = welcome_peers(text)
        if polite:
            politely_closed.append(old)
        b_listed = b_last if b_last is not None else b_bare
        if peers == []:
            freed += 1  # the room was freed and opened again: b follows as a join
            assert new.recv_text(JOIN_BOUND) == join_text(bw), f"round {i}"
            if b_last is not None:
                assert new.recv_text(JOIN_BOUND) == b_last, f"round {i}: b's last message"
        else:  # the newcomer came in before the old member's leave was handled
            assert sorted(peers) == sorted([b_listed, old_last]), f"round {i}: {text}"
            # ... so it sees the old one leave (b hears of it below, and speaks after that).
            assert new.recv_text(JOIN_BOUND) == leave_text(ow), f"round {i}"
        # b hears the old one leave and the new one join, once each.
        got = [b.recv_text(JOIN_BOUND), b.recv_text(JOIN_BOUND)]
        assert sorted(got) == sorted([leave_text(ow), join_text(nw)]), f"round {i}: {got}"
        # Across, both ways, after the flip.
        body = f'"round":{i},"from":"b"'
        b.send_text("{" + body + "}")
        b_last = relayed(body, bw)
        assert b.recv_text(JOIN_BOUND) == b_last
        assert new.recv_text(JOIN_BOUND * 2) == b_last, f"round {i}: A no longer hears flip"
        body = f'"round":{i},"from":"a"'
        new.send_text("{" + body + "}")
        old_last = relayed(body, nw)
        assert new.recv_text(JOIN_BOUND) == old_last
        assert b.recv_text(JOIN_BOUND * 2) == relayed(body, nw), f"round {i}"
        old, ow = new, nw
    # Nothing came twice (a second state, a re-delivered message): the next message each
    # gets is this one.
    body = '"end":1'
    b.send_text("{" + body + "}")
    assert b.recv_text(JOIN_BOUND) == relayed(body, bw)
    assert old.recv_text(JOIN_BOUND) == relayed(body, bw)
    wait_channels(r, {"flip": 2}, JOIN_BOUND, "after the flips")
    expect_subscriptions(r, [(na, 1), (nb, 1)])
    # How often the race happened: A's UNSUBSCRIBE was answered after the room had opened
    # again, and A subscribed once more (a SUBSCRIBE beyond one per UNSUBSCRIBE).
    seq = [cmd for _, cmd, ch in mon.commands if ch == "wsrelay/flip"]
    races = seq.count("SUBSCRIBE") - seq.count("UNSUBSCRIBE") - 2  # A's and B's first
    print(f"the room was freed and opened again in {freed} of 10 rounds; A had to subscribe "
          f"again after an unsubscribe reply {races} times")
    for ws in politely_closed + [old, b]:
        ws.close()
