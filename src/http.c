/* http.c: the incremental HTTP/1.1 request parser and response-head writer of http.h.
 *
 * Owns: RFC 9112's request syntax (request line §3, field lines §5, the blank line that ends
 * the head §2.1), the message-framing rules a server must enforce before it trusts a length
 * (§6.1, §6.3), connection persistence (§9.3), and the exact bytes of our response heads.
 * Does not own: what a request means (routes.c routes it), request bodies (wsrelay serves
 * GET and HEAD only; the caller decides what to do when a body is announced), and any I/O.
 * Pure: no syscalls, clock, logging or globals; the parser allocates nothing and the writer
 * allocates only through the caller's struct buf.
 *
 * A request head on the wire (RFC 9112 §2.1), every line ending in CRLF:
 *
 *     GET /index.html HTTP/1.1␍␊        request-line = method SP request-target SP version
 *     Host: example.com␍␊               field-line   = field-name ":" OWS field-value OWS
 *     Connection: keep-alive␍␊
 *     ␍␊                                the empty line: the head ends here; a body may follow
 *
 * The parser is strict where leniency has bitten servers: a bare CR or LF, whitespace before
 * a colon, or a folded line would let two parsers on one path (a proxy and us) disagree on
 * where a field or a message ends, which is how request smuggling works. We answer 400.
 */
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"

/* ---- Character classes ------------------------------------------------------------------ */

/* Tokens (methods and field names, RFC 9110 §5.6.2) are ascii_is_tchar() (ascii.h). */

/* The request-target (RFC 9112 §3.2) is made of URI characters (RFC 3986), all visible ASCII.
 * We accept any VCHAR here and leave the finer grammar to www_resolve(): what matters at this
 * layer is that no space, control byte or non-ASCII byte can hide inside it. */
static bool is_target_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* RFC 9110 §5.5: field-value bytes are VCHAR, SP, HTAB and obs-text (0x80-0xFF, kept for old
 * Latin-1 values). Every other control byte, NUL, CR and LF included, is refused: a CR or LF
 * inside a value is the classic header-injection and smuggling vector. */
static bool is_field_value_char(unsigned char c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t'; /* RFC 9110 §5.6.3: OWS = *( SP / HTAB ) */
}

/* ---- Small public helpers --------------------------------------------------------------- */

bool http_views_eq(struct http_view a, struct http_view b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (ascii_lower((unsigned char)a.p[i]) != ascii_lower((unsigned char)b.p[i]))
            return false;
    return true;
}

