/* conn.h: the fixed table of connection slots, and each connection's state.
 *
 * Owns: the slot array (allocated once at start-up: --max-clients entries, no allocation per
 * accept), each slot's phase, buffers and WebSocket session, and four index lists that let
 * the server touch only the connections that matter: free slots, connections with output
 * queued this iteration (writers), connections marked for closing, and the room (/ws
 * clients, the broadcast's recipients).
 * Does not own: deciding when to close (server.c) or what goes into the buffers.
 *
 * Lifetime (smallchat's slots, redis's freeClientAsync):
 *
 *   accept -> HTTP --101 on /ws or /echo--> WS
 *              |                             |
 *              +--- final response ---+      +--- close frame sent ---+
 *                                     v                               v
 *                                 DRAINING (flush wbuf, read nothing more)
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

#include "buf.h"
#include "loop.h"
#include "net.h"
#include "presence.h"
#include "ws.h"

enum conn_phase {
    CONN_FREE,     /* slot unused */
    CONN_HTTP,     /* reading HTTP requests (keep-alive: possibly many) */
    CONN_WS,       /* WebSocket open */
    CONN_DRAINING, /* reads nothing more; flushes its output (a final response or close
                    * frame), then closes */
    CONN_CLOSING,  /* marked; reaped after the current batch */
};

enum conn_route {
    CONN_ROUTE_NONE, /* plain HTTP */
    CONN_ROUTE_ROOM, /* /ws: the shared-cursors room */
    CONN_ROUTE_ECHO, /* /echo */
};

#define CONN_NOT_IN_ROOM UINT32_MAX

struct conn {
    struct loop_watch watch; /* registration with the loop; watch.ctx is the server */
    int fd;                  /* the socket */
    uint32_t slot;           /* index in the table, fixed for the slot's life */
    enum conn_phase phase;
    enum conn_route route;
    uint64_t serial;   /* "conn=N" in logs: never reused, unlike slots and descriptors */
    uint64_t since_ms; /* monotonic time the current phase began: for timeouts */
    char peer[NET_ADDR_STR];

    struct buf rbuf;  /* bytes read, not yet parsed */
    struct buf wbuf;  /* bytes to send; its limit is --max-buffer */
    size_t http_seen; /* bytes of rbuf the HTTP parser has already scanned (its last_len) */
    bool is_queued;   /* in the writers list */

    /* A static file being sent (with sendfile) after the response head in wbuf. */
    int file_fd;
    uint64_t file_off, file_left;

    struct ws_session ws;
    char id[PRESENCE_ID_SIZE]; /* /ws only: UUID v4 */
    unsigned color;            /* /ws only: hue 0..359 */
    uint32_t room_index;       /* position in the room list, or CONN_NOT_IN_ROOM */

    const char *close_reason; /* static string: why it is closing (for the log) */
};

struct conn_table {
    struct conn *conns; /* max entries */
    size_t max;
    size_t nopen; /* slots not FREE */

    uint32_t *free_slots; /* stack of free slot numbers */
    size_t nfree;
    uint32_t *writers; /* slots with output queued, flushed before the next wait */
    size_t nwriters;
    uint32_t *closing; /* slots marked CLOSING, reaped after the batch */
    size_t nclosing;
    uint32_t *room; /* /ws members, dense: the broadcast loop walks exactly these */
    size_t nroom;

    size_t rbuf_limit, wbuf_limit, max_message;
};

/* Allocates max slots and the index lists. Returns 0 or -ENOMEM. */
int conn_table_init(struct conn_table *t, size_t max, size_t rbuf_limit, size_t wbuf_limit,
                    size_t max_message);

/* Releases every slot still open (closing their descriptors) and the table. */
void conn_table_free(struct conn_table *t);

/* Takes a free slot for socket fd, in phase CONN_HTTP. Returns NULL if every slot is taken. */
struct conn *conn_open(struct conn_table *t, int fd, const char *peer, uint64_t serial,
                       uint64_t now_ms);

/* Marks c for closing with a static reason; the first reason wins. Handlers check
 * c->phase == CONN_CLOSING first and do nothing for a marked connection. */
void conn_close_later(struct conn_table *t, struct conn *c, const char *why);

/* Queues c to be flushed before the next wait (once, however often it is called). */
void conn_queue_write(struct conn_table *t, struct conn *c);

/* Adds c to / removes c from the room list. O(1): removal moves the last member into the
 * hole. Leaving twice is harmless. */
void conn_room_join(struct conn_table *t, struct conn *c);
void conn_room_leave(struct conn_table *t, struct conn *c);

/* Closes the socket and any file, frees buffers and session, returns the slot to the free
 * list. The caller has already stopped watching the socket (loop_del): closing a descriptor
 * removes it from epoll only when no duplicate of it exists, so we never rely on that. */
void conn_release(struct conn_table *t, struct conn *c);

/* The connection that owns a watch (the watch is embedded in struct conn). */
static inline struct conn *conn_of_watch(struct loop_watch *w)
{
    return (struct conn *)(void *)((char *)w - offsetof(struct conn, watch));
}

#endif
