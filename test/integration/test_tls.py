"""TLS on the listener (issue 13): --tls-cert / --tls-key, https:// and wss://.

A test CA and server certificates are made here with the `openssl` command (ECDSA P-256, the
certificate issue 13's benchmark names); clients trust that CA only, so every handshake below
also proves the chain the server sends. Covered: the page, /ws (relay and presence), /echo,
/metrics and /healthz over TLS; ALPN http/1.1; TLS 1.0 and 1.1 refused; big messages and a
big file (more than OpenSSL reads ahead at once: the buffered-input path); SIGHUP reload (new
handshakes see the new certificate, open connections stay, a bad file keeps the old pair);
hostile handshakes (plain HTTP, garbage, a client that stops mid-handshake) closed without
disturbing a client already connected; bad files at start exit 1; one flag alone exits 2.
"""

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
import websockets

from conftest import (
    BIG_TIMEOUT,
    HOST,
    TIMEOUT,
    closed,
    join_room,
    join_text,
    read_to_eof,
    recv,
    relayed,
    run,
    run_cli,
    ws_connect,
)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pair(d, ca, name):
    """A P-256 key and a certificate for localhost / 127.0.0.1 signed by the CA in ca."""
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=d)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr",
            cwd=d)
    (d / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca / "ca.pem"), "-CAkey",
            str(ca / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
            "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=wsrelay test CA", "-days",
            "2", "-out", "ca.pem", cwd=d)
    first = make_pair(d, d, "first")
    second = make_pair(d, d, "second")
    return {"dir": d, "ca": d / "ca.pem", "first": first, "second": second}


def client_ctx(pki, **kw):
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


@pytest.fixture
def tls_server(start_server, pki, tmp_path):
    """A server speaking TLS with the "first" pair, from copies the test may replace."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(pki["first"][0].read_bytes())
    key.write_bytes(pki["first"][1].read_bytes())

    def start(*flags):
        srv = start_server("--tls-cert", cert, "--tls-key", key, *flags)
        srv.ssl = client_ctx(pki)
        srv.cert, srv.key = cert, key
        return srv

    return start


def tls_socket(port, ctx, alpn=None):
    raw = socket.create_connection((HOST, port), timeout=TIMEOUT)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def https(port, ctx, target="/", extra=b""):
    """One GET over TLS; returns (status, headers dict, body, the peer's certificate DER)."""
    with tls_socket(port, ctx) as s:
        s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n" + extra + b"\r\n")
        data = read_to_eof(s, BIG_TIMEOUT)  # up to a few MiB, on the ASan build too
        der = s.getpeercert(binary_form=True)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body, der


def cert_der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


# ---- the routes over TLS -----------------------------------------------------------------

def test_page_metrics_healthz_over_https(tls_server, pki, site):
    srv = tls_server()
    status, headers, body, der = https(srv.port, srv.ssl, "/")
    assert status == 200 and body == (site.root / "index.html").read_bytes()
    assert der == cert_der(pki["first"][0])
    assert https(srv.port, srv.ssl, "/healthz")[0] == 200
    status, _, body, _ = https(srv.port, srv.ssl, "/metrics")
    assert status == 200 and b"wsrelay_connections_total" in body


def test_alpn_is_http11(tls_server, pki):
    srv = tls_server()
    with tls_socket(srv.port, client_ctx(pki), alpn=["h2", "http/1.1"]) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_alpn_without_http11_is_refused(tls_server, pki):
    """RFC 7301 §3.2: no protocol in common is a fatal no_application_protocol alert."""
    srv = tls_server()
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        tls_socket(srv.port, client_ctx(pki), alpn=["h2"])


def test_relay_and_presence_over_wss(tls_server):
    srv = tls_server()

    async def go():
        a, wa, _ = await join_room(srv.port, "/ws/tls", ssl=srv.ssl)
        b, wb, _ = await join_room(srv.port, "/ws/tls", ssl=srv.ssl)
        assert json.loads(await recv(a)) == json.loads(join_text(wb))
        await b.send('{"x":1,"y":2}')
        assert await recv(a) == relayed('"x":1,"y":2', wb)
        assert await recv(b) == relayed('"x":1,"y":2', wb)
        await a.close()
        await b.close()

    run(go())


@pytest.mark.parametrize("size", [1, 125, 126, 65535, 65536, 1 << 20])
def test_echo_over_wss(tls_server, size):
    """Messages far bigger than one TLS record (16 KiB) and than one read (64 KiB): what
    OpenSSL holds beyond a read must be read without another epoll event."""
    srv = tls_server("--max-message", "2M", "--max-buffer", "8M")

    async def go():
        async with ws_connect(srv.port, "/echo", ssl=srv.ssl) as ws:
            text = "é" * (size // 2) + "x" * (size % 2)
            for _ in range(3):
                await ws.send(text)
                assert await recv(ws) == text

    run(go())


def test_many_small_messages_in_one_burst(tls_server):
    """Hundreds of frames in a few records: every one is answered, none waits for a
    byte that would only come later."""
    srv = tls_server()

    async def go():
        async with ws_connect(srv.port, "/echo", ssl=srv.ssl) as ws:
            msgs = [f"m{i:05d}" * 40 for i in range(400)]
            for m in msgs:
                await ws.send(m)
            for m in msgs:
                assert await recv(ws) == m

    run(go())


def test_big_file_over_https(tls_server, site):
    """A file of several records and several wake-ups (SSL_write path, or SSL_sendfile where
    the kernel has kTLS); the server says once which one it uses."""
    blob = os.urandom(3 * 1024 * 1024 + 123)
    (site.root / "big.bin").write_bytes(blob)
    srv = tls_server()
    status, headers, body, _ = https(srv.port, srv.ssl, "/big.bin")
    assert status == 200 and int(headers["content-length"]) == len(blob)
    assert body == blob
    srv.wait_log(re.compile(r'"static files over TLS: (kTLS|no kTLS)'))


# ---- refused and hostile handshakes -------------------------------------------------------

@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_protocol_versions_refused(tls_server, pki, version):
    srv = tls_server()
    ctx = client_ctx(pki)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_socket(srv.port, ctx)


def test_plain_http_on_the_tls_port_gets_a_plain_400(tls_server):
    srv = tls_server()
    with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = read_to_eof(s)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert data.endswith(b"this port speaks only https.\n")


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x00\x05hello",           # a handshake record that is not a ClientHello
    b"\x00" * 512,                           # zeros
    os.urandom(4096),                        # noise
    b"\x16\x03\x01\xff\xff" + b"A" * 100,    # a record claiming 64 KiB, then silence
])
def test_garbage_handshakes_do_not_disturb_others(tls_server, garbage):
    srv = tls_server("--handshake-timeout", "1s")

    async def go():
        async with ws_connect(srv.port, "/echo", ssl=srv.ssl) as ws:
            with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as s:
                s.sendall(garbage)
                s.settimeout(TIMEOUT)
                try:
                    while s.recv(4096):
                        pass  # an alert, perhaps; then the server closes
                except (ConnectionError, socket.timeout) as e:
                    assert not isinstance(e, socket.timeout), "server kept the connection"
            await ws.send("still here")
            assert await recv(ws) == "still here"

    run(go())