bool http_view_eq(struct http_view v, const char *s)
{
    return http_views_eq(v, (struct http_view){s, strlen(s)});
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (http_view_eq(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

size_t http_count_headers(const struct http_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (http_view_eq(req->headers[i].name, name))
            n++;
    return n;
}

/* RFC 9110 §5.6.1: #element lists are comma-separated with optional whitespace around each
 * comma, and a recipient must accept (and ignore) empty elements: " , ,a" is the list "a". */
bool http_list_next(struct http_view list, size_t *pos, struct http_view *elem)
{
    size_t i = *pos;
    while (i < list.len) {
        while (i < list.len && (is_ows(list.p[i]) || list.p[i] == ','))
            i++;
        size_t start = i;
        while (i < list.len && list.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(list.p[end - 1]))
            end--;
        if (end > start) {
            *pos = i;
            *elem = (struct http_view){list.p + start, end - start};
            return true;
        }
    }
    *pos = i;
    return false;
}

/* The one list walker's user: every element, compared case-insensitively (tokens, RFC 9110
 * §5.6.2) or exactly. */
static bool list_has(struct http_view list, struct http_view item, bool is_exact)
{
    size_t pos = 0;
    struct http_view e;
    while (http_list_next(list, &pos, &e))
        if (is_exact ? e.len == item.len && memcmp(e.p, item.p, e.len) == 0
                     : http_views_eq(e, item))
            return true;
    return false;
}

bool http_list_has(struct http_view list, struct http_view item)
{
    return list_has(list, item, false);
}

bool http_list_has_exact(struct http_view list, const char *item)
{
    return list_has(list, (struct http_view){item, strlen(item)}, true);
}

bool http_has_token(struct http_view value, const char *token)
{
    return http_list_has(value, (struct http_view){token, strlen(token)});
}

/* ---- Finding the end of the head -------------------------------------------------------- */

/* Scans in[from..limit) for the CRLFCRLF that ends the head. Returns the head's size (the
 * index just past that LF), 0 if it is not there yet, or HTTP_ERR_BAD on a bare CR or LF.
 *
 * RFC 9112 §2.2 lets a recipient accept a lone LF as a line terminator; we don't: a proxy in
 * front of us that does the opposite would see a different set of fields (smuggling). A CR
 * at the very end of the bytes we have is left undecided: the next call rescans it, because
 * the caller's last_len backs up 3 bytes. Reads in[limit] only when limit < len (the byte
 * after a CR, which the caller has). */
static ssize_t find_head_end(const char *in, size_t len, size_t from, size_t limit)
{
    for (size_t i = from; i < limit; i++) {
        if (in[i] == '\r') {
            if (i + 1 < len && in[i + 1] != '\n')
                return HTTP_ERR_BAD; /* bare CR */
        } else if (in[i] == '\n') {
            if (i == 0 || in[i - 1] != '\r')
                return HTTP_ERR_BAD; /* bare LF */
            if (i >= 3 && in[i - 2] == '\n' && in[i - 3] == '\r')
                return (ssize_t)(i + 1);
        }
    }
    return 0;
}

/* ---- The request line (RFC 9112 §3) ----------------------------------------------------- */

/* RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. A version in that
 * shape that we don't speak ("HTTP/2.0", "HTTP/0.9") is a 505; anything else is not a
 * version at all, so 400. Returns the minor version (0 or 1) or a negative enum http_err. */
static int parse_version(const char *p, size_t len)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
        p[7] < '0' || p[7] > '9')
        return HTTP_ERR_BAD;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return HTTP_ERR_VERSION;
    return p[7] - '0';
}

/* Parses "method SP request-target SP HTTP-version CRLF" at *pp, advancing it past the CRLF.
 * Single spaces only: RFC 9112 §3 allows a lenient whitespace split, but being exact keeps
 * us from disagreeing with whoever forwarded the request. */
static int parse_request_line(const char **pp, const char *end, struct http_request *req)
{
    const char *p = *pp;

    const char *start = p;
    while (p < end && ascii_is_tchar((unsigned char)*p))
        p++;
    if (p == start || p == end || *p != ' ')
        return HTTP_ERR_BAD;
    req->method = (struct http_view){start, (size_t)(p - start)};
    p++;

    start = p;
    while (p < end && is_target_char((unsigned char)*p))
        p++;
    if (p == start || p == end || *p != ' ')
        return HTTP_ERR_BAD;
    req->target = (struct http_view){start, (size_t)(p - start)};
    p++;

    start = p;
    while (p < end && *p != '\r')
        p++;
    if (end - p < 2 || p[1] != '\n')
        return HTTP_ERR_BAD;
    int minor = parse_version(start, (size_t)(p - start));
    if (minor < 0)
        return minor;
    req->minor_version = minor;
    *pp = p + 2;
    return 0;
}

/* ---- Field lines (RFC 9112 §5) ---------------------------------------------------------- */

/* Parses field lines at *pp up to and including the empty line, advancing *pp past it. */
static int parse_fields(const char **pp, const char *end, struct http_request *req)
{
    const char *p = *pp;
    for (;;) {
        if (end - p < 2)
            return HTTP_ERR_BAD; /* unreachable: the head ends in CRLFCRLF */
        if (p[0] == '\r') {
            if (p[1] != '\n')
                return HTTP_ERR_BAD;
            *pp = p + 2;
            return 0;
        }
        /* RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB continues the previous
         * value) is obsolete; a server may reject it with 400, and we do. §2.2: whitespace
         * between the request line and the first field is refused for the same reason. */
        if (is_ows(p[0]))
            return HTTP_ERR_BAD;
        if (req->nheaders == HTTP_MAX_HEADERS)
            return HTTP_ERR_TOO_LARGE; /* 431 (RFC 6585 §5), like an oversized head */

        const char *start = p;
        while (p < end && ascii_is_tchar((unsigned char)*p))
            p++;
        /* RFC 9112 §5.1: no whitespace between field name and colon; a server MUST answer
         * such a field with 400 (a proxy might have read "Host " as a different field). */
        if (p == start || p == end || *p != ':')
            return HTTP_ERR_BAD;
        struct http_view name = {start, (size_t)(p - start)};
        p++;

        while (p < end && is_ows(*p))
            p++;
        start = p;
        while (p < end && is_field_value_char((unsigned char)*p))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return HTTP_ERR_BAD; /* a control byte inside the value, or a bare CR */
        const char *vend = p;
        while (vend > start && is_ows(vend[-1]))
            vend--; /* RFC 9112 §5.1: OWS around the value is not part of it */
        req->headers[req->nheaders++] = (struct http_header){name, {start, (size_t)(vend - start)}};
        p += 2;
    }
}

/* ---- Framing and persistence (RFC 9112 §6, §9.3) ---------------------------------------- */

/* RFC 9110 §8.6: Content-Length = 1*DIGIT. A recipient may accept a list of identical values
 * ("42, 42", left by a proxy that merged fields) as that one value; anything else (a sign,
 * hex, an empty element, a number past 2^64-1, two different values) makes the body length
 * unknowable, which RFC 9112 §6.3 item 5 says is an unrecoverable framing error. */
static int parse_content_length(struct http_view v, uint64_t *out)
{
    bool have = false;
    uint64_t first = 0;
    size_t i = 0;
    for (;;) {
        while (i < v.len && is_ows(v.p[i]))
            i++;
        size_t digits = 0;
        uint64_t n = 0;
        while (i < v.len && v.p[i] >= '0' && v.p[i] <= '9') {
            unsigned d = (unsigned)(v.p[i] - '0');
            if (n > (UINT64_MAX - d) / 10)
                return HTTP_ERR_FRAMING; /* overflow */
            n = n * 10 + d;
            digits++;
            i++;
        }
        if (digits == 0)
            return HTTP_ERR_FRAMING;
        while (i < v.len && is_ows(v.p[i]))
            i++;
        if (have && n != first)
            return HTTP_ERR_FRAMING;
        first = n;
        have = true;
        if (i == v.len)
            break;
        if (v.p[i] != ',')
            return HTTP_ERR_FRAMING;
        i++;
    }
    *out = first;
    return 0;
}

/* Derives framing and persistence from the parsed fields, and checks the rules that span
 * several fields. */
static int check_fields(struct http_request *req)
{
    size_t hosts = 0;
    bool conn_close = false, conn_keep_alive = false;

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_view_eq(h->name, "content-length")) {
            uint64_t n;
            int rc = parse_content_length(h->value, &n);
            if (rc < 0)
                return rc;
            if (req->has_content_length && n != req->content_length)
                return HTTP_ERR_FRAMING; /* two fields that disagree: §6.3 item 5 */
            req->has_content_length = true;
            req->content_length = n;
        } else if (http_view_eq(h->name, "transfer-encoding")) {
            req->has_transfer_encoding = true;
        } else if (http_view_eq(h->name, "host")) {
            hosts++;
        } else if (http_view_eq(h->name, "connection")) {
            /* RFC 9110 §7.6.1: Connection may be sent as several fields; they form one list. */
            conn_close |= http_has_token(h->value, "close");
            conn_keep_alive |= http_has_token(h->value, "keep-alive");
        }
    }

    /* RFC 9112 §6.3 item 3: a request with both Transfer-Encoding and Content-Length is what
     * a smuggling attack looks like (one hop trusts one, the next the other). A server may
     * reject it instead of letting TE win; being a server with no bodies to read, we do. */
    if (req->has_transfer_encoding && req->has_content_length)
        return HTTP_ERR_FRAMING;
    /* RFC 9112 §6.1: HTTP/1.0 has no transfer codings, so a TE field on a 1.0 request means
     * the framing is faulty (and it must be treated so, even with a Content-Length). */
    if (req->has_transfer_encoding && req->minor_version == 0)
        return HTTP_ERR_FRAMING;

    /* RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host field,
     * and to any request with more than one.
     * Simplification: the Host value itself is not checked against RFC 3986's uri-host. */
    if (hosts > 1 || (hosts == 0 && req->minor_version == 1))
        return HTTP_ERR_BAD;

    /* RFC 9112 §9.3: "close" always ends the connection after this response; otherwise 1.1
     * persists by default, and 1.0 only when it asked for "keep-alive". */
    req->keep_alive = !conn_close && (req->minor_version == 1 || conn_keep_alive);
    return 0;
}

