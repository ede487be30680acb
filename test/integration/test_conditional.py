"""Static files as a web server serves them (issue 14): validators and conditional requests
(RFC 9110 §8.8, §13), precompressed variants chosen by Accept-Encoding (§12.5.3) with Vary,
HEAD on each, and hostile values of every one of those fields.

The server under test gets the `site` fixture's www root; variants are written beside its
files here, with Python's gzip and Debian's `brotli` command, and their times set to the
nanosecond with os.utime, so staleness is tested without sleeping.
"""

import email.utils
import gzip
import os
import re
import shutil
import subprocess

import pytest

from conftest import HttpConn, get, http_request

ETAG_RE = re.compile(r'^"[0-9a-f]+\.[0-9a-f]+-[0-9a-f]+(-gz|-br)?"$')
HAS_BROTLI = shutil.which("brotli") is not None


def fetch_one(port, target, method="GET", headers=()):
    with HttpConn(port) as c:
        c.send(http_request(method, target, headers=list(headers)))
        return c.read_response(head_only=(method == "HEAD"))


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def rfc850(t):
    import time

    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t))


def asctime(t):
    import time

    tm = time.gmtime(t)
    return time.strftime("%a %b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", tm)


def set_time(path, ns):
    os.utime(path, ns=(ns, ns))


def mtime_ns(path):
    return os.stat(path).st_mtime_ns


def add_gz(site, name, ns_offset=0):
    """Writes name.gz beside name (gzip -9 -n, like make) with name's time + ns_offset."""
    src = site.root / name
    dst = site.root / (name + ".gz")
    dst.write_bytes(gzip.compress(src.read_bytes(), compresslevel=9, mtime=0))
    set_time(dst, mtime_ns(src) + ns_offset)
    return dst.read_bytes()


def add_br(site, name, ns_offset=0):
    src = site.root / name
    dst = site.root / (name + ".br")
    subprocess.run(["brotli", "-q", "11", "-f", "-o", str(dst), str(src)], check=True, timeout=30)
    set_time(dst, mtime_ns(src) + ns_offset)
    return dst.read_bytes()


def without(headers, *names):
    drop = {n.lower() for n in names}
    return [(k.lower(), v) for k, v in headers if k.lower() not in drop]


# ---- Validators on every file -------------------------------------------------------------


def test_every_file_has_a_strong_etag_last_modified_and_no_cache(server, site):
    resp = get(server.port, "/style.css")
    assert resp.status == 200, resp
    etag = resp.header("ETag")
    assert etag and ETAG_RE.match(etag), etag
    st = os.stat(site.root / "style.css")
    assert resp.header("Last-Modified") == http_date(st.st_mtime)
    assert resp.header("Cache-Control") == "no-cache"
    assert resp.header("Vary") == "Accept-Encoding"  # a type that may have variants
    png = get(server.port, "/pixel.png")
    assert png.status == 200 and ETAG_RE.match(png.header("ETag"))
    assert png.header("Vary") is None  # an image never has one
    assert png.header("ETag") != etag


def test_the_etag_is_stable_and_differs_per_file(server):
    a = get(server.port, "/app.js").header("ETag")
    assert get(server.port, "/app.js").header("ETag") == a
    assert get(server.port, "/data.json").header("ETag") != a


def test_the_page_of_a_room_is_index_html_with_its_validators(server):
    page = get(server.port, "/r/doc")
    index = get(server.port, "/")
    assert page.header("ETag") == index.header("ETag")
    resp = fetch_one(server.port, "/r/doc", headers=[("If-None-Match", index.header("ETag"))])
    assert resp.status == 304, resp


# ---- If-None-Match ------------------------------------------------------------------------


def test_if_none_match_with_the_etag_gives_304_with_no_body(server, site):
    etag = get(server.port, "/style.css").header("ETag")
    with HttpConn(server.port) as c:
        # A 304 with a body would put bytes before the next status line.
        c.send(http_request("GET", "/style.css", headers=[("If-None-Match", etag)]) +
               http_request("GET", "/app.js"))
        resp = c.read_response()
        assert resp.status == 304, resp
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.body == site.files["app.js"], nxt
    # RFC 9110 §15.4.5: ETag, Cache-Control, Vary and Date as the 200 would have them;
    # nothing that describes a body.
    assert resp.header("ETag") == etag
    assert resp.header("Cache-Control") == "no-cache"
    assert resp.header("Vary") == "Accept-Encoding"
    assert resp.header("Date")
    for name in ("Content-Length", "Content-Type", "Content-Encoding", "Last-Modified"):
        assert resp.header(name) is None, (name, resp)


