/* conn_io.c: a connection's life at the edge (see conn_io.h).
 *
 * Chapters:
 *   1. Output: queueing, flushing, interest in writability
 *   2. Ending: draining, failing a WebSocket, the reaper
 *   3. Responses: the endings every route shares
 *   4. Input: reading and feeding the parsers
 *   5. Accepting and shedding load
 *   6. Timeouts: the tick, and stopping
 */
#include "conn_io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bcast.h"
#include "entropy.h"
#include "log.h"
#include "net.h"
#include "transport.h"

enum {
    SENDFILE_CHUNK = 256 * 1024,   /* file bytes per wake-up: one big file can't hog the loop */
    HTTP_PIPELINE_MAX = 64 * 1024, /* queued responses before we stop reading requests */
    SOCKET_SNDBUF = 128 * 1024,    /* kernel send buffer per connection (see net_set_sndbuf):
                                    * with wbuf, the bound on what a slow reader can pin */
    ACCEPT_BATCH = 64,             /* connections accepted per wake-up of the listener */
    SHRINK_KEEP = 64 * 1024,       /* an emptied buffer bigger than this is released */
    WS_SHRINK_KEEP = 8 * 1024,     /* the same for a WebSocket: a welcome listing a big
                                    * room is tens of KiB once, and 10,000 clients arriving
                                    * together would each keep theirs until the next tick */
    HTTP_MIN_SEND_RATE = 4 * 1024, /* bytes/s a response must average once the grace of
                                    * --handshake-timeout is over: below, the reader is a
                                    * slow-read attack (a GPRS phone still does 5 KB/s) */
};

