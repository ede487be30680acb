"""Static files must never leave the www root: traversal, encodings, dotfiles, symlinks.

Every test here runs against a www root made for it (conftest.Site), with a secret file next to
the root and symlinks inside it that point out. Each hostile request must be refused with 404
or 400 and the secret's bytes (or /etc/passwd's) must never appear on the wire.
"""

import pytest

from conftest import HttpConn, fetch, http_request

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
