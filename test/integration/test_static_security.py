"""Static files must never leave the www root: traversal, encodings, dotfiles, symlinks.

Every test here runs against a www root made for it (conftest.Site), with a secret file next to
the root and symlinks inside it that point out. Each hostile request must be refused with 404
or 400 and the secret's bytes (or /etc/passwd's) must never appear on the wire.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, HOST, TIMEOUT, HttpConn, Server, fetch, get, http_request

PASSWD_MARK = b"root:x:0:0"

HOSTILE = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/a/%2E%2E/b",
    "/a/%2E%2E/a/b",  # would be /a/b (which exists) if ".." were normalised instead of refused
    "/a/../a/b",
    "/a/%2E%2E/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/%2f",
    "/%2fetc%2fpasswd",
    "/%00",
    "/index.html%00.png",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/%252e%252e/secret.txt",
    "/.git/config",
    "/.git/",
    "/%2egit/config",
    "//etc/passwd",
    "///..//secret.txt",
    "/./../secret.txt",
    "http://host/x",
    "http://127.0.0.1/../secret.txt",
    "http://127.0.0.1/index.html",
    "../secret.txt",
    "*",
    "/link.txt",
    "/abs-link.txt",
    "/up/secret.txt",
    "/passwd",
    "/%c0%ae%c0%ae/secret.txt",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_escape_attempt_is_refused_and_leaks_nothing(server, site, target):
    for method in ("GET", "HEAD"):
        with HttpConn(server.port) as c:
            c.send(http_request(method, target))
            resp = c.read_response(head_only=(method == "HEAD"))
        assert resp.status in (400, 404), f"{method} {target}: {resp!r}"
        assert site.secret not in resp.raw, f"{method} {target} leaked the secret"
        assert PASSWD_MARK not in resp.raw, f"{method} {target} leaked /etc/passwd"


def test_symlinks_out_are_refused_even_though_the_targets_exist(server, site):
    # Guard against a vacuous pass: the links really do resolve to readable files.
    assert (site.root / "link.txt").read_bytes().startswith(site.secret)
    assert (site.root / "up" / "secret.txt").read_bytes().startswith(site.secret)
    for target in ("/link.txt", "/abs-link.txt", "/up/secret.txt"):
        resp = fetch(server.port, http_request("GET", target))
        assert resp.status in (400, 404), (target, resp)
        assert site.secret not in resp.raw


def test_traversal_in_pipeline_does_not_poison_the_next_request(server, site):
    with HttpConn(server.port) as c:
        c.send(http_request("GET", "/%2e%2e/secret.txt", headers=[("Connection", "keep-alive")])
               + http_request("GET", "/style.css"))
        first = c.read_response()
        assert first.status in (400, 404)
        if first.status == 404:  # a 400 may close the connection; a 404 must not
            second = c.read_response()
            assert second.status == 200
            assert second.body == site.files["style.css"]
        everything = first.raw + c.buf
        assert site.secret not in everything


def test_directory_without_index_is_not_listed(server, site):
    # /a/ exists but has no index.html: no listing, no file contents.
    resp = fetch(server.port, http_request("GET", "/a/"))
    assert resp.status == 404, resp
    assert b"plain file under a/" not in resp.raw


# ---- Which www directory is served without --www (issue 10 §2.4) ----------------------------
#
# An installed server must serve the installed page, whatever directory it is started from: a
# www/ planted in the working directory (a shared /tmp, a user's checkout) must never be
# served. The layout is make install's: PREFIX/bin/wsrelay and PREFIX/share/wsrelay/www.


def _install_layout(base, with_beside=False):
    prefix = base / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "wsrelay" / "www").mkdir(parents=True)
    shutil.copy2(BIN, prefix / "bin" / "wsrelay")
    (prefix / "share" / "wsrelay" / "www" / "index.html").write_bytes(b"<p>installed page</p>\n")
    if with_beside:  # a www/ next to the installed binary is not what was installed either
        (prefix / "bin" / "www").mkdir()
        (prefix / "bin" / "www" / "index.html").write_bytes(b"<p>beside the binary</p>\n")
    planted = base / "cwd" / "www"
    planted.mkdir(parents=True)
    (planted / "index.html").write_bytes(b"<p>planted in the working directory</p>\n")
    return prefix


def _start_without_www(binary, cwd):
    srv = Server(["--host", HOST, "--port", "0"], binary=binary, cwd=cwd)
    m = srv.wait_log(re.compile(r'\bport=(\d+)\b.*www=(\S+) .*"listening"'))
    srv.port = int(m.group(1))
    return srv, m.group(2)


@pytest.mark.parametrize("with_beside", [False, True], ids=["installed", "installed+beside"])
def test_an_installed_server_serves_the_installed_page_not_a_planted_one(tmp_path, with_beside):
    prefix = _install_layout(tmp_path, with_beside)
    srv, www = _start_without_www(prefix / "bin" / "wsrelay", tmp_path / "cwd")
    try:
        resp = get(srv.port, "/")
        assert resp.status == 200, resp
        assert resp.body == b"<p>installed page</p>\n", resp.body
        # The log names the directory served, resolved (no bin/../ detour).
        assert www == str((prefix / "share" / "wsrelay" / "www").resolve()), srv.stderr
    finally:
        srv.stop()
    assert not srv.sanitizer_report(), srv.stderr


def test_without_an_installed_page_the_www_beside_the_binary_is_served(tmp_path):
    # The source tree's layout: `make` leaves ./wsrelay next to www/.
    tree = tmp_path / "tree"
    (tree / "www").mkdir(parents=True)
    shutil.copy2(BIN, tree / "wsrelay")
    (tree / "www" / "index.html").write_bytes(b"<p>source tree page</p>\n")
    planted = tmp_path / "cwd" / "www"
    planted.mkdir(parents=True)
    (planted / "index.html").write_bytes(b"<p>planted</p>\n")
    srv, www = _start_without_www(tree / "wsrelay", tmp_path / "cwd")
    try:
        assert get(srv.port, "/").body == b"<p>source tree page</p>\n"
        assert www == str((tree / "www").resolve())
    finally:
        srv.stop()


def test_no_www_anywhere_but_the_working_directory_is_an_error(tmp_path):
    lone = tmp_path / "bin"
    lone.mkdir()
    shutil.copy2(BIN, lone / "wsrelay")
    planted = tmp_path / "cwd" / "www"
    planted.mkdir(parents=True)
    (planted / "index.html").write_bytes(b"<p>planted</p>\n")
    r = subprocess.run([str(lone / "wsrelay"), "--host", HOST, "--port", "0"],
                       cwd=tmp_path / "cwd", capture_output=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r
    assert b"cannot open the www directory" in r.stderr, r.stderr


def test_a_source_tree_binary_ignores_a_share_directory_planted_beside_its_checkout(tmp_path):
    # A checkout in /tmp: /tmp/share/wsrelay/www is anyone's to create. Only a binary in a
    # bin/ directory looks for ../share/wsrelay/www.
    checkout = tmp_path / "wsrelay"
    (checkout / "www").mkdir(parents=True)
    shutil.copy2(BIN, checkout / "wsrelay")
    (checkout / "www" / "index.html").write_bytes(b"<p>the checkout's page</p>\n")
    planted = tmp_path / "share" / "wsrelay" / "www"
    planted.mkdir(parents=True)
    (planted / "index.html").write_bytes(b"<p>PLANTED</p>\n")
    srv, www = _start_without_www(checkout / "wsrelay", checkout)
    try:
        assert get(srv.port, "/").body == b"<p>the checkout's page</p>\n"
        assert www == str((checkout / "www").resolve())
    finally:
        srv.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_an_installed_page_another_user_could_change_is_not_served(tmp_path):
    # PREFIX/share/wsrelay owned by nobody (uid 65534): whoever that is could swap the page.
    # The server skips it, says why, and falls back to www/ beside the binary, if trusted.
    prefix = _install_layout(tmp_path, with_beside=True)
    os.chown(prefix / "share" / "wsrelay", 65534, 65534)
    srv, www = _start_without_www(prefix / "bin" / "wsrelay", tmp_path / "cwd")
    try:
        assert get(srv.port, "/").body == b"<p>beside the binary</p>\n"
        assert "not serving an untrusted directory" in srv.stderr, srv.stderr
        assert str((prefix / "share" / "wsrelay").resolve()) in srv.stderr
    finally:
        srv.stop()
    # A group-writable www directory is refused the same way.
    os.chown(prefix / "share" / "wsrelay", 0, 0)
    os.chmod(prefix / "share" / "wsrelay" / "www", 0o775)
    srv, www = _start_without_www(prefix / "bin" / "wsrelay", tmp_path / "cwd")
    try:
        assert get(srv.port, "/").body == b"<p>beside the binary</p>\n"
    finally:
        srv.stop()
