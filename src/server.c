/* server.c: wsrelay's edge. Sockets in, codec calls, sockets out (see server.h).
 *
 * Chapters:
 *   1. The server and its helpers (time, ids, logging a connection)
 *   2. Output: queueing, flushing, interest in writability
 *   3. Closing: draining, the reaper, leaving the room
 *   4. HTTP: static files and the upgrade
 *   5. WebSocket: the room (/ws) and the echo (/echo)
 *   6. Input: reading and feeding the parsers
 *   7. Accepting, signals, the tick, the main loop
 *   8. The cluster: other nodes' clients, over Redis (issue 5)
 */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backplane.h"
#include "bcast.h"
#include "buf.h"
#include "cluster.h"
#include "conn.h"
#include "connrate.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "presence.h"
#include "rate.h"
#include "upgrade.h"
#include "ws.h"
#include "www.h"

/* ==== 1. The server and its helpers =================================================== */

enum {
    READ_CHUNK = 64 * 1024,                  /* bytes asked of one read(), into the shared buffer: a
                                              * busy sender's whole backlog in one system call */
    RBUF_LIMIT = READ_CHUNK + HTTP_MAX_HEAD, /* unparsed input kept per connection: a partial
                                              * request head or frame header plus one more read */
    SENDFILE_CHUNK = 256 * 1024,   /* file bytes per wake-up: one big file can't hog the loop */
    HTTP_PIPELINE_MAX = 64 * 1024, /* queued responses before we stop reading requests */
    SOCKET_SNDBUF = 128 * 1024,    /* kernel send buffer per connection (see net_set_sndbuf):
                                    * with wbuf, the bound on what a slow reader can pin */
    ACCEPT_BATCH = 64,             /* connections accepted per wake-up of the listener */
    MAX_EVENTS = 256,              /* events fetched per epoll_wait() */
    HEARTBEAT_MS = 1000,           /* cluster: how often each node says it is alive ... */
    NODE_TIMEOUT_MS = 3000,        /* ... and how long its silence means it is dead */
    SELF_TIMEOUT_MS = 2000,        /* our own heartbeats not back this long: our link is
                                    * dead though open, replace it (see cluster_tick) */
    CLUSTER_TICK_MS = 250,         /* with --redis the tick runs at least this often */
    REMOTE_PER_LOCAL = 8,          /* cluster: remote client places per local slot */
    TICK_MS = 1000,                /* the periodic timer's longest period (tick_interval_ms) */
    SHUTDOWN_MS = 2000,            /* SIGTERM: close frames get this long to leave, then we exit */
    DRAIN_TIMEOUT_MS = 5000,       /* a draining peer that won't take its last bytes */
    SHRINK_KEEP = 64 * 1024,       /* an emptied buffer bigger than this is released */
    LOG_EVERY_MS = 60 * 1000,      /* a warning that could repeat per message: once a minute */
    HTTP_MIN_SEND_RATE = 4 * 1024, /* bytes/s a response must average once the grace of
                                    * --handshake-timeout is over: below, the reader is a
                                    * slow-read attack (a GPRS phone still does 5 KB/s) */
};

struct server {
    const struct config *cfg;
    struct loop loop;
    struct loop_watch listener, signals, tick;
    int listen_fd;
    int www_fd;   /* O_PATH directory: every file is opened beneath it */
    int spare_fd; /* held open so that EMFILE can still be answered (libuv's trick) */
    struct conn_table conns;
    struct presence presence;
    struct connrate connrate; /* --max-connect-rate: a bucket per client address */
    struct buf scratch;       /* one message being built (a rewrite, a welcome, a leave) */
    struct metrics metrics;

    /* The cluster (issue 5): only with --redis. */
    bool has_cluster;
    struct backplane bp;
    char node_id[CLUSTER_NODE_ID_LEN + 1]; /* random: tags our publications */
    struct cluster_nodes nodes;            /* the other nodes, and when we last heard them */
    struct buf cluster_out;                /* one envelope being built */
    uint64_t next_heartbeat_ms;
    uint64_t hello_ms;      /* when we last asked every node for its state */
    uint64_t self_heard_ms; /* when one of our own publications last came back */
    bool is_remote_full_logged, is_nodes_full_logged;      /* log those once, not per message */
    uint64_t remote_big_logged_ms, publish_drop_logged_ms; /* ... and those every LOG_EVERY_MS */
    size_t ws_open[3]; /* WebSocket connections by enum conn_route, for /metrics */
    /* Every read() lands here first and is parsed in place; only what a connection leaves
     * unparsed (a partial head or frame) is copied into its own rbuf. So an idle connection
     * owns no input buffer, where one per connection would cost 64 KiB each. */
    uint8_t rx[READ_CHUNK];
    uint64_t serial; /* last connection serial handed out */
    uint64_t emfile_logged_ms;
    bool is_stopping;
    bool is_accept_paused; /* out of descriptors with no spare: see shed_load() */
    uint64_t stop_deadline_ms;
    time_t date_sec; /* the second `date` was formatted for */
    char date[40];   /* IMF-fixdate for the Date header, cached per second */
};

/* The Date header (RFC 9110 §6.6.1): formatted at most once per second. */
static const char *http_date(struct server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof srv->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_sec = now;
    }
    return srv->date;
}

/* Random bytes from the kernel (getrandom(2)): never rand(), whose ids could be guessed.
 * The pool is initialised long before a server runs, so this does not block. */
static int random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* A UUID version 4 (RFC 9562 §5.4): 122 random bits, the version nibble 4 and the variant
 * bits 10, in the 8-4-4-4-12 hex form. And a hue 0..359 without modulo bias: 65520 is the
 * largest multiple of 360 below 65536, so draws above it are thrown away. */
static int make_identity(char id[PRESENCE_ID_SIZE], unsigned *color)
{
    uint8_t u[16];
    uint16_t h = 0;
    int rc = random_bytes(u, sizeof u);
    do {
        if (rc == 0)
            rc = random_bytes(&h, sizeof h);
    } while (rc == 0 && h >= 65520);
    if (rc < 0)
        return rc;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(id, PRESENCE_ID_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    *color = h % 360u;
    return 0;
}

/* Exact comparison: methods and paths are case-sensitive (RFC 9110 §9.1, §4.2.3). */
static bool view_is(struct http_view v, const char *s)
{
    size_t n = strlen(s);
    return v.len == n && memcmp(v.p, s, n) == 0;
}

/* A connection's peer as text, for one log line: the struct is returned by value, and its
 * array lives until the end of the full expression that called us (C11 §6.2.4), which is
 * exactly the log_at() call. */
struct peer_text {
    char s[NET_ADDR_STR];
};
static struct peer_text peer_text(const struct conn *c)
{
    struct peer_text t = {.s = ""};
    net_addr_format(&c->peer, t.s);
    return t;
}

/* The identity of a /ws client lives in presence, the one place that needs it for long. */
static const struct presence_peer *identity(const struct server *srv, const struct conn *c)
{
    return &srv->presence.peers[c->slot];
}

static const char *route_name(enum conn_route r)
{
    return r == CONN_ROUTE_ROOM ? "/ws" : r == CONN_ROUTE_ECHO ? "/echo" : "http";
}

/* ==== 2. Output ========================================================================= */

/* Bytes of a static file still to send (HTTP connections only: the field shares memory
 * with the WebSocket state). */
static uint64_t file_left(const struct conn *c)
{
    return c->route == CONN_ROUTE_NONE ? c->http.file_left : 0;
}

static bool has_output(const struct conn *c)
{
    return buf_size(&c->wbuf) > 0 || file_left(c) > 0;
}

/* An HTTP connection stops reading requests while a file is streaming (its bytes must come
 * before the next response) or while too many responses are queued (a client pipelining
 * requests without reading the answers gets back-pressure, not unbounded buffering). */
static bool http_is_blocked(const struct conn *c)
{
    size_t mark = c->wbuf.limit / 2 < HTTP_PIPELINE_MAX ? c->wbuf.limit / 2 : HTTP_PIPELINE_MAX;
    return file_left(c) > 0 || buf_size(&c->wbuf) >= mark;
}

/* Sets the epoll interest from the connection's state: read while a parser wants input (or
 * while lingering, to see the peer's FIN), write only while bytes are pending (redis arms
 * the writable event the same way). Level-triggered: leaving IN armed while not reading
 * would spin the loop, so every state that stops reading must come through here. */
static void update_interest(struct server *srv, struct conn *c)
{
    unsigned mask = 0;
    if (c->phase == CONN_WS || (c->phase == CONN_HTTP && !http_is_blocked(c)) ||
        (c->phase == CONN_DRAINING && c->is_lingering))
        mask |= LOOP_IN;
    /* A queued connection is written in the next flush round anyway: arming EPOLLOUT for
     * it would cost two epoll_ctl() calls per message (arm now, disarm after the flush). */
    if (has_output(c) && !c->is_queued)
        mask |= LOOP_OUT;
    if (loop_set(&srv->loop, &c->watch, mask) < 0)
        conn_close_later(&srv->conns, c, CONN_END_ERROR, "epoll_ctl failed");
}

static void process_input(struct server *srv, struct conn *c);
static void pay_owed(struct server *srv, struct conn *c);

/* One write (and, once the buffer is empty, one sendfile) for this connection. */
static void flush_conn(struct server *srv, struct conn *c)
{
    if (c->phase == CONN_CLOSING || c->phase == CONN_FREE)
        return;
    bool was_blocked = c->phase == CONN_HTTP && http_is_blocked(c);

    if (buf_size(&c->wbuf) > 0) {
        /* MSG_NOSIGNAL: a peer that vanished gives EPIPE here, not a SIGPIPE death. */
        ssize_t n = send(c->fd, buf_head(&c->wbuf), buf_size(&c->wbuf), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close_later(&srv->conns, c, CONN_END_PEER_GONE,
                             errno == EPIPE || errno == ECONNRESET ? "peer vanished"
                                                                   : "write error");
            return;
        }
        if (n > 0) {
            buf_consume(&c->wbuf, (size_t)n);
            srv->metrics.bytes_out += (uint64_t)n;
            if (c->route == CONN_ROUTE_NONE)
                c->http.out_sent += (uint64_t)n;
        }
    }
    /* Judged after the write, not when output is queued: a big batch for a fast reader goes
     * straight into its socket; only output the kernel would not take makes a reader slow. */
    c->is_behind = buf_size(&c->wbuf) >= srv->conns.conflate_mark;
    if (c->route == CONN_ROUTE_ROOM && !c->is_behind && conn_owes_any(c))
        pay_owed(srv, c); /* queued now, written on the next writable event */
    if (buf_size(&c->wbuf) == 0 && file_left(c) > 0) {
        struct conn_http *h = &c->http;
        size_t chunk = h->file_left < SENDFILE_CHUNK ? (size_t)h->file_left : SENDFILE_CHUNK;
        off_t off = (off_t)h->file_off;
        ssize_t n = sendfile(c->fd, h->file_fd, &off, chunk);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close_later(&srv->conns, c, CONN_END_ERROR, "sendfile failed");
            return;
        }
        if (n == 0) { /* the file shrank under us: the promised Content-Length is a lie */
            conn_close_later(&srv->conns, c, CONN_END_ERROR, "file truncated while sending");
            return;
        }
        if (n > 0) {
            srv->metrics.bytes_out += (uint64_t)n;
            h->out_sent += (uint64_t)n;
            h->file_off += (uint64_t)n;
            h->file_left -= (uint64_t)n;
            if (h->file_left == 0) {
                close(h->file_fd);
                h->file_fd = -1;
            }
        }
    }

    if (!has_output(c)) {
        buf_shrink(&c->wbuf, SHRINK_KEEP);
        if (c->phase == CONN_HTTP)
            c->since_ms = srv->loop.now_ms; /* keep-alive: the next request's clock starts (the
                                             * tick restarts it once the peer has it all) */
        if (c->phase == CONN_DRAINING && !c->is_lingering) {
            /* Lingering close (RFC 9112 §9.6; RFC 6455 §7.1.1 asks the server to close the
             * TCP connection first): send our FIN now, then read and discard until the
             * peer's. Closing at once while its bytes are still arriving would make our
             * kernel answer them with a reset, which can destroy the very response or close
             * frame we just sent before the peer reads it. */
            shutdown(c->fd, SHUT_WR);
            c->is_lingering = true;
        }
    }
    update_interest(srv, c);
    /* Output drained below the pipelining mark: requests already read may go on. */
    if (was_blocked && !http_is_blocked(c))
        process_input(srv, c);
}

