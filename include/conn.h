/* conn.h: the fixed table of connection slots, and each connection's state.
 *
 * Owns: the slot array (allocated once at start-up: --max-clients entries, no allocation per
 * accept), each slot's phase, buffers, transport and WebSocket session, and three index
 * lists that let the server touch only the connections that matter: free slots, connections
 * with output queued this iteration (writers), and connections marked for closing.
 * Does not own: deciding when to close (conn_io.c), what goes into the buffers, or rooms
 * (room.c keeps each room's member list).
 *
 * Lifetime (smallchat's slots, redis's freeClientAsync):
 *
 *   accept -> HTTP --101 on /ws or /echo--> WS
 *              |                             |
 *              +--- final response ---+      +--- close frame sent ---+
 *                                     v                               v
 *                                 DRAINING (flush wbuf, FIN, discard input until EOF)
 *                                     |
 *        any error, EOF, timeout ---> CLOSING (marked; reaped after the event batch) -> FREE
 *
 * Nothing frees a connection in the middle of an event batch or a broadcast: a write error
 * found on B while relaying A's message only marks B, so no pointer in the batch dangles.
 */
#ifndef WSRELAY_CONN_H
#define WSRELAY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "buf.h"
#include "loop.h"
#include "net.h"
#include "presence.h"
#include "rate.h"
#include "transport.h"
#include "ws.h"

enum conn_phase {
    CONN_FREE,     /* slot unused */
    CONN_HTTP,     /* reading HTTP requests (keep-alive: possibly many) */
    CONN_WS,       /* WebSocket open */
    CONN_DRAINING, /* parses nothing more; flushes its output (a final response or close
                    * frame), sends FIN, then discards input until the peer's FIN */
    CONN_CLOSING,  /* marked; reaped after the current batch */
};

enum conn_route {
    CONN_ROUTE_NONE, /* plain HTTP */
    CONN_ROUTE_ROOM, /* /ws, /ws/<room>: a shared-cursors room */
    CONN_ROUTE_ECHO, /* /echo */
    CONN_ROUTE_COUNT
};

/* "http", "/ws" or "/echo", for logs. */
const char *conn_route_name(enum conn_route r);

/* Why a connection ended, by kind: the label of wsrelay_disconnects_total in /metrics.
 * The log line carries the detail (a static phrase) beside it. */
enum conn_end {
    CONN_END_CLOSED,       /* WebSocket close handshake */
    CONN_END_HTTP,         /* HTTP connection finished (peer closed, or not keep-alive) */
    CONN_END_PROTOCOL,     /* we failed it: protocol error, bad message, bad request */
    CONN_END_SLOW_READER,  /* output over --max-buffer */
    CONN_END_TIMEOUT,      /* --handshake-timeout, or a draining peer that won't read */
    CONN_END_PING_TIMEOUT, /* no pong within --ping-interval */
    CONN_END_PEER_GONE,    /* dropped without a close frame, reset, broken pipe */
    CONN_END_SHUTDOWN,     /* the server is stopping */
    CONN_END_ERROR,        /* our side: out of memory, a failed system call */
    CONN_END_COUNT
};

/* The metric label for an end kind ("slow_reader"). */
const char *conn_end_name(enum conn_end end);

/* Slot numbers stay below 2^31 (CONFIG_MAX_CLIENTS_MAX, times the remote places, is far
 * less), which leaves bcast.h's BCAST_UNKEPT bit free. */

/* Per-phase state: a connection is plain HTTP or a WebSocket, never both at once, so the
 * two share their memory (route says which is live). Memory per connection is a goal of
 * its own (docs/benchmarks.md): an idle connection is this struct and nothing else. */
struct conn_http {
    uint32_t seen; /* bytes of rbuf the parser already scanned (http_parse_request's last_len) */
    int file_fd;   /* a static file being sent with sendfile() after the head, or -1 */
    uint64_t file_off, file_left;
    /* Slow readers of responses (conn_io.c's check_http_output): since when responses wait
     * for their reader (0: none, and the peer has acknowledged all we sent), what the socket
     * took since, what the kernel still held of earlier ones then (unacked_base), what the
     * peer has acknowledged since, and when that last grew. */
    uint64_t out_since_ms, out_sent, unacked_base, out_acked, acked_ms;
};

/* The keep-alive ping's payload: random (getrandom), so that only a peer that read our ping
 * can answer it (RFC 6455 §5.5.3: a pong answering a ping carries its payload). 64 bits: a
 * client that never reads cannot guess them within one --ping-interval. */
#define CONN_PING_LEN 8

struct conn_ws {
    struct ws_session session;
    uint64_t ping_sent_ms;               /* --ping-interval: when the last ping went out */
    bool is_awaiting_pong;               /* the last ping was not answered yet */
    uint8_t ping_payload[CONN_PING_LEN]; /* the last ping's payload: its pong must echo it */
    struct rate rate;                    /* /ws: the --max-rate token bucket (messages) */
    struct rate byte_rate;               /* /ws: the --max-byte-rate token bucket (bytes) */
    /* Delivery in a room (room.c, "latest position wins"): cursor messages are not queued as
     * they arrive; the room's activity list holds each member's latest, and a member takes
     * every entry newer than seen_seq when it can (docs/architecture.md). */
    uint64_t seen_seq;   /* the room's activity count this client has been given up to */
    uint32_t count_sent; /* the room size this client was last told (wsrelay.batch) */
    bool is_owed;        /* entries newer than seen_seq wait for it: pay once it catches up */
    bool is_batch;       /* negotiated wsrelay.batch: text goes out as JSON-array frames */
    struct batch batch;  /* the open batch at the tail of wbuf (batch.h) */
};

