"""Room tokens (issue 13): --token-secret-file / WSRELAY_TOKEN_SECRET, JWTs signed HS256.

Tokens are made here with the standard library (hmac, hashlib, base64, json), and by the two
snippets of docs/deploy.md ("Issuing room tokens"), which are extracted from the document and
run as they are (Python in this process, Node in a `node` child), so the doc cannot drift from
what the server accepts. Every refusal must come before the upgrade, as a 401/403 with a
reason and a WWW-Authenticate challenge, and leave the server serving everyone else.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import (
    REPO,
    HttpConn,
    expect,
    get,
    handshake_request,
    join_room,
    recv,
    run,
    run_cli,
    ws_connect,
)

SECRET = b"wsrelay integration tests' room token key, 32+ bytes"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(claims, header=None, secret=SECRET, raw_claims=None, raw_header=None):
    """A signed token; raw_* give the JSON text byte for byte (duplicates, odd numbers)."""
    h = raw_header if raw_header is not None else json.dumps(header or {"alg": "HS256", "typ": "JWT"})
    c = raw_claims if raw_claims is not None else json.dumps(claims)
    signing_input = b64url(h.encode()) + "." + b64url(c.encode())
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def later(s=3600):
    return int(time.time()) + s


@pytest.fixture
def token_server(start_server, tmp_path):
    """Factory: a server requiring tokens signed with SECRET (from a file), whose survival
    check joins the default room with a token of its own."""

    def start(*flags):
        key = tmp_path / "token.key"
        key.write_bytes(SECRET + b"\n")
        srv = start_server("--token-secret-file", str(key), *flags)
        srv.ws_path = "/ws?token=" + mint({"exp": later(), "room": ""})
        return srv

    return start


def upgrade_raw(port, path, extra=None):
    """A raw handshake; returns the parsed response (the connection is closed after)."""
    with HttpConn(port) as c:
        c.send(handshake_request(path, extra=extra))
        return c.read_response()


def refused(port, path, status, reason, extra=None):
    resp = upgrade_raw(port, path, extra)
    assert resp.status == status, resp
    assert (resp.header("Connection") or "").lower() == "close", resp
    body = resp.body.decode()
    assert body == f"{status} {resp.reason}: {reason}\n", body
    challenge = resp.header("WWW-Authenticate") or ""
    assert challenge.startswith('Bearer realm="wsrelay"'), resp
    if reason == "token required":
        assert "error=" not in challenge  # RFC 6750 §3.1
    elif status == 403:
        assert 'error="insufficient_scope"' in challenge
    else:
        assert 'error="invalid_token"' in challenge
    assert resp.header("Sec-WebSocket-Accept") is None
    return resp


# ---- Accepted ------------------------------------------------------------------------------


def test_token_in_the_query_and_as_a_bearer_subprotocol(token_server):
    srv = token_server()
    tok = mint({"exp": later(), "room": "doc"})

    async def session():
        a, wa, _ = await join_room(srv.port, f"/ws/doc?token={tok}")
        assert wa["room"] == "doc" and "name" not in wa
        # Beside wsrelay.batch: that is what the 101 echoes, never the bearer entry.
        b = await ws_connect(srv.port, "/ws/doc", subprotocols=["wsrelay.batch", "bearer." + tok])
        assert b.subprotocol == "wsrelay.batch"
        assert b.response_headers.get_all("Sec-WebSocket-Protocol") == ["wsrelay.batch"]
        batch = json.loads(await recv(b))
        assert batch[0]["type"] == "welcome"
        await recv(a)  # b's join
        # Alone (a client that is not a browser accepts a 101 without a subprotocol).
        c = await ws_connect(srv.port, "/ws/doc", subprotocols=["bearer." + tok])
        assert c.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in c.response_headers
        assert json.loads(await recv(c))["type"] == "welcome"
        for ws in (a, b, c):
            await ws.close()

    run(session())


def test_raw_101_never_echoes_the_bearer_entry(token_server):
    srv = token_server()
    tok = mint({"exp": later(), "room": "*"})
    for protocols, echoed in [
        (f"bearer.{tok}, wsrelay.batch", "wsrelay.batch"),
        (f"wsrelay.batch, bearer.{tok}", "wsrelay.batch"),
        (f"x.other, bearer.{tok}", None),
    ]:
        resp = upgrade_raw(srv.port, "/ws/r1", [("Sec-WebSocket-Protocol", protocols)])
        assert resp.status == 101, resp
        assert resp.header("Sec-WebSocket-Protocol") == echoed, resp
        assert tok not in resp.raw.decode(errors="replace")


def test_the_default_room_and_a_star_token(token_server):
    srv = token_server()

    async def session():
        for path, room in [("/ws", ""), ("/ws/", ""), ("/ws/any-room", "*"), ("/ws", "*")]:
            ws, w, _ = await join_room(srv.port, f"{path}?x=1&token={mint({'exp': later(), 'room': room})}")
            assert w["type"] == "welcome"
            await ws.close()

    run(session())


def test_a_stamped_name_and_color_cannot_be_overridden(token_server):
    srv = token_server()
    name = 'Ann "the" \\ é 😀'
    tok_a = mint({"exp": later(), "room": "doc", "name": name, "color": 42})
    tok_b = mint({"exp": later(), "room": "doc"})  # no name claim: today's behaviour
    name_json = json.dumps(name, ensure_ascii=False)  # " and \ escaped, nothing else

    async def session():
        a, wa, ta = await join_room(srv.port, f"/ws/doc?token={tok_a}")
        assert wa["name"] == name and wa["color"] == 42
        assert ta.startswith(f'{{"type":"welcome","id":"{wa["id"]}","color":42,"name":{name_json},"room":"doc"')
        b, wb, _ = await join_room(srv.port, f"/ws/doc?token={tok_b}")
        assert "name" not in wb
        assert wb["peers"] == [{"sender": wa["id"], "color": 42, "name": name}]
        await expect(a, f'{{"type":"join","sender":"{wb["id"]}","color":{wb["color"]}}}')
        # a tries to be someone else, three ways: every one is replaced by the token's.
        await a.send('{"x":1,"name":"Mallory","sender":"%s","color":7,"n\\u0061me":"Eve"}'
                     % wb["id"])
        want = f'{{"x":1,"name":{name_json},"sender":"{wa["id"]}","color":42}}'
        await expect(a, want)
        await expect(b, want)
        # b has no name claim: its own name is one of its members, as without tokens.
        await b.send('{"x":2,"name":"Bob"}')
        want_b = f'{{"x":2,"name":"Bob","sender":"{wb["id"]}","color":{wb["color"]}}}'
        await expect(a, want_b)
        await expect(b, want_b)
        # A newcomer's welcome lists a's stamped message.
        c, wc, _ = await join_room(srv.port, f"/ws/doc?token={tok_b}")
        assert {"x": 1, "name": name, "sender": wa["id"], "color": 42} in wc["peers"]
        for ws in (a, b, c):
            await ws.close()

    run(session())


def test_seed_protocol_is_unchanged_without_tokens(server):
    """No secret: a client's "name" is its own member, kept where it stands, as before."""

    async def session():
        a, wa, ta = await join_room(server.port)
        assert ta == f'{{"type":"welcome","id":"{wa["id"]}","color":{wa["color"]},"room":"","peers":[]}}'
        await a.send('{"name":"Zoë","x":1}')
        await expect(a, f'{{"name":"Zoë","x":1,"sender":"{wa["id"]}","color":{wa["color"]}}}')
        await a.close()

    run(session())