/* Flushes every connection queued since the last wait: one write each (STYLE §3). Those
 * with bytes left are armed for EPOLLOUT and continue when the socket is writable.
 *
 * A flush can run input (an HTTP connection unblocked by its flush parses the requests it
 * had already read), and input can queue output, for this connection or, through a
 * broadcast, for others. So the list can grow while we walk it. Every entry keeps its
 * is_queued flag until the whole pass is over: a connection is listed at most once per pass
 * (the list never outgrows the slot count), and output added to a connection already
 * flushed in this pass is left to EPOLLOUT, armed in the second loop. */
static void flush_writers(struct server *srv)
{
    struct conn_table *t = &srv->conns;
    for (size_t i = 0; i < t->nwriters; i++)
        flush_conn(srv, &t->conns[t->writers[i]]);
    for (size_t i = 0; i < t->nwriters; i++) {
        struct conn *c = &t->conns[t->writers[i]];
        c->is_queued = false;
        if (c->phase != CONN_CLOSING && c->phase != CONN_FREE)
            update_interest(srv, c);
    }
    t->nwriters = 0;
}

static void cluster_publish(struct server *srv, enum cluster_kind kind, const char *sender,
                            unsigned color, const void *json, size_t json_len);

/* ==== 3. Closing ======================================================================== */

/* Takes a /ws client out of the room and tells everyone else. Idempotent: the first call
 * (a close frame, an error, the reaper) announces, later ones do nothing. */
static void leave_room(struct server *srv, struct conn *c)
{
    if (c->room_index == CONN_NOT_IN_ROOM)
        return;
    conn_room_leave(&srv->conns, c);
    buf_reset(&srv->scratch);
    /* When the whole server stops, everyone gets a close frame instead, and the other nodes
     * one "bye": no leave storm. */
    if (!srv->is_stopping && presence_write_leave(&srv->presence, c->slot, &srv->scratch) == 0) {
        srv->metrics.messages_out += bcast_room(&srv->conns, FRAME_OP_TEXT, buf_head(&srv->scratch),
                                                buf_size(&srv->scratch), NULL, BCAST_NO_CONFLATION)
                                         .sent;
        const struct presence_peer *me = identity(srv, c);
        cluster_publish(srv, CLUSTER_LEAVE, me->id, me->color, buf_head(&srv->scratch),
                        buf_size(&srv->scratch));
    }
    log_at(LL_INFO, "conn=%llu id=%s clients=%zu \"left the room\"", (unsigned long long)c->serial,
           identity(srv, c)->id, srv->conns.nroom);
    presence_leave(&srv->presence, c->slot);
}

/* Stops reading, lets the queued bytes (a final response, a close frame) go out, then
 * closes. The reason is logged when the connection is reaped. */
static void drain(struct server *srv, struct conn *c, enum conn_end end, const char *why)
{
    if (c->phase == CONN_CLOSING || c->phase == CONN_DRAINING)
        return;
    leave_room(srv, c);
    c->phase = CONN_DRAINING;
    c->end = end;
    c->close_reason = why;
    c->since_ms = srv->loop.now_ms;
    conn_queue_write(&srv->conns, c);
}

/* Fails a WebSocket connection (RFC 6455 §7.1.7): a close frame with a code and a reason,
 * then the TCP close, which the server starts (§7.1.1) with a lingering close (flush_conn).
 * Data frames the peer sends after this are never parsed (§7.1.7: "MUST NOT ... process
 * further data"). */
static void ws_fail(struct server *srv, struct conn *c, uint16_t code, const char *why)
{
    log_at(code == WS_CLOSE_GOING_AWAY ? LL_INFO : LL_WARN,
           "conn=%llu peer=%s route=%s close=%u \"%s\"", (unsigned long long)c->serial,
           peer_text(c).s, route_name(c->route), code, why);
    if (ws_write_close(&c->wbuf, code, why) != 0) {
        conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for the close frame");
        return;
    }
    drain(srv, c,
          code == WS_CLOSE_GOING_AWAY ? CONN_END_SHUTDOWN
          : code == WS_CLOSE_INTERNAL ? CONN_END_ERROR
                                      : CONN_END_PROTOCOL,
          why);
}

/* Frees every connection marked CLOSING. Runs between event batches only, so no handler
 * ever holds a pointer to a connection that disappears under it. Leaving the room
 * broadcasts a leave, which may mark more slow readers: the loop takes them too. */
static void reap(struct server *srv)
{
    struct conn_table *t = &srv->conns;
    while (t->nclosing > 0) {
        struct conn *c = &t->conns[t->closing[--t->nclosing]];
        leave_room(srv, c);
        log_at(LL_INFO, "conn=%llu peer=%s route=%s \"closed: %s\"", (unsigned long long)c->serial,
               peer_text(c).s, route_name(c->route),
               c->close_reason != NULL ? c->close_reason : "done");
        srv->metrics.disconnects[c->end]++;
        if (c->route != CONN_ROUTE_NONE)
            srv->ws_open[c->route]--;
        loop_del(&srv->loop, &c->watch);
        conn_release(t, c);
    }
}

/* ==== 4. HTTP =========================================================================== */