const char *conn_io_date(struct conn_io *io)
{
    time_t now = time(NULL);
    if (now != io->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(io->date, sizeof io->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        io->date_sec = now;
    }
    return io->date;
}

/* ==== 1. Output ========================================================================= */

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
static void update_interest(struct conn_io *io, struct conn *c)
{
    unsigned mask = 0;
    if (c->phase == CONN_WS || (c->phase == CONN_HTTP && !http_is_blocked(c)) ||
        (c->phase == CONN_DRAINING && c->is_lingering))
        mask |= LOOP_IN;
    /* A queued connection is written in the next flush round anyway: arming EPOLLOUT for
     * it would cost two epoll_ctl() calls per message (arm now, disarm after the flush). */
    if (has_output(c) && !c->is_queued)
        mask |= LOOP_OUT;
    /* TLS: a read that must first write a handshake message waits for writability. */
    if (tls_wants_write(&c->tp))
        mask |= LOOP_OUT;
    if (loop_set(io->loop, &c->watch, mask) < 0)
        conn_close_later(io->conns, c, CONN_END_ERROR, "epoll_ctl failed");
    /* Input OpenSSL already holds never raises EPOLLIN again: list it to be read anyway. */
    if ((mask & LOOP_IN) && !c->is_buffered && transport_has_buffered(&c->tp)) {
        c->is_buffered = true;
        io->buffered[io->nbuffered++] = c->slot;
    }
}

/* After input: the interest the connection's new state needs, unless it is queued for the
 * flush of this same pass, which ends with update_interest() anyway (flush_writers). A
 * request whose response (a file) blocks further reading would otherwise cost two
 * epoll_ctl() calls each time: reading off now, back on once the flush has sent it all,
 * which for a keep-alive client is nearly always before the next wait. Until that flush,
 * epoll is not asked again, so the stale interest cannot spin the loop. */
static void update_interest_after_input(struct conn_io *io, struct conn *c)
{
    if (!c->is_queued)
        update_interest(io, c);
}

static void process_input(struct conn_io *io, struct conn *c);

/* The file part of a response, once the buffer before it is empty. Returns false if the
 * connection was marked closing. */
static bool send_file_chunk(struct conn_io *io, struct conn *c)
{
    struct conn_http *h = &c->http;
    size_t chunk = h->file_left < SENDFILE_CHUNK ? (size_t)h->file_left : SENDFILE_CHUNK;
    ssize_t n = transport_sendfile(&c->tp, h->file_fd, &h->file_off, chunk);
    if (n < 0 && n != -EAGAIN && n != -EINTR) {
        conn_close_later(io->conns, c, CONN_END_ERROR, "sendfile failed");
        return false;
    }
    if (n == 0) { /* the file shrank under us: the promised Content-Length is a lie */
        conn_close_later(io->conns, c, CONN_END_ERROR, "file truncated while sending");
        return false;
    }
    if (n > 0) {
        io->metrics->bytes_out += (uint64_t)n;
        h->out_sent += (uint64_t)n;
        h->file_left -= (uint64_t)n;
        if (h->file_left == 0) {
            close(h->file_fd);
            h->file_fd = -1;
        }
    }
    return true;
}

/* One write (and, once the buffer is empty, one sendfile) for this connection. */
static void flush_conn(struct conn_io *io, struct conn *c)
{
    if (c->phase == CONN_CLOSING || c->phase == CONN_FREE)
        return;
    bool was_blocked = c->phase == CONN_HTTP && http_is_blocked(c);
    /* A wsrelay.batch client's messages since the last write become one frame now. */
    if (!bcast_seal(io->conns, c))
        return;

    if (buf_size(&c->wbuf) > 0) {
        ssize_t n = transport_send(&c->tp, buf_head(&c->wbuf), buf_size(&c->wbuf),
                                   file_left(c) > 0); /* a head, its file next */
        if (n < 0 && n != -EAGAIN && n != -EINTR) {
            conn_close_later(io->conns, c, CONN_END_PEER_GONE,
                             n == -EPIPE || n == -ECONNRESET ? "peer vanished" : "write error");
            return;
        }
        if (n > 0) {
            buf_consume(&c->wbuf, (size_t)n);
            io->metrics->bytes_out += (uint64_t)n;
            if (c->route == CONN_ROUTE_NONE)
                c->http.out_sent += (uint64_t)n;
        }
    }
    /* Judged after the write, not when output is queued: a big batch for a fast reader goes
     * straight into its socket; only output the kernel would not take makes a reader slow. */
    c->is_behind = buf_size(&c->wbuf) >= io->conns->conflate_mark;
    if (c->route == CONN_ROUTE_ROOM && !c->is_behind && c->ws.is_owed)
        io->ops->on_caught_up(io->ctx, c); /* queued now, written on the next writable event */
    if (buf_size(&c->wbuf) == 0 && file_left(c) > 0 && !send_file_chunk(io, c))
        return;

    if (!has_output(c)) {
        buf_shrink(&c->wbuf, c->route == CONN_ROUTE_NONE ? SHRINK_KEEP : WS_SHRINK_KEEP);
        if (c->phase == CONN_HTTP)
            c->since_ms = io->loop->now_ms; /* keep-alive: the next request's clock starts (the
                                             * tick restarts it once the peer has it all) */
        if (c->phase == CONN_DRAINING && !c->is_lingering) {
            /* Lingering close (RFC 9112 §9.6; RFC 6455 §7.1.1 asks the server to close the
             * TCP connection first): send our FIN now, then read and discard until the
             * peer's. Closing at once while its bytes are still arriving would make our
             * kernel answer them with a reset, which can destroy the very response or close
             * frame we just sent before the peer reads it. */
            transport_shutdown_write(&c->tp);
            c->is_lingering = true;
        }
    }
    update_interest(io, c);
    /* Output drained below the pipelining mark: requests already read may go on. */
    if (was_blocked && !http_is_blocked(c))
        process_input(io, c);
}

/* Writes once to every connection queued since the last wait (STYLE §3). Those with bytes
 * left are armed for EPOLLOUT and continue when the socket is writable.
 *
 * A flush can run input (an HTTP connection unblocked by its flush parses the requests it
 * had already read), and input can queue output, for this connection or, through a
 * broadcast, for others. So the list can grow while we walk it. Every entry keeps its
 * is_queued flag until the whole pass is over: a connection is listed at most once per pass
 * (the list never outgrows the slot count), and output added to a connection already
 * flushed in this pass is left to EPOLLOUT, armed in the second loop. */
static void flush_writers(struct conn_io *io)
{
    struct conn_table *t = io->conns;
    for (size_t i = 0; i < t->nwriters; i++)
        flush_conn(io, &t->conns[t->writers[i]]);
    for (size_t i = 0; i < t->nwriters; i++) {
        struct conn *c = &t->conns[t->writers[i]];
        c->is_queued = false;
        if (c->phase != CONN_CLOSING && c->phase != CONN_FREE)
            update_interest(io, c);
    }
    t->nwriters = 0;
}

/* ==== 2. Ending ========================================================================= */

void conn_io_drain(struct conn_io *io, struct conn *c, enum conn_end end, const char *why)
{
    if (c->phase == CONN_CLOSING || c->phase == CONN_DRAINING)
        return;
    if (c->phase == CONN_WS)
        io->ops->on_end(io->ctx, c);
    c->phase = CONN_DRAINING;
    c->end = end;
    c->close_reason = why;
    c->since_ms = io->loop->now_ms;
    conn_queue_write(io->conns, c);
}

/* Data frames the peer sends after this are never parsed (§7.1.7: "MUST NOT ... process
 * further data"); the server starts the TCP close (§7.1.1) with a lingering close. */
void conn_io_ws_fail(struct conn_io *io, struct conn *c, uint16_t code, const char *why)
{
    log_at(code == WS_CLOSE_GOING_AWAY ? LL_INFO : LL_WARN,
           "conn=%llu peer=%s route=%s close=%u \"%s\"", (unsigned long long)c->serial,
           conn_peer_text(c).s, conn_route_name(c->route), code, why);
    uint8_t body[FRAME_CONTROL_MAX];
    if (!bcast_one(io->conns, c, FRAME_OP_CLOSE, body, ws_close_payload(body, code, why)))
        return; /* no room even for the close frame: marked closing */
    conn_io_drain(io, c,
                  code == WS_CLOSE_GOING_AWAY ? CONN_END_SHUTDOWN
                  : code == WS_CLOSE_INTERNAL ? CONN_END_ERROR
                                              : CONN_END_PROTOCOL,
                  why);
}

/* Frees every connection marked CLOSING. Runs between event batches only, so no handler
 * ever holds a pointer to a connection that disappears under it. Leaving a room broadcasts
 * a leave, which may mark more slow readers: the loop takes them too. */
static void reap(struct conn_io *io)
{
    struct conn_table *t = io->conns;
    while (t->nclosing > 0) {
        struct conn *c = &t->conns[t->closing[--t->nclosing]];
        if (c->route != CONN_ROUTE_NONE)
            io->ops->on_end(io->ctx, c); /* harmless if it left already, while draining */
        log_at(LL_INFO, "conn=%llu peer=%s route=%s \"closed: %s\"", (unsigned long long)c->serial,
               conn_peer_text(c).s, conn_route_name(c->route),
               c->close_reason != NULL ? c->close_reason : "done");
        io->metrics->disconnects[c->end]++;
        if (c->route != CONN_ROUTE_NONE)
            io->ws_open[c->route]--;
        loop_del(io->loop, &c->watch);
        conn_release(t, c);
        io->reaped_since_tick++; /* its buffers went back to malloc: see conn_io_tick */
    }
}

void conn_io_flush(struct conn_io *io)
{
    /* Order matters: reap (which may broadcast leaves) before flushing, so those leaves go
     * out in this round; and again, while reaping marked more. */
    do {
        reap(io);
        flush_writers(io);
    } while (io->conns->nclosing > 0);
}

/* ==== 3. Responses ====================================================================== */

void conn_io_response_done(struct conn_io *io, struct conn *c, bool keep_alive)
{
    conn_queue_write(io->conns, c);
    if (!keep_alive)
        conn_io_drain(io, c, CONN_END_HTTP, "response sent, not keep-alive");
}

void conn_io_http_error(struct conn_io *io, struct conn *c, int status, bool keep_alive,
                        bool head_only, const char *extra)
{
    log_at(LL_INFO, "conn=%llu peer=%s status=%d \"%s\"", (unsigned long long)c->serial,
           conn_peer_text(c).s, status, http_reason(status));
    if (http_write_error(&c->wbuf, status, keep_alive, head_only, extra, conn_io_date(io)) != 0) {
        conn_close_later(io->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return;
    }
    conn_io_response_done(io, c, keep_alive);
}

bool conn_io_upgrade(struct conn_io *io, struct conn *c, enum conn_route route, const char *extra)
{
    struct http_response r = {
        .status = 101, .keep_alive = true, .extra_headers = extra, .date = conn_io_date(io)};
    if (http_write_head(&c->wbuf, &r) != 0) {
        conn_close_later(io->conns, c, CONN_END_SLOW_READER, "no room for a response");
        return false;
    }
    conn_queue_write(io->conns, c);
    c->phase = CONN_WS;
    c->route = route;
    c->since_ms = io->loop->now_ms;
    /* From here on the connection's per-phase memory is WebSocket state (conn.h's union). */
    assert(file_left(c) == 0); /* never upgraded while a file is streaming */
    c->ws = (struct conn_ws){.ping_sent_ms = io->loop->now_ms};
    ws_init(&c->ws.session, io->cfg->max_message);
    io->ws_open[route]++;
    log_at(LL_INFO, "conn=%llu peer=%s route=%s \"websocket open\"", (unsigned long long)c->serial,
           conn_peer_text(c).s, conn_route_name(route));
    return true;
}

void conn_io_send_file(struct conn_io *io, struct conn *c, int file_fd, uint64_t size)
{
    if (c->tp.ssl != NULL && !io->is_file_path_logged) {
        io->is_file_path_logged = true;
        log_at(LL_INFO, "tls=%s \"static files over TLS: %s\"", tls_version(&c->tp),
               tls_uses_ktls(&c->tp) ? "kTLS, sendfile() stays zero-copy"
                                     : "no kTLS here (kernel tls module absent or cipher "
                                       "unsupported): read() and SSL_write()");
    }
    c->http.file_fd = file_fd;
    c->http.file_off = 0;
    c->http.file_left = size;
}

/* ==== 4. Input ========================================================================== */

/* An HTTP connection's responses start waiting for their reader now (see check_http_output).
 * What the kernel still holds of earlier ones is the base: the peer acknowledging it counts. */
static void start_output_clock(struct conn *c, uint64_t now_ms)
{
    long unacked = net_unacked(c->tp.fd);
    c->http.out_since_ms = now_ms;
    c->http.acked_ms = now_ms;
    c->http.out_sent = 0;
    c->http.out_acked = 0;
    c->http.unacked_base = unacked > 0 ? (uint64_t)unacked : 0;
}

/* After a request: its response starts a new period of waiting for the reader if nothing of
 * ours was pending before it (a keep-alive client's next request: one SIOCOUTQ for the
 * base), or joins the period already running (pipelined requests). */
static void note_http_output(struct conn_io *io, struct conn *c, bool was_idle)
{
    bool is_http =
        c->route == CONN_ROUTE_NONE && (c->phase == CONN_HTTP || c->phase == CONN_DRAINING);
    if (is_http && has_output(c) && (was_idle || c->http.out_since_ms == 0))
        start_output_clock(c, io->loop->now_ms);
}

/* Runs the parser of the connection's phase over in[0..len) until it needs more bytes, the
 * connection stops reading, or it is closed. Returns how many bytes it consumed; the caller
 * keeps the rest for the next call. in is the shared read buffer or the connection's rbuf;
 * either way, views into it (a request's fields, an event's payload) die when we return. */
static size_t feed(struct conn_io *io, struct conn *c, uint8_t *in, size_t len)
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
                c->http.seen = (uint32_t)n_left; /* < CONN_IO_RBUF_LIMIT */
                break;
            }
            bool was_idle = !has_output(c);
            if (n < 0) {
                conn_io_http_error(io, c, http_err_status((int)n), false, false, NULL);
                note_http_output(io, c, was_idle);
                break;
            }
            c->http.seen = 0;
            io->metrics->http_requests++;
            io->ops->on_request(io->ctx, c, &req); /* may make c a WebSocket: http is gone */
            used += (size_t)n;
            note_http_output(io, c, was_idle);
        } else if (c->phase == CONN_WS) {
            struct ws_event ev;
            ssize_t n = ws_feed(&c->ws.session, p, n_left, &ev);
            if (n == 0)
                break;
            if (n < 0) {
                conn_io_ws_fail(io, c, ws_err_close_code((int)n), ws_err_reason((int)n));
                break;
            }
            io->ops->on_ws_event(io->ctx, c, &ev); /* ev.data may point into in: use it now */
            used += (size_t)n;
        } else {
            used = len; /* draining or closing: input is ignored */
        }
    }
    return used;
}