# ---- Refused -------------------------------------------------------------------------------


def refusal_cases():
    now = int(time.time())
    ok = {"exp": later(), "room": "doc"}
    t = mint(ok)
    head, body, sig = t.split(".")
    unsigned_none = b64url(b'{"alg":"none"}') + "." + body + "."
    duplicate = mint(None, raw_claims=json.dumps(ok)[:-1] + ', "room": "x"}')
    return [
        ("none", "/ws/doc", 401, "token required", None),
        ("empty", "/ws/doc?token=", 401, "malformed token", None),
        ("two in the query", f"/ws/doc?token={t}&token={t}", 401, "more than one token", None),
        ("query and bearer", f"/ws/doc?token={t}", 401, "more than one token",
         [("Sec-WebSocket-Protocol", f"wsrelay.batch, bearer.{t}")]),
        ("two bearers", "/ws/doc", 401, "more than one token",
         [("Sec-WebSocket-Protocol", f"bearer.{t}"), ("Sec-WebSocket-Protocol", f"bearer.{t}")]),
        ("two segments", f"/ws/doc?token={head}.{body}", 401, "malformed token", None),
        ("padding", f"/ws/doc?token={t}=", 401, "malformed token", None),
        ("standard base64", f"/ws/doc?token={t[:-1]}+", 401, "malformed token", None),
        ("bad signature", f"/ws/doc?token={mint(ok, secret=b'another key of thirty-two bytes or more')}",
         401, "bad token signature", None),
        ("alg none unsigned", f"/ws/doc?token={unsigned_none}", 401, "bad token signature", None),
        ("alg none signed", f"/ws/doc?token={mint(ok, {'alg': 'none'})}", 401,
         "token algorithm must be HS256", None),
        ("alg HS512", f"/ws/doc?token={mint(ok, {'alg': 'HS512'})}", 401,
         "token algorithm must be HS256", None),
        ("crit", f"/ws/doc?token={mint(ok, {'alg': 'HS256', 'crit': ['exp']})}", 401,
         "token has critical extensions", None),
        ("duplicate room", f"/ws/doc?token={duplicate}", 401, "token has a duplicate member", None),
        ("exp a string", f"/ws/doc?token={mint({'exp': str(later()), 'room': 'doc'})}", 401,
         "token claim of the wrong type", None),
        ("expired", f"/ws/doc?token={mint({'exp': now - 1, 'room': 'doc'})}", 401,
         "token expired", None),
        ("not yet", f"/ws/doc?token={mint({'exp': later(), 'nbf': now + 600, 'room': 'doc'})}", 401,
         "token not yet valid", None),
        ("no room", f"/ws/doc?token={mint({'exp': later()})}", 401, "token has no room", None),
        ("bad name", f"/ws/doc?token={mint({'exp': later(), 'room': 'doc', 'name': 'a' * 65})}", 401,
         "token name is not a valid name", None),
        ("bad color", f"/ws/doc?token={mint({'exp': later(), 'room': 'doc', 'color': '#fff'})}", 401,
         "token color is not a hue 0-359", None),
        ("too long", f"/ws/doc?token={mint({'exp': later(), 'room': 'doc', 'p': 'x' * 3100})}", 401,
         "token too long", None),
        ("another room", f"/ws/other?token={t}", 403, "token is for another room", None),
        ("the default room", f"/ws?token={t}", 403, "token is for another room", None),
        ("bearer for another room", "/ws/other", 403, "token is for another room",
         [("Sec-WebSocket-Protocol", f"wsrelay.batch, bearer.{t}")]),
    ]