/* Queues an error response. Without keep-alive the connection drains and closes. */
static void http_error(struct server *srv, struct conn *c, int status, bool keep_alive,
                       bool head_only, const char *extra)
{
    log_at(LL_INFO, "conn=%llu peer=%s status=%d \"%s\"", (unsigned long long)c->serial,
           peer_text(c).s, status, http_reason(status));
    if (http_write_error(&c->wbuf, status, keep_alive, head_only, extra, http_date(srv)) != 0) {
        conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    conn_queue_write(&srv->conns, c);
    if (!keep_alive)
        drain(srv, c, CONN_END_HTTP, "response sent, not keep-alive");
}

/* GET or HEAD of a file under the www root. */
static void serve_file(struct server *srv, struct conn *c, const struct http_request *req,
                       bool keep_alive, bool head_only)
{
    char rel[WWW_PATH_MAX + 1];
    int rc = www_resolve(req->target.p, req->target.len, rel, sizeof rel);
    if (rc < 0) {
        /* A malformed path (400) ends the connection: whoever sends one is not a browser
         * we want to keep talking to. A missing file (404) is ordinary: keep-alive. */
        bool is_bad = rc == WWW_ERR_BAD;
        http_error(srv, c, is_bad ? 400 : 404, keep_alive && !is_bad, head_only, NULL);
        return;
    }
    /* Simplification: open() here, and sendfile() in flush_conn(), can block the loop on a
     * slow disk. The www files are few and small and stay in the page cache; a server for
     * large or cold files would hand these calls to a thread pool (as libuv does). */
    struct www_file f;
    if (www_open(srv->www_fd, rel, &f) < 0) {
        http_error(srv, c, 404, keep_alive, head_only, NULL);
        return;
    }
    struct http_response r = {
        .status = 200,
        .content_type = www_mime(rel),
        .content_length = f.size,
        .keep_alive = keep_alive,
        /* The page is tiny and changes with every deploy: always revalidate. */
        .extra_headers = "Cache-Control: no-cache\r\n",
        .date = http_date(srv),
    };
    if (http_write_head(&c->wbuf, &r) != 0) {
        close(f.fd);
        conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    if (head_only || f.size == 0) {
        close(f.fd);
    } else {
        c->http.file_fd = f.fd;
        c->http.file_off = 0;
        c->http.file_left = f.size;
    }
    /* rel is the decoded path: a peer's bytes, spaces and quotes included. */
    log_at(LL_DEBUG, "conn=%llu status=200 file=%s \"file served\"", (unsigned long long)c->serial,
           log_value_str(rel).s);
    conn_queue_write(&srv->conns, c);
    if (!keep_alive)
        drain(srv, c, CONN_END_HTTP, "response sent, not keep-alive");
}

static void enter_room(struct server *srv, struct conn *c);
static uint64_t byte_burst(const struct config *cfg);

/* The opening handshake (RFC 6455 §4.2.2): 101, then the rest of rbuf is WebSocket. */
static void upgrade(struct server *srv, struct conn *c, const struct http_request *req,
                    enum conn_route route)
{
    char accept[UPGRADE_ACCEPT_LEN + 1];
    int rc = upgrade_check(req, accept);
    if (rc < 0) {
        int status = upgrade_err_status(rc);
        /* RFC 9110 §15.5.22: a 426 must say what to upgrade to; RFC 6455 §4.4 adds the
         * versions we speak. RFC 9110 §15.5.6: a 405 lists the allowed methods. */
        const char *extra = status == 426   ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                            : status == 405 ? "Allow: GET\r\n"
                                            : NULL;
        http_error(srv, c, status, false, view_is(req->method, "HEAD"), extra);
        return;
    }
    if (!upgrade_origin_allowed(req, srv->cfg->allow_origin)) {
        log_at(LL_WARN, "conn=%llu peer=%s \"origin refused\"", (unsigned long long)c->serial,
               peer_text(c).s);
        http_error(srv, c, 403, false, false, NULL);
        return;
    }
    /* Each handshake on /ws costs every member a join and a leave, and the newcomer a
     * welcome listing everyone: a client in a connect/close loop gets the server writing to
     * everyone at its loop's speed. Past its address's bucket, 429 (RFC 6585 §4) with a
     * Retry-After (RFC 9110 §10.2.3); the page's reconnect backs off anyway. Checked after
     * every other rule, so only a handshake that would succeed takes a token. */
    if (route == CONN_ROUTE_ROOM && !connrate_take(&srv->connrate, &c->peer, srv->loop.now_ms)) {
        srv->metrics.connect_limited++;
        http_error(srv, c, 429, false, false, "Retry-After: 1\r\n");
        return;
    }
    char extra[128];
    snprintf(extra, sizeof extra,
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n", accept);
    struct http_response r = {
        .status = 101, .keep_alive = true, .extra_headers = extra, .date = http_date(srv)};
    if (http_write_head(&c->wbuf, &r) != 0) {
        conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    conn_queue_write(&srv->conns, c);
    c->phase = CONN_WS;
    c->route = route;
    c->since_ms = srv->loop.now_ms;
    /* From here on the connection's per-phase memory is WebSocket state (conn.h's union). */
    assert(file_left(c) == 0); /* never upgraded while a file is streaming */
    c->ws = (struct conn_ws){.ping_sent_ms = srv->loop.now_ms};
    ws_init(&c->ws.session, srv->cfg->max_message);
    rate_init(&c->ws.rate, srv->cfg->max_rate, srv->loop.now_ms);
    rate_init(&c->ws.byte_rate, byte_burst(srv->cfg), srv->loop.now_ms);
    srv->ws_open[route]++;
    log_at(LL_INFO, "conn=%llu peer=%s route=%s \"websocket open\"", (unsigned long long)c->serial,
           peer_text(c).s, route_name(route));
    if (route == CONN_ROUTE_ROOM)
        enter_room(srv, c);
}

/* One complete request head. The caller consumes it afterwards. */
static void serve_text(struct server *srv, struct conn *c, bool keep_alive, bool head_only,
                       const char *content_type, const void *body, size_t body_len);

static void handle_request(struct server *srv, struct conn *c, const struct http_request *req)
{
    srv->metrics.http_requests++;
    /* The path, without the query, decides the route. */
    size_t path_len = 0;
    while (path_len < req->target.len && req->target.p[path_len] != '?')
        path_len++;
    struct http_view path = {req->target.p, path_len};
    bool is_get = view_is(req->method, "GET");
    bool is_head = view_is(req->method, "HEAD");
    bool has_body =
        req->has_transfer_encoding || (req->has_content_length && req->content_length > 0);
    /* Simplification: HTTP/1.0 keep-alive (RFC 9112 Appendix C.2.2) needs an explicit
     * "Connection: keep-alive" in every response; we close HTTP/1.0 connections instead. */
    bool keep_alive = req->keep_alive && req->minor_version == 1;

    if (req->target.len == 0 || req->target.p[0] != '/') {
        /* Only origin-form ("/path?query", RFC 9112 §3.2.1). §3.2.2 asks servers to accept
         * absolute-form too, but we are no proxy, and a target naming another host than
         * Host is a classic way to confuse caches and proxies in front of us: refuse it. */
        http_error(srv, c, 400, false, is_head, NULL);
        return;
    }
    if (view_is(path, "/ws")) {
        upgrade(srv, c, req, CONN_ROUTE_ROOM);
        return;
    }
    if (view_is(path, "/echo")) {
        upgrade(srv, c, req, CONN_ROUTE_ECHO);
        return;
    }
    const struct http_header *up = http_find_header(req, "Upgrade");
    if (up != NULL && http_has_token(up->value, "websocket")) {
        /* A WebSocket handshake for a resource that has no endpoint (RFC 6455 §4.2.2: the
         * server may answer with any suitable HTTP status): 404, not a file. */
        http_error(srv, c, 404, false, is_head, NULL);
        return;
    }
    if (!is_get && !is_head) {
        /* RFC 9110 §15.5.6: 405 must list the allowed methods. Any body is not read, so
         * the connection cannot be reused. */
        http_error(srv, c, 405, keep_alive && !has_body, false, "Allow: GET, HEAD\r\n");
        return;
    }
    if (has_body) {
        /* RFC 9110 §9.3.1: content in a GET has no meaning, and some proxies drop it, others
         * forward it: a classic smuggling shape. Refuse it and close. */
        http_error(srv, c, 400, false, is_head, NULL);
        return;
    }
    if (view_is(path, "/healthz")) {
        serve_text(srv, c, keep_alive, is_head, "text/plain; charset=utf-8", "ok\n", 3);
        return;
    }
    if (view_is(path, "/metrics")) {
        /* The counters say how busy the server is, who is connected and whether the cluster
         * is healthy: served to --metrics-allow only (this machine, by default). The refusal
         * names the flag and leaks nothing; like every 4xx but 404 and 405, it closes. */
        unsigned version = c->peer.family == AF_INET ? 4 : c->peer.family == AF_INET6 ? 6 : 0;
        if (!config_prefixes_match(&srv->cfg->metrics_allow, version, c->peer.ip)) {
            static const char body[] =
                "403 Forbidden: metrics are served to the allowed addresses only (see "
                "--metrics-allow)\n";
            log_at(LL_INFO,
                   "conn=%llu peer=%s status=403 \"/metrics: peer not in --metrics-allow\"",
                   (unsigned long long)c->serial, peer_text(c).s);
            struct http_response r = {.status = 403,
                                      .content_type = "text/plain; charset=utf-8",
                                      .content_length = sizeof body - 1,
                                      .date = http_date(srv)};
            if (http_write_head(&c->wbuf, &r) != 0 ||
                (!is_head && buf_append(&c->wbuf, body, sizeof body - 1) != 0)) {
                conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for a response");
                return;
            }
            drain(srv, c, CONN_END_HTTP, "response sent, not keep-alive");
            return;
        }
        struct metrics_gauges g = {
            .connections_open = srv->conns.nopen,
            .ws_open = srv->ws_open[CONN_ROUTE_ROOM],
            .echo_open = srv->ws_open[CONN_ROUTE_ECHO],
            .wbuf_high_water = srv->conns.wbuf_high_water,
            .is_clustered = srv->has_cluster,
        };
        if (srv->has_cluster) {
            g.redis_up = backplane_is_up(&srv->bp);
            for (int i = 0; i < CLUSTER_MAX_NODES; i++)
                g.cluster_nodes += srv->nodes.n[i].id[0] != '\0';
            for (size_t i = srv->presence.local_slots; i < srv->presence.max_slots; i++)
                g.remote_clients += srv->presence.peers[i].is_present;
            g.redis_published = srv->bp.published;
            g.redis_dropped = srv->bp.dropped;
            g.redis_received = srv->bp.received;
        }
        buf_reset(&srv->scratch);
        if (metrics_write(&srv->metrics, &g, &srv->scratch) != 0) {
            http_error(srv, c, 500, false, is_head, NULL);
            return;
        }
        serve_text(srv, c, keep_alive, is_head, METRICS_CONTENT_TYPE, buf_head(&srv->scratch),
                   buf_size(&srv->scratch));
        return;
    }
    serve_file(srv, c, req, keep_alive, is_head);
}

/* A small generated response (/metrics, /healthz): head and body straight into wbuf. */
static void serve_text(struct server *srv, struct conn *c, bool keep_alive, bool head_only,
                       const char *content_type, const void *body, size_t body_len)
{
    struct http_response r = {
        .status = 200,
        .content_type = content_type,
        .content_length = body_len,
        .keep_alive = keep_alive,
        .extra_headers = "Cache-Control: no-store\r\n",
        .date = http_date(srv),
    };
    size_t mark = buf_size(&c->wbuf);
    if (http_write_head(&c->wbuf, &r) != 0 ||
        (!head_only && buf_append(&c->wbuf, body, body_len) != 0)) {
        buf_truncate(&c->wbuf, mark);
        conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    conn_queue_write(&srv->conns, c);
    if (!keep_alive)
        drain(srv, c, CONN_END_HTTP, "response sent, not keep-alive");
}

/* ==== 5. WebSocket ====================================================================== */

/* A new /ws client: identity, welcome (to it), join (to the others), then into the room. */
static void enter_room(struct server *srv, struct conn *c)
{
    char id[PRESENCE_ID_SIZE];
    unsigned color;
    if (make_identity(id, &color) < 0) {
        ws_fail(srv, c, WS_CLOSE_INTERNAL, "no randomness for an id");
        return;
    }
    presence_join(&srv->presence, c->slot, id, color);

    buf_reset(&srv->scratch);
    if (presence_write_welcome(&srv->presence, c->slot, &srv->scratch) != 0) {
        presence_leave(&srv->presence, c->slot);
        ws_fail(srv, c, WS_CLOSE_INTERNAL, "welcome too large");
        return;
    }
    if (!bcast_one(&srv->conns, c, FRAME_OP_TEXT, buf_head(&srv->scratch),
                   buf_size(&srv->scratch))) {
        presence_leave(&srv->presence, c->slot);
        return; /* marked closing: the welcome alone passes --max-buffer */
    }
    buf_reset(&srv->scratch);
    if (presence_write_join(&srv->presence, c->slot, &srv->scratch) == 0)
        srv->metrics.messages_out += bcast_room(&srv->conns, FRAME_OP_TEXT, buf_head(&srv->scratch),
                                                buf_size(&srv->scratch), c, BCAST_NO_CONFLATION)
                                         .sent;
    cluster_publish(srv, CLUSTER_JOIN, id, color, buf_head(&srv->scratch), buf_size(&srv->scratch));
    conn_room_join(&srv->conns, c);
    log_at(LL_INFO, "conn=%llu id=%s color=%u clients=%zu \"joined the room\"",
           (unsigned long long)c->serial, id, color, srv->conns.nroom);
}

/* A text message on /ws: rewrite it, relay it to everyone (the sender included), remember
 * it for the next newcomer's welcome. */
static void on_room_text(struct server *srv, struct conn *c, const uint8_t *p, size_t len)
{
    buf_reset(&srv->scratch);
    const struct presence_peer *me = identity(srv, c);
    int rc = json_rewrite(p, len, me->id, me->color, &srv->scratch);
    if (rc < 0) {
        ws_fail(srv, c, json_err_close_code(rc), json_err_reason(rc));
        return;
    }
    /* Presence first: it is both the next newcomer's snapshot and the state a client that
     * fell behind is owed (conflation), whatever its size: a reader that keeps up with the
     * room's cursors is never dropped because one sender's messages are big. */
    const uint8_t *msg = buf_head(&srv->scratch);
    size_t msg_len = buf_size(&srv->scratch);
    int kept = presence_update(&srv->presence, c->slot, msg, msg_len);
    if (kept == -ENOMEM)
        log_at(LL_WARN, "conn=%llu \"presence: out of memory\"", (unsigned long long)c->serial);
    /* Not kept: a reader that is behind skips this one update (there is nothing to owe it),
     * and is not dropped for it. */
    uint32_t sender = kept == 0 ? c->slot : c->slot | BCAST_UNKEPT;
    struct bcast_result r = bcast_room(&srv->conns, FRAME_OP_TEXT, msg, msg_len, NULL, sender);
    srv->metrics.messages_out += r.sent;
    srv->metrics.conflated += r.conflated;
    cluster_publish(srv, CLUSTER_MSG, me->id, me->color, msg, msg_len);
}

/* A client that fell behind (see bcast_room) has caught up below the conflation mark: send
 * it the latest state of every sender it is owed, from presence, until it is behind again.
 * A sender that has left since is skipped (its leave was queued, never conflated); a slot
 * now held by a newcomer yields the newcomer's state, which is exactly what is owed. */
static void pay_owed(struct server *srv, struct conn *c)
{
    while (buf_size(&c->wbuf) < srv->conns.conflate_mark) {
        long slot = conn_take_owed(&srv->conns, c);
        if (slot < 0)
            return;
        const struct presence_peer *peer = &srv->presence.peers[slot];
        if (!peer->is_present || buf_size(&peer->last) == 0)
            continue;
        if (buf_size(&c->wbuf) + FRAME_HDR_MAX + buf_size(&peer->last) > c->wbuf.limit) {
            conn_owe(&srv->conns, c, (uint32_t)slot); /* its own debt must not drop it */
            return;
        }
        if (!bcast_one(&srv->conns, c, FRAME_OP_TEXT, buf_head(&peer->last), buf_size(&peer->last)))
            return; /* over --max-buffer: marked closing */
        srv->metrics.messages_out++;
    }
}

/* The --max-byte-rate bucket holds one second's worth, or one message of --max-message
 * bytes if that is more: a lawful message of the largest size can always pass, once. */
static uint64_t byte_burst(const struct config *cfg)
{
    return cfg->max_byte_rate > cfg->max_message ? cfg->max_byte_rate : cfg->max_message;
}

/* One event from ws_feed(). */
static void on_ws_event(struct server *srv, struct conn *c, const struct ws_event *ev)
{
    /* --max-rate: on /ws every message and every ping takes a token; without one it is
     * dropped before it costs a JSON parse and a broadcast (or a pong). */
    bool is_costly = ev->type == WS_EV_TEXT || ev->type == WS_EV_BINARY || ev->type == WS_EV_PING;
    if (is_costly && c->route == CONN_ROUTE_ROOM &&
        !rate_take(&c->ws.rate, srv->cfg->max_rate, srv->loop.now_ms)) {
        srv->metrics.rate_limited++;
        log_at(LL_DEBUG, "conn=%llu \"over --max-rate: message dropped\"",
               (unsigned long long)c->serial);
        return;
    }
    /* --max-byte-rate: what a sender costs every member is its bytes, not its message count
     * (190 messages of 16 KiB a second pass --max-rate, and make the server queue 3 MB/s for
     * every reader). Checked after the message token, so a message over both limits is
     * counted once, as --max-rate's. */
    if (ev->type == WS_EV_TEXT && c->route == CONN_ROUTE_ROOM &&
        !rate_take_n(&c->ws.byte_rate, srv->cfg->max_byte_rate, byte_burst(srv->cfg),
                     srv->loop.now_ms, ev->len)) {
        srv->metrics.byte_rate_limited++;
        log_at(LL_DEBUG, "conn=%llu len=%zu \"over --max-byte-rate: message dropped\"",
               (unsigned long long)c->serial, ev->len);
        return;
    }

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
        if (bcast_one(&srv->conns, c, FRAME_OP_PONG, ev->data, ev->len))
            srv->metrics.messages_out++;
        return;
    case WS_EV_CLOSE: {
        /* §5.5.1: echo the code (none, if the peer sent none), then close the TCP side. */
        uint16_t code = ev->close_code == WS_CLOSE_NO_STATUS ? 0 : ev->close_code;
        if (ws_write_close(&c->wbuf, code, "") != 0) {
            conn_close_later(&srv->conns, c, CONN_END_SLOW_READER, "no room for the close frame");
            return;
        }
        drain(srv, c, CONN_END_CLOSED, "close handshake");
        return;
    }
    case WS_EV_TEXT:
    case WS_EV_BINARY:
        break;
    }

    srv->metrics.messages_in++;
    if (c->route == CONN_ROUTE_ECHO) {
        if (bcast_one(&srv->conns, c, ev->type == WS_EV_TEXT ? FRAME_OP_TEXT : FRAME_OP_BINARY,
                      ev->data, ev->len))
            srv->metrics.messages_out++;
    } else if (ev->type == WS_EV_BINARY) {
        ws_fail(srv, c, WS_CLOSE_UNSUPPORTED, "binary messages are not supported on /ws");
    } else {
        on_room_text(srv, c, ev->data, ev->len);
    }
}

/* ==== 6. Input ========================================================================== */

/* An HTTP connection's responses start waiting for their reader now (see check_http_output).
 * What the kernel still holds of earlier ones is the base: the peer acknowledging it counts. */
static void start_output_clock(struct conn *c, uint64_t now_ms)
{
    long unacked = net_unacked(c->fd);
    c->http.out_since_ms = now_ms;
    c->http.acked_ms = now_ms;
    c->http.out_sent = 0;
    c->http.out_acked = 0;
    c->http.unacked_base = unacked > 0 ? (uint64_t)unacked : 0;
}

/* After a request: its response starts a new period of waiting for the reader if nothing of
 * ours was pending before it (a keep-alive client's next request: one SIOCOUTQ for the
 * base), or joins the period already running (pipelined requests). */
static void note_http_output(struct server *srv, struct conn *c, bool was_idle)
{
    bool is_http =
        c->route == CONN_ROUTE_NONE && (c->phase == CONN_HTTP || c->phase == CONN_DRAINING);
    if (is_http && has_output(c) && (was_idle || c->http.out_since_ms == 0))
        start_output_clock(c, srv->loop.now_ms);
}

/* Runs the parser of the connection's phase over in[0..len) until it needs more bytes, the
 * connection stops reading, or it is closed. Returns how many bytes it consumed; the caller
 * keeps the rest for the next call. in is the shared read buffer or the connection's rbuf;
 * either way, views into it (a request's fields, an event's payload) die when we return. */
static size_t feed(struct server *srv, struct conn *c, uint8_t *in, size_t len)
{
    size_t used = 0;
    while (used < len) {
        uint8_t *p = in + used;
        size_t n_left = len - used;
        if (c->phase == CONN_HTTP) {
            if (http_is_blocked(c))
                break; /* resumed by flush_conn() once the output drains */
            struct http_request req;
            ssize_t n = http_parse_request((const char *)p, n_left, c->http.seen, &req);
            if (n == 0) {
                c->http.seen = (uint32_t)n_left; /* < RBUF_LIMIT */
                break;
            }
            bool was_idle = !has_output(c);
            if (n < 0) {
                http_error(srv, c, http_err_status((int)n), false, false, NULL);
                note_http_output(srv, c, was_idle);
                break;
            }
            c->http.seen = 0;
            handle_request(srv, c, &req); /* may turn c into a WebSocket: http is gone then */
            used += (size_t)n;
            note_http_output(srv, c, was_idle);
        } else if (c->phase == CONN_WS) {
            struct ws_event ev;
            ssize_t n = ws_feed(&c->ws.session, p, n_left, &ev);
            if (n == 0)
                break;
            if (n < 0) {
                ws_fail(srv, c, ws_err_close_code((int)n), ws_err_reason((int)n));
                break;
            }
            on_ws_event(srv, c, &ev); /* ev.data may point into in: use it now */
            used += (size_t)n;
        } else {
            used = len; /* draining or closing: input is ignored */
        }
    }
    return used;
}

/* Parses what waits in the connection's own rbuf: after a read that found leftovers there,
 * and when an HTTP connection's output drained enough to take its next pipelined request. */
static void process_input(struct server *srv, struct conn *c)
{
    buf_consume(&c->rbuf, feed(srv, c, buf_head(&c->rbuf), buf_size(&c->rbuf)));
    if (c->phase == CONN_HTTP || c->phase == CONN_WS)
        update_interest(srv, c);
}

/* The socket is readable (or reported an error, which read() will reveal). One read()
 * per wake-up: level-triggered epoll calls again if more is waiting, and every other
 * connection gets its turn in between.
 *
 * The usual case: rbuf is empty, so read into the shared buffer, parse there, and copy into
 * rbuf only the tail the parser could not use yet. With leftovers already in rbuf, read
 * behind them instead (STYLE §3's reserve-then-commit), so the bytes stay contiguous. */
static void on_readable(struct server *srv, struct conn *c)
{
    bool has_leftovers = buf_size(&c->rbuf) > 0;
    uint8_t *dst = has_leftovers ? buf_reserve(&c->rbuf, READ_CHUNK) : srv->rx;
    if (dst == NULL) {
        conn_close_later(&srv->conns, c, CONN_END_PROTOCOL, "input over limit");
        return;
    }
    ssize_t n = read(c->fd, dst, READ_CHUNK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        const char *why =
            n == 0 ? (c->phase == CONN_WS ? "peer closed without a close frame" : "peer closed")
            : errno == ECONNRESET ? "connection reset"
                                  : "read error";
        conn_close_later(&srv->conns, c,
                         n == 0 && c->phase == CONN_HTTP ? CONN_END_HTTP : CONN_END_PEER_GONE, why);
        return;
    }
    srv->metrics.bytes_in += (uint64_t)n;
    if (has_leftovers) {
        buf_commit(&c->rbuf, (size_t)n);
        process_input(srv, c);
        return;
    }
    size_t used = feed(srv, c, srv->rx, (size_t)n);
    if (used < (size_t)n && buf_append(&c->rbuf, srv->rx + used, (size_t)n - used) != 0)
        conn_close_later(&srv->conns, c, CONN_END_PROTOCOL, "input over limit");
    if (c->phase == CONN_HTTP || c->phase == CONN_WS)
        update_interest(srv, c);
}

/* Lingering (see flush_conn): whatever the peer still sends is read and thrown away; its FIN
 * (or an error) ends the connection with the reason it was draining for. */
static void linger_read(struct server *srv, struct conn *c)
{
    uint8_t sink[4096];
    ssize_t n = read(c->fd, sink, sizeof sink);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        srv->metrics.bytes_in += (uint64_t)n;
        return;
    }
    conn_close_later(&srv->conns, c, c->end, c->close_reason);
}

static void on_conn_event(struct loop_watch *w, uint32_t events)
{
    struct server *srv = w->ctx;
    struct conn *c = conn_of_watch(w);
    if (c->phase == CONN_CLOSING)
        return;
    if (events & LOOP_OUT)
        flush_conn(srv, c);
    if (c->phase == CONN_CLOSING)
        return;
    if (events & (LOOP_IN | LOOP_ERR)) {
        if (c->phase == CONN_HTTP || c->phase == CONN_WS)
            on_readable(srv, c);
        else if (c->is_lingering)
            linger_read(srv, c);
        else if (events & LOOP_ERR) /* draining with input disarmed: the peer is gone */
            conn_close_later(&srv->conns, c, CONN_END_PEER_GONE, "connection reset while draining");
    }
}

/* ==== 7. Accepting, signals, the tick, the main loop ==================================== */

/* Every slot is taken: say so (RFC 9110 §15.6.4) and close. A best-effort, non-blocking
 * send of a few bytes into a fresh socket's empty buffer: it fits. */
static void refuse_full(struct server *srv, int fd, const struct net_addr *peer)
{
    char text[NET_ADDR_STR];
    net_addr_format(peer, text);
    struct buf b;
    buf_init(&b, 512);
    if (http_write_error(&b, 503, false, false, NULL, http_date(srv)) == 0) {
        ssize_t w = send(fd, buf_head(&b), buf_size(&b), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    buf_free(&b);
    close(fd);
    log_at(LL_WARN, "peer=%s max_clients=%zu \"refused: every slot is taken\"", text,
           srv->cfg->max_clients);
}

/* Out of descriptors (EMFILE): accept() fails while the connection waits, so level-triggered
 * epoll would report it again at once, for ever. Close the spare descriptor, accept and
 * close the connection (the peer sees a reset rather than a hang), then take the spare back. */
static void shed_load(struct server *srv)
{
    if (srv->spare_fd >= 0) {
        close(srv->spare_fd);
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd >= 0)
            close(fd);
        srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    } else {
        /* No spare to sacrifice: stop listening until the next tick rather than spin on an
         * accept() that keeps failing (libuv does the same). */
        loop_set(&srv->loop, &srv->listener, 0);
        srv->is_accept_paused = true;
    }
    if (srv->loop.now_ms - srv->emfile_logged_ms >= 1000) { /* once a second, not per attempt */
        srv->emfile_logged_ms = srv->loop.now_ms;
        log_at(LL_ERROR, "\"out of file descriptors: shedding connections\"");
    }
}

static void on_accept(struct loop_watch *w, uint32_t events)
{
    struct server *srv = w->ctx;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct net_addr peer;
        int fd = net_accept(srv->listen_fd, &peer);
        if (fd == -EAGAIN || fd == -EINTR || fd == -ECONNABORTED)
            return;
        if (fd == -EMFILE || fd == -ENFILE) {
            shed_load(srv);
            return;
        }
        if (fd < 0) {
            log_at(LL_ERROR, "errno=%d \"accept failed: %s\"", -fd, strerror(-fd));
            return;
        }
        struct conn *c = conn_open(&srv->conns, fd, &peer, ++srv->serial, srv->loop.now_ms);
        srv->metrics.connections_total++;
        if (c == NULL) {
            srv->metrics.refused_full++;
            refuse_full(srv, fd, &peer);
            continue;
        }
        net_set_nodelay(fd);
        net_set_sndbuf(fd, SOCKET_SNDBUF);
        if (loop_add(&srv->loop, &c->watch, fd, LOOP_IN, on_conn_event, srv) < 0) {
            conn_release(&srv->conns, c);
            continue;
        }
        log_at(LL_INFO, "conn=%llu peer=%s open=%zu \"connected\"", (unsigned long long)c->serial,
               peer_text(c).s, srv->conns.nopen);
    }
}

/* SIGINT or SIGTERM: stop accepting, send every WebSocket client close 1001 ("going away",
 * RFC 6455 §7.4.1), let HTTP responses in flight finish, and give it all SHUTDOWN_MS before
 * the main loop gives up and exits. A second signal exits at once. */
static void on_signal(struct loop_watch *w, uint32_t signo)
{
    struct server *srv = w->ctx;
    if (srv->is_stopping) {
        log_at(LL_INFO, "signal=%u \"second signal: stopping now\"", signo);
        srv->stop_deadline_ms = srv->loop.now_ms;
        return;
    }
    log_at(LL_INFO, "signal=%u open=%zu \"shutting down\"", signo, srv->conns.nopen);
    cluster_publish(srv, CLUSTER_BYE, NULL, 0, NULL, 0); /* before is_stopping mutes it */
    srv->is_stopping = true;
    srv->stop_deadline_ms = srv->loop.now_ms + SHUTDOWN_MS;
    /* Close the listener now, so new connections are refused at once instead of waiting in
     * the backlog for a server that will never accept them. */
    loop_del(&srv->loop, &srv->listener);
    close(srv->listen_fd);
    srv->listen_fd = -1;

    for (size_t i = 0; i < srv->conns.nused; i++) {
        struct conn *c = &srv->conns.conns[i];
        if (c->phase == CONN_WS)
            ws_fail(srv, c, WS_CLOSE_GOING_AWAY, "server shutting down");
        else if (c->phase == CONN_HTTP && has_output(c))
            drain(srv, c, CONN_END_SHUTDOWN, "server shutting down");
        else if (c->phase == CONN_HTTP)
            conn_close_later(&srv->conns, c, CONN_END_SHUTDOWN, "server shutting down");
    }
}

/* Slow readers of HTTP responses (slowhttptest -X; or pipelining requests and never reading
 * the answers). While a response waits for its reader, the clock is the reader's: the
 * connection is closed if the peer acknowledges nothing for --handshake-timeout (a zero
 * window, a client that never reads), or if, once that grace is over, it has taken less than
 * HTTP_MIN_SEND_RATE bytes a second on average since the output began (a trickle that keeps
 * making "progress", 32 bytes every few seconds). So no response, and no chain of pipelined
 * ones, holds a slot for longer than the grace plus its size at the minimum rate.
 *
 * What counts is what the peer acknowledged, not what send() took: the kernel's send buffer
 * (SO_SNDBUF, 256 KiB) accepts bytes the peer may never read, and counting those would give
 * a reader that never reads minutes of credit. nginx's send_timeout is rule one alone. The
 * rules themselves are conn_http_judge_reader()'s, pure and unit-tested. */
static void check_http_output(struct server *srv, struct conn *c, uint64_t now)
{
    struct conn_http *h = &c->http;
    if (h->out_since_ms == 0) /* output queued outside a request (cannot happen today) */
        start_output_clock(c, now);
    /* The check runs a few times per --handshake-timeout (the tick), so one SIOCOUTQ per
     * waiting connection per tick: nothing on the per-message path. */
    long unacked = net_unacked(c->fd);
    uint64_t queued = h->out_sent + h->unacked_base; /* this period's, and what came before */
    uint64_t acked = unacked < 0                  ? h->out_sent /* no SIOCOUTQ: trust send() */
                     : (uint64_t)unacked < queued ? queued - (uint64_t)unacked
                                                  : 0;
    const char *why =
        conn_http_judge_reader(h, acked, now, srv->cfg->handshake_timeout_ms, HTTP_MIN_SEND_RATE);
    if (why == NULL)
        return;
    log_at(LL_INFO, "conn=%llu peer=%s sent=%llu acked=%llu \"%s\"", (unsigned long long)c->serial,
           peer_text(c).s, (unsigned long long)h->out_sent, (unsigned long long)h->out_acked, why);
    /* A reset, not a FIN: the kernel would otherwise go on trickling the queued bytes to this
     * very reader long after the slot is free, holding up to SO_SNDBUF of kernel memory. */
    c->is_reset = true;
    conn_close_later(&srv->conns, c, CONN_END_TIMEOUT, why);
}

/* An HTTP connection's responses (keep-alive, or its last one while draining) still on their
 * way: in our buffers, or in the kernel's and not yet acknowledged (slowhttptest's answers
 * all fit in the send buffer). While they are, the clock is the reader's (check_http_output),
 * and true is returned. When the peer has them all, the connection's own clock (idle
 * keep-alive, lingering close) restarts now. */
static bool http_output_pending(struct server *srv, struct conn *c, uint64_t now)
{
    if (c->route != CONN_ROUTE_NONE)
        return false;
    if (has_output(c) || (c->http.out_since_ms != 0 && net_unacked(c->fd) > 0)) {
        check_http_output(srv, c, now);
        return true;
    }
    if (c->http.out_since_ms != 0) { /* delivered */
        c->http.out_since_ms = 0;
        c->since_ms = now;
        return true;
    }
    return false;
}

/* Once a second: drop draining connections whose peer will not take their last bytes. */
static void cluster_tick(struct server *srv, uint64_t now);

static void on_tick(struct loop_watch *w, uint32_t expirations)
{
    struct server *srv = w->ctx;
    const struct config *cfg = srv->cfg;
    uint64_t now = srv->loop.now_ms;
    (void)expirations;

    if (srv->has_cluster)
        cluster_tick(srv, now);

    if (srv->is_accept_paused && !srv->is_stopping) {
        srv->is_accept_paused = false;
        loop_set(&srv->loop, &srv->listener, LOOP_IN);
    }

    size_t released = 0;
    /* Simplification: a scan of every slot, a few times a second. A timer wheel or a heap
     * would visit only the connections whose deadline passed; at wsrelay's slot counts the
     * scan costs microseconds. */
    for (size_t i = 0; i < srv->conns.nused; i++) {
        struct conn *c = &srv->conns.conns[i];
        uint64_t age = now - c->since_ms;
        if (c->phase != CONN_FREE && c->phase != CONN_CLOSING && conn_trim(c))
            released++; /* an idle connection gave its buffers back */
        switch (c->phase) {
        case CONN_HTTP:
            if (http_output_pending(srv, c, now))
                break;
            /* Slowloris: a request that never completes holds a slot for ever. */
            if (age >= cfg->handshake_timeout_ms) {
                if (buf_size(&c->rbuf) > 0)
                    http_error(srv, c, 408, false, false, NULL); /* RFC 9110 §15.5.9 */
                else
                    conn_close_later(&srv->conns, c, CONN_END_TIMEOUT, "idle");
                if (c->phase == CONN_DRAINING)
                    c->end = CONN_END_TIMEOUT;
            }
            break;
        case CONN_WS:
            /* RFC 6455 §5.5.2: a ping asks for a pong. A peer silent for a whole interval
             * after our ping is gone (a dead NAT, a sleeping laptop): drop it without a
             * close frame, which it would not read anyway. */
            if (cfg->ping_interval_ms > 0 && now - c->ws.ping_sent_ms >= cfg->ping_interval_ms) {
                if (c->ws.is_awaiting_pong) {
                    conn_close_later(&srv->conns, c, CONN_END_PING_TIMEOUT,
                                     "no pong within --ping-interval");
                    break;
                }
                /* Random, not our clock: a clock can be guessed by a client that never
                 * reads, and its guessed pong would pass for an answer (see WS_EV_PONG). */
                if (random_bytes(c->ws.ping_payload, CONN_PING_LEN) < 0) {
                    ws_fail(srv, c, WS_CLOSE_INTERNAL, "no randomness for a ping");
                    break;
                }
                if (bcast_one(&srv->conns, c, FRAME_OP_PING, c->ws.ping_payload, CONN_PING_LEN))
                    srv->metrics.messages_out++;
                c->ws.is_awaiting_pong = true;
                c->ws.ping_sent_ms = now;
            }
            break;
        case CONN_DRAINING:
            /* An HTTP response on a closing connection (Connection: close, HTTP/1.0, an
             * error) is judged like any other while it waits for its reader: a lawful slow
             * download finishes, a reader that does not read is cut. Then the lingering close
             * has DRAIN_TIMEOUT_MS to see the peer's FIN; a WebSocket's close frame has it
             * from the start. Whatever the kernel still holds then goes with a reset. */
            if (http_output_pending(srv, c, now))
                break;
            if (age >= DRAIN_TIMEOUT_MS) {
                c->is_reset = net_unacked(c->fd) > 0;
                conn_close_later(&srv->conns, c, CONN_END_TIMEOUT, "timed out while draining");
            }
            break;
        case CONN_FREE:
        case CONN_CLOSING:
            break;
        }
    }
    /* Freed buffers go back to malloc, not to the kernel: thousands of connections that each
     * freed a few hundred bytes leave the heap's pages resident. Hand them back (glibc's
     * malloc_trim also releases free pages in the middle of the heap), at most once a tick
     * and only when something was released, so a busy server never pays for it. */
    if (released > 0)
        malloc_trim(0);
}

/* The www directory: --www as given (the operator's choice), else www_open_default(): the
 * installed PREFIX/share/wsrelay/www for PREFIX/bin/wsrelay, else www/ beside the binary
 * (the source tree), and only along a path no other user can change. Never ./www of the
 * working directory: whoever can write there (a shared /tmp, a user's checkout) could
 * otherwise plant the page an installed server hands to every visitor. Returns an O_PATH
 * directory descriptor or -errno; path[] holds the directory opened (resolved, for the log)
 * or the one tried last. */
static int open_www(const char *flag, char path[PATH_MAX])
{
    if (flag != NULL) {
        snprintf(path, PATH_MAX, "%s", flag);
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        char real[PATH_MAX]; /* the log names the directory served */
        if (realpath(path, real) != NULL)
            snprintf(path, PATH_MAX, "%s", real);
        return fd;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) { /* no /proc (a bare chroot): no way to know where we are installed */
        snprintf(path, PATH_MAX, "(the binary's directory: /proc/self/exe unreadable)");
        return -ENOENT;
    }
    exe[n] = '\0';
    char skipped[PATH_MAX + 128];
    int fd = www_open_default(exe, geteuid(), path, PATH_MAX, skipped, sizeof skipped);
    if (skipped[0] != '\0')
        log_at(LL_WARN, "www=%s \"not serving an untrusted directory; give --www\"",
               log_value_str(skipped).s);
    return fd;
}

/* The tick checks every timeout, so it runs a few times per shortest timeout: a deadline is
 * then missed by at most a quarter of its length. Never more than once a second, nor more
 * than 100 times. */
static unsigned tick_interval_ms(const struct config *cfg)
{
    uint64_t shortest = DRAIN_TIMEOUT_MS;
    if (cfg->handshake_timeout_ms < shortest)
        shortest = cfg->handshake_timeout_ms;
    if (cfg->ping_interval_ms > 0 && cfg->ping_interval_ms < shortest)
        shortest = cfg->ping_interval_ms;
    uint64_t tick = shortest / 4;
    if (cfg->redis_url != NULL && tick > CLUSTER_TICK_MS)
        tick = CLUSTER_TICK_MS; /* the cluster's deadlines, see cluster_tick() */
    return tick > TICK_MS ? TICK_MS : tick < 10 ? 10 : (unsigned)tick;
}

/* Every slot may hold a socket (and, briefly, a file): ask for enough descriptors. */
static int cluster_init(struct server *srv);

static int ensure_fd_limit(size_t max_clients)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_clients * 2 + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur >= need)
        return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < need)
        log_at(LL_WARN, "nofile=%llu need=%llu \"descriptor limit is low: raise ulimit -n\"",
               (unsigned long long)rl.rlim_cur, (unsigned long long)need);
    return 0;
}