/* Parses what waits in the connection's own rbuf: after a read that found leftovers there,
 * and when an HTTP connection's output drained enough to take its next pipelined request. */
static void process_input(struct conn_io *io, struct conn *c)
{
    buf_consume(&c->rbuf, feed(io, c, buf_head(&c->rbuf), buf_size(&c->rbuf)));
    if (c->phase == CONN_HTTP || c->phase == CONN_WS)
        update_interest_after_input(io, c);
}

/* The socket is readable (or reported an error, which the read will reveal). One read per
 * wake-up: level-triggered epoll calls again if more is waiting, and every other connection
 * gets its turn in between.
 *
 * The usual case: rbuf is empty, so read into the shared buffer, parse there, and copy into
 * rbuf only the tail the parser could not use yet. With leftovers already in rbuf, read
 * behind them instead (STYLE §3's reserve-then-commit), so the bytes stay contiguous. */
static void on_readable(struct conn_io *io, struct conn *c)
{
    bool has_leftovers = buf_size(&c->rbuf) > 0;
    uint8_t *dst = io->rx;
    if (has_leftovers) {
        dst = buf_reserve(&c->rbuf, CONN_IO_READ_CHUNK);
        if (dst == NULL) {
            conn_close_later(io->conns, c, CONN_END_PROTOCOL, "input over limit");
            return;
        }
    }
    ssize_t n = transport_recv(&c->tp, dst, CONN_IO_READ_CHUNK);
    if (n == -EAGAIN || n == -EINTR)
        return;
    if (n <= 0) {
        const char *why =
            n == 0 ? (c->phase == CONN_WS ? "peer closed without a close frame" : "peer closed")
            : n == -ECONNRESET          ? "connection reset"
            : n == -EPROTO && c->tp.why ? c->tp.why /* TLS: OpenSSL's reason */
                                        : "read error";
        conn_close_later(io->conns, c,
                         n == 0 && c->phase == CONN_HTTP ? CONN_END_HTTP : CONN_END_PEER_GONE, why);
        return;
    }
    io->metrics->bytes_in += (uint64_t)n;
    if (has_leftovers) {
        buf_commit(&c->rbuf, (size_t)n);
        process_input(io, c);
        return;
    }
    size_t used = feed(io, c, io->rx, (size_t)n);
    if (used < (size_t)n && buf_append(&c->rbuf, io->rx + used, (size_t)n - used) != 0)
        conn_close_later(io->conns, c, CONN_END_PROTOCOL, "input over limit");
    if (c->phase == CONN_HTTP || c->phase == CONN_WS)
        update_interest_after_input(io, c);
}

