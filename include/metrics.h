/* metrics.h: counters, and their page at GET /metrics.
 *
 * Owns: the counters an operator watches (connections, messages and bytes each way,
 * disconnects by kind, rate-limited messages) and writing them, with the gauges the caller
 * reads off its tables, in the Prometheus text exposition format (version 0.0.4).
 * Does not own: counting (the modules that see each event increment; nothing here reads a
 * clock or a socket).
 * Pure.
 */
#ifndef WSRELAY_METRICS_H
#define WSRELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics {
    uint64_t connections_total; /* accepted TCP connections */
    uint64_t refused_full;      /* answered 503: every slot taken */
    uint64_t http_requests;     /* complete request heads parsed */
    uint64_t messages_in;       /* WebSocket data messages received */
    uint64_t messages_out;      /* WebSocket frames queued to clients */
    uint64_t bytes_in;          /* bytes read from client sockets */
    uint64_t bytes_out;         /* bytes written to client sockets (files included) */
    uint64_t rate_limited;      /* /ws messages dropped by --max-rate */
    uint64_t byte_rate_limited; /* /ws messages dropped by --max-byte-rate */
    uint64_t connect_limited;   /* /ws handshakes refused by --max-connect-rate (429) */
    uint64_t token_refused;     /* /ws handshakes refused for their room token (401, 403) */
    uint64_t conflated;         /* updates not queued to a client that was behind (conflation) */
    uint64_t cluster_invalid;   /* messages on the Redis channel ignored: foreign or malformed */
    uint64_t disconnects[CONN_END_COUNT];
};

/* Values read off the live tables when the page is written. */
struct metrics_gauges {
    size_t connections_open;
    size_t ws_open;   /* /ws clients (including those closing) */
    size_t echo_open; /* /echo clients */
    size_t wbuf_high_water;
    /* Rooms (room.h's counters and table): no per-room label, whose cardinality would be
     * whatever clients make up. */
    size_t rooms_open, room_clients_max;
    uint64_t room_joins, rooms_created, rooms_freed, room_refused_full, room_refused_too_many;
    uint64_t room_messages_out, room_conflated; /* added to messages_out and conflated */
    uint64_t room_relayed, room_relayed_remote; /* members' messages delivered; from elsewhere */
    /* Cluster (--redis); is_clustered false leaves these out of the page. */
    bool is_clustered;
    bool redis_up;
    size_t cluster_nodes;  /* other nodes heard from */
    size_t remote_clients; /* their clients */
    uint64_t redis_published, redis_dropped, redis_received;
};

/* Appends the whole page. Returns 0, or -ENOBUFS / -ENOMEM (out unchanged). */
int metrics_write(const struct metrics *m, const struct metrics_gauges *g, struct buf *out);

#endif