/* ==== 8. The cluster ======================================================================
 *
 * With --redis, every node publishes what its clients do (join, message, leave) to one Redis
 * channel, and relays what the other nodes publish to its own clients, byte for byte. Each
 * node keeps the other nodes' clients in presence (remote entries), so a newcomer's welcome
 * lists everyone in the room, whichever node they sit on. The envelope is cluster.h's.
 *
 * Staying whole when things fail:
 *   - every node says "hb" each HEARTBEAT_MS; a node silent for NODE_TIMEOUT_MS is dead, and
 *     its clients leave (kill -9 a node: its users vanish elsewhere within about 3 s);
 *   - a node that (re)connects to Redis says "hello" and publishes its "state"; every node
 *     that hears a hello answers with its own state, and a state replaces what we knew of that
 *     node: new clients join, missing ones leave, newer positions are sent;
 *   - while Redis is away, the local room goes on: publications are dropped (counted), and
 *     the resync above repairs the view when it comes back;
 *   - a node hears its own heartbeats back through its subscription: when they stop coming
 *     for SELF_TIMEOUT_MS (a link open but dead), it drops both links and reconnects at once,
 *     which resyncs as above; that is sooner than the others' NODE_TIMEOUT_MS, so when the
 *     reconnect works nobody has taken it for dead, and it has taken nobody for dead: no user
 *     leaves and comes back, cursors only pause (the timeline is at cluster_tick);
 *   - a node back from the dead (frozen, cut off) is asked for its state by whoever had
 *     forgotten it, and answers.
 */

