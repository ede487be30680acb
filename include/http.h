/* http.h: an incremental HTTP/1.1 request parser and a response-head writer.
 *
 * Owns: RFC 9112 request syntax (request line §3, header fields §5, message framing §6),
 * the 8 KiB cap on a request head, and the text of the responses wsrelay sends.
 * Does not own: what a request means (routing, files, upgrades: routes.c, www.c, upgrade.c).
 * Pure: no I/O, no clock, no logging; the parser allocates nothing.
 *
 * The parser follows picohttpparser's shape: one function over (bytes, length) that either
 * finds a complete head and fills a struct of views into those bytes, or says "need more".
 * Call it again with the same bytes plus whatever arrived since; pass how many bytes you
 * showed it last time (last_len) so it only scans the new ones for the blank line that ends
 * the head. A byte-at-a-time client therefore costs O(n), not O(n^2).
 */
#ifndef WSRELAY_HTTP_H
#define WSRELAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* A request head (request line + header fields + blank line) larger than this is refused
 * with 431 (RFC 6585 §5). 8 KiB is what nginx and most servers allow by default. */
#define HTTP_MAX_HEAD 8192
/* More header fields than this: 431 too. Browsers send about 15 on a WebSocket upgrade. */
#define HTTP_MAX_HEADERS 64

/* A view into the caller's bytes: not NUL-terminated. */
struct http_view {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_view name;  /* as sent; compare case-insensitively (RFC 9110 §5.1) */
    struct http_view value; /* leading and trailing whitespace removed (RFC 9110 §5.5) */
};

struct http_request {
    struct http_view method;
    struct http_view target; /* the request-target, unchanged (origin-form "/path?q") */
    int minor_version;       /* HTTP/1.<minor_version>; only 0 and 1 are accepted */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;

    /* Framing, derived from the headers above (RFC 9112 §6). */
    bool has_content_length;
    uint64_t content_length;
    bool has_transfer_encoding;
    /* Persistence (RFC 9112 §9.3): HTTP/1.1 keeps the connection unless "Connection: close";
     * HTTP/1.0 closes it unless "Connection: keep-alive". */
    bool keep_alive;
};

/* Errors; each maps to one response status (http_err_status()). */
enum http_err {
    HTTP_ERR_BAD = -1,       /* malformed request line or header field: 400 */
    HTTP_ERR_TOO_LARGE = -2, /* head over HTTP_MAX_HEAD or too many fields: 431 */
    HTTP_ERR_VERSION = -3,   /* not HTTP/1.0 or HTTP/1.1: 505 */
    HTTP_ERR_FRAMING = -4,   /* conflicting or invalid Content-Length / Transfer-Encoding: 400 */
};

/* Parses the request head at in[0..len). last_len is how many of these bytes an earlier call
 * already saw and found incomplete (0 the first time).
 *
 * Returns the size of the head (> 0) and fills *req, whose views point into in[] and live as
 * long as those bytes do; 0 if the head is not complete yet (*req is zeroed); or a negative
 * enum http_err (*req is zeroed). Never reads past in + len. The body, if any, is not part of
 * the returned size: req->content_length and req->has_transfer_encoding describe it. */
ssize_t http_parse_request(const char *in, size_t len, size_t last_len, struct http_request *req);

/* The status to answer an enum http_err with. */
int http_err_status(int err);

/* The reason phrase for a status code ("Not Found"); "Unknown" for codes we never send. */
const char *http_reason(int status);

/* Case-insensitive (ASCII) comparison of two views, and of a view with a C string. */
bool http_views_eq(struct http_view a, struct http_view b);
bool http_view_eq(struct http_view v, const char *s);

/* The first header field named `name` (case-insensitive), or NULL. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

/* How many header fields are named `name`: lets callers refuse duplicates. */
size_t http_count_headers(const struct http_request *req, const char *name);

/* Walks a comma-separated list (RFC 9110 §5.6.1): the next non-empty element from *pos
 * (start at 0), whitespace around it removed, into *elem; false when there is none left.
 * elem is a view into list. */
bool http_list_next(struct http_view list, size_t *pos, struct http_view *elem);

/* True if the comma-separated list in `value` holds `token` (case-insensitive), as for
 * "Connection: keep-alive, Upgrade" (RFC 9110 §5.6.1, §7.6.1). */
bool http_has_token(struct http_view value, const char *token);

/* The same for any item: true if the comma-separated list holds an element equal to item
 * (case-insensitive, whitespace around elements ignored). */
bool http_list_has(struct http_view list, struct http_view item);

/* The same, but the element must equal item byte for byte (a subprotocol name: RFC 6455
 * §4.1 compares them exactly). */
bool http_list_has_exact(struct http_view list, const char *item);

/* A response head. extra_headers, if not NULL, is zero or more complete header lines each
 * ending in "\r\n" (e.g. "Allow: GET, HEAD\r\n"). */
struct http_response {
    int status;
    const char *content_type;  /* NULL: no Content-Type field */
    uint64_t content_length;   /* always sent, except for 1xx, 204 and 304 (RFC 9110 §8.6) */
    bool keep_alive;           /* false: "Connection: close" */
    const char *extra_headers; /* NULL or CRLF-terminated lines */
    const char *date;          /* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") or NULL: the
                                * caller owns the clock (RFC 9110 §6.6.1), this module doesn't */
};

/* Appends the status line and header fields, ending with the blank line, to out: the status
 * line, "Server: wsrelay", Date (if given), Content-Type (if given), Content-Length (not for
 * 1xx, 204 or 304), "Connection: close" when !keep_alive, the extra lines, then CRLF.
 * Returns 0, or -ENOBUFS / -ENOMEM from buf_append (out is then unchanged). */
int http_write_head(struct buf *out, const struct http_response *r);

/* Appends a complete error response: head plus a one-line text/plain body such as
 * "404 Not Found\n" (the body is left out when head_only, as a HEAD request needs, while
 * Content-Length still gives its size, RFC 9110 §9.3.2). Same returns as http_write_head(). */
int http_write_error(struct buf *out, int status, bool keep_alive, bool head_only,
                     const char *extra_headers, const char *date);

#endif