/* ---- The parser ------------------------------------------------------------------------- */

/* The full parse, run once the head in[0..head_len) (ending in CRLFCRLF) is complete. It
 * re-checks every CR and LF itself rather than trusting find_head_end(), so a caller passing
 * a wrong last_len can get a wrong answer but never an out-of-bounds read. */
static ssize_t parse_head(const char *in, size_t head_len, struct http_request *req)
{
    const char *p = in, *end = in + head_len;

    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line
     * (some clients send a CRLF after a POST body). We ignore exactly one. */
    if (head_len >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;

    int rc = parse_request_line(&p, end, req);
    if (rc < 0)
        return rc;
    rc = parse_fields(&p, end, req);
    if (rc < 0)
        return rc;
    rc = check_fields(req);
    if (rc < 0)
        return rc;
    return p - in;
}

ssize_t http_parse_request(const char *in, size_t len, size_t last_len, struct http_request *req)
{
    memset(req, 0, sizeof *req);
    if (last_len > len)
        last_len = 0; /* not a prefix of what we saw: rescan everything */

    /* Only bytes past last_len are new, so only they are scanned: O(n) in all for a client
     * that sends a byte at a time. We back up 3, the length of a CRLFCRLF minus one, so the
     * scan is right for any way the four bytes are split across reads. (find_head_end()
     * matches backwards from each LF and so would need only 1, for a CR that ended the last
     * read and whose next byte is now here; 3 costs nothing and survives a rewrite.) Bytes
     * from HTTP_MAX_HEAD on can never belong to an acceptable head, so are not scanned. */
    size_t from = last_len >= 3 ? last_len - 3 : 0;
    size_t limit = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
    ssize_t head_len = find_head_end(in, len, from, limit);
    if (head_len == 0)
        return len >= HTTP_MAX_HEAD ? HTTP_ERR_TOO_LARGE : 0;
    if (head_len > 0)
        head_len = parse_head(in, (size_t)head_len, req);
    if (head_len <= 0)
        memset(req, 0, sizeof *req);
    return head_len;
}

int http_err_status(int err)
{
    switch (err) {
    case HTTP_ERR_BAD:
    case HTTP_ERR_FRAMING:
        return 400;
    case HTTP_ERR_TOO_LARGE:
        return 431; /* RFC 6585 §5 */
    case HTTP_ERR_VERSION:
        return 505; /* RFC 9110 §15.6.6 */
    default:
        return 500; /* not an enum http_err: our bug, not the client's */
    }
}

/* ---- Responses -------------------------------------------------------------------------- */

/* RFC 9110 §15 (and RFC 6585 §4, §5 for 429 and 431). The phrase is for humans only:
 * clients must go by the number (RFC 9112 §4). */
const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 412:
        return "Precondition Failed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* A response is assembled as a list of string pieces, measured, and copied in with a single
 * reservation: so either all of it lands in out, or (on -ENOBUFS / -ENOMEM) none of it does,
 * and the caller can still send a shorter error instead of half a head. */
struct piece {
    const char *p;
    size_t len;
};

/* The most add() calls one response makes is 18 (status line 5, Date, Content-Type and
 * Content-Length 3 each, Connection, extras, blank line, body): 24 leaves room. */
enum { MAX_PIECES = 24 };

struct pieces {
    struct piece v[MAX_PIECES];
    size_t n;
};

static void add(struct pieces *ps, const char *s)
{
    assert(ps->n < MAX_PIECES); /* our own invariant: the count of add() calls is fixed */
    ps->v[ps->n++] = (struct piece){s, strlen(s)};
}

static int append_pieces(struct buf *out, const struct pieces *ps)
{
    size_t total = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->v[i].len > SIZE_MAX - total)
            return -ENOBUFS;
        total += ps->v[i].len;
    }
    if (total > buf_room(out))
        return -ENOBUFS;
    uint8_t *dst = buf_reserve(out, total);
    if (dst == NULL)
        return -ENOMEM; /* under the limit, so realloc failed */
    for (size_t i = 0; i < ps->n; i++) {
        memcpy(dst, ps->v[i].p, ps->v[i].len);
        dst += ps->v[i].len;
    }
    buf_commit(out, total);
    return 0;
}

