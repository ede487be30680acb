/* Unit tests for http.c: the request parser (valid heads whole, in every chunking, and
 * pipelined; every malformed shape with its exact error; the 8 KiB and 64-field caps), the
 * small helpers, and the exact bytes of response heads.
 *
 * Every input is copied to the very end of an mmap'd region followed by a PROT_NONE page
 * (picohttpparser's test.c does the same), so a read one byte past the input crashes, in the
 * release build as well as under ASan. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"
#include "http.h"

static const struct http_request ZERO_REQ; /* what *req must be after 0 or an error */

/* cmocka's assertions print values, not which table row failed: these name the row first. */
static const char *row_name = "";

static void assert_row_int(long long got, long long want)
{
    if (got != want)
        print_error("in row \"%s\":\n", row_name);
    assert_int_equal(got, want);
}

static void assert_req_zeroed(const struct http_request *req)
{
    assert_memory_equal(req, &ZERO_REQ, sizeof *req);
}

/* Parses s[0..len) from a guarded copy with the given last_len. */
static ssize_t parse_guarded(const char *s, size_t len, size_t last_len, struct http_request *req)
{
    struct guarded g;
    const char *in = guard_copy(&g, s, len);
    ssize_t rc = http_parse_request(in, len, last_len, req);
    if (rc <= 0)
        assert_req_zeroed(req);
    guard_free(&g);
    return rc;
}

/* Feeds s[0..len) the way a slow client sends it: `step` more bytes per call, each call on a
 * fresh guarded copy of everything so far, with last_len = what the previous call saw. Every
 * call before the last must say "incomplete". Returns the first non-zero result, and the
 * number of bytes the parser had seen when it came; the copy it came from stays alive in *g
 * (the caller frees it) so the views in *req can be checked. */
static ssize_t feed(const char *s, size_t len, size_t step, struct http_request *req,
                    struct guarded *g, size_t *at)
{
    size_t last = 0;
    for (size_t n = step < len ? step : len;; n = n + step < len ? n + step : len) {
        const char *in = guard_copy(g, s, n);
        ssize_t rc = http_parse_request(in, n, last, req);
        if (rc != 0 || n == len) {
            *at = n;
            if (rc < 0)
                assert_req_zeroed(req);
            return rc;
        }
        assert_req_zeroed(req);
        guard_free(g);
        last = n;
    }
}

/* ---- Valid requests --------------------------------------------------------------------- */

struct hdr {
    const char *name, *value;
};

struct ok_row {
    const char *name;
    const char *in; /* exactly one head */
    size_t in_len;  /* 0: strlen(in) */
    const char *method, *target;
    int minor;
    size_t nheaders;
    struct hdr h[5]; /* the first fields, in order (name NULL: stop checking) */
    bool has_cl;
    uint64_t cl;
    bool has_te, keep_alive;
};

