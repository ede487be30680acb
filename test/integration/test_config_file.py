"""--config FILE (flags override it; every bad file exits 2 naming file and line) and
--log-format json (every line one JSON object, hostile bytes and tokens included)."""

import asyncio
import json
import re

import pytest

from conftest import (
    HOST,
    LISTENING_RE,
    TIMEOUT,
    HttpConn,
    get,
    http_request,
    join_room,
    run,
    run_cli,
    ws_connect,
)

JSON_LISTENING_RE = re.compile(r'"port":(\d+),.*"event":"listening"')


def start_with_config(start_server, path, *flags, regex=LISTENING_RE):
    """A server given --config path (and flags) only: the file says where it listens."""
    srv = start_server("--config", str(path), *flags, listen=False)
    srv.port = int(srv.wait_log(regex).group(1))
    return srv


def write_conf(tmp_path, text, name="wsrelay.conf"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# ---------------------------------------------------------------------------------------------
# --config
# ---------------------------------------------------------------------------------------------


def test_a_server_started_with_a_config_file_serves(start_server, site, tmp_path):
    conf = write_conf(tmp_path, f"""# a test config
host = {HOST}
port = 0

www = {site.root}
max-clients = 12
handshake-timeout = 2s
""")
    srv = start_with_config(start_server, conf)
    assert get(srv.port, "/").status == 200
    listening = next(ln for ln in srv.lines if ln.endswith('"listening"'))
    assert "max_clients=12" in listening, listening

    async def session():
        ws, welcome, _ = await join_room(srv.port)
        await ws.close()

    run(session())


def test_flags_override_the_file_before_or_after_config(start_server, site, tmp_path):
    conf = write_conf(tmp_path, f"host = {HOST}\nport = 0\nwww = {site.root}\n"
                                "max-clients = 12\nlog-format = json\nquiet = true\n")
    # Before --config and after it: both win over the file. --verbose beats quiet = true, and
    # --log-format text beats the file's json.
    srv = start_with_config(start_server, conf, "--max-clients", "34", "--log-format=text",
                            "--verbose")
    listening = next(ln for ln in srv.lines if ln.endswith('"listening"'))
    assert "max_clients=34" in listening, listening
    assert get(srv.port, "/style.css").status == 200
    srv.wait_log(re.compile(r'"file served"$'))  # a debug line: --verbose is in force
    srv2 = start_server("--max-clients=56", "--config", str(conf), "--quiet=false", listen=False)
    srv2.port = int(srv2.wait_log(JSON_LISTENING_RE).group(1))
    line = json.loads(srv2.lines[0])
    assert line["max_clients"] == 56 and line["event"] == "listening", line


BAD_FILES = [
    # (file text, line number in the message, words in the message)
    ("prot = 1\n", 1, "unknown option 'prot'"),
    ("# ok\nport = 1\n\nport = 2\n", 4, "'port' set again (first on line 2)"),
    ("port = 80x\n", 1, "'80x' is not a number"),
    ("port 8080\n", 1, "expected 'name = value'"),
    ("host = 127.0.0.1\nconfig = /etc/other.conf\n", 2, "only works on the command line"),
    ("quiet = yes\n", 1, "neither true nor false"),
    ("log-format = xml\n", 1, "neither text nor json"),
    ("max-buffer = 1MB\n", 1, "is not a number"),
    (b"host = a\x00b\n", 1, "NUL byte"),
    (b"port = 1\nhost = caf\xe9\n", 2, "not UTF-8"),
    (b"host = a\x1b[31m\n", 1, "control character 0x1b"),
    ("host = " + "x" * 5000 + "\n", 1, "line longer than 4096 bytes"),
    ("--port = 1\n", 1, "unknown option '--port'"),
]


@pytest.mark.parametrize("text,line,words", BAD_FILES, ids=[w for _, _, w in BAD_FILES])
def test_each_bad_file_exits_2_naming_file_and_line(tmp_path, text, line, words):
    conf = write_conf(tmp_path, text)
    r = run_cli("--config", str(conf), "--port", "0")
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, (r, err)
    assert err.startswith(f"wsrelay: {conf}:{line}: "), err
    assert words in err, err
    assert "usage" not in err.lower(), "a file's mistake is not a usage error: " + err
    assert err.count("\n") == 1, err


def test_unreadable_huge_and_missing_files_exit_2_naming_the_file(tmp_path):
    missing = tmp_path / "nope.conf"
    huge = write_conf(tmp_path, "# " + "x" * (64 * 1024) + "\n", "huge.conf")
    for path, words in ((missing, "cannot open"), (tmp_path, "cannot read"),
                        (huge, "larger than 65536 bytes")):
        r = run_cli("--config", str(path))
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 2 and err.startswith(f"wsrelay: {path}: ") and words in err, err


def test_config_needs_a_value_and_a_bad_flag_still_shows_usage(tmp_path):
    r = run_cli("--config")
    assert r.returncode == 2 and b"usage" in r.stderr.lower(), r
    conf = write_conf(tmp_path, "port = 0\n")
    r = run_cli("--config", str(conf), "--bogus")
    assert r.returncode == 2 and b"unknown option '--bogus'" in r.stderr, r


def test_checks_across_options_see_file_and_flags_together(tmp_path):
    conf = write_conf(tmp_path, "tls-key = /nonexistent/key.pem\n")
    r = run_cli("--config", str(conf), "--port", "0")
    assert r.returncode == 2 and b"go together" in r.stderr, r


# ---------------------------------------------------------------------------------------------
# --log-format json
# ---------------------------------------------------------------------------------------------

SECRET = "SECRETtoken0123456789"


def test_every_json_log_line_parses_and_hostile_bytes_stay_inside_their_strings(
        start_server, site, tmp_path):
    # Files whose decoded names are hostile, served (debug "file served" lines carry them;
    # www.c refuses names with a backslash or a control byte, so those reach no line).
    names = {
        "quote": 'q"uote status=200 "x.txt',
        "utf8": "caf\u00e9.txt",
    }
    for name in names.values():
        (site.root / name).write_bytes(b"x\n")
    (site.root / "bad-utf8-\udcff.txt").write_bytes(b"x\n")  # the byte 0xff, raw in the name
    srv = start_server("--verbose", "--log-format", "json")
    targets = [
        "/q%22uote%20status=200%20%22x.txt",
        "/ctl%01%7F.txt",
        "/back%5Cslash.txt",
        "/caf%C3%A9.txt",
        "/bad-utf8-%FF.txt",
        "/missing%22%5C%00%0a%1b%FF?token=" + SECRET,
        "/r/x%22y?token=" + SECRET,
        '/"quoted"\\?a=b',
    ]
    for t in targets:
        with HttpConn(srv.port) as c:
            c.send(http_request("GET", t, headers=[("User-Agent", '"x"\tFAKE y=z')]))
            c.read_response()
    with HttpConn(srv.port) as c:  # raw bytes a browser would never send
        c.send(b"GET /\xff\xfe\"\\\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.read_response()

    async def session():
        # A room with a token in the query (refused or not, it must not be logged), a hostile
        # room name (refused), then a good session.
        for path in (f"/ws/lobby?token={SECRET}", "/ws/a%22b%5C", "/ws/\xff"):
            try:
                ws = await ws_connect(srv.port, path)
                await ws.close()
            except Exception:
                pass
        ws, _, _ = await join_room(srv.port, f"/ws/room-1?token={SECRET}")
        await ws.send('{"type":"move","x":0.5,"y":0.5}')
        await ws.send(b"\x00 binary is refused")  # a close with a reason, logged
        await asyncio.wait_for(ws.wait_closed(), TIMEOUT)

    run(session())
    srv.stop()
    srv.stopped = True  # the session ended it all: no survival check

    objects = []
    for line in filter(str.strip, srv.lines):
        assert SECRET not in line, f"a token reached the log: {line!r}"
        assert "token=" not in line, f"a query reached the log: {line!r}"
        obj = json.loads(line)  # every line is one JSON object, nothing else
        assert isinstance(obj, dict), line
        keys = list(obj)
        assert keys[:2] == ["time", "level"] and keys[-1] == "event", line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"]), line
        assert obj["level"] in ("debug", "info", "warn", "error"), line
        assert all(re.fullmatch(r"[a-z0-9_]+", k) for k in keys), line
        for k, v in obj.items():
            assert isinstance(v, (str, int)), line
        objects.append(obj)
    assert len(objects) >= 10, srv.stderr
    served = {o["file"] for o in objects if o["event"] == "file served"}
    # The peer's bytes, decoded, exactly: quotes, '=' and spaces inside the string (no second
    # "status" field); an invalid byte as U+FFFD.
    assert served == {names["quote"], names["utf8"], "bad-utf8-\ufffd.txt"}, served
    events = [o["event"] for o in objects]
    assert "listening" in events and "websocket open" in events and "stopped" in events, events
    rooms = {o["room"] for o in objects if o["event"] == "joined the room"}
    assert rooms == {"/lobby", "/room-1"}, rooms
    assert all(isinstance(o["conn"], int) for o in objects if "conn" in o), objects