def test_every_refusal_comes_before_the_upgrade_and_others_keep_going(token_server):
    srv = token_server()
    good = mint({"exp": later(), "room": "doc"})

    async def session():
        a, wa, _ = await join_room(srv.port, f"/ws/doc?token={good}")
        for _what, path, status, reason, extra in refusal_cases():
            refused(srv.port, path, status, reason, extra)
        # The room heard nothing of any of them; a is still served.
        await a.send('{"x":1}')
        await expect(a, f'{{"x":1,"sender":"{wa["id"]}","color":{wa["color"]}}}')
        await a.close()

    run(session())
    assert not any('"joined the room"' in line and "room=/other" in line for line in srv.lines)


def test_the_token_never_reaches_the_log(token_server, tmp_path):
    srv = token_server("--verbose")
    tok = mint({"exp": later(), "room": "doc", "name": "Logged?"})
    bad = mint({"exp": later(), "room": "doc"}, secret=b"not the server's key, thirty-two bytes")

    async def session():
        a, _, _ = await join_room(srv.port, f"/ws/doc?token={tok}")
        await a.close()
        b = await ws_connect(srv.port, "/ws/doc", subprotocols=["wsrelay.batch", "bearer." + tok])
        await b.close()

    run(session())
    for path in (f"/ws/doc?token={bad}", f"/ws/other?token={tok}", f"/ws/doc?token={tok}x",
                 f"/nosuchfile?token={tok}", f"/ws/%zz?token={tok}"):
        upgrade_raw(srv.port, path)
    assert get(srv.port, f"/?token={tok}").status == 200
    srv.stop()
    srv.stopped = True
    log = srv.stderr
    for secret_bytes in (tok, bad, tok.split(".")[2], bad.split(".")[2], SECRET.decode()):
        assert secret_bytes not in log, f"{secret_bytes[:20]}... appears in the log:\n{log}"
    assert "token=" not in log
    assert '"bad token signature"' in log and '"token is for another room"' in log


def test_echo_static_files_and_metrics_need_no_token(token_server):
    srv = token_server()
    assert get(srv.port, "/").status == 200
    assert get(srv.port, "/style.css").status == 200
    assert get(srv.port, "/r/doc").status == 200
    assert get(srv.port, "/healthz").status == 200
    metrics = get(srv.port, "/metrics")
    assert metrics.status == 200

    async def session():
        async with ws_connect(srv.port, "/echo") as ws:
            await ws.send("hi")
            assert await recv(ws) == "hi"

    run(session())
    upgrade_raw(srv.port, "/ws/doc")  # refused: counted
    text = get(srv.port, "/metrics").body.decode()
    assert re.search(r"^wsrelay_token_refused_total 1$", text, re.M), text


# ---- The secret ----------------------------------------------------------------------------