/* Lingering (see flush_conn): whatever the peer still sends is read and thrown away; its FIN
 * (or an error) ends the connection with the reason it was draining for. */
static void linger_read(struct conn_io *io, struct conn *c)
{
    uint8_t sink[4096];
    ssize_t n = transport_recv(&c->tp, sink, sizeof sink);
    if (n == -EAGAIN || n == -EINTR)
        return;
    if (n > 0) {
        io->metrics->bytes_in += (uint64_t)n;
        return;
    }
    conn_close_later(io->conns, c, c->end, c->close_reason);
}

static void on_conn_event(struct loop_watch *w, uint32_t events)
{
    struct conn_io *io = w->ctx;
    struct conn *c = conn_of_watch(w);
    if (c->phase == CONN_CLOSING)
        return;
    /* TLS: a read stopped for want of writability goes on now (taken before the flush,
     * which may itself clear the want by writing). */
    bool is_read_waiting = (events & LOOP_OUT) && tls_wants_write(&c->tp);
    if (events & LOOP_OUT)
        flush_conn(io, c);
    if (c->phase == CONN_CLOSING)
        return;
    if (is_read_waiting)
        events |= LOOP_IN;
    if (events & (LOOP_IN | LOOP_ERR)) {
        if (c->phase == CONN_HTTP || c->phase == CONN_WS)
            on_readable(io, c);
        else if (c->is_lingering)
            linger_read(io, c);
        else if (events & LOOP_ERR) /* draining with input disarmed: the peer is gone */
            conn_close_later(io->conns, c, CONN_END_PEER_GONE, "connection reset while draining");
    }
}

