"""bench/wsbench, the load generator (issue 4), judged at light loads.

Its numbers are only worth something if its counting is exact and its protocol checks are
real, so this module checks both, never its speed:

- against wsrelay (both builds, like the rest of the suite): every mode completes, and in
  cursor and fanout every message is counted exactly once (received == expected, no loss,
  no bad frame), latencies are positive and ordered; with two ports, against two nodes of a
  cluster over a redis-server of its own (issue 5), deliveries are also split exactly into
  same-node and cross-node ones;
- against tiny fake servers written here on raw sockets, which let us see what wsbench
  sends (every frame masked, a fresh key each time, pings answered, a clean close) and
  send what wsrelay never would: frames that break RFC 6455, which wsbench must count as
  bad frames and answer with close 1002, and a handshake with a wrong Sec-WebSocket-Accept;
- the command line: usage errors exit 2, a run that cannot connect at all exits 1;
- issue 12's measurements: per-pair freshness and reordered positions (a fake server sends
  an older position after a newer one), wsbench's own CPU, --batch (wsrelay.batch frames
  split into their messages, a server that does not echo the subprotocol, malformed
  batches), and storm mode (every client welcomed, its view checked against --roster-max's
  rule, rosters complete with --rooms; --roster-max itself only where the server has it).

The binary comes from WSBENCH_BIN, by default <repo>/bench/wsbench (`make test` builds it).
"""

import json
import os
import re
import socket
import struct
import subprocess
import threading

import pytest

from conftest import (
    BIN,
    HOST,
    IS_TLS,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    REPO,
    TIMEOUT,
    accept_for,
    build_frame,
    check_alive,
    free_port,
    mask_bytes,
    server_frame,
    tls_pki,
)
from test_cluster import redis, start_nodes  # noqa: F401 (redis: the fixture, by name)

WSBENCH = os.environ.get("WSBENCH_BIN") or str(REPO / "bench" / "wsbench")
RUN_TIMEOUT = 60.0  # a whole wsbench run; generous for the sanitizer build, never asserted

# What wsbench sends: {"x":<int>,"y":<int>,"t":<int>,"i":<its connection index>}, nothing else.
CURSOR_RE = re.compile(rb'^\{"x":\d+,"y":\d+,"t":\d+,"i":\d+\}$')


def server_has(flag):
    """Does this wsrelay know the flag (issue 12's flags arrive on main separately)?"""
    try:
        out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False  # no binary yet: the tests that need one say so themselves
    return flag in out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------
# Running wsbench
# ---------------------------------------------------------------------------------------------


class Result:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        lines = self.stdout.strip().splitlines()
        self.json = None  # a run's last line on stdout is one JSON object (--help prints none)
        if self.returncode == 0 and lines and lines[-1].startswith("{"):
            self.json = json.loads(lines[-1])

    def __repr__(self):
        return f"<wsbench exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}>"


