/* routes.c: what each path does (see routes.h).
 *
 * Chapters: 1. static files and small responses, 2. /metrics, 3. the upgrade and the room,
 * 4. WebSocket events, 5. the request, 6. the table conn_io calls.
 */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bcast.h"
#include "cond.h"
#include "entropy.h"
#include "json.h"
#include "log.h"
#include "rate.h"
#include "target.h"
#include "token.h"
#include "upgrade.h"
#include "www.h"

/* ==== 1. Static files and small responses =============================================== */

/* Exact comparison: methods are case-sensitive (RFC 9110 §9.1), unlike header names. */
static bool method_is(const struct http_request *req, const char *s)
{
    size_t n = strlen(s);
    return req->method.len == n && memcmp(req->method.p, s, n) == 0;
}

/* For a page on another origin listed in --allow-origin (an embedding site importing
 * /cursors.js: a module script is always fetched in CORS mode, HTML §4.12.1), the CORS header
 * that lets it read the response (Fetch §3.2.3), and Vary so that a cache keeps one copy per
 * origin. Same-origin requests need nothing. The origin echoed is one the operator listed,
 * compared byte for byte, so it carries nothing the operator did not write. */
static void cors_headers(const struct routes *r, const struct http_request *req, char *out,
                         size_t out_len)
{
    out[0] = '\0';
    const char *allow = r->cfg->allow_origin;
    const struct http_header *origin = http_find_header(req, "Origin");
    if (allow == NULL || origin == NULL || !upgrade_origin_allowed(req, allow))
        return;
    int n = strcmp(allow, "*") == 0
                ? snprintf(out, out_len, "Access-Control-Allow-Origin: *\r\n")
                : snprintf(out, out_len, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n",
                           (int)origin->value.len, origin->value.p);
    if (n < 0 || (size_t)n >= out_len)
        out[0] = '\0'; /* an origin too long for any real list: no header rather than half */
}

/* The variant of f (open as rel) that req's Accept-Encoding prefers and that is on disk and
 * not stale: f is swapped for it (the original closed) and its coding returned; else f is
 * left alone and COND_IDENTITY returned. Only the codings the client takes are looked for,
 * so a request without Accept-Encoding costs no extra system call. */
static enum cond_coding pick_variant(struct routes *r, struct conn *c,
                                     const struct http_request *req, const char *rel,
                                     struct www_file *f)
{
    enum cond_coding want[2];
    size_t n = cond_codings_wanted(req, want);
    for (size_t i = 0; i < n; i++) {
        struct www_file v;
        int rc = www_open_variant(r->www_fd, rel, cond_coding_suffix(want[i]), f, &v);
        if (rc == 0) {
            close(f->fd);
            *f = v;
            return want[i];
        }
        if (rc == -ESTALE) /* worth knowing when a deploy forgot to rebuild them */
            log_at(LL_DEBUG, "conn=%llu file=%s%s \"variant older than its original: ignored\"",
                   (unsigned long long)c->serial, log_value_str(rel).s,
                   cond_coding_suffix(want[i]));
    }
    return COND_IDENTITY;
}

/* GET or HEAD of the file rel (www_resolve()'s output) under the www root: 200 with the
 * file or its precompressed variant, 304 if the client has it (cond.h), 412 if a
 * precondition failed. */
