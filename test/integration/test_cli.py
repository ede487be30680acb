"""Command line, exit statuses, log format, --quiet, start-up and shutdown."""

import asyncio
import re
import signal
import socket
import subprocess

import pytest

from conftest import (
    HOST,
    LOG_LINE_RE,
    TIMEOUT,
    HttpConn,
    RawWS,
    free_port,
    get,
    http_request,
    join_room,
    run,
    run_cli,
    wait_until_accepting,
)


def test_help_prints_usage_on_stdout_and_exits_0():
    r = run_cli("--help")
    assert r.returncode == 0, r
    out = r.stdout.decode()
    assert "usage" in out.lower(), out
    for flag in ("--host", "--port", "--www", "--max-clients", "--max-message", "--max-buffer",
                 "--quiet", "--token-secret-file", "WSRELAY_TOKEN_SECRET"):
        assert flag in out, f"usage does not mention {flag}:\n{out}"


def test_version_prints_name_and_version_and_exits_0():
    r = run_cli("--version")
    assert r.returncode == 0, r
    assert re.fullmatch(rb"wsrelay \S+\n?", r.stdout), r.stdout


BAD_ARGS = [
    ["--bogus"],
    ["--port"],
    ["--port", "abc"],
    ["--port", "70000"],
    ["--port", "65536"],
    ["--port", "-1"],
    ["--port", "80x"],
    ["--port", ""],
    ["--max-clients", "0"],
    ["--max-clients", "many"],
    ["--max-clients"],
    ["--max-message", "big"],
    ["--max-buffer", "1MB"],
    ["--host"],
    ["--www"],
    ["--token-secret-file"],
    ["--token-secret-file="],
    ["--token-secret-files", "k"],
    ["stray-positional-argument"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a) or "empty")
def test_bad_argument_prints_usage_on_stderr_and_exits_2(args):
    r = run_cli(*args)
    assert r.returncode == 2, (args, r)
    assert "usage" in r.stderr.decode(errors="replace").lower(), r.stderr


def test_port_in_use_exits_1_with_in_use_message(site):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("--host", HOST, "--port", str(port), "--www", str(site.root))
    assert r.returncode == 1, r
    assert "in use" in r.stderr.decode(errors="replace"), r.stderr


def test_port_0_logs_the_real_port_it_listens_on(server):
    # The fixture learned server.port from the log; it must be where the server answers.
    resp = get(server.port, "/")
    assert resp.status == 200


def test_every_log_line_has_timestamp_level_and_quoted_phrase(start_server):
    srv = start_server()
    get(srv.port, "/")
    get(srv.port, "/no-such-file")

    async def session():
        ws, _, _ = await join_room(srv.port)
        await ws.send("not json")
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)

    run(session())
    srv.stop()
    srv.stopped = True
    lines = [line for line in srv.lines if line.strip()]
    assert lines, "no log lines at all"
    bad = [line for line in lines if not LOG_LINE_RE.match(line)]
    assert not bad, "log lines not in '<ISO-8601 UTC> <level> key=value ... \"phrase\"' form:\n" \
        + "\n".join(bad)


def test_quiet_logs_nothing_but_errors(start_server, site):
    port = free_port()
    srv = start_server("--quiet", "--host", HOST, "--port", port, "--www", site.root,
                       listen=False)
    wait_until_accepting(port, srv.proc)
    srv.port = port
    assert get(port, "/").status == 200
    assert get(port, "/missing").status == 404

    async def session():
        ws, _, _ = await join_room(port)
        await ws.send('{"x":1}')
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        await ws.close()

    run(session())
    srv.stop()
    srv.stopped = True
    assert not any('"listening"' in line for line in srv.lines), srv.stderr
    non_errors = [line for line in srv.lines
                  if line.strip() and not re.match(r"^\S+ (error|err|fatal|crit)\b", line)]
    assert not non_errors, "--quiet still logged:\n" + "\n".join(non_errors)


def test_sigterm_closes_websockets_with_1001_and_exits(start_server):
    srv = start_server()

    async def session():
        ws, _, _ = await join_room(srv.port)
        srv.stopped = True  # no survival check: we are stopping it
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        return ws.close_code

    code = run(session())
    assert code == 1001, f"close code on shutdown: {code}"
    srv.proc.wait(TIMEOUT)
    assert srv.proc.returncode is not None
    assert srv.proc.returncode >= 0, f"killed by signal {-srv.proc.returncode} instead of exiting"


def test_peer_bytes_cannot_forge_or_break_log_lines(start_server):
    srv = start_server()
    nasty_targets = [
        "/x%0aFAKE%20LINE%0d%0a",
        '/"quoted"',
        "/" + "A" * 3000,
        "/\xff\xfe",
        "/%1b[31mred",
    ]
    for t in nasty_targets:
        with HttpConn(srv.port) as c:
            c.send(http_request("GET", t, headers=[("User-Agent", '"x"\tFAKE y=z')]))
            c.read_response()
    with HttpConn(srv.port) as c:
        c.send(b"GET /\x00\x7f\x1b HTTP/1.1\r\n\r\n")
        c.read_response()
    srv.stop()
    srv.stopped = True
    lines = [line for line in srv.lines if line.strip()]
    bad = [line for line in lines if not LOG_LINE_RE.match(line) or "FAKE" in line.split('"')[0]]
    assert not bad, "peer bytes broke the one-line-per-event log:\n" + "\n".join(bad)
    assert not any(line.startswith("FAKE") for line in lines)
    assert not any("\x1b" in line for line in lines), "escape sequence written to the log raw"