def wsbench(*args):
    """Runs wsbench with args (progress lines off) and returns its Result."""
    if not os.access(WSBENCH, os.X_OK):
        pytest.fail(f"no wsbench binary at {WSBENCH} (set WSBENCH_BIN or run `make wsbench`)")
    try:
        proc = subprocess.run(
            [WSBENCH, *[str(a) for a in args], "--progress", "0"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"wsbench {' '.join(map(str, args))} did not finish in {RUN_TIMEOUT}s: {e}")
    return Result(proc)


def completed(*args):
    """Runs wsbench; it must complete (exit 0) and print its JSON. Returns the JSON."""
    r = wsbench(*args)
    assert r.returncode == 0 and r.json is not None, r
    return r.json


def check_latencies(j):
    assert 0 < j["p50_ms"] <= j["p99_ms"] <= j["p999_ms"] <= j["max_ms"], j


# ---------------------------------------------------------------------------------------------
# Against wsrelay
# ---------------------------------------------------------------------------------------------


def test_cursor_counts_every_delivery_exactly(start_server):
    srv = start_server()
    # 10 clients x 20 Hz: one send every 5 ms, so the 2 s measured period holds exactly 400
    # scheduled sends, and each is delivered to all 10 clients (the sender included).
    j = completed("cursor", "--port", srv.port, "--clients", 10, "--rate", 20, "--duration", 2,
                  "--warmup", 0.5, "--drain", 5, "--server-pid", srv.proc.pid)
    assert j["mode"] == "cursor" and j["clients"] == 10 and j["connected"] == 10, j
    assert j["sent"] == 400, j
    assert j["expected"] == 400 * 10, j
    assert j["received"] == j["expected"], j
    assert j["loss"] == 0, j
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    check_latencies(j)
    assert 0 <= j["send_lag_p99_ms"] <= j["send_lag_max_ms"], j  # our own lateness, apart
    assert j["deliveries_per_s"] == pytest.approx(4000 / 2, abs=1), j
    # welcome + joins: counted apart, never as deliveries
    assert j["other"] >= 10, j
    assert j["server_cpu"] is not None and j["server_cpu"] >= 0, j
    assert j["client_cpu"] is not None and j["client_cpu"] >= 0, j
    assert j["server_rss_kb"] > 0, j
    # Issue 12: freshness over every (receiver, other sender) pair, sampled every 50 ms of
    # the 2 s: about 40 samples of 10 x 9 pairs. Ages are positive and ordered; at 20 Hz
    # every pair holds something; one connection keeps its senders' order (TCP).
    assert j["fresh_pairs"] == 100 and j["fresh_skipped"] is None, j
    assert j["fresh_samples"] >= 10 * 9 * 20, j
    assert 0 < j["fresh_p50_ms"] <= j["fresh_p99_ms"] <= j["fresh_max_ms"], j
    assert j["fresh_never_pairs"] == 0, j
    assert j["reordered"] == 0 and j["duplicates"] == 0 and j["unattributed"] == 0, j
    # seed protocol: a frame is a message; no batch asked for, none given
    assert j["frames_received"] == j["messages_received"] > 0, j
    assert j["batch_requested"] is False and j["batch_clients"] == 0, j
    # our own CPU, and whether it was too busy to trust (not asserted: speed is not tested)
    assert j["loadgen_cpu_pct"] == pytest.approx(j["client_cpu"] * 100, abs=0.1), j
    assert isinstance(j["loadgen_saturated"], bool), j
    assert j["server_rss_max_kb"] >= j["server_rss_kb"] > 0, j
    assert j["server_hwm_kb"] >= j["server_rss_kb"], j
    # One port: none of the several-node keys (the report is what it was before issue 5).
    assert not [k for k in j if k.startswith(("local_", "cross_", "redis_"))
                or k in ("nodes", "server_cpu_each", "server_rss_kb_each")], j


def test_cursor_over_two_nodes_splits_same_node_and_cross_node_deliveries(redis, start_server):
    # Issue 5's benchmark: two wsrelay nodes joined over a fresh redis-server, wsbench given
    # both ports. Clients alternate between the nodes (5 each), so every message reaches 5
    # clients on its sender's node and, through Redis, 5 on the other: both halves exactly.
    r = redis()
    a, b = start_nodes(start_server, r, 2)
    j = completed("cursor", "--port", f"{a.port},{b.port}", "--clients", 10, "--rate", 20,
                  "--duration", 2, "--warmup", 0.5, "--drain", 5,
                  "--server-pid", f"{a.proc.pid},{b.proc.pid}", "--redis-pid", r.proc.pid)
    assert j["nodes"] == 2 and j["connected"] == 10, j
    assert j["sent"] == 400 and j["expected"] == 400 * 10, j
    assert j["received"] == j["expected"] and j["loss"] == 0, j
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    assert j["local_received"] == 400 * 5, j
    assert j["cross_expected"] == 400 * 5, j
    assert j["cross_received"] == j["cross_expected"], j
    check_latencies(j)
    for side in ("local_", "cross_"):
        assert 0 < j[side + "p50_ms"] <= j[side + "p99_ms"] <= j[side + "p999_ms"] \
            <= j[side + "max_ms"], j
    # CPU and RSS: the sum over both nodes, each node's, and Redis's apart.
    assert len(j["server_cpu_each"]) == 2 and None not in j["server_cpu_each"], j
    assert j["server_cpu"] == pytest.approx(sum(j["server_cpu_each"]), abs=0.002), j
    assert j["server_rss_kb"] == sum(j["server_rss_kb_each"]) and j["server_rss_kb"] > 0, j
    assert j["redis_cpu"] is not None and j["redis_cpu"] >= 0, j
    assert j["redis_rss_kb"] > 0, j


def test_cursor_in_rooms_tracks_freshness_room_by_room(start_server):
    srv = start_server("--max-connect-rate", "0")
    j = completed("cursor", "--port", srv.port, "--clients", 12, "--rooms", 3, "--rate", 20,
                  "--duration", 1, "--warmup", 0.3, "--drain", 3, "--server-pid", srv.proc.pid)
    assert j["received"] == j["expected"] and j["foreign"] == 0, j
    assert j["fresh_pairs"] == 3 * 4 * 4, j  # rooms of 4: each receiver keeps its room's 4
    assert j["fresh_samples"] > 0 and j["fresh_never_pairs"] == 0, j
    assert j["reordered"] == 0 and j["unattributed"] == 0, j


def test_batch_against_a_server_that_does_not_echo_it_runs_in_seed_mode(start_server):
    # Today's wsrelay (before issue 12) or any server that does not pick wsrelay.batch: the
    # clients proceed in the seed protocol, and the report says none got batch.
    srv = start_server()
    j = completed("cursor", "--port", srv.port, "--clients", 4, "--rate", 20, "--duration", 1,
                  "--warmup", 0.3, "--drain", 3, "--batch")
    assert j["batch_requested"] is True, j
    if j["batch_clients"] == 0:
        assert j["frames_received"] == j["messages_received"], j
    else:  # a server with issue 12: every client got it
        assert j["batch_clients"] == 4, j
    assert j["received"] == j["expected"] and j["bad_frames"] == 0, j


def test_storm_welcomes_everyone_and_every_roster_completes(start_server):
    srv = start_server("--max-connect-rate", "0", "--max-clients", "1024")
    j = completed("storm", "--port", srv.port, "--clients", 200, "--duration", 30,
                  "--inflight", 64, "--server-pid", srv.proc.pid)
    assert j["mode"] == "storm" and j["connected"] == 200 and j["welcomed"] == 200, j
    assert j["connect_failures"] == 0 and j["disconnects"] == 0 and j["bad_frames"] == 0, j
    assert j["inflight"] == 64 and j["welcome_expected"] is True, j
    assert 0 < j["connect_all_s"] and 0 < j["welcome_all_s"], j
    assert 0 < j["welcome_at_p50_ms"] <= j["welcome_at_p99_ms"] <= j["welcome_at_max_ms"], j
    assert j["connect_to_welcome_p50_ms"] <= j["connect_to_welcome_max_ms"], j
    # 200 in one room: the newest was told of 199 peers; nobody's view breaks the rule
    assert j["welcome_peers_max"] == 199 and j["view_violations"] == 0, j
    assert j["roster_tracked"] is True and j["rosters_complete"] == 200, j
    assert j["roster_all_s"] is not None and j["roster_overflow"] == 0, j
    assert j["server_cpu_s"] is not None and j["server_rss_max_kb"] > 0, j
    assert j["server_hwm_kb"] >= j["server_rss_max_kb"], j
    assert isinstance(j["loadgen_saturated"], bool), j


def test_storm_in_rooms_each_client_knows_its_room(start_server):
    srv = start_server("--max-connect-rate", "0")
    j = completed("storm", "--port", srv.port, "--clients", 200, "--rooms", 20,
                  "--duration", 30, "--server-pid", srv.proc.pid)
    assert j["welcomed"] == 200 and j["rooms"] == 20, j
    assert j["welcome_peers_max"] <= 9, j  # rooms of 10
    assert j["rosters_complete"] == 200 and j["view_violations"] == 0, j


@pytest.mark.skipif(not server_has("--roster-max"), reason="this wsrelay has no --roster-max yet")
def test_storm_above_roster_max_follows_the_rule(start_server):
    # Issue 12: above --roster-max a welcome lists at most that many peers, with a count.
    srv = start_server("--max-connect-rate", "0", "--roster-max", "50")
    j = completed("storm", "--port", srv.port, "--clients", 200, "--duration", 30,
                  "--roster-max", 50, "--server-pid", srv.proc.pid)
    assert j["welcomed"] == 200 and j["connect_failures"] == 0, j
    assert j["welcome_peers_max"] <= 50, j
    assert j["welcomes_with_count"] >= 200 - 51, j
    assert j["view_violations"] == 0, j


def test_fanout_receivers_get_every_message(start_server):
    # One sender as fast as its window allows: past any per-client rate by design.
    srv = start_server("--max-rate", "0", "--max-byte-rate", "0")
    j = completed("fanout", "--port", srv.port, "--senders", 1, "--clients", 5, "--duration", 1,
                  "--warmup", 0.2, "--drain", 10, "--server-pid", srv.proc.pid)
    assert j["mode"] == "fanout" and j["senders"] == 1 and j["connected"] == 6, j
    assert j["sent"] > 0 and j["received"] > 0, j
    # every message sent in the measured period reached all 6 connections, sender included
    assert j["expected"] == j["sent"] * 6, j
    assert j["received"] == j["expected"], j
    assert j["loss"] == 0, j
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    assert j["frames_per_s"] == j["deliveries_per_s"] == pytest.approx(j["received"] / 1, abs=1)
    check_latencies(j)


def test_idle_reports_rss_per_connection_and_the_server_still_works(start_server):
    srv = start_server()
    j = completed("idle", "--port", srv.port, "--clients", 50, "--duration", 0.5,
                  "--server-pid", srv.proc.pid)
    assert j["mode"] == "idle" and j["connected"] == 50, j
    assert isinstance(j["rss_per_conn_bytes"], (int, float)), j  # a number; its size is the
    assert j["server_rss_kb"] > 0, j                               # benchmark's business
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    assert check_alive(srv.port) is None


def test_churn_completes_cycles_without_failures(start_server):
    # Thousands of handshakes from one address: what --max-connect-rate stops.
    srv = start_server("--max-connect-rate", "0")
    j = completed("churn", "--port", srv.port, "--clients", 4, "--duration", 2,
                  "--server-pid", srv.proc.pid)
    assert j["mode"] == "churn", j
    assert j["cycles"] > 0 and j["cycles_per_s"] > 0, j
    assert j["failures"] == 0 and j["bad_frames"] == 0, j


def test_without_server_pid_server_numbers_are_null(start_server):
    srv = start_server()
    j = completed("cursor", "--port", srv.port, "--clients", 2, "--rate", 10, "--duration", 0.5,
                  "--warmup", 0, "--drain", 2)
    assert j["server_cpu"] is None and j["server_rss_kb"] is None, j
    assert j["received"] == j["expected"] == j["sent"] * 2, j


# ---------------------------------------------------------------------------------------------
# Over TLS (issue 13's measurements): wsbench --tls against a TLS wsrelay
# ---------------------------------------------------------------------------------------------


def start_tls_server(start_server, *flags):
    """A wsrelay on --tls-cert/--tls-key from the session's test CA (conftest.tls_pki()); in
    the TLS pass the fixture adds them itself."""
    p = tls_pki()
    extra = [] if IS_TLS else ["--tls-cert", p["cert"], "--tls-key", p["key"]]
    srv = start_server(*flags, *extra)
    srv.ssl = p["ctx"]  # the fixture's survival check speaks TLS too
    return srv, p


def check_tls(j):
    # The client offers TLS 1.3 and X25519 only, and never resumes a session.
    assert j["tls"] is True, j
    assert j["tls_version"] == "TLSv1.3" and j["tls_group"] == "X25519", j
    assert j["tls_resumed"] == 0 and j["tls_handshakes"] > 0, j


def test_tls_cursor_counts_every_delivery_exactly(start_server):
    srv, _ = start_tls_server(start_server)
    j = completed("cursor", "--tls", "--port", srv.port, "--clients", 10, "--rate", 20,
                  "--duration", 2, "--warmup", 0.5, "--drain", 5, "--server-pid", srv.proc.pid)
    assert j["connected"] == 10 and j["sent"] == 400 and j["expected"] == 4000, j
    assert j["received"] == j["expected"] and j["loss"] == 0, j
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    assert j["tls_handshakes"] == 10, j
    check_latencies(j)
    check_tls(j)


def test_tls_fanout_with_big_reads_loses_nothing(start_server):
    # A sender as fast as its window allows fills whole 16 KiB records (RFC 8446 §5.1) and
    # more than one read's worth: bytes OpenSSL holds must not be forgotten (SSL_pending).
    srv, _ = start_tls_server(start_server, "--max-rate", "0", "--max-byte-rate", "0")
    j = completed("fanout", "--tls", "--port", srv.port, "--senders", 1, "--clients", 5,
                  "--duration", 1, "--warmup", 0.2, "--drain", 10, "--server-pid", srv.proc.pid)
    assert j["sent"] > 0 and j["received"] == j["expected"] == j["sent"] * 6, j
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    check_tls(j)


def test_tls_idle_verified_against_the_ca(start_server):
    srv, p = start_tls_server(start_server)
    j = completed("idle", "--tls", "--tls-ca", p["ca"], "--path", "/echo", "--port", srv.port,
                  "--clients", 30, "--duration", 0.3, "--server-pid", srv.proc.pid)
    assert j["connected"] == 30 and isinstance(j["rss_per_conn_bytes"], (int, float)), j
    assert j["bad_frames"] == 0 and j["connect_failures"] == 0 and j["disconnects"] == 0, j
    check_tls(j)


def test_tls_ca_that_did_not_sign_the_certificate_fails_the_handshake(start_server, tmp_path):
    srv, _ = start_tls_server(start_server)
    other = tmp_path / "other"
    other.mkdir()
    for args in (["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "o.key"],
                 ["req", "-x509", "-new", "-key", "o.key", "-subj", "/CN=other", "-days", "1",
                  "-out", "o.pem"]):
        subprocess.run(["openssl", *args], cwd=other, check=True, capture_output=True,
                       timeout=60)
    r = wsbench("cursor", "--tls", "--tls-ca", other / "o.pem", "--port", srv.port,
                "--clients", 2, "--duration", 0.2)
    assert r.returncode == 1 and "certificate verify failed" in r.stderr, r


def test_handshake_mode_counts_full_handshakes(start_server):
    srv, _ = start_tls_server(start_server, "--max-connect-rate", "0")
    j = completed("handshake", "--tls", "--port", srv.port, "--clients", 4, "--duration", 1,
                  "--server-pid", srv.proc.pid)
    assert j["mode"] == "handshake" and j["handshakes"] > 0 and j["handshakes_per_s"] > 0, j
    assert j["failures"] == 0 and j["connect_failures"] == 0, j
    # every completed cycle was a full handshake: none resumed, though the server sends
    # tickets (RFC 8446 §4.6.1)
    assert j["tls_handshakes"] >= j["handshakes"], j
    check_tls(j)


def test_handshake_against_a_plain_server_fails_every_cycle(start_server):
    if IS_TLS:
        pytest.skip("the TLS pass has no plain server")
    srv = start_server("--max-connect-rate", "0")
    r = wsbench("handshake", "--tls", "--port", srv.port, "--clients", 2, "--duration", 0.5)
    assert r.returncode in (0, 1), r
    if r.returncode == 0:
        assert r.json["handshakes"] == 0 and r.json["failures"] > 0, r


# ---------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    [],
    ["sprint"],
    ["cursor", "--bogus"],
    ["cursor", "--clients"],
    ["cursor", "--clients", "0"],
    ["cursor", "--clients", "ten"],
    ["cursor", "--port", "70000"],
    ["cursor", "--rate", "-1"],
    ["cursor", "--duration", "0"],
    ["fanout", "--window", "1.5"],
    ["cursor", "--port", "7071,"],
    ["cursor", "--port", "7071,,7072"],
    ["cursor", "--port", "1,2,3,4,5,6,7,8,9"],  # at most 8
    ["cursor", "--server-pid", "1,x"],
    ["cursor", "--redis-pid", "1,2"],
    ["storm", "--roster-max", "x"],
    ["storm", "--inflight", "0"],
    ["storm", "--batch", "1"],  # --batch takes no value: "1" is an unknown option
    ["handshake"],  # needs --tls
    ["cursor", "--tls-ca", "ca.pem"],  # needs --tls
])
def test_usage_errors_exit_2(args):
    r = wsbench(*args)
    assert r.returncode == 2, r
    assert "usage: wsbench MODE" in r.stderr, r
    assert r.stdout == "", r