/* Decimal text of the numbers a head holds, in storage that outlives the pieces. */
struct head_numbers {
    char status[12];
    char length[24]; /* UINT64_MAX has 20 digits */
};

static void add_head(struct pieces *ps, struct head_numbers *num, const struct http_response *r)
{
    assert(r->status >= 100 && r->status <= 999); /* RFC 9110 §15: three digits */
    snprintf(num->status, sizeof num->status, "%d", r->status);
    snprintf(num->length, sizeof num->length, "%" PRIu64, r->content_length);

    add(ps, "HTTP/1.1 "); /* RFC 9112 §4: status-line = version SP code SP [reason] CRLF */
    add(ps, num->status);
    add(ps, " ");
    add(ps, http_reason(r->status));
    add(ps, "\r\nServer: wsrelay\r\n");
    if (r->date != NULL) {
        add(ps, "Date: ");
        add(ps, r->date);
        add(ps, "\r\n");
    }
    if (r->content_type != NULL) {
        add(ps, "Content-Type: ");
        add(ps, r->content_type);
        add(ps, "\r\n");
    }
    /* RFC 9110 §8.6: a server MUST NOT send Content-Length in a 1xx or 204 response. A 304
     * may carry one only if it is the 200's length (§8.6); it never has a body (RFC 9112
     * §6.3), so we leave it out, as nginx does. Every other response gets one, even when it
     * is 0: it is how a keep-alive client finds the end of the body (RFC 9112 §6.3). */
    if (r->status >= 200 && r->status != 204 && r->status != 304) {
        add(ps, "Content-Length: ");
        add(ps, num->length);
        add(ps, "\r\n");
    }
    if (!r->keep_alive)
        add(ps, "Connection: close\r\n"); /* RFC 9112 §9.6: we close after this response */
    if (r->extra_headers != NULL)
        add(ps, r->extra_headers);
    add(ps, "\r\n");
}

int http_write_head(struct buf *out, const struct http_response *r)
{
    struct pieces ps = {.n = 0};
    struct head_numbers num = {.status = ""}; /* add_head() fills it */
    add_head(&ps, &num, r);
    return append_pieces(out, &ps);
}

int http_write_error(struct buf *out, int status, bool keep_alive, bool head_only,
                     const char *extra_headers, const char *date)
{
    /* The body is "<status> <reason>\n": at most 4 + longest reason + 1 bytes. */
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    assert(n > 0 && (size_t)n < sizeof body);

    struct http_response r = {
        .status = status,
        .content_type = "text/plain; charset=utf-8",
        .content_length = (uint64_t)n,
        .keep_alive = keep_alive,
        .extra_headers = extra_headers,
        .date = date,
    };
    struct pieces ps = {.n = 0};
    struct head_numbers num = {.status = ""}; /* add_head() fills it */
    add_head(&ps, &num, &r);
    /* RFC 9110 §9.3.2: a HEAD response is the GET response's head, Content-Length included,
     * without the body. */
    if (!head_only)
        add(&ps, body);
    return append_pieces(out, &ps);
}