#define BROWSER_UPGRADE                                                                            \
    "GET /ws HTTP/1.1\r\n"                                                                         \
    "Host: localhost:7071\r\n"                                                                     \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"       \
    "Accept: */*\r\n"                                                                              \
    "Accept-Language: en-US,en;q=0.5\r\n"                                                          \
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"                                                 \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "Origin: http://localhost:7071\r\n"                                                            \
    "Sec-WebSocket-Extensions: permessage-deflate\r\n"                                             \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Connection: keep-alive, Upgrade\r\n"                                                          \
    "Pragma: no-cache\r\n"                                                                         \
    "Cache-Control: no-cache\r\n"                                                                  \
    "Upgrade: websocket\r\n"                                                                       \
    "\r\n"

static const struct ok_row OK_ROWS[] = {
    {.name = "minimal 1.1",
     .in = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 1,
     .h = {{"Host", "example.com"}},
     .keep_alive = true},
    {.name = "1.0 without fields",
     .in = "GET /index.html HTTP/1.0\r\n\r\n",
     .method = "GET",
     .target = "/index.html",
     .minor = 0,
     .keep_alive = false},
    {.name = "browser upgrade",
     .in = BROWSER_UPGRADE,
     .method = "GET",
     .target = "/ws",
     .minor = 1,
     .nheaders = 13,
     .h = {{"Host", "localhost:7071"},
           {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
           {"Accept", "*/*"}},
     .keep_alive = true},
    {.name = "OWS trimmed, empty values",
     .in = "GET / HTTP/1.1\r\nHost:example.com\r\nX-A: \t v \t\r\nX-Empty:\r\n"
           "X-Spaces:   \t\r\nX-In: a \t b\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 5,
     .h = {{"Host", "example.com"},
           {"X-A", "v"},
           {"X-Empty", ""},
           {"X-Spaces", ""},
           {"X-In", "a \t b"}},
     .keep_alive = true},
    {.name = "obs-text in a value",
     .in = "GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9 \x80\xff\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .h = {{"Host", "h"}, {"X-Latin", "caf\xe9 \x80\xff"}},
     .keep_alive = true},
    {.name = "every tchar in method and name",
     .in = "!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
     .method = "!#$%&'*+-.^_`|~09azAZ",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .h = {{"Host", "h"}, {"!#$%&'*+-.^_`|~09azAZ", "v"}},
     .keep_alive = true},
    {.name = "every visible byte in the target",
     .in = "GET /!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\nHost: h\r\n\r\n",
     .method = "GET",
     .target = "/!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
     .minor = 1,
     .nheaders = 1,
     .keep_alive = true},
    {.name = "asterisk-form",
     .in = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
     .method = "OPTIONS",
     .target = "*",
     .minor = 1,
     .nheaders = 1,
     .keep_alive = true},
    {.name = "absolute-form",
     .in = "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
     .method = "GET",
     .target = "http://example.com/a?b",
     .minor = 1,
     .nheaders = 1,
     .keep_alive = true},
    {.name = "one leading CRLF ignored (RFC 9112 2.2)",
     .in = "\r\nGET / HTTP/1.0\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 0},
    {.name = "Content-Length",
     .in = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
     .method = "POST",
     .target = "/x",
     .minor = 1,
     .nheaders = 2,
     .has_cl = true,
     .cl = 5,
     .keep_alive = true},
    {.name = "Content-Length 0, any case",
     .in = "GET / HTTP/1.1\r\nhost: h\r\ncontent-LENGTH: 0\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .has_cl = true,
     .cl = 0,
     .keep_alive = true},
    {.name = "Content-Length list of equal values",
     .in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 42 ,\t42,42\r\n\r\n",
     .method = "POST",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .has_cl = true,
     .cl = 42,
     .keep_alive = true},
    {.name = "Content-Length twice, equal",
     .in = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nContent-Length: 007\r\n\r\n",
     .method = "POST",
     .target = "/",
     .minor = 1,
     .nheaders = 3,
     .has_cl = true,
     .cl = 7,
     .keep_alive = true},
    {.name = "Content-Length 2^64-1",
     .in = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n",
     .method = "PUT",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .has_cl = true,
     .cl = UINT64_MAX,
     .keep_alive = true},
    {.name = "Transfer-Encoding",
     .in = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
     .method = "POST",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .has_te = true,
     .keep_alive = true},
    {.name = "1.1 Connection: close",
     .in = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .keep_alive = false},
    {.name = "1.1 close in a list, any case",
     .in = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .keep_alive = false},
    {.name = "1.1 close in a second Connection field",
     .in = "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nConnection: close\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 3,
     .keep_alive = false},
    {.name = "1.1 'closed' is not 'close'",
     .in = "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .keep_alive = true},
    {.name = "1.0 keep-alive",
     .in = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 0,
     .nheaders = 1,
     .keep_alive = true},
    {.name = "1.0 keep-alive and close",
     .in = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 0,
     .nheaders = 1,
     .keep_alive = false},
    {.name = "1.0 with a Host",
     .in = "HEAD /a HTTP/1.0\r\nHost: h\r\n\r\n",
     .method = "HEAD",
     .target = "/a",
     .minor = 0,
     .nheaders = 1,
     .keep_alive = false},
    {.name = "NUL-free binary-looking value kept whole",
     .in = "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=b; c=\"d e\"\r\n\r\n",
     .method = "GET",
     .target = "/",
     .minor = 1,
     .nheaders = 2,
     .h = {{"Host", "h"}, {"Cookie", "a=b; c=\"d e\""}},
     .keep_alive = true},
};

static size_t row_len(const struct ok_row *row)
{
    return row->in_len != 0 ? row->in_len : strlen(row->in);
}

static void assert_view(struct http_view v, const char *want, const char *base, size_t base_len)
{
    if (v.len != strlen(want) || memcmp(v.p, want, v.len) != 0)
        print_error("in row \"%s\": view \"%.*s\", want \"%s\"\n", row_name, (int)v.len, v.p, want);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.p, want, v.len);
    /* A view, not a copy: it points into the caller's bytes. */
    assert_true(v.p >= base && v.p + v.len <= base + base_len);
}

static void assert_row(const struct ok_row *row, const struct http_request *req, const char *base,
                       size_t base_len)
{
    row_name = row->name;
    assert_view(req->method, row->method, base, base_len);
    assert_view(req->target, row->target, base, base_len);
    assert_row_int(req->minor_version, row->minor);
    assert_row_int((long long)req->nheaders, (long long)row->nheaders);
    for (size_t i = 0; i < sizeof row->h / sizeof row->h[0] && row->h[i].name != NULL; i++) {
        assert_view(req->headers[i].name, row->h[i].name, base, base_len);
        assert_view(req->headers[i].value, row->h[i].value, base, base_len);
    }
    assert_row_int(req->has_content_length, row->has_cl);
    if (req->content_length != row->cl)
        print_error("in row \"%s\":\n", row_name);
    assert_true(req->content_length == row->cl);
    assert_row_int(req->has_transfer_encoding, row->has_te);
    assert_row_int(req->keep_alive, row->keep_alive);
}

static void parses_valid_requests_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof OK_ROWS / sizeof OK_ROWS[0]; i++) {
        const struct ok_row *row = &OK_ROWS[i];
        size_t len = row_len(row);
        struct guarded g;
        const char *in = guard_copy(&g, row->in, len);
        struct http_request req;
        memset(&req, 0xa5, sizeof req);
        row_name = row->name;
        assert_row_int(http_parse_request(in, len, 0, &req), (long long)len);
        assert_row(row, &req, in, len);
        /* Same answer with any last_len, since the head is complete either way. */
        assert_row_int(http_parse_request(in, len, len, &req), (long long)len);
        assert_row(row, &req, in, len);
        guard_free(&g);
    }
}