@pytest.mark.parametrize("value", [
    "{etag}",
    "W/{etag}",
    "*",
    '"nope", W/"x", {etag}',
    '{etag}, "later"',
    ' ,, {etag} ,',
], ids=["exact", "weak", "star", "last-in-list", "first-in-list", "empty-elements"])
def test_if_none_match_forms_that_match_give_304(server, value):
    etag = get(server.port, "/app.js").header("ETag")
    resp = fetch_one(server.port, "/app.js", headers=[("If-None-Match", value.format(etag=etag))])
    assert resp.status == 304, resp
    assert resp.header("ETag") == etag


@pytest.mark.parametrize("value", [
    '"nope"',
    'W/"nope", "also-not"',
    "{bare}",
    "w/{etag}",
    "{etag} junk",
    "*, {etag}",
    "",
], ids=["other", "other-list", "unquoted", "lower-w", "junk-after", "star-in-list", "empty"])
def test_if_none_match_that_does_not_match_gives_200(server, site, value):
    etag = get(server.port, "/app.js").header("ETag")
    v = value.format(etag=etag, bare=etag.strip('"'))
    resp = fetch_one(server.port, "/app.js", headers=[("If-None-Match", v)])
    assert resp.status == 200, resp
    assert resp.body == site.files["app.js"]


def test_two_if_none_match_fields_form_one_list(server):
    etag = get(server.port, "/app.js").header("ETag")
    resp = fetch_one(server.port, "/app.js",
                     headers=[("If-None-Match", '"a"'), ("If-None-Match", etag)])
    assert resp.status == 304, resp


def test_a_changed_file_gets_a_new_etag_and_a_200(server, site):
    path = site.root / "style.css"
    # Written 10 s ago, so that the change below (1.5 s later) is still in the past: a time
    # in the future would be sent as the Date (RFC 9110 §8.8.2.1).
    before = mtime_ns(path) - 10_000_000_000
    set_time(path, before)
    first = get(server.port, "/style.css")
    old_etag = first.header("ETag")
    # Same size, new bytes, a later time (so Last-Modified changes too).
    new = site.files["style.css"].replace(b"red", b"tan")
    assert len(new) == len(site.files["style.css"])
    path.write_bytes(new)
    set_time(path, before + 1_500_000_000)
    resp = fetch_one(server.port, "/style.css", headers=[("If-None-Match", old_etag)])
    assert resp.status == 200, resp
    assert resp.body == new
    assert resp.header("ETag") != old_etag
    assert resp.header("Last-Modified") != first.header("Last-Modified")
    # Now the new tag revalidates.
    again = fetch_one(server.port, "/style.css", headers=[("If-None-Match", resp.header("ETag"))])
    assert again.status == 304


def test_a_change_within_the_same_second_still_changes_the_etag(server, site):
    path = site.root / "app.js"
    old = get(server.port, "/app.js")
    set_time(path, mtime_ns(path) + 1)  # one nanosecond: same Last-Modified, new tag
    resp = fetch_one(server.port, "/app.js", headers=[("If-None-Match", old.header("ETag"))])
    assert resp.status == 200, resp
    assert resp.header("ETag") != old.header("ETag")


# ---- If-Modified-Since, and its place after If-None-Match ----------------------------------


@pytest.mark.parametrize("form", [http_date, rfc850, asctime], ids=["imf", "rfc850", "asctime"])
def test_if_modified_since_the_last_modified_gives_304(server, site, form):
    t = os.stat(site.root / "data.json").st_mtime
    resp = fetch_one(server.port, "/data.json", headers=[("If-Modified-Since", form(t))])
    assert resp.status == 304, resp
    later = fetch_one(server.port, "/data.json", headers=[("If-Modified-Since", form(t + 3600))])
    assert later.status == 304, later


def test_if_modified_since_before_the_change_gives_200(server, site):
    t = os.stat(site.root / "data.json").st_mtime
    resp = fetch_one(server.port, "/data.json", headers=[("If-Modified-Since", http_date(t - 1))])
    assert resp.status == 200, resp
    assert resp.body == site.files["data.json"]