struct conn {
    struct loop_watch watch; /* registration with the loop; watch.ctx is the conn_io */
    struct transport tp;     /* the socket, and how to read and write it */
    uint32_t slot;           /* index in the table, fixed for the slot's life */
    enum conn_phase phase;
    enum conn_route route;    /* CONN_ROUTE_NONE: `http` below is live; otherwise `ws` */
    enum conn_end end;        /* why it is closing (for /metrics) */
    bool is_queued;           /* in the writers list */
    bool is_lingering;        /* DRAINING, output sent and our FIN too: reading until the peer's */
    bool is_busy;             /* wrote since the last tick: keep its buffers (see conn_trim) */
    bool is_behind;           /* after its last write, output past conflate_mark was still pending:
                               * a slow reader, so cursor messages wait for it (room.c) */
    bool is_reset;            /* close with a TCP reset (SO_LINGER 0), dropping unsent bytes */
    bool is_buffered;         /* in conn_io's list of transports holding unread input */
    uint64_t serial;          /* "conn=N" in logs: never reused, unlike slots and descriptors */
    uint64_t since_ms;        /* monotonic time the current phase began: for timeouts */
    struct net_addr peer;     /* for logs */
    const char *close_reason; /* static phrase: why it is closing (for the log) */

    struct buf rbuf; /* bytes read but not parsed yet (a partial request or frame); usually
                      * empty and unallocated: reads go to conn_io's shared buffer */
    struct buf wbuf; /* bytes to send; its limit is --max-buffer */

    union {
        struct conn_http http;
        struct conn_ws ws;
    };
};

struct conn_table {
    struct conn *conns; /* max entries, untouched (so not resident) until first used */
    size_t max;
    size_t nopen; /* slots not FREE */
    size_t nused; /* slots ever used: [0, nused) is all a scan needs to visit */

    uint32_t *free_slots; /* stack of released slot numbers, reused before fresh ones */
    size_t nfree;
    uint32_t *writers; /* slots with output queued, flushed before the next wait */
    size_t nwriters;
    uint32_t *closing; /* slots marked CLOSING, reaped after the batch */
    size_t nclosing;

    size_t rbuf_limit, wbuf_limit, max_message;
    size_t conflate_mark;   /* pending output after a write from which the reader is behind:
                             * cursor messages wait until it catches up */
    size_t burst_mark;      /* pending output, written or not, past which no more cursor
                             * messages are added: half of --max-buffer, so server messages
                             * always find room */
    size_t wbuf_high_water; /* the most output ever pending on one connection */
};

/* Allocates max slots and the index lists. Returns 0 or -ENOMEM. */
int conn_table_init(struct conn_table *t, size_t max, size_t rbuf_limit, size_t wbuf_limit,
                    size_t max_message);

/* Releases every slot still open (closing their descriptors) and the table. */
void conn_table_free(struct conn_table *t);

/* Takes a free slot for the accepted socket tp (which the slot owns from now on), in phase
 * CONN_HTTP. Returns NULL if every slot is taken (tp stays the caller's). */
struct conn *conn_open(struct conn_table *t, const struct transport *tp,
                       const struct net_addr *peer, uint64_t serial, uint64_t now_ms);

/* Marks c for closing, with the kind of end and a static phrase; the first reason wins.
 * Handlers check c->phase == CONN_CLOSING first and do nothing for a marked connection. */
void conn_close_later(struct conn_table *t, struct conn *c, enum conn_end end, const char *why);

/* Queues c to be flushed before the next wait (once, however often it is called). */
void conn_queue_write(struct conn_table *t, struct conn *c);

/* Closes the socket (with a reset if is_reset) and any file, frees buffers and session, returns the
 * slot to the free list. The caller has already stopped watching the socket (loop_del): closing a
 * descriptor removes it from epoll only when no duplicate of it exists, so we never rely on that.
 */
void conn_release(struct conn_table *t, struct conn *c);

/* The slow-reader rules for an HTTP connection whose responses wait for their reader, given
 * how many bytes the peer has acknowledged so far (`acked`, which only grows). Updates
 * h->out_acked and h->acked_ms. Returns NULL while the reader keeps up, else a static reason:
 *   - nothing newly acknowledged for grace_ms: "response not read within --handshake-timeout";
 *   - once grace_ms have passed since the output began (h->out_since_ms), fewer than
 *     min_rate bytes a second acknowledged on average over the whole time minus the grace:
 *     "response read too slowly".
 * Pure: time and counts come in as arguments. */
const char *conn_http_judge_reader(struct conn_http *h, uint64_t acked, uint64_t now_ms,
                                   uint64_t grace_ms, uint64_t min_rate);

/* Releases the storage of empty buffers of a connection that was not busy since the last
 * call, so an idle connection holds no heap memory; called from the periodic tick. Returns
 * true if it released something. */
bool conn_trim(struct conn *c);

/* A connection's peer as text, for one log line: the struct is returned by value, and its
 * array lives until the end of the full expression that called us (C11 §6.2.4), which is
 * exactly the log_at() call. */
struct conn_peer_text {
    char s[NET_ADDR_STR];
};
struct conn_peer_text conn_peer_text(const struct conn *c);

/* Whether c speaks wsrelay.batch (only a room's WebSocket can: the field lives in `ws`). */
static inline bool conn_is_batch(const struct conn *c)
{
    return c->route == CONN_ROUTE_ROOM && c->ws.is_batch;
}

/* The connection that owns a watch (the watch is embedded in struct conn). */
static inline struct conn *conn_of_watch(struct loop_watch *w)
{
    return (struct conn *)(void *)((char *)w - offsetof(struct conn, watch));
}

#endif