/* ==== 5. Accepting and shedding load ===================================================== */

/* Every slot is taken: say so (RFC 9110 §15.6.4) and close. */
static void refuse_full(struct conn_io *io, int fd, const struct net_addr *peer)
{
    char text[NET_ADDR_STR];
    net_addr_format(peer, text);
    struct buf b;
    buf_init(&b, 512);
    if (io->tls != NULL) /* a TLS client could not read a plain answer: just close */
        transport_refuse(fd, NULL, 0);
    else if (http_write_error(&b, 503, false, false, NULL, conn_io_date(io)) == 0)
        transport_refuse(fd, buf_head(&b), buf_size(&b));
    else
        close(fd);
    buf_free(&b);
    log_at(LL_WARN, "peer=%s max_clients=%zu \"refused: every slot is taken\"", text,
           io->cfg->max_clients);
}

/* Out of descriptors (EMFILE): accept() fails while the connection waits, so level-triggered
 * epoll would report it again at once, for ever. Close the spare descriptor, accept and
 * close the connection (the peer sees a reset rather than a hang), then take the spare back. */
static void shed_load(struct conn_io *io)
{
    if (io->spare_fd >= 0) {
        close(io->spare_fd);
        int fd = accept(io->listen_fd, NULL, NULL);
        if (fd >= 0)
            close(fd);
        io->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    } else {
        /* No spare to sacrifice: stop listening until the next tick rather than spin on an
         * accept() that keeps failing (libuv does the same). */
        loop_set(io->loop, &io->listener, 0);
        io->is_accept_paused = true;
    }
    if (io->loop->now_ms - io->emfile_logged_ms >= 1000) { /* once a second, not per attempt */
        io->emfile_logged_ms = io->loop->now_ms;
        log_at(LL_ERROR, "\"out of file descriptors: shedding connections\"");
    }
}