def test_if_none_match_takes_precedence_over_if_modified_since(server, site):
    etag = get(server.port, "/data.json").header("ETag")
    t = os.stat(site.root / "data.json").st_mtime
    # RFC 9110 §13.2.2: with If-None-Match present, If-Modified-Since is not evaluated.
    no = fetch_one(server.port, "/data.json", headers=[
        ("If-None-Match", '"other"'), ("If-Modified-Since", http_date(t + 60))])
    assert no.status == 200, no
    yes = fetch_one(server.port, "/data.json", headers=[
        ("If-Modified-Since", http_date(t - 3600)), ("If-None-Match", etag)])
    assert yes.status == 304, yes


def test_if_match_that_fails_gives_412_and_one_that_holds_gives_200(server, site):
    etag = get(server.port, "/data.json").header("ETag")
    bad = fetch_one(server.port, "/data.json", headers=[("If-Match", '"other"')])
    assert bad.status == 412, bad
    ok = fetch_one(server.port, "/data.json", headers=[("If-Match", etag)])
    assert ok.status == 200 and ok.body == site.files["data.json"]


# ---- HEAD ---------------------------------------------------------------------------------


def test_head_has_the_get_headers_without_a_body_for_200_and_304(server):
    etag = get(server.port, "/app.js").header("ETag")
    for extra in ([], [("If-None-Match", etag)]):
        with HttpConn(server.port) as c:
            c.send(http_request("HEAD", "/app.js", headers=extra) +
                   http_request("GET", "/app.js", headers=extra))
            head = c.read_response(head_only=True)
            body = c.read_response()
        assert head.status == body.status
        assert without(head.headers, "Date") == without(body.headers, "Date")


# ---- Precompressed variants ----------------------------------------------------------------


def test_gzip_variant_is_served_to_a_client_that_accepts_gzip(server, site):
    gz = add_gz(site, "app.js")
    resp = fetch_one(server.port, "/app.js", headers=[("Accept-Encoding", "gzip")])
    assert resp.status == 200, resp
    assert resp.header("Content-Encoding") == "gzip"
    assert resp.header("Vary") == "Accept-Encoding"
    assert resp.header("Content-Type") == "text/javascript; charset=utf-8"
    assert int(resp.header("Content-Length")) == len(gz)
    assert gzip.decompress(resp.body) == site.files["app.js"]
    identity = get(server.port, "/app.js")
    assert identity.header("Content-Encoding") is None
    assert identity.header("Vary") == "Accept-Encoding"
    assert identity.body == site.files["app.js"]
    # RFC 9110 §8.8.3.3: two encodings are two representations, with two tags.
    assert resp.header("ETag") != identity.header("ETag")
    assert resp.header("ETag").endswith('-gz"')


@pytest.mark.parametrize("accept,coding", [
    (None, None),
    ("", None),
    ("gzip", "gzip"),
    ("x-gzip", "gzip"),
    ("GZIP;Q=0.5", "gzip"),
    ("gzip;q=0", None),
    ("deflate", None),
    ("*", "gzip"),
    ("*;q=0, identity", None),
    ("gzip, identity;q=0", "gzip"),
    ("identity;q=0", None),  # nothing acceptable: the plain file, not a 406
    ("gzip;q=0.5, identity", None),
    ("gzip;q=1.5", None),
    ("gzip;q=abc, gzip;level=1", None),
], ids=lambda v: repr(v))
def test_gzip_negotiation(server, site, accept, coding):
    add_gz(site, "style.css")
    headers = [] if accept is None else [("Accept-Encoding", accept)]
    resp = fetch_one(server.port, "/style.css", headers=headers)
    assert resp.status == 200, resp
    assert resp.header("Content-Encoding") == coding
    assert resp.header("Vary") == "Accept-Encoding"
    body = gzip.decompress(resp.body) if coding == "gzip" else resp.body
    assert body == site.files["style.css"]


@pytest.mark.skipif(not HAS_BROTLI, reason="Debian's brotli command is not installed")
@pytest.mark.parametrize("accept,coding", [
    ("gzip, deflate, br", "br"),
    ("br", "br"),
    ("gzip;q=0.9, br;q=0.9", "br"),
    ("br;q=0.5, gzip", "gzip"),
    ("br;q=0, gzip", "gzip"),
    ("br, gzip;q=0, identity;q=0", "br"),
    ("*", "br"),
    ("*;q=0.5, br;q=0.1", "gzip"),
], ids=lambda v: repr(v))
def test_brotli_is_preferred_on_equal_weight(server, site, accept, coding):
    gz = add_gz(site, "index.html")
    br = add_br(site, "index.html")
    resp = fetch_one(server.port, "/", headers=[("Accept-Encoding", accept)])
    assert resp.status == 200, resp
    assert resp.header("Content-Encoding") == coding
    assert resp.body == (br if coding == "br" else gz)
    assert resp.header("ETag").endswith('-br"' if coding == "br" else '-gz"')