def test_help_exits_0():
    r = wsbench("--help")
    assert r.returncode == 0 and "usage: wsbench MODE" in r.stdout, r


def test_nothing_listening_exits_1():
    r = wsbench("cursor", "--port", free_port(), "--clients", 3, "--duration", 0.2)
    assert r.returncode == 1, r
    assert "could not open any WebSocket" in r.stderr, r


def test_a_server_pid_that_does_not_exist_exits_1():
    r = wsbench("idle", "--port", free_port(), "--server-pid", 4194303)
    assert r.returncode == 1, r


# ---------------------------------------------------------------------------------------------
# A fake server on a raw socket: what wsbench sends, and what it does with illegal frames
# ---------------------------------------------------------------------------------------------


class ClientFrame:
    def __init__(self, fin, rsv, opcode, masked, key, payload):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.masked, self.key, self.payload = masked, key, payload  # payload unmasked


def parse_client_frame(buf):
    """(frame, bytes used) for the first whole frame in buf, or (None, 0)."""
    if len(buf) < 2:
        return None, 0
    b0, b1 = buf[0], buf[1]
    n, pos = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None, 0
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None, 0
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    masked = bool(b1 & 0x80)
    key = buf[pos:pos + 4] if masked else b""
    pos += 4 if masked else 0
    if len(buf) < pos + n:
        return None, 0
    payload = buf[pos:pos + n]
    if masked:
        payload = mask_bytes(payload, key)
    return ClientFrame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, key, payload), pos + n