/* A publication that did not leave is counted (wsrelay_redis_dropped_total) and said in the
 * log, once a minute at most: a full queue would otherwise log every message. A link that is
 * down is the backplane's to report, once per change of state. */
static void log_dropped(struct server *srv, const char *why, size_t len)
{
    if (srv->publish_drop_logged_ms != 0 &&
        srv->loop.now_ms - srv->publish_drop_logged_ms < LOG_EVERY_MS)
        return;
    srv->publish_drop_logged_ms = srv->loop.now_ms;
    log_at(LL_WARN, "len=%zu dropped=%llu \"cluster: not published: %s\"", len,
           (unsigned long long)srv->bp.dropped, why);
}

/* Hands the envelope in cluster_out to the backplane, which counts what it drops. */
static void publish(struct server *srv)
{
    size_t len = buf_size(&srv->cluster_out);
    if (!backplane_publish(&srv->bp, buf_head(&srv->cluster_out), len) && backplane_is_up(&srv->bp))
        log_dropped(srv, "the queue to Redis is full (Redis slow or stalled)", len);
}

/* Publishes one envelope, if we are in a cluster (and not stopping: the "bye" goes first). */
static void cluster_publish(struct server *srv, enum cluster_kind kind, const char *sender,
                            unsigned color, const void *json, size_t json_len)
{
    if (!srv->has_cluster || srv->is_stopping)
        return;
    buf_reset(&srv->cluster_out);
    if (cluster_encode(&srv->cluster_out, srv->node_id, kind, sender, color, json, json_len) != 0) {
        srv->bp.dropped++; /* cannot happen: cluster_init sizes cluster_out for the largest */
        log_dropped(srv, "message too large for an envelope", json_len);
        return;
    }
    publish(srv);
}