static void serve_file(struct routes *r, struct conn *c, const struct http_request *req,
                       const char *rel, bool keep_alive, bool head_only)
{
    /* Simplification: open() here, and sendfile() in conn_io, can block the loop on a slow
     * disk. The www files are few and small and stay in the page cache; a server for large
     * or cold files would hand these calls to a thread pool (as libuv does). */
    struct www_file f;
    if (www_open(r->www_fd, rel, &f) < 0) {
        conn_io_http_error(r->io, c, 404, keep_alive, head_only, NULL);
        return;
    }
    bool has_variants = www_is_compressible(rel);
    enum cond_coding coding = has_variants ? pick_variant(r, c, req, rel, &f) : COND_IDENTITY;
    const char *date = conn_io_date(r->io);
    int64_t now = (int64_t)r->io->date_sec;
    struct cond_validators v;
    cond_validators_init(&v, f.mtime_sec, f.mtime_nsec, f.size, coding, now);
    enum cond_result cr = cond_evaluate(req, &v, now);
    if (cr == COND_FAILED) {
        close(f.fd);
        conn_io_http_error(r->io, c, 412, keep_alive, head_only, NULL);
        return;
    }
    bool is_304 = cr == COND_NOT_MODIFIED;

    /* Cache-Control: no-cache on every file: a cache may keep it but must ask us before each
     * use, which costs a 304 of about 200 bytes. Why not max-age for the scripts and styles:
     * the page names them by fixed URLs (/index.js, /cursors.js, which other sites import
     * too, docs/embed.md), not by content-hashed ones, so a browser that kept an old
     * index.js for an hour would run it against a new index.html after a deploy.
     * RFC 9110 §15.4.5: a 304 carries what the 200 would have of ETag, Cache-Control and
     * Vary (and Date, from http.c); Last-Modified, Content-Type and Content-Encoding describe
     * the body it does not have, and with an ETag the cache needs none of them.
     * Vary: Accept-Encoding on every response of a file that may have variants (§12.5.5),
     * whether or not one was sent or exists: a shared cache must not hand the gzip bytes to
     * a client that did not ask for them, nor keep the identity bytes for everyone (the
     * nginx gzip_vary practice; it also stays right when a variant appears later). */
    char cors[400], extra[768];
    cors_headers(r, req, cors, sizeof cors);
    const char *ce = cond_coding_name(coding);
    bool has_lm = !is_304 && v.last_modified[0] != '\0';
    int n = snprintf(extra, sizeof extra, "ETag: %s\r\n%s%s%s%s%s%sCache-Control: no-cache\r\n%s%s",
                     v.etag, has_lm ? "Last-Modified: " : "", has_lm ? v.last_modified : "",
                     has_lm ? "\r\n" : "", ce != NULL && !is_304 ? "Content-Encoding: " : "",
                     ce != NULL && !is_304 ? ce : "", ce != NULL && !is_304 ? "\r\n" : "",
                     has_variants ? "Vary: Accept-Encoding\r\n" : "", cors);
    if (n < 0 || (size_t)n >= sizeof extra) { /* unreachable: cors is at most 400 bytes */
        close(f.fd);
        conn_io_http_error(r->io, c, 500, false, head_only, NULL);
        return;
    }
    struct http_response resp = {
        .status = is_304 ? 304 : 200,
        .content_type = is_304 ? NULL : www_mime(rel),
        .content_length = f.size,
        .keep_alive = keep_alive,
        .extra_headers = extra,
        .date = date,
    };
    if (http_write_head(&c->wbuf, &resp) != 0) {
        close(f.fd);
        conn_close_later(r->io->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    if (is_304 || head_only || f.size == 0)
        close(f.fd);
    else
        conn_io_send_file(r->io, c, f.fd, f.size); /* conn_io closes it when sent */
    /* rel is the decoded path: a peer's bytes, spaces and quotes included. */
    log_at(LL_DEBUG, "conn=%llu status=%d file=%s coding=%s \"file served\"",
           (unsigned long long)c->serial, resp.status, log_value_str(rel).s,
           ce != NULL ? ce : "identity");
    conn_io_response_done(r->io, c, keep_alive);
}

/* A small generated response (/metrics, /healthz, a refusal): head and body straight into
 * wbuf, whole or not at all; extra is more header lines ("" for none). */
static void serve_text_with(struct routes *r, struct conn *c, int status, bool keep_alive,
                            bool head_only, const char *content_type, const void *body,
                            size_t body_len, const char *extra)
{
    char headers[256];
    snprintf(headers, sizeof headers, "Cache-Control: no-store\r\n%s", extra);
    struct http_response resp = {
        .status = status,
        .content_type = content_type,
        .content_length = body_len,
        .keep_alive = keep_alive,
        .extra_headers = headers,
        .date = conn_io_date(r->io),
    };
    size_t mark = buf_size(&c->wbuf);
    if (http_write_head(&c->wbuf, &resp) != 0 ||
        (!head_only && buf_append(&c->wbuf, body, body_len) != 0)) {
        buf_truncate(&c->wbuf, mark);
        conn_close_later(r->io->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    conn_io_response_done(r->io, c, keep_alive);
}

static void serve_text(struct routes *r, struct conn *c, int status, bool keep_alive,
                       bool head_only, const char *content_type, const void *body, size_t body_len)
{
    serve_text_with(r, c, status, keep_alive, head_only, content_type, body, body_len, "");
}

/* A refusal whose body says what was wrong ("400 Bad Request: room name: too long"): a
 * developer typing a URL sees why. why is a static phrase of ours, never a peer's bytes.
 * Like every 4xx but 404 and 405, it closes the connection. */
static void refuse(struct routes *r, struct conn *c, int status, bool head_only, const char *why,
                   const char *extra)
{
    log_at(LL_INFO, "conn=%llu peer=%s status=%d \"%s\"", (unsigned long long)c->serial,
           conn_peer_text(c).s, status, why);
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, http_reason(status), why);
    serve_text_with(r, c, status, false, head_only, "text/plain; charset=utf-8", body,
                    n > 0 && (size_t)n < sizeof body ? (size_t)n : 0, extra);
}

static void bad_request(struct routes *r, struct conn *c, bool head_only, const char *why)
{
    refuse(r, c, 400, head_only, why, "");
}

/* ==== 2. /metrics ======================================================================= */

static void serve_metrics(struct routes *r, struct conn *c, bool keep_alive, bool head_only)
{
    /* The counters say how busy the server is, who is connected and whether the cluster is
     * healthy: served to --metrics-allow only (this machine, by default). The refusal names
     * the flag and leaks nothing; like every 4xx but 404 and 405, it closes. */
    unsigned version = c->peer.family == AF_INET ? 4 : c->peer.family == AF_INET6 ? 6 : 0;
    if (!config_prefixes_match(&r->cfg->metrics_allow, version, c->peer.ip)) {
        static const char body[] =
            "403 Forbidden: metrics are served to the allowed addresses only (see "
            "--metrics-allow)\n";
        log_at(LL_INFO, "conn=%llu peer=%s status=403 \"/metrics: peer not in --metrics-allow\"",
               (unsigned long long)c->serial, conn_peer_text(c).s);
        serve_text(r, c, 403, false, head_only, "text/plain; charset=utf-8", body, sizeof body - 1);
        return;
    }
    const struct rooms *rs = r->rooms;
    struct metrics_gauges g = {
        .connections_open = r->io->conns->nopen,
        .ws_open = r->io->ws_open[CONN_ROUTE_ROOM],
        .echo_open = r->io->ws_open[CONN_ROUTE_ECHO],
        .wbuf_high_water = r->io->conns->wbuf_high_water,
        .rooms_open = rs->nopen,
        .room_clients_max = rooms_largest(rs),
        .room_joins = rs->counters.joins,
        .rooms_created = rs->counters.created,
        .rooms_freed = rs->counters.freed,
        .room_refused_full = rs->counters.refused_full,
        .room_refused_too_many = rs->counters.refused_too_many,
        .room_messages_out = rs->counters.messages_out,
        .room_conflated = rs->counters.conflated,
        .room_relayed = rs->counters.relayed,
        .room_relayed_remote = rs->counters.relayed_remote,
    };
    if (r->cluster != NULL)
        cluster_sync_gauges(r->cluster, &g);
    buf_reset(&r->page);
    if (metrics_write(r->metrics, &g, &r->page) != 0) {
        conn_io_http_error(r->io, c, 500, false, head_only, NULL);
        return;
    }
    serve_text(r, c, 200, keep_alive, head_only, METRICS_CONTENT_TYPE, buf_head(&r->page),
               buf_size(&r->page));
}

/* ==== 3. The upgrade and the room ======================================================= */

/* The --max-byte-rate bucket holds one second's worth, or one message of --max-message
 * bytes if that is more: a lawful message of the largest size can always pass, once. */
static uint64_t byte_burst(const struct config *cfg)
{
    return cfg->max_byte_rate > cfg->max_message ? cfg->max_byte_rate : cfg->max_message;
}

/* With --token-secret-file, a /ws handshake must carry one room token (token.h), in the
 * query ("?token=...") or as a subprotocol "bearer.<token>" (the one header a browser lets a
 * page set; the kubernetes and jupyter pattern). Returns true with *claims filled if it may
 * go on (always, without a secret); else the refusal is sent: 401 or 403 with its
 * WWW-Authenticate challenge (RFC 6750 §3), before any upgrade. The token itself is never
 * logged, nor is the query it may travel in: the log line names the route only. */
static bool token_allows(struct routes *r, struct conn *c, const struct http_request *req,
                         const struct target *t, struct token_claims *claims)
{
    *claims = (struct token_claims){0};
    if (r->token_secret_len == 0)
        return true;
    const char *in_query = NULL;
    size_t in_query_len = 0;
    struct http_view bearer = {NULL, 0};
    size_t n = token_find_in_query(t->query, t->query_len, &in_query, &in_query_len) +
               upgrade_protocol_with_prefix(req, TOKEN_BEARER_PREFIX, &bearer);
    int rc = n == 0 ? TOKEN_ERR_MISSING : n > 1 ? TOKEN_ERR_AMBIGUOUS : TOKEN_OK;
    if (rc == TOKEN_OK) {
        const char *tok = in_query != NULL ? in_query : bearer.p;
        size_t tok_len = in_query != NULL ? in_query_len : bearer.len;
        rc = token_verify(tok, tok_len, r->token_secret, r->token_secret_len, (int64_t)time(NULL),
                          t->room_len > 0 ? t->room : "", t->room_len, claims);
    }
    if (rc == TOKEN_OK)
        return true;
    r->metrics->token_refused++;
    refuse(r, c, token_err_status(rc), false, token_err_reason(rc), token_err_challenge(rc));
    return false;
}

/* A new /ws client: an identity, then into its room (welcome to it, join to the others).
 * Its room token's color, if any, replaces the random one, and its name is stamped beside
 * them. A room that cannot take it is said with a close code the page can show (room.h): the
 * browser's WebSocket API cannot read an HTTP status, so the upgrade succeeds first. */
static void enter_room(struct routes *r, struct conn *c, const struct target *t,
                       const struct token_claims *claims)
{
    char id[PRESENCE_ID_SIZE];
    unsigned color;
    if (entropy_identity(id, &color) < 0) {
        conn_io_ws_fail(r->io, c, WS_CLOSE_INTERNAL, "no randomness for an id");
        return;
    }
    if (claims->has_color)
        color = claims->color;
    int rc = room_enter(r->rooms, c, t->room_len > 0 ? t->room : "", t->room_len, id, color,
                        claims->has_name ? claims->name : NULL);
    if (rc == ROOM_ERR_FULL)
        conn_io_ws_fail(r->io, c, ROOM_CLOSE_FULL, "room is full");
    else if (rc == ROOM_ERR_TOO_MANY)
        conn_io_ws_fail(r->io, c, ROOM_CLOSE_TOO_MANY, "too many rooms");
    else if (rc == ROOM_ERR_NOMEM)
        conn_io_ws_fail(r->io, c, WS_CLOSE_INTERNAL, "out of memory for the room");
    else if (rc == ROOM_ERR_WELCOME && c->phase == CONN_WS)
        conn_io_ws_fail(r->io, c, WS_CLOSE_INTERNAL, "welcome too large");
    if (rc != 0)
        return;
    /* The room as in its path ("/" is the default room): unreserved characters only
     * (target.h), nothing to escape. */
    log_at(LL_INFO, "conn=%llu id=%s color=%u room=/%.*s clients=%u \"joined the room\"",
           (unsigned long long)c->serial, id, color, (int)t->room_len,
           t->room_len > 0 ? t->room : "", rooms_of(r->rooms, c->slot)->nlocal);
}

/* The opening handshake (RFC 6455 §4.2.2): 101, then the rest of rbuf is WebSocket. */
static void upgrade(struct routes *r, struct conn *c, const struct http_request *req,
                    const struct target *t, enum conn_route route)
{
    char accept[UPGRADE_ACCEPT_LEN + 1];
    int rc = upgrade_check(req, accept);
    bool is_head = method_is(req, "HEAD");
    if (rc < 0) {
        int status = upgrade_err_status(rc);
        /* RFC 9110 §15.5.22: a 426 must say what to upgrade to; RFC 6455 §4.4 adds the
         * versions we speak. RFC 9110 §15.5.6: a 405 lists the allowed methods. */
        const char *extra = status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                            : status == 405 ? "Allow: GET\r\n"
                                            : NULL;
        conn_io_http_error(r->io, c, status, false, is_head, extra);
        return;
    }
    if (!upgrade_origin_allowed(req, r->cfg->allow_origin)) {
        log_at(LL_WARN, "conn=%llu peer=%s \"origin refused\"", (unsigned long long)c->serial,
               conn_peer_text(c).s);
        conn_io_http_error(r->io, c, 403, false, false, NULL);
        return;
    }
    /* Draining: this node is about to close every WebSocket, so a new one would only be
     * closed again. 503 and Retry-After (RFC 9110 §15.6.4, §10.2.3): the page's reconnect
     * backs off and, behind a load balancer that has seen /healthz fail, lands elsewhere. */
    if (r->is_draining) {
        conn_io_http_error(r->io, c, 503, false, false, "Retry-After: 1\r\n");
        return;
    }
    struct token_claims claims;
    if (route == CONN_ROUTE_ROOM && !token_allows(r, c, req, t, &claims))
        return;
    /* Each handshake on /ws costs every member a join and a leave, and the newcomer a
     * welcome listing everyone: a client in a connect/close loop gets the server writing to
     * everyone at its loop's speed. Past its address's bucket, 429 (RFC 6585 §4) with a
     * Retry-After (RFC 9110 §10.2.3); the page's reconnect backs off anyway. Checked after
     * every other rule, so only a handshake that would succeed takes a token. */
    if (route == CONN_ROUTE_ROOM && !connrate_take(&r->connrate, &c->peer, r->io->loop->now_ms)) {
        r->metrics->connect_limited++;
        conn_io_http_error(r->io, c, 429, false, false, "Retry-After: 1\r\n");
        return;
    }
    /* RFC 6455 §4.2.2 step 5.4: echo the one subprotocol we picked, or none at all. A room
     * speaks wsrelay.batch to a client that offers it; anything else offered is ignored, and
     * the client gets the seed protocol (a browser accepts a 101 without the field). A
     * "bearer.<token>" entry is never echoed: it carries a credential, not a protocol. */
    bool is_batch = route == CONN_ROUTE_ROOM && upgrade_offers_protocol(req, ROUTES_BATCH_PROTOCOL);
    char extra[192];
    snprintf(extra, sizeof extra,
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s", accept,
             is_batch ? "Sec-WebSocket-Protocol: " ROUTES_BATCH_PROTOCOL "\r\n" : "");
    if (!conn_io_upgrade(r->io, c, route, extra))
        return;
    c->ws.is_batch = is_batch;
    rate_init(&c->ws.rate, r->cfg->max_rate, r->io->loop->now_ms);
    rate_init(&c->ws.byte_rate, byte_burst(r->cfg), r->io->loop->now_ms);
    if (route == CONN_ROUTE_ROOM)
        enter_room(r, c, t, &claims);
}

/* ==== 4. WebSocket events =============================================================== */

/* --max-rate and --max-byte-rate for a /ws event: true if it may go on. Every message and
 * every ping takes a token; without one it is dropped before it costs a JSON parse and a
 * broadcast (or a pong). */
static bool within_rates(struct routes *r, struct conn *c, const struct ws_event *ev)
{
    const struct config *cfg = r->cfg;
    uint64_t now = r->io->loop->now_ms;
    bool is_costly = ev->type == WS_EV_TEXT || ev->type == WS_EV_BINARY || ev->type == WS_EV_PING;
    if (is_costly && !rate_take(&c->ws.rate, cfg->max_rate, now)) {
        r->metrics->rate_limited++;
        log_at(LL_DEBUG, "conn=%llu \"over --max-rate: message dropped\"",
               (unsigned long long)c->serial);
        return false;
    }
    /* What a sender costs every member is its bytes, not its message count (190 messages of
     * 16 KiB a second pass --max-rate, and make the server queue 3 MB/s for every reader).
     * Checked after the message token, so a message over both limits is counted once, as
     * --max-rate's. */
    if (ev->type == WS_EV_TEXT &&
        !rate_take_n(&c->ws.byte_rate, cfg->max_byte_rate, byte_burst(cfg), now, ev->len)) {
        r->metrics->byte_rate_limited++;
        log_at(LL_DEBUG, "conn=%llu len=%zu \"over --max-byte-rate: message dropped\"",
               (unsigned long long)c->serial, ev->len);
        return false;
    }
    return true;
}

/* Queues one frame to c alone, counted. */
static void send_one(struct routes *r, struct conn *c, enum frame_op op, const void *p, size_t len)
{
    if (bcast_one(r->io->conns, c, op, p, len))
        r->metrics->messages_out++;
}

static void on_ws_event(void *ctx, struct conn *c, const struct ws_event *ev)
{
    struct routes *r = ctx;
    if (c->route == CONN_ROUTE_ROOM && !within_rates(r, c, ev))
        return;
    switch (ev->type) {
    case WS_EV_NONE:
        return;
    case WS_EV_PONG:
        /* RFC 6455 §5.5.3: a pong that answers a ping carries that ping's payload; an
         * unsolicited pong is allowed (a unidirectional heartbeat) and needs no answer. Only
         * the answer counts: a peer that never reads our pings could otherwise send blind
         * pongs and outlive --ping-interval while its output piles up. Any other pong
         * (unsolicited, empty, a wrong payload) is ignored. */
        if (c->ws.is_awaiting_pong && ev->len == CONN_PING_LEN &&
            memcmp(ev->data, c->ws.ping_payload, CONN_PING_LEN) == 0)
            c->ws.is_awaiting_pong = false;
        return;
    case WS_EV_PING: /* §5.5.2: answer with the same payload */
        send_one(r, c, FRAME_OP_PONG, ev->data, ev->len);
        return;
    case WS_EV_CLOSE: {
        /* §5.5.1: echo the code (none, if the peer sent none), then close the TCP side. */
        uint8_t body[FRAME_CONTROL_MAX];
        uint16_t code = ev->close_code == WS_CLOSE_NO_STATUS ? 0 : ev->close_code;
        if (bcast_one(r->io->conns, c, FRAME_OP_CLOSE, body, ws_close_payload(body, code, "")))
            conn_io_drain(r->io, c, CONN_END_CLOSED, "close handshake");
        return;
    }
    case WS_EV_TEXT:
    case WS_EV_BINARY:
        break;
    }

    r->metrics->messages_in++;
    if (c->route == CONN_ROUTE_ECHO) {
        send_one(r, c, ev->type == WS_EV_TEXT ? FRAME_OP_TEXT : FRAME_OP_BINARY, ev->data, ev->len);
    } else if (ev->type == WS_EV_BINARY) {
        conn_io_ws_fail(r->io, c, WS_CLOSE_UNSUPPORTED, "binary messages are not supported on /ws");
    } else {
        int rc = room_message(r->rooms, c, ev->data, ev->len);
        if (rc < 0)
            conn_io_ws_fail(r->io, c, json_err_close_code(rc), json_err_reason(rc));
    }
}

/* ==== 5. The request ==================================================================== */

/* One complete request head. conn_io consumes it afterwards. */
static void on_request(void *ctx, struct conn *c, const struct http_request *req)
{
    struct routes *r = ctx;
    bool is_get = method_is(req, "GET");
    bool is_head = method_is(req, "HEAD");
    bool has_body =
        req->has_transfer_encoding || (req->has_content_length && req->content_length > 0);
    /* Simplification: HTTP/1.0 keep-alive (RFC 9112 Appendix C.2.2) needs an explicit
     * "Connection: keep-alive" in every response; we close HTTP/1.0 connections instead. */
    bool keep_alive = req->keep_alive && req->minor_version == 1;
    /* Draining: every response closes its connection, so the clients of a load balancer
     * (and the balancer's own pooled connections) move to the other nodes. */
    keep_alive = keep_alive && !r->is_draining;

    struct target t;
    const char *why;
    if (target_parse(req->target.p, req->target.len, &t, &why) < 0) {
        bad_request(r, c, is_head, why);
        return;
    }
    if (t.route == TARGET_ROOM) {
        upgrade(r, c, req, &t, CONN_ROUTE_ROOM);
        return;
    }
    if (t.route == TARGET_ECHO) {
        upgrade(r, c, req, &t, CONN_ROUTE_ECHO);
        return;
    }
    const struct http_header *up = http_find_header(req, "Upgrade");
    if (up != NULL && http_has_token(up->value, "websocket")) {
        /* A WebSocket handshake for a resource that has no endpoint (RFC 6455 §4.2.2: the
         * server may answer with any suitable HTTP status): 404, not a file. */
        conn_io_http_error(r->io, c, 404, false, is_head, NULL);
        return;
    }
    if (!is_get && !is_head) {
        /* RFC 9110 §15.5.6: 405 must list the allowed methods. Any body is not read, so
         * the connection cannot be reused. */
        conn_io_http_error(r->io, c, 405, keep_alive && !has_body, false, "Allow: GET, HEAD\r\n");
        return;
    }
    if (has_body) {
        /* RFC 9110 §9.3.1: content in a GET has no meaning, and some proxies drop it, others
         * forward it: a classic smuggling shape. Refuse it and close. */
        conn_io_http_error(r->io, c, 400, false, is_head, NULL);
        return;
    }
    switch (t.route) {
    case TARGET_HEALTHZ:
        /* A draining node is alive but wants no new clients: 503 (RFC 9110 §15.6.4) takes
         * it out of a load balancer's rotation, which is the point of draining. */
        if (r->is_draining)
            serve_text(r, c, 503, false, is_head, "text/plain; charset=utf-8", "draining\n", 9);
        else
            serve_text(r, c, 200, keep_alive, is_head, "text/plain; charset=utf-8", "ok\n", 3);
        return;
    case TARGET_METRICS:
        serve_metrics(r, c, keep_alive, is_head);
        return;
    case TARGET_PAGE: /* the same page for every room: it reads its room from its URL */
        serve_file(r, c, req, "index.html", keep_alive, is_head);
        return;
    case TARGET_FILE:
    case TARGET_ROOM:
    case TARGET_ECHO:
        break;
    }
    char rel[WWW_PATH_MAX + 1];
    int rc = www_resolve(req->target.p, req->target.len, rel, sizeof rel);
    if (rc < 0) {
        /* A malformed path (400) ends the connection: whoever sends one is not a browser we
         * want to keep talking to. A missing file (404) is ordinary: keep-alive. */
        bool is_bad = rc == WWW_ERR_BAD;
        conn_io_http_error(r->io, c, is_bad ? 400 : 404, keep_alive && !is_bad, is_head, NULL);
        return;
    }
    serve_file(r, c, req, rel, keep_alive, is_head);
}

/* ==== 6. The table conn_io calls ======================================================== */

static void on_caught_up(void *ctx, struct conn *c)
{
    struct routes *r = ctx;
    room_catch_up(r->rooms, c);
}

static void on_end(void *ctx, struct conn *c)
{
    struct routes *r = ctx;
    const struct room *room = c->route == CONN_ROUTE_ROOM ? rooms_of(r->rooms, c->slot) : NULL;
    if (room == NULL)
        return;
    log_at(LL_INFO, "conn=%llu id=%s room=/%s clients=%u \"left the room\"",
           (unsigned long long)c->serial, r->rooms->presence->peers[c->slot].id, room->name,
           room->nlocal - 1);
    room_leave(r->rooms, c); /* may free the room: room is not used after this */
}

const struct conn_io_ops routes_ops = {
    .on_request = on_request,
    .on_ws_event = on_ws_event,
    .on_caught_up = on_caught_up,
    .on_end = on_end,
};

int routes_init(struct routes *r, const struct config *cfg, struct conn_io *io, struct rooms *rooms,
                struct metrics *metrics, int www_fd)
{
    *r =
        (struct routes){.cfg = cfg, .io = io, .rooms = rooms, .metrics = metrics, .www_fd = www_fd};
    buf_init(&r->page, cfg->max_buffer);
    return connrate_init(&r->connrate, 2 * cfg->max_clients, cfg->max_connect_rate,
                         cfg->max_connect_rate * CONFIG_CONNECT_BURST_S);
}

void routes_free(struct routes *r)
{
    connrate_free(&r->connrate);
    buf_free(&r->page);
}