class FakeServer:
    """Accepts connections on 127.0.0.1, answers each handshake with a 101 (its accept value
    from `accept`, by default the right one), sends `after_101` (raw bytes) right behind it,
    then records every frame the client sends. With echo=True it relays each text message
    back to its sender, unmasked, as a one-client room would. It answers a close with a
    close and then closes TCP, as §7.1.1 asks of a server."""

    def __init__(self, after_101=b"", echo=False, accept=accept_for, protocol=None,
                 batch_echo=False):
        self.after_101, self.echo, self.accept = after_101, echo, accept
        # protocol: a Sec-WebSocket-Protocol to put in the 101. batch_echo: echo text messages
        # as wsrelay.batch frames, two messages to a frame (the last one alone at the close).
        self.protocol, self.batch_echo = protocol, batch_echo
        self.requests = []
        self.frames = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)  # accept() wakes up to see `stop`: close() would not wake it
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(TIMEOUT)
        self.sock.close()

    def _accept_loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(None)  # accepted sockets inherit the listener's timeout
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(RUN_TIMEOUT)
            buf = b""
            try:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                with self.lock:
                    self.requests.append(head)
                key = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head).group(1).decode()
                proto = b"" if self.protocol is None else \
                    b"Sec-WebSocket-Protocol: " + self.protocol.encode() + b"\r\n"
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                             + self.accept(key).encode() + b"\r\n" + proto + b"\r\n"
                             + self.after_101)
                held = []
                while True:
                    f, used = parse_client_frame(buf)
                    if f is None:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                        continue
                    buf = buf[used:]
                    with self.lock:
                        self.frames.append(f)
                    if f.opcode == OP_TEXT and self.echo:
                        conn.sendall(server_frame(OP_TEXT, f.payload))
                    if f.opcode == OP_TEXT and self.batch_echo:
                        held.append(f.payload)
                        if len(held) == 2:
                            conn.sendall(server_frame(OP_TEXT, b"[" + b",".join(held) + b"]"))
                            held = []
                    if f.opcode == OP_CLOSE:
                        if held:
                            conn.sendall(server_frame(OP_TEXT, b"[" + held[0] + b"]"))
                        conn.sendall(server_frame(OP_CLOSE, f.payload[:2]))
                        return
            except OSError:
                return

    def received(self, opcode=None):
        with self.lock:
            return [f for f in self.frames if opcode is None or f.opcode == opcode]


