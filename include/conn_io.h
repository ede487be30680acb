/* conn_io.h: a connection's life at the edge.
 *
 * Owns: accepting (and shedding load when out of slots or descriptors), reading and feeding
 * the parser of the connection's phase (HTTP or WebSocket), flushing output (the writers
 * list, interest in writability, sendfile of static files), ending connections (draining,
 * failing a WebSocket, reaping), and the per-phase timeouts (idle and slow HTTP, slow
 * readers of responses, pings, draining).
 * Does not own: what a request or a message means (routes.c, through struct conn_io_ops),
 * rooms (room.c), or the socket calls themselves (transport.c).
 * Edge: it owns the listening socket and calls the loop.
 *
 *    accept ─▶ conn_open ─▶ on_readable ─▶ feed ─▶ http_parse_request ─▶ ops.on_request
 *                                             └──▶ ws_feed ─────────────▶ ops.on_ws_event
 *    routes/room queue output ─▶ conn_io_flush (one send each) ─▶ EPOLLOUT for the rest
 *    conn_close_later ─▶ conn_io_flush reaps it (ops.on_end, then the slot is free)
 */
#ifndef WSRELAY_CONN_IO_H
#define WSRELAY_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "conn.h"
#include "http.h"
#include "loop.h"
#include "metrics.h"
#include "tls.h"
#include "ws.h"

enum {
    CONN_IO_READ_CHUNK = 64 * 1024, /* bytes asked of one read(), into the shared buffer: a
                                     * busy sender's whole backlog in one system call */
    /* unparsed input kept per connection: a partial request head or frame header plus one
     * more read */
    CONN_IO_RBUF_LIMIT = CONN_IO_READ_CHUNK + HTTP_MAX_HEAD,
    CONN_IO_DRAIN_TIMEOUT_MS = 5000, /* a draining peer that won't take its last bytes */
};

/* What conn_io reports upward (routes.c implements it). */
struct conn_io_ops {
    /* One complete request head on an HTTP connection; its views die when this returns. */
    void (*on_request)(void *ctx, struct conn *c, const struct http_request *req);
    /* One event from a WebSocket; ev's data may point into the read buffer: use it now. */
    void (*on_ws_event)(void *ctx, struct conn *c, const struct ws_event *ev);
    /* A /ws reader that was behind and is owed updates has caught up (see bcast.h). */
    void (*on_caught_up)(void *ctx, struct conn *c);
    /* c stops being a live WebSocket: called when it starts draining and again when it is
     * reaped (every /ws and /echo connection), so it must be idempotent (routes.c's is:
     * room_leave() leaves a client in no room alone). */
    void (*on_end)(void *ctx, struct conn *c);
};

struct conn_io {
    const struct config *cfg;
    struct loop *loop;
    struct conn_table *conns;
    struct metrics *metrics;
    const struct conn_io_ops *ops;
    void *ctx;

    struct loop_watch listener;
    int listen_fd;
    struct tls_server *tls;   /* --tls-cert: every accepted connection speaks TLS; NULL: plain */
    bool is_file_path_logged; /* how static files go out over TLS (kTLS or not): said once */
    /* Connections whose transport holds input epoll cannot see (transport_has_buffered):
     * read again before the next wait. A slot is listed at most twice (once stale, from a
     * connection released after it was listed, once live), hence 2 * max entries. */
    uint32_t *buffered;
    size_t nbuffered;
    int spare_fd;          /* held open so that EMFILE can still be answered (libuv's trick) */
    bool is_accept_paused; /* out of descriptors with no spare: see shed_load() */
    bool is_stopping;
    size_t close_cursor; /* conn_io_close_websockets: the slots before it are done */
    uint64_t serial;     /* last connection serial handed out */
    uint64_t emfile_logged_ms;
    size_t reaped_since_tick;         /* connections freed since the last tick (for malloc_trim) */
    size_t ws_open[CONN_ROUTE_COUNT]; /* WebSocket connections by route, for /metrics */
    time_t date_sec;                  /* the second `date` was formatted for */
    char date[40];                    /* IMF-fixdate for the Date header, cached per second */
    /* Every read() lands here first and is parsed in place; only what a connection leaves
     * unparsed (a partial head or frame) is copied into its own rbuf. So an idle connection
     * owns no input buffer, where one per connection would cost 64 KiB each. */
    uint8_t rx[CONN_IO_READ_CHUNK];
};

/* Starts accepting on listen_fd (which conn_io now owns). Returns 0 or -errno. */
int conn_io_init(struct conn_io *io, const struct config *cfg, struct loop *loop,
                 struct conn_table *conns, struct metrics *metrics, int listen_fd,
                 const struct conn_io_ops *ops, void *ctx);

/* Before each pass: reads again every connection whose transport still holds input (TLS
 * records inside OpenSSL), which no epoll event will announce. */
void conn_io_read_buffered(struct conn_io *io);

/* Is any connection waiting for conn_io_read_buffered()? Then the loop must not sleep. */
static inline bool conn_io_has_buffered(const struct conn_io *io)
{
    return io->nbuffered > 0;
}

/* Closes the listening socket and the spare descriptor (connections are the table's). */
void conn_io_free(struct conn_io *io);

/* Before each wait: frees the connections marked closing (which may queue leaves to others,
 * and mark more), then writes once to each queued connection. */
void conn_io_flush(struct conn_io *io);

/* The periodic tick: every per-phase timeout, pings, and releasing idle buffers. */
void conn_io_tick(struct conn_io *io, uint64_t now_ms);

/* SIGTERM: stop accepting, send every WebSocket close 1001, let HTTP responses in flight
 * finish, close idle connections. */
void conn_io_stop(struct conn_io *io);

/* A drain (--drain-time): sends close 1001 "server draining" to the next n open WebSockets,
 * in table order, and returns how many it closed; fewer than n means none is left. */
size_t conn_io_close_websockets(struct conn_io *io, size_t n);

/* The Date header (RFC 9110 §6.6.1): formatted at most once per second. */
const char *conn_io_date(struct conn_io *io);

/* Stops reading, lets the queued bytes (a final response, a close frame) go out, then
 * closes with a lingering close. The reason is logged when the connection is reaped. */
void conn_io_drain(struct conn_io *io, struct conn *c, enum conn_end end, const char *why);

/* Fails a WebSocket (RFC 6455 §7.1.7): a close frame with code and reason, then drains. */
void conn_io_ws_fail(struct conn_io *io, struct conn *c, uint16_t code, const char *why);

/* A response was appended to c->wbuf: queue it, and without keep-alive drain afterwards.
 * The one ending of every HTTP response. */
void conn_io_response_done(struct conn_io *io, struct conn *c, bool keep_alive);

/* Queues an error response (http_write_error) and ends it with conn_io_response_done(). */
void conn_io_http_error(struct conn_io *io, struct conn *c, int status, bool keep_alive,
                        bool head_only, const char *extra);

/* Appends a 101 head (extra holds the Upgrade headers) and turns c into a WebSocket of the
 * route; the rest of its input is frames. Returns false if the response did not fit (c is
 * marked closing). */
bool conn_io_upgrade(struct conn_io *io, struct conn *c, enum conn_route route, const char *extra);

/* A static file's bytes follow the head just queued: sent with sendfile() as the socket
 * takes them (c owns file_fd from now on). */
void conn_io_send_file(struct conn_io *io, struct conn *c, int file_fd, uint64_t size);

#endif
