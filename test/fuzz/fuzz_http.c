/* fuzz_http.c: libFuzzer target for everything wsrelay does with the bytes of an HTTP
 * request: http.c's parser, then what conn_io.c and routes.c ask of a parsed request (http.c's
 * header helpers, upgrade.c's handshake check, www.c's path resolver).
 *
 * The input is what a client sends on a fresh connection. Each run drives:
 *   1. http_parse_request() over the whole input, as if it came in one read;
 *   2. the same bytes in reads of input-derived sizes, passing last_len as conn_io.c does
 *      (c->http.seen), until the parser answers;
 *   3. pipelining: after each complete head, parse again from where it ended, as conn_io.c
 *      does after buf_consume();
 *   4. for every head parsed: http_find_header(), http_count_headers(), http_has_token(),
 *      upgrade_check(), upgrade_origin_allowed(), www_resolve() of the target (roomy and
 *      tight output) and www_mime();
 *   5. www_resolve() of the raw input when it starts with '/', so the resolver is fuzzed even
 *      by bytes that are no valid request.
 *
 * Invariants, beyond "no sanitizer report" (each is a FUZZ_CHECK below, with its reason):
 *   - the parser never claims more bytes than it was given, a head ends in CRLFCRLF and fits
 *     HTTP_MAX_HEAD, every view lies inside the head, and on 0 or an error *req is zeroed;
 *   - splitting the bytes differently never changes the answer: the incremental parse gives
 *     the same size (or error) and the same fields as the whole parse. Two readings of one
 *     byte stream that disagree on where a head ends is how request smuggling starts;
 *   - what the parser lets through obeys RFC 9112: tchar methods and names, visible-ASCII
 *     targets, values without CR, LF, NUL or edge whitespace, one Host on HTTP/1.1, never
 *     Content-Length with Transfer-Encoding;
 *   - the header helpers agree with a plain loop written here, and http_has_token() and
 *     http_list_has_exact() find every element of a comma list split here independently
 *     (and upgrade_offers_protocol() every element of a Sec-WebSocket-Protocol field);
 *   - upgrade_check() succeeds only for GET on HTTP/1.1 with one 24-byte key, and its accept
 *     value is upgrade_accept_key() of that key; upgrade_origin_allowed() answers exactly as
 *     upgrade.h says for "*", a list, and the same-host rule, http(s) schemes only outside
 *     "*" (computed here from the fields);
 *   - www_resolve() output is a relative path (no leading '/'), has no ".." or other dot
 *     segment, no empty segment, no control byte or backslash, fits the buffer it was given,
 *     is the same with a tight buffer as with a roomy one, and resolves to itself again.
 *     (Not "never contains the substring ..": "a..b" is an ordinary file name.)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "http.h"
#include "upgrade.h"
#include "www.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- Independent helpers -----------------------------------------------------------------
 * Written here, not taken from http.c, so a bug there cannot hide itself in the check. */

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool same_ci(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    for (size_t i = 0; i < a_len; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Is view v inside head[0..head_len)? */
static bool inside(struct http_view v, const char *head, size_t head_len)
{
    return v.p >= head && v.len <= head_len && (size_t)(v.p - head) <= head_len - v.len;
}

static bool view_eq(struct http_view a, struct http_view b)
{
    return a.p == b.p && a.len == b.len;
}

/* Field by field, so padding bytes do not matter. Views are compared as pointers: both
 * parses ran over the same bytes, so the same field must point at the same place. */
static bool req_equal(const struct http_request *a, const struct http_request *b)
{
    if (!view_eq(a->method, b->method) || !view_eq(a->target, b->target) ||
        a->minor_version != b->minor_version || a->nheaders != b->nheaders ||
        a->has_content_length != b->has_content_length || a->content_length != b->content_length ||
        a->has_transfer_encoding != b->has_transfer_encoding || a->keep_alive != b->keep_alive)
        return false;
    for (size_t i = 0; i < a->nheaders; i++)
        if (!view_eq(a->headers[i].name, b->headers[i].name) ||
            !view_eq(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
}

static bool req_is_zero(const struct http_request *req)
{
    static const struct http_request zero;       /* static: every byte, padding too, is 0 */
    return memcmp(req, &zero, sizeof zero) == 0; /* http.c memsets, so padding is 0 too */
}

/* ---- One parse result -------------------------------------------------------------------- */

/* Everything a single http_parse_request(in, len, ...) answer must satisfy. */
static void check_result(const char *in, size_t len, ssize_t n, const struct http_request *req)
{
    /* Contract: size of the head, 0, or one of the four errors; never past the input. */
    FUZZ_CHECK(n >= HTTP_ERR_FRAMING);
    FUZZ_CHECK(n <= 0 || (size_t)n <= len);
    if (n <= 0) {
        /* Contract: *req is zeroed on 0 and on error, so no stale view survives. */
        FUZZ_CHECK(req_is_zero(req));
        /* Without a blank line within 8 KiB the answer is 431, not "need more" for ever. */
        FUZZ_CHECK(n != 0 || len < HTTP_MAX_HEAD);
        if (n < 0) {
            int st = http_err_status((int)n);
            FUZZ_CHECK(st == 400 || st == 431 || st == 505);
        }
        return;
    }

    size_t head_len = (size_t)n;
    FUZZ_CHECK(head_len <= HTTP_MAX_HEAD && head_len >= 4);
    FUZZ_CHECK(memcmp(in + head_len - 4, "\r\n\r\n", 4) == 0); /* RFC 9112 §2.1 */
    FUZZ_CHECK(req->minor_version == 0 || req->minor_version == 1);
    FUZZ_CHECK(req->nheaders <= HTTP_MAX_HEADERS);

    FUZZ_CHECK(req->method.len > 0 && inside(req->method, in, head_len));
    for (size_t i = 0; i < req->method.len; i++)
        FUZZ_CHECK(is_tchar((unsigned char)req->method.p[i])); /* RFC 9110 §9.1: a token */
    FUZZ_CHECK(req->target.len > 0 && inside(req->target, in, head_len));
    for (size_t i = 0; i < req->target.len; i++) { /* no space or control byte can hide */
        unsigned char c = (unsigned char)req->target.p[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7f);
    }

    size_t hosts = 0, lengths = 0, encodings = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct http_view name = req->headers[i].name, value = req->headers[i].value;
        FUZZ_CHECK(name.len > 0 && inside(name, in, head_len));
        FUZZ_CHECK(inside(value, in, head_len));
        for (size_t k = 0; k < name.len; k++)
            FUZZ_CHECK(is_tchar((unsigned char)name.p[k])); /* RFC 9112 §5.1 */
        for (size_t k = 0; k < value.len; k++) {
            /* RFC 9110 §5.5: CR, LF and NUL in a value are the header-injection vector. */
            unsigned char c = (unsigned char)value.p[k];
            FUZZ_CHECK(c == '\t' || c >= 0x20);
            FUZZ_CHECK(c != 0x7f);
        }
        if (value.len > 0) { /* RFC 9112 §5.1: OWS around the value is not part of it */
            FUZZ_CHECK(value.p[0] != ' ' && value.p[0] != '\t');
            FUZZ_CHECK(value.p[value.len - 1] != ' ' && value.p[value.len - 1] != '\t');
        }
        hosts += same_ci(name.p, name.len, "host", 4);
        lengths += same_ci(name.p, name.len, "content-length", 14);
        encodings += same_ci(name.p, name.len, "transfer-encoding", 17);
    }
    /* RFC 9112 §3.2: exactly one Host on 1.1, at most one on 1.0. */
    FUZZ_CHECK(req->minor_version == 1 ? hosts == 1 : hosts <= 1);
    /* The framing flags come from fields that are really there ... */
    FUZZ_CHECK(req->has_content_length == (lengths > 0));
    FUZZ_CHECK(req->has_transfer_encoding == (encodings > 0));
    /* ... and §6.3 item 3: never both (smuggling), §6.1: no TE on HTTP/1.0. */
    FUZZ_CHECK(!(req->has_content_length && req->has_transfer_encoding));
    FUZZ_CHECK(!(req->has_transfer_encoding && req->minor_version == 0));
}

/* ---- Header helpers and handshake --------------------------------------------------------- */

/* A NUL-terminated copy of a view (views hold no NUL: the checks above guarantee it). */
static const char *cstr(struct http_view v, char *out)
{
    memcpy(out, v.p, v.len);
    out[v.len] = '\0';
    return out;
}

/* upgrade_origin_allowed() (RFC 6455 §10.2) against its contract in upgrade.h, computed
 * here from the fields directly. */
static void check_origin(const struct http_request *req)
{
    static char list[2 * HTTP_MAX_HEAD + 64];
    size_t origins = 0;
    const struct http_header *origin = NULL, *host = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (same_ci(h->name.p, h->name.len, "origin", 6) && origins++ == 0)
            origin = h;
        if (host == NULL && same_ci(h->name.p, h->name.len, "host", 4))
            host = h;
    }
    static const char fixed[] = "http://localhost:7071, https://a.example";
    bool any = upgrade_origin_allowed(req, "*");
    bool same_host = upgrade_origin_allowed(req, NULL);
    bool listed = upgrade_origin_allowed(req, fixed);
    if (origins == 0) { /* programs send no Origin: never refused */
        FUZZ_CHECK(any && same_host && listed);
        return;
    }
    if (origins > 1) { /* two Origins: which one would a proxy have checked? */
        FUZZ_CHECK(!any && !same_host && !listed);
        return;
    }
    FUZZ_CHECK(any);
    struct http_view o = origin->value;
    FUZZ_CHECK(listed == (same_ci(o.p, o.len, "http://localhost:7071", 21) ||
                          same_ci(o.p, o.len, "https://a.example", 17)));

    /* Except under "*", the scheme before the first "://" must be http or https (RFC 6454
     * §4), in any case. */
    size_t k = 0;
    while (k + 3 <= o.len && memcmp(o.p + k, "://", 3) != 0)
        k++;
    bool is_web = k + 3 <= o.len && ((k == 4 && same_ci(o.p, 4, "http", 4)) ||
                                     (k == 5 && same_ci(o.p, 5, "https", 5)));
    /* allow == NULL: and the authority after that "://" must be the Host value. */
    bool want = is_web && k + 3 < o.len && host != NULL &&
                same_ci(o.p + k + 3, o.len - k - 3, host->value.p, host->value.len);
    FUZZ_CHECK(same_host == want);

    /* An allow list naming exactly this origin (no comma in it, so one element) admits it,
     * wherever it stands in the list, if it is an http(s) origin; never otherwise. */
    if (!is_web) {
        int n = snprintf(list, sizeof list, "%.*s", (int)o.len, o.p);
        FUZZ_CHECK(n >= 0 && (size_t)n < sizeof list);
        FUZZ_CHECK(!upgrade_origin_allowed(req, list) || strcmp(list, "*") == 0);
    } else if (o.len > 0 && memchr(o.p, ',', o.len) == NULL) {
        int n = snprintf(list, sizeof list, "https://other.example ,%.*s , null", (int)o.len, o.p);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof list);
        FUZZ_CHECK(upgrade_origin_allowed(req, list));
    }
}

static void check_helpers(const struct http_request *req)
{
    static char name[HTTP_MAX_HEAD + 1], elem[HTTP_MAX_HEAD + 1];

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        cstr(h->name, name);

        /* http_find_header(): the first field of that name, compared case-insensitively. */
        const struct http_header *f = http_find_header(req, name);
        FUZZ_CHECK(f != NULL && f <= h);
        FUZZ_CHECK(same_ci(f->name.p, f->name.len, name, h->name.len));
        for (const struct http_header *g = req->headers; g < f; g++)
            FUZZ_CHECK(!same_ci(g->name.p, g->name.len, name, h->name.len));

        /* http_count_headers() against a plain loop. */
        size_t count = 0;
        for (size_t k = 0; k < req->nheaders; k++)
            count += same_ci(req->headers[k].name.p, req->headers[k].name.len, name, h->name.len);
        FUZZ_CHECK(http_count_headers(req, name) == count);

        /* http_has_token(): RFC 9110 §5.6.1 lists, split here on commas with OWS trimmed;
         * every non-empty element must be found, and the empty token never is. */
        struct http_view v = h->value;
        size_t s = 0;
        while (s <= v.len) {
            size_t e = s;
            while (e < v.len && v.p[e] != ',')
                e++;
            size_t a = s, b = e;
            while (a < b && (v.p[a] == ' ' || v.p[a] == '\t'))
                a++;
            while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t'))
                b--;
            if (b > a) {
                const char *item = cstr((struct http_view){v.p + a, b - a}, elem);
                FUZZ_CHECK(http_has_token(v, item));
                /* The exact comparison (subprotocol names) finds it too, and so does
                 * upgrade_offers_protocol() when the field is Sec-WebSocket-Protocol. */
                FUZZ_CHECK(http_list_has_exact(v, item));
                if (same_ci(h->name.p, h->name.len, "Sec-WebSocket-Protocol",
                            strlen("Sec-WebSocket-Protocol")))
                    FUZZ_CHECK(upgrade_offers_protocol(req, item));
            }
            s = e + 1;
        }
        FUZZ_CHECK(!http_has_token(v, ""));
        FUZZ_CHECK(!http_list_has_exact(v, ""));
    }
    FUZZ_CHECK(http_find_header(req, "x-not-sent\x01") == NULL); /* \x01: no tchar */
    FUZZ_CHECK(http_count_headers(req, "x-not-sent\x01") == 0);

    check_origin(req);

    /* RFC 6455 §4.2.1. */
    char accept[UPGRADE_ACCEPT_LEN + 1];
    memset(accept, 'x', sizeof accept);
    int rc = upgrade_check(req, accept);
    FUZZ_CHECK(rc >= UPGRADE_ERR_HTTP && rc <= 0);
    if (rc < 0) {
        FUZZ_CHECK(accept[0] == '\0');
        int st = upgrade_err_status(rc);
        FUZZ_CHECK(st == 400 || st == 405 || st == 426);
        return;
    }
    FUZZ_CHECK(req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0);
    FUZZ_CHECK(req->minor_version == 1 && !req->has_transfer_encoding);
    FUZZ_CHECK(!req->has_content_length || req->content_length == 0);
    FUZZ_CHECK(http_count_headers(req, "sec-websocket-key") == 1);
    const struct http_header *key = http_find_header(req, "Sec-WebSocket-Key");
    FUZZ_CHECK(key != NULL && key->value.len == 24);
    FUZZ_CHECK(strlen(accept) == UPGRADE_ACCEPT_LEN);
    char again[UPGRADE_ACCEPT_LEN + 1];
    upgrade_accept_key(key->value.p, key->value.len, again);
    FUZZ_CHECK(strcmp(accept, again) == 0);
}