def test_every_frame_is_masked_with_a_fresh_key_and_pings_are_answered():
    ping = server_frame(OP_PING, b"are you there")
    hello = server_frame(OP_TEXT, b'{"type":"welcome","peers":[{"x":1,"y":2,"t":3}]}')
    with FakeServer(after_101=hello + ping, echo=True) as fake:
        j = completed("cursor", "--port", fake.port, "--clients", 1, "--rate", 100,
                      "--duration", 0.5, "--warmup", 0.1, "--drain", 2)
    frames = fake.received()
    texts = [f for f in frames if f.opcode == OP_TEXT]
    assert len(texts) >= 50, f"{len(texts)} messages for 0.6 s at 100 Hz"
    for f in frames:
        assert f.masked and f.fin and f.rsv == 0, vars(f)
    keys = [f.key for f in frames]
    assert len(set(keys)) == len(keys), "a mask key was used twice"
    for f in texts:
        assert CURSOR_RE.match(f.payload), f.payload
    pongs = fake.received(OP_PONG)
    assert [p.payload for p in pongs] == [b"are you there"]
    closes = fake.received(OP_CLOSE)
    assert [c.payload[:2] for c in closes] == [struct.pack("!H", 1000)]
    # the one-client "room" echoed every message: each counted once; the welcome (whose
    # peers hold a "t") counted as other, not as a delivery
    assert j["sent"] == 50 and j["received"] == j["expected"] == 50, j
    assert j["other"] == 1 and j["bad_frames"] == 0, j


