"""Shared fixtures and wire helpers for the wsrelay integration suite.

This suite judges the real binary from the outside, with clients nobody in this project wrote
(python3-websockets) and with raw sockets where we need bytes no polite client would send
(unmasked frames, bad close codes, traversal paths). It never looks at src/.

Run with Debian's interpreter (it has python3-pytest and python3-websockets 10.4):

    WSRELAY_BIN=$PWD/wsrelay /usr/bin/python3 -m pytest -q test/integration

Chapters: constants - asyncio helper - the server process - HTTP over a raw socket - WebSocket
over a raw socket (RFC 6455 §5.2 frames, masking) - websockets-library helpers - fixtures.

Rules the tests follow: servers listen on 127.0.0.1 with `--port 0` and we learn the port from
the "listening" log line; every wait has a generous timeout (TIMEOUT) and no test asserts speed;
every server a test starts is stopped by PID (SIGTERM, then SIGKILL), and before that the
fixture checks it survived the test: a fresh, polite client must still get an echo and a
welcome. Any sanitizer report on stderr fails the test that caused it.
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
import websockets

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("WSRELAY_BIN") or str(REPO / "wsrelay")
HOST = "127.0.0.1"
TIMEOUT = 5.0  # every wait for the server; generous, never an assertion about speed

# WSRELAY_TEST_TLS=1 (scripts/test.sh's TLS pass, issue 13): every server the fixtures start
# gets --tls-cert/--tls-key from a test CA made here with the `openssl` command, and every
# client (HttpConn, RawWS, ws_connect, the survival check) speaks TLS trusting that CA only.
# The same tests then prove the same bytes come out of the TLS transport.
IS_TLS = os.environ.get("WSRELAY_TEST_TLS") == "1"
_tls_pki = {}


def tls_pki():
    """The session's test CA and a P-256 server pair for localhost / 127.0.0.1 (made once):
    {"ca", "cert", "key"} paths, and "ctx", a client ssl.SSLContext trusting that CA."""
    if not _tls_pki:
        import ssl
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="wsrelay-pki-"))

        def openssl(*args):
            subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
        openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=wsrelay test CA",
                "-days", "2", "-out", "ca.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "srv.key")
        openssl("req", "-new", "-key", "srv.key", "-subj", "/CN=localhost", "-out", "srv.csr")
        (d / "srv.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "srv.ext", "-out", "srv.pem")
        _tls_pki.update(ca=d / "ca.pem", cert=d / "srv.pem", key=d / "srv.key",
                        ctx=ssl.create_default_context(cafile=str(d / "ca.pem")))
    return _tls_pki


def tls_flags():
    """The flags a server gets in the TLS pass (none otherwise)."""
    if not IS_TLS:
        return []
    p = tls_pki()
    return ["--tls-cert", str(p["cert"]), "--tls-key", str(p["key"])]


def client_ssl():
    """The client context of the TLS pass, or None."""
    return tls_pki()["ctx"] if IS_TLS else None

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

LISTENING_RE = re.compile(r'(?:\bport=|"port":)(\d+)\b.*"listening"')  # text or json
# <ISO-8601 UTC timestamp> <level> key=value ... "phrase"
LOG_LINE_RE = re.compile(
    r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z [a-z]+ (?:.* )?"[^"]*"$'
)
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "SUMMARY: AddressSanitizer",
)


def pytest_configure(config):
    # `-m "not storm"` deselects the tests that open thousands of connections at once.
    config.addinivalue_line("markers", "storm: opens thousands of connections (join storms)")


# ---------------------------------------------------------------------------------------------
# asyncio from sync tests (pytest-asyncio is not installed)
# ---------------------------------------------------------------------------------------------


def run(coro, timeout=30.0):
    """Runs a coroutine to completion in a fresh event loop, failing after `timeout` s."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------------------------


class Server:
    """One wsrelay process. stderr (the log) and stdout are drained by threads so a chatty
    server can never block on a full pipe; `lines` holds every stderr line so far."""

    def __init__(self, args, binary=BIN, cwd=None):
        self.args = [str(binary), *args]
        self.port = None
        self.stopped = False  # the test stopped it on purpose: no survival check
        self.returncode = None
        # Where the survival check joins a room: a server that requires room tokens needs
        # one in the query (test_tokens.py sets it).
        self.ws_path = "/ws"
        # A server started with --tls-cert: the client ssl.SSLContext that trusts it, so the
        # survival check speaks wss:// (test_tls.py sets it).
        self.ssl = None
        self.lines = []
        self.stdout = b""
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self._t_err = threading.Thread(target=self._drain_stderr, daemon=True)
        self._t_out = threading.Thread(target=self._drain_stdout, daemon=True)
        self._t_err.start()
        self._t_out.start()

    def _drain_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _drain_stdout(self):
        data = self.proc.stdout.read()
        with self._cond:
            self.stdout += data

    @property
    def stderr(self):
        with self._cond:
            return "\n".join(self.lines)

    def wait_log(self, regex, timeout=TIMEOUT):
        """Waits for a stderr line matching regex; returns the match. Fails (with the log) if
        the process exits or the timeout passes first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    m = regex.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._t_err.is_alive()):
                    break
                self._cond.wait(min(left, 0.1))
        pytest.fail(
            f"no log line matching {regex.pattern!r} within {timeout}s "
            f"(exit status {self.proc.poll()}); stderr:\n{self.stderr}"
        )

    def stop(self, timeout=TIMEOUT):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        stop_process(self.proc, timeout)
        self._t_err.join(timeout)
        self._t_out.join(timeout)
        self.returncode = self.proc.returncode
        return self.returncode

    def sanitizer_report(self):
        text = self.stderr
        return any(marker in text for marker in SANITIZER_MARKERS)


def stop_process(proc, timeout=TIMEOUT):
    """Stops a process the test started (a subprocess.Popen), by its PID: SIGTERM, then
    SIGKILL if it has not exited after `timeout`. Nothing if it has exited already."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def free_port():
    """A port that was free a moment ago (only for --quiet, where no log tells us the port)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until_accepting(port, proc, timeout=TIMEOUT):
    """Polls connect() until the server accepts (for --quiet, which logs nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with status {proc.returncode} before accepting")
        try:
            socket.create_connection((HOST, port), timeout=TIMEOUT).close()
            return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"server never accepted on port {port}")