static void cluster_publish_state(struct server *srv)
{
    if (!srv->has_cluster || srv->is_stopping)
        return; /* after our "bye", a state would bring us back to life elsewhere */
    buf_reset(&srv->cluster_out);
    if (cluster_encode_state(&srv->cluster_out, srv->node_id, &srv->presence) != 0) {
        srv->bp.dropped++; /* cannot happen either */
        log_dropped(srv, "state too large for an envelope", 0);
        return;
    }
    publish(srv);
}

/* Asks every node for its whole state. */
static void cluster_say_hello(struct server *srv)
{
    srv->hello_ms = srv->loop.now_ms;
    cluster_publish(srv, CLUSTER_HELLO, NULL, 0, NULL, 0);
}

/* Sends what another node's client said (checked and rewritten by remote_update) or what we
 * built for it (a join, a leave) to every local client in the room. */
static void relay_remote(struct server *srv, const void *json, size_t len, uint32_t sender)
{
    struct bcast_result r = bcast_room(&srv->conns, FRAME_OP_TEXT, json, len, NULL, sender);
    srv->metrics.messages_out += r.sent;
    srv->metrics.conflated += r.conflated;
}

/* A remote client leaves: a leave built here from its presence entry (never the bytes its
 * node sent: a node relays only what it would have written itself) to every local client,
 * and it is forgotten. */