# Server frames RFC 6455 forbids, or that wsbench refuses by design (fragments: see its
# check_server_hdr()). Each must count as one bad frame and fail the connection with 1002.
BAD_FRAMES = {
    "masked": build_frame(OP_TEXT, b'{"x":1,"y":2,"t":3}', mask=True),
    "rsv1": build_frame(OP_TEXT, b"{}", mask=False, rsv=4),
    "reserved_opcode": build_frame(0x3, b"", mask=False),
    "reserved_control_opcode": build_frame(0xB, b"", mask=False),
    "length_not_shortest": build_frame(OP_TEXT, b"{}", mask=False, length_form="16"),
    "fragment": build_frame(OP_TEXT, b'{"x":', mask=False, fin=False),
    "continuation": build_frame(0x0, b"{}", mask=False),
    "ping_fragmented": build_frame(OP_PING, b"", mask=False, fin=False),
    "ping_too_long": build_frame(OP_PING, b"p" * 126, mask=False),
    "invalid_utf8": build_frame(OP_TEXT, b'{"x":"\xc3\x28"}', mask=False),
    "invalid_utf8_in_a_big_frame": build_frame(OP_TEXT, b"a" * 5000 + b"\xff", mask=False),
    "close_with_1_byte_body": build_frame(OP_CLOSE, b"\x03", mask=False),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_illegal_server_frame_counts_as_bad_frame(name):
    # A legal binary frame first: "other", not bad; then the illegal one.
    good = server_frame(OP_BINARY, b"\x00\x01")
    with FakeServer(after_101=good + BAD_FRAMES[name]) as fake:
        j = completed("cursor", "--port", fake.port, "--clients", 1, "--duration", 0.2,
                      "--warmup", 0, "--drain", 0)
        closes = []
        for _ in range(50):  # the fake server's thread may still be reading
            closes = fake.received(OP_CLOSE)
            if closes:
                break
            threading.Event().wait(0.05)
    assert j["bad_frames"] == 1, j
    assert j["other"] == 1, j
    assert [c.payload[:2] for c in closes] == [struct.pack("!H", 1002)], "expected close 1002"


def test_wrong_accept_value_is_refused():
    with FakeServer(accept=lambda key: accept_for(key + "x")) as fake:
        r = wsbench("cursor", "--port", fake.port, "--clients", 2, "--duration", 0.2)
    assert r.returncode == 1, r
    assert "wrong Sec-WebSocket-Accept" in r.stderr, r


# ---------------------------------------------------------------------------------------------
# Issue 12 against fake servers: batches, reordering, a welcome that breaks the rule
# ---------------------------------------------------------------------------------------------

UUID = b"3f2b8c1e-9d4a-4f6b-8e2a-7c5d1b0a9e34"


def welcome(peers, count=None):
    """A welcome as wsrelay writes it; peers: how many (each a cursor message with nesting)."""
    ps = b",".join(b'{"x":1,"y":[2,{"z":"]}\\""}],"t":3,"i":0,"sender":"%s","color":%d}'
                   % (UUID[:-4] + b"%04d" % k, k) for k in range(peers))
    tail = b"" if count is None else b',"count":%d' % count
    return b'{"type":"welcome","id":"%s","color":1,"room":"","peers":[%s]%s}' % (UUID, ps, tail)


def test_batch_frames_are_split_into_their_messages():
    # The 101 echoes wsrelay.batch; first a batch with a welcome whose peers nest arrays,
    # objects and a string holding "]}" and an escaped quote, then one over SMALL_MAX (4 KiB:
    # assembled, not streamed) of 100 joins; then every message comes back two to a frame.
    joins = b",".join(b'{"type":"join","sender":"%s","color":7}' % UUID for _ in range(100))
    first = server_frame(OP_TEXT, b"[" + welcome(3, count=4) + b"]")
    big = server_frame(OP_TEXT, b"[" + joins + b"]")
    assert len(big) > 4096
    with FakeServer(after_101=first + big, protocol="wsrelay.batch", batch_echo=True) as fake:
        j = completed("cursor", "--port", fake.port, "--clients", 1, "--rate", 100,
                      "--duration", 0.5, "--warmup", 0.1, "--drain", 2, "--batch")
        heads = fake.requests
    assert [re.search(rb"(?im)^sec-websocket-protocol:[ \t]*(\S+)", h).group(1) for h in heads] \
        == [b"wsrelay.batch"]
    assert j["batch_clients"] == 1 and j["bad_batches"] == 0 and j["bad_frames"] == 0, j
    assert j["unparsed_big"] == 0, j
    assert j["other"] == 1 + 100, j  # the welcome and the joins, one by one
    assert j["sent"] == 50 and j["received"] == j["expected"] == 50, j
    # two messages to a frame while measuring (give or take the ends of the period)
    assert j["messages_received"] >= 2 * j["frames_received"] - 2 > 0, j
    assert j["reordered"] == 0, j


@pytest.mark.parametrize("payload", [
    b'{"x":1}',              # not an array
    b"[]",                   # empty: docs/protocol.md says never
    b'[{"x":1},]',           # a trailing comma
    b'[{"x":1}] x',          # something after it
    b'[{"x":1}',             # unbalanced
    b"[1]",                  # not an object
])
def test_malformed_batch_is_a_bad_frame(payload):
    with FakeServer(after_101=server_frame(OP_TEXT, payload), protocol="wsrelay.batch") as fake:
        j = completed("cursor", "--port", fake.port, "--clients", 1, "--duration", 0.2,
                      "--warmup", 0, "--drain", 0, "--batch")
    assert j["batch_clients"] == 1, j
    assert j["bad_batches"] == 1 and j["bad_frames"] == 1, j


def test_a_subprotocol_we_did_not_offer_fails_the_handshake():
    with FakeServer(protocol="wsrelay.batch") as fake:  # offered nothing: --batch not given
        r = wsbench("cursor", "--port", fake.port, "--clients", 2, "--duration", 0.2)
    assert r.returncode == 1, r
    assert "subprotocol we did not offer" in r.stderr, r


def test_an_older_position_after_a_newer_one_counts_as_reordered():
    # Sender 0 (our one client) at t = 9000 us, then 8000 (older: reordered), then 9000 again
    # (a duplicate). Freshness keeps the newest.
    msgs = [b'{"x":1,"y":1,"t":%d,"i":0,"sender":"%s","color":1}' % (t, UUID)
            for t in (9000, 8000, 9000)]
    with FakeServer(after_101=b"".join(server_frame(OP_TEXT, m) for m in msgs)) as fake:
        j = completed("cursor", "--port", fake.port, "--clients", 1, "--duration", 0.2,
                      "--warmup", 0, "--drain", 0)
    assert j["reordered"] == 1 and j["duplicates"] == 1 and j["unattributed"] == 0, j


def test_storm_counts_welcomes_that_break_the_roster_rule():
    # 3 peers with --roster-max 2 (over it), and no count although a welcome must list fewer
    # than the room... which one client cannot know: only the first rule fires.
    with FakeServer(after_101=server_frame(OP_TEXT, welcome(3))) as fake:
        j = completed("storm", "--port", fake.port, "--clients", 1, "--duration", 5,
                      "--roster-max", 2)
    assert j["welcomed"] == 1 and j["welcome_peers_max"] == 3, j
    assert j["welcome_over_roster_max"] == 1 and j["view_violations"] == 1, j
    with FakeServer(after_101=server_frame(OP_TEXT, welcome(2, count=1))) as fake:
        j = completed("storm", "--port", fake.port, "--clients", 1, "--duration", 5)
    assert j["welcome_bad_count"] == 1, j  # a count below its own peers + 1


def test_storm_without_welcome_is_done_at_the_101():
    with FakeServer() as fake:
        j = completed("storm", "--port", fake.port, "--clients", 20, "--duration", 5,
                      "--no-welcome")
    assert j["connected"] == 20 and j["welcomed"] == 0, j
    assert j["welcome_expected"] is False and j["welcome_all_s"] is None, j
    assert j["connect_all_s"] is not None and j["roster_tracked"] is False, j