def run_cli(*args, timeout=TIMEOUT):
    """Runs the binary with args to completion; a server that starts serving instead of
    exiting is killed, and the test fails."""
    try:
        return subprocess.run(
            [BIN, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"wsrelay {' '.join(args)} did not exit within {timeout}s: {e}")


# ---------------------------------------------------------------------------------------------
# HTTP over a raw socket
# ---------------------------------------------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, names as sent
        self.body = body
        self.head = head  # the raw head bytes, status line to blank line

    def header(self, name):
        """The first field named `name` (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def raw(self):
        return self.head + self.body

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} {self.headers!r} body={self.body[:80]!r}>"


def parse_head(head):
    """Parses a response head (without the final blank line) into (version, status, reason,
    headers). Fails the test on anything that is not HTTP/1.x syntax."""
    lines = head.split(b"\r\n")
    m = re.match(rb"^(HTTP/1\.[01]) (\d{3}) ?(.*)$", lines[0])
    assert m, f"bad status line {lines[0]!r}"
    headers = []
    for line in lines[1:]:
        assert b":" in line, f"bad header line {line!r}"
        k, v = line.split(b":", 1)
        assert k == k.strip() and k, f"bad header name {k!r}"
        headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
    return m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1"), headers


class HttpConn:
    """One TCP connection to the server, for requests sent byte-exact and responses read one
    at a time (keep-alive and pipelining)."""

    def __init__(self, port, timeout=TIMEOUT, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if IS_TLS:
            self.sock = client_ssl().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        """Reads more bytes into buf; returns False on EOF (a reset counts as EOF)."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise AssertionError(f"connection closed before a full response head: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise AssertionError(f"connection closed after {len(self.buf)} of {n} body bytes")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, head_only=False):
        """Reads one response. Its body is Content-Length bytes (required: this server always
        sends it), none for HEAD (head_only), 101 or 304 (RFC 9112 §6.3: never a body)."""
        head = self.read_head()
        version, status, reason, headers = parse_head(head)
        resp = Response(version, status, reason, headers, b"", head + b"\r\n\r\n")
        if status in (101, 304) or head_only:
            return resp
        cl = resp.header_all("Content-Length")
        assert len(cl) == 1, f"expected exactly one Content-Length in {resp!r}"
        assert cl[0].isdigit(), f"bad Content-Length {cl[0]!r}"
        resp.body = self.read_exact(int(cl[0]))
        return resp

    def closed_by_peer(self, timeout=TIMEOUT):
        """True if the server closes the connection (EOF or reset) within timeout, ignoring
        nothing: any extra bytes it sends first are kept in self.buf for the caller to see."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except socket.timeout:
            return False


def read_to_eof(sock, timeout=TIMEOUT):
    """Every byte the peer sends until it closes the connection (a reset counts as the close),
    on a plain or a TLS socket. Fails the test if the peer still has not closed after
    `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the peer kept the connection open for {timeout}s, after "
                                 f"{sum(map(len, chunks))} bytes")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue  # the deadline check above reports it
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def http_request(method="GET", target="/", version="HTTP/1.1", headers=None, body=b""):
    """Builds a request, byte-exact. headers: list of (name, value); Host is added first unless
    given (pass ("Host", None) to omit it)."""
    hdrs = list(headers or [])
    if not any(k.lower() == "host" for k, _ in hdrs):
        hdrs.insert(0, ("Host", f"{HOST}"))
    out = f"{method} {target} {version}\r\n".encode("latin-1")
    for k, v in hdrs:
        if v is not None:
            out += f"{k}: {v}\r\n".encode("latin-1")
    return out + b"\r\n" + body


def fetch(port, raw, head_only=False):
    """Sends raw request bytes on a fresh connection and reads one response."""
    with HttpConn(port) as c:
        c.send(raw)
        return c.read_response(head_only=head_only)


def get(port, target="/", method="GET", **kw):
    return fetch(port, http_request(method, target, **kw), head_only=(method == "HEAD"))


# ---------------------------------------------------------------------------------------------
# WebSocket over a raw socket: handshake (RFC 6455 §4), frames (§5.2), masking (§5.3)
# ---------------------------------------------------------------------------------------------


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    """§4.2.2 step 5.4: base64(SHA-1(key + GUID))."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def handshake_request(path="/ws", key=None, version="13", extra=None, omit=(), method="GET"):
    """An opening handshake as a browser sends it. omit: header names to leave out;
    extra: (name, value) pairs appended (duplicates allowed)."""
    key = new_key() if key is None else key
    base = [
        ("Host", f"{HOST}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", version),
    ]
    omit_l = {o.lower() for o in omit}
    hdrs = [(k, v) for k, v in base if k.lower() not in omit_l and v is not None]
    hdrs += list(extra or [])
    return http_request(method, path, headers=hdrs)


def mask_bytes(payload, key):
    """§5.3: payload XOR the 4-byte key, repeated."""
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None, length=None,
                length_form=None):
    """One frame as §5.2 draws it. length overrides the announced payload length (the bytes
    sent are still `payload`); length_form forces "7", "16" or "64" bit length encoding, which
    lets a test send a non-minimal length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    form = length_form or ("7" if n < 126 else "16" if n < 65536 else "64")
    if form == "7":
        hdr = struct.pack("!BB", b0, mbit | n)
    elif form == "16":
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = os.urandom(4) if mask_key is None else mask_key
        return hdr + key + mask_bytes(payload, key)
    return hdr + payload


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload, raw):
        self.fin, self.rsv, self.opcode, self.masked = fin, rsv, opcode, masked
        self.payload, self.raw = payload, raw

    def close_code(self):
        """(code, reason) of a close frame; code None when the body is empty."""
        assert self.opcode == OP_CLOSE
        if not self.payload:
            return None, ""
        assert len(self.payload) >= 2, f"close frame with a 1-byte body {self.payload!r}"
        code = struct.unpack("!H", self.payload[:2])[0]
        return code, self.payload[2:].decode("utf-8")

    def __repr__(self):
        return (f"<Frame fin={self.fin} rsv={self.rsv} op={self.opcode:#x} masked={self.masked} "
                f"len={len(self.payload)} {self.payload[:60]!r}>")


def parse_frame(buf, start=0):
    """Parses one frame at buf[start:]: (Frame, size) or None if incomplete."""
    if len(buf) - start < 2:
        return None
    b0, b1 = buf[start], buf[start + 1]
    n = b1 & 0x7F
    pos = start + 2
    if n == 126:
        if len(buf) < pos + 2:
            return None
        n = struct.unpack("!H", buf[pos:pos + 2])[0]
        pos += 2
    elif n == 127:
        if len(buf) < pos + 8:
            return None
        n = struct.unpack("!Q", buf[pos:pos + 8])[0]
        pos += 8
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key = buf[pos:pos + 4]
        pos += 4
    if len(buf) < pos + n:
        return None
    payload = buf[pos:pos + n]
    if masked:
        payload = mask_bytes(payload, key)
    frame = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload, buf[start:pos + n])
    return frame, pos + n - start


class RawWS:
    """A hand-driven WebSocket client on a plain socket. connect() performs the handshake and
    checks the 101; what comes after is bytes we choose."""

    def __init__(self, sock, response, leftover):
        self.sock = sock
        self.response = response
        self.buf = leftover

    @classmethod
    def connect(cls, port, path="/ws", first_bytes=b"", rcvbuf=None, key=None):
        """Handshakes on `path`; first_bytes are sent in the same send() as the request (h11's
        "trailing data"). Asserts a correct 101."""
        conn = HttpConn(port, rcvbuf=rcvbuf)
        key = new_key() if key is None else key
        conn.send(handshake_request(path, key=key) + first_bytes)
        resp = conn.read_response()
        assert resp.status == 101, f"handshake on {path} refused: {resp!r}"
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp
        return cls(conn.sock, resp, conn.buf)

    def close(self):
        self.sock.close()

    def abort(self):
        """Closes with a TCP reset (SO_LINGER 0): the rudest way to leave."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(build_frame(opcode, payload, **kw))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_close(self, code=1000, reason=b""):
        if isinstance(reason, str):
            reason = reason.encode()
        body = b"" if code is None else struct.pack("!H", code) + reason
        self.send_frame(OP_CLOSE, body)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def recv_frame(self, timeout=TIMEOUT):
        """The next frame from the server. Server frames are never masked (§5.1)."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_frame(self.buf)
            if parsed:
                frame, size = parsed
                self.buf = self.buf[size:]
                assert not frame.masked, f"server sent a masked frame {frame!r}"
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no frame within {timeout}s (have {self.buf[:80]!r})")
            try:
                if not self._fill(left):
                    raise AssertionError(f"server closed TCP mid-stream (have {self.buf[:80]!r})")
            except socket.timeout:
                raise AssertionError(f"no frame within {timeout}s (have {self.buf[:80]!r})")

    def recv_message(self, timeout=TIMEOUT):
        """The next data message (reassembled), as (opcode, payload). Pongs are skipped; a
        close frame fails the test."""
        opcode, parts = None, []
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_PONG:
                continue
            assert f.opcode != OP_CLOSE, f"unexpected close {f.close_code()}"
            assert f.rsv == 0, f"server set RSV bits: {f!r}"
            if opcode is None:
                assert f.opcode in (OP_TEXT, OP_BINARY), f"unexpected frame {f!r}"
                opcode = f.opcode
            else:
                assert f.opcode == OP_CONT, f"interleaved frame {f!r}"
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    def recv_text(self, timeout=TIMEOUT):
        op, data = self.recv_message(timeout)
        assert op == OP_TEXT, f"expected text, got opcode {op:#x}: {data[:80]!r}"
        return data.decode("utf-8")

    def expect_close(self, timeout=TIMEOUT):
        """Reads (skipping data and pongs) until the server's close frame; then requires the
        server to close TCP. Returns (code, reason)."""
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_CLOSE:
                break
        code, reason = f.close_code()
        assert self.wait_eof(timeout), "server sent close but kept the TCP connection open"
        return code, reason

    def wait_eof(self, timeout=TIMEOUT):
        """True if the server closes TCP (EOF or reset) within timeout. Bytes that arrive
        before it are kept in self.buf."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if not self._fill(left):
                    return True
            except socket.timeout:
                return False


# ---------------------------------------------------------------------------------------------
# Polite clients: python3-websockets (asyncio API of 10.4)
# ---------------------------------------------------------------------------------------------


def ws_connect(port, path="/ws", **kw):
    """A websockets client as a browser would be: it offers permessage-deflate (the server
    must decline), masks every frame, validates every frame the server sends. Use as
    `ws = await ws_connect(...)` or `async with ws_connect(...) as ws`."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", TIMEOUT)
    kw.setdefault("close_timeout", TIMEOUT)
    kw.setdefault("max_size", None)
    kw.setdefault("ssl", client_ssl())
    scheme = "wss" if kw.get("ssl") is not None else "ws"
    return websockets.connect(f"{scheme}://{HOST}:{port}{path}", **kw)


async def recv(ws, timeout=TIMEOUT):
    return await asyncio.wait_for(ws.recv(), timeout)


async def expect(ws, text):
    """The next message must be exactly `text`."""
    got = await recv(ws)
    assert got == text, f"\nexpected {text!r}\n     got {got!r}"


async def join_room(port, path="/ws", **kw):
    """Connects to /ws (or path); returns (ws, welcome as dict, welcome's exact text)."""
    ws = await ws_connect(port, path, **kw)
    text = await recv(ws)
    assert isinstance(text, str), f"welcome must be a text message, got {text!r}"
    welcome = json.loads(text)
    assert welcome.get("type") == "welcome", f"first message is not a welcome: {text}"
    return ws, welcome, text


async def closed(ws, timeout=TIMEOUT):
    """Waits for the connection to end; returns (close code, reason) the server sent
    (1006 if it sent none)."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code, ws.close_reason


def relayed(msg_without_ws, who):
    """What the server must relay for a client message (protocol.md, *cursor*): the members
    kept byte-for-byte, then sender and color. msg_without_ws is the kept part, e.g.
    '"x":1,"y":2' (or '' for none); who is the sender's welcome dict."""
    tail = f'"sender":"{who["id"]}","color":{who["color"]}'
    return "{" + (msg_without_ws + "," if msg_without_ws else "") + tail + "}"


def join_text(who):
    return f'{{"type":"join","sender":"{who["id"]}","color":{who["color"]}}}'


def leave_text(who):
    return f'{{"type":"leave","sender":"{who["id"]}"}}'


async def _fresh_client_works(port, ws_path="/ws", ssl=None):
    """The survival check: an echo round trip and a well-formed welcome (over TLS with ssl,
    a client ssl.SSLContext)."""
    async with ws_connect(port, "/echo", ssl=ssl) as ws:
        await ws.send("still alive?")
        assert await recv(ws) == "still alive?"
    ws, welcome, _ = await join_room(port, ws_path, ssl=ssl)
    assert UUID4_RE.match(welcome["id"]), welcome
    await ws.close()


def check_alive(port, timeout=TIMEOUT, ws_path="/ws", ssl=None):
    """None if a fresh polite client works within timeout (retried: slots freed by a test's
    last close may take a moment to be reaped), else a description of the last failure."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            run(_fresh_client_works(port, ws_path, ssl), timeout=timeout)
            return None
        except Exception as e:  # noqa: BLE001 - any failure is reported below
            last = e
            time.sleep(0.05)
    return f"a fresh client no longer works after the test: {last!r}"


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class Site:
    """A www root made for one test, with a secret outside it and traps inside it:
        base/secret.txt            the secret no request may ever return
        base/www/...               the files below
        base/www/link.txt          -> ../secret.txt      (relative symlink out)
        base/www/abs-link.txt      -> base/secret.txt    (absolute symlink out)
        base/www/up                -> ..                 (directory symlink out)
        base/www/passwd            -> /etc/passwd
        base/www/.git/config       a dotfile holding the secret too
    """

    FILES = {
        "index.html": b"<!doctype html>\n<title>wsrelay test</title>\n<p>index \xc3\xa9</p>\n",
        "style.css": b"body { color: red; }\n",
        "app.js": b"console.log('hi');\n",
        "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n',
        "pixel.png": PNG_1X1,
        "favicon.ico": b"\x00\x00\x01\x00\x01\x00\x01\x01\x00\x00\x01\x00\x18\x00" + bytes(40),
        "data.json": b'{"hello": "world", "n": 1}\n',
        "sub/index.html": b"<p>sub index</p>\n",
        "sub/page.html": b"<p>sub page</p>\n",
        "a/b": b"plain file under a/\n",
    }

    def __init__(self, base):
        self.base = base
        self.root = base / "www"
        self.root.mkdir()
        self.secret = b"TOPSECRET-" + os.urandom(8).hex().encode()
        self.secret_path = base / "secret.txt"
        self.secret_path.write_bytes(self.secret + b"\n")
        self.files = dict(self.FILES)
        # Big enough that the server needs many write()s: tests partial writes.
        self.files["big.png"] = os.urandom(300 * 1024)
        for name, data in self.files.items():
            p = self.root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        (self.root / ".git").mkdir()
        (self.root / ".git" / "config").write_bytes(b"[core]\n\tsecret = " + self.secret + b"\n")
        (self.root / "link.txt").symlink_to("../secret.txt")
        (self.root / "abs-link.txt").symlink_to(self.secret_path)
        (self.root / "up").symlink_to("..")
        (self.root / "passwd").symlink_to("/etc/passwd")


@pytest.fixture
def site(tmp_path):
    return Site(tmp_path)


@pytest.fixture
def start_server(site):
    """Factory: start_server(*flags, www=None, listen=True) -> Server.

    By default the server gets `--host 127.0.0.1 --port 0 --www <site>`, then the fixture reads
    stderr until the "listening" line and sets server.port. listen=False passes only the given
    flags and does not wait (the test sets server.port itself if it wants the survival check).

    At teardown, for every server the test did not stop itself: it must still be running and
    a fresh client must work (the survival check); then it is stopped by PID. Any sanitizer
    report on its stderr fails the test."""
    servers = []

    def start(*flags, www=None, listen=True):
        args = []
        if listen:
            args += ["--host", HOST, "--port", "0"]
            args += ["--www", str(www if www is not None else site.root)]
        args += [str(f) for f in flags]
        if listen:
            args += tls_flags()
        if not os.access(BIN, os.X_OK):
            pytest.fail(f"no wsrelay binary at {BIN} (set WSRELAY_BIN or run `make wsrelay`)")
        srv = Server(args)
        srv.ssl = client_ssl() if listen else None
        servers.append(srv)
        if listen:
            srv.port = int(srv.wait_log(LISTENING_RE).group(1))
            assert srv.port != 0, "server logged port=0 instead of the port it got"
        return srv

    yield start

    problems = []
    for srv in servers:
        if not srv.stopped and srv.port is not None:
            if srv.proc.poll() is not None:
                problems.append(f"server died during the test (exit status {srv.proc.returncode})")
            else:
                why = check_alive(srv.port, ws_path=srv.ws_path, ssl=srv.ssl)
                if why:
                    problems.append(why)
        srv.stop()
        if srv.sanitizer_report():
            problems.append("sanitizer report on stderr")
        if problems:
            problems.append(f"server stderr:\n{srv.stderr[-6000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(start_server):
    """One server with default limits on the test's own www root."""
    return start_server()


# ---------------------------------------------------------------------------------------------
# Conformance helpers (issue 3): strict, byte-exact expectations for raw /echo sessions
# ---------------------------------------------------------------------------------------------
#
# Used by test_autobahn_*.py, which follow the case groups of the Autobahn|Testsuite fuzzing
# client but grade strictly (where Autobahn accepts NON-STRICT, we do not):
#
#   - an echo is exactly server_frame(opcode, payload): ONE frame, FIN set, RSV clear, unmasked
#     (§5.1), shortest length form (§5.2). The server re-frames whole messages, so a message we
#     sent in fragments comes back as one frame;
#   - a failed connection (§7.1.7) shows its close frame, with exactly the expected code, as the
#     very next frame: nothing that followed the offending frame is echoed or answered; then
#     TCP closes with no byte after the close frame;
#   - "the server sent nothing" is proven without timing: a ping with a fresh payload must be
#     answered by exactly its pong, as the next frame (ping_barrier).
#
# Those modules share one server per module (shared_server: starting one per case would cost
# more than the cases) and take a fresh /echo connection per test (raw_echo), which also pins a
# crash or a sanitizer report on the test that caused it.

BIG_TIMEOUT = 60.0  # for multi-MiB messages on the sanitizer build; never an assertion of speed


def server_frame(opcode, payload=b""):
    """The exact bytes the server must send for one whole message or control frame."""
    return build_frame(opcode, payload, mask=False)


def text_of(n):
    """n bytes of valid UTF-8 mixing 1-, 2- and 3-byte characters (so chops and fragments cut
    characters in half), ASCII-padded to exactly n bytes."""
    unit = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5-*\xe2\x82\xac"  # "κόσμε-*€", 16 bytes
    return unit * (n // len(unit)) + b"*" * (n % len(unit))


def binary_of(n):
    """n bytes cycling through every byte value (a bad unmasking offset shows at once)."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def describe(data, limit=80):
    """A short repr of possibly huge bytes, for failure messages."""
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def _fill_to(ws, size, deadline):
    """Makes ws.buf (a RawWS's unread bytes) hold at least `size` bytes, reading straight into
    one preallocated buffer and never past `size` (a 16 MiB echo read with bytes += would copy
    gigabytes). Fails on timeout or EOF."""
    have = len(ws.buf)
    if have >= size:
        return
    out = bytearray(size)
    out[:have] = ws.buf
    view = memoryview(out)
    try:
        while have < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out waiting for the server: have {have} of {size} bytes, "
                    f"{describe(bytes(out[:have]))}")
            ws.sock.settimeout(left)
            try:
                n = ws.sock.recv_into(view[have:])
            except socket.timeout:
                continue
            except ConnectionResetError:
                n = 0
            if n == 0:
                raise AssertionError(f"server closed TCP after {have} of {size} bytes: "
                                     f"{describe(bytes(out[:have]))}")
            have += n
    finally:
        view.release()
        ws.buf = bytes(out[:have])


def read_frame(ws, timeout=TIMEOUT, max_len=1 << 26):
    """The next frame the server sends, however big. Fails on a masked server frame (§5.1)."""
    deadline = time.monotonic() + timeout
    _fill_to(ws, 2, deadline)
    b1 = ws.buf[1]
    n7 = b1 & 0x7F
    hdr = 2 + {126: 2, 127: 8}.get(n7, 0) + (4 if b1 & 0x80 else 0)
    _fill_to(ws, hdr, deadline)
    n = n7
    if n7 == 126:
        n = struct.unpack("!H", ws.buf[2:4])[0]
    elif n7 == 127:
        n = struct.unpack("!Q", ws.buf[2:10])[0]
    assert n <= max_len, f"server announced a {n}-byte frame: {ws.buf[:hdr]!r}"
    _fill_to(ws, hdr + n, deadline)
    frame, size = parse_frame(ws.buf)
    ws.buf = ws.buf[size:]
    assert not frame.masked, f"server sent a masked frame {frame!r}"
    return frame


def expect_frame(ws, opcode, payload=b"", timeout=TIMEOUT):
    """The next frame must be, byte for byte, server_frame(opcode, payload)."""
    if isinstance(payload, str):
        payload = payload.encode()
    want = server_frame(opcode, payload)
    f = read_frame(ws, timeout)
    if f.raw != want:
        at = next((i for i, (a, b) in enumerate(zip(f.raw, want)) if a != b),
                  min(len(f.raw), len(want)))
        raise AssertionError(
            f"expected {describe(want[:16])} + payload {describe(payload)} "
            f"(opcode {opcode:#x}, {len(payload)} bytes, FIN, unmasked, shortest length);\n"
            f"got {f!r}, header {f.raw[:14]!r}, first difference at byte {at} of the frame")
    return f


def expect_echo(ws, opcode, payload, timeout=TIMEOUT):
    """The next frame is the echo of one whole message: a single frame, byte-exact."""
    return expect_frame(ws, opcode, payload, timeout)


def expect_pong(ws, payload=b"", timeout=TIMEOUT):
    """The next frame is a pong carrying exactly `payload` (§5.5.3)."""
    return expect_frame(ws, OP_PONG, payload, timeout)


def check_close_frame(f):
    """A close frame as §5.5 and §5.5.1 demand; returns (code or None, reason bytes)."""
    assert f.opcode == OP_CLOSE, f"expected a close frame, got {f!r}"
    assert f.fin and f.rsv == 0, f"bad close frame {f!r}"
    assert len(f.payload) <= 125, f"close frame over 125 bytes: {f!r}"
    assert len(f.payload) != 1, f"close frame with a 1-byte body: {f!r}"
    if not f.payload:
        return None, b""
    reason = f.payload[2:]
    try:
        reason.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError(f"close reason is not UTF-8: {reason!r}") from None
    return struct.unpack("!H", f.payload[:2])[0], reason


def expect_eof_only(ws, timeout=TIMEOUT):
    """After its close frame the server closes TCP (§7.1.1) and sends nothing more (§5.5.1)."""
    assert ws.wait_eof(timeout), "server sent its close frame but kept TCP open"
    assert ws.buf == b"", f"server sent bytes after its close frame: {describe(ws.buf)}"


def expect_fail(ws, code, timeout=TIMEOUT):
    """The server fails the connection (§7.1.7): its very next frame is a close with exactly
    `code` (so nothing sent after the offending frame was echoed or answered), then EOF.
    Returns the reason bytes."""
    f = read_frame(ws, timeout)
    assert f.opcode == OP_CLOSE, f"expected close {code} as the next frame, got {f!r}"
    got, reason = check_close_frame(f)
    assert got == code, f"expected close {code}, got {got} {reason!r}"
    expect_eof_only(ws, timeout)
    return reason


def expect_close_echo(ws, code, timeout=TIMEOUT):
    """The answer to a valid client close (§5.5.1): a close with the same code, or an empty body
    when the client sent none; then EOF."""
    f = read_frame(ws, timeout)
    assert f.opcode == OP_CLOSE, f"expected the close to be echoed, got {f!r}"
    got, reason = check_close_frame(f)
    assert got == code, f"client closed with {code}, server answered {got} {reason!r}"
    expect_eof_only(ws, timeout)


def ping_barrier(ws, timeout=TIMEOUT):
    """Proves the server has processed everything sent so far and answered none of it: a ping
    with a fresh payload must come back as the very next frame."""
    token = b"barrier-" + os.urandom(6).hex().encode()
    ws.send_frame(OP_PING, token)
    expect_pong(ws, token, timeout)


def send_chopped(ws, data, chop=1, pause=0.0):
    """Sends data in chops of `chop` bytes, each its own send() (TCP_NODELAY is on), with an
    optional pause between chops so the server sees partial frames."""
    for i in range(0, len(data), chop):
        ws.sock.sendall(data[i:i + chop])
        if pause:
            time.sleep(pause)


def send_lenient(ws, data):
    """Sends bytes the server may legitimately refuse to read any more (it may have failed the
    connection already): a reset or broken pipe here is not a failure."""
    try:
        ws.sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.fixture(scope="module")
def shared_server(request, tmp_path_factory):
    """One server for a whole module, with `--host 127.0.0.1 --port 0` and the module's
    SERVER_FLAGS. At the end of the module the survival check runs, as in start_server."""
    flags = [str(f) for f in getattr(request.module, "SERVER_FLAGS", ())]
    www = tmp_path_factory.mktemp("www")
    (www / "index.html").write_bytes(b"<p>conformance</p>\n")
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"no wsrelay binary at {BIN} (set WSRELAY_BIN or run `make wsrelay`)")
    srv = Server(["--host", HOST, "--port", "0", "--www", str(www), *flags, *tls_flags()])
    srv.ssl = client_ssl()
    problems = []
    try:
        srv.port = int(srv.wait_log(LISTENING_RE).group(1))
        yield srv
        if srv.proc.poll() is not None:
            problems.append(f"server died during the module (exit status {srv.proc.returncode})")
        else:
            why = check_alive(srv.port, ssl=srv.ssl)
            if why:
                problems.append(why)
    finally:
        srv.stop()
    if srv.sanitizer_report():
        problems.append("sanitizer report on stderr")
    if problems:
        problems.append(f"server stderr:\n{srv.stderr[-6000:]}")
        pytest.fail("\n".join(problems), pytrace=False)


def check_shared_server(srv):
    """Fails the current test if the shared server died or reported a sanitizer error."""
    problems = []
    if srv.proc.poll() is not None:
        problems.append(f"server died (exit status {srv.proc.returncode})")
    if srv.sanitizer_report():
        problems.append("sanitizer report on stderr")
    if problems:
        problems.append(f"server stderr:\n{srv.stderr[-6000:]}")
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def raw_echo(shared_server):
    """A RawWS on the shared server's /echo, closed after the test; the server must then still
    be running with no sanitizer report."""
    ws = RawWS.connect(shared_server.port, "/echo")
    yield ws
    ws.close()
    check_shared_server(shared_server)


# ---------------------------------------------------------------------------------------------
# Hardening helpers (issue 3: hostile input and limits). Added for test_timeouts, test_rate,
# test_origin, test_hostile_http, test_floods, test_churn, test_metrics; nothing above uses them.
# ---------------------------------------------------------------------------------------------

# scripts/test.sh sets this for the ASan+UBSan build: its quarantine keeps freed memory, so
# RSS says nothing there, and everything runs ~3x slower.
SANITIZED = os.environ.get("WSRELAY_SANITIZED") == "1"

# A valid request to pipeline after a hostile one: a server that reuses the connection after
# refusing the first request would answer it.
PROBE_REQUEST = b"GET /style.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def expect_refused_and_closed(port, raw, status, probe=True):
    """Sends raw (and, in the same send(), a valid pipelined request): the server must answer
    with `status` (an int, or a collection of acceptable ones) and "Connection: close", then
    close the connection without answering the pipelined request. Returns the response."""
    with HttpConn(port) as c:
        c.send(raw + (PROBE_REQUEST if probe else b""))
        resp = c.read_response()
        ok = resp.status == status if isinstance(status, int) else resp.status in status
        assert ok, f"expected {status}, got {resp!r}"
        assert (resp.header("Connection") or "").lower() == "close", \
            f"a refusal that closes must say Connection: close: {resp!r}"
        assert c.closed_by_peer(), f"connection kept open after {resp.status}"
        assert b"HTTP/1." not in c.buf, f"the pipelined request was answered: {c.buf[:200]!r}"
        assert c.buf == b"", f"bytes after the {status} response: {c.buf[:200]!r}"
    return resp


def proc_status_kib(pid, field):
    """A KiB field of /proc/<pid>/status: VmRSS, VmHWM (the peak)..."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def proc_rss_kib(pid):
    """VmRSS of a process, in KiB."""
    return proc_status_kib(pid, "VmRSS")


async def read_frame_async(reader):
    """One unmasked server frame from an asyncio StreamReader: (first byte, payload)."""
    hdr = await reader.readexactly(2)
    assert not hdr[1] & 0x80, f"server frame is masked: {hdr!r}"
    n = hdr[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    return hdr[0], await reader.readexactly(n)


def proc_fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# Prometheus text exposition format 0.0.4: `name{label="value",...} value [timestamp]`.
_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(rf"^({_METRIC_NAME})(?:\{{(.*)\}})? (\S+)(?: -?\d+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(?:,|$)')
_FLOAT_RE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|"
                       r"[+-]?Inf|NaN)$")


class Metrics:
    """One /metrics scrape, parsed strictly: every line is a comment, a HELP, a TYPE or a
    sample; anything else fails the test."""

    def __init__(self, text):
        self.text = text
        self.helps, self.types = {}, {}
        self.samples = {}  # (name, ((label, value), ...) sorted) -> float
        for line in text.split("\n")[:-1]:
            if line.startswith("# HELP "):
                parts = line.split(" ", 3)
                assert len(parts) == 4 and parts[3], f"HELP without text: {line!r}"
                self.helps[parts[2]] = parts[3]
            elif line.startswith("# TYPE "):
                parts = line.split(" ")
                assert len(parts) == 4, f"bad TYPE line {line!r}"
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert parts[2] not in self.types, f"second TYPE for {parts[2]}"
                self.types[parts[2]] = parts[3]
            elif line.startswith("#") or line == "":
                continue
            else:
                m = _SAMPLE_RE.match(line)
                assert m, f"not a Prometheus sample line: {line!r}"
                name, labels_text, value = m.groups()
                labels = []
                pos = 0
                while labels_text and pos < len(labels_text):
                    lm = _LABEL_RE.match(labels_text, pos)
                    assert lm and lm.end() > pos, f"bad labels in {line!r}"
                    labels.append((lm.group(1), lm.group(2)))
                    pos = lm.end()
                assert _FLOAT_RE.match(value), f"bad value in {line!r}"
                key = (name, tuple(sorted(labels)))
                assert key not in self.samples, f"duplicate sample {line!r}"
                self.samples[key] = float(value)

    def value(self, name, **labels):
        """The sample's value, or None if the scrape has no such sample."""
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def total(self, name):
        """The sum over every sample of a family (0.0 if it has none)."""
        return sum(v for (n, _), v in self.samples.items() if n == name)


def scrape(port):
    """GET /metrics on a fresh connection; the response must be a 200."""
    resp = get(port, "/metrics")
    assert resp.status == 200, resp
    text = resp.body.decode("utf-8")
    assert text.endswith("\n"), f"exposition must end with a newline: {text[-80:]!r}"
    return Metrics(text)


class Bystanders:
    """Two polite /ws clients (python3-websockets) that keep relaying to each other in a
    background thread while a test attacks the server: every attack must leave them alone.

        with Bystanders(srv.port):
            ...attack...

    Each round, a and b each send one message and each must receive both relayed messages
    (exact bytes; a's and b's may interleave). Messages from anyone else (an attacker's relayed
    messages, joins, leaves) are read and ignored. One message per round and a pause between
    rounds keep them far below any --max-rate used here (pause 0.2 s: at most 5 per second).

    On exit they finish the round in flight plus one round begun after the attack, then close.
    The exit fails the test if any of their messages went missing or came out of order, a
    round took longer than ROUND_TIMEOUT, or either was disconnected."""

    ROUND_TIMEOUT = 15.0

    def __init__(self, port, pause=0.2):
        self.port = port
        self.pause = pause
        self.rounds = 0
        self.error = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(self.ROUND_TIMEOUT * 2)
        if self.error is not None or not self._ready.is_set():
            self._stop.set()
            raise AssertionError(f"bystanders could not start: {self.error!r}")
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        self._thread.join(self.ROUND_TIMEOUT * 3)
        if exc_type is not None:
            return False  # the test's own failure comes first
        assert not self._thread.is_alive(), "bystanders hung"
        if self.error is not None:
            raise AssertionError(f"bystanders disturbed after {self.rounds} rounds: "
                                 f"{self.error}")
        return False

    def _run(self):
        try:
            asyncio.run(self._main())
        except BaseException as e:  # noqa: BLE001 - reported in __exit__
            self.error = f"{type(e).__name__}: {e}"
            self._ready.set()

    @staticmethod
    async def _await_own(ws, own_ids, wanted, what):
        """Reads until every text in `wanted` (a set) has arrived; fails on any other message
        from a bystander."""
        deadline = time.monotonic() + Bystanders.ROUND_TIMEOUT
        wanted = set(wanted)
        while wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: still waiting for {sorted(wanted)}")
            try:
                text = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                raise AssertionError(f"{what}: still waiting for {sorted(wanted)}") from None
            if text in wanted:
                wanted.discard(text)
                continue
            msg = json.loads(text)
            if msg.get("sender") in own_ids:
                raise AssertionError(f"{what}: unexpected {text!r} while waiting for "
                                     f"{sorted(wanted)}")

    async def _main(self):
        a, wa, _ = await join_room(self.port, max_queue=None)
        b, wb, _ = await join_room(self.port, max_queue=None)
        ids = {wa["id"], wb["id"]}
        await self._await_own(a, ids, {join_text(wb)}, "a waiting for b's join")
        self._ready.set()
        while True:
            stopping = self._stop.is_set()
            i = self.rounds
            ma, mb = f'"bystander":"a","i":{i}', f'"bystander":"b","i":{i}'
            await a.send("{" + ma + "}")
            await b.send("{" + mb + "}")
            want = {relayed(ma, wa), relayed(mb, wb)}
            await asyncio.gather(self._await_own(a, ids, want, f"a, round {i}"),
                                 self._await_own(b, ids, want, f"b, round {i}"))
            self.rounds += 1
            if stopping:
                break
            await asyncio.sleep(self.pause)
        await a.close()
        await b.close()


def scrape_until(port, check, timeout=TIMEOUT):
    """Scrapes /metrics until check(metrics) is true (closes are reaped asynchronously);
    returns the last scrape, which the caller asserts on with a full message."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(port)
        if check(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.05)