static void remote_leave(struct server *srv, size_t index)
{
    buf_reset(&srv->scratch);
    if (presence_write_leave(&srv->presence, index, &srv->scratch) == 0)
        relay_remote(srv, buf_head(&srv->scratch), buf_size(&srv->scratch), BCAST_NO_CONFLATION);
    presence_remote_remove(&srv->presence, index);
}

/* A node died (silent too long) or said bye: all its clients leave. */
static void drop_node(struct server *srv, int node)
{
    uint16_t tag = (uint16_t)(node + 1);
    size_t n = 0;
    for (size_t i = srv->presence.local_slots; i < srv->presence.max_slots; i++) {
        if (srv->presence.peers[i].is_present && srv->presence.peers[i].node == tag) {
            remote_leave(srv, i);
            n++;
        }
    }
    /* Node ids and senders passed cluster_decode(): hex digits and dashes, nothing to escape. */
    log_at(LL_INFO, "node=%s clients=%zu \"cluster: node gone, its clients left\"",
           srv->nodes.n[node].id, n);
    cluster_node_forget(&srv->nodes, node);
}

/* A client on another node, known from a join, a message or a state: made present, and if it
 * is new to us, its join (built here from the envelope's id and color) goes to every local
 * client. Returns its presence index, or -1 if every remote place is taken. */
static long remote_client(struct server *srv, const char *id, unsigned color, uint16_t tag)
{
    long index = presence_remote_find(&srv->presence, id);
    if (index >= 0) {
        srv->presence.peers[index].node = tag; /* it may have moved to another node */
        return index;
    }
    /* Ids are random (122 bits): another node never names one of our clients, unless the
     * envelope is forged. Believing it would show our own client twice, or make it "leave". */
    if (presence_is_local(&srv->presence, id)) {
        srv->metrics.cluster_invalid++;
        /* id passed cluster_decode(): a lower-case UUID, nothing to escape. */
        log_at(LL_DEBUG, "sender=%s \"cluster: ignored a remote claim to a local client\"", id);
        return -1;
    }
    index = presence_remote_add(&srv->presence, id, color, tag);
    if (index < 0) {
        if (!srv->is_remote_full_logged)
            log_at(LL_WARN, "\"cluster: no room for more remote clients; new ones are not shown\"");
        srv->is_remote_full_logged = true;
        return -1;
    }
    srv->is_remote_full_logged = false;
    buf_reset(&srv->scratch);
    if (presence_write_join(&srv->presence, (size_t)index, &srv->scratch) == 0)
        relay_remote(srv, buf_head(&srv->scratch), buf_size(&srv->scratch), BCAST_NO_CONFLATION);
    return index;
}

/* Whether a remote client's message passes the checks a local one passes (on_room_text):
 * at most --max-message plus the server's own members, exactly one JSON object, no reserved
 * "type" (a forged welcome would make the page adopt a new id), and the message rewritten
 * with the sender and color we hold for that client, so it can only speak for the client the
 * envelope names. An honest node's message is already in that form, and json_rewrite() of
 * its own output gives back the same bytes: messages stay byte for byte equal on every node.
 * Returns true with the bytes to relay in srv->scratch; false if refused (counted and, for
 * a size mismatch between nodes, logged). */
static bool check_remote_json(struct server *srv, size_t index, const char *node,
                              const uint8_t *json, size_t len)
{
    const struct presence_peer *who = &srv->presence.peers[index];
    size_t limit = srv->cfg->max_message + JSON_REWRITE_GROWTH; /* what a local one can be */
    int rc = -EMSGSIZE;
    if (len <= limit) {
        buf_reset(&srv->scratch);
        rc = json_rewrite(json, len, who->id, who->color, &srv->scratch);
        if (rc == 0 && buf_size(&srv->scratch) > limit) /* grew past it in the rewrite */
            rc = -EMSGSIZE;
    }
    if (rc == 0)
        return true;
    srv->metrics.cluster_invalid++;
    if (rc == -EMSGSIZE && srv->loop.now_ms - srv->remote_big_logged_ms >= LOG_EVERY_MS) {
        srv->remote_big_logged_ms = srv->loop.now_ms;
        log_at(LL_WARN,
               "node=%s len=%zu max_message=%zu \"cluster: dropped a message over our "
               "--max-message; give every node the same limits\"",
               node, len, srv->cfg->max_message);
    } else {
        log_at(LL_DEBUG,
               "node=%s sender=%s \"cluster: dropped a message a local client could "
               "not have sent\"",
               node, who->id);
    }
    return false;
}

/* A newer message for a remote client: checked like a local one, remembered, and relayed
 * (conflatable). Returns false if it was refused. */
static bool remote_update(struct server *srv, long index, const char *node, const uint8_t *json,
                          size_t len)
{
    if (!check_remote_json(srv, (size_t)index, node, json, len))
        return false;
    const uint8_t *msg = buf_head(&srv->scratch);
    size_t msg_len = buf_size(&srv->scratch);
    /* Not kept (over remote_big_budget, out of memory): skipped by readers that are behind,
     * as on_room_text says. */
    bool is_kept = presence_update(&srv->presence, (size_t)index, msg, msg_len) == 0;
    relay_remote(srv, msg, msg_len, (uint32_t)index | (is_kept ? 0 : BCAST_UNKEPT));
    return true;
}

/* A node's whole state: what we knew of it is replaced. Clients we did not know join, those
 * it no longer lists leave, and positions newer than ours are relayed. */
static void apply_state(struct server *srv, const struct cluster_msg *m, uint16_t tag)
{
    /* Which of this node's clients does the state still list? One bit per presence entry,
     * for the length of this call. */
    size_t words = (srv->presence.max_slots + 63) / 64;
    uint64_t *listed = calloc(words, sizeof *listed);
    if (listed == NULL)
        return; /* the next state will do */
    size_t pos = 0;
    struct cluster_peer peer;
    while (cluster_next_peer(m, &pos, &peer)) {
        long index = remote_client(srv, peer.sender, peer.color, tag);
        if (index < 0)
            continue;
        listed[index / 64] |= UINT64_C(1) << (index % 64);
        if (peer.json_len == 0)
            continue;
        /* Only a position newer than ours is relayed: judged on the checked bytes, which an
         * honest node's state holds exactly. */
        if (!check_remote_json(srv, (size_t)index, m->node, peer.json, peer.json_len))
            continue;
        const struct buf *last = &srv->presence.peers[index].last;
        bool is_newer = buf_size(last) != buf_size(&srv->scratch) ||
                        memcmp(buf_head(last), buf_head(&srv->scratch), buf_size(last)) != 0;
        if (is_newer)
            remote_update(srv, index, m->node, peer.json, peer.json_len);
    }
    for (size_t i = srv->presence.local_slots; i < srv->presence.max_slots; i++) {
        const struct presence_peer *p = &srv->presence.peers[i];
        if (p->is_present && p->node == tag && !(listed[i / 64] & (UINT64_C(1) << (i % 64))))
            remote_leave(srv, i);
    }
    free(listed);
}

/* backplane_ops.on_message: one message from the channel. */
static void on_cluster_message(void *ctx, const uint8_t *p, size_t len)
{
    struct server *srv = ctx;
    struct cluster_msg m;
    if (cluster_decode(p, len, &m) < 0) {
        srv->metrics.cluster_invalid++; /* foreign or malformed: ignored, never relayed */
        log_at(LL_DEBUG, "len=%zu \"cluster: ignored a message that is not ours\"", len);
        return;
    }
    if (strcmp(m.node, srv->node_id) == 0) {
        /* Our own publication, back from Redis: our clients already have it. That it came
         * back proves both links work (see cluster_tick). */
        srv->self_heard_ms = srv->loop.now_ms;
        return;
    }
    bool is_new;
    int node = cluster_node_seen(&srv->nodes, m.node, srv->loop.now_ms, &is_new);
    if (node < 0) {
        srv->metrics.cluster_invalid++;
        if (!srv->is_nodes_full_logged)
            log_at(LL_WARN, "\"cluster: too many nodes, ignoring new ones\"");
        srv->is_nodes_full_logged = true;
        return;
    }
    /* A node we do not know that does not introduce itself (a hello, or the state that
     * follows one) was taken for dead while it was only frozen or cut off, and it may have
     * forgotten us the same way: a hello makes every node, that one included, publish its
     * whole state, which makes both views whole again. Not if we said hello lately (we just
     * joined, and its state is on its way). */
    bool is_unannounced =
        m.kind != CLUSTER_HELLO && m.kind != CLUSTER_STATE && m.kind != CLUSTER_BYE;
    if (is_new && is_unannounced && srv->loop.now_ms - srv->hello_ms >= NODE_TIMEOUT_MS) {
        log_at(LL_INFO, "node=%s \"cluster: an unknown node speaks, asking for states\"",
               m.node); /* 16 hex digits: cluster_decode() checked */
        cluster_say_hello(srv);
    }
    uint16_t tag = (uint16_t)(node + 1);
    long index;
    switch (m.kind) {
    case CLUSTER_HB:
        return;
    case CLUSTER_HELLO: /* a node (re)joined and knows nothing: tell it about us */
        cluster_publish_state(srv);
        return;
    case CLUSTER_BYE:
        drop_node(srv, node);
        return;
    case CLUSTER_JOIN: /* the envelope's id and color; the json it carries is not relayed */
        remote_client(srv, m.sender, m.color, tag);
        return;
    case CLUSTER_MSG:
        index = remote_client(srv, m.sender, m.color, tag);
        if (index >= 0)
            remote_update(srv, index, m.node, m.json, m.json_len);
        return;
    case CLUSTER_LEAVE:
        index = presence_remote_find(&srv->presence, m.sender);
        if (index >= 0)
            remote_leave(srv, (size_t)index);
        return;
    case CLUSTER_STATE:
        apply_state(srv, &m, tag);
        return;
    }
}