/* ---- www_resolve ------------------------------------------------------------------------- */

/* What any www_resolve(..., out, cap) answer must satisfy. */
static void check_path(int rc, const char *out, size_t cap)
{
    FUZZ_CHECK(rc > 0 || rc == WWW_ERR_BAD || rc == WWW_ERR_NOT_FOUND);
    if (rc < 0) {
        FUZZ_CHECK(cap == 0 || out[0] == '\0'); /* never half a path to open by mistake */
        return;
    }
    size_t len = (size_t)rc;
    FUZZ_CHECK(len < cap && len <= WWW_PATH_MAX && out[len] == '\0' && strlen(out) == len);
    /* Relative to the root: an absolute path would make openat2 ignore root_fd. */
    FUZZ_CHECK(out[0] != '/' && out[len - 1] != '/');
    size_t seg = 0; /* start of the current segment */
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)out[i];
        if (i < len) {
            FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\');
            if (c != '/')
                continue;
        }
        /* A segment ends here: never empty ("//"), never ".", "..", or a dotfile. */
        FUZZ_CHECK(i > seg && out[seg] != '.');
        seg = i + 1;
    }
}

static void check_resolve(const char *t, size_t t_len, struct fuzz_rng *r)
{
    char roomy[WWW_PATH_MAX + 17];
    int a = www_resolve(t, t_len, roomy, sizeof roomy);
    check_path(a, roomy, sizeof roomy);
    if (t_len == 0 || t[0] != '/')
        FUZZ_CHECK(a == WWW_ERR_BAD); /* only origin-form names a file */

    char tight[65];
    size_t cap = fuzz_rng_range(r, 0, sizeof tight);
    int b = www_resolve(t, t_len, tight, cap);
    check_path(b, tight, cap);
    /* The buffer size may only decide between "fits" and "too long" (404). */
    if (b > 0)
        FUZZ_CHECK(a == b && memcmp(roomy, tight, (size_t)b) == 0);
    if (a > 0 && (size_t)a < cap)
        FUZZ_CHECK(b == a);

    if (a <= 0)
        return;
    const char *mime = www_mime(roomy);
    FUZZ_CHECK(mime != NULL && mime[0] != '\0');

    /* A resolved path is already normal: "/" + it resolves to itself, unless it holds a byte
     * the resolver reads as syntax ('%' decodes, '?' and '#' end the path). */
    if (strpbrk(roomy, "%?#") == NULL) {
        char again[WWW_PATH_MAX + 2], out2[WWW_PATH_MAX + 17];
        again[0] = '/';
        memcpy(again + 1, roomy, (size_t)a);
        int c = www_resolve(again, (size_t)a + 1, out2, sizeof out2);
        FUZZ_CHECK(c == a && memcmp(out2, roomy, (size_t)a) == 0);
    }
}