static void on_accept(struct loop_watch *w, uint32_t events)
{
    struct conn_io *io = w->ctx;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct net_addr peer;
        int fd = net_accept(io->listen_fd, &peer);
        if (fd == -EAGAIN || fd == -EINTR || fd == -ECONNABORTED)
            return;
        if (fd == -EMFILE || fd == -ENFILE) {
            shed_load(io);
            return;
        }
        if (fd < 0) {
            log_at(LL_ERROR, "errno=%d \"accept failed: %s\"", -fd, strerror(-fd));
            return;
        }
        struct transport tp = transport_make(&transport_tcp, fd);
        if (io->tls != NULL && tls_transport(io->tls, fd, &tp) < 0) {
            log_at(LL_ERROR, "\"out of memory for a TLS connection\"");
            close(fd);
            continue;
        }
        struct conn *c = conn_open(io->conns, &tp, &peer, ++io->serial, io->loop->now_ms);
        io->metrics->connections_total++;
        if (c == NULL) {
            io->metrics->refused_full++;
            tp.fd = -1; /* refuse_full closes the socket itself */
            transport_close(&tp, false);
            refuse_full(io, fd, &peer);
            continue;
        }
        net_set_nodelay(fd);
        net_set_sndbuf(fd, SOCKET_SNDBUF);
        if (loop_add(io->loop, &c->watch, fd, LOOP_IN, on_conn_event, io) < 0) {
            conn_release(io->conns, c);
            continue;
        }
        log_at(LL_INFO, "conn=%llu peer=%s open=%zu \"connected\"", (unsigned long long)c->serial,
               conn_peer_text(c).s, io->conns->nopen);
    }
}

void conn_io_read_buffered(struct conn_io *io)
{
    /* Reading may list connections again (their transport still holds more): those wait
     * for the next pass, behind the ones listed now, so nobody is starved. */
    size_t n = io->nbuffered;
    for (size_t i = 0; i < n; i++) {
        struct conn *c = &io->conns->conns[io->buffered[i]];
        if (!c->is_buffered)
            continue; /* stale: released (and perhaps reused) since it was listed */
        c->is_buffered = false;
        on_conn_event(&c->watch, LOOP_IN);
    }
    memmove(io->buffered, io->buffered + n, (io->nbuffered - n) * sizeof *io->buffered);
    io->nbuffered -= n;
}

int conn_io_init(struct conn_io *io, const struct config *cfg, struct loop *loop,
                 struct conn_table *conns, struct metrics *metrics, int listen_fd,
                 const struct conn_io_ops *ops, void *ctx)
{
    io->cfg = cfg;
    io->loop = loop;
    io->conns = conns;
    io->metrics = metrics;
    io->ops = ops;
    io->ctx = ctx;
    io->listen_fd = listen_fd;
    io->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    io->buffered = calloc(2 * conns->max, sizeof *io->buffered);
    if (io->buffered == NULL)
        return -ENOMEM;
    return loop_add(loop, &io->listener, listen_fd, LOOP_IN, on_accept, io);
}