/* backplane_ops.on_ready: connected again after a gap. */
static void on_cluster_ready(void *ctx)
{
    struct server *srv = ctx;
    srv->self_heard_ms = srv->loop.now_ms; /* the round-trip check starts afresh */
    cluster_say_hello(srv);
    cluster_publish_state(srv);
}

/* Why a cut-off node is whole again before anyone gives up on it. Times from h, when the
 * last heartbeat of ours that came back arrived (the others heard it at h too, or later):
 *
 *   h + SELF_TIMEOUT_MS .. + CLUSTER_TICK_MS    we notice, drop both links, reconnect at once
 *   a few round trips later                     our hello and state reach the others
 *   h + NODE_TIMEOUT_MS at the earliest         another node would take us for dead
 *
 * so the reconnect has NODE_TIMEOUT_MS - SELF_TIMEOUT_MS - CLUSTER_TICK_MS (750 ms) to spare.
 * The same must hold the other way round: while our own link is deaf, the others' silence is
 * ours, not theirs. Their silence counts only as far as our link vouches for it (one heartbeat
 * past our own last), and when we give up on the link their clocks restart from h. */
_Static_assert(NODE_TIMEOUT_MS - SELF_TIMEOUT_MS - CLUSTER_TICK_MS >= 500,
               "a cut-off node must replace its link well before the others give up on it");
_Static_assert(SELF_TIMEOUT_MS >= 2 * HEARTBEAT_MS,
               "one late heartbeat must not make a node replace a working link");

static void cluster_tick(struct server *srv, uint64_t now)
{
    /* Both links "up" proves nothing: a connection can stay open while nothing passes (the
     * Redis host crashed, a NAT or firewall forgot the connection). Our own heartbeats come
     * back to us through the subscription: when they stop, we start both links again (before
     * backplane_tick, which reconnects at once), which resynchronises the room when they
     * work. */
    if (backplane_is_up(&srv->bp) && now - srv->self_heard_ms >= SELF_TIMEOUT_MS) {
        backplane_reset(&srv->bp, now, "our own heartbeats stopped coming back");
        cluster_node_excuse(&srv->nodes, srv->self_heard_ms);
    }
    backplane_tick(&srv->bp, now);
    /* A timer that fires a millisecond early must not put a beat off by a whole tick: a beat
     * is due within half a tick. */
    if (now + tick_interval_ms(srv->cfg) / 2 >= srv->next_heartbeat_ms) {
        srv->next_heartbeat_ms = now + HEARTBEAT_MS;
        cluster_publish(srv, CLUSTER_HB, NULL, 0, NULL, 0);
    }
    uint64_t vouched = now; /* how far our own link vouches for the others' silence */
    if (backplane_is_up(&srv->bp) && now > srv->self_heard_ms + HEARTBEAT_MS)
        vouched = srv->self_heard_ms + HEARTBEAT_MS;
    int node;
    while ((node = cluster_node_expired(&srv->nodes, vouched, NODE_TIMEOUT_MS)) >= 0) {
        drop_node(srv, node);
        srv->is_nodes_full_logged = false;
    }
}

static const struct backplane_ops cluster_ops = {
    .on_message = on_cluster_message,
    .on_ready = on_cluster_ready,
};

static int cluster_init(struct server *srv)
{
    const struct config *cfg = srv->cfg;
    struct config_redis target;
    char why[160];
    if (config_parse_redis_url(cfg->redis_url, &target, why, sizeof why) < 0) {
        log_at(LL_ERROR, "\"--redis: %s\"", log_text_str(why).s); /* config_parse() checked it */
        return -1;
    }
    /* The password may come from the environment instead of the command line, where every
     * user of the machine could read it in the process list. */
    const char *env = getenv("WSRELAY_REDIS_PASSWORD");
    if (target.password[0] == '\0' && env != NULL)
        snprintf(target.password, sizeof target.password, "%s", env);

    uint8_t raw[CLUSTER_NODE_ID_LEN / 2];
    if (random_bytes(raw, sizeof raw) < 0)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(srv->node_id + 2 * i, 3, "%02x", raw[i]);
    /* The biggest envelope: a state listing every local client with its snapshot, or one
     * relayed message of the largest size. Either always fits, so no local message is ever
     * too large to publish. */
    size_t state_max = cfg->max_clients * (PRESENCE_STATE_MAX + 64) + 256;
    size_t msg_max = cfg->max_message + JSON_REWRITE_GROWTH + 256;
    buf_init(&srv->cluster_out, state_max > msg_max ? state_max : msg_max);
    if (backplane_init(&srv->bp, &srv->loop, &target, cfg->redis_channel, srv->cluster_out.limit,
                       &cluster_ops, srv) < 0)
        return -1;
    srv->has_cluster = true;
    log_at(LL_INFO, "node=%s redis=%s:%u/%u channel=%s \"cluster: joining\"", srv->node_id,
           srv->bp.ip, (unsigned)target.port, target.db, log_value_str(cfg->redis_channel).s);
    return 0;
}

int server_run(const struct config *cfg)
{
    struct server s = {.cfg = cfg, .listen_fd = -1, .www_fd = -1, .spare_fd = -1};
    struct server *srv = &s;
    int status = 1;
    char www_path[PATH_MAX];

    /* SIGPIPE would kill us when a peer vanishes mid-write; errors come back as EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    buf_init(&srv->scratch, cfg->max_buffer);
    srv->loop.epfd = -1;

    srv->www_fd = open_www(cfg->www, www_path);
    if (srv->www_fd < 0) {
        log_at(LL_ERROR, "www=%s \"cannot open the www directory: %s\"", log_value_str(www_path).s,
               strerror(-srv->www_fd));
        goto out;
    }
    int rc = ensure_fd_limit(cfg->max_clients);
    if (rc < 0)
        log_at(LL_WARN, "\"cannot raise the descriptor limit: %s\"", strerror(-rc));

    uint16_t port = cfg->port;
    srv->listen_fd = net_listen(cfg->host, cfg->port, 511, &port);
    if (srv->listen_fd < 0) {
        if (srv->listen_fd == -EADDRINUSE)
            log_at(LL_ERROR,
                   "host=%s port=%u \"address already in use: is another wsrelay "
                   "running?\"",
                   log_value_str(cfg->host).s, (unsigned)cfg->port);
        else
            log_at(LL_ERROR, "host=%s port=%u \"cannot listen: %s\"", log_value_str(cfg->host).s,
                   (unsigned)cfg->port, strerror(-srv->listen_fd));
        goto out;
    }
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (conn_table_init(&srv->conns, cfg->max_clients, RBUF_LIMIT, cfg->max_buffer,
                        cfg->max_message) < 0 ||
        presence_init(&srv->presence, cfg->max_clients,
                      cfg->redis_url != NULL ? REMOTE_PER_LOCAL * cfg->max_clients : 0,
                      cfg->max_message + JSON_REWRITE_GROWTH) < 0) {
        log_at(LL_ERROR, "max_clients=%zu \"out of memory for the slot table\"", cfg->max_clients);
        goto out;
    }
    if (connrate_init(&srv->connrate, 2 * cfg->max_clients, cfg->max_connect_rate,
                      cfg->max_connect_rate * CONFIG_CONNECT_BURST_S) < 0) {
        log_at(LL_ERROR, "\"out of memory for the --max-connect-rate table\"");
        goto out;
    }
    /* A welcome goes into a buffer that already holds the 101 response: leave it room. */
    srv->presence.welcome_max = cfg->max_buffer - 1024;
    srv->conns.owed_bits = srv->presence.max_slots; /* a client may owe remote senders too */
    rc = loop_init(&srv->loop, MAX_EVENTS);
    if (rc == 0)
        rc = loop_add(&srv->loop, &srv->listener, srv->listen_fd, LOOP_IN, on_accept, srv);
    if (rc == 0) {
        static const int stop_signals[] = {SIGINT, SIGTERM};
        rc = loop_add_signals(&srv->loop, &srv->signals, stop_signals, 2, on_signal, srv);
    }
    if (rc == 0)
        rc = loop_add_timer(&srv->loop, &srv->tick, tick_interval_ms(cfg), on_tick, srv);
    if (rc < 0) {
        log_at(LL_ERROR, "\"cannot set up the event loop: %s\"", strerror(-rc));
        goto out;
    }

    if (cfg->redis_url != NULL && cluster_init(srv) < 0)
        goto out;

    /* The www path may hold a space (a home directory, a --www flag): escaped like a peer's. */
    log_at(LL_INFO, "host=%s port=%u www=%s max_clients=%zu \"listening\"",
           log_value_str(cfg->host).s, (unsigned)port, log_value_str(www_path).s, cfg->max_clients);

    /* The loop. Order matters: reap (which may broadcast leaves) before flushing, so those
     * leaves go out in this round; flush before sleeping, so epoll waits only for what could
     * not be written now. */
    for (;;) {
        do {
            reap(srv);
            flush_writers(srv);
        } while (srv->conns.nclosing > 0);

        int timeout = -1;
        if (srv->is_stopping) {
            /* Done when every client is gone and our "bye" has reached Redis; or at the
             * deadline, whatever is left. */
            bool is_flushed = !srv->has_cluster || srv->bp.inflight == 0;
            if ((srv->conns.nopen == 0 && is_flushed) || srv->loop.now_ms >= srv->stop_deadline_ms)
                break;
            timeout = (int)(srv->stop_deadline_ms - srv->loop.now_ms);
        }
        rc = loop_wait(&srv->loop, timeout);
        if (rc < 0) {
            log_at(LL_ERROR, "\"epoll_wait failed: %s\"", strerror(-rc));
            goto out;
        }
    }
    log_at(LL_INFO, "open=%zu \"stopped\"", srv->conns.nopen);
    status = 0;

out:
    if (srv->loop.epfd >= 0) {
        loop_close_watch(&srv->loop, &srv->signals);
        loop_close_watch(&srv->loop, &srv->tick);
    }
    if (srv->has_cluster)
        backplane_free(&srv->bp);
    buf_free(&srv->cluster_out);
    conn_table_free(&srv->conns);
    presence_free(&srv->presence);
    connrate_free(&srv->connrate);
    buf_free(&srv->scratch);
    if (srv->loop.epfd >= 0)
        loop_free(&srv->loop);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    if (srv->www_fd >= 0)
        close(srv->www_fd);
    return status;
}