# ---------------------------------------------------------------------------------------------
# --verbose, and fields a peer cannot forge
# ---------------------------------------------------------------------------------------------

_FIELD_RE = re.compile(r'([a-z_]+)=("[^"]*"|[^ "=]+)(?: |$)')


def parse_log_line(line):
    """Splits '<time> <level> key=value ... "phrase"' strictly: each value is bare (no space,
    quote or '=') or in double quotes (no quote inside); the phrase is the last token. Returns
    (level, [(key, value), ...], phrase); fails on anything else."""
    m = re.match(r'^\S+ ([a-z]+) (.*)$', line)
    assert m, f"no time and level in {line!r}"
    level, rest = m.groups()
    fields, pos = [], 0
    while not rest.startswith('"', pos):
        f = _FIELD_RE.match(rest, pos)
        assert f, f"not a key=value field at {rest[pos:]!r} in {line!r}"
        fields.append((f.group(1), f.group(2)))
        pos = f.end()
    assert rest.endswith('"') and '"' not in rest[pos + 1:-1], f"bad phrase in {line!r}"
    return level, fields, rest[pos + 1:-1]


def test_verbose_logs_every_file_served_and_quiet_with_verbose_exits_2(start_server):
    srv = start_server("--verbose")
    assert get(srv.port, "/style.css").status == 200
    line = srv.wait_log(re.compile(r'"file served"$')).string
    level, fields, _ = parse_log_line(line)
    assert level == "debug" and dict(fields).get("file") == "style.css", line
    quiet = start_server()
    assert get(quiet.port, "/style.css").status == 200
    quiet.stop()
    quiet.stopped = True
    assert not any(" debug " in ln for ln in quiet.lines), quiet.stderr
    r = run_cli("--quiet", "--verbose")
    assert r.returncode == 2 and b"--verbose" in r.stderr, r


def test_a_decoded_path_cannot_forge_log_fields(start_server, site):
    # The path decodes to `a b" status=200 x`: unescaped, the debug line would read
    # file=a b" status=200 x, a second status field and a stray quote.
    (site.root / 'a b" status=200 x').write_bytes(b"not a forgery\n")
    srv = start_server("--verbose")
    resp = get(srv.port, "/a%20b%22%20status=200%20x")
    assert resp.status == 200 and resp.body == b"not a forgery\n", resp
    line = srv.wait_log(re.compile(r'"file served"$')).string
    level, fields, phrase = parse_log_line(line)
    assert level == "debug" and phrase == "file served", line
    assert [k for k, _ in fields] == ["conn", "status", "file", "coding"], line
    assert dict(fields)["status"] == "200", line
    assert dict(fields)["file"] == '"a b\\x22 status\\x3d200 x"', line
    assert line.count("status=") == 1, line


def test_every_verbose_line_parses_as_fields_and_a_phrase(start_server, tmp_path, site):
    # A www directory with a space in its name (the "listening" line names it), hostile paths
    # (refused: 400/404 lines; a tab is refused too), four files with awkward names served
    # (debug lines), a room
    # session: every line splits into key=value fields and one phrase.
    www = tmp_path / "my www"
    www.mkdir()
    for name in ("plain.txt", "a=b.txt", 'q"uote.txt', "tab\there.txt", "caf\u00e9.txt"):
        (www / name).write_bytes(b"x\n")
    srv = start_server("--verbose", www=www)
    for target in ("/plain.txt", "/a=b.txt", "/q%22uote.txt", "/tab%09here.txt",
                   "/caf%C3%A9.txt", "/x%0aFAKE%20LINE", '/"quoted"', "/%1b[31mred",
                   "/" + "A" * 3000, "/missing%20file"):
        with HttpConn(srv.port) as c:
            c.send(http_request("GET", target, headers=[("User-Agent", '"x" FAKE y=z')]))
            c.read_response()

    async def session():
        ws, _, _ = await join_room(srv.port)
        await ws.send("not json")
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)

    run(session())
    srv.stop()
    srv.stopped = True
    lines = [ln for ln in srv.lines if ln.strip()]
    assert sum('"file served"' in ln for ln in lines) == 4, "\n".join(lines)
    for line in lines:
        _, fields, _ = parse_log_line(line)
        keys = [k for k, _ in fields]
        assert len(keys) == len(set(keys)), f"a field twice in {line!r}"
    listening = next(ln for ln in lines if ln.endswith('"listening"'))
    assert f'www="{www}"' in listening, listening


def test_sigterm_exits_even_if_clients_never_answer_the_close(start_server):
    # A raw client that gets its 1001 but never closes back, and an idle HTTP connection:
    # shutdown must still finish (the wait is generous; it asserts termination, not speed).
    srv = start_server()
    ws = RawWS.connect(srv.port, "/ws")
    idle = HttpConn(srv.port)
    try:
        ws.recv_text()  # welcome
        srv.stopped = True
        srv.proc.send_signal(signal.SIGTERM)
        while True:
            f = ws.recv_frame()
            if f.opcode == 0x8:
                break
        assert f.close_code()[0] == 1001
        try:
            srv.proc.wait(3 * TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail("server did not exit after SIGTERM while a client ignored its close")
        assert srv.proc.returncode >= 0, f"killed by signal {-srv.proc.returncode}"
    finally:
        ws.close()
        idle.close()