@pytest.mark.skipif(not HAS_BROTLI, reason="Debian's brotli command is not installed")
def test_head_on_each_variant_matches_its_get(server, site):
    add_gz(site, "index.html")
    add_br(site, "index.html")
    for accept in (None, "gzip", "br"):
        extra = [] if accept is None else [("Accept-Encoding", accept)]
        with HttpConn(server.port) as c:
            c.send(http_request("HEAD", "/index.html", headers=extra) +
                   http_request("GET", "/index.html", headers=extra))
            head = c.read_response(head_only=True)
            body = c.read_response()
        assert head.status == body.status == 200
        assert without(head.headers, "Date") == without(body.headers, "Date"), accept
        assert head.header("Content-Encoding") == accept


def test_variant_304_uses_the_variants_own_etag(server, site):
    add_gz(site, "app.js")
    gz_etag = fetch_one(server.port, "/app.js", headers=[("Accept-Encoding", "gzip")]).header("ETag")
    id_etag = get(server.port, "/app.js").header("ETag")
    hit = fetch_one(server.port, "/app.js",
                    headers=[("Accept-Encoding", "gzip"), ("If-None-Match", gz_etag)])
    assert hit.status == 304, hit
    assert hit.header("ETag") == gz_etag and hit.header("Vary") == "Accept-Encoding"
    assert hit.header("Content-Encoding") is None
    # The identity tag does not validate the gzip representation, nor the reverse.
    miss = fetch_one(server.port, "/app.js",
                     headers=[("Accept-Encoding", "gzip"), ("If-None-Match", id_etag)])
    assert miss.status == 200 and miss.header("Content-Encoding") == "gzip", miss
    miss = fetch_one(server.port, "/app.js", headers=[("If-None-Match", gz_etag)])
    assert miss.status == 200 and miss.header("Content-Encoding") is None, miss
    head = fetch_one(server.port, "/app.js", "HEAD",
                     headers=[("Accept-Encoding", "gzip"), ("If-None-Match", gz_etag)])
    assert head.status == 304, head


def test_a_stale_variant_is_ignored(server, site):
    add_gz(site, "app.js", ns_offset=-1)  # one nanosecond older than the original
    resp = fetch_one(server.port, "/app.js", headers=[("Accept-Encoding", "gzip")])
    assert resp.status == 200
    assert resp.header("Content-Encoding") is None, resp
    assert resp.body == site.files["app.js"]
    assert resp.header("Vary") == "Accept-Encoding"
    # Rebuilt (the same time, as gzip -k and make leave it): served again.
    add_gz(site, "app.js")
    resp = fetch_one(server.port, "/app.js", headers=[("Accept-Encoding", "gzip")])
    assert resp.header("Content-Encoding") == "gzip", resp


def test_an_edited_original_makes_its_variant_stale(server, site):
    add_gz(site, "style.css")
    path = site.root / "style.css"
    path.write_bytes(b"body { color: blue; }\n")
    set_time(path, mtime_ns(site.root / "style.css.gz") + 1_000_000)
    resp = fetch_one(server.port, "/style.css", headers=[("Accept-Encoding", "gzip")])
    assert resp.header("Content-Encoding") is None, resp
    assert resp.body == b"body { color: blue; }\n"


def test_a_direct_request_for_the_gz_file_is_a_plain_file(server, site):
    gz = add_gz(site, "app.js")
    resp = fetch_one(server.port, "/app.js.gz", headers=[("Accept-Encoding", "gzip")])
    assert resp.status == 200, resp
    assert resp.body == gz
    assert resp.header("Content-Type") == "application/gzip"
    assert resp.header("Content-Encoding") is None  # an archive stays an archive
    assert resp.header("Vary") is None


def test_images_are_never_looked_up_for_variants(server, site):
    (site.root / "pixel.png.gz").write_bytes(gzip.compress(site.files["pixel.png"]))
    resp = fetch_one(server.port, "/pixel.png", headers=[("Accept-Encoding", "gzip")])
    assert resp.header("Content-Encoding") is None and resp.header("Vary") is None
    assert resp.body == site.files["pixel.png"]