void conn_io_free(struct conn_io *io)
{
    if (io->listen_fd >= 0)
        close(io->listen_fd);
    if (io->spare_fd >= 0)
        close(io->spare_fd);
    io->listen_fd = io->spare_fd = -1;
    free(io->buffered);
    io->buffered = NULL;
}

/* ==== 6. Timeouts ======================================================================= */

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
static void check_http_output(struct conn_io *io, struct conn *c, uint64_t now)
{
    struct conn_http *h = &c->http;
    if (h->out_since_ms == 0) /* output queued outside a request (cannot happen today) */
        start_output_clock(c, now);
    /* The check runs a few times per --handshake-timeout (the tick), so one SIOCOUTQ per
     * waiting connection per tick: nothing on the per-message path. */
    long unacked = net_unacked(c->tp.fd);
    uint64_t queued = h->out_sent + h->unacked_base; /* this period's, and what came before */
    uint64_t acked = unacked < 0                  ? h->out_sent /* no SIOCOUTQ: trust send() */
                     : (uint64_t)unacked < queued ? queued - (uint64_t)unacked
                                                  : 0;
    const char *why =
        conn_http_judge_reader(h, acked, now, io->cfg->handshake_timeout_ms, HTTP_MIN_SEND_RATE);
    if (why == NULL)
        return;
    log_at(LL_INFO, "conn=%llu peer=%s sent=%llu acked=%llu \"%s\"", (unsigned long long)c->serial,
           conn_peer_text(c).s, (unsigned long long)h->out_sent, (unsigned long long)h->out_acked,
           why);
    /* A reset, not a FIN: the kernel would otherwise go on trickling the queued bytes to this
     * very reader long after the slot is free, holding up to SO_SNDBUF of kernel memory. */
    c->is_reset = true;
    conn_close_later(io->conns, c, CONN_END_TIMEOUT, why);
}

/* An HTTP connection's responses (keep-alive, or its last one while draining) still on their
 * way: in our buffers, or in the kernel's and not yet acknowledged (slowhttptest's answers
 * all fit in the send buffer). While they are, the clock is the reader's (check_http_output),
 * and true is returned. When the peer has them all, the connection's own clock (idle
 * keep-alive, lingering close) restarts now. */
static bool http_output_pending(struct conn_io *io, struct conn *c, uint64_t now)
{
    if (c->route != CONN_ROUTE_NONE)
        return false;
    if (has_output(c) || (c->http.out_since_ms != 0 && net_unacked(c->tp.fd) > 0)) {
        check_http_output(io, c, now);
        return true;
    }
    if (c->http.out_since_ms != 0) { /* delivered */
        c->http.out_since_ms = 0;
        c->since_ms = now;
        return true;
    }
    return false;
}

/* RFC 6455 §5.5.2: a ping asks for a pong. A peer silent for a whole interval after our ping
 * is gone (a dead NAT, a sleeping laptop): drop it without a close frame, which it would not
 * read anyway. */
static void check_ping(struct conn_io *io, struct conn *c, uint64_t now)
{
    const struct config *cfg = io->cfg;
    if (cfg->ping_interval_ms == 0 || now - c->ws.ping_sent_ms < cfg->ping_interval_ms)
        return;
    if (c->ws.is_awaiting_pong) {
        conn_close_later(io->conns, c, CONN_END_PING_TIMEOUT, "no pong within --ping-interval");
        return;
    }
    /* Random, not our clock: a clock can be guessed by a client that never reads, and its
     * guessed pong would pass for an answer (routes.c's WS_EV_PONG). */
    if (entropy_fill(c->ws.ping_payload, CONN_PING_LEN) < 0) {
        conn_io_ws_fail(io, c, WS_CLOSE_INTERNAL, "no randomness for a ping");
        return;
    }
    if (bcast_one(io->conns, c, FRAME_OP_PING, c->ws.ping_payload, CONN_PING_LEN))
        io->metrics->messages_out++;
    c->ws.is_awaiting_pong = true;
    c->ws.ping_sent_ms = now;
}