def test_the_secret_from_the_environment(start_server):
    os.environ["WSRELAY_TOKEN_SECRET"] = SECRET.decode()
    try:
        srv = start_server()
    finally:
        del os.environ["WSRELAY_TOKEN_SECRET"]
    srv.ws_path = "/ws?token=" + mint({"exp": later(), "room": ""})
    refused(srv.port, "/ws", 401, "token required")
    # The environment's value is the key itself: no newline is stripped from it.
    assert upgrade_raw(srv.port, "/ws?token=" + mint({"exp": later(), "room": ""})).status == 101


@pytest.mark.parametrize("content, why", [
    (None, "No such file or directory"),
    (b"", "empty"),
    (b"\n", "empty"),
    (b"x" * 31 + b"\n", "shorter than 32 bytes"),
    (b"x" * 5000, "longer than 4096 bytes"),
    ("dir", "Is a directory"),
    ("unreadable", "Permission denied"),
])
def test_a_bad_secret_file_exits_1_naming_the_file(tmp_path, content, why):
    path = tmp_path / "my token.key"
    if content == "dir":
        path.mkdir()
    elif content == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        path.write_bytes(SECRET)
        path.chmod(0)
    elif content is not None:
        path.write_bytes(content)
    r = run_cli("--port", "0", "--host", "127.0.0.1", "--token-secret-file", str(path))
    err = r.stderr.decode()
    assert r.returncode == 1, (r, err)
    assert "my token.key" in err and why in err, err
    assert "listening" not in err


def test_exactly_32_bytes_and_one_stripped_newline(start_server, tmp_path):
    key = b"k" * 32
    for content in (key, key + b"\n", key + b"\r\n"):
        path = tmp_path / "k"
        path.write_bytes(content)
        srv = start_server("--token-secret-file", str(path))
        srv.ws_path = "/ws?token=" + mint({"exp": later(), "room": ""}, secret=key)
        assert upgrade_raw(srv.port, srv.ws_path).status == 101
        srv.stop()
        srv.stopped = True
    # Two newlines: only one goes, so the key is 33 bytes and the 32-byte one is wrong.
    path.write_bytes(key + b"\n\n")
    srv = start_server("--token-secret-file", str(path))
    srv.ws_path = "/ws?token=" + mint({"exp": later(), "room": ""}, secret=key + b"\n")
    refused(srv.port, "/ws?token=" + mint({"exp": later(), "room": ""}, secret=key), 401,
            "bad token signature")


def test_file_and_environment_together_are_refused(tmp_path):
    path = tmp_path / "k"
    path.write_bytes(SECRET)
    env = dict(os.environ, WSRELAY_TOKEN_SECRET=SECRET.decode())
    from conftest import BIN
    r = subprocess.run([BIN, "--port", "0", "--token-secret-file", str(path)], env=env,
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and b"give one" in r.stderr, r


# ---- docs/deploy.md's snippets ---------------------------------------------------------------


def deploy_snippet(lang):
    text = (REPO / "docs" / "deploy.md").read_text()
    section = text.split("## Issuing room tokens", 1)[1]
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, re.S)
    assert blocks, f"no {lang} block in docs/deploy.md"
    return blocks[0]


def test_the_python_snippet_of_deploy_md_issues_tokens_the_server_accepts(token_server):
    srv = token_server()
    scope = {}
    exec(deploy_snippet("python"), scope)  # noqa: S102 - our own documentation
    tok = scope["room_token"](SECRET, "doc", name="Zoë 🐍")

    async def session():
        ws, w, _ = await join_room(srv.port, f"/ws/doc?token={tok}")
        assert w["name"] == "Zoë 🐍"
        await ws.close()
        any_room = scope["room_token"](SECRET, "*")
        ws, w, _ = await join_room(srv.port, f"/ws/elsewhere?token={any_room}")
        assert "name" not in w
        await ws.close()

    run(session())
    refused(srv.port, f"/ws/other?token={tok}", 403, "token is for another room")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_snippet_of_deploy_md_issues_tokens_the_server_accepts(token_server, tmp_path):
    srv = token_server()
    script = tmp_path / "issue.js"
    script.write_text(deploy_snippet("js") + "\nconsole.log(roomToken(process.env.KEY, 'doc', 'Zoë 🟢'));\n")
    r = subprocess.run(["node", str(script)], env=dict(os.environ, KEY=SECRET.decode()),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r
    tok = r.stdout.decode().strip()

    async def session():
        ws = await ws_connect(srv.port, "/ws/doc", subprotocols=["wsrelay.batch", "bearer." + tok])
        assert ws.subprotocol == "wsrelay.batch"
        welcome = json.loads(await recv(ws))[0]
        assert welcome["type"] == "welcome" and welcome["name"] == "Zoë 🟢", welcome
        await ws.close()

    run(session())