def test_a_variant_symlinked_out_of_the_root_is_not_served(server, site):
    (site.root / "data.json.gz").symlink_to(site.secret_path)
    resp = fetch_one(server.port, "/data.json", headers=[("Accept-Encoding", "gzip")])
    assert resp.status == 200 and resp.header("Content-Encoding") is None
    assert resp.body == site.files["data.json"]
    assert site.secret not in resp.body


def test_a_large_variant_arrives_complete(server, site):
    # Many writes: the variant goes through the same sendfile (or TLS) path as any file.
    big = os.urandom(200 * 1024).hex().encode()  # 400 KiB of text
    (site.root / "big.txt").write_bytes(big)
    gz = add_gz(site, "big.txt")
    with HttpConn(server.port, rcvbuf=8192) as c:
        c.send(http_request("GET", "/big.txt", headers=[("Accept-Encoding", "gzip")]))
        resp = c.read_response()
    assert resp.header("Content-Encoding") == "gzip"
    assert resp.body == gz and gzip.decompress(resp.body) == big


# ---- Hostile values: never a crash, always a sane 200 or 304 -------------------------------


HOSTILE = [
    ("If-None-Match", "x" * 7000),
    ("If-None-Match", '"' + "a" * 7000),
    ("If-None-Match", ", " * 3000),
    ("If-None-Match", "W/" * 3000),
    ("If-None-Match", '"\xff\xfe", W/"\x80"'),
    ("If-None-Match", "*" * 100),
    ("If-Modified-Since", "Sun, 06 Nov 99999 08:49:37 GMT"),
    ("If-Modified-Since", "Sun, 06 Nov 18446744073709551616 08:49:37 GMT"),
    ("If-Modified-Since", "Fri, 31 Dec 9999 23:59:60 GMT"),
    ("If-Modified-Since", "Sat, 01 Jan 0000 00:00:00 GMT"),
    ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT" * 200),
    ("If-Modified-Since", "Thu, 29 Feb 1900 00:00:00 GMT"),
    ("If-Modified-Since", "-1"),
    ("If-Modified-Since", "\x80\x81\x82"),
    ("If-Match", "g" * 5000),
    ("If-Unmodified-Since", "Sun, 06 Nov 99999 08:49:37 GMT"),
    ("Accept-Encoding", ",".join(f"c;q=.{i % 10}" for i in range(700))),  # 700 broken q
    ("Accept-Encoding", "gzip;q=" + "9" * 5000),
    ("Accept-Encoding", "gzip;q=0." + "0" * 3000 + "1"),
    ("Accept-Encoding", ";;;;q=q=q=,,,,====" * 100),
    ("Accept-Encoding", "gzip;q=-0, br;q=1e3, *;q=NaN"),
    ("Accept-Encoding", "\x80gzip\xff"),
]


@pytest.mark.parametrize("name,value", HOSTILE, ids=lambda v: repr(v)[:40])
def test_hostile_values_get_a_sane_answer(server, site, name, value):
    add_gz(site, "app.js")
    resp = fetch_one(server.port, "/app.js", headers=[(name, value)])
    assert resp.status in (200, 304, 412), resp
    if resp.status == 200:
        body = gzip.decompress(resp.body) if resp.header("Content-Encoding") else resp.body
        assert body == site.files["app.js"]


def test_a_thousand_codings_with_gzip_last_still_choose_gzip(server, site):
    add_gz(site, "app.js")
    value = ",".join(f"c{i % 10}" for i in range(999)) + ",gzip"
    resp = fetch_one(server.port, "/app.js", headers=[("Accept-Encoding", value)])
    assert resp.status == 200 and resp.header("Content-Encoding") == "gzip", resp


def test_a_thousand_tags_with_ours_last_still_match(server):
    etag = get(server.port, "/app.js").header("ETag")
    value = ", ".join(f'"t{i}"' for i in range(1000)) + ", " + etag
    assert len(value) < 8000
    resp = fetch_one(server.port, "/app.js", headers=[("If-None-Match", value)])
    assert resp.status == 304, resp


def test_a_304_keeps_the_cors_headers_of_its_200(start_server, site):
    srv = start_server("--allow-origin", "http://a.example")
    origin = [("Origin", "http://a.example")]
    etag = fetch_one(srv.port, "/app.js", headers=origin).header("ETag")
    resp = fetch_one(srv.port, "/app.js", headers=origin + [("If-None-Match", etag)])
    assert resp.status == 304, resp
    assert resp.header("Access-Control-Allow-Origin") == "http://a.example"
    assert sorted(v.strip() for v in ",".join(resp.header_all("Vary")).split(",")) == [
        "Accept-Encoding", "Origin"]