/* ---- The target -------------------------------------------------------------------------- */

/* Everything done with one complete head. */
static void exercise(const struct http_request *req, struct fuzz_rng *r)
{
    check_helpers(req);
    check_resolve(req->target.p, req->target.len, r);
}

/* The same bytes in several reads, as conn_io.c sees them: call again after each read with
 * last_len = the bytes seen last time, stop at the first non-zero answer. */
static void check_incremental(const char *in, size_t len, ssize_t whole,
                              const struct http_request *whole_req, struct fuzz_rng *r)
{
    struct http_request req;
    size_t max = fuzz_read_max(r, len), floor = len / 64; /* at most ~64 calls */
    size_t have = 0, seen = 0;
    ssize_t n = 0;
    do {
        have += fuzz_read_size(r, max, floor, len - have);
        n = http_parse_request(in, have, seen, &req);
        check_result(in, have, n, &req);
        seen = have;
    } while (n == 0 && have < len);

    if (have == len || n > 0 || n != HTTP_ERR_TOO_LARGE) {
        /* The answer must not depend on how the bytes were split. A head or an error found
         * in a prefix is also the whole input's answer: the parser reads in order. */
        FUZZ_CHECK(n == whole);
        FUZZ_CHECK(req_equal(&req, whole_req));
    } else {
        /* 431 for a prefix of 8 KiB without a blank line; the whole input, whose first 8 KiB
         * are the same, may end in 400 instead (a bare CR at byte 8191), but not succeed. */
        FUZZ_CHECK(whole < 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct fuzz_rng r;
    fuzz_rng_init(&r, data, size);
    static struct http_request req, whole_req; /* 2 KiB each: not on the stack per call */

    /* 1 and 3: the whole input, then each pipelined head after it. */
    size_t off = 0;
    for (int k = 0; k < 64 && off <= size; k++) {
        ssize_t n = http_parse_request(in + off, size - off, 0, &req);
        check_result(in + off, size - off, n, &req);
        if (k == 0) {
            whole_req = req;
            /* 2: the first request, split into reads. */
            check_incremental(in, size, n, &whole_req, &r);
        }
        if (n <= 0) {
            if (n < 0) { /* the answer conn_io.c would send must always fit in a write */
                struct buf b;
                buf_init(&b, 4096);
                FUZZ_CHECK(
                    http_write_error(&b, http_err_status((int)n), false, false, NULL, NULL) == 0);
                FUZZ_CHECK(buf_size(&b) > 9 && memcmp(buf_head(&b), "HTTP/1.1 ", 9) == 0);
                buf_free(&b);
            }
            break;
        }
        exercise(&req, &r);
        off += (size_t)n;
    }

    /* A wrong last_len may give a wrong answer (http.h) but never a read out of bounds. */
    size_t bogus = fuzz_rng_range(&r, 0, size + 4);
    ssize_t n = http_parse_request(in, size, bogus, &req);
    check_result(in, size, n, &req); /* whatever it answers is still a well-formed answer */

    /* 5: a bare target, such as the corpus's "/a/%2e%2e/b". */
    if (size > 0 && in[0] == '/') {
        size_t t_len = 0;
        while (t_len < size && in[t_len] != ' ' && in[t_len] != '\r' && in[t_len] != '\n')
            t_len++;
        check_resolve(in, t_len, &r);
    }
    return 0;
}