/* Every valid head fed 1, 2, 3, 4, 5 and 7 bytes at a time: the CRLFCRLF lands across every
 * possible boundary, which is what the "last_len - 3" backup is for. */
static void parses_valid_requests_in_every_chunking(void **state)
{
    (void)state;
    static const size_t steps[] = {1, 2, 3, 4, 5, 7};
    for (size_t i = 0; i < sizeof OK_ROWS / sizeof OK_ROWS[0]; i++) {
        const struct ok_row *row = &OK_ROWS[i];
        size_t len = row_len(row);
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            struct http_request req;
            struct guarded g;
            size_t at;
            row_name = row->name;
            assert_row_int(feed(row->in, len, steps[s], &req, &g, &at), (long long)len);
            assert_row_int((long long)at, (long long)len);
            assert_row(row, &req, g.p, len);
            guard_free(&g);
        }
    }
}

/* Two heads in one buffer: the first call returns the size of the first only, and the
 * second call on the rest parses the second. */
static void parses_valid_requests_pipelined(void **state)
{
    (void)state;
    size_t nrows = sizeof OK_ROWS / sizeof OK_ROWS[0];
    for (size_t i = 0; i < nrows; i++) {
        const struct ok_row *a = &OK_ROWS[i], *b = &OK_ROWS[(i + 1) % nrows];
        size_t alen = row_len(a), blen = row_len(b);
        char *both = malloc(alen + blen);
        assert_non_null(both);
        memcpy(both, a->in, alen);
        memcpy(both + alen, b->in, blen);

        struct guarded g;
        const char *in = guard_copy(&g, both, alen + blen);
        struct http_request req;
        row_name = a->name;
        assert_row_int(http_parse_request(in, alen + blen, 0, &req), (long long)alen);
        assert_row(a, &req, in, alen);
        row_name = b->name;
        assert_row_int(http_parse_request(in + alen, blen, 0, &req), (long long)blen);
        assert_row(b, &req, in + alen, blen);
        guard_free(&g);

        /* The second head arriving a byte at a time behind a complete first one. */
        struct guarded g2;
        size_t at;
        row_name = a->name;
        assert_row_int(feed(both, alen + blen, 1, &req, &g2, &at), (long long)alen);
        assert_row_int((long long)at, (long long)alen);
        guard_free(&g2);
        free(both);
    }
}

/* ---- Malformed requests ----------------------------------------------------------------- */

struct bad_row {
    const char *name;
    const char *in;
    size_t len; /* rows may hold NUL bytes: no strlen() */
    ssize_t err;
};

#define BAD(name, in, err)                                                                         \
    {                                                                                              \
        name, in, sizeof in - 1, err                                                               \
    }

#define L1 "GET / HTTP/1.1\r\n"
#define H  "Host: h\r\n"