def test_client_stalled_mid_handshake_is_closed_by_the_handshake_timeout(tls_server, pki):
    """Half a ClientHello, then nothing: --handshake-timeout covers the TLS handshake."""
    srv = tls_server("--handshake-timeout", "1s")
    # A real ClientHello, cut in half.
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(pki).wrap_bio(inb, outb, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outb.read()
    with socket.create_connection((HOST, srv.port), timeout=TIMEOUT) as s:
        s.sendall(hello[: len(hello) // 2])
        start = time.monotonic()
        s.settimeout(TIMEOUT)
        try:
            assert s.recv(4096) == b""
        except ConnectionError:
            pass
        assert time.monotonic() - start < TIMEOUT


# ---- reload --------------------------------------------------------------------------------

def test_sighup_reloads_the_pair_and_keeps_open_connections(tls_server, pki):
    srv = tls_server()

    async def go():
        async with ws_connect(srv.port, "/echo", ssl=srv.ssl) as old:
            assert https(srv.port, srv.ssl, "/healthz")[3] == cert_der(pki["first"][0])
            srv.cert.write_bytes(pki["second"][0].read_bytes())
            srv.key.write_bytes(pki["second"][1].read_bytes())
            srv.proc.send_signal(signal.SIGHUP)
            srv.wait_log(re.compile(r'"TLS certificate and key reloaded"'))
            assert https(srv.port, srv.ssl, "/healthz")[3] == cert_der(pki["second"][0])
            await old.send("after reload")
            assert await recv(old) == "after reload"

    run(go())


def test_a_bad_reload_keeps_the_old_pair(tls_server, pki):
    srv = tls_server()
    srv.cert.write_text("not a certificate\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(re.compile(r'"TLS reload failed: keeping the old pair"'))
    assert https(srv.port, srv.ssl, "/healthz")[3] == cert_der(pki["first"][0])


def test_a_key_that_does_not_match_is_refused_at_reload(tls_server, pki):
    srv = tls_server()
    srv.key.write_bytes(pki["second"][1].read_bytes())
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(re.compile(r'"TLS reload failed: keeping the old pair"'))
    assert https(srv.port, srv.ssl, "/healthz")[3] == cert_der(pki["first"][0])


# ---- start-up ------------------------------------------------------------------------------

def cli(*args):
    r = run_cli(*(str(a) for a in args))
    return r.returncode, r.stderr.decode("utf-8", "replace")


def test_missing_cert_file_exits_1(tmp_path, pki):
    rc, err = cli("--port", "0", "--www", tmp_path, "--tls-cert", tmp_path / "none.pem",
                  "--tls-key", pki["first"][1])
    assert rc == 1
    assert "none.pem" in err and "No such file" in err and "cannot load the TLS certificate" in err


def test_mismatched_key_exits_1(tmp_path, pki):
    rc, err = cli("--port", "0", "--www", tmp_path, "--tls-cert", pki["first"][0], "--tls-key",
                  pki["second"][1])
    assert rc == 1 and "cannot load the TLS certificate" in err


@pytest.mark.parametrize("flag", ["--tls-cert", "--tls-key"])
def test_one_tls_flag_alone_exits_2(pki, flag):
    rc, err = cli(flag, pki["first"][0])
    assert rc == 2 and "'--tls-cert' and '--tls-key' go together" in err


def test_sighup_without_tls_is_harmless(server):
    server.proc.send_signal(signal.SIGHUP)
    server.wait_log(re.compile(r'"SIGHUP: nothing to reload'))


def test_reload_under_load_drops_nobody(tls_server, pki):
    """40 clients in one room keep moving while the pair is swapped four times: nobody is
    dropped, every client still hears the room afterwards, and each new handshake sees the
    certificate of the last reload."""
    srv = tls_server()
    pairs = [pki["second"], pki["first"]] * 2

    async def go():
        clients = []
        for _ in range(40):
            ws, welcome, _ = await join_room(srv.port, "/ws/load", ssl=srv.ssl)
            clients.append(ws)
        moving, reading = asyncio.Event(), asyncio.Event()
        moving.set()
        reading.set()
        heard_last = [False] * len(clients)

        async def mover(ws, i):
            n = 0
            # 10 Hz each: 400 messages/s in and 16,000 deliveries/s out, which keeps every
            # connection's TLS records flowing through the swaps, while one Python process
            # can still read all of it on a busy machine (at 50 Hz its 40 readers fell
            # seconds behind, and the final check below timed out behind their backlog).
            while moving.is_set() and n < 400:  # bounded in count and in time
                await ws.send(f'{{"x":{i},"y":{n}}}')
                n += 1
                await asyncio.sleep(0.1)

        async def reader(ws, i):
            # Always reading, so no client's queue fills and the server never sees it stall.
            while reading.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except asyncio.TimeoutError:
                    continue
                except websockets.ConnectionClosed:
                    return
                if msg.get("x") == -1:
                    heard_last[i] = True

        movers = [asyncio.ensure_future(mover(ws, i)) for i, ws in enumerate(clients)]
        readers = [asyncio.ensure_future(reader(ws, i)) for i, ws in enumerate(clients)]
        for k, (cert, key) in enumerate(pairs, 1):
            srv.cert.write_bytes(cert.read_bytes())
            srv.key.write_bytes(key.read_bytes())
            srv.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + TIMEOUT
            while sum('"TLS certificate and key reloaded"' in ln for ln in list(srv.lines)) < k:
                assert time.monotonic() < deadline, f"reload {k} never logged:\n{srv.stderr}"
                await asyncio.sleep(0.02)
            der = await asyncio.get_running_loop().run_in_executor(
                None, lambda: https(srv.port, srv.ssl, "/healthz")[3])
            assert der == cert_der(cert), f"reload {k}: a new handshake saw the old certificate"
            await asyncio.sleep(0.2)
        moving.clear()
        await asyncio.gather(*movers)
        for ws in clients:
            assert ws.close_code is None, f"dropped during the reloads: {ws.close_code}"
        await clients[1].send('{"x":-1,"y":-1}')
        deadline = time.monotonic() + 3 * TIMEOUT  # behind whatever the readers still hold
        while not all(heard_last[i] for i in range(len(clients)) if i != 1):
            assert time.monotonic() < deadline, "the room went quiet after the reloads"
            await asyncio.sleep(0.05)
        # Closed while the readers still read, so no close waits behind a full queue.
        await asyncio.gather(*(ws.close() for ws in clients))
        reading.clear()
        await asyncio.gather(*readers)

    run(go(), timeout=60)