void conn_io_tick(struct conn_io *io, uint64_t now)
{
    const struct config *cfg = io->cfg;
    if (io->is_accept_paused && !io->is_stopping) {
        io->is_accept_paused = false;
        loop_set(io->loop, &io->listener, LOOP_IN);
    }

    size_t released = 0;
    /* Simplification: a scan of every slot, a few times a second. A timer wheel or a heap
     * would visit only the connections whose deadline passed; at wsrelay's slot counts the
     * scan costs microseconds. */
    for (size_t i = 0; i < io->conns->nused; i++) {
        struct conn *c = &io->conns->conns[i];
        uint64_t age = now - c->since_ms;
        if (c->phase != CONN_FREE && c->phase != CONN_CLOSING && conn_trim(c))
            released++; /* an idle connection gave its buffers back */
        switch (c->phase) {
        case CONN_HTTP:
            if (http_output_pending(io, c, now))
                break;
            /* Slowloris: a request that never completes holds a slot for ever. */
            if (age >= cfg->handshake_timeout_ms) {
                if (buf_size(&c->rbuf) > 0)
                    conn_io_http_error(io, c, 408, false, false, NULL); /* RFC 9110 §15.5.9 */
                else
                    conn_close_later(io->conns, c, CONN_END_TIMEOUT, "idle");
                if (c->phase == CONN_DRAINING)
                    c->end = CONN_END_TIMEOUT;
            }
            break;
        case CONN_WS:
            check_ping(io, c, now);
            break;
        case CONN_DRAINING:
            /* An HTTP response on a closing connection (Connection: close, HTTP/1.0, an
             * error) is judged like any other while it waits for its reader: a lawful slow
             * download finishes, a reader that does not read is cut. Then the lingering close
             * has CONN_IO_DRAIN_TIMEOUT_MS to see the peer's FIN; a WebSocket's close frame has it
             * from the start. Whatever the kernel still holds then goes with a reset. */
            if (http_output_pending(io, c, now))
                break;
            if (age >= CONN_IO_DRAIN_TIMEOUT_MS) {
                c->is_reset = net_unacked(c->tp.fd) > 0;
                conn_close_later(io->conns, c, CONN_END_TIMEOUT, "timed out while draining");
            }
            break;
        case CONN_FREE:
        case CONN_CLOSING:
            break;
        }
    }
    /* Freed buffers go back to malloc, not to the kernel: thousands of connections that each
     * freed a few hundred bytes (idle ones trimmed above, or closed ones reaped since the
     * last tick, with their rooms' lists) leave the heap's pages resident. Hand them back
     * (glibc's malloc_trim also releases free pages in the middle of the heap), at most once
     * a tick and only when something was released, so a busy server never pays for it. */
    if (released > 0 || io->reaped_since_tick > 0)
        malloc_trim(0);
    io->reaped_since_tick = 0;
}

size_t conn_io_close_websockets(struct conn_io *io, size_t n)
{
    /* Upgrades are refused while draining, so no WebSocket appears behind the cursor: one
     * pass over the table serves the whole drain. */
    size_t done = 0;
    for (; io->close_cursor < io->conns->nused && done < n; io->close_cursor++) {
        struct conn *c = &io->conns->conns[io->close_cursor];
        if (c->phase == CONN_WS) {
            conn_io_ws_fail(io, c, WS_CLOSE_GOING_AWAY, "server draining");
            done++;
        }
    }
    return done;
}

void conn_io_stop(struct conn_io *io)
{
    io->is_stopping = true;
    /* Close the listener now, so new connections are refused at once instead of waiting in
     * the backlog for a server that will never accept them. */
    loop_del(io->loop, &io->listener);
    close(io->listen_fd);
    io->listen_fd = -1;

    for (size_t i = 0; i < io->conns->nused; i++) {
        struct conn *c = &io->conns->conns[i];
        if (c->phase == CONN_WS)
            conn_io_ws_fail(io, c, WS_CLOSE_GOING_AWAY, "server shutting down");
        else if (c->phase == CONN_HTTP && has_output(c))
            conn_io_drain(io, c, CONN_END_SHUTDOWN, "server shutting down");
        else if (c->phase == CONN_HTTP)
            conn_close_later(io->conns, c, CONN_END_SHUTDOWN, "server shutting down");
    }
}