static const struct bad_row BAD_ROWS[] = {
    /* The request line (RFC 9112 §3) */
    BAD("empty head", "\r\n\r\n", HTTP_ERR_BAD),
    BAD("two leading CRLFs", "\r\n\r\nGET / HTTP/1.0\r\n\r\n", HTTP_ERR_BAD),
    BAD("leading SP", " GET / HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("double SP after method", "GET  / HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("double SP after target", "GET /  HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("trailing SP", "GET / HTTP/1.1 \r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("HTAB as separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("HTAB after target", "GET /\tHTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("method not a token", "G@T / HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("method with non-ASCII", "G\xc9T / HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("method only", "GET\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("no version", "GET /\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("empty version", "GET / \r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("empty target", "GET  HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("DEL in target", "GET /\x7f HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("obs-text in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("0xff in target", "GET /\xff HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("control byte in target", "GET /\x01 HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP/1.2", "GET / HTTP/1.2\r\n" H "\r\n", HTTP_ERR_VERSION),
    BAD("version HTTP/1.9", "GET / HTTP/1.9\r\n" H "\r\n", HTTP_ERR_VERSION),
    BAD("version HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", HTTP_ERR_VERSION),
    BAD("version HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", HTTP_ERR_VERSION),
    BAD("version HTTP/9.1", "GET / HTTP/9.1\r\n" H "\r\n", HTTP_ERR_VERSION),
    BAD("version before a bad field", "GET / HTTP/2.0\r\nHost x\r\n\r\n", HTTP_ERR_VERSION),
    BAD("version HTTP/1.10", "GET / HTTP/1.10\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP/1", "GET / HTTP/1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP/11", "GET / HTTP/11\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP/1.x", "GET / HTTP/1.x\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP/x.1", "GET / HTTP/x.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP/1,1", "GET / HTTP/1,1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version lower case", "GET / http/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTPS/1.1", "GET / HTTPS/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version HTTP 1.1", "GET / HTTP 1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("version with NUL", "GET / HTTP/1.\0001\r\n" H "\r\n", HTTP_ERR_BAD),
    /* Line endings: CRLF only (RFC 9112 §2.2) */
    BAD("LF only", "GET / HTTP/1.1\nHost: h\n\n", HTTP_ERR_BAD),
    BAD("bare LF after request line", "GET / HTTP/1.1\n" H "\r\n", HTTP_ERR_BAD),
    BAD("bare LF after a field", L1 "Host: h\n\r\n", HTTP_ERR_BAD),
    BAD("bare LF as the blank line", L1 H "\n", HTTP_ERR_BAD),
    BAD("bare LF inside a value", L1 H "X: a\nb\r\n\r\n", HTTP_ERR_BAD),
    BAD("bare CR after request line", "GET / HTTP/1.1\r" H "\r\n", HTTP_ERR_BAD),
    BAD("bare CR inside a value", L1 H "X: a\rb\r\n\r\n", HTTP_ERR_BAD),
    BAD("CR CR LF", L1 H "X: a\r\r\n\r\n", HTTP_ERR_BAD),
    BAD("bare CR in the method", "G\rT / HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    BAD("LF first", "\nGET / HTTP/1.1\r\n" H "\r\n", HTTP_ERR_BAD),
    /* Field lines (RFC 9112 §5) */
    BAD("SP before the first field", L1 " Host: h\r\n\r\n", HTTP_ERR_BAD),
    BAD("obs-fold with SP", L1 H "X: a\r\n b\r\n\r\n", HTTP_ERR_BAD),
    BAD("obs-fold with HTAB", L1 H "X: a\r\n\tb\r\n\r\n", HTTP_ERR_BAD),
    BAD("SP before colon", L1 "Host : h\r\n\r\n", HTTP_ERR_BAD),
    BAD("HTAB before colon", L1 "Host\t: h\r\n\r\n", HTTP_ERR_BAD),
    BAD("empty name", L1 H ": v\r\n\r\n", HTTP_ERR_BAD),
    BAD("SP inside name", L1 H "X Y: v\r\n\r\n", HTTP_ERR_BAD),
    BAD("no colon", L1 H "X v\r\n\r\n", HTTP_ERR_BAD),
    BAD("no colon, name only", L1 H "X\r\n\r\n", HTTP_ERR_BAD),
    BAD("name not a token", L1 H "X@Y: v\r\n\r\n", HTTP_ERR_BAD),
    BAD("name with obs-text", L1 H "X\xe9: v\r\n\r\n", HTTP_ERR_BAD),
    BAD("NUL in value", L1 H "X: a\000b\r\n\r\n", HTTP_ERR_BAD),
    BAD("0x01 in value", L1 H "X: a\001b\r\n\r\n", HTTP_ERR_BAD),
    BAD("0x1f in value", L1 H "X: \x1f\r\n\r\n", HTTP_ERR_BAD),
    BAD("DEL in value", L1 H "X: a\x7f\r\n\r\n", HTTP_ERR_BAD),
    BAD("VT in value", L1 H "X: a\vb\r\n\r\n", HTTP_ERR_BAD),
    /* Host (RFC 9112 §3.2) */
    BAD("1.1 without Host", L1 "\r\n", HTTP_ERR_BAD),
    BAD("1.1 without Host, other fields", L1 "Accept: */*\r\n\r\n", HTTP_ERR_BAD),
    BAD("two Host fields", L1 "Host: a\r\nhost: a\r\n\r\n", HTTP_ERR_BAD),
    BAD("two Host fields in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERR_BAD),
    /* Framing (RFC 9112 §6, RFC 9110 §8.6) */
    BAD("CL not a number", L1 H "Content-Length: abc\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL negative", L1 H "Content-Length: -1\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL with plus", L1 H "Content-Length: +1\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL decimal point", L1 H "Content-Length: 1.0\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL hex", L1 H "Content-Length: 0x10\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL empty", L1 H "Content-Length:\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL blank", L1 H "Content-Length:   \r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL digits then junk", L1 H "Content-Length: 12ab\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL two numbers", L1 H "Content-Length: 1 2\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL trailing comma", L1 H "Content-Length: 5,\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL leading comma", L1 H "Content-Length: ,5\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL list disagrees", L1 H "Content-Length: 5, 6\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL fields disagree", L1 H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        HTTP_ERR_FRAMING),
    BAD("CL 2^64", L1 H "Content-Length: 18446744073709551616\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL 2^64+9", L1 H "Content-Length: 18446744073709551625\r\n\r\n", HTTP_ERR_FRAMING),
    BAD("CL far too big", L1 H "Content-Length: 99999999999999999999999999\r\n\r\n",
        HTTP_ERR_FRAMING),
    BAD("CL then TE", L1 H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        HTTP_ERR_FRAMING),
    BAD("TE then CL", L1 H "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        HTTP_ERR_FRAMING),
    BAD("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        HTTP_ERR_FRAMING),
};

static void rejects_malformed_requests_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD_ROWS / sizeof BAD_ROWS[0]; i++) {
        const struct bad_row *row = &BAD_ROWS[i];
        row_name = row->name;
        struct http_request req;
        memset(&req, 0xa5, sizeof req);
        assert_row_int(parse_guarded(row->in, row->len, 0, &req), row->err);
    }
}

/* Fed a byte at a time, a malformed head gives the same error, at the latest when its last
 * byte arrives (a bare CR or LF is reported as soon as it is seen). */
static void rejects_malformed_requests_byte_by_byte(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD_ROWS / sizeof BAD_ROWS[0]; i++) {
        const struct bad_row *row = &BAD_ROWS[i];
        row_name = row->name;
        struct http_request req;
        struct guarded g;
        size_t at;
        assert_row_int(feed(row->in, row->len, 1, &req, &g, &at), row->err);
        assert_true(at <= row->len);
        guard_free(&g);
    }
}

static void bare_cr_or_lf_is_reported_early(void **state)
{
    (void)state;
    struct http_request req;
    /* A CR as the last byte we have is undecided: its LF may be in the next read. */
    assert_int_equal(parse_guarded("GET / HTTP/1.1\r", 15, 0, &req), 0);
    assert_int_equal(parse_guarded("GET / HTTP/1.1\rX", 16, 15, &req), HTTP_ERR_BAD);
    assert_int_equal(parse_guarded("GET / HTTP/1.1\r\n", 16, 15, &req), 0);
    /* A bare LF is an error before the head is complete. */
    assert_int_equal(parse_guarded("GET / HTTP/1.1\nHo", 17, 0, &req), HTTP_ERR_BAD);
    assert_int_equal(parse_guarded("\n", 1, 0, &req), HTTP_ERR_BAD);
    /* Bytes after a complete head are not looked at: they are the next request, or a body. */
    static const char head_then_junk[] = "GET / HTTP/1.0\r\n\r\n\n\r\x00";
    assert_int_equal(parse_guarded(head_then_junk, sizeof head_then_junk - 1, 0, &req), 18);
}

/* Incomplete heads: 0, and *req zeroed (it was full of junk before the call). */
static void incomplete_heads_return_zero_and_clear_req(void **state)
{
    (void)state;
    static const char *const partial[] = {
        "",
        "G",
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\r",
        "\r\n",
        "\r\n\r",
        /* Even nonsense is only judged once the head is complete (or too big). */
        "\x01\x02\x03 not HTTP at all",
        "GET / HTTP/9.9\r\n",
    };
    for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
        struct http_request req;
        memset(&req, 0xa5, sizeof req);
        assert_int_equal(parse_guarded(partial[i], strlen(partial[i]), 0, &req), 0);
    }
    struct http_request req;
    memset(&req, 0xa5, sizeof req);
    assert_int_equal(http_parse_request(NULL, 0, 0, &req), 0);
    assert_req_zeroed(&req);
}

/* A last_len the parser cannot have seen (more than len) must not make it skip bytes. */
static void last_len_beyond_len_rescans(void **state)
{
    (void)state;
    static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http_request req;
    assert_int_equal(parse_guarded(head, sizeof head - 1, 1000, &req), (ssize_t)sizeof head - 1);
    assert_int_equal(parse_guarded("GET /\nX", 7, 1000, &req), HTTP_ERR_BAD);
}

/* ---- The caps --------------------------------------------------------------------------- */

/* A head of exactly `size` bytes: a request line, a Host, and one filler field. */
static char *make_head(size_t size)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Filler: ";
    static const char post[] = "\r\n\r\n";
    assert_true(size >= sizeof pre - 1 + sizeof post - 1);
    char *s = malloc(size);
    assert_non_null(s);
    memcpy(s, pre, sizeof pre - 1);
    memset(s + sizeof pre - 1, 'x', size - (sizeof pre - 1) - (sizeof post - 1));
    memcpy(s + size - (sizeof post - 1), post, sizeof post - 1);
    return s;
}

static void head_of_exactly_max_size_is_accepted(void **state)
{
    (void)state;
    char *s = make_head(HTTP_MAX_HEAD);
    struct http_request req;
    assert_int_equal(parse_guarded(s, HTTP_MAX_HEAD, 0, &req), HTTP_MAX_HEAD);
    assert_int_equal(req.nheaders, 2);
    assert_int_equal(req.headers[1].value.len, HTTP_MAX_HEAD - 39);

    struct guarded g;
    size_t at;
    assert_int_equal(feed(s, HTTP_MAX_HEAD, 1, &req, &g, &at), HTTP_MAX_HEAD);
    guard_free(&g);
    assert_int_equal(feed(s, HTTP_MAX_HEAD, 1000, &req, &g, &at), HTTP_MAX_HEAD);
    guard_free(&g);

    /* Followed by a pipelined request: the cap is on the head, not on what we hold. */
    static const char next[] = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    char *both = malloc(HTTP_MAX_HEAD + sizeof next - 1);
    assert_non_null(both);
    memcpy(both, s, HTTP_MAX_HEAD);
    memcpy(both + HTTP_MAX_HEAD, next, sizeof next - 1);
    assert_int_equal(parse_guarded(both, HTTP_MAX_HEAD + sizeof next - 1, 0, &req), HTTP_MAX_HEAD);
    assert_int_equal(parse_guarded(both, HTTP_MAX_HEAD + sizeof next - 1, HTTP_MAX_HEAD - 1, &req),
                     HTTP_MAX_HEAD);
    free(both);
    free(s);
}

static void head_one_byte_over_max_size_is_too_large(void **state)
{
    (void)state;
    char *s = make_head(HTTP_MAX_HEAD + 1);
    struct http_request req;
    assert_int_equal(parse_guarded(s, HTTP_MAX_HEAD + 1, 0, &req), HTTP_ERR_TOO_LARGE);
    /* A byte at a time: "incomplete" up to HTTP_MAX_HEAD - 1 bytes, then 431 at once, before
     * the client gets to send the rest. */
    struct guarded g;
    size_t at;
    assert_int_equal(feed(s, HTTP_MAX_HEAD + 1, 1, &req, &g, &at), HTTP_ERR_TOO_LARGE);
    assert_int_equal(at, HTTP_MAX_HEAD);
    guard_free(&g);
    free(s);

    /* No end of head at all. */
    char *junk = malloc(HTTP_MAX_HEAD + 100);
    assert_non_null(junk);
    memset(junk, 'A', HTTP_MAX_HEAD + 100);
    assert_int_equal(parse_guarded(junk, HTTP_MAX_HEAD - 1, 0, &req), 0);
    assert_int_equal(parse_guarded(junk, HTTP_MAX_HEAD, 0, &req), HTTP_ERR_TOO_LARGE);
    assert_int_equal(parse_guarded(junk, HTTP_MAX_HEAD, HTTP_MAX_HEAD - 1, &req),
                     HTTP_ERR_TOO_LARGE);
    assert_int_equal(parse_guarded(junk, HTTP_MAX_HEAD + 100, HTTP_MAX_HEAD, &req),
                     HTTP_ERR_TOO_LARGE);
    free(junk);
}

/* A head with `nfields` fields in all (Host included). */
static char *make_fields(size_t nfields, size_t *len)
{
    char *s = malloc(64 + nfields * 16);
    assert_non_null(s);
    size_t n = (size_t)sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 1; i < nfields; i++)
        n += (size_t)sprintf(s + n, "X-%zu: v\r\n", i);
    n += (size_t)sprintf(s + n, "\r\n");
    *len = n;
    return s;
}

static void field_count_cap(void **state)
{
    (void)state;
    size_t len;
    struct http_request req;
    char *s = make_fields(HTTP_MAX_HEADERS, &len);
    assert_int_equal(parse_guarded(s, len, 0, &req), (ssize_t)len);
    assert_int_equal(req.nheaders, HTTP_MAX_HEADERS);
    free(s);
    s = make_fields(HTTP_MAX_HEADERS + 1, &len);
    assert_int_equal(parse_guarded(s, len, 0, &req), HTTP_ERR_TOO_LARGE);
    free(s);
    /* Even when the extra field would be malformed: the count is checked first. */
    s = make_fields(HTTP_MAX_HEADERS, &len);
    char *t = malloc(len + 8);
    assert_non_null(t);
    memcpy(t, s, len - 2);
    memcpy(t + len - 2, "bad\r\n\r\n", 7);
    assert_int_equal(parse_guarded(t, len + 5, 0, &req), HTTP_ERR_TOO_LARGE);
    free(t);
    free(s);
}

/* ---- Helpers ---------------------------------------------------------------------------- */

static struct http_view V(const char *s) {
    return (struct http_view){s, strlen(s)};
}

static void
has_token_follows_list_rules(void **state)
{
    (void)state;
    static const struct {
        const char *value, *token;
        bool want;
    } rows[] = {
        {"Upgrade", "upgrade", true},
        {"keep-alive, Upgrade", "upgrade", true},
        {"keep-alive,Upgrade", "upgrade", true},
        {"UPGRADE , keep-alive", "upgrade", true},
        {" , ,upgrade , ", "upgrade", true},
        {"\tupgrade\t", "upgrade", true},
        {"close", "close", true},
        {"keep-alive", "upgrade", false},
        {"upgrade2", "upgrade", false},
        {"xupgrade", "upgrade", false},
        {"up grade", "upgrade", false},
        {"upgrade;q=1", "upgrade", false},
        {"", "upgrade", false},
        {",,,", "upgrade", false},
        {"upgrade", "", false},
        {"websocket", "websocket", true},
        {"h2c, WebSocket", "websocket", true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        row_name = rows[i].value;
        assert_row_int(http_has_token(V(rows[i].value), rows[i].token), rows[i].want);
    }
    /* A view is not NUL-terminated: only its length counts. */
    assert_false(http_has_token((struct http_view){"close", 4}, "close"));
    assert_true(http_has_token((struct http_view){"a, closed", 8}, "close"));
    assert_false(http_has_token((struct http_view){NULL, 0}, "close"));
}

static void view_eq_is_case_insensitive_and_exact_in_length(void **state)
{
    (void)state;
    assert_true(http_view_eq(V("Content-Length"), "content-length"));
    assert_true(http_view_eq(V("HOST"), "host"));
    assert_true(http_view_eq(V(""), ""));
    assert_false(http_view_eq(V("Host"), "Hos"));
    assert_false(http_view_eq(V("Hos"), "Host"));
    assert_false(http_view_eq(V("Hosu"), "Host"));
    assert_false(http_view_eq(V("["), "{")); /* 0x5b vs 0x7b: only letters fold */
    assert_true(http_view_eq((struct http_view){"Hostxyz", 4}, "host"));
}

static void find_and_count_headers(void **state)
{
    (void)state;
    static const char head[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n";
    struct http_request req;
    struct guarded g;
    const char *in = guard_copy(&g, head, sizeof head - 1);
    assert_int_equal(http_parse_request(in, sizeof head - 1, 0, &req), (ssize_t)sizeof head - 1);
    const struct http_header *h = http_find_header(&req, "x-A");
    assert_non_null(h);
    assert_ptr_equal(h, &req.headers[1]);
    assert_true(http_view_eq(h->value, "1"));
    assert_int_equal(http_count_headers(&req, "X-A"), 2);
    assert_int_equal(http_count_headers(&req, "x-b"), 1);
    assert_int_equal(http_count_headers(&req, "X-C"), 0);
    assert_null(http_find_header(&req, "X-C"));
    assert_null(http_find_header(&req, "X-"));
    guard_free(&g);
}

static void error_statuses_and_reasons(void **state)
{
    (void)state;
    assert_int_equal(http_err_status(HTTP_ERR_BAD), 400);
    assert_int_equal(http_err_status(HTTP_ERR_TOO_LARGE), 431);
    assert_int_equal(http_err_status(HTTP_ERR_VERSION), 505);
    assert_int_equal(http_err_status(HTTP_ERR_FRAMING), 400);
    assert_int_equal(http_err_status(-99), 500);
    assert_int_equal(http_err_status(0), 500);

    static const struct {
        int status;
        const char *reason;
    } rows[] = {
        {101, "Switching Protocols"},
        {200, "OK"},
        {204, "No Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {412, "Precondition Failed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
        {100, "Continue"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {411, "Length Required"},
        {415, "Unsupported Media Type"},
        {299, "Unknown"},
        {0, "Unknown"},
        {999, "Unknown"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_string_equal(http_reason(rows[i].status), rows[i].reason); /* names itself */
}

/* ---- Writing responses ------------------------------------------------------------------ */

#define DATE "Sun, 06 Nov 1994 08:49:37 GMT"

static const struct {
    const char *name;
    struct http_response r;
    const char *want;
} HEAD_ROWS[] = {
    {"200 with everything",
     {.status = 200,
      .content_type = "text/html; charset=utf-8",
      .content_length = 5,
      .keep_alive = true,
      .date = DATE},
     "HTTP/1.1 200 OK\r\nServer: wsrelay\r\nDate: " DATE "\r\n"
     "Content-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\n"},
    {"200 minimal",
     {.status = 200, .keep_alive = true},
     "HTTP/1.1 200 OK\r\nServer: wsrelay\r\nContent-Length: 0\r\n\r\n"},
    {"101 has no Content-Length",
     {.status = 101,
      .content_length = 99,
      .keep_alive = true,
      .extra_headers = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"},
     "HTTP/1.1 101 Switching Protocols\r\nServer: wsrelay\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"},
    {"204 has no Content-Length (RFC 9110 8.6)",
     {.status = 204, .keep_alive = true, .date = DATE},
     "HTTP/1.1 204 No Content\r\nServer: wsrelay\r\nDate: " DATE "\r\n\r\n"},
    {"304 has no Content-Length (RFC 9110 8.6: only the 200's, if any)",
     {.status = 304, .content_length = 1234, .keep_alive = true},
     "HTTP/1.1 304 Not Modified\r\nServer: wsrelay\r\n\r\n"},
    {"close",
     {.status = 404, .content_type = "text/plain", .content_length = 0, .keep_alive = false},
     "HTTP/1.1 404 Not Found\r\nServer: wsrelay\r\nContent-Type: text/plain\r\n"
     "Content-Length: 0\r\nConnection: close\r\n\r\n"},
    {"extras after Connection",
     {.status = 405,
      .content_length = 1,
      .keep_alive = false,
      .extra_headers = "Allow: GET, HEAD\r\n"},
     "HTTP/1.1 405 Method Not Allowed\r\nServer: wsrelay\r\nContent-Length: 1\r\n"
     "Connection: close\r\nAllow: GET, HEAD\r\n\r\n"},
    {"empty extras",
     {.status = 200, .keep_alive = true, .extra_headers = ""},
     "HTTP/1.1 200 OK\r\nServer: wsrelay\r\nContent-Length: 0\r\n\r\n"},
    {"largest length",
     {.status = 200, .content_length = UINT64_MAX, .keep_alive = true},
     "HTTP/1.1 200 OK\r\nServer: wsrelay\r\nContent-Length: 18446744073709551615\r\n\r\n"},
    {"unknown status",
     {.status = 599, .keep_alive = true},
     "HTTP/1.1 599 Unknown\r\nServer: wsrelay\r\nContent-Length: 0\r\n\r\n"},
};

/* The bytes a writer produced equal `want`; on failure, names the row and shows both. */
static void assert_bytes(const uint8_t *got, size_t got_len, const char *want)
{
    size_t want_len = strlen(want);
    if (got_len != want_len || memcmp(got, want, want_len) != 0)
        print_error("in row \"%s\": got\n%.*s\nwant\n%s\n", row_name, (int)got_len,
                    (const char *)got, want);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
}

static void write_head_exact_bytes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof HEAD_ROWS / sizeof HEAD_ROWS[0]; i++) {
        row_name = HEAD_ROWS[i].name;
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(buf_append_str(&b, "prev"), 0); /* appends, never overwrites */
        assert_int_equal(http_write_head(&b, &HEAD_ROWS[i].r), 0);
        assert_memory_equal(buf_head(&b), "prev", 4);
        assert_bytes(buf_head(&b) + 4, buf_size(&b) - 4, HEAD_ROWS[i].want);
        buf_free(&b);
    }
}

static const struct {
    const char *name;
    int status;
    bool keep_alive, head_only;
    const char *extra, *date;
    const char *want;
} ERROR_ROWS[] = {
    {"404 keep-alive", 404, true, false, NULL, NULL,
     "HTTP/1.1 404 Not Found\r\nServer: wsrelay\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Length: 14\r\n\r\n404 Not Found\n"},
    {"404 for HEAD: same length, no body", 404, true, true, NULL, NULL,
     "HTTP/1.1 404 Not Found\r\nServer: wsrelay\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Length: 14\r\n\r\n"},
    {"405 with Allow, Date, close", 405, false, false, "Allow: GET, HEAD\r\n", DATE,
     "HTTP/1.1 405 Method Not Allowed\r\nServer: wsrelay\r\nDate: " DATE "\r\n"
     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\nConnection: close\r\n"
     "Allow: GET, HEAD\r\n\r\n405 Method Not Allowed\n"},
    {"426 with the version", 426, false, false, "Sec-WebSocket-Version: 13\r\n", NULL,
     "HTTP/1.1 426 Upgrade Required\r\nServer: wsrelay\r\n"
     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nConnection: close\r\n"
     "Sec-WebSocket-Version: 13\r\n\r\n426 Upgrade Required\n"},
    {"431, longest reason", 431, false, false, NULL, NULL,
     "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: wsrelay\r\n"
     "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\nConnection: close\r\n"
     "\r\n431 Request Header Fields Too Large\n"},
};

static void write_error_exact_bytes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ERROR_ROWS / sizeof ERROR_ROWS[0]; i++) {
        row_name = ERROR_ROWS[i].name;
        struct buf b;
        buf_init(&b, 4096);
        assert_int_equal(http_write_error(&b, ERROR_ROWS[i].status, ERROR_ROWS[i].keep_alive,
                                          ERROR_ROWS[i].head_only, ERROR_ROWS[i].extra,
                                          ERROR_ROWS[i].date),
                         0);
        assert_bytes(buf_head(&b), buf_size(&b), ERROR_ROWS[i].want);
        buf_free(&b);
    }
}

/* With every limit too small by 1..n bytes, the write fails with -ENOBUFS and the buffer's
 * readable bytes are exactly what they were, even when a consumed prefix is present. With
 * the exact limit it succeeds. */
static void writes_are_all_or_nothing(void **state)
{
    (void)state;
    static const char prefix[] = "0123456789";
    const struct http_response *r = &HEAD_ROWS[0].r;
    size_t head_len = strlen(HEAD_ROWS[0].want);
    size_t err_len = strlen(ERROR_ROWS[2].want);

    for (int which = 0; which < 2; which++) {
        size_t need = which == 0 ? head_len : err_len;
        for (size_t limit = 6; limit <= 6 + need; limit++) {
            struct buf b;
            buf_init(&b, limit);
            assert_int_equal(buf_append(&b, prefix, 6), 0);
            buf_consume(&b, 2); /* off > 0: "2345" readable */
            uint8_t *data_before = b.data;
            int rc = which == 0
                         ? http_write_head(&b, r)
                         : http_write_error(&b, 405, false, false, "Allow: GET, HEAD\r\n", DATE);
            if (limit - 4 >= need) {
                assert_int_equal(rc, 0);
                assert_int_equal(buf_size(&b), 4 + need);
            } else {
                assert_int_equal(rc, -ENOBUFS);
                assert_int_equal(buf_size(&b), 4);
                assert_memory_equal(buf_head(&b), "2345", 4);
                assert_ptr_equal(b.data, data_before);
            }
            buf_free(&b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_valid_requests_whole),
        cmocka_unit_test(parses_valid_requests_in_every_chunking),
        cmocka_unit_test(parses_valid_requests_pipelined),
        cmocka_unit_test(rejects_malformed_requests_whole),
        cmocka_unit_test(rejects_malformed_requests_byte_by_byte),
        cmocka_unit_test(bare_cr_or_lf_is_reported_early),
        cmocka_unit_test(incomplete_heads_return_zero_and_clear_req),
        cmocka_unit_test(last_len_beyond_len_rescans),
        cmocka_unit_test(head_of_exactly_max_size_is_accepted),
        cmocka_unit_test(head_one_byte_over_max_size_is_too_large),
        cmocka_unit_test(field_count_cap),
        cmocka_unit_test(has_token_follows_list_rules),
        cmocka_unit_test(view_eq_is_case_insensitive_and_exact_in_length),
        cmocka_unit_test(find_and_count_headers),
        cmocka_unit_test(error_statuses_and_reasons),
        cmocka_unit_test(write_head_exact_bytes),
        cmocka_unit_test(write_error_exact_bytes),
        cmocka_unit_test(writes_are_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
